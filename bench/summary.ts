// One table row per benchmark row: the median (or p50/p99 for latency rows) of each side, the
// ratio, and whether the target is met. Shared by the run (bench/run.ts) and by the report of a
// recorded run (bench/report.ts), so a table in the docs is what the run printed.
import { fmtMs, fmtRatio, median, percentile } from './stats.js';
import type { Row, Sample } from './workloads.js';

export interface RowResult {
  row: Row;
  title: string;
  cistern: Sample[];
  libvirt: Sample[];
}

export const SUMMARY_HEADER = ['workload', 'Cistern', 'libvirt 9.0', 'C/L time', 'speedup', 'target', 'met'];

function flat(samples: Sample[]): number[] {
  return samples.flatMap((s) => (Array.isArray(s) ? s : [s]));
}

export function summarize(r: RowResult): string[] {
  const t = r.row.target;
  if (t.kind === 'latency' || r.cistern.some(Array.isArray) || r.libvirt.some(Array.isArray)) {
    const c = flat(r.cistern);
    const l = flat(r.libvirt);
    const cs = c.length ? `p50 ${fmtMs(percentile(c, 50))} / p99 ${fmtMs(percentile(c, 99))}` : 'n/a';
    const ls = l.length ? `p50 ${fmtMs(percentile(l, 50))} / p99 ${fmtMs(percentile(l, 99))}` : 'n/a';
    const ratio = c.length && l.length ? percentile(c, 50) / percentile(l, 50) : Number.NaN;
    let met = '';
    if (t.kind === 'latency' && c.length) met = percentile(c, 50) < t.p50 && percentile(c, 99) < t.p99 ? 'yes' : 'NO';
    return [r.title, cs, ls, fmtRatio(ratio), Number.isFinite(ratio) ? `${fmtRatio(1 / ratio)}x` : 'n/a', t.text, met];
  }
  const c = median(r.cistern as number[]);
  const l = median(r.libvirt as number[]);
  const ratio = c / l;
  const met = t.kind === 'time' && Number.isFinite(ratio) ? (ratio <= t.maxRatio ? 'yes' : 'NO') : '';
  return [r.title, fmtMs(c), fmtMs(l), fmtRatio(ratio), Number.isFinite(ratio) ? `${fmtRatio(1 / ratio)}x` : 'n/a', t.text, met];
}
