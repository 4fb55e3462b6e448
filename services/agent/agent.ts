// Wiring: connect to NATS, make sure the event stream exists, open the catalog, serve
// this host's operations, heartbeat, full syncs, autostart.
import { hostname } from 'node:os';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Host } from '../../libs/proto/cistern/v1/storage.js';
import { connectBus, watchBusStatus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { serveAgent, type AgentOp } from '../../libs/bus/agent-rpc.js';
import '../../libs/backends/index.js'; // registers every backend
import { registeredBackends } from '../../libs/backends/registry.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { setpriv } from '../../libs/backends/die-with-parent.js';
import { asCisternError, FailedPreconditionError, UnimplementedError } from '../../libs/errors/errors.js';
import { agentInboxPrefix, CATALOG_BUCKET, EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import { checkHostId } from '../../libs/api/names.js';
import { hostName } from '../../libs/api/resource-names.js';
import { AgentState } from './state.js';
import { LockTable } from './locks.js';
import { LostEvents, OrderedEvents } from './events.js';
import { defaultResyncSpreadMs, HostSyncer } from './sync.js';
import { HeartbeatSender, newBootId } from './heartbeat.js';
import { autostartAtBoot, restorePoolsRunningBefore } from './boot-pools.js';
import { attachSignal, backendFor, poolTypeName, type AgentContext } from './context.js';
import { CreateJournal, cleanupInterruptedCreates } from './journal.js';
import { BuildJournal, cleanupInterruptedBuilds } from './build-journal.js';
import { GrowJournal, undoInterruptedGrows } from './grow-journal.js';
import { PoolRoots } from './pool-roots.js';
import { RootLock } from './root-lock.js';
import { ResizeIntents } from './resize-intents.js';
import { CHILD_TAG, childTag, killOrphans } from './orphans.js';
import { sweepSecretDirs } from '../../libs/backends/secret-dirs.js';
import { madeByCoordinator } from './coordinator-made.js';
import { RequestCache } from './request-cache.js';
import { UploadRequests } from './upload-requests.js';
import { undefinePool } from './undefine.js';
import { PersistentRevisions } from './revisions.js';
import type { Logger } from '../../libs/log/logger.js';
import * as pools from './handlers/pool-ops.js';
import * as volumes from './handlers/volume-ops.js';
import { refreshVolume } from './handlers/volume-refresh.js';
import { resolveDevicePath } from './handlers/device-path.js';
import { explainNoSpace } from './no-space.js';
import * as streams from './handlers/streams.js';

export interface AgentOptions {
  natsUrl: string | string[];
  hostId: string;
  root: string;
  heartbeatMs: number;
  log: Logger;
  /** NATS credentials of this agent (scripts/nats-config.mjs makes one user per host). */
  natsUser?: string;
  natsPass?: string;
  /** Answers to a fleet-wide ResyncRequest wait a random delay below this (ms); default from the heartbeat interval (sync.ts defaultResyncSpreadMs). */
  resyncSpreadMs?: number;
  /** Where dir, fs and netfs pools may be, besides `root` (pool-roots.ts); none: anywhere. */
  poolRoots?: string[];
}

/** How long the first heartbeat waits for autostart pools. */
const AUTOSTART_WAIT_MS = 30_000;
/** How long a starting agent waits for another agent of its host id to answer its ping. */
export const PEER_PING_MS = 2_000;

/** Another agent answered for this host id: this one does not start (cistern-agent exits 2). */
export class HostIdTakenError extends FailedPreconditionError {}

const pong = (host: string, bootId: bigint): AgentReply =>
  AgentReply.create({ result: { $case: 'pong', value: { hostId: host, hostname: hostname(), bootId } } });

/**
 * One host id, one agent: two would serve the host's requests from two roots, and the
 * coordinator would see the host restart on every heartbeat. Asked before this agent touches
 * the host's pools or takes requests; an answer means another agent serves the host id.
 */
export async function refuseIfServed(nc: NatsConnection, host: string, log: Logger, timeoutMs = PEER_PING_MS): Promise<void> {
  const ping = AgentRequest.create({ principal: 'agent', op: { $case: 'ping', value: {} } });
  let msg: Msg;
  try {
    msg = await nc.request(subjects.agentOp(host, 'Ping'), AgentRequest.encode(ping).finish(), { timeout: timeoutMs });
  } catch (err) {
    if ((err as { isNoResponders?: () => boolean }).isNoResponders?.()) return; // no one serves it
    // something takes the host's requests without answering (a hung agent, a monitor), or this
    // NATS user may not ask: no proof of another agent; the coordinator reports two that heartbeat
    log.warn('could not tell whether another agent serves this host id; starting', { error: err });
    return;
  }
  const other = AgentReply.decode(msg.data).result;
  const who = other?.$case === 'pong' ? ` (on ${other.value.hostname || 'an unnamed machine'}, boot id ${other.value.bootId})` : '';
  throw new HostIdTakenError(`another agent already serves host '${host}'${who}: stop it first, or give this agent another --host-id`, { host });
}

/**
 * Answers pings for the host until serve() takes its requests (restoring and autostarting
 * pools may take a while before that): an agent started meanwhile with the same host id is
 * refused too. In serve()'s queue group, so a ping gets one answer (from either).
 */
function answerPings(nc: NatsConnection, host: string, bootId: bigint): Subscription {
  return nc.subscribe(subjects.agentOp(host, 'Ping'), {
    queue: `agent-${host}`,
    callback: (_err, msg) => {
      if (msg.reply) msg.respond(AgentReply.encode(pong(host, bootId)).finish());
    },
  });
}

/** Routes one operation to its handler. */
export async function dispatch(ctx: AgentContext, op: AgentOp, request: AgentRequest): Promise<AgentReply> {
  const o = request.op!;
  switch (o.$case) {
    case 'ping':
      return pong(ctx.host, ctx.bootId ?? 0n);
    case 'createPool':
      return pools.createPool(ctx, request, o.value);
    case 'startPool':
      return pools.startPool(ctx, request, o.value);
    case 'buildPool':
      return pools.buildPool(ctx, request, o.value);
    case 'stopPool':
      return pools.stopPool(ctx, request, o.value);
    case 'deletePool':
      return pools.deletePool(ctx, request, o.value);
    case 'refreshPool':
      return pools.refreshPool(ctx, request, o.value);
    case 'findPoolSources':
      return pools.findPoolSources(ctx, request, o.value);
    case 'getPoolCapabilities':
      return pools.getPoolCapabilities(ctx);
    case 'undefinePool':
      return undefinePool(ctx, request, o.value);
    case 'definePool':
    case 'setPoolAutostart':
      return pools.mirrorCatalogFlags(ctx, request);
    case 'createVolume':
      return volumes.createVolume(ctx, request, o.value);
    case 'cloneVolume':
      return volumes.cloneVolume(ctx, request, o.value);
    case 'deleteVolume':
      return volumes.deleteVolume(ctx, request, o.value);
    case 'wipeVolume':
      return volumes.wipeVolume(ctx, request, o.value);
    case 'resizeVolume':
      return volumes.resizeVolume(ctx, request, o.value);
    case 'uploadBegin':
      return streams.uploadBegin(ctx, request, o.value);
    case 'downloadBegin':
      return streams.downloadBegin(ctx, request, o.value);
    case 'refreshVolume':
      return refreshVolume(ctx, request, o.value);
    case 'resolveDevicePath':
      return resolveDevicePath(ctx, o.value);
    default:
      throw new UnimplementedError(`operation '${op}' is not served by the agent`);
  }
}

async function agentVersion(): Promise<string> {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(await readFile(fileURLToPath(new URL(rel, import.meta.url)), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cistern' && pkg.version) return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

export class Agent {
  private inFlight = new Set<Promise<unknown>>();
  private readonly requests = new RequestCache();
  private sub: Subscription | undefined;
  private stopping = false;

  private constructor(
    readonly nc: NatsConnection,
    readonly ctx: AgentContext,
    private readonly syncer: HostSyncer,
    private readonly heartbeat: HeartbeatSender,
    /** this agent's version, named when a newer coordinator sends an operation it does not know */
    private readonly version: string,
    private readonly rootLock: RootLock,
  ) {}

  static async start(opts: AgentOptions): Promise<Agent> {
    const host = checkHostId(opts.hostId, '--host-id');
    const log = opts.log;
    await mkdir(opts.root, { recursive: true });
    // before anything reads or changes what the root holds, and before this agent connects
    const rootLock = await RootLock.take(opts.root, host, log);
    const version = await agentVersion();
    let nc: NatsConnection | undefined;
    try {
      nc = await connectBus({
        servers: opts.natsUrl,
        name: `cistern-agent-${host}`,
        user: opts.natsUser,
        pass: opts.natsPass,
        inboxPrefix: agentInboxPrefix(host),
        log,
      });
      log.info('connected to NATS', { server: nc.getServer() });
      await refuseIfServed(nc, host, log);
    } catch (err) {
      await nc?.close();
      rootLock.release();
      throw err;
    }
    const bootId = newBootId();
    const pings = answerPings(nc, host, bootId);
    // Only now, with no other agent of this host running: what an earlier run left running
    // dies before anything (the journal cleanup below first) touches what it may still write.
    await killOrphans(host, log);
    // a passphrase or CHAP password file a killed run left for its qemu-img (secret-dirs.ts)
    const swept = await sweepSecretDirs();
    if (swept.length > 0) log.info('removed secret files an agent that is gone left for its tools', { dirs: swept });
    if (!setpriv()) log.warn('setpriv (util-linux) not found: a command running when this agent is killed outright runs on until its next start');
    const runner = new ExecRunner({ tagEnv: { [CHILD_TAG]: childTag(host) } });
    await madeByCoordinator(`the event stream ${EVENT_STREAM}`, () => ensureEventStream(nc), log);
    const catalog = await madeByCoordinator(
      `the catalog bucket ${CATALOG_BUCKET}`,
      () =>
        Catalog.open(nc, {
          onUnreadable: (e) => log.warn('left out a catalog entry that is not what Cistern writes (written by hand or another tool?)', { key: e.key, revision: e.revision, why: e.why }),
        }),
      log,
    );
    const state = new AgentState(host, PersistentRevisions.open(opts.root));
    const journal = await CreateJournal.open(opts.root);
    const builds = await BuildJournal.open(opts.root);
    const grows = await GrowJournal.open(opts.root);
    // the next full sync carries them (flushEvents asks for one), so coordinators publish their state
    const lost = new LostEvents();
    const ctx: AgentContext = {
      host,
      state,
      locks: new LockTable(),
      events: new OrderedEvents(new EventPublisher(nc, (event) => lost.note(event))),
      runner,
      log,
      nc,
      journal,
      builds,
      grows,
      resizeIntents: ResizeIntents.open(opts.root),
      uploads: new UploadRequests(),
      bootId,
      catalog,
    };
    const poolRoots = PoolRoots.of(opts.poolRoots ?? [], opts.root);
    if (poolRoots) ctx.poolRoots = poolRoots;
    // what a pool build or a create or clone killed mid-way left goes before any pool starts
    await cleanupInterruptedBuilds(builds, (pool) => backendFor(ctx, pool.type), runner, log);
    await cleanupInterruptedCreates(journal, (pool) => backendFor(ctx, pool.type), runner, log);
    // and the blocks an allocating grow killed mid-way left past a volume's end
    await undoInterruptedGrows(grows, (pool) => backendFor(ctx, pool.type), runner, log);
    // the pools running when this agent stopped, still up, stay running
    const restore = restorePoolsRunningBefore(ctx, opts.root, catalog);
    await Promise.race([restore, new Promise((resolve) => setTimeout(resolve, AUTOSTART_WAIT_MS).unref())]);
    const hostInfo = (): Host =>
      Host.create({
        name: hostName(host),
        hostId: host,
        hostname: hostname(),
        agentVersion: version,
        poolTypes: registeredBackends().map((b) => b.type),
        online: true,
        lastSeen: new Date(),
        poolCount: state.pools.size,
      });
    const syncer = new HostSyncer(
      nc,
      host,
      () => ({ host: hostInfo(), bootId, ...state.snapshot() }),
      log,
      opts.resyncSpreadMs ?? defaultResyncSpreadMs(opts.heartbeatMs),
      lost,
    );
    ctx.requestSync = (reason) => void syncer.request(reason);
    const heartbeat = new HeartbeatSender(nc, host, bootId, opts.heartbeatMs, hostInfo, log);
    const agent = new Agent(nc, ctx, syncer, heartbeat, version, rootLock);
    agent.serve();
    // drained, not dropped: a ping already routed to it is still answered
    void pings.drain().catch(() => undefined);
    syncer.listen();
    agent.watchConnection();
    // Autostart before the first heartbeat, as libvirtd does before it takes clients:
    // when the host shows online, its autostart pools are already up (boot-pools.ts)
    const autostart = autostartAtBoot(ctx, nc, catalog, syncer);
    await Promise.race([autostart, new Promise((resolve) => setTimeout(resolve, AUTOSTART_WAIT_MS).unref())]);
    heartbeat.start();
    log.info('agent serving', {
      host,
      root: opts.root,
      poolRoots: ctx.poolRoots?.roots ?? 'anywhere',
      backends: registeredBackends().map((b) => poolTypeName(b.type)),
      heartbeatMs: opts.heartbeatMs,
      version,
    });
    await syncer.request('start');
    void autostart.then(() => (state.pools.size > 0 ? syncer.request('autostart') : undefined));
    return agent;
  }

  private serve(): void {
    this.sub = serveAgent(this.nc, this.ctx.host, (op, request, _msg: Msg, signal) => {
      const started = process.hrtime.bigint();
      attachSignal(request, signal);
      const work = this.requests.run(op, request, () => dispatch(this.ctx, op, request)).then(
        (reply) => {
          this.ctx.log.debug('op done', { op, requestId: request.requestId, us: Number((process.hrtime.bigint() - started) / 1000n) });
          return reply;
        },
        (err) => {
          const e = asCisternError(explainNoSpace(this.ctx, request, err));
          const level = e.code === 'INTERNAL' ? 'error' : 'info';
          this.ctx.log[level]('op failed', { op, requestId: request.requestId, principal: request.principal, code: e.code, error: e.message });
          throw e;
        },
      );
      this.inFlight.add(work);
      void work.catch(() => undefined).finally(() => this.inFlight.delete(work));
      return work;
    }, this.ctx.log, this.version);
  }

  private watchConnection(): void {
    watchBusStatus(this.nc, this.ctx.log, {
      onDisconnect: (server) => this.ctx.log.warn('disconnected from NATS', { server }),
      onReconnect: (server) => {
        this.ctx.log.info('reconnected to NATS', { server });
        this.heartbeat.beat();
        void this.syncer.request('reconnect');
      },
    });
  }

  /** Stops taking work, lets running operations finish (up to `graceMs`), drains NATS. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.heartbeat.stop();
    this.syncer.stop();
    this.sub?.unsubscribe();
    const pending = [...this.inFlight];
    if (pending.length > 0) {
      this.ctx.log.info('waiting for operations in progress', { count: pending.length });
      await Promise.race([Promise.allSettled(pending), new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    await this.ctx.events.flush().catch(() => 0n);
    if (!this.nc.isClosed()) await this.nc.drain();
    this.rootLock.release();
  }
}
