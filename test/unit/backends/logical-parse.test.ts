// Parsers of the logical backend on real output: lines captured from lvm2 2.03.16 on this
// machine (loop devices, activation off, so the state is X), and the lines libvirt's
// source documents for active, snapshot and striped LVs (with the origin_size field lvm
// adds to them). Plus LVM's naming rules.
import { expect } from 'chai';
import {
  checkLvName,
  checkVgName,
  lvStateOf,
  lvsArgv,
  parseLvDevices,
  parseLvs,
  parsePvs,
  parseVgs,
  pvsArgv,
  vgsArgv,
} from '../../../libs/backends/lvm-parse.js';
import type { CisternError } from '../../../libs/errors/errors.js';

// lvs on this machine: 'big' (88 MiB) spans both loop devices in two segments; an LV that
// is neither origin nor snapshot has an empty origin_size, so its line ends in '#'
const CAPTURED_LVS = [
  '  lv1##O07W6e-YOF4-1tBR-g7Ik-61co-CiXZ-gRaZBM#/dev/loop0(0)#linear#1#8388608#4194304#8388608#-wi-XX----#',
  '  big##Fo0HYW-TIzR-zplR-Xpry-EHmS-mqKl-Goww5z#/dev/loop1(0)#linear#1#62914560#4194304#92274688#-wi-XX----#',
  '  big##Fo0HYW-TIzR-zplR-Xpry-EHmS-mqKl-Goww5z#/dev/loop0(2)#linear#1#29360128#4194304#92274688#-wi-XX----#',
  '',
].join('\n');

// lvs 2.03.16 on this machine for a 16 MiB origin 'o' with a 4 MiB snapshot 's', and 'sp'
// made as `lvcreate -L 4M --type snapshot --virtualsize 20M` makes it (this kernel has no
// device-mapper, so the snapshot metadata went in with vgcfgrestore): lv_size is the COW
// area, origin_size what the snapshot shows
const CAPTURED_SNAPSHOT_LVS = [
  '  o##3QXfaE-8qFR-VfyE-1CW4-rWDh-6OLS-JrSXmA#/dev/loop0(0)#linear#1#16777216#4194304#16777216#owi-XXs---#16777216',
  '  s#o#vqk4Lo-ymZh-XcX6-So6e-pFiW-Wyuv-JzehJZ#/dev/loop0(4)#linear#1#4194304#4194304#4194304#swi-XXs---#16777216',
  '  sp#[sp_vorigin]#fp2Poh-W84Z-eyJ5-3EL6-DcB0-TUPY-3cjew9#/dev/loop0(5)#linear#1#4194304#4194304#4194304#swi-XXs---#20971520',
  '',
].join('\n');

// libvirt's storage_backend_logical.c comment (with the trailing separator some distros print)
const LIBVIRT_LVS = [
  '  RootLV##06UgP5-2rhb-w3Bo-3mdR-WeoL-pytO-SAa2ky#/dev/hda2(0)#linear#1#5234491392#33554432#5234491392#-wi-ao#',
  '  Test2##3pg3he-mQsA-5Sui-h0i6-HNmc-Cz7W-QSndcR#/dev/hda2(219)#linear#1#1073741824#33554432#1073741824#owi-a-#1073741824',
  '  Test3#Test2#UB5hFw-kmlm-LSoX-EI1t-ioVd-h7GL-M0W8Ht#/dev/hda2(187)#linear#1#1040187392#33554432#1040187392#swi-a-#1073741824#',
  '  test_stripes##fSLSZH-zAS2-yAIb-n4mV-Al9u-HA3V-oo9K1B#/dev/sdc1(10240),/dev/sdd1(0)#striped#2#42949672960#4194304#42949672960#-wi-a-##',
  '  sparse#[sparse_vorigin]#aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg#/dev/hda2(300)#linear#1#4194304#33554432#4194304#swi-a-s---#10737418240',
  '  pool0##tttttt-tttt-tttt-tttt-tttt-tttt-tttttt#pool0_tdata(0)#thin-pool#1#8388608#33554432#8388608#twi-a-tz--#',
  '  thin1##vvvvvv-vvvv-vvvv-vvvv-vvvv-vvvv-vvvvvv#pool0(0)#thin#1#1073741824#33554432#1073741824#Vwi---tz--#',
  '  garbage line without separators',
].join('\n');

