// The pool catalog: a JetStream KV bucket, key pools.<host>.<pool>, value CatalogPool.
// Writes are compare-and-swap on the key's revision, so two coordinators never lose
// an update. Agents read it to autostart their pools without a coordinator.
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { CatalogPool, Heartbeat } from '../proto/cistern/agent/v1/agent.js';
import { AbortedError, AlreadyExistsError, NotFoundError } from '../errors/errors.js';
import { CATALOG_BUCKET, catalogKeys } from './subjects.js';

export interface CatalogEntry {
  host: string;
  pool: string;
  value: CatalogPool;
  revision: number;
}

export class Catalog {
  private constructor(readonly kv: KV) {}

  static async open(nc: NatsConnection, options: { replicas?: number } = {}): Promise<Catalog> {
    const kv = await new Kvm(nc).create(CATALOG_BUCKET, { history: 5, replicas: options.replicas ?? 1 });
    return new Catalog(kv);
  }

  async get(host: string, pool: string): Promise<CatalogEntry | undefined> {
    const entry = await this.kv.get(catalogKeys.pool(host, pool));
    return entry ? toEntry(entry) : undefined;
  }

  /** Adds a new pool; ALREADY_EXISTS when the name is taken on that host. */
  async create(host: string, pool: string, value: CatalogPool): Promise<number> {
    try {
      return await this.kv.create(catalogKeys.pool(host, pool), CatalogPool.encode(value).finish());
    } catch (err) {
      if (isWrongRevision(err)) throw new AlreadyExistsError(`pool '${pool}' already exists on host '${host}'`);
      throw err;
    }
  }

  /** Replaces an entry only if it is still at `revision`; ABORTED when someone else changed it. */
  async update(host: string, pool: string, value: CatalogPool, revision: number): Promise<number> {
    try {
      return await this.kv.update(catalogKeys.pool(host, pool), CatalogPool.encode(value).finish(), revision);
    } catch (err) {
      if (isWrongRevision(err)) {
        throw new AbortedError(`pool '${pool}' on host '${host}' was changed concurrently; retry`);
      }
      throw err;
    }
  }

  /** Read-modify-write with compare-and-swap, retried on conflicts. */
  async modify(host: string, pool: string, change: (value: CatalogPool) => CatalogPool): Promise<CatalogEntry> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(host, pool);
      if (!current) throw new NotFoundError(`pool '${pool}' is not defined on host '${host}'`);
      const value = change(CatalogPool.fromPartial(current.value));
      try {
        const revision = await this.update(host, pool, value, current.revision);
        return { host, pool, value, revision };
      } catch (err) {
        if (!(err instanceof AbortedError) || attempt >= 20) throw err;
      }
    }
  }

  async delete(host: string, pool: string, revision?: number): Promise<void> {
    try {
      await this.kv.delete(catalogKeys.pool(host, pool), revision === undefined ? undefined : { previousSeq: revision });
    } catch (err) {
      if (isWrongRevision(err)) throw new AbortedError(`pool '${pool}' on host '${host}' was changed concurrently; retry`);
      throw err;
    }
  }

  async list(host?: string): Promise<CatalogEntry[]> {
    const filter = host ? catalogKeys.poolsOfHost(host) : catalogKeys.allPools;
    const keys: string[] = [];
    for await (const key of await this.kv.keys(filter)) keys.push(key);
    const entries = await Promise.all(keys.map((key) => this.kv.get(key)));
    return entries.filter((e): e is KvEntry => !!e && e.operation === 'PUT').map(toEntry);
  }

  /**
   * Follows every change (initial values first). Deletions come with an undefined
   * value and their revision, so a late deletion never removes a newer definition.
   */
  async watch(
    onChange: (host: string, pool: string, value: CatalogPool | undefined, revision: number) => void,
    options: { host?: string } = {},
  ): Promise<{ stop(): void }> {
    const key = options.host ? catalogKeys.poolsOfHost(options.host) : catalogKeys.allPools;
    const iter = await this.kv.watch({ key });
    void (async () => {
      for await (const entry of iter) {
        const id = catalogKeys.parsePool(entry.key);
        if (!id) continue;
        onChange(id.host, id.pool, entry.operation === 'PUT' ? CatalogPool.decode(entry.value) : undefined, entry.revision);
      }
    })();
    return { stop: () => iter.stop() };
  }

  /** The fleet as last recorded: one Heartbeat per host (key hosts.<id>). */
  async loadHosts(): Promise<Heartbeat[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(catalogKeys.allHosts)) keys.push(key);
    const entries = await Promise.all(keys.map((key) => this.kv.get(key)));
    return entries.filter((e): e is KvEntry => !!e && e.operation === 'PUT').map((e) => Heartbeat.decode(e.value));
  }

  async saveHost(record: Heartbeat): Promise<void> {
    if (!record.host) throw new Error('host record without host');
    await this.kv.put(catalogKeys.host(record.host.hostId), Heartbeat.encode(record).finish());
  }
}

function toEntry(entry: KvEntry): CatalogEntry {
  const id = catalogKeys.parsePool(entry.key)!;
  return { host: id.host, pool: id.pool, value: CatalogPool.decode(entry.value), revision: entry.revision };
}

function isWrongRevision(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error)?.message ?? '');
}
