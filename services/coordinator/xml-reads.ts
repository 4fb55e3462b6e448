// The documents a request may carry as text, and how each is read: the one place that says it.
// The coordinator runs these readers on its event loop for small documents and in a worker
// thread for large ones (xml-reader.ts): the same code on both sides, so the same definitions
// and the same errors come out wherever a document is read.
import type { PoolDefinition, PoolSource, Secret, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { VolumeParseOptions } from '../../libs/xml/index.js';
import { parseSecretXml } from '../../libs/xml/secret.js';
import { requireXml, type XmlLib } from './xml.js';

/** Each kind of document: what its reader takes after the document, and what it gives. */
export interface XmlReads {
  /** CreatePool/DefinePool `xml`: the definition, checked and normalised. */
  pool: { args: [xml: string]; result: PoolDefinition };
  /** CreateVolume/CloneVolume `xml`, read for its pool. */
  volume: { args: [xml: string, pool: PoolDefinition, options: VolumeParseOptions]; result: VolumeDefinition };
  /** FindPoolSources `source_xml`. */
  source: { args: [xml: string]; result: PoolSource };
  /** The hardened reader's checks alone (what `validate` asks before xmllint sees a document). */
  document: { args: [xml: string]; result: void };
  /** DefineSecret `xml`. */
  secret: { args: [xml: string]; result: Secret };
}

export type XmlReadKind = keyof XmlReads;
export type XmlReadArgs<K extends XmlReadKind> = XmlReads[K]['args'];
export type XmlReadResult<K extends XmlReadKind> = XmlReads[K]['result'];

interface Reader<K extends XmlReadKind> {
  /** What needs libs/xml, for the UNIMPLEMENTED of a build without it. */
  readonly what: string;
  read(lib: XmlLib, ...args: XmlReadArgs<K>): XmlReadResult<K>;
}

const READERS: { readonly [K in XmlReadKind]: Reader<K> } = {
  pool: { what: 'a pool given as XML', read: (lib, xml) => lib.validatePoolDefinition(lib.parsePoolXml(xml)) },
  volume: { what: 'a volume given as XML', read: (lib, xml, pool, options) => lib.parseVolumeXml(xml, pool, options) },
  source: { what: 'a source given as XML', read: (lib, xml) => lib.parsePoolSourceXml(xml) },
  document: {
    what: "validating XML against libvirt's schema",
    read: (lib, xml) => {
      // only its verdict: the element tree stays where it was made
      lib.parseXmlDocument(xml);
    },
  },
  secret: { what: 'a secret given as XML', read: (_lib, xml) => parseSecretXml(xml) },
};

export function isXmlReadKind(kind: unknown): kind is XmlReadKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(READERS, kind);
}

/** Reads a document here, on the thread that calls it (UNIMPLEMENTED where libs/xml is missing). */
export async function readXmlHere<K extends XmlReadKind>(kind: K, args: XmlReadArgs<K>): Promise<XmlReadResult<K>> {
  const reader = READERS[kind] as Reader<K>;
  const lib = await requireXml(reader.what);
  return reader.read(lib, ...args);
}
