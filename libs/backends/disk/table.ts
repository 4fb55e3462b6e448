// The partition table as the backend sees it: read with parted (layout) and partx (type
// ids), a partition found by name, and after a change the kernel's partitions (so the
// /dev nodes) made to follow the table, since this kernel has no partition scanner.
import { existsSync } from 'node:fs';
import { CommandFailedError, FailedPreconditionError, NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import type { PartitionExtent, PoolContext } from '../backend.js';
import type { CommandRunner } from '../runner.js';
import { isUnrecognisedLabel, parsePartedMachine, parsePartxTypes } from '../parted-parse.js';
import { buildLayout, type DiskLayout, type DiskPartition } from '../partition-plan.js';
import type { DiskSource } from './paths.js';
import type { DiskTools } from './tools.js';

/** The `parted -m` print the backend reads the table with. */
export function printArgv(parted: string, device: string): string[] {
  return [parted, '-s', '-m', '--', device, 'unit', 'B', 'print', 'free', 'unit', 'chs', 'print'];
}

export function partxTypesArgv(partx: string, device: string): string[] {
  return [partx, '-g', '-o', 'NR,TYPE', '--', device];
}

/** Reads the table; a device without one is FAILED_PRECONDITION (build the pool). */
export async function readLayout(tools: DiskTools, runner: CommandRunner, source: DiskSource, signal?: AbortSignal): Promise<DiskLayout> {
  const [printed, typed] = await Promise.all([
    runner.run(printArgv(tools.parted, source.device), { okExitCodes: [0, 1], signal }),
    runner.run(partxTypesArgv(tools.partx, source.device), { okExitCodes: [0, 1], signal }),
  ]);
  if (printed.exitCode !== 0) {
    const text = `${printed.stderr}\n${printed.stdout}`;
    if (isUnrecognisedLabel(text)) {
      throw new FailedPreconditionError(
        `device '${printable(source.device, 200)}' has no partition table parted recognises (unrecognised disk label); build the pool to write one`,
        { device: source.device },
      );
    }
    throw new CommandFailedError(printArgv(tools.parted, source.device), printed.exitCode, printed.stderr || printed.stdout);
  }
  const table = parsePartedMachine(printed.stdout);
  if (table.device.label === LOOP_LABEL) throw wholeDeviceError(source, table);
  const types = typed.exitCode === 0 ? parsePartxTypes(typed.stdout) : new Map<number, string>();
  return buildLayout(table, types, { device: source.nodeDevice, partSeparator: source.partSeparator });
}

/**
 * parted's name for a device that holds no partition table but a filesystem (or swap ...)
 * over the whole of it: it prints that as one partition 1 from byte 0 to the end. That is no
 * table: `parted rm 1` on it writes parted's own signature over the device's first sector (an
 * XFS or FAT superblock), and the kernel may still have a node 'p1' of the table there was,
 * now inside the filesystem. libvirt_parthelper's refresh fails on it (no node for the
 * phantom partition) and the pool stops; here every read of the table refuses it.
 */
const LOOP_LABEL = 'loop';

function wholeDeviceError(source: DiskSource, table: ReturnType<typeof parsePartedMachine>): FailedPreconditionError {
  const fs = table.entries.find((e) => !e.free)?.fs;
  return new FailedPreconditionError(
    `device '${printable(source.device, 200)}' holds no partition table: parted reads ${fs ? `a '${printable(fs)}' filesystem` : 'data'} over the whole device (its 'loop' label); build the pool with overwrite to write a table, which destroys it`,
    { device: source.device, found: LOOP_LABEL },
  );
}

/** The partition a volume name stands for, as the table has it now. */
export function findPartition(layout: DiskLayout, name: string): DiskPartition {
  const p = layout.partitions.find((q) => q.name === name);
  if (!p) throw new NotFoundError(`no partition '${printable(name)}' on '${printable(layout.device, 200)}'`, { volume: name });
  return p;
}

/**
 * The partition covering exactly `extent` (first byte, byte after its last), whatever its
 * number is now: what a create made, after the table may have changed under it.
 */
export function findPartitionAt(layout: DiskLayout, name: string, extent: PartitionExtent): DiskPartition {
  const p = layout.partitions.find((q) => q.start === extent.start && q.end === extent.end);
  if (!p) {
    throw new NotFoundError(
      `no partition of '${printable(layout.device, 200)}' covers bytes ${extent.start}-${extent.end - 1n}, where '${printable(name)}' was made; the table was changed since`,
      { volume: name },
    );
  }
  return p;
}

/**
 * The partition `volume` names, checked to be the one the pool listed: a definition read from
 * the table (a refresh or create) carries the bytes its partition covered then, and a partition
 * under that name covering other bytes now is another one (the table changed by hand since:
 * the listed one removed and another made takes its number; on a dos disk, a logical partition
 * before it removed renumbers it). Refused, nothing done: a delete or wipe would destroy that
 * other partition (libvirt goes by the number in the node's name). A definition without the
 * extent is taken by name.
 */
export function findListedPartition(layout: DiskLayout, volume: VolumeDefinition): DiskPartition {
  const p = findPartition(layout, volume.name);
  const listed = volume.sourceDevices[0]?.extents[0];
  if (listed && (listed.start !== p.start || listed.end !== p.end)) {
    throw new FailedPreconditionError(
      `partition '${printable(volume.name)}' covers bytes ${p.start}-${p.end - 1n} of '${printable(layout.device, 200)}' now, not ${listed.start}-${listed.end - 1n} as the pool last read it: the partition table was changed outside Cistern since; refresh the pool and retry; nothing was changed`,
      { volume: volume.name, listedStart: String(listed.start), listedEnd: String(listed.end), start: String(p.start), end: String(p.end) },
    );
  }
  return p;
}

/** After a table change: the kernel's partitions follow the table (no partition scanner here). */
export async function syncKernel(ctx: PoolContext, tools: DiskTools, source: DiskSource, layout: DiskLayout): Promise<void> {
  // partx -u with no partitions at all fails ("range <1:0>"); parted has removed them (BLKPG) then
  if (layout.partitions.length === 0) return;
  await ctx.runner.run([tools.partx, '-u', '--', source.device], { signal: ctx.signal });
}

/** Waits (at most tools.nodeWaitMs) for a node to appear or to go; false when it did not. */
export async function waitForNode(tools: DiskTools, path: string, present: boolean): Promise<boolean> {
  const deadline = Date.now() + tools.nodeWaitMs;
  for (;;) {
    if (existsSync(path) === present) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
