// CallRunner.run, the one path every RPC takes: the handler's signal follows the client's
// cancel while the call runs, and a 'cancelled' that grpc-js emits once the call has ended
// (it does, when the stream closes after the answer) no longer reaches it; the audit line
// names what the call names, for a client stream what its handler read from the stream.
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { Metadata } from '@grpc/grpc-js';
import type { CallGuard } from '../../../services/coordinator/call-guard.js';
import type { CoordinatorServices } from '../../../services/coordinator/context.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { CallRunner } from '../../../services/coordinator/server.js';
import { DeadlineExceededError } from '../../../libs/errors/errors.js';

function fakeCall() {
  return Object.assign(new EventEmitter(), { metadata: new Metadata(), getPeer: () => 'ipv4:127.0.0.1:40000' });
}

function runner(audits: string[] = [], resources: string[] = []): CallRunner {
  const guard: CallGuard = {
    authenticate: () => 'tester',
    authorize: () => undefined,
    audit: (record) => {
      audits.push(`${record.method} ${record.code}`);
      resources.push(record.resource);
    },
  };
  return new CallRunner({ log: silentLogger } as unknown as CoordinatorServices, guard);
}

describe('CallRunner', function () {
  it('aborts the signal when the client cancels while the handler runs', async function () {
    const call = fakeCall();
    let signal: AbortSignal | undefined;
    await runner().run('GetPool', call, { name: 'hosts/a/pools/p' }, async (ctx) => {
      signal = ctx.signal;
      call.emit('cancelled', 'cancelled');
      return signal.aborted;
    }).then((abortedInside) => expect(abortedInside).to.equal(true));
    expect(signal!.aborted).to.equal(true);
  });

  it("aborts the signal with the cancel's reason when that is a Cistern error (a Session call's deadline), else plainly (grpc-js's 'cancelled')", async function () {
    const expired = new DeadlineExceededError('Deadline exceeded: call 1 did not finish within its timeout of 3 s');
    const reasons: unknown[] = [];
    for (const reason of [expired, 'cancelled']) {
      const call = fakeCall();
      await runner().run('GetPool', call, { name: 'hosts/a/pools/p' }, async (ctx) => {
        call.emit('cancelled', reason);
        reasons.push(ctx.signal.reason);
      });
    }
    expect(reasons[0]).to.equal(expired);
    expect(reasons[1]).to.be.instanceOf(DOMException);
    expect((reasons[1] as DOMException).name).to.equal('AbortError');
  });

  it('leaves the signal alone for a cancel that comes after the call ended, and stops listening', async function () {
    const call = fakeCall();
    const audits: string[] = [];
    let signal: AbortSignal | undefined;
    const answer = await runner(audits).run('GetPool', call, { name: 'hosts/a/pools/p' }, async (ctx) => {
      signal = ctx.signal;
      return 'pool';
    });
    expect(answer).to.equal('pool');
    expect(call.listenerCount('cancelled')).to.equal(0);
    call.emit('cancelled', 'cancelled');
    expect(signal!.aborted).to.equal(false);
    expect(audits).to.deep.equal(['GetPool OK']);
  });

  it('stops listening after a failed call too', async function () {
    const call = fakeCall();
    const failed = await runner().run('GetPool', call, {}, async () => {
      throw new Error('boom');
    }).then(() => false, () => true);
    expect(failed).to.equal(true);
    expect(call.listenerCount('cancelled')).to.equal(0);
  });

  it('audits the resource a handler names when the call has no request message (UploadVolume)', async function () {
    const resources: string[] = [];
    await runner([], resources).run('UploadVolume', fakeCall(), undefined, async (ctx) => {
      ctx.resource = 'hosts/a/pools/p/volumes/v';
      throw new Error('the upload failed');
    }).catch(() => undefined);
    await runner([], resources).run('GetPool', fakeCall(), { name: 'hosts/a/pools/p' }, async () => 'pool');
    expect(resources).to.deep.equal(['hosts/a/pools/p/volumes/v', 'hosts/a/pools/p']);
  });
});
