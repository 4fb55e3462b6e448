// Options and lookup shared by the vol-* commands (virsh's vshCommandOptVol).
import type { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { req, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../command.js';
import { resolveVolume } from '../resolve.js';

export const VOL_OPTION: OptionSpec = { name: 'vol', type: 'string', required: true, nonEmpty: true, help: 'vol name, key or path' };
export const POOL_OPTIONAL: OptionSpec = { name: 'pool', type: 'string', metavar: 'pool', nonEmpty: true, help: 'pool name (POOL or HOST/POOL) or uuid' };
export const VOL_HOST_OPTION: OptionSpec = {
  name: 'host', type: 'string', named: true, metavar: 'host', nonEmpty: true, help: 'host id to look a key or path up on (default: every host)',
};
export const PREALLOC_OPTION: OptionSpec = { name: 'prealloc-metadata', type: 'bool', help: 'preallocate metadata (for qcow2 instead of full allocation)' };
/** virsh 9.0's --validate of pool-define, vol-create, vol-create-from: the server checks the XML against libvirt's schema. */
export const VALIDATE_OPTION: OptionSpec = { name: 'validate', type: 'bool', help: 'validate the XML against the schema' };

export function volumeFromOptions(ctx: CommandContext, volOption = 'vol', poolOption = 'pool'): Promise<Volume> {
  return resolveVolume(ctx.api(), req(ctx.opts, volOption), str(ctx.opts, poolOption), str(ctx.opts, 'host'), poolOption);
}
