// A pool's catalog entry written over the one it replaces, keeping what this build cannot read.
// During a rolling upgrade coordinators of two builds share the bucket (docs/upgrades.md): a
// newer one may store fields in CatalogPool, or in the PoolDefinition inside it, that this
// build's generated code drops on decode. A read-modify-write that re-encoded the decoded value
// would erase them for good (the compare-and-swap only guards against concurrent writers, not
// against a writer that cannot see the data). So a write over a stored entry re-encodes only the
// top-level fields this build changed and keeps every other field's stored bytes as they are.
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { CatalogPool } from '../proto/cistern/agent/v1/agent.js';

/** One top-level field occurrence of an encoded message: its number and its whole bytes (tag included). */
interface FieldBytes {
  no: number;
  bytes: Uint8Array;
}

function fieldsOf(data: Uint8Array): FieldBytes[] {
  const reader = new BinaryReader(data);
  const fields: FieldBytes[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const [no, type] = reader.tag();
    reader.skip(type, no);
    fields.push({ no, bytes: data.subarray(start, reader.pos) });
  }
  return fields;
}

/** The bytes of each field number, concatenated in order (a repeated field is one group). */
function byNumber(fields: FieldBytes[]): Map<number, Buffer> {
  const groups = new Map<number, Uint8Array[]>();
  for (const f of fields) groups.set(f.no, [...(groups.get(f.no) ?? []), f.bytes]);
  return new Map([...groups].map(([no, parts]) => [no, Buffer.concat(parts)]));
}

/**
 * `value` encoded as the entry stored as `stored`: the top-level fields whose encoding differs
 * between the stored entry as this build decodes it and `value` are written from `value`; every
 * other field keeps its stored bytes, unknown ones (a newer build's) included, and those inside
 * an unchanged definition with them. A changed definition is written whole: it is the caller's
 * new definition. Stored bytes that do not parse as protobuf are not kept (plain encoding).
 */
export function encodeOver(stored: Uint8Array, value: CatalogPool): Uint8Array {
  const written = CatalogPool.encode(value).finish();
  let old: FieldBytes[];
  let before: Uint8Array;
  try {
    old = fieldsOf(stored);
    before = CatalogPool.encode(CatalogPool.decode(stored)).finish();
  } catch {
    return written;
  }
  const was = byNumber(fieldsOf(before));
  const now = byNumber(fieldsOf(written));
  const changed = new Set([...was.keys(), ...now.keys()].filter((no) => !(was.get(no) ?? Buffer.alloc(0)).equals(now.get(no) ?? Buffer.alloc(0))));
  if (changed.size === 0) return stored;
  const kept = old.filter((f) => !changed.has(f.no)).map((f) => f.bytes);
  const fresh = fieldsOf(written).filter((f) => changed.has(f.no)).map((f) => f.bytes);
  return Buffer.concat([...kept, ...fresh]);
}
