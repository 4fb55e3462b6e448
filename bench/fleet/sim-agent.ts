// A simulated fleet: many agents in ONE process, each with its own host id, subjects, state and
// an in-memory "disk", speaking the real coordinator <-> agent protocol (docs/bus.md):
//  - heartbeats on cistern.heartbeat.<host> (the agent's HeartbeatSender);
//  - full syncs as HostSync chunks on cistern.sync.<host> at start and on ResyncRequest
//    (chunk boundaries from the agent's buildSyncChunks), a fleet-wide request answered after
//    the agent's random delay (resyncDelayMs, spread defaultResyncSpreadMs of the heartbeat
//    interval), one naming the host at once;
//  - request/reply on cistern.agent.<host>.<Op> (libs/bus serveAgent) handled by the REAL agent
//    handlers (services/agent dispatch: createVolume, deleteVolume, refreshPool, resize, wipe,
//    start/stop ...) over an in-memory backend (MemoryBackend below), so replies and the events
//    they publish into the JetStream stream are the agent's own;
//  - "churn": volumes whose allocation grew (what a refresh finds on a busy host), published as
//    VOLUME_CHANGED with the pool's new sizes, at a given rate: the event load for fan-out.
//
// Sizes and names look like a virtualization host's: 1 of 5 pools is LVM (raw LVs, allocation =
// capacity, LV uuids as keys), the others directories of qcow2 (85 %) and raw images, 10-500 GiB.
//
// Hosts share NATS connections (--hosts-per-connection) to save sockets, with their heartbeats
// on a connection of their own per group: a real agent's heartbeat waits at most behind its own
// sync, never behind 49 other hosts' (33 MB on a shared connection when the fleet resyncs).
//
// The one thing the simulator does unlike 500 real agents: it keeps each host's encoded sync
// chunks until the host's state changes (a real fleet encodes on 500 machines in parallel; here
// one process would otherwise spend seconds of the shared CPU re-encoding a million volumes and
// that would be counted against the coordinator). A sync on the wire is byte-for-byte what
// HostSync.encode makes: the cached body (pools, volumes) after a fresh header (sync id, chunk,
// host). Pools come up active at process start without POOL_STARTED / VOLUME_CHANGED events (the
// full sync carries them), and the catalog is not read (bench/fleet/run.ts seeds it).
//
// Run: node dist/bench/fleet/sim-agent.js --nats URL --hosts N [--pools 20] [--volumes 100]
//      [--prefix sim] [--heartbeat-ms 2000] [--hosts-per-connection 50] [--control-id ID]
//      [--start-batch HOSTS --start-interval-ms MS]   (bring the fleet up in batches)
//      [--sync-first]   (first sync before the first heartbeat: no reconcile events for new hosts)
//      [--resync-spread-ms MS]   (fleet-wide ResyncRequest answered within a random delay below MS)
// Controlled over NATS (request/reply, JSON): benchfleet.<id>.status | churn | sample | loop-delay | prepare-syncs | stop.
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { HostSync, ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import {
  EventKind,
  Host,
  PoolType,
  VolumeType,
  PoolDefinition,
  type VolumeDefinition,
  type WipeAlgorithm,
} from '../../libs/proto/cistern/v1/storage.js';
import { connectBus } from '../../libs/bus/connect.js';
import { ensureEventStream, EventPublisher } from '../../libs/bus/events.js';
import { serveAgent } from '../../libs/bus/agent-rpc.js';
import { subjects } from '../../libs/bus/subjects.js';
import { hostName } from '../../libs/api/resource-names.js';
import { AlreadyExistsError, NotFoundError, ResourceExhaustedError } from '../../libs/errors/errors.js';
import { silentLogger, type Logger } from '../../libs/log/logger.js';
import type {
  BackendOperation,
  PoolContext,
  PoolRuntime,
  RefreshResult,
  ResizeFlags,
  StorageBackend,
} from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import { dispatch } from '../../services/agent/agent.js';
import { attachSignal, type AgentContext } from '../../services/agent/context.js';
import { OrderedEvents, volumeEvent, type EventSink } from '../../services/agent/events.js';
import { HeartbeatSender, newBootId } from '../../services/agent/heartbeat.js';
import { LockTable } from '../../services/agent/locks.js';
import { AgentState, type PoolEntry } from '../../services/agent/state.js';
import { buildSyncChunks, defaultResyncSpreadMs, resyncDelayMs } from '../../services/agent/sync.js';

const GiB = 1024n ** 3n;
const TiB = 1024n * GiB;
const MiB = 1024n * 1024n;

// ------------------------------------------------------------------ deterministic data

/** mulberry32: a small seeded PRNG, so every run (and the bench) sees the same fleet. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const simHostId = (prefix: string, i: number): string => `${prefix}-${String(i).padStart(4, '0')}`;

const hex = (rnd: () => number, n: number): string => {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
  return s;
};
const LV_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** An LVM uuid as lvs prints it: 6-4-4-4-4-4-6. */
const lvUuid = (rnd: () => number): string =>
  [6, 4, 4, 4, 4, 4, 6].map((n) => Array.from({ length: n }, () => LV_CHARS[Math.floor(rnd() * LV_CHARS.length)]).join('')).join('-');
const uuid = (rnd: () => number): string => `${hex(rnd, 8)}-${hex(rnd, 4)}-4${hex(rnd, 3)}-a${hex(rnd, 3)}-${hex(rnd, 12)}`;
const CAPACITIES_GIB = [10n, 20n, 20n, 40n, 50n, 80n, 100n, 100n, 200n, 500n];
const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
/** libvirt's seconds.nanoseconds timestamps. */
const stamp = (rnd: () => number, base: number): string => `${base + Math.floor(rnd() * 30_000_000)}.${String(Math.floor(rnd() * 1e9)).padStart(9, '0')}`;

export interface SimPool {
  definition: PoolDefinition;
  capacity: bigint;
  volumes: VolumeDefinition[];
}

/** One volume of a pool, as the dir or logical backend would report it. */
export function simVolume(rnd: () => number, pool: PoolDefinition, name?: string): VolumeDefinition {
  const capacity = pick(rnd, CAPACITIES_GIB) * GiB;
  const perms = { mode: 0o600, owner: 107n, group: 107n, label: '' };
  if (pool.type === PoolType.POOL_TYPE_LOGICAL) {
    const vg = pool.source?.name || pool.name;
    const lv = name ?? `lv-vm-${hex(rnd, 6)}-disk${Math.floor(rnd() * 3)}`;
    const path = `/dev/${vg}/${lv}`;
    return {
      type: VolumeType.VOLUME_TYPE_BLOCK,
      name: lv,
      key: lvUuid(rnd),
      capacity,
      allocation: capacity,
      physical: capacity,
      sourceDevices: [{ path: pool.source?.devices[0]?.path ?? '/dev/sdb', extents: [{ start: 0n, end: capacity }] }],
      target: { path, format: 'raw', permissions: { mode: 0o660, owner: 0n, group: 6n, label: '' }, timestamps: undefined, compat: '', nocow: false, clusterSize: 0n, lazyRefcounts: false, extendedL2: false, encryption: undefined },
      backingStore: undefined,
      state: undefined,
    };
  }
  const qcow2 = name ? name.endsWith('.qcow2') : rnd() < 0.85;
  const vol = name ?? `vm-${hex(rnd, 6)}-disk${Math.floor(rnd() * 3)}.${qcow2 ? 'qcow2' : 'img'}`;
  const path = `${pool.target?.path ?? '/var/lib/libvirt/images'}/${vol}`;
  const allocation = qcow2 ? ((capacity * BigInt(Math.floor(5 + rnd() * 60))) / 100n / (64n * 1024n)) * 64n * 1024n : (capacity * BigInt(Math.floor(rnd() * 100))) / 100n;
  const base = 1_700_000_000;
  const mtime = stamp(rnd, base);
  return {
    type: VolumeType.VOLUME_TYPE_FILE,
    name: vol,
    key: path,
    capacity,
    allocation,
    physical: qcow2 ? allocation + 196_608n : capacity,
    sourceDevices: [],
    target: {
      path,
      format: qcow2 ? 'qcow2' : 'raw',
      permissions: perms,
      timestamps: { atime: stamp(rnd, base), mtime, ctime: mtime, btime: '' },
      compat: qcow2 ? '1.1' : '',
      nocow: false,
      clusterSize: qcow2 ? 65_536n : 0n,
      lazyRefcounts: false,
      extendedL2: false,
      encryption: undefined,
    },
    backingStore: undefined,
    state: undefined,
  };
}

/** The pools of simulated host number `index`: every 5th an LVM volume group, the rest directories. */
export function simPools(index: number, poolCount: number, volumeCount: number): SimPool[] {
  const rnd = prng(0x5eed0000 + index);
  const pools: SimPool[] = [];
  // every definition first, then the volumes: simPools(i, n, 0) gives the same pools
  for (let p = 0; p < poolCount; p++) {
    const logical = p % 5 === 4;
    const name = logical ? `vg-data-${String(p).padStart(2, '0')}` : `vmstore-${String(p).padStart(2, '0')}`;
    const definition: PoolDefinition = logical
      ? PoolDefinition.fromPartial({
          type: PoolType.POOL_TYPE_LOGICAL,
          name,
          uuid: uuid(rnd),
          source: { devices: [{ path: `/dev/disk/by-id/wwn-0x5000c500${hex(rnd, 8)}` }], name, format: 'lvm2' },
          target: { path: `/dev/${name}` },
        })
      : PoolDefinition.fromPartial({
          type: PoolType.POOL_TYPE_DIR,
          name,
          uuid: uuid(rnd),
          target: { path: `/var/lib/libvirt/${name}`, permissions: { mode: 0o711, owner: 0n, group: 0n, label: '' } },
        });
    pools.push({ definition, capacity: logical ? 16n * TiB : 20n * TiB, volumes: [] });
  }
  for (const pool of pools) {
    const names = new Set<string>();
    while (pool.volumes.length < volumeCount) {
      const v = simVolume(rnd, pool.definition);
      if (names.has(v.name)) continue;
      names.add(v.name);
      pool.volumes.push(v);
    }
  }
  return pools;
}

// ------------------------------------------------------------------ in-memory backend

interface MemPool {
  capacity: bigint;
  allocated: bigint;
  volumes: Map<string, VolumeDefinition>;
}

const MEMORY_OPS: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
  'checkPool',
  'startPool',
  'refreshPool',
  'stopPool',
  'createVol',
  'deleteVol',
  'resizeVol',
  'wipeVol',
]);

