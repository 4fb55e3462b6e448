// Secret values at rest: AES-256-GCM with a key the coordinator loads from a file.
// Sealed form: 'c1' | key id (8 bytes) | iv (12) | tag (16) | ciphertext. The secret's
// uuid is the additional authenticated data, so a sealed value moved to another secret
// does not open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { FailedPreconditionError, InvalidArgumentError } from '../../../libs/errors/errors.js';

const MAGIC = Buffer.from('c1');
const IV = 12;
const TAG = 16;
const KEY_ID = 8;

/** A key file holds 32 raw bytes, or 64 hex digits, or 32 bytes in base64 (one line). */
export function parseSecretKey(data: Buffer, source = 'secret key file'): Buffer {
  if (data.length === 32) return Buffer.from(data);
  const text = data.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  throw new InvalidArgumentError(source, 'must hold a 256-bit key: 32 raw bytes, 64 hex digits or 44 base64 characters');
}

export function loadSecretKey(path: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new InvalidArgumentError('--secret-key-file', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new InvalidArgumentError('--secret-key-file', `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  return parseSecretKey(readFileSync(path), '--secret-key-file');
}

export const keyId = (key: Buffer): Buffer => createHash('sha256').update('cistern-secret-key').update(key).digest().subarray(0, KEY_ID);

export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([MAGIC, keyId(key), iv, cipher.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  const head = MAGIC.length + KEY_ID + IV + TAG;
  if (sealed.length < head || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new FailedPreconditionError('a stored secret value is not in a known format');
  }
  if (!sealed.subarray(MAGIC.length, MAGIC.length + KEY_ID).equals(keyId(key))) {
    throw new FailedPreconditionError('a stored secret value was encrypted with another key than --secret-key-file');
  }
  const iv = sealed.subarray(MAGIC.length + KEY_ID, MAGIC.length + KEY_ID + IV);
  const tag = sealed.subarray(MAGIC.length + KEY_ID + IV, head);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(head)), decipher.final()]);
  } catch {
    throw new FailedPreconditionError('a stored secret value failed its integrity check (tampered or for another secret)');
  }
}
