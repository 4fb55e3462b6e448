// Layouts compared byte for byte with what virsh 9.0 printed for the same data
// (a dir pool on this machine, captured with `virsh -c qemu:///session`).
import { expect } from 'chai';
import { PoolState, VolumeType } from '../../../libs/proto/cistern/v1/storage.js';
import { renderTable, width } from '../../../cli/format/table.js';
import { renderPoolInfo, renderPoolList, renderPoolNames } from '../../../cli/format/pool.js';
import { renderVolumeInfo, renderVolumeList } from '../../../cli/format/volume.js';
import { poolAsXml, volAsXml } from '../../../cli/format/xml.js';
import { eventLine, eventTimestamp } from '../../../cli/format/event.js';
import { EventKind, Event } from '../../../libs/proto/cistern/v1/storage.js';
import { pool, volume } from './fake-api.js';
import { poolShortName } from '../../../cli/resolve.js';
import { sortByName } from '../../../cli/format/order.js';

const running = (name: string, persistent = true) =>
  pool('a', name, { persistent, capacity: 270553174016n, allocation: 23451086848n, available: 247102087168n });
const display = poolShortName;

describe('cli virsh layouts', () => {
  it('pool-list: the header, dashes and padding of vsh-table', () => {
    const text = renderPoolList([running('scratch'), pool('a', 'tpool')], { details: false, quiet: false, display });
    expect(text).to.equal(
      ' Name      State    Autostart\n' +
      '-------------------------------\n' +
      ' scratch   active   no\n' +
      ' tpool     active   no\n');
  });

  it('pool-list with no pools', () => {
    expect(renderPoolList([], { details: false, quiet: false, display })).to.equal(
      ' Name   State   Autostart\n' +
      '---------------------------\n');
  });

  it('pool-list --details, with "-" sizes for an inactive pool', () => {
    const inactive = pool('a', 'scratch', { state: PoolState.POOL_STATE_INACTIVE });
    const tpool = pool('a', 'tpool', { persistent: false, capacity: 270553174016n, allocation: 24535076864n, available: 246018097152n });
    expect(renderPoolList([inactive, tpool], { details: true, quiet: false, display })).to.equal(
      ' Name      State      Autostart   Persistent   Capacity     Allocation   Available\n' +
      '-------------------------------------------------------------------------------------\n' +
      ' scratch   inactive   no          yes          -            -            -\n' +
      ' tpool     running    no          no           251.97 GiB   22.85 GiB    229.12 GiB\n');
  });

  it('a pool of an offline host (stale) is inaccessible without sizes in --details and pool-info; still active', () => {
    const away = pool('a', 'away', { stale: true, capacity: 270553174016n, allocation: 23451086848n, available: 247102087168n });
    const off = pool('a', 'off', { stale: true, state: PoolState.POOL_STATE_INACTIVE });
    expect(renderPoolList([away, off, running('scratch')], { details: true, quiet: false, display })).to.equal(
      ' Name      State          Autostart   Persistent   Capacity     Allocation   Available\n' +
      '-----------------------------------------------------------------------------------------\n' +
      ' away      inaccessible   no          yes          -            -            -\n' +
      ' off       inactive       no          yes          -            -            -\n' +
      ' scratch   running        no          yes          251.97 GiB   21.84 GiB    230.13 GiB\n');
    expect(renderPoolList([away], { details: false, quiet: true, display })).to.equal(' away   active   no\n');
    expect(renderPoolInfo(away, true)).to.equal(
      'Name:           away\n' +
      'UUID:           9428e344-8f1e-4492-bb31-3b9385665dec\n' +
      'State:          inaccessible\n' +
      'Persistent:     yes\n' +
      'Autostart:      no\n');
  });

  it('pool-list -q: no header, widths from the rows only', () => {
    const text = renderPoolList([running('scratch'), running('tpool', false)], { details: true, quiet: true, display });
    expect(text).to.equal(
      ' scratch   running   no   yes   251.97 GiB   21.84 GiB   230.13 GiB\n' +
      ' tpool     running   no   no    251.97 GiB   21.84 GiB   230.13 GiB\n');
  });

  it('pool-list --uuid --name and --name', () => {
    const p = running('scratch');
    expect(renderPoolNames([p], true, true, display)).to.equal('9428e344-8f1e-4492-bb31-3b9385665dec scratch             \n');
    expect(renderPoolNames([p], false, true, display)).to.equal('scratch             \n');
  });

  it('pool-list --name pads a non-ASCII name to 20 bytes, as printf does, not to 20 characters', () => {
    // virsh 9.0, pool 'пул-é' (5 characters, 9 bytes): the name and 11 spaces
    const p = running('пул-é');
    expect(renderPoolNames([p], false, true, display)).to.equal(`пул-é${' '.repeat(11)}\n`);
    expect(renderPoolNames([running('x'.repeat(19) + 'é')], false, true, display)).to.equal(`${'x'.repeat(19)}é\n`);
  });

  it('pool-info, running and inactive, human and --bytes', () => {
    expect(renderPoolInfo(running('scratch'), false)).to.equal(
      'Name:           scratch\n' +
      'UUID:           9428e344-8f1e-4492-bb31-3b9385665dec\n' +
      'State:          running\n' +
      'Persistent:     yes\n' +
      'Autostart:      no\n' +
      'Capacity:       251.97 GiB\n' +
      'Allocation:     21.84 GiB\n' +
      'Available:      230.13 GiB\n');
    expect(renderPoolInfo(running('scratch'), true)).to.equal(
      'Name:           scratch\n' +
      'UUID:           9428e344-8f1e-4492-bb31-3b9385665dec\n' +
      'State:          running\n' +
      'Persistent:     yes\n' +
      'Autostart:      no\n' +
      'Capacity:       270553174016\n' +
      'Allocation:     23451086848\n' +
      'Available:      247102087168\n');
    expect(renderPoolInfo(pool('a', 'scratch', { state: PoolState.POOL_STATE_INACTIVE }), false)).to.equal(
      'Name:           scratch\n' +
      'UUID:           9428e344-8f1e-4492-bb31-3b9385665dec\n' +
      'State:          inactive\n' +
      'Persistent:     yes\n' +
      'Autostart:      no\n');
  });

  const v1 = volume('a', 'scratch', 'v1.img', 1073741824n, 1073741824n, '/tmp/cli-virt/p1/v1.img');
  const v2 = volume('a', 'scratch', 'v2.qcow2', 10485760n, 200704n, '/tmp/cli-virt/p1/v2.qcow2');

  it('vol-list and vol-list --details', () => {
    expect(renderVolumeList([v1, v2], false, false)).to.equal(
      ' Name       Path\n' +
      '---------------------------------------\n' +
      ' v1.img     /tmp/cli-virt/p1/v1.img\n' +
      ' v2.qcow2   /tmp/cli-virt/p1/v2.qcow2\n');
    expect(renderVolumeList([v1, v2], true, false)).to.equal(
      ' Name       Path                        Type   Capacity    Allocation\n' +
      '-----------------------------------------------------------------------\n' +
      ' v1.img     /tmp/cli-virt/p1/v1.img     file   1.00 GiB    1.00 GiB\n' +
      ' v2.qcow2   /tmp/cli-virt/p1/v2.qcow2   file   10.00 MiB   196.00 KiB\n');
  });

  it('vol-info, --bytes and --physical', () => {
    expect(renderVolumeInfo(v1, false, false)).to.equal(
      'Name:           v1.img\nType:           file\nCapacity:       1.00 GiB\nAllocation:     1.00 GiB\n');
    expect(renderVolumeInfo(v2, true, false)).to.equal(
      'Name:           v2.qcow2\nType:           file\nCapacity:       10485760 bytes\nAllocation:     200704 bytes\n');
    const r1 = volume('a', 'scratch', 'r1', 1048576n, 4096n);
    r1.definition!.physical = 1048576n;
    expect(renderVolumeInfo(r1, true, true)).to.equal(
      'Name:           r1\nType:           file\nCapacity:       1048576 bytes\nPhysical:       1048576 bytes\n');
    // no physical size (an iscsi-direct LUN): virsh 9.0 prints 0, not the allocation
    const lun = volume('a', 'scratch', 'unit:0:0:1', 16777216n, 16777216n);
    lun.definition!.type = VolumeType.VOLUME_TYPE_NETWORK;
    lun.definition!.physical = undefined;
    expect(renderVolumeInfo(lun, false, true)).to.equal(
      'Name:           unit:0:0:1\nType:           network\nCapacity:       16.00 MiB\nPhysical:       0.00 B\n');
  });

  it('escapes control characters in cells and pads by the escaped width', () => {
    expect(renderTable(['Name'], [['a\tb']])).to.equal(' Name\n---------\n a\\x09b\n');
  });

  it('pads by terminal columns, as vshTableSafeEncode counts them: wide characters 2, combining ones 0', () => {
    expect([width('abc'), width('卷卷'), width('e\u0301'), width('😀'), width('ﾊ'), width('\u00ad')]).to.deep.equal([3, 4, 1, 2, 1, 1]);
    // virsh vol-list: ' 卷卷   /tmp/...' (the name column is 4 columns wide, as the header)
    expect(renderTable(['Name', 'Path'], [['卷卷', '/tmp/x']])).to.equal(' Name   Path\n----------------\n 卷卷   /tmp/x\n');
  });

  it('pool-define-as --print-xml, element for element as virsh', () => {
    expect(poolAsXml({ name: 'foo', type: 'dir', target: '/tmp/x' })).to.equal(
      "<pool type='dir'>\n  <name>foo</name>\n  <target>\n    <path>/tmp/x</path>\n  </target>\n</pool>\n");
    expect(poolAsXml({ name: 'foo', type: 'netfs', sourceHost: 'h1', sourcePath: '/exp', sourceFormat: 'nfs', target: '/mnt' })).to.equal(
      "<pool type='netfs'>\n  <name>foo</name>\n  <source>\n    <host name='h1'/>\n    <dir path='/exp'/>\n" +
      "    <format type='nfs'/>\n  </source>\n  <target>\n    <path>/mnt</path>\n  </target>\n</pool>\n");
    expect(poolAsXml({ name: 'foo', type: 'logical', sourceDev: '/dev/sdb', sourceName: 'vg', target: '/dev/vg' })).to.equal(
      "<pool type='logical'>\n  <name>foo</name>\n  <source>\n    <device path='/dev/sdb'/>\n    <name>vg</name>\n" +
      "  </source>\n  <target>\n    <path>/dev/vg</path>\n  </target>\n</pool>\n");
    expect(poolAsXml({ name: "a'b", type: 'dir' })).to.contain('<name>a&apos;b</name>');
  });

  it('vol-create-as --print-xml, as virsh', () => {
    expect(volAsXml({ name: 'q2', capacity: 10485760n, format: 'qcow2', backingPath: '/tmp/cli-virt/p1/r1', backingFormat: 'raw' })).to.equal(
      "<volume>\n  <name>q2</name>\n  <capacity>10485760</capacity>\n  <target>\n    <format type='qcow2'/>\n  </target>\n" +
      "  <backingStore>\n    <path>/tmp/cli-virt/p1/r1</path>\n    <format type='raw'/>\n  </backingStore>\n</volume>\n");
    expect(volAsXml({ name: 'q2', capacity: 10485760n, allocation: 1048576n, format: 'qcow2' })).to.equal(
      "<volume>\n  <name>q2</name>\n  <capacity>10485760</capacity>\n  <allocation>1048576</allocation>\n" +
      "  <target>\n    <format type='qcow2'/>\n  </target>\n</volume>\n");
  });

  it('pool-event lines and timestamps as virsh', () => {
    const t = new Date(Date.UTC(2026, 10, 25, 19, 18, 56, 718));
    expect(eventTimestamp(t)).to.equal('2026-11-25 19:18:56.718+0000');
    const started = Event.create({ kind: EventKind.POOL_STARTED, host: 'a', pool: 'scratch', time: t });
    expect(eventLine(started, 'scratch', true)).to.equal(
      "2026-11-25 19:18:56.718+0000: event 'lifecycle' for storage pool scratch: Started\n");
    const refreshed = Event.create({ kind: EventKind.POOL_REFRESHED, host: 'a', pool: 'scratch' });
    expect(eventLine(refreshed, 'scratch', false)).to.equal("event 'refresh' for storage pool scratch\n");
    const deleted = Event.create({ kind: EventKind.HOST_DELETED, host: 'b' });
    expect(eventLine(deleted, '', false)).to.equal("event 'host' for host b: Deleted\n");
  });
});

