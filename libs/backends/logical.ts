// The logical (LVM) pool backend: libvirt 9's storage_backend_logical.c. A pool is a
// volume group, its volumes are the VG's logical volumes. pvcreate / vgcreate / vgchange
// / lvcreate / lvremove / lvs / vgs / pvs are the real mechanism and run through the
// command runner with libvirt's command lines; clearing device headers, wiping, cloning,
// uploads and downloads run in-process on the block devices.
//
// Tests point LVM at a configuration of their own through the runner's environment
// (LVM_SYSTEM_DIR); the backend passes that environment through untouched.
import { constants as fsc } from 'node:fs';
import { access, chmod, chown, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import {
  PoolSource,
  PoolType,
  Tristate,
  VolumeType,
  WipeAlgorithm,
  type BuildFlags,
  type PoolDefinition,
  type VolumeDefinition,
  type VolumeSourceDevice,
} from '../proto/cistern/v1/storage.js';
import {
  AlreadyExistsError,
  CancelledError,
  CisternError,
  CommandFailedError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnimplementedError,
  asCisternError,
} from '../errors/errors.js';
import { checkAbsolutePath, checkSize, printable } from '../api/names.js';
import type {
  BackendContext,
  BackendOperation,
  CreateVolOptions,
  PoolContext,
  RefreshResult,
  StorageBackend,
} from './backend.js';
import { requireEmptyDevice } from './device-probe.js';
import { copyIntoBlock, downloadBlock, uploadBlock, wipeBlock } from './block-data.js';
import type { RunOptions, RunResult } from './runner.js';
import { blockDeviceSize, checkAborted, writeFully } from './file-io.js';
import { permsOf } from './stat-fields.js';
import { checkLvName, checkVgName, lvsArgv, parseLvs, parsePvs, parseVgs, pvsArgv, vgsArgv, type LvRecord, type LvState } from './lvm-parse.js';
import { plainTarget } from './volume-target.js';

/** libvirt clears this much at the start and the end of every device before pvcreate. */
export const CLEAR_BYTES = 1024 * 1024;
const IO_CHUNK = 1024 * 1024;
const ZERO = Buffer.alloc(IO_CHUNK);
/** libvirt's VIR_STORAGE_DEFAULT_VOL_PERM_MODE. */
const DEFAULT_VOL_MODE = 0o600;

/** Environment of every LVM command: no "File descriptor leaked" noise on stderr. */
const LVM_ENV = { LVM_SUPPRESS_FD_WARNINGS: '1' };

/**
 * A volume of a logical pool as refresh reports it: the proto definition plus the LV's
 * device-mapper state (lv_attr), so an inactive LV is listed, not hidden as libvirt 9
 * hides it. `state` reaches users through VolumeDefinition.state; `sparse` stays in-process.
 */
export type LogicalVolumeDefinition = VolumeDefinition & { state: LvState; sparse: boolean };

// ------------------------------------------------------------------ pool facts

/** The VG name: <source><name>, defaulting to the pool name (libvirt). */
export function vgName(pool: PoolDefinition): string {
  return checkVgName(pool.source?.name || pool.name, pool.source?.name ? 'source.name' : 'name');
}

/** The pool target: /dev/VG unless given. */
export function poolTarget(pool: PoolDefinition): string {
  const path = pool.target?.path || `/dev/${vgName(pool)}`;
  return checkAbsolutePath(path, 'target.path');
}

/** target + '/' + LV name, the LV's device path (libvirt's vol->target.path). */
export function lvPath(pool: PoolDefinition, name: string, field = 'volume.name'): string {
  checkLvName(name, vgName(pool), field);
  const target = poolTarget(pool);
  return target === '/' ? `/${name}` : `${target}/${name}`;
}

function sourceDevices(pool: PoolDefinition): string[] {
  const paths = (pool.source?.devices ?? []).map((d, i) => checkAbsolutePath(d.path, `source.devices[${i}].path`));
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) throw new InvalidArgumentError('source.devices', `device '${printable(p)}' is listed twice`);
    seen.add(p);
  }
  return paths;
}

