// What a service does with a promise that rejected with nobody handling it: a bug, so it
// still ends the process as Node's default would (the work it belonged to is in an unknown
// state), but first says so in the service's own log, with the error's code and stack:
// Node's default only prints the error to stderr, outside the structured log.
import type { Logger } from './logger.js';

export function exitOnUnhandledRejection(log: Logger, exit: (code: number) => void = (code) => process.exit(code)): void {
  process.on('unhandledRejection', (reason) => {
    const e = reason as { code?: unknown; details?: unknown; stack?: unknown } | undefined;
    log.error('unhandled promise rejection; exiting', {
      error: reason,
      code: e?.code,
      details: e?.details,
      stack: typeof e?.stack === 'string' ? e.stack : undefined,
    });
    exit(1);
  });
}
