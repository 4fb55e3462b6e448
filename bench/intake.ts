// The coordinator's sync intake alone, in this process: the full syncs of N simulated hosts
// (bench/fleet/sim-agent.ts, the bytes they send) split and applied into a fresh FleetCache,
// as after a coordinator restart. Prints CPU and garbage collection per volume, so a change to
// the intake can be measured without the fleet's other processes competing for the CPU.
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
  let gcMs = 0;
  let scavenges = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      // minor GCs: their number follows the bytes allocated (a measure the load does not blur)
      if (((e as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  for (let rep = 0; rep < REPS; rep++) {
    const cache = new FleetCache();
    const assembling = new Map<string, SyncAssembly>();
    gcMs = 0;
    scavenges = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (const m of messages) {
      const done = assembleChunk(assembling, m.host, splitHostSync(m.data));
      if (done && done !== 'dropped') cache.replaceHost(m.host, done.snapshot);
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setTimeout(r, 50)); // gc entries are delivered asynchronously
    let held = 0;
    for (let i = 0; i < HOSTS; i++) for (const p of cache.poolsOfHost(`intake-${String(i).padStart(4, '0')}`)) held += cache.volumeNames(`intake-${String(i).padStart(4, '0')}`, p).length;
    if (held !== volumes) throw new Error(`the cache holds ${held} volumes, expected ${volumes}`);
    process.stdout.write(
      `rep ${rep + 1}: wall ${wall.toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, ` +
        `${((wall * 1000) / volumes).toFixed(2)} µs/volume, gc ${gcMs.toFixed(0)} ms (${scavenges} scavenges)\n`,
    );
  }
  obs.disconnect();
}

await main();
