// `npm run bench`: every workload side by side, Cistern and libvirt 9.0, on this machine, in one run.
//
// Environment:
//   BENCH_REPS=5          repetitions per workload (the table shows the median)
//   BENCH_QUICK=1         small sizes (100 creates, 1,000 files ...) for a fast check
//   BENCH_ONLY=a,b        workload ids: create pool10k qcow2 wipe clone control concurrent
//                         (default: all; BENCH_ONLY=issue2 = create,pool10k)
//   BENCH_SIDES=both      or libvirt / cistern (run one side only)
//   BENCH_JSON=FILE       also write every sample as JSON
//   BENCH_MARKDOWN=1      also print the table as Markdown (for docs/benchmarks.md)
//   BENCH_TMPDIR=DIR      where pools live (default the OS temp dir; same filesystem for both sides)
//   BENCH_LIBVIRT_URI=URI use a running libvirtd instead of starting a private one
//   sizes: BENCH_CREATES BENCH_FILES BENCH_QCOW2 BENCH_WIPE_MIB BENCH_CLONE_MIB BENCH_CLONE_DATA_MIB
//          BENCH_CONTROL_OPS BENCH_CONCURRENT_CREATES BENCH_CLIENTS
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, getPriority, loadavg, setPriority, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Ctx, sizesFromEnv } from './context.js';
import { countVirshChildren } from './libvirt.js';
import { sidesFromEnv, startSides } from './sides.js';
import { fmtMs, markdownTable, percentile, textTable } from './stats.js';
import { SUMMARY_HEADER, summarize, type RowResult } from './summary.js';
import { WORKLOADS, type Sample, type Workload } from './workloads.js';


function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function selectWorkloads(): Workload[] {
  const only = (process.env.BENCH_ONLY ?? '').trim();
  if (!only) return WORKLOADS;
  const ids = only === 'issue2' ? ['create', 'pool10k'] : only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!WORKLOADS.some((w) => w.id === id)) throw new Error(`BENCH_ONLY: unknown workload '${id}'; known: ${WORKLOADS.map((w) => w.id).join(' ')}`);
  }
  return WORKLOADS.filter((w) => ids.includes(w.id));
}

function machine(): Record<string, string> {
  const sh = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  const base = process.env.BENCH_TMPDIR ?? tmpdir();
  return {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: sh('uname', ['-r']),
    disk: sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '-T', base]),
    node: process.version,
    scheduling: process.env.BENCH_RT === '1' ? 'SCHED_RR 10 (BENCH_RT=1)' : `nice ${getPriority(0)}`,
    load: `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (at the end of the run)`,
    libvirt: sh('libvirtd', ['--version']),
    nats: sh('nats-server', ['--version']),
  };
}

async function main(): Promise<void> {
  const reps = Number(process.env.BENCH_REPS ?? '5');
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`BENCH_REPS='${process.env.BENCH_REPS}' is not a positive whole number`);
  const sides = sidesFromEnv('BENCH_SIDES');
  // The machine is shared: raise the bench's scheduling priority (inherited by everything it
  // starts, on both sides) so builds running beside it disturb the figures less.
  const priority = Number(process.env.BENCH_PRIORITY ?? '-10');
  try {
    setPriority(0, priority);
  } catch (err) {
    log(`could not set priority ${priority}: ${(err as Error).message}`);
  }
  log(`scheduling priority (nice) ${getPriority(0)} for the bench and everything it starts`);
  // BENCH_RT=1: round-robin real-time scheduling (chrt -r) for the bench and, by inheritance,
  // everything it starts on both sides: a stand-in for a quiet machine when others load it.
  if (process.env.BENCH_RT === '1') {
    const r = spawnSync('chrt', ['-a', '-r', '-p', '10', String(process.pid)], { encoding: 'utf8' });
    log(r.status === 0 ? 'real-time round-robin scheduling (chrt -r 10) for the bench and everything it starts' : `chrt failed: ${r.stderr}`);
  }
  const sizes = sizesFromEnv();
  const workloads = selectWorkloads();
  const work = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), 'cistern-bench-'));
  log(`scratch ${work}; ${reps} repetitions; sizes ${JSON.stringify(sizes)}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const results = new Map<string, RowResult>();
  const both = await startSides(sides, work, log);
  const { virsh, daemon, cistern } = both;
  try {
    const ctx = (both.ctx = new Ctx(sizes, work, virsh, daemon?.uri, cistern, log));

    for (const w of workloads) {
      log(`workload ${w.id}: setup`);
      await w.setup?.(ctx);
      for (const row of w.rows) results.set(row.id, { row, title: row.title(ctx), cistern: [], libvirt: [] });
      for (let rep = 0; rep < reps; rep++) {
        // Alternate which side goes first, so neither always gets the warmer cache.
        const order: ('cistern' | 'libvirt')[] = rep % 2 === 0 ? ['libvirt', 'cistern'] : ['cistern', 'libvirt'];
        for (const side of order) {
          if (side === 'cistern' && !cistern) continue;
          if (side === 'libvirt' && !virsh) continue;
          const out = side === 'cistern' ? await w.cistern(ctx, rep) : await w.libvirt(ctx, rep);
          for (const [id, sample] of Object.entries(out)) {
            const r = results.get(id);
            if (!r) continue;
            if (Array.isArray(sample) && sample.length === 0) continue;
            r[side].push(sample);
          }
        }
        const line = w.rows
          .map((row) => {
            const r = results.get(row.id)!;
            const last = (xs: Sample[]): string => {
              const x = xs[xs.length - 1];
              return x === undefined ? '-' : Array.isArray(x) ? `p50 ${fmtMs(percentile(x, 50))}` : fmtMs(x);
            };
            return `${row.id} C ${last(r.cistern)} L ${last(r.libvirt)}`;
          })
          .join('; ');
        log(`workload ${w.id}: rep ${rep + 1}/${reps}: ${line}`);
      }
      await w.teardown?.(ctx);
    }
    if (virsh) log(`virsh processes started for sequential work: 1 (pid ${virsh.pid}); virsh children now: ${countVirshChildren()}`);
  } finally {
    await both.stop();
  }

  const header = SUMMARY_HEADER;
  const rows = [...results.values()].map(summarize);
  process.stdout.write(`\nCistern vs libvirt, median of ${reps} repetitions${process.env.BENCH_QUICK === '1' ? ' (quick sizes)' : ''}\n\n`);
  process.stdout.write(`${textTable(header, rows)}\n`);
  const m = machine();
  process.stdout.write(`\nmachine: ${Object.entries(m).map(([k, v]) => `${k}=${v}`).join('; ')}\n`);
  if (process.env.BENCH_MARKDOWN === '1') process.stdout.write(`\n${markdownTable(header, rows)}\n`);
  if (process.env.BENCH_JSON) {
    const json = {
      date: new Date().toISOString(),
      reps,
      sizes,
      machine: m,
      rows: [...results.values()].map((r) => ({ id: r.row.id, title: r.title, target: r.row.target.text, cistern: r.cistern, libvirt: r.libvirt })),
    };
    writeFileSync(process.env.BENCH_JSON, JSON.stringify(json, null, 2));
    log(`samples written to ${process.env.BENCH_JSON}`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`failed: ${(err as Error)?.stack ?? err}`);
    process.exit(1);
  },
);
