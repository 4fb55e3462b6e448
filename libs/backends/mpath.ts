// The mpath pool backend: libvirt's storage_backend_mpath.c. The pool is every
// device-mapper multipath map of the host; each is a volume named dm-MINOR with path and
// key /dev/mapper/NAME. libvirt asks libdevmapper; Cistern asks dmsetup through the
// command runner (`dmsetup ls --target multipath` for names and minors, `dmsetup table`
// for every device's whole table: a map is one whose first target is 'multipath', as
// libvirt's virStorageBackendIsMultipath; capacity = the sum of its lengths x 512).
// Volumes cannot be created or deleted (multipathd makes the maps); wipe, upload and
// download work on the map's block device.
//
// Without device-mapper in the kernel (no "device-mapper" in /proc/misc) the pool
// cannot start or refresh: FAILED_PRECONDITION says so, before dmsetup runs.
import { access, readFile, stat } from 'node:fs/promises';
import {
  PoolType,
  VolumeType,
  type PoolDefinition,
  type VolumeDefinition,
  WipeAlgorithm,
} from '../proto/cistern/v1/storage.js';
import { FailedPreconditionError, InvalidArgumentError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import type { BackendOperation, PoolContext, RefreshResult, StorageBackend } from './backend.js';
import { devFsPath, lunPoolSizes } from './scsi-scan.js';
import { hostRoots } from './host-roots.js';
import {
  NO_DEVICE_MAPPER,
  deviceMapperMajor,
  dmsetupError,
  dmsetupLsArgv,
  dmsetupTableArgv,
  isMultipathTable,
  parseDmsetupLs,
  parseDmsetupTable,
  tableBytes,
} from './dmsetup.js';
import { checkIdentity, downloadBlock, uploadBlock, wipeBlock, type DeviceIdentity } from './block-data.js';
import { splitDevT } from './device-number.js';
import { discardLun } from './scsi.js';
import { permsOf, timestampsOf } from './stat-fields.js';
import { plainTarget } from './volume-target.js';

export interface MpathBackendOptions {
  /** Where /dev lives (default: $CISTERN_DEV_ROOT or /dev); volume paths stay /dev/mapper/... */
  devRoot?: string;
  /** Where /proc lives (default: $CISTERN_PROC_ROOT or /proc), for /proc/misc. */
  procRoot?: string;
  dmsetup?: string;
  /** `udevadm` to settle before listing (libvirt virWaitForDevices); null: do not wait. */
  udevadm?: string | null;
  scrub?: string;
  blkdiscard?: string;
}

const NO_CREATE = 'volumes of an mpath pool are the multipath maps multipathd builds from the host\'s paths; configure multipath and refresh the pool';

/** A dm name usable as /dev/mapper/NAME: no '/', not '.' or '..', no control characters. */
function safeMapName(name: string): boolean {
  return name.length > 0 && name.length <= 127 && !name.includes('/') && name !== '.' && name !== '..' && !/[\x00-\x1f\x7f]/.test(name);
}

export class MpathBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_MPATH;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'checkPool',
    'startPool',
    'refreshPool',
    'wipeVol',
    'uploadVol',
    'downloadVol',
  ]);
  /** Why the operations this type lacks are missing (for the UNIMPLEMENTED message). */
  readonly unsupportedReasons: Readonly<Partial<Record<BackendOperation, string>>> = {
    createVol: NO_CREATE,
    buildVol: NO_CREATE,
    buildVolFrom: NO_CREATE,
    deleteVol: NO_CREATE,
    resizeVol: 'a multipath map follows the size of its LUN; resize the LUN on the array and run `multipathd resize map NAME`',
    buildPool: 'an mpath pool lists the host\'s multipath maps; there is nothing to build',
    deletePool: 'an mpath pool lists the host\'s multipath maps; there is nothing to delete',
  };
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  readonly devRoot: string;
  readonly procRoot: string;
  private readonly dmsetup: string;
  private readonly options: MpathBackendOptions;

  constructor(options: MpathBackendOptions = {}) {
    this.options = options;
    const roots = hostRoots(options);
    this.devRoot = roots.dev;
    this.procRoot = roots.proc;
    this.dmsetup = options.dmsetup ?? 'dmsetup';
  }

  /** Is the device-mapper driver in the kernel? /proc/misc lists it; else /dev/mapper/control must exist. */
  async deviceMapperAvailable(): Promise<boolean> {
    try {
      const misc = await readFile(`${this.procRoot}/misc`, 'utf8');
      return /^\s*\d+\s+device-mapper\s*$/m.test(misc);
    } catch {
      return access(devFsPath(this.devRoot, '/dev/mapper/control')).then(
        () => true,
        () => false,
      );
    }
  }

  private async requireDeviceMapper(): Promise<void> {
    if (!(await this.deviceMapperAvailable())) throw new FailedPreconditionError(NO_DEVICE_MAPPER);
  }

  // ---------------------------------------------------------------- pools

  /** libvirt: active when /dev/mapper (or /dev/mpath) exists; here also the kernel driver. */
  async checkPool(): Promise<boolean> {
    if (!(await this.deviceMapperAvailable())) return false;
    for (const p of ['/dev/mapper', '/dev/mpath']) {
      if (await access(devFsPath(this.devRoot, p)).then(() => true, () => false)) return true;
    }
    return false;
  }

  /** Nothing to start; reached only when checkPool said no: say what is missing. */
  async startPool(): Promise<void> {
    await this.requireDeviceMapper();
    throw new FailedPreconditionError('device-mapper is loaded but /dev/mapper does not exist: is udev running? (start multipathd and udev, then start the pool)');
  }

  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    await this.requireDeviceMapper();
    if (this.options.udevadm !== null) {
      await ctx.runner.run([this.options.udevadm ?? 'udevadm', 'settle'], { signal: ctx.signal, okExitCodes: [0, 1] }).catch(() => undefined);
    }
    let lsOut: string;
    let tableOut: string;
    try {
      [lsOut, tableOut] = await Promise.all([
        ctx.runner.run(dmsetupLsArgv(this.dmsetup, 'multipath'), { signal: ctx.signal }).then((r) => r.stdout),
        // every device's whole table: `--target multipath` would print only the multipath lines
        // of each, hiding a map's other segments (its first target, its size)
        ctx.runner.run(dmsetupTableArgv(this.dmsetup), { signal: ctx.signal }).then((r) => r.stdout),
      ]);
    } catch (err) {
      throw dmsetupError(err);
    }
    const listed = parseDmsetupLs(lsOut);
    // only the listed devices' tables are read: another dm device's name cannot fail the refresh
    const tables = parseDmsetupTable(tableOut, undefined, listed.map((d) => d.name));
    const maps = listed.filter((d) => safeMapName(d.name) && isMultipathTable(tables.get(d.name)));
    const found = await Promise.all(
      maps.map(async (d): Promise<VolumeDefinition | undefined> => {
        const path = `/dev/mapper/${d.name}`;
        let st;
        try {
          st = await stat(devFsPath(this.devRoot, path), { bigint: true });
        } catch {
          return undefined; // udev has not made the node (yet)
        }
        const size = tableBytes(tables.get(d.name)!);
        return {
          type: VolumeType.VOLUME_TYPE_BLOCK,
          name: `dm-${d.minor}`,
          key: path,
          capacity: size,
          allocation: size,
          physical: size,
          sourceDevices: [],
          target: plainTarget(path, '', permsOf(st), timestampsOf(st)),
          backingStore: undefined,
        };
      }),
    );
    const volumes = found.filter((v): v is VolumeDefinition => v !== undefined).sort((a, b) => minorOf(a) - minorOf(b));
    return { runtime: lunPoolSizes(volumes), volumes };
  }

  // ---------------------------------------------------------------- volumes

  /** /dev/mapper/NAME of the volume, mapped into devRoot; anything else is INVALID_ARGUMENT. */
  devicePath(_pool: PoolDefinition, volume: VolumeDefinition): string {
    const path = volume.target?.path ?? '';
    const name = path.startsWith('/dev/mapper/') ? path.slice('/dev/mapper/'.length) : '';
    if (!safeMapName(name) || name === 'control') {
      throw new InvalidArgumentError('volume', `volume '${printable(volume.name)}' has path '${printable(path, 200)}', not a /dev/mapper map`);
    }
    return devFsPath(this.devRoot, path);
  }

  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    const path = this.devicePath(ctx.pool, volume);
    const identity = mapIdentity(volume, this.procRoot);
    if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) {
      await checkIdentity(path, identity);
      return discardLun(ctx, path, this.options.blkdiscard ?? 'blkdiscard');
    }
    await wipeBlock(ctx, path, algorithm, this.options.scrub, identity);
  }

  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, data, mapIdentity(volume, this.procRoot));
  }

  downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    return downloadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, mapIdentity(volume, this.procRoot));
  }
}

