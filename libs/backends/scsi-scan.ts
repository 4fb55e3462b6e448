// The SCSI logical-unit scan shared by the scsi and iscsi pools: libvirt's
// virStorageBackendSCSIFindLUs / processLU / virStorageBackendSCSINewLun
// (storage_backend_scsi.c) and virStorageBackendStablePath (storage_util.c).
//
// Walks <sysfs>/bus/scsi/devices for the entries `H:B:T:L` of one SCSI host, keeps
// disks (type 0) and CD-ROMs (type 5), finds each LU's block device (block/ subdir),
// the stable path of that device in the pool's target directory (the entry there that
// resolves to the same inode as /dev/NAME), its size (sysfs `size` in 512-byte sectors)
// and its key:
//   - `/lib/udev/scsi_id --replace-whitespace --whitelisted --device PATH` through the
//     command runner when that program exists (libvirt's virStorageFileGetSCSIKey), or
//     `--export` and ID_SERIAL + "_PORT" + ID_TARGET_PORT for vHBA (NPIV) LUs
//     (virStorageFileGetNPIVKey);
//   - otherwise from sysfs, in scsi_id's own format: `wwid` (naa.X -> 3X, eui.X -> 2X,
//     t10.X -> 1X, name string -> 8X) or the VPD page 0x83 designators (`vpd_pg83`);
//   - otherwise the volume path (libvirt's last resort).
//
// The sysfs root and the /dev root are parameters so the whole scan runs against a
// fixture tree; volume paths are always reported as the host sees them (/dev/...).
import { constants as fsc, type BigIntStats } from 'node:fs';
import { access, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VolumeType, type VolumeDefinition } from '../proto/cistern/v1/storage.js';
import { CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { scsiHostNumberOf } from '../api/scsi-host-name.js';
import type { CommandRunner } from './runner.js';
import { permsOf, timestampsOf } from './stat-fields.js';
import { plainTarget } from './volume-target.js';
import { splitDevT } from './device-number.js';
import { mapLimit } from './map-limit.js';
import { DEFAULT_DEV_ROOT } from './host-roots.js';
import { isStableTargetDir } from './pool-kinds.js';

/** LUs read (and scsi_id run for) at the same time during a scan. */
const LU_SCAN_PARALLEL = 8;

/** SCSI peripheral device types kept as volumes (libvirt VIR_STORAGE_DEVICE_TYPE_DISK / _ROM). */
export const SCSI_TYPE_DISK = 0;
export const SCSI_TYPE_ROM = 5;

export const SCSI_ID_PROGRAM = '/lib/udev/scsi_id';

export interface ScsiScanOptions {
  /** Where the host's /dev lives (default '/dev'); tests point it at a fixture tree. */
  devRoot?: string;
  /** Runs scsi_id (and nothing else). Without one, keys come from sysfs. */
  runner?: CommandRunner;
  /**
   * Where the key comes from. 'auto' (default): scsi_id when a runner is given and
   * `scsiIdPath` exists on this host, else sysfs. 'scsi_id': always scsi_id through the
   * runner (tests with a recording runner). 'sysfs': never run a program.
   */
  keySource?: 'auto' | 'scsi_id' | 'sysfs';
  /** scsi_id program path (default /lib/udev/scsi_id). */
  scsiIdPath?: string;
  /** LUs behind a vHBA (fc_host pools): key = ID_SERIAL_PORT<ID_TARGET_PORT> as libvirt. */
  npiv?: boolean;
  /** How long to wait for a missing stable target directory (default STABLE_DIR_WAIT_MS). */
  stableDirWaitMs?: number;
  signal?: AbortSignal;
}

/** One SCSI address host:bus:target:lun. */
export interface ScsiAddress {
  host: number;
  bus: number;
  target: number;
  lun: number;
}

/** What the scan found for one LU, before it became a volume (exposed for diagnostics and tests). */
export interface ScsiLun extends ScsiAddress {
  type: number;
  /** Block device name under /dev ('sdb', 'cciss/c0d0'). */
  blockDevice: string;
  /** /dev/NAME as the host sees it. */
  devPath: string;
}

// ------------------------------------------------------------------ paths

/** Maps a host path under /dev into devRoot (identity when devRoot is '/dev'). */
export function devFsPath(devRoot: string, path: string): string {
  if (devRoot === DEFAULT_DEV_ROOT) return path;
  if (path === '/dev') return devRoot;
  if (path.startsWith('/dev/')) return join(devRoot, path.slice(5));
  return path;
}

/** libvirt's virStorageBackendPoolPathIsStable (pool-kinds.ts, which the coordinator's lookups share). */
export { isStableTargetDir };

/** The pool target must be /dev or a stable directory below it (libvirt virStorageBackendSCSINewLun). */
export function checkScsiTargetDir(targetDir: string): string {
  const p = targetDir.length > 1 ? targetDir.replace(/\/+$/, '') : targetDir;
  if (p === '/dev' || isStableTargetDir(p)) return p;
  throw new InvalidArgumentError(
    'pool.target.path',
    `unable to use target path '${printable(targetDir, 200)}' for SCSI LUNs: use /dev or a stable directory under /dev such as /dev/disk/by-path or /dev/disk/by-id`,
  );
}

/** The sysfs scan file of a SCSI host. */
export function scsiHostScanPath(sysfsRoot: string, hostNumber: number): string {
  return join(sysfsRoot, 'class', 'scsi_host', `host${hostNumber}`, 'scan');
}

/**
 * libvirt's virSCSIHostGetNumber: 'host5', 'scsi_host5' or 'fc_host5' -> 5.
 * INVALID_ARGUMENT for any other form.
 */
export function scsiHostNumber(name: string, field = 'pool.source.adapter.name'): number {
  const n = scsiHostNumberOf(name);
  if (n === undefined) {
    throw new InvalidArgumentError(field, `invalid adapter name '${printable(name)}' for a SCSI pool: expected hostN, scsi_hostN or fc_hostN (e.g. host0)`);
  }
  return n;
}

/**
 * Asks the kernel to scan every channel, target and LUN of the host: writes '- - -'
 * to <sysfs>/class/scsi_host/hostN/scan (libvirt virStorageBackendSCSITriggerRescan).
 */
export async function triggerScsiRescan(sysfsRoot: string, hostNumber: number): Promise<void> {
  const path = scsiHostScanPath(sysfsRoot, hostNumber);
  try {
    await writeFile(path, '- - -', { flag: fsc.O_WRONLY });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new NotFoundError(`SCSI host host${hostNumber} does not exist on this host (no ${path})`);
    }
    throw new FailedPreconditionError(`cannot rescan SCSI host host${hostNumber}: write of '- - -' to ${path} failed (${code ?? String(err)})`);
  }
}

