// StorageService's unary methods in one table, by their generated keys: what the unary RPCs
// and a Session's calls (session.ts) dispatch on; and the service as served, with the
// response serializers that write from stored bytes.
import { StorageServiceService } from '../../libs/proto/cistern/v1/storage.js';
import type { SessionCall } from '../../libs/api/session-envelope.js';
import type { CallContext, CoordinatorServices } from './context.js';
import { serializeListVolumes, serializeVolume } from './list-encoding.js';
import { serializeListPools, serializePool } from './pool-list-encoding.js';
import { serializeEventResponse } from './event-tail.js';
import { strictRequests } from './strict-decode.js';
import { notingUnknownCalls } from './session-unknown-call.js';
import * as hosts from './handlers/hosts.js';
import * as pools from './handlers/pools.js';
import * as secrets from './handlers/secrets.js';
import * as volumes from './handlers/volumes.js';

export type Handler<Req, Res> = (svc: CoordinatorServices, ctx: CallContext, req: Req) => Promise<Res>;

/** StorageService's unary methods: the method name (for access rules and audit) and its handler, by generated key. */
export const UNARY_HANDLERS = {
  listHosts: ['ListHosts', hosts.listHosts],
  getHost: ['GetHost', hosts.getHost],
  deleteHost: ['DeleteHost', hosts.deleteHost],
  pingHost: ['PingHost', hosts.pingHost],
  definePool: ['DefinePool', pools.definePool],
  createPool: ['CreatePool', pools.createPool],
  undefinePool: ['UndefinePool', pools.undefinePool],
  buildPool: ['BuildPool', pools.buildPool],
  startPool: ['StartPool', pools.startPool],
  stopPool: ['StopPool', pools.stopPool],
  deletePool: ['DeletePool', pools.deletePool],
  refreshPool: ['RefreshPool', pools.refreshPool],
  getPool: ['GetPool', pools.getPool],
  listPools: ['ListPools', pools.listPools],
  getPoolXml: ['GetPoolXML', pools.getPoolXml],
  setPoolAutostart: ['SetPoolAutostart', pools.setPoolAutostart],
  findPoolSources: ['FindPoolSources', pools.findPoolSources],
  getPoolCapabilities: ['GetPoolCapabilities', pools.getPoolCapabilities],
  createVolume: ['CreateVolume', volumes.createVolume],
  cloneVolume: ['CloneVolume', volumes.cloneVolume],
  deleteVolume: ['DeleteVolume', volumes.deleteVolume],
  wipeVolume: ['WipeVolume', volumes.wipeVolume],
  resizeVolume: ['ResizeVolume', volumes.resizeVolume],
  getVolume: ['GetVolume', volumes.getVolume],
  listVolumes: ['ListVolumes', volumes.listVolumes],
  getVolumeXml: ['GetVolumeXML', volumes.getVolumeXml],
  lookupVolume: ['LookupVolume', volumes.lookupVolume],
  defineSecret: ['DefineSecret', secrets.defineSecret],
  setSecretValue: ['SetSecretValue', secrets.setSecretValue],
  getSecret: ['GetSecret', secrets.getSecret],
  listSecrets: ['ListSecrets', secrets.listSecrets],
  undefineSecret: ['UndefineSecret', secrets.undefineSecret],
} satisfies Record<SessionCall, readonly [string, Handler<never, unknown>]>;

/**
 * StorageService as served: ListVolumes pages and GetVolume are built from per-volume bytes
 * kept in the cache (list-encoding.ts), ListPools pages and GetPool from per-pool bytes kept
 * beside the views (pool-list-encoding.ts); a Session writes the envelopes it encodes itself.
 */
const STRICT_SERVICE = strictRequests({
  ...StorageServiceService,
  listVolumes: { ...StorageServiceService.listVolumes, responseSerialize: serializeListVolumes },
  getVolume: { ...StorageServiceService.getVolume, responseSerialize: serializeVolume },
  listPools: { ...StorageServiceService.listPools, responseSerialize: serializeListPools },
  getPool: { ...StorageServiceService.getPool, responseSerialize: serializePool },
  // the shared event tail hands every watcher the bytes it encoded once
  watchEvents: { ...StorageServiceService.watchEvents, responseSerialize: serializeEventResponse },
  session: { ...StorageServiceService.session, responseSerialize: (b: Buffer): Buffer => b },
});
export const SERVED_SERVICE = {
  ...STRICT_SERVICE,
  // a Session call of a method a newer .proto added is answered UNIMPLEMENTED (session-unknown-call.ts)
  session: { ...STRICT_SERVICE.session, requestDeserialize: notingUnknownCalls(STRICT_SERVICE.session.requestDeserialize) },
} as unknown as typeof StorageServiceService;

/** A unary method's response as its wire bytes, as the served service writes them. */
export function serializeResponse(call: SessionCall, response: unknown): Buffer {
  return (SERVED_SERVICE[call].responseSerialize as (r: unknown) => Buffer)(response);
}
