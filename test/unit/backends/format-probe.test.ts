// Format probing on hand-made headers: each format's magic, version, virtual size,
// backing file and the qcow2 details, laid out byte by byte as the specs define them.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_HEADER, headerBytesNeeded, probeBuffer, probeFile } from '../../../libs/backends/format-probe.js';

function qcow2Header(opts: {
  version: 2 | 3;
  size: bigint;
  clusterBits?: number;
  backing?: string;
  backingFormat?: string;
  crypt?: number;
  compatibleFeatures?: bigint;
  incompatibleFeatures?: bigint;
}): Buffer {
  const buf = Buffer.alloc(4096);
  buf.write('QFI\xfb', 0, 'latin1');
  buf.writeUInt32BE(opts.version, 4);
  buf.writeUInt32BE(opts.clusterBits ?? 16, 20);
  buf.writeBigUInt64BE(opts.size, 24);
  buf.writeUInt32BE(opts.crypt ?? 0, 32);
  let ext = 72;
  if (opts.version === 3) {
    buf.writeBigUInt64BE(opts.incompatibleFeatures ?? 0n, 72);
    buf.writeBigUInt64BE(opts.compatibleFeatures ?? 0n, 80);
    buf.writeUInt32BE(4, 96); // refcount order
    buf.writeUInt32BE(104, 100); // header length
    ext = 104;
  }
  if (opts.backingFormat) {
    buf.writeUInt32BE(0xe2792aca, ext);
    buf.writeUInt32BE(opts.backingFormat.length, ext + 4);
    buf.write(opts.backingFormat, ext + 8, 'latin1');
    ext += 8 + Math.ceil(opts.backingFormat.length / 8) * 8;
  }
  // end-of-extensions marker
  buf.writeUInt32BE(0, ext);
  buf.writeUInt32BE(0, ext + 4);
  ext += 8;
  if (opts.backing) {
    buf.writeBigUInt64BE(BigInt(ext), 8);
    buf.writeUInt32BE(Buffer.byteLength(opts.backing), 16);
    buf.write(opts.backing, ext, 'utf8');
  }
  return buf;
}

