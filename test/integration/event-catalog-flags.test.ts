// The pool state an event carries says what the catalog says about the pool: a pool marked
// autostart, or made persistent by a define, while it runs shows it in its next events (and in
// the agent's syncs), not only in Get/List, which merge the catalog themselves.
import { expect } from 'chai';
import { join } from 'node:path';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { dirPool, startDirPool, watch } from './reliability-helpers.js';

describe('catalog flags in the pool state of events (real nats-server, coordinator, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-event-flags-it-');

  async function refreshed(name: string): Promise<Event> {
    const w = watch(ctx.stack.client, { hosts: ['a'], pools: [name], kinds: [EventKind.POOL_REFRESHED] });
    await w.ready;
    await ctx.stack.api.refreshPool({ name: `hosts/a/pools/${name}`, requestId: '' });
    await waitFor('POOL_REFRESHED', () => w.events.length > 0 || w.failure());
    w.cancel();
    expect(w.failure()).to.equal(undefined);
    return w.events[0]!;
  }

  it('autostart set (and cleared) on a running pool is in the pool state of its next event', async () => {
    const { api } = ctx.stack;
    await api.definePool({ host: 'a', definition: dirPool('auto', join(scratch.path, 'auto')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/auto', build: true, buildFlags: undefined, requestId: '' });
    await api.setPoolAutostart({ name: 'hosts/a/pools/auto', autostart: true, requestId: '' });
    expect((await refreshed('auto')).poolState?.autostart).to.equal(true);
    await api.setPoolAutostart({ name: 'hosts/a/pools/auto', autostart: false, requestId: '' });
    expect((await refreshed('auto')).poolState?.autostart).to.equal(false);
    expect((await api.getPool({ name: 'hosts/a/pools/auto' })).autostart).to.equal(false);
  });

  it('a running transient pool that is defined is persistent in the pool state of its next event', async () => {
    const { api } = ctx.stack;
    const path = join(scratch.path, 'trans');
    await startDirPool(ctx.stack, 'a', 'trans', path);
    expect((await refreshed('trans')).poolState?.persistent).to.equal(false);
    const running = await api.getPool({ name: 'hosts/a/pools/trans' });
    await api.definePool({ host: 'a', definition: { ...dirPool('trans', path), uuid: running.definition!.uuid }, xml: '', requestId: '', validate: false });
    expect((await refreshed('trans')).poolState?.persistent).to.equal(true);
  });
});
