// Volume data over a real nats-server: upload and download with flow control,
// errors from either side, cancellation.
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { callAgent, serveAgent } from '../../libs/bus/agent-rpc.js';
import { acceptUpload, downloadFromAgent, serveDownload, uploadToAgent, CHUNK_SIZE, WINDOW } from '../../libs/bus/streams.js';
import { AgentReply, AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { CancelledError, NotFoundError, ResourceExhaustedError, UnavailableError } from '../../libs/errors/errors.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { waitFor } from '../support/process.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* pieces(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

/** What the serving side of one download did: pieces it read from its source, how it ended. */
interface Served {
  volume: string;
  read: number;
  total: number;
  /** Resolves with serveDownload's onDone argument (undefined: ended without an error). */
  done: Promise<unknown>;
  ended: boolean;
}

describe('bus streams (real nats-server)', function () {
  this.timeout(30_000);
  let nats: NatsServer;
  let agentSide: NatsConnection;
  let coordinatorSide: NatsConnection;
  const stored = new Map<string, Buffer>();
  const served: Served[] = [];
  /** The 'slow-commit' upload's final commit: it ends when the test says so. */
  const slowCommit = { wait: (): Promise<void> => Promise.resolve() };
  /** The 'cancel-at-commit' upload: its writer reached its commit with what tells it the sender gave up; it goes on when the promise resolves. */
  const atCommit = { reached: (_senderGaveUp: AbortSignal | undefined): Promise<void> => Promise.resolve() };
  /** The writer of the 'watched' upload: when its first data arrived, how it ended. */
  const watchedWriter = { gotData: (): void => undefined, ended: (_err: unknown): void => undefined };

  before(async () => {
    nats = await startNats();
    agentSide = await connectBus({ servers: nats.url, name: 'test-agent' });
    coordinatorSide = await connectBus({ servers: nats.url, name: 'test-coordinator' });
    serveAgent(agentSide, 'h1', async (op, request) => {
      if (op === 'uploadBegin' && request.op?.$case === 'uploadBegin') {
        const name = request.op.value.volume;
        if (name === 'second-fails') {
          // a write error on the second chunk (disk full mid-upload)
          return acceptUpload(agentSide, 'h1', async (data) => {
            let n = 0;
            for await (const _ of data) if (++n === 2) throw new ResourceExhaustedError('no space left on device');
            return { volume: undefined, bytesWritten: 0n, eventSequence: 0n };
          });
        }
        if (name === 'watched') {
          return acceptUpload(agentSide, 'h1', async (data) => {
            try {
              for await (const _ of data) watchedWriter.gotData();
            } catch (err) {
              watchedWriter.ended(err);
              throw err;
            }
            watchedWriter.ended(undefined);
            return { volume: undefined, bytesWritten: 0n, eventSequence: 0n };
          });
        }
        if (name === 'slow-commit') {
          // all data written, then a final datasync + commit + refresh slower than the idle limit
          return acceptUpload(agentSide, 'h1', async (data) => {
            let bytes = 0n;
            for await (const part of data) bytes += BigInt(part.length);
            await slowCommit.wait();
            return { volume: Volume.create({ name: 'hosts/h1/pools/p/volumes/slow-commit' }), bytesWritten: bytes, eventSequence: 9n };
          });
        }
        if (name === 'cancel-at-commit') {
          // all data written; the commit waits for the test, then asks whether the sender gave up
          return acceptUpload(agentSide, 'h1', async (data, senderGaveUp?: AbortSignal) => {
            for await (const _ of data) void _;
            await atCommit.reached(senderGaveUp);
            if (senderGaveUp?.aborted) throw senderGaveUp.reason;
            return { volume: undefined, bytesWritten: 0n, eventSequence: 0n };
          });
        }
        if (name === 'stops-early') {
          // a declared length reached with the first chunk: the writer stops before the end
          return acceptUpload(agentSide, 'h1', async (data) => {
            for await (const part of data) return { volume: undefined, bytesWritten: BigInt(part.length), eventSequence: 0n };
            return { volume: undefined, bytesWritten: 0n, eventSequence: 0n };
          });
        }
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
        let finish!: (error: unknown) => void;
        const record: Served = { volume: begin.volume, read: 0, total: Math.ceil(slice.length / 100_000), ended: false, done: new Promise((r) => (finish = r)) };
        served.push(record);
        const counted = async function* (): AsyncGenerator<Buffer> {
          for await (const piece of pieces(slice, 100_000)) {
            record.read++;
            yield piece;
          }
        };
        return serveDownload(agentSide, begin, counted(), BigInt(slice.length), (error) => {
          record.ended = true;
          finish(error);
        });
      }
      if (op === 'findPoolSources') {
        // a portal that lists 20,000 targets: an answer larger than the bus carries
        const sources = Array.from({ length: 20_000 }, (_, i) => ({ devices: [{ path: `iqn.2026-11.example:${'t'.repeat(60)}${i}` }] }));
        return AgentReply.fromPartial({ result: { $case: 'sources', value: { sources } } });
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
    const before = served.length;
    let got = 0;
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1'))) {
      got += part.length;
      break;
    }
    expect(got).to.be.greaterThan(0);
    const sender = served[before]!;
    expect(sender.volume).to.equal('v1');
    // the receiver's cancel ends the sender's loop (not its idle timeout, a minute away): it
    // ends cleanly, having read no more than its window of pieces and the one it waits with
    await waitFor('the sender to stop', () => sender.ended, { timeoutMs: 15_000, intervalMs: 20 });
    expect(await sender.done, 'the sender ended without an error (cancelled, not timed out)').to.equal(undefined);
    expect(sender.read, `pieces read of ${sender.total}`).to.be.at.most(WINDOW + 1);
    expect(sender.total).to.be.greaterThan(2 * (WINDOW + 1));
    // the connection still works for the next stream
    const back: Buffer[] = [];
    for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1', 0n, 10n))) back.push(part);
    expect(Buffer.concat(back).length).to.equal(10);
  });

  /** `count` chunks, then waits until `release` is called: a client that is slow to send more. */
  function stalledSender(count: number): { chunks: AsyncGenerator<Buffer>; waiting: Promise<void>; release(): void } {
    let release!: () => void;
    let waiting!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const waitingNow = new Promise<void>((resolve) => (waiting = resolve));
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) yield Buffer.alloc(CHUNK_SIZE, i + 1);
      waiting();
      await released;
    }
    return { chunks: chunks(), waiting: waitingNow, release };
  }

  it("ends an upload with the agent's error for any chunk of the window while the sender waits for more data", async () => {
    const sender = stalledSender(3);
    try {
      // before: the error ack of chunk 2 rejected a promise nobody awaited (the loop waited
      // for the sender): the process died of an unhandled rejection, the upload never ended
      const err = await uploadToAgent(coordinatorSide, 'h1', upload('second-fails'), sender.chunks).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ResourceExhaustedError);
    } finally {
      sender.release();
    }
  });

  it("waits for the agent's answer to an upload's end past the idle limit: a slow final commit is not a silent stream", async () => {
    // The agent answers the end of an upload once it has synced, committed and refreshed: a
    // big upload's datasync on a slow disk can take longer than a minute. Before: the end was
    // given the idle limit of a data chunk (60 s), the caller failed DEADLINE_EXCEEDED
    // while the agent went on and committed the upload (VOLUME_UPLOADED).
    const idleMs = 200;
    let started!: () => void;
    const commitStarted = new Promise<void>((resolve) => (started = resolve));
    slowCommit.wait = async () => {
      started();
      // longer than the caller's idle limit, many times over
      await new Promise((resolve) => setTimeout(resolve, idleMs * 10));
    };
    const data = Buffer.alloc(3 * CHUNK_SIZE, 7);
    const result = uploadToAgent(coordinatorSide, 'h1', upload('slow-commit'), pieces(data, CHUNK_SIZE), undefined, { idleMs });
    await commitStarted;
    const done = await result;
    expect(done.bytesWritten).to.equal(BigInt(data.length));
    expect(done.volume?.name).to.equal('hosts/h1/pools/p/volumes/slow-commit');
  });

  it('answers an upload whose writer stopped before the end (its declared length reached) once the end comes', async () => {
    const done = await uploadToAgent(coordinatorSide, 'h1', upload('stops-early'), pieces(Buffer.alloc(CHUNK_SIZE, 3), CHUNK_SIZE));
    expect(done.bytesWritten).to.equal(BigInt(CHUNK_SIZE));
  });

  it('tells the agent of a cancel that comes after all data was sent, while it syncs and commits', async () => {
    // docs/api.md: an upload its client cancels is CANCELLED and not committed as uploaded.
    // Before: once the end had been sent, nobody on the agent read the stream any more: the
    // sender's cancel went unheard and the upload was committed (VOLUME_UPLOADED) after the
    // client had been told CANCELLED.
    let reached!: (signal: AbortSignal | undefined) => void;
    const commitReached = new Promise<AbortSignal | undefined>((resolve) => (reached = resolve));
    let go!: () => void;
    const commitMayGoOn = new Promise<void>((resolve) => (go = resolve));
    atCommit.reached = (signal) => {
      reached(signal);
      return commitMayGoOn;
    };
    const abort = new AbortController();
    const uploading = uploadToAgent(coordinatorSide, 'h1', upload('cancel-at-commit'), pieces(Buffer.alloc(CHUNK_SIZE, 1), CHUNK_SIZE), abort.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    const senderGaveUp = await commitReached;
    try {
      abort.abort();
      expect(await uploading).to.be.instanceOf(CancelledError);
      // the writer is told, before it commits (a hang here: the cancel went unheard)
      expect(senderGaveUp, 'the writer is given no signal of the sender giving up').to.not.equal(undefined);
      if (!senderGaveUp!.aborted) await new Promise((resolve) => senderGaveUp!.addEventListener('abort', resolve, { once: true }));
      expect(senderGaveUp!.reason).to.be.instanceOf(CancelledError);
    } finally {
      go();
    }
  });

  it("ends an upload at once with the signal's reason when it aborts (host lost), and tells the agent to stop", async () => {
    const sender = stalledSender(1);
    const firstData = new Promise<void>((resolve) => (watchedWriter.gotData = resolve));
    const writerEnded = new Promise<unknown>((resolve) => (watchedWriter.ended = resolve));
    const abort = new AbortController();
    try {
      const uploading = uploadToAgent(coordinatorSide, 'h1', upload('watched'), sender.chunks, abort.signal).then(
        () => undefined,
        (e: unknown) => e,
      );
      await firstData;
      await sender.waiting;
      const lost = new UnavailableError("host 'h1' did not finish 'uploadVolume': it went offline", { host: 'h1' });
      abort.abort(lost);
      expect(await uploading).to.equal(lost);
      const writerError = await writerEnded;
      expect(writerError).to.be.instanceOf(CancelledError);
      expect((writerError as Error).message).to.contain('went offline');
    } finally {
      sender.release();
    }
  });

  it("ends a download at once with the signal's reason when it aborts (host lost), and stops the sender", async () => {
    const before = served.length;
    const abort = new AbortController();
    const lost = new UnavailableError("host 'h1' did not finish 'downloadVolume': it went offline", { host: 'h1' });
    let got = 0;
    const err = await (async () => {
      for await (const part of downloadFromAgent(coordinatorSide, 'h1', download('v1'), abort.signal)) {
        got += part.length;
        abort.abort(lost);
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.equal(lost);
    expect(got).to.be.greaterThan(0);
    const sender = served[before]!;
    await waitFor('the sender to stop', () => sender.ended, { timeoutMs: 15_000, intervalMs: 20 });
    expect(await sender.done).to.equal(undefined);
  });

  it('answers RESOURCE_EXHAUSTED at once when the agent\'s answer is larger than the bus carries, not after the call\'s timeout', async () => {
    const request = AgentRequest.fromPartial({ op: { $case: 'findPoolSources', value: {} } });
    const started = Date.now();
    const err = await callAgent(coordinatorSide, 'h1', request, { timeoutMs: 20_000 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.constructor.name).to.equal('ResourceExhaustedError');
    expect(err?.message).to.match(/^the answer is \d+ bytes, more than the message bus carries \(1048576\); narrow the request/);
    expect(Date.now() - started).to.be.below(10_000);
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
