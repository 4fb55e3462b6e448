// The pool catalog: a JetStream KV bucket, key pools.<host>.<pool>, value CatalogPool.
// Writes are compare-and-swap on the key's revision, so two coordinators never lose
// an update. Agents read it to autostart their pools without a coordinator: list(host),
// which needs no consumer (an agent's NATS user may create none, docs/security.md).
// The same bucket records the fleet: key hosts.<id>, value Heartbeat (the last known Host);
// DeleteHost leaves a deletion marker there, and host records too are written only over the
// revision the writer has seen, so a coordinator that has not heard of a deletion yet cannot
// write the host back (services/coordinator/hosts.ts).
import { createInbox, Empty, headers, type Msg, type NatsConnection, type Status, type Subscription } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { CatalogPool, Heartbeat } from '../proto/cistern/agent/v1/agent.js';
import { AbortedError, AlreadyExistsError, isBusUnreachable, NotFoundError, UnavailableError } from '../errors/errors.js';
import { CATALOG_BUCKET, catalogKeys } from './subjects.js';
import { readHostRecord, readPoolEntry, UnreadableCatalogEntryError, type UnreadableEntry } from './catalog-entries.js';
import { encodeOver } from './catalog-fields.js';

export { UnreadableCatalogEntryError, type UnreadableEntry } from './catalog-entries.js';

/** A host's record as the bucket holds it: its last entry's revision; `record` undefined when that entry is a deletion. */
export interface HostRecordEntry {
  host: string;
  revision: number;
  record: Heartbeat | undefined;
}

export interface CatalogEntry {
  host: string;
  pool: string;
  value: CatalogPool;
  revision: number;
  /**
   * The entry's bytes as stored (get() only): a write over the entry passes them to update(),
   * which keeps the fields this build does not know (catalog-fields.ts).
   */
  data?: Uint8Array;
  /** When the entry was written, by the NATS server's clock (get() only). */
  written?: Date;
}

/** One revision of a pool's key (Catalog.history). */
export interface CatalogRevision {
  revision: number;
  /** by the NATS server's clock */
  written: Date;
  /** undefined: a delete marker, or an entry Cistern did not write */
  value?: CatalogPool;
}

/** Direct gets in flight at once while list(host) reads a host's entries key by key. */
const DIRECT_GETS_IN_FLIGHT = 256;
/** A key-by-key read fails when no reply came for this long. */
const DIRECT_GET_TIMEOUT_MS = 5_000;
/** Attempts of a key-by-key read (list(host)) when the bus does not answer or reconnects during it. */
const READ_ATTEMPTS = 3;

/** A key-by-key read cut short by the bus (a reconnect, a silence): the whole read is worth another try. */
class BusInterrupted extends Error {
  override name = 'BusInterrupted';
}

/** A key's last value as one ordered pass over the bucket reads it. */
interface LastValue {
  key: string;
  value: Uint8Array;
  revision: number;
  deleted: boolean;
}

/** A pool's entry changed: its new value, or undefined (deleted, or not readable as a pool), at `revision`. */
export type CatalogChange = (host: string, pool: string, value: CatalogPool | undefined, revision: number) => void;

export interface CatalogOptions {
  replicas?: number;
  /**
   * Told of each entry a read left out because it is not what Cistern writes (catalog-entries.ts):
   * written by hand or by another tool. Such an entry is no pool (nor host) to any reader.
   */
  onUnreadable?: (entry: UnreadableEntry) => void;
}

export class Catalog {
  private jsm: Promise<JetStreamManager> | undefined;

  private constructor(
    readonly kv: KV,
    private readonly nc: NatsConnection,
    private readonly onUnreadable: (entry: UnreadableEntry) => void,
  ) {}

  static async open(nc: NatsConnection, options: CatalogOptions = {}): Promise<Catalog> {
    const kv = await new Kvm(nc).create(CATALOG_BUCKET, { history: 5, replicas: options.replicas ?? 1 });
    return new Catalog(kv, nc, options.onUnreadable ?? (() => undefined));
  }

  /** A pool entry's value, or undefined (reported) when it is not one Cistern wrote. */
  private poolValue(key: string, pool: string, revision: number, data: Uint8Array): CatalogPool | undefined {
    const read = readPoolEntry(pool, data);
    if ('value' in read) return read.value;
    this.onUnreadable({ key, revision, why: read.why });
    return undefined;
  }

