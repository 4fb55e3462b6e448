import { expect } from 'chai';
import { PoolDefinition, PoolState, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { AgentState, RevisionCounter, applyRefresh, sameVolume } from '../../../services/agent/state.js';

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/tmp/p' } });
const runtime = { capacity: 100n, allocation: 10n, available: 90n };
const vol = (name: string, capacity: bigint, atime = '1.0') =>
  VolumeDefinition.fromPartial({ name, capacity, allocation: 0n, target: { path: `/tmp/p/${name}`, format: 'raw', timestamps: { atime, mtime: '2.0' } } });

describe('agent state', () => {
  it('revisions start from the clock times 1000 and only grow', () => {
    const before = BigInt(Date.now()) * 1000n;
    const counter = new RevisionCounter();
    const a = counter.next();
    const b = counter.next();
    expect(a >= before).to.equal(true);
    expect(b > a).to.equal(true);
  });

  it('a refresh of a fresh pool reports every volume as changed', () => {
    const state = new AgentState('h1');
    const pool = state.addPool(poolDef, { persistent: true, autostart: false }, runtime);
    const diff = applyRefresh(state, pool, [vol('a', 1n), vol('b', 2n)]);
    expect(diff.changed.map((v) => v.definition.name)).to.deep.equal(['a', 'b']);
    expect(diff.removed).to.have.length(0);
    expect(state.poolMessage(pool).volumeCount).to.equal(2);
  });

  it('a second refresh reports only new, changed and removed volumes', () => {
    const state = new AgentState('h1');
    const pool = state.addPool(poolDef, { persistent: true, autostart: false }, runtime);
    applyRefresh(state, pool, [vol('a', 1n), vol('b', 2n), vol('c', 3n)]);
    const revA = pool.volumes.get('a')!.revision;
    const diff = applyRefresh(state, pool, [vol('a', 1n, '9.9'), vol('b', 20n), vol('d', 4n)]);
    expect(diff.changed.map((v) => v.definition.name).sort()).to.deep.equal(['b', 'd']);
    expect(diff.removed.map((v) => v.definition.name)).to.deep.equal(['c']);
    expect(pool.volumes.get('a')!.revision).to.equal(revA); // only atime changed
    expect(diff.removed[0]!.revision > pool.volumes.get('d')!.revision).to.equal(true);
    expect([...pool.volumes.keys()].sort()).to.deep.equal(['a', 'b', 'd']);
  });

  it('a refresh leaves volumes with work in progress alone', () => {
    const state = new AgentState('h1');
    const pool = state.addPool(poolDef, { persistent: false, autostart: false }, runtime);
    applyRefresh(state, pool, [vol('busy', 1n), vol('gone', 1n)]);
    const diff = applyRefresh(state, pool, [vol('new-being-created', 5n)], (n) => n === 'busy' || n === 'new-being-created');
    expect(diff.changed).to.have.length(0);
    expect(diff.removed.map((v) => v.definition.name)).to.deep.equal(['gone']);
    expect(pool.volumes.has('busy')).to.equal(true);
    expect(pool.volumes.has('new-being-created')).to.equal(false);
  });

  it('builds resource names and states for pools and volumes', () => {
    const state = new AgentState('h1');
    const pool = state.addPool(poolDef, { persistent: true, autostart: true }, runtime);
    const v = state.setVolume(pool, vol('disk', 7n));
    const pm = state.poolMessage(pool);
    expect(pm.name).to.equal('hosts/h1/pools/p');
    expect(pm.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(pm.capacity).to.equal(100n);
    expect(pm.autostart).to.equal(true);
    const vm = state.volumeMessage('p', v);
    expect(vm.name).to.equal('hosts/h1/pools/p/volumes/disk');
    expect(vm.pool).to.equal('p');
    const snap = state.snapshot();
    expect(snap.pools).to.have.length(1);
    expect(snap.volumes.map((x) => x.name)).to.deep.equal(['hosts/h1/pools/p/volumes/disk']);
    const stopped = state.inactivePoolMessage(poolDef, pool);
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect(stopped.revision > pm.revision).to.equal(true);
  });

  it("compares volumes ignoring only the access time and the backing file's timestamps", () => {
    expect(sameVolume(vol('a', 1n, '1.0'), vol('a', 1n, '5.0'))).to.equal(true);
    expect(sameVolume(vol('a', 1n), vol('a', 2n))).to.equal(false);
    const changed = (edit: (v: ReturnType<typeof vol>) => void) => {
      const v = vol('a', 1n);
      edit(v);
      return sameVolume(vol('a', 1n), v);
    };
    expect(changed((v) => (v.target!.timestamps!.mtime = '3.0'))).to.equal(false);
    expect(changed((v) => (v.target!.format = 'qcow2'))).to.equal(false);
    expect(changed((v) => (v.target!.permissions = { mode: 0o644, owner: 0n, group: 0n, label: '' }))).to.equal(false);
    expect(changed((v) => (v.backingStore = { path: '/b', format: 'raw', permissions: undefined, timestamps: undefined }))).to.equal(false);
    expect(changed((v) => (v.target!.timestamps!.atime = '9.0'))).to.equal(true);
    const backed = (format: string, mtime: string) => {
      const v = vol('a', 1n);
      v.backingStore = { path: '/b', format, permissions: undefined, timestamps: { atime: '1.0', mtime, ctime: mtime, btime: '' } };
      return v;
    };
    expect(sameVolume(backed('raw', '2.0'), backed('raw', '7.0'))).to.equal(true);
    expect(sameVolume(backed('raw', '2.0'), backed('qcow2', '2.0'))).to.equal(false);
    expect(sameVolume(backed('raw', '2.0'), vol('a', 1n))).to.equal(false);
  });
});
