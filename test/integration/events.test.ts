// Events (issue 6) against real processes: every kind with host, pool, volume, time,
// principal and the new state; WatchEvents replay joined to the live tail with no gap and
// no duplicate; reconnect with the last sequence; per-pool order; retention by count and
// OUT_OF_RANGE naming the oldest sequence, also to a watcher that falls behind it;
// `cisternctl pool-event --after`.
import { expect } from 'chai';
import { Metadata, status } from '@grpc/grpc-js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DiscardPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { registerCleanup, useStack, useTempDir, waitFor } from '../support/index.js';
import { Event as EventMessage, EventKind, WipeAlgorithm, type Event, type UploadVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';
import { DEFAULT_RING_EVENTS } from '../../services/coordinator/event-tail.js';
import { createVolume, dirPool, expectCode, kindName, startDirPool, volumeXml, watch } from './reliability-helpers.js';

const POOL_KINDS = new Set([
  EventKind.POOL_DEFINED,
  EventKind.POOL_UNDEFINED,
  EventKind.POOL_STARTED,
  EventKind.POOL_STOPPED,
  EventKind.POOL_CREATED,
  EventKind.POOL_DELETED,
  EventKind.POOL_REFRESHED,
]);
const VOLUME_KINDS = new Set([
  EventKind.VOLUME_CREATED,
  EventKind.VOLUME_DELETED,
  EventKind.VOLUME_RESIZED,
  EventKind.VOLUME_WIPED,
  EventKind.VOLUME_UPLOADED,
  EventKind.VOLUME_CHANGED,
]);

function strictlyIncreasing(events: Event[]): boolean {
  return events.every((e, i) => i === 0 || e.sequence > events[i - 1]!.sequence);
}

describe('events (real nats-server, coordinator, agents a and b)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-events-it-');

  it("answers a failed refresh with the host's own error, not with a second run's view of what the failure changed", async () => {
    // the refresh of a pool whose directory is gone fails and stops the pool (as libvirt's);
    // running the call again once its POOL_STOPPED was read said "not active" instead
    const path = join(scratch.path, 'gone');
    await startDirPool(ctx.stack, 'a', 'gone', path);
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: ['gone'] });
    await w.ready;
    rmSync(path, { recursive: true });
    await expectCode(ctx.stack.api.refreshPool({ name: 'hosts/a/pools/gone', requestId: '' }), status.NOT_FOUND, /cannot read pool directory .*gone.*no such file or directory/);
    await waitFor('POOL_STOPPED of the failed refresh', () => w.events.some((e) => e.kind === EventKind.POOL_STOPPED) || w.failure());
    w.cancel();
  });

  it("stores each change once, and every change: two principals' creates under one request id are two events", async () => {
    // JetStream drops a message whose id it stored within two minutes: an id made of the
    // request id alone took bob's create for a repeat of alice's, and lost it
    const { client } = ctx.stack;
    await startDirPool(ctx.stack, 'a', 'dedupe', join(scratch.path, 'dedupe'));
    const w = watch(client, { hosts: ['a'], pools: ['dedupe'] });
    await w.ready;
    const as = (principal: string): Metadata => {
      const md = new Metadata();
      md.set('x-cistern-principal', principal);
      return md;
    };
    const create = (principal: string, capacity: string) =>
      new Promise<void>((resolve, reject) => {
        const request = { parent: 'hosts/a/pools/dedupe', definition: undefined, xml: volumeXml('v', capacity), preallocMetadata: false, requestId: 'one-id', validate: false };
        client.createVolume(request, as(principal), (err) => (err ? reject(err) : resolve()));
      });
    await create('alice', '1048576');
    await ctx.stack.api.deleteVolume({ name: 'hosts/a/pools/dedupe/volumes/v', requestId: '' });
    await create('bob', '2097152');
    const created = () => w.events.filter((e) => e.kind === EventKind.VOLUME_CREATED && e.volume === 'v');
    await waitFor("bob's VOLUME_CREATED", () => created().length >= 2 || w.failure());
    w.cancel();
    expect(created().map((e) => [e.principal, e.volumeState?.definition?.capacity])).to.deep.equal([
      ['alice', 1048576n],
      ['bob', 2097152n],
    ]);
  });

  it('publishes every kind with host, pool, volume, time, principal, request id and the new state', async () => {
    const { api, client } = ctx.stack;
    const path = join(scratch.path, 'kinds');
    const w = watch(client, { hosts: ['a', 'b'] });
    await w.ready;
    await api.definePool({ host: 'a', definition: dirPool('kinds', path), xml: '', requestId: 'ev-define', validate: false });
    // POOL_CREATED comes from BuildPool only (a start with build sends none, as libvirt's)
    await api.buildPool({ name: 'hosts/a/pools/kinds', flags: undefined, requestId: '' });
    await api.startPool({ name: 'hosts/a/pools/kinds', build: false, buildFlags: undefined, requestId: '' });
    await createVolume(ctx.stack, 'hosts/a/pools/kinds', 'v1', '4194304', { requestId: 'ev-create-1' });
    await api.resizeVolume({ name: 'hosts/a/pools/kinds/volumes/v1', capacity: 8n * 1024n * 1024n, allocate: false, delta: false, shrink: false, requestId: '' });
    await api.wipeVolume({ name: 'hosts/a/pools/kinds/volumes/v1', algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' });
    await new Promise<void>((resolve, reject) => {
      const call = client.uploadVolume((err) => (err ? reject(err) : resolve()));
      call.write({ part: { $case: 'header', value: { name: 'hosts/a/pools/kinds/volumes/v1', offset: 0n, length: 0n, sparse: false, requestId: '' } } } satisfies UploadVolumeRequest);
      call.write({ part: { $case: 'data', value: Buffer.alloc(65536, 7) } });
      call.end();
    });
    writeFileSync(join(path, 'by-hand.img'), Buffer.alloc(8192, 1));
    await api.refreshPool({ name: 'hosts/a/pools/kinds', requestId: '' });
    await api.deleteVolume({ name: 'hosts/a/pools/kinds/volumes/v1', requestId: '' });
    await api.deleteVolume({ name: 'hosts/a/pools/kinds/volumes/by-hand.img', requestId: '' });
    await api.stopPool({ name: 'hosts/a/pools/kinds', requestId: '' });
    await api.deletePool({ name: 'hosts/a/pools/kinds', requestId: '' });
    await api.undefinePool({ name: 'hosts/a/pools/kinds', requestId: '' });
    await ctx.stack.stopAgent('b');
    await ctx.stack.waitForHosts(['b'], { online: false });
    await ctx.stack.addAgent('b');
    await waitFor('HOST_ONLINE of b', () => w.events.some((e) => e.kind === EventKind.HOST_ONLINE && e.host === 'b') || w.failure());
    w.cancel();
    expect(w.failure()).to.equal(undefined);

    const kinds = new Set(w.events.map((e) => e.kind));
    for (const k of [...POOL_KINDS, ...VOLUME_KINDS, EventKind.HOST_OFFLINE, EventKind.HOST_ONLINE, EventKind.OPERATION_PROGRESS]) {
      expect(kinds.has(k), `an event of kind ${EventKind[k]}`).to.equal(true);
    }
    expect(strictlyIncreasing(w.events), 'sequences strictly increase').to.equal(true);
    for (const e of w.events) {
      const label = `${kindName(e)} #${e.sequence}`;
      expect(e.host, label).to.be.oneOf(['a', 'b']);
      expect(e.time, label).to.be.instanceOf(Date);
      expect(e.principal, label).to.not.equal('');
      if (POOL_KINDS.has(e.kind)) {
        expect(e.pool, label).to.equal('kinds');
        expect(e.poolState?.definition?.name, label).to.equal('kinds');
      }
      if (VOLUME_KINDS.has(e.kind)) {
        expect(e.pool, label).to.equal('kinds');
        expect(e.volume, label).to.be.oneOf(['v1', 'by-hand.img']);
        expect(e.volumeState?.definition?.name, label).to.equal(e.volume);
      }
      if (e.kind === EventKind.HOST_ONLINE || e.kind === EventKind.HOST_OFFLINE) {
        expect(e.hostState?.hostId, label).to.equal(e.host);
        expect(e.hostState?.online, label).to.equal(e.kind === EventKind.HOST_ONLINE);
      }
      if (e.kind === EventKind.OPERATION_PROGRESS) {
        expect(e.progress?.operation, label).to.not.equal('');
        expect(e.progress!.done <= e.progress!.total, label).to.equal(true);
      }
    }
    // the new state travels with the event
    const resized = w.events.find((e) => e.kind === EventKind.VOLUME_RESIZED)!;
    expect(resized.volumeState?.definition?.capacity).to.equal(8n * 1024n * 1024n);
    const stopped = w.events.find((e) => e.kind === EventKind.POOL_STOPPED)!;
    expect(stopped.poolState?.state).to.equal(1 /* INACTIVE */);
    expect(w.events.find((e) => e.kind === EventKind.VOLUME_CHANGED)?.volume).to.equal('by-hand.img');
    expect(w.events.find((e) => e.kind === EventKind.VOLUME_CREATED)?.requestId).to.equal('ev-create-1');
    expect(w.events.find((e) => e.kind === EventKind.POOL_DEFINED)?.requestId).to.equal('ev-define');
    // per pool, in the order the changes were made
    const order = w.events
      .filter((e) => e.pool === 'kinds' && e.kind !== EventKind.OPERATION_PROGRESS && e.kind !== EventKind.VOLUME_CHANGED)
      .map(kindName);
    expect(order).to.deep.equal([
      'POOL_DEFINED',
      'POOL_CREATED',
      'POOL_STARTED',
      'VOLUME_CREATED',
      'VOLUME_RESIZED',
      'VOLUME_WIPED',
      'VOLUME_UPLOADED',
      'POOL_REFRESHED', // the refresh after the upload, as libvirt's
      'POOL_REFRESHED',
      'VOLUME_DELETED',
      'VOLUME_DELETED',
      'POOL_STOPPED',
      'POOL_DELETED',
      'POOL_UNDEFINED',
    ]);
    // HOST_OFFLINE of b comes before its HOST_ONLINE
    const hostKinds = w.events.filter((e) => e.host === 'b' && (e.kind === EventKind.HOST_OFFLINE || e.kind === EventKind.HOST_ONLINE)).map(kindName);
    expect(hostKinds.slice(-2)).to.deep.equal(['HOST_OFFLINE', 'HOST_ONLINE']);
  });

  it('joins the replay to the live tail with no gap and no duplicate, and a reconnect with the last sequence misses nothing', async () => {
    const { client } = ctx.stack;
    await startDirPool(ctx.stack, 'a', 'seam', join(scratch.path, 'seam'));
    const pool = ['hosts/a/pools/seam'];
    const kinds = [EventKind.VOLUME_CREATED];
    const all = watch(client, { pools: pool, kinds });
    await all.ready;
    let stopWriting = false;
    let made = 0;
    const writer = (async () => {
      while (!stopWriting && made < 60) await createVolume(ctx.stack, 'hosts/a/pools/seam', `s${String(made++).padStart(3, '0')}`, '4096');
    })();
    await waitFor('ten events', () => all.events.length >= 10);
    // a late subscriber replays from the fifth event while volumes keep coming
    const late = watch(client, { pools: pool, kinds, afterSequence: all.events[4]!.sequence });
    await late.ready;
    // a subscriber that drops after a few events and comes back with its last sequence
    const first = watch(client, { pools: pool, kinds, afterSequence: all.events[0]!.sequence });
    await waitFor('a few events', () => first.events.length >= 3);
    first.cancel();
    const last = first.events[first.events.length - 1]!.sequence;
    await waitFor('more volumes while away', () => all.events.length >= first.events.length + 15);
    const again = watch(client, { pools: pool, kinds, afterSequence: last });
    await again.ready;
    stopWriting = true;
    await writer;
    const end = all.events.length;
    await waitFor('everyone caught up', () => all.events.length === made && late.events.length >= made - 5 && (again.events.at(-1)?.sequence ?? 0n) >= all.events[made - 1]!.sequence);
    for (const w of [all, late, again]) w.cancel();
    expect(end).to.be.at.most(made);
    const seqs = (list: Event[]) => list.map((e) => e.sequence);
    expect(all.events.length).to.equal(made);
    expect(strictlyIncreasing(all.events)).to.equal(true);
    expect(seqs(late.events)).to.deep.equal(seqs(all.events.slice(5)));
    const reconnected = [...first.events, ...again.events].map((e) => e.sequence);
    expect(reconnected).to.deep.equal(seqs(all.events.slice(1)));
  });

  it('prints replayed and live events with cisternctl pool-event --after', async () => {
    const { api, client } = ctx.stack;
    // its own pool, and its own host events: nothing from the tests before it
    await startDirPool(ctx.stack, 'a', 'cli-ev', join(scratch.path, 'cli-ev'));
    const before = watch(client, { pools: ['hosts/a/pools/cli-ev'] });
    await before.ready;
    await createVolume(ctx.stack, 'hosts/a/pools/cli-ev', 'cli-1', '4096');
    await waitFor('the first event', () => before.events.length > 0);
    before.cancel();
    const after = before.events[0]!.sequence - 1n;
    await api.deleteVolume({ name: 'hosts/a/pools/cli-ev/volumes/cli-1', requestId: '' });
    const out = await ctx.stack.cli(['pool-event', '--pool', 'a/cli-ev', '--loop', '--timeout', '2', '--after', String(after)]);
    expect(out.code, out.stderr).to.equal(0);
    expect(out.stdout).to.contain("event 'volume' for storage pool a/cli-ev: vol cli-1 Created");
    expect(out.stdout).to.contain("event 'volume' for storage pool a/cli-ev: vol cli-1 Deleted");
    expect(out.stdout.indexOf('cli-1 Created')).to.be.below(out.stdout.indexOf('cli-1 Deleted'));
    expect(out.stdout, out.stdout).to.match(/event loop timed out\nevents received: \d+\s*$/);

    // host b goes away and comes back; replayed from just before, Offline then Online
    const hostEvents = watch(client, { hosts: ['b'], kinds: [EventKind.HOST_OFFLINE, EventKind.HOST_ONLINE] });
    await hostEvents.ready;
    await ctx.stack.stopAgent('b');
    await ctx.stack.waitForHosts(['b'], { online: false });
    await ctx.stack.addAgent('b');
    await waitFor('HOST_ONLINE of b', () => hostEvents.events.some((e) => e.kind === EventKind.HOST_ONLINE) || hostEvents.failure());
    hostEvents.cancel();
    expect(hostEvents.failure()).to.equal(undefined);
    const hostsAfter = hostEvents.events[0]!.sequence - 1n;
    const hostOnly = await ctx.stack.cli(['pool-event', '--event', 'host', '--loop', '--timeout', '1', '--after', String(hostsAfter)]);
    expect(hostOnly.code, hostOnly.stderr).to.equal(0);
    expect(hostOnly.stdout).to.match(/event 'host' for host b: Offline/);
    expect(hostOnly.stdout).to.match(/event 'host' for host b: Online/);
    expect(hostOnly.stdout.indexOf('host b: Offline')).to.be.below(hostOnly.stdout.indexOf('host b: Online'));
  });

  it('cisternctl pool-event --after 0 replays from the first stored event; --json prints it with integers', async () => {
    const hostKinds = [EventKind.HOST_ONLINE, EventKind.HOST_OFFLINE, EventKind.HOST_DELETED];
    const stored = watch(ctx.stack.client, { fromStart: true, kinds: hostKinds });
    await stored.ready;
    await waitFor('the first host event', () => stored.events.length > 0);
    stored.cancel();
    const first = stored.events[0]!;
    const out = await ctx.stack.cli(['pool-event', '--event', 'host', '--after', '0', '--json']);
    expect(out.code, out.stderr).to.equal(0);
    expect(out.stdout.split('\n')).to.have.length(2);
    expect(out.stdout).to.contain(`{"sequence":${first.sequence},"event":"host",`);
    expect(JSON.parse(out.stdout)).to.deep.include({ host: first.host, pool: '' });
    expect(JSON.parse(out.stdout).hostState).to.deep.include({ name: first.host });
  });

  it('a replaying watcher that ends leaves no consumer behind on nats-server', async () => {
    // closing a consumer's messages only unsubscribes: each one stayed on the server for five
    // minutes (~100 KB), and a client reconnecting its watcher in a loop piled up thousands
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('events test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    // a replay of host b's events reads them on a consumer of its own, filtered to b's subjects
    const ofHostB = async () => {
      const found: string[] = [];
      for await (const c of jsm.consumers.list('CISTERN_EVENTS')) {
        const filters = [c.config.filter_subject, ...(c.config.filter_subjects ?? [])];
        if (filters.includes('cistern.events.b.>')) found.push(c.name);
      }
      return found;
    };
    expect(await ofHostB()).to.deep.equal([]);
    for (let round = 0; round < 3; round++) {
      const w = watch(ctx.stack.client, { fromStart: true, hosts: ['b'] });
      await waitFor("the replay's first event of host b", () => w.events.length > 0 || w.failure());
      w.cancel();
    }
    await waitFor('the replays\' consumers to go', async () => (await ofHostB()).length === 0, { timeoutMs: 20_000 });
    await closeNats();
  });

  it('a definition made while the stream refused events still reaches the stream once it takes them again', async () => {
    // the call succeeds (the catalog holds the change) and its POOL_DEFINED / POOL_UNDEFINED
    // was only logged as lost: nothing else ever publishes a catalog change
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('events test NATS connection', () => nc.close());
    const jsm = await jetstreamManager(nc);
    await ctx.stack.api.definePool({ host: 'b', definition: dirPool('refused-undef', join(scratch.path, 'refused-undef')), xml: '', requestId: '', validate: false });
    const w = watch(ctx.stack.client, { hosts: ['b'], pools: ['refused-def', 'refused-undef'] });
    await w.ready;
    const info = await jsm.streams.info('CISTERN_EVENTS');
    const config = { ...info.config };
    // what a full stream that discards new messages does: every publish is refused
    await jsm.streams.update('CISTERN_EVENTS', { ...config, discard: DiscardPolicy.New, max_msgs: info.state.messages });
    try {
      await ctx.stack.api.definePool({ host: 'b', definition: dirPool('refused-def', join(scratch.path, 'refused-def')), xml: '', requestId: '', validate: false });
      await ctx.stack.api.undefinePool({ name: 'hosts/b/pools/refused-undef', requestId: '' });
      expect(w.events, 'nothing was stored while the stream refused').to.deep.equal([]);
    } finally {
      await jsm.streams.update('CISTERN_EVENTS', config);
    }
    const kinds = () => w.events.map((e) => `${kindName(e)} ${e.pool}`).sort();
    await waitFor('both events', () => kinds().length >= 2 || w.failure());
    // a moment more: a second copy would have come by now
    await new Promise((resolve) => setTimeout(resolve, 1000));
    w.cancel();
    expect(kinds()).to.deep.equal(['POOL_DEFINED refused-def', 'POOL_UNDEFINED refused-undef']);
    await closeNats();
  });

  it("replays an older version's four-token events (cistern.events.H.<pool>) to a pool's, a host's and an unfiltered watcher, as its own", async () => {
    // a stream written before the origin token: a pool replay reads every subject while such
    // events lie ahead of it (docs/events.md, "Older streams"), and its own pool's after them
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('events test NATS connection', () => nc.close());
    const js = jetstream(nc);
    const old = (kind: EventKind) => EventMessage.encode(EventMessage.fromPartial({ kind, host: 'a', pool: 'elder', principal: 'bob', requestId: 'before-upgrade' })).finish();
    const first = (await js.publish('cistern.events.a.elder', old(EventKind.POOL_DEFINED))).seq;
    await js.publish('cistern.events.a.elder', old(EventKind.POOL_STARTED));
    await js.publish('cistern.events.a.other', EventMessage.encode(EventMessage.fromPartial({ kind: EventKind.POOL_STARTED, host: 'a', pool: 'other' })).finish());
    // then this version's events of the pool, an agent's and a coordinator's
    await js.publish('cistern.events.a.elder.a', old(EventKind.POOL_STOPPED));
    await js.publish('cistern.events.a.elder.c', old(EventKind.POOL_UNDEFINED));
    const after = BigInt(first) - 1n;
    const watchers = {
      pool: watch(ctx.stack.client, { afterSequence: after, pools: ['hosts/a/pools/elder'] }),
      anyHostsPool: watch(ctx.stack.client, { afterSequence: after, pools: ['elder'] }),
      host: watch(ctx.stack.client, { afterSequence: after, hosts: ['a'] }),
      all: watch(ctx.stack.client, { afterSequence: after }),
    };
    const elder = (w: (typeof watchers)['pool']) => w.events.filter((e) => e.pool === 'elder').map((e) => kindName(e));
    for (const [name, w] of Object.entries(watchers)) {
      await waitFor(`watcher ${name}`, () => elder(w).length >= 4 || w.failure());
      w.cancel();
      expect(elder(w), name).to.deep.equal(['POOL_DEFINED', 'POOL_STARTED', 'POOL_STOPPED', 'POOL_UNDEFINED']);
      if (name === 'pool' || name === 'anyHostsPool') expect(w.events.every((e) => e.pool === 'elder'), name).to.equal(true);
    }
    await closeNats();
  });

  it('a coordinator that shuts down ends its watchers with UNAVAILABLE, the code clients retry on', async () => {
    // cut after the shutdown's grace period, they used to end CANCELLED: "the caller
    // cancelled" by gRPC convention, which retry policies and resume loops do not retry
    const w = watch(ctx.stack.client, { hosts: ['a'] });
    await w.ready;
    await ctx.stack.restartCoordinator();
    await waitFor('the watcher to end', () => w.ended());
    expect(w.failure()?.code, String(w.failure()?.details)).to.equal(status.UNAVAILABLE);
    expect(w.failure()?.details).to.match(/shutting down.*resumes after the last sequence it received/);
  });
});

describe('event retention (coordinator --event-max-events 25)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--event-max-events', '25'] });
  const scratch = useTempDir('cistern-retention-it-');

  it('drops the oldest events and answers OUT_OF_RANGE with the oldest sequence still available', async () => {
    await startDirPool(ctx.stack, 'a', 'ret', join(scratch.path, 'ret'));
    const w = watch(ctx.stack.client, { pools: ['hosts/a/pools/ret'], kinds: [EventKind.VOLUME_CREATED] });
    await w.ready;
    for (let i = 0; i < 40; i++) await createVolume(ctx.stack, 'hosts/a/pools/ret', `r${i}`, '4096');
    await waitFor('40 events', () => w.events.length >= 40);
    w.cancel();
    const message = await expectCode(
      new Promise((resolve, reject) => {
        const call = ctx.stack.client.watchEvents({ afterSequence: 1n, hosts: [], pools: [], kinds: [], fromStart: false });
        call.on('error', reject);
        call.on('end', resolve);
        call.on('metadata', () => call.cancel());
      }),
      status.OUT_OF_RANGE,
      /oldest available sequence is \d+/,
    );
    const oldest = BigInt(/oldest available sequence is (\d+)/.exec(message)![1]!);
    const lastSeq = w.events.at(-1)!.sequence;
    expect(Number(lastSeq - oldest + 1n)).to.be.at.most(25);
    // from the oldest on, everything retained is there, in order
    const replay = watch(ctx.stack.client, { afterSequence: oldest - 1n });
    await replay.ready;
    await waitFor('the replay to reach the last event', () => replay.events.some((e) => e.sequence === lastSeq) || replay.failure());
    replay.cancel();
    expect(replay.failure()).to.equal(undefined);
    expect(replay.events[0]!.sequence).to.equal(oldest);
    expect(strictlyIncreasing(replay.events)).to.equal(true);
    // a cursor beyond the newest event (from another stream) is refused, not waited on in silence
    await expectCode(
      new Promise((resolve, reject) => {
        const call = ctx.stack.client.watchEvents({ afterSequence: lastSeq + 1_000_000n, hosts: [], pools: [], kinds: [], fromStart: false });
        call.on('error', reject);
        call.on('end', resolve);
        call.on('metadata', () => call.cancel());
      }),
      status.OUT_OF_RANGE,
      /beyond the newest event/,
    );
  });

  it('a watcher that falls behind retention (a burst larger than the stream keeps, more than the shared tail holds) is told OUT_OF_RANGE after the last event it got, never skipped past the removed ones', async () => {
    const nc = await connect({ servers: ctx.stack.natsUrl });
    const closeNats = registerCleanup('events test NATS connection', () => nc.close());
    const received: bigint[] = [];
    let failure: { code: number; details: string } | undefined;
    let ended = false;
    const call = ctx.stack.client.watchEvents({ afterSequence: 0n, hosts: ['a'], pools: [], kinds: [EventKind.OPERATION_PROGRESS], fromStart: false });
    call.on('data', (e: Event) => received.push(e.sequence));
    call.on('error', (e: { code: number; metadata: { get(k: string): unknown[] } }) => {
      ended = true;
      failure = { code: e.code, details: String(e.metadata.get('x-cistern-oldestsequence')[0] ?? '') };
    });
    call.on('end', () => (ended = true));
    await new Promise<void>((resolve, reject) => {
      call.once('metadata', () => resolve());
      call.once('error', reject);
    });
    // the client stops reading: HTTP/2 flow control holds the coordinator back
    call.pause();
    // more events than the shared tail keeps (and the stream keeps 25): progress events of host a
    try {
      const js = jetstream(nc);
      const data = EventMessage.encode(
        EventMessage.fromPartial({ kind: EventKind.OPERATION_PROGRESS, host: 'a', pool: 'ret', volume: 'x', progress: { operation: 'clone', done: 1n, total: 2n } }),
      ).finish();
      const total = DEFAULT_RING_EVENTS + 8_000;
      for (let i = 0; i < total; i += 500) {
        await Promise.all(Array.from({ length: Math.min(500, total - i) }, () => js.publish('cistern.events.a.ret', data)));
      }
      call.resume();
      await waitFor('the watcher to end or reach the newest event', async () => ended || received.length >= total, {
        timeoutMs: 60_000,
        context: () => `received ${received.length}: ${String(received[0])}..${String(received.at(-1))}`,
      });
    } finally {
      call.cancel();
      await closeNats();
    }
    // what it got (if anything: the coordinator's own reader may have fallen behind this burst
    // already) follows its start without a gap; then it is told where the stream now begins
    expect(received.every((seq, i) => i === 0 || seq === received[i - 1]! + 1n), `a gap in what was sent: ${received.length} events, ${String(received[0])}..${String(received.at(-1))}`).to.equal(true);
    expect(failure?.code, `got ${received.length} events, ${String(received[0])}..${String(received.at(-1))}`).to.equal(status.OUT_OF_RANGE);
    expect(BigInt(failure!.details) > (received.at(-1) ?? 0n) + 1n).to.equal(true);
  });
});
