// The scaling chart: renders bench/results/scaling-<date>.json (written by bench/scaling.ts) as an
// SVG with log-log axes, one panel per workload, Cistern and libvirt as lines with points. No
// dependency: the SVG is written here. Also prints the figures as a Markdown table.
//
//   node dist/bench/scaling-chart.js bench/results/scaling-<date>.json [docs/img/scaling.svg] [--markdown]
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtMs, markdownTable, median } from './stats.js';

export type Side = 'cistern' | 'libvirt';
export const SIDES: readonly Side[] = ['cistern', 'libvirt'];

/** One size of one row: every repetition's time in ms, per side. */
export interface ScalingPoint {
  size: number;
  reps: number;
  cistern: number[];
  libvirt: number[];
  /** 1-minute load average when the point started and ended */
  load?: [number, number];
  /** the size failed for both sides (the run had both) */
  error?: string;
  /** the size failed for one side */
  errors?: Partial<Record<Side, string>>;
}

/** Whether a side failed at this point (and so has no samples). */
export function failed(p: ScalingPoint, side: Side): boolean {
  return p[side].length === 0 && Boolean(p.errors?.[side] ?? p.error);
}

export interface ScalingRow {
  /** refresh, list, list-cli, create, delete */
  id: string;
  /** the panel title */
  title: string;
  /** what each side runs */
  cisternLabel: string;
  libvirtLabel: string;
  points: ScalingPoint[];
}

export interface ScalingResult {
  date: string;
  machine: Record<string, string>;
  settings: Record<string, unknown>;
  load: { uptimeStart: string; uptimeEnd: string; samples: { t: number; load1: number }[] };
  rows: ScalingRow[];
  /** first scan when a pool is started, one run per size (not a median; not comparable across sides, see the doc) */
  firstScan?: { size: number; cistern?: number; libvirt?: number }[];
  /** later runs merged into this file (SCALING_MERGE): when, what, under what load */
  merged?: { date: string; settings: Record<string, unknown>; load: ScalingResult['load'] }[];
}

const COLORS: Record<Side, string> = { cistern: '#1f6fb4', libvirt: '#c8501e' };
const NAMES: Record<Side, string> = { cistern: 'Cistern', libvirt: 'libvirt 9.0' };

const PANEL_W = 330;
const PANEL_H = 250;
const MARGIN = { left: 62, right: 14, top: 30, bottom: 44 };
const COLS = 3;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** 1000 -> 1k, 50000 -> 50k, 1500 -> 1.5k */
export function fmtCount(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(2)}k`;
  return String(n);
}

/** Decade tick labels for a time axis in ms. */
export function fmtTick(ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)} s`;
  if (ms >= 1) return `${+ms.toPrecision(3)} ms`;
  return `${+(ms * 1000).toPrecision(3)} µs`;
}

const f = (x: number): string => x.toFixed(1);

/**
 * The repetitions behind a point's medians, from its samples: `n` when every side that has
 * samples has n, else `c / l` (Cistern / libvirt). Not `reps`: a point merged from a run with
 * fewer repetitions (SCALING_MERGE) keeps the larger count of the earlier record.
 */
export function repsText(p: ScalingPoint): string {
  const counts = SIDES.filter((side) => p[side].length > 0).map((side) => p[side].length);
  if (counts.length === 0) return String(p.reps);
  return counts.every((n) => n === counts[0]) ? String(counts[0]) : SIDES.map((side) => p[side].length).join(' / ');
}

/** A point where a side measured once: "row size", with the side's name when the other has more. */
function singleRepetition(row: ScalingRow, p: ScalingPoint): string | undefined {
  const measured = SIDES.filter((side) => p[side].length > 0);
  const once = measured.filter((side) => p[side].length === 1);
  if (once.length === 0) return undefined;
  const at = `${row.id} ${fmtCount(p.size)}`;
  return once.length === measured.length ? at : `${at} (${once.map((side) => NAMES[side].split(' ')[0]).join(', ')})`;
}

/** Medians of the points a side has samples for, in size order. */
export function seriesPoints(row: ScalingRow, side: Side): { size: number; ms: number }[] {
  return row.points
    .filter((p) => p[side].length > 0)
    .map((p) => ({ size: p.size, ms: median(p[side]) }))
    .sort((a, b) => a.size - b.size);
}

