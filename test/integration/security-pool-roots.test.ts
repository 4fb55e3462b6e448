// cistern-agent --pool-roots: an admin's pool may not be put on /root/.ssh, /etc or any other
// directory outside the roots the host's operator allowed (found by review h34: a dir pool on
// .ssh takes an uploaded authorized_keys, the agent runs as root). Real nats-server,
// coordinator and agent a, whose roots are one directory.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PoolDefinition, PoolState, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { expectCode } from '../support/grpc-expect.js';
import { makeTempDir, startStack, type Stack } from '../support/index.js';

describe('security: --pool-roots keeps pools where the host allows them (real stack)', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let allowed: string;
  let outside: string;

  before(async function () {
    this.timeout(60_000);
    tmp = makeTempDir('cistern-pool-roots-');
    allowed = join(tmp.path, 'allowed');
    outside = join(tmp.path, 'outside');
    mkdirSync(allowed);
    mkdirSync(outside);
    writeFileSync(join(outside, 'authorized_keys'), 'ssh-ed25519 AAAA... operator\n');
    stack = await startStack({ hosts: ['a'], agentArgs: ['--pool-roots', allowed] });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  const dirPool = (name: string, path: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path } });

  it('a pool outside the roots is PERMISSION_DENIED at create, start and build; nothing is made', async () => {
    const api = stack!.api;
    const target = join(outside, 'pool');
    await expectCode(api.createPool({ host: 'a', definition: dirPool('out', target), xml: '', build: true, buildFlags: undefined, requestId: '' }),
      status.PERMISSION_DENIED, new RegExp(`pool 'out' has its target '${target}' outside this host's pool roots \\('${allowed}', '[^']+'\\); the agent's --pool-roots says where pools may be`));
    expect(existsSync(target)).to.equal(false);
    // defined (the coordinator cannot know the host's roots), but never built or started
    await api.definePool({ host: 'a', definition: dirPool('out', target), xml: '', requestId: '', validate: false });
    await expectCode(api.buildPool({ name: 'hosts/a/pools/out', flags: undefined, requestId: '' }), status.PERMISSION_DENIED, /outside this host's pool roots/);
    await expectCode(api.startPool({ name: 'hosts/a/pools/out', build: true, buildFlags: undefined, requestId: '' }), status.PERMISSION_DENIED, /outside this host's pool roots/);
    expect(existsSync(target)).to.equal(false);
    expect((await api.getPool({ name: 'hosts/a/pools/out' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.undefinePool({ name: 'hosts/a/pools/out', requestId: '' });
  });

  it('an existing directory outside (a .ssh) cannot become a pool, not even through a link inside the roots', async () => {
    const api = stack!.api;
    await expectCode(api.createPool({ host: 'a', definition: dirPool('ssh', outside), xml: '', build: false, buildFlags: undefined, requestId: '' }),
      status.PERMISSION_DENIED, /outside this host's pool roots/);
    const link = join(allowed, 'link-out');
    symlinkSync(outside, link);
    await expectCode(api.createPool({ host: 'a', definition: dirPool('via-link', link), xml: '', build: false, buildFlags: undefined, requestId: '' }),
      status.PERMISSION_DENIED, new RegExp(`target '${link}' \\(it resolves to '${outside}'\\) outside`));
    await expectCode(api.getPool({ name: 'hosts/a/pools/via-link' }), status.NOT_FOUND);
  });

  it('a pool in the roots, or under them, works as always', async () => {
    const api = stack!.api;
    const pool = await api.createPool({ host: 'a', definition: dirPool('inside', join(allowed, 'p', 'q')), xml: '', build: true, buildFlags: undefined, requestId: '' });
    expect(pool.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(existsSync(join(allowed, 'p', 'q'))).to.equal(true);
    await api.stopPool({ name: 'hosts/a/pools/inside', requestId: '' });
  });

  // the agent's --root counts as a pool root (its default pools live there), but its own state
  // lives there too: the journal whose records of interrupted creates the agent acts on at its
  // next start, whatever pool they name. A pool there let an admin upload such a record (a
  // create of 'authorized_keys' in a pool on /root/.ssh), and the agent's next start deleted
  // that file (review h35).
  it("the agent's own root and journal cannot become a pool's target: its records would act outside the roots", async () => {
    const api = stack!.api;
    const root = stack!.roots.a!;
    mkdirSync(join(root, 'journal', 'inside'));
    const cases = [['state', root], ['journal', join(root, 'journal')], ['in-journal', join(root, 'journal', 'inside')], ['journal-link', join(allowed, 'state-link')]] as const;
    for (const [name, target] of cases) {
      if (name === 'journal-link') symlinkSync(join(root, 'journal'), target);
      await expectCode(api.createPool({ host: 'a', definition: dirPool(name, target), xml: '', build: false, buildFlags: undefined, requestId: '' }),
        status.PERMISSION_DENIED, /is the agent's own state/);
      await expectCode(api.getPool({ name: `hosts/a/pools/${name}` }), status.NOT_FOUND);
    }
  });
});
