// One call of a Session given its own deadline, or cancelled alone, against a real stack: the
// call is answered DEADLINE_EXCEEDED or CANCELLED as a unary call would end, the agent's work
// is stopped (an iscsi-ls discovery hanging on a silent portal: its connection closes when the
// agent kills it), and the other calls on the stream are answered as usual. A bad timeout is
// refused for that call alone, naming the field; a cancel of an id not running does nothing.
import { join } from 'node:path';
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import type { SessionAnswer } from '../../libs/api/session-envelope.js';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import {
  CreatePoolRequest,
  CreateVolumeRequest,
  PoolType,
  SessionRequest,
  SessionStatus,
  type FindPoolSourcesRequest,
} from '../../libs/proto/cistern/v1/storage.js';
import type { Duration } from '../../libs/proto/google/protobuf/duration.js';
import { StorageSession } from '../../libs/api/session-client.js';
import type { CisternError } from '../../libs/errors/errors.js';
import { useStack, waitFor } from '../support/index.js';
import { rawSession } from '../support/raw-session.js';
import { startSilentPortal, type SilentPortal } from '../support/silent-portal.js';

const POOL = 'hosts/a/pools/dl';
const INITIATOR = 'iqn.2026-11.test.cistern:session';

/** Discovery on a portal that never answers: the agent's iscsi-ls waits until it is killed. */
const hangingDiscovery = (portal: SilentPortal): FindPoolSourcesRequest => ({
  host: 'a',
  type: PoolType.POOL_TYPE_ISCSI_DIRECT,
  sourceXml: `<source><host name='127.0.0.1' port='${portal.port}'/><initiator><iqn name='${INITIATOR}'/></initiator></source>`,
  source: undefined,
});

const create = (name: string): CreateVolumeRequest =>
  CreateVolumeRequest.fromPartial({ parent: POOL, definition: { name, capacity: 1n << 20n, allocation: 0n, target: { format: 'raw' } } });

const request = (id: bigint, call: SessionRequest['call'], timeout?: Duration): SessionRequest => SessionRequest.fromPartial({ id, timeout, call });

function statusOf(answer: SessionAnswer): SessionStatus {
  expect(answer.status, `call ${answer.id} was answered with ${answer.result?.call} instead of a status`).to.not.equal(undefined);
  return SessionStatus.decode(answer.status!);
}

/** The fields a status's google.rpc.BadRequest names (its field_violations' `field`). */
function badRequestFields(s: SessionStatus): string[] {
  const fields: string[] = [];
  for (const any of s.details.filter((d) => d.typeUrl === 'type.googleapis.com/google.rpc.BadRequest')) {
    const outer = new BinaryReader(any.value);
    while (outer.pos < outer.len) {
      const [field, wireType] = outer.tag();
      if (field !== 1) {
        outer.skip(wireType);
        continue;
      }
      const violation = new BinaryReader(outer.bytes());
      while (violation.pos < violation.len) {
        const [f, w] = violation.tag();
        if (f === 1) fields.push(violation.string());
        else violation.skip(w);
      }
    }
  }
  return fields;
}

