// The coordinator's sync intake alone, in this process: the full syncs of N simulated hosts
// (bench/fleet/sim-agent.ts, the bytes they send) split and applied into a fresh FleetCache,
// as after a coordinator restart. Prints CPU and garbage collection per volume, so a change to
// the intake can be measured without the fleet's other processes competing for the CPU; then
// the time to read every pool once (the first read indexes what the intake kept as bytes).
//   node dist/bench/intake.js      (INTAKE_HOSTS=100 INTAKE_POOLS=20 INTAKE_VOLUMES=100 INTAKE_REPS=3)
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { FleetCache } from '../services/coordinator/cache.js';
import { assembleChunk, type SyncAssembly } from '../services/coordinator/sync-intake.js';
import { splitHostSync } from '../services/coordinator/volume-wire.js';
import { SimHost } from './fleet/sim-agent.js';

const HOSTS = Number(process.env.INTAKE_HOSTS ?? '100');
const POOLS = Number(process.env.INTAKE_POOLS ?? '20');
const VOLUMES = Number(process.env.INTAKE_VOLUMES ?? '100');
const REPS = Number(process.env.INTAKE_REPS ?? '7');

const noEvents = { publish: () => undefined, flush: async () => 0n };

async function main(): Promise<void> {
  const messages: Array<{ host: string; data: Uint8Array }> = [];
  let bytes = 0;
  for (let i = 0; i < HOSTS; i++) {
    const host = new SimHost({ index: i, prefix: 'intake', pools: POOLS, volumes: VOLUMES, events: noEvents });
    for (const data of host.syncMessages()) {
      messages.push({ host: host.id, data });
      bytes += data.length;
    }
  }
  const volumes = HOSTS * POOLS * VOLUMES;
  process.stdout.write(`${HOSTS} hosts, ${volumes.toLocaleString('en-US')} volumes, ${messages.length} chunks, ${(bytes / 2 ** 20).toFixed(0)} MiB\n`);
  // gc entries come asynchronously: each is counted in the phase its start time falls in
  const gcs: Array<{ start: number; ms: number; minor: boolean }> = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      gcs.push({ start: e.startTime, ms: e.duration, minor: kind === constants.NODE_PERFORMANCE_GC_MINOR });
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const gcBetween = (from: number, to: number): { ms: number; scavenges: number } => {
    let ms = 0;
    let scavenges = 0;
    for (const g of gcs) {
      if (g.start < from || g.start >= to) continue;
      ms += g.ms;
      // minor GCs: their number follows the bytes allocated (a measure the load does not blur)
      if (g.minor) scavenges++;
    }
    return { ms, scavenges };
  };
  for (let rep = 0; rep < REPS; rep++) {
    const cache = new FleetCache();
    const assembling = new Map<string, SyncAssembly>();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const m of messages) {
      const done = assembleChunk(assembling, m.host, splitHostSync(m.data));
      if (done && done !== 'dropped') cache.replaceHost(m.host, done.snapshot);
    }
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const hostIds = Array.from({ length: HOSTS }, (_, i) => `intake-${String(i).padStart(4, '0')}`);
    let counted = 0;
    for (const h of hostIds) for (const p of cache.poolsOfHost(h)) counted += cache.runtimePool(h, p)?.volumeCount ?? 0;
    // then every pool read once: what the pools kept as bytes (cache.ts PendingVolumes) cost when first read
    const t2 = performance.now();
    let held = 0;
    for (const h of hostIds) for (const p of cache.poolsOfHost(h)) held += cache.volumeNames(h, p).length;
    const t3 = performance.now();
    if (counted !== volumes || held !== volumes) throw new Error(`the cache counts ${counted} and holds ${held} volumes, expected ${volumes}`);
    await new Promise((r) => setTimeout(r, 50));
    const intakeGc = gcBetween(t0, t1);
    const readGc = gcBetween(t2, t3);
    process.stdout.write(
      `rep ${rep + 1}: intake wall ${(t1 - t0).toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, ` +
        `${(((t1 - t0) * 1000) / volumes).toFixed(2)} µs/volume, gc ${intakeGc.ms.toFixed(0)} ms (${intakeGc.scavenges} scavenges); ` +
        `then every pool read once: ${(t3 - t2).toFixed(0)} ms, gc ${readGc.ms.toFixed(0)} ms\n`,
    );
    gcs.length = 0;
  }
  obs.disconnect();
}

await main();
