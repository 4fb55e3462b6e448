// A dir pool's refresh: its space from statvfs and its volumes from one listing of the
// target directory (not recursive), each inspected as libvirt's refresh does.
import { opendirSync, statfsSync, statSync, type Dir, type Dirent } from 'node:fs';
import { readdir, stat, statfs } from 'node:fs/promises';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext, RefreshResult } from '../backend.js';
import { fsError } from '../fs-errors.js';
import { checkAborted } from '../file-io.js';
import { permsOf } from '../stat-fields.js';
import { hasControlChars, pathIn, poolTarget, volumePath } from './paths.js';
import { inspectVolumeSync, type BackingInfo } from './inspect.js';
import { onLocalFilesystem } from '../pool-kinds.js';
import { inOpenedDirectory, openPoolDirectory, openPoolDirectoryDirect } from './pool-directory.js';

/** A refresh yields to the event loop after this many milliseconds of work. */
export const REFRESH_SLICE_MS = 10;

/**
 * Pool sizes from statvfs as libvirt computes them (f_bfree, not f_bavail), and the target
 * directory's permissions, which libvirt's refresh copies into the live definition.
 * `direct`: with direct system calls (a local filesystem, pool-kinds.ts). `reportAs`: the
 * target's name in errors, when `target` is the opened directory (/proc/self/fd/N).
 */
export async function poolRuntime(target: string, direct = false, reportAs = target): Promise<RefreshResult['runtime']> {
  let fs;
  let st;
  try {
    if (direct) [fs, st] = [statfsSync(target, { bigint: true }), statSync(target, { bigint: true })];
    else [fs, st] = await Promise.all([statfs(target, { bigint: true }), stat(target, { bigint: true })]);
  } catch (err) {
    throw fsError(err, 'statvfs', reportAs);
  }
  const capacity = fs.bsize * fs.blocks;
  const available = fs.bfree * fs.bsize;
  return { capacity, allocation: capacity - available, available, targetPermissions: permsOf(st) };
}

/**
 * Lists the target directory and inspects every entry with synchronous calls, yielding to
 * the event loop every `sliceMs` milliseconds so that a pool of thousands of files does not
 * stall the agent's heartbeats. Skips names with control characters, fifos, sockets,
 * dangling links, vanished or unreadable entries (as libvirt does).
 */
export async function refreshPoolDirectory(ctx: PoolContext, sliceMs: number): Promise<RefreshResult> {
  const target = poolTarget(ctx.pool);
  // a local directory is read with direct calls, in the slices below (~1 ms per 1,000 names):
  // the thread-pool round trips cost more than an empty or small pool's whole refresh
  const direct = onLocalFilesystem(ctx.pool.type);
  // read through the directory the pool started with: a target swapped for a link since then
  // (to /etc, say) is refused, as every other operation refuses it, not listed and read
  const dir = direct ? await openPoolDirectoryDirect(ctx.pool) : await openPoolDirectory(ctx.pool);
  if (!dir) throw fsError(Object.assign(new Error('no such directory'), { code: 'ENOENT' }), 'read pool directory', target);
  try {
    const opened = `/proc/self/fd/${dir.fd}`;
    let entries: Iterable<Dirent>;
    try {
      entries = direct ? entriesOf(opendirSync(opened, { bufferSize: 1024 }), target) : await readdir(opened, { withFileTypes: true });
    } catch (err) {
      throw fsError(err, 'read pool directory', target);
    }
    const backingCache = new Map<string, BackingInfo | undefined>();
    const found: VolumeDefinition[] = [];
    const inspect = (e: Dirent): void => {
      // libvirt ignores C0 controls but tab, line feed and return, and lists DEL and C1 (docs/cli.md)
      if (hasControlChars(e.name)) return;
      try {
        // e.name alone: it opens in the pool directory opened above (inOpenedDirectory)
        const v = inspectVolumeSync(pathIn(target, e.name), e.name, { noerror: true, backingCache, direntType: e, at: e.name });
        if (v) found.push(v);
      } catch (err) {
        // an entry that changes under us must not fail the whole refresh
        if (!(err instanceof NotFoundError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    };
    const listing = entries[Symbol.iterator]();
    try {
      for (let more = true; more; ) {
        more = inOpenedDirectory(dir, () => {
          const slice = performance.now();
          for (let next = listing.next(); !next.done; next = listing.next()) {
            inspect(next.value);
            if (performance.now() - slice > sliceMs) return true;
          }
          return false;
        });
        if (more) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          checkAborted(ctx.signal, 'refresh');
        }
      }
    } finally {
      listing.return?.(); // closes the listing when the refresh ends early
    }
    const volumes = found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { runtime: await poolRuntime(opened, direct, target), volumes };
  } finally {
    await dir.close();
  }
}

/** The directory's entries, read as they are iterated; the directory is closed when the iteration ends, however it ends. */
function* entriesOf(dir: Dir, target: string): Generator<Dirent> {
  const next = (): Dirent | null => {
    try {
      return dir.readSync();
    } catch (err) {
      throw fsError(err, 'read pool directory', target);
    }
  };
  try {
    for (let e = next(); e; e = next()) yield e;
  } finally {
    dir.closeSync();
  }
}

/** One volume read again from its file, in the directory the pool started with. */
export async function refreshVolume(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
  const path = volumePath(ctx.pool, volume.name);
  const dir = onLocalFilesystem(ctx.pool.type) ? await openPoolDirectoryDirect(ctx.pool) : await openPoolDirectory(ctx.pool);
  if (!dir) throw new NotFoundError(`volume '${printable(volume.name)}' not found: the pool directory '${printable(poolTarget(ctx.pool), 200)}' does not exist`);
  try {
    const def = inspectVolumeSync(path, volume.name, { noerror: false, at: dir.pathOf(volume.name) });
    if (!def) throw new NotFoundError(`volume '${printable(volume.name)}' not found`);
    return def;
  } finally {
    await dir.close();
  }
}
