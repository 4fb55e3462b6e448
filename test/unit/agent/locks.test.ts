import { expect } from 'chai';
import { AbortedError, AlreadyExistsError, FailedPreconditionError } from '../../../libs/errors/errors.js';
import { LockTable, type PoolOp } from '../../../services/agent/locks.js';

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

  // every PoolOp, so that a new op must be placed on one side or the other here
  const blocksVolumeWork: Record<PoolOp, boolean> = {
    create: true,
    build: true,
    start: true,
    stop: true,
    delete: true,
    refresh: false,
    define: false,
    undefine: false,
  };
  for (const [op, blocks] of Object.entries(blocksVolumeWork) as Array<[PoolOp, boolean]>) {
    it(blocks ? `volume work is refused while the pool runs '${op}': FAILED_PRECONDITION naming it` : `volume work goes on while the pool runs '${op}'`, async () => {
      const locks = new LockTable();
      let inside!: () => void;
      const entered = new Promise<void>((r) => (inside = r));
      let finish!: () => void;
      const gate = new Promise<void>((r) => (finish = r));
      const running = locks.withPool('p', op, async () => {
        inside();
        await gate;
      });
      await entered;
      const work = [
        () => locks.acquireVolume('p', 'v', 'wipe'),
        () => locks.acquireVolume('p', 'w', 'download', 'shared'),
        () => locks.reserveVolumeName('p', 'new', 'create', false),
      ];
      for (const take of work) {
        if (blocks) expect(take).to.throw(FailedPreconditionError, `storage pool 'p' is busy: ${op} in progress`);
        else take()();
      }
      finish();
      await running;
      for (const take of work) take()();
    });
  }

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
