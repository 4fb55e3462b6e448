// What every handler gets: the process's shared services and the call's own context.
import type { Metadata } from '@grpc/grpc-js';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Catalog } from '../../libs/bus/catalog.js';
import type { EventPublisher } from '../../libs/bus/events.js';
import type { FleetCache } from './cache.js';
import type { HostRegistry } from './hosts.js';
import type { Logger } from '../../libs/log/logger.js';
import type { RequestResults } from './request-results.js';
import type { SchemaValidator } from './schema-validator.js';
import type { SecretStore } from './secrets/store.js';
import type { CatalogWatermark } from './catalog-watermark.js';

export interface CoordinatorServices {
  nc: NatsConnection;
  cache: FleetCache;
  hosts: HostRegistry;
  catalog: Catalog;
  publisher: EventPublisher;
  log: Logger;
  coordinatorId: string;
  /** How long an agent may take for one operation (default 1 hour: builds and wipes are long). */
  agentTimeoutMs: number;
  /** How long an upload or download client may be idle before its call ends (DEADLINE_EXCEEDED). */
  streamIdleMs: number;
  /** How long a mutating call waits for its events to reach the cache before answering anyway. */
  applyTimeoutMs: number;
  /** Responses of calls with a request id (idempotent retries); absent in unit tests. */
  results?: RequestResults;
  /** Secret definitions and sealed values (docs/security.md); absent in unit tests. */
  secrets?: SecretStore;
  /** Checks XML against libvirt's schemas (requests with validate); absent in unit tests: the default. */
  schemas?: SchemaValidator;
  /** How far the catalog watch has read (define-conflicts.ts); absent in unit tests: defines are not re-checked. */
  catalogWatermark?: CatalogWatermark;
}

/** One gRPC call, as the handlers see it. The auth seam (docs/security.md) fills `principal`. */
export interface CallContext {
  method: string;
  principal: string;
  metadata: Metadata;
  peer: string;
  /** aborts when the client cancels or the deadline passes */
  signal: AbortSignal;
  log: Logger;
  /** request id from the request message (idempotency keys, event correlation) */
  requestId: string;
  /** what the audit line names, for calls whose first request message does not (UploadVolume's header) */
  resource?: string;
}
