// The compact form in which the fleet cache keeps a volume (500 hosts hold a million of them):
// its protobuf encoding, exactly what Volume.encode writes, as a one-byte-per-char string
// ('latin1'). A decoded ts-proto Volume is 5 objects, ~12 strings and 7 BigInts (~935 heap bytes); the encoding is
// ~330 bytes plus a 16-byte string header, with nothing inside for the GC to trace (a small
// Uint8Array would add ~100 bytes of object overhead per volume). Readers decode on demand
// (~10 µs); ListVolumes copies the bytes into its response (list-encoding.ts); the revision,
// the stale flag and the definition's bytes are found by walking the message's own fields.
import { Volume } from '../../libs/proto/cistern/v1/storage.js';
import { latin1Of, scanVolume, type VolumeFacts } from './volume-wire.js';

/** A volume's Volume.encode bytes, one char per byte. Compare with ===: equal strings are equal volumes. */
export type StoredVolume = string & { readonly __storedVolume: unique symbol };

/** A volume ready for the cache: its stored form and the fields the cache indexes by. */
export interface PreparedVolume {
  stored: StoredVolume;
  facts: VolumeFacts;
  /** the decoded message when it came decoded */
  volume?: Volume;
}

export function storeVolume(volume: Volume): StoredVolume {
  return latin1Of(Volume.encode(volume).finish()) as StoredVolume;
}

export function factsOfVolume(volume: Volume): VolumeFacts {
  const def = volume.definition;
  return {
    name: volume.name,
    pool: volume.pool,
    definitionName: def?.name ?? '',
    key: def?.key ?? '',
    path: def?.target?.path ?? '',
    stale: volume.stale,
    revision: volume.revision,
    canonical: true,
  };
}

/**
 * A decoded volume, or one volume's wire bytes (read with scanVolume, kept as they are when
 * canonical, else decoded and encoded again). Throws, like Volume.decode, on malformed bytes.
 */
export function prepareVolume(input: Volume | Uint8Array): PreparedVolume {
  if (!(input instanceof Uint8Array)) return { stored: storeVolume(input), facts: factsOfVolume(input), volume: input };
  return prepareScanned(input, scanVolume(input));
}

/** prepareVolume for bytes already read with scanVolume. */
export function prepareScanned(bytes: Uint8Array, facts: VolumeFacts): PreparedVolume {
  if (facts.canonical) return { stored: latin1Of(bytes) as StoredVolume, facts };
  const volume = Volume.decode(bytes);
  return { stored: storeVolume(volume), facts: factsOfVolume(volume), volume };
}

export function decodeStored(stored: StoredVolume): Volume {
  return Volume.decode(Buffer.from(stored, 'latin1'));
}

/** name, pool, definition name/key/path, stale, revision of a stored volume. */
export function storedFacts(stored: StoredVolume): VolumeFacts {
  return scanVolume(Buffer.from(stored, 'latin1'));
}

// ------------------------------------------------------------ the message's own fields
// A stored volume is canonical: one-byte tags 10, 18, 26, 34 (length-delimited) in this
// order, then 40 01 (stale) and 48 <varint> (revision) when set.

/** Where the varint at `pos` ends. */
function skipVarint(s: string, pos: number): number {
  while (s.charCodeAt(pos) & 0x80) pos++;
  return pos + 1;
}

function varintAt(s: string, pos: number): number {
  let n = 0;
  let mul = 1;
  for (;;) {
    const b = s.charCodeAt(pos++);
    n += (b & 0x7f) * mul;
    if (b < 0x80) return n;
    mul *= 128;
  }
}

/** Offset of the first field after the definition (stale or revision), or the end. */
function tailOf(s: string): number {
  let pos = 0;
  while (pos < s.length) {
    const tag = s.charCodeAt(pos);
    if (tag !== 10 && tag !== 18 && tag !== 26 && tag !== 34) return pos;
    const len = varintAt(s, pos + 1);
    pos = skipVarint(s, pos + 1) + len;
  }
  return pos;
}

export function storedRevision(stored: StoredVolume): bigint {
  let pos = tailOf(stored);
  if (stored.charCodeAt(pos) === 40) pos += 2;
  if (pos >= stored.length) return 0n;
  pos++; // tag 48
  const end = skipVarint(stored, pos);
  if (end - pos <= 7) return BigInt(varintAt(stored, pos)); // < 2^49: exact as a number
  let n = 0n;
  for (let i = end - 1; i >= pos; i--) n = (n << 7n) | BigInt(stored.charCodeAt(i) & 0x7f);
  return BigInt.asUintN(64, n);
}

/** The definition's bytes (field 4's payload), '' when absent. */
function definitionOf(s: string): string {
  let pos = 0;
  while (pos < s.length) {
    const tag = s.charCodeAt(pos);
    if (tag !== 10 && tag !== 18 && tag !== 26 && tag !== 34) return '';
    const len = varintAt(s, pos + 1);
    const start = skipVarint(s, pos + 1);
    if (tag === 34) return s.slice(start, start + len);
    pos = start + len;
  }
  return '';
}

/** Same definition bytes (so the same definition; different bytes may still decode alike). */
export function sameDefinitionBytes(a: StoredVolume, b: StoredVolume): boolean {
  return definitionOf(a) === definitionOf(b);
}

/** Length of the volume's encoding with `stale` set as given. */
export function storedSize(stored: StoredVolume, stale: boolean): number {
  const has = stored.charCodeAt(tailOf(stored)) === 40;
  return stored.length + (has === stale ? 0 : stale ? 2 : -2);
}

/**
 * Writes the volume's encoding with `stale` set as given (field 5 between the definition and
 * the revision, where Volume.encode puts it) at `pos`; returns the position after it.
 */
export function writeStored(out: Buffer, pos: number, stored: StoredVolume, stale: boolean): number {
  const tail = tailOf(stored);
  const has = stored.charCodeAt(tail) === 40;
  if (has === stale) return pos + out.write(stored, pos, 'latin1');
  pos += out.write(stored.slice(0, tail), pos, 'latin1');
  if (stale) {
    out[pos++] = 40;
    out[pos++] = 1;
    return pos + out.write(stored.slice(tail), pos, 'latin1');
  }
  return pos + out.write(stored.slice(tail + 2), pos, 'latin1');
}
