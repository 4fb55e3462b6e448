// The Cistern side of the benchmarks: a real nats-server, coordinator and one agent started by the
// shared test harness (test/support), and gRPC clients of StorageService.
import { credentials } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { callAgent } from '../libs/bus/agent-rpc.js';
import { StorageSession } from '../libs/api/session-client.js';
import { RESULT_FIELD, type SessionCall } from '../libs/api/session-envelope.js';
import { AgentRequest } from '../libs/proto/cistern/agent/v1/agent.js';
import {
  CreatePoolRequest,
  CreateVolumeRequest,
  PoolType,
  StorageServiceClient,
  type Volume,
} from '../libs/proto/cistern/v1/storage.js';
import {
  AbortWait,
  entryPoints,
  freePort,
  makeTempDir,
  promiseApi,
  ServiceProcess,
  startNats,
  waitFor,
  type StorageApi,
} from '../test/support/index.js';

export const HOST = 'bench';

export interface CisternSide {
  natsUrl: string;
  /** HOST:PORT of the coordinator's gRPC API. */
  address: string;
  api: StorageApi;
  /** The same calls over one Session stream of the default channel (as cisternctl makes them). */
  session: StorageApi;
  /** A fresh client on its own TCP connection (not sharing the default channel), unary and over its own Session. */
  newClient(): { api: StorageApi; session: StorageApi; close(): void };
  /** A NATS connection to ping the agent directly (control-overhead breakdown). */
  nats(): Promise<NatsConnection>;
  /** The pids of nats-server, the coordinator and the agent (CPU per operation, proc-cpu.ts). */
  pids: Record<'nats' | 'coordinator' | 'agent', number>;
  stop(): Promise<void>;
}

/**
 * nats-server (harness), then the coordinator and one agent from dist/ as the harness starts them,
 * but with optional node flags: BENCH_PROFILE_DIR=DIR runs both with --cpu-prof into DIR (written
 * when they stop; NODE_OPTIONS does not accept --cpu-prof).
 */
export async function startCistern(): Promise<CisternSide> {
  // Log at warn: an info line per operation would be part of what is measured otherwise.
  const env: NodeJS.ProcessEnv = { CISTERN_LOG_LEVEL: process.env.BENCH_CISTERN_LOG_LEVEL ?? 'warn' };
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const nodeArgs = [
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const procs: ServiceProcess[] = [];
  const clients: StorageServiceClient[] = [];
  const sessions: StorageSession[] = [];
  let nc: NatsConnection | undefined;
  const dirs: { remove(): Promise<void> }[] = [];
  const tempDir = (prefix: string): string => {
    const d = makeTempDir(prefix);
    dirs.push(d);
    return d.path;
  };
  const nats = await startNats();
  const stopAll = async (): Promise<void> => {
    for (const s of sessions) s.close();
    for (const c of clients) c.close();
    await nc?.close();
    // agent first, then coordinator: SIGTERM lets each write its profile
    for (const p of [...procs].reverse()) await p.dispose();
    await nats.stop();
    for (const d of dirs) await d.remove();
  };
  try {
    const address = `127.0.0.1:${await freePort()}`;
    const coordinator = ServiceProcess.spawn({
      name: 'coordinator',
      command: process.execPath,
      args: [...nodeArgs, entryPoints.coordinator, '--nats', nats.url, '--listen', address, '--data', tempDir('cistern-bench-coord-')],
      env,
    });
    procs.push(coordinator);
    const main = new StorageServiceClient(address, credentials.createInsecure());
    clients.push(main);
    const api = promiseApi(main);
    const alive = (p: ServiceProcess): void => {
      if (!p.alive) throw new AbortWait(new Error(`${p.name} exited (${JSON.stringify(p.exitStatus)})\n${p.logTail()}`));
    };
    await waitFor('coordinator to answer ListHosts', async () => {
      alive(coordinator);
      await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2_000 });
      return true;
    }, { timeoutMs: 60_000, intervalMs: 100, context: () => coordinator.logTail() });
    const root = tempDir('cistern-bench-agent-');
    const agent = ServiceProcess.spawn({
      name: `agent ${HOST}`,
      command: process.execPath,
      args: [...nodeArgs, entryPoints.agent, '--nats', nats.url, '--host-id', HOST, '--root', root],
      env,
    });
    procs.push(agent);
    await waitFor(`agent ${HOST} online`, async () => {
      alive(agent);
      const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 2_000 });
      return hosts.some((h) => h.hostId === HOST && h.online);
    }, { timeoutMs: 60_000, intervalMs: 100, context: () => agent.logTail() });
    const mainSession = new StorageSession(main);
    sessions.push(mainSession);
    return {
      natsUrl: nats.url,
      address,
      api,
      session: sessionApi(mainSession),
      newClient() {
        const client = new StorageServiceClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
        const session = new StorageSession(client);
        clients.push(client);
        sessions.push(session);
        return {
          api: promiseApi(client),
          session: sessionApi(session),
          close: () => {
            session.close();
            client.close();
          },
        };
      },
      async nats() {
        nc ??= await connect({ servers: nats.url });
        return nc;
      },
      pids: { nats: nats.process.pid, coordinator: coordinator.pid, agent: agent.pid },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** StorageApi's calls over a Session (a call's deadline option is the stream's business, not the call's). */
