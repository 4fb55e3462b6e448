// Reading Volume and HostSync wire bytes without decoding them whole (fleet scale).
// A full sync of a 1M-volume fleet decoded by ts-proto costs ~11 µs and ~1 KB of garbage per
// volume; the cache keeps each volume as its encoded bytes anyway (stored-volume.ts), so the
// intake only needs the few fields the cache indexes by. Every read mirrors the generated
// decoder (libs/proto, ts-proto over @bufbuild/protobuf/wire): last value wins, a repeated
// sub-message replaces the earlier one, a field with an unexpected wire type is skipped.
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Event, Host, Pool } from '../../libs/proto/cistern/v1/storage.js';

/** What the cache needs of a volume, read from its bytes. */
export interface VolumeFacts {
  /** resource name, field 1 (hosts/{host}/pools/{pool}/volumes/{volume}) */
  name: string;
  /** pool short name, field 3 */
  pool: string;
  /** definition.name */
  definitionName: string;
  /** definition.key ('' when absent) */
  key: string;
  /** definition.target.path ('' when absent) */
  path: string;
  stale: boolean;
  revision: bigint;
  /**
   * The bytes can be kept as they are: the message's own fields, its definition's and the
   * target's are what Volume.encode writes (field order, each once, no default value for the
   * fields read here, valid UTF-8, nothing unknown), and every sub-message at every level is
   * well formed (nothing that makes the generated decoder stop early, throw or read past the
   * sub-message), so Volume.decode reads them without error to these facts. Bytes written by
   * ts-proto (every agent) always are. Any other volume is decoded and encoded again, exactly
   * the old path. Deeper sub-messages (permissions, timestamps, extents ...) are kept as sent.
   */
  canonical: boolean;
}

/** The volume's short name, as volumeShortName() gives it for the decoded message. */
export function shortNameOf(f: Pick<VolumeFacts, 'name' | 'definitionName'>): string {
  return f.definitionName || f.name.slice(f.name.lastIndexOf('/') + 1);
}

/** The pool a sync snapshot files the volume under (field 3, else the resource name's). */
export function snapshotPoolOf(f: Pick<VolumeFacts, 'name' | 'pool'>): string {
  return f.pool || f.name.split('/')[3] || '';
}

const notCanonical = new Error('volume bytes are not canonical');

/** The decoder's UTF-8 (a leading U+FEFF is text), but throwing on bytes it would replace. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw notCanonical;
  }
}

/**
 * The message-typed fields of Volume and of every message inside it (field number -> message).
 * The generated decoder reads a sub-message with the parent's reader and no bound of its own,
 * so one malformed sub-message anywhere can shift what the parent reads: the scanner walks
 * every level (a unit test checks this table against proto/cistern/v1/storage.proto).
 */
export const VOLUME_MESSAGES: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  Volume: { 4: 'VolumeDefinition' },
  VolumeDefinition: { 7: 'VolumeSourceDevice', 8: 'VolumeTarget', 9: 'BackingStore' },
  VolumeSourceDevice: { 2: 'Extent' },
  Extent: {},
  VolumeTarget: { 3: 'Permissions', 4: 'Timestamps', 9: 'Encryption' },
  Permissions: {},
  Timestamps: {},
  Encryption: { 2: 'SecretRef', 3: 'EncryptionCipher', 4: 'EncryptionIvgen' },
  SecretRef: {},
  EncryptionCipher: {},
  EncryptionIvgen: {},
  BackingStore: { 3: 'Permissions', 4: 'Timestamps' },
};

/**
 * A position in one volume's bytes. Every read stays below the `end` it is given (the end of
 * the sub-message being read) or throws notCanonical: no allocation but the strings kept.
 */
/** Buffer's own latin1 reader, called on any Uint8Array (no Buffer view per volume). */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

/** The bytes as a string of one char per byte. */
export function latin1Of(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return latin1Slice.call(bytes, start, end);
}

