// An agent killed and started again tells watchers only what changed while it was away. Its
// full sync describes every volume from a full probe; the coordinator's reconcile compares
// that with what the operations' own events said. A clone that nothing touched since, and the
// source the clone read, are no change: a VOLUME_CHANGED for them would tell a watcher
// (WatchEvents, `cisternctl pool-event --loop`) of a change nobody made.
import { expect } from 'chai';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { EventKind, type Event } from '../../libs/proto/cistern/v1/storage.js';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, startDirPool, watch, type Watcher } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/quiet';
const MiB = 1024 * 1024;

/** The volume events: the pool's own sizes are those of the file system under it, which others write to meanwhile (a POOL_REFRESHED is a real change there). */
const said = (events: readonly Event[]): string[] => events.filter((e) => e.volume !== '' && e.kind !== EventKind.OPERATION_PROGRESS).map((e) => `${EventKind[e.kind]} ${e.volume}`);

describe('an agent restarted after clones (real nats-server, coordinator, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-restart-quiet-it-');

  before(async () => {
    await startDirPool(ctx.stack, 'a', 'quiet', join(scratch.path, 'quiet'));
    const { api } = ctx.stack;
    await createVolume(ctx.stack, POOL, 'src.img', String(MiB));
    await api.createVolume({
      parent: POOL,
      definition: undefined,
      xml: `<volume><name>base.qcow2</name><capacity>${MiB}</capacity><target><format type='qcow2'/></target></volume>`,
      preallocMetadata: false,
      requestId: '',
      validate: false,
    });
  });

  /** Waits for a marker volume's VOLUME_CREATED: what was published before it has come. */
  async function drain(w: Watcher, marker: string): Promise<void> {
    await createVolume(ctx.stack, POOL, marker, '4096');
    await waitFor(`VOLUME_CREATED ${marker}`, async () => w.events.some((e) => e.kind === EventKind.VOLUME_CREATED && e.volume === marker) || undefined, { timeoutMs: 20_000, intervalMs: 50 });
  }

  const clone = (source: string, name: string, format: string) =>
    ctx.stack.api.cloneVolume({
      parent: POOL,
      source: `${POOL}/volumes/${source}`,
      definition: undefined,
      xml: `<volume><name>${name}</name><capacity>${MiB}</capacity><target><format type='${format}'/></target></volume>`,
      preallocMetadata: false,
      reflink: false,
      requestId: '',
      validate: false,
    });

  it('a kill -9 and start: no VOLUME_CHANGED for the qcow2 volumes a create and a clone made, nor for the raw source a clone read', async () => {
    await clone('src.img', 'copy.img', 'raw');
    await clone('base.qcow2', 'copy.qcow2', 'qcow2');
    const w = watch(ctx.stack.client, { pools: [POOL] });
    await w.ready;
    try {
      await ctx.stack.restartAgent('a', { kill: true });
      await drain(w, 'after-restart.img');
      expect(said(w.events)).to.deep.equal(['VOLUME_CREATED after-restart.img']);
      // the view shows the cluster size the restarted agent's probe read, as vol-dumpxml does after a libvirtd restart
      const copy = await ctx.stack.api.getVolume({ name: `${POOL}/volumes/copy.qcow2`, refresh: false });
      expect(copy.definition?.target?.clusterSize).to.equal(65536n);
    } finally {
      w.cancel();
    }
  });

  it('a pool refresh after a clone: no VOLUME_CHANGED for the source, whose access time moved', async () => {
    const src = join(scratch.path, 'quiet', 'src.img');
    // an access time older than the modification, so that a read moves it (relatime); the
    // change of ctime this makes is taken in by a refresh first
    utimesSync(src, new Date('1999-01-01T00:00:00Z'), statSync(src).mtime);
    await ctx.stack.api.refreshPool({ name: POOL, requestId: '' });
    await clone('src.img', 'copy2.img', 'raw');
    // the clone reads the source O_NOATIME (libvirt's read moves it); a reader that does not, as a guest, moves it
    readFileSync(src);
    expect(statSync(src).atime.getUTCFullYear(), 'the read moved the access time').to.be.above(1999);
    const w = watch(ctx.stack.client, { pools: [POOL] });
    await w.ready;
    try {
      await ctx.stack.api.refreshPool({ name: POOL, requestId: '' });
      await drain(w, 'after-refresh.img');
      expect(said(w.events).filter((s) => s.startsWith('VOLUME_CHANGED'))).to.deep.equal([]);
    } finally {
      w.cancel();
    }
  });
});
