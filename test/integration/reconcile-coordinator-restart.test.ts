// A host that changed while it was away comes back to a coordinator that never synced it: every
// coordinator restarted meanwhile, or its agent restarted while none ran. The coordinators take
// the host's state from its full sync; the stream must say what changed too (docs/events.md,
// "Host liveness and reconciliation"), or a reader that builds its state from the stream
// (WatchEvents, a direct NATS reader) stays wrong for good. Each case reads host b's events
// straight from the stream, folds them as a plain reader would (in stream order, no revisions)
// and compares that with what the API says.
import { expect } from 'chai';
import { rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startAgent, useStack, useTempDir, waitFor } from '../support/index.js';
import { Event, EventKind, PoolState } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, dirPool } from './reliability-helpers.js';

const STREAM = 'CISTERN_EVENTS';

/** Every stored event of `host`, in stream order, up to the stream's end now. */
async function hostEvents(nc: NatsConnection, host: string): Promise<Event[]> {
  const jsm = await jetstreamManager(nc);
  const last = await jsm.streams.getMessage(STREAM, { last_by_subj: `cistern.events.${host}.>` });
  if (!last) return [];
  const consumer = await jetstream(nc).consumers.get(STREAM, { deliver_policy: DeliverPolicy.All, filter_subjects: `cistern.events.${host}.>` });
  const messages = await consumer.consume();
  const events: Event[] = [];
  const timer = setTimeout(() => void messages.close(), 20_000);
  try {
    for await (const m of messages) {
      const e = Event.decode(m.data);
      e.sequence = BigInt(m.seq);
      events.push(e);
      if (m.seq >= last.seq) break;
    }
  } finally {
    clearTimeout(timer);
    await messages.close().catch(() => undefined);
  }
  return events;
}

/** What a reader that applies a host's events in stream order believes runs: pool -> volume names. */
function fold(events: readonly Event[]): Map<string, Set<string>> {
  const pools = new Map<string, Set<string>>();
  for (const e of events) {
    switch (e.kind) {
      case EventKind.POOL_STARTED:
      case EventKind.POOL_REFRESHED:
        if (!pools.has(e.pool)) pools.set(e.pool, new Set());
        break;
      case EventKind.POOL_STOPPED:
      case EventKind.POOL_DELETED:
        pools.delete(e.pool);
        break;
      case EventKind.VOLUME_CREATED:
      case EventKind.VOLUME_CHANGED:
      case EventKind.VOLUME_RESIZED:
      case EventKind.VOLUME_WIPED:
      case EventKind.VOLUME_UPLOADED:
        pools.get(e.pool)?.add(e.volume);
        break;
      case EventKind.VOLUME_DELETED:
        pools.get(e.pool)?.delete(e.volume);
        break;
      default:
        break;
    }
  }
  return pools;
}

const show = (events: readonly Event[]): string[] => events.map((e) => `${EventKind[e.kind]} ${e.pool}/${e.volume}`);

