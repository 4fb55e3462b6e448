// virsh pool-capabilities: the <storagepoolCapabilities> document
// (virStoragePoolCapsFormat in src/conf/storage_capabilities.c).
import { type PoolTypeCapability } from '../proto/cistern/v1/storage.js';
import { Out, esc } from './common.js';
import { FILE_FORMATS_ENUM, LIBVIRT_POOL_TYPES, allPoolTypeInfos, poolTypeInfo, poolTypeToString } from './formats.js';

/**
 * libvirt's table gives some types it does not drive here volume options all the same, and
 * pool-capabilities prints them (seen from libvirtd 9.0): rbd with an empty format enum,
 * gluster and vstorage with the file formats; sheepdog and zfs with none.
 */
const OUT_OF_SCOPE_VOLUME_FORMATS: ReadonlyMap<string, readonly string[]> = new Map([
  ['rbd', []],
  ['gluster', FILE_FORMATS_ENUM],
  ['vstorage', FILE_FORMATS_ENUM],
]);

/**
 * The capability of every supported pool type as this library knows it (formats and defaults);
 * `supported` and `operations` are filled in from `backends` when given (type name -> operations).
 */
export function defaultPoolCapabilities(backends?: ReadonlyMap<string, readonly string[]>): PoolTypeCapability[] {
  return allPoolTypeInfos().map((i) => ({
    type: i.type,
    supported: backends ? backends.has(i.name) : true,
    poolFormats: [...i.poolFormats],
    defaultPoolFormat: i.defaultPoolFormat,
    volumeFormats: [...i.volumeFormats],
    defaultVolumeFormat: i.defaultVolumeFormat,
    operations: backends ? [...(backends.get(i.name) ?? [])] : [],
  }));
}

/**
 * Prints <storagepoolCapabilities> as libvirt does: every pool type libvirt knows, in its
 * order, supported='yes|no', and for types with formats <poolOptions>/<volOptions> with the
 * default and the enum of values (libvirt's enum, so file volume formats start with 'none').
 * Types not in `types`, and the types outside Cistern's scope, print supported='no'.
 */
export function formatPoolCapabilitiesXml(types: readonly PoolTypeCapability[] = defaultPoolCapabilities()): string {
  const byName = new Map<string, PoolTypeCapability>();
  for (const t of types) byName.set(poolTypeToString(t.type), t);
  const out = new Out();
  out.open('<storagepoolCapabilities>');
  for (const name of LIBVIRT_POOL_TYPES) {
    const cap = byName.get(name);
    const supported = cap?.supported ? 'yes' : 'no';
    out.open(`<pool type='${name}' supported='${supported}'>`);
    if (cap || allPoolTypeInfos().some((i) => i.name === name)) {
      const info = poolTypeInfo(allPoolTypeInfos().find((i) => i.name === name)!.type);
      const poolFormats = cap?.poolFormats.length ? cap.poolFormats : info.poolFormats;
      if (poolFormats.length) {
        writeFormatOptions(out, 'poolOptions', 'sourceFormatType', cap?.defaultPoolFormat || info.defaultPoolFormat, poolFormats);
      }
      if (info.volumeFormatEnum.length) writeFormatOptions(out, 'volOptions', 'targetFormatType', cap?.defaultVolumeFormat || info.defaultVolumeFormat, info.volumeFormatEnum);
    } else {
      const formats = OUT_OF_SCOPE_VOLUME_FORMATS.get(name);
      if (formats) writeFormatOptions(out, 'volOptions', 'targetFormatType', 'raw', formats);
    }
    out.close('</pool>');
  }
  out.close('</storagepoolCapabilities>');
  return out.toString();
}

/** <poolOptions> or <volOptions>: the default format and the enum of the type's formats. */
function writeFormatOptions(out: Out, element: 'poolOptions' | 'volOptions', enumName: string, defaultFormat: string, formats: readonly string[]): void {
  out.open(`<${element}>`);
  out.line(`<defaultFormat type='${esc(defaultFormat)}'/>`);
  out.open(`<enum name='${enumName}'>`);
  for (const f of formats) out.line(`<value>${esc(f)}</value>`);
  out.close('</enum>');
  out.close(`</${element}>`);
}
