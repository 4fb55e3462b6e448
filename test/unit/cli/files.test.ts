// errnoText: a local file's failure in the words virsh shows, not Node's; readXmlFile: the
// document is the file's UTF-8 text, or an error.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { UsageError } from '../../../cli/errors.js';
import { errnoText, readXmlFile } from '../../../cli/files.js';

describe('cisternctl file errors (errnoText)', () => {
  it('gives the C library\'s words for the usual errors', () => {
    expect(errnoText({ code: 'EISDIR', message: 'EISDIR: illegal operation on a directory, read' })).to.equal('Is a directory');
    expect(errnoText({ code: 'ENOENT', message: "ENOENT: no such file or directory, open '/x'" })).to.equal('No such file or directory');
    expect(errnoText({ code: 'ENOSPC', message: 'ENOSPC: no space left on device, write' })).to.equal('No space left on device');
  });

  it('keeps libuv\'s words without the code and the call for any other errno', () => {
    expect(errnoText({ code: 'EXDEV', message: "EXDEV: cross-device link not permitted, rename '/a' -> '/b'" }))
      .to.equal('cross-device link not permitted');
    expect(errnoText(new Error('something else'))).to.equal('something else');
  });
});

describe('cisternctl XML files (readXmlFile)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-cli-files-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says open for a file that cannot be opened and read for one that opens but cannot be read, as virsh (virFileReadAll)', async () => {
    // virsh pool-define /nonexistent: error: Failed to open file '/nonexistent': No such file or directory
    const missing = join(dir, 'missing.xml');
    const notThere = await readXmlFile(missing).then(() => undefined, (e: unknown) => e);
    expect((notThere as Error).message).to.equal(`Failed to open file '${missing}': No such file or directory`);
    // virsh pool-create /tmp: a directory opens (O_RDONLY), and read() fails:
    // error: Failed to read file '/tmp': Is a directory
    const directory = await readXmlFile(dir).then(() => undefined, (e: unknown) => e);
    expect(directory).to.be.instanceOf(UsageError);
    expect((directory as Error).message).to.equal(`Failed to read file '${dir}': Is a directory`);
  });

  it('refuses a document over the 1 MiB the coordinator reads, before sending it, naming the limit', async () => {
    // virsh reads up to 10 MiB; the coordinator takes documents of at most 1 MiB, and a request
    // over 4 MiB was refused by gRPC's own decoder, in words that name no document
    const file = join(dir, 'big.xml');
    writeFileSync(file, Buffer.alloc(1024 * 1024 + 1, 0x20));
    const refused = await readXmlFile(file).then(() => undefined, (e: unknown) => e);
    expect(refused).to.be.instanceOf(UsageError);
    expect((refused as Error).message).to.equal(`File '${file}' is 1048577 bytes: an XML document is at most 1048576 bytes (1 MiB)`);
    writeFileSync(file, Buffer.alloc(1024 * 1024, 0x20));
    expect(await readXmlFile(file)).to.have.length(1024 * 1024);
  });

  it('reads a UTF-8 file as its text', async () => {
    const file = join(dir, 'utf8.xml');
    writeFileSync(file, Buffer.from("<pool type='dir'><name>caf\u00e9</name></pool>\n", 'utf8'));
    expect(await readXmlFile(file)).to.equal("<pool type='dir'><name>caf\u00e9</name></pool>\n");
  });

  it('refuses a file that is not UTF-8, saying where, instead of reading U+FFFD for its bytes', async () => {
    // a Latin-1 file: 0xE9 is 'é' there; decoded leniently it became U+FFFD, and the pool
    // was defined with the target '/srv/caf\uFFFD', a directory the user never named
    // (virsh refuses it: libxml2's "Input is not proper UTF-8")
    const file = join(dir, 'latin1.xml');
    writeFileSync(file, Buffer.concat([
      Buffer.from("<pool type='dir'>\n  <name>p</name>\n  <target><path>/srv/caf", 'latin1'),
      Buffer.from([0xe9]),
      Buffer.from('</path></target>\n</pool>\n', 'latin1'),
    ]));
    let caught: unknown;
    try {
      await readXmlFile(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).to.be.instanceOf(UsageError);
    const message = (caught as Error).message;
    expect(message).to.include(file);
    expect(message).to.include('not valid UTF-8');
    expect(message).to.include('0xE9');
    expect(message).to.include('line 3');
    // an encoded surrogate (CESU-8) and a sequence cut short at the end are not UTF-8 either
    for (const [bytes, at] of [[[0x61, 0xed, 0xa0, 0x80], 'byte 0xED at line 1, column 2'], [[0x0a, 0x61, 0xc3], 'byte 0xC3 at line 2, column 2']] as const) {
      const bad = join(dir, 'bad.xml');
      writeFileSync(bad, Buffer.from(bytes));
      const err = await readXmlFile(bad).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(UsageError);
      expect((err as Error).message).to.include(at);
    }
  });
});
