// A stat's fields as the proto carries them (permissions, libvirt's timestamps) and the
// mode and owner a definition asks for.
import type { BigIntStats } from 'node:fs';
import type { Permissions, Timestamps } from '../proto/cistern/v1/storage.js';

/** libvirt's VIR_STORAGE_DEFAULT_VOL_PERM_MODE: a new volume's mode when its definition names none. */
export const DEFAULT_VOL_MODE = 0o600;

/**
 * libvirt prints timestamps as seconds[.nanoseconds(9 digits)] of the stat's struct timespec
 * (virStorageVolTimestampFormat): tv_sec as an unsigned long long, tv_nsec in [0, 1e9). Before
 * 1970 tv_sec is negative (floored, not truncated towards 0) and prints as 2^64 + tv_sec, so a
 * file dated 1960-01-01T00:00:00.25Z shows 18446744073393932416.250000000, never a minus sign.
 */
export function formatTimestamp(ns: bigint): string {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  if (sec < 0n) sec += 1n << 64n;
  return nsec === 0n ? `${sec}` : `${sec}.${nsec.toString().padStart(9, '0')}`;
}

/** A stat's access, modification and change times as libvirt prints them (no birth time). */
export function timestampsOf(st: BigIntStats): Timestamps {
  return { atime: formatTimestamp(st.atimeNs), mtime: formatTimestamp(st.mtimeNs), ctime: formatTimestamp(st.ctimeNs), btime: '' };
}

/** A stat's permission bits, owner and group as the proto's Permissions (no security label). */
export function permsOf(st: BigIntStats): Permissions {
  return { mode: Number(st.mode & 0o777n), owner: st.uid, group: st.gid, label: '' };
}

/** The uid and gid a definition asks for; -1 (leave as is, for chown) where it names none. */
export function wantedOwner(p: Permissions | undefined): { uid: number; gid: number } {
  const uid = p?.owner !== undefined && p.owner >= 0n ? Number(p.owner) : -1;
  const gid = p?.group !== undefined && p.group >= 0n ? Number(p.group) : -1;
  return { uid, gid };
}
