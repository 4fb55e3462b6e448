// The richer error model every gRPC language reads: a google.rpc.Status in the
// `grpc-status-details-bin` trailer (Python grpc_status.rpc_status.from_call, Go
// status.FromError(err).Details(), Java StatusProto.fromThrowable). Written with the wire
// writer directly: three small googleapis messages are not worth vendoring their .proto files.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { ErrorDetails } from './errors.js';

/** ErrorInfo.domain: the API the reasons belong to (AIP-193). */
export const ERROR_DOMAIN = 'cistern.v1';

const TYPE_PREFIX = 'type.googleapis.com/';

export interface StatusDetails {
  code: number;
  message: string;
  /** ErrorInfo.reason: Cistern's error code (INVALID_ARGUMENT, NOT_FOUND, ...). */
  reason: string;
  /** ErrorInfo.metadata: the same details as the x-cistern-* trailers. */
  metadata: ErrorDetails;
  /** One BadRequest.FieldViolation, for INVALID_ARGUMENT naming a field. */
  fieldViolation?: { field: string; description: string };
}

/** google.rpc.Status{code, message, details: [ErrorInfo, BadRequest?]} as bytes. */
export function encodeStatusDetails(s: StatusDetails): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 0).int32(s.code);
  w.uint32((2 << 3) | 2).string(s.message);
  writeAny(w, 'google.rpc.ErrorInfo', errorInfo(s));
  if (s.fieldViolation) writeAny(w, 'google.rpc.BadRequest', badRequest(s.fieldViolation));
  return w.finish();
}

function writeAny(w: BinaryWriter, typeName: string, value: Uint8Array): void {
  w.uint32((3 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string(TYPE_PREFIX + typeName);
  w.uint32((2 << 3) | 2).bytes(value);
  w.join();
}

// ErrorInfo{reason = 1, domain = 2, map<string, string> metadata = 3}
function errorInfo(s: StatusDetails): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).string(s.reason);
  w.uint32((2 << 3) | 2).string(ERROR_DOMAIN);
  for (const [key, value] of Object.entries(s.metadata)) {
    w.uint32((3 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(key);
    w.uint32((2 << 3) | 2).string(value);
    w.join();
  }
  return w.finish();
}

// BadRequest{repeated FieldViolation field_violations = 1}; FieldViolation{field = 1, description = 2}
function badRequest(v: { field: string; description: string }): Uint8Array {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string(v.field);
  w.uint32((2 << 3) | 2).string(v.description);
  w.join();
  return w.finish();
}
