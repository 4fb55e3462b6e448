// INQUIRY and READ CAPACITY of one LUN, in a session of the in-process initiator
// (iscsi-report-luns.ts): what an iscsi-direct refresh needs of each LUN, asked in the session
// that asked REPORT LUNS, as libvirt 9.0's backend asks them in its one libiscsi context.
//
// The answers come from the network: every length is checked before a field is read, and a
// malformed or refused answer is FAILED_PRECONDITION naming the target, its portal and the LUN.
import { FailedPreconditionError, NotFoundError } from '../errors/errors.js';
import type { ScsiResult, TargetSession } from './iscsi-report-luns.js';
import type { ReadCapacity } from './libiscsi-tools.js';

const GOOD = 0x00;
const CHECK_CONDITION = 0x02;
const SENSE_ILLEGAL_REQUEST = 0x05;
const SENSE_UNIT_ATTENTION = 0x06;
/** ASC 0x25: LOGICAL UNIT NOT SUPPORTED, the target has no LU at that number. */
const ASC_LUN_NOT_SUPPORTED = 0x25;
/** A UNIT ATTENTION (a reset, a changed LU) is reported once per nexus: the command is asked again. */
const UNIT_ATTENTION_RETRIES = 3;

/** Standard INQUIRY asked for 96 bytes: the 36 SPC requires and the vendor part libiscsi asks. */
const INQUIRY_ALLOC = 96;
const READ_CAPACITY16_ALLOC = 32;
const READ_CAPACITY10_ALLOC = 8;

/** Sense key names (SPC-4 table 54). */
const SENSE_KEYS = [
  'NO SENSE',
  'RECOVERED ERROR',
  'NOT READY',
  'MEDIUM ERROR',
  'HARDWARE ERROR',
  'ILLEGAL REQUEST',
  'UNIT ATTENTION',
  'DATA PROTECT',
  'BLANK CHECK',
  'VENDOR SPECIFIC',
  'COPY ABORTED',
  'ABORTED COMMAND',
  'RESERVED',
  'VOLUME OVERFLOW',
  'MISCOMPARE',
  'COMPLETED',
];

export interface StandardInquiry {
  /** PERIPHERAL QUALIFIER: 0 connected, 1 not connected now, 3 no LU can be here. */
  qualifier: number;
  /** PERIPHERAL DEVICE TYPE: 0x00 disk, 0x05 CD/DVD, 0x0c storage array controller, ... */
  deviceType: number;
}

/** The sense key of fixed (0x70/0x71) or descriptor (0x72/0x73) sense data; undefined when there is none. */
export function senseKey(sense: Buffer): number | undefined {
  const code = (sense[0] ?? 0) & 0x7f;
  if ((code === 0x70 || code === 0x71) && sense.length >= 3) return sense[2]! & 0x0f;
  if ((code === 0x72 || code === 0x73) && sense.length >= 2) return sense[1]! & 0x0f;
  return undefined;
}

/** ADDITIONAL SENSE CODE and QUALIFIER of fixed or descriptor sense data (0 where the data is too short). */
function ascOf(sense: Buffer): [number, number] {
  const fixed = ((sense[0] ?? 0) & 0x7f) < 0x72;
  return fixed ? [sense[12] ?? 0, sense[13] ?? 0] : [sense[2] ?? 0, sense[3] ?? 0];
}

/** `SCSI status CHECK CONDITION, sense key ILLEGAL REQUEST (ASC/ASCQ 0x20/0x00)` and the like. */
export function describeStatus(r: Pick<ScsiResult, 'status' | 'sense'>): string {
  if (r.status !== CHECK_CONDITION) return `SCSI status 0x${r.status.toString(16)}`;
  const key = senseKey(r.sense);
  if (key === undefined) return 'SCSI status CHECK CONDITION without sense data';
  const [asc, ascq] = ascOf(r.sense);
  const hex = (b: number | undefined): string => `0x${(b ?? 0).toString(16).padStart(2, '0')}`;
  return `SCSI status CHECK CONDITION, sense key ${SENSE_KEYS[key]} (ASC/ASCQ ${hex(asc)}/${hex(ascq)})`;
}

/** A command, asked again while the LUN answers UNIT ATTENTION (at most a few times). */
async function ask(s: TargetSession, lun: number, cdb: Buffer, alloc: number, name: string): Promise<ScsiResult> {
  for (let i = 0; ; i++) {
    const r = await s.command(lun, cdb, alloc, name);
    if (r.status === CHECK_CONDITION && senseKey(r.sense) === SENSE_UNIT_ATTENTION && i < UNIT_ATTENTION_RETRIES) continue;
    return r;
  }
}

