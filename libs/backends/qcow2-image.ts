// Lays out and writes a new, empty qcow2 image in-process: the same bytes, in the same
// places, with the same file length as `qemu-img create -f qcow2 -o OPTS -- PATH SIZE`
// (qemu 7.2, preallocation=off, no encryption, no external data file).
//
// qemu's qcow2_co_create writes the header cluster and a refcount table whose first entry
// points at one refcount block (clusters 0, 1, 2), gives those three clusters refcount 1,
// rewrites the full header (qcow2_update_header: header extensions, end marker, backing
// file name), then grows the L1 table to the virtual size (qcow2_grow_l1_table: one
// allocation of ceil(l1 * 8 / cluster) clusters, written with exactly l1 * 8 zero bytes)
// and finally records the backing file. When the L1 table reaches past what the first
// refcount block describes (small clusters, large images), qemu's allocator adds refcount
// blocks with its restart-on-EAGAIN dance; planQcow2Image replays that allocator
// (alloc_clusters_noref / update_refcount / alloc_refcount_block) instead of guessing a
// formula, so new refcount blocks land exactly where qemu puts them. What qemu would
// refuse, and the one path not replayed (growing the refcount table itself, only reached
// by 512-byte clusters and images of tens of GiB), is reported as unsupported: the caller
// then runs qemu-img, whose answer (image or error) stays the reference.
//
// The reference for every layout decision is docs/interop/qcow2.txt and block/qcow2.c,
// block/qcow2-refcount.c and block/qcow2-cluster.c of qemu; test/backends/qcow2-image.test.ts
// compares the bytes with qemu-img's for a matrix of options.
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export const QCOW2_MAGIC = 0x514649fb;
export const QCOW2_DEFAULT_CLUSTER_SIZE = 65536;
export const QCOW2_MIN_CLUSTER_SIZE = 512;
export const QCOW2_MAX_CLUSTER_SIZE = 2 * 1024 * 1024;
/** qemu's QCOW_MAX_L1_SIZE: a larger L1 table is EFBIG ("image size is too large"). */
export const QCOW2_MAX_L1_BYTES = 32 * 1024 * 1024;
/** qcow2_change_backing_file refuses longer backing file names (EINVAL). */
export const QCOW2_MAX_BACKING_NAME = 1023;

const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_TABLE = 0x6803f857;
/** sizeof(QCowHeader) in qemu 7.2: the v3 fields, compression_type and 7 bytes of padding. */
const V3_HEADER_LENGTH = 112;
/** The version 2 header ends where incompatible_features would start. */
const V2_HEADER_LENGTH = 72;
/** refcount_bits=16, qemu's default (refcount_order 4). */
const REFCOUNT_ORDER = 4;
/**
 * Refcount entries the allocator replay may visit before giving up (to qemu-img): a few
 * milliseconds of CPU. Only small clusters with L1 tables of many MiB get near it, since
 * every added refcount block restarts qemu's allocation of the whole L1 table.
 */
const MAX_REPLAY_WORK = 1 << 20;
/** Written as one region up to this size; longer zero runs (big L1 tables) go in chunks. */
const WRITE_CHUNK = 4 * 1024 * 1024;

/** qcow2_update_header's feature name table (type, bit, name), in qemu's order. */
const FEATURE_NAMES: ReadonlyArray<readonly [number, number, string]> = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

export interface Qcow2CreateOptions {
  /** Virtual size in bytes; qemu rounds it up to a multiple of 512. */
  capacity: bigint;
  /** Bytes: a power of two from 512 to 2 MiB (default 65536). */
  clusterSize?: number;
  /** '0.10' => version 2, '1.1' => version 3 (qemu's default). */
  compat?: '0.10' | '1.1';
  /** Version 3 only. */
  lazyRefcounts?: boolean;
  /** Stored as given (qemu-img -b), relative names stay relative. */
  backingFile?: string;
  /** Stored in the backing format header extension (qemu-img -o backing_fmt=). */
  backingFormat?: string;
}

/** One contiguous run of bytes qemu writes; `parts` hold the non-zero content, the rest is zeros. */
export interface Qcow2Region {
  offset: number;
  length: number;
  parts: Array<{ at: number; data: Buffer }>;
}