describe('logical backend parsers', () => {
  it('builds the lvs (libvirt 9\'s fields + origin_size), vgs and pvs command lines', () => {
    expect(lvsArgv('HostVG')).to.deep.equal([
      'lvs', '--separator', '#', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options',
      'lv_name,origin,uuid,devices,segtype,stripes,seg_size,vg_extent_size,size,lv_attr,origin_size', 'HostVG',
    ]);
    expect(vgsArgv('HostVG')).to.deep.equal([
      'vgs', '--separator', ':', '--noheadings', '--units', 'b', '--unbuffered', '--nosuffix', '--options', 'vg_size,vg_free', 'HostVG',
    ]);
    expect(pvsArgv()).to.deep.equal(['pvs', '--noheadings', '-o', 'pv_name,vg_name']);
  });

  it('parses captured lvs output: one record per LV, its segments as extents per device', () => {
    const lvs = parseLvs(CAPTURED_LVS);
    expect(lvs.map((l) => l.name)).to.deep.equal(['lv1', 'big']);
    const [lv1, big] = lvs as [(typeof lvs)[0], (typeof lvs)[0]];
    expect(lv1.uuid).to.equal('O07W6e-YOF4-1tBR-g7Ik-61co-CiXZ-gRaZBM');
    expect(lv1.size).to.equal(8388608n);
    expect(lv1.extents).to.deep.equal([{ device: '/dev/loop0', start: 0n, end: 8388608n }]);
    expect(lv1.state).to.equal('unknown');
    expect(lv1.active).to.equal(false);
    expect(lv1.sparse).to.equal(false);
    expect(lv1.originSize).to.equal(undefined);
    expect(lv1.visibleSize).to.equal(8388608n);
    expect(big.size).to.equal(92274688n);
    expect(big.visibleSize).to.equal(92274688n);
    expect(big.extents).to.deep.equal([
      { device: '/dev/loop1', start: 0n, end: 62914560n },
      { device: '/dev/loop0', start: 2n * 4194304n, end: 2n * 4194304n + 29360128n },
    ]);
    expect(big.segtypes).to.deep.equal(['linear']);
  });

  it('a snapshot shows its origin_size; its lv_size (the COW area) is what it allocates (captured)', () => {
    const lvs = new Map(parseLvs(CAPTURED_SNAPSHOT_LVS).map((l) => [l.name, l]));
    expect([...lvs.keys()]).to.deep.equal(['o', 's', 'sp']);
    const o = lvs.get('o')!;
    expect([o.size, o.originSize, o.visibleSize]).to.deep.equal([16777216n, 16777216n, 16777216n]);
    expect(o.sparse).to.equal(false);
    const s = lvs.get('s')!;
    expect(s.backingOrigin).to.equal('o');
    expect([s.size, s.originSize, s.visibleSize]).to.deep.equal([4194304n, 16777216n, 16777216n]);
    expect(s.sparse).to.equal(true);
    const sp = lvs.get('sp')!;
    expect(sp.backingOrigin).to.equal(undefined);
    expect([sp.size, sp.originSize, sp.visibleSize]).to.deep.equal([4194304n, 20971520n, 20971520n]);
    expect(sp.state).to.equal('unknown');
  });

  it("parses libvirt's documented lines: states, snapshots, virtual origins, stripes, thin", () => {
    const lvs = new Map(parseLvs(LIBVIRT_LVS).map((l) => [l.name, l]));
    expect([...lvs.keys()]).to.deep.equal(['RootLV', 'Test2', 'Test3', 'test_stripes', 'sparse', 'pool0', 'thin1']);
    const root = lvs.get('RootLV')!;
    expect(root.active).to.equal(true);
    expect(root.state).to.equal('active');
    expect(root.extents).to.deep.equal([{ device: '/dev/hda2', start: 0n, end: 5234491392n }]);
    // a snapshot of Test2: backing origin, sparse
    const t3 = lvs.get('Test3')!;
    expect(t3.origin).to.equal('Test2');
    expect(t3.backingOrigin).to.equal('Test2');
    expect(t3.sparse).to.equal(true);
    expect(t3.size).to.equal(1040187392n);
    expect(t3.visibleSize).to.equal(1073741824n, 'the origin\'s size, not the COW area');
    expect(t3.extents[0]).to.deep.equal({ device: '/dev/hda2', start: 187n * 33554432n, end: 187n * 33554432n + 1040187392n });
    // --virtualsize: the hidden [x_vorigin] is no backing store
    const sparse = lvs.get('sparse')!;
    expect(sparse.sparse).to.equal(true);
    expect(sparse.backingOrigin).to.equal(undefined);
    expect(sparse.visibleSize).to.equal(10737418240n, 'the virtual size');
    // striped: each device holds seg_size / stripes
    const st = lvs.get('test_stripes')!;
    expect(st.extents).to.deep.equal([
      { device: '/dev/sdc1', start: 10240n * 4194304n, end: 10240n * 4194304n + 21474836480n },
      { device: '/dev/sdd1', start: 0n, end: 21474836480n },
    ]);
    expect(lvs.get('pool0')!.thinPool).to.equal(true);
    expect(lvs.get('pool0')!.extents).to.deep.equal([], 'sub-LVs are not devices');
    const thin = lvs.get('thin1')!;
    // libvirt marks only attr 's' (a snapshot, a --virtualsize LV) sparse, and so wipes thin
    // volumes (virStorageBackendLogicalMakeVol)
    expect(thin.sparse).to.equal(false);
    expect(thin.state).to.equal('inactive');
    expect(thin.extents).to.deep.equal([]);
    expect(thin.visibleSize).to.equal(1073741824n, 'a thin volume\'s lv_size is its virtual size');
    expect(lvs.get('RootLV')!.visibleSize).to.equal(5234491392n);
  });

  it('maps every lv_attr state character', () => {
    expect(lvStateOf('-wi-a-----')).to.equal('active');
    expect(lvStateOf('-wi-------')).to.equal('inactive');
    expect(lvStateOf('-wi-s-----')).to.equal('suspended');
    expect(lvStateOf('swi-I-s---')).to.equal('invalid-snapshot');
    expect(lvStateOf('-wi-XX----')).to.equal('unknown');
    expect(lvStateOf('-wi-d-----')).to.equal('mapped-without-tables');
    expect(lvStateOf('')).to.equal('unknown');
  });

  it('rejects malformed numbers and devices in an otherwise well-formed line', () => {
    expect(() => parseLvs('  a##u#/dev/x(0)#linear#one#1#1#1#-wi-a-#')).to.throw(/malformed stripes/);
    expect(() => parseLvs('  a##u#/dev/x#linear#1#1#1#1#-wi-a-#')).to.throw(/malformed devices/);
    expect(() => parseLvs('  a#b#u#/dev/x(0)#linear#1#1#1#1#swi-a-#big')).to.throw(/malformed origin size 'big'/);
    // a line without the origin_size field is not lvsArgv's output: skipped, as a line libvirt's regex does not match
    expect(parseLvs('  a##u#/dev/x(0)#linear#1#1#1#1#-wi-a-')).to.deep.equal([]);
    expect(parseLvDevices('/dev/a(1),/dev/b(22)')).to.deep.equal([
      { path: '/dev/a', startExtent: 1n },
      { path: '/dev/b', startExtent: 22n },
    ]);
  });

  it('parses vgs output (captured, and with a trailing separator)', () => {
    expect(parseVgs('  125829120:25165824\n')).to.deep.equal({ size: 125829120n, free: 25165824n });
    expect(parseVgs('  10603200512:4328521728:\n')).to.deep.equal({ size: 10603200512n, free: 4328521728n });
    expect(() => parseVgs('')).to.throw(/no volume group size/);
  });

  it('parses pvs output into VGs and their PVs, skipping PVs in no VG (captured)', () => {
    const out = '  /dev/loop0 cisttestvg\n  /dev/loop1 cisttestvg\n  /dev/loop2   \n  /dev/sdc VolGroup00\n';
    const groups = parsePvs(out);
    expect([...groups.entries()]).to.deep.equal([
      ['cisttestvg', ['/dev/loop0', '/dev/loop1']],
      ['VolGroup00', ['/dev/sdc']],
    ]);
  });

  it('accepts the names LVM accepts and refuses the others, saying what is allowed', () => {
    for (const ok of ['a', 'ok+._-9', 'Data_1', 'x'.repeat(114)]) expect(checkLvName(ok, 'cisttestvg')).to.equal(ok);
    // lengths measured with lvcreate 2.03.16: VG 'cisttestvg' takes LV names up to 114 characters
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['a b', /contains ' '/],
      ['x:y', /contains ':'/],
      ['a/b', /contains '\/'/],
      ['-a', /starts with '-'/],
      ['..', /is '\.\.'/],
      ['snapshotx', /starting 'snapshot' are reserved/],
      ['pvmove0', /starting 'pvmove' are reserved/],
      ['a_rimage', /containing '_rimage' are reserved/],
      ['v_vorigin', /containing '_vorigin'/],
      ['x'.repeat(115), /too long/],
      ['x'.repeat(128), /128 characters long/],
    ];
    for (const [name, why] of cases) {
      let err: CisternError | undefined;
      try {
        checkLvName(name, 'cisttestvg');
      } catch (e) {
        err = e as CisternError;
      }
      expect(err?.code, name).to.equal('INVALID_ARGUMENT');
      expect(err!.message).to.match(why);
      if (!/too long|reserved/.test(err!.message)) expect(err!.message).to.include('A-Z a-z 0-9 + _ . -');
    }
    expect(() => checkVgName('vg with space')).to.throw(/allowed: 1-127 characters of A-Z a-z 0-9 \+ _ \. -/);
    expect(checkVgName('HostVG')).to.equal('HostVG');
  });
});
