// Where a backing store or clone source may be read from (services/agent/storage-locations.ts):
// inside the target of an active file pool, and a directory that only shares the target's
// name as a prefix is not inside it.
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import type { CisternError } from '../../../libs/errors/errors.js';
import { AgentState } from '../../../services/agent/state.js';
import { admitInHostPools } from '../../../services/agent/storage-locations.js';

describe('agent: where backing stores may be read from', () => {
  let root: string;
  let state: AgentState;
  beforeEach(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'cistern-locations-')));
    for (const d of ['p', 'p2', 'p-sibling']) mkdirSync(join(root, d));
    for (const f of ['p/inside', 'p2/f', 'p-sibling/f']) writeFileSync(join(root, f), 'x');
    state = new AgentState('h1');
    const definition = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: join(root, 'p') } });
    state.addPool(definition, { persistent: true, autostart: false }, { capacity: 0n, allocation: 0n, available: 0n, devices: [] });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("admits a file inside an active dir pool's target", () => {
    expect(() => admitInHostPools(state)('inside', join(root, 'p', 'inside'), 'backing store')).to.not.throw();
  });

  it("refuses a file in a sibling directory whose name begins with the target's: PERMISSION_DENIED", () => {
    for (const real of [join(root, 'p2', 'f'), join(root, 'p-sibling', 'f')]) {
      let err: CisternError | undefined;
      try {
        admitInHostPools(state)('../x', real, 'backing store');
      } catch (e) {
        err = e as CisternError;
      }
      expect(err?.code, real).to.equal('PERMISSION_DENIED');
      expect(err?.message).to.equal(
        "backing store '../x' is, with its links followed, in none of the active pools of host 'h1'; a backing store or clone source must be a volume of a pool on the same host",
      );
    }
  });
});
