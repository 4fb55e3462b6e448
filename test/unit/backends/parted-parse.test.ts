// parted machine output and partx type lists, captured on this machine (parted 3.5,
// util-linux 2.38) on a 100 MiB loop device, and the table model the disk pool builds
// from them: volume names, free extents, pool sizes.
import { expect } from 'chai';
import { Tristate } from '../../../libs/proto/cistern/v1/storage.js';
import { isUnrecognisedLabel, parsePartedMachine, parsePartxTypes, splitMachineLine } from '../../../libs/backends/parted-parse.js';
import { buildLayout, formatOfPartition, layoutSizes, partitionSeparator } from '../../../libs/backends/partition-plan.js';

/** gpt, partitions 1 and 3 (2 deleted): `parted -s -m -- DEV unit B print free unit chs print`. */
export const GPT_PRINT = `BYT;
/dev/loop2:104857600B:loopback:512:512:gpt:Loopback device:;
1:17408B:10502143B:10484736B::primary:;
1:10502144B:20987903B:10485760B:free;
3:20987904B:31473663B:10485760B::primary:;
1:31473664B:104840703B:73367040B:free;
CHS;
/dev/loop2:401,144,1:loopback:512:512:gpt:Loopback device:;
401:255:2:261kB;
1:0,17,0:40,55,1::primary:;
3:80,96,0:120,135,1::primary:;
`;
export const GPT_TYPES = ` 1 0fc63daf-8483-4772-8e79-3d69d8477de4
 3 0fc63daf-8483-4772-8e79-3d69d8477de4
`;

/** dos: 1 primary linux, 2 deleted, 3 swap, 4 extended, 5 and 6 logical. */
export const DOS_PRINT = `BYT;
/dev/loop2:104857600B:loopback:512:512:msdos:Loopback device:;
1:1024B:10705919B:10704896B:::;
1:10705920B:21411839B:10705920B:free;
3:21411840B:32117759B:10705920B:::swap;
4:32117760B:84602879B:52485120B:::lba;
5:32119296B:37601279B:5481984B:::;
6:37601792B:43084799B:5483008B:::;
1:43084800B:84602879B:41518080B:free;
1:84602880B:104857599B:20254720B:free;
CHS;
/dev/loop2:401,144,1:loopback:512:512:msdos:Loopback device:;
401:255:2:261kB;
1:0,1,0:40,254,1:::;
3:82,0,0:122,254,1:::swap;
4:123,0,0:323,254,1:::lba;
5:123,1,1:143,254,1:::;
6:144,0,1:164,254,1:::;
`;
export const DOS_TYPES = ` 1 0x83
 3 0x82
 4  0xf
 5 0x83
 6 0x83
`;

/** sun label, no partitions: the free region starts at byte 0. */
const SUN_PRINT = `BYT;
/dev/loop2:104857600B:loopback:512:512:sun:Loopback device:;
1:0B:104709119B:104709120B:free;
CHS;
/dev/loop2:401,144,1:loopback:512:512:sun:Loopback device:;
401:255:2:261kB;
`;

/** A blank image: parted exits 1 and prints this on stdout, the error on stderr. */
const UNKNOWN_STDOUT = `BYT;
/tmp/diskcap/blank.img:10485760B:file:512:512:unknown::;
`;
const UNKNOWN_STDERR = 'Error: /tmp/diskcap/blank.img: unrecognised disk label\n';

