// `npm run bench:scaling`: how each workload's cost grows with its size, Cistern and libvirt 9.0
// side by side (issue 8). It runs the `pool10k` and `create` workloads of bench/workloads.ts
// unchanged, once per size, with the size set in their context:
//   pool:   refresh of a dir pool of N files (raw + qcow2), ListVolumes of N volumes (all pages),
//           `cisternctl vol-list --details` (a process); libvirt pool-refresh, vol-list --details
//   create: N sequential raw creates, then N deletes, one client / one virsh session
// and writes every sample to bench/results/scaling-<date>.json (after each size, so a failure
// keeps what was measured), then renders docs/img/scaling.svg from it (bench/scaling-chart.ts).
//
// Environment:
//   SCALING_SIZES=1000,10000,100000   volumes per pool (pool workload; creates default to these, capped)
//   SCALING_CREATE_SIZES=...          creates/deletes; default SCALING_SIZES capped at SCALING_CREATE_MAX
//   SCALING_CREATE_MAX=50000          the cap (100,000 creates + deletes take ~20 min a repetition here)
//   SCALING_REPS=3                    repetitions (median) for every pool size and creates <= 10,000
//   SCALING_LARGE_REPS=1              repetitions for creates above 10,000
//   SCALING_ONLY=pool,create          which workloads
//   SCALING_SIDES=both                or cistern / libvirt
//   SCALING_OUT=FILE                  results file (default bench/results/scaling-<date>.json)
//   SCALING_SVG=FILE                  chart (default docs/img/scaling.svg; `-` = none)
//   SCALING_MERGE=FILE                merge this run into an earlier results file (written back to
//                                     it): the points measured here replace that file's samples for
//                                     the sides run here, e.g. to redo one size or one side
//   SCALING_PRIORITY=-10              nice value for the bench and everything it starts
//   BENCH_TMPDIR, BENCH_LIBVIRT_URI   as for `npm run bench`
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, getPriority, loadavg, setPriority, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { repoRoot } from '../test/support/index.js';
import { poolName, type CisternSide } from './cistern.js';
import { Ctx, sizesFromEnv } from './context.js';
import { merge, renderScalingSvg, SIDES, type ScalingPoint, type ScalingResult, type ScalingRow, type Side } from './scaling-chart.js';
import { sidesFromEnv, startSides } from './sides.js';
import { fmtMs } from './stats.js';
import { WORKLOADS, type Workload } from './workloads.js';

function log(msg: string): void {
  process.stderr.write(`[scaling ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function sizeList(name: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined || value.trim() === '') return fallback;
  const out = value.split(',').map((s) => s.trim()).filter(Boolean).map((s) => Number(s.replace(/_/g, '')));
  for (const n of out) if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}='${value}': every size must be a positive whole number`);
  return [...new Set(out)].sort((a, b) => a - b);
}

