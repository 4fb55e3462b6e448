// The scsi pool backend: libvirt's storage_backend_scsi.c. The pool is one SCSI host
// adapter; its volumes are the host's disk and CD-ROM LUs (libs/backends/scsi-scan.ts).
//
// Adapter (libvirt storage_adapter_conf.c):
//   scsi_host name='hostN'                       -> hostN
//   scsi_host <parentaddr unique_id='U'><address domain bus slot function/>
//                                                -> the scsi_host below that PCI device with unique_id U
//   fc_host wwnn= wwpn= [parent= | parent_wwnn= parent_wwpn= | parent_fabric_wwn=] [managed=]
//                                                -> the fc_host with those WWNs; at start, when it
//                                                   does not exist, a vHBA is created through the
//                                                   parent's vport_create ("wwpn:wwnn") and, being
//                                                   ours, deleted through vport_delete at stop.
// Refresh writes '- - -' to the host's scan file, waits for udev (`udevadm settle`) and
// walks the host's LUs. Volumes cannot be created or deleted: they are the LUNs the
// storage presents. Wipe, upload and download work on the LUN's block device
// (block-data.ts; trim = blkdiscard).
import {
  AdapterType,
  PoolType,
  Tristate,
  type PoolDefinition,
  type SourceAdapter,
  type VolumeDefinition,
  WipeAlgorithm,
} from '../proto/cistern/v1/storage.js';
import { CommandFailedError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnimplementedError, asCisternError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import type { BackendOperation, PoolContext, RefreshResult, StorageBackend } from './backend.js';
import { hostRoots } from './host-roots.js';
import {
  checkScsiTargetDir,
  devFsPath,
  lunPoolSizes,
  lunIdentity,
  scanScsiHost,
  scsiHostNumber,
  triggerScsiRescan,
  type ScsiScanOptions,
} from './scsi-scan.js';
import {
  findFcHostByFabricWwn,
  fcHostClassDir,
  findFcHostByWwn,
  findScsiHostByPci,
  findVportHost,
  formatPciAddress,
  isFcHost,
  isVportCapable,
  manageVport,
  normalizeWwn,
  scsiHostClassDir,
  vhbaParent,
  waitForFcHost,
} from './vhba.js';
import { checkIdentity, downloadBlock, uploadBlock, wipeBlock, type DeviceIdentity } from './block-data.js';
import { access } from 'node:fs/promises';
import { join } from 'node:path';

export interface ScsiBackendOptions {
  /** sysfs root (default: $CISTERN_SYSFS_ROOT or /sys). */
  sysfsRoot?: string;
  /** Where /dev lives (default: $CISTERN_DEV_ROOT or /dev); volume paths stay /dev/... */
  devRoot?: string;
  /** Where LU keys come from (scsi-scan.ts); default 'auto'. */
  keySource?: ScsiScanOptions['keySource'];
  scsiIdPath?: string;
  /** `udevadm` to settle after a rescan (libvirt virWaitForDevices); null: do not wait. */
  udevadm?: string | null;
  /** How long start waits for the kernel to create the vHBA's fc_host (default 10 s). */
  vportWaitMs?: number;
  vportPollMs?: number;
  scrub?: string;
  blkdiscard?: string;
  /** How long a refresh waits for a missing stable target directory (default 5 s, as libvirt). */
  stableDirWaitMs?: number;
}

const NO_CREATE =
  'volumes of a scsi pool are the LUNs the SCSI host presents; create or delete them on the storage array (or the vHBA zoning) and refresh the pool';

/** Checks the pool's adapter as libvirt's virStorageAdapterValidate does; returns it. */
export function checkScsiAdapter(pool: PoolDefinition): SourceAdapter {
  const a = pool.source?.adapter;
  if (!a || a.type === AdapterType.ADAPTER_TYPE_UNSPECIFIED) {
    throw new InvalidArgumentError('pool.source.adapter', 'a scsi pool needs a source adapter: <adapter type="scsi_host" name="hostN"/>, a scsi_host with <parentaddr>, or an fc_host with wwnn and wwpn');
  }
  if (a.type === AdapterType.ADAPTER_TYPE_SCSI_HOST) {
    if (a.name && a.hasParentAddress) {
      throw new InvalidArgumentError('pool.source.adapter', "give either 'name' or <parentaddr> for a scsi_host adapter, not both");
    }
    if (!a.name && !a.hasParentAddress) {
      throw new InvalidArgumentError('pool.source.adapter', "a scsi_host adapter needs 'name' (e.g. host0) or <parentaddr>");
    }
    if (a.name) scsiHostNumber(a.name, 'pool.source.adapter.name');
    if (a.hasParentAddress && !a.parentAddress) {
      throw new InvalidArgumentError('pool.source.adapter.parentaddr', '<parentaddr> needs an <address domain= bus= slot= function=/>');
    }
    return a;
  }
  if (a.type === AdapterType.ADAPTER_TYPE_FC_HOST) {
    if (!a.wwnn || !a.wwpn) {
      throw new InvalidArgumentError('pool.source.adapter', "'wwnn' and 'wwpn' must be given for an fc_host adapter");
    }
    normalizeWwn(a.wwnn, 'pool.source.adapter.wwnn');
    normalizeWwn(a.wwpn, 'pool.source.adapter.wwpn');
    if (!!a.parentWwnn !== !!a.parentWwpn) {
      throw new InvalidArgumentError('pool.source.adapter', "'parent_wwnn' and 'parent_wwpn' must be given together");
    }
    if (a.parentWwnn) normalizeWwn(a.parentWwnn, 'pool.source.adapter.parent_wwnn');
    if (a.parentWwpn) normalizeWwn(a.parentWwpn, 'pool.source.adapter.parent_wwpn');
    if (a.parentFabricWwn) normalizeWwn(a.parentFabricWwn, 'pool.source.adapter.parent_fabric_wwn');
    if (a.parent) scsiHostNumber(a.parent, 'pool.source.adapter.parent');
    return a;
  }
  throw new InvalidArgumentError('pool.source.adapter.type', `unknown adapter type ${a.type}; allowed: scsi_host, fc_host`);
}

export class ScsiBackend implements StorageBackend {
  readonly type: PoolType = PoolType.POOL_TYPE_SCSI;
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'checkPool',
    'startPool',
    'refreshPool',
    'stopPool',
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
    resizeVol: 'a LUN is resized on the storage array, not through the pool; refresh the pool afterwards',
    buildPool: 'a scsi pool uses an existing SCSI host; there is nothing to build',
    deletePool: 'a scsi pool uses an existing SCSI host; there is nothing to delete',
  };
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  readonly sysfsRoot: string;
  readonly devRoot: string;
  private readonly options: ScsiBackendOptions;
  /** vHBAs this agent created (pool uuid or name -> wwpn:wwnn): deleted at stop even when managed was not set. */
  private readonly createdVports = new Map<string, string>();

  constructor(options: ScsiBackendOptions = {}) {
    this.options = options;
    const roots = hostRoots(options);
    this.sysfsRoot = roots.sysfs;
    this.devRoot = roots.dev;
  }

  // ---------------------------------------------------------------- host lookup

  /** The SCSI host the adapter names now, or undefined (fc_host not created yet). */
  async findHost(pool: PoolDefinition): Promise<string | undefined> {
    const a = checkScsiAdapter(pool);
    if (a.type === AdapterType.ADAPTER_TYPE_FC_HOST) return findFcHostByWwn(this.sysfsRoot, a.wwnn, a.wwpn);
    if (a.name) return `host${scsiHostNumber(a.name)}`;
    const pci = formatPciAddress(a.parentAddress!);
    const found = await findScsiHostByPci(this.sysfsRoot, pci, a.uniqueId);
    if (!found) throw new NotFoundError(`no scsi_host found with PCI address '${pci}' and unique_id='${a.uniqueId}'`);
    return found;
  }

  /** The sysfs class directory the adapter's hosts are listed in (fc_host or scsi_host). */
  private kernelClassDir(pool: PoolDefinition): string {
    const fc = pool.source?.adapter?.type === AdapterType.ADAPTER_TYPE_FC_HOST;
    return fc ? fcHostClassDir(this.sysfsRoot) : scsiHostClassDir(this.sysfsRoot);
  }

  private kernelSupports(pool: PoolDefinition): Promise<boolean> {
    return access(this.kernelClassDir(pool)).then(
      () => true,
      () => false,
    );
  }

  /** FAILED_PRECONDITION when the kernel has no SCSI midlayer (or no FC transport for fc_host). */
  private async requireKernelSupport(pool: PoolDefinition): Promise<void> {
    const fc = pool.source?.adapter?.type === AdapterType.ADAPTER_TYPE_FC_HOST;
    const dir = this.kernelClassDir(pool);
    if (await this.kernelSupports(pool)) return;
    throw new FailedPreconditionError(
      fc
        ? `this kernel has no Fibre Channel transport (no ${dir}): load scsi_transport_fc and the HBA driver to use fc_host adapters`
        : `this kernel has no SCSI subsystem (no ${dir}): a scsi pool needs the SCSI midlayer (CONFIG_SCSI) and a host adapter driver`,
    );
  }

  private async requireHost(pool: PoolDefinition): Promise<number> {
    await this.requireKernelSupport(pool);
    const name = await this.findHost(pool);
    if (!name) {
      const a = pool.source!.adapter!;
      throw new NotFoundError(`no SCSI host found with wwnn='${a.wwnn}', wwpn='${a.wwpn}': the vHBA does not exist (start the pool to create it)`);
    }
    return scsiHostNumber(name);
  }

  private async hostExists(hostNumber: number): Promise<boolean> {
    return access(join(scsiHostClassDir(this.sysfsRoot), `host${hostNumber}`)).then(
      () => true,
      () => false,
    );
  }

  private poolKey(pool: PoolDefinition): string {
    return pool.uuid || pool.name;
  }

  // ---------------------------------------------------------------- pools

  /**
   * libvirt virStorageBackendSCSICheckPool: the host's scsi_host entry exists. An fc_host
   * whose vHBA exists is also checked against the pool's parent here (libvirt createVport's
   * checkParent): the agent runs startPool only when this says down, so a vHBA found up
   * would otherwise start a pool that names another parent.
   */
  async checkPool(ctx: PoolContext): Promise<boolean> {
    checkScsiTargetDir(ctx.pool.target?.path ?? '');
    // nothing is up on a kernel without the SCSI midlayer: the start says what is missing
    if (!(await this.kernelSupports(ctx.pool))) return false;
    const name = await this.findHost(ctx.pool);
    if (!name) return false; // fc_host whose vHBA is not created yet
    const parent = ctx.pool.source?.adapter?.type === AdapterType.ADAPTER_TYPE_FC_HOST ? ctx.pool.source.adapter.parent : '';
    if (parent) await this.checkParent(name, parent);
    return this.hostExists(scsiHostNumber(name));
  }

  /** fc_host: creates the vHBA when it does not exist (libvirt createVport); scsi_host: the host must exist. */
  async startPool(ctx: PoolContext): Promise<void> {
    checkScsiTargetDir(ctx.pool.target?.path ?? '');
    const a = checkScsiAdapter(ctx.pool);
    if (a.type !== AdapterType.ADAPTER_TYPE_FC_HOST) {
      const n = await this.requireHost(ctx.pool);
      if (!(await this.hostExists(n))) {
        throw new NotFoundError(`SCSI host host${n} does not exist on this host (no ${join(scsiHostClassDir(this.sysfsRoot), `host${n}`)})`);
      }
      return;
    }
    await this.requireKernelSupport(ctx.pool);
    const existing = await findFcHostByWwn(this.sysfsRoot, a.wwnn, a.wwpn);
    if (existing) {
      if (a.parent) await this.checkParent(existing, a.parent);
      return;
    }
    const parent = await this.findParent(a);
    const wwnn = normalizeWwn(a.wwnn, 'pool.source.adapter.wwnn');
    const wwpn = normalizeWwn(a.wwpn, 'pool.source.adapter.wwpn');
    await manageVport(this.sysfsRoot, parent, wwpn, wwnn, 'vport_create');
    try {
      await waitForFcHost(this.sysfsRoot, wwnn, wwpn, this.options.vportWaitMs ?? 10_000, this.options.vportPollMs ?? 100, ctx.signal);
    } catch (err) {
      // a failed start leaves nothing behind
      await manageVport(this.sysfsRoot, parent, wwpn, wwnn, 'vport_delete').catch(() => undefined);
      throw err;
    }
    this.createdVports.set(this.poolKey(ctx.pool), `${wwpn}:${wwnn}`);
    // libvirt: the vHBA is ours, so its removal is managed (it saves managed='yes')
    a.managed = Tristate.TRISTATE_YES;
  }

  /** libvirt checkParent: the existing vHBA must hang below the named parent. */
  private async checkParent(hostName: string, parent: string): Promise<void> {
    const pn = scsiHostNumber(parent, 'pool.source.adapter.parent');
    if (!(await isFcHost(this.sysfsRoot, pn))) {
      throw new FailedPreconditionError(`parent '${printable(parent)}' is not an fc_host for the wwnn/wwpn`);
    }
    const actual = await vhbaParent(this.sysfsRoot, hostName);
    if (actual !== `host${pn}` && hostName !== `host${pn}`) {
      throw new FailedPreconditionError(
        `parent attribute '${printable(parent)}' does not match parent '${actual ? `scsi_${actual}` : 'none'}' determined for the '${hostName}' wwnn/wwpn lookup`,
      );
    }
  }

  /** The HBA to create the vHBA on: parent, parent_wwnn/wwpn, parent_fabric_wwn, or any capable one. */
  private async findParent(a: SourceAdapter): Promise<number> {
    let name: string | undefined;
    let how: string;
    if (a.parent) {
      name = `host${scsiHostNumber(a.parent, 'pool.source.adapter.parent')}`;
      how = `parent '${a.parent}'`;
    } else if (a.parentWwnn && a.parentWwpn) {
      name = await findFcHostByWwn(this.sysfsRoot, a.parentWwnn, a.parentWwpn);
      how = `parent_wwnn='${a.parentWwnn}' parent_wwpn='${a.parentWwpn}'`;
    } else if (a.parentFabricWwn) {
      name = await findFcHostByFabricWwn(this.sysfsRoot, a.parentFabricWwn);
      how = `parent_fabric_wwn='${a.parentFabricWwn}'`;
    } else {
      name = await findVportHost(this.sysfsRoot);
      how = 'any online NPIV-capable fc_host with free vports';
    }
    if (!name) throw new FailedPreconditionError(`cannot create the vHBA: no fc_host found for ${how}`);
    const n = scsiHostNumber(name);
    if (!(await this.hostExists(n))) {
      throw new FailedPreconditionError(
        `cannot create the vHBA: ${how} specified for the vHBA does not exist on this host (no ${join(scsiHostClassDir(this.sysfsRoot), name)})`,
      );
    }
    if (!(await isVportCapable(this.sysfsRoot, n))) {
      throw new FailedPreconditionError(`cannot create the vHBA: ${name} (${how}) is not vport capable (no vport_create)`);
    }
    return n;
  }

  /** Rescans the host and lists its disk and CD-ROM LUs (libvirt virStorageBackendSCSIRefreshPool). */
  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const target = checkScsiTargetDir(ctx.pool.target?.path ?? '');
    const a = checkScsiAdapter(ctx.pool);
    const host = await this.requireHost(ctx.pool);
    await triggerScsiRescan(this.sysfsRoot, host);
    if (this.options.udevadm !== null) {
      await ctx.runner.run([this.options.udevadm ?? 'udevadm', 'settle'], { signal: ctx.signal, okExitCodes: [0, 1] }).catch(() => undefined);
    }
    const volumes = await scanScsiHost(this.sysfsRoot, host, target, {
      devRoot: this.devRoot,
      runner: ctx.runner,
      keySource: this.options.keySource,
      scsiIdPath: this.options.scsiIdPath,
      npiv: a.type === AdapterType.ADAPTER_TYPE_FC_HOST,
      stableDirWaitMs: this.options.stableDirWaitMs,
      signal: ctx.signal,
    });
    return { runtime: lunPoolSizes(volumes), volumes };
  }

  /** fc_host: deletes the vHBA when it is managed (or this agent created it); else nothing. */
  async stopPool(ctx: PoolContext): Promise<void> {
    const a = checkScsiAdapter(ctx.pool);
    if (a.type !== AdapterType.ADAPTER_TYPE_FC_HOST) return;
    const key = this.poolKey(ctx.pool);
    if (a.managed !== Tristate.TRISTATE_YES && !this.createdVports.has(key)) return;
    const name = await findFcHostByWwn(this.sysfsRoot, a.wwnn, a.wwpn);
    if (!name) {
      this.createdVports.delete(key); // already gone
      return;
    }
    let parent: number;
    if (a.parent) {
      // the parent is the host itself: a pool on a physical HBA, no vHBA to delete
      if (`host${scsiHostNumber(a.parent)}` === name) return;
      parent = scsiHostNumber(a.parent, 'pool.source.adapter.parent');
    } else {
      const p = await vhbaParent(this.sysfsRoot, name);
      if (!p) return; // a physical HBA
      parent = scsiHostNumber(p);
    }
    await manageVport(this.sysfsRoot, parent, normalizeWwn(a.wwpn, 'pool.source.adapter.wwpn'), normalizeWwn(a.wwnn, 'pool.source.adapter.wwnn'), 'vport_delete');
    this.createdVports.delete(key);
  }

  // ---------------------------------------------------------------- volumes

  /** The volume's device as this process opens it (its path must be in the pool's target dir). */
  devicePath(pool: PoolDefinition, volume: VolumeDefinition): string {
    return lunDevicePath(pool, volume, this.devRoot);
  }

  /** The check that a device opened for the volume is still its LU's (scsi-scan.ts lunIdentity). */
  private async identity(pool: PoolDefinition, volume: VolumeDefinition): Promise<DeviceIdentity> {
    return lunIdentity(this.sysfsRoot, await this.requireHost(pool), volume);
  }

  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    const path = this.devicePath(ctx.pool, volume);
    const identity = await this.identity(ctx.pool, volume);
    if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) {
      await checkIdentity(path, identity);
      return discardLun(ctx, path, this.options.blkdiscard ?? 'blkdiscard');
    }
    await wipeBlock(ctx, path, algorithm, this.options.scrub, identity);
  }

  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, data, await this.identity(ctx.pool, volume));
  }

  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    yield* downloadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, await this.identity(ctx.pool, volume));
  }
}

