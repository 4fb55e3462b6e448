// A private tgtd (Linux SCSI target daemon, Debian package tgt) on 127.0.0.1 for iSCSI
// tests: a free TCP port, its own control socket number (so it never talks to another
// tgtd), file-backed LUNs in a temp dir, stopped by its exact pid.
import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, registerCleanup } from './cleanup.js';
import { freePort } from './ports.js';
import { AbortWait, ServiceProcess, waitFor } from './process.js';

const run = promisify(execFile);

export const TGTD = '/usr/sbin/tgtd';
export const TGTADM = '/usr/sbin/tgtadm';

/** True when tgtd and libiscsi-bin's tools are installed (Debian: tgt, libiscsi-bin). */
export function tgtdAvailable(): boolean {
  return existsSync(TGTD) && existsSync(TGTADM);
}

export interface TgtLun {
  lun: number;
  /** Size of the backing file in bytes. */
  size: number;
  /** Filled into the backing file before the target starts (default: none, sparse zeros). */
  content?: Buffer;
}

export interface TgtTargetSpec {
  iqn: string;
  luns: TgtLun[];
  chap?: { username: string; password: string };
}

export interface TgtTarget {
  iqn: string;
  tid: number;
  /** LUN number -> backing file. */
  files: Map<number, string>;
}

export interface Tgtd {
  host: string;
  port: number;
  pid: number;
  targets: TgtTarget[];
  /** tgtadm with this daemon's control socket. */
  tgtadm(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Starts tgtd on 127.0.0.1:<free port> with the given targets; every one bound to ALL initiators. */
export async function startTgtd(targets: TgtTargetSpec[]): Promise<Tgtd> {
  const port = await freePort();
  // The control number names /var/run/tgtd/socket.N (tgtd allows small numbers only):
  // derived from the free TCP port, skipping numbers whose socket another tgtd holds.
  let n = 1000 + (port % 20000);
  while (existsSync(`/var/run/tgtd/socket.${n}.lock`) || existsSync(`/var/run/tgtd/socket.${n}`)) n++;
  const control = String(n);
  const dir = makeTempDir('cistern-tgtd-');
  const proc = ServiceProcess.spawn({
    name: `tgtd ${port}`,
    command: TGTD,
    args: ['-f', '-C', control, '--iscsi', `portal=127.0.0.1:${port}`],
  });
  const tgtadm = async (args: string[]): Promise<string> => {
    const { stdout } = await run(TGTADM, ['-C', control, '--lld', 'iscsi', ...args], { timeout: 30_000 });
    return stdout;
  };
  const socketFiles = [`/var/run/tgtd/socket.${control}`, `/var/run/tgtd/socket.${control}.lock`];
  const stop = registerCleanup(`tgtd pid ${proc.pid}`, async () => {
    // tgtd ignores SIGTERM while it has targets: SIGKILL its exact pid (ServiceProcess.kill).
    await proc.kill();
    for (const f of socketFiles) rmSync(f, { force: true });
    await proc.dispose();
    await dir.remove();
  });
  try {
    await waitFor(
      'tgtd control socket',
      async () => {
        if (!proc.alive) throw new AbortWait(new Error(`tgtd exited: ${proc.logTail()}`));
        await tgtadm(['--mode', 'target', '--op', 'show']);
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, context: () => proc.logTail() },
    );
    const made: TgtTarget[] = [];
    let tid = 1;
    for (const t of targets) {
      await tgtadm(['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', t.iqn]);
      const files = new Map<number, string>();
      for (const l of t.luns) {
        const file = join(dir.path, `t${tid}-lun${l.lun}.img`);
        await writeFile(file, l.content ?? Buffer.alloc(0));
        await truncate(file, l.size);
        await tgtadm(['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(l.lun), '--backing-store', file]);
        files.set(l.lun, file);
      }
      await tgtadm(['--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-address', 'ALL']);
      if (t.chap) {
        await tgtadm(['--mode', 'account', '--op', 'new', '--user', t.chap.username, '--password', t.chap.password]);
        await tgtadm(['--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', t.chap.username]);
      }
      made.push({ iqn: t.iqn, tid, files });
      tid++;
    }
    return { host: '127.0.0.1', port, pid: proc.pid, targets: made, tgtadm, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
