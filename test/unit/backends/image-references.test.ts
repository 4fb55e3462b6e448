// The files qemu would open for an image, as image-references.ts finds them: each backing file
// is handed to `admit` (where its descriptor really is) before it is read, and what cannot be
// checked is refused.
import { mkdtempSync, readFileSync, readSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { checkImageReferences, MAX_CHAIN_LENGTH, openImageChain } from '../../../libs/backends/image-references.js';
import { planQcow2Image, renderQcow2Image } from '../../../libs/backends/qcow2-image.js';

function qcow2(path: string, backingFile?: string, backingFormat?: string): void {
  const res = planQcow2Image({ capacity: 1n << 20n, backingFile, backingFormat });
  if (!res.ok) throw new Error(res.reason);
  writeFileSync(path, renderQcow2Image(res.plan));
}

describe('image references: the backing chain qemu would open', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-imgref-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const walk = (name: string, format = 'probe'): string[] => {
    const seen: string[] = [];
    checkImageReferences(join(dir, name), format, (path) => void seen.push(path), 'image');
    return seen;
  };
  const refusal = (name: string, format = 'probe'): string => {
    try {
      walk(name, format);
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('PERMISSION_DENIED');
      return (err as Error).message;
    }
    throw new Error('expected a refusal');
  };

  it('admits every file of a chain, relative names against the image directory', () => {
    writeFileSync(join(dir, 'base'), 'BASE');
    qcow2(join(dir, 'mid'), 'base', 'raw');
    qcow2(join(dir, 'top'), join(dir, 'mid'), 'qcow2');
    expect(walk('top')).to.deep.equal([join(dir, 'top'), join(dir, 'mid'), join(dir, 'base')]);
    expect(walk('base')).to.deep.equal([join(dir, 'base')]);
  });

  it('with wholeChain, a file of the chain that cannot be opened is FAILED_PRECONDITION; without, the chain ends there, naming it', () => {
    qcow2(join(dir, 'mid'), 'gone', 'raw');
    qcow2(join(dir, 'top'), 'mid', 'qcow2');
    expect(walk('top')).to.deep.equal([join(dir, 'top'), join(dir, 'mid')]);
    const chain = openImageChain(join(dir, 'top'), 'probe', () => undefined, 'image');
    expect(chain.unopened).to.deep.equal({ name: join(dir, 'gone'), code: 'ENOENT', depth: 2 });
    chain.close();
    const strict = (): void => checkImageReferences(join(dir, 'top'), 'probe', () => undefined, 'image', { wholeChain: true });
    expect(strict).to.throw(/inaccessible backing store volume '.*\/top': its backing chain names '.*\/gone', which cannot be opened \(ENOENT\)/);
    try {
      strict();
    } catch (err) {
      expect((err as { code?: string }).code).to.equal('FAILED_PRECONDITION');
    }
    writeFileSync(join(dir, 'gone'), 'BASE');
    checkImageReferences(join(dir, 'top'), 'probe', () => undefined, 'image', { wholeChain: true });
  });

  it('refuses a protocol or json: backing, never handing it to admit', () => {
    qcow2(join(dir, 'nbd'), 'nbd:127.0.0.1:10809', 'raw');
    qcow2(join(dir, 'json'), 'json:{"file":{"driver":"file","filename":"/etc/shadow"}}', 'raw');
    expect(refusal('nbd')).to.match(/protocol or option string/);
    expect(refusal('json')).to.match(/protocol or option string/);
  });

  it('refuses a VMDK text descriptor qemu would probe, and a recorded format the file is not', () => {
    writeFileSync(join(dir, 'desc'), '# Disk DescriptorFile\nversion=1\nRW 8 FLAT "/etc/shadow" 0\n');
    qcow2(join(dir, 'over-desc'), 'desc');
    expect(refusal('over-desc')).to.match(/VMDK descriptor/);
    writeFileSync(join(dir, 'plain'), 'PLAIN');
    qcow2(join(dir, 'over-plain'), 'plain', 'vmdk');
    expect(refusal('over-plain')).to.match(/read as 'vmdk' but its header says 'raw'/);
    // read as raw, a descriptor is only bytes
    qcow2(join(dir, 'over-desc-raw'), 'desc', 'raw');
    expect(walk('over-desc-raw')).to.deep.equal([join(dir, 'over-desc-raw'), join(dir, 'desc')]);
  });

  it('refuses a binary VMDK whose header has qemu open the text descriptor it points at (capacity 0, a descriptor offset), on its own or as a backing file', () => {
    // qemu's vmdk_open_vmdk4 reads such a header as a wrapper of a descriptor, and opens the
    // extents it names ("RW 8 FLAT /etc/shadow 0") by name
    const kdmv = (capacity: bigint, descriptorSector: bigint): Buffer => {
      const header = Buffer.alloc(512);
      header.write('KDMV', 0, 'latin1');
      header.writeUInt32LE(1, 4);
      header.writeBigUInt64LE(capacity, 12);
      header.writeBigUInt64LE(128n, 20);
      header.writeBigUInt64LE(descriptorSector, 28);
      header.writeBigUInt64LE(20n, 36);
      const descriptor = Buffer.alloc(20 * 512);
      descriptor.write('# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 8 FLAT "/etc/shadow" 0\n', 'latin1');
      return Buffer.concat([header, descriptor]);
    };
    writeFileSync(join(dir, 'wrapper'), kdmv(0n, 1n));
    expect(refusal('wrapper')).to.match(/'.*\/wrapper' cannot be checked: it is a VMDK whose header points at a text descriptor/);
    expect(refusal('wrapper', 'vmdk')).to.match(/text descriptor/);
    qcow2(join(dir, 'over-wrapper'), 'wrapper', 'vmdk');
    expect(refusal('over-wrapper')).to.match(/'.*\/wrapper' cannot be checked: it is a VMDK whose header/);
    // a sparse extent with a size reads its embedded descriptor for its parent only; without
    // a descriptor offset, qemu reads no descriptor at all
    writeFileSync(join(dir, 'sparse'), kdmv(2048n, 1n));
    writeFileSync(join(dir, 'no-descriptor'), kdmv(0n, 0n));
    expect(walk('sparse')).to.deep.equal([join(dir, 'sparse')]);
    expect(walk('no-descriptor')).to.deep.equal([join(dir, 'no-descriptor')]);
  });

  it('follows a backing name up to its first NUL, the file qemu opens for it', () => {
    writeFileSync(join(dir, 'base'), 'BASE');
    qcow2(join(dir, 'top'), 'base_evil', 'raw');
    const image = readFileSync(join(dir, 'top'));
    image[image.indexOf('base_evil') + 4] = 0; // the planner refuses a NUL: put it in by hand
    writeFileSync(join(dir, 'top'), image);
    expect(walk('top')).to.deep.equal([join(dir, 'top'), join(dir, 'base')]);
  });

  it('stops a cycle at the chain limit instead of walking it forever', () => {
    qcow2(join(dir, 'a'), 'b', 'qcow2');
    qcow2(join(dir, 'b'), 'a', 'qcow2');
    expect(refusal('a')).to.match(new RegExp(`longer than ${MAX_CHAIN_LENGTH} files`));
  });

  it("passes admit's refusal through, before a byte of the file is read", () => {
    qcow2(join(dir, 'top'), '/etc/shadow', 'raw');
    expect(() =>
      checkImageReferences(join(dir, 'top'), 'probe', (name) => {
        if (name === '/etc/shadow') throw new Error(`not admitted: ${name}`);
      }, 'image'),
    ).to.throw('not admitted: /etc/shadow');
  });

  it('admits where the descriptor opened really is (a link followed), and reads every layer from its descriptor after the names change', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'cistern-imgref-out-'));
    try {
      writeFileSync(join(elsewhere, 'base'), 'BASE');
      symlinkSync(join(elsewhere, 'base'), join(dir, 'base'));
      qcow2(join(dir, 'top'), 'base', 'raw');
      const admitted: Array<[string, string]> = [];
      const chain = openImageChain(join(dir, 'top'), 'probe', (name, real) => void admitted.push([name, real]), 'image');
      try {
        expect(admitted).to.deep.equal([
          [join(dir, 'top'), join(dir, 'top')],
          [join(dir, 'base'), join(elsewhere, 'base')],
        ]);
        expect(chain.layers.map((l) => l.format)).to.deep.equal(['qcow2', 'raw']);
        // both names now lead elsewhere: the descriptors still hold the files that were checked
        renameSync(join(dir, 'top'), join(dir, 'top.aside'));
        writeFileSync(join(dir, 'top'), 'SWAPPED');
        rmSync(join(dir, 'base'));
        writeFileSync(join(dir, 'base'), 'SWAPPED');
        const buf = Buffer.alloc(4);
        readSync(chain.layers[1]!.fd, buf, 0, 4, 0);
        expect(buf.toString()).to.equal('BASE');
        readSync(chain.layers[0]!.fd, buf, 0, 4, 0);
        expect(buf.toString('latin1')).to.equal('QFI\xfb');
      } finally {
        chain.close();
      }
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
