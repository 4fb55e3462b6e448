// The scaling chart renderer (bench/scaling-chart.ts): what a reader of docs/img/scaling.svg sees.
import { expect } from 'chai';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { failed, merge, renderScalingSvg, scalingMarkdown, seriesPoints, type ScalingResult } from '../../../bench/scaling-chart.js';

function result(): ScalingResult {
  const point = (size: number, c: number[], l: number[]) => ({ size, reps: c.length, cistern: c, libvirt: l, load: [2, 3] as [number, number] });
  return {
    date: '2026-11-25T21:00:00.000Z',
    machine: { cpus: '2 x test' },
    settings: {},
    load: { uptimeStart: 'load average: 1.00, 1.00, 1.00', uptimeEnd: 'load average: 2.00, 2.00, 2.00', samples: [{ t: 0, load1: 1 }] },
    rows: [
      {
        id: 'refresh',
        title: 'Refresh of a dir pool',
        cisternLabel: 'RefreshPool',
        libvirtLabel: 'pool-refresh',
        points: [point(1000, [30, 20, 25], [50, 40, 45]), point(10_000, [200, 210, 190], [400, 390, 410]), point(100_000, [2500], [4000])],
      },
      {
        id: 'create',
        title: 'Sequential <raw> creates',
        cisternLabel: 'CreateVolume',
        libvirtLabel: 'vol-create-as',
        // libvirt failed at the largest size: its line has two points
        points: [point(1000, [5000, 5100, 4900], [3000, 2900, 3100]), point(10_000, [52_000], [31_000]), { size: 50_000, reps: 1, cistern: [260_000], libvirt: [], error: 'virsh died' }],
      },
    ],
  };
}

type Node = Record<string, unknown>;
const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

function parse(svg: string): Node {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['g', 'text', 'polyline', 'circle', 'rect', 'line'].includes(name) });
  return parser.parse(svg) as Node;
}

/** Every element named `tag` anywhere under `node`. */
function all(node: unknown, tag: string): Node[] {
  const out: Node[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    for (const [k, v] of Object.entries(n as Node)) {
      if (k === tag) out.push(...(asArray(v) as Node[]));
      walk(v);
    }
  };
  walk(node);
  return out;
}

const textOf = (t: Node | string): string => (typeof t === 'string' ? t : String(t['#text'] ?? ''));

