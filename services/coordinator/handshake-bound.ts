// A TLS handshake has --tls-handshake-timeout-ms from the moment its connection is accepted.
// The connection gate (connection-gate.ts) counts a connection against its source address from
// then on, and --connection-idle-ms closes only HTTP/2 sessions, which a connection still in its
// handshake does not have yet. Node's tls gives a handshake 120 s (its handshakeTimeout, which
// grpc-js offers no option for, and which bounds idleness only: a client sending its ClientHello
// a byte at a time never reaches it), so 256 connections sending nothing from
// one address locked every real client of that address out for two minutes, again and again.
// This bound is absolute: a handshake not finished in time is closed, however busy.
import type { Server as NetServer, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** Well above a real handshake over a slow link (a few round trips), far below Node's 120 s. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** remote address and port: the same on the accepted socket and on the TLS socket Node wraps it in. */
const peerOf = (socket: Socket): string => `${socket.remoteAddress}|${socket.remotePort}`;

/** Closes the connections `server` accepts that have not finished their TLS handshake within `timeoutMs`; a plaintext server is left alone. */
export function boundTlsHandshakes(server: NetServer, timeoutMs: number): void {
  if (!(server instanceof TlsServer)) return;
  const pending = new Map<string, NodeJS.Timeout>();
  server.prependListener('connection', (socket: Socket) => {
    const peer = peerOf(socket);
    const timer = setTimeout(() => {
      pending.delete(peer);
      socket.destroy();
    }, timeoutMs);
    timer.unref();
    pending.set(peer, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      if (pending.get(peer) === timer) pending.delete(peer);
    });
  });
  // emitted once the handshake is done, before HTTP/2 takes the connection
  server.prependListener('secureConnection', (socket: Socket) => {
    const peer = peerOf(socket);
    clearTimeout(pending.get(peer));
    pending.delete(peer);
  });
}
