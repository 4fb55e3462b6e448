// The tables of a recorded run (BENCH_JSON=FILE of `npm run bench`) as Markdown, for
// docs/benchmarks.md: the summary the run printed, every sample, and the machine. So the
// docs' figures can be checked against, and regenerated from, the file that holds them.
//   node dist/bench/report.js bench/results/bench-2026-11-27-s13.json
import { readFileSync } from 'node:fs';
import { markdownTable } from './stats.js';
import { SUMMARY_HEADER, summarize } from './summary.js';
import { WORKLOADS, type Row, type Sample } from './workloads.js';

interface RecordedRun {
  date: string;
  reps: number;
  machine: Record<string, string>;
  rows: { id: string; title: string; target: string; cistern: Sample[]; libvirt: Sample[] }[];
}

const ROWS = new Map<string, Row>(WORKLOADS.flatMap((w) => w.rows.map((r) => [r.id, r] as const)));

function main(file: string | undefined): void {
  if (!file) throw new Error('usage: node dist/bench/report.js RESULTS.json');
  const run = JSON.parse(readFileSync(file, 'utf8')) as RecordedRun;
  const summary = run.rows.map((r) => {
    // a row no longer in the bench keeps its recorded target text, without a verdict
    const row = ROWS.get(r.id) ?? { id: r.id, title: () => r.title, target: { kind: 'info' as const, text: r.target } };
    return summarize({ row, title: r.title, cistern: r.cistern, libvirt: r.libvirt });
  });
  const out: string[] = [`Run of ${run.date}, median of ${run.reps} repetitions (latency rows: p50 / p99 over every call).`, '', markdownTable(SUMMARY_HEADER, summary), ''];
  const timed = run.rows.filter((r) => !r.cistern.some(Array.isArray) && !r.libvirt.some(Array.isArray));
  const ms = (xs: Sample[]): string => xs.map((x) => Math.round(x as number)).join(' ');
  out.push('Samples (ms), in repetition order:', '', markdownTable(['row', 'Cistern', 'libvirt'], timed.map((r) => [r.id, ms(r.cistern), ms(r.libvirt)])), '');
  out.push(markdownTable(['', ''], Object.entries(run.machine)), '');
  process.stdout.write(out.join('\n'));
}

main(process.argv[2]);
