// A light decoder for volume listings: reads only what `vol-list` prints (short name, path,
// type, capacity, allocation) straight from ListVolumesResponse wire bytes into typed arrays,
// without building a ts-proto Volume graph (definition, target, permissions, timestamps ...)
// per volume: for a pool of 10,000 volumes that graph, its garbage and the strings were most of
// the CLI's run time. Names and paths stay byte ranges of the response until printed
// (cli/format/volume.ts renderVolumeListing copies them into the output as they are).
//
// It walks the messages the way the generated decoder (libs/proto, ts-proto over
// @bufbuild/protobuf's BinaryReader) does: last occurrence of a field wins, a repeated
// sub-message replaces the earlier one, a field with an unexpected wire type is skipped, tag 0
// or an end-group tag ends the message. Fields it does not print are skipped by wire type.
// test/unit/cli/volume-rows.test.ts checks it against the generated decoder.

/** Buffer.prototype.utf8Slice: what buf.toString('utf8', s, e) calls after its argument checks. */
type Utf8SliceBuffer = Buffer & { utf8Slice(start: number, end: number): string };
const HAS_UTF8_SLICE = typeof (Buffer.prototype as Partial<Utf8SliceBuffer>).utf8Slice === 'function';

class WireReader {
  pos = 0;
  readonly len: number;
  /** the last 64-bit varint, split in two 32-bit halves */
  lo = 0;
  hi = 0;
  /**
   * Strings come out of Buffer's UTF-8 decoding: the same text as the generated decoder's
   * TextDecoder (U+FFFD for invalid sequences, a leading U+FEFF kept), cheaper for short strings.
   */
  readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.len = bytes.length;
  }

  private bounds(): void {
    if (this.pos > this.len) throw new RangeError('premature EOF');
  }

  /** BinaryReader.uint32 (varint32read): up to 10 bytes, the low 32 bits. */
  uint32(): number {
    const buf = this.buf;
    let b = buf[this.pos++]!;
    if ((b & 0x80) === 0) {
      this.bounds();
      return b;
    }
    let result = b & 0x7f;
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 7;
    if ((b & 0x80) === 0) {
      this.bounds();
      return result;
    }
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 14;
    if ((b & 0x80) === 0) {
      this.bounds();
      return result;
    }
    b = buf[this.pos++]!;
    result |= (b & 0x7f) << 21;
    if ((b & 0x80) === 0) {
      this.bounds();
      return result;
    }
    b = buf[this.pos++]!;
    result |= (b & 0x0f) << 28;
    for (let n = 5; (b & 0x80) !== 0 && n < 10; n++) b = buf[this.pos++]!;
    if ((b & 0x80) !== 0) throw new Error('invalid varint');
    this.bounds();
    return result >>> 0;
  }

  /** BinaryReader's varint64read: sets lo/hi. */
  varint64(): void {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      const b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        this.done64(pos, lo, hi);
        return;
      }
    }
    const middle = buf[pos++]!;
    lo |= (middle & 0x0f) << 28;
    hi = (middle & 0x70) >> 4;
    if ((middle & 0x80) === 0) {
      this.done64(pos, lo, hi);
      return;
    }
    for (let shift = 3; shift <= 31; shift += 7) {
      const b = buf[pos++]!;
      hi |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        this.done64(pos, lo, hi);
        return;
      }
    }
    throw new Error('invalid varint');
  }

  private done64(pos: number, lo: number, hi: number): void {
    this.pos = pos;
    this.bounds();
    this.lo = lo;
    this.hi = hi;
  }

  /** uint64 as a number when below 2^53, else as a bigint (the generated decoder's value). */
  uint64(): number | bigint {
    this.varint64();
    const hi = this.hi >>> 0;
    const lo = this.lo >>> 0;
    if (hi < 0x200000) return hi * 0x100000000 + lo;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A length-delimited field: returns its start; pos moves past it. */
  lengthDelimited(): number {
    const n = this.uint32();
    const start = this.pos;
    this.pos += n;
    this.bounds();
    return start;
  }

  /** BinaryReader.skip(wireType) without a field number, as the generated code calls it. */
  skip(wireType: number, fieldNo?: number, depth = 100): void {
    switch (wireType) {
      case 0:
        while (this.buf[this.pos++]! & 0x80) {
          /* varint */
        }
        break;
      case 1:
        this.pos += 8;
        break;
      case 5:
        this.pos += 4;
        break;
      case 2: {
        const n = this.uint32();
        this.pos += n;
        break;
      }
      case 3:
        if (depth <= 0) throw new Error('maximum recursion depth reached');
        for (;;) {
          const start = this.pos;
          const tag = this.uint32();
          const read = this.pos - start;
          if (read > 5 || (read === 5 && this.buf[this.pos - 1]! > 0x0f)) throw new Error('illegal tag: varint overflows uint32');
          const fn = tag >>> 3;
          const wt = tag & 7;
          if (fn <= 0 || wt > 5) throw new Error(`illegal tag: field no ${fn} wire type ${wt}`);
          if (wt === 4) {
            if (fieldNo !== undefined && fn !== fieldNo) throw new Error('invalid end group tag');
            break;
          }
          this.skip(wt, fn, depth - 1);
        }
        break;
      default:
        throw new Error(`cant skip wire type ${wireType}`);
    }
    this.bounds();
  }
}

