// One typed error class per condition. Both sides of the bus use them: the agent
// sends {code, message, details} (errorToWire in libs/bus/agent-rpc.ts), the coordinator
// re-raises the same class (errorFromAgent) and grpc-status.ts maps it to a gRPC status.
import { visibleText } from './visible.js';

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAVAILABLE'
  | 'UNIMPLEMENTED'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'DEADLINE_EXCEEDED'
  | 'OUT_OF_RANGE'
  | 'CANCELLED'
  | 'INTERNAL';

export type ErrorDetails = Record<string, string>;

export abstract class CisternError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(message: string, details: ErrorDetails = {}) {
    // messages echo request values (a tag name, a type, a mode): the one place where every
    // message is made safe to show on a terminal (visible.ts), whichever check wrote it
    super(visibleText(message, true));
    this.name = new.target.name;
    this.details = details;
  }
}

/** Bad XML, names, sizes, formats: the message says which field, what was wrong, what is allowed. */
export class InvalidArgumentError extends CisternError {
  readonly code = 'INVALID_ARGUMENT' as const;
  constructor(readonly field: string, message: string, details: ErrorDetails = {}) {
    super(field ? `${field}: ${message}` : message, { field, ...details });
  }
}

/**
 * XML that libvirt's RELAX NG schema refuses (libvirt's VIR_ERR_XML_INVALID_SCHEMA, with its
 * wording): `schema` is the schema file, `report` the validator's first lines.
 */
export class SchemaValidationError extends InvalidArgumentError {
  constructor(field: string, readonly schema: string, readonly report: string) {
    super(field, `XML document failed to validate against schema: Unable to validate doc against ${schema}${report ? `\n${report}` : ''}`, { schema });
  }
}

export class NotFoundError extends CisternError {
  readonly code = 'NOT_FOUND' as const;
}

/** A volume a call names is not in its pool: the same words from the coordinator's view and from the host. */
export class VolumeNotFoundError extends NotFoundError {
  constructor(host: string, pool: string, volume: string) {
    super(`storage volume '${volume}' not found in pool '${pool}' on host '${host}'`, { host, pool, volume });
  }
}

export class AlreadyExistsError extends CisternError {
  readonly code = 'ALREADY_EXISTS' as const;
}

/** Pool not active, volume in use, pool busy building, kernel feature missing. */
export class FailedPreconditionError extends CisternError {
  readonly code = 'FAILED_PRECONDITION' as const;
}

/** A conflicting operation on the same object is running. */
export class AbortedError extends CisternError {
  readonly code = 'ABORTED' as const;
}

export class ResourceExhaustedError extends CisternError {
  readonly code = 'RESOURCE_EXHAUSTED' as const;
}

/** Host offline or bus unreachable: answered fast, never after a long timeout. */
export class UnavailableError extends CisternError {
  readonly code = 'UNAVAILABLE' as const;
}

export class UnimplementedError extends CisternError {
  readonly code = 'UNIMPLEMENTED' as const;
}

export class PermissionDeniedError extends CisternError {
  readonly code = 'PERMISSION_DENIED' as const;
}

export class UnauthenticatedError extends CisternError {
  readonly code = 'UNAUTHENTICATED' as const;
}

export class DeadlineExceededError extends CisternError {
  readonly code = 'DEADLINE_EXCEEDED' as const;
}

export class OutOfRangeError extends CisternError {
  readonly code = 'OUT_OF_RANGE' as const;
}

export class CancelledError extends CisternError {
  readonly code = 'CANCELLED' as const;
}

/** An external command or the system failed; carries the command line and its stderr. */
export class InternalError extends CisternError {
  readonly code = 'INTERNAL' as const;
}

/**
 * A command of the runner exited non-zero or could not start. `passedFiles` names the files
 * it was given as descriptors (RunOptions.fds: `/dev/fd/3` in its argv and stderr), so the
 * message says which volume `/dev/fd/3` was.
 */
export class CommandFailedError extends InternalError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly passedFiles: readonly string[] = [],
  ) {
    const shown = argv.join(' ');
    const files = passedFiles.map((f, i) => `fd ${i + 3}: ${f}`).join(', ');
    super(`command failed: ${shown}${files ? ` [${files}]` : ''}${exitCode === undefined ? '' : ` (exit ${exitCode})`}${stderr ? `: ${stderr.trim()}` : ''}`, {
      command: shown,
      stderr: stderr.trim(),
      ...(exitCode === undefined ? {} : { exitCode: String(exitCode) }),
      ...(files ? { passedFiles: files } : {}),
    });
  }
}

const classByCode: Record<ErrorCode, new (message: string, details?: ErrorDetails) => CisternError> = {
  INVALID_ARGUMENT: class extends InvalidArgumentError {
    constructor(message: string, details: ErrorDetails = {}) {
      super('', message, details);
      (this as { field: string }).field = details.field ?? '';
      this.message = message;
    }
  },
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  FAILED_PRECONDITION: FailedPreconditionError,
  ABORTED: AbortedError,
  RESOURCE_EXHAUSTED: ResourceExhaustedError,
  UNAVAILABLE: UnavailableError,
  UNIMPLEMENTED: UnimplementedError,
  PERMISSION_DENIED: PermissionDeniedError,
  UNAUTHENTICATED: UnauthenticatedError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  OUT_OF_RANGE: OutOfRangeError,
  CANCELLED: CancelledError,
  INTERNAL: InternalError,
};

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(classByCode, code);
}

/** Rebuilds the typed error from its wire form ({code, message, details}). */
export function errorFromWire(code: string, message: string, details: ErrorDetails = {}): CisternError {
  const cls = isErrorCode(code) ? classByCode[code] : InternalError;
  return new cls(message, details);
}

/** Any thrown value as a CisternError; unknown failures become INTERNAL with their message. */
export function asCisternError(err: unknown): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    switch (e.code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return new ResourceExhaustedError(`no space left: ${e.message}`);
      case 'ENOENT':
        return new NotFoundError(e.message);
      case 'EEXIST':
        return new AlreadyExistsError(e.message);
      case 'EACCES':
      case 'EPERM':
        return new PermissionDeniedError(e.message);
      case 'EBUSY':
        return new FailedPreconditionError(`device or resource busy: ${e.message}`);
    }
  }
  if (isBusUnreachable(err)) {
    return new UnavailableError(`the message bus (NATS) did not answer (${(err as Error).message || (err as Error).name}); retry when it is reachable`);
  }
  return new InternalError(e instanceof Error ? e.message : String(err));
}

/** The NATS client's errors for a server that cannot be reached (by name: libs/errors imports no NATS code). */
const BUS_UNREACHABLE = new Set(['TimeoutError', 'NoResponders', 'ClosedConnectionError', 'DrainingConnectionError', 'ConnectionError']);

export function isBusUnreachable(err: unknown): boolean {
  // AbortSignal.timeout() rejects with a DOMException also named TimeoutError: not the bus
  if (!(err instanceof Error) || (typeof DOMException !== 'undefined' && err instanceof DOMException)) return false;
  if (BUS_UNREACHABLE.has(err.name)) return true;
  return err.name === 'RequestError' && err.cause instanceof Error && BUS_UNREACHABLE.has(err.cause.name);
}
