// Errors raised by the CLI itself (bad usage, unreadable files). Server errors
// arrive as typed CisternErrors via fromGrpcError and are printed the same way.
import { UnavailableError } from '../libs/errors/errors.js';

/**
 * A mistake on the command line: printed as `error: <message>`, exit code 1. Several messages
 * are several `error:` lines (virsh reports each missing required option on its own line).
 */
export class UsageError extends Error {
  readonly messages: string[];
  constructor(message: string, ...more: string[]) {
    super([message, ...more].join('\n'));
    this.name = 'UsageError';
    this.messages = [message, ...more];
  }
}

/** virsh's vshCommandOptStringReq for an empty value: `Failed to get option 'pool': Option argument is empty`. */
export function emptyOptionError(option: string): UsageError {
  return new UsageError(`Failed to get option '${option}': Option argument is empty`);
}

/**
 * A failed operation with virsh's two-line report: the context line
 * ("Failed to start pool p") and the cause (the server's message).
 */
export class CommandError extends Error {
  constructor(readonly context: string, override readonly cause: unknown) {
    super(context);
    this.name = 'CommandError';
  }
}

/** Runs fn; a failure other than a usage error is reported under virsh's context line. */
export async function attempt<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UsageError || err instanceof CommandError) throw err;
    throw new CommandError(context, err);
  }
}

/**
 * Runs fn (a check done here, such as the pool type) with its usage error reported under
 * virsh's context line, as virsh reports the daemon's refusal of the same value.
 */
export function underContext<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UsageError) throw new CommandError(context, new Error(err.messages.join('\n')));
    throw err;
  }
}

/**
 * A call a read-only connection (-r, --readonly) refuses, in libvirt's words
 * (virReportRestrictedError): `operation forbidden: read only access prevents virStoragePoolCreate`.
 */
export class ReadOnlyError extends Error {
  constructor(readonly refused: string) {
    super(`operation forbidden: read only access prevents ${refused}`);
    this.name = 'ReadOnlyError';
  }
}

/** A failure the command has already shown the user (pool-edit's answer 'n'): only the exit code is left. */
export class ReportedError extends Error {
  constructor() {
    super('already reported');
    this.name = 'ReportedError';
  }
}

/**
 * The connection to the coordinator broke under a stream it had begun (grpc-js: "Connection
 * dropped"; the coordinator killed, the network cut), not a status the coordinator sent: what
 * the call did on the agent is not known from here. vol-upload and vol-download say what it
 * means for the volume and the file (vol-transfer.ts).
 */
export class ConnectionBrokenError extends UnavailableError {}
