// The light listing decoder (cli/volume-rows.ts) and its table (renderVolumeListing) against the
// generated decoder and renderVolumeList: the same fields and the same bytes of output, for
// generated volumes encoded the way the server encodes them and with what a newer server or
// another encoder may add (unknown fields, fields out of order or repeated).
import { expect } from 'chai';
import fc from 'fast-check';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  BackingStore, ListVolumesResponse, Volume, VolumeDefinition, VolumeTarget, VolumeType,
} from '../../../libs/proto/cistern/v1/storage.js';
import { VolumeListing } from '../../../cli/volume-rows.js';
import { renderVolumeList, renderVolumeListing, volumePath, volumeShortName } from '../../../cli/format/volume.js';
import { prettySize } from '../../../cli/format/size.js';
import { sortByName } from '../../../cli/format/order.js';
import { FakeApi, run, volume } from './fake-api.js';

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 1n << 40n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constantFrom(0n, 1023n, 1024n, 1152n, 1073741824n, (1n << 53n) - 1n, 1n << 53n, (1n << 64n) - 1n),
);
const text = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9._-]{0,20}$/),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }), // astral characters, lone surrogates (sent as U+FFFD)
  fc.constantFrom('Zeta', 'alpha', 'ALPHA', 'a\tb', 'x\x7fy', '\u00e9t\u00e9', '\ufeffbom', '\ud83d\ude00'),
);
const resourceName = fc.oneof(
  fc.tuple(text, text, text).map(([h, p, v]) => `hosts/${h}/pools/${p}/volumes/${v}`),
  text,
  fc.constantFrom('a/b/c/d/e/f/g', 'hosts/a/pools/p/volumes/', '/////'),
);

const definitionArb = fc.record({
    type: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    name: text,
    key: text,
    capacity: fc.option(u64, { nil: undefined }),
    allocation: fc.option(u64, { nil: undefined }),
    physical: fc.option(u64, { nil: undefined }),
    target: fc.option(fc.record({ path: text, format: text, compat: text, clusterSize: u64, nocow: fc.boolean() }), { nil: undefined }),
    backingStore: fc.option(fc.record({ path: text, format: text }), { nil: undefined }),
    state: fc.option(text, { nil: undefined }),
  });

const volumeArb = fc.record({
  name: resourceName,
  host: text,
  pool: text,
  stale: fc.boolean(),
  revision: u64,
  definition: fc.option(definitionArb, { nil: undefined }),
  // a second definition field later in the message: it replaces the first one whole
  again: fc.option(definitionArb, { nil: undefined }),
});
type VolumeSpec = typeof volumeArb extends fc.Arbitrary<infer T> ? T : never;

/** An unknown field (number 11-3000: none of these messages has one) of any wire type. */
const unknownField = fc.record({
  no: fc.integer({ min: 11, max: 3000 }),
  kind: fc.constantFrom('varint', 'fixed64', 'bytes', 'fixed32', 'group'),
  value: u64,
  bytes: fc.uint8Array({ maxLength: 20 }),
}).map(({ no, kind, value, bytes }) => {
  const w = new BinaryWriter();
  switch (kind) {
    case 'varint': w.uint32(no << 3).uint64(value); break;
    case 'fixed64': w.uint32((no << 3) | 1).fixed64(value); break;
    case 'bytes': w.uint32((no << 3) | 2).bytes(bytes); break;
    case 'fixed32': w.uint32((no << 3) | 5).fixed32(Number(value & 0xffffffffn)); break;
    case 'group': w.uint32((no << 3) | 3).uint32(8).uint64(value).uint32((no << 3) | 4); break;
  }
  return w.finish();
});

/** How one message is put on the wire: its fields one by one, shuffled, some twice, unknown ones between. */
const layout = fc.record({
  seed: fc.integer(),
  twice: fc.array(fc.nat(), { maxLength: 2 }),
  unknown: fc.array(unknownField, { maxLength: 3 }),
  plain: fc.boolean(), // as the generated encoder writes it
});
type Layout = typeof layout extends fc.Arbitrary<infer T> ? T : never;

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