export interface Qcow2Plan {
  version: 2 | 3;
  clusterSize: number;
  /** The virtual size qemu records (capacity rounded up to 512). */
  size: bigint;
  l1Size: number;
  l1Offset: number;
  /** Offsets of the refcount blocks, by refcount table index. */
  refcountBlocks: number[];
  /** What qemu writes, merged into contiguous runs, in file order. */
  regions: Qcow2Region[];
  /** Bytes the regions cover. */
  bytes: number;
  /** The file length qemu leaves (the end of the last write). */
  fileLength: number;
}

export type Qcow2PlanResult = { ok: true; plan: Qcow2Plan } | { ok: false; reason: string };

function log2(n: number): number {
  return 31 - Math.clz32(n);
}

/**
 * qemu's cluster allocator for a freshly created image, replayed in memory: refcounts per
 * refcount block, the refcount table, free_cluster_index, and every cluster-sized write of
 * a refcount block (a qcow2 cache flush writes whole clusters). The loops walk whole
 * refcount blocks at a time; the order of decisions is qemu's, cluster by cluster.
 */
class RefcountReplay {
  readonly cs: number;
  /** Refcount entries per block (cluster_size * 8 / 16). */
  readonly blockEntries: number;
  readonly tableEntries: number;
  /** Refcount block offsets by refcount table index (0 = none). */
  readonly table: Float64Array;
  /** qemu's max_refcount_table_index: the highest index in use. */
  maxTableIndex = 0;
  readonly blocks = new Map<number, Uint16Array>();
  freeIndex = 0;
  /** One past the highest cluster ever handed out. */
  highWater = 0;
  /** Refcount entries visited so far (see MAX_REPLAY_WORK). */
  work = 0;
  /** [offset, length] of refcount block writes. */
  readonly writes: Array<[number, number]> = [];

  constructor(cs: number) {
    this.cs = cs;
    this.blockEntries = (cs * 8) >> REFCOUNT_ORDER;
    this.tableEntries = cs / 8;
    this.table = new Float64Array(this.tableEntries);
    // qcow2_co_create: refcount table at cluster 1, its first block at cluster 2
    this.table[0] = 2 * cs;
    this.blocks.set(0, new Uint16Array(this.blockEntries));
  }

  private blockOf(ti: number): Uint16Array | undefined {
    return ti < this.tableEntries && this.table[ti] !== 0 ? this.blocks.get(ti) : undefined;
  }

  /** alloc_clusters_noref: the first run of `n` free clusters from free_cluster_index on. */
  allocNoref(bytes: number): number {
    const n = Math.ceil(bytes / this.cs);
    const E = this.blockEntries;
    let i = this.freeIndex;
    let run = 0;
    while (run < n) {
      const ti = Math.floor(i / E);
      const blockEnd = (ti + 1) * E;
      const block = this.blockOf(ti);
      if (!block) {
        // no refcount block: every cluster it would describe is free
        const step = Math.min(n - run, blockEnd - i);
        run += step;
        i += step;
        continue;
      }
      const base = ti * E;
      const from = i;
      for (; i < blockEnd && run < n; i++) run = block[i - base] === 0 ? run + 1 : 0;
      this.work += i - from;
    }
    this.freeIndex = i;
    if (i > this.highWater) this.highWater = i;
    return (i - n) * this.cs;
  }

  /** qcow2_alloc_clusters: the offset, or why it is not replayed. */
  alloc(bytes: number): number | 'grow' | 'work' {
    for (;;) {
      const offset = this.allocNoref(bytes);
      const r = this.update(offset, bytes, 1);
      if (r === 'ok') return offset;
      if (r === 'grow') return r;
      if (this.work > MAX_REPLAY_WORK) return 'work';
    }
  }

