// One session with an iSCSI target, in-process: a minimal iSCSI initiator (RFC 7143) that
// logs in (optionally with CHAP, RFC 1994 MD5), sends SCSI commands one at a time (REPORT
// LUNS here; INQUIRY and READ CAPACITY in iscsi-lun-commands.ts) and logs out.
//
// Why not a tool: libiscsi-bin's iscsi-ls -s lists the LUNs of *every* target the
// portal announces and exits at the first one that refuses the login, so it cannot
// list the LUNs of one target when another target on the same portal has CHAP (or an
// ACL) the pool's credentials do not open. No other Debian tool sends REPORT LUNS
// without a kernel initiator. And the per-LUN tools (iscsi-inq, iscsi-readcapacity16) cost
// a process and a login per LUN and command, where libvirt's backend asks every LUN in the
// session that asked REPORT LUNS. Data moves through qemu-img's iSCSI driver.
import { createHash, randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { CancelledError, FailedPreconditionError, NotFoundError, PermissionDeniedError, UnavailableError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { parseTargetAddress } from './iscsi-target-address.js';

export interface ReportLunsOptions {
  host: string;
  port: number;
  target: string;
  initiator: string;
  chap?: { username: string; password: Buffer };
  timeoutMs?: number;
  signal?: AbortSignal;
}

const BHS = 48;
/**
 * The largest data segment taken in one PDU. None is declared at login, so the target may send
 * the protocol default of 8 KiB (RFC 7143 MaxRecvDataSegmentLength); more is a target not
 * following it, and a bound on what one PDU can make this process hold.
 */
const MAX_PDU_DATA = 8192;
/** Bytes a PDU can take on the wire at most: header, largest AHS, data, padding. */
const MAX_PDU_BYTES = BHS + 255 * 4 + MAX_PDU_DATA + 4;
const OP_LOGIN_REQ = 0x03;
const OP_LOGIN_RSP = 0x23;
const OP_SCSI_CMD = 0x01;
const OP_SCSI_RSP = 0x21;
const OP_DATA_IN = 0x25;
const OP_LOGOUT_REQ = 0x06;
const OP_NOP_IN = 0x20;
const OP_NOP_OUT = 0x00;
const OP_REJECT = 0x3f;
const IMMEDIATE = 0x40;
/**
 * Login redirects followed before giving up: a portal group hands the login to one of its
 * portals, which takes it; more than a few hops is a loop between misconfigured portals.
 */
const MAX_REDIRECTS = 4;

/** A login the target redirected (status class 1) to the TargetAddress it gave. */
class LoginRedirect {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly address: string,
  ) {}
}

interface Pdu {
  opcode: number;
  bhs: Buffer;
  data: Buffer;
}

/** The sequence number after `sn`: StatSN is a 32-bit serial number (RFC 1982), 0xffffffff + 1 = 0. */
export function nextSN(sn: number): number {
  return (sn + 1) >>> 0;
}

/** Key=value\0 text of a login request or response. */
export function encodeKeys(keys: ReadonlyArray<[string, string]>): Buffer {
  return Buffer.from(keys.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

export function decodeKeys(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of data.toString('utf8').split('\0')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

/** The CHAP response: MD5(identifier byte || secret || challenge), as 0x-hex. */
export function chapResponse(identifier: number, secret: Buffer, challengeHex: string): string {
  const c = challengeHex.replace(/^0x/i, '');
  const challenge = /^0b/i.test(challengeHex) ? Buffer.from(challengeHex.slice(2), 'base64') : Buffer.from(c, 'hex');
  return `0x${createHash('md5').update(Buffer.from([identifier & 0xff])).update(secret).update(challenge).digest('hex')}`;
}

/** The longest challenge taken (open-iscsi's bound on a large binary value). */
const MAX_CHAP_CHALLENGE = 1024;

/**
 * The identifier and challenge of a target's CHAP answer to CHAP_A=5, checked (RFC 7143 12.1.3,
 * RFC 1994): the MD5 algorithm offered, an identifier of one octet, a challenge of whole hex
 * (0x) or base64 (0b) bytes. Anything else is refused before the secret is hashed: a response
 * over the part Buffer.from() keeps of a malformed challenge can only be refused, and the user
 * would be told to check a secret that is right. `what`: the target and portal, for the error.
 */
export function chapChallenge(keys: Map<string, string>, what: string): { id: number; challenge: string } {
  const bad = (key: string, why: string): FailedPreconditionError =>
    new FailedPreconditionError(`iSCSI target ${what} sent a malformed CHAP challenge: ${key} '${printable(keys.get(key) ?? '', 80)}' ${why}; no response was sent`);
  if (keys.get('CHAP_A') !== '5') throw bad('CHAP_A', 'is not 5 (CHAP with MD5), the one algorithm offered');
  const i = keys.get('CHAP_I') ?? '';
  if (!/^\d{1,3}$/.test(i) || Number(i) > 255) throw bad('CHAP_I', 'is not an identifier from 0 to 255');
  const c = keys.get('CHAP_C') ?? '';
  const hex = /^0x((?:[0-9a-f]{2})+)$/i.exec(c)?.[1];
  const b64 = /^0b([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(c) && c.length > 2;
  if (hex === undefined && !b64) throw bad('CHAP_C', 'is not a challenge of whole bytes in hex (0x...) or base64 (0b...)');
  const bytes = hex !== undefined ? hex.length / 2 : Buffer.from(c.slice(2), 'base64').length;
  if (bytes > MAX_CHAP_CHALLENGE) throw bad('CHAP_C', `is a challenge of ${bytes} bytes; at most ${MAX_CHAP_CHALLENGE}`);
  return { id: Number(i), challenge: c };
}

/**
 * LUN numbers of REPORT LUNS parameter data: the first two bytes of each 8-byte LUN, the
 * address method bits kept (flat space LUN 300 is 0x412C = 16684). That is the number
 * libiscsi's tools and qemu's iscsi driver put back on the wire for the LUN (they send it
 * as those two bytes), the one libvirt 9.0 names the volume after (unit:0:0:16684) and the
 * one the Linux kernel gives the LU; without the method bits LUN 300 would be sent as
 * peripheral bus 1 LUN 44, a LUN the target does not have.
 */
export function parseReportLunsData(data: Buffer): number[] {
  if (data.length < 8) return [];
  const listLength = data.readUInt32BE(0);
  const end = Math.min(data.length, 8 + listLength);
  const luns: number[] = [];
  for (let off = 8; off + 8 <= end; off += 8) luns.push((data[off]! << 8) | data[off + 1]!);
  return luns;
}

/** Login status class/detail (RFC 7143 11.13.5) as a typed error. */
export function loginStatusError(statusClass: number, detail: number, target: string, portal: string): Error {
  const t = `'${printable(target, 200)}' at ${portal}`;
  if (statusClass === 2) {
    if (detail === 1) return new PermissionDeniedError(`iSCSI login to target ${t} failed: authentication failure (wrong or missing CHAP credentials)`);
    if (detail === 2) return new PermissionDeniedError(`iSCSI login to target ${t} failed: this initiator is not authorized for the target`);
    if (detail === 3 || detail === 4) return new NotFoundError(`iSCSI login to target ${t} failed: the target does not exist on this portal`);
    return new FailedPreconditionError(`iSCSI login to target ${t} refused (initiator error, class 2 detail ${detail})`);
  }
  if (statusClass === 3) return new UnavailableError(`iSCSI login to target ${t} failed: target error (class 3 detail ${detail}), try again later`);
  return new FailedPreconditionError(`iSCSI login to target ${t} redirected or refused (class ${statusClass} detail ${detail})`);
}

class PduSocket {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (p: Pdu) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  /** How much may be read ahead of the PDUs taken: two PDUs, and the data a command asked for (expect()). */
  private readAhead = 2 * MAX_PDU_BYTES;

  /** `what`: the target and portal, named when the connection ends under a read. */
  constructor(
    readonly socket: Socket,
    private readonly what = 'the iSCSI target',
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      // what is read ahead of the PDUs taken stays bounded: a target that floods is dropped,
      // not buffered until the timeout (gigabytes in the root agent)
      const refused = this.oversized() ?? (this.buf.length > this.readAhead ? `the iSCSI target sent more than it was asked for (${this.buf.length} bytes unread)` : undefined);
      if (refused) {
        this.fail(new FailedPreconditionError(refused));
        socket.destroy();
        return;
      }
      this.pump();
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new UnavailableError(`${this.what} closed the connection`)));
  }

  /**
   * A command asks for up to `bytes` of data: an honest target may send all of it in one burst
   * (its Data-In PDUs of 8 KiB each, each with its header), before the first is taken.
   */
  expect(bytes: number): void {
    this.readAhead = 2 * MAX_PDU_BYTES + bytes + Math.ceil(bytes / MAX_PDU_DATA) * BHS;
  }

  /** The first failure (a timeout, a cancel, the connection's end), once there is one. */
  get failed(): Error | undefined {
    return this.failure;
  }

  fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(this.failure);
  }

  /** Why the next PDU is refused: its data segment is larger than a target may send. */
  private oversized(): string | undefined {
    if (this.buf.length < BHS) return undefined;
    const dlen = this.buf.readUIntBE(5, 3);
    return dlen > MAX_PDU_DATA ? `the iSCSI target sent a PDU of ${dlen} data bytes; at most ${MAX_PDU_DATA} (MaxRecvDataSegmentLength) allowed` : undefined;
  }

  private take(): Pdu | undefined {
    if (this.buf.length < BHS) return undefined;
    const ahs = this.buf[4]! * 4;
    const dlen = this.buf.readUIntBE(5, 3);
    const total = BHS + ahs + dlen + ((4 - (dlen % 4)) % 4);
    if (this.buf.length < total) return undefined;
    const bhs = this.buf.subarray(0, BHS);
    const data = this.buf.subarray(BHS + ahs, BHS + ahs + dlen);
    this.buf = this.buf.subarray(total);
    return { opcode: bhs[0]! & 0x3f, bhs, data };
  }

  private pump(): void {
    if (!this.waiting) return;
    const pdu = this.take();
    if (!pdu) return;
    const w = this.waiting;
    this.waiting = undefined;
    w.resolve(pdu);
  }

  read(): Promise<Pdu> {
    const ready = this.take();
    if (ready) return Promise.resolve(ready);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  write(bhs: Buffer, data: Buffer = Buffer.alloc(0)): void {
    bhs.writeUIntBE(data.length, 5, 3);
    const pad = (4 - (data.length % 4)) % 4;
    this.socket.write(Buffer.concat([bhs, data, Buffer.alloc(pad)]));
  }
}

/** The first REPORT LUNS asks for 64 KiB (8,191 LUNs); a longer list is asked for again whole. */
const FIRST_REPORT_BYTES = 64 * 1024;
/** 65,536 LUNs, every two-byte LUN number there is (parseReportLunsData). */
const MAX_REPORT_BYTES = 8 + 65_536 * 8;

/** What a SCSI command ended with: its status, the parameter data, the sense data. */
export interface ScsiResult {
  /** SCSI status: 0 GOOD, 0x02 CHECK CONDITION, 0x08 BUSY, ... */
  status: number;
  data: Buffer;
  /** Sense data of a CHECK CONDITION (SCSI Response data segment, its length prefix removed). */
  sense: Buffer;
}

/**
 * Sends one SCSI command (a read, `alloc` bytes at most) to `lun` and returns how it ended.
 * `name`: the command, for errors (`REPORT LUNS`, `INQUIRY of LUN 3`). `setStatSN`: the StatSN
 * of the target's answer.
 */
async function scsiRead(
  io: PduSocket,
  where: string,
  seq: { itt: number; cmdSN: number; statSN: number },
  lun: number,
  cdb: Buffer,
  alloc: number,
  name: string,
  setStatSN: (sn: number) => void,
): Promise<ScsiResult> {
  const cmd = Buffer.alloc(BHS);
  cmd[0] = OP_SCSI_CMD;
  cmd[1] = 0x80 | 0x40 | 0x01; // final, read, simple
  // the LUN as REPORT LUNS gave it: its two bytes, the address method kept (parseReportLunsData)
  cmd.writeUInt16BE(lun & 0xffff, 8);
  cmd.writeUInt32BE(seq.itt, 16);
  cmd.writeUInt32BE(alloc, 20);
  cmd.writeUInt32BE(seq.cmdSN, 24);
  cmd.writeUInt32BE(seq.statSN, 28);
  cdb.copy(cmd, 32, 0, Math.min(cdb.length, 16));
  io.expect(alloc);
  io.write(cmd);
  const chunks: Buffer[] = [];
  let received = 0;
  for (;;) {
    const p = await io.read();
    if (p.opcode === OP_NOP_IN) {
      if (p.bhs.readUInt32BE(20) !== NO_TAG) io.write(nopOut(p, seq.cmdSN + 1, seq.statSN), p.data);
      continue;
    }
    if (p.opcode === OP_REJECT) throw new FailedPreconditionError(`${where} rejected ${name}`);
    if (p.opcode === OP_DATA_IN) {
      received += p.data.length;
      if (received > alloc) throw new FailedPreconditionError(`${where} sent more than the ${alloc} bytes of ${name} data asked for`);
      chunks.push(Buffer.from(p.data));
      if (p.bhs[1]! & 0x01) {
        setStatSN(nextSN(p.bhs.readUInt32BE(24)));
        return { status: p.bhs[3]!, data: Buffer.concat(chunks), sense: Buffer.alloc(0) };
      }
      continue;
    }
    if (p.opcode === OP_SCSI_RSP) {
      if (p.bhs[2] !== 0) throw new FailedPreconditionError(`${where} failed ${name} (iSCSI response ${p.bhs[2]}, SCSI status 0x${p.bhs[3]!.toString(16)})`);
      setStatSN(nextSN(p.bhs.readUInt32BE(24)));
      // the data segment of a CHECK CONDITION: SenseLength (2 bytes), then the sense data
      const senseLength = p.data.length >= 2 ? p.data.readUInt16BE(0) : 0;
      const sense = Buffer.from(p.data.subarray(2, 2 + Math.min(senseLength, p.data.length - 2)));
      return { status: p.bhs[3]!, data: Buffer.concat(chunks), sense };
    }
  }
}

/** The reserved tag: a NOP-In with this target transfer tag wants no answer. */
const NO_TAG = 0xffffffff;

/**
 * The answer to a target's ping (a NOP-In with a target transfer tag): an immediate NOP-Out
 * with its LUN and tag (and the ping data, sent with it), as RFC 7143 11.18/11.19 require (libiscsi answers them; a
 * target may fail a connection whose pings go unanswered). `cmdSN`: the next command's (an
 * immediate PDU does not advance it).
 */
function nopOut(ping: Pdu, cmdSN: number, expStatSN: number): Buffer {
  const out = Buffer.alloc(BHS);
  out[0] = IMMEDIATE | OP_NOP_OUT;
  out[1] = 0x80;
  ping.bhs.copy(out, 8, 8, 16); // LUN
  out.writeUInt32BE(NO_TAG, 16); // ITT: not a new task
  ping.bhs.copy(out, 20, 20, 24); // TTT
  out.writeUInt32BE(cmdSN >>> 0, 24);
  out.writeUInt32BE(expStatSN, 28);
  return out;
}

/** A logged-in session: commands are sent one at a time, each answered before the next. */
export interface TargetSession {
  /** `iSCSI target 'IQN' at HOST:PORT`, for errors. */
  readonly where: string;
  /** The target's LUN numbers (REPORT LUNS, select report 0), as they are sent back. */
  reportLuns(): Promise<number[]>;
  /** One SCSI read command to `lun`; `name` says what it is in errors and in the time limit's. */
  command(lun: number, cdb: Buffer, alloc: number, name: string): Promise<ScsiResult>;
}

function portalOf(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Logs in to the target, runs `body` with the session and logs out. A login the portal
 * redirects is made again at the address it gives, as libiscsi (libvirt's iscsi-direct
 * backend, and qemu-img, which moves the data) does. One time limit (`timeoutMs`, default
 * 30 s) covers the whole: the redirects, the login and every command of `body`.
 */
export async function withTargetSession<T>(opts: ReportLunsOptions, body: (session: TargetSession) => Promise<T>): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // one time limit over all the hops: a chain of redirects does not get 30 s each
  const deadline = Date.now() + timeoutMs;
  let at = { host: opts.host, port: opts.port };
  for (let hop = 0; ; hop++) {
    const r = await oneSession({ ...opts, ...at, timeoutMs: Math.max(1, deadline - Date.now()) }, timeoutMs, body);
    if (!(r instanceof LoginRedirect)) return r.value;
    if (hop >= MAX_REDIRECTS) {
      throw new FailedPreconditionError(
        `iSCSI login to target '${printable(opts.target, 200)}' at ${portalOf(opts.host, opts.port)} was redirected ${hop + 1} times (last to ${r.address}): too many redirects, at most ${MAX_REDIRECTS} are followed`,
      );
    }
    at = { host: r.host, port: r.port };
  }
}

/** Logs in to the target and returns its LUN numbers (REPORT LUNS, select report 0). */
export async function reportLuns(opts: ReportLunsOptions): Promise<number[]> {
  return withTargetSession(opts, (s) => s.reportLuns());
}

/** One connection: what `body` returned, or where the portal redirected the login. */
async function oneSession<T>(opts: ReportLunsOptions, totalMs: number, body: (session: TargetSession) => Promise<T>): Promise<{ value: T } | LoginRedirect> {
  const portal = portalOf(opts.host, opts.port);
  if (opts.signal?.aborted) throw new CancelledError('REPORT LUNS cancelled');
  const socket = new Socket();
  const io = new PduSocket(socket, `iSCSI target '${printable(opts.target, 200)}' at ${portal}`);
  // what the target has not answered yet, named when the time limit ends the wait
  let awaiting = 'accept the connection';
  // the client's own limit, not the caller's deadline (that one cancels, through the signal):
  // the portal's silence, UNAVAILABLE as for the iSCSI tools the agent stops (iscsiToolError)
  const timer = setTimeout(() => {
    io.fail(new UnavailableError(`iSCSI target '${printable(opts.target, 200)}' at ${portal} did not ${awaiting} within ${totalMs} ms`));
    socket.destroy();
  }, opts.timeoutMs ?? totalMs);
  const onAbort = (): void => {
    io.fail(new CancelledError('REPORT LUNS cancelled'));
    socket.destroy();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err: NodeJS.ErrnoException) =>
        reject(new UnavailableError(`cannot connect to iSCSI portal ${portal}: ${err.code ?? err.message}`)),
      );
      // the deadline and a cancel destroy the socket while it connects: that emits neither
      // 'connect' nor 'error', only 'close', which ends this wait with their reason
      socket.once('close', () => reject(io.failed ?? new UnavailableError(`the connection to iSCSI portal ${portal} closed before it was up`)));
      socket.connect({ host: opts.host, port: opts.port });
    });
    awaiting = 'answer the login';
    const isid = Buffer.concat([Buffer.from([0x80]), randomBytes(3), Buffer.from([0, 0])]);
    let statSN = 0;
    let cmdSN = 1;
    let itt = 1;

    const login = async (csg: number, nsg: number, transit: boolean, keys: ReadonlyArray<[string, string]>): Promise<{ keys: Map<string, string>; transit: boolean; nsg: number }> => {
      const bhs = Buffer.alloc(BHS);
      bhs[0] = IMMEDIATE | OP_LOGIN_REQ;
      bhs[1] = (transit ? 0x80 : 0) | (csg << 2) | (transit ? nsg : 0);
      isid.copy(bhs, 8);
      bhs.writeUInt32BE(itt, 16);
      bhs.writeUInt32BE(cmdSN, 24);
      bhs.writeUInt32BE(statSN, 28);
      io.write(bhs, encodeKeys(keys));
      const rsp = await io.read();
      if (rsp.opcode !== OP_LOGIN_RSP) throw new FailedPreconditionError(`iSCSI target ${portal} answered a login with opcode 0x${rsp.opcode.toString(16)}`);
      const cls = rsp.bhs[36]!;
      const detail = rsp.bhs[37]!;
      const answered = decodeKeys(rsp.data);
      const address = answered.get('TargetAddress');
      if (cls === 1 && address !== undefined) {
        const to = parseTargetAddress(address);
        if (!to) {
          throw new FailedPreconditionError(
            `iSCSI target '${printable(opts.target, 200)}' at ${portal} redirected the login to TargetAddress '${printable(address, 200)}', which is not a host name or address with an optional :port (not followed)`,
          );
        }
        throw new LoginRedirect(to.host, to.port, portalOf(to.host, to.port));
      }
      if (cls !== 0) throw loginStatusError(cls, detail, opts.target, portal);
      statSN = nextSN(rsp.bhs.readUInt32BE(24));
      return { keys: answered, transit: (rsp.bhs[1]! & 0x80) !== 0, nsg: rsp.bhs[1]! & 0x03 };
    };

    const base: Array<[string, string]> = [
      ['InitiatorName', opts.initiator],
      ['SessionType', 'Normal'],
      ['TargetName', opts.target],
    ];
    if (opts.chap) {
      let r = await login(0, 1, false, [...base, ['AuthMethod', 'CHAP,None']]);
      const method = r.keys.get('AuthMethod');
      if (method === 'CHAP') {
        r = await login(0, 1, false, [['CHAP_A', '5']]);
        const { id, challenge } = chapChallenge(r.keys, `'${printable(opts.target, 200)}' at ${portal}`);
        r = await login(0, 3, true, [
          ['CHAP_N', opts.chap.username],
          ['CHAP_R', chapResponse(id, opts.chap.password, challenge)],
        ]);
      } else {
        r = await login(0, 3, true, []);
      }
      await finishLogin(r);
    } else {
      const r = await login(0, 3, true, [...base, ['AuthMethod', 'None']]);
      await finishLogin(r);
    }

    async function finishLogin(r: { transit: boolean; nsg: number }): Promise<void> {
      // A target that wants the operational stage answers with NSG=1: go through it with defaults.
      let cur = r;
      for (let i = 0; i < 4 && !(cur.transit && cur.nsg === 3); i++) {
        cur = await login(1, 3, true, [
          ['HeaderDigest', 'None'],
          ['DataDigest', 'None'],
        ]);
      }
      if (!(cur.transit && cur.nsg === 3)) throw new FailedPreconditionError(`iSCSI login to ${portal} did not reach full feature phase`);
    }

    const where = `iSCSI target '${printable(opts.target, 200)}' at ${portal}`;
    const command = async (lun: number, cdb: Buffer, alloc: number, name: string): Promise<ScsiResult> => {
      awaiting = `answer ${name}`;
      itt++;
      const r = await scsiRead(io, where, { itt, cmdSN, statSN }, lun, cdb, alloc, name, (sn) => (statSN = sn));
      cmdSN++;
      return r;
    };
    const session: TargetSession = {
      where,
      command,
      reportLuns: async () => {
        // SPC: a list longer than the allocation asked for is cut, and its length field says how
        // long it is: asked again for the whole of it (a target of more than 8,191 LUNs)
        let alloc = FIRST_REPORT_BYTES;
        let data: Buffer;
        for (;;) {
          const cdb = Buffer.alloc(12);
          cdb[0] = 0xa0; // REPORT LUNS, select report 0
          cdb.writeUInt32BE(alloc, 6);
          const r = await command(0, cdb, alloc, 'REPORT LUNS');
          if (r.status !== 0) throw new FailedPreconditionError(`REPORT LUNS on ${portal} ended with SCSI status 0x${r.status.toString(16)}`);
          data = r.data;
          const whole = data.length >= 4 ? 8 + data.readUInt32BE(0) : 0;
          if (whole <= data.length || whole <= alloc || alloc >= MAX_REPORT_BYTES) break;
          alloc = Math.min(whole, MAX_REPORT_BYTES);
        }
        return parseReportLunsData(data);
      },
    };
    const value = await body(session);
    // Logout (close the session); the answer is not needed.
    const logout = Buffer.alloc(BHS);
    logout[0] = IMMEDIATE | OP_LOGOUT_REQ;
    logout[1] = 0x80;
    logout.writeUInt32BE(itt + 1, 16);
    logout.writeUInt32BE(cmdSN, 24);
    logout.writeUInt32BE(statSN, 28);
    io.write(logout);
    return { value };
  } catch (err) {
    // the redirect is an answer, not a failure: the caller logs in where it points
    if (err instanceof LoginRedirect) return err;
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    socket.end();
    socket.destroy();
  }
}
