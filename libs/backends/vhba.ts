// Fibre Channel hosts and NPIV virtual HBAs in sysfs: libvirt's virvhba.c
// (virVHBAGetHostByWWN, virVHBAManageVport, virVHBAFindVportHost,
// virVHBAGetHostByFabricWWN, virVHBAPathExists) and virscsihost.c
// (virSCSIHostFindByPCI). All paths are below a sysfs root so tests use fixtures.
//
//   <sysfs>/class/fc_host/hostN/{node_name,port_name,fabric_name,port_state,
//                               max_npiv_vports,npiv_vports_inuse,vport_create,vport_delete}
//   <sysfs>/class/scsi_host/hostN -> ../../devices/pci0000:00/0000:00:1f.2/host0/scsi_host/host0
//   a vHBA: .../hostP/vport-P:0-0/hostN/fc_host/hostN (P = its parent HBA)
import { constants as fsc } from 'node:fs';
import { access, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors/errors.js';
import { printable } from '../api/names.js';

export type VportOperation = 'vport_create' | 'vport_delete';

export function fcHostClassDir(sysfsRoot: string): string {
  return join(sysfsRoot, 'class', 'fc_host');
}

export function scsiHostClassDir(sysfsRoot: string): string {
  return join(sysfsRoot, 'class', 'scsi_host');
}

/** libvirt's virValidateWWN: 16 hex digits, an optional 0x; returned lower case without 0x. */
export function normalizeWwn(value: string, field: string): string {
  const m = /^(?:0x)?([0-9a-fA-F]{16})$/.exec(value);
  if (!m) throw new InvalidArgumentError(field, `'${printable(value)}' is not a valid WWN: expected 16 hexadecimal digits (optionally 0x-prefixed)`);
  return m[1]!.toLowerCase();
}

async function readTrim(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path, fsc.F_OK).then(
    () => true,
    () => false,
  );
}

/** A WWN as sysfs prints it (0x-prefixed hex) -> lower-case hex. */
function sysfsWwn(text: string | undefined): string | undefined {
  if (!text) return undefined;
  return text.replace(/^0x/i, '').toLowerCase();
}

async function hostNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((n) => /^host\d+$/.test(n))
      .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  } catch {
    return [];
  }
}

/** virVHBAPathExists: is hostN an fc_host? */
export async function isFcHost(sysfsRoot: string, hostNumber: number): Promise<boolean> {
  return exists(join(fcHostClassDir(sysfsRoot), `host${hostNumber}`));
}

/** The fc_host (`hostN`) whose node_name and port_name are these WWNs (virVHBAGetHostByWWN). */
export async function findFcHostByWwn(sysfsRoot: string, wwnn: string, wwpn: string): Promise<string | undefined> {
  const dir = fcHostClassDir(sysfsRoot);
  const nn = wwnn.replace(/^0x/i, '').toLowerCase();
  const pn = wwpn.replace(/^0x/i, '').toLowerCase();
  for (const name of await hostNames(dir)) {
    if (sysfsWwn(await readTrim(join(dir, name, 'node_name'))) !== nn) continue;
    if (sysfsWwn(await readTrim(join(dir, name, 'port_name'))) !== pn) continue;
    return name;
  }
  return undefined;
}

/** Path of a host's vport_create / vport_delete file: fc_host first, then scsi_host (virVHBAManageVport). */
export async function vportFile(sysfsRoot: string, hostNumber: number, op: VportOperation): Promise<string | undefined> {
  for (const p of [join(fcHostClassDir(sysfsRoot), `host${hostNumber}`, op), join(scsiHostClassDir(sysfsRoot), `host${hostNumber}`, op)]) {
    if (await exists(p)) return p;
  }
  return undefined;
}

/** Can hostN create vports (has vport_create)? */
export async function isVportCapable(sysfsRoot: string, hostNumber: number): Promise<boolean> {
  return (await vportFile(sysfsRoot, hostNumber, 'vport_create')) !== undefined;
}

/**
 * The first vport-capable fc_host that is online and has free NPIV vports
 * (virVHBAFindVportHost): for fc_host pools that name no parent.
 */
export async function findVportHost(sysfsRoot: string): Promise<string | undefined> {
  const dir = fcHostClassDir(sysfsRoot);
  for (const name of await hostNames(dir)) {
    const n = Number(name.slice(4));
    if (!(await isVportCapable(sysfsRoot, n))) continue;
    if ((await readTrim(join(dir, name, 'port_state'))) !== 'Online') continue;
    const max = Number((await readTrim(join(dir, name, 'max_npiv_vports'))) ?? NaN);
    const inUse = Number((await readTrim(join(dir, name, 'npiv_vports_inuse'))) ?? NaN);
    if (!Number.isFinite(max) || !Number.isFinite(inUse) || max <= inUse) continue;
    return name;
  }
  return undefined;
}

