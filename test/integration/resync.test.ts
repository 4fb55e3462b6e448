// A coordinator restart against a running fleet (issue 8): the new coordinator asks every
// agent for its full sync, the agents answer (spread over a short random delay), and the
// coordinator serves every host's pools and volumes again without any host going offline,
// without asking any host twice, and without replaying hosts as reconcile events.
import { expect } from 'chai';
import { join } from 'node:path';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { createVolume, startDirPool, watch } from './reliability-helpers.js';

const HOSTS = ['a', 'b', 'c', 'd'];
const VOLUMES = ['v0.img', 'v1.img', 'v2.img'];

describe('coordinator restart: full resync of the fleet (real processes)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: HOSTS });
  const scratch = useTempDir('cistern-resync-it-');

  const volumesOf = async (host: string): Promise<string[]> =>
    (await ctx.stack.api.listVolumes({ parent: `hosts/${host}/pools/rs`, pageSize: 0, pageToken: '' })).volumes.map((v) => v.definition?.name ?? '');

  /** The sequence of the last event in the stream now (from a watcher that sees a fresh marker event). */
  async function lastSequence(marker: string): Promise<bigint> {
    const w = watch(ctx.stack.client, { hosts: ['a'] });
    await w.ready;
    try {
      await createVolume(ctx.stack, 'hosts/a/pools/rs', marker, '4096');
      const e = await waitFor(`the event of ${marker}`, () => w.events.find((x) => x.volume === marker));
      return e.sequence;
    } finally {
      w.cancel();
    }
  }

  /** How often each agent was asked for its full sync so far. */
  const resyncAsks = (): number[] =>
    HOSTS.map((h) => (ctx.stack.agents.get(h)!.process.logs().match(/"msg":"resync requested"/g) ?? []).length);

  /** Every event after `after` up to the event of a new volume `marker`. */
  async function eventsSince(after: bigint, marker: string): Promise<Event[]> {
    const w = watch(ctx.stack.client, { afterSequence: after });
    await w.ready;
    try {
      await createVolume(ctx.stack, 'hosts/b/pools/rs', marker, '4096');
      await waitFor(`the event of ${marker}`, () => w.events.some((x) => x.volume === marker));
      return w.events.slice(0, w.events.findIndex((x) => x.volume === marker));
    } finally {
      w.cancel();
    }
  }

  before(async function () {
    this.timeout(120_000);
    for (const host of HOSTS) {
      await startDirPool(ctx.stack, host, 'rs', join(scratch.path, host));
      for (const v of VOLUMES) await createVolume(ctx.stack, `hosts/${host}/pools/rs`, v, '4096');
    }
  });

  for (const kill of [false, true]) {
    it(`after a coordinator ${kill ? 'kill -9' : 'stop'} and start, every host is online with its volumes; none went offline, was asked twice or was replayed`, async () => {
      const marker = kill ? 'mark-kill.img' : 'mark-stop.img';
      const before = await lastSequence(`before-${marker}`);
      const asksBefore = resyncAsks();
      await ctx.stack.restartCoordinator({ kill });
      await ctx.stack.waitForHosts(HOSTS);
      for (const host of HOSTS) {
        const expected = host === 'a' ? [...VOLUMES, `before-${marker}`] : VOLUMES;
        await waitFor(`the volumes of ${host}`, async () => {
          const names = await volumesOf(host);
          return expected.every((v) => names.includes(v)) ? names : undefined;
        });
      }
      const { hosts } = await ctx.stack.api.listHosts({ pageSize: 0, pageToken: '' });
      expect(hosts.filter((h) => h.online).map((h) => h.hostId)).to.deep.equal(HOSTS);

      const events = await eventsSince(before, `after-${marker}`);
      const unwanted = events.filter((e) => e.kind === EventKind.HOST_OFFLINE || e.requestId.startsWith('reconcile-'));
      expect(unwanted.map((e) => `${EventKind[e.kind]} ${e.host} ${e.pool}/${e.volume}`)).to.deep.equal([]);

      const log = ctx.stack.coordinator.process.logs();
      expect(log).not.to.contain('host offline: heartbeats stopped');
      expect(log).not.to.contain('no full sync from a host that heartbeats; asking again');
      // one fleet-wide ask, answered once by every agent; nobody asked again by name
      expect(resyncAsks().map((n, i) => n - asksBefore[i]!)).to.deep.equal(HOSTS.map(() => 1));
      for (const host of HOSTS) {
        const last = ctx.stack.agents.get(host)!.process.logs().split('\n').filter((l) => l.includes('"msg":"resync requested"')).pop();
        expect(last, `agent ${host}`).to.contain('"fleetWide":true');
      }
    });
  }
});
