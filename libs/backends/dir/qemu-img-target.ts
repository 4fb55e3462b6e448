// Where qemu-img writes a new volume: into the file the agent reserved (O_EXCL), never into
// whatever the volume's name holds by the time qemu-img opens it. The agent runs as root and
// a pool directory is often writable by another user (the qemu user): who can write there
// could swap the reserved name for a link to /etc/shadow between the reservation and
// qemu-img's open, and `qemu-img create` would truncate the file the link names. So the
// reserved descriptor is handed to qemu-img as its fd 3 and the target is `/dev/fd/3`, a magic
// link that opens that same file whatever its name now is. qemu 7.2 writes the same bytes
// through it (checked with cmp for raw, qcow, qcow2, qed, vdi, vpc, preallocation
// metadata/falloc/full and nocow; vdi and vpc differ only in their random UUIDs), and its
// OFD locks are taken on its own open file, which the agent's descriptor does not conflict with.
//
// Two things qemu-img derives from the target's name:
// - a relative backing path is resolved against it (it would look for /dev/fd/BASE). A create
//   with a backing store always has the size on the command line (the backing file's, read
//   from the agent's checked descriptor, when none is asked for: backing-size.ts), and `-u`
//   records the backing path as given without opening it.
// - a vmdk records the target's file name in its descriptor (RW ... SPARSE "NAME"), so its
//   target is a link named after the volume in a private directory (mode 0700, root's),
//   leading to /dev/fd/3. vmdk's own create also opens a backing file by name (for its CID),
//   ignoring -u: with a relative backing path the volume's own name stays the target (and that
//   read by name is a window left: docs/security.md).
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { CommandFailedError } from '../../errors/errors.js';

/** The child's number of the reserved descriptor (the first after stdin, stdout, stderr). */
export const RESERVED_TARGET_FD = 3;
/** What qemu-img is given as the target: its own fd 3, opened anew whatever the volume's name holds. */
export const RESERVED_TARGET_PATH = `/dev/fd/${RESERVED_TARGET_FD}`;

export interface QemuImgTarget {
  /** the target on qemu-img's command line */
  path: string;
  /** descriptors for RunOptions.fds: the reserved one, or none when the target is the volume's name */
  fds: number[];
  /** give qemu-img -u: a relative backing path it must record without opening */
  backingUnopened: boolean;
  /** removes what the target needed (the vmdk's private link); never fails */
  dispose(): Promise<void>;
}

export interface TargetRequest {
  /** the reserved file's descriptor in this process */
  fd: number;
  /** the volume's path (target + '/' + name) and name */
  path: string;
  name: string;
  /** the format qemu-img writes */
  format: string;
  /** a create's backing path as the volume gives it */
  backingPath?: string;
  /** the size is on the command line (a create with a backing file and capacity 0 has none) */
  sizeGiven: boolean;
}

const nothing = async (): Promise<void> => undefined;

/** How qemu-img reaches the reserved file for this create or convert (see the top of this file). */
export async function qemuImgTarget(req: TargetRequest): Promise<QemuImgTarget> {
  const relativeBacking = !!req.backingPath && !isAbsolute(req.backingPath);
  if (relativeBacking && (!req.sizeGiven || req.format === 'vmdk')) {
    return { path: req.path, fds: [], backingUnopened: false, dispose: nothing };
  }
  if (req.format === 'vmdk') {
    const dir = await mkdtemp(join(tmpdir(), 'cistern-target-'));
    const link = join(dir, req.name);
    try {
      await symlink(RESERVED_TARGET_PATH, link);
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
    return { path: link, fds: [req.fd], backingUnopened: false, dispose: () => rm(dir, { recursive: true, force: true }).catch(() => undefined) };
  }
  return { path: RESERVED_TARGET_PATH, fds: [req.fd], backingUnopened: relativeBacking, dispose: nothing };
}

/** What qemu-img prints when, failing, it cannot remove the file it created: here the reserved /dev/fd/3. */
const TARGET_CLEANUP_LINE = new RegExp(`^qemu-img: Error when deleting file ${RESERVED_TARGET_PATH}: .*(\\n|$)`, 'gm');

/**
 * A failed qemu-img run on the reserved target, without qemu-img's line about failing to
 * delete /dev/fd/3: the agent removes the reserved file itself (removeReservedFile), so the
 * line would only make a user look for a file that is not there.
 */
export function withoutTargetCleanupNoise(err: CommandFailedError): CommandFailedError {
  const stderr = err.stderr.replace(TARGET_CLEANUP_LINE, '');
  return stderr === err.stderr ? err : new CommandFailedError(err.argv, err.exitCode, stderr, err.passedFiles);
}
