// The iscsi-direct pool: libvirt's storage_backend_iscsi_direct.c, a pool whose volumes
// are the LUNs of one iSCSI target reached without the kernel initiator.
//
//   <source><host name='H' port='P'/><device path='TARGET-IQN'/>
//           <initiator><iqn name='INITIATOR-IQN'/></initiator>
//           <auth type='chap' username='U'><secret uuid='...'/></auth></source>
//
// Volumes: name `unit:0:0:N`, key = path = `ip-HOST:PORT-iscsi-TARGET-lun-N`, type
// network, capacity = allocation = (last LBA + 1) x block size from READ CAPACITY(16), or (10)
// where (16) is refused, no physical (libvirt 9.0 reports one block less). Pool capacity =
// allocation = sum over the LUNs.
//
// Mechanisms: REPORT LUNS, INQUIRY and READ CAPACITY in-process, every LUN in one session
// under one time limit (iscsi-report-luns.ts, iscsi-lun-commands.ts: iscsi-ls cannot list one
// target's LUNs when another target on the portal refuses it, and the per-LUN tools cost a
// process and a login per LUN and command), SendTargets discovery with iscsi-ls, data (zero
// wipe, upload, download) with qemu-img's iSCSI driver. CHAP secrets go through the
// environment (libiscsi) or a 0600 file (qemu), never argv.
//
// Differences from libvirt, on purpose: only disk (type 0) and CD/DVD (type 5) LUNs are
// volumes (libvirt also lists the target's controller LUN 0 with capacity 0), and an
// IPv6 portal is bracketed with the default port too.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { makeSecretDir } from './secret-dirs.js';
import { secretRoot } from './secret-root.js';
import { join } from 'node:path';
import {
  PoolType,
  VolumeType,
  WipeAlgorithm,
  wipeAlgorithmToJSON,
  type PoolDefinition,
  type PoolSource,
  type VolumeDefinition,
} from '../proto/cistern/v1/storage.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '../errors/errors.js';
import { checkSize, printable } from '../api/names.js';
import type { BackendContext, BackendOperation, PoolContext, RefreshResult, StorageBackend } from './backend.js';
import type { CommandRunner } from './runner.js';
import { checkAborted } from './file-io.js';
import { withTargetSession, type ReportLunsOptions } from './iscsi-report-luns.js';
import { inquiry, readCapacity, type StandardInquiry } from './iscsi-lun-commands.js';
import {
  chapEnv,
  checkChapUsername,
  checkIscsiHost,
  checkIscsiName,
  checkIscsiPort,
  iscsiLsArgv,
  iscsiPortal,
  iscsiToolError,
  parseIscsiLs,
  qemuDownloadArgv,
  qemuUploadArgv,
  qemuZeroArgv,
  type IscsiBlockSpec,
  type ReadCapacity,
  targetSources,
} from './libiscsi-tools.js';
import { plainTarget } from './volume-target.js';

/** Logical block sizes a LUN may report: the transfers hold whole blocks in memory. */
const MIN_BLOCK_SIZE = 512n;
const MAX_BLOCK_SIZE = 65_536n;
/** qemu's sector: its iSCSI driver needs logical blocks of a multiple of it. */
const QEMU_SECTOR = 512n;
/** The largest size a volume may have (the API's sizes are at most 2^63 - 1). */
const MAX_CAPACITY = (1n << 63n) - 1n;

export const VOL_NAME_PREFIX = 'unit:0:0:';
/** Bytes moved per qemu-img run during upload and download (held in memory once). */
export const TRANSFER_CHUNK = 16 * 1024 * 1024;
/** Buffers yielded by a download. */
export const YIELD_CHUNK = 1024 * 1024;
/**
 * The one time limit of a refresh's session: the login, REPORT LUNS and every LUN's INQUIRY and
 * READ CAPACITY, asked one after the other as libvirt does. Generous for a large target (65,536
 * LUNs answering in 1 ms each take about 2 minutes), and what bounds the pool lock a target
 * that answers slowly can hold (before: 60 s per tool run, two runs per LUN).
 */
