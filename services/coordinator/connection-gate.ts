// Limits on the TCP connections to the gRPC port, before any byte of them is read. Every other
// limit (call-guard.ts, admit-before-read.ts) starts at a call; a connection that never makes
// one (sends nothing, half the HTTP/2 preface, never finishes its TLS handshake, or an HTTP/2
// session that opens no stream) was limited by nothing but the file descriptors of the
// process: each cost one and about 15 KB. Idle connections are closed by grpc-js's
// grpc.max_connection_idle_ms (server.ts); this counts them per source address and in total.
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as GrpcJsServer } from '@grpc/grpc-js';
import type { Logger } from '../../libs/log/logger.js';

/**
 * Above what one client's calls may use on connections of their own (--max-calls-per-client 64,
 * 32 Sessions, 64 health or reflection calls): those limits answer with an error naming them,
 * this one only closes the socket. Clients behind one NAT address share it.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** A connection with no call open this long is closed (grpc.max_connection_idle_ms); clients connect again when they next call. */
export const DEFAULT_CONNECTION_IDLE_MS = 300_000;

export interface ConnectionLimits {
  maxPerAddress: number;
  maxTotal: number;
}

/** ::ffff:127.0.0.2 (an IPv4 client of a dual-stack socket) is 127.0.0.2. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class ConnectionGate {
  private readonly perAddress = new Map<string, number>();
  private total = 0;
  /** Addresses refused since they last held no connection: logged once, not per connection. */
  private readonly refusedAddresses = new Set<string>();
  private refusingTotal = false;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: Logger,
  ) {}

  /** Counts each connection `server` accepts, and closes at once those beyond the limits. */
  attach(server: NetServer): void {
    // first, before Node's http2/tls listener starts a session or a handshake on the socket
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
  }

  private admit(socket: Socket): void {
    const address = addressOf(socket);
    const held = this.perAddress.get(address) ?? 0;
    if (held >= this.limits.maxPerAddress) {
      if (!this.refusedAddresses.has(address)) {
        this.refusedAddresses.add(address);
        this.log.warn('refusing connections from an address that holds the most it may (--max-connections-per-address); logged once until it holds none', {
          address,
          connections: held,
          limit: this.limits.maxPerAddress,
          security: true,
        });
      }
      socket.destroy();
      return;
    }
    if (this.total >= this.limits.maxTotal) {
      if (!this.refusingTotal) {
        this.refusingTotal = true;
        this.log.warn('refusing connections: the coordinator holds the most it may in all (--max-connections); logged once until it holds fewer', {
          address,
          connections: this.total,
          limit: this.limits.maxTotal,
          security: true,
        });
      }
      socket.destroy();
      return;
    }
    this.perAddress.set(address, held + 1);
    this.total++;
    socket.once('close', () => this.release(address));
  }

  private release(address: string): void {
    this.total--;
    if (this.total < this.limits.maxTotal) this.refusingTotal = false;
    const held = (this.perAddress.get(address) ?? 1) - 1;
    if (held > 0) {
      this.perAddress.set(address, held);
    } else {
      this.perAddress.delete(address);
      this.refusedAddresses.delete(address);
    }
  }
}

/**
 * The net servers grpc-js listens with. grpc-js makes them inside bindAsync and offers no
 * hook for their connections, so this reads its private map; should a grpc-js update rename it,
 * the coordinator refuses to start rather than serve without its connection limits.
 */
export function listeningServers(server: GrpcJsServer): NetServer[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error('cannot limit connections: this grpc-js keeps its listening servers elsewhere (Server.http2Servers); update connection-gate.ts');
  }
  return [...servers.keys()] as NetServer[];
}