function panel(row: ScalingRow, x0: number, y0: number): string {
  const series = SIDES.map((side) => ({ side, pts: seriesPoints(row, side) }));
  const all = series.flatMap((s) => s.pts);
  const out: string[] = [];
  const pw = PANEL_W - MARGIN.left - MARGIN.right;
  const ph = PANEL_H - MARGIN.top - MARGIN.bottom;
  const left = x0 + MARGIN.left;
  const top = y0 + MARGIN.top;
  out.push(`<g class="panel" data-row="${esc(row.id)}">`);
  out.push(`<text class="title" x="${f(x0 + PANEL_W / 2)}" y="${f(y0 + 18)}" text-anchor="middle" font-weight="bold">${esc(row.title)}</text>`);
  out.push(`<rect x="${f(left)}" y="${f(top)}" width="${f(pw)}" height="${f(ph)}" fill="none" stroke="#888"/>`);
  if (all.length === 0) {
    out.push(`<text x="${f(left + pw / 2)}" y="${f(top + ph / 2)}" text-anchor="middle" fill="#888">no data</text>`, '</g>');
    return out.join('\n');
  }
  const failures = SIDES.flatMap((side) => row.points.filter((p) => failed(p, side)).map((p) => ({ side, size: p.size })));
  const sizes = [...new Set([...all, ...failures].map((p) => p.size))].sort((a, b) => a - b);
  // x: the measured sizes with some room either side; y: whole decades around the values
  const lx0 = Math.log10(sizes[0]!) - 0.15;
  const lx1 = Math.log10(sizes[sizes.length - 1]!) + 0.15;
  const ly0 = Math.floor(Math.log10(Math.min(...all.map((p) => p.ms))));
  let ly1 = Math.ceil(Math.log10(Math.max(...all.map((p) => p.ms))));
  if (ly1 <= ly0) ly1 = ly0 + 1;
  const X = (size: number): number => left + ((Math.log10(size) - lx0) / (lx1 - lx0)) * pw;
  const Y = (ms: number): number => top + ph - ((Math.log10(ms) - ly0) / (ly1 - ly0)) * ph;
  // y grid and labels at each decade
  for (let d = ly0; d <= ly1; d++) {
    const y = Y(10 ** d);
    out.push(`<line class="grid" x1="${f(left)}" y1="${f(y)}" x2="${f(left + pw)}" y2="${f(y)}" stroke="#ddd"/>`);
    out.push(`<text class="tick" x="${f(left - 5)}" y="${f(y + 4)}" text-anchor="end">${esc(fmtTick(10 ** d))}</text>`);
  }
  // x ticks at the measured sizes
  for (const s of sizes) {
    const x = X(s);
    out.push(`<line class="grid" x1="${f(x)}" y1="${f(top)}" x2="${f(x)}" y2="${f(top + ph)}" stroke="#eee"/>`);
    out.push(`<text class="tick" x="${f(x)}" y="${f(top + ph + 15)}" text-anchor="middle">${esc(fmtCount(s))}</text>`);
  }
  out.push(`<text class="axis-label" x="${f(left + pw / 2)}" y="${f(top + ph + 34)}" text-anchor="middle">volumes (log)</text>`);
  out.push(
    `<text class="axis-label" x="${f(x0 + 14)}" y="${f(top + ph / 2)}" text-anchor="middle" transform="rotate(-90 ${f(x0 + 14)} ${f(top + ph / 2)})">time (log)</text>`,
  );
  // linear-growth guide: slope 1 through libvirt's (else Cistern's) smallest point
  const anchor = (series[1]!.pts[0] ?? series[0]!.pts[0])!;
  if (sizes.length > 1) {
    const xa = 10 ** lx0;
    const xb = 10 ** lx1;
    let ya = (anchor.ms * xa) / anchor.size;
    let yb = (anchor.ms * xb) / anchor.size;
    // clip to the plot's y range
    const lo = 10 ** ly0;
    const hi = 10 ** ly1;
    let xs = xa;
    let xe = xb;
    if (ya < lo) { xs = (lo * anchor.size) / anchor.ms; ya = lo; }
    if (yb > hi) { xe = (hi * anchor.size) / anchor.ms; yb = hi; }
    if (xs < xe) out.push(`<line class="guide" x1="${f(X(xs))}" y1="${f(Y(ya))}" x2="${f(X(xe))}" y2="${f(Y(yb))}" stroke="#999" stroke-dasharray="2 3"/>`);
  }
  for (const { side, pts } of series) {
    if (pts.length === 0) continue;
    const color = COLORS[side];
    const dash = side === 'libvirt' ? ' stroke-dasharray="6 3"' : '';
    out.push(
      `<polyline class="series" data-series="${esc(row.id)}/${side}" fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.map((p) => `${f(X(p.size))},${f(Y(p.ms))}`).join(' ')}"/>`,
    );
    for (const p of pts) {
      const tip = `${NAMES[side]}, ${fmtCount(p.size)} volumes: ${fmtMs(p.ms)}`;
      if (side === 'cistern') out.push(`<circle cx="${f(X(p.size))}" cy="${f(Y(p.ms))}" r="3.5" fill="${color}"><title>${esc(tip)}</title></circle>`);
      else out.push(`<rect x="${f(X(p.size) - 3.5)}" y="${f(Y(p.ms) - 3.5)}" width="7" height="7" fill="${color}"><title>${esc(tip)}</title></rect>`);
    }
  }
  // a side that failed at a size: said in the panel, at that size
  failures.forEach(({ side, size }, i) => {
    out.push(`<text class="failure-mark" x="${f(X(size))}" y="${f(top + ph - 4 - i * 13)}" text-anchor="middle" fill="${COLORS[side]}" font-size="13">×</text>`);
    out.push(
      `<text class="failure" x="${f(X(size) - 10)}" y="${f(top + ph - 6 - i * 13)}" text-anchor="end" fill="${COLORS[side]}">${esc(`${NAMES[side].split(' ')[0]} failed at ${fmtCount(size)}`)}</text>`,
    );
  });
  out.push('</g>');
  return out.join('\n');
}