/**
 * One host's storage in memory, behind the backend interface the agent's handlers use: the
 * "disk" of every pool type. Sizes are accounted: a create that does not fit is RESOURCE_EXHAUSTED.
 */
export class MemoryBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly operations = MEMORY_OPS;
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = ['raw', 'qcow2'];
  readonly defaultVolumeFormat = 'raw';
  private readonly pools = new Map<string, MemPool>();
  private rnd = prng(42);

  /** Puts a pool with its volumes on the "disk" (the state the host boots with). */
  seed(pool: SimPool): void {
    const volumes = new Map<string, VolumeDefinition>();
    let allocated = 0n;
    for (const v of pool.volumes) {
      volumes.set(v.name, v);
      allocated += v.allocation ?? 0n;
    }
    this.pools.set(pool.definition.name, { capacity: pool.capacity, allocated, volumes });
  }

  private pool(ctx: PoolContext): MemPool {
    const p = this.pools.get(ctx.pool.name);
    if (!p) throw new NotFoundError(`storage pool '${ctx.pool.name}' has no storage on this simulated host`);
    return p;
  }

  runtime(name: string): PoolRuntime {
    const p = this.pools.get(name)!;
    return { capacity: p.capacity, allocation: p.allocated, available: p.capacity > p.allocated ? p.capacity - p.allocated : 0n };
  }

  async checkPool(ctx: PoolContext): Promise<boolean> {
    return this.pools.has(ctx.pool.name);
  }

  async startPool(ctx: PoolContext): Promise<void> {
    if (!this.pools.has(ctx.pool.name)) this.pools.set(ctx.pool.name, { capacity: 16n * TiB, allocated: 0n, volumes: new Map() });
  }

  async stopPool(): Promise<void> {}

  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const p = this.pool(ctx);
    return { runtime: this.runtime(ctx.pool.name), volumes: [...p.volumes.values()] };
  }

  /** The agent's cheap pool-size hook (pool-sizes.ts): no scan. */
  async poolSizes(ctx: PoolContext): Promise<PoolRuntime> {
    this.pool(ctx);
    return this.runtime(ctx.pool.name);
  }

  async createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const p = this.pool(ctx);
    if (p.volumes.has(volume.name)) throw new AlreadyExistsError(`storage volume '${volume.name}' exists already`);
    const planned = simVolume(this.rnd, ctx.pool, volume.name);
    if (volume.capacity !== undefined) planned.capacity = volume.capacity;
    planned.allocation = volume.allocation ?? 0n;
    if (ctx.pool.type === PoolType.POOL_TYPE_LOGICAL) planned.allocation = planned.capacity;
    if (volume.target?.format && planned.target) planned.target.format = volume.target.format;
    if (p.allocated + (planned.allocation ?? 0n) > p.capacity) {
      throw new ResourceExhaustedError(`not enough space in pool '${ctx.pool.name}' for volume '${volume.name}'`);
    }
    p.volumes.set(planned.name, planned);
    p.allocated += planned.allocation ?? 0n;
    return planned;
  }

  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const v = this.pool(ctx).volumes.get(volume.name);
    if (!v) throw new NotFoundError(`no storage volume with matching path '${volume.target?.path ?? volume.name}'`);
    return v;
  }

  async deleteVol(ctx: PoolContext, volume: VolumeDefinition): Promise<void> {
    const p = this.pool(ctx);
    const v = p.volumes.get(volume.name);
    if (!v) throw new NotFoundError(`no storage volume with matching path '${volume.target?.path ?? volume.name}'`);
    p.volumes.delete(volume.name);
    p.allocated -= v.allocation ?? 0n;
  }

  async resizeVol(ctx: PoolContext, volume: VolumeDefinition, capacity: bigint, flags: ResizeFlags): Promise<void> {
    const p = this.pool(ctx);
    const v = p.volumes.get(volume.name);
    if (!v) throw new NotFoundError(`no storage volume with matching path '${volume.target?.path ?? volume.name}'`);
    const grow = flags.allocate ? capacity - (v.allocation ?? 0n) : 0n;
    if (grow > 0n && p.allocated + grow > p.capacity) throw new ResourceExhaustedError(`not enough space in pool '${ctx.pool.name}'`);
    const next = { ...v, capacity, allocation: (v.allocation ?? 0n) + (grow > 0n ? grow : 0n) };
    p.allocated += next.allocation - (v.allocation ?? 0n);
    p.volumes.set(v.name, next);
  }

  async wipeVol(_ctx: PoolContext, _volume: VolumeDefinition, _algorithm: WipeAlgorithm): Promise<void> {}

  /** A volume's allocation grew by `bytes` (guest writes): what the next refresh would find. */
  grow(pool: string, volume: string, bytes: bigint): VolumeDefinition | undefined {
    const p = this.pools.get(pool);
    const v = p?.volumes.get(volume);
    if (!p || !v) return undefined;
    const room = (v.capacity ?? 0n) - (v.allocation ?? 0n);
    const add = room < bytes ? room : bytes;
    const next: VolumeDefinition = { ...v, allocation: (v.allocation ?? 0n) + add };
    p.volumes.set(volume, next);
    p.allocated += add;
    return next;
  }
}

