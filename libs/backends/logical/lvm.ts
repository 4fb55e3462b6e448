// Running LVM's commands: each through the command runner with LVM's quiet environment,
// its failure mapped to the typed error a user expects (no space, in use, exists, not
// found), and udev settled first where libvirt waits for it (virWaitForDevices).
//
// Tests point LVM at a configuration of their own through the runner's environment
// (LVM_SYSTEM_DIR); these pass that environment through untouched.
import { basename } from 'node:path';
import {
  AlreadyExistsError,
  CancelledError,
  CisternError,
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  asCisternError,
} from '../../errors/errors.js';
import type { BackendContext, PoolContext } from '../backend.js';
import type { RunOptions, RunResult } from '../runner.js';
import { lvsArgv, parseLvs, type LvRecord } from '../lvm-parse.js';
import { vgName } from './paths.js';
import type { LogicalTools } from './tools.js';

/** Environment of every LVM command: no "File descriptor leaked" noise on stderr. */
export const LVM_ENV = { LVM_SUPPRESS_FD_WARNINGS: '1' };

/** Maps an LVM command failure to the typed error a user expects; `what` says what was done. */
export function lvmError(err: unknown, what: string): CisternError {
  if (err instanceof CommandFailedError) {
    const text = err.stderr;
    // the program could not be started: a host without LVM, said as the other backends say it
    if (err.exitCode === undefined && /ENOENT/.test(text)) {
      return new FailedPreconditionError(`${what}: ${basename(err.argv[0] ?? 'lvm')} is not installed on this host (Debian package lvm2)`, err.details);
    }
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^WARNING: (Activation disabled|This metadata update is NOT backed up)/.test(l))
      .join('; ');
    const shown = `${what}: ${lines || err.message}`;
    if (/insufficient (free space|suitable allocatable extents)|not enough free space/i.test(text)) return new ResourceExhaustedError(shown, err.details);
    // an LV held open (mounted, used by a guest): lvremove / lvchange -an / vgremove say
    // "Logical volume VG/LV in use." (or "contains a filesystem in use."), vgchange -an
    // "Can't deactivate volume group ... with N open logical volume(s)": release it first
    if (/\bin use\b|open logical volume/i.test(text)) return new FailedPreconditionError(shown, err.details);
    // pvcreate / vgcreate refusing the device for what it is or for the host's lvm.conf:
    // "Cannot use /dev/sdb: device is rejected by filter config" (also: a multipath or md
    // component, partitioned, too small, not in the devices file); no fault of the agent
    if (/Cannot use \S+: device is /.test(text)) return new FailedPreconditionError(shown, err.details);
    if (/already exists/i.test(text)) return new AlreadyExistsError(shown, err.details);
    if (/Volume group "[^"]*" not found|Failed to find logical volume|Failed to find physical volume|not found/i.test(text)) {
      return new NotFoundError(shown, err.details);
    }
    if (/is invalid|are reserved|Invalid argument/i.test(text)) return new InvalidArgumentError('', shown, err.details);
    // unclassified: LVM's words stay, under what was being done
    err.message = `${what}: ${err.message}`;
    return err;
  }
  return asCisternError(err);
}

/** An LVM command under the caller's signal, with LVM_ENV; failures as the runner raises them. */
export function runLvm(ctx: BackendContext, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return ctx.runner.run(argv, { signal: ctx.signal, ...options, env: { ...LVM_ENV, ...options.env } });
}

/** runLvm with its failure mapped by lvmError; `what` says what was being done. */
export async function lvm(ctx: BackendContext, argv: string[], what: string): Promise<RunResult> {
  try {
    return await runLvm(ctx, argv);
  } catch (err) {
    throw lvmError(err, what);
  }
}

/** Every LV of the pool's VG as lvs reports it (inactive ones with their state). */
export async function listLvs(ctx: PoolContext): Promise<LvRecord[]> {
  const vg = vgName(ctx.pool);
  const { stdout } = await lvm(ctx, lvsArgv(vg), `cannot list logical volumes of '${vg}'`);
  return parseLvs(stdout);
}

/**
 * libvirt's virWaitForDevices: `udevadm settle`, so udev has finished with the LVs before
 * a refresh reads their nodes and before lvremove (after a write udev re-runs blkid on an
 * LV, holding it open). udevadm missing, failing or timing out is ignored, as libvirt
 * ignores it. Before lvremove a cancellation stops the delete (nothing is removed yet);
 * before a refresh it is not taken (`cancellable` false): libvirt's wait cannot be
 * cancelled, and a refresh that fails stops the pool, so a client's Ctrl-C during the
 * wait must not take a running pool down.
 */
export async function settleUdev(ctx: BackendContext, tools: LogicalTools, cancellable = true): Promise<void> {
  if (tools.udevadm === null) return;
  try {
    await ctx.runner.run([tools.udevadm, 'settle', `--timeout=${tools.udevSettleTimeoutSec}`], {
      ...(cancellable ? { signal: ctx.signal } : {}),
      timeoutMs: (tools.udevSettleTimeoutSec + 5) * 1000,
    });
  } catch (err) {
    if (cancellable && err instanceof CancelledError) throw err;
  }
}