  /** update_refcount; 'again' is -EAGAIN (the caller restarts its search). */
  update(offset: number, length: number, addend: 1 | -1): 'ok' | 'again' | 'grow' {
    if (length === 0) return 'ok';
    const E = this.blockEntries;
    const first = Math.floor(offset / this.cs);
    const last = Math.floor((offset + length - 1) / this.cs);
    let c = first;
    let result: 'ok' | 'again' | 'grow' = 'ok';
    while (c <= last) {
      const ti = Math.floor(c / E);
      const got = this.allocBlock(c);
      if (typeof got === 'string') {
        result = got;
        break;
      }
      const base = ti * E;
      const end = Math.min(last, base + E - 1);
      this.work += end - c + 1;
      for (let k = c; k <= end; k++) {
        const count = got[k - base]! + addend;
        got[k - base] = count;
        if (count === 0 && k < this.freeIndex) this.freeIndex = k;
      }
      c = end + 1;
    }
    // on failure qemu undoes the changes made so far
    if (result !== 'ok' && c > first) this.update(offset, (c - first) * this.cs, addend === 1 ? -1 : 1);
    return result;
  }

  /** alloc_refcount_block: the block describing `cluster`, allocating (and hooking up) a new one. */
  private allocBlock(cluster: number): Uint16Array | 'again' | 'grow' {
    const E = this.blockEntries;
    const ti = Math.floor(cluster / E);
    const existing = this.blockOf(ti);
    if (existing) return existing;
    const newBlock = this.allocNoref(this.cs);
    const newIndex = newBlock / this.cs;
    const block = new Uint16Array(E);
    if (Math.floor(newIndex / E) === ti) {
      block[newIndex % E] = 1; // the block describes itself
    } else {
      const r = this.update(newBlock, this.cs, 1);
      if (r !== 'ok') return r;
    }
    // growing the refcount table (qcow2_refcount_area) is not replayed
    if (ti >= this.tableEntries) return 'grow';
    this.writes.push([newBlock, this.cs]);
    this.table[ti] = newBlock;
    if (ti > this.maxTableIndex) this.maxTableIndex = ti;
    this.blocks.set(ti, block);
    return 'again';
  }

  /** The bytes of the refcount block for table index `ti`, up to its last non-zero entry. */
  blockBytes(ti: number): Buffer {
    const counts = this.blocks.get(ti)!;
    const base = ti * this.blockEntries;
    let n = Math.min(this.blockEntries, Math.max(0, this.highWater - base));
    while (n > 0 && counts[n - 1] === 0) n--;
    const out = Buffer.alloc(n * 2);
    for (let i = 0; i < n; i++) if (counts[i]) out.writeUInt16BE(counts[i]!, i * 2);
    return out;
  }

  /** The refcount table's bytes up to its last entry. */
  tableBytes(): Buffer {
    const n = this.maxTableIndex + 1;
    const out = Buffer.alloc(n * 8);
    for (let i = 0; i < n; i++) if (this.table[i]) out.writeBigUInt64BE(BigInt(this.table[i]!), i * 8);
    return out;
  }
}

function headerExtension(magic: number, data: Buffer): Buffer {
  const ext = Buffer.alloc(8 + ((data.length + 7) & ~7));
  ext.writeUInt32BE(magic, 0);
  ext.writeUInt32BE(data.length, 4);
  data.copy(ext, 8);
  return ext;
}

/** The feature name table: 48-byte entries of type, bit number and a NUL-padded name. */
const FEATURE_TABLE: Buffer = (() => {
  const t = Buffer.alloc(FEATURE_NAMES.length * 48);
  FEATURE_NAMES.forEach(([type, bit, name], i) => {
    t[i * 48] = type;
    t[i * 48 + 1] = bit;
    t.write(name, i * 48 + 2, 46, 'latin1');
  });
  return t;
})();

/**
 * Checks the options as qemu would and lays the image out. `ok: false` means qemu-img
 * would refuse the request, or would take a path this module does not replay; the
 * reason says which.
 */