const noRunner: CommandRunner = {
  run: () => Promise.reject(new Error('the simulated agent runs no commands')),
} as unknown as CommandRunner;

// ------------------------------------------------------------------ one simulated host

export interface SimHostOptions {
  index: number;
  prefix: string;
  pools: number;
  volumes: number;
  heartbeatMs?: number;
  events: EventSink;
  log?: Logger;
}

export class SimHost {
  readonly id: string;
  readonly state: AgentState;
  readonly backend = new MemoryBackend();
  readonly ctx: AgentContext;
  readonly bootId = newBootId();
  private cached: { revision: bigint; bodies: Uint8Array[]; pools: number; volumes: number } | undefined;

  constructor(readonly options: SimHostOptions) {
    this.id = simHostId(options.prefix, options.index);
    this.state = new AgentState(this.id);
    for (const pool of simPools(options.index, options.pools, options.volumes)) {
      this.backend.seed(pool);
      const entry = this.state.addPool(pool.definition, { persistent: true, autostart: true }, this.backend.runtime(pool.definition.name));
      for (const v of pool.volumes) this.state.setVolume(entry, v);
      this.state.touchPool(entry);
    }
    this.ctx = {
      host: this.id,
      state: this.state,
      locks: new LockTable(),
      events: options.events,
      runner: noRunner,
      log: options.log ?? silentLogger,
      backend: () => this.backend,
    };
  }

