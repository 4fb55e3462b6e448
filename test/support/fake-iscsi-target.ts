// A scripted iSCSI target on loopback for the in-process initiator's unit tests: it logs
// anyone in (straight to full feature phase) and answers each SCSI command with what
// `answer` returns for its LUN and CDB: parameter data (in Data-In PDUs of at most 8 KiB,
// status in the last one) or a status with sense data (a SCSI Response). Logouts are
// answered by closing. Every command seen is recorded, per connection.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface ScsiAnswer {
  /** Parameter data returned with GOOD status. */
  data?: Buffer;
  /** A status other than GOOD (0x02 CHECK CONDITION) and its sense data. */
  status?: number;
  sense?: Buffer;
  /** No answer at all: the target falls silent. */
  silent?: boolean;
  /**
   * A ping first: a NOP-In with a target transfer tag, the answer held back until the
   * initiator's NOP-Out with that tag comes (RFC 7143 11.19: the initiator must answer it).
   */
  ping?: boolean;
}

export interface SeenCommand {
  connection: number;
  lun: number;
  opcode: number;
  cdb: Buffer;
}

export interface FakeIscsiTarget {
  port: number;
  /** Connections accepted (one per login). */
  readonly connections: number;
  seen: SeenCommand[];
  /** Target transfer tags of the NOP-Outs that answered a ping. */
  pongs: number[];
  close(): Promise<void>;
}

/** Fixed-format sense data with `key` and the additional sense code/qualifier `asc`/`ascq`. */
export function fixedSense(key: number, asc = 0, ascq = 0): Buffer {
  const s = Buffer.alloc(18);
  s[0] = 0x70;
  s[2] = key & 0x0f;
  s[7] = 10;
  s[12] = asc;
  s[13] = ascq;
  return s;
}

/** REPORT LUNS parameter data for `luns` (peripheral addressing, or flat space past 255). */
export function reportLunsData(luns: number[]): Buffer {
  const b = Buffer.alloc(8 + luns.length * 8);
  b.writeUInt32BE(luns.length * 8, 0);
  luns.forEach((l, i) => b.writeUInt16BE(l, 8 + i * 8));
  return b;
}

/** Standard INQUIRY data (36 bytes) of a LU of peripheral `type` and `qualifier`. */
export function inquiryData(type: number, qualifier = 0): Buffer {
  const b = Buffer.alloc(36, 0x20);
  b[0] = ((qualifier & 7) << 5) | (type & 0x1f);
  b[1] = type === 5 ? 0x80 : 0;
  b[2] = 5;
  b[3] = 2;
  b[4] = 31;
  return b;
}

/** READ CAPACITY(16) parameter data (32 bytes). */
export function readCapacity16Data(lastLba: bigint, blockSize: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(lastLba, 0);
  b.writeUInt32BE(blockSize, 8);
  return b;
}

/** READ CAPACITY(10) parameter data (8 bytes). */
export function readCapacity10Data(lastLba: number, blockSize: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(lastLba, 0);
  b.writeUInt32BE(blockSize, 4);
  return b;
}

function dataIns(bhs: Buffer, data: Buffer, statSN: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off === 0 || off < data.length; off += 8192) {
    const part = data.subarray(off, off + 8192);
    const last = off + 8192 >= data.length;
    const pdu = Buffer.alloc(48);
    pdu[0] = 0x25;
    pdu[1] = last ? 0x81 : 0; // final + status
    pdu.writeUIntBE(part.length, 5, 3);
    bhs.copy(pdu, 16, 16, 20); // ITT
    pdu.writeUInt32BE(statSN, 24);
    const pad = Buffer.alloc((4 - (part.length % 4)) % 4);
    out.push(pdu, part, pad);
  }
  return out;
}

function scsiResponse(bhs: Buffer, status: number, sense: Buffer, statSN: number): Buffer {
  const data = sense.length ? Buffer.concat([Buffer.from([sense.length >> 8, sense.length & 0xff]), sense]) : Buffer.alloc(0);
  const pdu = Buffer.alloc(48);
  pdu[0] = 0x21;
  pdu[1] = 0x80;
  pdu[3] = status;
  pdu.writeUIntBE(data.length, 5, 3);
  bhs.copy(pdu, 16, 16, 20);
  pdu.writeUInt32BE(statSN, 24);
  return Buffer.concat([pdu, data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
}

/**
 * Calls `onPdu` with the basic header segment (48 bytes) of each whole PDU the initiator sends
 * on `socket`, in order; its AHS and data segment (padded to 4 bytes) are read past.
 */
export function onPdus(socket: Socket, onPdu: (bhs: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  socket.on('error', () => undefined);
  socket.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 48) {
      const dlen = buf.readUIntBE(5, 3);
      const total = 48 + buf[4]! * 4 + dlen + ((4 - (dlen % 4)) % 4);
      if (buf.length < total) break;
      const bhs = Buffer.from(buf.subarray(0, 48));
      buf = buf.subarray(total);
      onPdu(bhs);
    }
  });
}

/** The answer to login request `req` that takes the initiator straight to full feature phase, with StatSN `statSN`. */
export function loginAccepted(req: Buffer, statSN = 0): Buffer {
  const r = Buffer.alloc(48);
  r[0] = 0x23;
  r[1] = 0x80 | (req[1]! & 0x0c) | 0x03;
  req.copy(r, 8, 8, 20);
  r.writeUInt32BE(statSN, 24);
  return r;
}

/** Starts the target on 127.0.0.1:<free port>. */
export async function startFakeIscsiTarget(answer: (lun: number, cdb: Buffer) => ScsiAnswer): Promise<FakeIscsiTarget> {
  const seen: SeenCommand[] = [];
  const pongs: number[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    const connection = ++connections;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let statSN = 1;
    let held: (() => void) | undefined;
    onPdus(s, (bhs) => {
      const op = bhs[0]! & 0x3f;
      if (op === 0x03) {
        s.write(loginAccepted(bhs, statSN++));
      } else if (op === 0x01) {
        const lun = bhs.readUInt16BE(8);
        const cdb = Buffer.from(bhs.subarray(32, 48));
        seen.push({ connection, lun, opcode: cdb[0]!, cdb });
        const a = answer(lun, cdb);
        if (a.silent) return;
        const reply = (): void => {
          if (a.status !== undefined && a.status !== 0) s.write(scsiResponse(bhs, a.status, a.sense ?? Buffer.alloc(0), statSN++));
          else for (const b of dataIns(bhs, a.data ?? Buffer.alloc(0), statSN++)) s.write(b);
        };
        if (!a.ping) {
          reply();
          return;
        }
        const nop = Buffer.alloc(48);
        nop[0] = 0x20;
        nop[1] = 0x80;
        nop.writeUInt32BE(0xffffffff, 16); // ITT: not an answer
        nop.writeUInt32BE(0x1234 + seen.length, 20); // TTT: an answer is wanted
        nop.writeUInt32BE(statSN, 24); // not advanced
        s.write(nop);
        held = reply;
      } else if (op === 0x00) {
        // NOP-Out: the ping's answer (its TTT), and the held back answer goes out
        pongs.push(bhs.readUInt32BE(20));
        const r = held;
        held = undefined;
        r?.();
      } else if (op === 0x06) {
        s.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    seen,
    pongs,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
