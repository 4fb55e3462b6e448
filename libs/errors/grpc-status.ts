// The one place that maps Cistern errors to gRPC status codes and back.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { asCisternError, errorFromWire, type CisternError, type ErrorCode } from './errors.js';

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

/** Converts any thrown value into a grpc-js ServiceError; details travel as `x-cistern-*` trailers. */
export function toGrpcError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  const e: CisternError = asCisternError(err);
  const metadata = new Metadata();
  metadata.set('x-cistern-error', e.code);
  for (const [k, v] of Object.entries(e.details)) {
    metadata.set(`x-cistern-${k.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`, percentEncode(v));
  }
  return { code: grpcCodeByErrorCode[e.code], details: e.message, message: e.message, metadata, name: e.name };
}

/**
 * A detail as an ASCII metadata value, percent-encoded as gRPC encodes grpc-message: printable
 * ASCII but '%' stays, every other UTF-8 byte becomes %XX, so a client gets back the exact
 * name (urllib.parse.unquote, url.PathUnescape, decodeURIComponent). At most `max` bytes of
 * the value are sent, cut between characters.
 */
export function percentEncode(value: string, max = 4096): string {
  let out = '';
  let bytes = 0;
  for (const ch of value) {
    const b = Buffer.from(ch, 'utf8');
    if (bytes + b.length > max) break;
    bytes += b.length;
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
  if (se && typeof se.code === 'number') {
    const code = errorCodeByGrpcCode.get(se.code) ?? 'INTERNAL';
    return errorFromWire(code, se.details ?? se.message ?? 'unknown error');
  }
  return asCisternError(err);
}