  hostInfo(): Host {
    return Host.create({
      name: hostName(this.id),
      hostId: this.id,
      hostname: `${this.id}.sim.example.net`,
      agentVersion: '0.1.0',
      poolTypes: [PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_LOGICAL],
      online: true,
      lastSeen: new Date(),
      poolCount: this.state.pools.size,
    });
  }

  /**
   * The encoded HostSync chunks of a full sync with this id: identical to
   * buildSyncChunks(syncId, snapshot).map(HostSync.encode), the bulk kept until the state changes.
   */
  syncMessages(syncId: string = randomUUID()): Uint8Array[] {
    const revision = this.state.revisions.current;
    if (!this.cached || this.cached.revision !== revision) {
      const chunks = buildSyncChunks('', { host: this.hostInfo(), ...this.state.snapshot() });
      this.cached = {
        revision,
        bodies: chunks.map((c) => HostSync.encode({ ...c, syncId: '', host: undefined }).finish()),
        pools: chunks.reduce((n, c) => n + c.pools.length, 0),
        volumes: chunks.reduce((n, c) => n + c.volumes.length, 0),
      };
    }
    const bodies = this.cached.bodies;
    return bodies.map((body, i) => {
      const head = HostSync.encode(
        HostSync.create({ syncId, chunk: i, last: i === bodies.length - 1, host: i === 0 ? this.hostInfo() : undefined, revision }),
      ).finish();
      const out = new Uint8Array(head.length + body.length);
      out.set(head, 0);
      out.set(body, head.length);
      return out;
    });
  }

