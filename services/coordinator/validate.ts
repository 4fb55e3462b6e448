// Request checks that run before anything else: INVALID_ARGUMENT naming the field; nothing changes.
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import { checkAbsolutePath, checkNewObjectName, checkObjectName, checkSize, printable } from '../../libs/api/names.js';
import { parseHostName, parsePoolName, parseVolumeName, type PoolRef, type VolumeRef } from '../../libs/api/resource-names.js';
import {
  PoolType,
  VolumeType,
  WipeAlgorithm,
  PoolDefinition,
  type VolumeDefinition,
} from '../../libs/proto/cistern/v1/storage.js';
import type { SchemaName, SchemaValidator } from './schema-validator.js';
import { loadXml } from './xml.js';
import { readXml } from './xml-reader.js';

import { MAX_XML_BYTES, MAX_XML_ELEMENTS } from '../../libs/xml/limits.js';

export { MAX_XML_BYTES };
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** PoolType values a request may carry, as a client's stubs name them (and libvirt's words). */
const POOL_TYPES_ALLOWED = Object.entries(PoolType)
  .filter(([, v]) => typeof v === 'number' && v > 0)
  .map(([k, v]) => `${k} (${v})`)
  .join(' ') + ' (dir fs netfs logical disk iscsi iscsi-direct scsi mpath)';

export function requireHost(value: string, field = 'host'): string {
  if (!value) throw new InvalidArgumentError(field, 'is required: a host id or hosts/{host}');
  return parseHostName(value, field);
}

export function requirePoolName(value: string, field = 'name'): PoolRef {
  if (!value) throw new InvalidArgumentError(field, 'is required: hosts/{host}/pools/{pool}');
  return parsePoolName(value, field);
}

export function requireVolumeName(value: string, field = 'name'): VolumeRef {
  if (!value) throw new InvalidArgumentError(field, 'is required: hosts/{host}/pools/{pool}/volumes/{volume}');
  return parseVolumeName(value, field);
}

/**
 * What a JavaScript client sends for a request id it never set: ts-proto's encoder writes a
 * missing string field as the text 'undefined'. Taken as an id, every later call of that
 * client would be answered with its first call's stored result, or refused as a reuse.
 */
const UNSET_IN_JAVASCRIPT = new Set(['undefined', 'null']);

export function checkRequestId(value: string, field = 'request_id'): void {
  if (value && !REQUEST_ID.test(value)) {
    throw new InvalidArgumentError(field, `'${printable(value)}' is not valid; allowed: 1-128 of A-Z a-z 0-9 . _ : -`);
  }
  if (UNSET_IN_JAVASCRIPT.has(value)) {
    throw new InvalidArgumentError(
      field,
      `'${value}' is what a JavaScript client sends for a request id it did not set, so it is refused as an id: send '' for no retries, or an id of your own (1-128 of A-Z a-z 0-9 . _ : -, e.g. a UUID)`,
    );
  }
}

function checkXmlText(xml: string, field: string): void {
  if (Buffer.byteLength(xml, 'utf8') > MAX_XML_BYTES) {
    throw new InvalidArgumentError(field, `document is larger than ${MAX_XML_BYTES} bytes`);
  }
}

function oneOf(definition: unknown, xml: string, defField: string, xmlField: string): 'definition' | 'xml' {
  if (definition && xml) throw new InvalidArgumentError(xmlField, `give either ${defField} or ${xmlField}, not both`);
  if (!definition && !xml) throw new InvalidArgumentError(defField, `is required (or ${xmlField})`);
  return xml ? 'xml' : 'definition';
}

/**
 * libvirt's validate flag: the XML a client sent, checked against libvirt's schema before
 * anything is defined or created. First the checks every document gets (size; no DTD, no
 * entities, well-formed), so that no document an agent would refuse reaches xmllint.
 * A structured definition has no document: validate with it is refused rather than ignored,
 * and rather than checking XML the coordinator would write (errors about lines the client
 * never sent); its fields are always checked one by one.
 */
export async function validateAgainstSchema(
  validator: SchemaValidator,
  req: { validate: boolean; xml: string; definition?: unknown },
  schema: SchemaName,
  signal?: AbortSignal,
): Promise<void> {
  if (!req.validate) return;
  if (req.definition && req.xml) return; // refused by the definition check: give one of them
  if (!req.xml) {
    throw new InvalidArgumentError('validate', 'applies to xml (libvirt validates the XML document it is given); a definition is checked field by field without it: send xml, or leave validate unset');
  }
  checkXmlText(req.xml, 'xml');
  // a document sent as text is one field, whatever is wrong inside it (docs/api.md)
  await xmlErrorsUnder('xml', () => readXml('document', [req.xml], signal));
  await validator.validate(req.xml, schema, 'xml', signal);
}

