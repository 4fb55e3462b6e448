// The iscsi pool (kernel initiator, open-iscsi): libvirt's storage_backend_iscsi.c.
//
//   <source><host name='H' port='P'/><device path='TARGET-IQN'/>
//           [<initiator><iqn name='CUSTOM-IQN'/></initiator>]
//           [<auth type='chap' username='U'><secret uuid='...'/></auth>]</source>
//   <target><path>/dev/disk/by-path</path></target>
//
// check: a session for the target exists (`iscsiadm --mode session`).
// start: unless a session exists: `--op new` node record, CHAP settings, login; a custom
//        initiator IQN gets its own iface (cistern-HASH, created once and reused).
// stop:  logout, when a session for the target exists (else nothing to do, as libvirt).
// refresh: rescan the session, wait for udev, find its SCSI host in sysfs, list the LUs with the scsi
//        pool's LU scan (scsi-scan.ts) under the pool's stable target directory.
// findPoolSources: sendtargets discovery (through the custom IQN's existing iface, if any).
//
// Everything needs the kernel initiator (iscsi_tcp module, iscsid running). Where it is
// missing, every operation answers FAILED_PRECONDITION naming what is missing before it
// runs a command.
import { access, readdir, readFile } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { PoolType, WipeAlgorithm, type PoolDefinition, type PoolSource, type VolumeDefinition } from '../proto/cistern/v1/storage.js';
import { CancelledError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import type { BackendContext, BackendOperation, PoolContext, RefreshResult, StorageBackend } from './backend.js';
import type { CommandRunner, RunOptions } from './runner.js';
import {
  ISCSIADM,
  ISCSI_ERR_NO_OBJS_FOUND,
  NODE_DIRS,
  discoveryArgv,
  ifaceListArgv,
  ifaceNameFor,
  ifaceNewArgv,
  ifaceSetInitiatorArgv,
  iscsiadmError,
  iscsiadmPortal,
  loginArgv,
  logoutArgv,
  nodeNewArgv,
  nodeUpdateArgv,
  parseDiscovery,
  parseIfaces,
  parseSessions,
  sessionListArgv,
  sessionRescanArgv,
  setNodePassword,
  type IscsiSession,
} from './iscsiadm.js';
import { checkIscsiHost, checkIscsiName, checkIscsiPort, targetSources } from './libiscsi-tools.js';
import { chapOf, type Chap } from './iscsi-direct.js';
import { hostRoots, type HostRoots } from './host-roots.js';
import { checkScsiTargetDir, lunIdentity, lunPoolSizes, scanScsiHost } from './scsi-scan.js';
import { discardLun, lunDevicePath } from './scsi.js';
import { checkIdentity, downloadBlock, uploadBlock, wipeBlock, type DeviceIdentity } from './block-data.js';

export interface IscsiBackendOptions {
  iscsiadm?: string;
  /** sysfs root (tests: a fixture tree). */
  sysfsRoot?: string;
  /** /dev root for the LU scan (tests: a fixture tree). */
  devRoot?: string;
  /** /proc root, where the iscsid control socket is looked for. */
  procRoot?: string;
  /** Node record directories (open-iscsi's, by distribution). */
  nodesDirs?: readonly string[];
  scrub?: string;
  blkdiscard?: string;
  /** Skip the kernel-support check (unit tests that pin command sequences). */
  assumeKernelSupport?: boolean;
  /** Where the LU scan's keys come from (see scsi-scan.ts). */
  keySource?: 'auto' | 'scsi_id' | 'sysfs';
  /** How long a refresh waits for a missing stable target directory (default 5 s, as libvirt). */
  stableDirWaitMs?: number;
  /** `udevadm` to settle after the session rescan (libvirt virWaitForDevices); null: do not wait. */
  udevadm?: string | null;
}

/** What an operation needs to talk to iscsiadm about the pool's target, checked. */
export interface IscsiTarget {
  host: string;
  port: number;
  target: string;
  /** HOST:PORT,1 */
  portal: string;
  initiatorIqn?: string;
  chap?: Chap;
}

export function iscsiTarget(pool: PoolDefinition, ctx: BackendContext, withAuth: boolean): IscsiTarget {
  const src = pool.source;
  const hosts = src?.hosts ?? [];
  if (hosts.length !== 1) throw new InvalidArgumentError('pool.source.hosts', `expected exactly 1 host for an iscsi pool, got ${hosts.length}`);
  const host = checkIscsiHost(hosts[0]!.name);
  const port = checkIscsiPort(hosts[0]!.port);
  const target = checkIscsiName(src?.devices?.[0]?.path ?? '', 'pool.source.devices[0].path');
  const initiatorIqn = src?.initiatorIqn ? checkIscsiName(src.initiatorIqn, 'pool.source.initiator_iqn') : undefined;
  const chap = withAuth ? chapOf(src, ctx) : undefined;
  return { host, port, target, portal: iscsiadmPortal(host, port), ...(initiatorIqn ? { initiatorIqn } : {}), ...(chap ? { chap } : {}) };
}

async function exists(path: string): Promise<boolean> {
  return access(path, fsc.F_OK).then(
    () => true,
    () => false,
  );
}

export class IscsiBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_ISCSI;
  readonly unsupportedReasons: Readonly<Partial<Record<BackendOperation, string>>> = {
    createVol: "its volumes are the target's LUNs, created on the storage array",
    buildVol: "its volumes are the target's LUNs, created on the storage array",
    buildVolFrom: "its volumes are the target's LUNs, created on the storage array",
    deleteVol: "its volumes are the target's LUNs, removed on the storage array",
  };

  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'checkPool',
    'startPool',
    'refreshPool',
    'stopPool',
    'wipeVol',
    'uploadVol',
    'downloadVol',
    'findPoolSources',
  ]);
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  private readonly iscsiadm: string;
  private readonly sysfs: string;
  private readonly roots: HostRoots;
  private readonly opts: IscsiBackendOptions;

  constructor(options: IscsiBackendOptions = {}) {
    this.opts = options;
    this.iscsiadm = options.iscsiadm ?? ISCSIADM;
    this.roots = hostRoots(options);
    this.sysfs = this.roots.sysfs;
  }

  // -------------------------------------------------------------- kernel support

  /**
   * What this host lacks for the kernel initiator, or undefined when it has it all:
   * the iscsi_tcp module (sysfs module/iscsi_tcp or class/iscsi_transport/tcp), the
   * iSCSI host class (class/iscsi_host), and a running iscsid (its control socket).
   */
  async missingKernelSupport(): Promise<string | undefined> {
    if (this.opts.assumeKernelSupport) return undefined;
    const missing: string[] = [];
    if (!(await this.hasIscsiTcp())) missing.push(`the iscsi_tcp kernel module is not loaded (no ${join(this.sysfs, 'module', 'iscsi_tcp')})`);
    if (!(await exists(join(this.sysfs, 'class', 'iscsi_host')))) missing.push(`the kernel has no iSCSI host class (no ${join(this.sysfs, 'class', 'iscsi_host')})`);
    let iscsid = false;
    try {
      iscsid = (await readFile(join(this.roots.proc, 'net', 'unix'), 'utf8')).includes('ISCSIADM_ABSTRACT_NAMESPACE');
    } catch {
      iscsid = false;
    }
    if (!iscsid) missing.push('iscsid is not running (no ISCSIADM_ABSTRACT_NAMESPACE socket)');
    return missing.length ? missing.join('; ') : undefined;
  }

  /** The iscsi_tcp transport is in the kernel (sysfs module/iscsi_tcp or class/iscsi_transport/tcp). */
  private async hasIscsiTcp(): Promise<boolean> {
    if (this.opts.assumeKernelSupport) return true;
    return (await exists(join(this.sysfs, 'module', 'iscsi_tcp'))) || (await exists(join(this.sysfs, 'class', 'iscsi_transport', 'tcp')));
  }

  private async requireKernelSupport(what: string): Promise<void> {
    const missing = await this.missingKernelSupport();
    if (missing) {
      throw new FailedPreconditionError(
        `${what} needs the kernel iSCSI initiator, which this host lacks: ${missing}. Load iscsi_tcp and start iscsid (Debian package open-iscsi), or use an iscsi-direct pool, which reaches the target from userspace`,
        { missing },
      );
    }
  }

  private async run(runner: CommandRunner, argv: string[], what: string, options: RunOptions = {}): Promise<string> {
    try {
      return (await runner.run(argv, { timeoutMs: 120_000, ...options })).stdout;
    } catch (err) {
      throw iscsiadmError(err, what);
    }
  }

  // -------------------------------------------------------------- sessions

  async sessions(ctx: BackendContext): Promise<IscsiSession[]> {
    const out = await this.run(ctx.runner, sessionListArgv(this.iscsiadm), 'listing iSCSI sessions', {
      okExitCodes: [0, ISCSI_ERR_NO_OBJS_FOUND],
      signal: ctx.signal,
    });
    return parseSessions(out);
  }

  /** libvirt's virISCSIGetSession: the session whose target is the pool's target. */
  async findSession(ctx: BackendContext, t: IscsiTarget): Promise<IscsiSession | undefined> {
    return (await this.sessions(ctx)).find((s) => s.target === t.target);
  }

  /** The iface bound to the initiator IQN in `iscsiadm --mode iface`, if there is one. */
  async findIface(ctx: BackendContext, initiatorIqn: string): Promise<string | undefined> {
    return parseIfaces(await this.run(ctx.runner, ifaceListArgv(this.iscsiadm), 'listing iSCSI ifaces', { signal: ctx.signal })).find(
      (i) => i.initiatorName === initiatorIqn,
    )?.name;
  }

  /** The iface bound to the custom initiator IQN: found in `--mode iface`, else created once. */
  async ifaceFor(ctx: BackendContext, initiatorIqn: string): Promise<string> {
    const list = (): Promise<string | undefined> => this.findIface(ctx, initiatorIqn);
    const found = await list();
    if (found) return found;
    const name = ifaceNameFor(initiatorIqn);
    await this.run(ctx.runner, ifaceNewArgv(name, this.iscsiadm), `creating iSCSI iface ${name}`, { signal: ctx.signal });
    await this.run(ctx.runner, ifaceSetInitiatorArgv(name, initiatorIqn, this.iscsiadm), `setting the initiator name of iface ${name}`, { signal: ctx.signal });
    const again = await list();
    if (!again) throw new FailedPreconditionError(`iSCSI iface ${name} for initiator '${printable(initiatorIqn)}' was created but iscsiadm does not list it`);
    return again;
  }

  // -------------------------------------------------------------- pool

  async checkPool(ctx: PoolContext): Promise<boolean> {
    if (await this.missingKernelSupport()) return false;
    const t = iscsiTarget(ctx.pool, ctx, false);
    return (await this.findSession(ctx, t)) !== undefined;
  }

  async startPool(ctx: PoolContext): Promise<void> {
    const t = iscsiTarget(ctx.pool, ctx, true);
    await this.requireKernelSupport(`iscsi pool '${printable(ctx.pool.name)}'`);
    if (await this.findSession(ctx, t)) return;
    const iface = t.initiatorIqn ? await this.ifaceFor(ctx, t.initiatorIqn) : undefined;
    const o = { signal: ctx.signal };
    await this.run(ctx.runner, nodeNewArgv(t.portal, t.target, iface, this.iscsiadm), `creating the node record for target ${t.target}`, o);
    if (t.chap) {
      // libvirt's virISCSINodeUpdate ignores a non-zero exit status (a failed update then
      // shows at login); Cistern stops at it, with iscsiadm's own message, before the
      // password goes into a record that may not be there.
      await this.run(ctx.runner, nodeUpdateArgv(t.portal, t.target, 'node.session.auth.authmethod', 'CHAP', iface, this.iscsiadm), 'setting CHAP', o);
      await this.run(ctx.runner, nodeUpdateArgv(t.portal, t.target, 'node.session.auth.username', t.chap.username, iface, this.iscsiadm), 'setting the CHAP user', o);
      await setNodePassword(this.opts.nodesDirs ?? NODE_DIRS, t.target, t.host, t.port, 1, iface ?? 'default', t.chap.password);
    }
    await this.run(ctx.runner, loginArgv(t.portal, t.target, iface, this.iscsiadm), `logging in to target ${t.target} at ${t.portal}`, o);
  }

  /**
   * libvirt's virStorageBackendISCSIStopPool: logs out only when a session for the target
   * exists. Without one (the target went away, someone logged out by hand, or this kernel
   * has no iSCSI transport at all) there is nothing to end and the stop succeeds; a logout
   * would fail with "No matching sessions found" and leave the pool stuck active.
   */
  async stopPool(ctx: PoolContext): Promise<void> {
    const t = iscsiTarget(ctx.pool, ctx, false);
    if (!(await this.hasIscsiTcp())) return;
    if (!(await this.findSession(ctx, t))) return;
    await this.requireKernelSupport(`iscsi pool '${printable(ctx.pool.name)}'`);
    const iface = t.initiatorIqn ? await this.ifaceFor(ctx, t.initiatorIqn) : undefined;
    await this.run(ctx.runner, logoutArgv(t.portal, t.target, iface, this.iscsiadm), `logging out of target ${t.target}`, { signal: ctx.signal });
  }

  /** The SCSI host number of a session: /sys/class/iscsi_session/sessionN/device/targetH:B:T. */
  async sessionHost(sessionId: string): Promise<number> {
    const dir = join(this.sysfs, 'class', 'iscsi_session', `session${sessionId}`, 'device');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw new FailedPreconditionError(`cannot read ${dir} to find the SCSI host of iSCSI session ${sessionId}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    for (const n of names.sort()) {
      const m = /^target(\d+):\d+:\d+$/.exec(n);
      if (m) return Number(m[1]);
    }
    throw new NotFoundError(`iSCSI session ${sessionId} has no SCSI target in ${dir} (no LUNs yet?)`);
  }

  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const t = iscsiTarget(ctx.pool, ctx, false);
    const targetDir = checkScsiTargetDir(ctx.pool.target?.path || '/dev');
    await this.requireKernelSupport(`iscsi pool '${printable(ctx.pool.name)}'`);
    const session = await this.findSession(ctx, t);
    if (!session) throw new FailedPreconditionError(`no iSCSI session for target '${printable(t.target)}': start the pool first`);
    await this.run(ctx.runner, sessionRescanArgv(session.id, this.iscsiadm), `rescanning iSCSI session ${session.id}`, { signal: ctx.signal });
    // libvirt waits for udev here (virWaitForDevices in virStorageBackendISCSIGetHostNumber):
    // the rescan's new LUNs get their /dev/disk/by-path links from udev, and a LUN without
    // its link yet would be missing from the pool. A failed settle is no error (as libvirt).
    if (this.opts.udevadm !== null) {
      await ctx.runner.run([this.opts.udevadm ?? 'udevadm', 'settle'], { signal: ctx.signal, okExitCodes: [0, 1] }).catch((err: unknown) => {
        if (err instanceof CancelledError) throw err;
      });
    }
    const host = await this.sessionHost(session.id);
    const volumes = await scanScsiHost(this.sysfs, host, targetDir, {
      runner: ctx.runner,
      devRoot: this.roots.dev,
      ...(this.opts.keySource ? { keySource: this.opts.keySource } : {}),
      ...(this.opts.stableDirWaitMs !== undefined ? { stableDirWaitMs: this.opts.stableDirWaitMs } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    return { runtime: lunPoolSizes(volumes), volumes };
  }

  async findPoolSources(ctx: BackendContext, hint: PoolSource | undefined): Promise<PoolSource[]> {
    const h = hint?.hosts ?? [];
    if (h.length !== 1) throw new InvalidArgumentError('source.hosts', `iSCSI discovery needs exactly 1 host (<source><host name=.../></source>), got ${h.length}`);
    const host = checkIscsiHost(h[0]!.name, 'source.hosts[0].name');
    const port = checkIscsiPort(h[0]!.port, 'source.hosts[0].port');
    const initiator = hint?.initiatorIqn ? checkIscsiName(hint.initiatorIqn, 'source.initiator_iqn') : undefined;
    await this.requireKernelSupport('iSCSI discovery');
    // libvirt's virISCSIScanTargets: discovery uses the iface an earlier pool start made for
    // this IQN and creates none (a lookup leaves no configuration behind on the host).
    const iface = initiator ? await this.findIface(ctx, initiator) : undefined;
    if (initiator && !iface) {
      throw new FailedPreconditionError(
        `no iSCSI interface defined for initiator IQN '${printable(initiator)}' on this host: start an iscsi pool with this initiator first (it creates one), or run discovery without <initiator>`,
      );
    }
    const out = await this.run(ctx.runner, discoveryArgv(iscsiadmPortal(host, port), iface, this.iscsiadm), `sendtargets discovery on ${host}:${port}`, {
      signal: ctx.signal,
    });
    // libvirt's virStorageBackendISCSIPortal fills in the default port, so the sources it
    // lists carry port 3260 when the spec gave none.
    return targetSources(host, port, parseDiscovery(out), initiator ?? '');
  }


  // LUN data: the block device under the pool's target directory, as for scsi pools.
  private devicePath(pool: PoolDefinition, volume: VolumeDefinition): string {
    return lunDevicePath(pool, volume, this.roots.dev);
  }

  /** The check that a device opened for the volume is still its LU's, on the session's SCSI host (scsi-scan.ts lunIdentity). */
  private async identity(ctx: PoolContext, volume: VolumeDefinition): Promise<DeviceIdentity> {
    const t = iscsiTarget(ctx.pool, ctx, false);
    const session = await this.findSession(ctx, t);
    if (!session) throw new FailedPreconditionError(`no iSCSI session for target '${printable(t.target)}': start the pool first`);
    return lunIdentity(this.sysfs, await this.sessionHost(session.id), volume);
  }

  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    const path = this.devicePath(ctx.pool, volume);
    const identity = await this.identity(ctx, volume);
    if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) {
      await checkIdentity(path, identity);
      return discardLun(ctx, path, this.opts.blkdiscard ?? 'blkdiscard');
    }
    await wipeBlock(ctx, path, algorithm, this.opts.scrub, identity);
  }

  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    return uploadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, data, await this.identity(ctx, volume));
  }

  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    yield* downloadBlock(ctx, this.devicePath(ctx.pool, volume), offset, length, await this.identity(ctx, volume));
  }
}

export const iscsiBackend = new IscsiBackend();