  /** A volume whose allocation grew, published like a refresh's VOLUME_CHANGED (with pool sizes). */
  churnOne(rnd: () => number, requestId: string): boolean {
    const pools = [...this.state.pools.values()];
    const entry: PoolEntry = pools[Math.floor(rnd() * pools.length)]!;
    const names = [...entry.volumes.keys()];
    if (names.length === 0) return false;
    const name = names[Math.floor(rnd() * names.length)]!;
    const def = this.backend.grow(entry.definition.name, name, 64n * MiB);
    if (!def) return false;
    const vol = this.state.setVolume(entry, def);
    this.state.touchPool(entry, this.backend.runtime(entry.definition.name));
    const volume = this.state.volumeMessage(entry.definition.name, vol);
    this.ctx.events.publish(
      volumeEvent(EventKind.VOLUME_CHANGED, this.id, volume, { principal: 'agent', requestId }, this.state.poolMessage(entry)),
    );
    return true;
  }

  counts(): { pools: number; volumes: number } {
    let volumes = 0;
    for (const p of this.state.pools.values()) volumes += p.volumes.size;
    return { pools: this.state.pools.size, volumes };
  }
}

// ------------------------------------------------------------------ the fleet

export interface FleetOptions {
  natsUrl: string;
  hosts: number;
  pools: number;
  volumes: number;
  prefix: string;
  heartbeatMs: number;
  hostsPerConnection: number;
  /** Hosts started together, and the pause between batches (a fleet does not boot in one millisecond). */
  startBatch?: number;
  startIntervalMs?: number;
  /** First full sync before the first heartbeat (a fleet the coordinator already holds); default: heartbeat first, as the agent. */
  syncFirst?: boolean;
  /** A fleet-wide ResyncRequest is answered after a random delay below this (ms); default as the agent's. */
  resyncSpreadMs?: number;
  log?: Logger;
}

