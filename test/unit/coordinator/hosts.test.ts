// The host registry's decisions, on a simulated clock: when a host is online or offline,
// and when it is asked for a full sync. A sync chunk is a sign of life; a host is never
// asked again while its sync is on the way; asks that get no answer back off.
import { expect } from 'chai';
import { Heartbeat } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, Host, PoolType, type Event } from '../../../libs/proto/cistern/v1/storage.js';
import type { HostRecordEntry } from '../../../libs/bus/catalog.js';
import { HostRegistry } from '../../../services/coordinator/hosts.js';
import { MAX_DELETED_REMEMBERED } from '../../../services/coordinator/hosts/deleted-boots.js';
import { MAX_SYNC_ASK_BACKOFF_MS } from '../../../services/coordinator/hosts/sync-asks.js';
import type { HostStore } from '../../../services/coordinator/hosts/records.js';
import { FailedPreconditionError, UnavailableError } from '../../../libs/errors/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../libs/log/logger.js';

const INTERVAL = 2000;

/**
 * The catalog bucket's host records as the real one behaves (libs/bus/catalog.ts): one
 * revision counter, writes compare-and-swap on a key's last revision, deletion markers, and
 * followers that get every change in order, when the test delivers them (deliver()): a
 * follower may lag, as a KV watch does.
 */
class FakeHostRecords {
  private revision = 0;
  readonly last = new Map<string, HostRecordEntry>();
  private readonly followers: Array<{ queue: HostRecordEntry[]; onChange: (e: HostRecordEntry) => void }> = [];

  constructor(records: Heartbeat[] = []) {
    for (const r of records) this.append({ host: r.host!.hostId, revision: 0, record: r });
  }

  private append(e: HostRecordEntry): number {
    const entry = { ...e, revision: ++this.revision };
    this.last.set(e.host, entry);
    for (const f of this.followers) f.queue.push(entry);
    return entry.revision;
  }

  /** Delivers every change so far to every follower. */
  deliver(): void {
    for (const f of this.followers) for (const e of f.queue.splice(0)) f.onChange(e);
  }

  store(saved: Heartbeat[] = []): HostStore {
    return {
      load: async () => ({ entries: [...this.last.values()], revision: this.revision }),
      save: async (record, expected) => {
        saved.push(record);
        const current = this.last.get(record.host!.hostId);
        if ((current?.revision ?? 0) !== expected) return { current };
        return { revision: this.append({ host: record.host!.hostId, revision: 0, record }) };
      },
      remove: async (host, expected) => {
        const current = this.last.get(host);
        if ((current?.revision ?? 0) !== expected) return { current };
        return { revision: this.append({ host, revision: 0, record: undefined }) };
      },
      follow: async (after, onChange) => {
        const f = { queue: [] as HostRecordEntry[], onChange };
        this.followers.push(f);
        return { stop: () => void this.followers.splice(this.followers.indexOf(f), 1) };
      },
    };
  }
}

/** Lets the registry's pending store writes (promises) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup(opts: { random?: () => number; records?: Heartbeat[]; kv?: FakeHostRecords; log?: Logger } = {}) {
  let now = 1_000_000;
  const asked: Array<{ host: string; at: number }> = [];
  const events: Event[] = [];
  const saved: Heartbeat[] = [];
  const forgotten: string[] = [];
  const pending = new Set<string>();
  const kv = opts.kv ?? new FakeHostRecords(opts.records);
  const store = kv.store(saved);
  const hosts = new HostRegistry({
    log: opts.log ?? silentLogger,
    now: () => now,
    random: opts.random ?? (() => 0),
    store,
    publish: async (e) => events.push(e),
    askSync: (host) => asked.push({ host, at: now }),
    syncPending: (host) => pending.has(host),
    onForget: (host) => forgotten.push(host),
  });
  const beat = (id: string, bootId = 1n, intervalMs = INTERVAL): void =>
    hosts.onHeartbeat(Heartbeat.fromPartial({ host: { hostId: id, hostname: `${id}.example` }, bootId, intervalMs }));
  /** Moves the clock in steps of the registry's timer, heartbeating `beating` hosts every interval. */
  const run = (ms: number, beating: string[] = [], each?: (at: number) => void): void => {
    const end = now + ms;
    let nextBeat = now + INTERVAL;
    while (now < end) {
      now = Math.min(end, now + 250);
      if (now >= nextBeat) {
        for (const id of beating) beat(id);
        nextBeat += INTERVAL;
      }
      each?.(now);
      hosts.tick();
    }
  };
  /** Heartbeat and full sync: online, as after a normal start. */
  const bringUp = (id: string): void => {
    beat(id);
    hosts.onSync(id, undefined, `first-${id}`);
  };
  /** The clock moves with no turn of the registry's timer: the process stood still (SIGSTOP). */
  const standStill = (ms: number): void => {
    now += ms;
  };
  return { hosts, kv, asked, events, saved, forgotten, pending, beat, run, bringUp, standStill, clock: () => now };
}

