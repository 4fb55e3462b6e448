// Event end-to-end latency: an agent's change published into the event stream -> a
// WatchEvents subscriber (gRPC) receiving it. Issue 6 target: p99 < 10 ms at 1,000 events/s.
//
//   npm run build && node dist/bench/events-latency.js
//
// Starts its own nats-server, coordinator and agent (bench/cistern.ts, the test harness's
// processes), a dir pool, and one WatchEvents subscriber on its own gRPC connection
// (filter: that pool, OPERATION_PROGRESS), positioned (x-cistern-start-sequence) before
// anything is sent.
//
// Row "paced": events are published at a fixed rate (default 1,000/s for 10 s, after a 1 s
// warm-up) through the agent's own publisher (libs/bus/events.ts EventPublisher: pipelined
// JetStream publishes on one connection, as services/agent publishes progress events) on the
// agent's host id and the pool. Latency = the subscriber's receipt - the publish call, both
// on the bench's monotonic clock (sub-millisecond). This is the whole event path: JetStream
// store, the coordinator's ordered consumer (and its cache reading the same stream), the
// filter, the gRPC stream.
//
// Row "agent": real changes made by the agent process: RefreshPool of an empty pool back to
// back (POOL_REFRESHED each), for BENCH_EVENTS_AGENT_SECONDS. Latency = receipt - the event's
// `time` (the agent's clock, whole milliseconds, same machine): resolution 1 ms, reads up to
// 1 ms high. Its rate is what one client's back-to-back calls reach, below 1,000/s.
//
// Environment: BENCH_EVENTS_RATE=1000, BENCH_EVENTS_SECONDS=10, BENCH_EVENTS_WARMUP_SECONDS=1,
// BENCH_EVENTS_AGENT_SECONDS=5 (0 skips the agent row), BENCH_MARKDOWN=1 (also a Markdown table),
// BENCH_PRIORITY=-10 (nice), BENCH_TMPDIR (where the pool lives).
// Everything it starts or creates is removed at the end, also when it fails.
import { credentials, type ClientReadableStream, type Metadata } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { getPriority, loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventPublisher } from '../libs/bus/events.js';
import { Event, EventKind, Progress, StorageServiceClient } from '../libs/proto/cistern/v1/storage.js';
import { HOST, createDirPool, destroyPool, poolName, startCistern, type CisternSide } from './cistern.js';
import { fmtMs, markdownTable, percentile, textTable } from './stats.js';

const PACED_POOL = 'evlat';
const AGENT_POOL = 'evlat-agent';

function log(msg: string): void {
  process.stderr.write(`[events-latency ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function numberEnv(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}='${raw}' is not a non-negative number`);
  return n;
}

interface Watch {
  call: ClientReadableStream<Event>;
  /** resolves with the start sequence once the server has positioned its reader */
  ready: Promise<string>;
}

function watch(client: StorageServiceClient, pool: string, kinds: EventKind[], onEvent: (e: Event, atMs: number) => void): Watch {
  const call = client.watchEvents({ afterSequence: 0n, hosts: [HOST], pools: [poolName(pool)], kinds, fromStart: false });
  const ready = new Promise<string>((resolve, reject) => {
    call.once('metadata', (md: Metadata) => resolve(String(md.get('x-cistern-start-sequence')[0] ?? '')));
    call.once('error', reject);
  });
  call.on('data', (e: Event) => onEvent(e, performance.now()));
  call.on('error', () => undefined); // CANCELLED at the end
  return { call, ready };
}

interface RowResult {
  title: string;
  sent: number;
  received: number;
  seconds: number;
  latencies: number[];
}

/** Waits until `done()` or `ms` passed. */
async function until(done: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!done() && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
}

/**
 * Publishes `rate` events/s for `seconds` with ids `${prefix}N`: on every timer tick, every
 * event whose slot (t0 + N/rate) has come. Returns the publish time of each id.
 */
