// Mount helpers shared by the fs and netfs pools: the mount table read in-process from
// /proc/self/mountinfo, mount and umount command lines as libvirt builds them
// (storage_util.c virStorageBackendFileSystemMountCmd), and running them with errors a
// user can act on.
import { checkMountOptionName } from '../api/source-names.js';
import { readFile, realpath, stat } from 'node:fs/promises';
import { CommandFailedError, FailedPreconditionError, InternalError, InvalidArgumentError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import type { CommandRunner } from './runner.js';
import { splitDevT } from './device-number.js';

export { splitDevT } from './device-number.js';

/** libvirt's default_mount_opts on Linux: every pool mount gets these first. */
export const DEFAULT_MOUNT_OPTIONS: readonly string[] = ['nodev', 'nosuid', 'noexec'];

export const MOUNTINFO_PATH = '/proc/self/mountinfo';

/** One line of /proc/self/mountinfo (proc(5)), with the octal escapes decoded. */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  /** The directory of the filesystem that forms the root of this mount. */
  root: string;
  mountPoint: string;
  mountOptions: string;
  optionalFields: string[];
  fsType: string;
  /** The mounted source: a device path, host:/dir, //host/share, or a name like 'tmpfs'. */
  source: string;
  superOptions: string;
  /** For a mount of a loop device: the file behind it (readLoopBackings fills this in). */
  loopBacking?: LoopBacking;
}

/** The file a loop device reads, as /sys/block/loopN/loop/backing_file names it. */
export interface LoopBacking {
  /** The path the kernel prints (canonical; ' (deleted)' appended once the file is gone). */
  path: string;
  /** Device and inode of that path when it could be stat'ed. */
  dev?: bigint;
  ino?: bigint;
}

/** Decodes the kernel's \ooo escapes (space, tab, newline, backslash) in a mountinfo field. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo; malformed lines are skipped. */
export function parseMountinfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || fields.length < sep + 3) continue;
    const devMatch = /^(\d+):(\d+)$/.exec(fields[2]!);
    if (!devMatch) continue;
    entries.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      major: Number(devMatch[1]),
      minor: Number(devMatch[2]),
      root: unescapeMountField(fields[3]!),
      mountPoint: unescapeMountField(fields[4]!),
      mountOptions: fields[5]!,
      optionalFields: fields.slice(6, sep),
      fsType: fields[sep + 1]!,
      source: unescapeMountField(fields[sep + 2]!),
      superOptions: fields.slice(sep + 3).join(' '),
    });
  }
  return entries;
}

/** Where the mount table comes from: the real one, or a fixed text in unit tests. */
export type MountTableSource = () => Promise<string>;

export const procMountTable: MountTableSource = () => readFile(MOUNTINFO_PATH, 'utf8');

/** Reads the mount table, failing with an error that names the file. */
export async function readMountTable(source: MountTableSource = procMountTable): Promise<MountInfoEntry[]> {
  let text: string;
  try {
    text = await source();
  } catch (err) {
    throw new InternalError(`cannot read the mount table ${MOUNTINFO_PATH}: ${(err as Error).message}`);
  }
  return parseMountinfo(text);
}

// ------------------------------------------------------------------ identities

/** What a pool mounts, and how to recognise it in the mount table. */
export type MountSource =
  /**
   * A local device (fs pools): matched by device number, else by path. A regular file
   * (an image) is mounted through a loop device mount(8) attaches itself: matched by the
   * loop device's backing file (`file`: its device and inode).
   */
  | { kind: 'device'; path: string; major?: number; minor?: number; realPath?: string; file?: { dev: bigint; ino: bigint } }
  /** A network export (netfs pools): matched by the source text the kernel shows. */
  | { kind: 'network'; spec: string };

/**
 * Looks a local device up: undefined when it does not exist. A block device carries its
 * device number (mountinfo's major:minor for block-based filesystems).
 */
