// The worker thread of sparse-copy.ts: runs one copy job at a time with synchronous
// reads and writes and reports progress, completion, a stop or a failure as messages.
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { COPY_CHUNK, CopyStoppedError, alignedBuffer, REPORT_READ, REPORT_WRITTEN, copyRangeSync, type CopyJob, type CopyMessage } from './sparse-copy.js';

const port = parentPort;
if (!port) throw new Error('sparse-copy-worker.js runs as a worker thread');

const buffers = { data: alignedBuffer(COPY_CHUNK), zero: alignedBuffer(COPY_CHUNK) };
const send = (m: CopyMessage): void => port.postMessage(m);

port.on('message', (job: CopyJob) => {
  const stop = new Int32Array(job.stop);
  let fd = -1;
  let own = false;
  try {
    if (typeof job.src === 'number') fd = job.src;
    else {
      fd = openSync(job.src, fsc.O_RDONLY);
      own = true;
    }
    let lastDone = 0;
    let lastWritten = 0;
    const { done } = copyRangeSync(fd, job.dstFd, {
      total: job.total,
      sparse: job.sparse,
      buffers,
      stopped: () => Atomics.load(stop, 0) !== 0,
      onChunk: (d, w) => {
        if (d - lastDone < REPORT_READ && w - lastWritten < REPORT_WRITTEN) return;
        lastDone = d;
        lastWritten = w;
        send({ kind: 'progress', done: d, written: w });
      },
    });
    send({ kind: 'done', done });
  } catch (err) {
    if (err instanceof CopyStoppedError) {
      send({ kind: 'stopped' });
    } else {
      const e = err as NodeJS.ErrnoException;
      send({ kind: 'failed', message: String(e?.message ?? err), ...(e?.code ? { code: e.code } : {}), ...(e?.syscall ? { syscall: e.syscall } : {}) });
    }
  } finally {
    if (own) {
      try {
        closeSync(fd);
      } catch {
        /* a read-only descriptor: nothing to lose */
      }
    }
  }
});
