// DefinePool's check after its write (define-conflicts.ts): of two defines that may not both
// exist (one directory, one uuid), the one written to the catalog first stands. "First" is
// when each pool came into the catalog, not its entry's latest revision: a pool-define followed
// at once by pool-autostart (or a redefinition) moves the earlier pool's entry past the racing
// define's revision before that define's check reads it, and the check skipped it: both stood.
import { expect } from 'chai';
import { AlreadyExistsError } from '../../../libs/errors/errors.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { CatalogWatermark } from '../../../services/coordinator/catalog-watermark.js';
import type { CoordinatorServices } from '../../../services/coordinator/context.js';
import { refuseIfDefinedMeanwhile } from '../../../services/coordinator/define-conflicts.js';

const dirDef = (name: string, path: string) => PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, uuid: `uuid-${name}`, target: { path } });
const entry = (def: PoolDefinition, autostart = false) => CatalogPool.fromPartial({ definition: def, persistent: true, autostart });

function setup() {
  const cache = new FleetCache();
  const catalogWatermark = new CatalogWatermark();
  // the bucket's history of each key, as Catalog.valueBefore reads it
  const history = new Map<string, Array<{ value: CatalogPool | undefined; revision: number }>>();
  const catalog = {
    valueBefore: async (host: string, pool: string, revision: number) =>
      (history.get(`${host}/${pool}`) ?? []).filter((e) => e.revision < revision).at(-1)?.value,
  };
  const svc = { cache, catalog, catalogWatermark, log: silentLogger } as unknown as CoordinatorServices;
  /** A write to the bucket, as the catalog watch delivers it: into the cache, then the watermark. */
  const deliver = (pool: string, value: CatalogPool | undefined, revision: number): void => {
    const h = history.get(`a/${pool}`) ?? [];
    history.set(`a/${pool}`, [...h, { value, revision }]);
    cache.applyCatalog('a', pool, value, revision);
    catalogWatermark.advance(revision);
  };
  return { svc, deliver };
}

describe('DefinePool: the define written first stands (define-conflicts)', () => {
  it('a pool written before the define, and changed again before the check, still refuses it (taken back)', async () => {
    const { svc, deliver } = setup();
    const b = dirDef('b', '/srv/shared');
    const a = dirDef('a', '/srv/shared');
    deliver('b', entry(b), 20); // pool-define b
    deliver('a', entry(a), 21); // the racing define of a, on the same directory
    deliver('b', entry(b, true), 22); // pool-autostart b, read before a's check runs
    let undone = 0;
    const err = await refuseIfDefinedMeanwhile(svc, 'a', a, 21, async () => void undone++).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect((err as Error).message).to.match(/storage source conflict with pool 'b'/);
    expect(undone).to.equal(1);
  });

  it('a pool that came into the catalog after the define does not refuse it', async () => {
    const { svc, deliver } = setup();
    const a = dirDef('a', '/srv/shared');
    const b = dirDef('b', '/srv/shared');
    deliver('a', entry(a), 21);
    deliver('b', entry(b), 22);
    await refuseIfDefinedMeanwhile(svc, 'a', a, 21, async () => expect.fail('a stands: nothing to take back'));
  });

  it('a pool undefined and defined again after the define counts from its new definition', async () => {
    const { svc, deliver } = setup();
    const a = dirDef('a', '/srv/shared');
    const b = dirDef('b', '/srv/shared');
    deliver('b', entry(dirDef('b', '/srv/elsewhere')), 10);
    deliver('a', entry(a), 21);
    deliver('b', undefined, 22);
    deliver('b', entry(b), 23);
    await refuseIfDefinedMeanwhile(svc, 'a', a, 21, async () => expect.fail('a stands: nothing to take back'));
  });

  it('a pool redefined onto the directory after the define does not refuse it (the redefinition is the one refused)', async () => {
    const { svc, deliver } = setup();
    const a = dirDef('a', '/srv/shared');
    deliver('b', entry(dirDef('b', '/srv/elsewhere')), 10);
    deliver('a', entry(a), 21);
    deliver('b', entry(dirDef('b', '/srv/shared')), 23);
    await refuseIfDefinedMeanwhile(svc, 'a', a, 21, async () => expect.fail('a stands: nothing to take back'));
    let undone = 0;
    const err = await refuseIfDefinedMeanwhile(svc, 'a', dirDef('b', '/srv/shared'), 23, async () => void undone++).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(AlreadyExistsError);
    expect(undone).to.equal(1);
  });
});
