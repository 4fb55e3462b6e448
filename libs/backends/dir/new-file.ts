// A volume's new file, created whole or not at all: open(O_CREAT|O_EXCL) with the volume's
// mode and owner, the caller's content, fsync, close; a failure closes and removes the file.
// As libvirt's createRawFile (and qemu-img's flushes): once a create is done (for an in-process
// one, once its `durable` has settled), the new file and its size survive a crash of the host.
import { closeSync, constants as fsc, fchmodSync, fchownSync, fstatSync, fsync as fsyncFd, lstatSync, open as openFd, openSync, unlinkSync } from 'node:fs';
import { lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import type { BackendContext, BuiltVolume } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { checkAborted } from '../file-io.js';
import type { ResolvedCreate } from './volume-plan.js';
import { inStartedPoolDirectory } from './new-volume-name.js';
import { describeOpenedVolume } from './inspect.js';
import { poolTarget } from './paths.js';

/** fsync(2) in the thread pool (the descriptor stays open); fs.fsync looked up at each call, so that a test can hold it. */
function fsyncInPool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsyncFd(fd, (err) => (err ? reject(err) : resolve())));
}
/** open(2) in the thread pool, to a bare descriptor (a FileHandle would close it when collected). */
const openInPool = promisify(openFd);

/**
 * createFileDirect calls of this process not settled yet (their fsync included). With others
 * under way, the open goes to the thread pool: on ext4 an open(O_CREAT) can take a millisecond
 * (its search for a free inode skips those deleted in the last minute), and meanwhile the event
 * loop would hold every other create's messages, and the opens could not run side by side.
 * Alone, it is a direct system call: a thread-pool round trip costs more than most opens.
 */
let unsettled = 0;

/** The flushes of new files still running, by pool target directory. */
const flushing = new Map<string, Set<Promise<void>>>();

/**
 * Resolves once every new file made so far in the pool at `target` is flushed and closed,
 * whatever came of it. A mounted pool is not unmounted under one (umount would find the
 * filesystem busy): the agent waits for a create's flush before it answers, other callers of
 * buildVol need not.
 */
export async function untilFlushed(target: string): Promise<void> {
  const pending = flushing.get(target);
  if (pending) await Promise.allSettled([...pending]);
}

/** Counts `durable` among the pool's flushes until it settles. */
function track(r: ResolvedCreate, durable: Promise<void>): void {
  const target = r.pool ? poolTarget(r.pool) : dirname(r.path);
  let pending = flushing.get(target);
  if (!pending) flushing.set(target, (pending = new Set()));
  pending.add(durable);
  const done = (): void => {
    pending.delete(durable);
    if (pending.size === 0 && flushing.get(target) === pending) flushing.delete(target);
    settled();
  };
  durable.then(done, done);
}

/**
 * Tells the create's caller (r.onFileMade: the agent's journal) which file it made, right after
 * its exclusive create: its inode number and birth time, which no file that takes the name
 * later shares (a deleted file's inode number is reused, its birth time is not). Never fails
 * the create: without the record the undo after a restart goes by name, as before.
 */
export function noteMadeFile(r: ResolvedCreate, fd: number): void {
  if (!r.onFileMade) return;
  try {
    const st = fstatSync(fd, { bigint: true });
    r.onFileMade({ ino: st.ino, birthtimeNs: st.birthtimeNs });
  } catch {
    /* not recorded: the undo goes by name */
  }
}

/**
 * A new file at r.path: open(O_CREAT|O_EXCL) with the volume's mode, fchmod (+ fchown) and
 * `fill` as direct system calls (a few microseconds each on a local disk, where one
 * thread-pool round trip each costs more), then the file read back through its descriptor as
 * a refresh would read it. Returns then, with the fsync and close still running in the thread
 * pool (`durable`): the agent announces the volume while the disk flushes, and answers once
 * both are done. The fsync waits for a journal commit, which can take long while other large
 * writes are being flushed: it must not hold the agent's event loop (heartbeats). A failure,
 * the fsync's too, closes and removes the file. For a few KiB of work on a local filesystem
 * only (a hung NFS server must not stall the event loop).
 */
