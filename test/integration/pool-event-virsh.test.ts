// `cisternctl pool-event` against what `virsh pool-event` printed for the same commands on a
// dir pool (virsh 9.0, a private libvirtd, captured by hand: see the expectations below). The
// commands run first; the events are then read back with `--after`, so nothing depends on when
// a watcher got positioned.
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { useStack, useTempDir } from '../support/index.js';
import type { StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';

/** The sequence the next event will get (WatchEvents' x-cistern-start-sequence). */
function nextSequence(client: StorageServiceClient): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const call = client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: false });
    call.on('error', () => undefined);
    call.once('metadata', (md: Metadata) => {
      call.cancel();
      resolve(BigInt(String(md.get('x-cistern-start-sequence')[0])));
    });
    call.once('error', reject);
  });
}

describe('cisternctl pool-event prints what virsh 9.0 prints for the same commands (real processes, one host)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-pool-event-virsh-');

  it('lifecycle and refresh lines of define, build, start (also with --build), refresh, volume work, upload, destroy, delete, undefine', async () => {
    const cli = async (...args: string[]): Promise<number | null> => (await ctx.stack.cli(args)).code;
    const dir = scratch.path;
    const start = await nextSequence(ctx.stack.client);

    expect(await cli('pool-define-as', 'p1', 'dir', '--target', join(dir, 'p1'))).to.equal(0);
    expect(await cli('pool-build', 'p1')).to.equal(0);
    expect(await cli('pool-start', 'p1')).to.equal(0);
    expect(await cli('pool-refresh', 'p1')).to.equal(0);
    expect(await cli('vol-create-as', 'p1', 'v1', '1M')).to.equal(0);
    expect(await cli('vol-clone', 'v1', 'v2', '--pool', 'p1')).to.equal(0);
    expect(await cli('vol-wipe', 'v1', '--pool', 'p1')).to.equal(0);
    expect(await cli('vol-resize', 'v1', '2M', '--pool', 'p1')).to.equal(0);
    expect(await cli('vol-delete', 'v2', '--pool', 'p1')).to.equal(0);
    writeFileSync(join(dir, 'up.txt'), 'hello\n');
    expect(await cli('vol-upload', 'v1', join(dir, 'up.txt'), '--pool', 'p1')).to.equal(0);
    expect(await cli('pool-autostart', 'p1')).to.equal(0);
    expect(await cli('pool-autostart', 'p1', '--disable')).to.equal(0);
    expect(await cli('vol-delete', 'v1', '--pool', 'p1')).to.equal(0);
    expect(await cli('pool-destroy', 'p1')).to.equal(0);
    expect(await cli('pool-delete', 'p1')).to.equal(0);
    expect(await cli('pool-undefine', 'p1')).to.equal(0);
    // building as part of a start or a create: libvirt sends no Created for it
    expect(await cli('pool-create-as', 'p2', 'dir', '--target', join(dir, 'p2'), '--build')).to.equal(0);
    expect(await cli('pool-destroy', 'p2')).to.equal(0);
    expect(await cli('pool-define-as', 'p3', 'dir', '--target', join(dir, 'p3'))).to.equal(0);
    expect(await cli('pool-start', 'p3', '--build')).to.equal(0);
    // refused: no event
    expect(await cli('pool-start', 'p3')).to.equal(1);
    expect(await cli('pool-undefine', 'p3')).to.equal(1);
    expect(await cli('pool-destroy', 'p3')).to.equal(0);

    const after = String(start - 1n);
    const lifecycle = await ctx.stack.cli(['pool-event', '--event', 'lifecycle', '--loop', '--timeout', '1', '--after', after]);
    expect(lifecycle.code, lifecycle.stderr).to.equal(0);
    // virsh -c URI pool-event --event lifecycle --loop --timeout 10, the same commands run meanwhile
    expect(lifecycle.stdout).to.equal(
      "event 'lifecycle' for storage pool p1: Defined\n" +
      "event 'lifecycle' for storage pool p1: Created\n" +
      "event 'lifecycle' for storage pool p1: Started\n" +
      "event 'lifecycle' for storage pool p1: Stopped\n" +
      "event 'lifecycle' for storage pool p1: Deleted\n" +
      "event 'lifecycle' for storage pool p1: Undefined\n" +
      "event 'lifecycle' for storage pool p2: Started\n" +
      "event 'lifecycle' for storage pool p2: Stopped\n" +
      "event 'lifecycle' for storage pool p3: Defined\n" +
      "event 'lifecycle' for storage pool p3: Started\n" +
      "event 'lifecycle' for storage pool p3: Stopped\n" +
      'event loop timed out\n' +
      'events received: 11\n' +
      '\n',
    );
    // pool-refresh, and the refresh that ends an upload
    const refresh = await ctx.stack.cli(['pool-event', '--event', 'refresh', '--loop', '--timeout', '1', '--after', after]);
    expect(refresh.code, refresh.stderr).to.equal(0);
    expect(refresh.stdout).to.equal(
      "event 'refresh' for storage pool p1\n" +
      "event 'refresh' for storage pool p1\n" +
      'event loop timed out\n' +
      'events received: 2\n' +
      '\n',
    );
  });
});
