// A LUKS volume's passphrase handed to qemu-img: never on its command line, but in a 0600
// file of a private temp directory (`--object secret,file=`), removed once qemu-img is done.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { BackendContext } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { makeSecretDir } from '../secret-dirs.js';

/** The passphrase's file and the private directory holding it (what removeSecretFile removes). */
export interface SecretFile {
  dir: string;
  file: string;
}

/**
 * The passphrase in a file of a private temp dir (the caller removes it with removeSecretFile), for qemu-img's
 * `--object secret,file=`. The value is the one of the secret the volume's encryption names;
 * with `defaultUsage` and no secret named (a volume re-read from disk: the image does not
 * record it), the one of usage `defaultUsage`, the volume's path, as libvirt's
 * storageBackendLoadDefaultSecrets looks it up.
 */
export async function writeSecretFile(ctx: BackendContext, volume: VolumeDefinition, defaultUsage?: string): Promise<SecretFile> {
  const ref = volume.target?.encryption?.secrets[0];
  const value = ref
    ? (ref.uuid && ctx.secrets?.get(ref.uuid)) || (ref.usage && ctx.secrets?.get(ref.usage)) || undefined
    : (defaultUsage && ctx.secrets?.get(defaultUsage)) || undefined;
  if (!value) {
    if (!ref && defaultUsage) {
      throw new FailedPreconditionError(
        `volume '${printable(volume.name)}' is LUKS-encrypted and no passphrase came with the request: its definition names no secret, ` +
          `and no secret of usage type 'volume' for '${printable(defaultUsage, 200)}' was provided ` +
          `(the coordinator sends it when it knows the volume is encrypted: refresh the pool and retry)`,
      );
    }
    throw new FailedPreconditionError(
      `the passphrase secret '${printable(ref?.uuid || ref?.usage || '')}' of volume '${printable(volume.name)}' was not provided`,
    );
  }
  checkPassphrase(value, ref ? ref.uuid || ref.usage : (defaultUsage ?? ''), volume.name);
  // named after this process: a starting agent removes it if this one is killed meanwhile
  const dir = await makeSecretDir('cistern-secret');
  const file = join(dir, 'secret');
  try {
    await writeFile(file, value, { mode: 0o600 });
  } catch (err) {
    // the caller removes the directory only once it has it
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw fsError(err, 'write the passphrase file', file);
  }
  return { dir, file };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * qemu's LUKS driver reads the key secret as UTF-8 text (qcrypto_secret_lookup_as_utf8, whose
 * g_utf8_validate also refuses a NUL byte): another value fails qemu-img with 'Data from secret
 * ID is not valid UTF-8', which names neither the secret nor the rule. Refused here, before the
 * value is written anywhere; the message names the secret, never quotes its value.
 */
function checkPassphrase(value: Buffer, secret: string, volume: string): void {
  let text: string | undefined;
  try {
    text = UTF8.decode(value);
  } catch {
    text = undefined;
  }
  if (text === undefined || text.includes('\0')) {
    throw new InvalidArgumentError(
      'volume.target.encryption.secrets',
      `the passphrase secret '${printable(secret, 200)}' of volume '${printable(volume)}' ${text === undefined ? 'is not valid UTF-8' : 'holds a NUL byte'}; ` +
        `qemu's LUKS encryption takes a passphrase of UTF-8 text without NUL bytes: set its value again (SetSecretValue)`,
    );
  }
}

/** Removes the passphrase's directory; a failure to do so does not fail the operation it served. */
export async function removeSecretFile(secret: SecretFile | undefined): Promise<void> {
  if (secret) await rm(secret.dir, { recursive: true, force: true }).catch(() => undefined);
}
