// cistern-agent --pool-roots (services/agent/pool-roots.ts): what is inside the roots, what is
// not, and the agent's own state, which no pool may be put over even though its root counts
// as a pool root.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { PoolRoots } from '../../../services/agent/pool-roots.js';
import { PermissionDeniedError } from '../../../libs/errors/errors.js';

describe('pool roots', () => {
  let dir: string;
  let roots: PoolRoots;
  let agentRoot: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-pool-roots-'));
    mkdirSync(join(dir, 'pools'));
    agentRoot = join(dir, 'pools', 'agent');
    mkdirSync(join(agentRoot, 'journal'), { recursive: true });
    roots = PoolRoots.of([join(dir, 'pools')], agentRoot)!;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const pool = (path: string, type = PoolType.POOL_TYPE_DIR) => PoolDefinition.fromPartial({ type, name: 'p', target: { path } });
  const refusal = async (path: string, type?: PoolType): Promise<string | undefined> => {
    try {
      await roots.require(pool(path, type));
      return undefined;
    } catch (err) {
      expect(err).to.be.instanceOf(PermissionDeniedError);
      return (err as Error).message;
    }
  };

  it('a directory under a root whose name begins with two dots is inside it', async () => {
    expect(await refusal(join(dir, 'pools', '..data'))).to.equal(undefined);
    expect(await refusal(join(dir, 'pools', '...'))).to.equal(undefined);
    expect(await refusal(join(dir, 'pools-2'))).to.match(/outside this host's pool roots/);
  });

  it("the agent's root, its journal and what holds them are no pool's, whatever the type; a pool beside them is", async () => {
    symlinkSync(join(agentRoot, 'journal'), join(dir, 'pools', 'to-journal'));
    for (const type of [PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]) {
      for (const path of [agentRoot, `${agentRoot}/`, join(agentRoot, 'journal'), join(agentRoot, 'journal', 'new'), join(dir, 'pools', 'to-journal'), join(dir, 'pools')]) {
        expect(await refusal(path, type), `${PoolType[type]} ${path}`).to.match(/is the agent's own state|holds the agent's own state/);
      }
      // outside every root is said so first, though '/' holds the agent's root too
      expect(await refusal('/', type)).to.match(/outside this host's pool roots/);
      expect(await refusal(join(agentRoot, 'images'), type)).to.equal(undefined);
      expect(await refusal(join(dir, 'pools', 'images'), type)).to.equal(undefined);
    }
  });
});
