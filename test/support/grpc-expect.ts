// Helpers for tests that call the gRPC API directly: a failure's code and message, and a
// WatchEvents stream collected into an array.
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import type { Event, StorageServiceClient, WatchEventsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { outcomeOf } from './volume-data.js';

/** Expects `p` to fail with `code` (and a message matching `pattern`); returns the message. */
export async function expectCode(p: Promise<unknown>, code: status, pattern?: RegExp): Promise<string> {
  const r = await outcomeOf(p);
  expect(status[r.code], r.message).to.equal(status[code]);
  if (pattern) expect(r.message).to.match(pattern);
  return r.message;
}

export interface EventWatch {
  events: Event[];
  /** resolves once the server has positioned the stream (initial metadata) */
  ready: Promise<void>;
  call: ReturnType<StorageServiceClient['watchEvents']>;
  /** the stream's failure, if it failed other than by our cancel */
  failure(): ServiceError | undefined;
}

/** Opens WatchEvents and collects what it streams. */
export function watchEvents(client: StorageServiceClient, request: Partial<WatchEventsRequest>): EventWatch {
  const events: Event[] = [];
  const call = client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: false, ...request });
  let failure: ServiceError | undefined;
  call.on('data', (e: Event) => events.push(e));
  call.on('error', (e: ServiceError) => {
    if (e.code !== status.CANCELLED) failure = e;
  });
  const ready = new Promise<void>((resolve, reject) => {
    call.once('metadata', () => resolve());
    call.once('error', reject);
  });
  return { events, ready, call, failure: () => failure };
}
