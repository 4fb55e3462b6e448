// A resize by `delta` is the one volume operation that does something different when it runs
// twice: each run adds the delta again. The agent turns it into an absolute capacity before
// any change, and for a request with a request id it writes that capacity under its root
// first (a retry returns the first call's result without doing the work twice). A
// retry then resizes to the same capacity, whether the first call finished, failed part way
// (the size already changed), or died with the agent: the in-memory request cache
// (request-cache.ts) forgets failed calls and everything at a restart; this file does not.
//
// One append-only file (journal/resize-intents.log, JSON lines), read at start and rewritten
// without the expired entries. A line reaches the page cache with one write(2) before the
// resize starts, so it survives the agent being killed; it does not claim to survive the
// host crashing.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../../libs/errors/errors.js';

/** As long as the coordinator keeps a finished call's answer (request-results.ts). */
export const RESIZE_INTENT_TTL_MS = 24 * 3600 * 1000;
const FILE = 'resize-intents.log';
/** The live entries are written anew (tmp + rename) once the file has grown past this. */
const COMPACT_BYTES = 1024 * 1024;

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

export interface ResizeRequestKey {
  principal: string;
  requestId: string;
  fingerprint: string;
}

export class ResizeIntents {
  private fd: number | undefined;
  private written = 0;

  private constructor(
    private readonly file: string,
    private readonly entries: Map<string, Intent>,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** The intents under `root` (journal/), without the expired ones. */
  static open(root: string, ttlMs = RESIZE_INTENT_TTL_MS, now: () => number = Date.now): ResizeIntents {
    const dir = join(root, 'journal');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, FILE);
    const entries = new Map<string, Intent>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      /* none yet */
    }
    const at = now();
    for (const line of text.split('\n')) {
      const intent = parseIntent(line);
      if (intent && intent.expires > at) entries.set(intent.key, intent);
    }
    const intents = new ResizeIntents(file, entries, ttlMs, now);
    if (text) intents.rewrite();
    return intents;
  }

  /**
   * The capacity the first call with this request id resized to, or else `compute()`'s,
   * written down before it is returned. A retry that changes the request is refused, as the
   * request cache refuses it.
   */
  capacityFor(request: ResizeRequestKey, compute: () => bigint): bigint {
    const key = keyOf(request);
    const held = this.entries.get(key);
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
    this.append(intent);
    this.entries.set(key, intent);
    return capacity;
  }

  private append(intent: Intent): void {
    if (this.written > COMPACT_BYTES) this.rewrite();
    this.fd ??= openSync(this.file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const line = Buffer.from(`${JSON.stringify(intent)}\n`);
    let off = 0;
    while (off < line.length) off += writeSync(this.fd, line, off, line.length - off);
    this.written += line.length;
  }

  /** Writes the live entries to a new file that replaces the old one. */
  private rewrite(): void {
    const at = this.now();
    for (const [key, e] of this.entries) if (e.expires <= at) this.entries.delete(key);
    const text = [...this.entries.values()].map((e) => `${JSON.stringify(e)}\n`).join('');
    writeFileSync(`${this.file}.tmp`, text, { mode: 0o600 });
    renameSync(`${this.file}.tmp`, this.file);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.written = text.length;
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
