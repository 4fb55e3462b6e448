// A progress bar for the long unary calls (pool-build, vol-wipe, vol-clone,
// vol-create-from, allocating vol-create/vol-create-as, vol-resize --allocate).
// These calls do not stream, so the bar follows the OPERATION_PROGRESS events the
// agent publishes for them: the call gets a fresh request id, a WatchEvents stream
// (progress of that pool, plus the kind that ends the operation) is opened before
// the call is sent, and the events carrying that request id are drawn on stderr.
//
// Only on a terminal: off a TTY the call is sent exactly as before (no request id,
// no watch), so scripts see virsh's output and nothing else.
//
// The bar ends when the call returns. Per pool the agent publishes an operation's
// progress events before its result event (VOLUME_WIPED, VOLUME_CREATED, ...), so
// after a successful call the watcher reads on until that result event (or a short
// grace period), which makes the last bar the agent's final `done == total`.
// A watch that fails (old server, no permission) only means no bar.
import { randomUUID } from 'node:crypto';
import { EventKind, WatchEventsRequest, type Event } from '../libs/proto/cistern/v1/storage.js';
import type { CommandContext, OutputStream } from './command.js';
import { progressLine } from './format/progress.js';

/** Where the operation's events are published: its pool on its host. */
export interface ProgressTarget {
  host: string;
  /** pool short name */
  pool: string;
  /** the event kind the agent publishes when the operation is done */
  result: EventKind;
}

export interface ProgressWatchOptions {
  /** After a successful call, wait at most this long for the result event (default 2000 ms). */
  graceMs?: number;
  /** Before the call, wait at most this long for the watch to be positioned (default 5000 ms). */
  positionMs?: number;
  /** Request id factory (tests). */
  requestId?: () => string;
}

/** The target of an operation on (or creating into) a volume's pool. */
export function volumeTarget(vol: { name: string; host: string; pool: string }, result: EventKind): ProgressTarget {
  const parts = vol.name.split('/');
  return { host: vol.host || parts[1] || '', pool: vol.pool || parts[3] || '', result };
}

/** A request id the server accepts (1-128 of A-Z a-z 0-9 . _ : -). */
export function newRequestId(): string {
  return `cisternctl-${randomUUID()}`;
}

/** The WatchEvents request for one operation's progress. */
export function progressWatchRequest(target: ProgressTarget): WatchEventsRequest {
  return WatchEventsRequest.create({
    hosts: [target.host],
    pools: [`hosts/${target.host}/pools/${target.pool}`],
    kinds: [EventKind.OPERATION_PROGRESS, target.result],
  });
}

/** The bar's label: "wipe disk1.img:", "build images:". */
export function progressLabel(ev: Event): string {
  const op = ev.progress?.operation || 'progress';
  return `${op} ${ev.volume || ev.pool}:`;
}

/** Draws one bar line in place (\r) and ends it with a newline once. */
export class ProgressDrawer {
  private shown = '';
  constructor(private readonly stream: OutputStream) {}

  get drawn(): boolean {
    return this.shown !== '';
  }

  draw(ev: Event): void {
    const p = ev.progress;
    if (!p) return;
    const line = progressLine(progressLabel(ev), p.done, p.total);
    if (line === this.shown) return;
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.shown.length - line.length))}`);
    this.shown = line;
  }

  finish(): void {
    if (this.shown) this.stream.write('\n');
    this.shown = '';
  }
}

/**
 * Runs `call` with a request id and, on a terminal, a progress bar fed by the
 * operation's events. Off a terminal: `call('')`, nothing else. Resolves or
 * rejects as the call does.
 */
export async function withProgress<T>(
  ctx: Pick<CommandContext, 'api' | 'stderr' | 'signal'>,
  target: ProgressTarget,
  call: (requestId: string) => Promise<T>,
  options: ProgressWatchOptions = {},
): Promise<T> {
  if (!ctx.stderr.isTTY) return call('');
  const requestId = (options.requestId ?? newRequestId)();
  const drawer = new ProgressDrawer(ctx.stderr);
  const stop = new AbortController();
  let resultSeen!: () => void;
  const ended = new Promise<void>((resolve) => {
    resultSeen = resolve;
  });

  // Opened before the call goes out, and positioned (bounded wait): a loaded coordinator may
  // take a while to position a watch, and events published before that are not its to see.
  let positioned!: () => void;
  const ready = new Promise<void>((resolve) => {
    positioned = resolve;
  });
  const reader = (async () => {
    try {
      const events = ctx.api().watchEvents(progressWatchRequest(target), stop.signal, positioned);
      for await (const ev of events) {
        if (ev.requestId !== requestId) continue;
        if (ev.kind === EventKind.OPERATION_PROGRESS) drawer.draw(ev);
        else if (ev.kind === target.result) break;
      }
    } catch {
      // no bar: the call itself decides the outcome
    } finally {
      positioned();
      resultSeen();
    }
  })();

  let grace: NodeJS.Timeout | undefined;
  const onInterrupt = (): void => resultSeen();
  let positionWait: NodeJS.Timeout | undefined;
  try {
    // a watch that fails or never positions only means no bar (or a bar from its middle on)
    await Promise.race([ready, new Promise<void>((resolve) => (positionWait = setTimeout(resolve, options.positionMs ?? 5000)))]);
    clearTimeout(positionWait);
    const result = await call(requestId);
    ctx.signal.addEventListener('abort', onInterrupt, { once: true });
    if (ctx.signal.aborted) resultSeen();
    await Promise.race([
      ended,
      new Promise<void>((resolve) => {
        grace = setTimeout(resolve, options.graceMs ?? 2000);
      }),
    ]);
    return result;
  } finally {
    if (grace) clearTimeout(grace);
    ctx.signal.removeEventListener('abort', onInterrupt);
    stop.abort();
    await reader;
    drawer.finish();
  }
}