describe('parted machine output', () => {
  it('reads the device line, every partition and free region in bytes, and the BIOS geometry', () => {
    const t = parsePartedMachine(GPT_PRINT);
    expect(t.device).to.deep.include({ path: '/dev/loop2', size: 104857600n, label: 'gpt', logicalSectorSize: 512, model: 'Loopback device' });
    expect(t.geometry).to.deep.equal({ cylinders: 401, heads: 255, sectors: 2 });
    expect(t.entries.map((e) => [e.number, e.start, e.end, e.free, e.name])).to.deep.equal([
      [1, 17408n, 10502143n, false, 'primary'],
      [1, 10502144n, 20987903n, true, ''],
      [3, 20987904n, 31473663n, false, 'primary'],
      [1, 31473664n, 104840703n, true, ''],
    ]);
  });

  it('reads dos flags (swap, lba) and keeps the disk order', () => {
    const t = parsePartedMachine(DOS_PRINT);
    expect(t.device.label).to.equal('msdos');
    expect(t.entries.filter((e) => !e.free).map((e) => [e.number, e.flags])).to.deep.equal([
      [1, []],
      [3, ['swap']],
      [4, ['lba']],
      [5, []],
      [6, []],
    ]);
  });

  it("unescapes '\\:' in names and splits only at unescaped ':'", () => {
    expect(splitMachineLine('2:1048576B:2097151B:1048576B:ext4:data\\:one\\\\x:boot, esp;')).to.deep.equal([
      '2', '1048576B', '2097151B', '1048576B', 'ext4', 'data:one\\x', 'boot, esp',
    ]);
  });

  it('reads the device of a blank disk and recognises the missing-label error', () => {
    expect(parsePartedMachine(UNKNOWN_STDOUT).device.label).to.equal('unknown');
    expect(isUnrecognisedLabel(UNKNOWN_STDERR)).to.equal(true);
  });

  it('refuses output without a device line', () => {
    expect(() => parsePartedMachine('Error: nothing\n')).to.throw(/no device line/);
  });

  it('reads partx type ids (dos hex ids and gpt GUIDs)', () => {
    expect([...parsePartxTypes(DOS_TYPES)]).to.deep.equal([[1, '0x83'], [3, '0x82'], [4, '0xf'], [5, '0x83'], [6, '0x83']]);
    expect(parsePartxTypes(GPT_TYPES).get(3)).to.equal('0fc63daf-8483-4772-8e79-3d69d8477de4');
  });
});

