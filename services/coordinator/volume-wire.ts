// Reading Volume and HostSync wire bytes without decoding them whole (issue 8, fleet scale).
// A full sync of a 1M-volume fleet decoded by ts-proto costs ~11 µs and ~1 KB of garbage per
// volume; the cache keeps each volume as its encoded bytes anyway (stored-volume.ts), so the
// intake only needs the few fields the cache indexes by. Every read mirrors the generated
// decoder (libs/proto, ts-proto over @bufbuild/protobuf/wire): last value wins, a repeated
// sub-message replaces the earlier one, a field with an unexpected wire type is skipped.
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Host, Pool } from '../../libs/proto/cistern/v1/storage.js';

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

/** A string field, strict UTF-8 (the decoder would replace invalid bytes: such bytes are not kept as they are). */
const str = (r: BinaryReader): string => r.string(true);

/** The end of a length-delimited field's payload (the reader is left at its start). */
function payloadEnd(r: BinaryReader, end: number): number {
  const len = r.uint32();
  if (r.pos + len > end) throw notCanonical;
  return r.pos + len;
}

/** Reader past `end` (a field ran over its sub-message): the generated decoder would go on reading there. */
function within(r: BinaryReader, end: number): void {
  if (r.pos > end) throw notCanonical;
}

/** A varint written in its shortest form (as BinaryWriter does). */
function minimalVarint(buf: Uint8Array, start: number, end: number): boolean {
  return end - start === 1 || buf[end - 1] !== 0;
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
  BackingStore: { 3: 'Permissions' },
};

/**
 * Skips one field whose tag was just read, checking that the decoder would read it the same
 * way: no groups, no varint longer than 10 bytes, sub-messages well formed and ending where
 * their length says, nothing past `end`.
 */
function skipField(r: BinaryReader, tag: number, end: number, message: string): void {
  const wt = tag & 7;
  if (tag === 0 || wt === 3 || wt === 4) throw notCanonical; // the decoder would stop here
  const sub = VOLUME_MESSAGES[message]![tag >>> 3];
  if (sub !== undefined && wt === 2) {
    const subEnd = payloadEnd(r, end);
    while (r.pos < subEnd) skipField(r, r.uint32(), subEnd, sub);
    within(r, subEnd);
  } else if (wt === 0) {
    if (r.skip(wt).length > 10) throw notCanonical; // the decoder throws on such a varint
  } else {
    r.skip(wt);
  }
  within(r, end);
}

/** VolumeTarget up to `end`: only path (field 1) matters. */
function scanTarget(r: BinaryReader, end: number): string {
  let path = '';
  let last = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field > 9 || field <= last) throw notCanonical;
    last = field;
    if (field === 1) {
      if (tag !== 10) throw notCanonical;
      path = str(r);
      if (path === '') throw notCanonical;
      within(r, end);
    } else {
      skipField(r, tag, end, 'VolumeTarget');
    }
  }
  return path;
}

/** VolumeDefinition up to `end`: name (2), key (3), target (8). */
function scanDefinition(r: BinaryReader, end: number, facts: VolumeFacts): void {
  let last = 0;
  let name = '';
  let key = '';
  let path = '';
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    // repeated source_devices (7) may come more than once, in a row
    if (field > 10 || field < last || (field === last && field !== 7)) throw notCanonical;
    last = field;
    if (field === 2 || field === 3) {
      if (tag !== field * 8 + 2) throw notCanonical;
      const s = str(r);
      if (s === '') throw notCanonical;
      if (field === 2) name = s;
      else key = s;
      within(r, end);
    } else if (field === 8) {
      if (tag !== 66) throw notCanonical;
      const targetEnd = payloadEnd(r, end);
      path = scanTarget(r, targetEnd);
      within(r, targetEnd);
    } else {
      skipField(r, tag, end, 'VolumeDefinition');
    }
  }
  facts.definitionName = name;
  facts.key = key;
  facts.path = path;
}

/**
 * Reads name, pool, definition.name/key/target.path, stale and revision from one Volume's
 * bytes. Never throws: for bytes that are not `canonical` (malformed ones included) the other
 * fields are unspecified; decode the message instead (which throws on malformed bytes).
 */
export function scanVolume(bytes: Uint8Array): VolumeFacts {
  const facts: VolumeFacts = { name: '', pool: '', definitionName: '', key: '', path: '', stale: false, revision: 0n, canonical: true };
  const r = new BinaryReader(bytes);
  let last = 0;
  try {
    while (r.pos < r.len) {
      const at = r.pos;
      const tag = r.uint32();
      const field = tag >>> 3;
      if (field <= last || r.pos - at !== 1) throw notCanonical;
      last = field;
      switch (tag) {
        case 10:
        case 18:
        case 26: {
          const s = str(r);
          if (s === '') throw notCanonical;
          if (field === 1) facts.name = s;
          else if (field === 3) facts.pool = s;
          break;
        }
        case 34: {
          const end = payloadEnd(r, r.len);
          scanDefinition(r, end, facts);
          within(r, end);
          break;
        }
        case 40: {
          // bool true, one byte (false is not written)
          if (bytes[r.pos] !== 1) throw notCanonical;
          r.pos++;
          facts.stale = true;
          break;
        }
        case 48: {
          const s = r.pos;
          facts.revision = r.uint64() as bigint;
          within(r, r.len);
          if (facts.revision === 0n || !minimalVarint(bytes, s, r.pos)) throw notCanonical;
          break;
        }
        default:
          throw notCanonical;
      }
    }
  } catch {
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
}

/**
 * Splits a HostSync message into its fields, decoding everything but the volumes (the same
 * values HostSync.decode gives; a volume is the bytes Volume.decode would read). Throws on
 * malformed bytes, as HostSync.decode does.
 */
export function splitHostSync(bytes: Uint8Array): HostSyncParts {
  const out: HostSyncParts = { syncId: '', chunk: 0, last: false, host: undefined, pools: [], volumes: [], revision: 0n };
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
    }
    if ((tag & 7) === 4 || tag === 0) break;
    r.skip(tag & 7);
  }
  return out;
}
