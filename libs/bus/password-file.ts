// A NATS password file, read the same way by the coordinator and the agent: the first line,
// trimmed. Refused when others may read it, and when empty: an empty password would connect as
// the user with no password, which nats-server refuses with a vaguer "Authorization Violation".
import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from '../errors/errors.js';

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
