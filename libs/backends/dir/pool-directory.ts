// The pool's target directory as the pool started with it, opened: what a delete removes a
// volume's name from, and what reads and writes of existing volumes open their names in
// (paths.ts, poolVolumeDescriptor). A delete unlinks by name, and a name under the target path would follow
// the target itself (or a directory above it) should someone who can write in its parent have
// swapped it for a link since the pool started: root would unlink /etc/shadow for
// `vol-delete shadow`. So the agent remembers the target's device and inode when the pool
// starts (or is found running), opens the target when it deletes, refuses a directory that is
// not that one, and unlinks through the opened directory (/proc/self/fd/N/NAME: the magic
// link jumps to the directory it opened, and unlink does not follow the final name). A target
// that is a link from the start (/var/lib/libvirt/images -> /srv/images) is followed, as
// libvirt follows it.
import { closeSync, constants as fsc, fstatSync, openSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { PoolDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import { fsError } from '../fs-errors.js';
import { poolTarget } from './paths.js';

/** A directory's device and inode numbers. */
export interface DirectoryIdentity {
  dev: number;
  ino: number;
}

/** pool name + NUL + target -> the target directory the pool started with */
const started = new Map<string, DirectoryIdentity>();

function keyOf(pool: PoolDefinition): string {
  return `${pool.name}\0${poolTarget(pool)}`;
}

/**
 * Records the target directory as it is now: at a start (after a mount), or, with
 * `onlyIfUnknown`, when a running pool is found up (a restarted agent's check).
 */
export async function rememberPoolDirectory(pool: PoolDefinition, onlyIfUnknown = false): Promise<void> {
  if (onlyIfUnknown && started.has(keyOf(pool))) return;
  try {
    const st = await stat(poolTarget(pool));
    if (st.isDirectory()) started.set(keyOf(pool), { dev: st.dev, ino: st.ino });
  } catch {
    /* no directory: nothing to remember (the start or check fails on its own) */
  }
}

/** The target directory the pool started with (device and inode), when the agent saw the start. */
export function startedPoolDirectory(pool: PoolDefinition): Readonly<DirectoryIdentity> | undefined {
  return started.get(keyOf(pool));
}

/** Forgets it when the pool stops or is deleted (a new start may find a new directory, a new mount). */
export function forgetPoolDirectory(pool: PoolDefinition): void {
  started.delete(keyOf(pool));
}

/** An open pool directory: `pathOf(name)` reaches NAME in the directory that was opened. */
export interface OpenPoolDirectory {
  fd: number;
  pathOf(name: string): string;
  close(): Promise<void>;
}

/**
 * The opened directory if it is the one the pool started with (remembered now when unknown);
 * else closes it and throws. `expected`: the directory it must be whatever this process saw
 * (what an interrupted create or allocating grow wrote in, from a journal of an earlier run), checked first and
 * never taken as the pool's own when it is not that one.
 */
async function checked(pool: PoolDefinition, fd: number, st: DirectoryIdentity, close: () => Promise<void>, expected?: DirectoryIdentity): Promise<OpenPoolDirectory> {
  if (expected && (expected.dev !== st.dev || expected.ino !== st.ino)) {
    await close();
    throw new FailedPreconditionError(
      `pool target '${printable(poolTarget(pool), 200)}' is not the directory the interrupted create or grow wrote in ` +
        `(device ${expected.dev} inode ${expected.ino}, now device ${st.dev} inode ${st.ino}): it was replaced, by a link or another directory; ` +
        'nothing is removed or cut through it (what the create or grow left stays in the directory it wrote in)',
    );
  }
  const key = keyOf(pool);
  const known = started.get(key);
  if (!known) started.set(key, { dev: st.dev, ino: st.ino });
  else if (known.dev !== st.dev || known.ino !== st.ino) {
    await close();
    throw new FailedPreconditionError(
      `pool target '${printable(poolTarget(pool), 200)}' is not the directory pool '${printable(pool.name)}' started with ` +
        `(device ${known.dev} inode ${known.ino}, now device ${st.dev} inode ${st.ino}): it was replaced, by a link or another directory; ` +
        'refusing to read, write or remove anything through it; stop and start the pool to use the new directory',
    );
  }
  return { fd, pathOf: (name) => `/proc/self/fd/${fd}/${name}`, close };
}

/**
 * The pool directory opened and checked, with direct system calls (a local filesystem: a few
 * microseconds); undefined when there is no such directory (nothing in it to remove).
 */
export async function openPoolDirectoryDirect(pool: PoolDefinition, expected?: DirectoryIdentity): Promise<OpenPoolDirectory | undefined> {
  const target = poolTarget(pool);
  let fd: number;
  try {
    fd = openSync(target, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(err, 'open pool directory', target);
  }
  let st;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw fsError(err, 'stat pool directory', target);
  }
  return checked(pool, fd, st, async () => closeSync(fd), expected);
}

/** The same through the thread pool (netfs: a hung server must not stall the event loop). */
export async function openPoolDirectory(pool: PoolDefinition, expected?: DirectoryIdentity): Promise<OpenPoolDirectory | undefined> {
  const target = poolTarget(pool);
  let fh;
  try {
    fh = await open(target, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(err, 'open pool directory', target);
  }
  let st;
  try {
    st = await fh.stat();
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw fsError(err, 'stat pool directory', target);
  }
  const handle = fh;
  return checked(pool, fh.fd, st, () => handle.close().catch(() => undefined), expected);
}

/**
 * Runs `fn` with the process's working directory in the opened pool directory, so that a bare
 * NAME given to open(2) is NAME in that directory, however the target path reads by now: what
 * openat(2) does, which Node does not offer, at the cost of a plain relative open (a path
 * through /proc/self/fd/N/NAME costs a refresh of 10,000 files ~10 % more). `fn` must be
 * synchronous: nothing else in the process runs until the working directory is back, so
 * nothing else sees it moved (every other path the agent opens is absolute anyway).
 */
export function inOpenedDirectory<T>(dir: OpenPoolDirectory, fn: () => T): T {
  const previous = process.cwd();
  process.chdir(`/proc/self/fd/${dir.fd}`);
  try {
    return fn();
  } finally {
    try {
      process.chdir(previous);
    } catch {
      process.chdir('/'); // the previous directory is gone
    }
  }
}
