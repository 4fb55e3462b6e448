// Ctrl-C during `producer | cisternctl vol-upload V /dev/stdin`: the terminal sends SIGINT to
// the whole pipeline, so the producer dies too and cisternctl's pending read of the pipe comes
// back empty, as at the end of the data. What was read so far is not the whole upload: it must
// not be sent as ended (committed, VOLUME_UPLOADED, exit 0) but cancelled, as an upload
// interrupted while it reads data is ("upload interrupted", exit 1).
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { AbortWait, entryPoints, useStack, useTempDir, waitFor } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/intr';
const MiB = 1024 * 1024;

describe('cisternctl vol-upload from a pipe interrupted by Ctrl-C (real processes)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cli-upload-intr-');
  let file = '';

  before(async () => {
    await startDirPool(ctx.stack, 'a', 'intr', join(scratch.path, 'intr'));
    await createVolume(ctx.stack, POOL, 'v', String(4 * MiB));
    file = join(scratch.path, 'intr', 'v');
  });

  /** Whether the volume's first MiB is all 0x5a (what the producer sent). */
  function firstMiBWritten(): boolean {
    const buf = Buffer.alloc(MiB);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buf, 0, MiB, 0);
    } finally {
      closeSync(fd);
    }
    return buf.every((b) => b === 0x5a);
  }

  it('is cancelled, not committed as uploaded, when the pipe ends after the interrupt', async () => {
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['intr'] });
    await w.ready;
    // a named pipe: Node gives a child's stdin a socket, where a shell's `|` gives a pipe
    const fifo = join(scratch.path, 'producer');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(process.execPath, [entryPoints.cli, 'vol-upload', `${POOL}/volumes/v`, fifo], {
      env: { ...process.env, CISTERN_SERVER: ctx.stack.address },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid!;
    trackPid(pid);
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    let producer: FileHandle | undefined;
    try {
      // the producer's first MiB goes through; cisternctl then waits on the pipe for more
      producer = await open(fifo, 'w');
      await producer.write(Buffer.alloc(MiB, 0x5a));
      await waitFor('the first MiB written to the volume', () => {
        if (child.exitCode !== null) throw new AbortWait(new Error(`cisternctl ended early (${child.exitCode}): ${stderr}`));
        return firstMiBWritten();
      }, { context: () => `cisternctl: ${stderr}` });
      // Ctrl-C: cisternctl gets SIGINT while it waits on the pipe, and the producer, killed by
      // the same Ctrl-C, closes it
      child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 300));
      await producer.close();
      producer = undefined;
      const code = await exited;
      expect(code, `exit code; stderr: ${stderr}`).to.not.equal(0);
      expect(stderr).to.include('upload interrupted');
      await waitFor('the pool refreshed after the interrupted upload', () => w.events.some((e) => e.kind === EventKind.POOL_REFRESHED) || w.failure());
      expect(w.events.filter((e) => e.kind === EventKind.VOLUME_UPLOADED), 'VOLUME_UPLOADED for an interrupted upload').to.have.length(0);
    } finally {
      await producer?.close();
      untrackPid(pid);
      if (child.exitCode === null) child.kill('SIGKILL');
      w.cancel();
    }
  });
});
