// The coordinator process starts again when its event stream is replaced underneath it, also
// when that is noticed during a start (the first, or a start again), and a stop waits for a
// start again under way and stops whichever coordinator runs then.
import { expect } from 'chai';
import { CoordinatorRunner } from '../../../services/coordinator/coordinator-runner.js';
import type { RunningCoordinator } from '../../../services/coordinator/coordinator.js';
import { silentLogger } from '../../../libs/log/logger.js';

/** Starts fake coordinators; each start waits for `release()` when `hold` is set. */
function fakeStarts() {
  const log: string[] = [];
  const tellers: Array<(why: string) => void> = [];
  let hold: Promise<void> | undefined;
  let release: () => void = () => undefined;
  let failNext = false;
  const start = async (replaced: (why: string) => void): Promise<RunningCoordinator> => {
    const n = tellers.length + 1;
    tellers.push(replaced);
    log.push(`start ${n}`);
    if (hold) await hold;
    if (failNext) throw new Error('NATS is gone');
    log.push(`serving ${n}`);
    return { services: undefined as never, port: 50051, stop: async () => void log.push(`stop ${n}`) };
  };
  return {
    log,
    start,
    /** tells coordinator n (1-based) that its stream was replaced */
    replace: (n: number) => tellers[n - 1]!(`replaced under ${n}`),
    holdStarts: () => {
      hold = new Promise<void>((resolve) => (release = resolve));
    },
    release: () => {
      hold = undefined;
      release();
    },
    failNextStart: () => (failNext = true),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('coordinator runner (start again on a replaced event stream)', () => {
  it('stops the coordinator and starts another when its stream is replaced', async () => {
    const f = fakeStarts();
    const runner = new CoordinatorRunner(f.start, silentLogger, () => expect.fail('no failure'));
    await runner.startFirst();
    f.replace(1);
    await runner.settled();
    await runner.stop();
    expect(f.log).to.deep.equal(['start 1', 'serving 1', 'stop 1', 'start 2', 'serving 2', 'stop 2']);
  });

  it('a replacement noticed during the first start is taken up once it is done', async () => {
    const f = fakeStarts();
    const runner = new CoordinatorRunner(f.start, silentLogger, () => expect.fail('no failure'));
    f.holdStarts();
    const first = runner.startFirst();
    await tick();
    f.replace(1);
    f.release();
    await first;
    await runner.settled();
    expect(f.log).to.deep.equal(['start 1', 'serving 1', 'stop 1', 'start 2', 'serving 2']);
  });

  it('a replacement noticed during a start again leads to one more, and a stop meanwhile waits for it', async () => {
    const f = fakeStarts();
    const runner = new CoordinatorRunner(f.start, silentLogger, () => expect.fail('no failure'));
    await runner.startFirst();
    f.holdStarts();
    f.replace(1);
    await tick();
    // coordinator 2 is starting, and its own check fires before it serves
    f.replace(2);
    f.release();
    await runner.settled();
    expect(f.log).to.deep.equal(['start 1', 'serving 1', 'stop 1', 'start 2', 'serving 2', 'stop 2', 'start 3', 'serving 3']);

    f.holdStarts();
    f.replace(3);
    await tick();
    const stopping = runner.stop();
    f.release();
    await stopping;
    // the start under way finishes, then the stop stops it; nothing starts after
    expect(f.log.slice(8)).to.deep.equal(['stop 3', 'start 4', 'serving 4', 'stop 4']);
  });

  it('a start again that fails is told, once', async () => {
    const f = fakeStarts();
    const failures: unknown[] = [];
    const runner = new CoordinatorRunner(f.start, silentLogger, (err) => failures.push(err));
    await runner.startFirst();
    f.failNextStart();
    f.replace(1);
    await runner.settled();
    expect(failures.map((e) => (e as Error).message)).to.deep.equal(['NATS is gone']);
  });
  it('a stop told while the old coordinator is stopping for a start again starts no new one', async () => {
    const log: string[] = [];
    const tellers: Array<(why: string) => void> = [];
    let releaseStop: () => void = () => undefined;
    const start = async (replaced: (why: string) => void): Promise<RunningCoordinator> => {
      const n = tellers.push(replaced);
      log.push(`start ${n}`);
      let stopped: Promise<void> | undefined;
      return {
        services: undefined as never,
        port: 50051,
        // coordinator 1's stop takes a while (gRPC calls finishing, NATS draining); a stop told
        // again waits for the same one, as a RunningCoordinator's does
        stop: () =>
          (stopped ??= (async () => {
            if (n === 1) await new Promise<void>((resolve) => (releaseStop = resolve));
            log.push(`stop ${n}`);
          })()),
      };
    };
    const runner = new CoordinatorRunner(start, silentLogger, () => expect.fail('no failure'));
    await runner.startFirst();
    tellers[0]!('replaced');
    await tick();
    // SIGTERM while coordinator 1 stops for its start again
    const stopping = runner.stop();
    releaseStop();
    await stopping;
    expect(log).to.deep.equal(['start 1', 'stop 1']);
  });
});