/** `items` joined by ', ' into lines of at most `width` characters (the legend is one panel wide). */
function wrap(items: string[], width: number): string[] {
  const lines: string[] = [];
  for (const item of items) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + 2 + item.length <= width) lines[last] += `, ${item}`;
    else lines.push(item);
  }
  return lines.map((l, i) => (i < lines.length - 1 ? `${l},` : l));
}

function legend(result: ScalingResult, x0: number, y0: number): string {
  const out: string[] = [`<g class="legend" transform="translate(${f(x0 + 20)} ${f(y0 + 40)})">`];
  out.push('<text x="0" y="0" font-weight="bold">Legend</text>');
  let y = 22;
  for (const side of SIDES) {
    const dash = side === 'libvirt' ? ' stroke-dasharray="6 3"' : '';
    out.push(`<line x1="0" y1="${y - 4}" x2="36" y2="${y - 4}" stroke="${COLORS[side]}" stroke-width="2"${dash}/>`);
    out.push(
      side === 'cistern'
        ? `<circle cx="18" cy="${y - 4}" r="3.5" fill="${COLORS[side]}"/>`
        : `<rect x="14.5" y="${y - 7.5}" width="7" height="7" fill="${COLORS[side]}"/>`,
    );
    out.push(`<text x="44" y="${y}">${esc(NAMES[side])}</text>`);
    y += 20;
  }
  out.push(`<line x1="0" y1="${y - 4}" x2="36" y2="${y - 4}" stroke="#999" stroke-dasharray="2 3"/>`);
  out.push(`<text x="44" y="${y}">linear growth (slope 1)</text>`);
  y += 26;
  const notes = [
    'Median of the repetitions per point;',
    'both axes logarithmic.',
    `Measured ${result.date.slice(0, 10)}.`,
  ];
  const single = result.rows.flatMap((r) => r.points.flatMap((p) => singleRepetition(r, p) ?? []));
  if (single.length > 0) notes.push('One repetition only:', ...wrap(single, 48));
  for (const n of notes) {
    out.push(`<text x="0" y="${y}" fill="#444">${esc(n)}</text>`);
    y += 16;
  }
  out.push('</g>');
  return out.join('\n');
}