describe('disk layout (libvirt rules)', () => {
  it('names gpt partitions after their nodes with the p separator, ends exclusive, sizes as libvirt', () => {
    const l = buildLayout(parsePartedMachine(GPT_PRINT), parsePartxTypes(GPT_TYPES));
    expect(l.partitions.map((p) => [p.name, p.path, p.start, p.end, p.size, p.kind, p.format])).to.deep.equal([
      ['loop2p1', '/dev/loop2p1', 17408n, 10502144n, 10484736n, 'primary', 'linux'],
      ['loop2p3', '/dev/loop2p3', 20987904n, 31473664n, 10485760n, 'primary', 'linux'],
    ]);
    expect(l.free).to.deep.equal([
      { start: 10502144n, end: 20987904n, logical: false },
      { start: 31473664n, end: 104840704n, logical: false },
    ]);
    // capacity: the end of the last free extent; the backup gpt header after it is not in the pool
    expect(layoutSizes(l)).to.deep.equal({ capacity: 104840704n, allocation: 20970496n, available: 10485760n + 73367040n });
  });

  it('finds the dos extended partition, its logical partitions and the logical free space inside it', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    expect(l.partitions.map((p) => [p.name, p.kind, p.format])).to.deep.equal([
      ['loop2p1', 'primary', 'linux'],
      ['loop2p3', 'primary', 'linux-swap'],
      ['loop2p4', 'extended', 'extended'],
      ['loop2p5', 'logical', 'linux'],
      ['loop2p6', 'logical', 'linux'],
    ]);
    // the last free region ends with the last whole cylinder (401 x 255 x 2 x 512 = 104709120):
    // parted prints the incomplete one after it as free, libparted's msdos label keeps it
    expect(l.free).to.deep.equal([
      { start: 10705920n, end: 21411840n, logical: false },
      { start: 43084800n, end: 84602880n, logical: true },
      { start: 84602880n, end: 104709120n, logical: false },
    ]);
    // allocation counts every partition but the extended one; available every free extent
    expect(layoutSizes(l)).to.deep.equal({
      capacity: 104709120n,
      allocation: 10704896n + 10705920n + 5481984n + 5483008n,
      available: 10705920n + 41518080n + 20106240n,
    });
  });

  it('dos: the incomplete last cylinder is neither free nor in the capacity (libvirt_parthelper sees it as metadata)', () => {
    // captured on a 128 MiB loop device (geometry 514/255/2) right after mklabel msdos:
    // parted prints free space to the last byte; libvirt_parthelper prints
    // "- normal free 1024 134215680" then "- normal metadata 134215680 134217728", and
    // libvirtd 9.0 reported capacity 134215680 for the pool
    const blank = `BYT;\n/dev/loop0:134217728B:loopback:512:512:msdos:Loopback device:;\n1:1024B:134217727B:134216704B:free;\nCHS;\n/dev/loop0:514,1,1:loopback:512:512:msdos:Loopback device:;\n514:255:2:261kB;\n`;
    const l = buildLayout(parsePartedMachine(blank), new Map());
    expect(l.free).to.deep.equal([{ start: 1024n, end: 134215680n, logical: false }]);
    expect(layoutSizes(l)).to.deep.equal({ capacity: 134215680n, allocation: 0n, available: 134214656n });
    // a partition reaching into that cylinder (made outside libvirt) still counts to its end
    const full = blank.replace('1:1024B:134217727B:134216704B:free;', '1:1024B:134217727B:134216704B:::;');
    expect(layoutSizes(buildLayout(parsePartedMachine(full), new Map())).capacity).to.equal(134217728n);
  });

  it('dos: free space inside an extended partition reaching into the last cylinder is free to its end (libvirt_parthelper: logical free, no metadata)', () => {
    // captured on a 200 MiB loop device (geometry 803/255/2, so the last whole cylinder ends at
    // 209679360) after `parted mklabel msdos mkpart extended 1MiB 100% mkpart logical 2MiB 10MiB`
    // (an extended partition to the end of the disk, as fdisk and parted make it);
    // libvirt_parthelper printed "- logical free 10485760 209715200" and no metadata after it,
    // and libvirtd 9.0's pool-dumpxml <freeExtent start='10485760' end='209715200'/>
    const tail = `BYT;
/dev/loop1:209715200B:loopback:512:512:msdos:Loopback device:;
1:1024B:1048575B:1047552B:free;
1:1048576B:209715199B:208666624B:::lba;
1:1049600B:2088959B:1039360B:free;
5:2097152B:10485759B:8388608B:::;
1:10485760B:209715199B:199229440B:free;
CHS;
/dev/loop1:803,34,1:loopback:512:512:msdos:Loopback device:;
803:255:2:261kB;
1:4,4,0:803,34,1:::lba;
5:8,8,0:40,39,1:::;
`;
    const l = buildLayout(parsePartedMachine(tail), parsePartxTypes(' 1  0xf\n 5 0x83\n'));
    expect(l.free).to.deep.equal([
      { start: 1024n, end: 1048576n, logical: false },
      { start: 1049600n, end: 2088960n, logical: true },
      { start: 10485760n, end: 209715200n, logical: true },
    ]);
    expect(layoutSizes(l)).to.deep.equal({ capacity: 209715200n, allocation: 8388608n, available: 1047552n + 1039360n + 199229440n });
  });

  it('finds the extended partition from the table alone when partx gives no types', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), new Map());
    expect(l.partitions.find((p) => p.number === 4)?.kind).to.equal('extended');
    expect(l.partitions.find((p) => p.number === 3)?.format).to.equal('linux-swap');
  });

  it('never counts the first sector as free (a region at byte 0 starts at 512)', () => {
    const l = buildLayout(parsePartedMachine(SUN_PRINT), new Map());
    expect(l.format).to.equal('sun');
    expect(l.free).to.deep.equal([{ start: 512n, end: 104709120n, logical: false }]);
  });

  it('uses the pool device path and part_separator for names', () => {
    const l = buildLayout(parsePartedMachine(GPT_PRINT), new Map(), { device: '/dev/mapper/mpatha', partSeparator: Tristate.TRISTATE_YES });
    expect(l.partitions.map((p) => p.path)).to.deep.equal(['/dev/mapper/mpathap1', '/dev/mapper/mpathap3']);
  });
});

