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

// Wire reading in the manner of @bufbuild/protobuf's BinaryReader (varint32read, varint64read,
// skip, assertBounds), with the same results and the same errors on bad input, written as free
// functions over (buf, pos): the CLI runs this code once, mostly before V8 optimizes it, so the
// common cases (one-byte tags and lengths) are inline in the loops below and calls are few.

/** Position after the last slow-path read, and the last 64-bit varint's halves. */
let P = 0;
let LO = 0;
let HI = 0;

function eof(): never {
  throw new RangeError('premature EOF');
}

/** varint32read from pos: the low 32 bits of up to 10 bytes; sets P. */
function varint32(buf: Buffer, pos: number): number {
  const len = buf.length;
  let b = buf[pos++]!;
  let result = b & 0x7f;
  if ((b & 0x80) !== 0) {
    b = buf[pos++]!;
    result |= (b & 0x7f) << 7;
    if ((b & 0x80) !== 0) {
      b = buf[pos++]!;
      result |= (b & 0x7f) << 14;
      if ((b & 0x80) !== 0) {
        b = buf[pos++]!;
        result |= (b & 0x7f) << 21;
        if ((b & 0x80) !== 0) {
          b = buf[pos++]!;
          result |= (b & 0x0f) << 28;
          for (let n = 5; (b & 0x80) !== 0 && n < 10; n++) b = buf[pos++]!;
          if ((b & 0x80) !== 0) throw new Error('invalid varint');
          result >>>= 0;
        }
      }
    }
  }
  if (pos > len) eof();
  P = pos;
  return result;
}

/** varint64read from pos: sets LO, HI and P. */
function varint64(buf: Buffer, pos: number): void {
  let lo = 0;
  let hi = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    const b = buf[pos++]!;
    lo |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return done64(buf, pos, lo, hi);
  }
  const middle = buf[pos++]!;
  lo |= (middle & 0x0f) << 28;
  hi = (middle & 0x70) >> 4;
  if ((middle & 0x80) === 0) return done64(buf, pos, lo, hi);
  for (let shift = 3; shift <= 31; shift += 7) {
    const b = buf[pos++]!;
    hi |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return done64(buf, pos, lo, hi);
  }
  throw new Error('invalid varint');
}

function done64(buf: Buffer, pos: number, lo: number, hi: number): void {
  if (pos > buf.length) eof();
  P = pos;
  LO = lo;
  HI = hi;
}

