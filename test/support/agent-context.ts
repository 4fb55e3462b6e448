// An agent's context for driving its handlers in-process (dispatch), without NATS: events
// are collected in an array, the backend is the registry's unless one is given.
import type { Event } from '../../libs/proto/cistern/v1/storage.js';
import type { StorageBackend } from '../../libs/backends/backend.js';
import type { CommandRunner } from '../../libs/backends/runner.js';
import type { AgentContext } from '../../services/agent/context.js';
import { LockTable } from '../../services/agent/locks.js';
import { silentLogger } from '../../libs/log/logger.js';
import { AgentState } from '../../services/agent/state.js';

export function inProcessAgent(opts: { runner: CommandRunner; backend?: StorageBackend; host?: string }): { ctx: AgentContext; events: Event[] } {
  const host = opts.host ?? 'h';
  const events: Event[] = [];
  const ctx: AgentContext = {
    host,
    state: new AgentState(host),
    locks: new LockTable(),
    events: { publish: (e) => void events.push(e), flush: async () => BigInt(events.length) },
    runner: opts.runner,
    log: silentLogger,
  };
  const backend = opts.backend;
  if (backend) ctx.backend = () => backend;
  return { ctx, events };
}