/**
 * Runs a check of a structured definition so that its INVALID_ARGUMENT names the request's
 * field (`definition.target.path`), not the definition's own (`target.path`,
 * `volume.allocation`): what a client can map back to what it sent.
 */
function underRequestField<T>(prefix: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw refielded(prefix, err);
  }
}

/**
 * `err` named by the request field its definition came from: `definition.target.format` for a
 * structured one; for one given as XML the field is `xml` and the message names the element's
 * field (`xml: target.format: ...`). Anything else is returned as it is.
 */
function refielded(prefix: string, err: unknown): unknown {
  if (!(err instanceof InvalidArgumentError) || !err.field || err.field === prefix || err.field.startsWith(`${prefix}.`)) return err;
  const inner = err.field.replace(/^(pool|volume)(\.|$)/, '');
  const detail = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
  if (prefix === 'xml') return new InvalidArgumentError('xml', inner ? `${inner}: ${detail}` : detail);
  return new InvalidArgumentError(inner ? `${prefix}.${inner}` : prefix, detail);
}

/**
 * Runs the reading (and checking) of a document a request gave as text, so that its
 * INVALID_ARGUMENT names that request field (`xml`, `source_xml`) as every other refusal does,
 * and as BadRequest's field violation must: the element it is about goes into the message
 * (`xml: pool/target/path: path 'rel' is not absolute ... (line 1)`), its other details (`line`)
 * stay. The reader names the document's own places (`pool/@type`, `volume`, `target.path`,
 * or nothing for a wrong root element), which a client cannot map back to what it sent.
 */
export async function xmlErrorsUnder<T>(field: string, read: () => T | Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof InvalidArgumentError) || err.field === field) throw err;
    const detail = err.field && err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    const { field: _inner, ...details } = err.details;
    throw new InvalidArgumentError(field, err.field ? `${err.field}: ${detail}` : detail, details);
  }
}

/**
 * A pool definition's own fields as a backend names them without the `pool.` prefix (the
 * names the XML layer and StartPool's refusals use: `source.devices`, `source.format`); none
 * of them is a field of CreatePoolRequest itself.
 */
const POOL_DEFINITION_FIELD = /^(source|target|features|mount_options)(\.|\[|$)/;

/**
 * A volume definition's own fields as the disk backend names them, without the `volume.`
 * prefix the dir and logical ones give (`capacity`, `name`, `target.encryption.secrets`); none
 * is a field of CreateVolumeRequest or CloneVolumeRequest (whose `source` is the source volume).
 */
const VOLUME_DEFINITION_FIELD = /^(name|capacity|allocation|target|backing_store)(\.|\[|$)/;

/**
 * An agent's refusal of the definition a request gave it names the definition's own fields, as
 * the agent calls them: `volume.allocation` or `capacity` (CreateVolume, CloneVolume), `pool.source.hosts` or
 * `source.devices` (CreatePool). A client maps fields back to its request: `definition.allocation`,
 * `definition.source.hosts`, or `xml` with the element in the message. The request's own fields
 * (prealloc_metadata, parent, request_id) stay as they are.
 */
export async function definitionErrorsUnderRequest<T>(agentPrefix: 'volume' | 'pool', req: { xml: string }, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    const ofDefinition =
      err.field === agentPrefix ||
      err.field.startsWith(`${agentPrefix}.`) ||
      (agentPrefix === 'pool' ? POOL_DEFINITION_FIELD : VOLUME_DEFINITION_FIELD).test(err.field);
    if (!ofDefinition) throw err;
    throw refielded(req.xml ? 'xml' : 'definition', err);
  }
}

/**
 * StartPool, BuildPool, DeletePool, RefreshPool: the pool's definition is the stored one, which
 * no field of the request holds, so a refusal of it names the definition's own field
 * (`source.hosts`, `target.path`), as the fs, disk and logical backends do (`source.devices`).
 * The iscsi, iscsi-direct, scsi and netfs backends say `pool.source.hosts`: one name for one
 * field whichever backend refuses it, and the one CreatePool's `definition.` is laid over.
 */
export async function storedDefinitionErrors<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    const own = /^pool\.(.+)$/.exec(err.field)?.[1];
    if (!own || !POOL_DEFINITION_FIELD.test(own)) throw err;
    const detail = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
    const { field: _inner, ...details } = err.details;
    throw new InvalidArgumentError(own, detail, details);
  }
}

