// Which secret values one agent operation needs: the pool's CHAP secret (source auth)
// for the operations that log in, the LUKS passphrase of a volume being created, and of
// an encrypted volume being resized. The values travel only in that operation's
// AgentRequest.secrets.
import type { AgentRequest, SecretValue } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolType, SecretUsageType, type PoolDefinition, type SecretRef, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { checkAbsolutePath, printable } from '../../../libs/api/names.js';
import type { SecretStore } from './store.js';
import { FILE_POOL_TYPES } from '../../../libs/backends/pool-kinds.js';

/**
 * Operations that connect to the pool's source (where CHAP applies): the pool ones, and
 * the volume ones, which log in again on pools without a kernel session (iscsi-direct):
 * data (wipe, upload, download) and a volume read again (GetVolume refresh reads the LUN's
 * capacity).
 */
const POOL_AUTH_OPS = new Set(['createPool', 'startPool', 'buildPool', 'refreshPool', 'wipeVolume', 'uploadBegin', 'downloadBegin', 'refreshVolume']);

/**
 * The pool types whose FindPoolSources logs in to the portal and so uses CHAP: iscsi-direct's
 * iscsi-ls. netfs (showmount, gluster), iscsi (iscsiadm sendtargets, no CHAP) and logical
 * (pvs) never read the secret.
 */
const DISCOVERY_LOGIN_TYPES: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_ISCSI_DIRECT]);

export interface SecretNeed {
  ref: SecretRef;
  usage: SecretUsageType;
  /** what references the secret, for messages */
  what: string;
  /** the FAILED_PRECONDITION message when no such secret is defined (default: the store's) */
  notDefined?: string;
}

/**
 * The secrets `request` needs. `volume`: the known definition (the coordinator's cache) of
 * the existing volume the operation acts on, or a clone's source; a resize of a LUKS-encrypted
 * volume needs its passphrase (libvirt's storageBackendResizeQemuImg), as does a clone of one.
 */
export function secretRefsOf(request: Partial<AgentRequest>, volume?: VolumeDefinition): SecretNeed[] {
  const out: SecretNeed[] = [];
  const op = request.op;
  if (!op) return out;
  const pool = request.pool ?? (op.$case === 'createPool' ? op.value.definition : undefined);
  if (op.$case === 'findPoolSources') {
    // a discovery has no pool: its <auth> is the source spec's, and only a discovery that logs
    // in uses it; the others (libvirt's every one) ignore it, so its value stays here
    const auth = op.value.source?.auth;
    if (DISCOVERY_LOGIN_TYPES.has(op.value.type) && auth?.secret && (auth.secret.uuid || auth.secret.usage)) {
      out.push({ ref: auth.secret, usage: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, what: 'the <auth> of the source spec' });
    }
    return out;
  }
  const auth = pool?.source?.auth;
  if (POOL_AUTH_OPS.has(op.$case) && auth?.secret && (auth.secret.uuid || auth.secret.usage)) {
    out.push({ ref: auth.secret, usage: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, what: `the <auth> of pool '${pool?.name ?? ''}'` });
  }
  // a clone of a LUKS volume of a file pool reads it unlocked (libvirt's input secret); a block
  // source (an LV, a partition) is copied as raw bytes, as libvirt reads one, without it
  const sourcePool = request.sourcePool;
  if (op.$case === 'cloneVolume' && volume && sourcePool && FILE_POOL_TYPES.has(sourcePool.type)) out.push(...existingVolumeSecretRefs(volume, sourcePool));
  if (op.$case === 'createVolume' || op.$case === 'cloneVolume') {
    for (const ref of op.value.definition?.target?.encryption?.secrets ?? []) {
      if (ref.uuid || ref.usage) out.push({ ref, usage: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, what: `the encryption of volume '${op.value.definition?.name ?? ''}'` });
    }
  }
  // an allocating resize of an encrypted volume is refused by the agent (libvirt: "preallocate
  // is only supported for an unencrypted raw volume"): no passphrase goes out for it
  if (op.$case === 'resizeVolume' && !op.value.allocate && volume) out.push(...existingVolumeSecretRefs(volume, request.pool));
  return out;
}

/**
 * A volume's path as libvirt gives it in a file pool (pool target + '/' + name), from the
 * catalog's pool definition, not from what an agent reported: only the secret for a path in
 * that pool can go out with the request.
 */
export function filePoolVolumePath(pool: PoolDefinition | undefined, name: string): string | undefined {
  if (!pool || !FILE_POOL_TYPES.has(pool.type) || !pool.target?.path || !name) return undefined;
  let target: string;
  try {
    target = checkAbsolutePath(pool.target.path, 'pool.target.path');
  } catch {
    return undefined;
  }
  return target === '/' ? `/${name}` : `${target}/${name}`;
}

/**
 * The passphrase of an existing LUKS volume (resized, or the source of a clone): the secret its definition names; else, as
 * libvirt's storageBackendLoadDefaultSecrets after a pool refresh, the secret of usage type
 * 'volume' whose usage id is the volume's path. A volume's definition as the agent reads it
 * from disk names no secret (the image does not record it), so that is the usual case.
 */
function existingVolumeSecretRefs(volume: VolumeDefinition, pool: PoolDefinition | undefined): SecretNeed[] {
  const enc = volume.target?.encryption;
  // legacy qcow encryption: the agent refuses the resize ("resize of qcow2 encrypted image is not supported")
  if (!enc || enc.format !== 'luks') return [];
  const what = `the encryption of volume '${volume.name}'`;
  const named = enc.secrets.filter((ref) => ref.uuid || ref.usage);
  if (named.length > 0) return named.map((ref) => ({ ref, usage: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, what }));
  const path = filePoolVolumePath(pool, volume.name);
  if (!path) return [];
  const shown = printable(path, 200);
  return [
    {
      ref: { uuid: '', usage: path, type: 'passphrase' },
      usage: SecretUsageType.SECRET_USAGE_TYPE_VOLUME,
      what: `${what} (the default secret for its path)`,
      notDefined:
        `volume '${printable(volume.name)}' is LUKS-encrypted and its definition names no passphrase secret (it is read from the disk, ` +
        `where the image does not record one); as libvirt, Cistern then uses the secret of usage type 'volume' for the volume's path, ` +
        `'${shown}', and none is defined: define one (DefineSecret with usage type volume and usage id '${shown}', as XML ` +
        `<usage type='volume'><volume>${shown}</volume></usage>), set the volume's passphrase as its value (SetSecretValue), and retry`,
    },
  ];
}

export async function secretValuesFor(store: SecretStore | undefined, request: Partial<AgentRequest>, volume?: VolumeDefinition): Promise<SecretValue[]> {
  const refs = secretRefsOf(request, volume);
  if (refs.length === 0 || !store) return [];
  return Promise.all(refs.map((r) => store.resolve(r.ref, r.usage, r.what, r.notDefined)));
}