/** The whole chart as an SVG document. */
export function renderScalingSvg(result: ScalingResult): string {
  const rows = result.rows;
  const cells = rows.length + 1; // + legend
  const nrows = Math.ceil(cells / COLS);
  const width = COLS * PANEL_W;
  const height = nrows * PANEL_H + 36;
  const parts: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>How cost grows with size: Cistern and libvirt 9.0</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">How each workload's time grows with the number of volumes: Cistern and libvirt 9.0</text>`,
  ];
  rows.forEach((row, i) => parts.push(panel(row, (i % COLS) * PANEL_W, 36 + Math.floor(i / COLS) * PANEL_H)));
  parts.push(legend(result, (rows.length % COLS) * PANEL_W, 36 + Math.floor(rows.length / COLS) * PANEL_H));
  parts.push('</svg>', '');
  return parts.join('\n');
}

/**
 * `earlier` with `run` merged in: each point `run` measured replaces, for the sides it ran, that
 * size's samples and failure in `earlier` (other sides and sizes are kept); first scans likewise.
 */
export function merge(earlier: ScalingResult, run: ScalingResult, sides: readonly Side[]): ScalingResult {
  const out = JSON.parse(JSON.stringify(earlier)) as ScalingResult;
  for (const row of run.rows) {
    let target = out.rows.find((r) => r.id === row.id);
    if (!target) out.rows.push((target = { ...row, points: [] }));
    for (const p of row.points) {
      let q = target.points.find((x) => x.size === p.size);
      if (!q) target.points.push((q = { size: p.size, reps: p.reps, cistern: [], libvirt: [] }));
      const errors = { ...q.errors };
      // a failure of both sides in the earlier run becomes each side's own
      if (q.error) for (const side of SIDES) errors[side] ??= q.error;
      delete q.error;
      for (const side of sides) {
        q[side] = p[side];
        const e = p.errors?.[side] ?? p.error;
        if (e) errors[side] = e;
        else delete errors[side];
      }
      q.reps = Math.max(q.reps, p.reps);
      if (Object.keys(errors).length > 0) q.errors = errors;
      else delete q.errors;
    }
    target.points.sort((a, b) => a.size - b.size);
  }
  for (const scan of run.firstScan ?? []) {
    out.firstScan ??= [];
    let q = out.firstScan.find((x) => x.size === scan.size);
    if (!q) out.firstScan.push((q = { size: scan.size }));
    for (const side of sides) if (scan[side] !== undefined) q[side] = scan[side];
  }
  out.merged = [...(out.merged ?? []), { date: run.date, settings: run.settings, load: run.load }];
  return out;
}

/** The figures as a Markdown table: one line per row and size. */
export function scalingMarkdown(result: ScalingResult): string {
  const header = ['workload', 'volumes', 'reps', 'Cistern', 'libvirt 9.0', 'Cistern per volume', 'libvirt per volume', 'C/L time'];
  const lines: string[][] = [];
  for (const row of result.rows) {
    for (const p of [...row.points].sort((a, b) => a.size - b.size)) {
      const c = p.cistern.length ? median(p.cistern) : Number.NaN;
      const l = p.libvirt.length ? median(p.libvirt) : Number.NaN;
      const per = (ms: number): string => (Number.isFinite(ms) ? fmtMs(ms / p.size) : 'n/a');
      const ratio = c / l;
      lines.push([
        row.title,
        p.size.toLocaleString('en-US'),
        repsText(p),
        Number.isFinite(c) ? fmtMs(c) : failed(p, 'cistern') ? 'failed' : 'n/a',
        Number.isFinite(l) ? fmtMs(l) : failed(p, 'libvirt') ? 'failed' : 'n/a',
        per(c),
        per(l),
        Number.isFinite(ratio) ? ratio.toFixed(ratio >= 10 ? 1 : ratio >= 0.1 ? 2 : 3) : 'n/a',
      ]);
    }
  }
  return markdownTable(header, lines);
}

function main(argv: string[]): void {
  const args = argv.filter((a) => !a.startsWith('--'));
  if (args.length < 1) throw new Error('usage: scaling-chart.js RESULTS.json [OUT.svg] [--markdown]');
  const result = JSON.parse(readFileSync(args[0]!, 'utf8')) as ScalingResult;
  if (args[1]) {
    writeFileSync(args[1], renderScalingSvg(result));
    process.stderr.write(`chart written to ${args[1]}\n`);
  }
  if (argv.includes('--markdown') || !args[1]) process.stdout.write(`${scalingMarkdown(result)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`scaling-chart: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