describe('scaling chart (bench/scaling-chart)', () => {
  it('is a well-formed SVG document with a title and one panel per workload', () => {
    const svg = renderScalingSvg(result());
    expect(XMLValidator.validate(svg)).to.equal(true);
    const doc = parse(svg);
    const root = doc.svg as Node;
    expect(root['@xmlns']).to.equal('http://www.w3.org/2000/svg');
    const panels = all(root, 'g').filter((g) => g['@class'] === 'panel');
    expect(panels.map((g) => g['@data-row'])).to.deep.equal(['refresh', 'create']);
    // a title with markup characters is escaped, and comes back as written
    const titles = all(root, 'text').filter((t) => t['@class'] === 'title').map(textOf);
    expect(titles).to.deep.equal(['Refresh of a dir pool', 'Sequential <raw> creates']);
  });

  it('draws one polyline per series, with one vertex per measured size', () => {
    const doc = parse(renderScalingSvg(result()));
    const lines = all(doc, 'polyline');
    expect(lines.map((l) => l['@data-series'])).to.deep.equal(['refresh/cistern', 'refresh/libvirt', 'create/cistern', 'create/libvirt']);
    const vertices = (id: string): number[][] =>
      String(lines.find((l) => l['@data-series'] === id)!['@points'])
        .split(' ')
        .map((p) => p.split(',').map(Number));
    expect(vertices('refresh/cistern')).to.have.length(3);
    expect(vertices('create/cistern')).to.have.length(3);
    expect(vertices('create/libvirt')).to.have.length(2);
    // larger sizes lie further right, larger times higher up (smaller y in SVG)
    const r = vertices('refresh/cistern');
    expect(r[0]![0]).to.be.below(r[1]![0]!);
    expect(r[1]![0]).to.be.below(r[2]![0]!);
    expect(r[0]![1]).to.be.above(r[2]![1]!);
    for (const [x, y] of lines.flatMap((l) => vertices(String(l['@data-series'])))) {
      expect(Number.isFinite(x) && Number.isFinite(y)).to.equal(true);
    }
    // a marker per point: circles for Cistern, squares for libvirt (panels only)
    const panels = all(doc, 'g').filter((g) => g['@class'] === 'panel');
    expect(panels.flatMap((g) => all(g, 'circle'))).to.have.length(6);
  });

  it('labels both axes with sizes and times, and has a legend naming both systems', () => {
    const doc = parse(renderScalingSvg(result()));
    const texts = all(doc, 'text');
    const labels = texts.filter((t) => t['@class'] === 'axis-label').map(textOf);
    expect(labels.filter((l) => l === 'volumes (log)')).to.have.length(2);
    expect(labels.filter((l) => l === 'time (log)')).to.have.length(2);
    const ticks = texts.filter((t) => t['@class'] === 'tick').map(textOf);
    expect(ticks).to.include.members(['1k', '10k', '100k', '50k', '10 ms', '1 s', '10 s']);
    const legend = all(doc, 'g').find((g) => g['@class'] === 'legend')!;
    const legendText = all(legend, 'text').map(textOf);
    expect(legendText).to.include.members(['Cistern', 'libvirt 9.0']);
  });

  it('says in the panel where a side failed, and keeps that size on the axis', () => {
    const doc = parse(renderScalingSvg(result()));
    const create = all(doc, 'g').find((g) => g['@data-row'] === 'create')!;
    const texts = all(create, 'text');
    expect(texts.filter((t) => t['@class'] === 'failure').map(textOf)).to.deep.equal(['libvirt failed at 50k']);
    expect(texts.filter((t) => t['@class'] === 'tick').map(textOf)).to.include('50k');
  });

  it('uses the median of the repetitions', () => {
    expect(seriesPoints(result().rows[0]!, 'cistern')).to.deep.equal([
      { size: 1000, ms: 25 },
      { size: 10_000, ms: 200 },
      { size: 100_000, ms: 2500 },
    ]);
  });

  it('renders a panel with no data without failing', () => {
    const r = result();
    r.rows.push({ id: 'list', title: 'List', cisternLabel: '', libvirtLabel: '', points: [] });
    const svg = renderScalingSvg(r);
    expect(XMLValidator.validate(svg)).to.equal(true);
    expect(all(parse(svg), 'polyline')).to.have.length(4);
  });

  it('prints the figures as a Markdown table, per volume too, with failed sizes marked', () => {
    const md = scalingMarkdown(result()).split('\n');
    expect(md[0]).to.match(/^\| workload \| volumes \|/);
    expect(md).to.include('| Refresh of a dir pool | 10,000 | 3 | 200 ms | 400 ms | 20 µs | 40 µs | 0.50 |');
    expect(md.find((l) => l.includes('| 50,000 |'))).to.contain('| failed |');
  });

  it('gives the repetitions each side really has, not the most any run of that point had', () => {
    const r = result();
    // Cistern's 100k point redone alone with one repetition and merged into a 3-repetition run
    // where libvirt failed: the record says reps 3, the point holds one sample
    r.rows[0]!.points[2] = { size: 100_000, reps: 3, cistern: [2500], libvirt: [], errors: { libvirt: 'too many volumes' } };
    // and one where the two sides hold different counts
    r.rows[0]!.points[1] = { size: 10_000, reps: 3, cistern: [200], libvirt: [400, 390, 410] };
    const md = scalingMarkdown(r).split('\n');
    expect(md.find((l) => l.startsWith('| Refresh of a dir pool | 100,000 |'))).to.match(/^\| Refresh of a dir pool \| 100,000 \| 1 \| 2\.50 s \| failed \|/);
    expect(md.find((l) => l.startsWith('| Refresh of a dir pool | 10,000 |'))).to.match(/^\| Refresh of a dir pool \| 10,000 \| 1 \/ 3 \|/);
    // the chart's note names every point a side measured once
    const legend = all(parse(renderScalingSvg(r)), 'g').find((g) => g['@class'] === 'legend')!;
    const note = all(legend, 'text').map(textOf).join(' ');
    expect(note).to.contain('refresh 10k (Cistern)');
    expect(note).to.contain('refresh 100k');
  });

  it('merges a later one-side run into earlier results: that side replaced, the other kept', () => {
    const earlier = result();
    // the earlier run failed at 100k for both sides
    earlier.rows[0]!.points[2] = { size: 100_000, reps: 3, cistern: [], libvirt: [], error: 'host went offline' };
    const later: ScalingResult = {
      ...result(),
      date: '2026-11-26T00:00:00.000Z',
      rows: [{ ...result().rows[0]!, points: [{ size: 100_000, reps: 3, cistern: [], libvirt: [4100, 3900, 4000] }] }],
      firstScan: [{ size: 100_000, libvirt: 70_000 }],
    };
    const m = merge(earlier, later, ['libvirt']);
    const p = m.rows[0]!.points.find((x) => x.size === 100_000)!;
    expect(p.libvirt).to.deep.equal([4100, 3900, 4000]);
    expect(failed(p, 'libvirt')).to.equal(false);
    expect(failed(p, 'cistern')).to.equal(true);
    expect(p.errors).to.deep.equal({ cistern: 'host went offline' });
    // other sizes and rows untouched, the earlier object unchanged, the later run listed
    expect(m.rows[0]!.points[0]).to.deep.equal(earlier.rows[0]!.points[0]);
    expect(m.rows[1]).to.deep.equal(earlier.rows[1]);
    expect(earlier.rows[0]!.points[2]!.error).to.equal('host went offline');
    expect(m.firstScan).to.deep.equal([{ size: 100_000, libvirt: 70_000 }]);
    expect(m.merged!.map((r) => r.date)).to.deep.equal(['2026-11-26T00:00:00.000Z']);
  });
});
