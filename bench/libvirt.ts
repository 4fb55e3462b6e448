// The libvirt side of the benchmarks: a private libvirtd (storage driver only) and virsh sessions.
//
// libvirtd runs as root in privileged mode, like the system daemon, but with its own config file
// (sockets in a temp dir, its own log and pid file) and LIBVIRT_DRIVER_DIR pointing at a directory
// that holds only the storage driver: the QEMU driver cannot start on this machine (no libvirt-qemu
// user) and is not needed. It is reached at storage:///system?socket=<tmp>/sock/libvirt-sock.
// If BENCH_LIBVIRT_URI is set, that daemon is used instead and nothing is started or stopped.
//
// It runs in a mount namespace of its own, where /run/libvirt and /etc/libvirt are empty
// directories under its temp dir: a privileged storage driver keeps its state, its lock
// (driver.pid) and the pools it defines under those fixed paths, so a second daemon (the
// differential test during a bench run, another engineer's) would fail to start its driver,
// and persistent pools a run defines would be left in the host's /etc/libvirt/storage.
//
// All workload commands go through ONE interactive virsh process reading commands from a pipe:
// virsh executes them one after another on one connection, with no process spawn and no
// client-side round trip between commands, which is the fastest path libvirt offers (faster
// than `virsh 'cmd1; cmd2'`, measured: 1.39 s against 2.0 s for 1,000 vol-create-as).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShellSession } from './shell-session.js';

export type { BatchResult } from './shell-session.js';

const DRIVER_DIRS = ['/usr/lib/x86_64-linux-gnu/libvirt/connection-driver', '/usr/lib64/libvirt/connection-driver', '/usr/lib/libvirt/connection-driver'];

export interface LibvirtDaemon {
  uri: string;
  /** The daemon's pid when this process started it, else undefined. */
  pid: number | undefined;
  version: string;
  stop(): Promise<void>;
  /** For an exit handler: SIGTERM the daemon and remove its directory, without waiting. */
  stopSync(): void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `start` with the pid of a new mount namespace where /run/libvirt and /etc/libvirt are
 * bind mounts of empty directories under `dir`. A `sleep` holds the namespace until `start`
 * returns; a daemon started in it keeps it from then on.
 */
async function inPrivateLibvirtDirs<T>(dir: string, start: (pid: number) => T): Promise<T> {
  const holder = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sleep', '600'], { stdio: 'ignore' });
  try {
    return start(await bindLibvirtDirs(holder, dir));
  } finally {
    holder.kill('SIGKILL');
  }
}

/** Waits for `holder` to be in its own mount namespace, then makes the bind mounts there; returns its pid. */
async function bindLibvirtDirs(holder: ReturnType<typeof spawn>, dir: string): Promise<number> {
  const pid = holder.pid;
  if (pid === undefined) throw new Error('unshare (util-linux) could not be started');
  const own = readlinkSync('/proc/self/ns/mnt');
  for (let i = 0; ; i++) {
    let ns: string | undefined;
    try {
      ns = readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      ns = undefined;
    }
    if (ns !== undefined && ns !== own) break;
    if (i >= 200 || holder.exitCode !== null) throw new Error(`unshare --mount did not make a mount namespace (exit ${holder.exitCode})`);
    await sleep(10);
  }
  for (const [inside, at] of [['run', '/run/libvirt'], ['etc', '/etc/libvirt']] as const) {
    const source = join(dir, inside);
    mkdirSync(source);
    mkdirSync(at, { recursive: true });
    const m = spawnSync('nsenter', ['--target', String(pid), '--mount', '--', 'mount', '--bind', source, at], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount --bind ${source} ${at} in libvirtd's namespace failed (${m.status}): ${m.stderr}`);
  }
  return pid;
}

export async function startLibvirtd(): Promise<LibvirtDaemon> {
  const version = spawnSync('libvirtd', ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (process.env.BENCH_LIBVIRT_URI) {
    return { uri: process.env.BENCH_LIBVIRT_URI, pid: undefined, version, stop: async () => undefined, stopSync: () => undefined };
  }
  const dir = mkdtempSync(join(tmpdir(), 'cistern-bench-libvirtd-'));
  const sockDir = join(dir, 'sock');
  const driverDir = join(dir, 'drivers');
  mkdirSync(sockDir);
  mkdirSync(driverDir);
  const storageDriver = DRIVER_DIRS.map((d) => join(d, 'libvirt_driver_storage.so')).find((p) => existsSync(p));
  if (!storageDriver) throw new Error(`libvirt_driver_storage.so not found in ${DRIVER_DIRS.join(', ')}: install libvirt-daemon`);
  symlinkSync(storageDriver, join(driverDir, 'libvirt_driver_storage.so'));
  const conf = join(dir, 'libvirtd.conf');
  writeFileSync(
    conf,
    [
      `unix_sock_dir = "${sockDir}"`,
      'unix_sock_rw_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      'max_workers = 20',
      `log_outputs = "3:file:${join(dir, 'libvirtd.log')}"`,
      '',
    ].join('\n'),
  );
  const pidFile = join(dir, 'libvirtd.pid');
  const r = await inPrivateLibvirtDirs(dir, (namespace) =>
    spawnSync('nsenter', ['--target', String(namespace), '--mount', '--', 'libvirtd', '-d', '-f', conf, '-p', pidFile], {
      cwd: dir,
      env: { ...process.env, LIBVIRT_DRIVER_DIR: driverDir },
      encoding: 'utf8',
    }),
  );
  if (r.status !== 0) throw new Error(`libvirtd -d failed (${r.status}): ${r.stderr}`);
  const sock = join(sockDir, 'libvirt-sock');
  let pid: number | undefined;
  for (let i = 0; i < 200; i++) {
    if (existsSync(pidFile) && existsSync(sock)) {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) break;
    }
    await sleep(25);
  }
  const logFile = join(dir, 'libvirtd.log');
  if (!pid) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`libvirtd did not come up\n${log}`);
  }
  const uri = `storage:///system?socket=${sock}`;
  const daemonPid = pid;
  return {
    uri,
    pid,
    version,
    stop: async () => {
      if (processAlive(daemonPid)) {
        process.kill(daemonPid, 'SIGTERM');
        for (let i = 0; i < 200 && processAlive(daemonPid); i++) await sleep(25);
        if (processAlive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
    stopSync: () => {
      if (processAlive(daemonPid)) process.kill(daemonPid, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One interactive virsh process (`virsh -q -c URI`), reading commands from a pipe: see
 * shell-session.ts. In -q mode virsh's `echo` prints the word with no newline, and the next
 * prompt ('virsh # ') follows it.
 */
export class VirshSession extends ShellSession {
  constructor(readonly uri: string) {
    super('virsh', ['-q', '-c', uri], { prompt: 'virsh #' });
  }
}

/** Quote a word for the virsh shell (single quotes; our names and paths have none). */
export function vq(word: string): string {
  if (word.includes("'")) throw new Error(`cannot quote ${word} for virsh`);
  return `'${word}'`;
}

/** Number of virsh processes whose parent is this process (to show that one session did the work). */
export function countVirshChildren(): number {
  const r = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'virsh'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).length;
}
