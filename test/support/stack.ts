// A whole Cistern: nats-server, a coordinator, one agent per host id, a connected client.
import { registerCleanup } from './cleanup.js';
import { runCli, type CliOptions, type CliResult } from './cli.js';
import { connectClient, promiseApi, waitForHosts, type StorageApi } from './client.js';
import { startNats, type NatsServer } from './nats.js';
import { runningProcesses } from './process.js';
import {
  startAgent,
  startCoordinator,
  type AgentHandle,
  type CoordinatorHandle,
} from './services.js';
import type { StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';

export interface StackOptions {
  /** Agent host ids; default ['a', 'b']. */
  hosts?: string[];
  /** Use this NATS instead of starting one. */
  natsUrl?: string;
  coordinatorArgs?: string[];
  agentArgs?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface Stack {
  nats: NatsServer | undefined;
  natsUrl: string;
  coordinator: CoordinatorHandle;
  /** HOST:PORT of the coordinator's gRPC API. */
  address: string;
  agents: Map<string, AgentHandle>;
  /** Root directory of each agent, by host id. */
  roots: Record<string, string>;
  client: StorageServiceClient;
  /** The client's unary RPCs as promises: `await stack.api.listPools({})`. */
  api: StorageApi;
  /** Runs cisternctl against this stack. */
  cli(args: string[], opts?: Omit<CliOptions, 'server'>): Promise<CliResult>;
  /** Waits until ListHosts shows these hosts (default: all) online (or offline). */
  waitForHosts(hostIds?: string[], opts?: { online?: boolean; timeoutMs?: number }): Promise<void>;
  /** Stops (or with kill: SIGKILLs) an agent and starts it again with the same root; waits until online. */
  restartAgent(hostId: string, opts?: { kill?: boolean }): Promise<AgentHandle>;
  /** Stops (or kills) an agent without restarting it. */
  stopAgent(hostId: string, opts?: { kill?: boolean }): Promise<void>;
  /** Starts an agent for a new or stopped host id; waits until online. */
  addAgent(hostId: string, root?: string): Promise<AgentHandle>;
  /** Stops (or kills) the coordinator and starts another on the same address and data dir. */
  restartCoordinator(opts?: { kill?: boolean }): Promise<void>;
  /** Last lines of every service's output. */
  logs(): string;
  /** Tears everything down: client, agents, coordinator, nats, temp dirs. */
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const hostIds = opts.hosts ?? ['a', 'b'];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const parts: { nats?: NatsServer; coordinator?: CoordinatorHandle; agents: Map<string, AgentHandle>; client?: StorageServiceClient } = {
    agents: new Map(),
  };
  const teardown = async (): Promise<void> => {
    parts.client?.close();
    await Promise.allSettled([...parts.agents.values()].map((a) => a.stop()));
    await parts.coordinator?.stop();
    await parts.nats?.stop();
  };
  const unregister = registerCleanup('stack', teardown);
  const logs = (): string =>
    runningProcesses()
      .map((p) => p.logTail(40))
      .join('\n');

  try {
    if (!opts.natsUrl) parts.nats = await startNats();
    const natsUrl = opts.natsUrl ?? parts.nats!.url;
    parts.coordinator = await startCoordinator({ natsUrl, args: opts.coordinatorArgs, env: opts.env, timeoutMs });
    const address = parts.coordinator.address;
    parts.client = connectClient(address);
    const api = promiseApi(parts.client);
    const roots: Record<string, string> = {};

    const launchAgent = async (hostId: string, root?: string): Promise<AgentHandle> => {
      const agent = await startAgent({ natsUrl, hostId, root, args: opts.agentArgs, env: opts.env, api, timeoutMs });
      parts.agents.set(hostId, agent);
      roots[hostId] = agent.root;
      return agent;
    };
    await Promise.all(hostIds.map((id) => launchAgent(id)));

    const stack: Stack = {
      nats: parts.nats,
      natsUrl,
      coordinator: parts.coordinator,
      address,
      agents: parts.agents,
      roots,
      client: parts.client,
      api,
      cli: (args, cliOpts = {}) => runCli(args, { ...cliOpts, server: address, env: { ...opts.env, ...cliOpts.env } }),
      waitForHosts: async (ids = [...parts.agents.keys()], w = {}) => {
        await waitForHosts(api, ids, { online: w.online ?? true, timeoutMs: w.timeoutMs ?? timeoutMs, context: logs });
      },
      stopAgent: async (hostId, o = {}) => {
        const agent = parts.agents.get(hostId);
        if (!agent) throw new Error(`no agent ${hostId} in this stack`);
        if (o.kill) await agent.kill();
        else await agent.stop();
        parts.agents.delete(hostId);
      },
      restartAgent: async (hostId, o = {}) => {
        const root = roots[hostId];
        if (root === undefined) throw new Error(`no agent ${hostId} in this stack`);
        if (parts.agents.has(hostId)) await stack.stopAgent(hostId, o);
        return launchAgent(hostId, root);
      },
      addAgent: (hostId, root) => launchAgent(hostId, root ?? roots[hostId]),
      restartCoordinator: async (o = {}) => {
        const old = parts.coordinator!;
        if (o.kill) await old.kill();
        else await old.stop();
        parts.coordinator = await startCoordinator({
          natsUrl,
          listen: old.address,
          dataDir: old.dataDir,
          args: opts.coordinatorArgs,
          env: opts.env,
          timeoutMs,
        });
        stack.coordinator = parts.coordinator;
      },
      logs,
      stop: unregister,
    };
    return stack;
  } catch (err) {
    await unregister().catch(() => undefined);
    throw err;
  }
}

/**
 * Mocha helper: starts a stack in `before`, stops it in `after`.
 *   const ctx = useStack({ hosts: ['a', 'b'] });
 *   it('...', async () => { await ctx.stack.api.listHosts({}); });
 */
export function useStack(opts: StackOptions = {}): { readonly stack: Stack } {
  let current: Stack | undefined;
  before(async function () {
    this.timeout((opts.timeoutMs ?? 30_000) * 3);
    current = await startStack(opts);
  });
  after(async function () {
    this.timeout(60_000);
    await current?.stop();
    current = undefined;
  });
  return {
    get stack(): Stack {
      if (!current) throw new Error('the stack is not running (before hook failed or not yet run)');
      return current;
    },
  };
}
