// The pool catalog: a JetStream KV bucket, key pools.<host>.<pool>, value CatalogPool.
// Writes are compare-and-swap on the key's revision, so two coordinators never lose
// an update. Agents read it to autostart their pools without a coordinator.
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { CatalogPool, Heartbeat } from '../proto/cistern/agent/v1/agent.js';
import { AbortedError, AlreadyExistsError, NotFoundError } from '../errors/errors.js';
import { CATALOG_BUCKET, catalogKeys } from './subjects.js';

export interface CatalogEntry {
  host: string;
  pool: string;
  value: CatalogPool;
  revision: number;
}

/** A key's last value as one ordered pass over the bucket reads it. */
interface LastValue {
  key: string;
  value: Uint8Array;
  revision: number;
  deleted: boolean;
}

export class Catalog {
  private constructor(
    readonly kv: KV,
    private readonly nc: NatsConnection,
  ) {}

  static async open(nc: NatsConnection, options: { replicas?: number } = {}): Promise<Catalog> {
    const kv = await new Kvm(nc).create(CATALOG_BUCKET, { history: 5, replicas: options.replicas ?? 1 });
    return new Catalog(kv, nc);
  }

  /**
   * The last value of every key under `filter`, in one ordered pass over the bucket's stream
   * (a get per key was 10,000 requests for a 500-host fleet's catalog: ~1 s of a
   * coordinator's start), and the highest revision read: changes after it are newer.
   */
  private async lastValues(filter: string): Promise<{ entries: LastValue[]; revision: number }> {
    const prefix = `$KV.${CATALOG_BUCKET}.`;
    // an ordered push consumer, as the KV client's own keys() and watch() make: what an
    // agent's NATS user may create on the catalog (docs/security.md); a pull consumer's
    // MSG.NEXT is not allowed to it
    const consumer = await jetstream(this.nc).consumers.getPushConsumer(`KV_${CATALOG_BUCKET}`, {
      filter_subjects: `${prefix}${filter}`, // one subject (a list needs nats-server 2.10; Debian 12 has 2.9)
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    const entries: LastValue[] = [];
    let revision = 0;
    if ((await consumer.info(true)).num_pending === 0) return { entries, revision };
    const messages = await consumer.consume();
    try {
      for await (const m of messages) {
        const op = m.headers?.get('KV-Operation');
        entries.push({ key: m.subject.slice(prefix.length), value: m.data, revision: m.seq, deleted: op === 'DEL' || op === 'PURGE' });
        if (m.seq > revision) revision = m.seq;
        if (m.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
    return { entries, revision };
  }

  async get(host: string, pool: string): Promise<CatalogEntry | undefined> {
    const entry = await this.kv.get(catalogKeys.pool(host, pool));
    // an undefined pool leaves a delete marker as the key's last entry: no pool
    return entry && entry.operation === 'PUT' ? toEntry(entry) : undefined;
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
    const { entries } = await this.lastValues(host ? catalogKeys.poolsOfHost(host) : catalogKeys.allPools);
    return entries.flatMap((e) => poolEntry(e) ?? []);
  }

  /**
   * Every pool's current entry, then every change after them (with revisions, deletions
   * included), in order; resolves once the current entries are delivered.
   */
  async follow(onChange: (host: string, pool: string, value: CatalogPool | undefined, revision: number) => void): Promise<{ stop(): void }> {
    const { entries, revision } = await this.lastValues(catalogKeys.allPools);
    for (const e of entries) {
      const id = catalogKeys.parsePool(e.key);
      if (id) onChange(id.host, id.pool, e.deleted ? undefined : CatalogPool.decode(e.value), e.revision);
    }
    return this.watch(onChange, { afterRevision: revision });
  }

  /**
   * Follows every change (initial values first). Deletions come with an undefined
   * value and their revision, so a late deletion never removes a newer definition.
   */
  async watch(
    onChange: (host: string, pool: string, value: CatalogPool | undefined, revision: number) => void,
    options: { host?: string; afterRevision?: number } = {},
  ): Promise<{ stop(): void }> {
    const key = options.host ? catalogKeys.poolsOfHost(options.host) : catalogKeys.allPools;
    // after a revision: every change from the next one on (none of the current values again)
    const iter = await this.kv.watch(options.afterRevision ? { key, resumeFromRevision: options.afterRevision + 1 } : { key });
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
    const { entries } = await this.lastValues(catalogKeys.allHosts);
    return entries.filter((e) => !e.deleted).map((e) => Heartbeat.decode(e.value));
  }

  async saveHost(record: Heartbeat): Promise<void> {
    if (!record.host) throw new Error('host record without host');
    await this.kv.put(catalogKeys.host(record.host.hostId), Heartbeat.encode(record).finish());
  }
}

function toEntry(entry: { key: string; value: Uint8Array; revision: number }): CatalogEntry {
  const id = catalogKeys.parsePool(entry.key)!;
  return { host: id.host, pool: id.pool, value: CatalogPool.decode(entry.value), revision: entry.revision };
}

/** A pool's entry, or undefined for a deleted key or one that is not a pool's. */
function poolEntry(e: LastValue): CatalogEntry | undefined {
  return e.deleted || !catalogKeys.parsePool(e.key) ? undefined : toEntry(e);
}

function isWrongRevision(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error)?.message ?? '');
}
