// The data copy of a raw clone (libvirt's virStorageBackendCopyToFD): read the source in
// 1 MiB chunks, skip all-zero 4 KiB blocks when the destination may be sparse, write
// the rest at the same offsets. The loop runs with synchronous reads and writes in a
// worker thread (sparse-copy-worker.ts): one system call per chunk instead of a
// thread-pool round trip and promise per chunk, and the agent's event loop stays free
// (a slow or hung network filesystem blocks the worker, not the agent). Meanwhile the
// calling thread flushes what was written so far (fdatasync in the thread pool, one
// at a time), so the disk writes overlap the copy and the final fsync has little left.
//
// This module imports only node built-ins: the worker loads it too.
import { readSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

/** Bytes read per system call. */
export const COPY_CHUNK = 1024 * 1024;
/** The unit of sparseness: an all-zero block of this size is left as a hole (libvirt: max(st_blksize, 4 KiB)). */
export const ZERO_BLOCK = 4096;
/** Zero detection first compares probes of this size, and splits only the non-zero ones into blocks. */
export const ZERO_PROBE = 64 * 1024;
/** The calling thread starts an fdatasync after this many newly written bytes (none while one runs). */
export const FLUSH_EVERY = 16 * 1024 * 1024;

/**
 * `size` bytes of zeroed, page-aligned memory. read(2) into a destination 16 bytes past a
 * 64-byte line runs several times slower on some CPUs (measured here, AMD EPYC: 1 GiB
 * from the page cache in 0.61 s into a 1 MiB Buffer.allocUnsafe, whose malloc'd memory
 * sits there, against 0.17 s page-aligned, as dd reads). Node cannot align a Buffer;
 * WebAssembly memory is mapped page-aligned. Without WebAssembly (--jitless), a plain Buffer.
 */
export function alignedBuffer(size: number): Buffer {
  try {
    const pages = Math.max(1, Math.ceil(size / 65536));
    return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, size);
  } catch {
    return Buffer.alloc(size);
  }
}

/**
 * Calls `emit(start, end)` for each maximal run of non-zero `block`-sized blocks in
 * buf[0, n), blocks aligned to the buffer's start (the last one may be short). A whole
 * all-zero buffer costs one comparison, an all-zero probe one more; only probes holding
 * data are compared block by block. `zero` must be all zeros and at least `n` bytes.
 */