describe('Session: a deadline and a cancel per call (real stack)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });

  before(async () => {
    const { stack } = ctx;
    await stack.api.createPool(CreatePoolRequest.fromPartial({ host: 'a', definition: { type: PoolType.POOL_TYPE_DIR, name: 'dl', target: { path: join(stack.roots.a!, 'dl') } }, build: true }));
  });

  it("a call whose own timeout passes is answered DEADLINE_EXCEEDED and the agent's work is stopped; another call on the stream is answered", async () => {
    const portal = await startSilentPortal();
    const raw = rawSession(ctx.stack);
    try {
      raw.stream.write(request(1n, { $case: 'findPoolSources', value: hangingDiscovery(portal) }, { seconds: 3n, nanos: 0 }));
      await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
      raw.stream.write(request(2n, { $case: 'getPool', value: { name: POOL } }));
      const other = await raw.answer(2n);
      expect(other.result?.call).to.equal('getPool');
      const expired = statusOf(await raw.answer(1n));
      expect(status[expired.code]).to.equal('DEADLINE_EXCEEDED');
      expect(expired.message).to.equal('Deadline exceeded: call 1 did not finish within its timeout of 3 s; its work was told to stop');
      // the agent killed iscsi-ls: its connection to the portal closes
      await waitFor('the discovery to be stopped', () => portal.closed === 1);
      raw.stream.end();
      expect(await raw.ended).to.equal(undefined);
      expect(raw.answers.map((a) => a.id)).to.deep.equal([2n, 1n]);
    } finally {
      raw.stream.cancel();
      await portal.stop();
    }
  });

  it("the stream's deadline, passing first, ends a call whose own timeout is longer, and stops its work", async () => {
    // (as before per-call timeouts: this pins that a call's timeout does not outlive its stream)
    const portal = await startSilentPortal();
    try {
      const raw = rawSession(ctx.stack, { deadline: Date.now() + 3000 });
      raw.stream.write(request(1n, { $case: 'findPoolSources', value: hangingDiscovery(portal) }, { seconds: 600n, nanos: 0 }));
      await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
      const err = await raw.ended;
      expect(err && status[err.code]).to.equal('DEADLINE_EXCEEDED');
      expect(raw.answers).to.deep.equal([]);
      await waitFor('the discovery to be stopped', () => portal.closed === 1);
    } finally {
      await portal.stop();
    }
  });

  it('a bad timeout is INVALID_ARGUMENT naming `timeout` for that call alone, which does not run; the stream goes on', async () => {
    const raw = rawSession(ctx.stack);
    raw.stream.write(request(1n, { $case: 'createVolume', value: create('neg.img') }, { seconds: -1n, nanos: 0 }));
    raw.stream.write(request(2n, { $case: 'createVolume', value: create('nanos.img') }, { seconds: 1n, nanos: 1_000_000_000 }));
    raw.stream.write(request(3n, { $case: 'createVolume', value: create('negnanos.img') }, { seconds: 0n, nanos: -5 }));
    raw.stream.write(request(4n, { $case: 'createVolume', value: create('ok.img') }, { seconds: 60n, nanos: 500_000_000 }));
    raw.stream.end();
    expect(await raw.ended).to.equal(undefined);
    const byId = new Map(raw.answers.map((a) => [a.id, a]));
    const refused = [1n, 2n, 3n].map((id) => statusOf(byId.get(id)!));
    expect(refused.map((s) => status[s.code])).to.deep.equal(['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    expect(refused[0]!.message).to.equal("timeout: seconds -1, nanos 0 is negative; a call's timeout is a span from 0 up, as a unary call's deadline");
    expect(refused[1]!.message).to.equal("timeout: nanos 1000000000 is out of range: google.protobuf.Duration's nanos are 0 to 999999999 (whole seconds go in seconds)");
    expect(refused[2]!.message).to.match(/^timeout: seconds 0, nanos -5 is negative/);
    // the google.rpc.BadRequest names the field, as a unary call's refusal does
    for (const s of refused) expect(badRequestFields(s)).to.deep.equal(['timeout']);
    expect(byId.get(4n)!.result?.call).to.equal('createVolume');
    const names = (await ctx.stack.api.listVolumes({ parent: POOL, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition!.name);
    expect(names).to.include('ok.img');
    expect(names.filter((n) => ['neg.img', 'nanos.img', 'negnanos.img'].includes(n))).to.deep.equal([]);
    await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/ok.img`, requestId: '' });
  });

  it('a zero timeout has already passed: DEADLINE_EXCEEDED, and the call does not run', async () => {
    const raw = rawSession(ctx.stack);
    raw.stream.write(request(1n, { $case: 'createVolume', value: create('zero.img') }, { seconds: 0n, nanos: 0 }));
    raw.stream.end();
    expect(await raw.ended).to.equal(undefined);
    const s = statusOf(raw.answers[0]!);
    expect(status[s.code]).to.equal('DEADLINE_EXCEEDED');
    expect(s.message).to.equal('Deadline exceeded: call 1 has a timeout of 0 s, passed before it could start; it was not run');
    const names = (await ctx.stack.api.listVolumes({ parent: POOL, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition!.name);
    expect(names).to.not.include('zero.img');
  });

  it("a cancel of one call answers it CANCELLED and stops the agent's work; the other calls finish; a cancel of an id not running does nothing", async () => {
    const portal = await startSilentPortal();
    const raw = rawSession(ctx.stack);
    try {
      raw.stream.write(request(5n, { $case: 'findPoolSources', value: hangingDiscovery(portal) }));
      await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
      raw.stream.write(request(6n, { $case: 'createVolume', value: create('beside.img') }));
      expect((await raw.answer(6n)).result?.call).to.equal('createVolume');
      raw.stream.write(SessionRequest.fromPartial({ id: 5n, cancel: true }));
      const cancelled = statusOf(await raw.answer(5n));
      expect(status[cancelled.code]).to.equal('CANCELLED');
      expect(cancelled.message).to.equal('call 5 was cancelled by the client');
      await waitFor('the discovery to be stopped', () => portal.closed === 1);
      // ids with no call running: one never used, one already answered, one just cancelled
      for (const id of [99n, 6n, 5n]) raw.stream.write(SessionRequest.fromPartial({ id, cancel: true }));
      raw.stream.write(request(7n, { $case: 'getPool', value: { name: POOL } }));
      raw.stream.end();
      expect(await raw.ended).to.equal(undefined);
      expect(raw.answers.map((a) => a.id)).to.deep.equal([6n, 5n, 7n]);
      expect(raw.answers[2]!.result?.call).to.equal('getPool');
      expect((await ctx.stack.api.getVolume({ name: `${POOL}/volumes/beside.img`, refresh: false })).definition?.name).to.equal('beside.img');
      await ctx.stack.api.deleteVolume({ name: `${POOL}/volumes/beside.img`, requestId: '' });
    } finally {
      raw.stream.cancel();
      await portal.stop();
    }
  });

  it("a retry joined to a call whose own timeout passes does the work itself, not answered with the other call's DEADLINE_EXCEEDED", async () => {
    // docs/api.md, Retries: a retry of a call that did not complete does the work. The retry
    // (same request id, same request) joins the first call on this coordinator; that call's
    // timeout is the first call's, not the retry's
    const portal = await startSilentPortal();
    const raw = rawSession(ctx.stack);
    try {
      const hanging = CreatePoolRequest.fromPartial({
        host: 'a',
        xml: `<pool type='iscsi-direct'><name>joined</name><source><host name='127.0.0.1' port='${portal.port}'/><device path='iqn.2026-11.test.cistern:joined'/><initiator><iqn name='${INITIATOR}'/></initiator></source></pool>`,
        requestId: 'joined-timeout-1',
      });
      raw.stream.write(request(11n, { $case: 'createPool', value: hanging }, { seconds: 2n, nanos: 0 }));
      await waitFor("the agent's login to reach the portal", () => portal.accepted === 1);
      raw.stream.write(request(12n, { $case: 'createPool', value: hanging }, { seconds: 60n, nanos: 0 }));
      const first = statusOf(await raw.answer(11n));
      expect(first.message).to.match(/^Deadline exceeded: call 11 did not finish within its timeout of 2 s/);
      // the retry runs the start again: a second connection to the portal
      await waitFor('the retry to reach the portal itself', () => portal.accepted === 2 || raw.answers.some((a) => a.id === 12n));
      const early = raw.answers.find((a) => a.id === 12n);
      expect(early && statusOf(early).message, 'the retry was answered with the first call\'s outcome').to.equal(undefined);
      raw.stream.write(SessionRequest.fromPartial({ id: 12n, cancel: true }));
      expect(statusOf(await raw.answer(12n)).message).to.equal('call 12 was cancelled by the client');
      await waitFor('both logins to be stopped', () => portal.closed === 2);
      raw.stream.end();
      expect(await raw.ended).to.equal(undefined);
    } finally {
      raw.stream.cancel();
      await portal.stop();
    }
  });

  describe('the Node client: StorageSession.call(method, request, { deadlineMs, signal })', () => {
    let session: StorageSession;
    before(() => {
      session = new StorageSession(ctx.stack.client);
    });
    after(() => session?.close());

    it('deadlineMs gives the call its own deadline: DEADLINE_EXCEEDED, the work stopped, the session goes on', async () => {
      const portal = await startSilentPortal();
      try {
        const slow = session.call('findPoolSources', hangingDiscovery(portal), { deadlineMs: 3000 }).then(() => undefined, (e: CisternError) => e);
        await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
        expect((await session.call('getPool', { name: POOL })).name).to.equal(POOL);
        const err = (await slow)!;
        expect(err.code).to.equal('DEADLINE_EXCEEDED');
        expect(err.message).to.match(/^Deadline exceeded: call \d+ did not finish within its timeout of 3 s/);
        await waitFor('the discovery to be stopped', () => portal.closed === 1);
        expect((await session.call('getPool', { name: POOL }, { deadlineMs: 60_000 })).name).to.equal(POOL);
      } finally {
        await portal.stop();
      }
    });

    it('aborting the signal cancels that call alone: CANCELLED, the work stopped, the session goes on', async () => {
      const portal = await startSilentPortal();
      try {
        const abort = new AbortController();
        const slow = session.call('findPoolSources', hangingDiscovery(portal), { signal: abort.signal }).then(() => undefined, (e: CisternError) => e);
        await waitFor("the agent's iscsi-ls to reach the portal", () => portal.accepted === 1);
        const beside = session.call('createVolume', create('signal-beside.img'));
        abort.abort();
        const err = (await slow)!;
        expect(err.code).to.equal('CANCELLED');
        expect(err.message).to.equal('Cancelled on client');
        expect((await beside).name).to.equal(`${POOL}/volumes/signal-beside.img`);
        await waitFor('the discovery to be stopped', () => portal.closed === 1);
        // a signal aborted before the call: refused at once, as a grpc-js unary call is
        const early = await session.call('getPool', { name: POOL }, { signal: abort.signal }).then(() => undefined, (e: CisternError) => e);
        expect(early?.code).to.equal('CANCELLED');
        await session.call('deleteVolume', { name: `${POOL}/volumes/signal-beside.img`, requestId: '' });
      } finally {
        await portal.stop();
      }
    });

    it('a deadlineMs that is not a span is refused before anything is sent', async () => {
      const err = await session.call('getPool', { name: POOL }, { deadlineMs: -1 }).then(() => undefined, (e: CisternError) => e);
      expect(err?.code).to.equal('INVALID_ARGUMENT');
      expect(err?.message).to.equal('deadlineMs: -1 is not a timeout: give a finite number of milliseconds, 0 or more');
    });
  });
});
