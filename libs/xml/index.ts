// libs/xml: the only code that reads or prints libvirt storage XML.
export * from './units.js';
export * from './formats.js';
export * from './safe-parse.js';
export { parsePoolXml, formatPoolXml, validatePoolDefinition, FS_NAMESPACE, type PoolLiveState } from './pool.js';
export {
  parseVolumeXml,
  formatVolumeXml,
  validateVolumeDefinition,
  volumeKeyFor,
  volumePathFor,
  type VolumeParseOptions,
} from './volume.js';
export { parsePoolSourceXml, formatPoolSourcesXml } from './sources.js';
export { parseSecretXml, formatSecretXml, secretUsageTypeName } from './secret.js';
export { formatPoolCapabilitiesXml, defaultPoolCapabilities } from './capabilities.js';