/** The text of checked string bytes [start, end) (see Cursor.strField). */
function textOf(buf: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) if (buf[i]! > 0x7f) return utf8(buf.subarray(start, end));
  return latin1Slice.call(buf, start, end);
}

/** The value of a checked uint64 varint [start, end) (Cursor.u64Field), as the decoder reads it. */
function u64Of(buf: Uint8Array, start: number, end: number): bigint {
  if (end - start <= 7) {
    // < 2^49: exact as a number
    let n = 0;
    for (let i = end - 1; i >= start; i--) n = n * 128 + (buf[i]! & 0x7f);
    return BigInt(n);
  }
  let big = 0n;
  for (let i = end - 1; i >= start; i--) big = (big << 7n) | BigInt(buf[i]! & 0x7f);
  return BigInt.asUintN(64, big);
}

function sameBytes(buf: Uint8Array, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let i = 0; i < aEnd - aStart; i++) if (buf[aStart + i] !== buf[bStart + i]) return false;
  return true;
}

/**
 * The pool name of the volume scanned last, and its bytes: a sync lists a pool's volumes one
 * after the other, so the pool's string is made once per pool, not once per volume.
 */
let lastPool: { bytes: Uint8Array; text: string } | undefined;

function poolText(buf: Uint8Array, start: number, end: number): string {
  const last = lastPool;
  if (last && last.bytes.length === end - start) {
    let same = true;
    for (let i = 0; i < last.bytes.length; i++) {
      if (last.bytes[i] !== buf[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return last.text;
  }
  const text = textOf(buf, start, end);
  // a copy: on a Buffer (the sync intake's chunks, the cache's pending pools) .slice() is a
  // view, and would keep the whole slab it was carved from alive (slab-arena.ts)
  lastPool = { bytes: Uint8Array.prototype.slice.call(buf, start, end), text };
  return text;
}

class Cursor {
  pos = 0;

  constructor(readonly buf: Uint8Array) {}

  /** A tag or a length: a varint of at most 5 bytes below 2^31 (the decoder's uint32 agrees on those). */
  u32(end: number): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) throw notCanonical;
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (n > 0x7fffffff) throw notCanonical;
        return n;
      }
      mul *= 128;
    }
    throw notCanonical;
  }

  /** The end of a length-delimited payload starting here. */
  payloadEnd(end: number): number {
    const len = this.u32(end);
    if (this.pos + len > end) throw notCanonical;
    return this.pos + len;
  }

  /**
   * A non-empty string field, valid UTF-8 (the decoder would replace invalid bytes), checked
   * without making the string: returns where its bytes start (they end at `pos`).
   */
  strField(end: number): number {
    const e = this.payloadEnd(end);
    const s = this.pos;
    if (e === s) throw notCanonical; // ts-proto does not write empty strings
    this.pos = e;
    const buf = this.buf;
    for (let i = s; i < e; i++) {
      if (buf[i]! > 0x7f) {
        utf8(buf.subarray(s, e));
        break;
      }
    }
    return s;
  }

  /**
   * A uint64 varint as the decoder reads it, in its shortest form and not 0 (else not
   * canonical), checked without making its BigInt: returns where it starts (it ends at `pos`).
   */
  u64Field(end: number): number {
    const s = this.pos;
    for (let i = 0; ; i++) {
      if (this.pos >= end || i >= 10) throw notCanonical;
      if (this.buf[this.pos++]! < 0x80) break;
    }
    const len = this.pos - s;
    if ((len > 1 && this.buf[this.pos - 1] === 0) || (len === 1 && this.buf[s] === 0)) throw notCanonical;
    return s;
  }

  /**
   * Skips one field of `message` whose tag was just read, checking that the decoder would read
   * it the same way: no groups, no varint longer than 10 bytes, sub-messages well formed and
   * ending where their length says, nothing past `end`.
   */
  skip(tag: number, end: number, message: string): void {
    const wt = tag & 7;
    if (wt === 0) {
      for (let i = 0; ; i++) {
        if (this.pos >= end || i >= 10) throw notCanonical;
        if (this.buf[this.pos++]! < 0x80) return;
      }
    }
    if (wt === 1 || wt === 5) {
      this.pos += wt === 1 ? 8 : 4;
      if (this.pos > end) throw notCanonical;
      return;
    }
    if (wt !== 2) throw notCanonical; // groups (the decoder may stop there) or no wire type at all
    const subEnd = this.payloadEnd(end);
    const sub = VOLUME_MESSAGES[message]![tag >>> 3];
    if (sub === undefined) {
      this.pos = subEnd;
      return;
    }
    while (this.pos < subEnd) {
      const t = this.u32(subEnd);
      if (t >>> 3 === 0) throw notCanonical;
      this.skip(t, subEnd, sub);
    }
  }
}

