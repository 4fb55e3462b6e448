// An in-memory StorageApi for driving runCli without a server: records every call.
import {
  DeleteHostRequest, DeleteHostResponse, Host, PingHostRequest, PingHostResponse, ListHostsResponse, ListPoolsResponse, ListVolumesRequest, ListVolumesResponse, Pool, PoolCapabilities, PoolDefinition,
  PoolState, PoolType, UndefinePoolResponse, DeleteVolumeResponse, FindPoolSourcesResponse,
  UploadVolumeResponse, Volume, VolumeDefinition, VolumeType, XMLDocument,
  DefineSecretRequest, GetSecretRequest, ListSecretsRequest, ListSecretsResponse, Secret, SetSecretValueRequest, UndefineSecretRequest, UndefineSecretResponse,
  type DownloadVolumeResponse, type Event, type UploadVolumeRequest,
} from '../../../libs/proto/cistern/v1/storage.js';
import { FailedPreconditionError, NotFoundError } from '../../../libs/errors/errors.js';
import type { StorageApi } from '../../../cli/api.js';
import { parseSecretXml } from '../../../libs/xml/secret.js';
import type { CommandInput, Terminal } from '../../../cli/command.js';

export interface Call {
  method: string;
  request: unknown;
}

export function pool(host: string, name: string, over: Partial<Pool> = {}, def: Partial<PoolDefinition> = {}): Pool {
  return Pool.create({
    name: `hosts/${host}/pools/${name}`,
    host,
    state: PoolState.POOL_STATE_RUNNING,
    persistent: true,
    definition: PoolDefinition.create({ name, type: PoolType.POOL_TYPE_DIR, uuid: '9428e344-8f1e-4492-bb31-3b9385665dec', ...def }),
    ...over,
  });
}

export function volume(host: string, poolName: string, name: string, capacity: bigint, allocation: bigint, path?: string): Volume {
  const p = path ?? `/var/lib/${poolName}/${name}`;
  return Volume.create({
    name: `hosts/${host}/pools/${poolName}/volumes/${name}`,
    host,
    pool: poolName,
    definition: VolumeDefinition.create({
      name, key: p, type: VolumeType.VOLUME_TYPE_FILE, capacity, allocation, target: { path: p, format: 'raw' },
    }),
  });
}

export class FakeApi implements StorageApi {
  calls: Call[] = [];
  hosts: Host[] = [];
  pools: Pool[] = [];
  volumes: Volume[] = [];
  events: Event[] = [];
  secrets: Secret[] = [];
  /** uuid -> value set through setSecretValue */
  secretValues = new Map<string, Buffer>();
  uploaded: Buffer[] = [];
  downloadChunks: DownloadVolumeResponse[] = [];
  closed = false;
  /** method -> error to throw */
  failures = new Map<string, Error>();

  constructor(hostIds: string[] = ['a']) {
    this.hosts = hostIds.map((h) => Host.create({ name: `hosts/${h}`, hostId: h, hostname: `${h}.example`, online: true }));
  }

  private record(method: string, request: unknown): void {
    this.calls.push({ method, request });
    const f = this.failures.get(method);
    if (f) throw f;
  }

