// pool-build, pool-start, pool-destroy, pool-delete, pool-undefine, pool-refresh,
// pool-autostart: one pool, one call, virsh's messages.
import {
  BuildFlags, BuildPoolRequest, DeletePoolRequest, EventKind, RefreshPoolRequest, SetPoolAutostartRequest,
  StartPoolRequest, StopPoolRequest, UndefinePoolRequest,
} from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, type OptionSpec } from '../args.js';
import type { StorageApi } from '../api.js';
import type { Command, CommandContext } from '../command.js';
import { attempt, UsageError } from '../errors.js';
import { withProgress } from '../progress-watch.js';
import { resolvePool, type ResolvedPool } from '../resolve.js';

export const POOL_OPTION: OptionSpec = { name: 'pool', type: 'string', required: true, nonEmpty: true, help: 'pool name (POOL or HOST/POOL) or uuid' };

function overwriteFlags(ctx: CommandContext): BuildFlags {
  const overwrite = flag(ctx.opts, 'overwrite');
  const noOverwrite = flag(ctx.opts, 'no-overwrite');
  if (overwrite && noOverwrite) throw new UsageError('Options --overwrite and --no-overwrite are mutually exclusive');
  return BuildFlags.create({ overwrite, noOverwrite });
}

/** A command that resolves --pool, calls one RPC and prints one line. */
function simple(
  name: string,
  help: string,
  description: string,
  extra: OptionSpec[],
  failure: (pool: string, ctx: CommandContext) => string,
  success: (pool: string, ctx: CommandContext) => string,
  call: (api: StorageApi, p: ResolvedPool, ctx: CommandContext) => Promise<unknown>,
): Command {
  return {
    name,
    help,
    description,
    options: [POOL_OPTION, ...extra],
    async run(ctx) {
      const text = req(ctx.opts, 'pool');
      const api = ctx.api();
      const pool = await resolvePool(api, text);
      await attempt(failure(text, ctx), () => call(api, pool, ctx));
      ctx.printExtra(success(text, ctx));
    },
  };
}

const OVERWRITE_OPTIONS: OptionSpec[] = [
  { name: 'no-overwrite', type: 'bool', help: 'do not overwrite any existing data' },
  { name: 'overwrite', type: 'bool', help: 'overwrite any existing data' },
];

export const poolBuild = simple('pool-build', 'build a pool', 'Build a given pool.', OVERWRITE_OPTIONS,
  (p) => `Failed to build pool ${p}`, (p) => `Pool ${p} built\n`,
  (api, p, ctx) => {
    // virsh 9.0's pool-build (unlike pool-start and pool-create) lets the pair through, and
    // libvirt's build refuses it (VIR_EXCLUSIVE_FLAGS_RET): the refusal comes under the
    // "Failed to build pool" line, in libvirt's words
    if (flag(ctx.opts, 'overwrite') && flag(ctx.opts, 'no-overwrite')) {
      throw new Error("Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive");
    }
    const flags = overwriteFlags(ctx);
    return withProgress(ctx, { host: p.host, pool: p.pool, result: EventKind.POOL_CREATED }, (requestId) =>
      api.buildPool(BuildPoolRequest.create({ name: p.resource, flags, requestId })));
  });

export const poolStart = simple('pool-start', 'start a (previously defined) inactive pool', 'Start a pool.',
  [{ name: 'build', type: 'bool', help: 'build the pool as normal' }, ...OVERWRITE_OPTIONS],
  (p) => `Failed to start pool ${p}`, (p) => `Pool ${p} started\n`,
  (api, p, ctx) => {
    const buildFlags = overwriteFlags(ctx);
    const build = flag(ctx.opts, 'build') || buildFlags.overwrite || buildFlags.noOverwrite;
    return api.startPool(StartPoolRequest.create({ name: p.resource, build, buildFlags }));
  });

export const poolDestroy = simple('pool-destroy', 'destroy (stop) a pool', 'Forcefully stop a given pool. Raw data in the pool is untouched', [],
  (p) => `Failed to destroy pool ${p}`, (p) => `Pool ${p} destroyed\n`,
  (api, p) => api.stopPool(StopPoolRequest.create({ name: p.resource })));

export const poolDelete = simple('pool-delete', 'delete a pool', 'Delete a given pool.', [],
  (p) => `Failed to delete pool ${p}`, (p) => `Pool ${p} deleted\n`,
  (api, p) => api.deletePool(DeletePoolRequest.create({ name: p.resource })));

export const poolUndefine = simple('pool-undefine', 'undefine an inactive pool', 'Undefine the configuration for an inactive pool.', [],
  (p) => `Failed to undefine pool ${p}`, (p) => `Pool ${p} has been undefined\n`,
  (api, p) => api.undefinePool(UndefinePoolRequest.create({ name: p.resource })));

export const poolRefresh = simple('pool-refresh', 'refresh a pool', 'Refresh a given pool.', [],
  (p) => `Failed to refresh pool ${p}`, (p) => `Pool ${p} refreshed\n`,
  (api, p) => api.refreshPool(RefreshPoolRequest.create({ name: p.resource })));

export const poolAutostart = simple('pool-autostart', 'autostart a pool', 'Configure a pool to be automatically started at boot.',
  [{ name: 'disable', type: 'bool', help: 'disable autostarting' }],
  (p, ctx) => (flag(ctx.opts, 'disable') ? `failed to unmark pool ${p} as autostarted` : `failed to mark pool ${p} as autostarted`),
  (p, ctx) => (flag(ctx.opts, 'disable') ? `Pool ${p} unmarked as autostarted\n` : `Pool ${p} marked as autostarted\n`),
  (api, p, ctx) => api.setPoolAutostart(SetPoolAutostartRequest.create({ name: p.resource, autostart: !flag(ctx.opts, 'disable') })));
