// vol-info, vol-dumpxml, vol-key, vol-path, vol-name, vol-pool.
import { GetVolumeRequest, GetVolumeXMLRequest, type Volume } from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str, type OptionSpec } from '../args.js';
import { JSON_OPTION, type Command, type CommandContext } from '../command.js';
import { attempt } from '../errors.js';
import { dumpXml } from '../format/dumpxml.js';
import { toJson } from '../format/json.js';
import {
  renderVolumeInfo, volumeHost, volumeJson, volumeKey, volumePath, volumePoolName, volumeShortName,
} from '../format/volume.js';
import { displayPool, fleetIsMultiHost, listAllPools, poolShortName } from '../resolve.js';
import { XPATH_OPTIONS } from './pool-info.js';
import { POOL_OPTIONAL, VOL_HOST_OPTION, VOL_OPTION, volumeFromOptions } from './vol-common.js';

export const volInfo: Command = {
  name: 'vol-info',
  help: 'storage vol information',
  description: 'Returns basic information about the storage vol.',
  options: [
    VOL_OPTION, POOL_OPTIONAL,
    { name: 'bytes', type: 'bool', help: 'sizes are represented in bytes rather than pretty units' },
    { name: 'physical', type: 'bool', help: 'return the physical size of the volume in allocation field' },
    VOL_HOST_OPTION, JSON_OPTION,
  ],
  async run(ctx) {
    // read again on its host, as virsh's vol-info has libvirt re-read the volume: a guest's
    // writes since the last refresh show in its allocation
    const found = await volumeFromOptions(ctx);
    const vol = await attempt(`failed to get vol '${req(ctx.opts, 'vol')}' info`, () =>
      ctx.api().getVolume(GetVolumeRequest.create({ name: found.name, refresh: true })));
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(volumeJson(vol)));
      return;
    }
    ctx.print(renderVolumeInfo(vol, flag(ctx.opts, 'bytes'), flag(ctx.opts, 'physical')));
  },
};

export const volDumpxml: Command = {
  name: 'vol-dumpxml',
  help: 'vol information in XML',
  description: 'Output the vol information as an XML dump to stdout.',
  options: [VOL_OPTION, POOL_OPTIONAL, ...XPATH_OPTIONS, VOL_HOST_OPTION],
  async run(ctx) {
    const vol = await volumeFromOptions(ctx);
    const doc = await attempt(`failed to get XML of vol '${req(ctx.opts, 'vol')}'`, () =>
      ctx.api().getVolumeXml(GetVolumeXMLRequest.create({ name: vol.name, refresh: true })));
    ctx.print(dumpXml(doc.xml, str(ctx.opts, 'xpath'), flag(ctx.opts, 'wrap')));
  },
};

function printer(name: string, help: string, options: OptionSpec[], value: (v: Volume, ctx: CommandContext) => Promise<string> | string): Command {
  return {
    name,
    help,
    options,
    async run(ctx) {
      // without a --pool option (vol-name, vol-pool) virsh's not-found error has no hint to use one
      const vol = await volumeFromOptions(ctx, 'vol', options.some((o) => o.name === 'pool') ? 'pool' : '');
      ctx.print(`${await value(vol, ctx)}\n`);
    },
  };
}

const KEY_OR_PATH: OptionSpec = { name: 'vol', type: 'string', required: true, nonEmpty: true, help: 'volume key or path' };

// virsh 9.0's help words for each command's <vol> (a name, key or path is taken by every one of them)
export const volKey = printer('vol-key', 'returns the volume key for a given volume name or path',
  [{ ...VOL_OPTION, help: 'volume name or path' }, POOL_OPTIONAL, VOL_HOST_OPTION], (v) => volumeKey(v));

export const volPath = printer('vol-path', 'returns the volume path for a given volume name or key',
  [{ ...VOL_OPTION, help: 'volume name or key' }, POOL_OPTIONAL, VOL_HOST_OPTION], (v) => volumePath(v));

export const volName = printer('vol-name', 'returns the volume name for a given volume key or path',
  [KEY_OR_PATH, VOL_HOST_OPTION], (v) => volumeShortName(v));

export const volPool = printer('vol-pool', 'returns the storage pool for a given volume key or path',
  [KEY_OR_PATH, { name: 'uuid', type: 'bool', help: 'return the pool uuid rather than pool name' }, VOL_HOST_OPTION],
  async (v, ctx) => {
    const api = ctx.api();
    if (flag(ctx.opts, 'uuid')) {
      const pools = await listAllPools(api, { host: volumeHost(v) });
      return pools.find((p) => poolShortName(p) === volumePoolName(v))?.definition?.uuid ?? '';
    }
    return displayPool(volumeHost(v), volumePoolName(v), await fleetIsMultiHost(api));
  });
