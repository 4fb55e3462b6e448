// The backing store a dir pool's refresh reports for a relative backing file name: as
// libvirt 9.0 (virStorageSourceNewFromBackingRelative) and qemu take it, the image's
// directory, a '/', the name as the header stores it. The kernel resolves its '.' and '..'
// when the file is opened, after any link before them, so that is the file whose format,
// mode and owner the backing store shows: collapsing 'sub/..' as text would read another
// file than qemu opens when 'sub' is a link to a directory elsewhere. A name with a ':'
// before its first '/' is no file to libvirt (virStorageIsFile) nor to qemu (a protocol
// prefix): it is printed as stored, raw, and nothing is opened by it.
import { expect } from 'chai';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../../libs/backends/dir.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { PoolType, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { fileVolume as vol } from '../../support/volume-definitions.js';

/**
 * A qcow2 version 2 header of `size` bytes' virtual size whose backing file is `backing`
 * (its format not recorded: a refresh probes the file it names), padded to 512 bytes.
 */
function qcow2Header(backing?: string, size = 1n << 20n): Buffer {
  const name = Buffer.from(backing ?? '', 'utf8');
  const buf = Buffer.alloc(512);
  buf.write('QFI\xfb', 0, 'latin1');
  buf.writeUInt32BE(2, 4);
  if (backing !== undefined) {
    buf.writeBigUInt64BE(72n, 8);
    buf.writeUInt32BE(name.length, 16);
    name.copy(buf, 72);
  }
  buf.writeUInt32BE(16, 20);
  buf.writeBigUInt64BE(size, 24);
  return buf;
}

describe('dir refresh: the backing store of a relative backing file name', () => {
  let root: string;
  let target: string;
  let ctx: PoolContext;
  const backend = new DirBackend();

  const refreshed = async (name: string): Promise<VolumeDefinition> => {
    const found = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === name);
    expect(found, `${name} listed`).to.not.equal(undefined);
    return found!;
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-backing-names-'));
    target = join(root, 'pool');
    mkdirSync(target);
    ctx = { runner: new RecordingRunner(), pool: { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path: target, permissions: undefined }, features: undefined, mountOptions: [] } };
    // the pool's base.img: a raw file anyone may read
    writeFileSync(join(target, 'base.img'), Buffer.alloc(4096));
    chmodSync(join(target, 'base.img'), 0o644);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("'sub/../base.img' through a link to a directory elsewhere shows the file the kernel (and qemu) opens there, by the name libvirt prints", async () => {
    // sub -> ROOT/elsewhere/deep, so sub/.. is ROOT/elsewhere, whose base.img is a qcow2 only root may read
    mkdirSync(join(root, 'elsewhere', 'deep'), { recursive: true });
    writeFileSync(join(root, 'elsewhere', 'base.img'), qcow2Header());
    chmodSync(join(root, 'elsewhere', 'base.img'), 0o600);
    symlinkSync(join(root, 'elsewhere', 'deep'), join(target, 'sub'));
    writeFileSync(join(target, 'through-link.qcow2'), qcow2Header('sub/../base.img'));

    for (const v of [await refreshed('through-link.qcow2'), await backend.refreshVol(ctx, vol('through-link.qcow2', ''))]) {
      expect(v.backingStore?.path).to.equal(`${target}/sub/../base.img`);
      expect(v.backingStore?.format, 'the format of the file opened').to.equal('qcow2');
      expect(v.backingStore?.permissions?.mode, 'the mode of the file opened').to.equal(0o600);
    }
  });

  it("'./base.img' is printed as libvirt prints it, '/./' and all", async () => {
    writeFileSync(join(target, 'dot.qcow2'), qcow2Header('./base.img'));
    const v = await refreshed('dot.qcow2');
    expect(v.backingStore?.path).to.equal(`${target}/./base.img`);
    expect(v.backingStore?.format).to.equal('raw');
    expect(v.backingStore?.permissions?.mode).to.equal(0o644);
  });

  for (const stored of ['x y:base.img', '1x:base.img', 'a_b:base.img']) {
    it(`'${stored}' (a ':' before any '/') is no file: printed as stored, raw, and the file of that name in the pool is not read`, async () => {
      // a file of that very name in the pool, which a qcow2 header: were it read, the format would say qcow2
      writeFileSync(join(target, stored), qcow2Header());
      writeFileSync(join(target, 'colon.qcow2'), qcow2Header(stored));
      const v = await refreshed('colon.qcow2');
      expect(v.backingStore?.path).to.equal(stored);
      expect(v.backingStore?.format).to.equal('raw');
      expect(v.backingStore?.permissions, 'nothing opened').to.equal(undefined);
    });
  }

  it("a name with its ':' after a '/' is a file, relative to the image's directory", async () => {
    mkdirSync(join(target, 'd'));
    writeFileSync(join(target, 'd', 'x:y.img'), qcow2Header());
    writeFileSync(join(target, 'slash-colon.qcow2'), qcow2Header('d/x:y.img'));
    const v = await refreshed('slash-colon.qcow2');
    expect(v.backingStore?.path).to.equal(`${target}/d/x:y.img`);
    expect(v.backingStore?.format).to.equal('qcow2');
  });

  it('a backing name that leads to a directory shows its format (dir when unrecorded) but no mode, owner or times, as libvirt 9.0', async () => {
    // libvirt updates a backing store's permissions and times only from a regular file or a
    // block device (VIR_STORAGE_VOL_OPEN_DEFAULT): a directory leaves them unknown, not printed
    mkdirSync(join(target, 'adir'));
    writeFileSync(join(target, 'dir-backed.qcow2'), qcow2Header('adir'));
    const v = await refreshed('dir-backed.qcow2');
    expect(v.backingStore?.path).to.equal(`${target}/adir`);
    expect(v.backingStore?.format).to.equal('dir');
    expect(v.backingStore?.permissions, 'permissions').to.equal(undefined);
    expect(v.backingStore?.timestamps, 'timestamps').to.equal(undefined);
  });
});
