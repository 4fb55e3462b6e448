// RequestResults.once, as a client retrying with its request id sees it: the first call's
// answer once it succeeded; the work again when the call the retry was joined to was
// cancelled by its own client (docs/api.md, "Long operations, deadlines and cancellation":
// retry with the same request_id to learn the outcome, the work runs once otherwise).
import { expect } from 'chai';
import { CancelledError } from '../../../libs/errors/errors.js';
import { DeleteVolumeRequest, WipeVolumeRequest, WipeAlgorithm, type Volume } from '../../../libs/proto/cistern/v1/storage.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { RequestResults, type RequestResultsStore } from '../../../services/coordinator/request-results.js';

function memoryStore(): RequestResultsStore & { puts: number } {
  const m = new Map<string, unknown>();
  return {
    puts: 0,
    async get(key) {
      return m.get(key) as never;
    },
    async put(key, value) {
      this.puts++;
      m.set(key, value);
    },
  };
}

const NAME = 'hosts/a/pools/p/volumes/v';
const wipe = WipeVolumeRequest.fromPartial({ name: NAME, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: 'r1' });
const wiped: Volume = { name: NAME, host: 'a', pool: 'p', stale: false, revision: 7n, definition: undefined };

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('RequestResults.once', function () {
  it('a retry joined to a running call that its client then cancels does the work itself', async function () {
    const results = new RequestResults(memoryStore(), silentLogger);
    const first = deferred<Volume>();
    const firstCall = new AbortController();
    const runs: string[] = [];
    const a = results.once('WipeVolume', 'p1', 'r1', wipe, () => (runs.push('first'), first.promise), firstCall.signal);
    // the retry arrives while the first call still runs: it joins it
    const b = results.once('WipeVolume', 'p1', 'r1', wipe, async () => (runs.push('retry'), wiped), new AbortController().signal);
    // the first client's deadline passes: its work fails CANCELLED
    firstCall.abort();
    first.reject(new CancelledError("the call was cancelled; host 'a' was told to stop 'wipeVolume'"));
    await a.then(
      () => expect.fail('the cancelled call succeeded'),
      (err: unknown) => expect((err as Error).message).to.match(/cancelled/),
    );
    const answer = await b;
    expect(answer.revision).to.equal(7n);
    expect(runs).to.deep.equal(['first', 'retry']);
  });

  it("runs again when the agent answers CANCELLED for a cancelled call it joined, not for this call's own cancel", async function () {
    const results = new RequestResults(memoryStore(), silentLogger);
    // the agent's request cache joined the retry to the cancelled operation it was still stopping
    let runs = 0;
    const work = async (): Promise<Volume> => {
      runs++;
      if (runs === 1) throw new CancelledError('zero fill cancelled');
      return wiped;
    };
    const answer = await results.once('WipeVolume', 'p1', 'r1', wipe, work, new AbortController().signal);
    expect(answer.revision).to.equal(7n);
    expect(runs).to.equal(2);
  });

  it('a call whose own client cancelled gets CANCELLED, and the work is not run again', async function () {
    const results = new RequestResults(memoryStore(), silentLogger);
    const own = new AbortController();
    let runs = 0;
    const work = async (): Promise<Volume> => {
      runs++;
      own.abort();
      throw new CancelledError('zero fill cancelled');
    };
    await results.once('WipeVolume', 'p1', 'r1', wipe, work, own.signal).then(
      () => expect.fail('the cancelled call succeeded'),
      (err: unknown) => expect((err as Error).message).to.equal('zero fill cancelled'),
    );
    expect(runs).to.equal(1);
  });

  it('gives up after a bounded number of runs that all end CANCELLED', async function () {
    const results = new RequestResults(memoryStore(), silentLogger);
    let runs = 0;
    const work = async (): Promise<Volume> => {
      runs++;
      throw new CancelledError('zero fill cancelled');
    };
    await results.once('WipeVolume', 'p1', 'r1', wipe, work, new AbortController().signal).then(
      () => expect.fail('succeeded'),
      (err: unknown) => expect((err as Error).message).to.equal('zero fill cancelled'),
    );
    expect(runs).to.equal(5);
  });

  it("answers a retry after success with the first call's response, and refuses the id for another request", async function () {
    const store = memoryStore();
    const results = new RequestResults(store, silentLogger);
    let runs = 0;
    const work = async (): Promise<Volume> => (runs++, wiped);
    await results.once('WipeVolume', 'p1', 'r1', wipe, work);
    const again = await results.once('WipeVolume', 'p1', 'r1', wipe, work);
    expect(again.revision).to.equal(7n);
    expect(runs).to.equal(1);
    const other = DeleteVolumeRequest.fromPartial({ name: NAME, requestId: 'r1' });
    await results.once('DeleteVolume', 'p1', 'r1', other, async () => ({})).then(
      () => expect.fail('the reused id was taken'),
      (err: unknown) => expect((err as Error).message).to.match(/^request_id: request id 'r1' was already used for a different call \(WipeVolume\)/),
    );
  });
});
