// Where a request's document is read: on the event loop when it is small, on a worker thread
// (xml-workers.ts) when it is large. Either way the readers of xml-reads.ts do it, so the
// result and the errors are the same; only what the rest of the coordinator waits for differs.
import { MAX_XML_BYTES } from '../../libs/xml/safe-parse.js';
import { readXmlHere, type XmlReadArgs, type XmlReadKind, type XmlReadResult } from './xml-reads.js';
import { XmlWorkerPool } from './xml-workers.js';

/**
 * Documents up to this many characters are read inline. Measured on a 2-CPU machine: a
 * 1 KiB pool reads in ~0.5 ms, 4 KiB in ~2 ms, 16 KiB in ~7-10 ms, 1 MiB in 0.7-2.3 s; the
 * hop to a thread and back costs ~0.1-0.3 ms. Below 4 KiB (every libvirt storage document
 * seen in practice, libvirt's test fixtures are under 1 KiB) the hop would be a large part of
 * the read and the loop is held for at most a couple of milliseconds; above it the loop would
 * be held for longer than a hop costs the caller.
 */
export const INLINE_MAX_CHARS = 4096;

let shared: XmlWorkerPool | undefined;

/** The coordinator's worker threads for large documents, started on first use. */
export function xmlWorkers(): XmlWorkerPool {
  shared ??= new XmlWorkerPool();
  return shared;
}

/**
 * Reads a request's document (`args[0]`): inline when small, on a worker thread when large.
 * A document over the size limit is read inline too: the reader refuses it before parsing.
 * `signal`: the call's; a cancelled call stops its read (CANCELLED).
 */
export function readXml<K extends XmlReadKind>(kind: K, args: XmlReadArgs<K>, signal?: AbortSignal): Promise<XmlReadResult<K>> {
  const xml = args[0];
  if (typeof xml !== 'string' || xml.length <= INLINE_MAX_CHARS || xml.length > MAX_XML_BYTES) return readXmlHere(kind, args);
  return xmlWorkers().run(kind, args, signal);
}
