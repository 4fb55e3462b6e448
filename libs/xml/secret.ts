// libvirt <secret> XML (virSecretDefParse, virSecretDefFormat) <-> Secret. Values never appear in XML.
//   <secret ephemeral='no' private='yes'>
//     <uuid>...</uuid><description>...</description>
//     <usage type='iscsi'><target>libvirtiscsi</target></usage>
//     <usage type='volume'><volume>/path/img</volume></usage>
//     <usage type='ceph'><name>client.admin</name></usage>
//   </secret>
import { InvalidArgumentError } from '../errors/errors.js';
import { Secret, SecretUsageType } from '../proto/cistern/v1/storage.js';
import { attr, child, parseXmlDocument, rootProblem } from './safe-parse.js';
import { Ctx, esc, parseUuid } from './common.js';

function yesNo(value: string | undefined, field: string): boolean {
  if (value === undefined || value === 'no') return false;
  if (value === 'yes') return true;
  throw new InvalidArgumentError(field, `'${value.slice(0, 20)}' is not yes or no`);
}

export function parseSecretXml(xml: string): Secret {
  const root = parseXmlDocument(xml, 'xml');
  const problem = rootProblem(root, 'secret');
  if (problem) throw new InvalidArgumentError('xml', problem);
  const uuidText = child(root, 'uuid')?.text.trim();
  const secret = Secret.create({
    // as virUUIDParse (and a pool's <uuid>): 32 hex digits, dashes optional, any case
    uuid: uuidText ? parseUuid(new Ctx('xml: secret/'), 'uuid', uuidText) : '',
    description: child(root, 'description')?.text ?? '',
    ephemeral: yesNo(attr(root, 'ephemeral'), 'xml: secret/@ephemeral'),
    private: yesNo(attr(root, 'private'), 'xml: secret/@private'),
  });
  const usage = child(root, 'usage');
  if (usage) {
    const type = attr(usage, 'type');
    const which: Record<string, [SecretUsageType, string]> = {
      iscsi: [SecretUsageType.SECRET_USAGE_TYPE_ISCSI, 'target'],
      volume: [SecretUsageType.SECRET_USAGE_TYPE_VOLUME, 'volume'],
      ceph: [SecretUsageType.SECRET_USAGE_TYPE_CEPH, 'name'],
    };
    const found = type !== undefined && Object.prototype.hasOwnProperty.call(which, type) ? which[type] : undefined;
    if (!found) throw new InvalidArgumentError('xml: secret/usage/@type', `'${String(type ?? '').slice(0, 20)}' is not one of iscsi, volume, ceph`);
    secret.usageType = found[0];
    secret.usageId = child(usage, found[1])?.text.trim() ?? '';
    if (!secret.usageId) throw new InvalidArgumentError(`xml: secret/usage/${found[1]}`, 'is required');
  }
  return secret;
}


/** Each usage type's element, as virSecretDefFormatUsage writes it. */
const USAGE_ELEMENT: ReadonlyMap<SecretUsageType, [string, string]> = new Map([
  [SecretUsageType.SECRET_USAGE_TYPE_ISCSI, ['iscsi', 'target']],
  [SecretUsageType.SECRET_USAGE_TYPE_VOLUME, ['volume', 'volume']],
  [SecretUsageType.SECRET_USAGE_TYPE_CEPH, ['ceph', 'name']],
]);

/** The usage type's name in libvirt's words (virSecretUsageType): `iscsi`, `volume`, `ceph`; '' for none. */
export function secretUsageTypeName(type: SecretUsageType): string {
  return USAGE_ELEMENT.get(type)?.[0] ?? '';
}

/** The secret as `virsh secret-dumpxml` prints it (virSecretDefFormat); never a value. */
export function formatSecretXml(secret: Secret): string {
  const lines = [`<secret ephemeral='${secret.ephemeral ? 'yes' : 'no'}' private='${secret.private ? 'yes' : 'no'}'>`];
  if (secret.uuid) lines.push(`  <uuid>${esc(secret.uuid)}</uuid>`);
  if (secret.description) lines.push(`  <description>${esc(secret.description)}</description>`);
  const usage = USAGE_ELEMENT.get(secret.usageType);
  if (usage) {
    lines.push(`  <usage type='${usage[0]}'>`, `    <${usage[1]}>${esc(secret.usageId)}</${usage[1]}>`, '  </usage>');
  }
  lines.push('</secret>', '');
  return lines.join('\n');
}