async function publishPaced(
  publisher: EventPublisher,
  prefix: string,
  rate: number,
  seconds: number,
): Promise<{ sentAt: Map<string, number>; elapsed: number }> {
  const total = Math.round(rate * seconds);
  const sentAt = new Map<string, number>();
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    for (; i < due; i++) {
      const id = `${prefix}${i}`;
      const ev = Event.create({
        kind: EventKind.OPERATION_PROGRESS,
        host: HOST,
        pool: PACED_POOL,
        volume: 'bench.img',
        time: new Date(),
        principal: 'agent',
        requestId: id,
        progress: Progress.create({ operation: 'bench', done: BigInt(i), total: BigInt(total) }),
      });
      sentAt.set(id, performance.now());
      publisher.publish(ev);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await publisher.flush();
  return { sentAt, elapsed: (performance.now() - t0) / 1000 };
}

async function pacedRow(cistern: CisternSide, client: StorageServiceClient, rate: number, seconds: number, warmup: number): Promise<RowResult> {
  const received = new Map<string, number>();
  const w = watch(client, PACED_POOL, [EventKind.OPERATION_PROGRESS], (e, at) => {
    if (!received.has(e.requestId)) received.set(e.requestId, at);
  });
  const start = await w.ready;
  log(`paced: subscriber positioned at sequence ${start}`);
  const publisher = new EventPublisher(await cistern.nats());
  try {
    if (warmup > 0) {
      const warm = await publishPaced(publisher, 'warm-', rate, warmup);
      await until(() => [...warm.sentAt.keys()].every((k) => received.has(k)), 10_000);
      log(`paced: warm-up ${warm.sentAt.size} events`);
    }
    log(`paced: ${rate} events/s for ${seconds} s`);
    const run = await publishPaced(publisher, 'ev-', rate, seconds);
    await until(() => [...run.sentAt.keys()].every((k) => received.has(k)), 10_000);
    const latencies: number[] = [];
    for (const [id, at] of run.sentAt) {
      const got = received.get(id);
      if (got !== undefined) latencies.push(got - at);
    }
    return {
      title: `paced: ${rate.toLocaleString('en-US')} events/s for ${seconds} s (agent's EventPublisher)`,
      sent: run.sentAt.size,
      received: latencies.length,
      seconds: run.elapsed,
      latencies,
    };
  } finally {
    w.call.cancel();
  }
}

async function agentRow(cistern: CisternSide, client: StorageServiceClient, seconds: number): Promise<RowResult> {
  const latencies: number[] = [];
  const ids = new Set<string>();
  const w = watch(client, AGENT_POOL, [EventKind.POOL_REFRESHED], (e, at) => {
    if (!ids.has(e.requestId) || !e.time) return;
    ids.delete(e.requestId);
    latencies.push(performance.timeOrigin + at - e.time.getTime());
  });
  await w.ready;
  try {
    log(`agent: RefreshPool back to back for ${seconds} s`);
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < seconds * 1000) {
      const requestId = `agent-${n++}`;
      ids.add(requestId);
      await cistern.api.refreshPool({ name: poolName(AGENT_POOL), requestId }, { deadlineMs: 30_000 });
    }
    const elapsed = (performance.now() - t0) / 1000;
    await until(() => ids.size === 0, 10_000);
    return {
      title: `agent: RefreshPool back to back, ${Math.round(n / elapsed)} events/s (agent's clock, 1 ms resolution)`,
      sent: n,
      received: latencies.length,
      seconds: elapsed,
      latencies,
    };
  } finally {
    w.call.cancel();
  }
}

function table(rows: RowResult[]): { header: string[]; cells: string[][] } {
  const header = ['workload', 'events', 'received', 'rate/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'target p99 < 10 ms'];
  const cells = rows.map((r) => {
    const l = r.latencies;
    const p99 = percentile(l, 99);
    return [
      r.title,
      String(r.sent),
      String(r.received),
      String(Math.round(r.sent / r.seconds)),
      fmtMs(percentile(l, 50)),
      fmtMs(percentile(l, 90)),
      fmtMs(p99),
      fmtMs(percentile(l, 99.9)),
      fmtMs(l.length ? Math.max(...l) : Number.NaN),
      r.title.startsWith('paced') ? (r.received === r.sent && p99 < 10 ? 'yes' : 'NO') : '',
    ];
  });
  return { header, cells };
}

async function main(): Promise<void> {
  const rate = numberEnv('BENCH_EVENTS_RATE', 1000);
  const seconds = numberEnv('BENCH_EVENTS_SECONDS', 10);
  const warmup = numberEnv('BENCH_EVENTS_WARMUP_SECONDS', 1);
  const agentSeconds = numberEnv('BENCH_EVENTS_AGENT_SECONDS', 5);
  if (rate <= 0 || seconds <= 0) throw new Error('BENCH_EVENTS_RATE and BENCH_EVENTS_SECONDS must be positive');
  // the machine is shared: a higher priority (inherited by what it starts) disturbs the figures less
  const priority = Number(process.env.BENCH_PRIORITY ?? '-10');
  try {
    setPriority(0, priority);
  } catch (err) {
    log(`could not set priority ${priority}: ${(err as Error).message}`);
  }
  const work = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), 'cistern-events-latency-'));
  const onExit = (): void => rmSync(work, { recursive: true, force: true });
  process.on('exit', onExit);
  log(`nice ${getPriority(0)}; scratch ${work}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  let cistern: CisternSide | undefined;
  let client: StorageServiceClient | undefined;
  const pools: string[] = [];
  const rows: RowResult[] = [];
  try {
    cistern = await startCistern();
    log(`Cistern: nats ${cistern.natsUrl}, coordinator ${cistern.address}, agent ${HOST}`);
    // the subscriber on its own TCP connection, as a separate client would be
    client = new StorageServiceClient(cistern.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    mkdirSync(join(work, PACED_POOL));
    await createDirPool(cistern.api, PACED_POOL, join(work, PACED_POOL));
    pools.push(PACED_POOL);
    rows.push(await pacedRow(cistern, client, rate, seconds, warmup));
    if (agentSeconds > 0) {
      mkdirSync(join(work, AGENT_POOL));
      await createDirPool(cistern.api, AGENT_POOL, join(work, AGENT_POOL));
      pools.push(AGENT_POOL);
      rows.push(await agentRow(cistern, client, agentSeconds));
    }
  } finally {
    client?.close();
    for (const p of pools) await destroyPool(cistern!.api, p).catch((e: Error) => log(`destroying pool ${p}: ${e.message}`));
    await cistern?.stop().catch((e: Error) => log(`stopping Cistern: ${e.message}`));
    rmSync(work, { recursive: true, force: true });
    process.off('exit', onExit);
  }
  const { header, cells } = table(rows);
  process.stdout.write(`\n${textTable(header, cells)}\n`);
  process.stdout.write(`\nload average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (at the end of the run)\n`);
  if (process.env.BENCH_MARKDOWN === '1') process.stdout.write(`\n${markdownTable(header, cells)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
