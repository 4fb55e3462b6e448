// virsh -r/--readonly: a read-only connection. libvirt refuses, in its public API, every call
// that would change something (and a few reads it keeps from read-only users: pool source
// discovery, volume downloads), after the lookups that precede it; here the API the commands
// are given refuses the same calls in the same words, so no command needs a list of its own.
import type { StorageApi } from './api.js';
import { ReadOnlyError } from './errors.js';

export type ApiMethod = Exclude<keyof StorageApi, 'close'>;

/**
 * Every API method: the libvirt function a read-only connection refuses for it (named as
 * libvirt 9.0 names it in "read only access prevents ..."), or null when a read-only
 * connection may call it. A Record over every method: a method added to StorageApi does not
 * compile until it is declared here; test/unit/cli/read-only-api.test.ts checks this against
 * the coordinator's own table of methods that change something.
 */
export const READ_ONLY_REFUSED: Record<ApiMethod, string | null> = {
  listHosts: null,
  getHost: null,
  // Cistern's own: no libvirt function, so its RPC's name
  deleteHost: 'DeleteHost',
  pingHost: null,
  definePool: 'virStoragePoolDefineXML',
  createPool: 'virStoragePoolCreateXML',
  undefinePool: 'virStoragePoolUndefine',
  buildPool: 'virStoragePoolBuild',
  startPool: 'virStoragePoolCreate',
  stopPool: 'virStoragePoolDestroy',
  deletePool: 'virStoragePoolDelete',
  refreshPool: 'virStoragePoolRefresh',
  getPool: null,
  listPools: null,
  getPoolXml: null,
  setPoolAutostart: 'virStoragePoolSetAutostart',
  // libvirt runs probes on the host for it, and keeps it from read-only connections
  findPoolSources: 'virConnectFindStoragePoolSources',
  getPoolCapabilities: null,
  createVolume: 'virStorageVolCreateXML',
  cloneVolume: 'virStorageVolCreateXMLFrom',
  deleteVolume: 'virStorageVolDelete',
  // virsh 9.0's vol-wipe always calls virStorageVolWipePattern, with or without --algorithm
  wipeVolume: 'virStorageVolWipePattern',
  resizeVolume: 'virStorageVolResize',
  getVolume: null,
  listVolumes: null,
  listVolumesBytes: null,
  getVolumeXml: null,
  lookupVolume: null,
  defineSecret: 'virSecretDefineXML',
  setSecretValue: 'virSecretSetValue',
  getSecret: null,
  listSecrets: null,
  undefineSecret: 'virSecretUndefine',
  uploadVolume: 'virStorageVolUpload',
  // a volume's contents are not for read-only connections in libvirt either
  downloadVolume: 'virStorageVolDownload',
  watchEvents: null,
};

/** Marks the API readOnlyApi returns, for assertAllowed. */
const READ_ONLY = Symbol('read-only connection');

/**
 * Throws the ReadOnlyError that calling `method` on `api` would throw, without calling it: for a
 * command that would otherwise touch a local file first (vol-download empties its target before
 * it downloads, where a refused download must change nothing).
 */
export function assertAllowed(api: StorageApi, method: ApiMethod): void {
  const refused = READ_ONLY_REFUSED[method];
  if (refused && (api as unknown as Record<symbol, unknown>)[READ_ONLY] === true) throw new ReadOnlyError(refused);
}

/** `api` as a read-only connection: a refused method throws ReadOnlyError and sends nothing. */
export function readOnlyApi(api: StorageApi): StorageApi {
  return new Proxy(api, {
    get(target, prop, receiver) {
      if (prop === READ_ONLY) return true;
      const value: unknown = Reflect.get(target, prop, receiver);
      const refused = typeof prop === 'string' ? READ_ONLY_REFUSED[prop as ApiMethod] : undefined;
      if (typeof value !== 'function') return value;
      if (!refused) return value.bind(target);
      return () => {
        throw new ReadOnlyError(refused);
      };
    },
  });
}
