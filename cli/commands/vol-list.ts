// vol-list POOL [--details] [--json]
import { flag, req } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { attempt } from '../errors.js';
import { toJson } from '../format/json.js';
import { byName } from '../format/pool.js';
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
    const vols = (await attempt('Failed to list volumes', () => listAllVolumes(api, pool.resource)))
      .sort(byName(volumeShortName));
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(vols.map(volumeJson)));
      return;
    }
    ctx.print(renderVolumeList(vols, flag(ctx.opts, 'details'), ctx.quiet));
  },
};
