// The cache's compact volumes (issue 8): what the wire scanner reads from a volume's bytes is
// what Volume.decode reads; a stored volume decodes to the volume it was made from; a HostSync
// split into pools and volume bytes holds what HostSync.decode gives.
import { expect } from 'chai';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { HostSync } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { Event, EventKind, Host, Pool, PoolState, Volume, VolumeDefinition, VolumeType } from '../../../libs/proto/cistern/v1/storage.js';
import { volumeShortName } from '../../../services/coordinator/cache.js';
import {
  decodeStored,
  prepareVolume,
  sameDefinitionBytes,
  storedRevision,
  storedSize,
  storeVolume,
  writeStored,
} from '../../../services/coordinator/stored-volume.js';
import { scanVolume, shortNameOf, snapshotPoolOf, splitHostSync, VOLUME_MESSAGES } from '../../../services/coordinator/volume-wire.js';
import { readFileSync } from 'node:fs';

/** A small deterministic generator (tests must not depend on Math.random). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['', 'vm', 'disk0.qcow2', 'lv-data', 'é-ünïcode', '日本', 'a/b', 'x'.repeat(40), 'y'.repeat(200)];

/** A volume with every field present or absent at random. */
function randomVolume(rnd: () => number): Volume {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const maybe = <T>(f: () => T): T | undefined => (rnd() < 0.5 ? f() : undefined);
  const big = (): bigint => pick([0n, 1n, 4096n, 1n << 40n, (1n << 64n) - 1n]);
  const name = pick(WORDS);
  const pool = pick(['', 'p', 'vmstore-01']);
  const path = pick(['', `/var/lib/${name}`, '/dev/vg/lv', 'ip-127.0.0.1:3260-iscsi-iqn.x-lun-1']);
  const key = pick(['', path, 'LVuuid-1234-abcd', '/other/key']);
  const definition = maybe(() =>
    VolumeDefinition.fromPartial({
      type: pick([VolumeType.VOLUME_TYPE_UNSPECIFIED, VolumeType.VOLUME_TYPE_FILE, VolumeType.VOLUME_TYPE_BLOCK]),
      name: pick(WORDS),
      key,
      capacity: maybe(big),
      allocation: maybe(big),
      physical: maybe(big),
      sourceDevices: rnd() < 0.3 ? [{ path: '/dev/sdb', extents: [{ start: 0n, end: big() }] }, { path: '/dev/sdc', extents: [] }] : [],
      target: maybe(() => ({
        path,
        format: pick(['', 'raw', 'qcow2']),
        permissions: maybe(() => ({ mode: 0o600, owner: pick([-1n, 0n, 107n]), group: 107n, label: pick(['', 'system_u:object_r:svirt_image_t:s0']) })),
        timestamps: maybe(() => ({ atime: '1700000000.123456789', mtime: '1700000001.5', ctime: '1700000001.5', btime: '' })),
        compat: pick(['', '1.1']),
        nocow: rnd() < 0.2,
        clusterSize: pick([0n, 65536n]),
        lazyRefcounts: rnd() < 0.2,
        encryption: maybe(() => ({ format: 'luks', secrets: [{ type: 'passphrase', uuid: 'u-1', usage: '' }], cipher: undefined, ivgen: undefined })),
      })),
      backingStore: maybe(() => ({ path: '/base.qcow2', format: 'qcow2', permissions: undefined })),
      state: maybe(() => pick(['', 'active'])),
    }),
  );
  return Volume.fromPartial({
    name: rnd() < 0.9 ? `hosts/h/pools/${pool || 'q'}/volumes/${name}` : '',
    host: pick(['', 'h']),
    pool,
    definition,
    stale: rnd() < 0.2,
    revision: pick([0n, 1n, 127n, 128n, 1n << 35n, 1n << 50n, (1n << 64n) - 1n]),
  });
}

const enc = (v: Volume): Uint8Array => Volume.encode(v).finish();

