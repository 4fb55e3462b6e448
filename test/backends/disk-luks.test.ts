// A LUKS-encrypted partition made by the disk backend on a real dos loop device: libvirt 9.0's
// rule (2 MiB more for the header, placed as a plain partition of that size would be; the
// payload size is the partition less those 2 MiB), qemu-img writing LUKS through the node the
// agent opened (never by a name someone may swap meanwhile) with the passphrase in a file, and
// requests refused before the table is touched. Every loop device is detached by its exact name
// after its partitions are dropped (`partx -d`).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiskBackend } from '../../libs/backends/disk.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import { PoolType, Tristate, VolumeDefinition, PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { attachLoop, hasTool, loopDevicesAvailable, makeTempDir, registerCleanup, type LoopDevice } from '../support/index.js';
import { rejects } from '../support/rejects.js';
import { SwappingRunner } from '../support/swapping-runner.js';

const MiB = 1024n * 1024n;
const UUID = '0b7c3f1e-59a9-4c59-9d7e-00000000a059';
const PASSPHRASE = 'h59 disk luks passphrase';

function diskPool(device: string): PoolDefinition {
  return PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_DISK,
    name: 'disk-luks',
    source: { devices: [{ path: device, partSeparator: Tristate.TRISTATE_ABSENT }], format: 'dos' },
    target: { path: '/dev' },
  });
}

