import { expect } from 'chai';
import { AbortedError, AlreadyExistsError, FailedPreconditionError } from '../../../libs/errors/errors.js';
import { LockTable } from '../../../services/agent/locks.js';

describe('agent locks', () => {
  it('a second writer on a volume is ABORTED at once, naming the op in progress', () => {
    const locks = new LockTable();
    const release = locks.acquireVolume('p', 'v', 'wipe');
    expect(() => locks.acquireVolume('p', 'v', 'resize')).to.throw(AbortedError, "volume 'v' is busy: wipe in progress");
    release();
    locks.acquireVolume('p', 'v', 'resize')();
  });

  it('readers share a volume; a writer waits for none of them but is refused', () => {
    const locks = new LockTable();
    const r1 = locks.acquireVolume('p', 'v', 'download', 'shared');
    const r2 = locks.acquireVolume('p', 'v', 'clone', 'shared');
    expect(() => locks.acquireVolume('p', 'v', 'delete')).to.throw(AbortedError);
    r1();
    expect(() => locks.acquireVolume('p', 'v', 'delete')).to.throw(AbortedError);
    r2();
    expect(locks.isVolumeBusy('p', 'v')).to.equal(false);
  });

  it('exactly one of many creates of one name gets it; the others are ALREADY_EXISTS', () => {
    const locks = new LockTable();
    let won = 0;
    let exists = 0;
    for (let i = 0; i < 100; i++) {
      try {
        locks.reserveVolumeName('p', 'new', 'create', false);
        won++;
      } catch (err) {
        expect(err).to.be.instanceOf(AlreadyExistsError);
        exists++;
      }
    }
    expect([won, exists]).to.deep.equal([1, 99]);
    expect(() => locks.reserveVolumeName('p', 'other', 'create', true)).to.throw(AlreadyExistsError, "storage volume 'other' exists already");
  });

  it('stop and delete are refused while volume work runs, naming it', async () => {
    const locks = new LockTable();
    const release = locks.reserveVolumeName('p', 'big', 'create', false);
    let err: unknown;
    try {
      await locks.withPool('p', 'stop', async () => 'stopped');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.contain("create of volume 'big'");
    release();
    expect(await locks.withPool('p', 'stop', async () => 'stopped')).to.equal('stopped');
  });

  it('volume work is refused while the pool starts or stops, allowed during a refresh', async () => {
    const locks = new LockTable();
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const stopping = locks.withPool('p', 'stop', async () => {
      inside();
      await gate;
    });
    await entered;
    expect(() => locks.acquireVolume('p', 'v', 'wipe')).to.throw(FailedPreconditionError, "storage pool 'p' is busy: stop in progress");
    finish();
    await stopping;
    const refreshing = locks.withPool('p', 'refresh', async () => {
      locks.acquireVolume('p', 'v', 'wipe')();
      return 'ok';
    });
    expect(await refreshing).to.equal('ok');
  });

  it('pool state changes run one at a time, in the order they came', async () => {
    const locks = new LockTable();
    const order: string[] = [];
    let finishFirst!: () => void;
    const first = locks.withPool('p', 'start', async () => {
      order.push('start begins');
      await new Promise<void>((r) => (finishFirst = r));
      order.push('start ends');
    });
    const second = locks.withPool('p', 'refresh', async () => {
      order.push('refresh');
    });
    await new Promise((r) => setImmediate(r));
    expect(locks.poolOp('p')).to.equal('start');
    finishFirst();
    await Promise.all([first, second]);
    expect(order).to.deep.equal(['start begins', 'start ends', 'refresh']);
    expect(locks.poolOp('p')).to.equal(undefined);
  });
});
