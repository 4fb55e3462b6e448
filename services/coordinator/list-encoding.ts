// ListVolumes and GetVolume responses written straight from the cache's stored volume bytes
// (stored-volume.ts): a page of 1,000 volumes is 1,000 copies, with no decode and no
// Volume.encode. The bytes are exactly what ListVolumesResponse.encode (Volume.encode) would
// write for the decoded page (volume): field 1 per volume, with the stale flag, then field 2.
import { ListVolumesResponse, Volume } from '../../libs/proto/cistern/v1/storage.js';
import { decodeStored, storedSize, writeStored, type StoredVolume } from './stored-volume.js';
import { varintLength, writeVarint } from './varint.js';

const STORED = Symbol('stored volumes');

interface StoredPage {
  stored: readonly StoredVolume[];
  stale: boolean;
  /** set once someone in the process reads `volumes`: from then on those objects are the answer */
  decoded?: Volume[];
}

/**
 * A ListVolumesResponse whose volumes are the given stored ones, each with `stale` set as given
 * (the pool view's). `volumes` is decoded on first read (in-process callers, tests); the gRPC
 * serializer below copies the stored bytes instead.
 */
export function storedListVolumes(stored: readonly StoredVolume[], stale: boolean, nextPageToken: string): ListVolumesResponse {
  const page: StoredPage = { stored, stale };
  const res = { nextPageToken } as ListVolumesResponse;
  Object.defineProperty(res, 'volumes', {
    enumerable: true,
    configurable: true,
    get: (): Volume[] =>
      (page.decoded ??= stored.map((s) => {
        const v = decodeStored(s);
        v.stale = stale;
        return v;
      })),
    set: (volumes: Volume[]) => {
      page.decoded = volumes;
    },
  });
  Object.defineProperty(res, STORED, { value: page, enumerable: false });
  return res;
}

export function serializeListVolumes(res: ListVolumesResponse): Buffer {
  const page = (res as { [STORED]?: StoredPage })[STORED];
  const tail = res.nextPageToken ? ListVolumesResponse.encode({ volumes: [], nextPageToken: res.nextPageToken }).finish() : undefined;
  if (page && !page.decoded) {
    const { stored, stale } = page;
    let total = tail?.length ?? 0;
    for (const s of stored) {
      const size = storedSize(s, stale);
      total += 1 + varintLength(size) + size;
    }
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    for (const s of stored) {
      out[pos++] = 0x0a; // field 1, length-delimited
      pos = writeVarint(out, pos, storedSize(s, stale));
      pos = writeStored(out, pos, s, stale);
    }
    if (tail) out.set(tail, pos);
    return out;
  }
  // a response built from decoded volumes
  const parts = res.volumes.map((v) => Volume.encode(v).finish());
  let total = tail?.length ?? 0;
  for (const bytes of parts) total += 1 + varintLength(bytes.length) + bytes.length;
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const bytes of parts) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, bytes.length);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  if (tail) out.set(tail, pos);
  return out;
}

const STORED_ONE = Symbol('stored volume');

interface StoredOne {
  stored: StoredVolume;
  stale: boolean;
  decoded?: Volume;
}

const VOLUME_FIELDS = ['name', 'host', 'pool', 'definition', 'stale', 'revision'] as const;

/**
 * GetVolume's answer: the stored volume with `stale` set as given. Its fields are decoded on
 * first read (in-process callers, tests); the gRPC serializer below copies the stored bytes.
 */
export function storedVolumeMessage(stored: StoredVolume, stale: boolean): Volume {
  const one: StoredOne = { stored, stale };
  const decoded = (): Volume => {
    if (!one.decoded) {
      one.decoded = decodeStored(stored);
      one.decoded.stale = stale;
    }
    return one.decoded;
  };
  const res = {} as Volume;
  for (const field of VOLUME_FIELDS) {
    Object.defineProperty(res, field, {
      enumerable: true,
      configurable: true,
      get: () => decoded()[field],
      set: (value: never) => {
        decoded()[field] = value;
      },
    });
  }
  Object.defineProperty(res, STORED_ONE, { value: one, enumerable: false });
  return res;
}

export function serializeVolume(volume: Volume): Buffer {
  const one = (volume as { [STORED_ONE]?: StoredOne })[STORED_ONE];
  if (one && !one.decoded) {
    const out = Buffer.allocUnsafe(storedSize(one.stored, one.stale));
    writeStored(out, 0, one.stored, one.stale);
    return out;
  }
  const bytes = Volume.encode(one?.decoded ?? volume).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
