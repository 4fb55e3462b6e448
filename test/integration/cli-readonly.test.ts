// cisternctl -r and -t against real processes: the read-only connection wraps the real gRPC
// client (a refused call sends nothing: the pool stays running, the volume stays), reads work
// through it, and -t's line follows each command.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { createVolume, startDirPool } from './reliability-helpers.js';

describe('cisternctl -r/--readonly and -t/--timing (real processes)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-cli-readonly-');

  before(async function () {
    this.timeout(60_000);
    await startDirPool(ctx.stack, 'a', 'ro', join(scratch.path, 'ro'));
    await createVolume(ctx.stack, 'hosts/a/pools/ro', 'v', '1048576');
  });

  it('refuses pool-destroy and vol-delete in libvirt\'s words and changes nothing', async () => {
    const destroy = await ctx.stack.cli(['-r', 'pool-destroy', 'ro']);
    expect(destroy.stderr).to.equal('error: Failed to destroy pool ro\nerror: operation forbidden: read only access prevents virStoragePoolDestroy\n');
    expect(destroy.code).to.equal(1);
    const del = await ctx.stack.cli(['--readonly', 'vol-delete', 'v', '--pool', 'ro']);
    expect(del.stderr).to.equal('error: Failed to delete vol v\nerror: operation forbidden: read only access prevents virStorageVolDelete\n');
    const info = await ctx.stack.cli(['-r', 'pool-info', 'ro']);
    expect(info.code).to.equal(0);
    expect(info.stdout).to.match(/State: +running/);
    expect(existsSync(join(scratch.path, 'ro', 'v'))).to.equal(true);
  });

  it('-rt lists volumes and prints the time after the listing', async () => {
    const r = await ctx.stack.cli(['-rt', 'vol-list', 'ro']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/ v +\S+\/ro\/v *\n\n\(Time: \d+\.\d{3} ms\)\n\n$/);
  });
});
