// A TCP listener on 127.0.0.1 that accepts and never answers: an iSCSI portal that hangs.
// Work against it (iscsi-ls discovery, a login) waits until it is stopped; the listener sees
// the connection close when the program holding it is killed, so a test can tell that the
// work was cancelled rather than left running.
import { createServer, type Socket } from 'node:net';
import { registerCleanup } from './cleanup.js';

export interface SilentPortal {
  port: number;
  /** connections accepted so far */
  readonly accepted: number;
  /** connections the other side has closed */
  readonly closed: number;
  stop(): Promise<void>;
}

export async function startSilentPortal(): Promise<SilentPortal> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let closed = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    // read (and drop) what comes, so that the peer's close is seen
    socket.resume();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed++;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const stop = registerCleanup(`silent portal 127.0.0.1:${port}`, async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    stop,
  };
}
