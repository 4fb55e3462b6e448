// Secret values an operation carries (AgentRequest.secrets: CHAP password, LUKS
// passphrase), made available to the backend as BackendContext.secrets, keyed by uuid and
// by usage id. They live in a WeakMap beside the request's Actor, never on an object that
// is logged, stored or put into an event, and are gone with the operation.
import type { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';

const secretsByActor = new WeakMap<object, ReadonlyMap<string, Buffer>>();

/** uuid -> value and usage id -> value of one request's secrets. */
export function secretMap(request: Pick<AgentRequest, 'secrets'>): ReadonlyMap<string, Buffer> | undefined {
  if (!request.secrets?.length) return undefined;
  const map = new Map<string, Buffer>();
  for (const s of request.secrets) {
    const value = Buffer.from(s.value);
    if (s.uuid) map.set(s.uuid, value);
    if (s.usageId) map.set(s.usageId, value);
  }
  return map;
}

/** Ties the request's secrets to the actor handlers pass around. */
export function withSecrets<T extends object>(actor: T, request: Pick<AgentRequest, 'secrets'>): T {
  const map = secretMap(request);
  if (map) secretsByActor.set(actor, map);
  return actor;
}

export function secretsOf(actor: object): ReadonlyMap<string, Buffer> | undefined {
  return secretsByActor.get(actor);
}
