// A SessionRequest whose call this coordinator does not know: a method a newer storage.proto
// added, sent by a newer client (cisternctl sends every unary call over a Session) during a
// rolling upgrade. protobuf drops a field it has no case for while decoding, so the request
// looks as if it had no call at all; the raw bytes still hold its field number. Such a call is
// UNIMPLEMENTED, as the unary call of a method the server lacks, not "has no call".
import { BinaryReader } from '@bufbuild/protobuf/wire';

/**
 * SessionRequest's `call` oneof starts at field 10 (list_hosts); 1-9 are the envelope's own
 * (id, timeout, cancel). A field from 10 up that did not decode into `call` is a call of a
 * method this build does not have.
 */
const FIRST_CALL_FIELD = 10;

const unknownCalls = new WeakMap<object, number>();

/** The field number of the call a decoded SessionRequest carried but this build does not know. */
export function unknownCallOf(request: object): number | undefined {
  return unknownCalls.get(request);
}

/**
 * `deserialize` (the strict SessionRequest decoder) that also notes, for a request that decoded
 * without a call, the first field from 10 up found in its bytes.
 */
export function notingUnknownCalls<T>(deserialize: (bytes: Buffer) => T): (bytes: Buffer) => T {
  return (bytes) => {
    const request = deserialize(bytes);
    const decoded = request as { call?: unknown; cancel?: boolean } | null;
    if (decoded && typeof decoded === 'object' && 'call' in decoded && decoded.call === undefined && !decoded.cancel) {
      const field = firstFieldFrom(bytes, FIRST_CALL_FIELD);
      if (field !== undefined) unknownCalls.set(decoded, field);
    }
    return request;
  };
}

/** The first field numbered `from` or more in a message's bytes (they decoded already). */
function firstFieldFrom(bytes: Uint8Array, from: number): number | undefined {
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field >= from) return field;
      reader.skip(wireType, field);
    }
  } catch {
    // bytes the decoder took and this walk does not: no unknown call to report
  }
  return undefined;
}
