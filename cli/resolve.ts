// Turning what the user typed into resource names, the way virsh looks things up:
// pools by `HOST/POOL`, `POOL` (unique across the fleet) or UUID; volumes by name
// within --pool, or by key or path (LookupVolume on each candidate host).
import {
  GetHostRequest, GetPoolRequest, ListHostsRequest, ListPoolsRequest, ListVolumesRequest, GetVolumeRequest, LookupVolumeRequest,
  type Host, type Pool, type Volume,
} from '../libs/proto/cistern/v1/storage.js';
import { hostName, parseHostName, parsePoolName, parseVolumeName, poolName, volumeName } from '../libs/api/resource-names.js';
import type { StorageApi } from './api.js';
import { VolumeListing } from './volume-rows.js';
import { CommandError, UsageError } from './errors.js';
import { isActive } from './format/pool.js';

export interface ResolvedPool {
  host: string;
  pool: string;
  /** hosts/{host}/pools/{pool} */
  resource: string;
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === 'NOT_FOUND';
}

function isFailedPrecondition(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === 'FAILED_PRECONDITION';
}

/** Short pool name of a Pool message. */
export function poolShortName(p: Pool): string {
  const parts = p.name.split('/');
  return parts.length === 4 ? parts[3]! : (p.definition?.name ?? p.name);
}

export function poolHost(p: Pool): string {
  const parts = p.name.split('/');
  return p.host || (parts.length === 4 ? parts[1]! : '');
}

/** The largest page the coordinator gives (services/coordinator/pagination.ts MAX_PAGE_SIZE). */
const LIST_PAGE_SIZE = 10_000;