/** The target says it has no LU at that number (ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED). */
function noSuchLun(r: ScsiResult): boolean {
  return r.status === CHECK_CONDITION && senseKey(r.sense) === SENSE_ILLEGAL_REQUEST && ascOf(r.sense)[0] === ASC_LUN_NOT_SUPPORTED;
}

/**
 * A command the LUN did not carry out. NOT_FOUND when the target has no such LUN (a volume whose
 * LUN was removed on the array), as the tools' LOGICAL_UNIT_NOT_SUPPORTED was (iscsiToolError).
 */
function failed(s: TargetSession, lun: number, name: string, r: ScsiResult): FailedPreconditionError | NotFoundError {
  if (noSuchLun(r)) return new NotFoundError(`${s.where} has no LUN ${lun}: ${name} failed: ${describeStatus(r)}`);
  return new FailedPreconditionError(`${s.where}: ${name} failed: ${describeStatus(r)}`);
}

function tooShort(s: Pick<TargetSession, 'where'>, name: string, got: number, needs: string): FailedPreconditionError {
  return new FailedPreconditionError(`${s.where}: ${name} returned ${got} bytes; at least ${needs} expected`);
}

/** The peripheral byte of standard INQUIRY data (byte 0), checked to be there. */
export function parseStandardInquiry(s: Pick<TargetSession, 'where'>, lun: number, data: Buffer): StandardInquiry {
  if (data.length < 1) throw tooShort(s, `INQUIRY of LUN ${lun}`, data.length, '1 (the peripheral qualifier and device type)');
  return { qualifier: data[0]! >> 5, deviceType: data[0]! & 0x1f };
}

/** Standard INQUIRY (EVPD 0) of `lun`. */
export async function inquiry(s: TargetSession, lun: number): Promise<StandardInquiry> {
  const name = `INQUIRY of LUN ${lun}`;
  const cdb = Buffer.from([0x12, 0, 0, 0, INQUIRY_ALLOC, 0]);
  const r = await ask(s, lun, cdb, INQUIRY_ALLOC, name);
  if (r.status !== GOOD) throw failed(s, lun, name, r);
  return parseStandardInquiry(s, lun, r.data);
}

/**
 * The block count is a 64-bit field: a LUN without blocks (tgtd's 0-byte backing file) answers
 * last LBA 0xffffffffffffffff, and + 1 wraps to 0, as libiscsi's own "Total size:0".
 */
function capacityOf(lastLba: bigint, blockSize: bigint): ReadCapacity {
  return { lastLba, blockSize, capacity: BigInt.asUintN(64, lastLba + 1n) * blockSize };
}

/**
 * READ CAPACITY(16) of `lun`; READ CAPACITY(10) when the LUN refuses (16) (CHECK CONDITION: an
 * SBC-2 disk, or a CD/DVD drive, MMC having no (16)), as qemu's iSCSI driver, the data path,
 * does (block/iscsi.c iscsi_readcapacity_sync).
 */
export async function readCapacity(s: TargetSession, lun: number): Promise<ReadCapacity> {
  const name16 = `READ CAPACITY(16) of LUN ${lun}`;
  const cdb16 = Buffer.alloc(16);
  cdb16[0] = 0x9e; // SERVICE ACTION IN(16)
  cdb16[1] = 0x10; // READ CAPACITY(16)
  cdb16.writeUInt32BE(READ_CAPACITY16_ALLOC, 10);
  const r16 = await ask(s, lun, cdb16, READ_CAPACITY16_ALLOC, name16);
  if (r16.status === GOOD) {
    if (r16.data.length < 12) throw tooShort(s, name16, r16.data.length, '12 (last LBA and block length)');
    return capacityOf(r16.data.readBigUInt64BE(0), BigInt(r16.data.readUInt32BE(8)));
  }
  // a LUN the target does not have is not asked again with (10)
  if (r16.status !== CHECK_CONDITION || noSuchLun(r16)) throw failed(s, lun, name16, r16);
  const name10 = `READ CAPACITY(10) of LUN ${lun}`;
  const r10 = await ask(s, lun, Buffer.from([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]), READ_CAPACITY10_ALLOC, name10);
  if (r10.status !== GOOD) throw failed(s, lun, name10, r10);
  if (r10.data.length < 8) throw tooShort(s, name10, r10.data.length, '8 (last LBA and block length)');
  const lastLba = r10.data.readUInt32BE(0);
  // SBC: 0xffffffff says "ask READ CAPACITY(16)", the one the LUN refused
  if (lastLba === 0xffffffff) {
    throw new FailedPreconditionError(
      `${s.where}: ${name10} says the LUN has more blocks than it can count, and READ CAPACITY(16) was refused (${describeStatus(r16)})`,
    );
  }
  return capacityOf(BigInt(lastLba), BigInt(r10.data.readUInt32BE(4)));
}
