// Where a request's document is read. Every reader is in xml-reads.ts.
import { readXmlHere, type XmlReadArgs, type XmlReadKind, type XmlReadResult } from './xml-reads.js';

/** Reads a request's document (`args[0]`). `signal`: the call's. */
export function readXml<K extends XmlReadKind>(kind: K, args: XmlReadArgs<K>, _signal?: AbortSignal): Promise<XmlReadResult<K>> {
  return readXmlHere(kind, args);
}
