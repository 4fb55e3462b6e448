// A grpc-js StorageService client, plus a promise-returning view of its unary methods.
import {
  credentials as grpcCredentials,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { StorageServiceClient, type Host } from '../../libs/proto/cistern/v1/storage.js';
import { waitFor } from './process.js';

export interface CallOpts {
  metadata?: Metadata;
  /** Per-call deadline; default 30 s. */
  deadlineMs?: number;
}

type UnaryOf<M> = M extends (
  request: infer Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: infer Res) => void,
) => ClientUnaryCall
  ? (request: Req, opts?: CallOpts) => Promise<Res>
  : never;

/** Every unary RPC of StorageService as `api.listHosts({ pageSize: 0, pageToken: '' })` returning a promise. */
export type StorageApi = {
  [K in keyof StorageServiceClient as UnaryOf<StorageServiceClient[K]> extends never ? never : K]: UnaryOf<
    StorageServiceClient[K]
  >;
};

export interface ConnectOptions {
  credentials?: ChannelCredentials;
  /** Sent with every call made through the promise API (e.g. `authorization: Bearer ...`). */
  metadata?: Record<string, string>;
}

export function connectClient(address: string, opts: ConnectOptions = {}): StorageServiceClient {
  return new StorageServiceClient(address, opts.credentials ?? grpcCredentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  });
}

export function promiseApi(client: StorageServiceClient, defaults: ConnectOptions = {}): StorageApi {
  return new Proxy({} as StorageApi, {
    get(_target, prop) {
      const method = (client as unknown as Record<string | symbol, unknown>)[prop];
      if (typeof method !== 'function') return undefined;
      return (request: unknown, opts: CallOpts = {}) =>
        new Promise((resolveCall, reject) => {
          const metadata = opts.metadata ?? new Metadata();
          for (const [k, v] of Object.entries(defaults.metadata ?? {})) {
            if (!metadata.get(k).length) metadata.set(k, v);
          }
          const deadline = new Date(Date.now() + (opts.deadlineMs ?? 30_000));
          (method as (...a: unknown[]) => unknown).call(
            client,
            request,
            metadata,
            { deadline },
            (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolveCall(res)),
          );
        });
    },
  });
}

/** Waits until ListHosts reports every id in `hostIds` with online == `online`. */
export async function waitForHosts(
  api: StorageApi,
  hostIds: string[],
  { online = true, timeoutMs = 30_000, context }: { online?: boolean; timeoutMs?: number; context?: () => string } = {},
): Promise<Host[]> {
  return waitFor(
    `hosts ${hostIds.join(', ')} to be ${online ? 'online' : 'offline'}`,
    async () => {
      const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 5_000 });
      const matching = hostIds.map((id) => hosts.find((h) => h.hostId === id && h.online === online));
      return matching.every(Boolean) ? (matching as Host[]) : undefined;
    },
    { timeoutMs, intervalMs: 100, context },
  );
}