const REFRESH_TIMEOUT_MS = 300_000;
/** The time limit of a session asking one LUN's READ CAPACITY. */
const LUN_TIMEOUT_MS = 30_000;
const SECRET_ID = 'cistern-chap';

const DISK_DEVICE_TYPE = 0x00;
const CD_DEVICE_TYPE = 0x05;
/** SCSI peripheral types kept as volumes (the same as the scsi pool's LU scan). */
const VOLUME_DEVICE_TYPES = new Set([DISK_DEVICE_TYPE, CD_DEVICE_TYPE]);

export interface Chap {
  username: string;
  password: Buffer;
}

/** Everything an operation needs to reach the target, checked. */
export interface DirectTarget {
  host: string;
  port: number;
  target: string;
  initiator: string;
  portal: string;
  chap?: Chap;
}

/** What a refresh asks of the target, in one logged-in session. */
export interface LunSession {
  reportLuns(): Promise<number[]>;
  inquiry(lun: number): Promise<StandardInquiry>;
  readCapacity(lun: number): Promise<ReadCapacity>;
}

/** Logs in, runs `body` with the session, logs out (one time limit over it all). */
export type OpenSession = <T>(opts: ReportLunsOptions, body: (session: LunSession) => Promise<T>) => Promise<T>;

/** The in-process initiator's session (iscsi-report-luns.ts, iscsi-lun-commands.ts). */
export const openTargetSession: OpenSession = (opts, body) =>
  withTargetSession(opts, (s) =>
    body({
      reportLuns: () => s.reportLuns(),
      inquiry: (lun) => inquiry(s, lun),
      readCapacity: (lun) => readCapacity(s, lun),
    }),
  );

export interface IscsiDirectOptions {
  iscsiLs?: string;
  qemuImg?: string;
  /** The target session (unit tests replace the in-process initiator). */
  session?: OpenSession;
  /** Directory for the CHAP secret file (default: secret-root.ts). */
  tmpDir?: string;
}

// ------------------------------------------------------------------ pool source

/** The CHAP credentials of a source: username from the XML, password from ctx.secrets. */
export function chapOf(source: PoolSource | undefined, ctx: BackendContext, field = 'pool.source.auth'): Chap | undefined {
  const auth = source?.auth;
  if (!auth || !auth.type || auth.type === 'none') return undefined;
  if (auth.type !== 'chap') {
    throw new InvalidArgumentError(`${field}.type`, `iSCSI pools only support 'chap' authentication, not '${printable(auth.type)}'`);
  }
  const username = checkChapUsername(auth.username, `${field}.username`);
  const ref = auth.secret;
  const id = ref?.uuid || ref?.usage || '';
  if (!id) throw new InvalidArgumentError(`${field}.secret`, 'CHAP authentication needs a <secret uuid=.../> or <secret usage=.../>');
  const password = (ref?.uuid && ctx.secrets?.get(ref.uuid)) || (ref?.usage && ctx.secrets?.get(ref.usage)) || undefined;
  if (!password) {
    throw new FailedPreconditionError(
      `the CHAP secret '${printable(id)}' of the pool was not provided to this host: define it with the Secret API and set its value`,
    );
  }
  // libiscsi takes the password as a C string (its tools from the environment): a NUL would
  // cut it, and Node quotes the value when it refuses such an environment
  if (password.includes(0)) {
    throw new InvalidArgumentError(`${field}.secret`, `the CHAP secret '${printable(id)}' holds a NUL byte, which a CHAP password cannot: set its value again without one`);
  }
  return { username, password };
}

/** libvirt's checks of an iscsi-direct source: one host, the target IQN, the initiator IQN. */
export function directTarget(pool: PoolDefinition, ctx: BackendContext): DirectTarget {
  const src = pool.source;
  const hosts = src?.hosts ?? [];
  if (hosts.length !== 1) {
    throw new InvalidArgumentError('pool.source.hosts', `expected exactly 1 host for an iscsi-direct pool, got ${hosts.length}`);
  }
  const host = checkIscsiHost(hosts[0]!.name);
  const port = checkIscsiPort(hosts[0]!.port);
  const target = checkIscsiName(src?.devices?.[0]?.path ?? '', 'pool.source.devices[0].path');
  if (!src?.initiatorIqn) {
    throw new InvalidArgumentError('pool.source.initiator_iqn', 'an iscsi-direct pool needs <initiator><iqn name=.../></initiator>: the name this host logs in with');
  }
  const initiator = checkIscsiName(src.initiatorIqn, 'pool.source.initiator_iqn');
  return { host, port, target, initiator, portal: iscsiPortal(host, port), chap: chapOf(src, ctx) };
}