interface Group {
  nc: NatsConnection;
  /** heartbeats of the group's hosts: a real agent's heartbeat never waits behind another host's sync */
  beats: NatsConnection;
  events: OrderedEvents;
  hosts: SimHost[];
}

export class SimFleet {
  readonly hosts: SimHost[] = [];
  private readonly groups: Group[] = [];
  private readonly subs: Subscription[] = [];
  private readonly heartbeats: HeartbeatSender[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  /** every connection opened, closed on a failed start */
  private readonly connections: NatsConnection[] = [];
  /** per host: the answer to a fleet-wide ResyncRequest waiting for its random delay */
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  syncsSent = 0;

  private constructor(readonly options: FleetOptions) {}

  /** Builds every host, connects, serves, heartbeats, and sends each host's first full sync. */
  static async start(options: FleetOptions): Promise<SimFleet> {
    const fleet = new SimFleet(options);
    const log = options.log ?? silentLogger;
    // every host's state first, before any connection is open: a connection whose process is
    // busy for seconds misses its pings and is dropped as stale
    const sinks: Array<{ target: EventSink | undefined }> = [];
    const built: SimHost[] = [];
    for (let i = 0; i < options.hosts; i++) {
      const sink = { target: undefined as EventSink | undefined };
      sinks.push(sink);
      const events: EventSink = { publish: (e) => sink.target!.publish(e), flush: () => sink.target!.flush() };
      built.push(new SimHost({ index: i, prefix: options.prefix, pools: options.pools, volumes: options.volumes, events, log }));
      if (i % 10 === 9) await new Promise((r) => setImmediate(r));
    }
    try {
      for (let g = 0; g * options.hostsPerConnection < options.hosts; g++) {
        const nc = await connectBus({ servers: options.natsUrl, name: `cistern-sim-agents-${g}` });
        fleet.connections.push(nc);
        const beats = await connectBus({ servers: options.natsUrl, name: `cistern-sim-heartbeats-${g}` });
        fleet.connections.push(beats);
        if (g === 0) await ensureEventStream(nc);
        const group: Group = { nc, beats, events: new OrderedEvents(new EventPublisher(nc)), hosts: [] };
        fleet.groups.push(group);
        const end = Math.min(options.hosts, (g + 1) * options.hostsPerConnection);
        for (let i = g * options.hostsPerConnection; i < end; i++) {
          const host = built[i]!;
          sinks[i]!.target = group.events;
          group.hosts.push(host);
          fleet.hosts.push(host);
          fleet.subs.push(
            serveAgent(nc, host.id, (op, request, _msg, signal) => {
              attachSignal(request, signal);
              return dispatch(host.ctx, op, request);
            }),
          );
        }
        // one ResyncRequest subscription per connection, dispatched to its hosts
        const resync = nc.subscribe(subjects.resync);
        fleet.subs.push(resync);
        void (async () => {
          for await (const msg of resync) {
            let req: ResyncRequest;
            try {
              req = ResyncRequest.decode(msg.data);
            } catch {
              continue;
            }
            // what the agent's HostSyncer does, per host
            const spread = options.resyncSpreadMs ?? defaultResyncSpreadMs(options.heartbeatMs);
            for (const host of group.hosts) {
              const delay = resyncDelayMs(req, host.id, spread);
              if (delay !== undefined) fleet.syncAfter(group, host, delay);
            }
          }
        })();
        await nc.flush();
      }
      // hosts come up in batches (startBatch every startIntervalMs; default all at once), each
      // with its first heartbeat and full sync; heartbeats then spread over the interval
      const batch = options.startBatch && options.startBatch > 0 ? options.startBatch : options.hosts;
      const all = fleet.groups.flatMap((group) => group.hosts.map((host) => ({ group, host })));
      for (let b = 0; b < all.length; b += batch) {
        if (b > 0) await new Promise((r) => setTimeout(r, options.startIntervalMs ?? 0));
        for (const { group, host } of all.slice(b, b + batch)) {
          const hb = new HeartbeatSender(group.beats, host.id, host.bootId, options.heartbeatMs, () => host.hostInfo(), log);
          fleet.heartbeats.push(hb);
          // the real agent beats first, then syncs: to a coordinator that never saw the host, the
          // sync then comes from a "returning" host and every volume is republished as an event
          if (options.syncFirst) fleet.sync(group, [host]);
          hb.beat();
          const t = setTimeout(() => hb.start(), Math.floor(Math.random() * options.heartbeatMs));
          fleet.timers.push(t);
          if (!options.syncFirst) fleet.sync(group, [host]);
          await new Promise((r) => setImmediate(r));
        }
        await Promise.all(fleet.groups.flatMap((g) => [g.nc.flush(), g.beats.flush()]));
      }
      return fleet;
    } catch (err) {
      await fleet.stop();
      throw err;
    }
  }

  /** A sync after `delayMs`; a request while one waits joins it, one for now replaces it (HostSyncer.requestAfter). */
  private syncAfter(group: Group, host: SimHost, delayMs: number): void {
    const waiting = this.delayed.get(host.id);
    if (delayMs <= 0) {
      if (waiting) clearTimeout(waiting);
      this.delayed.delete(host.id);
      this.sync(group, [host]);
      return;
    }
    if (waiting) return;
    this.delayed.set(
      host.id,
      setTimeout(() => {
        this.delayed.delete(host.id);
        this.sync(group, [host]);
      }, delayMs),
    );
  }

  private sync(group: Group, hosts: SimHost[]): void {
    for (const host of hosts) {
      for (const data of host.syncMessages()) group.nc.publish(subjects.sync(host.id), data);
      this.syncsSent++;
    }
  }

  /**
   * Encodes every host's full sync ahead (kept until its state changes). A real agent encodes
   * its own ~2,000 volumes in tens of ms on its own CPU; here one process holds 500 hosts, and
   * encoding all of them when a fleet-wide ResyncRequest comes (after the churn of the fan-out
   * phase changed them) would stall its event loop, and with it every simulated heartbeat, for
   * seconds while sharing the coordinator's CPU: the figure would measure the simulator.
   */
  async prepareSyncs(): Promise<{ hosts: number; ms: number }> {
    const t0 = performance.now();
    let hosts = 0;
    for (const group of this.groups) {
      for (const host of group.hosts) {
        host.syncMessages('prepare');
        hosts++;
        await new Promise((r) => setImmediate(r));
      }
    }
    return { hosts, ms: performance.now() - t0 };
  }

  /** Publishes `rate` VOLUME_CHANGED events per second for `seconds`; returns how many and the last sequence. */
  async churn(rate: number, seconds: number, tag: string): Promise<{ published: number; lastSequence: string; ms: number }> {
    const rnd = prng(0xc4a2);
    const total = Math.max(1, Math.round(rate * seconds));
    const tickMs = 10;
    const started = performance.now();
    let published = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
        while (published < due) {
          const host = this.hosts[Math.floor(rnd() * this.hosts.length)]!;
          const at = performance.timeOrigin + performance.now();
          if (host.churnOne(rnd, `${tag}:${published}:${at.toFixed(3)}`)) published++;
        }
        if (published >= total) resolve();
        else setTimeout(tick, tickMs);
      };
      tick();
    });
    const seqs = await Promise.all(this.groups.map((g) => g.events.flush()));
    const last = seqs.reduce((a, b) => (b > a ? b : a), 0n);
    return { published, lastSequence: String(last), ms: performance.now() - started };
  }

  /** `count` volume resource names spread over the fleet (for GetVolume). */
  sample(count: number): string[] {
    const rnd = prng(0x5a3);
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const host = this.hosts[Math.floor(rnd() * this.hosts.length)]!;
      const pools = [...host.state.pools.values()];
      const pool = pools[Math.floor(rnd() * pools.length)]!;
      const names = [...pool.volumes.keys()];
      out.push(`hosts/${host.id}/pools/${pool.definition.name}/volumes/${names[Math.floor(rnd() * names.length)]}`);
    }
    return out;
  }

  status(): Record<string, number> {
    let pools = 0;
    let volumes = 0;
    for (const h of this.hosts) {
      const c = h.counts();
      pools += c.pools;
      volumes += c.volumes;
    }
    const mem = process.memoryUsage();
    return { hosts: this.hosts.length, pools, volumes, connections: this.groups.length, syncsSent: this.syncsSent, rss: mem.rss, heapUsed: mem.heapUsed };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
    for (const hb of this.heartbeats) hb.stop();
    for (const s of this.subs) s.unsubscribe();
    for (const g of this.groups) {
      await g.events.flush().catch(() => 0n);
      if (!g.nc.isClosed()) await g.nc.drain().catch(() => g.nc.close());
      if (!g.beats.isClosed()) await g.beats.drain().catch(() => g.beats.close());
    }
    for (const c of this.connections) if (!c.isClosed()) await c.close().catch(() => undefined);
  }
}

