// Answers agents that need a secret to start one of their pools on their own: a pool with
// CHAP auth that autostarts at boot has no request from a coordinator carrying the value.
// NATS permissions (scripts/nats-config.mjs) let only agent H publish on cistern.secrets.H,
// so the subject names the asking host. The answer is limited to what a StartPool of that
// pool would carry anyway: the pool must be in the catalog for that host, and only its
// own <auth> secret is released.
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { errorToWire } from '../../../libs/bus/agent-rpc.js';
import { agentInboxPrefix, subjects } from '../../../libs/bus/subjects.js';
import { IGNORED_DELIVERY, tokenAfter } from '../../../libs/bus/delivered-subject.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../../../libs/errors/errors.js';
import { checkHostId, checkObjectName } from '../../../libs/api/names.js';
import { PoolSecretsReply, PoolSecretsRequest, type SecretValue } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { StartPoolRequest } from '../../../libs/proto/cistern/v1/storage.js';
import type { FleetCache } from '../cache.js';
import type { Logger } from '../../../libs/log/logger.js';
import { secretValuesFor } from './resolve.js';
import type { SecretStore } from './store.js';

export async function poolSecretsFor(cache: FleetCache, store: SecretStore | undefined, host: string, pool: string): Promise<SecretValue[]> {
  checkObjectName(pool, 'pool', 'pool name');
  const entry = cache.catalogEntry(host, pool);
  const definition = entry?.value.definition;
  if (!definition) throw new NotFoundError(`storage pool '${pool}' is not in the catalog of host '${host}'`);
  if (!definition.source?.auth?.secret) throw new FailedPreconditionError(`storage pool '${pool}' of host '${host}' has no <auth> secret`);
  return secretValuesFor(store, { pool: definition, op: { $case: 'startPool', value: StartPoolRequest.fromPartial({ name: pool }) } });
}

export function serveAgentSecretRequests(nc: NatsConnection, cache: FleetCache, store: SecretStore | undefined, log: Logger): Subscription {
  const sub = nc.subscribe(subjects.poolSecretsAll);
  const answer = async (msg: Msg): Promise<void> => {
    // cistern.secrets.<host> only: a stored message a push consumer delivered here keeps its own subject (delivered-subject.ts)
    const host = tokenAfter(subjects.poolSecretsPrefix, msg.subject);
    if (host === undefined) {
      log.warn(IGNORED_DELIVERY, { subject: msg.subject });
      return;
    }
    // the answer goes only to the asking agent's own inbox: a reply subject is whatever the
    // publisher wrote (another host's cancel or sync subject, say), and it would carry the
    // secret there; the JetStream API would also send its own answers wherever asked, so a
    // message on this subject is not proof of a request either
    if (!msg.reply?.startsWith(`${agentInboxPrefix(host)}.`)) {
      log.warn('secret request ignored: its reply subject is not the agent\'s inbox', { host, reply: msg.reply ?? '' });
      return;
    }
    let reply: PoolSecretsReply;
    let pool = '';
    try {
      checkHostId(host);
      pool = PoolSecretsRequest.decode(msg.data).pool;
      const secrets = await poolSecretsFor(cache, store, host, pool);
      reply = PoolSecretsReply.create({ secrets });
      // 'uuids', not 'secrets': the logger masks secret-named fields, and this line is the
      // audit trail of which secret went to which host
      log.info('secret released to an agent for a pool start', { host, pool, uuids: secrets.map((s) => s.uuid) });
    } catch (err) {
      const e = err instanceof RangeError ? new InvalidArgumentError('request', 'not a PoolSecretsRequest') : err;
      reply = PoolSecretsReply.create({ error: errorToWire(e) });
      log.warn('secret request refused', { host, pool, code: reply.error?.code, error: reply.error?.message });
    }
    try {
      if (msg.reply) msg.respond(PoolSecretsReply.encode(reply).finish());
    } catch (err) {
      // the connection closed (the coordinator is stopping): the agent asks again; a throw
      // here would end the loop below with a rejection nobody handles
      log.warn('could not answer a secret request', { host, pool, error: err });
    }
  };
  void (async () => {
    for await (const msg of sub) await answer(msg);
  })();
  return sub;
}