/**
 * FindPoolSources: the agent names what it refuses of the hint as the structured `source`
 * (`source.hosts`), the request's own field when the hint came that way; a hint sent as
 * `source_xml` is that one field, the element in the message, as the reader's refusals are.
 */
export async function sourceErrorsUnderRequest<T>(req: { sourceXml: string }, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!req.sourceXml || !(err instanceof InvalidArgumentError) || !/^source(\.|$)/.test(err.field)) throw err;
    return xmlErrorsUnder('source_xml', () => {
      throw err;
    });
  }
}

/**
 * A pool definition from a request (structured or XML), checked, with defaults and a uuid.
 * `signal`: the call's, which stops the reading of a large document when the call ends.
 */
export async function poolDefinitionFrom(definition: PoolDefinition | undefined, xml: string, signal?: AbortSignal): Promise<PoolDefinition> {
  let def: PoolDefinition;
  if (oneOf(definition, xml, 'definition', 'xml') === 'xml') {
    checkXmlText(xml, 'xml');
    def = await xmlErrorsUnder('xml', () => readXml('pool', [xml], signal));
    checkNewObjectName(def.name, 'xml', 'pool name');
  } else {
    def = definition!;
    checkNewObjectName(def.name, 'definition.name', 'pool name');
    if (def.type === PoolType.POOL_TYPE_UNSPECIFIED || !(def.type in PoolType) || def.type < 0) {
      throw new InvalidArgumentError('definition.type', `pool type ${def.type} is not valid; allowed: ${POOL_TYPES_ALLOWED}`);
    }
    if (def.target?.path) checkAbsolutePath(def.target.path, 'definition.target.path');
    checkDefinitionSize(def);
    const lib = await loadXml();
    if (lib) def = underRequestField('definition', () => lib.validatePoolDefinition(def));
    else if (def.type === PoolType.POOL_TYPE_DIR && !def.target?.path) {
      throw new InvalidArgumentError('definition.target.path', 'is required for a dir pool');
    }
  }
  if (!def.uuid) def = { ...def, uuid: randomUUID() };
  return def;
}

/**
 * `def` (poolDefinitionFrom's, of this request) with the uuid the client gave, '' when it gave
 * none: a retry of the request must send the agent the same operation, since its request cache
 * tells a retry from another request by the operation, and a uuid made up for a definition
 * without one (here, or by the XML reader as libvirt's parser does) differs at each attempt.
 */
export function poolDefinitionAsGiven(def: PoolDefinition, req: { definition?: PoolDefinition | undefined; xml: string }): PoolDefinition {
  const gave = req.xml ? uuidWrittenIn(req.xml, def.uuid) : !!req.definition?.uuid;
  return gave ? def : { ...def, uuid: '' };
}

/**
 * Whether the document carries this uuid (as the reader takes it: any case, dashes anywhere,
 * characters written as references like &#x37; or &#45;, which the reader decodes: without
 * decoding them here a uuid the client wrote so was taken as none, and DefinePool with a
 * request id replaced it with one of its own).
 */
function uuidWrittenIn(xml: string, uuid: string): boolean {
  const hex = uuid.replace(/-/g, '');
  return hex.length === 32 && decodeCharacterReferences(xml).replace(/-/g, '').toLowerCase().includes(hex);
}

/** `&#NN;` and `&#xHH;` as the characters they stand for (one that is no character stays as written). */
function decodeCharacterReferences(xml: string): string {
  if (!xml.includes('&#')) return xml;
  return xml.replace(/&#(x[0-9a-fA-F]+|[0-9]+);/g, (ref, n: string) => {
    const code = n[0] === 'x' ? parseInt(n.slice(1), 16) : parseInt(n, 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : ref;
  });
}

/**
 * A structured pool definition is held to the XML form's limits: its document (GetPoolXML)
 * must be one DefinePool takes back, and a definition too large for the bus failed as
 * INTERNAL at the catalog write. Its repeated fields are the document's elements.
 */
function checkDefinitionSize(def: PoolDefinition): void {
  const repeated: Array<[string, number]> = [
    ['definition.source.devices', def.source?.devices.length ?? 0],
    ['definition.source.devices[].free_extents', (def.source?.devices ?? []).reduce((n, d) => n + d.freeExtents.length, 0)],
    ['definition.source.hosts', def.source?.hosts.length ?? 0],
    ['definition.mount_options', def.mountOptions.length],
  ];
  const total = repeated.reduce((n, [, count]) => n + count, 0);
  if (total > MAX_XML_ELEMENTS) {
    const [field, count] = repeated.reduce((a, b) => (b[1] > a[1] ? b : a));
    throw new InvalidArgumentError(field, `has ${count} entries (${total} repeated entries in all); at most ${MAX_XML_ELEMENTS} in all are allowed, as in the XML form`);
  }
  const bytes = PoolDefinition.encode(def).finish().length;
  if (bytes > MAX_XML_BYTES) {
    throw new InvalidArgumentError('definition', `is ${bytes} bytes encoded; at most ${MAX_XML_BYTES} are allowed, as for the XML form`);
  }
}

