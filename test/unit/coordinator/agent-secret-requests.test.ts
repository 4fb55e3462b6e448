// What a coordinator releases to an agent that asks for a pool's secrets (autostart of a
// CHAP pool): only the <auth> secret of a pool its catalog holds for that very host.
import { expect } from 'chai';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, SecretUsageType, type SecretRef } from '../../../libs/proto/cistern/v1/storage.js';
import type { CisternError } from '../../../libs/errors/errors.js';
import { FleetCache } from '../../../services/coordinator/cache.js';
import { poolSecretsFor, serveAgentSecretRequests } from '../../../services/coordinator/secrets/agent-requests.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { PoolSecretsRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { agentInboxPrefix, subjects } from '../../../libs/bus/subjects.js';
import { createLogger } from '../../../libs/log/logger.js';
import type { SecretStore } from '../../../services/coordinator/secrets/store.js';

const chapPool = (name: string) =>
  PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name,
    source: { hosts: [{ name: '127.0.0.1', port: 3260 }], devices: [{ path: 'iqn.2024-01.io.x:t' }], auth: { type: 'chap', username: 'u', secret: { usage: 'iqn.2024-01.io.x:t' } } },
  });

function fixture() {
  const cache = new FleetCache();
  cache.applyCatalog('a', 'locked', CatalogPool.fromPartial({ definition: chapPool('locked'), autostart: true, persistent: true }), 1);
  cache.applyCatalog('a', 'plain', CatalogPool.fromPartial({ definition: { type: PoolType.POOL_TYPE_DIR, name: 'plain', target: { path: '/p' } } }), 2);
  cache.applyCatalog('b', 'theirs', CatalogPool.fromPartial({ definition: chapPool('theirs') }), 3);
  const asked: Array<{ ref: SecretRef; usage: SecretUsageType }> = [];
  const store = {
    resolve: async (ref: SecretRef, usage: SecretUsageType) => {
      asked.push({ ref, usage });
      return { uuid: '6b1c1c1e-0000-4000-8000-000000000001', usageId: ref.usage, value: Buffer.from('s3cret') };
    },
  } as unknown as SecretStore;
  return { cache, store, asked };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return `${(err as CisternError).code}: ${(err as Error).message}`;
  }
  return 'OK';
}

describe('pool secrets an agent may ask a coordinator for', () => {
  it('gives the <auth> secret of a catalog pool of the asking host, as an iSCSI secret', async () => {
    const { cache, store, asked } = fixture();
    const values = await poolSecretsFor(cache, store, 'a', 'locked');
    expect(values.map((v) => [v.usageId, Buffer.from(v.value).toString()])).to.deep.equal([['iqn.2024-01.io.x:t', 's3cret']]);
    expect(asked.map((a) => [a.ref.usage, a.usage])).to.deep.equal([['iqn.2024-01.io.x:t', SecretUsageType.SECRET_USAGE_TYPE_ISCSI]]);
  });

  it("refuses another host's pool, a pool without a secret, and a bad name, opening no secret", async () => {
    const { cache, store, asked } = fixture();
    expect(await codeOf(poolSecretsFor(cache, store, 'a', 'theirs'))).to.equal("NOT_FOUND: storage pool 'theirs' is not in the catalog of host 'a'");
    expect(await codeOf(poolSecretsFor(cache, store, 'a', 'plain'))).to.equal("FAILED_PRECONDITION: storage pool 'plain' of host 'a' has no <auth> secret");
    expect(await codeOf(poolSecretsFor(cache, store, 'a', '../locked'))).to.match(/^INVALID_ARGUMENT: pool/);
    expect(asked).to.deep.equal([]);
  });

  it('logs which secret it released, by uuid (the audit trail docs/security.md promises), never the value', async () => {
    const { cache, store } = fixture();
    const lines: string[] = [];
    let answered!: () => void;
    const done = new Promise<void>((resolve) => (answered = resolve));
    const msg = {
      subject: subjects.poolSecrets('a'),
      reply: `${agentInboxPrefix('a')}.1`,
      data: PoolSecretsRequest.encode(PoolSecretsRequest.create({ pool: 'locked' })).finish(),
      respond: () => {
        answered();
        return true;
      },
    };
    // one request on the subject, then the subscription ends
    const nc = { subscribe: () => ({ async *[Symbol.asyncIterator]() { yield msg; } }) } as unknown as NatsConnection;
    serveAgentSecretRequests(nc, cache, store, createLogger('info', {}, (line) => lines.push(line)));
    await done;
    const released = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'secret released to an agent for a pool start');
    expect(released, lines.join('')).to.not.equal(undefined);
    expect(JSON.stringify(released)).to.contain('6b1c1c1e-0000-4000-8000-000000000001');
    expect(lines.join('')).to.not.contain('s3cret');
  });
});
