// A coordinator's --secret-key-file for a test stack: 32 random bytes, base64, mode 600 (the
// coordinator refuses a key others may read).
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes a fresh key into `dir`; returns its path. */
export function writeSecretKey(dir: string): string {
  const file = join(dir, 'secret.key');
  writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  // the mode given to writeFileSync goes through the umask: set it as it must be
  chmodSync(file, 0o600);
  return file;
}
