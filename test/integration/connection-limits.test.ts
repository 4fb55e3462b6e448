// Connections that never become calls. Anyone who reaches the gRPC port could open TCP
// connections without limit: ones that send nothing or half the HTTP/2 preface stayed until the
// keepalive gave up on them (ping plus answer, 60 s), and an HTTP/2 session that answers pings
// but opens no stream stayed for good, each a file descriptor and about 15 KB of the
// coordinator's. Each source address (127.0.0.2, .3, ... are loopback addresses of their own)
// gets --max-connections-per-address, all together --max-connections, and a connection with no
// call open for --connection-idle-ms is closed. Counted in the coordinator's /proc/PID/fd.
import { readdirSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { ListHostsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, promiseApi } from '../support/client.js';
import { registerCleanup } from '../support/cleanup.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startCoordinator, type CoordinatorHandle } from '../support/services.js';
import { waitFor } from '../support/process.js';
import { outcomeOf } from '../support/volume-data.js';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as PER_ADDRESS } from '../../services/coordinator/connection-gate.js';

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

interface Conn {
  socket: Socket;
  /** The coordinator closed it (read to its end, or reset). */
  closed: boolean;
}

/** A TCP connection from `localAddress` to `address` that sends `send` (nothing by default) and reads whatever comes. */
function rawConnection(address: string, localAddress: string, send = ''): Promise<Conn> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress });
    const conn: Conn = { socket, closed: false };
    socket.on('error', () => undefined);
    socket.on('close', () => (conn.closed = true));
    socket.resume();
    socket.once('connect', () => {
      if (send) socket.write(send);
      resolve(conn);
    });
    socket.once('error', reject);
  });
}

/**
 * An HTTP/2 session from `localAddress` that answers pings and opens no stream, once the
 * coordinator has sent its SETTINGS (it took the connection); rejects if it closes before.
 */
function streamlessSession(address: string, localAddress: string): Promise<{ session: ClientHttp2Session; closed: () => boolean }> {
  let closed = false;
  const session = h2connect(`http://${address}`, { localAddress } as never);
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    session.on('close', () => {
      closed = true;
      reject(new Error(`the coordinator closed the connection from ${localAddress} before its SETTINGS`));
    });
    session.once('remoteSettings', () => resolve({ session, closed: () => closed }));
  });
}

const refusalLines = (logs: string, address: string): string[] =>
  logs.split('\n').filter((l) => l.includes('refusing connections') && l.includes(address));

describe('connections that never become calls (real coordinator, real sockets)', function () {
  this.timeout(90_000);
  let nats: NatsServer;
  const conns: Conn[] = [];
  const sessions: ClientHttp2Session[] = [];
  before(async () => {
    nats = await startNats();
  });
  afterEach(() => {
    for (const c of conns.splice(0)) c.socket.destroy();
    for (const s of sessions.splice(0)) s.destroy();
  });
  after(async () => {
    await nats.stop();
  });
  const coordinator = async (args: string[]): Promise<CoordinatorHandle> => {
    const handle = await startCoordinator({ natsUrl: nats.url, args });
    registerCleanup(`coordinator ${handle.address}`, () => handle.stop());
    return handle;
  };

  it(`one address holds at most --max-connections-per-address (default ${PER_ADDRESS}), refused once in the log, others still served`, async () => {
    const co = await coordinator([]);
    const before = fdCount(co.process.pid);
    for (let i = 0; i < PER_ADDRESS + 6; i++) conns.push(await rawConnection(co.address, '127.0.0.2'));
    await waitFor(`the coordinator to close the 6 connections beyond ${PER_ADDRESS} of 127.0.0.2`, () => conns.filter((c) => c.closed).length >= 6 || undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
      context: () => co.process.logTail(),
    });
    expect(conns.filter((c) => c.closed)).to.have.length(6);
    expect(fdCount(co.process.pid) - before).to.be.at.most(PER_ADDRESS + 4);
    // one line for the address, not one per connection refused
    expect(refusalLines(co.process.logs(), '127.0.0.2')).to.have.length(1);
    // another address is still served
    const client = connectClient(co.address);
    try {
      expect((await outcomeOf(promiseApi(client).listHosts(ListHostsRequest.fromPartial({})))).code).to.equal(status.OK);
    } finally {
      client.close();
    }
    // and the address gets room again once its connections end
    for (const c of conns.splice(0)) c.socket.destroy();
    await waitFor('room again for 127.0.0.2', async () => {
      sessions.push((await streamlessSession(co.address, '127.0.0.2')).session);
      return true;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    await co.stop();
  });

  it('all addresses together hold at most --max-connections; beyond it refused, logged once', async () => {
    const co = await coordinator(['--max-connections-per-address', '4', '--max-connections', '8']);
    for (const from of ['127.0.0.5', '127.0.0.6']) for (let i = 0; i < 4; i++) conns.push(await rawConnection(co.address, from));
    const extra = [await rawConnection(co.address, '127.0.0.7'), await rawConnection(co.address, '127.0.0.8')];
    conns.push(...extra);
    await waitFor('the coordinator to close the connections beyond 8 in all', () => extra.every((c) => c.closed) || undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
      context: () => co.process.logTail(),
    });
    expect(conns.filter((c) => c.closed)).to.have.length(2);
    const lines = co.process.logs().split('\n').filter((l) => l.includes('refusing connections') && l.includes('(--max-connections)'));
    expect(lines).to.have.length(1);
    await co.stop();
  });

  it('closes a connection with no call for --connection-idle-ms: silent, half a preface, or an HTTP/2 session without streams', async () => {
    const co = await coordinator(['--connection-idle-ms', '2000']);
    const before = fdCount(co.process.pid);
    const silent = await rawConnection(co.address, '127.0.0.9');
    const partial = await rawConnection(co.address, '127.0.0.9', 'PRI * HTTP/2.0\r\n');
    conns.push(silent, partial);
    const h2 = await streamlessSession(co.address, '127.0.0.10');
    sessions.push(h2.session);
    await waitFor('the coordinator to close the idle connections', () => (silent.closed && partial.closed && h2.closed()) || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
      context: () => co.process.logTail(),
    });
    await waitFor('their file descriptors to be released', () => fdCount(co.process.pid) <= before || undefined, { timeoutMs: 10_000, intervalMs: 100 });
    await co.stop();
  });

  it('refuses bad connection limits naming the flag and what is allowed', async () => {
    for (const [flag, v] of [['--max-connections-per-address', '0'], ['--max-connections', 'x'], ['--connection-idle-ms', '999']]) {
      const co = startCoordinator({ natsUrl: nats.url, args: [flag!, v!], timeoutMs: 10_000 });
      const err = (await co.then(() => undefined, (e: Error) => e)) as Error | undefined;
      expect(err?.message, flag).to.match(new RegExp(`${flag}.*(whole number|milliseconds)`));
    }
  });
});
