// Which secret values one agent operation needs: the pool's CHAP secret (source auth)
// for the operations that log in, the LUKS passphrase of a volume being created. The
// values travel only in that operation's AgentRequest.secrets.
import type { AgentRequest, SecretValue } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { SecretUsageType, type SecretRef } from '../../../libs/proto/cistern/v1/storage.js';
import type { SecretStore } from './store.js';

/**
 * Operations that connect to the pool's source (where CHAP applies): the pool ones, and
 * the volume data ones, which log in again on pools without a kernel session (iscsi-direct).
 */
const POOL_AUTH_OPS = new Set(['createPool', 'startPool', 'buildPool', 'refreshPool', 'findPoolSources', 'wipeVolume', 'uploadBegin', 'downloadBegin']);

export function secretRefsOf(request: Partial<AgentRequest>): Array<{ ref: SecretRef; usage: SecretUsageType; what: string }> {
  const out: Array<{ ref: SecretRef; usage: SecretUsageType; what: string }> = [];
  const op = request.op;
  if (!op) return out;
  const pool = request.pool ?? (op.$case === 'createPool' ? op.value.definition : undefined);
  const auth = pool?.source?.auth ?? (op.$case === 'findPoolSources' ? op.value.source?.auth : undefined);
  if (POOL_AUTH_OPS.has(op.$case) && auth?.secret && (auth.secret.uuid || auth.secret.usage)) {
    out.push({ ref: auth.secret, usage: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, what: `the <auth> of pool '${pool?.name ?? ''}'` });
  }
  if (op.$case === 'createVolume' || op.$case === 'cloneVolume') {
    for (const ref of op.value.definition?.target?.encryption?.secrets ?? []) {
      if (ref.uuid || ref.usage) out.push({ ref, usage: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, what: `the encryption of volume '${op.value.definition?.name ?? ''}'` });
    }
  }
  return out;
}

export async function secretValuesFor(store: SecretStore | undefined, request: Partial<AgentRequest>): Promise<SecretValue[]> {
  const refs = secretRefsOf(request);
  if (refs.length === 0 || !store) return [];
  return Promise.all(refs.map((r) => store.resolve(r.ref, r.usage, r.what)));
}
