// Idempotency on the agent: a mutating request that carries a request id runs
// once. A retry with the same principal and request id joins the first call while it
// runs and gets its reply afterwards (for `ttlMs`); a failed call is forgotten, so its
// retry does the work. The agent is where the work happens, so this holds whichever
// coordinator forwards the retry (the coordinator keeps finished results in KV too:
// services/coordinator/request-results.ts).
import { createHash } from 'node:crypto';
import { AgentRequest, type AgentReply } from '../../libs/proto/cistern/agent/v1/agent.js';
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import type { AgentOp } from '../../libs/bus/agent-rpc.js';

/** Operations that change something; reads and streams are not remembered. */
export const MUTATING_OPS: ReadonlySet<AgentOp> = new Set<AgentOp>([
  'createPool',
  'buildPool',
  'startPool',
  'stopPool',
  // the coordinator deletes the entry after the agent's answer: a retry after the coordinator
  // died in between finds no entry, and only this answer is left (handlers/pools.ts)
  'undefinePool',
  'deletePool',
  'refreshPool',
  'createVolume',
  'cloneVolume',
  'deleteVolume',
  'wipeVolume',
  'resizeVolume',
]);

/**
 * Whether a repeat is answered from the cache. An undefine only when sent without a catalog
 * revision: the coordinator has no entry, so only the first answer is wanted (undefine.ts). One
 * sent over an entry (the pool defined again since the first undefine) is work to do: answered
 * from the cache it would skip the checks in the pool's turn (still active, a start queued) and
 * the hold, and its coordinator would delete the new entry. It runs, and its answer replaces
 * the first.
 */
function answeredFromCache(op: AgentOp, request: AgentRequest): boolean {
  return op !== 'undefinePool' || !request.catalogRevision;
}

interface Entry {
  op: AgentOp;
  fingerprint: string;
  reply: Promise<AgentReply>;
  expires: number;
}

export class RequestCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = 15 * 60_000,
    private readonly maxEntries = 20_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Runs `work` once per (principal, request id); retries share its reply. */
  run(op: AgentOp, request: AgentRequest, work: () => Promise<AgentReply>): Promise<AgentReply> {
    if (!request.requestId || !MUTATING_OPS.has(op)) return work();
    this.sweep();
    const key = `${request.principal}\u0000${request.requestId}`;
    const fingerprint = fingerprintOf(request);
    const hit = answeredFromCache(op, request) ? this.entries.get(key) : undefined;
    if (hit) {
      if (hit.op !== op || hit.fingerprint !== fingerprint) {
        return Promise.reject(
          new InvalidArgumentError(
            'request_id',
            `request id '${request.requestId}' was already used for a different ${hit.op === op ? `${op} request` : `operation (${hit.op})`}; a retry must repeat the same request`,
          ),
        );
      }
      return hit.reply;
    }
    const entry: Entry = { op, fingerprint, reply: work(), expires: Number.POSITIVE_INFINITY };
    this.entries.set(key, entry);
    entry.reply.then(
      () => {
        entry.expires = this.now() + this.ttlMs;
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.reply;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, e] of this.entries) {
      if (e.expires <= now || (this.entries.size > this.maxEntries && e.expires !== Number.POSITIVE_INFINITY)) this.entries.delete(key);
      else if (this.entries.size <= this.maxEntries) break; // insertion order: the rest is newer
    }
  }
}

/** The operation and its arguments (not who sent it, nor the pool definition the coordinator adds). */
export function fingerprintOf(request: AgentRequest): string {
  const bytes = AgentRequest.encode(AgentRequest.fromPartial({ op: request.op })).finish();
  return createHash('sha256').update(bytes).digest('hex');
}
