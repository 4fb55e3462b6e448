// `npm run bench:fleet`: one machine standing in for a fleet. For each fleet size it starts a real
// nats-server and ONE real coordinator (dist/services/coordinator), seeds the catalog with every
// pool (persistent, autostart, as coordinators would have written it), starts the simulated
// agents (bench/fleet/sim-agent.ts: N hosts x pools x volumes in one process) and measures:
//   memory    coordinator RSS, and heap used after a forced full GC, once every host is synced
//   list      ListPools over the whole fleet, every page (default page size), p50 of the passes
//   get       GetVolume of volumes spread over the fleet, p50 / p99
//   fanout    WatchEvents on W separate gRPC connections while the fleet publishes VOLUME_CHANGED
//             at a fixed rate: events/s delivered over all watchers, publish -> watcher latency
//   resync    coordinator stopped and started again: time from its start until it serves with
//             every host's pools and volumes in its cache (it waits for the syncs of known hosts)
// and prints one table. Everything it starts is stopped and removed at the end, also on failure.
//
// Environment:
//   FLEET_HOSTS=50,100,250,500  fleet sizes (FLEET_QUICK=1: 10,50 and fewer repetitions)
//   FLEET_POOLS=20 FLEET_VOLUMES=100           per host / per pool
//   FLEET_LIST_REPS=20 FLEET_GET_OPS=2000      ListPools passes, GetVolume calls
//   FLEET_WATCHERS=50 FLEET_EVENT_RATE=100,500 (events/s published, one fan-out run each) FLEET_EVENT_SECONDS=5
//   FLEET_HEARTBEAT_MS=2000 FLEET_HOSTS_PER_CONN=50
//   FLEET_START_BATCH=25 FLEET_START_INTERVAL_MS=2000   hosts come up 25 at a time (0 = all at once)
//   FLEET_SYNC_FIRST=1   new hosts send their first sync before their first heartbeat (0: the agent's
//                        order, heartbeat first: the coordinator republishes every volume of a new host)
//   FLEET_RESYNC_TIMEOUT_MS=120000  give up waiting for the restarted coordinator after this
//   FLEET_RESYNC_SPREAD_MS=MS  simulated agents answer a fleet-wide ResyncRequest within a random delay
//                        below MS (default: the agent's, 0.75 x heartbeat interval, at most 1.5 s)
//   FLEET_PROFILE_DIR=DIR   coordinator runs with --cpu-prof (and FLEET_HEAP_PROF=1: --heap-prof) into DIR
//   FLEET_NODE_ARGS='--trace-gc ...'  extra node options for the coordinator
//   FLEET_LOG_DIR=DIR       keep the coordinators' logs (first and restarted) (FLEET_CISTERN_LOG_LEVEL, default info:
//                        the start's steps and when the synced pools were indexed)
//   FLEET_JSON=FILE         every figure as JSON;  FLEET_MARKDOWN=1  the table as Markdown too
import { credentials, type ClientReadableStream } from '@grpc/grpc-js';
import { copyFileSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { cpuMark, cpuMsSince, cpuSeconds } from '../proc-cpu.js';
import { rawListAllPools } from '../raw-pages.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { StorageServiceClient, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { StorageSession } from '../../libs/api/session-client.js';
import {
  AbortWait,
  distDir,
  entryPoints,
  freePort,
  makeTempDir,
  promiseApi,
  runAllCleanups,
  ServiceProcess,
  startNats,
  waitFor,
  type NatsServer,
  type StorageApi,
} from '../../test/support/index.js';
import { fmtMs, markdownTable, percentile, textTable } from '../stats.js';
import { controlSubject, simHostId, simPools } from './sim-agent.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../services/coordinator/pagination.js';

const env = process.env;
const quick = env.FLEET_QUICK === '1';
const num = (name: string, dflt: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number`);
  return n;
};
const SIZES = (env.FLEET_HOSTS ?? (quick ? '10,50' : '50,100,250,500')).split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const POOLS = num('FLEET_POOLS', 20);
const VOLUMES = num('FLEET_VOLUMES', 100);
const LIST_REPS = num('FLEET_LIST_REPS', quick ? 5 : 20);
const GET_OPS = num('FLEET_GET_OPS', quick ? 500 : 2000);
const WATCHERS = num('FLEET_WATCHERS', 50);
const EVENT_RATES = (env.FLEET_EVENT_RATE ?? '100,500').split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const EVENT_SECONDS = num('FLEET_EVENT_SECONDS', quick ? 3 : 5);
const HEARTBEAT_MS = num('FLEET_HEARTBEAT_MS', 2000);
const HOSTS_PER_CONN = num('FLEET_HOSTS_PER_CONN', 50);
const PROFILE_DIR = env.FLEET_PROFILE_DIR ? resolve(env.FLEET_PROFILE_DIR) : undefined;
const SIM_ENTRY = join(distDir, 'bench', 'fleet', 'sim-agent.js');
const PROBE_ENTRY = join(distDir, 'bench', 'fleet', 'mem-probe.js');
const SETUP_TIMEOUT_MS = 600_000;
const RESYNC_TIMEOUT_MS = num('FLEET_RESYNC_TIMEOUT_MS', 120_000);
const START_BATCH = num('FLEET_START_BATCH', 25);
const START_INTERVAL_MS = num('FLEET_START_INTERVAL_MS', 2000);
const RESYNC_SPREAD_MS = env.FLEET_RESYNC_SPREAD_MS ? num('FLEET_RESYNC_SPREAD_MS', 0) : undefined;
/** FLEET_ONLY=list,get,fanout,resync: the phases to run (memory always); default all. */
const ONLY = new Set((env.FLEET_ONLY ?? 'list,get,fanout,resync').split(',').map((s) => s.trim()));

function log(msg: string): void {
  process.stderr.write(`[fleet ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface Memory {
  rssMiB: number;
  heapUsedMiB: number;
  rssAfterGcMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  /** process.memoryUsage().arrayBuffers after the GC: Buffers and ArrayBuffers outside the JS heap */
  arrayBuffersMiB?: number;
  /** where the resident memory is, after the GC (mem-probe.ts residency) */
  residency?: Record<string, number>;
  gcMs: number;
}

export interface FanoutResult {
  cpuSeconds?: Record<string, number>;
  watchers: number;
  published: number;
  delivered: number;
  expected: number;
  eventsPerSec: number;
  latencyMs: number[];
  offeredRate: number;
}

export interface SizeResult {
  hosts: number;
  pools: number;
  volumes: number;
  initialSyncMs: number;
  memory: Memory;
  listPagesPerPass: number;
  listMs: number[];
  /** each ListPools call of those passes: one page of the default size over the whole fleet */
  listPageMs?: number[];
  /** CPU ms per default-client pass, per process (benchClient: this process) */
  listCpuMsPerPass?: Record<string, number>;
  /** CPU ms over all GetVolume calls, per process */
  getCpuMs?: Record<string, number>;
  /** the same passes through a client with cisternctl's 4 MiB HTTP/2 receive window */
  listWideMs: number[];
  /** the same client, pages of MAX_PAGE_SIZE (10,000) pools, and how many pages that took */
  listMaxMs: number[];
  listMaxPages: number;
  /** default pages on the default client's channel, pools counted but not decoded (raw-pages.ts) */
  listRawMs?: number[];
  getMs: number[];
  /** the same GetVolume calls over one Session stream (absent in runs before it existed) */
  getSessionMs?: number[];
  fanout: FanoutResult[];
  resync: {
    servingMs: number;
    completeMs: number;
    memory: Memory;
    failure?: string;
    offline?: number;
    askedAgain?: number;
    online?: number;
    volumesSeen?: number;
    /** full syncs the simulated fleet sent from the restart until the end of the phase */
    syncsSent?: number;
    /** CPU seconds the restarted coordinator used until the whole fleet was in its cache (or the timeout) */
    cpuSeconds?: number;
    /** longest stall of the simulator's event loop meanwhile (all its heartbeats stall with it) */
    simulatorStallMs?: number;
    /** from the spawn until the coordinator had indexed every pool the syncs left as bytes (its log) */
    indexedMs?: number;
  };
  error?: string;
  loadAvg: number[];
}

const MiB = 1024 * 1024;

/** Directories this run made: removed at exit too (the harness's own signal handler exits at once). */
const ownDirs = new Set<string>();
process.on('exit', () => {
  for (const d of ownDirs) rmSync(d, { recursive: true, force: true });
});

/** The coordinator of this run, started (and restarted) with the memory probe and optional profiling. */
class Coordinator {
  proc: ServiceProcess | undefined;
  readonly memFile: string;
  constructor(
    private readonly natsUrl: string,
    readonly address: string,
    private readonly dataDir: string,
    tmp: string,
  ) {
    this.memFile = join(tmp, 'coordinator-mem.json');
  }

  spawn(label: string): ServiceProcess {
    const extra = env.FLEET_NODE_ARGS ? env.FLEET_NODE_ARGS.split(/\s+/).filter(Boolean) : [];
    const profile = PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=coordinator-${label}.cpuprofile`, ...(env.FLEET_HEAP_PROF === '1' ? ['--heap-prof', `--heap-prof-dir=${PROFILE_DIR}`] : [])]
      : [];
    this.proc = ServiceProcess.spawn({
      name: 'coordinator',
      command: process.execPath,
      args: [
        '--expose-gc',
        '--import',
        pathToFileURL(PROBE_ENTRY).href,
        ...profile,
        ...extra,
        entryPoints.coordinator,
        '--nats',
        this.natsUrl,
        '--listen',
        this.address,
        '--data',
        this.dataDir,
        // serve only once every host known online has synced: "serving" = "resynced"
        '--sync-wait-ms',
        '120000',
      ],
      env: { CISTERN_LOG_LEVEL: env.FLEET_CISTERN_LOG_LEVEL ?? 'info', FLEET_MEM_FILE: this.memFile },
    });
    ownDirs.add(dirname(this.proc.logFile));
    return this.proc;
  }

  async memory(): Promise<Memory> {
    const proc = this.proc!;
    const before = existsSync(this.memFile) ? readFileSync(this.memFile, 'utf8') : '';
    process.kill(proc.pid, 'SIGUSR2'); // exact pid: the probe in the coordinator answers
    const text = await waitFor('the coordinator memory probe', () => {
      if (!proc.alive) throw new AbortWait(new Error(`coordinator exited\n${proc.logTail()}`));
      const now = existsSync(this.memFile) ? readFileSync(this.memFile, 'utf8') : '';
      return now && now !== before ? now : undefined;
    }, { timeoutMs: 60_000, intervalMs: 50 });
    const m = JSON.parse(text) as { before: NodeJS.MemoryUsage; after: NodeJS.MemoryUsage; gcMs: number; residency?: Record<string, number> };
    return {
      rssMiB: m.before.rss / MiB,
      heapUsedMiB: m.after.heapUsed / MiB,
      rssAfterGcMiB: m.after.rss / MiB,
      heapTotalMiB: m.after.heapTotal / MiB,
      externalMiB: m.after.external / MiB,
      arrayBuffersMiB: m.after.arrayBuffers / MiB,
      residency: m.residency,
      gcMs: m.gcMs,
    };
  }
}

/** A memory reading as one log line: RSS before and after the GC, the JS heap, outside it, and where the RSS is. */
function memoryLine(m: Memory): string {
  const r = m.residency ?? {};
  const kib = (k: string): string => (r[k] === undefined ? '?' : `${(r[k]! / 1024).toFixed(0)}`);
  return (
    `rss ${m.rssMiB.toFixed(0)} MiB (after GC ${m.rssAfterGcMiB.toFixed(0)}: anon ${kib('RssAnonKiB')}, file ${kib('RssFileKiB')}; ` +
    `C heap [heap] ${kib('brkHeapKiB')}, other anonymous mappings ${kib('anonMappingsKiB')}; peak ${kib('VmHWMKiB')}), ` +
    `heap used after GC ${m.heapUsedMiB.toFixed(0)} MiB of ${m.heapTotalMiB.toFixed(0)}, external ${m.externalMiB.toFixed(0)} MiB ` +
    `(array buffers ${(m.arrayBuffersMiB ?? Number.NaN).toFixed(0)}) (gc ${m.gcMs.toFixed(0)} ms)`
  );
}

async function control<T>(nc: NatsConnection, op: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
  const msg = await nc.request(controlSubject('fleet', op), new TextEncoder().encode(JSON.stringify(args)), { timeout: timeoutMs });
  const value = JSON.parse(new TextDecoder().decode(msg.data)) as T & { error?: string };
  if (value && typeof value === 'object' && 'error' in value && value.error) throw new Error(`simulator ${op}: ${value.error}`);
  return value;
}

/** Every pool of the fleet through ListPools, every page; returns [pages, pools, sum of volume counts]. */
/**
 * JSON of the results: BigInts as strings, and each fan-out's latencies (one per delivery:
 * 125,000 at 500 events/s) as percentiles rather than every sample.
 */
function jsonValue(key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return String(value);
  if (key === 'latencyMs' && Array.isArray(value)) {
    const at = (p: number): number => Number(percentile(value as number[], p).toFixed(3));
    return { samples: value.length, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: at(100) };
  }
  return value;
}

/** Every page of ListPools over the whole fleet, in order; `pageMs` gets each call's time. */
async function listAllPools(api: StorageApi, pageSize = 0, pageMs?: number[]): Promise<{ pages: number; pools: number; volumes: number }> {
  let pageToken = '';
  let pages = 0;
  let pools = 0;
  let volumes = 0;
  do {
    const t0 = performance.now();
    const res = await api.listPools({ host: '', types: [], pageSize, pageToken }, { deadlineMs: 120_000 });
    pageMs?.push(performance.now() - t0);
    pages++;
    pools += res.pools.length;
    for (const p of res.pools) volumes += p.volumeCount;
    pageToken = res.nextPageToken;
  } while (pageToken);
  return { pages, pools, volumes };
}

/**
 * Milliseconds from `sinceWall` to the coordinator's first 'synced pools indexed' log line
 * (info level) written after `afterWall`, waiting up to 60 s for it; undefined when none comes.
 */
async function indexedAt(proc: ServiceProcess, sinceWall: number, afterWall: number): Promise<number | undefined> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && proc.alive) {
    for (const line of proc.logs().split('\n')) {
      if (!line.includes('"synced pools indexed"')) continue;
      const at = Date.parse((JSON.parse(line) as { time: string }).time);
      if (at >= afterWall) return at - sinceWall;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

async function waitForFleet(api: StorageApi, hosts: number, volumes: number, proc: ServiceProcess, sim: ServiceProcess, timeoutMs = SETUP_TIMEOUT_MS, intervalMs = 500): Promise<void> {
  await waitFor(`${hosts} hosts online`, async () => {
    if (!proc.alive) throw new AbortWait(new Error(`coordinator exited\n${proc.logTail()}`));
    if (!sim.alive) throw new AbortWait(new Error(`simulator exited\n${sim.logTail()}`));
    const { hosts: list } = await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 30_000 });
    return list.filter((h) => h.online).length >= hosts;
  }, { timeoutMs, intervalMs });
  await waitFor(`${volumes} volumes in the coordinator`, async () => (await listAllPools(api)).volumes === volumes, {
    timeoutMs,
    intervalMs,
  });
}

async function seedCatalog(nc: NatsConnection, hosts: number): Promise<void> {
  const catalog = await Catalog.open(nc);
  const work: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < hosts; i++) {
    const host = simHostId('sim', i);
    for (const p of simPools(i, POOLS, 0)) {
      work.push(() => catalog.create(host, p.definition.name, CatalogPool.create({ definition: p.definition, autostart: true, persistent: true })));
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 128 }, async () => {
      while (next < work.length) await work[next++]!();
    }),
  );
}

/** W watchers, each on its own connection, positioned at the stream's end; counts events tagged `tag`. */
async function fanout(address: string, api: StorageApi, nc: NatsConnection, tag: string, rate: number, pids: Record<string, number>): Promise<FanoutResult> {
  const clients: StorageServiceClient[] = [];
  const calls: ClientReadableStream<Event>[] = [];
  const latencies: number[] = [];
  let delivered = 0;
  let lastDelivery = 0;
  const perWatcher = new Array<number>(WATCHERS).fill(0);
  try {
    await Promise.all(
      Array.from({ length: WATCHERS }, (_, w) => {
        const client = new StorageServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
        clients.push(client);
        const call = client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: false });
        calls.push(call);
        call.on('data', (e: Event) => {
          if (!e.requestId.startsWith(`${tag}:`)) return;
          const now = performance.timeOrigin + performance.now();
          latencies.push(now - Number(e.requestId.slice(e.requestId.lastIndexOf(':') + 1)));
          delivered++;
          perWatcher[w]!++;
          lastDelivery = now;
        });
        call.on('error', () => undefined);
        return new Promise<void>((ok, fail) => {
          call.once('metadata', () => ok());
          call.once('error', fail);
        });
      }),
    );
    void api;
    const cpu0 = cpuMark(pids);
    const t0 = performance.timeOrigin + performance.now();
    const churn = await control<{ published: number; lastSequence: string; ms: number }>(nc, 'churn', { rate, seconds: EVENT_SECONDS, tag }, 600_000);
    const expected = churn.published * WATCHERS;
    await waitFor('every watcher to receive every event', () => delivered >= expected, { timeoutMs: 120_000, intervalMs: 50 }).catch(() => {
      log(`fan-out: ${delivered} of ${expected} deliveries after 120 s (min per watcher ${Math.min(...perWatcher)})`);
    });
    const seconds = ((lastDelivery || performance.timeOrigin + performance.now()) - t0) / 1000;
    const cpu = cpuMsSince(cpu0, pids, 1000, 2); // seconds
    log(`fan-out CPU seconds over ${seconds.toFixed(1)} s: ${JSON.stringify(cpu)}`);
    return { cpuSeconds: cpu, watchers: WATCHERS, published: churn.published, delivered, expected, eventsPerSec: delivered / seconds, latencyMs: latencies, offeredRate: rate };
  } finally {
    for (const c of calls) c.cancel();
    for (const c of clients) c.close();
  }
}

async function runSize(hosts: number): Promise<SizeResult> {
  const expectedVolumes = hosts * POOLS * VOLUMES;
  log(`--- ${hosts} hosts x ${POOLS} pools x ${VOLUMES} volumes = ${expectedVolumes} volumes`);
  const cleanups: Array<() => Promise<unknown>> = [];
  const tmp = makeTempDir('cistern-fleet-');
  ownDirs.add(tmp.path);
  cleanups.push(() => tmp.remove());
  let nats: NatsServer | undefined;
  try {
    nats = await startNats();
    ownDirs.add(dirname(nats.storeDir)).add(dirname(nats.process.logFile));
    const n = nats;
    cleanups.push(() => n.stop());
    const address = `127.0.0.1:${await freePort()}`;
    const coord = new Coordinator(nats.url, address, join(tmp.path, 'coord'), tmp.path);
    coord.spawn('first');
    cleanups.push(() => coord.proc!.dispose());
    // reconnects within 100 ms: the resync is timed by polling this client, and grpc-js's own
    // backoff (1 s, then x1.6 each attempt) put up to 3 s between the restarted coordinator
    // serving and the poll that noticed it
    const client = new StorageServiceClient(address, credentials.createInsecure(), {
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 100,
    });
    cleanups.push(async () => client.close());
    const api = promiseApi(client);
    await waitFor('coordinator to answer', async () => {
      if (!coord.proc!.alive) throw new AbortWait(new Error(`coordinator exited\n${coord.proc!.logTail()}`));
      await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2000 });
      return true;
    }, { timeoutMs: 60_000, intervalMs: 100 });
    const nc = await connectBus({ servers: nats.url, name: 'cistern-fleet-bench' });
    cleanups.push(() => nc.close());
    let t = performance.now();
    await seedCatalog(nc, hosts);
    log(`catalog seeded: ${hosts * POOLS} pools in ${fmtMs(performance.now() - t)}`);

    t = performance.now();
    const sim = ServiceProcess.spawn({
      name: 'sim-agents',
      command: process.execPath,
      args: [
        '--max-old-space-size=16384',
        SIM_ENTRY,
        '--nats', nats.url,
        '--hosts', String(hosts),
        '--pools', String(POOLS),
        '--volumes', String(VOLUMES),
        '--prefix', 'sim',
        '--heartbeat-ms', String(HEARTBEAT_MS),
        '--hosts-per-connection', String(HOSTS_PER_CONN),
        '--control-id', 'fleet',
        '--start-batch', String(START_BATCH),
        '--start-interval-ms', String(START_INTERVAL_MS),
        ...(env.FLEET_SYNC_FIRST === '0' ? [] : ['--sync-first']),
        ...(RESYNC_SPREAD_MS !== undefined ? ['--resync-spread-ms', String(RESYNC_SPREAD_MS)] : []),
      ],
    });
    ownDirs.add(dirname(sim.logFile));
    cleanups.push(() => sim.dispose());
    await waitFor('simulated fleet ready', () => {
      if (!sim.alive) throw new AbortWait(new Error(`simulator exited\n${sim.logTail()}`));
      return sim.logs().includes('"ready":true');
    }, { timeoutMs: SETUP_TIMEOUT_MS, intervalMs: 200 });
    log(`simulator ready in ${fmtMs(performance.now() - t)}: ${sim.logs().trim().split('\n').pop()}`);
    await waitForFleet(api, hosts, expectedVolumes, coord.proc!, sim);
    const initialSyncMs = performance.now() - t;
    log(`coordinator holds the whole fleet ${fmtMs(initialSyncMs)} after the simulator started`);
    // let the start-up traffic (second syncs asked by the coordinator, HOST_ONLINE) settle
    await new Promise((r) => setTimeout(r, 2000));

    const memory = await coord.memory();
    log(`memory: ${memoryLine(memory)}`);

    const listMs: number[] = [];
    const listPageMs: number[] = [];
    let pages = 0;
    if (ONLY.has('list')) await listAllPools(api); // warm-up
    // CPU per pass of every process on the machine's 2 cores: what the pass costs apart from waiting
    const pids = { coordinator: coord.proc!.pid, natsServer: nats.process.pid, simulator: sim.pid };
    const listCpu0 = cpuMark(pids);
    const listWall0 = performance.now();
    for (let i = 0; ONLY.has('list') && i < LIST_REPS; i++) {
      const t0 = performance.now();
      const r = await listAllPools(api, 0, listPageMs);
      listMs.push(performance.now() - t0);
      pages = r.pages;
      if (r.pools !== hosts * POOLS) throw new Error(`ListPools returned ${r.pools} pools, expected ${hosts * POOLS}`);
    }
    const listCpuMsPerPass = ONLY.has('list') ? cpuMsSince(listCpu0, pids, LIST_REPS) : undefined;
    log(`ListPools, ${pages} pages: p50 ${fmtMs(percentile(listMs, 50))}; one page p50 ${fmtMs(percentile(listPageMs, 50))} p99 ${fmtMs(percentile(listPageMs, 99))}; per pass: wall ${fmtMs((performance.now() - listWall0) / LIST_REPS)}, CPU ms ${JSON.stringify(listCpuMsPerPass)}`);
    // a client as cisternctl makes it (cli/client.ts): a 4 MiB window, so a page is not held
    // up by HTTP/2 window updates; the default client above is what any other program gets
    const listWideMs: number[] = [];
    const listMaxMs: number[] = [];
    let listMaxPages = 0;
    const listRawMs: number[] = [];
    if (ONLY.has('list')) {
      const wide = new StorageServiceClient(address, credentials.createInsecure(), { 'grpc-node.flow_control_window': 4 * 1024 * 1024 });
      try {
        const wideApi = promiseApi(wide);
        await listAllPools(wideApi); // warm-up
        for (let i = 0; i < LIST_REPS; i++) {
          const t0 = performance.now();
          await listAllPools(wideApi);
          listWideMs.push(performance.now() - t0);
        }
        // the largest page the server gives (services/coordinator/pagination.ts): fewer round trips
        for (let i = 0; i < LIST_REPS; i++) {
          const t0 = performance.now();
          listMaxPages = (await listAllPools(wideApi, MAX_PAGE_SIZE)).pages;
          listMaxMs.push(performance.now() - t0);
        }
      } finally {
        wide.close();
      }
      log(`ListPools, ${pages} pages, 4 MiB window: p50 ${fmtMs(percentile(listWideMs, 50))}; pages of ${MAX_PAGE_SIZE} (${listMaxPages}): p50 ${fmtMs(percentile(listMaxMs, 50))}`);
      // the service's share: the same default pages on the default client's channel, counted
      // rather than decoded (raw-pages.ts); the rest of the row above is the client's decoding
      await rawListAllPools(client);
      const rawCpu0 = cpuMark(pids);
      for (let i = 0; i < LIST_REPS; i++) {
        const t0 = performance.now();
        const r = await rawListAllPools(client);
        listRawMs.push(performance.now() - t0);
        if (r.pools !== hosts * POOLS) throw new Error(`raw ListPools returned ${r.pools} pools, expected ${hosts * POOLS}`);
      }
      log(`ListPools, ${pages} pages, pools not decoded: p50 ${fmtMs(percentile(listRawMs, 50))}; CPU ms per pass ${JSON.stringify(cpuMsSince(rawCpu0, pids, LIST_REPS))}`);
    }

    const names = ONLY.has('get') ? await control<string[]>(nc, 'sample', { count: GET_OPS }) : [];
    for (const name of names.slice(0, 50)) await api.getVolume({ name, refresh: false }); // warm-up
    const getMs: number[] = [];
    const slowGets: string[] = [];
    const getCpu0 = cpuMark(pids);
    const getWall0 = performance.now();
    for (const name of names) {
      const t0 = performance.now();
      await api.getVolume({ name, refresh: false });
      const ms = performance.now() - t0;
      getMs.push(ms);
      if (ms >= 5) slowGets.push(`${new Date(performance.timeOrigin + t0).toISOString().slice(11, 23)} ${ms.toFixed(1)}`);
    }
    const getCpuMs = names.length ? cpuMsSince(getCpu0, pids) : {};
    log(`GetVolume: p50 ${fmtMs(percentile(getMs, 50))} p99 ${fmtMs(percentile(getMs, 99))}; ${names.length} calls in ${fmtMs(performance.now() - getWall0)}, CPU ms ${JSON.stringify(getCpuMs)}`);
    if (slowGets.length) log(`GetVolume calls of 5 ms or more (start, ms): ${slowGets.join(', ')}`);
    // the same calls over one Session stream, as a client making many calls sends them
    const getSessionMs: number[] = [];
    if (names.length) {
      const session = new StorageSession(client);
      cleanups.push(async () => session.close());
      for (const name of names.slice(0, 50)) await session.call('getVolume', { name, refresh: false }); // warm-up
      const cpu0 = cpuMark(pids);
      for (const name of names) {
        const t0 = performance.now();
        await session.call('getVolume', { name, refresh: false });
        getSessionMs.push(performance.now() - t0);
      }
      log(`GetVolume over a Session: p50 ${fmtMs(percentile(getSessionMs, 50))} p99 ${fmtMs(percentile(getSessionMs, 99))}, CPU ms ${JSON.stringify(cpuMsSince(cpu0, pids))}`);
      session.close();
    }

    const fan: FanoutResult[] = [];
    for (const rate of ONLY.has('fanout') ? EVENT_RATES : []) {
      const f = await fanout(address, api, nc, `fanout${hosts}r${rate}`, rate, pids);
      fan.push(f);
      log(`fan-out at ${rate}/s: ${f.delivered}/${f.expected} deliveries, ${f.eventsPerSec.toFixed(0)} events/s, p50 ${fmtMs(percentile(f.latencyMs, 50))} p99 ${fmtMs(percentile(f.latencyMs, 99))}`);
      await new Promise((r) => setTimeout(r, 1000));
    }

    if (env.FLEET_LOG_DIR) copyFileSync(coord.proc!.logFile, join(env.FLEET_LOG_DIR, `coordinator-first-${hosts}.log`));
    // restart: stop, then start a new coordinator against the same NATS (catalog, host records)
    if (!ONLY.has('resync')) {
      await control(nc, 'stop').catch(() => undefined);
      return { hosts, pools: hosts * POOLS, volumes: expectedVolumes, initialSyncMs, memory, listPagesPerPass: pages, listMs, listPageMs, listCpuMsPerPass, listWideMs, listMaxMs, listMaxPages, listRawMs, getMs, getSessionMs, getCpuMs, fanout: fan, resync: { servingMs: Number.NaN, completeMs: Number.NaN, memory }, loadAvg: loadavg() };
    }
    // every simulated host's sync encoded beforehand, as 500 real agents would each have done
    // on their own CPU (sim-agent.ts prepareSyncs)
    await control(nc, 'prepare-syncs', {}, 600_000);
    const syncsBefore = (await control<{ syncsSent: number }>(nc, 'status')).syncsSent;
    await control(nc, 'loop-delay');
    await coord.proc!.dispose();
    const t1 = performance.now();
    const t1Wall = Date.now();
    const second = coord.spawn('restart');
    cleanups.push(() => second.dispose());
    let servingMs = Number.NaN;
    let completeMs = Number.NaN;
    let failure: string | undefined;
    try {
      await waitFor('restarted coordinator to serve', async () => {
        if (!second.alive) throw new AbortWait(new Error(`coordinator exited\n${second.logTail()}`));
        await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2000 });
        return true;
      }, { timeoutMs: RESYNC_TIMEOUT_MS, intervalMs: 20 });
      servingMs = performance.now() - t1;
      await waitForFleet(api, hosts, expectedVolumes, second, sim, RESYNC_TIMEOUT_MS - servingMs, 100);
      completeMs = performance.now() - t1;
    } catch (err) {
      failure = (err as Error).message.split('\n')[0]!;
    }
    const resyncCpu = cpuSeconds(second.pid);
    // what the restarted coordinator said about the fleet meanwhile (warn lines)
    const said = (m: string): number => second.logs().split(m).length - 1;
    const flaps = { offline: said('host offline: heartbeats stopped'), askedAgain: said('no full sync from a host that heartbeats; asking again') };
    const seen = await listAllPools(api).catch(() => ({ volumes: -1 }));
    const online = (await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 30_000 }).catch(() => ({ hosts: [] }))).hosts.filter((h) => h.online).length;
    const syncsSent = (await control<{ syncsSent: number }>(nc, 'status').catch(() => ({ syncsSent: Number.NaN }))).syncsSent - syncsBefore;
    // a stalled simulator stalls all its hosts' heartbeats at once, which no real fleet does
    const simStall = await control<{ maxMs: number; p99Ms: number }>(nc, 'loop-delay').catch(() => ({ maxMs: Number.NaN, p99Ms: Number.NaN }));
    log(
      `resync after restart: serving after ${fmtMs(servingMs)}, whole fleet in the cache by ${fmtMs(completeMs)}` +
        `${failure ? ` (NOT converged in ${fmtMs(RESYNC_TIMEOUT_MS)}: ${failure})` : ''}; ${online}/${hosts} online, ${seen.volumes}/${expectedVolumes} volumes; ` +
        `coordinator log: ${flaps.offline} x host offline, ${flaps.askedAgain} x sync asked again; ${syncsSent} full syncs sent by the fleet; ` +
        `coordinator CPU ${resyncCpu.toFixed(1)} s; simulator event loop stalled up to ${fmtMs(simStall.maxMs)} (p99 ${fmtMs(simStall.p99Ms)})`,
    );
    // the pools the syncs left as bytes are indexed once no sync has come for 500 ms
    // (services/coordinator/sync-intake.ts); the coordinator logs when it is done
    const indexedMs = failure ? undefined : await indexedAt(second, t1Wall, t1Wall + completeMs - 200);
    if (indexedMs !== undefined) log(`every synced pool indexed ${fmtMs(indexedMs)} after the spawn`);
    const memAfter = await coord.memory();
    log(`memory after the restart and resync: ${memoryLine(memAfter)}`);
    if (env.FLEET_LOG_DIR) copyFileSync(second.logFile, join(env.FLEET_LOG_DIR, `coordinator-restart-${hosts}.log`));
    await control(nc, 'stop').catch(() => undefined);
    return {
      hosts,
      pools: hosts * POOLS,
      volumes: expectedVolumes,
      initialSyncMs,
      memory,
      listPagesPerPass: pages,
      listMs,
      listPageMs,
      listCpuMsPerPass,
      listWideMs,
      listMaxMs,
      listMaxPages,
      listRawMs,
      getMs,
      getSessionMs,
      getCpuMs,
      fanout: fan,
      resync: { servingMs, completeMs, memory: memAfter, failure, ...flaps, online, volumesSeen: seen.volumes, syncsSent, cpuSeconds: resyncCpu, simulatorStallMs: simStall.maxMs, indexedMs },
      loadAvg: loadavg(),
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err) => log(`cleanup: ${(err as Error)?.message ?? err}`));
  }
}

function table(results: SizeResult[]): { header: string[]; rows: string[][] } {
  const header = ['figure', ...results.map((r) => `${r.hosts} hosts`), 'goal (500 hosts)'];
  const row = (name: string, f: (r: SizeResult) => string, goal = ''): string[] => [name, ...results.map(f), goal];
  const mib = (x: number): string => (x >= 1024 ? `${(x / 1024).toFixed(2)} GiB` : `${x.toFixed(0)} MiB`);
  const rows = [
    row('volumes (pools)', (r) => `${r.volumes.toLocaleString('en')} (${r.pools.toLocaleString('en')})`),
    row('coordinator RSS after full sync', (r) => mib(r.memory.rssMiB), '< 1 GiB'),
    row('coordinator heap used after GC', (r) => mib(r.memory.heapUsedMiB), '< 1 GiB'),
    row('coordinator RSS after restart + resync', (r) => mib(r.resync.memory.rssMiB)),
    row('  the same after a full GC / heap used after it', (r) => `${mib(r.resync.memory.rssAfterGcMiB)} / ${mib(r.resync.memory.heapUsedMiB)}`),
    row('ListPools whole fleet, all pages, p50', (r) => `${fmtMs(percentile(r.listMs, 50))} (${r.listPagesPerPass} pages)`, '< 50 ms'),
    row(`  one page of ${DEFAULT_PAGE_SIZE} (each call of those passes), p50 / p99`, (r) => (r.listPageMs?.length ? `${fmtMs(percentile(r.listPageMs, 50))} / ${fmtMs(percentile(r.listPageMs, 99))}` : 'n/a')),
    row('  the same, client with a 4 MiB HTTP/2 window (as cisternctl)', (r) => (r.listWideMs.length ? fmtMs(percentile(r.listWideMs, 50)) : 'n/a'), '< 50 ms'),
    row(`  that client, page_size ${MAX_PAGE_SIZE} (the largest page)`, (r) => (r.listMaxMs?.length ? `${fmtMs(percentile(r.listMaxMs, 50))} (${r.listMaxPages} pages)` : 'n/a')),
    row('  default client, pools counted not decoded (the service\'s share)', (r) => (r.listRawMs?.length ? fmtMs(percentile(r.listRawMs, 50)) : 'n/a')),
    row('  CPU per default pass: coordinator / bench client (ms)', (r) => (r.listCpuMsPerPass ? `${r.listCpuMsPerPass.coordinator} / ${r.listCpuMsPerPass.benchClient}` : 'n/a')),
    row('GetVolume p50 / p99', (r) => `${fmtMs(percentile(r.getMs, 50))} / ${fmtMs(percentile(r.getMs, 99))}`, 'p99 < 5 ms'),
    row('  the same calls over one Session, p50 / p99', (r) => (r.getSessionMs?.length ? `${fmtMs(percentile(r.getSessionMs, 50))} / ${fmtMs(percentile(r.getSessionMs, 99))}` : 'n/a'), 'p99 < 5 ms'),
    row('resync after coordinator restart (serving, whole fleet cached)', (r) =>
      r.resync.failure ? `NOT converged in ${fmtMs(RESYNC_TIMEOUT_MS)} (${r.resync.online}/${r.hosts} online, ${r.resync.volumesSeen} volumes)` : fmtMs(r.resync.completeMs), '< 10 s'),
    row('  during it: hosts marked offline / syncs asked again / full syncs sent', (r) => `${r.resync.offline ?? 0} / ${r.resync.askedAgain ?? 0} / ${r.resync.syncsSent ?? 'n/a'}`),
    row('  coordinator CPU seconds until then', (r) => (r.resync.cpuSeconds !== undefined ? r.resync.cpuSeconds.toFixed(1) : 'n/a')),
    row('  then every synced pool indexed (in the background), after', (r) => (r.resync.indexedMs !== undefined ? fmtMs(r.resync.indexedMs) : 'n/a')),
    ...EVENT_RATES.flatMap((rate, i) => [
      row(`fan-out, ${rate} events/s x ${WATCHERS} watchers: delivered/s`, (r) => (r.fanout[i] ? `${r.fanout[i]!.eventsPerSec.toFixed(0)} (${r.fanout[i]!.delivered}/${r.fanout[i]!.expected})` : 'n/a')),
      row(`fan-out, ${rate} events/s: latency p50 / p99`, (r) => (r.fanout[i] ? `${fmtMs(percentile(r.fanout[i]!.latencyMs, 50))} / ${fmtMs(percentile(r.fanout[i]!.latencyMs, 99))}` : 'n/a')),
    ]),
    row('initial sync (simulator start -> all in cache)', (r) => fmtMs(r.initialSyncMs)),
    row('load average (1 min) at end', (r) => r.loadAvg[0]!.toFixed(1)),
  ];
  return { header, rows };
}

async function main(): Promise<void> {
  log(`sizes ${SIZES.join(', ')} hosts; ${POOLS} pools x ${VOLUMES} volumes each; fan-out ${WATCHERS} watchers at ${EVENT_RATES.join(' and ')} events/s for ${EVENT_SECONDS} s`);
  const results: SizeResult[] = [];
  for (const hosts of SIZES) {
    try {
      results.push(await runSize(hosts));
    } catch (err) {
      log(`${hosts} hosts failed: ${(err as Error)?.stack ?? err}`);
      process.exitCode = 1;
    }
  }
  const { header, rows } = table(results);
  process.stdout.write(`\n${textTable(header, rows)}\n`);
  if (env.FLEET_MARKDOWN === '1') process.stdout.write(`\n${markdownTable(header, rows)}\n`);
  if (env.FLEET_JSON) writeFileSync(env.FLEET_JSON, JSON.stringify(results, jsonValue, 1));
}

let exiting = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (exiting) return;
    exiting = true;
    log(`${signal}: cleaning up`);
    void runAllCleanups().finally(() => process.exit(130));
  });
}

main()
  .then(() => runAllCleanups())
  .then(
    () => process.exit(process.exitCode ?? 0),
    async (err) => {
      process.stderr.write(`fleet bench failed: ${(err as Error)?.stack ?? err}\n`);
      await runAllCleanups().catch(() => undefined);
      process.exit(1);
    },
  );