/** `ip-HOST:PORT-iscsi-TARGET-lun-N`: the key and path of a LUN volume. */
export function lunVolumePath(t: Pick<DirectTarget, 'portal' | 'target'>, lun: number): string {
  return `ip-${t.portal}-iscsi-${t.target}-lun-${lun}`;
}

/**
 * The LUN of a volume of this pool, from its name (`unit:0:0:N`) or, when no name is
 * given, its path or key. NOT_FOUND for anything else.
 */
export function lunOf(t: DirectTarget, volume: Pick<VolumeDefinition, 'name' | 'key'> & { target?: { path: string } }): number {
  // LUN numbers are REPORT LUNS' first two bytes, the address method kept (iscsi-report-luns.ts)
  const parseNum = (s: string): number | undefined => (/^\d{1,5}$/.test(s) && Number(s) <= 0xffff ? Number(s) : undefined);
  if (volume.name) {
    const lun = volume.name.startsWith(VOL_NAME_PREFIX) ? parseNum(volume.name.slice(VOL_NAME_PREFIX.length)) : undefined;
    if (lun === undefined) {
      throw new NotFoundError(`no volume '${printable(volume.name)}' in this iscsi-direct pool: volumes are named ${VOL_NAME_PREFIX}N after their LUN`);
    }
    return lun;
  }
  const path = volume.target?.path || volume.key;
  const prefix = `ip-${t.portal}-iscsi-${t.target}-lun-`;
  const lun = path?.startsWith(prefix) ? parseNum(path.slice(prefix.length)) : undefined;
  if (lun === undefined) throw new NotFoundError(`no volume with path '${printable(path ?? '', 200)}' in this iscsi-direct pool (paths are ${prefix}N)`);
  return lun;
}

function lunVolume(t: DirectTarget, lun: number, capacity: bigint): VolumeDefinition {
  const path = lunVolumePath(t, lun);
  return {
    type: VolumeType.VOLUME_TYPE_NETWORK,
    name: `${VOL_NAME_PREFIX}${lun}`,
    key: path,
    capacity,
    allocation: capacity,
    // libvirt's iscsi-direct backend sets no physical size, so its volume XML has no <physical>
    physical: undefined,
    sourceDevices: [],
    target: plainTarget(path, ''),
    backingStore: undefined,
  };
}

interface WorkDir {
  dir: string;
  spec: (lun: number) => IscsiBlockSpec;
  secretFile?: string;
}

// ------------------------------------------------------------------ backend