/** lvcreate exactly as libvirt 9 builds it (virStorageBackendLogicalLVCreate, without LUKS). */
export function lvcreateArgv(vg: string, name: string, capacity: bigint, allocation: bigint, backingPath?: string): string[] {
  const k = (n: bigint): string => `${(n + 1023n) / 1024n}K`;
  const argv = ['lvcreate', '--name', name, '-L'];
  if (capacity !== allocation) argv.push(k(allocation === 0n ? 1n : allocation), '--type', 'snapshot', '--virtualsize');
  argv.push(k(capacity));
  if (backingPath) argv.push('-s', backingPath);
  else argv.push(vg);
  argv.push('--yes');
  return argv;
}

// ------------------------------------------------------------------ helpers

function sizeOf(st: BigIntStats): bigint {
  return st.isBlockDevice() ? blockDeviceSize(st) : st.size;
}

/** Maps an LVM command failure to the typed error a user expects; `what` says what was done. */
export function lvmError(err: unknown, what: string): CisternError {
  if (err instanceof CommandFailedError) {
    const text = err.stderr;
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
    if (/already exists/i.test(text)) return new AlreadyExistsError(shown, err.details);
    if (/Volume group "[^"]*" not found|Failed to find logical volume|Failed to find physical volume|not found/i.test(text)) {
      return new NotFoundError(shown, err.details);
    }
    if (/is invalid|are reserved|Invalid argument/i.test(text)) return new InvalidArgumentError('', shown, err.details);
    return err;
  }
  return asCisternError(err);
}

function fileError(err: unknown, action: string, path: string): CisternError {
  if (err instanceof CisternError) return err;
  const e = err as NodeJS.ErrnoException;
  const what = `cannot ${action} '${printable(path, 200)}'`;
  switch (e?.code) {
    case 'ENOENT':
      return new FailedPreconditionError(`${what}: no such device`);
    case 'EBUSY':
      return new FailedPreconditionError(`${what}: the device is in use (mounted, or held by another driver)`);
    case 'ENOSPC':
      return new ResourceExhaustedError(`${what}: no space left on the device`);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new FailedPreconditionError(`${what}: ${e.code}: ${e.message}`);
  }
  const mapped = asCisternError(err);
  mapped.message = `${what}: ${mapped.message}`;
  return mapped;
}

export interface LogicalBackendOptions {
  /** Accept regular files as source devices (unit tests only; LVM itself refuses them). */
  allowRegularFiles?: boolean;
  qemuImg?: string;
  scrub?: string;
  /** `udevadm` to settle before a refresh and before lvremove (libvirt's virWaitForDevices); null: do not wait. */
  udevadm?: string | null;
  /** How long `udevadm settle` waits for udev's queue at most, in seconds (default 30). */
  udevSettleTimeoutSec?: number;
}

const DEFAULT_UDEV_SETTLE_TIMEOUT_SEC = 30;

