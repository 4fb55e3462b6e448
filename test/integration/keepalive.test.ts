// A client gone without closing its connection (its host vanished, a NAT or VPN dropped it: a
// half-open peer) sends no FIN or RST. Without keepalive pings the coordinator never noticed:
// its WatchEvents never ended, and each held one of its client's concurrent-call slots, so 64
// of them locked every cisternctl of that address out for good.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { ListPoolsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, registerCleanup, useStack, waitFor } from '../support/index.js';
import { watchEvents } from '../support/grpc-expect.js';
import { outcomeOf } from '../support/volume-data.js';

/** A TCP relay to `target` that can go silent: it keeps every socket open and passes nothing on. */
async function silenceableRelay(target: string): Promise<{ address: string; silence(): void; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host, port });
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    for (const s of [inbound, outbound]) s.on('error', () => undefined);
    pairs.push([inbound, outbound]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: relayPort } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${relayPort}`,
    silence: () => {
      for (const [inbound, outbound] of pairs) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.pause();
      }
    },
    close: async () => {
      for (const pair of pairs) for (const s of pair) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('keepalive (real coordinator, a client that goes silent)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--keepalive-ms', '1000', '--max-calls-per-client', '2'] });

  it("ends a silent client's calls, and its address gets its call slots back", async () => {
    const relay = await silenceableRelay(ctx.stack.coordinator.address);
    const closeRelay = registerCleanup('keepalive test relay', () => relay.close());
    const client = connectClient(relay.address);
    const watchers = [watchEvents(client, {}), watchEvents(client, { hosts: ['a'] })];
    await Promise.all(watchers.map((w) => w.ready));
    relay.silence();
    // both of this address's slots are held by the silent client's watchers
    const listPools = () => outcomeOf(ctx.stack.api.listPools(ListPoolsRequest.fromPartial({})));
    expect((await listPools()).code).to.equal(status.RESOURCE_EXHAUSTED);
    await waitFor('the coordinator to close the silent connection and free its slots', async () => (await listPools()).code === status.OK || undefined, {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
    client.close();
    await closeRelay();
  });
});
