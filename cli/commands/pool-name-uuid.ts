// pool-name and pool-uuid: a pool's name from its UUID, its UUID from its name.
import { GetPoolRequest } from '../../libs/proto/cistern/v1/storage.js';
import { req } from '../args.js';
import type { Command } from '../command.js';
import { attempt, CommandError, UsageError } from '../errors.js';
import { displayPool, fleetIsMultiHost, listAllPools, poolHost, poolShortName, resolvePool } from '../resolve.js';
import { POOL_OPTION } from './pool-lifecycle.js';

export const poolUuid: Command = {
  name: 'pool-uuid',
  help: 'convert a pool name to pool UUID',
  options: [POOL_OPTION],
  async run(ctx) {
    // Unlike virsh 9.0 (by name only), any pool reference works here, a UUID included:
    // resolvePool is what every other pool command uses (docs/cli.md).
    const text = req(ctx.opts, 'pool');
    const api = ctx.api();
    const ref = await resolvePool(api, text);
    const pool = await attempt(`failed to get pool '${text}'`, () => api.getPool(GetPoolRequest.create({ name: ref.resource })));
    if (!pool.definition?.uuid) throw new UsageError('failed to get pool UUID');
    ctx.print(`${pool.definition.uuid}\n`);
  },
};

/** libvirt's virUUIDFormat: lower case, dashed 8-4-4-4-12. */
function formatUuid(hex: string): string {
  const h = hex.toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * virsh's lookup for pool-name (virshCommandOptPoolBy with VIRSH_BYUUID only): a 36-character
 * argument is parsed as a UUID (dashes anywhere, as virUUIDParse skips them); anything else
 * is not found, with no reason given.
 */
function parseUuidArgument(text: string): string {
  if (text.length !== 36) throw new UsageError(`failed to get pool '${text}'`);
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) {
    throw new CommandError(`failed to get pool '${text}'`, new Error('uuidstr in virStoragePoolLookupByUUIDString must be a valid UUID'));
  }
  return formatUuid(hex);
}

export const poolName: Command = {
  name: 'pool-name',
  help: 'convert a pool UUID to pool name',
  options: [POOL_OPTION],
  async run(ctx) {
    const text = req(ctx.opts, 'pool');
    const uuid = parseUuidArgument(text);
    const api = ctx.api();
    const [pools, qualify] = await Promise.all([listAllPools(api), fleetIsMultiHost(api)]);
    const matches = pools.filter((p) => p.definition?.uuid && formatUuid(p.definition.uuid.replace(/-/g, '')) === uuid);
    if (matches.length === 0) {
      throw new CommandError(`failed to get pool '${text}'`, new Error(`Storage pool not found: no storage pool with matching uuid '${uuid}'`));
    }
    if (matches.length > 1) {
      const names = matches.map((p) => `${poolHost(p)}/${poolShortName(p)}`).sort();
      throw new UsageError(`pool UUID '${uuid}' is ambiguous: pools ${names.join(', ')} have it`);
    }
    // As pool-list names it: the name alone on a one-host fleet, HOST/POOL when there are several
    // hosts, so that what pool-name prints can always be given back to any pool command.
    const p = matches[0]!;
    ctx.print(`${displayPool(poolHost(p), poolShortName(p), qualify)}\n`);
  },
};
