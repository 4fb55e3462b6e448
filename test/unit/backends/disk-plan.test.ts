// Where a new partition goes and what kind it is (libvirt's storage_backend_disk.c rules):
// the smallest free extent that fits, never two; dos ends on cylinder boundaries;
// primary / extended / logical by the dos rules; the exact parted argv.
import { expect } from 'chai';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../../../libs/errors/errors.js';
import { parsePartedMachine, parsePartxTypes } from '../../../libs/backends/parted-parse.js';
import {
  buildLayout,
  kindToCreate,
  mkpartArgv,
  nextPartitionNumber,
  placePartition,
  rmArgv,
  type DiskLayout,
} from '../../../libs/backends/partition-plan.js';
import { DOS_PRINT, DOS_TYPES, GPT_PRINT, GPT_TYPES } from './parted-parse.test.js';

const MiB = 1024n * 1024n;

function gptLayout(free: Array<[bigint, bigint]>, numbers: number[] = []): DiskLayout {
  return {
    device: '/dev/loop2',
    label: 'gpt',
    format: 'gpt',
    size: 200n * MiB,
    sectorSize: 512n,
    geometry: { cylinders: 802, heads: 255, sectors: 2 },
    partitions: numbers.map((n) => ({
      number: n,
      path: `/dev/loop2p${n}`,
      name: `loop2p${n}`,
      start: 0n,
      end: 0n,
      size: 0n,
      kind: 'primary' as const,
      format: 'linux' as const,
      fs: '',
      flags: [],
    })),
    free: free.map(([start, end]) => ({ start, end, logical: false })),
  };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('partition placement', () => {
  it('takes the smallest free extent that fits, at its start', () => {
    const l = gptLayout([
      [1n * MiB, 50n * MiB],
      [60n * MiB, 70n * MiB],
      [80n * MiB, 90n * MiB + 512n],
    ]);
    const p = placePartition(l, 'primary', 10n * MiB);
    expect([p.start, p.end]).to.deep.equal([60n * MiB, 70n * MiB - 1n]);
  });

  it('never spans two extents: two 6 MiB gaps do not hold 10 MiB', () => {
    const l = gptLayout([
      [1n * MiB, 7n * MiB],
      [8n * MiB, 14n * MiB],
    ]);
    const err = thrown(() => placePartition(l, 'primary', 10n * MiB));
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect(err.message).to.match(/no large enough free extent .* 10485760 bytes: the largest free extent on the disk has 6291456 bytes/);
  });

  it('rounds a size up to whole sectors', () => {
    const p = placePartition(gptLayout([[17408n, 100n * MiB]]), 'primary', 1000n);
    expect([p.start, p.end]).to.deep.equal([17408n, 17408n + 1024n - 1n]);
  });

  it('ends dos partitions on a cylinder boundary (libvirt PartBoundaries)', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    const cyl = 255n * 2n * 512n;
    // gap 10705920..21411840 (41..82 cylinders) is the smallest fitting normal extent
    const p = placePartition(l, kindToCreate(l, 'linux'), 5n * MiB);
    expect(p.start).to.equal(10705920n);
    expect((p.end + 1n) % cyl).to.equal(0n);
    expect(p.end + 1n - p.start >= 5n * MiB).to.equal(true);
    expect(p.end + 1n - p.start < 5n * MiB + cyl).to.equal(true);
  });

  it('puts logical partitions only inside the extended one, one sector in (room for the EBR)', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    const p = placePartition(l, 'logical', 5n * MiB);
    expect(p.extent.logical).to.equal(true);
    expect(p.start).to.equal(43084800n + 512n);
    expect(p.end < 84602880n).to.equal(true);
    // a primary never goes into the extended partition's free space
    const big = thrown(() => placePartition(l, 'primary', 30n * MiB));
    expect(big).to.be.instanceOf(ResourceExhaustedError);
    expect(big.message).to.match(/outside the extended partition has 20106240 bytes/);
  });
});

describe('partition kind and number', () => {
  it('dos: primary while fewer than four primary/extended partitions, then logical in the extended one', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    // 1, 3 primary + 4 extended = 3 slots used: the next is primary number 2
    expect(kindToCreate(l, 'linux')).to.equal('primary');
    expect(nextPartitionNumber(l, 'primary')).to.equal(2);
    expect(nextPartitionNumber(l, 'logical')).to.equal(7);
    const full = { ...l, partitions: [...l.partitions, { ...l.partitions[0]!, number: 2, kind: 'primary' as const }] };
    expect(kindToCreate(full, 'linux')).to.equal('logical');
  });

  it('dos: refuses a second extended partition and a fifth partition without an extended one', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    expect(thrown(() => kindToCreate(l, 'extended'))).to.be.instanceOf(FailedPreconditionError);
    const primaries = { ...l, partitions: [1, 2, 3, 4].map((n) => ({ ...l.partitions[0]!, number: n, kind: 'primary' as const })) };
    const err = thrown(() => kindToCreate(primaries, 'linux'));
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect(err.message).to.match(/no extended partition found and no primary partition available/);
  });

  it('gpt: always primary, the lowest unused number; extended is refused', () => {
    const l = buildLayout(parsePartedMachine(GPT_PRINT), parsePartxTypes(GPT_TYPES));
    expect(kindToCreate(l, 'linux-swap')).to.equal('primary');
    expect(nextPartitionNumber(l, 'primary')).to.equal(2);
    expect(thrown(() => kindToCreate(l, 'extended'))).to.be.instanceOf(InvalidArgumentError);
  });
});

describe('parted argv (as libvirt builds it)', () => {
  it('dos: one word-split argument "primary FS" / "logical FS" / "extended", bytes with B', () => {
    const l = buildLayout(parsePartedMachine(DOS_PRINT), parsePartxTypes(DOS_TYPES));
    const at = { start: 1024n, end: 2047n, extent: l.free[0]! };
    expect(mkpartArgv('parted', l, 'primary', 'linux-lvm', at)).to.deep.equal(['parted', '/dev/loop2', 'mkpart', '--script', 'primary ext2', '1024B', '2047B']);
    expect(mkpartArgv('parted', l, 'primary', 'linux-swap', at)[4]).to.equal('primary linux-swap');
    expect(mkpartArgv('parted', l, 'logical', 'fat32', at)[4]).to.equal('logical fat32');
    expect(mkpartArgv('parted', l, 'extended', 'extended', at)[4]).to.equal('extended');
  });

  it('other labels: "primary" only', () => {
    const l = buildLayout(parsePartedMachine(GPT_PRINT), parsePartxTypes(GPT_TYPES));
    const at = { start: 10502144n, end: 11550719n, extent: l.free[0]! };
    expect(mkpartArgv('parted', l, 'primary', 'fat16', at)).to.deep.equal(['parted', '/dev/loop2', 'mkpart', '--script', 'primary', '10502144B', '11550719B']);
  });

  it('rm takes the partition number from the table, not from the name (/dev/loop2p3 -> 3)', () => {
    const l = buildLayout(parsePartedMachine(GPT_PRINT), parsePartxTypes(GPT_TYPES));
    expect(rmArgv('parted', l.device, l.partitions[1]!)).to.deep.equal(['parted', '/dev/loop2', 'rm', '--script', '3']);
  });
});
