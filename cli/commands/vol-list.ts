// vol-list POOL [--details] [--json]
import { flag, req } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { attempt } from '../errors.js';
import { toJson } from '../format/json.js';
import { sortByName } from '../format/order.js';
import { renderVolumeList, renderVolumeListing, volumeJson, volumeShortName } from '../format/volume.js';
import { listAllVolumeRows, listAllVolumes, resolvePool } from '../resolve.js';
import { POOL_OPTION } from './pool-lifecycle.js';

export const volList: Command = {
  name: 'vol-list',
  help: 'list vols',
  description: 'Returns list of vols by pool.',
  options: [POOL_OPTION, { name: 'details', type: 'bool', help: 'display extended details for volumes' }, JSON_OPTION],
  async run(ctx) {
    const api = ctx.api();
    const pool = await resolvePool(api, req(ctx.opts, 'pool'));
    const json = flag(ctx.opts, 'json');
    if (!json && api.listVolumesBytes) {
      // the table needs five fields per volume: read them from the wire, no Volume objects
      const withBytes = api as typeof api & Required<Pick<typeof api, 'listVolumesBytes'>>;
      const listing = await attempt('Failed to list volumes', () => listAllVolumeRows(withBytes, pool.resource));
      ctx.print(renderVolumeListing(listing, flag(ctx.opts, 'details'), ctx.quiet));
      return;
    }
    const vols = sortByName(await attempt('Failed to list volumes', () => listAllVolumes(api, pool.resource)), volumeShortName);
    if (json) {
      ctx.setMachineOutput();
      ctx.print(toJson(vols.map(volumeJson)));
      return;
    }
    ctx.print(renderVolumeList(vols, flag(ctx.opts, 'details'), ctx.quiet));
  },
};
