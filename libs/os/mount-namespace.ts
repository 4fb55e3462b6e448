// Whether an open file was reached through this process's own mount namespace. The kernel
// names an open file (/proc/self/fd/N) by its path in the mount namespace it was reached
// in, so a file reached through another namespace's root (/proc/PID/root/..., or a
// descriptor of a process there) can carry any name its owner likes: an unprivileged user
// in a user namespace of its own mounts a tmpfs over a pool's path, binds /etc/shadow onto
// a name in it, and the root agent's descriptor of /proc/PID/root/POOL/NAME reads as
// POOL/NAME. Unsharing a mount namespace copies every mount under a new mount id, so a
// file whose mount id is not one of this namespace's mounts came from elsewhere, and its
// name proves nothing.
import { readFileSync } from 'node:fs';

/** The mount id of the file open as `fd` (/proc/self/fdinfo: "mnt_id:"). */
export function mountIdOf(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
  const at = info.indexOf('mnt_id:');
  if (at < 0) throw new Error(`/proc/self/fdinfo/${fd} has no mnt_id`);
  return Number.parseInt(info.slice(at + 7), 10);
}

/**
 * True when the file open as `fd` is on a mount of this process's mount namespace, so that
 * its /proc/self/fd name is its real place here. The mount table is read each time, not
 * kept: the kernel gives a freed mount id to the next mount made, in any namespace, so a
 * kept id of a pool's unmounted filesystem could later name someone else's mount.
 */
export function onOwnMount(fd: number): boolean {
  const id = mountIdOf(fd);
  // each line of mountinfo starts with the mount id and a space
  const table = `\n${readFileSync('/proc/self/mountinfo', 'latin1')}`;
  return table.includes(`\n${id} `);
}