// ------------------------------------------------------------------ sysfs readers

async function readTrim(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** `H:B:T:L` -> address, undefined for other entries (host0, target0:0:0). */
export function parseScsiAddress(name: string): ScsiAddress | undefined {
  const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(name);
  if (!m) return undefined;
  return { host: Number(m[1]), bus: Number(m[2]), target: Number(m[3]), lun: Number(m[4]) };
}

/**
 * The block device of an LU: the single entry of its `block/` directory (current
 * kernels) or an old-style `block:NAME` entry. '!' in a sysfs name is '/' under /dev.
 */
async function findBlockDevice(luDir: string): Promise<string | undefined> {
  try {
    const names = (await readdir(join(luDir, 'block'))).sort();
    if (names.length > 0) return names[0];
  } catch {
    /* old layout or no block device (yet) */
  }
  try {
    const old = (await readdir(luDir)).filter((n) => n.startsWith('block:')).sort();
    if (old.length > 0) return old[0]!.slice('block:'.length);
  } catch {
    /* gone */
  }
  return undefined;
}

/** Device size from sysfs `size` (512-byte sectors), under the LU or /sys/class/block. */
async function blockSizeBytes(sysfsRoot: string, luDir: string, blockName: string): Promise<bigint | undefined> {
  const candidates = [join(luDir, 'block', blockName, 'size'), join(luDir, `block:${blockName}`, 'size'), join(sysfsRoot, 'class', 'block', blockName, 'size')];
  for (const p of candidates) {
    const text = await readTrim(p);
    if (text !== undefined && /^\d+$/.test(text)) return BigInt(text) * 512n;
  }
  return undefined;
}

// ------------------------------------------------------------------ keys

/** scsi_id's prefix for a designator type (SCSI SPC-4 designator types). */
function designatorPrefix(type: number): string | undefined {
  switch (type) {
    case 3:
      return '3'; // NAA
    case 2:
      return '2'; // EUI-64
    case 1:
      return '1'; // T10 vendor id
    case 8:
      return '8'; // SCSI name string
  }
  return undefined;
}

/** sysfs `wwid` text (naa./eui./t10./other) in scsi_id --whitelisted --replace-whitespace form. */
export function keyFromWwid(wwid: string): string | undefined {
  const w = wwid.replace(/\0+$/, '').trim();
  if (!w) return undefined;
  const m = /^(naa|eui|t10)\.(.*)$/i.exec(w);
  if (!m) return `8${w.replace(/\s+/g, '_')}`;
  const kind = m[1]!.toLowerCase();
  const body = m[2]!;
  if (kind === 'naa') return `3${body.toLowerCase()}`;
  if (kind === 'eui') return `2${body.toLowerCase()}`;
  return `1${body.trim().replace(/\s+/g, '_')}`;
}

/**
 * The LU's identifier from VPD page 0x83 (binary, as sysfs `vpd_pg83` holds it), in
 * scsi_id's form: NAA preferred, then EUI-64, T10 vendor id, SCSI name string; only
 * designators associated with the LU itself (association 0).
 */
export function keyFromVpdPage83(page: Buffer): string | undefined {
  if (page.length < 4 || page[1] !== 0x83) return undefined;
  const end = Math.min(page.length, 4 + page.readUInt16BE(2));
  const found = new Map<number, string>();
  let off = 4;
  while (off + 4 <= end) {
    const codeSet = page[off]! & 0x0f;
    const association = (page[off + 1]! >> 4) & 0x03;
    const type = page[off + 1]! & 0x0f;
    const len = page[off + 3]!;
    const body = page.subarray(off + 4, Math.min(end, off + 4 + len));
    off += 4 + len;
    if (association !== 0 || found.has(type)) continue;
    const prefix = designatorPrefix(type);
    if (!prefix) continue;
    if (type === 3 || type === 2 || codeSet === 1) {
      found.set(type, prefix + body.toString('hex'));
    } else {
      const text = body.toString('latin1').replace(/\0+$/, '').trim().replace(/\s+/g, '_');
      if (text) found.set(type, prefix + text);
    }
  }
  for (const t of [3, 2, 1, 8]) {
    const k = found.get(t);
    if (k) return k;
  }
  return undefined;
}

/** Key of an NPIV LU from `scsi_id --export` output (libvirt virStorageFileGetNPIVKey). */
export function npivKeyFromExport(output: string): string | undefined {
  const serial = /^ID_SERIAL=(.*)$/m.exec(output)?.[1]?.trim();
  const port = /^ID_TARGET_PORT=(.*)$/m.exec(output)?.[1]?.trim();
  if (serial && port) return `${serial}_PORT${port}`;
  return undefined;
}

async function keyFromScsiId(runner: CommandRunner, program: string, devFs: string, npiv: boolean, signal?: AbortSignal): Promise<string | undefined> {
  const argv = npiv
    ? [program, '--replace-whitespace', '--whitelisted', '--export', '--device', devFs]
    : [program, '--replace-whitespace', '--whitelisted', '--device', devFs];
  try {
    const r = await runner.run(argv, { signal, okExitCodes: [0, 1], timeoutMs: 30_000 });
    if (r.exitCode !== 0) return undefined;
    if (npiv) return npivKeyFromExport(r.stdout);
    const line = r.stdout.split('\n')[0]!.trim();
    return line || undefined;
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    return undefined;
  }
}

async function keyFromSysfs(luDir: string): Promise<string | undefined> {
  const wwid = await readTrim(join(luDir, 'wwid'));
  const k = wwid ? keyFromWwid(wwid) : undefined;
  if (k) return visibleKey(k);
  try {
    const fromPage = keyFromVpdPage83(await readFile(join(luDir, 'vpd_pg83')));
    return fromPage === undefined ? undefined : visibleKey(fromPage);
  } catch {
    return undefined;
  }
}

/**
 * A key as the target's designators spell it, with every byte outside printable ASCII (and
 * the backslash) written \xNN, as udev escapes names: a target chooses these bytes, and
 * terminal escapes in a key would reach events, logs and `vol-key` output as they are.
 */
export function visibleKey(key: string): string {
  return key.replace(/[^\x21-\x5b\x5d-\x7e]/gu, (c) =>
    [...Buffer.from(c, c.charCodeAt(0) <= 0xff ? 'latin1' : 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join(''),
  );
}

// ------------------------------------------------------------------ stable paths

/** How long a scan waits for a missing stable target directory (libvirt: 50 tries 100 ms apart). */
export const STABLE_DIR_WAIT_MS = 5_000;
const STABLE_DIR_POLL_MS = 100;

/**
 * dev:ino -> first (sorted) entry name of the directory resolving to it. A directory
 * that does not exist is waited for (udev may not have made /dev/disk/by-* yet), then,
 * as libvirt's virStorageBackendStablePath, an error: a mistyped target path must not
 * look like a pool without LUNs.
 */
async function stableLinkIndex(dirFs: string, shown: string, waitMs: number, signal?: AbortSignal): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const deadline = Date.now() + waitMs;
  let names: string[];
  for (;;) {
    try {
      names = (await readdir(dirFs)).sort();
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && Date.now() < deadline) {
        await sleep(STABLE_DIR_POLL_MS, undefined, { signal }).catch(() => {
          throw new CancelledError('SCSI LU scan cancelled');
        });
        continue;
      }
      throw new FailedPreconditionError(
        code === 'ENOENT'
          ? `cannot read the pool target directory ${shown}: it does not exist although the host has LUs (udev makes /dev/disk/by-* links for them; check the pool's target path)`
          : `cannot read the pool target directory ${shown}: ${code ?? String(err)}`,
      );
    }
  }
  const stats = await Promise.all(names.map((n) => stat(join(dirFs, n), { bigint: true }).catch(() => undefined)));
  names.forEach((n, i) => {
    const st = stats[i];
    if (!st || (!st.isBlockDevice() && !st.isFile() && !st.isCharacterDevice())) return;
    const id = `${st.dev}:${st.ino}`;
    if (!index.has(id)) index.set(id, n);
  });
  return index;
}

// ------------------------------------------------------------------ scan

/**
 * The LUs of one SCSI host that are disks or CD-ROMs and have a block device, sorted by
 * address. Entries of other types and LUs without a block device are skipped (as libvirt).
 */
export async function listScsiLuns(sysfsRoot: string, hostNumber: number): Promise<ScsiLun[]> {
  const devicesDir = join(sysfsRoot, 'bus', 'scsi', 'devices');
  let names: string[];
  try {
    names = await readdir(devicesDir);
  } catch (err) {
    throw new FailedPreconditionError(`cannot list SCSI devices in ${devicesDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const addrs = names
    .map((n) => ({ n, a: parseScsiAddress(n) }))
    .filter((x): x is { n: string; a: ScsiAddress } => x.a !== undefined && x.a.host === hostNumber);
  const luns = await Promise.all(
    addrs.map(async ({ n, a }): Promise<ScsiLun | undefined> => {
      const luDir = join(devicesDir, n);
      const typeText = await readTrim(join(luDir, 'type'));
      if (typeText === undefined) return undefined; // LU went away during the scan
      if (!/^\d+$/.test(typeText)) {
        throw new FailedPreconditionError(`cannot determine the device type of SCSI LU ${n}: '${printable(typeText)}' in ${join(luDir, 'type')}`);
      }
      const type = Number(typeText);
      if (type !== SCSI_TYPE_DISK && type !== SCSI_TYPE_ROM) return undefined;
      const block = await findBlockDevice(luDir);
      if (!block) return undefined;
      const blockDevice = block.replace(/!/g, '/');
      return { ...a, type, blockDevice, devPath: `/dev/${blockDevice}` };
    }),
  );
  return luns
    .filter((l): l is ScsiLun => l !== undefined)
    .sort((x, y) => x.bus - y.bus || x.target - y.target || x.lun - y.lun);
}

/**
 * libvirt's LU scan of one SCSI host as volumes: name `unit:B:T:L`, type block, path =
 * the stable path of the device in `targetDir` (or /dev/NAME when targetDir is /dev),
 * capacity = allocation = physical = device size, key = the LU's unique id. LUs with no
 * stable link in `targetDir` are left out (libvirt does the same). Does not rescan:
 * call triggerScsiRescan (scsi) or the iSCSI session rescan first.
 *
 * Throws INVALID_ARGUMENT when targetDir is not /dev or under /dev/, FAILED_PRECONDITION
 * when sysfs cannot be read or, the host having LUs, targetDir still does not exist after
 * `stableDirWaitMs`.
 */
export async function scanScsiHost(
  sysfsRoot: string,
  hostNumber: number,
  targetDir: string,
  options: ScsiScanOptions = {},
): Promise<VolumeDefinition[]> {
  const target = checkScsiTargetDir(targetDir);
  const devRoot = options.devRoot ?? DEFAULT_DEV_ROOT;
  const luns = await listScsiLuns(sysfsRoot, hostNumber);
  if (luns.length === 0) return [];
  if (options.signal?.aborted) throw new CancelledError('SCSI LU scan cancelled');

  const stable = target !== '/dev';
  const index = stable
    ? await stableLinkIndex(devFsPath(devRoot, target), target, options.stableDirWaitMs ?? STABLE_DIR_WAIT_MS, options.signal)
    : undefined;
  const scsiIdPath = options.scsiIdPath ?? SCSI_ID_PROGRAM;
  let useScsiId = false;
  if (options.runner && options.keySource !== 'sysfs') {
    if (options.keySource === 'scsi_id') useScsiId = true;
    else useScsiId = await access(scsiIdPath, fsc.X_OK).then(() => true, () => false);
  }
  const devicesDir = join(sysfsRoot, 'bus', 'scsi', 'devices');

  // each LU may run scsi_id: a bounded number at a time, whatever a target presents
  const vols = await mapLimit(luns, LU_SCAN_PARALLEL, async (lu): Promise<VolumeDefinition | undefined> => {
    const luDir = join(devicesDir, `${lu.host}:${lu.bus}:${lu.target}:${lu.lun}`);
    const devFs = devFsPath(devRoot, lu.devPath);
    let st;
    try {
      st = await stat(devFs, { bigint: true });
    } catch {
      return undefined; // no device node (yet): udev has not created it
    }
    let path = lu.devPath;
    if (index) {
      const name = index.get(`${st.dev}:${st.ino}`);
      if (!name) return undefined; // no stable path for this device in the target dir
      path = `${target}/${name}`;
    }
    const size = (await blockSizeBytes(sysfsRoot, luDir, lu.blockDevice.replace(/\//g, '!'))) ?? (st.isFile() ? st.size : 0n);
    let key: string | undefined;
    if (useScsiId) key = await keyFromScsiId(options.runner!, scsiIdPath, devFsPath(devRoot, path), options.npiv ?? false, options.signal);
    if (!key && !options.npiv) key = await keyFromSysfs(luDir);
    if (!key) key = path;
    const pst = path === lu.devPath ? st : await stat(devFsPath(devRoot, path), { bigint: true }).catch(() => st);
    return {
      type: VolumeType.VOLUME_TYPE_BLOCK,
      name: `unit:${lu.bus}:${lu.target}:${lu.lun}`,
      key,
      capacity: size,
      allocation: size,
      physical: size,
      sourceDevices: [],
      target: plainTarget(path, '', permsOf(pst!), timestampsOf(pst!)),
      backingStore: undefined,
    };
  });
  return vols.filter((v): v is VolumeDefinition => v !== undefined);
}

/** Pool sizes from its LUs: capacity = allocation = sum, available = 0 (libvirt). */
export function lunPoolSizes(volumes: readonly VolumeDefinition[]): { capacity: bigint; allocation: bigint; available: bigint } {
  let capacity = 0n;
  let allocation = 0n;
  for (const v of volumes) {
    capacity += v.capacity ?? 0n;
    allocation += v.allocation ?? 0n;
  }
  return { capacity, allocation, available: 0n };
}

// ------------------------------------------------------------------ identity at data time

/**
 * The check a LUN volume's wipe, upload and download make of the device they opened by the
 * name the last refresh recorded (DeviceIdentity, block-data.ts). That name can lead to
 * another disk by now: a /dev/disk/by-id link comes from serials and designators the target
 * chooses (a LUN claiming a local disk's serial shares its link, and udev points it at
 * either), and a /dev/sdX name is reused once its LUN goes away. The device opened must be
 * the block device the kernel lists for the volume's LU (`unit:B:T:L` on SCSI host `host`)
 * now: its device number as /sys/bus/scsi/devices/H:B:T:L/block/NAME/dev gives it.
 */
export function lunIdentity(sysfsRoot: string, host: number, volume: VolumeDefinition): (opened: BigIntStats, path: string) => Promise<void> {
  return async (opened, path) => {
    const unit = /^unit:(\d+):(\d+):(\d+)$/.exec(volume.name);
    if (!unit) throw new FailedPreconditionError(`volume '${printable(volume.name)}' is not named after a SCSI unit (unit:BUS:TARGET:LUN)`);
    const address = `${host}:${unit[1]}:${unit[2]}:${unit[3]}`;
    const stale = (why: string) =>
      new FailedPreconditionError(`'${printable(path, 200)}' is not the device of volume '${printable(volume.name)}' (SCSI LU ${address}) any more: ${why}; refresh the pool`, {
        volume: volume.name,
        path,
      });
    const blockDir = join(sysfsRoot, 'bus', 'scsi', 'devices', address, 'block');
    const names = await readdir(blockDir).catch(() => [] as string[]);
    if (names.length !== 1) throw stale('the kernel lists no block device for that LU');
    const numbers = (await readFile(join(blockDir, names[0]!, 'dev'), 'utf8').catch(() => '')).trim();
    const m = /^(\d+):(\d+)$/.exec(numbers);
    if (!m) throw stale(`the kernel gives no device number for ${names[0]}`);
    const { major, minor } = splitDevT(opened.rdev);
    if (!opened.isBlockDevice() || major !== Number(m[1]) || minor !== Number(m[2])) {
      throw stale(`it is device ${major}:${minor}, the LU's is ${names[0]} (${m[1]}:${m[2]})`);
    }
  };
}
