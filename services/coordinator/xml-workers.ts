// A small pool of worker threads that read large request documents off the coordinator's
// event loop: a 1 MiB document costs fast-xml-parser about a second of CPU, during which no
// other call, heartbeat or event fan-out of the coordinator would run. Bounded like the
// xmllint slots (slots.ts): at most `size` documents read at once, a short line behind them,
// RESOURCE_EXHAUSTED beyond it. A call cancelled (or past its deadline) while its document is
// read stops that thread; a fresh one takes its place when next needed.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CancelledError, errorFromWire, InternalError, type ErrorDetails } from '../../libs/errors/errors.js';
import { Slots } from './slots.js';
import type { XmlReadArgs, XmlReadKind, XmlReadResult } from './xml-reads.js';

export interface XmlWorkerRequest {
  kind: XmlReadKind;
  args: unknown[];
}

export type XmlWorkerReply =
  | { ok: true; value: unknown }
  | { ok: false; error: { code: string; message: string; details: ErrorDetails; name: string } };

export interface XmlWorkerPoolOptions {
  /** Threads reading at once (default half the CPUs, at least 1: the event loop keeps a core). */
  size?: number;
  /** Documents waiting for a thread before RESOURCE_EXHAUSTED (default 32). */
  maxWaiting?: number;
  /** An idle thread ends after this long (default 30 s); the next large document starts one. */
  idleMs?: number;
}

const WORKER_SCRIPT = new URL('./xml-worker.js', import.meta.url);

export class XmlWorkerPool {
  private readonly slots: Slots;
  private readonly idle: Worker[] = [];
  private readonly idleTimers = new Map<Worker, NodeJS.Timeout>();
  private readonly idleMs: number;
  private closed = false;

  constructor(options: XmlWorkerPoolOptions = {}) {
    const size = options.size ?? Math.max(1, Math.floor(availableParallelism() / 2));
    this.slots = new Slots(size, options.maxWaiting ?? 32, 'XML documents being read');
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** Reads `args[0]` as a `kind` document on a worker thread: what readXmlHere gives, or its error. */
  run<K extends XmlReadKind>(kind: K, args: XmlReadArgs<K>, signal?: AbortSignal): Promise<XmlReadResult<K>> {
    return this.slots.run(signal, () => this.readOnWorker(kind, args, signal) as Promise<XmlReadResult<K>>);
  }

  /** Ends every thread: idle ones at once, busy ones when their read ends; later reads are CANCELLED. */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    for (const w of idle) this.forgetIdle(w);
    await Promise.all(idle.map((w) => w.terminate()));
  }

  private readOnWorker(kind: XmlReadKind, args: unknown[], signal: AbortSignal | undefined): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(new CancelledError('cancelled before its XML document was read'));
    if (this.closed) return Promise.reject(new CancelledError('the coordinator is stopping'));
    const worker = this.idle.pop() ?? this.spawn();
    this.forgetIdle(worker);
    worker.ref();
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
        signal?.removeEventListener('abort', onAbort);
      };
      const onMessage = (reply: XmlWorkerReply): void => {
        settle();
        this.release(worker);
        if (reply.ok) resolve(reply.value);
        else reject(errorOf(reply.error));
      };
      const onError = (err: Error): void => {
        settle();
        void worker.terminate();
        reject(new InternalError(`the thread reading the XML document failed: ${err.message}`));
      };
      const onExit = (code: number): void => {
        settle();
        reject(new InternalError(`the thread reading the XML document exited (code ${code})`));
      };
      const onAbort = (): void => {
        settle();
        // the only way to stop a parse under way; the next document gets a fresh thread
        void worker.terminate();
        reject(new CancelledError('cancelled while its XML document was being read'));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.postMessage({ kind, args } satisfies XmlWorkerRequest);
    });
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_SCRIPT, { name: 'cistern-xml' });
    // a read's own listeners report its failures; these keep an idle thread's end from being
    // an unhandled 'error' (which would end the coordinator) and drop it from the idle list
    worker.on('error', () => undefined);
    worker.on('exit', () => {
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      this.forgetIdle(worker);
    });
    return worker;
  }

  /** Back to the idle list, not keeping the process alive, ended after idleMs unused. */
  private release(worker: Worker): void {
    if (this.closed) {
      void worker.terminate();
      return;
    }
    worker.unref();
    this.idle.push(worker);
    const timer = setTimeout(() => {
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
      this.idleTimers.delete(worker);
      void worker.terminate();
    }, this.idleMs);
    timer.unref();
    this.idleTimers.set(worker, timer);
  }

  private forgetIdle(worker: Worker): void {
    const timer = this.idleTimers.get(worker);
    if (timer) clearTimeout(timer);
    this.idleTimers.delete(worker);
  }
}

/** The typed error the reader threw, rebuilt from its wire form: same class, code, message, details. */
function errorOf(wire: { code: string; message: string; details: ErrorDetails; name: string }): Error {
  const err = errorFromWire(wire.code, wire.message, wire.details);
  err.name = wire.name;
  return err;
}
