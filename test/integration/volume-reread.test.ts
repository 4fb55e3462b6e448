// GetVolume and GetVolumeXML with `refresh` read the volume again on its host, as libvirt's
// vol-info and vol-dumpxml do (storageVolGetInfoFlags calls refreshVol): a file changed by
// hand, or by a guest, since the last refresh shows its new sizes, the cache takes them and
// VOLUME_CHANGED says so. Without `refresh` the answer is the cached state. cisternctl's
// vol-info and vol-dumpxml ask for it, as virsh's do.
import { expect } from 'chai';
import { readFileSync, statSync, truncateSync, utimesSync } from 'node:fs';
import { formatTimestamp } from '../../libs/backends/stat-fields.js';
import { join } from 'node:path';
import { EventKind } from '../../libs/proto/cistern/v1/storage.js';
import { runCli } from '../support/cli.js';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { createVolume, kindName, startDirPool, watch } from './reliability-helpers.js';

const POOL = 'hosts/a/pools/reread';
const MiB = 1024n * 1024n;

describe('a volume read again on its host (GetVolume refresh; real nats-server, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-reread-it-');
  let dir = '';

  before(async () => {
    dir = join(scratch.path, 'reread');
    await startDirPool(ctx.stack, 'a', 'reread', dir);
  });

  it('GetVolume: the cached sizes without refresh; with it the file as it is now, kept in the cache and published once', async () => {
    const api = ctx.stack.api;
    await createVolume(ctx.stack, POOL, 'grown.img', String(MiB));
    const name = `${POOL}/volumes/grown.img`;
    const watcher = watch(ctx.stack.client, { pools: [POOL] });
    await watcher.ready;
    truncateSync(join(dir, 'grown.img'), Number(3n * MiB));
    expect((await api.getVolume({ name, refresh: false })).definition?.capacity).to.equal(MiB);
    const fresh = await api.getVolume({ name, refresh: true });
    expect(fresh.definition?.capacity).to.equal(3n * MiB);
    // the cache holds it now: a plain read answers the same without asking the host
    expect((await api.getVolume({ name, refresh: false })).definition?.capacity).to.equal(3n * MiB);
    // a re-read that finds nothing new publishes nothing
    expect((await api.getVolume({ name, refresh: true })).definition?.capacity).to.equal(3n * MiB);
    await waitFor('VOLUME_CHANGED of the re-read', async () => watcher.events.some((e) => e.kind === EventKind.VOLUME_CHANGED) || undefined, { timeoutMs: 10_000, intervalMs: 50 });
    // an event published after the second re-read would have come by the time this create's does
    await createVolume(ctx.stack, POOL, 'marker.img', String(MiB));
    await waitFor('VOLUME_CREATED of the marker', async () => watcher.events.some((e) => e.kind === EventKind.VOLUME_CREATED && e.volume === 'marker.img') || undefined, { timeoutMs: 10_000, intervalMs: 50 });
    watcher.cancel();
    const changed = watcher.events.filter((e) => e.kind === EventKind.VOLUME_CHANGED);
    expect(changed.map(kindName)).to.deep.equal(['VOLUME_CHANGED']);
    expect(changed[0]!.volumeState?.definition?.capacity).to.equal(3n * MiB);
  });

  it('with refresh the access time is the one the file has now, as libvirt\'s vol-dumpxml shows it', async function () {
    const api = ctx.stack.api;
    await createVolume(ctx.stack, POOL, 'read.img', String(MiB));
    const name = `${POOL}/volumes/read.img`;
    const path = join(dir, 'read.img');
    // an access time older than the modification: the next read moves it (relatime), and only it
    utimesSync(path, new Date('1999-01-01T00:00:00Z'), new Date('2000-06-01T00:00:00Z'));
    expect((await api.getVolume({ name, refresh: true })).definition?.target?.timestamps?.atime).to.equal('915148800');
    readFileSync(path);
    const atime = statSync(path, { bigint: true }).atimeNs;
    if (atime === 915148800n * 1_000_000_000n) this.skip(); // mounted noatime: a read changes nothing
    const expected = formatTimestamp(atime);
    expect((await api.getVolume({ name, refresh: true })).definition?.target?.timestamps?.atime).to.equal(expected);
    expect((await api.getVolumeXml({ name, refresh: false })).xml).to.contain(`<atime>${expected}</atime>`);
  });

  it('GetVolumeXML with refresh shows the new capacity; NOT_FOUND for a volume the pool does not hold', async () => {
    const api = ctx.stack.api;
    await createVolume(ctx.stack, POOL, 'xml.img', String(MiB));
    const name = `${POOL}/volumes/xml.img`;
    truncateSync(join(dir, 'xml.img'), Number(2n * MiB));
    expect((await api.getVolumeXml({ name, refresh: false })).xml).to.contain(`<capacity unit='bytes'>${MiB}</capacity>`);
    expect((await api.getVolumeXml({ name, refresh: true })).xml).to.contain(`<capacity unit='bytes'>${2n * MiB}</capacity>`);
    const missing = await api.getVolume({ name: `${POOL}/volumes/none.img`, refresh: true }).then(() => undefined, (e: { code: number }) => e);
    expect(missing?.code).to.equal(5); // NOT_FOUND
  });

  it('cisternctl vol-info and vol-dumpxml show the volume as it is now, as virsh does', async () => {
    await createVolume(ctx.stack, POOL, 'cli.img', String(MiB));
    truncateSync(join(dir, 'cli.img'), Number(5n * MiB));
    const info = await runCli(['vol-info', 'cli.img', '--pool', 'a/reread', '--bytes'], { server: ctx.stack.address });
    expect(info.code, info.stderr).to.equal(0);
    expect(info.stdout).to.match(/^Capacity:\s+5242880 bytes$/m);
    truncateSync(join(dir, 'cli.img'), Number(6n * MiB));
    const xml = await runCli(['vol-dumpxml', 'cli.img', '--pool', 'a/reread', '--xpath', '//capacity/text()'], { server: ctx.stack.address });
    expect(xml.code, xml.stderr).to.equal(0);
    expect(xml.stdout.trim()).to.equal(String(6n * MiB));
  });
});
