// The <secret> a LUKS volume's XML names, as libvirt's storageBackendLoadDefaultSecrets gives
// it on every refresh: a volume read from disk names no secret (the image does not record it),
// so libvirt looks up the secret of usage type 'volume' whose usage id is the volume's path and
// names it by uuid. Scripts copy that uuid into a domain's <disk><encryption>. Only the
// definition is read, never the value: the XML carries the uuid, as libvirt's does.
import { SecretUsageType, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import type { SecretStore } from './store.js';

/** `vol`, with the secret of its path in its encryption when it names none and one is defined. */
export async function withDefaultSecret(store: SecretStore | undefined, vol: VolumeDefinition): Promise<VolumeDefinition> {
  const target = vol.target;
  const enc = target?.encryption;
  if (!store || !target || !enc || enc.secrets.length > 0 || !target.path) return vol;
  // as libvirt's, a lookup that fails (here: the secrets bucket unreachable) leaves the secret
  // out rather than failing the read
  const secret = await store.findByUsage(SecretUsageType.SECRET_USAGE_TYPE_VOLUME, target.path).catch(() => undefined);
  if (!secret) return vol;
  return { ...vol, target: { ...target, encryption: { ...enc, secrets: [{ type: 'passphrase', uuid: secret.uuid, usage: '' }] } } };
}
