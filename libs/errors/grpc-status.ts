// The one place that maps Cistern errors to gRPC status codes and back.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { asCisternError, errorFromWire, InvalidArgumentError, type CisternError, type ErrorCode } from './errors.js';
import { encodeStatusDetails } from './status-details.js';

const grpcCodeByErrorCode: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  ABORTED: status.ABORTED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  OUT_OF_RANGE: status.OUT_OF_RANGE,
  CANCELLED: status.CANCELLED,
  INTERNAL: status.INTERNAL,
};

/**
 * gRPC's C-core clients (Python, C++, Ruby, PHP, ...) refuse trailers over 8 KiB: the caller
 * then sees RESOURCE_EXHAUSTED "received trailing metadata size exceeds limit" instead of
 * the error. Everything an error sends stays under this, counted as HTTP/2 counts it
 * (name + value + 32 bytes per field); a longer message or detail (a command's stderr) is cut.
 */
export const TRAILER_BUDGET = 7 * 1024;
/** grpc-message, as sent (grpc-js percent-encodes it with encodeURI). */
const MESSAGE_MAX = 1024;
/** One x-cistern-* value, as sent, and all of them together. */
const DETAIL_MAX = 512;
const DETAILS_MAX = 1024;
const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

/**
 * Converts any thrown value into a grpc-js ServiceError. Its details travel twice: as
 * `x-cistern-*` trailers (readable with no protobuf at all) and as a google.rpc.Status with
 * an ErrorInfo (and a BadRequest for a field) in `grpc-status-details-bin`.
 */
export function toGrpcError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const e: CisternError = asCisternError(err);
  const code = grpcCodeByErrorCode[e.code];
  const message = cut(wellFormed(e.message), MESSAGE_MAX, encodeURI).raw;
  const metadata = new Metadata();
  metadata.set('x-cistern-error', e.code);
  const sent: Record<string, string> = {};
  let detailBytes = 0;
  // the shortest first, so a long stderr cannot crowd out an exit code or a field name
  const entries = Object.entries(e.details).sort((a, b) => a[1].length - b[1].length);
  for (const [k, v] of entries) {
    const value = cut(v, Math.min(DETAIL_MAX, DETAILS_MAX - detailBytes), percentEncode);
    if (value.encoded.length === 0 && v !== '') continue;
    detailBytes += value.encoded.length;
    metadata.set(`x-cistern-${k.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`, value.encoded);
    sent[k] = value.raw;
  }
  const field = e instanceof InvalidArgumentError && e.field ? e.field : undefined;
  const prefix = `${field}: `;
  const fieldViolation = field ? { field, description: message.startsWith(prefix) ? message.slice(prefix.length) : message } : undefined;
  const full = encodeStatusDetails({ code, message, reason: e.code, metadata: sent, ...(fieldViolation ? { fieldViolation } : {}) });
  const fits = (bin: Uint8Array): boolean => trailerBytes(metadata, message) + STATUS_DETAILS_KEY.length + 32 + base64Length(bin.length) <= TRAILER_BUDGET;
  // never over the budget: without the repeated metadata, the Status is a few dozen bytes
  const statusDetails = fits(full) ? full : encodeStatusDetails({ code, message, reason: e.code, metadata: {} });
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(statusDetails));
  return { code, details: message, message, metadata, name: e.name };
}

/** What a set of trailers costs the receiver, as HTTP/2 counts it (grpc-status and date included). */
export function trailerBytes(metadata: Metadata, message: string): number {
  let total = 'grpc-status'.length + 2 + 32 + 'grpc-message'.length + encodeURI(message).length + 32 + 'date'.length + 29 + 32;
  for (const [key, values] of Object.entries(metadata.toHttp2Headers())) {
    for (const v of Array.isArray(values) ? values : [values]) total += key.length + String(v).length + 32;
  }
  return total;
}

/** Lone surrogates as U+FFFD: encodeURI throws on them, and no client could decode them. */
const wellFormed = (s: string): string => s.replace(/\p{Cs}/gu, '\uFFFD');

const base64Length = (n: number): number => Math.ceil(n / 3) * 4;

/**
 * The longest prefix of `value`, cut between characters, whose encoded form is at most
 * `max` bytes; a cut value ends with an ellipsis so a reader knows there was more.
 */
export function cut(value: string, max: number, encode: (s: string) => string): { raw: string; encoded: string } {
  const whole = encode(value);
  if (whole.length <= max) return { raw: value, encoded: whole };
  const mark = '\u2026';
  const room = max - encode(mark).length;
  if (room < 0) return { raw: '', encoded: '' };
  let raw = '';
  let used = 0;
  for (const ch of value) {
    const n = encode(ch).length;
    if (used + n > room) break;
    raw += ch;
    used += n;
  }
  return { raw: raw + mark, encoded: encode(raw + mark) };
}

/**
 * A detail as an ASCII metadata value, percent-encoded as gRPC encodes grpc-message: printable
 * ASCII but '%' stays, every other UTF-8 byte becomes %XX, so a client gets back the exact
 * name (urllib.parse.unquote, url.PathUnescape, decodeURIComponent).
 */
export function percentEncode(value: string): string {
  let out = '';
  for (const ch of wellFormed(value)) {
    const b = Buffer.from(ch, 'utf8');
    const c = b[0]!;
    out += b.length === 1 && c >= 0x20 && c <= 0x7e && c !== 0x25 ? ch : [...b].map((x) => `%${x.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  }
  return out;
}

const errorCodeByGrpcCode = new Map<number, ErrorCode>(
  Object.entries(grpcCodeByErrorCode).map(([k, v]) => [v, k as ErrorCode]),
);

/** Client side: a grpc-js error back to the typed error (the CLI and tests use it). */
export function fromGrpcError(err: unknown): CisternError {
  const se = err as Partial<ServiceError> | undefined;
  if (se && typeof se.code === 'number') return fromGrpcStatus(se.code, se.details ?? se.message ?? 'unknown error');
  return asCisternError(err);
}

/** Client side: a gRPC status code and message (a call's status, or a Session answer's) as the typed error. */
export function fromGrpcStatus(code: number, message: string): CisternError {
  return errorFromWire(errorCodeByGrpcCode.get(code) ?? 'INTERNAL', message || 'unknown error');
}
