// Host records in the catalog bucket (key hosts.<id>, value Heartbeat = last known Host,
// boot id, interval), so that a restarted coordinator knows the fleet. A coordinator writes
// a record only over the revision of it that it has seen (compare-and-swap), so one that
// had not heard of a deletion yet (it marked the host offline a moment later) cannot write
// the host back: its write fails, it reads the deletion and forgets the host too. Every
// coordinator follows the records and forgets a host whose record is deleted.
import { FailedPreconditionError, UnavailableError } from '../../../libs/errors/errors.js';
import { Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type { HostRecordEntry } from '../../../libs/bus/catalog.js';
import type { Logger } from '../../../libs/log/logger.js';
import type { HostEntry } from './entry.js';

export interface HostStore {
  /** Every host's last recorded entry (deletions too: `record` undefined) and the revision read up to. */
  load(): Promise<{ entries: HostRecordEntry[]; revision: number }>;
  /**
   * Writes the record if the host's key is still at revision `expected` (0: never written):
   * the new revision, or the key's current last entry when it moved.
   */
  save(record: Heartbeat, expected: number): Promise<{ revision: number } | { current: HostRecordEntry | undefined }>;
  /**
   * Deletes the host's record if its key is still at revision `expected` (0: never written):
   * the revision of the deletion, or the key's current last entry when it moved.
   */
  remove(host: string, expected: number): Promise<{ revision: number } | { current: HostRecordEntry | undefined }>;
  /** Every change of a host record after `afterRevision`, in order (writes and deletions, this coordinator's own too). */
  follow?(afterRevision: number, onChange: (entry: HostRecordEntry) => void): Promise<{ stop(): void }>;
}

export interface HostRecordsHooks {
  log: Logger;
  /** The entry the registry holds for the host now: a write for an entry since forgotten stops. */
  entryOf(id: string): HostEntry | undefined;
  /** The host's record was deleted (here or by another coordinator): the registry forgets the host. */
  deleted(id: string): void;
}

/** How many times a write or deletion is tried again over a record that keeps moving. */
const CAS_ATTEMPTS = 10;

export class HostRecords {
  /** the revision of each host's record (key hosts.<id>) this coordinator has seen: its writes go over it */
  private readonly revisions = new Map<string, number>();
  private following: { stop(): void } | undefined;

  /** Without a store, nothing is recorded or loaded (a coordinator in tests). */
  constructor(
    private readonly store: HostStore | undefined,
    private readonly hooks: HostRecordsHooks,
  ) {}

  /** Hands every recorded host (deleted ones not) to `add`, then follows the records. */
  async load(add: (id: string, record: Heartbeat) => void): Promise<void> {
    const store = this.store;
    if (!store) return;
    const { entries, revision } = await store.load();
    for (const { host: id, revision: rev, record } of entries) {
      this.noteRevision(id, rev);
      if (record) add(id, record);
    }
    this.following?.stop();
    this.following = await store.follow?.(revision, (e) => this.applyRecord(e));
  }

  stop(): void {
    this.following?.stop();
    this.following = undefined;
  }

  /**
   * A host record as the store holds it now (from following the store, or read after a write
   * that found the key moved). A deletion this coordinator has not seen yet: it forgets the host.
   */
  applyRecord(e: HostRecordEntry): void {
    if (e.revision <= (this.revisions.get(e.host) ?? 0)) return; // seen already (this coordinator's own write or deletion)
    this.revisions.set(e.host, e.revision);
    if (!e.record) this.hooks.deleted(e.host);
  }

  private noteRevision(id: string, revision: number): void {
    if (revision > (this.revisions.get(id) ?? 0)) this.revisions.set(id, revision);
  }

  /**
   * Deletes the host's record over the revision this coordinator has seen: when the record
   * moved (another coordinator recorded the host meanwhile), it is read again, and a host it
   * says online is not deleted (FAILED_PRECONDITION, nothing changed).
   */
  async remove(id: string): Promise<void> {
    const store = this.store;
    if (!store) return;
    for (let attempt = 0; ; attempt++) {
      // (a write of this coordinator's still in flight fails if it comes after: it expects an older revision)
      const result = await store.remove(id, this.revisions.get(id) ?? 0);
      if ('revision' in result) {
        this.noteRevision(id, result.revision);
        return;
      }
      const current = result.current;
      if (current) this.noteRevision(id, current.revision);
      else this.revisions.delete(id); // purged: no entry at all
      if (current?.record?.host?.online) {
        throw new FailedPreconditionError(
          `host '${id}' is online in the catalog: another coordinator recorded it online while this deletion was decided; its agent may be running: stop it first, then retry`,
          { host: id },
        );
      }
      if (attempt >= CAS_ATTEMPTS - 1) throw new UnavailableError(`the record of host '${id}' kept changing while it was deleted; retry`, { host: id });
    }
  }

  /** Records the host as the registry holds it, in the background; a failure is logged. */
  persist(entry: HostEntry): void {
    const store = this.store;
    if (!store) return;
    const id = entry.host.hostId;
    this.write(store, id, entry).catch((err) => this.hooks.log.warn('could not record host in the catalog', { host: id, err }));
  }

  /**
   * Records the host as this coordinator sees it now, over the revision of its record this
   * coordinator has seen. When the record moved: another write (another coordinator's, or
   * one of this coordinator's own still in flight) is taken as seen and written over with
   * the host as this coordinator sees it then; a deletion is not: the host is forgotten here
   * too, and not written back.
   */
  private async write(store: HostStore, id: string, entry: HostEntry): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (this.hooks.entryOf(id) !== entry) return; // deleted meanwhile
      const record = Heartbeat.create({ host: entry.host, bootId: entry.bootId, intervalMs: entry.intervalMs });
      const result = await store.save(record, this.revisions.get(id) ?? 0);
      if ('revision' in result) {
        this.noteRevision(id, result.revision);
        return;
      }
      const current = result.current;
      if (!current) {
        this.revisions.delete(id); // the key has no entry at all (purged): written as new
        continue;
      }
      this.noteRevision(id, current.revision);
      if (!current.record) {
        this.hooks.deleted(id);
        return;
      }
    }
    throw new Error('the host record kept changing under concurrent writes');
  }
}
