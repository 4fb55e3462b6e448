// Composition root: bus, catalog, host registry, cache, event follower, gRPC server.
// Start order: open catalog, ensure the stream, follow events from the stream's current
// end, load the catalog and hosts, ask every agent for a full sync and wait (bounded)
// for the hosts known to be online, then serve.
import { randomBytes } from 'node:crypto';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Catalog } from '../../libs/bus/catalog.js';
import { connectBus, watchBusStatus } from '../../libs/bus/connect.js';
import { CLIENT_IDLE_TIMEOUT_MS } from './handlers/streams.js';
import { changeDedupeId, DEFAULT_EVENT_MAX_BYTES, ensureEventStream, EventPublisher, namedChangeDedupeId } from '../../libs/bus/events.js';
import { CATALOG_BUCKET, subjects } from '../../libs/bus/subjects.js';
import { ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { openGuard, type CallGuard } from './call-guard.js';
import { FleetCache } from './cache.js';
import { CatalogWatermark } from './catalog-watermark.js';
import type { CoordinatorServices } from './context.js';
import { natsEventSource } from './event-log.js';
import { feedCache } from './cache-feed.js';
import { watchStreamIdentity } from './stream-identity.js';
import { followHeartbeats } from './heartbeats.js';
import { HostRegistry } from './hosts.js';
import type { HostStore } from './hosts/records.js';
import type { Logger } from '../../libs/log/logger.js';
import { SchemaValidator } from './schema-validator.js';
import { SecretStore } from './secrets/store.js';
import { serveAgentSecretRequests } from './secrets/agent-requests.js';
import { startGrpcServer, type GrpcServer } from './server.js';
import type { ServiceHealth } from './service-health.js';
import { DEFAULT_REQUEST_STORE_MAX_BYTES, RequestResults } from './request-results.js';
import { withinJetStreamStorage } from './store-limits.js';
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import { SyncIntake } from './sync-intake.js';
import { lostEventDedupeId, publishUntilStored } from './reconcile.js';
import { StreamBaselines } from './stream-baseline.js';

export interface CoordinatorOptions {
  natsUrl: string;
  listen: string;
  log: Logger;
  eventMaxAgeSeconds?: number;
  /** Event log retention by size (bytes) and count; default 1 GiB, unlimited. */
  eventMaxBytes?: number;
  eventMaxEvents?: number;
  /** How long responses of calls with a request id are kept for retries (default 24 h). */
  requestTtlSeconds?: number;
  /** Room for those responses in bytes (default 1 GiB); the oldest go first. */
  requestStoreMaxBytes?: number;
  syncWaitMs?: number;
  /** How long an upload or download client may be idle (default CLIENT_IDLE_TIMEOUT_MS). */
  streamIdleMs?: number;
  /** Server keepalive pings (server.ts); default 30 s. */
  keepaliveMs?: number;
  /** Connection limits on the gRPC port (connection-gate.ts). */
  maxConnectionsPerAddress?: number;
  maxConnections?: number;
  connectionIdleMs?: number;
  /** A TLS handshake not finished this long is closed (handshake-bound.ts). */
  tlsHandshakeTimeoutMs?: number;
  guard?: CallGuard;
  /** How long a call waits for its agent's answer (default 1 h). */
  agentTimeoutMs?: number;
  /** How long a graceful stop lets running calls finish (default 5 s, server.ts). */
  stopGraceMs?: number;
  /** gRPC transport (TLS); default plaintext. */
  serverCredentials?: ServerCredentials;
  natsUser?: string;
  natsPass?: string;
  /** AES-256 key for secret values; without it SetSecretValue is FAILED_PRECONDITION. */
  secretKey?: Buffer;
  /** libvirt's RELAX NG schemas, for requests with validate (default /usr/share/libvirt/schemas). */
  schemaDir?: string;
  /**
   * Told once when the event stream or the catalog bucket is deleted or made again under this
   * coordinator (stream-identity.ts): what it has read of them no longer holds.
   */
  onEventStreamReplaced?: (why: string) => void;
}

export interface RunningCoordinator {
  services: CoordinatorServices;
  port: number;
  stop(): Promise<void>;
}

function hostStore(catalog: Catalog): HostStore {
  return {
    load: () => catalog.hostRecords(),
    save: (record, expected) => catalog.saveHost(record, expected),
    remove: (host, expected) => catalog.deleteHost(host, expected),
    follow: (after, onChange) => catalog.followHosts(after, onChange),
  };
}

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  const log = options.log;
  const coordinatorId = `coord-${randomBytes(4).toString('hex')}`;
  // how long each step of the start took, logged when serving: a restart's time to serve
  // is a figure operators watch (docs/benchmarks.md, resync)
  const startedIn: Record<string, number> = {};
  let stepStart = performance.now();
  const stepDone = (step: string): void => {
    const now = performance.now();
    startedIn[step] = Math.round(now - stepStart);
    stepStart = now;
  };
  const nc: NatsConnection = await connectBus({
    servers: options.natsUrl,
    name: `cistern-coordinator ${coordinatorId}`,
    user: options.natsUser,
    pass: options.natsPass,
    log,
  });
  log.info('connected to NATS', { nats: options.natsUrl, coordinatorId });
  stepDone('natsMs');
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    // JetStream may not be ready yet (nats-server just started, cluster electing): retry
    const catalog = await retrying(log, 'open the catalog bucket', () =>
      Catalog.open(nc, {
        onUnreadable: (e) => log.warn('left out a catalog entry that is not what Cistern writes (written by hand or another tool?)', { key: e.key, revision: e.revision, why: e.why }),
      }),
    );
    await retrying(log, 'set up the event stream', () =>
      withinJetStreamStorage('--event-max-bytes', options.eventMaxBytes ?? DEFAULT_EVENT_MAX_BYTES, () =>
        ensureEventStream(nc, { maxAgeSeconds: options.eventMaxAgeSeconds, maxBytes: options.eventMaxBytes, maxMessages: options.eventMaxEvents }, 'apply'),
      ),
    );
    const results = await retrying(log, 'open the request results bucket', () =>
      withinJetStreamStorage('--request-store-max-bytes', options.requestStoreMaxBytes ?? DEFAULT_REQUEST_STORE_MAX_BYTES, () =>
        RequestResults.open(nc, log, options.requestTtlSeconds, options.requestStoreMaxBytes),
      ),
    );
    const secrets = await retrying(log, 'open the secrets bucket', () => SecretStore.open(nc, options.secretKey));
    stepDone('bucketsMs');
    // a coordinator's events go under the coordinator origin (cistern.events.H.<pool>.c), where
    // no agent may publish: readers take its kinds from there only (untrustedEvent)
    const publisher = new EventPublisher(nc, undefined, changeDedupeId, 'coordinator');
    // host events: every coordinator publishes each one, and its request id names the change
    const hostEventPublisher = new EventPublisher(nc, undefined, namedChangeDedupeId, 'coordinator');
    const cache = new FleetCache();
    // a fleet-wide ask (host '') is answered by every agent within a short random delay
    const resync = (host = ''): void => {
      nc.publish(subjects.resync, ResyncRequest.encode({ coordinatorId, host }).finish());
      if (!host) hosts.askedFleet();
    };
    let intake: SyncIntake | undefined;
    // a returning host this coordinator never synced is reconciled against its events in the stream
    const baselines = new StreamBaselines(natsEventSource(nc, log, 'host baseline'));
    const hosts: HostRegistry = new HostRegistry({
      store: hostStore(catalog),
      publish: (event) => hostEventPublisher.publishNow(event),
      log,
      askSync: (host) => resync(host),
      syncPending: (host) => intake?.pending(host) ?? false,
      // a deleted host: its runtime state, and its sync chunks still queued, go with it (its
      // catalog entries follow the catalog)
      onForget: (host) => {
        intake?.dropHost(host);
        cache.clearHost(host);
      },
    });
    intake = new SyncIntake({
      cache,
      hosts,
      // a publisher of their own: a failure is theirs to retry, not thrown at a call sharing one
      publish: (events) =>
        void publishUntilStored(
          (batch) => {
            // every coordinator publishes a sync's reconcile events: `reconcile-SYNC` names them
            // (those standing for an agent's events lost are named by the lost event, reconcile.ts)
            const own = new EventPublisher(nc, undefined, namedChangeDedupeId, 'coordinator');
            for (const e of batch) own.publish(e, lostEventDedupeId(e));
            return own.flush();
          },
          events,
          log,
          { stopped: () => nc.isClosed() },
        ),
      log,
      askSync: (host) => resync(host),
      streamBaseline: (host, upTo) => baselines.read(host, upTo),
    });
    const catalogWatermark = new CatalogWatermark();
    const svc: CoordinatorServices = {
      nc,
      cache,
      hosts,
      catalog,
      publisher,
      log,
      coordinatorId,
      agentTimeoutMs: options.agentTimeoutMs ?? 3_600_000,
      streamIdleMs: options.streamIdleMs ?? CLIENT_IDLE_TIMEOUT_MS,
      applyTimeoutMs: 10_000,
      results,
      secrets,
      schemas: new SchemaValidator({ schemaDir: options.schemaDir }),
      catalogWatermark,
    };

    // the stream this coordinator reads: told when another one replaces it
    const identity = await watchStreamIdentity(nc, log, (why) => options.onEventStreamReplaced?.(why), { readUpTo: () => cache.appliedSequence });
    cleanups.push(() => identity.stop());
    // the catalog's bucket likewise: its revisions start again in one made again
    const catalogIdentity = await watchStreamIdentity(nc, log, (why) => options.onEventStreamReplaced?.(why), {
      stream: `KV_${CATALOG_BUCKET}`,
      what: 'the catalog bucket',
      readUpTo: () => BigInt(catalogWatermark.value),
    });
    cleanups.push(() => catalogIdentity.stop());
    // 1-2. events from the stream's current end (everything before is covered by the syncs), then the catalog
    cleanups.push(...(await feedCache({ nc, cache, catalog, catalogWatermark, log, resyncFleet: () => resync() })));
    stepDone('catalogMs');

    // 3. hosts: the recorded fleet, heartbeats, syncs
    await hosts.load();
    stepDone('hostsMs');
    const subs: Subscription[] = [];
    subs.push(followHeartbeats(nc, hosts, log));
    // After a reconnect the fleet is asked for its syncs again (heartbeats, events and syncs
    // may have been missed), once both connections are back: the answers come on the sync
    // connection, and a sync sent while it was down (one the main connection's reconnect asked
    // for, or an agent's own after its events were refused) is lost, not queued.
    let mainUp = true;
    let syncsUp = true;
    const resyncOnceBothUp = (): void => {
      if (mainUp && syncsUp) resync();
    };
    // syncs, on a connection of their own so that heartbeats never queue behind a fleet's
    // worth of sync bytes: noted on arrival (liveness), applied in turn (sync-intake.ts)
    const syncIntake = intake;
    const syncNc = await connectBus({
      servers: options.natsUrl,
      name: `cistern-coordinator ${coordinatorId} syncs`,
      user: options.natsUser,
      pass: options.natsPass,
      log,
    });
    cleanups.push(async () => {
      await syncNc.drain().catch(() => syncNc.close());
    });
    subs.push(syncIntake.subscribe(syncNc));
    cleanups.push(() => syncIntake.stop());
    watchBusStatus(syncNc, log, {
      onReconnect: () => {
        syncsUp = true;
        const cut = syncIntake.connectionLost();
        log.warn('sync connection reconnected; asking the hosts again', { cutHosts: cut.length });
        resyncOnceBothUp();
      },
      onDisconnect: () => {
        syncsUp = false;
        log.warn('sync connection to NATS lost');
      },
    });
    await syncNc.flush();
    // agents starting a CHAP pool on their own (autostart) ask for its secret here
    subs.push(serveAgentSecretRequests(nc, cache, secrets, log));
    cleanups.push(() => subs.forEach((s) => s.unsubscribe()));
    hosts.startTimer();
    cleanups.push(() => hosts.stop());

    // 4. ask every agent for its state; wait for those known online
    await nc.flush();
    resync();
    stepDone('subscribeMs');
    await hosts.waitForSyncs(options.syncWaitMs ?? 3000);
    stepDone('syncsMs');

    let grpcHealth: ServiceHealth | undefined;
    // reconnects: heartbeats may have been missed; ask again for a full picture
    watchBusStatus(nc, log, {
      onReconnect: () => {
        log.info('reconnected to NATS; asking agents to resync');
        mainUp = true;
        grpcHealth?.bus(true);
        hosts.busReconnected();
        resyncOnceBothUp();
      },
      onDisconnect: () => {
        mainUp = false;
        grpcHealth?.bus(false);
        log.warn('disconnected from NATS; hosts are not declared offline while this coordinator cannot hear them');
        hosts.busDisconnected();
      },
    });

    // 5. serve
    const grpc: GrpcServer = await startGrpcServer(svc, options.guard ?? openGuard(log), options.listen, options.serverCredentials, {
      keepaliveMs: options.keepaliveMs,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      maxConnections: options.maxConnections,
      connectionIdleMs: options.connectionIdleMs,
      tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs,
    });
    // StorageService is SERVING only while the bus is up (service-health.ts)
    grpcHealth = grpc.health;
    grpcHealth.bus(mainUp);
    grpcHealth.start();
    stepDone('grpcMs');
    log.info('coordinator serving', {
      listen: options.listen,
      port: grpc.port,
      hosts: hosts.list().length,
      sinceProcessStartMs: Math.round(process.uptime() * 1000),
      startedIn,
    });

    let stopping: Promise<void> | undefined;
    return {
      services: svc,
      port: grpc.port,
      stop: () =>
        (stopping ??= (async () => {
          log.info('coordinator stopping');
          await grpc.stop(options.stopGraceMs);
          for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
          await nc.drain().catch(() => nc.close());
          log.info('coordinator stopped');
        })()),
    };
  } catch (err) {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    await nc.close().catch(() => undefined);
    throw err;
  }
}

/** Runs `fn` until it succeeds, for at most `limitMs`, backing off between attempts. */
async function retrying<T>(log: Logger, what: string, fn: () => Promise<T>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      // a setting NATS refuses (store-limits.ts) stays refused: no use waiting for it
      if (err instanceof InvalidArgumentError || Date.now() + delay > deadline) throw err;
      log.warn(`could not ${what}; retrying`, { err: (err as Error)?.message, retryInMs: delay });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
