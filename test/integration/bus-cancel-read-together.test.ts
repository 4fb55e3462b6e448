// A request and its caller's cancel read by the agent in one go, its clock showing no stall:
// what an agent in a paused virtual machine sees when it runs again (QEMU stops the guest's
// kvmclock with the guest, so no clock inside it jumps), or one whose socket was held up on the
// way (a congested link, a proxy). serveAgent must not run a call whose cancel came with it,
// whatever its loop-stall detector (libs/bus/loop-stall.ts) says: a delete, a resize or a pool
// stop whose client was told it failed must not be done after all.
import { expect } from 'chai';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { callAgent, serveAgent } from '../../libs/bus/agent-rpc.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { waitFor } from '../support/process.js';

/** A TCP relay to NATS whose server-to-client direction can be held, then let go in one write. */
class HoldingRelay {
  private held: Buffer[] = [];
  private holding = false;
  private client: Socket | undefined;
  private readonly sockets = new Set<Socket>();
  readonly server: Server;

  constructor(private readonly natsPort: number) {
    this.server = createServer((client) => {
      const upstream = tcpConnect(this.natsPort, '127.0.0.1');
      this.client = client;
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => (this.holding ? this.held.push(d) : client.write(d)));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }

  hold(): void {
    this.holding = true;
  }

  heldText(): string {
    return Buffer.concat(this.held).toString('latin1');
  }

  release(): void {
    this.holding = false;
    const all = Buffer.concat(this.held);
    this.held = [];
    this.client!.write(all);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const deleteRequest = (volume: string): AgentRequest =>
  AgentRequest.fromPartial({ op: { $case: 'deleteVolume', value: { name: `hosts/h1/pools/p/volumes/${volume}` } } });

describe('a request read together with its cancel (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let relay: HoldingRelay;
  let agentSide: NatsConnection;
  let caller: NatsConnection;
  const ran: string[] = [];

  before(async () => {
    nats = await startNats();
    relay = new HoldingRelay(Number(new URL(nats.url).port));
    const port = await relay.listen();
    agentSide = await connectBus({ servers: `nats://127.0.0.1:${port}`, name: 'test-agent' });
    caller = await connectBus({ servers: nats.url, name: 'test-coordinator' });
    serveAgent(agentSide, 'h1', async (_op, request) => {
      ran.push(request.op?.$case === 'deleteVolume' ? request.op.value.name.split('/').pop()! : '?');
      return AgentReply.create({});
    });
    await agentSide.flush();
  });

  after(async () => {
    await agentSide?.close();
    await caller?.close();
    await relay?.close();
    await nats?.stop();
  });

  it('is answered CANCELLED and not run, though the loop never stood still', async () => {
    relay.hold();
    const abort = new AbortController();
    const given = callAgent(caller, 'h1', deleteRequest('given-up'), { signal: abort.signal }).catch((err: unknown) => err);
    await caller.flush();
    abort.abort();
    await caller.flush();
    await given;
    // both are on their way to the agent, held together
    await waitFor('the request and its cancel held for the agent', () => /cistern\.agent\.h1\.DeleteVolume[\s\S]*cistern\.agent\.h1\.cancel\./.test(relay.heldText()));
    relay.release();
    // a later call's answer: the held request has been dispatched by then
    await callAgent(caller, 'h1', deleteRequest('later'));
    expect(ran).to.deep.equal(['later']);
  });
});
