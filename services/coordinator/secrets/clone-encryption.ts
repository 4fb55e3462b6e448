// The <encryption> a structured clone inherits from a LUKS source, with the secret libvirt's
// would name. virsh vol-clone sends the source's vol-dumpxml, which after a refresh names the
// secret of the source's path (storageBackendLoadDefaultSecrets), so libvirt's clone is LUKS
// with that passphrase. The agent lays a structured definition over the source's as it read
// it from disk, where the image records no secret: without this the clone was refused
// ("a single <secret type='passphrase'> is expected, got 0").
import { VolumeTarget, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { withDefaultSecret } from './default-secret.js';
import { filePoolVolumePath } from './resolve.js';
import type { SecretStore } from './store.js';

/**
 * `def` (the clone's structured definition) with the source's encryption and the secret of the
 * source's path, when the agent would inherit an encryption naming no secret: `def` names no
 * encryption of its own and no other format (a format change drops the source's encryption,
 * volume-ops.ts overSource). The path is the one of the source in the catalog's pool
 * definition, not the one an agent reported: only a secret of a path in that pool is named,
 * and its value then goes to the agent with the request, as for the source's own unlock.
 */
export async function withInheritedEncryption(
  store: SecretStore | undefined,
  def: VolumeDefinition,
  source: { pool: PoolDefinition; volume?: VolumeDefinition },
): Promise<VolumeDefinition> {
  const srcTarget = source.volume?.target;
  const enc = srcTarget?.encryption;
  if (!enc || enc.secrets.length > 0 || enc.format !== 'luks') return def;
  if (def.target?.encryption) return def;
  if (def.target?.format && def.target.format !== srcTarget.format) return def;
  const path = filePoolVolumePath(source.pool, source.volume!.name);
  if (!path) return def;
  const filled = await withDefaultSecret(store, { ...source.volume!, target: { ...srcTarget, path } });
  const secrets = filled.target?.encryption?.secrets ?? [];
  if (secrets.length === 0) return def;
  // only the encryption is set: the rest of the target stays as given, the agent keeps the source's
  const target = def.target ?? VolumeTarget.create();
  return { ...def, target: { ...target, encryption: { ...enc, secrets } } };
}
