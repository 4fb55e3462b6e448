// vol-list POOL [--details] [--json]
import { flag, req } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { attempt } from '../errors.js';
import { toJson } from '../format/json.js';
import { renderVolumeList, volumeJson, volumeShortName } from '../format/volume.js';
import { listAllVolumes, resolvePool } from '../resolve.js';
import { POOL_OPTION } from './pool-lifecycle.js';

export const volList: Command = {
  name: 'vol-list',
  help: 'list vols',
  options: [POOL_OPTION, { name: 'details', type: 'bool', help: 'display extended details for volumes' }, JSON_OPTION],
  async run(ctx) {
    const api = ctx.api();
    const pool = await resolvePool(api, req(ctx.opts, 'pool'));
    // sorted by name, each name lower-cased once (not in every comparison)
    const vols = (await attempt('Failed to list volumes', () => listAllVolumes(api, pool.resource)))
      .map((v) => ({ v, key: volumeShortName(v).toLowerCase() }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((x) => x.v);
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(vols.map(volumeJson)));
      return;
    }
    ctx.print(renderVolumeList(vols, flag(ctx.opts, 'details'), ctx.quiet));
  },
};