function whole(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}='${v}' is not a positive whole number`);
  return n;
}

const ROWS: Omit<ScalingRow, 'points'>[] = [
  { id: 'refresh', title: 'Refresh of a dir pool (raw + qcow2)', cisternLabel: 'RefreshPool', libvirtLabel: 'virsh pool-refresh' },
  { id: 'list', title: 'List with details (API)', cisternLabel: 'ListVolumes, all pages', libvirtLabel: 'virsh vol-list --details' },
  { id: 'list-cli', title: 'List with details (CLI process)', cisternLabel: 'cisternctl vol-list --details', libvirtLabel: 'virsh vol-list --details' },
  { id: 'create', title: 'Sequential raw creates', cisternLabel: 'CreateVolume, 1 client', libvirtLabel: 'virsh vol-create-as' },
  { id: 'delete', title: 'Sequential deletes', cisternLabel: 'DeleteVolume, 1 client', libvirtLabel: 'virsh vol-delete' },
];

const WORKLOAD_OF: Record<string, string> = { pool: 'pool10k', create: 'create' };

function workload(id: string): Workload {
  const w = WORKLOADS.find((x) => x.id === id);
  if (!w) throw new Error(`workload ${id} not found in bench/workloads.ts`);
  return w;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Bytes a pool of `files` files takes (populatePoolDir: half qcow2 copies of ~196 KiB, every 10th raw with 64 KiB). */
function poolBytes(files: number): number {
  return Math.ceil(files / 2) * 200 * 1024 + Math.ceil(files / 10) * 68 * 1024 + files * 4096;
}

async function main(): Promise<void> {
  const sizes = sizeList('SCALING_SIZES', process.env.SCALING_SIZES, [1000, 10_000, 100_000]);
  const createMax = whole('SCALING_CREATE_MAX', 50_000);
  const createSizes = sizeList(
    'SCALING_CREATE_SIZES',
    process.env.SCALING_CREATE_SIZES,
    [...new Set(sizes.map((s) => Math.min(s, createMax)))],
  );
  const reps = whole('SCALING_REPS', 3);
  const largeReps = whole('SCALING_LARGE_REPS', 1);
  const only = (process.env.SCALING_ONLY ?? 'pool,create').split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of only) if (!WORKLOAD_OF[id]) throw new Error(`SCALING_ONLY: unknown workload '${id}'; known: ${Object.keys(WORKLOAD_OF).join(' ')}`);
  const sides = sidesFromEnv('SCALING_SIDES');
  const date = new Date().toISOString();
  const mergeInto = process.env.SCALING_MERGE ? resolve(process.env.SCALING_MERGE) : undefined;
  const earlier = mergeInto ? (JSON.parse(readFileSync(mergeInto, 'utf8')) as ScalingResult) : undefined;
  const out = resolve(process.env.SCALING_OUT ?? mergeInto ?? join(repoRoot, 'bench', 'results', `scaling-${date.slice(0, 10)}.json`));
  const svg = process.env.SCALING_SVG === '-' ? undefined : resolve(process.env.SCALING_SVG ?? join(repoRoot, 'docs', 'img', 'scaling.svg'));

  const priority = Number(process.env.SCALING_PRIORITY ?? '-10');
  try {
    setPriority(0, priority);
  } catch (err) {
    log(`could not set priority ${priority}: ${(err as Error).message}`);
  }

  const uptimeStart = sh('uptime', []);
  const t0 = Date.now();
  const samples: { t: number; load1: number }[] = [{ t: 0, load1: loadavg()[0]! }];
  const sampler = setInterval(() => samples.push({ t: Math.round((Date.now() - t0) / 1000), load1: +loadavg()[0]!.toFixed(2) }), 10_000);
  sampler.unref();

  const base = process.env.BENCH_TMPDIR ?? tmpdir();
  const work = mkdtempSync(join(base, 'cistern-scaling-'));
  log(`scratch ${work}; pool sizes ${sizes.join(',')}; create sizes ${createSizes.join(',')}; reps ${reps} (creates above 10,000: ${largeReps}); ${only.join(',')}; nice ${getPriority(0)}`);
  log(`uptime at start: ${uptimeStart}`);

  const rows: ScalingRow[] = ROWS.filter((r) => (only.includes('pool') ? true : !['refresh', 'list', 'list-cli'].includes(r.id)))
    .filter((r) => (only.includes('create') ? true : !['create', 'delete'].includes(r.id)))
    .map((r) => ({ ...r, points: [] }));
  const firstScan: NonNullable<ScalingResult['firstScan']> = [];
  const machine: Record<string, string> = {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: sh('uname', ['-r']),
    disk: sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', base]),
    node: process.version,
    scheduling: `nice ${getPriority(0)}`,
    libvirt: sh('libvirtd', ['--version']),
    nats: sh('nats-server', ['--version']),
  };
  const settings = { sizes, createSizes, createMax, reps, largeReps, only, sides };
  const result = (): ScalingResult => {
    const own: ScalingResult = { date, machine, settings, load: { uptimeStart, uptimeEnd: sh('uptime', []), samples }, rows, firstScan };
    return earlier ? merge(earlier, own, sides === 'both' ? SIDES : [sides as Side]) : own;
  };
  const save = (): void => {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result(), null, 1)}\n`);
  };

  // Ctrl-C / SIGTERM: keep what was measured, then everything stops in order (sides.ts)
  const both = await startSides(sides, work, log, () => {
    clearInterval(sampler);
    try {
      save();
    } catch {
      /* nothing measured yet */
    }
  });
  const { virsh, daemon, cistern } = both;
  let failures = 0;
  try {
    const plan: { id: string; size: number; reps: number }[] = [];
    for (const id of ['pool', 'create']) {
      if (!only.includes(id)) continue;
      for (const size of id === 'pool' ? sizes : createSizes) plan.push({ id, size, reps: id === 'create' && size > 10_000 ? largeReps : reps });
    }
    for (const step of plan) {
      const w = workload(WORKLOAD_OF[step.id]!);
      // The workloads read their size from the context: files for pool10k, creates for create.
      const wsizes = { ...sizesFromEnv({}), files: step.size, creates: step.size };
      const scan: { size: number; cistern?: number; libvirt?: number } = { size: step.size };
      const ctxLog = (msg: string): void => {
        const m = /^(libvirt pool-create-as|Cistern CreatePool) \(start \+ first scan\): (\d+) ms/.exec(msg);
        if (m) scan[m[1]!.startsWith('libvirt') ? 'libvirt' : 'cistern'] = Number(m[2]);
        log(`${step.id} ${step.size}: ${msg}`);
      };
      const ctx = (both.ctx = new Ctx(wsizes, work, virsh, daemon?.uri, cistern, ctxLog));
      const points = new Map<string, ScalingPoint>();
      for (const row of w.rows) {
        const r = rows.find((x) => x.id === row.id);
        if (!r) continue;
        const p: ScalingPoint = { size: step.size, reps: step.reps, cistern: [], libvirt: [], load: [+loadavg()[0]!.toFixed(2), 0] };
        r.points.push(p);
        points.set(row.id, p);
      }
      log(`${step.id} ${step.size}: start (${step.reps} repetitions), load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
      try {
        if (step.id === 'pool') {
          const need = poolBytes(step.size) * (sides === 'both' ? 2 : 1) * 1.2;
          const fs = statfsSync(work);
          if (fs.bavail * fs.bsize < need) throw new Error(`not enough free space in ${work}: ${(need / 1024 ** 3).toFixed(1)} GiB needed`);
        }
        await w.setup?.(ctx);
        if (step.id === 'pool') {
          firstScan.push(scan);
          // The first scan reaches the coordinator's cache through the event stream: wait
          // (untimed) until it holds every volume; the workload itself waits only 30 s.
          if (cistern) await waitForVolumeCount(cistern, 'cs-big', step.size, 900_000);
        }
        for (let rep = 0; rep < step.reps; rep++) {
          const order: Side[] = rep % 2 === 0 ? ['libvirt', 'cistern'] : ['cistern', 'libvirt'];
          const line: string[] = [];
          for (const side of order) {
            if (side === 'cistern' && !cistern) continue;
            if (side === 'libvirt' && !virsh) continue;
            const res = side === 'cistern' ? await w.cistern(ctx, rep) : await w.libvirt(ctx, rep);
            for (const [id, sample] of Object.entries(res)) {
              const p = points.get(id);
              if (!p || typeof sample !== 'number') continue;
              p[side].push(+sample.toFixed(3));
              line.push(`${id} ${side === 'cistern' ? 'C' : 'L'} ${fmtMs(sample)}`);
            }
          }
          log(`${step.id} ${step.size}: rep ${rep + 1}/${step.reps}: ${line.join('; ')}`);
        }
        await w.teardown?.(ctx);
      } catch (err) {
        failures++;
        const msg = (err as Error)?.message ?? String(err);
        log(`${step.id} ${step.size}: FAILED: ${(err as Error)?.stack ?? msg}`);
        for (const p of points.values()) {
          if (sides === 'both') p.error = msg.slice(0, 500);
          else p.errors = { [sides]: msg.slice(0, 500) };
        }
        await ctx.dropAll();
        await w.teardown?.(ctx).catch(() => undefined);
        for (const name of ['lv-big', 'cs-big', 'templates']) rmSync(join(work, name), { recursive: true, force: true });
      }
      for (const p of points.values()) p.load![1] = +loadavg()[0]!.toFixed(2);
      save();
    }
  } finally {
    clearInterval(sampler);
    await both.stop();
  }
  const final = result();
  writeFileSync(out, `${JSON.stringify(final, null, 1)}\n`);
  log(`results written to ${out}`);
  log(`uptime at end: ${sh('uptime', [])}`);
  if (svg) {
    mkdirSync(dirname(svg), { recursive: true });
    writeFileSync(svg, renderScalingSvg(final));
    log(`chart written to ${svg}`);
  }
  const { scalingMarkdown } = await import('./scaling-chart.js');
  process.stdout.write(`\n${scalingMarkdown(final)}\n`);
  if (failures > 0) throw new Error(`${failures} workload size(s) failed; see the log and the "error" fields in ${out}`);
}

async function waitForVolumeCount(cs: CisternSide, pool: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < deadline) {
    seen = (await cs.api.getPool({ name: poolName(pool) }, { deadlineMs: 60_000 })).volumeCount;
    if (seen === count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the coordinator's cache shows ${seen} volumes in ${pool} after ${timeoutMs / 1000} s, expected ${count}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? err}`);
    process.exit(1);
  },
);
