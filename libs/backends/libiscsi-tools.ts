// Userspace iSCSI tooling for the iscsi-direct pool: argv builders and output parsers for
// libiscsi-bin's iscsi-ls (SendTargets discovery) and qemu-img's iSCSI block driver
// (qemu-block-extra), plus the input checks that keep pool values safe to pass on. A LUN's
// INQUIRY and READ CAPACITY are asked in-process (iscsi-lun-commands.ts), not with the tools.
//
// Secrets never reach argv: libiscsi's tools take CHAP credentials from the environment
// (LIBISCSI_CHAP_USERNAME / LIBISCSI_CHAP_PASSWORD, readable only by the same user in
// /proc/PID/environ), qemu-img from a `--object secret,file=...` in a 0600 file.
import { CommandFailedError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnavailableError, asCisternError, type CisternError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { PoolSource } from '../proto/cistern/v1/storage.js';

import { checkIscsiName } from '../api/source-names.js';
export { checkIscsiHost, checkIscsiName, ISCSI_NAME_MAX } from '../api/source-names.js';

export const ISCSI_DEFAULT_PORT = 3260;

// ------------------------------------------------------------------ input checks

export function checkIscsiPort(port: number | undefined, field = 'source.hosts[0].port'): number {
  const p = port ?? 0;
  if (p === 0) return ISCSI_DEFAULT_PORT;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(field, `port ${p} is out of range; allowed: 1-65535 (0 = ${ISCSI_DEFAULT_PORT})`);
  return p;
}

/** CHAP user names go into qemu option strings and the environment: printable, no control characters. */
export function checkChapUsername(name: string, field = 'pool.source.auth.username'): string {
  if (!name || name.length > 255 || /[\x00-\x1f\x7f]/.test(name)) {
    throw new InvalidArgumentError(field, `CHAP user name '${printable(name ?? '')}' must be 1-255 printable characters`);
  }
  return name;
}

function isIscsiName(name: string): boolean {
  try {
    checkIscsiName(name, 'target');
    return true;
  } catch {
    return false;
  }
}

/** host:port, IPv6 in brackets ([::1]:3260). */
export function iscsiPortal(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * FindPoolSources' answer for a portal's discovered targets (both iSCSI pool types): one
 * source per target, in discovery order, each target once. A name that is not an iSCSI name
 * (checkIscsiName, what a pool's target must be at define) is left out: it is the portal's
 * bytes as iscsi-ls and iscsiadm print them, terminal escapes included, and the <sources>
 * document goes to the operator's terminal (libvirt drops its control characters).
 */
export function targetSources(host: string, port: number, discovered: ReadonlyArray<{ target: string }>, initiatorIqn: string): PoolSource[] {
  const seen = new Set<string>();
  const sources: PoolSource[] = [];
  for (const d of discovered) {
    if (seen.has(d.target) || !isIscsiName(d.target)) continue;
    seen.add(d.target);
    sources.push(PoolSource.fromPartial({ hosts: [{ name: host, port }], devices: [{ path: d.target }], initiatorIqn }));
  }
  return sources;
}

/** iscsi://HOST:PORT[/TARGET/LUN] for libiscsi's tools (credentials never in the URL). */
export function iscsiUrl(host: string, port: number, target?: string, lun?: number): string {
  const base = `iscsi://${iscsiPortal(host, port)}`;
  if (target === undefined) return base;
  return `${base}/${target}/${lun ?? 0}`;
}

/** Environment for libiscsi tools carrying CHAP credentials (never argv). */
export function chapEnv(chap: { username: string; password: Buffer } | undefined): Record<string, string> | undefined {
  if (!chap) return undefined;
  return { LIBISCSI_CHAP_USERNAME: chap.username, LIBISCSI_CHAP_PASSWORD: chap.password.toString('utf8') };
}

// ------------------------------------------------------------------ libiscsi-bin

/** SendTargets discovery of a portal: iscsi-ls -i INITIATOR -- iscsi://HOST:PORT */
export function iscsiLsArgv(initiator: string, host: string, port: number, program = 'iscsi-ls'): string[] {
  return [program, '-i', initiator, '--', iscsiUrl(host, port)];
}

export interface DiscoveredTarget {
  target: string;
  /** host:port as the target announced it (IPv6 in brackets). */
  portal: string;
  tpgt: number;
}

/** `Target:IQN Portal:HOST:PORT,TPGT` lines of iscsi-ls. */
export function parseIscsiLs(stdout: string): DiscoveredTarget[] {
  const out: DiscoveredTarget[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Target:(\S+)\s+Portal:(\S+?)(?:,(\d+))?\s*$/.exec(line.trim());
    if (m) out.push({ target: m[1]!, portal: m[2]!, tpgt: m[3] ? Number(m[3]) : 1 });
  }
  return out;
}

export interface ReadCapacity {
  /** RETURNED LOGICAL BLOCK ADDRESS: the last LBA. */
  lastLba: bigint;
  blockSize: bigint;
  /** (last LBA + 1) x block size: the exact size (libvirt 9.0 drops the last block). */
  capacity: bigint;
}

/**
 * A failed libiscsi or qemu-img iSCSI command as the typed error a user understands:
 * wrong CHAP -> PERMISSION_DENIED, unreachable portal -> UNAVAILABLE, unknown target or
 * LUN -> NOT_FOUND; anything else keeps the command and its stderr (INTERNAL).
 */
export function iscsiToolError(err: unknown, what: string): CisternError {
  // the runner's own limit, not the caller's deadline (that one cancels): the portal is silent
  if (err instanceof DeadlineExceededError) return new UnavailableError(`${what}: no answer from the iSCSI portal in time (${err.message})`, err.details);
  if (!(err instanceof CommandFailedError)) return asCisternError(err);
  const text = `${err.stderr}`;
  const show = printable(text.trim().split('\n').slice(-2).join(' '), 300);
  if (err.exitCode === undefined && /ENOENT|not found|could not start/i.test(text)) {
    return new FailedPreconditionError(`${what}: the program ${printable(err.argv[0] ?? '')} is not installed on this host (Debian: libiscsi-bin, qemu-utils, qemu-block-extra)`);
  }
  if (/Authentication failure|authentication failed|CHAP/i.test(text)) {
    return new PermissionDeniedError(`${what}: the iSCSI target refused the login: authentication failure (check the CHAP user name and secret of the pool)`, err.details);
  }
  if (/Authorization failure|not authorized/i.test(text)) {
    return new PermissionDeniedError(`${what}: the iSCSI target does not allow this initiator (${show})`, err.details);
  }
  if (/Target not found|TARGET_NOT_FOUND|Not found|target removed/i.test(text) && !/LUN/i.test(text)) {
    return new NotFoundError(`${what}: the target is not on this portal (${show})`, err.details);
  }
  if (/LOGICAL_UNIT_NOT_SUPPORTED/i.test(text)) {
    return new NotFoundError(`${what}: the target has no such LUN (${show})`, err.details);
  }
  if (/Connection refused|No route to host|Network is unreachable|timed out|Name or service not known|resolve/i.test(text)) {
    return new UnavailableError(`${what}: cannot reach the iSCSI portal (${show})`, err.details);
  }
  err.message = `${what}: ${err.message}`;
  return err;
}

// ------------------------------------------------------------------ qemu-img's iSCSI driver

export interface IscsiBlockSpec {
  host: string;
  port: number;
  target: string;
  lun: number;
  initiator: string;
  /** CHAP user and the id of the `--object secret` holding the password. */
  user?: string;
  secretId?: string;
}

/** qemu option values: a ',' is written ',,'. */
export function qemuOptValue(value: string): string {
  return value.replace(/,/g, ',,');
}

/** The iscsi block driver options (for --image-opts), under `prefix` ('' or 'file.'). */
export function iscsiBlockOpts(spec: IscsiBlockSpec, prefix = ''): string {
  const kv: Array<[string, string]> = [
    ['driver', 'iscsi'],
    ['transport', 'tcp'],
    ['portal', iscsiPortal(spec.host, spec.port)],
    ['target', spec.target],
    ['lun', String(spec.lun)],
    ['initiator-name', spec.initiator],
  ];
  if (spec.user !== undefined) {
    kv.push(['user', spec.user]);
    if (spec.secretId) kv.push(['password-secret', spec.secretId]);
  }
  return kv.map(([k, v]) => `${prefix}${k}=${qemuOptValue(v)}`).join(',');
}

/** A byte range of the LUN: the raw driver's offset/size over the iscsi driver. */
export function iscsiRangeOpts(spec: IscsiBlockSpec, offset: bigint, size: bigint): string {
  return `driver=raw,offset=${offset},size=${size},${iscsiBlockOpts(spec, 'file.')}`;
}

/** `--object secret,id=ID,file=PATH` (the password is read from a 0600 file). */
export function secretObjectArgs(secretId: string | undefined, secretFile: string | undefined): string[] {
  return secretId && secretFile ? ['--object', `secret,id=${secretId},file=${qemuOptValue(secretFile)}`] : [];
}

/** Zero fill of a whole LUN: null-co (reads zeroes) converted onto the LUN. */
export function qemuZeroArgv(spec: IscsiBlockSpec, capacity: bigint, secretFile?: string, qemuImg = 'qemu-img'): string[] {
  return [
    qemuImg,
    'convert',
    '-n',
    '-t',
    'writeback',
    ...secretObjectArgs(spec.secretId, secretFile),
    '--image-opts',
    '--target-image-opts',
    '--',
    `driver=null-co,size=${capacity},read-zeroes=on`,
    iscsiRangeOpts(spec, 0n, capacity),
  ];
}

/** Writes a local raw file into [offset, offset+size) of the LUN. */
export function qemuUploadArgv(spec: IscsiBlockSpec, file: string, offset: bigint, size: bigint, secretFile?: string, qemuImg = 'qemu-img'): string[] {
  return [
    qemuImg,
    'convert',
    '-n',
    '-t',
    'writeback',
    ...secretObjectArgs(spec.secretId, secretFile),
    '-f',
    'raw',
    '--target-image-opts',
    '--',
    file,
    iscsiRangeOpts(spec, offset, size),
  ];
}

/** Reads [offset, offset+size) of the LUN into a new local raw file. */
export function qemuDownloadArgv(spec: IscsiBlockSpec, file: string, offset: bigint, size: bigint, secretFile?: string, qemuImg = 'qemu-img'): string[] {
  return [qemuImg, 'convert', ...secretObjectArgs(spec.secretId, secretFile), '-O', 'raw', '--image-opts', '--', iscsiRangeOpts(spec, offset, size), file];
}
