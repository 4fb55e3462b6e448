// ListSecrets pages stay under the 4 MiB a gRPC client accepts by default, as the pool and
// volume listings do: 2,000 secrets with 3 KB descriptions made one page of 6 MB, which
// Python, Go, C++ and Java clients refuse (found by review h32).
import { expect } from 'chai';
import { ListSecretsResponse, Secret, SecretUsageType } from '../../../libs/proto/cistern/v1/storage.js';
import { listSecrets } from '../../../services/coordinator/handlers/secrets.js';
import type { CallContext, CoordinatorServices } from '../../../services/coordinator/context.js';

describe('ListSecrets pages', () => {
  const secrets = Array.from({ length: 2000 }, (_, i) => {
    const uuid = `${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`;
    return Secret.create({ name: `secrets/${uuid}`, uuid, usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: `/srv/v${i}`, description: 'd'.repeat(3000) });
  });
  const svc = { secrets: { list: async () => secrets } } as unknown as CoordinatorServices;
  const ctx = {} as CallContext;

  it('holds fewer than page_size secrets when they would pass 4 MiB, and the rest come on the next pages', async () => {
    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await listSecrets(svc, ctx, { pageSize: 10_000, pageToken });
      expect(ListSecretsResponse.encode(page).finish().length).to.be.below(4 * 1024 * 1024);
      seen.push(...page.secrets.map((s) => s.uuid));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).to.be.above(1);
    expect(seen).to.deep.equal(secrets.map((s) => s.uuid));
  });
});
