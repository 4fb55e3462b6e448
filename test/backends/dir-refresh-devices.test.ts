// A refresh opens no character device, FIFO or socket, not even one that a name leads to only
// since the directory was listed: whoever can write in the pool swaps a file for a link to
// /dev/watchdog between the listing and the open, and the device's driver would see the open
// (a watchdog starts its countdown). A FIFO with a writer waiting in open(2) stands in for the
// device: the writer's open returns, and it exits, only if something opens the FIFO to read.
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants as fsc, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DirBackend } from '../../libs/backends/dir.js';
import { inspectVolumeSync, probeBackingFile } from '../../libs/backends/dir/inspect.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';

/** What readdir showed before the swap: a regular file. */
function listedAsFile(name: string): Dirent {
  const no = () => false;
  return { name, isFile: () => true, isDirectory: no, isBlockDevice: no, isCharacterDevice: no, isSymbolicLink: no, isFIFO: no, isSocket: no } as unknown as Dirent;
}

describe('dir backend: a refresh never opens a FIFO or device, also through a name swapped after the listing', function () {
  usePrivateTmpdir();
  this.timeout(30_000);
  let root: string;
  let target: string;
  let fifo: string;
  let writer: ChildProcess;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'cistern-refresh-devices-'));
    target = join(root, 'pool');
    mkdirSync(target);
    fifo = join(root, 'device');
    execFileSync('mkfifo', [fifo]);
    // blocks in open(O_WRONLY) until a reader opens the FIFO
    writer = spawn('sh', ['-c', 'exec 3>"$1"', 'sh', fifo], { stdio: 'ignore' });
    await once(writer, 'spawn');
  });
  afterEach(async () => {
    if (writer.exitCode === null && writer.signalCode === null) {
      closeSync(openSync(fifo, fsc.O_RDONLY | fsc.O_NONBLOCK)); // lets the writer's open return
      await once(writer, 'exit');
    }
    rmSync(root, { recursive: true, force: true });
  });

  const neverOpened = async () => {
    await sleep(200);
    expect(writer.exitCode, 'the FIFO was opened').to.equal(null);
    expect(writer.signalCode, 'the FIFO was opened').to.equal(null);
  };

  it('a name listed as a file and swapped for a link to the FIFO before its open: skipped, the FIFO not opened', async () => {
    symlinkSync(fifo, join(target, 'disk.img'));
    expect(inspectVolumeSync(join(target, 'disk.img'), 'disk.img', { noerror: true, direntType: listedAsFile('disk.img') })).to.equal(undefined);
    await neverOpened();
  });

  it('a backing file named in a header that leads to the FIFO: not probed, not opened', async () => {
    symlinkSync(fifo, join(target, 'base.img'));
    expect(probeBackingFile(join(target, 'base.img'))).to.equal(undefined);
    await neverOpened();
  });

  it('a refresh of a pool holding a link to the FIFO lists the files beside it, not the link', async () => {
    symlinkSync(fifo, join(target, 'link.img'));
    writeFileSync(join(target, 'plain.img'), Buffer.alloc(4096));
    const backend = new DirBackend();
    const ctx = { runner: new ExecRunner(), pool: PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } }) };
    await backend.startPool(ctx);
    const { volumes } = await backend.refreshPool(ctx);
    expect(volumes.map((v) => v.name)).to.deep.equal(['plain.img']);
    await neverOpened();
    await backend.stopPool(ctx);
  });
});