describe('cli transfer progress', () => {
  it('draws a bar with percent and human sizes, only on a terminal', async () => {
    const { progressLine, progressBar } = await import('../../../cli/format/progress.js');
    expect(progressLine('v:', 512n * 1024n, 1024n * 1024n, 10)).to.equal('v: [=====>    ]  50% 512.00 KiB / 1.00 MiB');
    expect(progressLine('v:', 1n << 20n, 1n << 20n, 10)).to.equal('v: [==========] 100% 1.00 MiB / 1.00 MiB');
    let written = '';
    const bar = progressBar({ write: (t: string) => { written += t; }, isTTY: false }, 'v:', 100n);
    bar.update(50n);
    bar.finish();
    expect(written).to.equal('');
  });
});

describe('cli listing order', () => {
  it("sorts names as virsh does (g_ascii_strcasecmp): ASCII letters case-folded, the rest by UTF-8 bytes", () => {
    const sorted = (names: string[]) => sortByName(names, (n) => n);
    // what virsh 9.0 printed for the same pools (docs review against a private libvirtd)
    expect(sorted(['äa', 'ápool', 'Äb'])).to.deep.equal(['Äb', 'ápool', 'äa']);
    expect(sorted(['ωa', 'Ωz'])).to.deep.equal(['Ωz', 'ωa']);
    // folded to lower case first: '_' (0x5f) sorts before every letter
    expect(sorted(['b', 'A', 'c', 'B2', '_x', 'Z'])).to.deep.equal(['_x', 'A', 'b', 'B2', 'c', 'Z']);
  });
});
