// cisternctl vol-upload and vol-download whose coordinator is killed (SIGKILL) mid-transfer:
// grpc-js says only "Connection dropped". The user must learn what became of the volume (an
// upload cut before all its data was sent is not committed, the volume keeps what reached it)
// and of the output file (partial: how many bytes it holds), and what to do.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/cut';
const MiB = 1024 * 1024;

describe('cisternctl vol-upload / vol-download with the coordinator killed mid-transfer (real processes)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cli-transfer-killed-');
  let poolPath = '';

  before(async () => {
    poolPath = join(scratch.path, 'cut');
    await startDirPool(ctx.stack, 'a', 'cut', poolPath);
  });

  it('vol-upload says how much was sent, that the upload was not committed, and to upload again', async () => {
    await createVolume(ctx.stack, POOL, 'up', String(4 * MiB));
    const fifo = join(scratch.path, 'up-source');
    execFileSync('mkfifo', [fifo]);
    const cli = ctx.stack.cli(['vol-upload', `${POOL}/volumes/up`, fifo]);
    let producer: FileHandle | undefined = await open(fifo, 'w');
    try {
      await producer.write(Buffer.alloc(MiB, 0x5a));
      await waitFor('the first MiB written to the volume', () => {
        const buf = Buffer.alloc(MiB);
        const fd = openSync(join(poolPath, 'up'), 'r');
        try {
          readSync(fd, buf, 0, MiB, 0);
        } finally {
          closeSync(fd);
        }
        return buf.every((b) => b === 0x5a);
      });
      await ctx.stack.coordinator.kill();
      // cisternctl waits on the pipe: the producer ends
      await producer.close();
      producer = undefined;
      const res = await cli;
      expect(res.code, res.stderr).to.equal(1);
      expect(res.stderr).to.include('cannot upload to volume');
      expect(res.stderr).to.include('Connection dropped');
      expect(res.stderr).to.include(`after ${MiB} bytes`);
      expect(res.stderr).to.match(/not committed/);
      expect(res.stderr).to.match(/vol-upload again/);
    } finally {
      await producer?.close();
      await ctx.stack.restartCoordinator({ kill: true });
    }
  });

  it('vol-download says the output is partial and how many bytes it holds', async () => {
    await createVolume(ctx.stack, POOL, 'down', String(64 * MiB), { allocation: '0' });
    const fifo = join(scratch.path, 'down-sink');
    execFileSync('mkfifo', [fifo]);
    const cli = ctx.stack.cli(['vol-download', `${POOL}/volumes/down`, fifo]);
    const sink = await open(fifo, 'r');
    let received = 0;
    try {
      const buf = Buffer.alloc(64 * 1024);
      // the first bytes arrive; then nothing is read, the download stalls on the pipe
      while (received < 64 * 1024) received += (await sink.read(buf, 0, buf.length, null)).bytesRead;
      await ctx.stack.coordinator.kill();
      for (;;) {
        const { bytesRead } = await sink.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        received += bytesRead;
      }
    } finally {
      await sink.close();
    }
    const res = await cli;
    expect(res.code, res.stderr).to.equal(1);
    expect(res.stderr).to.include('cannot download from volume');
    expect(res.stderr).to.include('Connection dropped');
    expect(received).to.be.lessThan(64 * MiB);
    expect(res.stderr).to.include(`${received} of ${64 * MiB} bytes`);
    expect(res.stderr).to.match(/partial/);
    await ctx.stack.restartCoordinator({ kill: true });
  });
});