export function planQcow2Image(opts: Qcow2CreateOptions): Qcow2PlanResult {
  const cs = opts.clusterSize ?? QCOW2_DEFAULT_CLUSTER_SIZE;
  if (!Number.isInteger(cs) || cs < QCOW2_MIN_CLUSTER_SIZE || cs > QCOW2_MAX_CLUSTER_SIZE || (cs & (cs - 1)) !== 0) {
    return { ok: false, reason: `cluster size ${cs} is not a power of two from 512 to 2 MiB` };
  }
  const version = opts.compat === '0.10' ? 2 : 3;
  if (opts.compat !== undefined && opts.compat !== '0.10' && opts.compat !== '1.1') {
    return { ok: false, reason: `compat '${String(opts.compat)}' is neither 0.10 nor 1.1` };
  }
  if (opts.lazyRefcounts && version < 3) return { ok: false, reason: 'lazy refcounts need compat 1.1' };
  if (opts.capacity < 0n) return { ok: false, reason: 'negative capacity' };
  const backing = opts.backingFile;
  if (backing !== undefined) {
    if (backing === '') return { ok: false, reason: 'empty backing file name' };
    if (Buffer.byteLength(backing) > QCOW2_MAX_BACKING_NAME) return { ok: false, reason: 'backing file name longer than 1023 bytes' };
    if (backing.includes('\0')) return { ok: false, reason: 'NUL in the backing file name' };
  } else if (opts.backingFormat) {
    return { ok: false, reason: 'a backing format without a backing file' };
  }
  if (opts.backingFormat !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(opts.backingFormat)) {
    return { ok: false, reason: `backing format '${opts.backingFormat}' is not a qemu driver name` };
  }

  const cb = log2(cs);
  // qcow2_co_create_opts: "Silently round up size"
  const size = ((opts.capacity + 511n) / 512n) * 512n;
  // size_to_l1: one L1 entry maps cluster_size / 8 clusters
  const l1Span = 1n << BigInt(cb + cb - 3);
  const l1Wide = (size + l1Span - 1n) / l1Span;
  if (l1Wide * 8n > BigInt(QCOW2_MAX_L1_BYTES)) {
    return { ok: false, reason: 'the L1 table would pass qemu\'s 32 MiB limit (qemu-img: "The image size is too large")' };
  }
  const l1Size = Number(l1Wide);

  // --- header (qcow2_update_header): fields, extensions, end marker, backing file name;
  // qemu writes the whole cluster, zeros after the name
  const hdrLen = version === 2 ? V2_HEADER_LENGTH : V3_HEADER_LENGTH;
  const exts: Buffer[] = [];
  if (opts.backingFormat) exts.push(headerExtension(EXT_BACKING_FORMAT, Buffer.from(opts.backingFormat, 'latin1')));
  // qemu omits the feature table for clusters of 4 KiB and less (room for a backing name)
  if (version === 3 && cs > 4096) exts.push(headerExtension(EXT_FEATURE_TABLE, FEATURE_TABLE));
  exts.push(Buffer.alloc(8)); // end of header extensions
  const backingName = backing === undefined ? undefined : Buffer.from(backing);
  const namePos = exts.reduce((n, e) => n + e.length, hdrLen);
  const headerEnd = namePos + (backingName?.length ?? 0);
  if (headerEnd > cs) return { ok: false, reason: 'the header extensions and the backing file name do not fit in the header cluster' };
  const header = Buffer.alloc(headerEnd);
  let pos = hdrLen;
  for (const e of exts) {
    e.copy(header, pos);
    pos += e.length;
  }

  // --- allocation, as qemu does it on the freshly written image
  const rc = new RefcountReplay(cs);
  const header0 = rc.alloc(3 * cs); // header, refcount table, refcount block 0
  if (header0 !== 0) return { ok: false, reason: 'internal: the first three clusters were not free' };
  let l1Offset = 0;
  if (l1Size > 0) {
    const at = rc.alloc(l1Size * 8);
    if (at === 'grow') return { ok: false, reason: 'qemu would grow the refcount table (512-byte clusters, a large image): not replayed' };
    if (at === 'work') return { ok: false, reason: 'replaying qemu\'s refcount block allocation for this L1 table would take too long' };
    l1Offset = at;
  }

  header.writeUInt32BE(QCOW2_MAGIC, 0);
  header.writeUInt32BE(version, 4);
  if (backingName) {
    header.writeBigUInt64BE(BigInt(namePos), 8);
    header.writeUInt32BE(backingName.length, 16);
    backingName.copy(header, namePos);
  }
  header.writeUInt32BE(cb, 20);
  header.writeBigUInt64BE(size, 24);
  header.writeUInt32BE(0, 32); // crypt_method: none
  header.writeUInt32BE(l1Size, 36);
  header.writeBigUInt64BE(BigInt(l1Offset), 40);
  header.writeBigUInt64BE(BigInt(cs), 48); // refcount table offset
  header.writeUInt32BE(1, 56); // refcount table clusters
  // nb_snapshots, snapshots_offset: 0
  if (version === 3) {
    // incompatible_features: 0
    header.writeBigUInt64BE(opts.lazyRefcounts ? 1n : 0n, 80);
    // autoclear_features: 0
    header.writeUInt32BE(REFCOUNT_ORDER, 96);
    header.writeUInt32BE(V3_HEADER_LENGTH, 100);
    // compression_type: 0 (zlib)
  }

  // --- what qemu writes: header cluster, refcount table + block 0, added refcount blocks, L1
  const content: Array<{ at: number; data: Buffer }> = [
    { at: 0, data: header },
    { at: cs, data: rc.tableBytes() },
  ];
  const refcountBlocks: number[] = [];
  for (const ti of [...rc.blocks.keys()].sort((a, b) => a - b)) {
    refcountBlocks.push(rc.table[ti]!);
    content.push({ at: rc.table[ti]!, data: rc.blockBytes(ti) });
  }
  const writes: Array<[number, number]> = [[0, 3 * cs], ...rc.writes];
  if (l1Size > 0) writes.push([l1Offset, l1Size * 8]);
  const regions = mergeRegions(writes, content);
  // qemu never truncates the image file: its length is the end of the last write
  const last = regions[regions.length - 1]!;
  const fileLength = last.offset + last.length;
  const bytes = regions.reduce((n, r) => n + r.length, 0);
  return { ok: true, plan: { version, clusterSize: cs, size, l1Size, l1Offset, refcountBlocks, regions, bytes, fileLength } };
}

