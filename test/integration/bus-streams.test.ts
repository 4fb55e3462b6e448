// Volume data over a real nats-server: upload and download with flow control,
// errors from either side, cancellation.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { serveAgent } from '../../libs/bus/agent-rpc.js';
import { acceptUpload, downloadFromAgent, serveDownload, uploadToAgent, CHUNK_SIZE } from '../../libs/bus/streams.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { NotFoundError, ResourceExhaustedError } from '../../libs/errors/errors.js';
import { startNats, type NatsServer } from '../support/nats.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

describe('bus streams (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let agentSide: NatsConnection;
  let coordinatorSide: NatsConnection;
  const stored = new Map<string, Buffer>();

  before(async () => {
    nats = await startNats();
    agentSide = await connectBus({ servers: nats.url, name: 'test-agent' });
    coordinatorSide = await connectBus({ servers: nats.url, name: 'test-coordinator' });
    serveAgent(agentSide, 'h1', async (op, request) => {
      if (op === 'uploadBegin' && request.op?.$case === 'uploadBegin') {
        const name = request.op.value.volume;
        if (name === 'full') {
          return acceptUpload(agentSide, 'h1', async (data) => {
            for await (const _ of data) throw new ResourceExhaustedError('no space left on device');
            return { volume: undefined, bytesWritten: 0n, eventSequence: 0n };
          });
        }
        return acceptUpload(agentSide, 'h1', async (data) => {
          const parts: Buffer[] = [];
          for await (const part of data) parts.push(part);
          stored.set(name, Buffer.concat(parts));
          const volume = Volume.create({ name: `hosts/h1/pools/p/volumes/${name}` });
          return { volume, bytesWritten: BigInt(stored.get(name)!.length), eventSequence: 7n };
        });
      }
      if (op === 'downloadBegin' && request.op?.$case === 'downloadBegin') {
        const begin = request.op.value;
        const data = stored.get(begin.volume);
        if (!data) throw new NotFoundError(`no volume '${begin.volume}'`);
        const slice = data.subarray(Number(begin.offset), begin.length ? Number(begin.offset + begin.length) : undefined);
        return serveDownload(agentSide, begin, pieces(slice, 100_000), BigInt(slice.length));
      }
      return AgentReply.create();
    });
  });

  after(async () => {
    await coordinatorSide?.close();
    await agentSide?.close();
    await nats?.stop();
  });

  const upload = (volume: string) =>
    AgentRequest.create({ op: { $case: 'uploadBegin', value: { volume, offset: 0n, length: 0n, sparse: false } } });
  const download = (volume: string, offset = 0n, length = 0n) =>
    AgentRequest.create({
      op: { $case: 'downloadBegin', value: { volume, offset, length, deliverSubject: '', window: 0 } },
    });

  it('uploads many chunks in order and downloads the same bytes back', async () => {
    const data = Buffer.alloc(5 * CHUNK_SIZE + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const result = await uploadToAgent(coordinatorSide, 'h1', upload('v1'), pieces(data, 300_000));
    expect(result.bytesWritten).to.equal(BigInt(data.length));
    expect(result.eventSequence).to.equal(7n);
    expect(result.volume?.name).to.equal('hosts/h1/pools/p/volumes/v1');
    expect(sha(stored.get('v1')!)).to.equal(sha(data));

    const back: Buffer[] = [];
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1'))) back.push(part);
    expect(sha(Buffer.concat(back))).to.equal(sha(data));
  });

  it('downloads a range given by offset and length', async () => {
    const back: Buffer[] = [];
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1', 1000n, 5000n))) back.push(part);
    expect(Buffer.concat(back)).to.deep.equal(stored.get('v1')!.subarray(1000, 6000));
  });

  it("carries the agent's typed error back to the uploader", async () => {
    const err = await uploadToAgent(coordinatorSide, 'h1', upload('full'), pieces(Buffer.alloc(2 * CHUNK_SIZE), CHUNK_SIZE)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ResourceExhaustedError);
  });

  it('reports a download of an unknown volume as NOT_FOUND', async () => {
    const run = async () => {
      for await (const _ of downloadFromAgent(coordinatorSide, 'h1', download('nope'))) void _;
    };
    const err = await run().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(NotFoundError);
  });

  it('stops the sender when the receiver stops reading early', async () => {
    let got = 0;
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1'))) {
      got += part.length;
      break;
    }
    expect(got).to.be.greaterThan(0);
    // the connection still works for the next stream
    const back: Buffer[] = [];
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1', 0n, 10n))) back.push(part);
    expect(Buffer.concat(back).length).to.equal(10);
  });

  it('answers UNAVAILABLE at once for a host nobody serves', async () => {
    const err = await uploadToAgent(coordinatorSide, 'nobody', upload('x'), pieces(Buffer.alloc(10), 10)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.constructor.name).to.equal('UnavailableError');
    expect(err?.message).to.contain("host 'nobody' is offline");
  });
});