/** The vport-capable fc_host on the fabric with this WWN (virVHBAGetHostByFabricWWN). */
export async function findFcHostByFabricWwn(sysfsRoot: string, fabricWwn: string): Promise<string | undefined> {
  const dir = fcHostClassDir(sysfsRoot);
  const want = fabricWwn.replace(/^0x/i, '').toLowerCase();
  for (const name of await hostNames(dir)) {
    if (sysfsWwn(await readTrim(join(dir, name, 'fabric_name'))) !== want) continue;
    if (!(await isVportCapable(sysfsRoot, Number(name.slice(4))))) continue;
    return name;
  }
  return undefined;
}

/**
 * The parent HBA of a vHBA, from its sysfs device path (…/hostP/vport-P:C-N/hostN/…),
 * as `hostP`; undefined for a physical HBA (no vport in its path).
 */
export async function vhbaParent(sysfsRoot: string, hostName: string): Promise<string | undefined> {
  let real: string;
  try {
    real = await realpath(join(scsiHostClassDir(sysfsRoot), hostName));
  } catch {
    try {
      real = await realpath(join(fcHostClassDir(sysfsRoot), hostName));
    } catch {
      return undefined;
    }
  }
  const parts = real.split('/');
  const own = parts.indexOf(hostName);
  for (let i = own - 1; i >= 0; i--) {
    const m = /^vport-(\d+):\d+-\d+$/.exec(parts[i]!);
    if (m) return `host${m[1]}`;
    if (/^host\d+$/.test(parts[i]!)) return undefined;
  }
  return undefined;
}

/**
 * Writes "wwpn:wwnn" to the parent's vport_create or vport_delete (virVHBAManageVport).
 * FAILED_PRECONDITION when the parent cannot do vport operations or the kernel refuses.
 */
export async function manageVport(sysfsRoot: string, parentHost: number, wwpn: string, wwnn: string, op: VportOperation): Promise<void> {
  const path = await vportFile(sysfsRoot, parentHost, op);
  if (!path) {
    throw new FailedPreconditionError(`vport operation '${op}' is not supported for host${parentHost}: it is not an NPIV-capable fc_host`);
  }
  const value = `${wwpn}:${wwnn}`;
  try {
    await writeFile(path, value, { flag: fsc.O_WRONLY });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new FailedPreconditionError(`write of '${value}' to '${path}' during ${op === 'vport_create' ? 'vport create' : 'vport delete'} failed: ${code}`);
  }
}

/**
 * libvirt's virSCSIHostFindByPCI: the scsi_host whose sysfs device path contains the
 * PCI address (DDDD:BB:SS.F) and whose unique_id is `uniqueId`.
 */
export async function findScsiHostByPci(sysfsRoot: string, pciAddress: string, uniqueId: number): Promise<string | undefined> {
  const dir = scsiHostClassDir(sysfsRoot);
  for (const name of await hostNames(dir)) {
    let real: string;
    try {
      real = await realpath(join(dir, name));
    } catch {
      continue;
    }
    if (!real.includes(pciAddress)) continue;
    const text = await readTrim(join(dir, name, 'unique_id'));
    if (text === undefined || !/^\d+$/.test(text)) continue;
    if (Number(text) === uniqueId) return name;
  }
  return undefined;
}

/** DDDD:BB:SS.F as libvirt prints a PCI address (%04x:%02x:%02x.%01x). */
export function formatPciAddress(a: { domain: number; bus: number; slot: number; function: number }): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  return `${h(a.domain, 4)}:${h(a.bus, 2)}:${h(a.slot, 2)}.${h(a.function, 1)}`;
}

/** Waits until findFcHostByWwn sees the host (the kernel creates it after vport_create). */
export async function waitForFcHost(
  sysfsRoot: string,
  wwnn: string,
  wwpn: string,
  timeoutMs: number,
  pollMs: number,
  signal?: AbortSignal,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  // a cancelled request says so: the timeout's NOT_FOUND would claim a wait that did not happen
  const cancelled = () => new CancelledError(`cancelled while waiting for the fc_host with wwnn='${wwnn}' and wwpn='${wwpn}' to appear after the vport was created`);
  for (;;) {
    const found = await findFcHostByWwn(sysfsRoot, wwnn, wwpn);
    if (found) return found;
    if (signal?.aborted) throw cancelled();
    if (Date.now() >= deadline) break;
    await sleep(pollMs, undefined, { signal }).catch(() => {
      throw cancelled();
    });
  }
  throw new NotFoundError(`no fc_host with wwnn='${wwnn}' and wwpn='${wwpn}' appeared within ${timeoutMs} ms after the vport was created`);
}
