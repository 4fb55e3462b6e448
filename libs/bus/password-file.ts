// A NATS password file, read the same way by the coordinator and the agent: the first line,
// trimmed. Refused when others may read it, and when empty: an empty password would connect as
// the user with no password, which nats-server refuses with a vaguer "Authorization Violation".
import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from '../errors/errors.js';

/**
 * What both services say to --nats-pass: the command line of a process is readable by every
 * local user, so a password is taken only from a file or the environment.
 */
export function passwordOnCommandLine(): InvalidArgumentError {
  return new InvalidArgumentError(
    '--nats-pass',
    'a password on the command line is readable by every local user (ps, /proc/PID/cmdline); give --nats-pass-file FILE (mode 600), or NATS_PASSWORD_FILE or NATS_PASSWORD in the environment',
  );
}

export function readPasswordFile(path: string, flag: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new InvalidArgumentError(flag, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (!st.isFile()) throw new InvalidArgumentError(flag, `${path} is not a regular file`);
  if ((st.mode & 0o077) !== 0) throw new InvalidArgumentError(flag, `${path} is accessible by group or others; chmod 600 it`);
  const pass = readFileSync(path, 'utf8').split('\n')[0]!.trim();
  if (!pass) throw new InvalidArgumentError(flag, `${path} is empty`);
  return pass;
}