export async function listAllPools(api: StorageApi, base: Partial<ListPoolsRequest> = {}): Promise<Pool[]> {
  const out: Pool[] = [];
  let pageToken = '';
  do {
    // big pages, as for volumes: one round trip per 10,000 pools instead of ten
    const res = await api.listPools(ListPoolsRequest.create({ ...base, pageToken, pageSize: LIST_PAGE_SIZE }));
    out.push(...res.pools);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return out;
}

export async function listAllVolumes(api: StorageApi, parent: string): Promise<Volume[]> {
  const out: Volume[] = [];
  let pageToken = '';
  do {
    // big pages: one round trip per 10,000 volumes (the server caps the size; the client takes 64 MiB messages)
    const res = await api.listVolumes(ListVolumesRequest.create({ parent, pageToken, pageSize: LIST_PAGE_SIZE }));
    out.push(...res.volumes);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return out;
}

/** Every volume of a pool as vol-list rows, read from the wire bytes (cli/volume-rows.ts). */
export async function listAllVolumeRows(
  api: StorageApi & Required<Pick<StorageApi, 'listVolumesBytes'>>,
  parent: string,
): Promise<VolumeListing> {
  const listing = new VolumeListing();
  let pageToken = '';
  do {
    pageToken = listing.addPage(await api.listVolumesBytes(ListVolumesRequest.create({ parent, pageToken, pageSize: LIST_PAGE_SIZE })));
  } while (pageToken);
  return listing;
}

/** Every host of the fleet, all pages. */
export async function listHosts(api: StorageApi): Promise<Host[]> {
  const hosts: Host[] = [];
  let pageToken = '';
  do {
    const page = await api.listHosts(ListHostsRequest.create({ pageSize: LIST_PAGE_SIZE, pageToken }));
    hosts.push(...page.hosts);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return hosts;
}

export function hostId(h: Host): string {
  return h.hostId || h.name.replace(/^hosts\//, '');
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function normalUuid(u: string): string {
  return u.replace(/-/g, '').toLowerCase();
}

/** `hosts/H/pools/P`, `H/P`, or `P` / UUID unique across the fleet (or among `onHost`'s pools). */
export async function resolvePool(api: StorageApi, text: string, onHost?: string): Promise<ResolvedPool> {
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const resource = text.startsWith('hosts/') ? text : `hosts/${text.slice(0, slash)}/pools/${text.slice(slash + 1)}`;
    let ref: { host: string; pool: string };
    try {
      ref = parsePoolName(resource, 'pool');
    } catch {
      // no pool can have that name ('/x', 'a/b/c', 'h/'): virsh's two lines for a pool it cannot
      // find, so a script that looks for "failed to get pool" sees it, then what a name looks like
      throw new CommandError(`failed to get pool '${text}'`, new Error(
        `Storage pool not found: no storage pool with matching name '${text}'; a pool is POOL, HOST/POOL, hosts/HOST/pools/POOL or its UUID`));
    }
    return { ...ref, resource: poolName(ref.host, ref.pool) };
  }
  if (text === '') throw new UsageError("pool name is empty; give POOL or HOST/POOL");
  const pools = (await listAllPools(api)).filter((p) => onHost === undefined || poolHost(p) === onHost);
  let matches = pools.filter((p) => poolShortName(p) === text);
  if (matches.length === 0 && UUID_RE.test(text)) {
    matches = pools.filter((p) => p.definition?.uuid && normalUuid(p.definition.uuid) === normalUuid(text));
  }
  if (matches.length === 0) {
    throw new CommandError(`failed to get pool '${text}'`, new Error(`Storage pool not found: no storage pool with matching name '${text}'`));
  }
  if (matches.length > 1) {
    const hosts = matches.map(poolHost).sort();
    throw new UsageError(
      `pool '${text}' is ambiguous: it exists on hosts ${hosts.join(', ')}; name it as HOST/POOL (e.g. ${hosts[0]}/${text})`,
    );
  }
  const p = matches[0]!;
  return { host: poolHost(p), pool: poolShortName(p), resource: poolName(poolHost(p), poolShortName(p)) };
}

/** --host if given, else the only host of the fleet. */
export async function resolveHost(api: StorageApi, explicit: string | undefined): Promise<string> {
  if (explicit !== undefined) return parseHostName(explicit, 'host');
  const hosts = await listHosts(api);
  if (hosts.length === 1) return hostId(hosts[0]!);
  if (hosts.length === 0) throw new UsageError('no hosts are registered with the coordinator; start an agent first');
  throw new UsageError(
    `the fleet has ${hosts.length} hosts (${hosts.map(hostId).sort().join(', ')}); choose one with --host HOST`,
  );
}

/**
 * virsh's vshCommandOptVol: with a pool, the volume's name in it (then key or path
 * within the pool's host); without, a key or path looked up on every host (or --host).
 */
export async function resolveVolume(
  api: StorageApi,
  text: string,
  poolText: string | undefined,
  hostText?: string,
  poolOption = 'pool',
): Promise<Volume> {
  if (text.startsWith('hosts/')) {
    const ref = parseVolumeName(text, 'vol');
    return api.getVolume(GetVolumeRequest.create({ name: volumeName(ref.host, ref.pool, ref.volume) }));
  }
  if (poolText !== undefined) {
    const pool = await resolvePool(api, poolText);
    // virsh checks the pool is active before it looks the volume up (vshCommandOptVolBy): a name,
    // key or path given with an inactive --pool is virsh's "pool 'P' is not active", not the
    // server's refusal, "not in pool" or "not found". Asked only once a lookup has failed.
    const requireActivePool = async (): Promise<void> => {
      if (!isActive(await api.getPool(GetPoolRequest.create({ name: pool.resource })))) {
        throw new UsageError(`pool '${poolText}' is not active`);
      }
    };
    if (!text.includes('/')) {
      try {
        return await api.getVolume(GetVolumeRequest.create({ name: volumeName(pool.host, pool.pool, text) }));
      } catch (err) {
        if (isFailedPrecondition(err)) await requireActivePool();
        if (!isNotFound(err)) throw err;
      }
    }
    const found = await lookupOnHost(api, pool.host, text);
    if (found && (!found.pool || found.pool === pool.pool)) return found;
    await requireActivePool();
    if (found) throw new UsageError(`Requested volume '${text}' is not in pool '${poolText}'`);
    // virsh's words, whichever lookup failed (by name, key, then path: virsh reports the last),
    // as for a pool that is not found; not the coordinator's "not found in pool 'P' on host 'H'"
    throw new CommandError(`failed to get vol '${text}'`, new Error(`Storage volume not found: no storage vol with matching path '${text}'`));
  }
  const hosts = hostText !== undefined ? [parseHostName(hostText, 'host')] : (await listHosts(api)).map(hostId);
  const found = (await Promise.all(hosts.map((h) => lookupOnHost(api, h, text, hosts.length > 1)))).filter((v): v is Volume => !!v);
  if (found.length === 1) return found[0]!;
  // a --host that names no host: that is why nothing was found, not a missing --pool
  if (hostText !== undefined) {
    await api.getHost(GetHostRequest.create({ name: hostName(hosts[0]!) })).catch((err: unknown) => {
      throw new CommandError(`failed to get vol '${text}'`, err as Error);
    });
  }
  if (found.length > 1) {
    throw new UsageError(
      `volume '${text}' exists on hosts ${found.map((v) => v.host).sort().join(', ')}; choose one with --host HOST or --${poolOption} HOST/POOL`,
    );
  }
  throw new CommandError(
    // virsh hints at the pool option only to commands that have one (vol-name and vol-pool do not)
    poolOption === '' ? `failed to get vol '${text}'` : `failed to get vol '${text}', specifying --${poolOption} might help`,
    new Error(`Storage volume not found: no storage vol with matching path '${text}'`),
  );
}

/** Key first, then path (for absolute paths); undefined when neither matches. */
/**
 * virsh vol-create-as --backing-vol (cmdVolCreateAs): the volume of that name in the new volume's
 * pool, else by key, else by path, on the whole connection: a backing volume may be in any pool of
 * the host (another dir pool's image, a base in a pool of templates), not only in the new
 * volume's pool, as vshCommandOptVol would require.
 */
export async function resolveBackingVolume(api: StorageApi, text: string, pool: ResolvedPool): Promise<Volume> {
  if (!text.includes('/')) {
    try {
      return await api.getVolume(GetVolumeRequest.create({ name: volumeName(pool.host, pool.pool, text) }));
    } catch (err) {
      // virsh goes on to the key and the path whenever the name finds nothing, an inactive pool
      // included (virStorageVolLookupByName fails there too)
      if (!isNotFound(err) && !isFailedPrecondition(err)) throw err;
    }
  }
  const found = await lookupOnHost(api, pool.host, text);
  if (found) return found;
  throw new CommandError(`failed to get vol '${text}'`, new Error(`Storage volume not found: no storage vol with matching path '${text}'`));
}

async function lookupOnHost(api: StorageApi, host: string, text: string, tolerant = false): Promise<Volume | undefined> {
  const attempts: Array<Partial<LookupVolumeRequest>> = [{ host, key: text }];
  if (text.startsWith('/')) attempts.push({ host, path: text });
  for (const a of attempts) {
    try {
      return await api.lookupVolume(LookupVolumeRequest.create(a));
    } catch (err) {
      const code = (err as { code?: string }).code;
      const miss = code === 'NOT_FOUND' || code === 'INVALID_ARGUMENT' || (tolerant && code === 'UNAVAILABLE');
      if (!miss) throw err;
    }
  }
  return undefined;
}

/** Pool names as listings show them: bare on a one-host fleet, HOST/POOL otherwise. */
export function displayPool(host: string, pool: string, qualify: boolean): string {
  return qualify ? `${host}/${pool}` : pool;
}

/** Whether listings must qualify pool names with their host (more than one host known). */
export async function fleetIsMultiHost(api: StorageApi): Promise<boolean> {
  return (await listHosts(api)).length > 1;
}
