// find-storage-pool-sources: the <source> spec virsh takes as input and the <sources> list
// libvirt prints (virStoragePoolDefParseSourceString / virStoragePoolSourceListFormat).
import type { PoolSource, PoolType } from '../proto/cistern/v1/storage.js';
import { Ctx, Out, checkText } from './common.js';
import { poolTypeInfo } from './formats.js';
import { normalizePoolSource, readPoolSource, writePoolSource } from './pool.js';
import { parseXmlDocument, rootProblem } from './safe-parse.js';

/**
 * Parses a <source> spec (virsh find-storage-pool-sources SRCSPEC). With `type` the format
 * is checked against (and defaulted for) that pool type and elements the type does not use
 * are dropped; without it every element is kept as given.
 */
export function parsePoolSourceXml(xml: string, type?: PoolType): PoolSource {
  const root = parseXmlDocument(xml, 'source');
  const ctx: Ctx = new Ctx();
  const wrongRoot = rootProblem(root, 'source');
  if (wrongRoot) ctx.fail('', wrongRoot);
  const src = readPoolSource(ctx, root, 'source');
  if (type !== undefined) return normalizePoolSource(ctx, type, src, false);
  // no type: keep everything, with the checks that do not depend on a type
  if (src.format) checkText(ctx, 'source.format', src.format, 'format', 64);
  if (src.name) checkText(ctx, 'source.name', src.name, 'source name', 255);
  if (src.dir) checkText(ctx, 'source.dir', src.dir, 'source dir', 4095);
  for (const [i, d] of src.devices.entries()) checkText(ctx, `source.devices[${i}].path`, d.path, 'device path', 4095);
  for (const [i, h] of src.hosts.entries()) checkText(ctx, `source.hosts[${i}].name`, h.name, 'host name', 255);
  return src;
}

/**
 * The <sources> document virsh find-storage-pool-sources prints. With `type` only the
 * elements that pool type uses are printed (and its default format); without it every
 * element that is set.
 */
export function formatPoolSourcesXml(sources: PoolSource[], type?: PoolType): string {
  const info = type === undefined ? undefined : poolTypeInfo(type);
  const out = new Out();
  out.open('<sources>');
  for (const s of sources) writePoolSource(out, info, s);
  out.close('</sources>');
  return out.toString();
}
