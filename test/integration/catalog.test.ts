// The pool catalog in its JetStream KV bucket, against a real nats-server: one ordered pass
// reads every current entry (list, loadHosts, follow), and follow() then delivers each later
// change once, in order, without the current values again. Host records are written only over
// the revision the writer has seen, and a deleted host's record stays deleted.
import { expect } from 'chai';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { AbortedError, UnavailableError } from '../../libs/errors/errors.js';
import { CatalogPool, Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { startNats, type NatsServer } from '../support/nats.js';

const entry = (name: string, autostart = false) =>
  CatalogPool.fromPartial({ definition: PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/srv/${name}` } }), autostart, persistent: true });

type Change = [host: string, pool: string, autostart: boolean | undefined, revision: number];

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('pool catalog (JetStream KV)', () => {
  let nats: NatsServer;
  let nc: NatsConnection;

  before(async () => {
    nats = await startNats();
    nc = await connectBus({ servers: nats.url, name: 'test-catalog' });
  });

  after(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('follows an empty catalog: nothing at first, then each change once', async () => {
    const catalog = await Catalog.open(nc);
    expect(await catalog.list()).to.deep.equal([]);
    expect(await catalog.loadHosts()).to.deep.equal([]);
    const seen: Change[] = [];
    const follow = await catalog.follow((host, pool, value, revision) => seen.push([host, pool, value?.autostart, revision]));
    expect(seen).to.deep.equal([]);
    const rev = await catalog.create('h0', 'first', entry('first', true));
    await until('the first pool', () => seen.length === 1);
    expect(seen).to.deep.equal([['h0', 'first', true, rev]]);
    follow.stop();
    await catalog.delete('h0', 'first');
  });

  it('reads every current entry in one pass, then delivers later changes once and in order', async () => {
    const catalog = await Catalog.open(nc);
    const revs: Record<string, number> = {};
    for (let i = 0; i < 300; i++) revs[`p${i}`] = await catalog.create(`h${i % 3}`, `p${i}`, entry(`p${i}`));
    await catalog.update('h1', 'p1', entry('p1', true), revs.p1!); // two revisions: the last one counts
    await catalog.delete('h2', 'p2');
    await catalog.saveHost(Heartbeat.fromPartial({ host: { hostId: 'h1', hostname: 'one' }, bootId: 7n, intervalMs: 2000 }), 0);

    const listed = await catalog.list();
    expect(listed).to.have.length(299);
    expect(listed.find((e) => e.pool === 'p1')?.value.autostart).to.equal(true);
    expect(listed.find((e) => e.pool === 'p2')).to.equal(undefined);
    expect((await catalog.list('h0')).map((e) => e.host)).to.deep.equal(Array(100).fill('h0'));
    expect((await catalog.loadHosts()).map((h) => [h.host?.hostId, h.bootId])).to.deep.equal([['h1', 7n]]);

    const seen: Change[] = [];
    const follow = await catalog.follow((host, pool, value, revision) => seen.push([host, pool, value?.autostart, revision]));
    // current entries first, before follow() resolves: 299 pools and the markers of the two
    // deleted ones (p2, and 'first' of the test before)
    expect(seen).to.have.length(301);
    expect(seen.filter((c) => c[2] === undefined).map((c) => c[1]).sort()).to.deep.equal(['first', 'p2']);
    expect(seen.find((c) => c[1] === 'p1')?.[2]).to.equal(true);
    const p5 = seen.find((c) => c[1] === 'p5')!;
    const later = await catalog.update('h2', 'p5', entry('p5', true), p5[3]);
    await catalog.delete('h0', 'p0');
    // a marker written after them: the watch delivers in revision order, so once the marker
    // is seen, anything else coming (a second replay, a repeat) has come before it
    const marker = await catalog.create('h9', 'marker', entry('marker'));
    await until('the marker', () => seen.some((c) => c[1] === 'marker'));
    expect(seen.slice(301)).to.deep.equal([
      ['h2', 'p5', true, later],
      ['h0', 'p0', undefined, later + 1],
      ['h9', 'marker', false, marker],
    ]);
    follow.stop();
    await catalog.delete('h9', 'marker');
  });

  it('stores pools whose names are not one safe token (dots, spaces, non-ASCII, a leading _)', async () => {
    const catalog = await Catalog.open(nc);
    const names = ['images.v2', 'pool:1', 'a+b', 'd sp', 'ëëë', '_host', '=x', 'a'.repeat(255)];
    for (const name of names) await catalog.create('hn', name, entry(name));
    expect((await catalog.list()).filter((e) => e.host === 'hn').map((e) => e.pool).sort()).to.deep.equal([...names].sort());
    for (const name of names) {
      expect((await catalog.get('hn', name))?.value.definition?.name).to.equal(name);
      await catalog.delete('hn', name);
    }
  });

  it("list(host) beyond one window of direct gets (700 keys, > 256 in flight): exactly the coordinator's read of that host", async () => {
    const catalog = await Catalog.open(nc);
    const odd = ['images.v2', 'pool:1', 'a+b', 'd sp', 'ëëë', '_host', '=x', '*', '>', 'a'.repeat(255)];
    const names = [...odd, ...Array.from({ length: 700 - odd.length }, (_, i) => `w${i}`)];
    await Promise.all(names.map((name) => catalog.create('wide', name, entry(name, name.length % 2 === 0))));
    await catalog.delete('wide', 'w7');
    await catalog.create('wide2', 'w0', entry('w0')); // another host whose key shares the prefix: not listed
    const own = await catalog.list('wide');
    const all = (await catalog.list()).filter((e) => e.host === 'wide');
    expect(own).to.have.length(699);
    expect(own).to.deep.equal(all);
    expect(new Set(own.map((e) => e.pool))).to.deep.equal(new Set(names.filter((n) => n !== 'w7')));
    expect(own.find((e) => e.pool === 'd sp')?.value.definition?.target?.path).to.equal('/srv/d sp');
  });

  it('createIfUnmoved / updateIfUnmoved: written only while nothing in the whole bucket moved past the revision read', async () => {
    const catalog = await Catalog.open(nc);
    const at = await catalog.bucketRevision();
    expect(await catalog.createIfUnmoved('um', 'p', entry('p'), at - 1), 'a bucket read before its last write').to.equal(undefined);
    const made = await catalog.createIfUnmoved('um', 'p', entry('p'), at);
    expect(made).to.equal(at + 1);
    // another key written since (another pool, another host's): the bucket moved, nothing is written
    await catalog.create('um', 'other', entry('other'));
    expect(await catalog.updateIfUnmoved('um', 'p', entry('p', true), made!, made!)).to.equal(undefined);
    expect((await catalog.get('um', 'p'))?.value.autostart).to.equal(false);
    const now = await catalog.bucketRevision();
    const updated = await catalog.updateIfUnmoved('um', 'p', entry('p', true), made!, now);
    expect((await catalog.get('um', 'p'))?.revision).to.equal(updated);
    // a name taken is not created over; an undefined one (a deletion marker) is
    expect(await catalog.createIfUnmoved('um', 'p', entry('p'), await catalog.bucketRevision())).to.equal(undefined);
    await catalog.delete('um', 'p');
    expect(await catalog.createIfUnmoved('um', 'p', entry('p'), await catalog.bucketRevision())).to.be.a('number');
    expect((await catalog.get('um', 'p'))?.value.autostart).to.equal(false);
  });

  it('compare-and-swap: an update at a stale revision is refused (ABORTED) and the newer value stands', async () => {
    // two catalogs on two connections: what two coordinators on one NATS are
    const nc2 = await connectBus({ servers: nats.url, name: 'test-catalog-2' });
    try {
      const one = await Catalog.open(nc);
      const two = await Catalog.open(nc2);
      const created = await one.create('cas', 'stale', entry('stale'));
      // two changes it first (autostart on) ...
      const newer = await two.update('cas', 'stale', entry('stale', true), created);
      expect(newer).to.be.greaterThan(created);
      // ... then one writes what it read before that change (another target path)
      const stale = CatalogPool.fromPartial({ ...entry('stale'), definition: { ...entry('stale').definition!, target: { path: '/srv/elsewhere' } } });
      const refused = await one.update('cas', 'stale', stale, created).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).to.be.instanceOf(AbortedError);
      expect((refused as Error).message).to.match(/pool 'stale' on host 'cas' was changed concurrently; retry/);
      const now = await one.get('cas', 'stale');
      expect(now?.revision).to.equal(newer);
      expect(now?.value.autostart).to.equal(true);
      expect(now?.value.definition?.target?.path).to.equal('/srv/stale');
      // a delete at the stale revision is refused the same way
      const del = await one.delete('cas', 'stale', created).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(del).to.be.instanceOf(AbortedError);
      expect((await two.get('cas', 'stale'))?.revision).to.equal(newer);
      await two.delete('cas', 'stale', newer);
    } finally {
      await nc2.close();
    }
  });

  it('two catalogs changing one pool at once (modify): no change is lost', async () => {
    const nc2 = await connectBus({ servers: nats.url, name: 'test-catalog-2' });
    try {
      const one = await Catalog.open(nc);
      const two = await Catalog.open(nc2);
      await one.create('cas', 'shared', entry('shared'));
      // each change adds its own mount option; one of them also sets autostart, one the path
      const options = Array.from({ length: 12 }, (_, i) => `opt${i}`);
      const results = await Promise.all(
        options.map((opt, i) =>
          (i % 2 ? two : one).modify('cas', 'shared', (v) => {
            const def = v.definition!;
            return CatalogPool.fromPartial({
              ...v,
              autostart: opt === 'opt0' ? true : v.autostart,
              definition: {
                ...def,
                target: opt === 'opt1' ? { path: '/srv/moved' } : def.target,
                mountOptions: [...def.mountOptions, opt],
              },
            });
          }),
        ),
      );
      // every change got its own revision
      expect(new Set(results.map((r) => r.revision)).size).to.equal(options.length);
      for (const catalog of [one, two]) {
        const now = await catalog.get('cas', 'shared');
        expect([...now!.value.definition!.mountOptions].sort()).to.deep.equal([...options].sort());
        expect(now!.value.autostart).to.equal(true);
        expect(now!.value.definition?.target?.path).to.equal('/srv/moved');
        expect(now!.revision).to.equal(Math.max(...results.map((r) => r.revision)));
      }
      await one.delete('cas', 'shared');
    } finally {
      await nc2.close();
    }
  });

  it('host records: written only over the revision seen, so a deletion is never written over by a writer that has not seen it', async () => {
    const nc2 = await connectBus({ servers: nats.url, name: 'test-catalog-2' });
    try {
      const one = await Catalog.open(nc);
      const two = await Catalog.open(nc2);
      const record = (online: boolean, bootId = 1n) => Heartbeat.fromPartial({ host: { hostId: 'gone', hostname: 'gone.example', online }, bootId, intervalMs: 2000 });
      const changes: Array<[string, number, boolean | undefined]> = [];
      const { revision: start } = await two.hostRecords();
      const follow = await two.followHosts(start, (e) => changes.push([e.host, e.revision, e.record?.host?.online]));

      const first = await one.saveHost(record(true), 0);
      expect(first).to.have.property('revision');
      const r1 = (first as { revision: number }).revision;
      // two writes over the revision it has seen; one, still at 0, is told what is there now
      const second = (await two.saveHost(record(false), r1)) as { revision: number };
      const stale = await one.saveHost(record(true), 0);
      expect(stale).to.deep.equal({ current: { host: 'gone', revision: second.revision, record: record(false) } });

      // a deletion too goes only over the revision seen: one still at r1 is told what is there now
      expect(await one.deleteHost('gone', r1)).to.deep.equal({ current: { host: 'gone', revision: second.revision, record: record(false) } });
      const deleted = ((await one.deleteHost('gone', second.revision)) as { revision: number }).revision;
      expect(deleted).to.be.greaterThan(second.revision);
      expect((await one.hostRecords()).entries.find((e) => e.host === 'gone')).to.deep.equal({ host: 'gone', revision: deleted, record: undefined });
      expect((await two.loadHosts()).map((h) => h.host?.hostId)).to.not.include('gone');
      // two, not having seen the deletion, would mark the host offline: refused, and it learns of the deletion
      expect(await two.saveHost(record(false), second.revision)).to.deep.equal({ current: { host: 'gone', revision: deleted, record: undefined } });
      // a returning agent's host is recorded over the deletion it has seen
      const back = (await two.saveHost(record(true, 2n), deleted)) as { revision: number };
      expect((await one.loadHosts()).find((h) => h.host?.hostId === 'gone')?.bootId).to.equal(2n);

      await until('the follower to see every change', () => changes.length === 4);
      expect(changes).to.deep.equal([
        ['gone', r1, true],
        ['gone', second.revision, false],
        ['gone', deleted, undefined],
        ['gone', back.revision, true],
      ]);
      follow.stop();
      await one.deleteHost('gone', back.revision);
    } finally {
      await nc2.close();
    }
  });

  it('list(host) across a nats-server restart: the read succeeds or is UNAVAILABLE, and a later one on the same catalog succeeds', async function () {
    this.timeout(60_000);
    // its own server: this one is stopped and started again (same port, same store)
    const own = await startNats();
    const bus = await connectBus({ servers: own.url, name: 'test-catalog-restart' });
    try {
      const catalog = await Catalog.open(bus);
      const names = Array.from({ length: 300 }, (_, i) => `r${i}`);
      await Promise.all(names.map((name) => catalog.create('rh', name, entry(name))));
      const expected = (await catalog.list()).filter((e) => e.host === 'rh');
      // down before the read, for longer than a JetStream API request waits (5 s): this
      // catalog's first request fails; up again while the read may still try
      await own.kill();
      const reading = catalog.list('rh').then(
        (entries) => entries,
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 6_000));
      await own.restart();
      const first = await reading;
      if (first instanceof Error) {
        expect(first).to.be.instanceOf(UnavailableError);
        expect(first.message).to.match(/the bus did not answer.*retry/);
      } else {
        expect(first).to.deep.equal(expected);
      }
      // and then the same catalog reads again, as soon as the connection is back
      // a round trip: the connection is back (a flush while it is still down fails)
      for (const deadline = Date.now() + 10_000; ; ) {
        if (await bus.flush().then(() => true, () => Date.now() > deadline)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await catalog.list('rh')).to.deep.equal(expected);
    } finally {
      await bus.close();
      await own.stop();
    }
  });
});