const kinds = (events: Event[]) => events.map((e) => `${EventKind[e.kind]} ${e.host}`);

describe('host registry: liveness and full sync asks', () => {
  it('a sync chunk is a sign of life: a host whose heartbeats are stuck behind its sync stays online', () => {
    const t = setup();
    t.bringUp('a');
    t.bringUp('b');
    // no heartbeats for 10 s (three intervals are 6 s); a's sync chunks keep arriving
    t.run(10_000, [], (at) => {
      if (at % 1000 === 0) t.hosts.onSyncChunk('a');
    });
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.hosts.isOnline('b')).to.equal(false);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_ONLINE b', 'HOST_OFFLINE b']);
  });

  it('a host that comes back is asked for its sync once, and not again while its chunks arrive or wait in the intake', () => {
    const t = setup();
    t.bringUp('a');
    t.run(8000); // heartbeats stopped: offline
    expect(t.hosts.isOnline('a')).to.equal(false);
    t.beat('a'); // back, same agent
    expect(t.asked.map((x) => x.host)).to.deep.equal(['a']);
    expect(t.hosts.isReturning('a')).to.equal(true);
    // its answer arrives and sits in the intake behind other hosts' syncs for a minute
    t.hosts.onSyncChunk('a');
    t.pending.add('a');
    t.run(60_000, ['a']);
    expect(t.asked).to.have.length(1);
    expect(t.hosts.isOnline('a')).to.equal(false);
    t.pending.delete('a');
    t.hosts.onSync('a', undefined, 's2');
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a', 'HOST_ONLINE a']);
    t.run(30_000, ['a']);
    expect(t.asked).to.have.length(1);
  });

  it('asks again when no sync comes, backing off exponentially up to the cap', () => {
    const t = setup({ random: () => 0 });
    t.bringUp('a');
    t.run(8000);
    t.beat('a');
    t.run(6 * 60_000, ['a']);
    const gaps = t.asked.slice(1).map((x, i) => x.at - t.asked[i]!.at);
    const base = 3 * INTERVAL;
    expect(gaps.slice(0, 6)).to.deep.equal([base, 2 * base, 4 * base, 8 * base, MAX_SYNC_ASK_BACKOFF_MS, MAX_SYNC_ASK_BACKOFF_MS]);
    expect(gaps.every((g) => g <= MAX_SYNC_ASK_BACKOFF_MS)).to.equal(true);
  });

  it('the backoff has jitter, never below the step and never above the cap', () => {
    const t = setup({ random: () => 0.999 });
    t.bringUp('a');
    t.run(8000);
    t.beat('a');
    t.run(6 * 60_000, ['a']);
    const gaps = t.asked.slice(1).map((x, i) => x.at - t.asked[i]!.at);
    const base = 3 * INTERVAL;
    expect(gaps[0]).to.be.within(1.45 * base, 1.55 * base);
    expect(gaps[1]).to.be.within(2.9 * base, 3.1 * base);
    expect(Math.max(...gaps)).to.be.at.most(MAX_SYNC_ASK_BACKOFF_MS);
  });

  it('after a fleet-wide ask nobody is asked by name while the answers can still come; a host whose answer does not come is, after the backoff', async () => {
    const record = (id: string, online: boolean) => Heartbeat.fromPartial({ host: Host.fromPartial({ hostId: id, online }), bootId: 1n, intervalMs: INTERVAL });
    const t = setup({ records: [record('a', true), record('b', true), record('c', false)] });
    await t.hosts.load(); // a restarted coordinator
    t.hosts.askedFleet();
    t.beat('c'); // recorded offline, heartbeats again: it got the fleet-wide ask too
    // a's answer arrived and waits in the intake; b's and c's do not come
    t.hosts.onSyncChunk('a');
    t.pending.add('a');
    t.run(5000, ['a', 'b', 'c']);
    expect(t.asked).to.deep.equal([]);
    t.run(3000, ['a', 'b', 'c']);
    expect(t.asked.map((x) => x.host).sort()).to.deep.equal(['b', 'c']);
    expect(t.hosts.isOnline('a') && t.hosts.isOnline('b')).to.equal(true);
    expect(t.hosts.isOnline('c')).to.equal(false);
  });

  it('while the answers to a fleet-wide ask stream in, no host is asked again by name; once they stop, the missing ones are', async () => {
    const record = (id: string) => Heartbeat.fromPartial({ host: Host.fromPartial({ hostId: id, online: true }), bootId: 1n, intervalMs: INTERVAL });
    const t = setup({ records: ['a', 'b', 'c'].map(record) });
    await t.hosts.load();
    t.hosts.askedFleet();
    // for 30 s other hosts' answers keep arriving (a's, one chunk a second); b's and c's are behind them
    t.run(30_000, ['a', 'b', 'c'], (at) => {
      if (at % 1000 === 0) t.hosts.onSyncChunk('a');
    });
    expect(t.asked).to.deep.equal([]);
    t.hosts.onSync('a', undefined, 'a1');
    t.run(10_000, ['a', 'b', 'c']);
    expect(t.asked.map((x) => x.host).sort()).to.deep.equal(['b', 'c']);
  });

  it('what an agent says of its host is kept escaped and bounded: no terminal escapes, bidi controls or megabytes reach host-list', () => {
    const t = setup();
    t.hosts.onHeartbeat(
      Heartbeat.fromPartial({
        host: { hostId: 'odd', hostname: 'a\x1b]0;owned\x07\u202eb', agentVersion: `1.0${'\n'.repeat(3)}${'v'.repeat(10_000)}`, poolTypes: Array.from({ length: 50_000 }, () => PoolType.POOL_TYPE_DIR) },
        bootId: 1n,
        intervalMs: INTERVAL,
      }),
    );
    const host = t.hosts.get('odd')!.host;
    expect(host.hostname).to.equal('a\\x1b]0;owned\\x07\\u202eb');
    expect(host.agentVersion.startsWith('1.0\\x0a\\x0a\\x0av')).to.equal(true);
    expect(host.agentVersion.length).to.be.at.most(80);
    expect(host.poolTypes).to.deep.equal([PoolType.POOL_TYPE_DIR]);
  });

  it('a host never seen is not asked at once (its agent sends a sync when it starts), only when none comes', () => {
    const t = setup();
    t.beat('new');
    expect(t.asked).to.deep.equal([]);
    expect(t.hosts.isOnline('new')).to.equal(false);
    t.run(6000, ['new']);
    expect(t.asked.map((x) => x.host)).to.deep.equal(['new']);
    t.hosts.onSync('new', undefined, 's1');
    expect(t.hosts.isOnline('new')).to.equal(true);
  });

  it('an agent that restarts is not asked (it syncs by itself); its sync brings it online', () => {
    const t = setup();
    t.bringUp('a');
    t.beat('a', 2n);
    expect(t.hosts.isReturning('a')).to.equal(true);
    expect(t.asked).to.deep.equal([]);
    t.hosts.onSyncChunk('a');
    t.hosts.onSync('a', undefined, 'boot2');
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.asked).to.deep.equal([]);
  });

  it('a coordinator cut off from NATS takes no silence for an outage: no host offline, calls UNAVAILABLE naming the bus, reads stale; back, each host has three intervals to be heard', () => {
    const t = setup();
    t.bringUp('a');
    t.bringUp('b');
    t.hosts.busDisconnected();
    t.run(10_000); // deaf: nobody heard for five intervals
    expect([t.hosts.isOnline('a'), t.hosts.isOnline('b')]).to.deep.equal([true, true]);
    expect(() => t.hosts.requireOnline('a')).to.throw(UnavailableError, /host 'a' cannot be reached: this coordinator is not connected to the message bus/);
    expect(t.hosts.freshness('a')).to.equal('stale');
    t.hosts.busReconnected();
    expect(t.hosts.freshness('a')).to.equal('current');
    // a heartbeats again, b never does: b is offline three intervals after the reconnect, not at once
    t.run(2 * INTERVAL, ['a']);
    expect(t.hosts.isOnline('b')).to.equal(true);
    t.run(2 * INTERVAL, ['a']);
    expect([t.hosts.isOnline('a'), t.hosts.isOnline('b')]).to.deep.equal([true, false]);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_ONLINE b', 'HOST_OFFLINE b']);
  });

  it('a coordinator that stood still (its timer late by 20 s) takes no host offline for the silence; a host silent after it is offline three intervals later', () => {
    const t = setup();
    t.bringUp('a');
    t.bringUp('b');
    t.hosts.timerTurn(250);
    t.standStill(20_000);
    // the first turn after the stall comes before the heartbeats that wait in the socket
    t.hosts.timerTurn(250);
    expect([t.hosts.isOnline('a'), t.hosts.isOnline('b')]).to.deep.equal([true, true]);
    t.beat('a'); // a's heartbeats are read; b's agent died during the stall
    for (let at = 0; at < 2 * INTERVAL; at += 250) {
      t.run(250, at % INTERVAL === 0 ? ['a'] : []);
    }
    expect(t.hosts.isOnline('b'), 'two intervals after the stall').to.equal(true);
    t.run(2 * INTERVAL, ['a']);
    expect([t.hosts.isOnline('a'), t.hosts.isOnline('b')]).to.deep.equal([true, false]);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_ONLINE b', 'HOST_OFFLINE b']);
  });

  it('a timer a little late (a busy event loop, under STALL_MS) is no stall: a silent host goes offline on time', () => {
    const t = setup();
    t.bringUp('a');
    t.hosts.timerTurn(250);
    for (let i = 0; i < 4 * INTERVAL / 1000; i++) {
      t.standStill(1000);
      t.hosts.timerTurn(250); // 750 ms late each time
    }
    expect(t.hosts.isOnline('a')).to.equal(false);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a']);
  });

  it('two coordinators announce one outage with one dedupe id (the stream keeps one HOST_OFFLINE), whatever their clocks', () => {
    const one = setup();
    const two = setup();
    one.bringUp('a');
    two.run(7); // its clock, and so its "last seen", differs
    two.bringUp('a');
    one.run(4 * INTERVAL);
    two.run(4 * INTERVAL);
    const offline = (t: ReturnType<typeof setup>) => t.events.filter((e) => e.kind === EventKind.HOST_OFFLINE).map((e) => e.requestId);
    expect(offline(one)).to.have.length(1);
    expect(offline(one)).to.deep.equal(offline(two));
  });

  it("a restarted agent whose sync comes before its first heartbeat stays online: the sync said the heartbeat's boot", () => {
    const t = setup();
    t.bringUp('a'); // boot 1
    expect(t.hosts.isNewBoot('a', 2n)).to.equal(true);
    t.hosts.onSync('a', undefined, 'boot2-sync', 2n);
    expect(t.hosts.isNewBoot('a', 2n)).to.equal(false);
    t.beat('a', 2n);
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.hosts.isReturning('a')).to.equal(false);
    for (let i = 0; i < 4; i++) {
      t.run(INTERVAL);
      t.beat('a', 2n);
    }
    expect(t.asked).to.deep.equal([]);
    expect(t.hosts.isOnline('a')).to.equal(true);
    // a heartbeat of yet another boot is a restart again
    t.beat('a', 3n);
    expect(t.hosts.isReturning('a')).to.equal(true);
  });

  it('a restart is announced (HOST_ONLINE of the new boot, one dedupe id) and recorded whether its sync or its first heartbeat comes first', () => {
    // the sync of a restarted agent travels on another connection than its heartbeats, and at
    // a coordinator's start it is asked for before any heartbeat is heard: when it came first,
    // the restart went unannounced and the record kept the old boot, so every later coordinator
    // start took the same agent for restarted again (calls failed, the stream re-read)
    const restart = (syncFirst: boolean) => {
      const t = setup();
      t.bringUp('a'); // boot 1
      if (syncFirst) {
        t.hosts.onSync('a', undefined, 'boot2-sync', 2n);
        t.beat('a', 2n);
      } else {
        t.beat('a', 2n);
        t.hosts.onSync('a', undefined, 'boot2-sync', 2n);
      }
      for (let i = 0; i < 4; i++) {
        t.run(INTERVAL);
        t.beat('a', 2n);
      }
      expect(t.hosts.isOnline('a')).to.equal(true);
      return t;
    };
    const heartbeatFirst = restart(false);
    const syncFirst = restart(true);
    const online = (t: ReturnType<typeof setup>) => t.events.filter((e) => e.kind === EventKind.HOST_ONLINE).map((e) => e.requestId);
    expect(online(heartbeatFirst)).to.deep.equal(['host-online:a:1:first-a', 'host-online:a:2:boot2-sync']);
    expect(online(syncFirst)).to.deep.equal(online(heartbeatFirst));
    expect(syncFirst.saved.at(-1)?.bootId).to.equal(2n);
    expect(syncFirst.saved.at(-1)?.host?.online).to.equal(true);
  });

  it('a host first heard of through its full sync is online, announced and recorded; its first heartbeat keeps it so', () => {
    const t = setup();
    t.hosts.onSync('s', Host.fromPartial({ hostId: 's', hostname: 's.example' }), 'sync-first');
    expect(t.hosts.isOnline('s')).to.equal(true);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE s']);
    t.beat('s');
    expect(t.hosts.isOnline('s')).to.equal(true);
    expect(t.hosts.get('s')!.bootId).to.equal(1n);
    expect(t.saved.map((r) => [r.host?.hostId, r.bootId])).to.deep.equal([
      ['s', 0n],
      ['s', 1n],
    ]);
    t.run(20_000, ['s']);
    expect(t.asked).to.deep.equal([]);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE s']);
  });

  it('a host whose full sync is applied while it is still offline (syncs travel on another connection) is online with its next heartbeat, unasked', () => {
    const t = setup();
    t.bringUp('a');
    t.run(8000);
    expect(t.hosts.isAway('a')).to.equal(true);
    t.hosts.onSyncChunk('a');
    t.hosts.onSync('a', undefined, 'back');
    expect(t.hosts.isOnline('a')).to.equal(false); // no heartbeat yet: it may be gone
    t.beat('a', 2n);
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.asked).to.deep.equal([]);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a', 'HOST_ONLINE a']);
  });

  it("says why a host is offline (Host.offline_reason): heartbeats stopped, or back but its sync not applied yet; nothing while it is online", () => {
    const t = setup();
    t.bringUp('a');
    expect(t.hosts.offlineReason('a')).to.equal('');
    const lastSeen = new Date(t.clock()).toISOString();
    t.run(3 * INTERVAL + 250);
    expect(t.hosts.isOnline('a')).to.equal(false);
    expect(t.hosts.offlineReason('a')).to.equal(`no heartbeat since ${lastSeen} (3 missed, one every 2 s)`);
    t.beat('a');
    expect(t.hosts.isReturning('a')).to.equal(true);
    expect(t.hosts.offlineReason('a')).to.equal('its agent heartbeats again; waiting for its full sync');
    t.hosts.onSync('a', undefined, 'second-a');
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.hosts.offlineReason('a')).to.equal('');
  });

  it('knows which hosts it holds a full sync of (the baseline a return is reconciled against)', () => {
    const t = setup();
    t.beat('a');
    expect(t.hosts.hasSynced('a')).to.equal(false);
    t.hosts.onSync('a', undefined, 's');
    expect(t.hosts.hasSynced('a')).to.equal(true);
    expect(t.hosts.hasSynced('never')).to.equal(false);
  });
});