// ------------------------------------------------------------------ process entry

export const controlSubject = (id: string, op: string): string => `benchfleet.${id}.${op}`;

function parseArgs(argv: string[]): FleetOptions & { controlId: string } {
  const get = (flag: string, dflt?: string): string => {
    const i = argv.indexOf(flag);
    if (i >= 0 && argv[i + 1] !== undefined) return argv[i + 1]!;
    if (dflt === undefined) throw new Error(`${flag} is required`);
    return dflt;
  };
  const int = (flag: string, dflt: number): number => {
    const v = Number(get(flag, String(dflt)));
    if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} must be a whole number`);
    return v;
  };
  return {
    natsUrl: get('--nats'),
    hosts: int('--hosts', 50),
    pools: int('--pools', 20),
    volumes: int('--volumes', 100),
    prefix: get('--prefix', 'sim'),
    heartbeatMs: int('--heartbeat-ms', 2000),
    hostsPerConnection: Math.max(1, int('--hosts-per-connection', 50)),
    startBatch: int('--start-batch', 0),
    startIntervalMs: int('--start-interval-ms', 0),
    syncFirst: argv.includes('--sync-first'),
    resyncSpreadMs: argv.includes('--resync-spread-ms') ? int('--resync-spread-ms', 0) : undefined,
    controlId: get('--control-id', 'default'),
  };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const fleet = await SimFleet.start(opts);
  const control = await connectBus({ servers: opts.natsUrl, name: 'cistern-sim-control' });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await fleet.stop();
      await control.drain().catch(() => undefined);
    })());
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const sub = control.subscribe(controlSubject(opts.controlId, '*'));
  void (async () => {
    for await (const msg of sub) {
      const op = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
      let args: Record<string, unknown> = {};
      try {
        args = msg.data.length ? (JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>) : {};
      } catch {
        /* empty args */
      }
      const answer = (value: unknown): void => {
        msg.respond(new TextEncoder().encode(JSON.stringify(value)));
      };
      try {
        if (op === 'status') answer(fleet.status());
        else if (op === 'loop-delay') {
          // longest stall of the simulator's event loop since the last ask: its hosts' heartbeats stall with it
          answer({ maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6 });
          loopDelay.reset();
        } else if (op === 'sample') answer(fleet.sample(Number(args.count ?? 1000)));
        else if (op === 'prepare-syncs') answer(await fleet.prepareSyncs());
        else if (op === 'churn') answer(await fleet.churn(Number(args.rate ?? 500), Number(args.seconds ?? 5), String(args.tag ?? 'churn')));
        else if (op === 'stop') {
          answer({ stopping: true });
          void stop().then(() => process.exit(0));
        } else answer({ error: `unknown op '${op}'` });
      } catch (err) {
        answer({ error: String((err as Error)?.message ?? err) });
      }
    }
  })();
  await control.flush();
  process.stdout.write(`${JSON.stringify({ ready: true, ms: Math.round(performance.now() - t0), ...fleet.status() })}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void stop().then(() => process.exit(0)));
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err) => {
    const e = err as Error & { code?: string; cause?: unknown };
    process.stderr.write(`sim-agent: ${e?.name} ${e?.message} ${e?.code ?? ''} ${String(e?.cause ?? '')}\n${e?.stack ?? err}\n`);
    process.exit(1);
  });
}