export function dataRuns(
  buf: Buffer,
  n: number,
  zero: Buffer,
  emit: (start: number, end: number) => void,
  block = ZERO_BLOCK,
  probe = ZERO_PROBE,
): void {
  if (n <= 0 || buf.compare(zero, 0, n, 0, n) === 0) return;
  let runStart = -1;
  for (let p = 0; p < n; p += probe) {
    const pEnd = Math.min(p + probe, n);
    if (buf.compare(zero, 0, pEnd - p, p, pEnd) === 0) {
      if (runStart >= 0) {
        emit(runStart, p);
        runStart = -1;
      }
      continue;
    }
    for (let off = p; off < pEnd; off += block) {
      const end = Math.min(off + block, pEnd);
      if (buf.compare(zero, 0, end - off, off, end) !== 0) {
        if (runStart < 0) runStart = off;
      } else if (runStart >= 0) {
        emit(runStart, off);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) emit(runStart, n);
}

/** Thrown by copyRangeSync when `stopped()` says so. */
export class CopyStoppedError extends Error {
  constructor() {
    super('copy stopped');
    this.name = 'CopyStoppedError';
  }
}

export interface CopySyncOptions {
  /** Bytes to copy from offset 0 (fewer when the source ends first). */
  total: number;
  /** Leave all-zero blocks as holes instead of writing them. */
  sparse: boolean;
  /** Checked before every chunk; true stops the copy with CopyStoppedError. */
  stopped?: () => boolean;
  /** After every chunk: bytes of the source consumed and bytes written so far. */
  onChunk?: (done: number, written: number) => void;
  /** Reused between calls to avoid allocations; at least COPY_CHUNK bytes each. */
  buffers?: { data: Buffer; zero: Buffer };
}

/** The copy loop: synchronous, for the worker thread. Returns the bytes of the source consumed. */
export function copyRangeSync(srcFd: number, dstFd: number, opts: CopySyncOptions): { done: number; written: number } {
  const buf = opts.buffers?.data ?? alignedBuffer(COPY_CHUNK);
  const zero = opts.buffers?.zero ?? alignedBuffer(COPY_CHUNK);
  let pos = 0;
  let written = 0;
  const write = (start: number, end: number): void => {
    let off = start;
    while (off < end) off += writeSync(dstFd, buf, off, end - off, pos + off);
    written += end - start;
  };
  while (pos < opts.total) {
    if (opts.stopped?.()) throw new CopyStoppedError();
    const want = Math.min(COPY_CHUNK, opts.total - pos);
    let n = 0;
    while (n < want) {
      const got = readSync(srcFd, buf, n, want - n, pos + n);
      if (got === 0) break;
      n += got;
    }
    if (n === 0) break;
    if (opts.sparse) dataRuns(buf, n, zero, write);
    else write(0, n);
    pos += n;
    opts.onChunk?.(pos, written);
    if (n < want) break;
  }
  return { done: pos, written };
}

// ------------------------------------------------------------------ worker side protocol

/** calling thread -> worker */
export interface CopyJob {
  /** a path the worker opens, or a descriptor of this process it reads as it is */
  src: string | number;
  dstFd: number;
  total: number;
  sparse: boolean;
  /** Int32Array view: [0] = 1 asks the worker to stop. */
  stop: SharedArrayBuffer;
}

/** worker -> calling thread */
export type CopyMessage =
  | { kind: 'progress'; done: number; written: number }
  | { kind: 'done'; done: number }
  | { kind: 'stopped' }
  | { kind: 'failed'; message: string; code?: string; syscall?: string };

/**
 * The worker reports progress after this many bytes read, or this many written, since its
 * last report (the agent publishes progress at most every 250 ms; the written count
 * paces the flushes).
 */
export const REPORT_READ = 32 * COPY_CHUNK;
export const REPORT_WRITTEN = 8 * COPY_CHUNK;

// ------------------------------------------------------------------ calling side

/** Copies running at once (each in its own worker); more wait for a free one. */
export const MAX_COPY_WORKERS = 4;
const MAX_IDLE_WORKERS = 2;
const idle: Worker[] = [];
const waiting: (() => void)[] = [];
let busy = 0;

/** A worker for one job: an idle one, a new one, or the next free one when MAX_COPY_WORKERS run. */
async function acquireWorker(signal: AbortSignal | undefined): Promise<Worker> {
  while (busy >= MAX_COPY_WORKERS) {
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = waiting.indexOf(wake);
        if (i >= 0) waiting.splice(i, 1);
        reject(new CopyCancelledError());
      };
      waiting.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (signal?.aborted) throw new CopyCancelledError();
  }
  busy++;
  const reused = idle.pop();
  if (reused) {
    reused.ref();
    return reused;
  }
  const w = new Worker(new URL('./sparse-copy-worker.js', import.meta.url));
  // an idle worker that dies leaves the pool
  w.on('exit', () => {
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
  });
  // errors are handled per job; this keeps an idle worker's error from being unhandled
  w.on('error', () => undefined);
  return w;
}

function releaseWorker(w: Worker, healthy: boolean): void {
  busy--;
  w.removeAllListeners('message');
  if (healthy && idle.length < MAX_IDLE_WORKERS) {
    w.unref();
    idle.push(w);
  } else {
    void w.terminate();
  }
  waiting.shift()?.();
}

export interface CopyFileOptions {
  signal?: AbortSignal;
  progress?: (done: bigint, total: bigint) => void;
  /** See FLUSH_EVERY; 0 = no flushes during the copy. */
  flushEvery?: number;
}

/** Raised when the signal stopped the copy (the caller maps it to its own cancellation error). */
export class CopyCancelledError extends Error {
  constructor() {
    super('copy cancelled');
    this.name = 'CopyCancelledError';
  }
}

/**
 * Copies `total` bytes of the file `src` (a path, or an open descriptor, read as it is and
 * left open) into `dst` at the same offsets, in a worker
 * thread; with `sparse`, all-zero 4 KiB blocks are skipped (left as they are in `dst`:
 * holes after an ftruncate, allocated zeros after an fallocate). Returns the bytes of the
 * source consumed (less than `total` when it is shorter). `dst` is neither synced at the
 * end nor closed: the caller does both. Rejects with CopyCancelledError when `signal`
 * aborts, with the system error (its `code` kept) when a read or write fails.
 */
export async function copyFileData(src: string | number, dst: FileHandle, total: bigint, sparse: boolean, opts: CopyFileOptions = {}): Promise<bigint> {
  if (opts.signal?.aborted) throw new CopyCancelledError();
  if (total <= 0n) return 0n;
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`cannot copy ${total} bytes: more than 2^53`);
  const flushEvery = opts.flushEvery ?? FLUSH_EVERY;
  const stop = new SharedArrayBuffer(4);
  const stopView = new Int32Array(stop);
  const onAbort = (): void => void Atomics.store(stopView, 0, 1);
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  // one fdatasync at a time, started as written data accumulates
  let flushing: Promise<void> | undefined;
  let flushError: unknown;
  let flushedMark = 0;
  const maybeFlush = (written: number): void => {
    if (flushEvery <= 0 || flushing || written - flushedMark < flushEvery) return;
    flushedMark = written;
    flushing = dst.datasync().then(
      () => void (flushing = undefined),
      (err: unknown) => {
        flushError ??= err;
        flushing = undefined;
      },
    );
  };

  let worker: Worker;
  try {
    worker = await acquireWorker(opts.signal);
  } catch (err) {
    opts.signal?.removeEventListener('abort', onAbort);
    throw err;
  }
  let healthy = false;
  try {
    const done = await new Promise<number>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      const onExit = (code: number): void => reject(new Error(`the copy worker exited (code ${code}) before finishing`));
      const finish = (): void => {
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.on('message', (m: CopyMessage) => {
        switch (m.kind) {
          case 'progress':
            maybeFlush(m.written);
            opts.progress?.(BigInt(m.done), total);
            return;
          case 'done':
            finish();
            healthy = true;
            opts.progress?.(BigInt(m.done), total);
            resolve(m.done);
            return;
          case 'stopped':
            finish();
            healthy = true;
            reject(new CopyCancelledError());
            return;
          case 'failed':
            finish();
            healthy = true;
            reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}, m.syscall ? { syscall: m.syscall } : {}));
            return;
        }
      });
      const job: CopyJob = { src, dstFd: dst.fd, total: Number(total), sparse, stop };
      worker.postMessage(job);
    });
    await flushing;
    if (flushError) throw flushError;
    return BigInt(done);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    // never leave an fdatasync running on a descriptor the caller is about to close
    await flushing;
    releaseWorker(worker, healthy);
  }
}
