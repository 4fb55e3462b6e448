// A client with volume rights must not read the host's files through a backing store: a qcow2
// overlay of /etc/shadow (asked for, or written into an uploaded header), cloned to raw by
// qemu-img convert and downloaded, would hand the file out. Real fleet, real qemu-img.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { expect } from 'chai';
import { CloneVolumeRequest, CreatePoolRequest, CreateVolumeRequest, RefreshPoolRequest, ResizeVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { download, makeTempDir, upload, useStack } from '../support/index.js';
import { expectCode } from '../support/grpc-expect.js';

const SECRET = 'HOST-SECRET-' + 'x'.repeat(4000);

describe('security: backing stores and clone sources stay inside the host pools', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let outside: string;
  let secret: string;
  let target: string;
  const pool = 'hosts/a/pools/p';

  before(async () => {
    const tmp = makeTempDir('cistern-backing-');
    outside = join(tmp.path, 'outside');
    mkdirSync(outside);
    secret = join(outside, 'secret');
    writeFileSync(secret, SECRET);
    target = join(ctx.stack.roots.a, 'pool-p');
    mkdirSync(target, { recursive: true });
    await ctx.stack.api.createPool(
      CreatePoolRequest.fromPartial({ host: 'a', xml: `<pool type='dir'><name>p</name><target><path>${target}</path></target></pool>` }),
    );
  });

  const qcow2 = (name: string, size: number, xml = ''): Promise<unknown> =>
    ctx.stack.api.createVolume(
      CreateVolumeRequest.fromPartial({ parent: pool, xml: `<volume><name>${name}</name><capacity>${size}</capacity>${xml}</volume>` }),
    );

  /** Uploads an image made outside the pool by qemu-img into a new volume of the pool, and refreshes. */
  const uploadImage = async (name: string, qemuArgs: string[]): Promise<void> => {
    const file = join(outside, `${name}.img`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', ...qemuArgs, '--', file, '1M']);
    const bytes = readFileSync(file);
    await qcow2(name, bytes.length);
    await upload(ctx.stack, `${pool}/volumes/${name}`, bytes);
    await ctx.stack.api.refreshPool(RefreshPoolRequest.fromPartial({ name: pool }));
  };

  /**
   * Uploads a binary VMDK that qemu's vmdk_open_vmdk4 reads as a wrapper: a KDMV header with
   * capacity 0 and a descriptor offset is opened as the descriptor found there, and its extent
   * (here the secret file, "RW 8 FLAT ...") is opened by name.
   */
  const uploadVmdkWrapper = async (name: string): Promise<void> => {
    const header = Buffer.alloc(512);
    header.write('KDMV', 0, 'latin1');
    header.writeUInt32LE(1, 4); // version
    header.writeUInt32LE(3, 8); // flags
    header.writeBigUInt64LE(0n, 12); // capacity 0
    header.writeBigUInt64LE(128n, 20); // grain size
    header.writeBigUInt64LE(1n, 28); // descriptor at sector 1
    header.writeBigUInt64LE(20n, 36); // descriptor size in sectors
    const descriptor = Buffer.alloc(20 * 512);
    descriptor.write(`# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 8 FLAT "${secret}" 0\n`, 'latin1');
    const bytes = Buffer.concat([header, descriptor]);
    await qcow2(name, bytes.length);
    await upload(ctx.stack, `${pool}/volumes/${name}`, bytes);
    await ctx.stack.api.refreshPool(RefreshPoolRequest.fromPartial({ name: pool }));
  };

  const clone = (source: string, name: string): Promise<unknown> =>
    ctx.stack.api.cloneVolume(
      CloneVolumeRequest.fromPartial({ parent: pool, source: `${pool}/volumes/${source}`, xml: `<volume><name>${name}</name><target><format type='raw'/></target></volume>` }),
    );

  it('refuses a new volume whose backing store is a file outside every pool: PERMISSION_DENIED, nothing created', async () => {
    await expectCode(
      qcow2('overlay', 1 << 20, `<target><format type='qcow2'/></target><backingStore><path>${secret}</path><format type='raw'/></backingStore>`),
      status.PERMISSION_DENIED,
      /backing store .* in none of the active pools of host 'a'/,
    );
    expect(existsSync(join(target, 'overlay'))).to.equal(false);
  });

  it('refuses a backing store that is a link out of the pools without saying where it leads (the agent reads links as root)', async () => {
    // an operator naming /proc/self/fd/N, /proc/PID/fd/N or /proc/PID/cwd was told the file
    // the root agent, or any process, has open there: e.g. '/proc/self/fd/1' resolves to the
    // agent's log file. A link the operator cannot read (mode 700 directory) stands for them.
    const hidden = join(outside, 'hidden');
    mkdirSync(hidden, { mode: 0o700 });
    const leadsTo = join(hidden, 'where-the-link-leads');
    writeFileSync(leadsTo, SECRET);
    const link = join(outside, 'link');
    symlinkSync(leadsTo, link);
    for (const path of [link, '/proc/self/fd/1']) {
      const message = await expectCode(
        qcow2('overlay-link', 1 << 20, `<target><format type='qcow2'/></target><backingStore><path>${path}</path><format type='raw'/></backingStore>`),
        status.PERMISSION_DENIED,
        new RegExp(`backing store '${path}' .*in none of the active pools of host 'a'`),
      );
      expect(message, path).to.not.include('where-the-link-leads');
      expect(message, path).to.not.match(/resolves to/);
    }
    expect(existsSync(join(target, 'overlay-link'))).to.equal(false);
  });

  it("refuses a backing store in a sibling directory named like the pool's target ('pool-p-sibling'): PERMISSION_DENIED, nothing created", async () => {
    const sibling = `${target}-sibling`;
    mkdirSync(sibling, { recursive: true });
    const victim = join(sibling, 'secret');
    writeFileSync(victim, SECRET);
    await expectCode(
      qcow2('overlay-sibling', 1 << 20, `<target><format type='qcow2'/></target><backingStore><path>${victim}</path><format type='raw'/></backingStore>`),
      status.PERMISSION_DENIED,
      /backing store .* in none of the active pools of host 'a'/,
    );
    expect(existsSync(join(target, 'overlay-sibling'))).to.equal(false);
    await uploadImage('abs-sibling', ['-b', victim, '-F', 'raw']);
    await expectCode(clone('abs-sibling', 'flat-sibling'), status.PERMISSION_DENIED, /in none of the active pools of host 'a'/);
    expect(existsSync(join(target, 'flat-sibling'))).to.equal(false);
    expect(readFileSync(victim, 'utf8')).to.equal(SECRET);
  });

  it('refuses to clone an uploaded image whose header names a file outside (absolute, relative, json:, data file)', async () => {
    await uploadImage('abs', ['-b', secret, '-F', 'raw']);
    await uploadImage('json', ['-b', `json:{"driver":"raw","file":{"driver":"file","filename":"${secret}"}}`, '-F', 'raw']);
    // relative to the volume's directory, as qemu resolves it: up and out of the pool
    const up = target.split('/').filter(Boolean).map(() => '..').join('/');
    await uploadImage('rel', ['-b', `${up}${secret}`, '-F', 'raw']);
    const dataFile = join(outside, 'data-file');
    await uploadImage('datafile', ['-o', `data_file=${dataFile},data_file_raw=on`]);
    writeFileSync(dataFile, SECRET); // qemu-img create emptied it
    for (const source of ['abs', 'json', 'rel', 'datafile']) {
      await expectCode(clone(source, `flat-${source}`), status.PERMISSION_DENIED);
      expect(existsSync(join(target, `flat-${source}`)), source).to.equal(false);
    }
  });

  it('refuses to clone an uploaded binary VMDK whose header points qemu at a text descriptor naming extents outside', async () => {
    await uploadVmdkWrapper('embedded-desc');
    const cloned = clone('embedded-desc', 'flat-embedded-desc');
    await cloned.catch(() => undefined);
    // before this was refused, the clone held the outside file's first 4 KiB
    const made = join(target, 'flat-embedded-desc');
    expect(existsSync(made) ? readFileSync(made, 'latin1') : '').to.not.include('HOST-SECRET');
    await expectCode(cloned, status.PERMISSION_DENIED, /image '.*embedded-desc' cannot be checked: it is a VMDK whose header points at a text descriptor/);
    expect(existsSync(made)).to.equal(false);
  });

  it('refuses an overlay of a volume whose own backing file is missing: FAILED_PRECONDITION naming it, nothing created', async () => {
    // 'mid' names 'gone' (relative to mid's directory: in the pool), which does not exist
    await uploadImage('mid', ['-b', 'gone', '-F', 'raw']);
    await expectCode(
      qcow2('over-mid', 1 << 20, `<target><format type='qcow2'/></target><backingStore><path>${join(target, 'mid')}</path><format type='qcow2'/></backingStore>`),
      status.FAILED_PRECONDITION,
      /inaccessible backing store volume .*mid': its backing chain names .*gone', which cannot be opened \(ENOENT\)/,
    );
    expect(existsSync(join(target, 'over-mid'))).to.equal(false);
    // growing 'mid' has qemu-img open its chain, which does not open: libvirt's qemu-img fails too
    await expectCode(
      ctx.stack.api.resizeVolume(ResizeVolumeRequest.fromPartial({ name: `${pool}/volumes/mid`, capacity: 4n << 20n })),
      status.FAILED_PRECONDITION,
      /^cannot grow volume 'mid': inaccessible backing store volume '.*gone': it cannot be opened \(ENOENT\)/,
    );
  });

  it('refuses to grow an uploaded image whose header names a file outside (qemu-img would open its chain): PERMISSION_DENIED, the image unchanged; a shrink is not refused', async () => {
    // 'abs' names the secret file (uploaded by the clone test above)
    const before = await download(ctx.stack, `${pool}/volumes/abs`);
    await expectCode(
      ctx.stack.api.resizeVolume(ResizeVolumeRequest.fromPartial({ name: `${pool}/volumes/abs`, capacity: 4n << 20n })),
      status.PERMISSION_DENIED,
      /the backing file of 'abs' .* in none of the active pools of host 'a'/,
    );
    expect((await download(ctx.stack, `${pool}/volumes/abs`)).equals(before)).to.equal(true);
    await ctx.stack.api.resizeVolume(ResizeVolumeRequest.fromPartial({ name: `${pool}/volumes/abs`, capacity: 512n << 10n, shrink: true }));
  });

  it('refuses to resize an uploaded qcow2 whose external data file is outside the pools: PERMISSION_DENIED, that file unchanged', async () => {
    // qemu-img resize opens the data file its header names by name, read-write, and truncates
    // it to the new size: any resize set the size of a file outside every pool (a shrink below
    // that file's size cut it)
    const dataFile = join(outside, 'resize-data-file');
    await uploadImage('datafile-resize', ['-o', `data_file=${dataFile},data_file_raw=on`]);
    writeFileSync(dataFile, SECRET); // qemu-img create emptied it
    const name = `${pool}/volumes/datafile-resize`;
    for (const [capacity, shrink] of [[512n << 10n, true], [4n << 20n, false]] as const) {
      const outcome = ctx.stack.api.resizeVolume(ResizeVolumeRequest.fromPartial({ name, capacity, shrink }));
      await outcome.catch(() => undefined);
      expect(readFileSync(dataFile, 'utf8'), `${capacity}`).to.equal(SECRET);
      await expectCode(outcome, status.PERMISSION_DENIED, /datafile-resize' cannot be checked: it keeps its data in an external data file/);
    }
  });

  it('refuses to resize an uploaded binary VMDK that points qemu at a descriptor naming extents, before qemu-img opens them read-write', async () => {
    // qemu-img resize opened the secret file, its extent, O_RDWR before it failed (on the
    // image lock, naming the file: INTERNAL), where a character device's open alone acts
    await uploadVmdkWrapper('resize-desc');
    await expectCode(
      ctx.stack.api.resizeVolume(ResizeVolumeRequest.fromPartial({ name: `${pool}/volumes/resize-desc`, capacity: 1n << 20n })),
      status.PERMISSION_DENIED,
      /resize-desc' cannot be checked: it is a VMDK whose header points at a text descriptor/,
    );
    expect(readFileSync(secret, 'utf8')).to.equal(SECRET);
  });

  it('still builds and clones overlays whose chain stays in the pool, and the clone holds the base data', async () => {
    await ctx.stack.api.createVolume(CreateVolumeRequest.fromPartial({ parent: pool, xml: `<volume><name>base</name><capacity>65536</capacity></volume>` }));
    await upload(ctx.stack, `${pool}/volumes/base`, Buffer.from('BASE-DATA'));
    await qcow2('top', 65536, `<target><format type='qcow2'/></target><backingStore><path>${join(target, 'base')}</path><format type='raw'/></backingStore>`);
    await clone('top', 'flat-top');
    const data = await download(ctx.stack, `${pool}/volumes/flat-top`);
    expect(data.subarray(0, 9).toString()).to.equal('BASE-DATA');
    expect(data.toString('latin1')).to.not.include('HOST-SECRET');
  });
});
