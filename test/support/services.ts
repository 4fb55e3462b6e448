// The real coordinator and agent entry points from dist/, as child processes.
import { existsSync, mkdirSync } from 'node:fs';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { join } from 'node:path';
import { makeTempDir } from './cleanup.js';
import { connectClient, promiseApi, type StorageApi } from './client.js';
import { entryPoints } from './paths.js';
import { freePort } from './ports.js';
import { AbortWait, ServiceProcess, waitFor } from './process.js';

function requireBuilt(path: string, what: string): void {
  if (!existsSync(path)) {
    throw new Error(`${what} entry point ${path} does not exist: run \`npm run build\``);
  }
}

export interface CoordinatorOptions {
  natsUrl: string;
  /** HOST:PORT; default 127.0.0.1 and a free port. */
  listen?: string;
  /** --data directory; default a fresh temp dir. */
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the gRPC API to answer ListHosts. */
  timeoutMs?: number;
  /** TLS credentials for the readiness probe (a coordinator started with --tls-cert). */
  credentials?: ChannelCredentials;
  /** Bearer token for the readiness probe (a coordinator started with --tokens). */
  token?: string;
}

export interface CoordinatorHandle {
  /** HOST:PORT the gRPC API listens on. */
  address: string;
  dataDir: string;
  process: ServiceProcess;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL (fault tests). */
  kill(): Promise<void>;
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<CoordinatorHandle> {
  requireBuilt(entryPoints.coordinator, 'coordinator');
  const address = opts.listen ?? `127.0.0.1:${await freePort()}`;
  const dataDir = opts.dataDir ?? makeTempDir('cistern-coordinator-').path;
  mkdirSync(dataDir, { recursive: true });
  const proc = ServiceProcess.spawn({
    name: 'coordinator',
    command: process.execPath,
    args: [entryPoints.coordinator, '--nats', opts.natsUrl, '--listen', address, '--data', dataDir, ...(opts.args ?? [])],
    env: opts.env,
  });
  const client = connectClient(address, { credentials: opts.credentials });
  try {
    const api = promiseApi(client, opts.token ? { metadata: { authorization: `Bearer ${opts.token}` } } : {});
    await waitFor(
      `coordinator on ${address} to answer ListHosts`,
      async () => {
        if (!proc.alive) {
          throw new AbortWait(new Error(`coordinator exited (${JSON.stringify(proc.exitStatus)}) before it was ready\n${proc.logTail()}`));
        }
        await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2_000 });
        return true;
      },
      { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 100, context: () => proc.logTail() },
    );
  } catch (err) {
    await proc.dispose();
    throw err;
  } finally {
    client.close();
  }
  return {
    address,
    dataDir,
    process: proc,
    stop: () => proc.dispose(),
    kill: async () => {
      await proc.kill();
      await proc.dispose();
    },
  };
}

export interface AgentOptions {
  natsUrl: string;
  hostId: string;
  /** --root directory; default a fresh temp dir. */
  root?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** A program and its arguments that run the agent, e.g. `unshare --pid --fork ...` for an agent in a pid namespace of its own. */
  wrap?: string[];
  /** When given, startAgent waits until ListHosts reports the host online, seen after this start. */
  api?: StorageApi;
  timeoutMs?: number;
}

export interface AgentHandle {
  hostId: string;
  root: string;
  process: ServiceProcess;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  requireBuilt(entryPoints.agent, 'agent');
  const root = opts.root ?? join(makeTempDir(`cistern-agent-${opts.hostId}-`).path, 'root');
  mkdirSync(root, { recursive: true });
  const startedAt = Date.now();
  const argv = [...(opts.wrap ?? []), process.execPath, entryPoints.agent, '--nats', opts.natsUrl, '--host-id', opts.hostId, '--root', root, ...(opts.args ?? [])];
  const proc = ServiceProcess.spawn({ name: `agent ${opts.hostId}`, command: argv[0]!, args: argv.slice(1), env: opts.env });
  if (opts.api) {
    const api = opts.api;
    try {
      await waitFor(
        `agent ${opts.hostId} to be online`,
        async () => {
          if (!proc.alive) {
            throw new AbortWait(new Error(`agent ${opts.hostId} exited (${JSON.stringify(proc.exitStatus)})\n${proc.logTail()}`));
          }
          const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2_000 });
          // A coordinator may still show the previous run of this host online: wait for a
          // heartbeat of this process.
          return hosts.some((h) => h.hostId === opts.hostId && h.online && (h.lastSeen?.getTime() ?? 0) >= startedAt);
        },
        { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 100, context: () => proc.logTail() },
      );
    } catch (err) {
      await proc.dispose();
      throw err;
    }
  }
  return {
    hostId: opts.hostId,
    root,
    process: proc,
    stop: () => proc.dispose(),
    kill: async () => {
      await proc.kill();
      await proc.dispose();
    },
  };
}