/** VolumeTarget up to `end`: only path (field 1) matters. */
function scanTarget(c: Cursor, end: number, facts: ScannedFacts): void {
  let last = 0;
  while (c.pos < end) {
    const tag = c.u32(end);
    const field = tag >>> 3;
    if (field > 9 || field <= last) throw notCanonical;
    last = field;
    if (field === 1) {
      if (tag !== 10) throw notCanonical;
      facts.pathStart = c.strField(end);
      facts.pathEnd = c.pos;
    } else {
      c.skip(tag, end, 'VolumeTarget');
    }
  }
}

/** VolumeDefinition up to `end`: name (2), key (3), target (8). */
function scanDefinition(c: Cursor, end: number, facts: ScannedFacts): void {
  let last = 0;
  while (c.pos < end) {
    const tag = c.u32(end);
    const field = tag >>> 3;
    // repeated source_devices (7) may come more than once, in a row
    if (field === 0 || field > 10 || field < last || (field === last && field !== 7)) throw notCanonical;
    last = field;
    if (field === 2 || field === 3) {
      if (tag !== field * 8 + 2) throw notCanonical;
      const start = c.strField(end);
      if (field === 2) {
        facts.definitionNameStart = start;
        facts.definitionNameEnd = c.pos;
      } else {
        facts.keyStart = start;
        facts.keyEnd = c.pos;
      }
    } else if (field === 8) {
      if (tag !== 66) throw notCanonical;
      const targetEnd = c.payloadEnd(end);
      scanTarget(c, targetEnd, facts);
    } else {
      c.skip(tag, end, 'VolumeDefinition');
    }
  }
}

/**
 * What scanVolume found. Its strings are made when first read, from the checked bytes: a
 * scan that only validates a volume (the sync intake, cache.ts) allocates none of them.
 */
class ScannedFacts implements VolumeFacts {
  pool = '';
  stale = false;
  canonical = true;
  // [start, end) of each string's bytes (numbers: no array per volume); start -1 = absent
  definitionNameStart = -1;
  definitionNameEnd = -1;
  keyStart = -1;
  keyEnd = -1;
  pathStart = -1;
  pathEnd = -1;
  nameStart = -1;
  nameEnd = -1;
  revisionStart = -1;
  revisionEnd = -1;
  private revisionValue: bigint | undefined;
  private nameText: string | undefined;
  private definitionNameText: string | undefined;
  private keyText: string | undefined;
  private pathText: string | undefined;

  constructor(private readonly buf: Uint8Array) {}

  private text(start: number, end: number): string {
    return this.canonical && start >= 0 ? textOf(this.buf, start, end) : '';
  }

  get name(): string {
    return (this.nameText ??= this.text(this.nameStart, this.nameEnd));
  }

  set name(value: string) {
    this.nameText = value;
  }

  get revision(): bigint {
    return (this.revisionValue ??= this.canonical && this.revisionStart >= 0 ? u64Of(this.buf, this.revisionStart, this.revisionEnd) : 0n);
  }

  get definitionName(): string {
    return (this.definitionNameText ??= this.text(this.definitionNameStart, this.definitionNameEnd));
  }

  get path(): string {
    return (this.pathText ??= this.text(this.pathStart, this.pathEnd));
  }