describe('partition separator', () => {
  it("adds 'p' after a trailing digit only, unless part_separator says otherwise", () => {
    expect(partitionSeparator('/dev/sda')).to.equal('');
    expect(partitionSeparator('/dev/loop0')).to.equal('p');
    expect(partitionSeparator('/dev/nvme0n1')).to.equal('p');
    expect(partitionSeparator('/dev/mapper/mpatha', Tristate.TRISTATE_YES)).to.equal('p');
    expect(partitionSeparator('/dev/mapper/mpath0', Tristate.TRISTATE_NO)).to.equal('');
    expect(partitionSeparator('/dev/dm-3', Tristate.TRISTATE_NO)).to.equal('');
  });
  it("ignores part_separator='no' on a device the kernel partitions: /dev/loop1's first partition is loop1p1, never /dev/loop11", () => {
    expect(partitionSeparator('/dev/loop1', Tristate.TRISTATE_NO)).to.equal('p');
    expect(partitionSeparator('/dev/nvme0n1', Tristate.TRISTATE_NO)).to.equal('p');
    expect(partitionSeparator('/dev/sda', Tristate.TRISTATE_NO)).to.equal('');
  });
  it("ignores part_separator='yes' on a device the kernel partitions: /dev/sdb's partitions are sdb1, sdb3, never sdbp1 (libvirt_parthelper 9.0 takes -p for device-mapper nodes only)", () => {
    expect(partitionSeparator('/dev/sdb', Tristate.TRISTATE_YES)).to.equal('');
    expect(partitionSeparator('/dev/vdc', Tristate.TRISTATE_YES)).to.equal('');
    expect(partitionSeparator('/dev/loop1', Tristate.TRISTATE_YES)).to.equal('p');
    expect(partitionSeparator('/dev/mapper/mpatha', Tristate.TRISTATE_YES)).to.equal('p');
    const l = buildLayout(parsePartedMachine(GPT_PRINT), new Map(), { device: '/dev/sdb', partSeparator: Tristate.TRISTATE_YES });
    expect(l.partitions.map((p) => [p.name, p.path])).to.deep.equal([
      ['sdb1', '/dev/sdb1'],
      ['sdb3', '/dev/sdb3'],
    ]);
  });
});

describe('partition types', () => {
  it('maps dos ids, gpt GUIDs and parted flags to libvirt volume formats', () => {
    expect(formatOfPartition('0x83', '', [])).to.equal('linux');
    expect(formatOfPartition('0x82', '', [])).to.equal('linux-swap');
    expect(formatOfPartition('0x8e', '', [])).to.equal('linux-lvm');
    expect(formatOfPartition('0xfd', '', [])).to.equal('linux-raid');
    expect(formatOfPartition('0xe', '', ['lba'])).to.equal('fat16');
    expect(formatOfPartition('0xc', '', ['lba'])).to.equal('fat32');
    expect(formatOfPartition('0x5', '', [])).to.equal('extended');
    expect(formatOfPartition('0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', '', [])).to.equal('linux-swap');
    expect(formatOfPartition('e6d6d379-f507-44c2-a23c-238f2a3df928', '', [])).to.equal('linux-lvm');
    expect(formatOfPartition(undefined, '', ['lvm'])).to.equal('linux-lvm');
    expect(formatOfPartition(undefined, 'linux-swap(v1)', [])).to.equal('linux-swap');
    expect(formatOfPartition(undefined, 'ext4', [])).to.equal('linux');
    expect(formatOfPartition(undefined, '', [])).to.equal('none');
  });
});
