// The agent waits a loop turn before it starts a request only when its loop has just stood
// still (a request and its caller's cancel read in one go after a SIGSTOP); otherwise the turn
// would cost every call tens of microseconds.
import { expect } from 'chai';
import { LoopStallDetector } from '../../../libs/bus/loop-stall.js';

describe('LoopStallDetector', () => {
  it('is quiet while its timer fires on time, and suspects a stall once it fired far too late, for a moment', () => {
    let t = 1000;
    const d = new LoopStallDetector(() => t);
    try {
      for (let i = 0; i < 5; i++) {
        t += 50;
        d.fired();
        expect(d.suspected(), `tick ${i}`).to.equal(false);
      }
      t += 2000; // stopped for two seconds; the timer fires first when the loop runs again
      d.fired();
      expect(d.suspected()).to.equal(true);
      t += 60;
      expect(d.suspected()).to.equal(true);
      t += 50;
      d.fired();
      expect(d.suspected()).to.equal(false);
    } finally {
      d.stop();
    }
  });

  it('suspects a stall when asked before the late timer has fired (the socket read first)', () => {
    let t = 0;
    const d = new LoopStallDetector(() => t);
    try {
      t += 40;
      expect(d.suspected()).to.equal(false);
      t += 1000;
      expect(d.suspected()).to.equal(true);
    } finally {
      d.stop();
    }
  });
});

describe('sharedStallDetector', () => {
  it('gives every user of a process the same detector, one timer, stopped with the last release', async () => {
    const { sharedStallDetector } = await import('../../../libs/bus/loop-stall.js');
    const a = sharedStallDetector();
    const b = sharedStallDetector();
    expect(b.detector).to.equal(a.detector);
    a.release();
    a.release(); // a second release of the same use changes nothing
    const c = sharedStallDetector();
    expect(c.detector).to.equal(a.detector);
    b.release();
    c.release();
    const d = sharedStallDetector();
    expect(d.detector).to.not.equal(a.detector);
    d.release();
  });
});
