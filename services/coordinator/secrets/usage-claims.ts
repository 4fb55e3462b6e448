// One secret per usage (type + id), as libvirt's virSecretObjListAdd keeps it under its list
// lock. The bucket has no lock: a definition that only looked for a clash in a listing and
// then wrote raced another doing the same, and both were defined. A usage is claimed with a
// key of its own (`u.<type>.<sha256 of the id>`, holding the owner's uuid), created
// atomically: of two racing definitions one creates it, and the other sees its owner.
//
// A secret's record is written before its claim, so a claim whose owner has no record (or a
// record for another usage) was left by an owner gone since (an undefine that stopped between
// its two writes): it is taken over.
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { SecretUsageType } from '../../../libs/proto/cistern/v1/storage.js';
import { AbortedError } from '../../../libs/errors/errors.js';
import { printable } from '../../../libs/api/names.js';

export const claimKeyOf = (usageType: SecretUsageType, usageId: string): string =>
  `u.${usageType}.${createHash('sha256').update(usageId, 'utf8').digest('hex')}`;

const CONFLICT = /wrong last sequence|key exists/i;

/**
 * Claims the usage for `uuid`. Returns undefined when it is `uuid`'s (claimed now, or
 * already); else the uuid of the live secret that holds it. `owns(other)` says whether secret
 * `other` is defined now for this usage.
 */
export async function claimUsage(
  kv: KV,
  usageType: SecretUsageType,
  usageId: string,
  uuid: string,
  owns: (other: string) => Promise<boolean>,
): Promise<string | undefined> {
  const key = claimKeyOf(usageType, usageId);
  const data = new TextEncoder().encode(uuid);
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await kv.create(key, data);
      return undefined;
    } catch (err) {
      if (!CONFLICT.test((err as Error)?.message ?? '')) throw err;
    }
    const entry = await kv.get(key);
    if (!entry || entry.operation !== 'PUT') continue; // released meanwhile: create again
    const owner = new TextDecoder().decode(entry.value);
    if (owner === uuid) return undefined;
    if (await owns(owner)) return owner;
    try {
      await kv.update(key, data, entry.revision);
      return undefined;
    } catch (err) {
      if (!CONFLICT.test((err as Error)?.message ?? '')) throw err;
      // someone else took it over or released it: look again
    }
  }
  throw new AbortedError(`the secret usage '${printable(usageId, 200)}' was claimed and released concurrently too often; retry`);
}

/** The uuid that holds the usage, if a claim says so (it may be stale: check the secret). */
export async function usageOwner(kv: KV, usageType: SecretUsageType, usageId: string): Promise<string | undefined> {
  const entry = await kv.get(claimKeyOf(usageType, usageId));
  return entry && entry.operation === 'PUT' ? new TextDecoder().decode(entry.value) : undefined;
}

/** Releases `uuid`'s claim on the usage; a claim another secret holds now is left alone. */
export async function releaseUsage(kv: KV, usageType: SecretUsageType, usageId: string, uuid: string): Promise<void> {
  const key = claimKeyOf(usageType, usageId);
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT' || new TextDecoder().decode(entry.value) !== uuid) return;
  // purge: the bucket keeps no history of who held it; a claim changed meanwhile is not ours
  await kv.purge(key, { previousSeq: entry.revision }).catch(() => undefined);
}