/**
 * The check that a device opened by a volume's /dev/mapper name is still its map: the block
 * device of device-mapper's major (/proc/devices) and the minor the refresh listed (dm-MINOR).
 * A map that went away and a name that came back for another one, or a name that leads to
 * another driver's device that has the same minor (a disk, a loop device), lead elsewhere;
 * the data operations refuse it.
 */
function mapIdentity(volume: VolumeDefinition, procRoot: string): DeviceIdentity {
  const minor = minorOf(volume);
  return async (opened, path) => {
    const major = deviceMapperMajor(await readFile(`${procRoot}/devices`, 'utf8').catch(() => ''));
    // no device-mapper in this kernel: no device can be a map
    if (major === undefined) throw new FailedPreconditionError(NO_DEVICE_MAPPER);
    const got = splitDevT(opened.rdev);
    if (!opened.isBlockDevice() || got.major !== major || got.minor !== minor) {
      throw new FailedPreconditionError(
        `'${printable(path, 200)}' is not the device of volume '${printable(volume.name)}' (device-mapper device ${major}:${minor}) any more: it is device ${got.major}:${got.minor}; refresh the pool`,
        { volume: volume.name, path },
      );
    }
  };
}

function minorOf(v: VolumeDefinition): number {
  return Number(v.name.slice(3));
}

export const mpathBackend = new MpathBackend();
