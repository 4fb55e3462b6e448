// ListVolumes responses encoded from per-volume bytes kept beside the cache: a Volume the
// cache holds is never changed in place (a change stores a new object), so its encoding is
// kept in a WeakMap keyed by the object and a listing of 10,000 volumes is, after the first,
// a concatenation instead of 10,000 Volume.encode calls. The bytes are exactly what
// ListVolumesResponse.encode would write (field 1 per volume, then field 2).
import { ListVolumesResponse, Volume } from '../../libs/proto/cistern/v1/storage.js';

const encoded = new WeakMap<Volume, Uint8Array>();

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

export function serializeListVolumes(res: ListVolumesResponse): Buffer {
  const parts: Uint8Array[] = new Array(res.volumes.length);
  let total = 0;
  for (let i = 0; i < res.volumes.length; i++) {
    const v = res.volumes[i]!;
    let bytes = encoded.get(v);
    if (!bytes) {
      bytes = Volume.encode(v).finish();
      encoded.set(v, bytes);
    }
    parts[i] = bytes;
    total += 1 + varintLength(bytes.length) + bytes.length;
  }
  const tail = res.nextPageToken ? ListVolumesResponse.encode({ volumes: [], nextPageToken: res.nextPageToken }).finish() : undefined;
  const out = Buffer.allocUnsafe(total + (tail?.length ?? 0));
  let pos = 0;
  for (const bytes of parts) {
    out[pos++] = 0x0a; // field 1, length-delimited
    pos = writeVarint(out, pos, bytes.length);
    out.set(bytes, pos);
    pos += bytes.length;
  }
  if (tail) out.set(tail, pos);
  return out;
}
