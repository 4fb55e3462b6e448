// A resize by `delta` is the one volume operation that does something different when it runs
// twice: each run adds the delta again. The agent turns it into an absolute capacity before
// any change, and for a request with a request id it writes that capacity under its root
// first (a retry returns the first call's result without doing the work twice). A
// retry then resizes to the same capacity, whether the first call finished, failed part way
// (the size already changed), or died with the agent: the in-memory request cache
// (request-cache.ts) forgets failed calls and everything at a restart; this file does not.
//
// One append-only file (journal/resize-intents.log, JSON lines), read at start. A line reaches
// the page cache with one write(2) before the resize starts, so it survives the agent being
// killed; it does not claim to survive the host crashing. An append that fails part way is cut
// off again, so the next line starts on a line of its own.
//
// Bounded: an intent is kept for RESIZE_INTENT_TTL_MS, and at most MAX_RESIZE_INTENTS of them
// (the oldest are forgotten first; a retry of a forgotten one adds its delta again). Expired and
// forgotten entries stay in the file as dead lines until it is written anew with only the live
// ones (new file, fsync, rename over the old one, fsync of the directory): when it is bigger
// than COMPACT_BYTES and more than twice the size of the live entries, so each rewrite follows
// at least as many bytes of appends as it writes (amortised O(1) per append), and the file
// stays below max(COMPACT_BYTES, 2 × the live entries) plus a line. At start it is rewritten
// only by that rule, or when its last line was cut short.
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { appendLine, replaceDurably } from './journal-io.js';
import { InvalidArgumentError } from '../../libs/errors/errors.js';

/** As long as the coordinator keeps a finished call's answer (request-results.ts). */
export const RESIZE_INTENT_TTL_MS = 24 * 3600 * 1000;
/**
 * At most this many intents are kept (about 200 bytes each in the file, so at most about 10 MB
 * live and 20 MB of file); the oldest are forgotten first. At 25 resizes by delta with request
 * ids per second that is a retry window of about half an hour instead of RESIZE_INTENT_TTL_MS.
 */
export const MAX_RESIZE_INTENTS = 50_000;
const FILE = 'resize-intents.log';
/** The live entries are written anew once the file is bigger than this and than twice their size. */
export const COMPACT_BYTES = 1024 * 1024;

export interface ResizeIntentLimits {
  /** COMPACT_BYTES unless given (tests) */
  compactBytes?: number;
  /** MAX_RESIZE_INTENTS unless given (tests) */
  maxEntries?: number;
}

interface Intent {
  /** sha256 of principal and request id */
  key: string;
  /** the request's fingerprint (request-cache.ts fingerprintOf): a retry must repeat it */
  fingerprint: string;
  /** the absolute capacity in bytes, as a decimal string */
  capacity: string;
  /** when it expires, ms since the epoch */
  expires: number;
}

/** An intent and the length of its line in the file. */
interface Held {
  intent: Intent;
  bytes: number;
}

export interface ResizeRequestKey {
  principal: string;
  requestId: string;
  fingerprint: string;
}

export class ResizeIntents {
  private fd: number | undefined;
  /** the size of the file */
  private written: number;
  /** the size of the lines of `entries` */
  private liveBytes = 0;
  /** after a rewrite that failed (no space), none is tried again before the file is this big */
  private retryAbove = 0;
  /** in the order they were written (oldest first), which is about the order they expire in */
  private readonly entries = new Map<string, Held>();
  private readonly compactBytes: number;
  private readonly maxEntries: number;

  private constructor(
    private readonly file: string,
    size: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
    limits: ResizeIntentLimits,
  ) {
    this.written = size;
    this.compactBytes = limits.compactBytes ?? COMPACT_BYTES;
    this.maxEntries = Math.max(1, limits.maxEntries ?? MAX_RESIZE_INTENTS);
  }

