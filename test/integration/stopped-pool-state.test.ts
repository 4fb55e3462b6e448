// What a stopped pool shows, as libvirt 9.0 shows it. libvirt's storagePoolDestroy keeps the
// pool's live definition (virStoragePoolObj's def) when nothing was redefined meanwhile: its
// capacity, allocation and available as the last refresh left them, and (dir, fs, netfs) the
// target's mode, owner and group that refresh read (virStorageBackendRefreshLocal). So
// pool-dumpxml, with or without --inactive, and virStoragePoolGetInfo still give them after
// pool-destroy, after pool-build and pool-delete, and after a start that failed; a define
// replaces the definition (virStoragePoolObjAssignDef: sizes 0, permissions as defined), and
// a libvirtd restart reads the pool from its config file (sizes 0). virsh's pool-info prints
// no sizes for a pool that is not running.
import { expect } from 'chai';
import { chmodSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { useStack, useTempDir } from '../support/index.js';
import { dirPool } from './reliability-helpers.js';
import { PoolState, type Pool } from '../../libs/proto/cistern/v1/storage.js';

const sizesOf = (p: Pool) => [p.capacity, p.allocation, p.available];
const sizesXml = (p: Pool) =>
  `<capacity unit='bytes'>${p.capacity}</capacity>\n  <allocation unit='bytes'>${p.allocation}</allocation>\n  <available unit='bytes'>${p.available}</available>`;
const ZERO_XML = "<capacity unit='bytes'>0</capacity>\n  <allocation unit='bytes'>0</allocation>\n  <available unit='bytes'>0</available>";

describe('a stopped pool keeps its last sizes and target permissions, as libvirt (real nats-server, agent a)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-stopped-pool-it-');

  async function runningPool(name: string, path: string) {
    const api = ctx.stack.api;
    const defined = await api.definePool({ host: 'a', definition: dirPool(name, path), xml: '', requestId: '', validate: false });
    await api.buildPool({ name: defined.name, flags: undefined, requestId: '' });
    chmodSync(path, 0o750);
    const started = await api.startPool({ name: defined.name, build: false, buildFlags: undefined, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(started.capacity > 0n).to.equal(true);
    return started;
  }

  it('pool-destroy: GetPool, pool-dumpxml and --inactive show the sizes and permissions it ran with; pool-info shows no sizes', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p1');
    const running = await runningPool('p1', path);
    const st = statSync(path);
    const perms = `<permissions>\n      <mode>0750</mode>\n      <owner>${st.uid}</owner>\n      <group>${st.gid}</group>\n    </permissions>`;
    expect((await api.getPoolXml({ name: running.name, inactive: false })).xml).to.contain(sizesXml(running)).and.to.contain(perms);

    const stopped = await api.stopPool({ name: running.name, requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect(sizesOf(stopped)).to.deep.equal(sizesOf(running));
    const got = await api.getPool({ name: running.name });
    expect([got.state, ...sizesOf(got)]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, ...sizesOf(running)]);
    for (const inactive of [false, true]) {
      const xml = (await api.getPoolXml({ name: running.name, inactive })).xml;
      expect(xml, `inactive=${inactive}`).to.contain(sizesXml(running)).and.to.contain(perms);
    }
    const dumped = await ctx.stack.cli(['pool-dumpxml', 'a/p1']);
    expect(dumped.stdout).to.contain(sizesXml(running)).and.to.contain(perms);
    // virsh's cmdPoolInfo prints sizes only for a running (or degraded) pool
    const info = await ctx.stack.cli(['pool-info', 'a/p1']);
    expect(info.code, info.stderr).to.equal(0);
    expect(info.stdout).to.match(/^State: +inactive$/m).and.not.to.contain('Capacity:');

    // pool-build and pool-delete change nothing of it; neither does a start that fails
    await api.buildPool({ name: running.name, flags: undefined, requestId: '' });
    await api.deletePool({ name: running.name, requestId: '' });
    await api.startPool({ name: running.name, build: false, buildFlags: undefined, requestId: '' }).then(
      () => expect.fail('the start of a pool whose directory is gone succeeded'),
      () => undefined,
    );
    expect(sizesOf(await api.getPool({ name: running.name }))).to.deep.equal(sizesOf(running));
    expect((await api.getPoolXml({ name: running.name, inactive: true })).xml).to.contain(sizesXml(running)).and.to.contain(perms);
    // nor autostart
    await api.setPoolAutostart({ name: running.name, autostart: true, requestId: '' });
    expect(sizesOf(await api.getPool({ name: running.name }))).to.deep.equal(sizesOf(running));
    await api.setPoolAutostart({ name: running.name, autostart: false, requestId: '' });
    await api.undefinePool({ name: running.name, requestId: '' });
  });

  it('a coordinator restart keeps them (the agent is the host\'s libvirtd); an agent restart forgets them, as a libvirtd restart', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p2');
    const running = await runningPool('p2', path);
    await api.stopPool({ name: running.name, requestId: '' });
    await ctx.stack.restartCoordinator();
    await ctx.stack.waitForHosts(['a']);
    const again = ctx.stack.api;
    expect(sizesOf(await again.getPool({ name: running.name }))).to.deep.equal(sizesOf(running));
    expect((await again.getPoolXml({ name: running.name, inactive: false })).xml).to.contain(sizesXml(running)).and.to.contain('<mode>0750</mode>');

    await ctx.stack.restartAgent('a');
    const after = await again.getPool({ name: running.name });
    expect([after.state, ...sizesOf(after)]).to.deep.equal([PoolState.POOL_STATE_INACTIVE, 0n, 0n, 0n]);
    const xml = (await again.getPoolXml({ name: running.name, inactive: false })).xml;
    expect(xml).to.contain(ZERO_XML).and.not.to.contain('<permissions>');
    await again.undefinePool({ name: running.name, requestId: '' });
  });

  it('a define of the stopped pool replaces what it kept (sizes 0, permissions as defined), as virStoragePoolObjAssignDef', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p3');
    const running = await runningPool('p3', path);
    await api.stopPool({ name: running.name, requestId: '' });
    expect(sizesOf(await api.getPool({ name: running.name }))).to.deep.equal(sizesOf(running));
    // the same definition again: libvirt replaces the inactive pool's def all the same
    await api.definePool({ host: 'a', definition: running.definition, xml: '', requestId: '', validate: false });
    const redefined = await api.getPool({ name: running.name });
    expect(sizesOf(redefined)).to.deep.equal([0n, 0n, 0n]);
    for (const inactive of [false, true]) {
      const xml = (await api.getPoolXml({ name: running.name, inactive })).xml;
      expect(xml, `inactive=${inactive}`).to.contain(ZERO_XML).and.not.to.contain('<permissions>');
    }
    await api.undefinePool({ name: running.name, requestId: '' });
  });

  it('a define while it runs, even of the same definition, is the one it stops with: sizes 0 (libvirt\'s newDef)', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p5');
    const running = await runningPool('p5', path);
    await api.definePool({ host: 'a', definition: running.definition, xml: '', requestId: '', validate: false });
    await api.stopPool({ name: running.name, requestId: '' });
    expect(sizesOf(await api.getPool({ name: running.name }))).to.deep.equal([0n, 0n, 0n]);
    expect((await api.getPoolXml({ name: running.name, inactive: false })).xml).to.contain(ZERO_XML).and.not.to.contain('<permissions>');
    // after a coordinator restart too: the agent's sync says the same
    await ctx.stack.restartCoordinator();
    await ctx.stack.waitForHosts(['a']);
    expect(sizesOf(await ctx.stack.api.getPool({ name: running.name }))).to.deep.equal([0n, 0n, 0n]);
    await ctx.stack.api.undefinePool({ name: running.name, requestId: '' });
  });

  it('CreatePool with a defined pool\'s uuid: the stored definition keeps its last run\'s sizes while the other runs and after (libvirt\'s ADD_LIVE newDef)', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p6');
    const running = await runningPool('p6', path);
    await api.stopPool({ name: running.name, requestId: '' });
    const uuid = running.definition!.uuid;
    const live = await api.createPool({ host: 'a', definition: dirPool('p6', join(scratch.path, 'p6-live'), uuid), xml: '', build: true, buildFlags: undefined, requestId: '' });
    expect(live.state).to.equal(PoolState.POOL_STATE_RUNNING);
    // --inactive: the stored definition (newDef), which is the old def with what it kept
    const pending = (await api.getPoolXml({ name: running.name, inactive: true })).xml;
    expect(pending).to.contain(`<path>${path}</path>`).and.to.contain(sizesXml(running)).and.to.contain('<mode>0750</mode>');
    await api.stopPool({ name: running.name, requestId: '' });
    const after = await api.getPool({ name: running.name });
    expect([after.definition?.target?.path, ...sizesOf(after)]).to.deep.equal([path, ...sizesOf(running)]);
    expect((await api.getPoolXml({ name: running.name, inactive: false })).xml).to.contain(sizesXml(running)).and.to.contain('<mode>0750</mode>');
    await api.undefinePool({ name: running.name, requestId: '' });
  });

  it('a transient pool is gone once stopped; one defined again after an undefine starts from nothing', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'p4');
    const running = await runningPool('p4', path);
    await api.stopPool({ name: running.name, requestId: '' });
    await api.undefinePool({ name: running.name, requestId: '' });
    await api.definePool({ host: 'a', definition: running.definition, xml: '', requestId: '', validate: false });
    expect(sizesOf(await api.getPool({ name: running.name }))).to.deep.equal([0n, 0n, 0n]);
    expect((await api.getPoolXml({ name: running.name, inactive: false })).xml).to.contain(ZERO_XML).and.not.to.contain('<permissions>');
    await api.undefinePool({ name: running.name, requestId: '' });
    rmSync(path, { recursive: true, force: true });

    const created = await api.createPool({ host: 'a', definition: dirPool('t1', join(scratch.path, 't1')), xml: '', build: true, buildFlags: undefined, requestId: '' });
    await api.stopPool({ name: created.name, requestId: '' });
    await api.getPool({ name: created.name }).then(
      () => expect.fail('a stopped transient pool is still there'),
      (err: { code?: number }) => expect(err.code).to.equal(5),
    );
  });
});
