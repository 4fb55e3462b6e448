import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { RunningPools } from '../../../services/agent/running-pools.js';

describe('record of running pools (agent restart)', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'cistern-running-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const def = (name: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `/srv/${name}` } });

  it('gives back the definitions saved during the same boot of the host', () => {
    RunningPools.open(root, 'h1', 'boot-1').save([{ definition: def('a') }, { definition: def('b c') }]);
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools.map((r) => r.definition)).to.deep.equal([def('a'), def('b c')]);
    RunningPools.open(root, 'h1', 'boot-1').save([]);
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools).to.deep.equal([]);
  });

  it("keeps an fs pool's mount (id and device number); a mount that is not three non-negative integers is left out, the pool kept", () => {
    const mount = { mountId: 412, major: 7, minor: 0 };
    RunningPools.open(root, 'h1', 'boot-1').save([{ definition: def('fs'), mount }, { definition: def('dir') }]);
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools).to.deep.equal([{ definition: def('fs'), mount }, { definition: def('dir') }]);
    const encoded = Buffer.from(PoolDefinition.encode(def('odd')).finish()).toString('base64');
    for (const odd of [{ mountId: -1, major: 7, minor: 0 }, { mountId: '412', major: 7, minor: 0 }, { mountId: 1.5, major: 7, minor: 0 }, null, 'x']) {
      writeFileSync(join(root, 'running-pools.json'), JSON.stringify({ hostBootId: 'boot-1', pools: [{ definition: encoded, mount: odd }] }));
      expect(RunningPools.open(root, 'h1', 'boot-1').load().pools).to.deep.equal([{ definition: def('odd') }]);
    }
  });

  it('believes nothing after a reboot, without a boot id, or from a damaged file', () => {
    RunningPools.open(root, 'h1', 'boot-1').save([{ definition: def('a') }]);
    expect(RunningPools.open(root, 'h1', 'boot-2').load().pools).to.deep.equal([]);
    expect(RunningPools.open(root, 'h1', '').load().pools).to.deep.equal([]);
    writeFileSync(join(root, 'running-pools.json'), '{"hostBootId":"boot-1","pools":[{"defin');
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools).to.deep.equal([]);
    writeFileSync(join(root, 'running-pools.json'), JSON.stringify({ hostBootId: 'boot-1', pools: [{ definition: '////' }, { definition: Buffer.from(PoolDefinition.encode(def('ok')).finish()).toString('base64') }] }));
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools.map((r) => r.definition.name)).to.deep.equal(['ok']);
  });

  it("are another host's pools for an agent of another host id on the same root (a host renamed): not restored, but named", () => {
    RunningPools.open(root, 'h1', 'boot-1').save([{ definition: def('a') }, { definition: def('b') }]);
    expect(RunningPools.open(root, 'h2', 'boot-1').load()).to.deep.equal({ pools: [], otherHost: { host: 'h1', pools: ['a', 'b'] } });
    expect(RunningPools.open(root, 'h1', 'boot-1').load().pools.map((r) => r.definition.name)).to.deep.equal(['a', 'b']);
  });

  it('a record written before it named its host is the agent\'s own (an upgrade keeps its running pools)', () => {
    writeFileSync(join(root, 'running-pools.json'), JSON.stringify({ hostBootId: 'boot-1', pools: [{ definition: Buffer.from(PoolDefinition.encode(def('old')).finish()).toString('base64') }] }));
    expect(RunningPools.open(root, 'h2', 'boot-1').load().pools.map((r) => r.definition.name)).to.deep.equal(['old']);
  });
});