  /** The intents under `root` (journal/), without the expired ones. */
  static open(root: string, ttlMs = RESIZE_INTENT_TTL_MS, now: () => number = Date.now, limits: ResizeIntentLimits = {}): ResizeIntents {
    const dir = join(root, 'journal');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, FILE);
    let bytes = Buffer.alloc(0);
    try {
      bytes = readFileSync(file);
    } catch {
      /* none yet */
    }
    const intents = new ResizeIntents(file, bytes.length, ttlMs, now, limits);
    const at = now();
    let start = 0;
    while (start < bytes.length) {
      const nl = bytes.indexOf(0x0a, start);
      if (nl < 0) break; // the last line, cut short: dropped below
      const intent = parseIntent(bytes.toString('utf8', start, nl));
      if (intent && intent.expires > at) intents.hold(intent, nl + 1 - start);
      start = nl + 1;
    }
    const torn = start < bytes.length;
    if (torn || intents.compactionDue()) {
      if (!intents.rewrite() && torn) intents.cutTo(start);
    }
    return intents;
  }

  /**
   * The capacity the first call with this request id resized to, or else `compute()`'s,
   * written down before it is returned. A retry that changes the request is refused, as the
   * request cache refuses it.
   */
  capacityFor(request: ResizeRequestKey, compute: () => bigint): bigint {
    const key = keyOf(request);
    const held = this.entries.get(key)?.intent;
    if (held && held.expires > this.now()) {
      if (held.fingerprint !== request.fingerprint) {
        throw new InvalidArgumentError(
          'request_id',
          `request id '${request.requestId}' was already used for a different resizeVolume request; a retry must repeat the same request`,
        );
      }
      return BigInt(held.capacity);
    }
    const capacity = compute();
    const intent: Intent = { key, fingerprint: request.fingerprint, capacity: capacity.toString(), expires: this.now() + this.ttlMs };
    const bytes = this.append(intent);
    this.hold(intent, bytes);
    return capacity;
  }

  /** Keeps `intent` as the newest entry, its line `bytes` long; forgets the oldest beyond the cap. */
  private hold(intent: Intent, bytes: number): void {
    this.forget(intent.key);
    this.entries.set(intent.key, { intent, bytes });
    this.liveBytes += bytes;
    while (this.entries.size > this.maxEntries) this.forget(this.entries.keys().next().value!);
  }

  private forget(key: string): void {
    const held = this.entries.get(key);
    if (!held) return;
    this.entries.delete(key);
    this.liveBytes -= held.bytes;
  }

  /** Forgets the expired entries at the front (the oldest); one that expires out of order waits for a rewrite. */
  private dropExpired(): void {
    const at = this.now();
    for (const [key, held] of this.entries) {
      if (held.intent.expires > at) break;
      this.forget(key);
    }
  }

  private compactionDue(): boolean {
    return this.written > this.compactBytes && this.written > 2 * this.liveBytes && this.written > this.retryAbove;
  }

  /** Appends the line of `intent` with one write(2); returns its length. One cut short is cut off before the error is thrown. */
  private append(intent: Intent): number {
    this.dropExpired();
    if (this.compactionDue()) this.rewrite();
    this.fd ??= openSync(this.file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const fd = this.fd;
    const line = Buffer.from(`${JSON.stringify(intent)}\n`);
    this.written = appendLine(fd, line) + line.length;
    return line.length;
  }

  /**
   * Writes the live entries to a new file that replaces the old one; false when that could
   * not be done (no space): the old file stays as it was, and is appended to.
   */
  private rewrite(): boolean {
    const at = this.now();
    for (const [key, held] of this.entries) if (held.intent.expires <= at) this.forget(key);
    const lines = [...this.entries.values()].map((h) => Buffer.from(`${JSON.stringify(h.intent)}\n`));
    const text = Buffer.concat(lines);
    if (!replaceDurably(this.file, text)) {
      this.retryAbove = this.written + Math.max(this.compactBytes, this.liveBytes);
      return false;
    }
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    let i = 0;
    for (const held of this.entries.values()) held.bytes = lines[i++]!.length;
    this.written = text.length;
    this.liveBytes = text.length;
    this.retryAbove = 0;
    return true;
  }

  /** Cuts the file to its first `size` bytes (its whole lines); shrinking needs no space. */
  private cutTo(size: number): void {
    let fd: number | undefined;
    try {
      fd = openSync(this.file, fsc.O_WRONLY | fsc.O_NOFOLLOW);
      ftruncateSync(fd, size);
      this.written = size;
    } catch {
      // the next line is glued to the torn one and lost at the next start, as before
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

function keyOf(request: ResizeRequestKey): string {
  return createHash('sha256').update(`${request.principal}\u0000${request.requestId}`).digest('hex');
}

/** One line of the file, or undefined when it is not a whole entry (a write cut short). */
function parseIntent(line: string): Intent | undefined {
  if (!line) return undefined;
  try {
    const v = JSON.parse(line) as Partial<Intent>;
    if (typeof v.key !== 'string' || typeof v.fingerprint !== 'string' || typeof v.expires !== 'number') return undefined;
    if (typeof v.capacity !== 'string' || !/^\d+$/.test(v.capacity)) return undefined;
    return { key: v.key, fingerprint: v.fingerprint, capacity: v.capacity, expires: v.expires };
  } catch {
    return undefined;
  }
}