describe('format probe (hand-made headers)', () => {
  it('sees an all-zero or unknown header as raw with no virtual size', () => {
    expect(probeBuffer(Buffer.alloc(4096))).to.deep.equal({ format: 'raw' });
    expect(probeBuffer(Buffer.from('hello world'))).to.deep.equal({ format: 'raw' });
    expect(probeBuffer(Buffer.alloc(0))).to.deep.equal({ format: 'raw' });
  });

  it('reads a qcow2 v3 header: size, cluster size, compat 1.1, lazy refcounts, backing file and format', () => {
    const r = probeBuffer(qcow2Header({ version: 3, size: 10n << 30n, clusterBits: 12, backing: 'base.img', backingFormat: 'raw', compatibleFeatures: 1n }));
    expect(r).to.deep.include({ format: 'qcow2', version: 3, capacity: 10n << 30n, clusterSize: 4096n, compat: '1.1', lazyRefcounts: true, extendedL2: false });
    expect(r.backingStore).to.deep.equal({ raw: 'base.img', format: 'raw' });
    expect(r.encryption).to.equal(undefined);
  });

  it('reads a backing file name up to its first NUL, as libvirt and qemu read it (a C string): no NUL reaches a volume\'s XML', () => {
    // libvirt's qcowXGetBackingStore and qemu copy the name into a C string: 'base\0evil' is 'base';
    // a name that starts with NUL is none (qemu: an empty backing file name)
    expect(probeBuffer(qcow2Header({ version: 3, size: 1n << 20n, backing: 'base\0evil', backingFormat: 'raw' })).backingStore).to.deep.equal({ raw: 'base', format: 'raw' });
    expect(probeBuffer(qcow2Header({ version: 2, size: 1n << 20n, backing: '\0evil' })).backingStore).to.equal(undefined);
    const qed = Buffer.alloc(512);
    qed.write('QED\0', 0, 'latin1');
    qed.writeUInt32LE(65536, 4);
    qed.writeBigUInt64LE(0x01n, 16);
    qed.writeBigUInt64LE(1n << 20n, 48);
    qed.writeUInt32LE(100, 56);
    qed.writeUInt32LE(11, 60);
    qed.write('parent\0evil', 100, 'latin1');
    expect(probeBuffer(qed).backingStore).to.deep.equal({ raw: 'parent', format: '' });
  });

  it('reads a qcow2 v2 header without a compat level or features, as libvirt does', () => {
    const r = probeBuffer(qcow2Header({ version: 2, size: 1048576n, backing: '/images/base.qcow2' }));
    expect(r).to.deep.include({ format: 'qcow2', version: 2, capacity: 1048576n, clusterSize: 65536n });
    expect(r.compat).to.equal(undefined);
    expect(r.lazyRefcounts).to.equal(undefined);
    expect(r.backingStore).to.deep.equal({ raw: '/images/base.qcow2', format: '' });
  });

  it('reports qcow2 encryption: method 1 is qcow (AES), method 2 is luks', () => {
    expect(probeBuffer(qcow2Header({ version: 3, size: 1n << 20n, crypt: 1 })).encryption).to.equal('qcow');
    expect(probeBuffer(qcow2Header({ version: 3, size: 1n << 20n, crypt: 2 })).encryption).to.equal('luks');
  });

  it('reports extended L2 from the incompatible feature bits', () => {
    expect(probeBuffer(qcow2Header({ version: 3, size: 1n << 20n, incompatibleFeatures: 1n << 4n })).extendedL2).to.equal(true);
  });

  it('treats a qcow magic with an unknown version as raw and names the possible format', () => {
    const buf = qcow2Header({ version: 3, size: 1n << 20n });
    buf.writeUInt32BE(9, 4);
    expect(probeBuffer(buf)).to.deep.equal({ format: 'raw', possibleFormat: 'qcow2' });
  });

  it('reads qcow (v1): size, backing file, AES encryption at offset 36', () => {
    const buf = Buffer.alloc(512);
    buf.write('QFI\xfb', 0, 'latin1');
    buf.writeUInt32BE(1, 4);
    buf.writeBigUInt64BE(48n, 8);
    buf.writeUInt32BE(4, 16);
    buf.writeBigUInt64BE(5n << 20n, 24);
    buf.writeUInt32BE(1, 36);
    buf.write('base', 48);
    const r = probeBuffer(buf);
    expect(r).to.deep.include({ format: 'qcow', version: 1, capacity: 5n << 20n, encryption: 'qcow' });
    expect(r.backingStore).to.deep.equal({ raw: 'base', format: '' });
  });

  it('reads qed: size at 48, backing file, raw backing when the no-probe flag is set', () => {
    const buf = Buffer.alloc(512);
    buf.write('QED\0', 0, 'latin1');
    buf.writeUInt32LE(65536, 4);
    buf.writeBigUInt64LE(0x01n | 0x04n, 16);
    buf.writeBigUInt64LE(3n << 30n, 48);
    buf.writeUInt32LE(100, 56);
    buf.writeUInt32LE(6, 60);
    buf.write('parent', 100);
    const r = probeBuffer(buf);
    expect(r).to.deep.include({ format: 'qed', capacity: 3n << 30n, clusterSize: 65536n });
    expect(r.backingStore).to.deep.equal({ raw: 'parent', format: 'raw' });
  });

  it('reads vmdk: capacity in sectors, parent from the descriptor', () => {
    const buf = Buffer.alloc(2048);
    buf.write('KDMV', 0, 'latin1');
    buf.writeUInt32LE(1, 4);
    buf.writeBigUInt64LE(2048n, 12);
    buf.write('# Disk DescriptorFile\nparentFileNameHint="base.vmdk"\n', 0x200, 'latin1');
    const r = probeBuffer(buf);
    expect(r).to.deep.include({ format: 'vmdk', capacity: 2048n * 512n });
    expect(r.backingStore).to.deep.equal({ raw: 'base.vmdk', format: '' });
  });

  it('reads vpc (conectix, version 0x10000, size at 40), vdi (magic at 64, size at 368)', () => {
    const vpc = Buffer.alloc(512);
    vpc.write('conectix', 0, 'latin1');
    vpc.writeUInt32BE(0x10000, 12);
    vpc.writeBigUInt64BE(7n << 20n, 40);
    expect(probeBuffer(vpc)).to.deep.include({ format: 'vpc', capacity: 7n << 20n });
    const vdi = Buffer.alloc(512);
    vdi.writeUInt32LE(0xbeda107f, 64);
    vdi.writeUInt32LE(0x00010001, 68);
    vdi.writeBigUInt64LE(9n << 20n, 368);
    expect(probeBuffer(vdi)).to.deep.include({ format: 'vdi', capacity: 9n << 20n });
  });

  it('reads cow (OOOM v2: backing name at 8, size at 1036) and bochs', () => {
    const cow = Buffer.alloc(2048);
    cow.write('OOOM', 0, 'latin1');
    cow.writeUInt32BE(2, 4);
    cow.write('/base.img', 8);
    cow.writeBigUInt64BE(4n << 20n, 1036);
    const r = probeBuffer(cow);
    expect(r).to.deep.include({ format: 'cow', capacity: 4n << 20n });
    expect(r.backingStore).to.deep.equal({ raw: '/base.img', format: '' });
    const bochs = Buffer.alloc(512);
    bochs.write('Bochs Virtual HD Image', 0, 'latin1');
    bochs.writeUInt32LE(0x20000, 64);
    bochs.writeBigUInt64LE(6n << 20n, 88);
    expect(probeBuffer(bochs)).to.deep.include({ format: 'bochs', capacity: 6n << 20n });
  });

  it('reads iso 9660 from the CD001 signature at 32769', () => {
    const iso = Buffer.alloc(32774 + 100);
    iso.write('CD001', 32769, 'latin1');
    expect(probeBuffer(iso)).to.deep.equal({ format: 'iso' });
  });

  it('sees LUKS as raw with luks encryption; capacity is the file size minus the payload', () => {
    const luks = Buffer.alloc(592);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(luks, 0);
    luks.writeUInt16BE(1, 6);
    luks.writeUInt32BE(4096, 104);
    const r = probeBuffer(luks, 10n << 20n);
    expect(r).to.deep.include({ format: 'raw', encryption: 'luks', payloadOffset: 4096n * 512n, capacity: (10n << 20n) - 4096n * 512n });
  });

  it('asks for more header bytes only when the format needs them', () => {
    expect(headerBytesNeeded(Buffer.alloc(4096), 1 << 30)).to.equal(4096);
    const q = qcow2Header({ version: 3, size: 1n });
    q.writeBigUInt64BE(6000n, 8);
    q.writeUInt32BE(20, 16);
    expect(headerBytesNeeded(q, 1 << 30)).to.equal(6020);
    const vmdk = Buffer.alloc(4096);
    vmdk.write('KDMV', 0, 'latin1');
    vmdk.writeUInt32LE(1, 4);
    expect(headerBytesNeeded(vmdk, 1 << 30)).to.equal(MAX_HEADER);
    expect(headerBytesNeeded(vmdk, 3000)).to.equal(3000);
  });

  describe('probeFile', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'cistern-probe-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('probes files on disk: qcow2 with a backing name past 4 KiB, a sparse iso, a directory', async () => {
      const q = Buffer.alloc(8192);
      qcow2Header({ version: 3, size: 1n << 30n }).copy(q);
      q.writeBigUInt64BE(6000n, 8);
      q.writeUInt32BE(8, 16);
      q.write('far/away', 6000);
      writeFileSync(join(dir, 'q'), q);
      const r = await probeFile(join(dir, 'q'));
      expect(r.format).to.equal('qcow2');
      expect(r.backingStore?.raw).to.equal('far/away');

      const iso = join(dir, 'i.iso');
      writeFileSync(iso, '');
      truncateSync(iso, 1 << 20);
      const fd = Buffer.from('CD001');
      const { openSync, writeSync, closeSync } = await import('node:fs');
      const h = openSync(iso, 'r+');
      writeSync(h, fd, 0, 5, 32769);
      closeSync(h);
      expect((await probeFile(iso)).format).to.equal('iso');

      mkdirSync(join(dir, 'd'));
      expect((await probeFile(join(dir, 'd'))).format).to.equal('dir');
    });
  });
});