function arrange(fields: Uint8Array[], how: Layout): Uint8Array {
  if (how.plain) return concat(fields);
  const parts = [...fields];
  for (const t of how.twice) if (fields.length) parts.push(fields[t % fields.length]!);
  parts.push(...how.unknown);
  let s = how.seed;
  for (let i = parts.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
  }
  return concat(parts);
}

function field(no: number, body: Uint8Array): Uint8Array {
  return new BinaryWriter().uint32((no << 3) | 2).bytes(body).finish();
}

/** Each set field encoded alone by the generated encoder (its exact bytes), then arranged. */
function encodeVolume(spec: VolumeSpec, how: [Layout, Layout, Layout]): Uint8Array {
  const one = (p: Partial<Volume>) => Volume.encode(Volume.fromPartial(p)).finish();
  const fields: Uint8Array[] = [one({ name: spec.name }), one({ host: spec.host }), one({ pool: spec.pool }), one({ stale: spec.stale }), one({ revision: spec.revision })];
  const d = spec.definition;
  if (d) {
    const dOne = (p: Partial<VolumeDefinition>) => VolumeDefinition.encode(VolumeDefinition.fromPartial(p)).finish();
    const dFields: Uint8Array[] = [dOne({ type: d.type }), dOne({ name: d.name }), dOne({ key: d.key }), dOne({ state: d.state })];
    if (d.capacity !== undefined) dFields.push(dOne({ capacity: d.capacity }));
    if (d.allocation !== undefined) dFields.push(dOne({ allocation: d.allocation }));
    if (d.physical !== undefined) dFields.push(dOne({ physical: d.physical }));
    if (d.backingStore) dFields.push(field(9, BackingStore.encode(BackingStore.fromPartial(d.backingStore)).finish()));
    if (d.target) {
      const tOne = (p: Partial<VolumeTarget>) => VolumeTarget.encode(VolumeTarget.fromPartial(p)).finish();
      const t = d.target;
      dFields.push(field(8, arrange([tOne({ path: t.path }), tOne({ format: t.format }), tOne({ compat: t.compat }), tOne({ clusterSize: t.clusterSize }), tOne({ nocow: t.nocow })], how[2])));
    }
    fields.push(field(4, arrange(dFields, how[1])));
  }
  if (spec.again) {
    const again = VolumeDefinition.fromPartial({ ...spec.again, state: spec.again.state ?? undefined });
    return concat([arrange(fields, how[0]), field(4, VolumeDefinition.encode(again).finish())]);
  }
  return arrange(fields, how[0]);
}

/** vol-list's order: virsh's (g_ascii_strcasecmp), as every other listing sorts. */
function sorted(vols: Volume[]): Volume[] {
  return sortByName(vols, volumeShortName);
}