/** A uint64 as a number when below 2^53, else as a bigint (the generated decoder's value); sets P. */
function uint64(buf: Buffer, pos: number): number | bigint {
  varint64(buf, pos);
  const hi = HI >>> 0;
  const lo = LO >>> 0;
  if (hi < 0x200000) return hi * 0x100000000 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** BinaryReader.skip(wireType) as the generated code calls it (no field number); returns the new position. */
function skip(buf: Buffer, pos: number, wireType: number, fieldNo?: number, depth = 100): number {
  switch (wireType) {
    case 0:
      while (buf[pos++]! & 0x80) {
        /* varint */
      }
      break;
    case 1:
      pos += 8;
      break;
    case 5:
      pos += 4;
      break;
    case 2: {
      const n = varint32(buf, pos);
      pos = P + n;
      break;
    }
    case 3:
      if (depth <= 0) throw new Error('maximum recursion depth reached');
      for (;;) {
        const tag = varint32(buf, pos);
        const read = P - pos;
        pos = P;
        if (read > 5 || (read === 5 && buf[pos - 1]! > 0x0f)) throw new Error('illegal tag: varint overflows uint32');
        const fn = tag >>> 3;
        const wt = tag & 7;
        if (fn <= 0 || wt > 5) throw new Error(`illegal tag: field no ${fn} wire type ${wt}`);
        if (wt === 4) {
          if (fieldNo !== undefined && fn !== fieldNo) throw new Error('invalid end group tag');
          break;
        }
        pos = skip(buf, pos, wt, fn, depth - 1);
      }
      break;
    default:
      throw new Error(`cant skip wire type ${wireType}`);
  }
  if (pos > buf.length) eof();
  return pos;
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
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const token = readResponse(buf, this);
    this.pages.push(buf);
    this.buf = this.pages.length === 1 ? buf : Buffer.concat(this.pages);
    this.base += buf.length;
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

// In each loop: a tag (one byte: inline), then its field. `tag & 7` 4 (end group) or tag 0 ends
// the message early, as in the generated decoder. Bounds: a one-byte read is inside the buffer
// (buf[pos] is defined); a length is checked against the buffer's end; the rest is checked in
// the functions above.

function readTarget(buf: Buffer, pos: number, end: number): number {
  pathStart = pathEnd = 0;
  while (pos < end) {
    let tag = buf[pos]!;
    if (tag < 0x80) pos++;
    else {
      tag = varint32(buf, pos);
      pos = P;
    }
    if (tag === 10) {
      let n = buf[pos]!;
      if (n < 0x80) pos++;
      else {
        n = varint32(buf, pos);
        pos = P;
      }
      pathStart = pos;
      pos += n;
      if (pos > buf.length) eof();
      pathEnd = pos;
      continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    pos = skip(buf, pos, tag & 7);
  }
  return pos;
}

function readDefinition(buf: Buffer, pos: number, end: number): number {
  hasDefinition = true;
  defNameStart = defNameEnd = 0;
  pathStart = pathEnd = 0;
  type = 0;
  capacity = 0;
  allocation = 0;
  while (pos < end) {
    let tag = buf[pos]!;
    if (tag < 0x80) pos++;
    else {
      tag = varint32(buf, pos);
      pos = P;
    }
    switch (tag) {
      case 8:
        type = varint32(buf, pos) | 0;
        pos = P;
        continue;
      case 18: {
        let n = buf[pos]!;
        if (n < 0x80) pos++;
        else {
          n = varint32(buf, pos);
          pos = P;
        }
        defNameStart = pos;
        pos += n;
        if (pos > buf.length) eof();
        defNameEnd = pos;
        continue;
      }
      case 32:
        capacity = uint64(buf, pos);
        pos = P;
        continue;
      case 40:
        allocation = uint64(buf, pos);
        pos = P;
        continue;
      case 48: // physical: read as the generated decoder does (same errors), not kept
        varint64(buf, pos);
        pos = P;
        continue;
      case 66: {
        let n = buf[pos]!;
        if (n < 0x80) pos++;
        else {
          n = varint32(buf, pos);
          pos = P;
        }
        pos = readTarget(buf, pos, pos + n);
        continue;
      }
    }
    if ((tag & 7) === 4 || tag === 0) break;
    // the key and other strings: skipped inline
    if ((tag & 7) === 2) {
      let n = buf[pos]!;
      if (n < 0x80) pos++;
      else {
        n = varint32(buf, pos);
        pos = P;
      }
      pos += n;
      if (pos > buf.length) eof();
      continue;
    }
    pos = skip(buf, pos, tag & 7);
  }
  return pos;
}

function readVolume(buf: Buffer, pos: number, end: number): number {
  nameStart = nameEnd = 0;
  hasDefinition = false;
  defNameStart = defNameEnd = 0;
  pathStart = pathEnd = 0;
  type = 0;
  capacity = 0;
  allocation = 0;
  while (pos < end) {
    let tag = buf[pos]!;
    if (tag < 0x80) pos++;
    else {
      tag = varint32(buf, pos);
      pos = P;
    }
    switch (tag) {
      case 10: {
        let n = buf[pos]!;
        if (n < 0x80) pos++;
        else {
          n = varint32(buf, pos);
          pos = P;
        }
        nameStart = pos;
        pos += n;
        if (pos > buf.length) eof();
        nameEnd = pos;
        continue;
      }
      case 34: {
        let n = buf[pos]!;
        if (n < 0x80) pos++;
        else {
          n = varint32(buf, pos);
          pos = P;
        }
        pos = readDefinition(buf, pos, pos + n);
        continue;
      }
      case 40: // stale
      case 48: // revision
        varint64(buf, pos);
        pos = P;
        continue;
    }
    if ((tag & 7) === 4 || tag === 0) break;
    if ((tag & 7) === 2) {
      // host, pool and unknown strings: skipped inline
      let n = buf[pos]!;
      if (n < 0x80) pos++;
      else {
        n = varint32(buf, pos);
        pos = P;
      }
      pos += n;
      if (pos > buf.length) eof();
      continue;
    }
    pos = skip(buf, pos, tag & 7);
  }
  return pos;
}

/** ListVolumesResponse: volumes (1), next_page_token (2). A page that fails to decode adds no rows. */
function readResponse(buf: Buffer, into: VolumeListing): string {
  cur = buf;
  const len = buf.length;
  const before = into.count;
  let tokenStart = 0;
  let tokenEnd = 0;
  let pos = 0;
  try {
    while (pos < len) {
      let tag = buf[pos]!;
      if (tag < 0x80) pos++;
      else {
        tag = varint32(buf, pos);
        pos = P;
      }
      if (tag === 10 || tag === 18) {
        let n = buf[pos]!;
        if (n < 0x80) pos++;
        else {
          n = varint32(buf, pos);
          pos = P;
        }
        if (tag === 10) {
          pos = readVolume(buf, pos, pos + n);
          into.push();
        } else {
          tokenStart = pos;
          pos += n;
          if (pos > len) eof();
          tokenEnd = pos;
        }
        continue;
      }
      if ((tag & 7) === 4 || tag === 0) break;
      pos = skip(buf, pos, tag & 7);
    }
  } catch (err) {
    into.count = before;
    for (const k of [...into.big.keys()]) if (k >= before * 2) into.big.delete(k);
    throw err;
  }
  return utf8(buf, tokenStart, tokenEnd);
}