describe('a host that changed while away, back to coordinators that never synced it (real nats-server, coordinator, agents a and b)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-reconcile-restart-it-');
  let nc: NatsConnection;

  before(async () => {
    nc = await connect({ servers: ctx.stack.natsUrl });
  });
  after(async () => {
    await nc?.close();
  });

  /** Pools p1 and p2 on b, p2 with volumes keep.img and gone.img; their directories. */
  async function poolsOnB(tag: string): Promise<{ p1: string; p2: string; dir1: string; dir2: string }> {
    const { api } = ctx.stack;
    const p1 = `${tag}1`;
    const p2 = `${tag}2`;
    const dir1 = join(scratch.path, p1);
    const dir2 = join(scratch.path, p2);
    for (const [name, dir] of [
      [p1, dir1],
      [p2, dir2],
    ] as const) {
      await api.definePool({ host: 'b', definition: dirPool(name, dir), xml: '', requestId: '', validate: false });
      await api.startPool({ name: `hosts/b/pools/${name}`, build: true, buildFlags: undefined, requestId: '' });
    }
    for (const v of ['keep.img', 'gone.img']) await createVolume(ctx.stack, `hosts/b/pools/${p2}`, v, '4096');
    return { p1, p2, dir1, dir2 };
  }

  /** While b is away: p1's directory removed, byhand.img written into p2, gone.img deleted. */
  function changeOnDisk(dir1: string, dir2: string): void {
    rmSync(dir1, { recursive: true });
    writeFileSync(join(dir2, 'byhand.img'), Buffer.alloc(8192, 7));
    unlinkSync(join(dir2, 'gone.img'));
  }

  /**
   * The stream, folded, says what the API says of b's pools p1 and p2: the reconcile events of
   * b's return are in it, before b's HOST_ONLINE (a host back from offline, or on a new boot
   * whichever of its sync and its first heartbeat came first).
   */
  async function expectStreamAgrees(p1: string, p2: string, since: bigint): Promise<void> {
    const { api } = ctx.stack;
    const pools = (await api.listPools({ host: 'b', types: [], pageSize: 0, pageToken: '' })).pools;
    const running = pools.filter((p) => p.state === PoolState.POOL_STATE_RUNNING).map((p) => p.definition?.name);
    expect(running).to.include(p2);
    expect(running).not.to.include(p1);
    const volumes = (await api.listVolumes({ parent: `hosts/b/pools/${p2}`, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name);
    expect(volumes).to.deep.equal(['byhand.img', 'keep.img']);

    const wanted = [`POOL_STOPPED ${p1}/`, `VOLUME_DELETED ${p2}/gone.img`, `VOLUME_CHANGED ${p2}/byhand.img`];
    let recent: Event[] = [];
    const events = await waitFor(
      "b's reconcile events in the stream",
      async () => {
        const all = await hostEvents(nc, 'b');
        recent = all.filter((e) => e.sequence > since);
        const reconciled = show(recent.filter((e) => e.requestId.startsWith('reconcile-')));
        const there = wanted.every((w) => reconciled.includes(w)) && recent.some((e) => e.kind === EventKind.HOST_ONLINE);
        return there ? all : undefined;
      },
      { timeoutMs: 20_000, context: () => show(recent).join('; ') },
    );
    const onlineAt = recent.findIndex((e) => e.kind === EventKind.HOST_ONLINE);
    const reconciled = recent.filter((e) => e.requestId.startsWith('reconcile-'));
    expect(show(recent.slice(0, onlineAt)), 'before HOST_ONLINE').to.include.members(wanted);
    // one sync's reconcile, by the coordinator
    expect(new Set(reconciled.map((e) => `${e.requestId} ${e.principal}`)).size).to.equal(1);
    expect(reconciled[0]!.principal).to.equal('coordinator');
    const view = fold(events);
    expect(view.has(p1), `a reader of the stream thinks ${p1} runs: ${show(recent).join('; ')}`).to.equal(false);
    expect([...(view.get(p2) ?? [])].sort(), show(recent).join('; ')).to.deep.equal(['byhand.img', 'keep.img']);
  }

  const streamEnd = async (): Promise<bigint> => BigInt((await (await jetstreamManager(nc)).streams.info(STREAM)).state.last_seq);

  it('every coordinator restarted while the host was offline: its return publishes what changed, before HOST_ONLINE', async () => {
    const { p1, p2, dir1, dir2 } = await poolsOnB('off');
    await ctx.stack.stopAgent('b');
    await ctx.stack.waitForHosts(['b'], { online: false });
    changeOnDisk(dir1, dir2);
    const since = await streamEnd();
    await ctx.stack.restartCoordinator();
    await ctx.stack.addAgent('b');
    await expectStreamAgrees(p1, p2, since);
  });

  it('the agent restarted while no coordinator ran: its return publishes what changed, before HOST_ONLINE', async () => {
    const { p1, p2, dir1, dir2 } = await poolsOnB('gap');
    const root = ctx.stack.roots.b!;
    // no coordinator: the host stays recorded online, with the boot of the agent that stops now
    await ctx.stack.coordinator.stop();
    await ctx.stack.stopAgent('b');
    changeOnDisk(dir1, dir2);
    const agent = await startAgent({ natsUrl: ctx.stack.natsUrl, hostId: 'b', root, args: ['--heartbeat-ms', '300'] });
    ctx.stack.agents.set('b', agent); // (the stack stops it at the end)
    await waitFor('the agent of b to serve', () => agent.process.logs().includes('"msg":"agent serving"'));
    const since = await streamEnd();
    await ctx.stack.restartCoordinator();
    await ctx.stack.waitForHosts(['a', 'b']);
    await expectStreamAgrees(p1, p2, since);
  });
});
