// Shared by the issue 6 suites (events, long operations, faults): gRPC codes, a
// WatchEvents follower, dir pool and volume shorthands, a file with real data.
import { status, type ServiceError } from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  EventKind,
  PoolType,
  type Event,
  type StorageServiceClient,
  type WatchEventsRequest,
} from '../../libs/proto/cistern/v1/storage.js';
import { outcomeOf, type Stack } from '../support/index.js';

/** How a call ended (test/support outcomeOf, under the name these tests use). */
export const grpcCode = outcomeOf;

export { expectCode } from '../support/grpc-expect.js';

export interface Watcher {
  events: Event[];
  /** resolves once the server has positioned the reader (initial metadata) */
  ready: Promise<void>;
  cancel(): void;
  failure(): ServiceError | undefined;
  ended(): boolean;
}

/** Opens WatchEvents; collects events until cancelled. */
export function watch(client: StorageServiceClient, request: Partial<WatchEventsRequest>): Watcher {
  const events: Event[] = [];
  const call = client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: false, ...request });
  let failure: ServiceError | undefined;
  let ended = false;
  call.on('data', (e: Event) => events.push(e));
  call.on('error', (e: ServiceError) => {
    ended = true;
    if (e.code !== status.CANCELLED) failure = e;
  });
  call.on('end', () => (ended = true));
  const ready = new Promise<void>((resolve, reject) => {
    call.once('metadata', () => resolve());
    call.once('error', reject);
  });
  return { events, ready, cancel: () => call.cancel(), failure: () => failure, ended: () => ended };
}

/** A dir pool's structured definition; `uuid` empty: the coordinator makes one. */
export const dirPool = (name: string, path: string, uuid = '') => ({
  name,
  type: PoolType.POOL_TYPE_DIR,
  uuid,
  target: { path, permissions: undefined },
  source: undefined,
  features: undefined,
  mountOptions: [],
});

export async function startDirPool(stack: Stack, host: string, name: string, path: string): Promise<void> {
  await stack.api.createPool({ host, definition: dirPool(name, path), xml: '', build: true, buildFlags: undefined, requestId: '' });
}

export function volumeXml(name: string, capacity: string, allocation?: string): string {
  return `<volume><name>${name}</name><capacity>${capacity}</capacity>${allocation !== undefined ? `<allocation>${allocation}</allocation>` : ''}<target><format type='raw'/></target></volume>`;
}

export function createVolume(stack: Stack, parent: string, name: string, capacity: string, opts: { allocation?: string; requestId?: string; deadlineMs?: number } = {}) {
  return stack.api.createVolume(
    { parent, definition: undefined, xml: volumeXml(name, capacity, opts.allocation), preallocMetadata: false, requestId: opts.requestId ?? '', validate: false },
    opts.deadlineMs ? { deadlineMs: opts.deadlineMs } : undefined,
  );
}

/** Fills `path` (an existing volume file) with `mib` MiB of random, incompressible data. */
export function fillWithData(path: string, mib: number): void {
  const block = randomBytes(4 * 1024 * 1024);
  const fd = openSync(path, 'r+');
  try {
    for (let at = 0; at < mib; at += 4) writeSync(fd, block, 0, block.length, at * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
}

export const kindName = (e: Event): string => EventKind[e.kind] ?? String(e.kind);