  callsOf(method: string): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.request);
  }

  private findPool(name: string): Pool {
    const p = this.pools.find((x) => x.name === name);
    if (!p) throw new NotFoundError(`no storage pool with matching name '${name}'`);
    return p;
  }

  async listHosts(r: unknown) { this.record('listHosts', r); return ListHostsResponse.create({ hosts: this.hosts }); }
  async getHost(r: { name: string }) {
    this.record('getHost', r);
    const h = this.hosts.find((x) => x.name === r.name);
    if (!h) throw new NotFoundError(`host '${r.name.replace(/^hosts\//, '')}' is not known: no agent with this host id has ever reported`);
    return h;
  }
  async deleteHost(r: DeleteHostRequest) { this.record('deleteHost', r); return DeleteHostResponse.create(); }
  async pingHost(r: PingHostRequest) {
    this.record('pingHost', r);
    const h = this.hosts.find((x) => x.name === r.name);
    if (!h) throw new NotFoundError(`host '${r.name}' is not known: no agent with this host id has reported`);
    return PingHostResponse.create({ name: h.name, hostname: h.hostname, agentRoundTrip: { seconds: 0n, nanos: 250_000 } });
  }
  async definePool(r: { host: string; definition?: PoolDefinition; xml: string }) {
    this.record('definePool', r);
    return pool(r.host, r.definition?.name || 'fromxml', { state: PoolState.POOL_STATE_INACTIVE });
  }
  async createPool(r: { host: string; definition?: PoolDefinition }) {
    this.record('createPool', r);
    return pool(r.host, r.definition?.name || 'fromxml', { persistent: false });
  }
  async undefinePool(r: { name: string }) { this.record('undefinePool', r); this.findPool(r.name); return UndefinePoolResponse.create(); }
  async buildPool(r: { name: string }) { this.record('buildPool', r); return this.findPool(r.name); }
  async startPool(r: { name: string }) { this.record('startPool', r); return this.findPool(r.name); }
  async stopPool(r: { name: string }) { this.record('stopPool', r); return this.findPool(r.name); }
  async deletePool(r: { name: string }) { this.record('deletePool', r); return this.findPool(r.name); }
  async refreshPool(r: { name: string }) { this.record('refreshPool', r); return this.findPool(r.name); }
  async getPool(r: { name: string }) { this.record('getPool', r); return this.findPool(r.name); }
  async listPools(r: { host: string }) {
    this.record('listPools', r);
    return ListPoolsResponse.create({ pools: this.pools.filter((p) => !r.host || p.host === r.host) });
  }
  async getPoolXml(r: { name: string }) { this.record('getPoolXml', r); return XMLDocument.create({ xml: '<pool/>' }); }
  async setPoolAutostart(r: { name: string }) { this.record('setPoolAutostart', r); return this.findPool(r.name); }
  async findPoolSources(r: unknown) { this.record('findPoolSources', r); return FindPoolSourcesResponse.create({ xml: '<sources>\n</sources>\n' }); }
  async getPoolCapabilities(r: unknown) { this.record('getPoolCapabilities', r); return PoolCapabilities.create({ xml: '<storagepoolCapabilities/>' }); }
  async createVolume(r: { parent: string; definition?: VolumeDefinition }) {
    this.record('createVolume', r);
    const [, host, , p] = r.parent.split('/');
    return volume(host!, p!, r.definition?.name || 'fromxml', r.definition?.capacity ?? 0n, 0n);
  }
  async cloneVolume(r: { parent: string; definition?: VolumeDefinition }) {
    this.record('cloneVolume', r);
    const [, host, , p] = r.parent.split('/');
    return volume(host!, p!, r.definition?.name || 'fromxml', 0n, 0n);
  }
  async deleteVolume(r: unknown) { this.record('deleteVolume', r); return DeleteVolumeResponse.create(); }
  async wipeVolume(r: { name: string }) { this.record('wipeVolume', r); return this.getVolumeQuiet(r.name); }
  async resizeVolume(r: { name: string }) { this.record('resizeVolume', r); return this.getVolumeQuiet(r.name); }
  private getVolumeQuiet(name: string): Volume {
    const v = this.volumes.find((x) => x.name === name);
    if (!v) throw new NotFoundError(`no storage vol with matching name '${name.split('/').pop()}'`);
    return v;
  }
  async getVolume(r: { name: string }) {
    this.record('getVolume', r);
    // as the coordinator's lookup: a volume of a pool that is not active is FAILED_PRECONDITION
    const [, host, , p] = r.name.split('/');
    const owner = this.pools.find((x) => x.name === `hosts/${host}/pools/${p}`);
    if (owner && owner.state === PoolState.POOL_STATE_INACTIVE) throw new FailedPreconditionError(`storage pool '${p}' is not active`);
    return this.getVolumeQuiet(r.name);
  }
  async listVolumes(r: { parent: string }) {
    this.record('listVolumes', r);
    return ListVolumesResponse.create({ volumes: this.volumes.filter((v) => v.name.startsWith(`${r.parent}/`)) });
  }
  /** vol-list's table reads the response's wire bytes (cli/volume-rows.ts); set to undefined to test the fallback. */
  listVolumesBytes?: (r: ListVolumesRequest) => Promise<Uint8Array> = async (r) => {
    this.record('listVolumesBytes', r);
    return ListVolumesResponse.encode(ListVolumesResponse.create({ volumes: this.volumes.filter((v) => v.name.startsWith(`${r.parent}/`)) })).finish();
  };
  async getVolumeXml(r: unknown) { this.record('getVolumeXml', r); return XMLDocument.create({ xml: '<volume/>' }); }
  async lookupVolume(r: { host: string; key: string; path: string }) {
    this.record('lookupVolume', r);
    const v = this.volumes.find((x) => x.host === r.host &&
      ((r.key && x.definition?.key === r.key) || (r.path && x.definition?.target?.path === r.path)));
    if (!v) throw new NotFoundError(`no storage vol with matching key or path`);
    return v;
  }
  async defineSecret(r: DefineSecretRequest) {
    this.record('defineSecret', r);
    const given = r.xml ? parseSecretXml(r.xml) : Secret.create(r.secret ?? {});
    const uuid = given.uuid || `00000000-0000-4000-8000-${String(this.secrets.length + 1).padStart(12, '0')}`;
    const secret = Secret.create({ ...given, uuid, name: `secrets/${uuid}` });
    this.secrets = [...this.secrets.filter((s) => s.uuid !== uuid), secret];
    return secret;
  }
  async setSecretValue(r: SetSecretValueRequest) {
    this.record('setSecretValue', r);
    const secret = this.findSecret(r.name);
    this.secretValues.set(secret.uuid, Buffer.from(r.value));
    return Secret.create({ ...secret, hasValue: true });
  }
  async getSecret(r: GetSecretRequest) {
    this.record('getSecret', r);
    const secret = this.findSecret(r.name);
    return Secret.create({ ...secret, hasValue: this.secretValues.has(secret.uuid) });
  }
  async listSecrets(r: ListSecretsRequest) {
    this.record('listSecrets', r);
    return ListSecretsResponse.create({ secrets: [...this.secrets].sort((a, b) => a.uuid.localeCompare(b.uuid)) });
  }
  async undefineSecret(r: UndefineSecretRequest) {
    this.record('undefineSecret', r);
    const secret = this.findSecret(r.name);
    this.secrets = this.secrets.filter((s) => s !== secret);
    this.secretValues.delete(secret.uuid);
    return UndefineSecretResponse.create();
  }
  private findSecret(name: string): Secret {
    const uuid = name.replace(/^secrets\//, '');
    const s = this.secrets.find((x) => x.uuid === uuid);
    if (!s) throw new NotFoundError(`no secret with matching uuid '${uuid}'`);
    return s;
  }
  async uploadVolume(messages: AsyncIterable<UploadVolumeRequest>) {
    const all: UploadVolumeRequest[] = [];
    for await (const m of messages) {
      all.push(m);
      if (m.part?.$case === 'data') this.uploaded.push(Buffer.from(m.part.value));
    }
    this.record('uploadVolume', all);
    const total = this.uploaded.reduce((n, b) => n + b.length, 0);
    return UploadVolumeResponse.create({ bytesWritten: BigInt(total) });
  }
  async *downloadVolume(r: unknown) {
    this.record('downloadVolume', r);
    for (const c of this.downloadChunks) yield c;
  }
  async *watchEvents(r: unknown, signal?: AbortSignal, onPositioned?: () => void) {
    this.record('watchEvents', r);
    onPositioned?.();
    for (const e of this.events) {
      if (signal?.aborted) return;
      yield e;
    }
    // then follow "live": wait until aborted
    await new Promise<void>((resolve) => {
      if (!signal || signal.aborted) return resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
  close() { this.closed = true; }
}

export interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  signal?: AbortSignal;
  tty?: boolean;
  stdin?: string;
  /** cisternctl's environment (default: empty) */
  env?: Record<string, string>;
  terminal?: Terminal;
  /** the clock -t reads, in milliseconds (default: the real one) */
  clock?: () => number;
}

export async function run(api: FakeApi, argv: string[], extra: RunOptions = {}): Promise<Captured> {
  const { runCli } = await import('../../../cli/run.js');
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (t: string) => { stdout += t; }, isTTY: extra.tty ?? false },
    stderr: { write: (t: string) => { stderr += t; }, isTTY: extra.tty ?? false },
    env: extra.env ?? {},
    api,
    ...(extra.terminal ? { terminal: extra.terminal } : {}),
    ...(extra.signal ? { signal: extra.signal } : {}),
    ...(extra.clock ? { clock: extra.clock } : {}),
    ...(extra.stdin !== undefined ? { openInput: () => linesOf(extra.stdin!) } : {}),
  });
  return { code, stdout, stderr };
}

/** A session's input from a string, as a pipe gives it: no prompt, one line at a time. */
function linesOf(text: string): CommandInput {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return {
    lines: (async function* () {
      yield* lines;
    })(),
    close: () => undefined,
  };
}