export async function createFileDirect(ctx: BackendContext, r: ResolvedCreate, what: string, fill: (fd: number) => void): Promise<Required<BuiltVolume>> {
  let fd = -1;
  unsettled++;
  try {
    checkAborted(ctx.signal, 'create');
    const flags = fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
    fd = await inStartedPoolDirectory(r, true, (at) => (unsettled > 1 ? openInPool(at(), flags, r.mode) : openSync(at(), flags, r.mode)));
    noteMadeFile(r, fd);
    fchmodSync(fd, r.mode);
    if (r.uid !== -1 || r.gid !== -1) fchownSync(fd, r.uid, r.gid);
    fill(fd);
    const volume = describeOpenedVolume(r.path, r.name, fd);
    const durable = syncAndClose(fd, what, r.path);
    fd = -1;
    track(r, durable);
    return { volume, durable };
  } catch (err) {
    settled();
    if (fd >= 0) discardNewFile(fd, r.path);
    throw fsError(err, what, r.path, 'volume.capacity');
  }
}

function settled(): void {
  unsettled--;
}

/** createFileDirect calls under way in this process (tests: none left behind). */
export function createsUnderWay(): number {
  return unsettled;
}

/**
 * fsync in the thread pool, then close `fd`; when the fsync fails the file is removed. Never an
 * unhandled rejection. A close that fails after the fsync succeeded changes nothing: the file
 * is durable, and Linux frees the descriptor whatever close(2) returns; rejecting then would
 * have the agent take back a volume whose file stays.
 */
function syncAndClose(fd: number, what: string, path: string): Promise<void> {
  const done = fsyncInPool(fd).then(
    () => {
      try {
        closeSync(fd);
      } catch {
        /* durable already; the descriptor is gone either way */
      }
    },
    (err: unknown) => {
      discardNewFile(fd, path);
      throw fsError(err, what, path);
    },
  );
  done.catch(() => undefined);
  return done;
}

/**
 * Unlinks and closes a file this create made, after a failure: never fails. Only while its
 * name still holds that file: the removal may run after the create has returned (the fsync's
 * failure), and whoever can write in the pool may have moved the name, or the pool target,
 * elsewhere by then (as removeReservedFile). Closed after the check, so that its inode number
 * cannot have been reused meanwhile.
 */
function discardNewFile(fd: number, path: string): void {
  try {
    const mine = fstatSync(fd, { bigint: true });
    const now = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (now && now.dev === mine.dev && now.ino === mine.ino) unlinkSync(path);
  } catch {
    /* already gone */
  }
  try {
    closeSync(fd);
  } catch {
    /* closing after a failure */
  }
}

/**
 * createFileDirect through the thread pool, for content that takes long to write (MiBs,
 * a copy) or a filesystem that may hang (netfs). `fill` writes through the handle; with
 * `cancelAfterSync`, a call cancelled while the data was being synced still leaves nothing
 * behind (for work a caller reports as that operation, such as a copy).
 */
export async function createFileThreaded(
  ctx: BackendContext,
  r: ResolvedCreate,
  what: string,
  fill: (fh: FileHandle) => Promise<void>,
  options: { cancelAfterSync?: string } = {},
): Promise<void> {
  let fh: FileHandle | undefined;
  let created = false;
  try {
    checkAborted(ctx.signal, 'create');
    fh = await inStartedPoolDirectory(r, false, (at) => open(at(), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, r.mode));
    created = true;
    noteMadeFile(r, fh.fd);
    await fh.chmod(r.mode);
    if (r.uid !== -1 || r.gid !== -1) await fh.chown(r.uid, r.gid);
    await fill(fh);
    await fh.sync();
    if (options.cancelAfterSync) checkAborted(ctx.signal, options.cancelAfterSync);
    await fh.close();
    fh = undefined;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    if (created) await unlink(r.path).catch(() => undefined);
    throw fsError(err, what, r.path, 'volume.capacity');
  }
}

/**
 * Closes a file this agent reserved (O_EXCL) and removes its name, unless the name has come to
 * hold another file meanwhile (whoever can write in the pool may have moved it): never fails.
 */
export async function removeReservedFile(path: string, reserved: FileHandle): Promise<void> {
  try {
    const [mine, now] = await Promise.all([reserved.stat({ bigint: true }), lstat(path, { bigint: true })]);
    if (mine.dev === now.dev && mine.ino === now.ino) await unlink(path);
  } catch {
    /* already gone */
  } finally {
    await reserved.close().catch(() => undefined);
  }
}