/**
 * The block device of a LUN volume, mapped into devRoot: its path must lie directly in
 * the pool's target directory (as refresh reported it); anything else is INVALID_ARGUMENT.
 */
export function lunDevicePath(pool: PoolDefinition, volume: VolumeDefinition, devRoot: string): string {
  const target = checkScsiTargetDir(pool.target?.path ?? '');
  const path = volume.target?.path ?? '';
  const rest = path.startsWith(`${target}/`) ? path.slice(target.length + 1) : undefined;
  if (!rest || rest.includes('\0') || rest.split('/').some((p) => p === '..' || p === '.' || p === '')) {
    throw new InvalidArgumentError('volume', `volume '${printable(volume.name)}' has path '${printable(path, 200)}' outside the pool target ${target}`);
  }
  if (target !== '/dev' && rest.includes('/')) {
    throw new InvalidArgumentError('volume', `volume '${printable(volume.name)}' path '${printable(path, 200)}' is not an entry of ${target}`);
  }
  return devFsPath(devRoot, path);
}

/** trim: `blkdiscard -- DEV` (libvirt has no trim for local volumes; a LUN often can discard). */
export async function discardLun(ctx: PoolContext, path: string, blkdiscard: string): Promise<void> {
  try {
    await ctx.runner.run([blkdiscard, '--', path], { signal: ctx.signal, timeoutMs: 0 });
  } catch (err) {
    if (err instanceof CommandFailedError && /not supported/i.test(err.stderr)) {
      throw new UnimplementedError(`wipe algorithm 'trim' is not supported by this device: ${err.stderr.trim()}`);
    }
    throw asCisternError(err);
  }
}

export const scsiBackend = new ScsiBackend();