describe('cli light listing decoder (cli/volume-rows.ts)', () => {
  it('reads what the generated decoder reads, and prints the same table, for generated volumes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(volumeArb, fc.tuple(layout, layout, layout)), { maxLength: 12 }), text, (vols, token) => {
        const page = concat([...vols.map(([v, how]) => field(1, encodeVolume(v, how))), ListVolumesResponse.encode(ListVolumesResponse.fromPartial({ nextPageToken: token })).finish()]);
        const expected = ListVolumesResponse.decode(page);
        const listing = new VolumeListing();
        expect(listing.addPage(page)).to.equal(expected.nextPageToken);
        expect(listing.count).to.equal(expected.volumes.length);
        expected.volumes.forEach((v, i) => {
          expect(listing.name(i), 'name').to.equal(volumeShortName(v));
          expect(listing.path(i), 'path').to.equal(volumePath(v));
          expect(listing.type[i], 'type').to.equal(v.definition?.type ?? 0);
          expect(BigInt(listing.capacityOf(i)), 'capacity').to.equal(v.definition?.capacity ?? 0n);
          expect(BigInt(listing.allocationOf(i)), 'allocation').to.equal(v.definition?.allocation ?? 0n);
        });
        for (const details of [false, true]) {
          for (const quiet of [false, true]) {
            expect(renderVolumeListing(listing, details, quiet)).to.equal(renderVolumeList(sorted(expected.volumes), details, quiet));
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('orders names that are not ASCII as virsh 9.0 does: only A-Z folded, then UTF-8 bytes', async () => {
    // `virsh vol-list u` (libvirt 9.0) of a dir pool holding these volumes printed them in this order
    const virsh = ['\u00c4b', '\u00c9b', '\u00e1pool', '\u00e4a', '\u00e9a', '\uff41z', '\ud83d\ude00y'];
    const api = new FakeApi(['a']);
    api.volumes = ['\u00e9a', '\u00c9b', '\uff41z', '\ud83d\ude00y', '\u00c4b', '\u00e1pool', '\u00e4a'].map((n) => volume('a', 'u', n, 1024n, 4096n, `/u/${n}`));
    const r = await run(api, ['-q', 'vol-list', 'a/u']);
    expect(api.callsOf('listVolumesBytes')).to.have.length.above(0);
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.trim().split(/ +/)[0])).to.deep.equal(virsh);
  });

  it('pages add up; a page that does not decode is an error and adds nothing', () => {
    const a = [volume('h', 'p', 'b.img', 1024n, 0n), volume('h', 'p', 'a.img', 2048n, 1n)];
    const b = [volume('h', 'p', 'c.img', 3n << 40n, 5n)];
    const first = ListVolumesResponse.encode({ volumes: a, nextPageToken: 'next' }).finish();
    const second = ListVolumesResponse.encode({ volumes: b, nextPageToken: '' }).finish();
    const listing = new VolumeListing();
    expect(listing.addPage(first)).to.equal('next');
    expect(() => listing.addPage(second.subarray(0, second.length - 3))).to.throw();
    expect(() => ListVolumesResponse.decode(second.subarray(0, second.length - 3))).to.throw();
    expect(listing.count).to.equal(2);
    expect(listing.addPage(second)).to.equal('');
    expect([0, 1, 2].map((i) => listing.name(i))).to.deep.equal(['b.img', 'a.img', 'c.img']);
    expect(renderVolumeListing(listing, true, false)).to.equal(renderVolumeList(sorted([...a, ...b]), true, false));
  });

  it('prettySize of a number prints what it prints for the same bigint', () => {
    fc.assert(
      fc.property(fc.oneof(fc.bigInt({ min: 0n, max: 1n << 53n }), fc.bigInt({ min: 0n, max: 1n << 47n }), fc.bigInt({ min: 0n, max: 1n << 20n })), (n) => {
        expect(prettySize(Number(n))).to.equal(prettySize(n));
      }),
      { numRuns: 2000 },
    );
    expect(prettySize(1152)).to.equal('1.12 KiB');
    expect(prettySize(1408)).to.equal('1.38 KiB');
    expect(prettySize(0)).to.equal('0.00 B');
  });

  it('vol-list prints the same with and without the wire-bytes path (a server API without it)', async () => {
    const api = new FakeApi(['a']);
    api.pools = [];
    api.volumes = [
      volume('a', 'p', 'Zeta.qcow2', 5n << 30n, 200704n, '/p/Zeta.qcow2'),
      volume('a', 'p', 'alpha\tx', 1152n, 0n, '/p/\u00e9t\u00e9'),
      volume('a', 'p', 'beta', 1n << 60n, 1n, '/p/beta'),
    ];
    api.volumes.push(Volume.create({ name: 'hosts/a/pools/p/volumes/odd', definition: VolumeDefinition.create({ type: VolumeType.VOLUME_TYPE_BLOCK, capacity: 10485760n }) }));
    for (const args of [['vol-list', 'a/p'], ['vol-list', 'a/p', '--details'], ['vol-list', 'a/p', '--details', '-q'], ['-q', 'vol-list', 'a/p']]) {
      const light = await run(api, args);
      expect(api.callsOf('listVolumesBytes')).to.have.length.above(0);
      const plain = new FakeApi(['a']);
      plain.volumes = api.volumes;
      plain.listVolumesBytes = undefined;
      const full = await run(plain, args);
      expect(plain.callsOf('listVolumes')).to.have.length(1);
      expect(light).to.deep.equal(full);
    }
    const json = await run(api, ['vol-list', 'a/p', '--json']);
    expect(JSON.parse(json.stdout).map((v: { name: string }) => v.name)).to.deep.equal(['alpha\tx', 'beta', 'odd', 'Zeta.qcow2']);
  });
});
