// The agent's side of cistern.secrets.<host>: asks a coordinator for the secret values a
// catalog pool needs when the agent starts it on its own (autostart). Agents cannot read the
// secrets bucket; a coordinator answers only for this host's catalog pools.
import type { NatsConnection } from '@nats-io/transport-node';
import { busRequestError, errorFromAgent } from '../../libs/bus/agent-rpc.js';
import { subjects } from '../../libs/bus/subjects.js';
import { UnavailableError } from '../../libs/errors/errors.js';
import { PoolSecretsReply, PoolSecretsRequest, type SecretValue } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';

/** Secret values for one pool start; undefined when the pool needs none. */
export type PoolSecretSource = (pool: PoolDefinition) => Promise<SecretValue[] | undefined>;

/** A pool needs a secret to start when its source has <auth> with a secret reference. */
export function needsSecret(pool: PoolDefinition): boolean {
  const secret = pool.source?.auth?.secret;
  return !!secret && !!(secret.uuid || secret.usage);
}

export function coordinatorPoolSecrets(nc: NatsConnection, host: string, timeoutMs = 5_000): PoolSecretSource {
  return async (pool) => {
    if (!needsSecret(pool)) return undefined;
    let data: Uint8Array;
    try {
      const msg = await nc.request(subjects.poolSecrets(host), PoolSecretsRequest.encode({ pool: pool.name }).finish(), { timeout: timeoutMs });
      data = msg.data;
    } catch (err) {
      const e = busRequestError(err, host);
      throw new UnavailableError(`storage pool '${pool.name}' needs its <auth> secret from a coordinator, and none answered: ${e.message}`, {
        pool: pool.name,
      });
    }
    const reply = PoolSecretsReply.decode(data);
    if (reply.error) throw errorFromAgent(reply.error);
    return reply.secrets;
  };
}
