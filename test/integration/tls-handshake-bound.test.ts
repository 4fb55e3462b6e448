// A TLS handshake that never ends. The connection gate (connection-gate.ts) counts every TCP
// connection against its source address from the moment it is accepted, and
// --connection-idle-ms closes only HTTP/2 sessions: a socket still in its TLS handshake has
// none. Node's tls gives a handshake 120 s, so 256 connections that send nothing (or half a
// ClientHello) from one address locked every real client of that address (a cisternctl on the
// same machine) out for two minutes, and kept doing so as long as they were opened again.
// Each test opens its stuck handshakes from a loopback address of its own (127.0.0.x).
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { credentials as grpcCredentials, status } from '@grpc/grpc-js';
import { ListHostsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, promiseApi } from '../support/client.js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { startCoordinator, type CoordinatorHandle } from '../support/services.js';
import { waitFor } from '../support/process.js';
import { outcomeOf } from '../support/volume-data.js';
import { makeCerts } from '../security/fleet.js';

/** The first bytes of a TLS 1.2+ ClientHello record: a handshake that has begun and stops there. */
const HALF_CLIENT_HELLO = Buffer.from('160301020001000200030300', 'hex');

interface Conn {
  socket: Socket;
  /** The coordinator closed it. */
  closed: boolean;
}

function rawConnection(address: string, localAddress: string, send?: Buffer): Promise<Conn> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), localAddress });
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

/** A TLS handshake from `localAddress` completes (the coordinator took the connection and answered). */
function handshakes(address: string, localAddress: string, ca: Buffer): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const tcp = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), localAddress });
    tcp.on('error', () => undefined);
    const socket = tlsConnect({ socket: tcp, ca, servername: 'localhost', ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => {
      socket.destroy();
      tcp.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

describe('TLS handshakes that never end (real coordinator, real sockets)', function () {
  this.timeout(120_000);
  let nats: NatsServer;
  let certs: string;
  let ca: Buffer;
  const conns: Conn[] = [];
  before(async () => {
    nats = await startNats();
    certs = join(makeTempDir('cistern-tls-handshake-').path, 'certs');
    makeCerts(certs, ['a']);
    ca = readFileSync(join(certs, 'ca.crt'));
  });
  afterEach(() => {
    for (const c of conns.splice(0)) c.socket.destroy();
  });
  after(async () => {
    await nats.stop();
  });
  const tlsCoordinator = async (args: string[]): Promise<CoordinatorHandle> => {
    const handle = await startCoordinator({
      natsUrl: nats.url,
      credentials: grpcCredentials.createSsl(ca),
      args: ['--tls-cert', join(certs, 'server.crt'), '--tls-key', join(certs, 'server.key'), ...args],
    });
    registerCleanup(`coordinator ${handle.address}`, () => handle.stop());
    return handle;
  };

  it('by default closes a handshake that stalls well before Node’s 120 s, so its address gets room again', async () => {
    // four connections fill the address; --connection-idle-ms (1 s) does not reach them: no HTTP/2 session yet
    const co = await tlsCoordinator(['--max-connections-per-address', '4', '--connection-idle-ms', '1000']);
    for (let i = 0; i < 2; i++) conns.push(await rawConnection(co.address, '127.0.0.21'));
    for (let i = 0; i < 2; i++) conns.push(await rawConnection(co.address, '127.0.0.21', HALF_CLIENT_HELLO));
    expect(await handshakes(co.address, '127.0.0.21', ca), 'a fifth connection of a full address').to.equal(false);
    // before: held for Node's 120 s, past this wait
    await waitFor('the coordinator to close the stalled handshakes', () => conns.every((c) => c.closed) || undefined, {
      timeoutMs: 60_000,
      intervalMs: 200,
      context: () => co.process.logTail(),
    });
    await waitFor('room again for 127.0.0.21', async () => (await handshakes(co.address, '127.0.0.21', ca)) || undefined, { timeoutMs: 10_000, intervalMs: 200 });
    await co.stop();
  });

  it('--tls-handshake-timeout-ms sets the bound; a client that completes its handshake is served', async () => {
    const co = await tlsCoordinator(['--tls-handshake-timeout-ms', '1000']);
    const silent = await rawConnection(co.address, '127.0.0.22');
    const half = await rawConnection(co.address, '127.0.0.22', HALF_CLIENT_HELLO);
    // a ClientHello a byte at a time: never idle, so a bound on idleness alone would not end it
    const trickle = await rawConnection(co.address, '127.0.0.22');
    const bytes = Buffer.concat([HALF_CLIENT_HELLO, Buffer.alloc(500, 0x41)]);
    let sent = 0;
    const dripping = setInterval(() => {
      if (!trickle.closed && sent < bytes.length) trickle.socket.write(bytes.subarray(sent, ++sent));
    }, 100);
    conns.push(silent, half, trickle);
    await waitFor('the coordinator to close the stalled handshakes', () => (silent.closed && half.closed && trickle.closed) || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
      context: () => co.process.logTail(),
    }).finally(() => clearInterval(dripping));
    const client = connectClient(co.address, { credentials: grpcCredentials.createSsl(ca) });
    try {
      expect((await outcomeOf(promiseApi(client).listHosts(ListHostsRequest.fromPartial({})))).code).to.equal(status.OK);
    } finally {
      client.close();
    }
    await co.stop();
  });

  it('refuses a bad --tls-handshake-timeout-ms naming the flag, the value and the range', async () => {
    for (const v of ['999', '120001', 'x', '1.5']) {
      const err = (await startCoordinator({ natsUrl: nats.url, args: ['--tls-handshake-timeout-ms', v], timeoutMs: 10_000 }).then(
        () => undefined,
        (e: Error) => e,
      )) as Error | undefined;
      expect(err?.message, v).to.contain(`--tls-handshake-timeout-ms: '${v}'`);
      expect(err?.message, v).to.contain('from 1000 to 120000');
    }
  });
});