  /**
   * The last value of every key under `filter`, in one ordered pass over the bucket's stream
   * (a get per key was 10,000 requests for a 500-host fleet's catalog: ~1 s of a
   * coordinator's start), and the highest revision read: changes after it are newer.
   */
  private async lastValues(filter: string): Promise<{ entries: LastValue[]; revision: number }> {
    const prefix = `$KV.${CATALOG_BUCKET}.`;
    // an ordered push consumer, as the KV client's own keys() and watch() make (the
    // coordinator's reads; an agent reads its own entries with lastValuesByKey, no consumer)
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

  /**
   * The last value of every key under `filter` without a consumer: the keys from the
   * stream's subject list (stream info with a subjects filter), then a direct get of each
   * key's last message on the subject that names the key (`$JS.API.DIRECT.GET.<stream>.<key
   * subject>`, which NATS permissions can confine: what an agent's user may do on its own
   * keys, docs/security.md). In revision order, as the ordered pass delivers them. A key
   * whose messages are gone by its get is left out.
   *
   * Not `seq` + `next_by_subj` walks: nats-server 2.9 takes them only on the stream's plain
   * DIRECT.GET subject, whose body no permission can confine to a host's keys.
   *
   * The whole read is tried again (READ_ATTEMPTS in all) when the bus does not answer or
   * reconnects during it; then UnavailableError, so callers see UNAVAILABLE and may retry.
   */
  private async lastValuesByKey(filter: string): Promise<LastValue[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readLastValuesByKey(filter);
      } catch (err) {
        // a refusal (permissions) or a bad reply is no matter of time: as it is
        if (!isBusUnavailable(err)) throw err;
        if (attempt >= READ_ATTEMPTS || this.nc.isClosed() || this.nc.isDraining()) {
          throw new UnavailableError(`the bus did not answer reading the catalog's entries ${filter} (${attempt} attempts, last: ${(err as Error).message}); retry`);
        }
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
  }

  /** The JetStream manager, made once: a failed making (NATS down) is not kept, the next read makes it again. */
  private manager(): Promise<JetStreamManager> {
    if (!this.jsm) {
      const made = jetstreamManager(this.nc);
      this.jsm = made;
      made.catch(() => {
        if (this.jsm === made) this.jsm = undefined;
      });
    }
    return this.jsm;
  }

  /** The revision of the newest pool entry in the bucket (a deletion included), 0 when there is none. */
  async lastPoolRevision(): Promise<number> {
    const jsm = await this.manager();
    const msg = await jsm.streams.getMessage(`KV_${CATALOG_BUCKET}`, { last_by_subj: `$KV.${CATALOG_BUCKET}.${catalogKeys.allPools}` });
    return msg ? msg.seq : 0;
  }

  private async readLastValuesByKey(filter: string): Promise<LastValue[]> {
    const stream = `KV_${CATALOG_BUCKET}`;
    const prefix = `$KV.${CATALOG_BUCKET}.`;
    const jsm = await this.manager();
    const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}${filter}` });
    const subjects = Object.keys(info.state.subjects ?? {});
    if (subjects.length === 0) return [];
    const entries: LastValue[] = [];
    const add = (subject: string, seq: number, data: Uint8Array, op: string | undefined): void => {
      entries.push({ key: subject.slice(prefix.length), value: data, revision: seq, deleted: op === 'DEL' || op === 'PURGE' });
    };
    // the first through the JetStream client: a refused subject fails as the permission error it is
    const first = await jsm.direct.getMessage(stream, { last_by_subj: subjects[0]! });
    if (first) add(first.subject, first.seq, first.data, first.header.get('KV-Operation'));
    await directGetsPipelined(this.nc, stream, subjects.slice(1), (m) => add(m.headers!.get('Nats-Subject'), Number(m.headers!.get('Nats-Sequence')), m.data, m.headers!.get('KV-Operation')));
    return entries.sort((x, y) => x.revision - y.revision);
  }

  /**
   * The pool's entry; undefined when there is none. An entry that is not what Cistern writes is
   * UnreadableCatalogEntryError (FAILED_PRECONDITION), which names the key and its revision:
   * a define or undefine of that name replaces or removes it over that revision.
   */
  async get(host: string, pool: string): Promise<CatalogEntry | undefined> {
    const key = catalogKeys.pool(host, pool);
    const entry = await this.kv.get(key);
    // an undefined pool leaves a delete marker as the key's last entry: no pool
    if (!entry || entry.operation !== 'PUT') return undefined;
    const read = readPoolEntry(pool, entry.value);
    if ('why' in read) throw new UnreadableCatalogEntryError({ key, revision: entry.revision, why: read.why }, host, pool);
    return { host, pool, value: read.value, revision: entry.revision, data: entry.value, written: entry.created };
  }

  /**
   * The pool's key as the bucket still holds it, oldest first (the bucket keeps a few revisions
   * of each key): its writes, `value` undefined for a delete marker or an entry Cistern did not
   * write. What the retry of a catalog call looks for its own write in (catalog-retries.ts).
   */
  async history(host: string, pool: string): Promise<CatalogRevision[]> {
    const found: CatalogRevision[] = [];
    for await (const e of await this.kv.history({ key: catalogKeys.pool(host, pool) })) {
      const read = e.operation === 'PUT' ? readPoolEntry(pool, e.value) : undefined;
      found.push({ revision: e.revision, written: e.created, value: read && !('why' in read) ? read.value : undefined });
    }
    return found;
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

  /**
   * Replaces an entry only if it is still at `revision`; ABORTED when someone else changed it.
   * `over`, the bytes stored at `revision` (CatalogEntry.data), keeps what this build does not
   * know of them: the fields a newer build wrote, which a plain encoding of `value` would drop.
   */
  async update(host: string, pool: string, value: CatalogPool, revision: number, over?: Uint8Array): Promise<number> {
    try {
      return await this.kv.update(catalogKeys.pool(host, pool), over ? encodeOver(over, value) : CatalogPool.encode(value).finish(), revision);
    } catch (err) {
      if (isWrongRevision(err)) {
        throw new AbortedError(`pool '${pool}' on host '${host}' was changed concurrently; retry`);
      }
      throw err;
    }
  }

  /** The bucket's newest revision, of any key (a host record, a deletion included); 0 when it is empty. */
  async bucketRevision(): Promise<number> {
    const jsm = await this.manager();
    return (await jsm.streams.info(`KV_${CATALOG_BUCKET}`)).state.last_seq;
  }

  /**
   * Adds a new pool only if nothing at all was written to the bucket after `bucketRevision`:
   * a write decided on a read of the whole bucket at that revision, for a rule that spans keys
   * (services/coordinator/define-conflicts.ts). Returns the entry's revision, or undefined when
   * the bucket (or the key) moved: the writer reads again and decides again. The key may have
   * a deletion marker (a pool undefined): the write goes over it, as KV.create does.
   */
  async createIfUnmoved(host: string, pool: string, value: CatalogPool, bucketRevision: number): Promise<number | undefined> {
    const jsm = await this.manager();
    const last = await jsm.streams.getMessage(`KV_${CATALOG_BUCKET}`, { last_by_subj: `$KV.${CATALOG_BUCKET}.${catalogKeys.pool(host, pool)}` });
    const op = last?.header?.get('KV-Operation');
    if (last && op !== 'DEL' && op !== 'PURGE') return undefined; // written since the writer read it
    return this.putIfUnmoved(host, pool, CatalogPool.encode(value).finish(), bucketRevision, last?.seq ?? 0);
  }

  /** update(), only if nothing at all was written to the bucket after `bucketRevision` (createIfUnmoved); undefined when it was. */
  async updateIfUnmoved(host: string, pool: string, value: CatalogPool, revision: number, bucketRevision: number, over?: Uint8Array): Promise<number | undefined> {
    return this.putIfUnmoved(host, pool, over ? encodeOver(over, value) : CatalogPool.encode(value).finish(), bucketRevision, revision);
  }

  /** What KV.put publishes, with the bucket's last revision expected as well as the key's. */
  private async putIfUnmoved(host: string, pool: string, data: Uint8Array, bucketRevision: number, keyRevision: number): Promise<number | undefined> {
    try {
      const ack = await jetstream(this.nc).publish(`$KV.${CATALOG_BUCKET}.${catalogKeys.pool(host, pool)}`, data, {
        expect: { lastSequence: bucketRevision, lastSubjectSequence: keyRevision },
      });
      return ack.seq;
    } catch (err) {
      if (isWrongRevision(err)) return undefined;
      throw err;
    }
  }

  /**
   * Read-modify-write with compare-and-swap, retried on conflicts. The fields `change` leaves as
   * they were are written back as stored, those this build does not know included.
   */
  async modify(host: string, pool: string, change: (value: CatalogPool) => CatalogPool): Promise<CatalogEntry> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(host, pool);
      if (!current) throw new NotFoundError(`pool '${pool}' is not defined on host '${host}'`);
      const value = change(CatalogPool.fromPartial(current.value));
      try {
        const revision = await this.update(host, pool, value, current.revision, current.data);
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

  /**
   * Every pool's current entry, or one host's: an agent's read at boot (autostart, restore),
   * made of stream info and direct gets of the host's own keys only.
   */
  async list(host?: string): Promise<CatalogEntry[]> {
    const entries = host ? await this.lastValuesByKey(catalogKeys.poolsOfHost(host)) : (await this.lastValues(catalogKeys.allPools)).entries;
    return entries.flatMap((e) => this.poolEntry(e) ?? []);
  }

  /** A pool's entry, or undefined for a deleted key, one that is not a pool's, or one not readable as a pool (reported). */
  private poolEntry(e: LastValue): CatalogEntry | undefined {
    const id = catalogKeys.parsePool(e.key);
    if (e.deleted || !id) return undefined;
    const value = this.poolValue(e.key, id.pool, e.revision, e.value);
    return value && { host: id.host, pool: id.pool, value, revision: e.revision };
  }

  /**
   * Every pool's current entry, then every change after them (with revisions, deletions
   * included), in order; resolves once the current entries are delivered. An entry that is not
   * readable as a pool comes as a deletion at its revision: the pool it may have replaced is
   * gone, and a later readable entry brings the pool back. `onRead` is told how far the bucket
   * has been read (after the changes up to there were delivered): every entry under `pools.>`
   * counts, a key that names no pool (reported, and no change) included, so that a reader
   * waiting for the bucket's newest revision (lastPoolRevision) is not held up by one.
   */
  async follow(onChange: CatalogChange, onRead: (revision: number) => void = () => undefined): Promise<{ stop(): void }> {
    const { entries, revision } = await this.lastValues(catalogKeys.allPools);
    for (const e of entries) {
      const id = catalogKeys.parsePool(e.key);
      if (id) onChange(id.host, id.pool, e.deleted ? undefined : this.poolValue(e.key, id.pool, e.revision, e.value), e.revision);
      else if (!e.deleted) this.onUnreadable({ key: e.key, revision: e.revision, why: 'the key names no pool (pools.<host>.<pool>)' });
    }
    onRead(revision);
    return this.watch(onChange, { afterRevision: revision, onRead });
  }

  /**
   * Follows every change (initial values first). Deletions come with an undefined
   * value and their revision, so a late deletion never removes a newer definition.
   */
  async watch(onChange: CatalogChange, options: { host?: string; afterRevision?: number; onRead?: (revision: number) => void } = {}): Promise<{ stop(): void }> {
    const key = options.host ? catalogKeys.poolsOfHost(options.host) : catalogKeys.allPools;
    // after a revision: every change from the next one on (none of the current values again)
    const iter = await this.kv.watch(options.afterRevision ? { key, resumeFromRevision: options.afterRevision + 1 } : { key });
    void (async () => {
      for await (const entry of iter) {
        const id = catalogKeys.parsePool(entry.key);
        if (id) onChange(id.host, id.pool, entry.operation === 'PUT' ? this.poolValue(entry.key, id.pool, entry.revision, entry.value) : undefined, entry.revision);
        else if (entry.operation === 'PUT') this.onUnreadable({ key: entry.key, revision: entry.revision, why: 'the key names no pool (pools.<host>.<pool>)' });
        options.onRead?.(entry.revision);
      }
    })();
    return { stop: () => iter.stop() };
  }

  /** The fleet as last recorded: one Heartbeat per host (key hosts.<id>); deleted hosts are left out. */
  async loadHosts(): Promise<Heartbeat[]> {
    const { entries } = await this.hostRecords();
    return entries.flatMap((e) => e.record ?? []);
  }

  /** Every host key's last entry, deletions included, and the highest revision read (later changes are newer). */
  async hostRecords(): Promise<{ entries: HostRecordEntry[]; revision: number }> {
    const { entries, revision } = await this.lastValues(catalogKeys.allHosts);
    return { entries: entries.flatMap((e) => this.hostEntry(e.key, e.revision, e.deleted ? undefined : e.value, 'leave out') ?? []), revision };
  }

  /**
   * Writes a host's record if its key is still at `expected` (0: the key was never written):
   * a coordinator writes only over what it has seen, so it never overwrites a record it has
   * not seen (another coordinator's, or a deletion). Returns the new revision, or, when the
   * key moved, its current last entry (undefined when it has none).
   */
  async saveHost(record: Heartbeat, expected: number): Promise<{ revision: number } | { current: HostRecordEntry | undefined }> {
    if (!record.host) throw new Error('host record without host');
    const key = catalogKeys.host(record.host.hostId);
    try {
      return { revision: await this.kv.put(key, Heartbeat.encode(record).finish(), { previousSeq: expected }) };
    } catch (err) {
      if (!isWrongRevision(err)) throw err;
    }
    const e = await this.kv.get(key);
    return { current: e ? this.hostEntry(e.key, e.revision, e.operation === 'PUT' ? e.value : undefined, 'write over') : undefined };
  }

  /**
   * Deletes a host's record (a deletion marker as the key's last entry) if its key is still at
   * `expected` (0: never written), as saveHost writes: a deletion never goes over a record the
   * deleting coordinator has not seen (the host back online, recorded by another coordinator).
   * Returns the marker's revision, or, when the key moved, its current last entry (undefined
   * when it has none).
   */
  async deleteHost(host: string, expected: number): Promise<{ revision: number } | { current: HostRecordEntry | undefined }> {
    // what KV.delete() publishes, but the marker's revision is wanted: the deleting
    // coordinator has seen it (its own later writes of a returning host go over it); and
    // KV.delete() sends no expected revision for 0
    const h = headers();
    h.set('KV-Operation', 'DEL');
    const key = catalogKeys.host(host);
    try {
      const ack = await jetstream(this.nc).publish(`$KV.${CATALOG_BUCKET}.${key}`, new Uint8Array(0), { headers: h, expect: { lastSubjectSequence: expected } });
      return { revision: ack.seq };
    } catch (err) {
      if (!isWrongRevision(err)) throw err;
    }
    const e = await this.kv.get(key);
    return { current: e ? this.hostEntry(e.key, e.revision, e.operation === 'PUT' ? e.value : undefined, 'write over') : undefined };
  }

  /** Every change of a host record after `afterRevision` (a write, or a deletion with `record` undefined), in order. */
  async followHosts(afterRevision: number, onChange: (entry: HostRecordEntry) => void): Promise<{ stop(): void }> {
    const key = catalogKeys.allHosts;
    const iter = await this.kv.watch(afterRevision ? { key, resumeFromRevision: afterRevision + 1 } : { key });
    void (async () => {
      for await (const e of iter) {
        const entry = this.hostEntry(e.key, e.revision, e.operation === 'PUT' ? e.value : undefined, 'leave out');
        if (entry) onChange(entry);
      }
    })();
    return { stop: () => iter.stop() };
  }

  /**
   * A host key's entry; undefined for a key that is not a host's. A record not readable as the
   * host's is reported and, as `unreadable` says, left out (loading, following: it is not the
   * host, nor its deletion), or taken as a record of unknown content that a write goes over
   * (a write or deletion that found the key moved: an empty Heartbeat, not a deletion).
   */
  private hostEntry(key: string, revision: number, value: Uint8Array | undefined, unreadable: 'leave out' | 'write over'): HostRecordEntry | undefined {
    const host = catalogKeys.parseHost(key);
    if (!host) return undefined;
    if (value === undefined) return { host, revision, record: undefined };
    const read = readHostRecord(host, value);
    if ('record' in read) return { host, revision, record: read.record };
    this.onUnreadable({ key, revision, why: read.why });
    return unreadable === 'leave out' ? undefined : { host, revision, record: Heartbeat.create() };
  }
}

/**
 * A direct get of the last message of each subject (the subject-suffixed form),
 * DIRECT_GETS_IN_FLIGHT at a time, the replies on one subscription under this connection's
 * inbox prefix: a request per key through the client (a promise and a timer each) made a
 * 5,000-key read ~3x slower. `onMessage` gets each message found (not a subject without
 * one). Rejects on an error status, a refused subscription, a failed publish, and, as
 * BusInterrupted, on a disconnect or reconnect during it (the replies in flight are lost) or no
 * reply for DIRECT_GET_TIMEOUT_MS.
 */
function directGetsPipelined(nc: NatsConnection, stream: string, subjects: string[], onMessage: (m: Msg) => void): Promise<void> {
  if (subjects.length === 0) return Promise.resolve();
  // the connection's own prefix: an agent may subscribe to its own inbox only (nats-config.mjs)
  const inboxPrefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix || '_INBOX';
  const inbox = createInbox(inboxPrefix);
  return new Promise<void>((resolve, reject) => {
    let sent = 0;
    let answered = 0;
    let lastReply = Date.now();
    let finished = false;
    let sub: Subscription | undefined;
    let watchdog: ReturnType<typeof setInterval> | undefined;
    // a reconnect loses the replies in flight: the read is cut short at once, not after the watchdog
    // (a QueuedIterator at run time: stop() ends it and removes the listener)
    const status = nc.status() as AsyncIterable<Status> & { stop?: () => void };
    const done = (err?: unknown): void => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      status.stop?.();
      try {
        sub?.unsubscribe();
      } catch {
        // a closed connection has no subscription left to end
      }
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve();
    };
    // publish can throw (a draining or closed connection): the read fails, nothing escapes
    // into the client's message dispatch
    const send = (): boolean => {
      try {
        nc.publish(`$JS.API.DIRECT.GET.${stream}.${subjects[sent]}`, Empty, { reply: `${inbox}.${sent}` });
      } catch (err) {
        done(err);
        return false;
      }
      sent++;
      return true;
    };
    void (async () => {
      for await (const s of status) {
        if (s.type === 'disconnect' || s.type === 'reconnect') return done(new BusInterrupted(`NATS connection ${s.type === 'disconnect' ? 'lost' : 'reconnected'} during direct gets on ${stream}`));
      }
    })();
    try {
      sub = nc.subscribe(`${inbox}.*`, {
        callback: (err, m) => {
          if (finished) return;
          if (err) return done(err);
          lastReply = Date.now();
          // a message has its Nats-* headers, "no message" is status 404, anything else an error
          const code = m.headers ? m.headers.code : -1;
          if (code !== 0 && code !== 404) {
            const subject = subjects[Number(m.subject.slice(inbox.length + 1))];
            return done(new Error(`direct get of ${subject} on ${stream}: ${m.headers ? `${code} ${m.headers.description}` : 'a reply without headers'}`));
          }
          try {
            if (code === 0) onMessage(m);
          } catch (e) {
            return done(e);
          }
          if (++answered === subjects.length) return done();
          if (sent < subjects.length) send();
        },
      });
    } catch (err) {
      return done(err);
    }
    watchdog = setInterval(() => {
      if (Date.now() - lastReply > DIRECT_GET_TIMEOUT_MS) done(new BusInterrupted(`no reply to a direct get on ${stream} for ${DIRECT_GET_TIMEOUT_MS} ms`));
    }, 250);
    while (!finished && sent < Math.min(DIRECT_GETS_IN_FLIGHT, subjects.length)) if (!send()) break;
  });
}

/**
 * The bus did not answer (a timeout, no responders while JetStream starts again, a read cut
 * short by a reconnect) or is gone (a closed or draining connection): UNAVAILABLE, not a fault
 * of the request. Looks through the error's causes.
 */
function isBusUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    // the client's own "no server" errors (libs/errors), plus what only a JetStream read meets
    if (e instanceof BusInterrupted || isBusUnreachable(e) || e.name === 'JetStreamNotEnabled') return true;
    if (e.name === 'JetStreamStatusError' && [408, 503].includes((e as { code?: number }).code ?? 0)) return true;
  }
  return false;
}

function isWrongRevision(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error)?.message ?? '');
}