export async function describeDevice(path: string): Promise<MountSource | undefined> {
  let st;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new FailedPreconditionError(`cannot stat source device '${printable(path, 200)}': ${(err as Error).message}`);
  }
  const realPath = await realpath(path).catch(() => path);
  if (st.isBlockDevice()) return { kind: 'device', path, realPath, ...splitDevT(st.rdev) };
  if (st.isFile()) return { kind: 'device', path, realPath, file: { dev: st.dev, ino: st.ino } };
  return { kind: 'device', path, realPath };
}

/** The loop block device major (linux/major.h). */
export const LOOP_MAJOR = 7;

/** The sysfs files that may name the backing file of the loop device behind a mount entry. */
function backingFileCandidates(entry: MountInfoEntry, sysfsRoot: string): string[] {
  const out: string[] = [];
  // block filesystems show the loop device's own number; others (btrfs) an anonymous one
  if (entry.major === LOOP_MAJOR) out.push(`${sysfsRoot}/dev/block/${entry.major}:${entry.minor}/loop/backing_file`);
  const m = /^\/dev\/loop([0-9]+)$/.exec(entry.source);
  if (m) out.push(`${sysfsRoot}/block/loop${m[1]}/loop/backing_file`);
  return out;
}

/**
 * Fills in `loopBacking` of the entries that mount a loop device, from sysfs. Needed only
 * to recognise a pool whose source is an image file (mount attached the loop device).
 */
export async function readLoopBackings(entries: readonly MountInfoEntry[], sysfsRoot: string): Promise<void> {
  await Promise.all(
    entries.map(async (entry) => {
      for (const file of backingFileCandidates(entry, sysfsRoot)) {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch {
          continue; // not a loop device, or detached meanwhile
        }
        const path = text.endsWith('\n') ? text.slice(0, -1) : text;
        if (!path) continue;
        const st = await stat(path, { bigint: true }).catch(() => undefined);
        entry.loopBacking = st ? { path, dev: st.dev, ino: st.ino } : { path };
        return;
      }
    }),
  );
}

/** host:/dir as the kernel prints it: no trailing '/' (except the root) and no doubled '/'. */
export function normaliseNetworkSource(spec: string): string {
  let s = spec;
  if (s.startsWith('//')) s = `//${s.slice(2).replace(/\/{2,}/g, '/')}`;
  else s = s.replace(/\/{2,}/g, '/');
  if (s.length > 1 && s.endsWith('/') && !s.endsWith(':/') && s !== '//') s = s.replace(/\/+$/, '');
  return s;
}

/** Does this mount table entry mount `source`? */
export function entryMatches(entry: MountInfoEntry, source: MountSource): boolean {
  if (source.kind === 'network') return normaliseNetworkSource(entry.source) === normaliseNetworkSource(source.spec);
  if (source.major !== undefined && entry.major === source.major && entry.minor === source.minor) return true;
  if (entry.source === source.path || (source.realPath !== undefined && entry.source === source.realPath)) return true;
  // an image file mounted through a loop device: the loop device reads this very file
  const backing = entry.loopBacking;
  if (source.file && backing) {
    if (backing.ino !== undefined && backing.dev === source.file.dev && backing.ino === source.file.ino) return true;
    return backing.path === (source.realPath ?? source.path);
  }
  return false;
}

/** Entries mounted exactly on one of `targets`, in table order (the last one is on top). */
export function mountsAt(entries: readonly MountInfoEntry[], targets: readonly string[]): MountInfoEntry[] {
  return entries.filter((e) => targets.includes(e.mountPoint));
}

/** The ways a target may appear in the table: as given and, when it exists, resolved. */
export async function targetCandidates(target: string): Promise<string[]> {
  const real = await realpath(target).catch(() => target);
  return real === target ? [target] : [target, real];
}

export type MountState =
  /** Nothing is mounted on the target. */
  | { state: 'unmounted' }
  /** The pool's source is mounted on the target (the top mount). */
  | { state: 'mounted'; entry: MountInfoEntry }
  /** Something else is mounted on the target. */
  | { state: 'other'; entry: MountInfoEntry };

