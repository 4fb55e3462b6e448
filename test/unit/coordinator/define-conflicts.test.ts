// DefinePool checks its rules against the cache at a bucket revision and writes only over that
// revision (define-conflicts.ts): a write that finds the bucket moved is checked again on the
// cache caught up with what moved it, and a bucket that never stops moving is ABORTED with
// nothing written, never written first and taken back.
import { expect } from 'chai';
import { AbortedError } from '../../../libs/errors/errors.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { CatalogWatermark } from '../../../services/coordinator/catalog-watermark.js';
import type { CoordinatorServices } from '../../../services/coordinator/context.js';
import { withCatalogUnmoved } from '../../../services/coordinator/define-conflicts.js';

function setup() {
  const bucket = { revision: 10, pools: 8 };
  const catalogWatermark = new CatalogWatermark();
  catalogWatermark.advance(8);
  const catalog = { bucketRevision: async () => bucket.revision, lastPoolRevision: async () => bucket.pools };
  const svc = { catalog, catalogWatermark, log: silentLogger } as unknown as CoordinatorServices;
  return { svc, bucket, catalogWatermark };
}

describe('DefinePool: checked and written over one catalog revision (define-conflicts)', () => {
  it('a write that found the bucket moved is decided again once the cache holds what moved it', async () => {
    const { svc, bucket, catalogWatermark } = setup();
    const seen: Array<{ bucket: number; cache: number }> = [];
    const result = await withCatalogUnmoved(svc, 'a', 'p', async (at) => {
      seen.push({ bucket: at, cache: catalogWatermark.value });
      if (seen.length === 1) {
        // another coordinator's define lands between this check and this write
        bucket.revision = 11;
        bucket.pools = 11;
        setTimeout(() => catalogWatermark.advance(11), 0); // the watch delivers it
        return undefined;
      }
      return 'defined';
    });
    expect(result).to.equal('defined');
    expect(seen).to.deep.equal([
      { bucket: 10, cache: 8 },
      { bucket: 11, cache: 11 },
    ]);
  });

  it('twenty defines at once all get through: each round one of them writes, the others check again', async () => {
    // two coordinators defining twenty pools at once (test/integration/operations.test.ts): with
    // a fixed count of attempts the last ones were ABORTED, though each round one of them wrote
    const { svc, bucket, catalogWatermark } = setup();
    const define = (i: number) =>
      withCatalogUnmoved(svc, 'a', `p${i}`, async (at) => {
        await new Promise((r) => setImmediate(r)); // the check and the write's round trip
        if (bucket.revision !== at) return undefined;
        bucket.revision++;
        bucket.pools = bucket.revision;
        catalogWatermark.advance(bucket.revision);
        return i;
      });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => define(i)));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).to.deep.equal([]);
    expect(bucket.revision).to.equal(30);
  });

  it('a bucket that keeps moving: ABORTED naming the pool once its time is up, each check over a newer revision', async () => {
    const { svc, bucket } = setup();
    const revisions: number[] = [];
    const err = await withCatalogUnmoved(
      svc,
      'a',
      'p',
      async (at) => {
        revisions.push(at);
        bucket.revision++; // a host record written each time: no pool entry to wait for
        return undefined;
      },
      200,
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(AbortedError);
    expect((err as Error).message).to.match(new RegExp(`^the catalog kept changing while pool 'p' on host 'a' was being defined \\(${revisions.length} attempts in 0 s\\); nothing was defined; retry$`));
    expect(revisions.length).to.be.greaterThan(1);
    expect(new Set(revisions).size).to.equal(revisions.length);
  });
});
