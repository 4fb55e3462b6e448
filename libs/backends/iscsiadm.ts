// open-iscsi's iscsiadm for the iscsi pool (kernel initiator): argv builders and output
// parsers, following libvirt's src/util/viriscsi.c. Every command line here is pinned by
// recording-runner tests; parsers are tested on output captured from iscsiadm 2.1.8.
//
// Secrets: libvirt passes the CHAP password to `iscsiadm --op update --value PASSWORD`,
// where any local user can read it with ps. Cistern sets authmethod and username with
// iscsiadm but writes the password into the node record file itself (setNodePassword),
// so it never appears on a command line.
import { createHash } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandFailedError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnavailableError, asCisternError, type CisternError } from '../errors/errors.js';
import { printable } from '../api/names.js';

export const ISCSIADM = 'iscsiadm';
/** iscsiadm's exit code for "no records / no sessions" (ISCSI_ERR_NO_OBJS_FOUND). */
export const ISCSI_ERR_NO_OBJS_FOUND = 21;
/** Node record directories of open-iscsi (Debian: /etc/iscsi/nodes; RHEL: /var/lib/iscsi/nodes). */
export const NODE_DIRS = ['/etc/iscsi/nodes', '/var/lib/iscsi/nodes'];

/** iscsiadm's portal form: HOST:PORT,TPGT (IPv6 in brackets), TPGT 1 as libvirt. */
export function iscsiadmPortal(host: string, port: number, tpgt = 1): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port},${tpgt}`;
}

// ------------------------------------------------------------------ command lines

export function sessionListArgv(program = ISCSIADM): string[] {
  return [program, '--mode', 'session'];
}

export function sessionRescanArgv(sessionId: string, program = ISCSIADM): string[] {
  return [program, '--mode', 'session', '-r', sessionId, '-R'];
}

export function ifaceListArgv(program = ISCSIADM): string[] {
  return [program, '--mode', 'iface'];
}

export function ifaceNewArgv(iface: string, program = ISCSIADM): string[] {
  return [program, '--mode', 'iface', '--interface', iface, '--op', 'new'];
}

export function ifaceSetInitiatorArgv(iface: string, initiatorIqn: string, program = ISCSIADM): string[] {
  return [program, '--mode', 'iface', '--interface', iface, '--op', 'update', '--name', 'iface.initiatorname', '--value', initiatorIqn];
}

function withIface(argv: string[], iface: string | undefined): string[] {
  return iface ? [...argv, '--interface', iface] : argv;
}

export function nodeNewArgv(portal: string, target: string, iface?: string, program = ISCSIADM): string[] {
  return withIface([program, '--mode', 'node', '--portal', portal, '--targetname', target, '--op', 'new'], iface);
}

/** A node setting; never used for the password (see setNodePassword). */
export function nodeUpdateArgv(portal: string, target: string, name: string, value: string, iface?: string, program = ISCSIADM): string[] {
  if (name === 'node.session.auth.password' || name === 'node.session.auth.password_in') {
    throw new InvalidArgumentError('name', 'passwords are written to the node record, never passed to iscsiadm on the command line');
  }
  return withIface([program, '--mode', 'node', '--portal', portal, '--targetname', target, '--op', 'update', '--name', name, '--value', value], iface);
}

export function loginArgv(portal: string, target: string, iface?: string, program = ISCSIADM): string[] {
  return withIface([program, '--mode', 'node', '--portal', portal, '--targetname', target], iface).concat('--login');
}

export function logoutArgv(portal: string, target: string, iface?: string, program = ISCSIADM): string[] {
  return withIface([program, '--mode', 'node', '--portal', portal, '--targetname', target], iface).concat('--logout');
}

export function discoveryArgv(portal: string, iface?: string, program = ISCSIADM): string[] {
  return withIface([program, '--mode', 'discovery', '--type', 'sendtargets', '--portal', portal, '--op', 'nonpersistent'], iface);
}

// ------------------------------------------------------------------ parsers

export interface IscsiSession {
  transport: string;
  id: string;
  /** HOST:PORT as iscsiadm prints it (IPv6 in brackets). */
  portal: string;
  tpgt: number;
  target: string;
}

/** `tcp: [1] 192.168.122.1:3260,1 iqn.2004-04.com.example:target (non-flash)` */
export function parseSessions(stdout: string): IscsiSession[] {
  const out: IscsiSession[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+):\s+\[(\S+)\]\s+(\S+?),(\d+)\s+(\S+)/.exec(line.trim());
    if (m) out.push({ transport: m[1]!, id: m[2]!, portal: m[3]!, tpgt: Number(m[4]), target: m[5]! });
  }
  return out;
}

export interface IscsiIface {
  name: string;
  transport: string;
  hwaddress: string;
  ipaddress: string;
  netIfacename: string;
  /** '' when iscsiadm prints <empty>. */
  initiatorName: string;
}

/** `NAME TRANSPORT,HWADDRESS,IPADDRESS,NET_IFACENAME,INITIATORNAME` lines of `iscsiadm --mode iface`. */
export function parseIfaces(stdout: string): IscsiIface[] {
  const out: IscsiIface[] = [];
  const v = (s: string): string => (s === '<empty>' ? '' : s);
  for (const line of stdout.split('\n')) {
    const m = /^(\S+)\s+([^,\s]+),([^,\s]*),([^,\s]*),([^,\s]*),([^,\s]*)$/.exec(line.trim());
    if (m) out.push({ name: m[1]!, transport: m[2]!, hwaddress: v(m[3]!), ipaddress: v(m[4]!), netIfacename: v(m[5]!), initiatorName: v(m[6]!) });
  }
  return out;
}

export interface DiscoveredNode {
  portal: string;
  tpgt: number;
  target: string;
}

/** `HOST:PORT,TPGT TARGET` lines of sendtargets discovery. */
export function parseDiscovery(stdout: string): DiscoveredNode[] {
  const out: DiscoveredNode[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+?),(\d+)\s+(\S+)\s*$/.exec(line.trim());
    if (m) out.push({ portal: m[1]!, tpgt: Number(m[2]), target: m[3]! });
  }
  return out;
}

/** The iface Cistern creates for a custom initiator IQN: stable, so it is created once and reused. */
export function ifaceNameFor(initiatorIqn: string): string {
  return `cistern-${createHash('sha256').update(initiatorIqn).digest('hex').slice(0, 12)}`;
}

// ------------------------------------------------------------------ errors

/**
 * iscsiadm's failures as typed errors: a missing daemon or kernel module is a
 * FAILED_PRECONDITION naming what is missing, a refused login PERMISSION_DENIED.
 */
export function iscsiadmError(err: unknown, what: string): CisternError {
  // the runner's own limit, not the caller's deadline (that one cancels)
  if (err instanceof DeadlineExceededError) return new UnavailableError(`${what}: no answer in time (${err.message})`, err.details);
  if (!(err instanceof CommandFailedError)) return asCisternError(err);
  const text = err.stderr;
  const show = printable(text.trim().split('\n').filter((l) => l.startsWith('iscsiadm:')).slice(-2).join(' ') || text.trim(), 300);
  if (err.exitCode === undefined && /ENOENT|could not start|not found/i.test(text)) {
    return new FailedPreconditionError(`${what}: iscsiadm is not installed on this host (Debian package open-iscsi)`, err.details);
  }
  if (/can not connect to iSCSI daemon|could not connect to iscsid/i.test(text)) {
    return new FailedPreconditionError(`${what}: the iSCSI daemon iscsid is not running on this host (${show})`, err.details);
  }
  if (/driver \S+ is not loaded|Could not insert module|iSCSI driver not found|Could not scan \/sys\/class\/iscsi_transport/i.test(text)) {
    return new FailedPreconditionError(`${what}: the kernel iSCSI initiator (module iscsi_tcp) is not available on this host (${show})`, err.details);
  }
  if (err.exitCode === 24 || /authorization failure|authentication failure|ISCSI_ERR_LOGIN_AUTH_FAILED/i.test(text)) {
    return new PermissionDeniedError(`${what}: the target refused the login: authentication failure (check the CHAP user name and secret)`, err.details);
  }
  if (err.exitCode === 21 || /No records found|No matching sessions/i.test(text)) {
    return new NotFoundError(`${what}: ${show}`, err.details);
  }
  if (err.exitCode === 8 || /connection timed out|Connection refused|No route to host/i.test(text)) {
    return new UnavailableError(`${what}: cannot reach the portal (${show})`, err.details);
  }
  err.message = `${what}: ${err.message}`;
  return err;
}

// ------------------------------------------------------------------ node record password

/**
 * Writes node.session.auth.password into the node record open-iscsi keeps for
 * (target, portal, iface), after `--op new` created it. The record is
 * NODES/TARGET/HOST,PORT,TPGT/IFACE (open-iscsi 2.x) or NODES/TARGET/HOST,PORT,TPGT as a
 * file (old layout). Mode 0600: the record holds a secret.
 */
export async function setNodePassword(
  nodesDirs: readonly string[],
  target: string,
  host: string,
  port: number,
  tpgt: number,
  iface: string,
  password: Buffer,
): Promise<string> {
  const value = password.toString('utf8');
  if (/[\r\n\0]/.test(value)) throw new InvalidArgumentError('pool.source.auth.secret', 'the CHAP secret contains a line break or NUL, which an iSCSI node record cannot hold');
  const portalDir = `${host},${port},${tpgt}`;
  let record: string | undefined;
  for (const dir of nodesDirs) {
    const base = join(dir, target, portalDir);
    const st = await stat(base).catch(() => undefined);
    if (!st) continue;
    record = st.isDirectory() ? join(base, iface) : base;
    break;
  }
  const found = record ? await stat(record).catch(() => undefined) : undefined;
  if (!record || !found?.isFile()) {
    throw new FailedPreconditionError(
      `the iSCSI node record for target '${printable(target)}' at ${host}:${port} (iface ${iface}) was not found under ${nodesDirs.join(' or ')} after iscsiadm created it`,
    );
  }
  const lines = (await readFile(record, 'utf8')).split('\n').filter((l) => !/^\s*node\.session\.auth\.password\s*=/.test(l));
  const line = `node.session.auth.password = ${value}`;
  const endAt = lines.findIndex((l) => /^# END RECORD/.test(l));
  if (endAt >= 0) lines.splice(endAt, 0, line);
  else {
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    lines.push(line, '');
  }
  await writeFile(record, lines.join('\n'), { mode: 0o600 });
  await chmod(record, 0o600);
  return record;
}
