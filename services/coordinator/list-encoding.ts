// ListVolumes responses written straight from the cache's stored volume bytes
// (stored-volume.ts): a page of 1,000 volumes is 1,000 copies, with no decode and no
// Volume.encode. The bytes are exactly what ListVolumesResponse.encode would write for the
// decoded page (field 1 per volume, with the page's stale flag, then field 2).
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