const INITIAL_ROWS = 1024;

/**
 * The rows of a listing, one typed-array slot per volume: byte ranges of the short name and the
 * path in `buf` (the response's own bytes, nothing copied or decoded), type, sizes. Sizes of
 * 2^53 and more are kept as bigints in `big`.
 */
export class VolumeListing {
  count = 0;
  buf: Buffer = Buffer.alloc(0);
  nameStart = new Int32Array(INITIAL_ROWS);
  nameEnd = new Int32Array(INITIAL_ROWS);
  pathStart = new Int32Array(INITIAL_ROWS);
  pathEnd = new Int32Array(INITIAL_ROWS);
  type = new Int32Array(INITIAL_ROWS);
  capacity = new Float64Array(INITIAL_ROWS);
  allocation = new Float64Array(INITIAL_ROWS);
  /** row * 2 (capacity) or row * 2 + 1 (allocation) -> a size that is not an exact number */
  big = new Map<number, bigint>();
  private pages: Buffer[] = [];
  private base = 0;

  /** Reads one ListVolumesResponse (wire bytes); returns its next_page_token. */
  addPage(bytes: Uint8Array): string {
    const r = new WireReader(bytes);
    const token = readResponse(r, this);
    this.pages.push(r.buf);
    this.buf = this.pages.length === 1 ? r.buf : Buffer.concat(this.pages);
    this.base += r.len;
    return token;
  }

  /** The short name as text (decoded from its bytes). */
  name(i: number): string {
    return utf8(this.buf, this.nameStart[i]!, this.nameEnd[i]!);
  }

  path(i: number): string {
    return utf8(this.buf, this.pathStart[i]!, this.pathEnd[i]!);
  }

  capacityOf(i: number): number | bigint {
    return this.big.get(i * 2) ?? this.capacity[i]!;
  }

  allocationOf(i: number): number | bigint {
    return this.big.get(i * 2 + 1) ?? this.allocation[i]!;
  }

  /** Adds the volume just read (module state below), offsets relative to this page. */
  push(): void {
    if (this.count === this.type.length) this.grow();
    const i = this.count++;
    const base = this.base;
    // volumeShortName: hosts/H/pools/P/volumes/V gives V (five '/'), else the definition's name
    // (the resource name when there is no definition). A '/' byte is always a '/' character in
    // UTF-8, also next to invalid sequences, so the tail can be cut on bytes.
    let s = nameStart;
    let e = nameEnd;
    let slashes = 0;
    let last = -1;
    const buf = cur;
    for (let k = s; k < e; k++) {
      if (buf[k] === 0x2f) {
        slashes++;
        last = k;
      }
    }
    if (slashes === 5) s = last + 1;
    else if (hasDefinition) {
      s = defNameStart;
      e = defNameEnd;
    }
    this.nameStart[i] = base + s;
    this.nameEnd[i] = base + e;
    this.pathStart[i] = base + pathStart;
    this.pathEnd[i] = base + pathEnd;
    this.type[i] = type;
    if (typeof capacity === 'number') this.capacity[i] = capacity;
    else this.big.set(i * 2, capacity);
    if (typeof allocation === 'number') this.allocation[i] = allocation;
    else this.big.set(i * 2 + 1, allocation);
  }