function sessionApi(session: StorageSession): StorageApi {
  return new Proxy({} as StorageApi, {
    get(_target, prop) {
      if (typeof prop !== 'string' || !RESULT_FIELD.has(prop as SessionCall)) return undefined;
      return (request: unknown) => session.call(prop as SessionCall, request as never);
    },
  });
}

export const poolName = (pool: string): string => `hosts/${HOST}/pools/${pool}`;
export const volName = (pool: string, vol: string): string => `${poolName(pool)}/volumes/${vol}`;

/** A transient dir pool over `path` (CreatePool = define + start, like virsh pool-create-as). */
export async function createDirPool(api: StorageApi, pool: string, path: string): Promise<void> {
  await api.createPool(
    CreatePoolRequest.fromPartial({
      host: HOST,
      definition: { type: PoolType.POOL_TYPE_DIR, name: pool, target: { path } },
    }),
    { deadlineMs: 600_000 },
  );
}

/** Stops the pool; a transient pool is gone after that (libvirt's pool-destroy). */
export async function destroyPool(api: StorageApi, pool: string): Promise<void> {
  await api.stopPool({ name: poolName(pool), requestId: '' }, { deadlineMs: 600_000 });
  try {
    await api.undefinePool({ name: poolName(pool), requestId: '' });
  } catch {
    /* transient: already gone */
  }
}

export function volumeRequest(pool: string, name: string, format: string, capacity: bigint, allocation: bigint): CreateVolumeRequest {
  return CreateVolumeRequest.fromPartial({
    parent: poolName(pool),
    definition: { name, capacity, allocation, target: { format } },
  });
}

/** Every volume of a pool through ListVolumes, all pages. */
export async function listAllVolumes(api: StorageApi, pool: string, pageSize = 0): Promise<Volume[]> {
  const out: Volume[] = [];
  let pageToken = '';
  do {
    const res = await api.listVolumes({ parent: poolName(pool), pageSize, pageToken }, { deadlineMs: 600_000 });
    for (const v of res.volumes) out.push(v);
    pageToken = res.nextPageToken;
  } while (pageToken);
  return out;
}

/** One Ping over NATS to the agent (no gRPC, no coordinator). */
export async function pingAgent(nc: NatsConnection): Promise<void> {
  await callAgent(nc, HOST, AgentRequest.fromPartial({ op: { $case: 'ping', value: {} } }), { timeoutMs: 10_000 });
}