/** A volume definition from a request (structured or XML) for a pool, checked. */
export async function volumeDefinitionFrom(
  definition: VolumeDefinition | undefined,
  xml: string,
  pool: PoolDefinition,
  options: { cloning?: boolean; formatFromSource?: boolean; defField?: string; xmlField?: string; signal?: AbortSignal } = {},
): Promise<VolumeDefinition> {
  const defField = options.defField ?? 'definition';
  const volumeOptions = { cloning: options.cloning, formatFromSource: options.formatFromSource };
  const xmlField = options.xmlField ?? 'xml';
  let vol: VolumeDefinition;
  const xmlGiven = oneOf(definition, xml, defField, xmlField) === 'xml';
  if (xmlGiven) {
    checkXmlText(xml, xmlField);
    vol = await xmlErrorsUnder(xmlField, () => readXml('volume', [xml, pool, volumeOptions], options.signal));
    checkNewObjectName(vol.name, xmlField, 'volume name');
  } else {
    vol = definition!;
    checkNewObjectName(vol.name, `${defField}.name`, 'volume name');
  }
  if (!(vol.type in VolumeType) || vol.type === VolumeType.UNRECOGNIZED) {
    const allowed = Object.keys(VolumeType).filter((k) => Number.isNaN(Number(k)) && k !== 'UNRECOGNIZED');
    throw new InvalidArgumentError(`${defField}.type`, `volume type ${vol.type} is not known; allowed: ${allowed.join(' ')}`);
  }
  if (vol.capacity !== undefined) checkSize(vol.capacity, `${defField}.capacity`);
  if (vol.allocation !== undefined) checkSize(vol.allocation, `${defField}.allocation`);
  if (vol.backingStore?.path) checkAbsolutePath(vol.backingStore.path, `${defField}.backing_store.path`);
  const lib = await loadXml();
  if (lib) {
    const checked = vol;
    const validate = () => (lib.validateVolumeDefinition(checked, pool, volumeOptions) as VolumeDefinition | undefined) ?? checked;
    // a structured definition's errors name the request's field; an XML one's name the element
    vol = xmlGiven ? await xmlErrorsUnder(xmlField, validate) : underRequestField(defField, validate);
  }
  else if (!options.cloning && vol.capacity === undefined) {
    throw new InvalidArgumentError(`${defField}.capacity`, 'is required');
  }
  return { ...vol, key: '' };
}

/**
 * A resize's capacity: a size, and not an absolute 0. libvirt's virStorageVolResize
 * (libvirt-storage.c) refuses that before any driver sees it, whatever the volume: 0 without
 * delta or shrink can only empty a volume by mistake.
 */
export function checkResizeCapacity(req: { capacity: bigint; delta: boolean; shrink: boolean }, field = 'capacity'): void {
  checkSize(req.capacity, field);
  if (req.capacity === 0n && !req.delta && !req.shrink) {
    throw new InvalidArgumentError(field, 'cannot be zero without the delta or shrink flag; allowed: a new size above 0 bytes, or 0 with delta or shrink');
  }
}

export function checkWipeAlgorithm(value: WipeAlgorithm, field = 'algorithm'): void {
  if (!(value in WipeAlgorithm) || value === WipeAlgorithm.UNRECOGNIZED) {
    throw new InvalidArgumentError(field, `wipe algorithm ${value} is not known; allowed: zero nnsa dod bsi gutmann schneier pfitzner7 pfitzner33 random trim`);
  }
}

export function checkPoolType(t: PoolType, field = 'type'): void {
  if (t === PoolType.POOL_TYPE_UNSPECIFIED || !(t in PoolType) || t < 0) {
    throw new InvalidArgumentError(field, `pool type ${t} is not valid; allowed: ${POOL_TYPES_ALLOWED}`);
  }
}

/** A repeated pool type field: a refusal names its entry (types[1]), as every repeated field's. */
export function checkPoolTypes(types: PoolType[], field = 'types'): void {
  types.forEach((t, i) => checkPoolType(t, `${field}[${i}]`));
}

export { checkAbsolutePath, checkSize, checkObjectName };
