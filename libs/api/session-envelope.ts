// The SessionResponse envelope as bytes, both ways. The coordinator writes each answer from
// bytes it already has (a method's own response serializer: the cache's stored volumes and
// pools, or ts-proto's encode) and a client reads a result's bytes without decoding the rest,
// so neither side builds a SessionResponse object. The field of each call is read from the
// generated code at load, so storage.proto stays the only place that numbers them.
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { SessionRequest, SessionResponse, StorageServiceService } from '../proto/cistern/v1/storage.js';

/** A SessionRequest's call (and a SessionResponse's result): the unary method's key, as in StorageServiceServer. */
export type SessionCall = NonNullable<SessionRequest['call']>['$case'];

const ID_FIELD = 1;
const STATUS_FIELD = 2;

/** The SessionResponse field each call's result travels in. */
export const RESULT_FIELD: ReadonlyMap<SessionCall, number> = fieldsOf();

const CALL_BY_FIELD: ReadonlyMap<number, SessionCall> = new Map([...RESULT_FIELD].map(([call, field]) => [field, call]));

function fieldsOf(): Map<SessionCall, number> {
  const out = new Map<SessionCall, number>();
  const requestFields = new Map<SessionCall, number>();
  for (const call of sessionCalls()) {
    out.set(call, firstField(SessionResponse.encode(SessionResponse.fromPartial({ result: { $case: call, value: {} } } as never)).finish()));
    requestFields.set(call, firstField(SessionRequest.encode(SessionRequest.fromPartial({ call: { $case: call, value: {} } } as never)).finish()));
  }
  // a call's request and its result share a number: a reader of either can name the method from it
  for (const [call, field] of out) if (requestFields.get(call) !== field) throw new Error(`session field of ${call} differs between request and response`);
  return out;
}

function firstField(bytes: Uint8Array): number {
  return new BinaryReader(bytes).tag()[0];
}

/** Every call a session carries: StorageService's unary methods, by their generated keys. */
function sessionCalls(): SessionCall[] {
  return Object.entries(StorageServiceService)
    .filter(([, m]) => !m.requestStream && !m.responseStream)
    .map(([key]) => key as SessionCall);
}

/**
 * A SessionResponse carrying `result` (the method's response, encoded) for call `id`. The
 * result is copied once, behind its few bytes of header: a listing page is megabytes, and
 * BinaryWriter.bytes() then finish() then Buffer.from() copied it three times.
 */
export function encodeResult(id: bigint, call: SessionCall, result: Uint8Array): Buffer {
  const head = new BinaryWriter();
  if (id !== 0n) head.uint32((ID_FIELD << 3) | WireType.Varint).uint64(id);
  head.uint32((RESULT_FIELD.get(call)! << 3) | WireType.LengthDelimited).uint32(result.length);
  const header = head.finish();
  const out = Buffer.allocUnsafe(header.length + result.length);
  out.set(header, 0);
  out.set(result, header.length);
  return out;
}

/** A SessionResponse carrying `status` (a google.rpc.Status, encoded) for call `id`. */
export function encodeFailure(id: bigint, status: Uint8Array): Buffer {
  const w = new BinaryWriter();
  if (id !== 0n) w.uint32((ID_FIELD << 3) | WireType.Varint).uint64(id);
  w.uint32((STATUS_FIELD << 3) | WireType.LengthDelimited).bytes(status);
  return Buffer.from(w.finish());
}

/** One SessionResponse as its parts: the result's bytes are a view into `bytes`, not decoded. */
export interface SessionAnswer {
  id: bigint;
  status?: Uint8Array;
  result?: { call: SessionCall; bytes: Uint8Array };
}

export function decodeAnswer(bytes: Uint8Array): SessionAnswer {
  const r = new BinaryReader(bytes);
  const answer: SessionAnswer = { id: 0n };
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === ID_FIELD && wireType === WireType.Varint) answer.id = BigInt(r.uint64().toString());
    else if (field === STATUS_FIELD && wireType === WireType.LengthDelimited) answer.status = r.bytes();
    else if (CALL_BY_FIELD.has(field) && wireType === WireType.LengthDelimited) answer.result = { call: CALL_BY_FIELD.get(field)!, bytes: r.bytes() };
    else r.skip(wireType);
  }
  return answer;
}