describe('host registry: two agents with one host id', () => {
  /** A registry whose log lines are kept, and two agents of host a (boot ids 1 and 2) heartbeating in turn. */
  function twoAgents() {
    const lines: Array<Record<string, unknown>> = [];
    const t = setup({ log: createLogger('debug', {}, (line) => void lines.push(JSON.parse(line) as Record<string, unknown>)) });
    t.bringUp('a'); // boot 1 online
    const both = (ms: number) =>
      t.run(ms, [], (at) => {
        if (at % INTERVAL === 0) t.beat('a', 1n);
        if (at % INTERVAL === 1000) t.beat('a', 2n);
      });
    const errors = () => lines.filter((l) => l.level === 'error');
    return { ...t, lines, both, errors };
  }

  it('boot ids that alternate: offline (HOST_OFFLINE once), calls UNAVAILABLE naming both, one error naming the host and both boot ids; no flapping', () => {
    const t = twoAgents();
    t.both(1000); // boot 2's first heartbeat: a restart, as far as anyone can tell
    expect(t.hosts.isReturning('a')).to.equal(true);
    expect(t.hosts.inConflict('a')).to.equal(false);
    t.both(1000); // boot 1 again, moments later: two agents
    expect(t.hosts.inConflict('a')).to.equal(true);
    expect(t.hosts.isOnline('a')).to.equal(false);
    expect(t.hosts.isAlive('a')).to.equal(false);
    t.both(60_000);
    expect(t.hosts.isOnline('a')).to.equal(false);
    expect(t.errors().map((l) => [l.msg, l.host, l.bootIds])).to.deep.equal([
      ['two agents heartbeat with this host id: the host is offline until one of them stops', 'a', ['2', '1']],
    ]);
    expect(t.lines.filter((l) => l.msg === 'host heartbeats again; waiting for its full sync')).to.have.length(1);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a']);
    expect(t.events[1]!.requestId).to.equal('host-offline:a:two-agents:1:2:first-a');
    expect(t.events[1]!.hostState?.online).to.equal(false);
    expect(() => t.hosts.requireOnline('a'))
      .to.throw(UnavailableError)
      .with.property('message', "host 'a' is offline: two agents heartbeat with its host id (boot ids 2 and 1); stop one of them");
    expect(t.hosts.offlineReason('a'), 'host-list says why too').to.equal('two agents heartbeat with its host id (boot ids 2 and 1); stop one of them');
    expect(t.asked, 'not asked for syncs it would not apply').to.deep.equal([]);
  });

  it('calls waiting for the host fail when the second agent is found', () => {
    const t = twoAgents();
    const why: string[] = [];
    t.both(1000);
    t.hosts.watchLoss('a', (w) => why.push(w));
    t.both(1000);
    expect(why).to.deep.equal(['two agents heartbeat with its host id (boot ids 2 and 1)']);
  });

  it('once one agent stops, the other is a returning host: asked for its sync, online with it', () => {
    const t = twoAgents();
    t.both(10_000);
    expect(t.hosts.inConflict('a')).to.equal(true);
    // agent 1 stops; for three intervals only boot 2 heartbeats
    t.run(7000, [], (at) => {
      if (at % INTERVAL === 1000) t.beat('a', 2n);
    });
    expect(t.hosts.inConflict('a')).to.equal(false);
    expect(t.hosts.isReturning('a')).to.equal(true);
    expect(t.asked.map((x) => x.host)).to.deep.equal(['a']);
    t.hosts.onSync('a', undefined, 'after', 2n);
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.hosts.get('a')?.bootId).to.equal(2n);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a', 'HOST_ONLINE a']);
    expect(t.lines.filter((l) => l.msg === 'one agent heartbeats with this host id again; waiting for its full sync').map((l) => l.bootId)).to.deep.equal(['2']);
  });

  it('an agent that restarts is no conflict', () => {
    const t = twoAgents();
    t.beat('a', 2n);
    t.hosts.onSync('a', undefined, 'boot2', 2n);
    t.run(30_000, [], (at) => {
      if (at % INTERVAL === 0) t.beat('a', 2n);
    });
    expect(t.hosts.isOnline('a')).to.equal(true);
    expect(t.errors()).to.deep.equal([]);
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_ONLINE a']);
  });

  it('an agent paused for long that resumes while another serves its host id: found at the next alternation', () => {
    const t = twoAgents();
    t.beat('a', 2n);
    t.hosts.onSync('a', undefined, 'boot2', 2n);
    t.run(30_000, [], (at) => {
      if (at % INTERVAL === 0) t.beat('a', 2n);
    });
    t.beat('a', 1n); // back from SIGSTOP: looks like one more restart
    expect(t.hosts.inConflict('a')).to.equal(false);
    t.both(2000);
    expect(t.hosts.inConflict('a')).to.equal(true);
    expect(t.errors()).to.have.length(1);
  });

  it('two agents with different --heartbeat-ms: each judged by its own interval, so the host stays offline, no flapping', () => {
    // the second agent was started with another configuration (a re-imaged machine): it
    // heartbeats every 500 ms, the first every 2000 ms. The first agent is not silent for
    // 1.5 s (three of the other's intervals) between its beats: it is alive.
    const t = twoAgents();
    const beatBoth = (ms: number) =>
      t.run(ms, [], (at) => {
        if (at % INTERVAL === 0) t.beat('a', 1n, INTERVAL);
        if (at % 500 === 250) t.beat('a', 2n, 500);
      });
    beatBoth(4000);
    expect(t.hosts.inConflict('a')).to.equal(true);
    const asked = t.asked.length; // boot 2's first beats looked like a restart: asked for its sync then
    for (let i = 0; i < 60; i++) {
      beatBoth(1000);
      expect(t.hosts.inConflict('a'), `still two agents after ${i + 1} s more`).to.equal(true);
    }
    expect(kinds(t.events)).to.deep.equal(['HOST_ONLINE a', 'HOST_OFFLINE a']);
    expect(t.errors()).to.have.length(1);
    expect(t.asked, 'not asked for syncs it would not apply').to.have.length(asked);
  });

  it("found too when the second agent's sync, not its heartbeat, showed its boot first", () => {
    const t = twoAgents();
    t.hosts.onSync('a', undefined, 'from-boot-2', 2n); // the other connection was faster
    t.beat('a', 1n);
    expect(t.hosts.inConflict('a')).to.equal(true);
  });
});

