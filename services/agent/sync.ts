// Full sync (BUS.md item 3): the whole runtime state of this host as HostSync chunks
// on cistern.sync.<host>, one sync id, chunk 0..n, last=true on the final one, each
// under ~512 KiB encoded. Sent at start, after every reconnect, and on ResyncRequest.
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { HostSync, ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Host, Pool, Volume } from '../../libs/proto/cistern/v1/storage.js';
import { subjects } from '../../libs/bus/subjects.js';
import type { Logger } from './log.js';

export const MAX_CHUNK_BYTES = 512 * 1024;
/** Room for sync_id, chunk, last, revision and per-item tags. */
const HEADER_ALLOWANCE = 256;

export interface Snapshot {
  host: Host;
  pools: Pool[];
  volumes: Volume[];
  revision: bigint;
}

/**
 * Splits a snapshot into HostSync chunks no larger than `maxBytes` encoded (a single
 * item bigger than that travels alone). Pools come first, then volumes, in order.
 */
export function buildSyncChunks(syncId: string, snap: Snapshot, maxBytes = MAX_CHUNK_BYTES): HostSync[] {
  const chunks: HostSync[] = [];
  const hostBytes = Host.encode(snap.host).finish().length + 8;
  let current = HostSync.create({ syncId, chunk: 0, host: snap.host, revision: snap.revision });
  let size = HEADER_ALLOWANCE + syncId.length + hostBytes;
  const startNew = () => {
    chunks.push(current);
    current = HostSync.create({ syncId, chunk: chunks.length, revision: snap.revision });
    size = HEADER_ALLOWANCE + syncId.length;
  };
  const add = (bytes: number, put: () => void) => {
    const itemSize = bytes + 6; // tag + length prefix
    const empty = current.pools.length === 0 && current.volumes.length === 0;
    if (!empty && size + itemSize > maxBytes) startNew();
    put();
    size += itemSize;
  };
  for (const pool of snap.pools) add(Pool.encode(pool).finish().length, () => current.pools.push(pool));
  for (const vol of snap.volumes) add(Volume.encode(vol).finish().length, () => current.volumes.push(vol));
  chunks.push(current);
  chunks[chunks.length - 1]!.last = true;
  return chunks;
}

/**
 * Publishes full syncs. Requests that arrive while one is being sent coalesce into
 * one more sync after it, so the last one always reflects the newest state.
 */
export class HostSyncer {
  private running: Promise<void> | undefined;
  private again = false;
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly host: string,
    private readonly snapshot: () => Snapshot,
    private readonly log: Logger,
  ) {}

  /** Answers ResyncRequest messages for this host (or for every host). */
  listen(): void {
    this.sub = this.nc.subscribe(subjects.resync);
    void (async () => {
      for await (const msg of this.sub!) {
        let req: ResyncRequest;
        try {
          req = ResyncRequest.decode(msg.data);
        } catch {
          continue;
        }
        if (req.host && req.host !== this.host && req.host !== `hosts/${this.host}`) continue;
        this.log.info('resync requested', { coordinator: req.coordinatorId });
        void this.request('requested');
      }
    })();
  }

  /** Sends a full sync soon; resolves when a sync that started after this call is sent. */
  request(reason: string): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.sendOnce(reason);
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async sendOnce(reason: string): Promise<void> {
    const syncId = randomUUID();
    const chunks = buildSyncChunks(syncId, this.snapshot());
    try {
      for (const chunk of chunks) this.nc.publish(subjects.sync(this.host), HostSync.encode(chunk).finish());
      await this.nc.flush();
      const last = chunks[chunks.length - 1]!;
      this.log.info('full sync sent', {
        reason,
        syncId,
        chunks: chunks.length,
        pools: chunks.reduce((n, c) => n + c.pools.length, 0),
        volumes: chunks.reduce((n, c) => n + c.volumes.length, 0),
        revision: last.revision,
      });
    } catch (err) {
      this.log.warn('full sync failed; it is sent again after the next reconnect', { reason, error: err });
    }
  }

  stop(): void {
    this.sub?.unsubscribe();
  }
}
