// The real agent process (dist/services/agent/main.js) against a real nats-server,
// driven the way the coordinator drives it: callAgent, the event stream, heartbeats,
// full syncs, the catalog.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import { connectBus } from '../../libs/bus/connect.js';
import { callAgent } from '../../libs/bus/agent-rpc.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { decodeEvent } from '../../libs/bus/events.js';
import { downloadFromAgent, uploadToAgent } from '../../libs/bus/streams.js';
import { EVENT_STREAM, subjects } from '../../libs/bus/subjects.js';
import { AgentRequest, CatalogPool, Heartbeat, HostSync, ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import {
  EventKind,
  PoolDefinition,
  PoolState,
  PoolType,
  VolumeDefinition,
  type Event,
} from '../../libs/proto/cistern/v1/storage.js';
import { CisternError } from '../../libs/errors/errors.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { makeTempDir } from '../support/cleanup.js';
import { startAgent, type AgentHandle } from '../support/services.js';
import { waitFor } from '../support/process.js';

const HOST = 'a';
type Op = NonNullable<AgentRequest['op']>;

describe('agent process (real nats-server)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let agent: AgentHandle;
  let root: string;
  const events: Event[] = [];
  const heartbeats: Heartbeat[] = [];
  let hbSub: Subscription;
  let stopEvents: (() => Promise<void>) | undefined;

  const poolDef = (name: string) =>
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name, target: { path: join(root, name) } });

  const call = (pool: PoolDefinition | undefined, op: Op, extra: Partial<AgentRequest> = {}) => {
    const req = AgentRequest.fromPartial({ principal: 'tester', requestId: '', pool, ...extra });
    req.op = op;
    return callAgent(nc, HOST, req, { timeoutMs: 20_000 });
  };

  async function failure(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (err) {
      return `${(err as CisternError).code}: ${(err as Error).message}`;
    }
    return 'OK';
  }

  async function launchAgent(): Promise<AgentHandle> {
    const handle = await startAgent({ natsUrl: nats.url, hostId: HOST, root, args: ['--heartbeat-ms', '200', '--log-level', 'debug'] });
    await waitFor('the agent to answer a ping', async () => {
      const reply = await call(undefined, { $case: 'ping', value: {} }, {});
      return reply.result?.$case === 'pong' && reply.result.value.hostId === HOST;
    }, { timeoutMs: 20_000, intervalMs: 100, context: () => handle.process.logTail() });
    return handle;
  }

  const eventsAfter = (seq: bigint) => events.filter((e) => e.sequence > seq);
  const waitForEvent = (what: string, pred: (e: Event) => boolean) =>
    waitFor(what, () => events.find(pred), { timeoutMs: 20_000, context: () => agent.process.logTail() });

  before(async () => {
    nats = await startNats();
    root = join(makeTempDir('cistern-agent-it-').path, 'root');
    nc = await connectBus({ servers: nats.url, name: 'agent-it' });
    hbSub = nc.subscribe(subjects.heartbeat(HOST), { callback: (_e, m) => {
      heartbeats.push(Heartbeat.decode(m.data));
    } });
    agent = await launchAgent();
    // the agent answers pings (refusing a second agent of its host id) before it has made the
    // event stream: wait for the stream too
    const jsm = await jetstreamManager(nc);
    await waitFor('the agent to make the event stream', async () => !!(await jsm.streams.info(EVENT_STREAM).catch(() => undefined)), { timeoutMs: 20_000 });
    // every event of this host from the start of the stream, in order
    const consumer = await jetstream(nc).consumers.get(EVENT_STREAM, {
      filter_subjects: subjects.eventsOfHost(HOST), // one subject: nats-server 2.9 has no multi-filter
      deliver_policy: DeliverPolicy.All,
    });
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) events.push(decodeEvent(m.data, m.seq));
    })();
    stopEvents = async () => void (await messages.close());
  });

  after(async () => {
    await stopEvents?.();
    hbSub?.unsubscribe();
    await agent?.stop();
    await nc?.close();
    await nats?.stop();
  });

  it('heartbeats arrive with the host, its pool types and one boot id', async () => {
    const beats = await waitFor('two heartbeats', () => (heartbeats.length >= 2 ? heartbeats.slice(0, 2) : undefined));
    for (const hb of beats) {
      expect(hb.host?.hostId).to.equal(HOST);
      expect(hb.host?.name).to.equal('hosts/a');
      expect(hb.host?.online).to.equal(true);
      expect(hb.host?.poolTypes).to.include(PoolType.POOL_TYPE_DIR);
      expect(hb.intervalMs).to.equal(200);
    }
    expect(beats[0]!.bootId).to.not.equal(0n);
    expect(beats[1]!.bootId).to.equal(beats[0]!.bootId);
    // its start line names the pool types as pool XML spells them, not as enum numbers
    const serving = agent.process.logs().split('\n').find((l) => l.includes('"msg":"agent serving"'));
    expect((JSON.parse(serving!) as { backends: unknown[] }).backends).to.include.members(['dir', 'fs', 'iscsi-direct']);
  });

  it('a second agent with the same host id refuses to start (exit 2, naming the one that serves it), touching nothing; the first keeps serving', async () => {
    const bootId = heartbeats[heartbeats.length - 1]!.bootId;
    const otherRoot = join(makeTempDir('cistern-agent-it-twin-').path, 'root');
    const twin = await startAgent({ natsUrl: nats.url, hostId: HOST, root: otherRoot, args: ['--heartbeat-ms', '200'] });
    const exit = await Promise.race([twin.process.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
    const stderr = twin.process.logs();
    await twin.stop();
    expect(exit, stderr).to.deep.equal({ code: 2, signal: null });
    expect(stderr).to.contain(`cistern-agent: another agent already serves host 'a' (on ${hostname()}, boot id ${bootId}): stop it first, or give this agent another --host-id`);
    expect(readdirSync(otherRoot), 'nothing written under its root').to.deep.equal([]);
    const seen = heartbeats.length;
    const reply = await call(undefined, { $case: 'ping', value: {} });
    expect(reply.result?.$case === 'pong' && reply.result.value.bootId).to.equal(bootId);
    await waitFor('the first agent to heartbeat on', () => heartbeats.length >= seen + 2);
    expect(new Set(heartbeats.map((h) => h.bootId))).to.deep.equal(new Set([bootId]));
  });

  it('creates a dir pool (build + start), volumes in it, and publishes each change as an ordered event', async () => {
    const def = poolDef('p1');
    const created = await call(def, { $case: 'createPool', value: { host: HOST, definition: def, xml: '', build: true, buildFlags: undefined, requestId: 'r-create' } }, { requestId: 'r-create' });
    const pool = created.result?.$case === 'pool' ? created.result.value : undefined;
    expect(pool?.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect((pool?.capacity ?? 0n) > 0n, 'pool capacity').to.equal(true);
    expect(statSync(join(root, 'p1')).isDirectory()).to.equal(true);
    expect(created.eventSequence > 0n, 'created.eventSequence > 0n').to.equal(true);

    const vdef = VolumeDefinition.fromPartial({ name: 'v1', capacity: 1n << 20n, target: { format: 'raw' } });
    const reply = await call(def, { $case: 'createVolume', value: { parent: 'hosts/a/pools/p1', definition: vdef, xml: '', preallocMetadata: false, requestId: 'r-vol', validate: false } }, { requestId: 'r-vol' });
    const vol = reply.result?.$case === 'volume' ? reply.result.value : undefined;
    expect(vol?.name).to.equal('hosts/a/pools/p1/volumes/v1');
    expect(vol?.definition?.key).to.equal(join(root, 'p1', 'v1'));
    expect(vol?.definition?.capacity).to.equal(1n << 20n);
    expect(statSync(join(root, 'p1', 'v1')).size).to.equal(1 << 20);
    expect(reply.eventSequence > created.eventSequence, 'reply.eventSequence > created.eventSequence').to.equal(true);

    const dup = await failure(call(def, { $case: 'createVolume', value: { parent: 'hosts/a/pools/p1', definition: vdef, xml: '', preallocMetadata: false, requestId: '', validate: false } }));
    expect(dup).to.equal("ALREADY_EXISTS: storage volume 'v1' exists already");

    const ev = await waitForEvent('VOLUME_CREATED v1', (e) => e.kind === EventKind.VOLUME_CREATED && e.volume === 'v1');
    expect(ev.sequence).to.equal(reply.eventSequence);
    expect(ev.requestId).to.equal('r-vol');
    expect(ev.principal).to.equal('tester');
    expect(ev.volumeState?.definition?.key).to.equal(join(root, 'p1', 'v1'));
    expect(ev.poolState?.volumeCount).to.equal(1);
    const kinds = events.filter((e) => e.pool === 'p1' && e.kind !== EventKind.OPERATION_PROGRESS).map((e) => EventKind[e.kind]);
    // the build inside a create sends no POOL_CREATED, as libvirt's storagePoolCreateXML
    expect(kinds).to.deep.equal(['POOL_STARTED', 'VOLUME_CREATED']);
    const seqs = events.map((e) => e.sequence);
    expect(seqs).to.deep.equal([...seqs].sort((x, y) => (x < y ? -1 : 1)));
    const revisions = events.filter((e) => e.pool === 'p1' && e.poolState).map((e) => e.poolState!.revision);
    expect(revisions).to.deep.equal([...revisions].sort((x, y) => (x < y ? -1 : 1)));
  });

  it('a refresh finds a file dropped in by hand and publishes only that change', async () => {
    const def = poolDef('p1');
    writeFileSync(join(root, 'p1', 'by-hand.img'), Buffer.alloc(4096, 1));
    const before = events.length ? events[events.length - 1]!.sequence : 0n;
    const reply = await call(def, { $case: 'refreshPool', value: { name: 'hosts/a/pools/p1', requestId: '' } });
    // only what changed: v1 is in the coordinator's cache already
    expect(reply.volumesComplete).to.equal(false);
    expect(reply.volumes.map((v) => v.definition?.name)).to.deep.equal(['by-hand.img']);
    await waitForEvent('POOL_REFRESHED', (e) => e.kind === EventKind.POOL_REFRESHED && e.sequence > before);
    const got = eventsAfter(before).map((e) => [EventKind[e.kind], e.volume]);
    expect(got).to.deep.equal([
      ['VOLUME_CHANGED', 'by-hand.img'],
      ['POOL_REFRESHED', ''],
    ]);
    const changed = eventsAfter(before)[0]!;
    expect(changed.volumeState?.definition?.capacity).to.equal(4096n);
    expect(changed.volumeState?.definition?.target?.format).to.equal('raw');
  });

  it('uploads then downloads the same bytes, and deletes the volume', async () => {
    const def = poolDef('p1');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const vdef = VolumeDefinition.fromPartial({ name: 'blob', capacity: BigInt(data.length), target: { format: 'raw' } });
    await call(def, { $case: 'createVolume', value: { parent: 'hosts/a/pools/p1', definition: vdef, xml: '', preallocMetadata: false, requestId: '', validate: false } });
    const up = AgentRequest.fromPartial({ principal: 'tester', pool: def });
    up.op = { $case: 'uploadBegin', value: { volume: 'blob', offset: 0n, length: 0n, sparse: false } };
    async function* chunks() {
      for (let at = 0; at < data.length; at += 700_000) yield data.subarray(at, at + 700_000);
    }
    const result = await uploadToAgent(nc, HOST, up, chunks());
    expect(result.bytesWritten).to.equal(BigInt(data.length));
    expect(result.eventSequence > 0n, 'result.eventSequence > 0n').to.equal(true);
    const uploaded = await waitForEvent('VOLUME_UPLOADED', (e) => e.kind === EventKind.VOLUME_UPLOADED && e.volume === 'blob');
    // then the pool's refresh (libvirt refreshes the pool after an upload): the answer covers it
    const refreshed = await waitForEvent('POOL_REFRESHED', (e) => e.kind === EventKind.POOL_REFRESHED && e.sequence > uploaded.sequence);
    expect(refreshed.sequence).to.equal(result.eventSequence);

    const down = AgentRequest.fromPartial({ principal: 'tester', pool: def });
    down.op = { $case: 'downloadBegin', value: { volume: 'blob', offset: 0n, length: 0n, deliverSubject: '', window: 0 } };
    const parts: Buffer[] = [];
    for await (const part of downloadFromAgent(nc, HOST, down)) parts.push(part);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(Buffer.concat(parts))).to.equal(sha(data));

    const del = await call(def, { $case: 'deleteVolume', value: { name: 'hosts/a/pools/p1/volumes/blob', requestId: '' } });
    expect(del.result?.$case).to.equal('done');
    expect(existsSync(join(root, 'p1', 'blob'))).to.equal(false);
    const gone = await waitForEvent('VOLUME_DELETED blob', (e) => e.kind === EventKind.VOLUME_DELETED && e.volume === 'blob');
    expect(gone.sequence).to.equal(del.eventSequence);
    expect(await failure(call(def, { $case: 'deleteVolume', value: { name: 'hosts/a/pools/p1/volumes/blob', requestId: '' } }))).to.match(/^NOT_FOUND/);
  });

  it('volume work on a pool that is not active is FAILED_PRECONDITION and touches nothing', async () => {
    const def = poolDef('never-started');
    const vdef = VolumeDefinition.fromPartial({ name: 'x', capacity: 1024n });
    const err = await failure(call(def, { $case: 'createVolume', value: { parent: 'hosts/a/pools/never-started', definition: vdef, xml: '', preallocMetadata: false, requestId: '', validate: false } }));
    expect(err).to.equal("FAILED_PRECONDITION: storage pool 'never-started' is not active");
    expect(existsSync(join(root, 'never-started'))).to.equal(false);
  });

  it('answers a resync request with HostSync chunks holding its pools and volumes', async () => {
    const chunks: HostSync[] = [];
    const sub = nc.subscribe(subjects.sync(HOST), { callback: (_e, m) => {
      chunks.push(HostSync.decode(m.data));
    } });
    try {
      await nc.flush();
      nc.publish(subjects.resync, ResyncRequest.encode({ coordinatorId: 'it', host: HOST }).finish());
      const last = await waitFor('the last sync chunk', () => chunks.find((c) => c.last));
      const mine = chunks.filter((c) => c.syncId === last.syncId);
      expect(mine.map((c) => c.chunk)).to.deep.equal(mine.map((_c, i) => i));
      expect(mine[0]!.host?.hostId).to.equal(HOST);
      expect(mine.flatMap((c) => c.pools).map((p) => p.name)).to.deep.equal(['hosts/a/pools/p1']);
      expect(mine.flatMap((c) => c.volumes).map((v) => v.definition?.name).sort()).to.deep.equal(['by-hand.img', 'v1']);
    } finally {
      sub.unsubscribe();
    }
  });

  it('sends a full sync by itself after the NATS server restarts, and keeps serving', async () => {
    const syncsBefore = (agent.process.logs().match(/"reason":"reconnect"/g) ?? []).length;
    await nats.restart();
    await waitFor('a full sync after the reconnect', () => (agent.process.logs().match(/"reason":"reconnect"/g) ?? []).length > syncsBefore, {
      timeoutMs: 30_000,
      context: () => agent.process.logTail(),
    });
    const reply = await waitFor('the agent to answer again', async () => {
      const r = await call(undefined, { $case: 'ping', value: {} });
      return r.result?.$case === 'pong' ? r : undefined;
    });
    expect(reply.result?.$case).to.equal('pong');
    const def = poolDef('p1');
    const after = await call(def, { $case: 'refreshPool', value: { name: 'hosts/a/pools/p1', requestId: '' } });
    // the pool and both its volumes are still there; nothing changed, so none is re-sent
    expect(after.result?.$case === 'pool' && after.result.value.volumeCount).to.equal(2);
    expect(after.volumes).to.deep.equal([]);
  });

  it('after a restart, starts the catalog pools marked autostart by itself and keeps the running transient pool that is still up', async () => {
    const auto = poolDef('auto');
    mkdirSync(join(root, 'auto'), { recursive: true });
    writeFileSync(join(root, 'auto', 'kept.img'), Buffer.alloc(8192));
    const catalog = await Catalog.open(nc);
    await catalog.create(HOST, 'auto', CatalogPool.create({ definition: auto, autostart: true, persistent: true }));
    await catalog.create(HOST, 'manual', CatalogPool.create({ definition: poolDef('manual'), autostart: false, persistent: true }));

    const oldBoot = heartbeats[heartbeats.length - 1]!.bootId;
    const status = await agent.process.stop();
    expect(status.code).to.equal(0); // SIGTERM: drained and exited cleanly
    agent = await launchAgent();

    const started = await waitForEvent('POOL_STARTED auto', (e) => e.kind === EventKind.POOL_STARTED && e.pool === 'auto');
    expect(started.poolState?.autostart).to.equal(true);
    expect(started.poolState?.persistent).to.equal(true);
    expect(started.principal).to.equal('agent');
    await waitForEvent('VOLUME_CHANGED kept.img', (e) => e.kind === EventKind.VOLUME_CHANGED && e.pool === 'auto' && e.volume === 'kept.img');
    await waitFor('a heartbeat with a new boot id', () => heartbeats.some((h) => h.bootId !== oldBoot));

    const chunks: HostSync[] = [];
    const sub = nc.subscribe(subjects.sync(HOST), { callback: (_e, m) => {
      chunks.push(HostSync.decode(m.data));
    } });
    try {
      await nc.flush();
      nc.publish(subjects.resync, ResyncRequest.encode({ coordinatorId: 'it', host: '' }).finish());
      const last = await waitFor('the last sync chunk', () => chunks.find((c) => c.last));
      const pools = chunks.filter((c) => c.syncId === last.syncId).flatMap((c) => c.pools);
      // p1, transient and running before the restart, its directory still there: running, as
      // libvirtd keeps it over its own restart (restore.ts)
      expect(pools.map((p) => [p.name, p.persistent]).sort()).to.deep.equal([['hosts/a/pools/auto', true], ['hosts/a/pools/p1', false]]);
      const synced = pools.find((p) => p.name === 'hosts/a/pools/auto')!;
      expect(synced.revision >= started.poolState!.revision, 'sync revision not older than the event').to.equal(true);
    } finally {
      sub.unsubscribe();
    }

    const stopped = await call(auto, { $case: 'stopPool', value: { name: 'hosts/a/pools/auto', requestId: '' } });
    expect(stopped.result?.$case === 'pool' && stopped.result.value.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await waitForEvent('POOL_STOPPED auto', (e) => e.kind === EventKind.POOL_STOPPED && e.pool === 'auto');
    expect(await failure(call(auto, { $case: 'deletePool', value: { name: 'hosts/a/pools/auto', requestId: '' } }))).to.match(
      /^INTERNAL|^FAILED_PRECONDITION/, // not empty: rmdir refuses, like libvirt
    );
  });
});