export class IscsiDirectBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_ISCSI_DIRECT;
  readonly unsupportedReasons: Readonly<Partial<Record<BackendOperation, string>>> = {
    createVol: "its volumes are the target's LUNs, created on the storage array",
    buildVol: "its volumes are the target's LUNs, created on the storage array",
    buildVolFrom: "its volumes are the target's LUNs, created on the storage array",
    deleteVol: "its volumes are the target's LUNs, removed on the storage array",
  };

  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>([
    'refreshPool',
    'wipeVol',
    'uploadVol',
    'downloadVol',
    'findPoolSources',
  ]);
  readonly poolFormats: readonly string[] = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats: readonly string[] = [];
  readonly defaultVolumeFormat = '';

  private readonly opts: Required<Omit<IscsiDirectOptions, 'tmpDir'>> & { tmpDir?: string };

  constructor(options: IscsiDirectOptions = {}) {
    this.opts = {
      iscsiLs: options.iscsiLs ?? 'iscsi-ls',
      qemuImg: options.qemuImg ?? 'qemu-img',
      session: options.session ?? openTargetSession,
      tmpDir: options.tmpDir,
    };
  }

  // -------------------------------------------------------------- tools

  private async tool(runner: CommandRunner, argv: string[], t: DirectTarget, what: string, signal?: AbortSignal): Promise<string> {
    try {
      const env = chapEnv(t.chap);
      const r = await runner.run(argv, { signal, timeoutMs: 60_000, ...(env ? { env } : {}) });
      return r.stdout;
    } catch (err) {
      throw iscsiToolError(err, what);
    }
  }

  /** Logs in to the pool's target and runs `body` in that one session. */
  private session<T>(ctx: BackendContext, t: DirectTarget, timeoutMs: number, body: (s: LunSession) => Promise<T>): Promise<T> {
    const opts: ReportLunsOptions = {
      host: t.host,
      port: t.port,
      target: t.target,
      initiator: t.initiator,
      ...(t.chap ? { chap: t.chap } : {}),
      timeoutMs,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    };
    return this.opts.session(opts, body);
  }

  /** READ CAPACITY of a LUN in session `s`, its answer checked to be a size a volume can have. */
  private async capacityIn(s: LunSession, t: DirectTarget, lun: number): Promise<ReadCapacity> {
    const capacity = await s.readCapacity(lun);
    // the target's word, from the network: a block size the transfers cannot hold in memory, or a
    // capacity past what a volume's size can say, is that LUN's fault, not the agent's
    if (capacity.blockSize < MIN_BLOCK_SIZE || capacity.blockSize > MAX_BLOCK_SIZE) {
      throw new FailedPreconditionError(
        `LUN ${lun} of ${t.target} reports logical blocks of ${capacity.blockSize} bytes; from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE} are supported`,
        { target: t.target, lun: String(lun) },
      );
    }
    if (capacity.capacity > MAX_CAPACITY) {
      throw new FailedPreconditionError(`LUN ${lun} of ${t.target} reports a capacity of ${capacity.capacity} bytes; at most ${MAX_CAPACITY} (2^63 - 1) can be a volume's size`, {
        target: t.target,
        lun: String(lun),
      });
    }
    return capacity;
  }

  /**
   * READ CAPACITY of a LUN whose data is about to move: qemu-img's iSCSI driver, the data path,
   * opens only LUNs whose blocks are a multiple of 512 bytes (block/iscsi.c
   * iscsi_readcapacity_sync); a refresh still lists the others, as libvirt 9.0 does. `write`:
   * the data goes to the LUN (wipe, upload), which must then be a disk: a CD/DVD drive refuses
   * the write (tgtd: ILLEGAL REQUEST, CANNOT WRITE MEDIUM) only once qemu-img has started, and
   * its "Input/output error" said neither which LUN nor why.
   */
  private async transferCapacity(ctx: BackendContext, t: DirectTarget, lun: number, write = false): Promise<ReadCapacity> {
    const rc = await this.session(ctx, t, LUN_TIMEOUT_MS, async (s) => {
      if (write) {
        const { qualifier, deviceType } = await s.inquiry(lun);
        // SPC: a target answers INQUIRY for a LUN it does not have with qualifier 3
        if (qualifier === 3) throw new NotFoundError(`iSCSI target '${t.target}' at ${t.portal} has no LUN ${lun} (its INQUIRY says peripheral qualifier 3)`);
        if (deviceType !== DISK_DEVICE_TYPE) {
          const what = deviceType === CD_DEVICE_TYPE ? 'a CD/DVD drive' : 'not a disk';
          throw new FailedPreconditionError(
            `LUN ${lun} of ${t.target} is ${what} (peripheral device type ${deviceType}): only a disk LUN's data can be written (wipe, upload); its data can be read (download)`,
            { target: t.target, lun: String(lun) },
          );
        }
      }
      return this.capacityIn(s, t, lun);
    });
    if (rc.blockSize % QEMU_SECTOR !== 0n) {
      throw new FailedPreconditionError(
        `LUN ${lun} of ${t.target} has logical blocks of ${rc.blockSize} bytes; its data moves through qemu-img's iSCSI driver, which takes multiples of ${QEMU_SECTOR} only`,
        { target: t.target, lun: String(lun) },
      );
    }
    return rc;
  }

  // -------------------------------------------------------------- pool

  /**
   * REPORT LUNS, then each LUN's INQUIRY and (for a disk or CD/DVD) READ CAPACITY, all in one
   * session, as libvirt's virISCSIDirectReportLuns does in its one libiscsi context.
   */
  async refreshPool(ctx: PoolContext): Promise<RefreshResult> {
    const t = directTarget(ctx.pool, ctx);
    const volumes = await this.session(ctx, t, REFRESH_TIMEOUT_MS, async (s) => {
      const luns = [...new Set(await s.reportLuns())].sort((a, b) => a - b);
      const vols: VolumeDefinition[] = [];
      for (const lun of luns) {
        checkAborted(ctx.signal, 'refresh');
        const inq = await s.inquiry(lun);
        // qualifier 3: the target can have no LU at this number (SPC), whatever the type bits say
        if (inq.qualifier === 3 || !VOLUME_DEVICE_TYPES.has(inq.deviceType)) continue;
        vols.push(await this.volumeIn(s, t, lun, inq.deviceType));
      }
      return vols;
    });
    let capacity = 0n;
    for (const v of volumes) capacity += v.capacity ?? 0n;
    return { runtime: { capacity, allocation: capacity, available: 0n }, volumes };
  }

  /** The volume of a disk or CD/DVD LUN, its capacity read in session `s`. */
  private async volumeIn(s: LunSession, t: DirectTarget, lun: number, deviceType: number): Promise<VolumeDefinition> {
    let capacity = 0n;
    try {
      capacity = (await this.capacityIn(s, t, lun)).capacity;
    } catch (err) {
      // a CD/DVD LUN without media has no capacity (its refusal, not a lost session)
      if (deviceType !== CD_DEVICE_TYPE || !(err instanceof FailedPreconditionError)) throw err;
    }
    return lunVolume(t, lun, capacity);
  }

  /** One LUN as a refresh lists it: INQUIRY, then the capacity of a disk or CD/DVD LUN. */
  async refreshVol(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
    const t = directTarget(ctx.pool, ctx);
    const lun = lunOf(t, volume);
    return this.session(ctx, t, LUN_TIMEOUT_MS, async (s) => {
      const { qualifier, deviceType } = await s.inquiry(lun);
      if (qualifier === 3) throw new NotFoundError(`iSCSI target '${t.target}' at ${t.portal} has no LUN ${lun} (its INQUIRY says peripheral qualifier 3)`);
      if (!VOLUME_DEVICE_TYPES.has(deviceType)) {
        throw new NotFoundError(`LUN ${lun} of ${t.target} is not a volume of this pool: its peripheral device type is ${deviceType} (volumes are the disk and CD/DVD LUNs)`);
      }
      return this.volumeIn(s, t, lun, deviceType);
    });
  }

  async findPoolSources(ctx: BackendContext, hint: PoolSource | undefined): Promise<PoolSource[]> {
    const h = hint?.hosts ?? [];
    if (h.length !== 1) {
      throw new InvalidArgumentError('source.hosts', `discovery of iscsi-direct sources needs exactly 1 host (<source><host name=.../></source>), got ${h.length}`);
    }
    const host = checkIscsiHost(h[0]!.name, 'source.hosts[0].name');
    const port = checkIscsiPort(h[0]!.port, 'source.hosts[0].port');
    if (!hint?.initiatorIqn) {
      throw new InvalidArgumentError('source.initiator_iqn', 'discovery of iscsi-direct sources needs the initiator IQN (<initiator><iqn name=.../></initiator>)');
    }
    const initiator = checkIscsiName(hint.initiatorIqn, 'source.initiator_iqn');
    const chap = chapOf(hint, ctx, 'source.auth');
    const t: DirectTarget = { host, port, target: '', initiator, portal: iscsiPortal(host, port), ...(chap ? { chap } : {}) };
    const out = await this.tool(ctx.runner, iscsiLsArgv(initiator, host, port, this.opts.iscsiLs), t, `SendTargets discovery on ${t.portal}`, ctx.signal);
    return targetSources(host, h[0]!.port ?? 0, parseIscsiLs(out), initiator);
  }

  // -------------------------------------------------------------- volumes


  /** A temp directory (0700) with the CHAP password file for qemu-img, when the pool has CHAP. */
  private async workDir(t: DirectTarget): Promise<WorkDir> {
    // named after this process: a starting agent removes it if this one is killed meanwhile
    const dir = await makeSecretDir('cistern-iscsi', this.opts.tmpDir ?? secretRoot());
    let secretFile: string | undefined;
    if (t.chap) {
      secretFile = join(dir, 'chap-secret');
      try {
        await writeFile(secretFile, t.chap.password, { mode: 0o600 });
      } catch (err) {
        // the caller removes the directory only once it has it
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        throw err;
      }
    }
    const spec = (lun: number): IscsiBlockSpec => ({
      host: t.host,
      port: t.port,
      target: t.target,
      lun,
      initiator: t.initiator,
      ...(t.chap ? { user: t.chap.username, secretId: SECRET_ID } : {}),
    });
    return { dir, spec, ...(secretFile ? { secretFile } : {}) };
  }

  private async qemu(ctx: BackendContext, argv: string[], what: string): Promise<void> {
    try {
      await ctx.runner.run(argv, { signal: ctx.signal, timeoutMs: 0 });
    } catch (err) {
      throw iscsiToolError(err, what);
    }
  }

  async wipeVol(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm): Promise<void> {
    if (algorithm !== WipeAlgorithm.WIPE_ALGORITHM_ZERO) {
      throw new InvalidArgumentError(
        'algorithm',
        `iscsi-direct pools wipe LUNs with 'zero' only, not '${wipeAlgorithmToJSON(algorithm).replace(/^WIPE_ALGORITHM_/, '').toLowerCase()}'`,
      );
    }
    const t = directTarget(ctx.pool, ctx);
    const lun = lunOf(t, volume);
    const { capacity } = await this.transferCapacity(ctx, t, lun, true);
    // a LUN without blocks has nothing to zero (and qemu opens no 0-byte raw window)
    if (capacity === 0n) return;
    const w = await this.workDir(t);
    try {
      ctx.progress?.(0n, capacity);
      await this.qemu(ctx, qemuZeroArgv(w.spec(lun), capacity, w.secretFile, this.opts.qemuImg), `zero wipe of LUN ${lun} of ${t.target}`);
      ctx.progress?.(capacity, capacity);
    } finally {
      await rm(w.dir, { recursive: true, force: true });
    }
  }

  /** Reads [offset, offset+size) of the LUN (block aligned) into a Buffer through a temp file. */
  private async readBlocks(ctx: BackendContext, w: WorkDir, t: DirectTarget, lun: number, offset: bigint, size: bigint): Promise<Buffer> {
    const file = join(w.dir, `read-${offset}`);
    await this.qemu(ctx, qemuDownloadArgv(w.spec(lun), file, offset, size, w.secretFile, this.opts.qemuImg), `read from LUN ${lun} of ${t.target}`);
    try {
      const buf = await readFile(file);
      if (BigInt(buf.length) !== size) throw new FailedPreconditionError(`read from LUN ${lun}: qemu-img wrote ${buf.length} bytes, expected ${size}`);
      return buf;
    } finally {
      await rm(file, { force: true });
    }
  }

  /**
   * Writes `data` at `at`. qemu's raw driver takes block-aligned windows only, so an
   * unaligned head or tail is read first and written back around the data.
   */
  private async writeAt(ctx: BackendContext, w: WorkDir, t: DirectTarget, lun: number, rc: ReadCapacity, at: bigint, data: Buffer): Promise<void> {
    const bs = rc.blockSize;
    const end = at + BigInt(data.length);
    const aStart = at - (at % bs);
    const aEnd = end % bs === 0n ? end : end + bs - (end % bs);
    let window = data;
    if (aStart !== at || aEnd !== end) {
      window = Buffer.alloc(Number(aEnd - aStart));
      if (aStart !== at) (await this.readBlocks(ctx, w, t, lun, aStart, bs)).copy(window, 0);
      if (aEnd !== end) (await this.readBlocks(ctx, w, t, lun, aEnd - bs, bs)).copy(window, window.length - Number(bs));
      data.copy(window, Number(at - aStart));
    }
    const file = join(w.dir, 'chunk');
    await writeFile(file, window, { mode: 0o600 });
    try {
      await this.qemu(ctx, qemuUploadArgv(w.spec(lun), file, aStart, aEnd - aStart, w.secretFile, this.opts.qemuImg), `upload to LUN ${lun} of ${t.target}`);
    } finally {
      await rm(file, { force: true });
    }
  }

  async uploadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint, data: AsyncIterable<Buffer>): Promise<bigint> {
    checkSize(offset, 'offset');
    checkSize(length, 'length');
    const t = directTarget(ctx.pool, ctx);
    const lun = lunOf(t, volume);
    const rc = await this.transferCapacity(ctx, t, lun, true);
    const capacity = rc.capacity;
    if (offset > capacity) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of LUN ${lun} (${capacity} bytes)`);
    if (length > 0n && offset + length > capacity) {
      throw new InvalidArgumentError('length', `${length} bytes at offset ${offset} pass the end of LUN ${lun} (${capacity} bytes)`);
    }
    const w = await this.workDir(t);
    let written = 0n;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const at = offset + written;
      if (at + BigInt(pendingBytes) > capacity) {
        throw new InvalidArgumentError('length', `the upload passes the end of LUN ${lun} (${capacity} bytes) at offset ${at + BigInt(pendingBytes)}`);
      }
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await this.writeAt(ctx, w, t, lun, rc, at, buf);
      written += BigInt(buf.length);
      ctx.progress?.(written, length);
    };
    try {
      let overflow = false;
      for await (const chunk of data) {
        checkAborted(ctx.signal, 'upload');
        let buf = chunk;
        if (length > 0n && written + BigInt(pendingBytes) + BigInt(buf.length) > length) {
          buf = buf.subarray(0, Number(length - written - BigInt(pendingBytes)));
          overflow = true;
        }
        let pos = 0;
        while (pos < buf.length) {
          const n = Math.min(buf.length - pos, TRANSFER_CHUNK - pendingBytes);
          pending.push(Buffer.from(buf.subarray(pos, pos + n)));
          pendingBytes += n;
          pos += n;
          if (pendingBytes >= TRANSFER_CHUNK) await flush();
        }
        if (overflow) break;
      }
      await flush();
      if (overflow) throw new InvalidArgumentError('length', `the stream carries more than the announced ${length} bytes; ${written} were written`);
      return written;
    } finally {
      await rm(w.dir, { recursive: true, force: true });
    }
  }

  async *downloadVol(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
    checkSize(offset, 'offset');
    checkSize(length, 'length');
    const t = directTarget(ctx.pool, ctx);
    const lun = lunOf(t, volume);
    const { capacity, blockSize: bs } = await this.transferCapacity(ctx, t, lun);
    // a LUN cannot be read from past its end: an offset beyond it is a mistake to report, as
    // for every block volume (block-data.ts downloadBlock); its very end gives nothing
    if (offset > capacity) throw new InvalidArgumentError('offset', `offset ${offset} is past the end of LUN ${lun} (${capacity} bytes)`);
    const end = length > 0n && offset + length < capacity ? offset + length : capacity;
    if (offset >= end) return;
    const w = await this.workDir(t);
    try {
      let pos = offset;
      while (pos < end) {
        checkAborted(ctx.signal, 'download');
        // A block-aligned window around [pos, pos + chunk): qemu's raw driver needs alignment.
        const aStart = pos - (pos % bs);
        let aEnd = aStart + BigInt(TRANSFER_CHUNK) < end ? aStart + BigInt(TRANSFER_CHUNK) : end;
        if (aEnd % bs !== 0n) aEnd += bs - (aEnd % bs);
        const sliceEnd = aEnd < end ? aEnd : end;
        const buf = await this.readBlocks(ctx, w, t, lun, aStart, aEnd - aStart);
        const from = Number(pos - aStart);
        const to = Number(sliceEnd - aStart);
        for (let i = from; i < to; i += YIELD_CHUNK) yield buf.subarray(i, Math.min(to, i + YIELD_CHUNK));
        pos = sliceEnd;
        ctx.progress?.(pos - offset, end - offset);
      }
    } finally {
      await rm(w.dir, { recursive: true, force: true });
    }
  }
}

export const iscsiDirectBackend = new IscsiDirectBackend();