function expectFactsOf(bytes: Uint8Array, v: Volume): void {
  const f = scanVolume(bytes);
  expect(f.canonical, 'canonical').to.equal(true);
  expect(f.name).to.equal(v.name);
  expect(f.pool).to.equal(v.pool);
  expect(f.definitionName).to.equal(v.definition?.name ?? '');
  expect(f.key).to.equal(v.definition?.key ?? '');
  expect(f.path).to.equal(v.definition?.target?.path ?? '');
  expect(f.stale).to.equal(v.stale);
  expect(f.revision).to.equal(v.revision);
  expect(shortNameOf(f)).to.equal(volumeShortName(v));
  expect(snapshotPoolOf(f)).to.equal(v.pool || v.name.split('/')[3] || '');
}

/** bytes + one more field written by `more` inside a length-delimited wrapper or at the end. */
function withField(bytes: Uint8Array, more: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter();
  w.raw(bytes);
  more(w);
  return w.finish();
}

describe('compact volumes: the wire scanner and the stored form', () => {
  it('reads what Volume.decode reads, for 1,000 random volumes; ts-proto bytes are kept as they are', () => {
    const rnd = prng(8);
    for (let i = 0; i < 1000; i++) {
      const v = randomVolume(rnd);
      const bytes = enc(v);
      const decoded = Volume.decode(bytes);
      expectFactsOf(bytes, decoded);
      const p = prepareVolume(bytes);
      expect(Buffer.from(p.stored, 'latin1').equals(Buffer.from(bytes))).to.equal(true);
      expect(decodeStored(p.stored)).to.deep.equal(decoded);
      expect(storedRevision(p.stored)).to.equal(v.revision);
      // the decoded message stores the same bytes
      expect(storeVolume(decoded)).to.equal(p.stored);
    }
  });

  it('edge volumes: no definition, an empty one, no key, key != path, no target, no name', () => {
    const cases = [
      Volume.fromPartial({ name: 'hosts/h/pools/p/volumes/v', revision: 3n }),
      Volume.fromPartial({ name: 'hosts/h/pools/p/volumes/v', definition: VolumeDefinition.create() }),
      Volume.fromPartial({ pool: 'p', definition: { name: 'v', target: { path: '/p/v' } } }),
      Volume.fromPartial({ pool: 'p', definition: { name: 'lv', key: 'uuid-1', target: { path: '/dev/vg/lv' } }, revision: 9n }),
      Volume.fromPartial({ pool: 'p', definition: { name: 'v', key: '/p/v' } }),
      Volume.create(),
    ];
    for (const v of cases) {
      expectFactsOf(enc(v), v);
      expect(decodeStored(prepareVolume(enc(v)).stored)).to.deep.equal(Volume.decode(enc(v)));
    }
  });

  it('bytes that are not what ts-proto writes (unknown fields, repeats, defaults, bad UTF-8) are decoded and encoded again', () => {
    const v = Volume.fromPartial({ name: 'hosts/h/pools/p/volumes/v', pool: 'p', revision: 7n, definition: { name: 'v', key: 'k', target: { path: '/p/v', format: 'raw' } } });
    const defBytes = VolumeDefinition.encode(v.definition!).finish();
    const odd: Uint8Array[] = [
      withField(enc(v), (w) => w.uint32((9 << 3) | 0).uint32(5)), // unknown field at the end
      withField(enc(v), (w) => w.uint32((1 << 3) | 2).string('hosts/h/pools/p/volumes/w')), // name again, after revision
      withField(new Uint8Array(), (w) => w.uint32((1 << 3) | 2).string('')), // an empty string written
      withField(new Uint8Array(), (w) => w.uint32((5 << 3) | 0).bool(false)), // stale false written
      withField(new Uint8Array(), (w) => w.uint32((6 << 3) | 0).uint64(0n)), // revision 0 written
      withField(enc(Volume.fromPartial({ name: 'n' })), (w) => w.uint32((4 << 3) | 2).bytes(withField(defBytes, (d) => d.uint32((15 << 3) | 0).uint32(1)))), // unknown field in the definition
      withField(enc(Volume.fromPartial({ name: 'n' })), (w) => w.uint32((4 << 3) | 2).bytes(withField(defBytes, (d) => d.uint32((2 << 3) | 2).string('again')))), // definition name twice
      withField(new Uint8Array(), (w) => w.uint32((1 << 3) | 2).bytes(new Uint8Array([0x68, 0xff, 0x69]))), // invalid UTF-8
      withField(new Uint8Array(), (w) => w.uint32((6 << 3) | 2).string('x')), // revision with the wrong wire type
      new Uint8Array([0x10, 0x01]), // host as a varint
    ];
    for (const bytes of odd) {
      expect(scanVolume(bytes).canonical, Buffer.from(bytes).toString('hex')).to.equal(false);
      const decoded = Volume.decode(bytes);
      const p = prepareVolume(bytes);
      expect(decodeStored(p.stored)).to.deep.equal(decoded);
      expect(Buffer.from(p.stored, 'latin1').equals(Buffer.from(enc(decoded)))).to.equal(true);
      expect(shortNameOf(p.facts)).to.equal(volumeShortName(decoded));
      expect(p.facts.key).to.equal(decoded.definition?.key ?? '');
      expect(p.facts.path).to.equal(decoded.definition?.target?.path ?? '');
      expect(p.facts.revision).to.equal(decoded.revision);
    }
  });

  it('mutated and cut bytes: never thrown by the scanner; what it calls canonical reads like Volume.decode', () => {
    const rnd = prng(81);
    let canonical = 0;
    for (let i = 0; i < 5000; i++) {
      const bytes = Uint8Array.from(enc(randomVolume(rnd)));
      if (bytes.length === 0) continue;
      const mutated = rnd() < 0.3 ? bytes.subarray(0, Math.floor(rnd() * bytes.length)) : bytes;
      for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) mutated[Math.floor(rnd() * mutated.length)] = Math.floor(rnd() * 256);
      const facts = scanVolume(mutated);
      let decoded: Volume | undefined;
      try {
        decoded = Volume.decode(mutated);
      } catch {
        decoded = undefined;
      }
      if (!facts.canonical) {
        // the cache falls back to Volume.decode: same outcome as before
        if (decoded) expect(decodeStored(prepareVolume(mutated).stored)).to.deep.equal(decoded);
        else expect(() => prepareVolume(mutated)).to.throw();
        continue;
      }
      // bytes kept as they are decode without error when read, to the facts the scanner saw
      expect(decoded, Buffer.from(mutated).toString('hex')).to.not.equal(undefined);
      canonical++;
      expectFactsOf(mutated, decoded!);
    }
    expect(canonical).to.be.greaterThan(100);
  });

  it('writes the stored bytes with the stale flag of the view, as Volume.encode does', () => {
    const rnd = prng(5);
    for (let i = 0; i < 500; i++) {
      const v = randomVolume(rnd);
      const stored = storeVolume(v);
      for (const stale of [false, true]) {
        const want = Buffer.from(enc({ ...v, stale }));
        expect(storedSize(stored, stale)).to.equal(want.length);
        const out = Buffer.alloc(want.length + 4, 0xee);
        expect(writeStored(out, 2, stored, stale)).to.equal(2 + want.length);
        expect(out.subarray(2, 2 + want.length).equals(want)).to.equal(true);
        expect(out[0]).to.equal(0xee);
        expect(out[want.length + 2]).to.equal(0xee);
      }
    }
  });

  it('tells a volume whose definition bytes did not change', () => {
    const v = Volume.fromPartial({ name: 'n', definition: { name: 'v', capacity: 5n } });
    expect(sameDefinitionBytes(storeVolume({ ...v, revision: 3n }), storeVolume({ ...v, revision: 9n, stale: true }))).to.equal(true);
    expect(sameDefinitionBytes(storeVolume(v), storeVolume({ ...v, definition: { ...v.definition!, capacity: 6n } }))).to.equal(false);
    expect(sameDefinitionBytes(storeVolume({ ...v, definition: undefined }), storeVolume({ ...v, definition: undefined, revision: 2n }))).to.equal(true);
  });

  it('knows every message-typed field inside Volume, as proto/cistern/v1/storage.proto declares them', () => {
    const proto = readFileSync(new URL('../../../../proto/cistern/v1/storage.proto', import.meta.url), 'utf8').replace(/\/\/.*$/gm, '');
    const enums = new Set([...proto.matchAll(/^\s*enum (\w+)/gm)].map((m) => m[1]!));
    const messages = new Map<string, Record<number, string>>();
    for (const m of proto.matchAll(/^message (\w+) \{([^}]*)\}/gm)) {
      const fields: Record<number, string> = {};
      for (const f of m[2]!.matchAll(/^\s*(?:repeated |optional )?([\w.]+) \w+ = (\d+);/gm)) {
        if (/^[A-Z]/.test(f[1]!) && !enums.has(f[1]!)) fields[Number(f[2])] = f[1]!;
      }
      messages.set(m[1]!, fields);
    }
    const want: Record<string, Record<number, string>> = {};
    const visit = (name: string): void => {
      if (want[name]) return;
      want[name] = messages.get(name)!;
      expect(want[name], name).to.not.equal(undefined);
      for (const sub of Object.values(want[name]!)) visit(sub);
    };
    visit('Volume');
    expect(VOLUME_MESSAGES).to.deep.equal(want);
  });

  it('splits a HostSync into what HostSync.decode gives, the volumes as their bytes', () => {
    const rnd = prng(3);
    const volumes = Array.from({ length: 50 }, () => randomVolume(rnd));
    const pools = [Pool.fromPartial({ name: 'hosts/h/pools/p', host: 'h', state: PoolState.POOL_STATE_RUNNING, revision: 4n, capacity: 10n })];
    const msg = HostSync.fromPartial({
      syncId: 's-1',
      chunk: 2,
      last: true,
      host: Host.fromPartial({ hostId: 'h', hostname: 'h.example', poolCount: 1 }),
      pools,
      volumes,
      revision: 99n,
      bootId: 7n,
      eventsLost: [Event.fromPartial({ kind: EventKind.VOLUME_DELETED, host: 'h', pool: 'p', volume: 'v', volumeState: volumes[0] })],
      reason: 'event publish failed',
    });
    for (const bytes of [HostSync.encode(msg).finish(), withField(HostSync.encode(msg).finish(), (w) => w.uint32((12 << 3) | 2).string('future'))]) {
      const want = HostSync.decode(bytes);
      const got = splitHostSync(bytes);
      expect({ ...got, volumes: got.volumes.map((b) => Volume.decode(b)) }).to.deep.equal(want);
    }
    expect(splitHostSync(HostSync.encode(HostSync.create()).finish())).to.deep.equal({ ...HostSync.create(), volumes: [] });
    expect(() => splitHostSync(HostSync.encode(msg).finish().subarray(0, 40))).to.throw();
  });

  it("remembers the last volume's pool name with a copy of its bytes, not a view of the Buffer it scanned", () => {
    // a view kept a whole 40 MiB slab of the sync intake (slab-arena.ts) alive for as long as
    // the coordinator ran; and bytes changed under it would name the wrong pool
    const v = (pool: string) => Volume.fromPartial({ name: `hosts/a/pools/${pool}/volumes/v`, host: 'a', pool, definition: { name: 'v', key: 'k', target: { path: '/p' } } });
    const first = Buffer.from(Volume.encode(v('aaa')).finish());
    expect(scanVolume(first).pool).to.equal('aaa');
    const at = first.lastIndexOf('aaa'); // the pool field (after name and host)
    first.write('bbb', at, 'latin1');
    expect(scanVolume(Buffer.from(Volume.encode(v('bbb')).finish())).pool).to.equal('bbb');
  });
});