/** What is mounted on the target, judged by the topmost mount there. */
export function mountStateAt(entries: readonly MountInfoEntry[], targets: readonly string[], source: MountSource): MountState {
  const here = mountsAt(entries, targets);
  const top = here[here.length - 1];
  if (!top) return { state: 'unmounted' };
  return entryMatches(top, source) ? { state: 'mounted', entry: top } : { state: 'other', entry: top };
}

/** Mounts of `source` anywhere except on `targets`. */
export function mountedElsewhere(entries: readonly MountInfoEntry[], targets: readonly string[], source: MountSource): MountInfoEntry[] {
  return entries.filter((e) => !targets.includes(e.mountPoint) && entryMatches(e, source));
}

// ------------------------------------------------------------------ command lines

/**
 * One mount option from the pool XML (fs:mount_opts): no control characters, not empty, and
 * one option (a ',' would carry a second one past the check of the first: 'noatime,bind').
 * The coordinator refuses the same; this is the agent's own check, before the command line.
 */
export function checkMountOption(option: string, field = 'mount_options'): string {
  if (typeof option !== 'string' || option.length === 0) throw new InvalidArgumentError(field, 'mount option is empty');
  if (/[\x00-\x20\x7f]/.test(option)) {
    throw new InvalidArgumentError(field, `mount option '${printable(option)}' contains whitespace or a control character`);
  }
  if (option.includes(',')) {
    throw new InvalidArgumentError(field, `mount option '${printable(option)}' contains ','; give one option per <fs:option>`);
  }
  return checkMountOptionName(option, field);
}

/**
 * The -o value as libvirt builds it: the defaults, then what the pool type adds
 * (nfsvers=N, guest, direct-io-mode=1), then the pool's own fs:mount_opts.
 */
export function mountOptionString(typeOptions: readonly string[], poolOptions: readonly string[]): string {
  return [...DEFAULT_MOUNT_OPTIONS, ...typeOptions, ...poolOptions.map((o) => checkMountOption(o))].join(',');
}

export interface MountSpec {
  /** -t value; undefined (format auto) lets mount find the type itself. */
  fsType?: string;
  source: string;
  target: string;
  options: string;
}

/** mount -o OPTS [-t TYPE] -- SOURCE TARGET */
export function mountArgv(spec: MountSpec, mount = 'mount'): string[] {
  return [mount, '-o', spec.options, ...(spec.fsType ? ['-t', spec.fsType] : []), '--', spec.source, spec.target];
}

/** umount -- TARGET */
export function umountArgv(target: string, umount = 'umount'): string[] {
  return [umount, '--', target];
}

const MOUNT_TIMEOUT_MS = 120_000;

/**
 * Runs mount. Failures the user can fix (no filesystem on the device, unknown type, a
 * missing mount helper, bad options) are FAILED_PRECONDITION with mount's own message.
 */
export async function runMount(runner: CommandRunner, spec: MountSpec, options: { mount?: string; signal?: AbortSignal } = {}): Promise<void> {
  const argv = mountArgv(spec, options.mount);
  try {
    await runner.run(argv, { signal: options.signal, timeoutMs: MOUNT_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof CommandFailedError && err.exitCode !== undefined) {
      throw new FailedPreconditionError(
        `cannot mount '${printable(spec.source, 200)}' on '${printable(spec.target, 200)}': ${err.stderr.trim() || `mount exited with ${err.exitCode}`}`,
        { command: argv.join(' '), stderr: err.stderr.trim(), exitCode: String(err.exitCode) },
      );
    }
    throw err;
  }
}

/** Runs umount; a busy target is FAILED_PRECONDITION (something still uses the pool). */
export async function runUnmount(runner: CommandRunner, target: string, options: { umount?: string; signal?: AbortSignal } = {}): Promise<void> {
  const argv = umountArgv(target, options.umount);
  try {
    await runner.run(argv, { signal: options.signal, timeoutMs: MOUNT_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof CommandFailedError && /busy/i.test(err.stderr)) {
      throw new FailedPreconditionError(`cannot unmount '${printable(target, 200)}': the target is busy (a process still uses it): ${err.stderr.trim()}`, {
        command: argv.join(' '),
        stderr: err.stderr.trim(),
      });
    }
    throw err;
  }
}
