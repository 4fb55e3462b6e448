// pool-list with virsh's filters and layouts (plain, --details, --name, --uuid) and --json.
import type { Pool, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { parseHostName } from '../../libs/api/resource-names.js';
import { flag, str, type ParsedOptions } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { UsageError } from '../errors.js';
import { toJson } from '../format/json.js';
import { sortByName } from '../format/order.js';
import { isActive, LIBVIRT_ONLY_TYPE_WORDS, parsePoolType, poolJson, renderPoolList, renderPoolNames } from '../format/pool.js';
import { displayPool, fleetIsMultiHost, listAllPools, poolHost, poolShortName } from '../resolve.js';
import { splitCommas } from './shell.js';

export interface PoolFilter {
  host?: string;
  active?: boolean;
  persistent?: boolean;
  autostart?: boolean;
  types: PoolType[];
  /** --type named only types Cistern has no pools of (rbd, zfs, ...): the listing is empty */
  matchesNothing?: boolean;
}

/** virsh's flag rules: no flag = active only; --persistent with --transient = both; ... */
export function poolFilter(opts: ParsedOptions): PoolFilter {
  const f: PoolFilter = { types: [] };
  const all = flag(opts, 'all');
  const inactive = flag(opts, 'inactive');
  if (!all) f.active = !inactive;
  const persistent = flag(opts, 'persistent');
  const transient = flag(opts, 'transient');
  if (persistent !== transient) f.persistent = persistent;
  const autostart = flag(opts, 'autostart');
  const noAutostart = flag(opts, 'no-autostart');
  if (autostart !== noAutostart) f.autostart = autostart;
  const type = str(opts, 'type');
  if (type !== undefined) {
    // every word is checked, as virsh does: `dir,` is `Invalid pool type ''`; split as virsh's
    // vshStringToArray splits, where ',,' is a comma within a word
    const words = splitCommas(type);
    f.types = words.filter((t) => !LIBVIRT_ONLY_TYPE_WORDS.includes(t)).map(parsePoolType);
    f.matchesNothing = words.length > 0 && f.types.length === 0;
  }
  const host = str(opts, 'host');
  if (host !== undefined) f.host = parseHostName(host, 'host');
  return f;
}

export function matchesFilter(p: Pool, f: PoolFilter): boolean {
  if (f.host !== undefined && poolHost(p) !== f.host) return false;
  if (f.active !== undefined && isActive(p) !== f.active) return false;
  if (f.persistent !== undefined && p.persistent !== f.persistent) return false;
  if (f.autostart !== undefined && p.autostart !== f.autostart) return false;
  if (f.matchesNothing) return false;
  if (f.types.length > 0 && !f.types.includes(p.definition?.type ?? 0)) return false;
  return true;
}

export const poolList: Command = {
  name: 'pool-list',
  help: 'list pools',
  description: 'Returns list of pools.',
  options: [
    { name: 'inactive', type: 'bool', help: 'list inactive pools' },
    { name: 'all', type: 'bool', help: 'list inactive & active pools' },
    { name: 'transient', type: 'bool', help: 'list transient pools' },
    { name: 'persistent', type: 'bool', help: 'list persistent pools' },
    { name: 'autostart', type: 'bool', help: 'list pools with autostart enabled' },
    { name: 'no-autostart', type: 'bool', help: 'list pools with autostart disabled' },
    { name: 'type', type: 'string', metavar: 'string', nonEmpty: true, help: 'only list pool of specified type(s) (if supported), comma separated' },
    { name: 'details', type: 'bool', help: 'display extended details for pools' },
    { name: 'uuid', type: 'bool', help: 'list UUID of active pools only' },
    { name: 'name', type: 'bool', help: 'list name of active pools only' },
    { name: 'host', type: 'string', named: true, metavar: 'host', nonEmpty: true, help: 'only pools of this host (names are then shown without the host)' },
    JSON_OPTION,
  ],
  async run(ctx) {
    const details = flag(ctx.opts, 'details');
    const uuid = flag(ctx.opts, 'uuid');
    const name = flag(ctx.opts, 'name');
    // virsh 9.0 checks this pair first (VSH_EXCLUSIVE_OPTIONS in cmdPoolList): --all would
    // otherwise silently win over --inactive and a script would get active pools it did not ask for
    if (flag(ctx.opts, 'all') && flag(ctx.opts, 'inactive')) throw new UsageError('Options --all and --inactive are mutually exclusive');
    if (details && uuid) throw new UsageError('Options --details and --uuid are mutually exclusive');
    if (details && name) throw new UsageError('Options --details and --name are mutually exclusive');
    const filter = poolFilter(ctx.opts);
    const api = ctx.api();
    const request = {
      ...(filter.host !== undefined ? { host: filter.host } : {}),
      ...(filter.active !== undefined ? { active: filter.active } : {}),
      ...(filter.persistent !== undefined ? { persistent: filter.persistent } : {}),
      ...(filter.autostart !== undefined ? { autostart: filter.autostart } : {}),
      types: filter.types,
    };
    const [all, multiHost] = await Promise.all([
      listAllPools(api, request),
      filter.host === undefined ? fleetIsMultiHost(api) : Promise.resolve(false),
    ]);
    const display = (p: Pool): string => displayPool(poolHost(p), poolShortName(p), multiHost);
    const pools = sortByName(all.filter((p) => matchesFilter(p, filter)), display);
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(pools.map(poolJson)));
      return;
    }
    if (uuid || name) {
      ctx.print(renderPoolNames(pools, uuid, name, display));
      return;
    }
    ctx.print(renderPoolList(pools, { details, quiet: ctx.quiet, display }));
  },
};