/** Merges overlapping or touching writes into regions and files the content into them. */
function mergeRegions(writes: Array<[number, number]>, content: Array<{ at: number; data: Buffer }>): Qcow2Region[] {
  const sorted = [...writes].sort((a, b) => a[0] - b[0]);
  const regions: Qcow2Region[] = [];
  for (const [off, len] of sorted) {
    const last = regions[regions.length - 1];
    if (last && off <= last.offset + last.length) last.length = Math.max(last.length, off + len - last.offset);
    else regions.push({ offset: off, length: len, parts: [] });
  }
  for (const c of content) {
    const r = regions.find((x) => c.at >= x.offset && c.at + c.data.length <= x.offset + x.length);
    if (!r) throw new Error(`qcow2 layout: content at ${c.at} lies outside the written regions`);
    r.parts.push({ at: c.at - r.offset, data: c.data });
  }
  return regions;
}

/** The bytes of [from, from + length) of a region. */
function regionSlice(r: Qcow2Region, from: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (const p of r.parts) {
    const s = Math.max(p.at, from);
    const e = Math.min(p.at + p.data.length, from + length);
    if (s < e) p.data.copy(buf, s - from, s - p.at, e - p.at);
  }
  return buf;
}

/** The image as one Buffer (tests, small images): regions at their offsets, zeros elsewhere. */
export function renderQcow2Image(plan: Qcow2Plan): Buffer {
  const out = Buffer.alloc(plan.fileLength);
  for (const r of plan.regions) regionSlice(r, 0, r.length).copy(out, r.offset);
  return out;
}

interface PlanWrite {
  position: number;
  data: Buffer;
}

function* renderWrites(plan: Qcow2Plan): Generator<PlanWrite> {
  for (const r of plan.regions) {
    for (let from = 0; from < r.length; from += WRITE_CHUNK) {
      const n = Math.min(WRITE_CHUNK, r.length - from);
      yield { position: r.offset + from, data: regionSlice(r, from, n) };
    }
  }
}

/** Plans up to this many bytes keep their rendered writes: a plan used again (a cached one) is rendered once. */
const KEEP_RENDERED_BYTES = 1024 * 1024;
const rendered = new WeakMap<Qcow2Plan, readonly PlanWrite[]>();