  get key(): string {
    if (this.keyText === undefined) {
      // a file volume's key is its path: one string for both
      const samePath = this.pathStart >= 0 && this.keyStart >= 0 && sameBytes(this.buf, this.keyStart, this.keyEnd, this.pathStart, this.pathEnd);
      this.keyText = samePath ? this.path : this.text(this.keyStart, this.keyEnd);
    }
    return this.keyText;
  }
}

/**
 * Reads name, pool, definition.name/key/target.path, stale and revision from one Volume's
 * bytes. Never throws: for bytes that are not `canonical` (malformed ones included) the other
 * fields are unspecified; decode the message instead (which throws on malformed bytes).
 * ~10x cheaper than Volume.decode: nothing is allocated but the facts themselves; their
 * strings are made when read (the pool's name once per run of volumes of the same pool).
 */
export function scanVolume(bytes: Uint8Array): VolumeFacts {
  const facts = new ScannedFacts(bytes);
  const c = new Cursor(bytes);
  const end = bytes.length;
  let last = 0;
  try {
    while (c.pos < end) {
      // the message's own tags are one byte each, in field order
      const tag = bytes[c.pos++]!;
      const field = tag >>> 3;
      if (field <= last) throw notCanonical;
      last = field;
      switch (tag) {
        case 10:
          facts.nameStart = c.strField(end);
          facts.nameEnd = c.pos;
          break;
        case 18:
          c.strField(end);
          break;
        case 26: {
          const start = c.strField(end);
          facts.pool = poolText(bytes, start, c.pos);
          break;
        }
        case 34:
          scanDefinition(c, c.payloadEnd(end), facts);
          break;
        case 40:
          if (bytes[c.pos] !== 1) throw notCanonical; // bool true, one byte (false is not written)
          c.pos++;
          facts.stale = true;
          break;
        case 48:
          facts.revisionStart = c.u64Field(end);
          facts.revisionEnd = c.pos;
          break;
        default:
          throw notCanonical;
      }
    }
  } catch (err) {
    if (err !== notCanonical) throw err;
    facts.canonical = false; // not canonical, or cut short / malformed
  }
  return facts;
}

/** A HostSync chunk with its pools decoded and its volumes left as bytes. */
export interface HostSyncParts {
  syncId: string;
  chunk: number;
  last: boolean;
  host: Host | undefined;
  pools: Pool[];
  /** each one Volume's bytes: views into the message, not copies */
  volumes: Uint8Array[];
  revision: bigint;
  bootId: bigint;
  eventsLost: Event[];
  reason: string;
  stoppedPools: Pool[];
}

/**
 * Splits a HostSync message into its fields, decoding everything but the volumes (the same
 * values HostSync.decode gives; a volume is the bytes Volume.decode would read). Throws on
 * malformed bytes, as HostSync.decode does.
 */
export function splitHostSync(bytes: Uint8Array): HostSyncParts {
  const out: HostSyncParts = { syncId: '', chunk: 0, last: false, host: undefined, pools: [], volumes: [], revision: 0n, bootId: 0n, eventsLost: [], reason: '', stoppedPools: [] };
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        out.syncId = r.string();
        continue;
      case 16:
        out.chunk = r.uint32();
        continue;
      case 24:
        out.last = r.bool();
        continue;
      case 34:
        out.host = Host.decode(r, r.uint32());
        continue;
      case 42:
        out.pools.push(Pool.decode(r, r.uint32()));
        continue;
      case 50:
        out.volumes.push(r.bytes());
        continue;
      case 56:
        out.revision = r.uint64() as bigint;
        continue;
      case 64:
        out.bootId = r.uint64() as bigint;
        continue;
      case 74:
        out.eventsLost.push(Event.decode(r, r.uint32()));
        continue;
      case 82:
        out.reason = r.string();
        continue;
      case 90:
        out.stoppedPools.push(Pool.decode(r, r.uint32()));
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    r.skip(tag & 7);
  }
  return out;
}