function partedPrint(device: string): string {
  return execFileSync('parted', ['-m', '-s', device, 'unit', 'B', 'print', 'free'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

function blkidType(node: string): string {
  try {
    return execFileSync('blkid', ['-p', '-s', 'TYPE', '-o', 'value', '--', node], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

const luks = (name: string, capacity: bigint, format = 'none', extra: Partial<{ encFormat: string; secrets: number }> = {}) =>
  VolumeDefinition.fromPartial({
    name,
    capacity,
    target: {
      format,
      encryption: {
        format: extra.encFormat ?? 'luks',
        secrets: Array.from({ length: extra.secrets ?? 1 }, () => ({ type: 'passphrase', uuid: UUID, usage: '' })),
      },
    },
  });

const usable = loopDevicesAvailable() && hasTool('parted') && hasTool('partx') && hasTool('qemu-img') && hasTool('blkid');

describe('disk pool backend: LUKS-encrypted partitions (real parted and qemu-img on a loop device)', function () {
  // each LUKS create runs the key slot's PBKDF (2 s of CPU time)
  this.timeout(120_000);
  const backend = new DiskBackend();
  const runner = new ExecRunner();
  let loop: LoopDevice;
  let ctx: PoolContext;
  let base: string;

  before(async function () {
    if (!usable) this.skip(); // needs root, losetup, parted, partx, blkid and qemu-img
    loop = attachLoop(128 * 1024 * 1024, 'luks');
    const device = loop.device;
    registerCleanup(`partitions of ${device}`, () => {
      try {
        execFileSync('partx', ['-d', '--', device], { stdio: 'pipe' });
      } catch {
        // none left
      }
    });
    ctx = { runner, pool: diskPool(device), secrets: new Map([[UUID, Buffer.from(PASSPHRASE)]]) };
    base = device.slice('/dev/'.length);
    await backend.buildPool(ctx, { overwrite: true, noOverwrite: false });
  });
  after(async () => {
    if (!loop) return;
    try {
      execFileSync('partx', ['-d', '--', loop.device], { stdio: 'pipe' });
    } catch {
      // none left
    }
    await loop.detach();
  });

  it('places the partition as a plain one 2 MiB larger (libvirt 9.0), formats it LUKS, and reads back the payload size with the encryption', async () => {
    // where a plain partition of capacity + 2 MiB would go (createVol writes nothing)
    const plain = await backend.createVol(ctx, VolumeDefinition.fromPartial({ name: `${base}p1`, capacity: 22n * MiB, target: { format: 'none' } }));
    const planned = await backend.createVol(ctx, luks(`${base}p1`, 20n * MiB));
    expect(planned.sourceDevices).to.deep.equal(plain.sourceDevices);
    await backend.buildVol(ctx, planned, { preallocMetadata: false });
    const extent = plain.sourceDevices[0]!.extents[0]!;
    expect(partedPrint(loop.device)).to.contain(`\n1:${extent.start}B:${extent.end - 1n}B:${extent.end - extent.start}B:`);
    expect(blkidType(`${loop.device}p1`)).to.equal('crypto_LUKS');
    const size = extent.end - extent.start;
    const read = await backend.refreshVol(ctx, planned);
    expect([read.capacity, read.allocation, read.physical]).to.deep.equal([size - 2n * MiB, size - 2n * MiB, size]);
    expect(read.target?.encryption?.format).to.equal('luks');
    expect(read.target?.encryption?.secrets.map((s) => s.uuid)).to.deep.equal([UUID]);
    // a pool refresh reads it as any partition (libvirt 9.0: no encryption, the whole size)
    const listed = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === `${base}p1`)!;
    expect([listed.capacity, listed.target?.encryption]).to.deep.equal([size, undefined]);
    await backend.deleteVol(ctx, planned);
    expect(partedPrint(loop.device)).not.to.match(/\n1:\d+B:\d+B:\d+B:(?!free)/);
  });

  it('qemu-img writes through the node the agent opened, the passphrase in a file: a node swapped for a link when qemu-img starts leaves the link target untouched', async () => {
    const tmp = makeTempDir('cistern-disk-luks-');
    const node = `${loop.device}p1`;
    const decoy = join(tmp.path, 'decoy');
    writeFileSync(decoy, Buffer.alloc(4 * 1024 * 1024, 0x44));
    let argv: readonly string[] = [];
    const swapping = new SwappingRunner(
      (a) => {
        if (a[0] !== 'qemu-img') return false;
        argv = a;
        return true;
      },
      () => {
        renameSync(node, `${node}.aside`);
        symlinkSync(decoy, node);
      },
    );
    try {
      const sctx = { ...ctx, runner: swapping };
      const planned = await backend.createVol(sctx, luks(`${base}p1`, 8n * MiB));
      await backend.buildVol(sctx, planned, { preallocMetadata: false });
      expect(swapping.swapped).to.equal(1);
      expect(readFileSync(decoy).every((b) => b === 0x44)).to.equal(true);
      expect(blkidType(`${node}.aside`)).to.equal('crypto_LUKS');
      expect(argv.join(' ')).not.to.contain(PASSPHRASE);
      expect(argv).not.to.include(node);
      expect(argv.some((a) => /^secret,id=.*,file=\//.test(a))).to.equal(true);
    } finally {
      rmSync(node, { force: true });
      try {
        renameSync(`${node}.aside`, node);
      } catch {
        // the swap did not happen
      }
      await tmp.remove();
    }
    await backend.deleteVol(ctx, VolumeDefinition.fromPartial({ name: `${base}p1` }));
  });

  it('refuses before the table changes: an encryption other than LUKS, not one secret, an extended partition, no passphrase', async () => {
    const before = partedPrint(loop.device);
    const cases: Array<[VolumeDefinition, PoolContext, string, RegExp]> = [
      [luks(`${base}p1`, 8n * MiB, 'none', { encFormat: 'qcow' }), ctx, 'INVALID_ARGUMENT', /only supports LUKS/],
      [luks(`${base}p1`, 8n * MiB, 'none', { secrets: 2 }), ctx, 'INVALID_ARGUMENT', /secret/],
      [luks(`${base}p1`, 8n * MiB, 'none', { secrets: 0 }), ctx, 'INVALID_ARGUMENT', /secret/],
      [luks(`${base}p1`, 8n * MiB, 'extended'), ctx, 'INVALID_ARGUMENT', /extended/],
      [luks(`${base}p1`, 8n * MiB), { ...ctx, secrets: new Map() }, 'FAILED_PRECONDITION', /passphrase/],
    ];
    for (const [volume, c, code, message] of cases) {
      const err = await rejects(
        (async () => {
          const planned = await backend.createVol(c, volume);
          await backend.buildVol(c, planned, { preallocMetadata: false });
        })(),
      );
      expect([err.code, err.message], `${volume.target?.format} ${volume.target?.encryption?.format} x${volume.target?.encryption?.secrets.length}`).to.satisfy(([k, m]: [string, string]) => k === code && message.test(m));
      expect(partedPrint(loop.device)).to.equal(before);
    }
  });
});