describe('host registry: deleting a host (DeleteHost)', () => {
  /** Two coordinators on one store, both following it; `a` online on both, then gone (offline on both). */
  async function twoCoordinators() {
    const kv = new FakeHostRecords();
    const one = setup({ kv });
    const two = setup({ kv });
    await one.hosts.load();
    await two.hosts.load();
    for (const t of [one, two]) t.bringUp('a');
    for (const t of [one, two]) t.bringUp('b');
    await settle();
    kv.deliver();
    for (const t of [one, two]) t.run(4 * INTERVAL, ['b']);
    await settle();
    kv.deliver();
    expect(one.hosts.isAway('a') && two.hosts.isAway('a')).to.equal(true);
    return { kv, one, two };
  }

  it('tells a live agent (online, or heartbeating again before its sync) from a host that is gone', () => {
    const t = setup();
    t.bringUp('a');
    expect(t.hosts.isAlive('a')).to.equal(true);
    t.run(8000);
    expect(t.hosts.isAlive('a')).to.equal(false);
    t.beat('a'); // back, its full sync awaited
    expect(t.hosts.isOnline('a')).to.equal(false);
    expect(t.hosts.isAlive('a')).to.equal(true);
    expect(t.hosts.isAlive('never')).to.equal(false);
  });

  it('every coordinator forgets the host, with what it holds of it; one started later does not load it', async () => {
    const { kv, one, two } = await twoCoordinators();
    await one.hosts.delete('a');
    expect(one.hosts.get('a')).to.equal(undefined);
    expect(one.forgotten).to.deep.equal(['a']);
    expect(one.hosts.list().map((e) => e.host.hostId)).to.deep.equal(['b']);
    kv.deliver();
    expect(two.hosts.get('a')).to.equal(undefined);
    expect(two.forgotten).to.deep.equal(['a']);
    // the deleting coordinator's own deletion, delivered back to it, changes nothing more
    expect(one.forgotten).to.deep.equal(['a']);
    const later = setup({ kv });
    await later.hosts.load();
    expect(later.hosts.list().map((e) => e.host.hostId)).to.deep.equal(['b']);
    expect(later.hosts.get('a')).to.equal(undefined);
  });

  it('a coordinator that has not seen the deletion yet cannot write the host back: its write fails and it forgets the host', async () => {
    const kv = new FakeHostRecords();
    const one = setup({ kv });
    const two = setup({ kv });
    await one.hosts.load();
    await two.hosts.load();
    one.bringUp('a');
    two.bringUp('a');
    await settle();
    kv.deliver();
    one.run(4 * INTERVAL); // one marks it offline...
    await settle();
    await one.hosts.delete('a'); // ...and deletes it
    // two marks it offline a moment later, before it hears of the deletion (its follower lags)
    two.run(4 * INTERVAL);
    expect(two.events.filter((e) => e.kind === EventKind.HOST_OFFLINE)).to.have.length(1);
    await settle();
    expect(kv.last.get('a')?.record, 'the deletion is still the last word').to.equal(undefined);
    expect(two.hosts.get('a')).to.equal(undefined);
    expect(two.forgotten).to.deep.equal(['a']);
    kv.deliver(); // the deletion arrives after all: nothing more to do
    expect(two.forgotten).to.deep.equal(['a']);
    const later = setup({ kv });
    await later.hosts.load();
    expect(later.hosts.get('a')).to.equal(undefined);
  });

  it('an agent that heartbeats again after the deletion registers its host anew: synced, online, recorded', async () => {
    const { kv, one, two } = await twoCoordinators();
    await one.hosts.delete('a');
    kv.deliver();
    for (const t of [one, two]) {
      t.beat('a', 7n);
      expect(t.hosts.isReturning('a')).to.equal(true);
      t.hosts.onSync('a', undefined, 'new-a');
      expect(t.hosts.isOnline('a')).to.equal(true);
    }
    await settle();
    kv.deliver();
    expect(kv.last.get('a')?.record?.host?.online).to.equal(true);
    expect(kv.last.get('a')?.record?.bootId).to.equal(7n);
    expect(one.hosts.get('a')?.bootId).to.equal(7n);
    expect(two.hosts.get('a')?.bootId).to.equal(7n);
    const later = setup({ kv });
    await later.hosts.load();
    expect(later.hosts.get('a')?.bootId).to.equal(7n);
  });

  it("two coordinators' records of one host both land: a write over another's is a write, not a deletion", async () => {
    const kv = new FakeHostRecords();
    const one = setup({ kv });
    const two = setup({ kv });
    await one.hosts.load();
    await two.hosts.load();
    one.bringUp('a');
    two.bringUp('a'); // both write over revision 0: the second one's write conflicts, and is written again
    await settle();
    expect(one.hosts.isOnline('a') && two.hosts.isOnline('a')).to.equal(true);
    expect(one.forgotten.concat(two.forgotten)).to.deep.equal([]);
    one.run(4 * INTERVAL);
    await settle();
    expect(kv.last.get('a')?.record?.host?.online).to.equal(false);
    kv.deliver();
    expect(two.hosts.get('a')).to.not.equal(undefined);
  });
  it('a coordinator that just started has not seen a host recorded offline gone: only after three intervals of its own without a sign of life', async () => {
    const kv = new FakeHostRecords();
    const before = setup({ kv });
    await before.hosts.load();
    before.bringUp('a');
    before.run(4 * INTERVAL); // recorded offline (its agent paused; or a coordinator that missed its heartbeats)
    await settle();
    expect(kv.last.get('a')?.record?.host?.online).to.equal(false);
    // a coordinator (re)started now: the record says offline, its agent may run all the same
    const t = setup({ kv });
    await t.hosts.load();
    expect(t.hosts.isAlive('a')).to.equal(false);
    expect(t.hosts.goneFor('a')).to.deep.equal({ goneMs: 0, neededMs: 3 * INTERVAL, syncedSinceOffline: false });
    t.run(3 * INTERVAL - 250);
    expect(t.hosts.goneFor('a')!.goneMs).to.be.lessThan(3 * INTERVAL);
    t.run(250);
    expect(t.hosts.goneFor('a')!.goneMs).to.equal(3 * INTERVAL);
    // a full sync applied after it went offline: its agent runs; the count starts again
    t.hosts.onSync('a', undefined, 'late', 1n);
    expect(t.hosts.goneFor('a')).to.deep.equal({ goneMs: 0, neededMs: 3 * INTERVAL, syncedSinceOffline: true });
    t.run(INTERVAL);
    expect(t.hosts.goneFor('a')!.goneMs).to.equal(INTERVAL);
    // a host that heartbeats again is alive; one gone again before its sync counts from then
    t.beat('a');
    expect(t.hosts.goneFor('a')!.goneMs).to.equal(0);
    t.run(4 * INTERVAL);
    expect(t.hosts.isAlive('a')).to.equal(false);
    expect(t.hosts.goneFor('a')!.goneMs).to.be.lessThan(3 * INTERVAL);
    expect(t.hosts.goneFor('never')).to.equal(undefined);
  });

  it('deletes only over the record revision it has seen: a record moved to online meanwhile is FAILED_PRECONDITION and nothing changes; one moved to offline is deleted', async () => {
    const kv = new FakeHostRecords();
    const one = setup({ kv });
    const two = setup({ kv });
    await one.hosts.load();
    await two.hosts.load();
    one.bringUp('a');
    await settle();
    kv.deliver();
    one.run(4 * INTERVAL);
    await settle();
    kv.deliver();
    two.run(4 * INTERVAL); // two sees it gone too
    // its agent back on two (one has not heard of that yet: its follower lags)
    two.bringUp('a');
    await settle();
    expect(kv.last.get('a')?.record?.host?.online).to.equal(true);
    const revision = kv.last.get('a')!.revision;
    const err = await one.hosts.delete('a').then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.match(/^host 'a' is online in the catalog: another coordinator recorded it online/);
    expect(kv.last.get('a')).to.deep.include({ revision });
    expect(kv.last.get('a')?.record?.host?.online).to.equal(true);
    expect(one.hosts.get('a')).to.not.equal(undefined);
    expect(one.forgotten).to.deep.equal([]);
    // gone again, recorded offline by two: one's deletion (still behind) reads that and deletes
    two.run(4 * INTERVAL);
    await settle();
    expect(kv.last.get('a')?.record?.host?.online).to.equal(false);
    await one.hosts.delete('a');
    expect(kv.last.get('a')?.record).to.equal(undefined);
    expect(one.forgotten).to.deep.equal(['a']);
  });

  it("a late full sync of the deleted host's last boot (or of no boot) does not bring it back; a heartbeat, or a sync of a new boot, does", async () => {
    const { kv, one, two } = await twoCoordinators();
    await one.hosts.delete('a');
    kv.deliver();
    for (const t of [one, two]) {
      expect(t.hosts.isDeletedSync('a', 1n)).to.equal(true);
      t.hosts.onSync('a', Host.fromPartial({ hostId: 'a' }), 'queued', 1n);
      t.hosts.onSync('a', Host.fromPartial({ hostId: 'a' }), 'queued-0', 0n);
      expect(t.hosts.get('a')).to.equal(undefined);
    }
    await settle();
    expect(kv.last.get('a')?.record, 'the deletion is still the last word').to.equal(undefined);
    expect(one.events.filter((e) => e.kind === EventKind.HOST_ONLINE && e.requestId.includes('queued'))).to.deep.equal([]);
    // a sync of another boot: its agent started again
    two.hosts.onSync('a', Host.fromPartial({ hostId: 'a' }), 'new-boot', 9n);
    expect(two.hosts.isOnline('a')).to.equal(true);
    // a heartbeat registers it again, and its syncs count from then on, of any boot
    one.beat('a', 1n);
    expect(one.hosts.isDeletedSync('a', 1n)).to.equal(false);
    one.hosts.onSync('a', undefined, 'after-beat', 1n);
    expect(one.hosts.isOnline('a')).to.equal(true);
  });

  it('remembers a bounded number of deleted hosts, the oldest dropped first', async () => {
    const t = setup();
    for (let i = 0; i <= MAX_DELETED_REMEMBERED; i++) {
      t.bringUp(`h${i}`);
      await settle(); // its record written (deleted below over that revision)
      await t.hosts.delete(`h${i}`);
    }
    expect(t.hosts.isDeletedSync('h0', 1n)).to.equal(false);
    expect(t.hosts.isDeletedSync('h1', 1n)).to.equal(true);
    expect(t.hosts.isDeletedSync(`h${MAX_DELETED_REMEMBERED}`, 0n)).to.equal(true);
  });
});