  private grow(): void {
    const size = this.type.length * 2;
    const more = <T extends Int32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.nameStart = more(this.nameStart);
    this.nameEnd = more(this.nameEnd);
    this.pathStart = more(this.pathStart);
    this.pathEnd = more(this.pathEnd);
    this.type = more(this.type);
    this.capacity = more(this.capacity);
    this.allocation = more(this.allocation);
  }
}

function utf8(buf: Buffer, start: number, end: number): string {
  if (end <= start) return '';
  return HAS_UTF8_SLICE ? (buf as Utf8SliceBuffer).utf8Slice(start, end) : buf.toString('utf8', start, end);
}

// The volume being read (one at a time; module state keeps the readers allocation-free).
let cur: Buffer = Buffer.alloc(0);
let nameStart = 0;
let nameEnd = 0;
let hasDefinition = false;
let defNameStart = 0;
let defNameEnd = 0;
let pathStart = 0;
let pathEnd = 0;
let type = 0;
let capacity: number | bigint = 0;
let allocation: number | bigint = 0;

function readTarget(r: WireReader, end: number): void {
  pathStart = pathEnd = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10) {
      pathStart = r.lengthDelimited();
      pathEnd = r.pos;
      continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    r.skip(tag & 7);
  }
}

function readDefinition(r: WireReader, end: number): void {
  hasDefinition = true;
  defNameStart = defNameEnd = 0;
  pathStart = pathEnd = 0;
  type = 0;
  capacity = 0;
  allocation = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        type = r.uint32() | 0;
        continue;
      case 18:
        defNameStart = r.lengthDelimited();
        defNameEnd = r.pos;
        continue;
      case 32:
        capacity = r.uint64();
        continue;
      case 40:
        allocation = r.uint64();
        continue;
      case 48: // physical: read as the generated decoder does (same errors), not kept
        r.varint64();
        continue;
      case 66: {
        const n = r.uint32();
        readTarget(r, r.pos + n);
        continue;
      }
    }
    if ((tag & 7) === 4 || tag === 0) break;
    r.skip(tag & 7);
  }
}

function readVolume(r: WireReader, end: number): void {
  nameStart = nameEnd = 0;
  hasDefinition = false;
  defNameStart = defNameEnd = 0;
  pathStart = pathEnd = 0;
  type = 0;
  capacity = 0;
  allocation = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        nameStart = r.lengthDelimited();
        nameEnd = r.pos;
        continue;
      case 34: {
        const n = r.uint32();
        readDefinition(r, r.pos + n);
        continue;
      }
      case 40: // stale
      case 48: // revision
        r.varint64();
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    r.skip(tag & 7);
  }
}

/** ListVolumesResponse: volumes (1), next_page_token (2). A page that fails to decode adds no rows. */
function readResponse(r: WireReader, into: VolumeListing): string {
  cur = r.buf;
  const before = into.count;
  let tokenStart = 0;
  let tokenEnd = 0;
  try {
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag === 10) {
        const n = r.uint32();
        readVolume(r, r.pos + n);
        into.push();
        continue;
      }
      if (tag === 18) {
        tokenStart = r.lengthDelimited();
        tokenEnd = r.pos;
        continue;
      }
      if ((tag & 7) === 4 || tag === 0) break;
      r.skip(tag & 7);
    }
  } catch (err) {
    into.count = before;
    for (const k of [...into.big.keys()]) if (k >= before * 2) into.big.delete(k);
    throw err;
  }
  return utf8(r.buf, tokenStart, tokenEnd);
}
