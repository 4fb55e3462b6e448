// Where a tool's secret file (a LUKS passphrase, a CHAP password) is written while the tool
// runs. Memory, not disk: a value written to a disk-backed /tmp stays in the disk's free
// blocks (and in its snapshots) after the file is removed. libvirt keeps its secrets under
// /run, a tmpfs on a systemd host; where /run is on disk (a container), /dev/shm usually is not.
import { accessSync, constants, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute } from 'node:path';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** The candidates, in order, when the operator named none. */
const MEMORY_CANDIDATES = ['/run', '/dev/shm'];

/** `dir` is on a file system held in memory and this process may make entries in it. */
export function isWritableMemoryDir(dir: string): boolean {
  try {
    const type = statfsSync(dir).type;
    if (type !== TMPFS_MAGIC && type !== RAMFS_MAGIC) return false;
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * CISTERN_SECRET_DIR when set; an explicit TMPDIR (the operator's choice for temporary files,
 * and a test's private folder); else /run or /dev/shm when memory-backed and writable; else
 * the temp folder, on disk.
 */
export function secretRoot(env: NodeJS.ProcessEnv = process.env, isMemory: (dir: string) => boolean = isWritableMemoryDir): string {
  const chosen = env.CISTERN_SECRET_DIR;
  if (chosen !== undefined && chosen !== '') {
    if (!isAbsolute(chosen)) throw new Error(`CISTERN_SECRET_DIR: '${chosen}' is not an absolute path; name the directory for secret files from /`);
    return chosen;
  }
  if (env.TMPDIR) return env.TMPDIR.length > 1 ? env.TMPDIR.replace(/\/+$/, '') || '/' : env.TMPDIR;
  return MEMORY_CANDIDATES.find((dir) => isMemory(dir)) ?? tmpdir();
}