export class LogicalBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_LOGICAL;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'checkPool',
    'buildPool',
    'startPool',
    'refreshPool',
    'stopPool',
    'deletePool',
    'createVol',
    'buildVol',
    'buildVolFrom',
    'deleteVol',
    'wipeVol',
    'uploadVol',
    'downloadVol',
    'findPoolSources',
  ]);
  readonly poolFormats: readonly string[] = ['unknown', 'lvm2'];
  readonly defaultPoolFormat = 'lvm2';
  /**
   * `lvremove -f` of an origin removes its snapshots with it (as libvirt's), and a thin
   * snapshot loses its origin: after deleting a volume that another names as its backing
   * store, the pool is re-read so their removal (or change) is published too.
   */
  readonly refreshAfterDeleteVol = (volume: VolumeDefinition, known: Iterable<VolumeDefinition>): boolean => {
    const path = volume.target?.path;
    if (!path) return true; // cannot tell which volumes it backs: re-read
    for (const v of known) if (v.name !== volume.name && v.backingStore?.path === path) return true;
    return false;
  };
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  private readonly allowRegularFiles: boolean;
  private readonly qemuImg: string;
  private readonly scrub: string;
  private readonly udevadm: string | null;
  private readonly udevSettleTimeoutSec: number;

  constructor(options: LogicalBackendOptions = {}) {
    this.allowRegularFiles = options.allowRegularFiles ?? false;
    this.qemuImg = options.qemuImg ?? 'qemu-img';
    this.scrub = options.scrub ?? 'scrub';
    this.udevadm = options.udevadm === undefined ? 'udevadm' : options.udevadm;
    const timeout = options.udevSettleTimeoutSec ?? DEFAULT_UDEV_SETTLE_TIMEOUT_SEC;
    if (!Number.isInteger(timeout) || timeout < 0) {
      throw new InvalidArgumentError('udevSettleTimeoutSec', `must be a whole number of seconds, 0 or more; got ${timeout}`);
    }
    this.udevSettleTimeoutSec = timeout;
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
  private async settle(ctx: BackendContext, cancellable = true): Promise<void> {
    if (this.udevadm === null) return;
    try {
      await ctx.runner.run([this.udevadm, 'settle', `--timeout=${this.udevSettleTimeoutSec}`], {
        ...(cancellable ? { signal: ctx.signal } : {}),
        timeoutMs: (this.udevSettleTimeoutSec + 5) * 1000,
      });
    } catch (err) {
      if (cancellable && err instanceof CancelledError) throw err;
    }
  }

  private run(ctx: BackendContext, argv: string[], options: RunOptions = {}): Promise<RunResult> {
    return ctx.runner.run(argv, { signal: ctx.signal, ...options, env: { ...LVM_ENV, ...options.env } });
  }

  private async lvm(ctx: BackendContext, argv: string[], what: string): Promise<RunResult> {
    try {
      return await this.run(ctx, argv);
    } catch (err) {
      throw lvmError(err, what);
    }
  }

  // ---------------------------------------------------------------- pools

  /** vgscan (errors ignored, as libvirt) + pvs: VG name -> PV paths. */
  private async pvGroups(ctx: BackendContext): Promise<Map<string, string[]>> {
    try {
      await this.run(ctx, ['vgscan']);
    } catch (err) {
      if (err instanceof CancelledError) throw err;
      // only a refresh of LVM's view; the pvs below still answers
    }
    const { stdout } = await this.lvm(ctx, pvsArgv(), 'cannot list physical volumes');
    return parsePvs(stdout);
  }

  /**
   * virStorageBackendLogicalMatchPoolSource: the VG is listed by pvs and, if the pool
   * names devices, at least one of them is a PV of it.
   */
  private async matchPoolSource(ctx: PoolContext): Promise<void> {
    const vg = vgName(ctx.pool);
    const groups = await this.pvGroups(ctx);
    const pvs = groups.get(vg);
    if (!pvs) throw new FailedPreconditionError(`cannot find logical volume group '${vg}'`, { vg });
    const devices = sourceDevices(ctx.pool);
    if (devices.length === 0) return;
    const real = async (p: string): Promise<string> => realpath(p).catch(() => p);
    const pvReal = new Set(await Promise.all(pvs.map(real)));
    let matches = 0;
    for (const d of devices) if (pvs.includes(d) || pvReal.has(await real(d))) matches++;
    if (matches === 0) {
      throw new FailedPreconditionError(
        `cannot find any matching source devices for logical volume group '${vg}': the pool names ${devices.join(', ')}, the volume group has ${pvs.join(', ')}`,
        { vg },
      );
    }
  }

  /** Active when the VG is there with the pool's devices and none of its LVs is inactive. */
  async checkPool(ctx: PoolContext): Promise<boolean> {
    try {
      await this.matchPoolSource(ctx);
    } catch (err) {
      if (err instanceof FailedPreconditionError) return false;
      throw err;
    }
    const records = await this.listLvs(ctx);
    return records.every((r) => r.thinPool || r.active);
  }

  /**
   * virStorageBackendLogicalBuildPool: every device is checked before any is touched
   * (exists, is a block device, not in use, and empty unless overwrite); then each gets
   * its first and last MiB cleared and pvcreate; then vgcreate VG DEVICES. A failure
   * pvremoves the devices pvcreate initialised.
   */
  async buildPool(ctx: PoolContext, flags: BuildFlags): Promise<void> {
    if (flags?.overwrite && flags?.noOverwrite) {
      throw new InvalidArgumentError('flags', 'overwrite and no_overwrite are mutually exclusive; give at most one');
    }
    const vg = vgName(ctx.pool);
    const devices = sourceDevices(ctx.pool);
    if (devices.length === 0) {
      throw new InvalidArgumentError('source.devices', `no source device given for volume group '${vg}'; a logical pool is built on one or more <device path='...'/>`);
    }
    for (const dev of devices) await this.checkDevice(dev);
    if (!flags?.overwrite) {
      for (const dev of devices) await requireEmptyDevice(ctx.runner, dev, ctx.signal);
    }
    const initialised: string[] = [];
    try {
      for (const dev of devices) {
        checkAborted(ctx.signal, 'build');
        await this.clearDeviceEnds(dev);
        await this.lvm(ctx, ['pvcreate', dev], `cannot initialise '${dev}' as a physical volume`);
        initialised.push(dev);
      }
      await this.lvm(ctx, ['vgcreate', vg, ...devices], `cannot create volume group '${vg}'`);
    } catch (err) {
      for (const dev of initialised) {
        try {
          await ctx.runner.run(['pvremove', dev], { env: LVM_ENV });
        } catch {
          // best effort, as libvirt: the build error is what the caller needs
        }
      }
      throw err;
    }
  }

  private async checkDevice(dev: string): Promise<void> {
    let st;
    try {
      st = await stat(dev, { bigint: true });
    } catch (err) {
      throw fileError(err, 'use device', dev);
    }
    if (!st.isBlockDevice() && !(this.allowRegularFiles && st.isFile())) {
      throw new FailedPreconditionError(`device '${printable(dev, 200)}' is not a block device; a logical pool needs disks, partitions or other block devices`);
    }
    // O_EXCL on a block device fails with EBUSY while it is mounted or held
    let fh: FileHandle | undefined;
    try {
      fh = await open(dev, fsc.O_RDONLY | fsc.O_EXCL);
    } catch (err) {
      throw fileError(err, 'open device', dev);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** virStorageBackendZeroPartitionTable(path, 1 MiB): zeros over the first and the last MiB. */
  private async clearDeviceEnds(dev: string): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(dev, fsc.O_WRONLY | fsc.O_EXCL);
      const size = sizeOf(await fh.stat({ bigint: true }));
      const n = size < BigInt(CLEAR_BYTES) ? size : BigInt(CLEAR_BYTES);
      await writeFully(fh, ZERO, 0, Number(n), 0);
      if (size > n) await writeFully(fh, ZERO, 0, Number(n), Number(size - n));
      await fh.sync();
    } catch (err) {
      throw fileError(err, 'clear the header of device', dev);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** Checks the VG is there (with the pool's devices), then `vgchange -aly VG`. */
  async startPool(ctx: PoolContext): Promise<void> {
    await this.matchPoolSource(ctx);
    const vg = vgName(ctx.pool);
    await this.lvm(ctx, ['vgchange', '-aly', vg], `cannot activate volume group '${vg}'`);
  }

  /** `vgchange -aln VG` (fails while an LV is open, e.g. mounted). */
  async stopPool(ctx: PoolContext): Promise<void> {
    const vg = vgName(ctx.pool);
    await this.lvm(ctx, ['vgchange', '-aln', vg], `cannot deactivate volume group '${vg}'`);
  }

  /** `vgremove -f VG`, then `pvremove DEV` for each device (failures there are ignored, as libvirt). */
  async deletePool(ctx: PoolContext): Promise<void> {
    const vg = vgName(ctx.pool);
    const devices = sourceDevices(ctx.pool);
    await this.lvm(ctx, ['vgremove', '-f', vg], `cannot remove volume group '${vg}'`);
    for (const dev of devices) {
      try {
        await ctx.runner.run(['pvremove', dev], { signal: ctx.signal, env: LVM_ENV });
      } catch {
        // libvirt only logs this: the VG is gone, a stale PV label does no harm
      }
    }
  }

  private async listLvs(ctx: PoolContext): Promise<LvRecord[]> {
    const vg = vgName(ctx.pool);
    const { stdout } = await this.lvm(ctx, lvsArgv(vg), `cannot list logical volumes of '${vg}'`);
    return parseLvs(stdout);
  }

  /**
   * virStorageBackendLogicalRefreshPool: `udevadm settle` first (virWaitForDevices, so the
   * nodes of LVs just made or activated are there to be read), then lvs (every LV, inactive
   * ones with their state) and vgs (sizes).
   */
  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const vg = vgName(ctx.pool);
    await this.settle(ctx, false);
    const records = await this.listLvs(ctx);
    const { stdout } = await this.lvm(ctx, vgsArgv(vg), `cannot read the size of volume group '${vg}'`);
    const { size, free } = parseVgs(stdout);
    const volumes: VolumeDefinition[] = [];
    for (const r of records) {
      if (r.thinPool) continue;
      volumes.push(await this.toVolume(ctx.pool, r));
    }
    return { runtime: { capacity: size, allocation: size - free, available: free }, volumes };
  }

  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    lvPath(ctx.pool, volume.name);
    const rec = (await this.listLvs(ctx)).find((r) => r.name === volume.name && !r.thinPool);
    if (!rec) throw new NotFoundError(`logical volume '${printable(volume.name)}' not found in volume group '${vgName(ctx.pool)}'`);
    return this.toVolume(ctx.pool, rec);
  }

  /** An LV as a volume: key = LV uuid, path = target/LV, extents per device, backing origin. */
  private async toVolume(pool: PoolDefinition, r: LvRecord): Promise<LogicalVolumeDefinition> {
    const target = poolTarget(pool);
    const path = `${target === '/' ? '' : target}/${r.name}`;
    const sourceDevices: VolumeSourceDevice[] = [];
    for (const e of r.extents) {
      let dev = sourceDevices.find((d) => d.path === e.device);
      if (!dev) sourceDevices.push((dev = { path: e.device, extents: [] }));
      dev.extents.push({ start: e.start, end: e.end });
    }
    // a snapshot's lv_size is its COW area (the allocation); what it shows is its origin's
    // (or its virtual) size, which lvs reports as origin_size
    let capacity = r.visibleSize;
    let permissions;
    if (r.active) {
      // libvirt reads capacity and permissions from the device node
      try {
        const st = await stat(path, { bigint: true });
        if (st.isBlockDevice()) capacity = blockDeviceSize(st) || capacity;
        permissions = permsOf(st);
      } catch {
        // node not there (yet): the LVM sizes stand
      }
    }
    return {
      type: VolumeType.VOLUME_TYPE_BLOCK,
      name: r.name,
      key: r.uuid,
      capacity,
      allocation: r.size,
      physical: capacity,
      sourceDevices,
      target: plainTarget(path, '', permissions),
      // libvirt stores VIR_STORAGE_POOL_LOGICAL_LVM2 (1) as the file format, which prints as raw
      backingStore: r.backingOrigin ? { path: `${target === '/' ? '' : target}/${r.backingOrigin}`, format: 'raw', permissions: undefined, timestamps: undefined } : undefined,
      state: r.state,
      sparse: r.sparse,
    };
  }

  /** vgscan + pvs: one source per VG with its PVs (PVs in no VG are not listed). */
  async findPoolSources(ctx: BackendContext): Promise<PoolSource[]> {
    const groups = await this.pvGroups(ctx);
    return [...groups.entries()].map(([vg, pvs]) =>
      PoolSource.fromPartial({
        name: vg,
        format: 'lvm2',
        devices: pvs.map((path) => ({ path, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] })),
      }),
    );
  }

  // ---------------------------------------------------------------- volumes

  /** Checks the request (LV name, capacity, backing origin); fills in type, path. Nothing runs. */
  async createVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const vg = vgName(ctx.pool);
    const path = lvPath(ctx.pool, volume.name);
    const capacity = volume.capacity;
    if (capacity === undefined || capacity === 0n) {
      throw new InvalidArgumentError('volume.capacity', 'a logical volume needs a capacity greater than 0 bytes');
    }
    checkSize(capacity, 'volume.capacity');
    let allocation = volume.allocation ?? capacity;
    checkSize(allocation, 'volume.allocation');
    // An allocation above the capacity makes a plain LV of the capacity (fully allocated).
    // libvirt 9 instead runs `lvcreate -L <allocation> --type snapshot --virtualsize
    // <capacity>`: a sparse LV, a dm-snapshot of zeros whose COW area can still overflow
    // (and the LV become unusable) when the excess does not cover the exception store.
    if (allocation > capacity) allocation = capacity;
    const enc = volume.target?.encryption;
    if (enc) {
      if (enc.format && enc.format !== 'luks') {
        throw new InvalidArgumentError('volume.target.encryption', `storage pool only supports LUKS encrypted volumes, not '${printable(enc.format)}'`);
      }
      throw new UnimplementedError('LUKS encrypted logical volumes are not supported yet');
    }
    // an LV has no format of its own: libvirt ignores a given one (a clone's definition
    // carries the source file's format, e.g. qcow2, which the copy converts to raw)
    let backingStore = undefined;
    if (volume.backingStore?.path) {
      const bpath = checkAbsolutePath(volume.backingStore.path, 'volume.backing_store.path');
      const target = poolTarget(ctx.pool);
      const prefix = target === '/' ? '/' : `${target}/`;
      const origin = bpath.startsWith(prefix) ? bpath.slice(prefix.length) : '';
      if (!origin || origin.includes('/')) {
        throw new InvalidArgumentError(
          'volume.backing_store.path',
          `backing store '${printable(bpath)}' is not a volume of this pool; a snapshot's origin must be ${prefix}<logical volume>`,
        );
      }
      checkLvName(origin, vg, 'volume.backing_store.path');
      backingStore = { path: bpath, format: 'raw', permissions: undefined, timestamps: undefined };
    }
    return {
      ...volume,
      type: VolumeType.VOLUME_TYPE_BLOCK,
      key: '',
      capacity,
      allocation,
      physical: undefined,
      sourceDevices: [],
      target: plainTarget(path, '', volume.target?.permissions),
      backingStore,
    };
  }

  /**
   * lvcreate with libvirt's arguments; an active LV then gets its mode (default 0600) and
   * owner on the device node. A failure after lvcreate removes the LV again.
   */
  async buildVol(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions): Promise<void> {
    if (options?.preallocMetadata || options?.preallocation || options?.reflink) {
      throw new InvalidArgumentError('flags', 'preallocation and reflink do not apply to logical volumes');
    }
    const planned = await this.createVol(ctx, volume);
    const vg = vgName(ctx.pool);
    const argv = lvcreateArgv(vg, planned.name, planned.capacity!, planned.allocation!, planned.backingStore?.path);
    await this.lvm(ctx, argv, `cannot create logical volume '${planned.name}' in '${vg}'`);
    try {
      const rec = (await this.listLvs(ctx)).find((r) => r.name === planned.name);
      if (!rec) throw new NotFoundError(`cannot find newly created volume '${planned.target!.path}'`);
      if (rec.active) {
        const perms = planned.target?.permissions;
        const path = planned.target!.path;
        const mode = perms?.mode ?? DEFAULT_VOL_MODE;
        try {
          await chmod(path, mode);
          const uid = perms?.owner !== undefined && perms.owner >= 0n ? Number(perms.owner) : -1;
          const gid = perms?.group !== undefined && perms.group >= 0n ? Number(perms.group) : -1;
          if (uid !== -1 || gid !== -1) await chown(path, uid, gid);
        } catch (err) {
          throw fileError(err, 'set permissions of', path);
        }
      }
    } catch (err) {
      await this.removeAfterFailure(ctx, planned);
      throw err;
    }
  }

  /**
   * Undoes an lvcreate whose create or clone failed. Not under the caller's signal: a
   * cancelled create must still remove what it made (every command would be refused).
   */
  private async removeAfterFailure(ctx: PoolContext, planned: VolumeDefinition): Promise<void> {
    await this.deleteVol({ ...ctx, signal: undefined }, planned).catch(() => undefined);
  }

  /**
   * Clone: an LV at least the source's size, then the data copied in (raw sources
   * in-process, other formats through `qemu-img convert -O raw`). The new LV must be
   * active to be written; a failure removes it.
   */
  async buildVolFrom(
    ctx: PoolContext,
    volume: VolumeDefinition,
    source: { pool: PoolDefinition; volume: VolumeDefinition },
    options: CreateVolOptions,
  ): Promise<void> {
    if (options?.preallocMetadata || options?.preallocation || options?.reflink) {
      throw new InvalidArgumentError('flags', 'preallocation and reflink do not apply to logical volumes');
    }
    const srcPath = checkAbsolutePath(source.volume.target?.path ?? '', 'source.target.path');
    if (source.volume.target?.encryption) throw new UnimplementedError('cloning an encrypted volume is not supported');
    if (source.volume.type === VolumeType.VOLUME_TYPE_DIR || source.volume.target?.format === 'dir') {
      throw new FailedPreconditionError(`cannot clone directory volume '${printable(source.volume.name)}'`);
    }
    const srcCapacity = source.volume.capacity ?? 0n;
    const capacity = volume.capacity === undefined || volume.capacity < srcCapacity ? srcCapacity : volume.capacity;
    // a clone holds a full copy: never a snapshot of anything, never sparse (a sparse LV
    // would overflow while the data is copied in)
    const requested: VolumeDefinition = { ...volume, capacity, allocation: capacity, backingStore: undefined };
    const planned = await this.createVol(ctx, requested);
    await this.buildVol(ctx, planned, { preallocMetadata: false });
    const dst = planned.target!.path;
    try {
      let srcFormat = source.volume.target?.format || 'raw';
      if (srcFormat === 'iso') srcFormat = 'raw';
      if (srcFormat === 'raw') await this.copyRaw(ctx, srcPath, dst);
      else await this.run(ctx, [this.qemuImg, 'convert', '-f', srcFormat, '-O', 'raw', '--', srcPath, dst], { timeoutMs: 0 });
    } catch (err) {
      await this.removeAfterFailure(ctx, planned);
      throw err instanceof CommandFailedError ? lvmError(err, `cannot copy '${srcPath}' into '${dst}'`) : err;
    }
  }

  private async copyRaw(ctx: BackendContext, src: string, dst: string): Promise<void> {
    await this.requireNode(dst);
    let length: bigint;
    try {
      const st = await stat(src, { bigint: true });
      length = sizeOf(st);
    } catch (err) {
      throw fileError(err, 'open source volume', src);
    }
    await copyIntoBlock(ctx, src, dst, length);
  }

  /**
   * `udevadm settle`, then `lvremove -f VG/LV`; if that fails, `lvchange -aln VG/LV` and once
   * more lvremove (libvirt). An LV that is already gone is fine. The removal after a failed
   * create or clone comes here too.
   */
  async deleteVol(ctx: PoolContext, volume: VolumeDefinition): Promise<void> {
    const vg = vgName(ctx.pool);
    lvPath(ctx.pool, volume.name);
    const lv = `${vg}/${volume.name}`;
    await this.settle(ctx);
    try {
      await this.run(ctx, ['lvremove', '-f', lv]);
      return;
    } catch (err) {
      if (err instanceof CommandFailedError && /Failed to find logical volume/i.test(err.stderr)) return;
      if (!(err instanceof CommandFailedError)) throw asCisternError(err);
    }
    await this.lvm(ctx, ['lvchange', '-aln', lv], `cannot deactivate logical volume '${lv}' for removal`);
    await this.lvm(ctx, ['lvremove', '-f', lv], `cannot remove logical volume '${lv}'`);
  }

  /**
   * Wipes a non-sparse LV: zero in-process, the other algorithms with scrub. Sparse LVs
   * (snapshots, thin volumes) are refused as libvirt refuses them: writing fills them.
   */
  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    const path = lvPath(ctx.pool, volume.name);
    const rec = (await this.listLvs(ctx)).find((r) => r.name === volume.name);
    if (!rec || rec.thinPool) throw new NotFoundError(`logical volume '${printable(volume.name)}' not found in volume group '${vgName(ctx.pool)}'`);
    if (rec.sparse) throw new UnimplementedError(`logical volume '${path}' is sparse, volume wipe not supported`);
    if (!rec.active) throw new FailedPreconditionError(`logical volume '${path}' is not active (state ${rec.state}); activate it (start the pool) before wiping`);
    await this.requireNode(path);
    await wipeBlock(ctx, path, algorithm, this.scrub);
  }

  /** An LV's data is reachable only through its device node, which exists while it is active. */
  private async requireNode(path: string): Promise<void> {
    try {
      await access(path, fsc.F_OK);
    } catch {
      throw new FailedPreconditionError(`logical volume '${printable(path, 200)}' has no device node: it does not exist or is not active`);
    }
  }

  /** Writes the stream into the LV's device at `offset`, at most `length` bytes (0 = all). */
  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    const path = lvPath(ctx.pool, volume.name);
    await this.requireNode(path);
    return uploadBlock(ctx, path, offset, length, data);
  }

  /** Reads `length` bytes (0 = to the end) from `offset` of the LV's device. */
  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    const path = lvPath(ctx.pool, volume.name);
    await this.requireNode(path);
    yield* downloadBlock(ctx, path, offset, length);
  }
}

export const logicalBackend = new LogicalBackend();
