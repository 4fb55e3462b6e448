// One way to connect to NATS: reconnect forever, so a restarted nats-server is
// picked up by coordinators and agents without their own restart.
import { connect, type NatsConnection } from '@nats-io/transport-node';

export interface BusOptions {
  servers: string | string[];
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Replies to this connection's requests arrive under `<prefix>.>` (agents: their own prefix, see scripts/nats-config.mjs). */
  inboxPrefix?: string;
}

export async function connectBus(options: BusOptions): Promise<NatsConnection> {
  return connect({
    servers: options.servers,
    name: options.name,
    user: options.user,
    pass: options.pass,
    token: options.token,
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    pingInterval: 5_000,
    // no Error (with a captured stack) built ahead for every request and JetStream publish:
    // ~1-2 % of a process's CPU; failures still surface as typed errors (agent-rpc.ts)
    noAsyncTraces: true,
  });
}
