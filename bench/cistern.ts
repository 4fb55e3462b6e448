// The Cistern side of the benchmarks: a real nats-server, coordinator and one agent started by the
// shared test harness (test/support), and gRPC clients of StorageService.
import { credentials } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { callAgent } from '../libs/bus/agent-rpc.js';
import { AgentRequest } from '../libs/proto/cistern/agent/v1/agent.js';
import {
  CreatePoolRequest,
  CreateVolumeRequest,
  PoolType,
  StorageServiceClient,
  type Volume,
} from '../libs/proto/cistern/v1/storage.js';
import { promiseApi, startStack, type Stack, type StorageApi } from '../test/support/index.js';

export const HOST = 'bench';

export interface CisternSide {
  stack: Stack;
  api: StorageApi;
  /** A fresh client on its own TCP connection (not sharing the default channel). */
  newClient(): { api: StorageApi; close(): void };
  /** A NATS connection to ping the agent directly (control-overhead breakdown). */
  nats(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export async function startCistern(): Promise<CisternSide> {
  // Log at warn: an info line per operation would be part of what is measured otherwise.
  const env = { CISTERN_LOG_LEVEL: process.env.BENCH_CISTERN_LOG_LEVEL ?? 'warn' };
  const stack = await startStack({ hosts: [HOST], env, timeoutMs: 60_000 });
  let nc: NatsConnection | undefined;
  const clients: StorageServiceClient[] = [];
  return {
    stack,
    api: stack.api,
    newClient() {
      const client = new StorageServiceClient(stack.address, credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      });
      clients.push(client);
      return { api: promiseApi(client), close: () => client.close() };
    },
    async nats() {
      nc ??= await connect({ servers: stack.natsUrl });
      return nc;
    },
    async stop() {
      for (const c of clients) c.close();
      await nc?.close();
      await stack.stop();
    },
  };
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