/** The writes of a plan; never modified by the writers (a kept plan's buffers are shared). */
function chunksOf(plan: Qcow2Plan): Iterable<PlanWrite> {
  if (plan.bytes > KEEP_RENDERED_BYTES) return renderWrites(plan);
  let writes = rendered.get(plan);
  if (!writes) {
    writes = [...renderWrites(plan)];
    rendered.set(plan, writes);
  }
  return writes;
}

/**
 * Writes the plan into an open, empty file with positional writes (one per region for
 * ordinary images). The last region ends at qemu's file length, so no ftruncate is needed.
 * Synchronous: meant for a few KiB to a few MiB on a local filesystem.
 */
export function writeQcow2ImageSync(fd: number, plan: Qcow2Plan): void {
  for (const { position, data } of chunksOf(plan)) {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
  }
}

/** writeQcow2ImageSync through a FileHandle (thread pool), for large plans or remote filesystems. */
export async function writeQcow2Image(fh: FileHandle, plan: Qcow2Plan): Promise<void> {
  for (const { position, data } of chunksOf(plan)) {
    let done = 0;
    while (done < data.length) done += (await fh.write(data, done, data.length - done, position + done)).bytesWritten;
  }
}

/**
 * Why `qemu-img create -b BASE -F qcow2` might not simply open BASE, judged from its first
 * bytes (`header`, as the format probe read them): qcow2_do_open's header checks, plus
 * anything this module does not model (snapshots, encryption, external data files, dirty
 * or corrupt flags, unknown features, bitmaps, a backing file of its own). undefined = a
 * plain, self-consistent qcow2 header; a base that is damaged further in (its tables) is
 * not detected here.
 */
export function qcow2BaseProblem(header: Buffer): string | undefined {
  if (header.length < V2_HEADER_LENGTH) return 'short header';
  if (header.readUInt32BE(0) !== QCOW2_MAGIC) return 'not qcow2';
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) return `version ${version}`;
  const cb = header.readUInt32BE(20);
  if (cb < 9 || cb > 21) return `cluster bits ${cb}`;
  const cs = 1 << cb;
  if (header.readBigUInt64BE(8) !== 0n) return 'has a backing file';
  if (header.readUInt32BE(32) !== 0) return 'encrypted';
  if (header.readUInt32BE(60) !== 0) return 'has snapshots';
  let hdrLen = V2_HEADER_LENGTH;
  if (version === 3) {
    if (header.length < 104) return 'short header';
    if (header.readBigUInt64BE(72) !== 0n) return 'incompatible features set';
    if (header.readBigUInt64BE(88) !== 0n) return 'autoclear features set';
    if (header.readUInt32BE(96) > 6) return 'refcount order';
    hdrLen = header.readUInt32BE(100);
    if (hdrLen < 104 || hdrLen > cs) return `header length ${hdrLen}`;
    if (hdrLen > 104 && (header.length <= 104 || header[104] !== 0)) return 'compression type';
  }
  const size = header.readBigUInt64BE(24);
  const l1Size = header.readUInt32BE(36);
  const l1Offset = header.readBigUInt64BE(40);
  const rtOffset = header.readBigUInt64BE(48);
  const rtClusters = header.readUInt32BE(56);
  const csn = BigInt(cs);
  if (rtClusters === 0 || rtOffset === 0n || rtOffset % csn !== 0n) return 'refcount table';
  if (l1Offset % csn !== 0n || (l1Size > 0 && l1Offset === 0n) || l1Size * 8 > QCOW2_MAX_L1_BYTES) return 'L1 table';
  const span = 1n << BigInt(cb + cb - 3);
  if (BigInt(l1Size) < (size + span - 1n) / span) return 'L1 table too small';
  // header extensions up to the end marker: all within the cluster, none this module does not know
  for (let pos = hdrLen; ; ) {
    if (pos + 8 > header.length || pos + 8 > cs) return 'header extensions not read';
    const magic = header.readUInt32BE(pos);
    const len = header.readUInt32BE(pos + 4);
    if (magic === 0) break;
    if (pos + 8 + len > cs) return 'header extension too large';
    if (magic !== EXT_BACKING_FORMAT && magic !== EXT_FEATURE_TABLE) return `header extension 0x${magic.toString(16)}`;
    pos += 8 + ((len + 7) & ~7);
  }
  return undefined;
}
