// One way to connect to NATS: reconnect forever, so a restarted nats-server is
// picked up by coordinators and agents without their own restart.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.js';

export interface BusOptions {
  servers: string | string[];
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /** Replies to this connection's requests arrive under `<prefix>.>` (agents: their own prefix, see scripts/nats-config.mjs). */
  inboxPrefix?: string;
  /** Told when the first connection waits for a server that does not answer (see connectBus). */
  log?: Pick<Logger, 'warn'>;
}

/** How long a first connection waits before saying so, and how often it says it again. */
const WAITING_NOTICE_MS = 3_000;
const WAITING_REPEAT_MS = 60_000;

export async function connectBus(options: BusOptions): Promise<NatsConnection> {
  // waitOnFirstConnect retries an unreachable server forever, and silently: a service started
  // before its nats-server, with a wrong --nats, or beside a nats-server that failed to start,
  // would log nothing more and never listen, with nothing to say why
  const nats = Array.isArray(options.servers) ? options.servers.join(', ') : options.servers;
  let notice: NodeJS.Timeout | undefined;
  const sayWaiting = (): void => {
    options.log?.warn('NATS is not reachable yet: waiting for it, and retrying (is nats-server running there, and is --nats right?)', { nats });
    notice = setTimeout(sayWaiting, WAITING_REPEAT_MS).unref();
  };
  if (options.log) notice = setTimeout(sayWaiting, WAITING_NOTICE_MS).unref();
  try {
    return await openConnection(options);
  } finally {
    clearTimeout(notice);
  }
}

/**
 * `--nats` may name several servers, comma-separated (a NATS cluster): the client takes a
 * string as one server's URL, so it is split here, for coordinators and agents alike.
 */
function serverList(servers: string | string[]): string[] {
  const list = Array.isArray(servers) ? servers : servers.split(',');
  return list.map((s) => s.trim()).filter((s) => s !== '');
}

function openConnection(options: BusOptions): Promise<NatsConnection> {
  return connect({
    servers: serverList(options.servers),
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

/**
 * Logs errors the server reports on a connection (a permission violation: a publish or
 * subscribe this user may not make), each distinct message at most once a minute. They
 * arrive as status events, not as failures of a call, so without this a wrong NATS
 * configuration only shows in nats-server's own log.
 */
export function busErrorLogger(log: Pick<Logger, 'error'>, now: () => number = Date.now): (error: Error) => void {
  const lastLogged = new Map<string, number>();
  return (error) => {
    const at = now();
    const last = lastLogged.get(error.message);
    if (last !== undefined && at - last < 60_000) return;
    // refused subjects can be unique (inboxes, download streams): the memory stays bounded
    if (lastLogged.size >= 1000) lastLogged.clear();
    lastLogged.set(error.message, at);
    log.error('NATS refused an operation of this connection', { error: error.message });
  };
}

export interface BusStatusHandlers {
  onDisconnect?: (server: string) => void;
  onReconnect?: (server: string) => void;
}

/**
 * Follows a connection's status for as long as it lives: server errors go to
 * busErrorLogger, disconnects and reconnects to the handlers (which log them: each caller
 * knows what losing this connection means for it).
 */
export function watchBusStatus(nc: NatsConnection, log: Pick<Logger, 'error'>, handlers: BusStatusHandlers): void {
  const refused = busErrorLogger(log);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error') refused(s.error);
      else if (s.type === 'disconnect') handlers.onDisconnect?.(String(s.server ?? ''));
      else if (s.type === 'reconnect') handlers.onReconnect?.(String(s.server ?? ''));
    }
  })().catch(() => undefined);
}
