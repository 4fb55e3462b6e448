// The plain qcow2 create written in-process: the bytes `qemu-img create -f qcow2` would
// write (qcow2-image.ts lays them out), without spawning it, wherever its result is certain.
import type { VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import type { BuiltVolume, CreateVolOptions, PoolContext } from '../backend.js';
import { planQcow2Image, writeQcow2Image, writeQcow2ImageSync, type Qcow2CreateOptions, type Qcow2Plan } from '../qcow2-image.js';
import { divUp } from '../qemu-img-argv.js';
import { inspectBaseImage } from './inspect.js';
import { createFileDirect, createFileThreaded } from './new-file.js';
import type { ResolvedCreate } from './volume-plan.js';
import { onLocalFilesystem } from '../pool-kinds.js';

/** In-process qcow2 layouts up to this many bytes are written with synchronous calls (one create: ~200 KiB). */
export const QCOW2_SYNC_WRITE_LIMIT = 1024 * 1024;

/** A backing store as the in-process create needs it. */
export interface ResolvedBacking {
  /** as the volume names it, and as the image records it */
  path: string;
  /** where to read it: the checked descriptor's /proc/self/fd/N (or a path, for callers that checked nothing) */
  abs: string;
  /** as given, else probed */
  format: string;
}

/**
 * The in-process qcow2 layout for a create that `qemu-img create -f qcow2` would do with
 * the argv qemuImgCreateArgv builds, or undefined where qemu-img stays the mechanism:
 * encryption, preallocation, nocow, netfs pools, and whatever planQcow2Image does not
 * replay. With a backing store, only a regular raw or qcow2 file whose header says the
 * requested format, with no backing file and no encryption of its own, is written here
 * (the rest goes to qemu-img as before). Capacity as on the argv: ceil(bytes / 1024) K;
 * without one (backing only), the size qemu-img would read from the backing file.
 * `backing.abs` is the agent's checked descriptor (/proc/self/fd/N), never the name.
 */
export function qcow2Plan(
  ctx: PoolContext,
  r: ResolvedCreate,
  t: NonNullable<VolumeDefinition['target']>,
  options: CreateVolOptions,
  backing: ResolvedBacking | undefined,
): Qcow2Plan | undefined {
  // extended L2 entries (subclusters) are a layout the in-process writer does not replay
  if (r.format !== 'qcow2' || t.encryption || t.nocow || t.extendedL2 || options.preallocMetadata || options.preallocation) return undefined;
  if (!onLocalFilesystem(ctx.pool.type)) return undefined;
  let capacity = divUp(r.capacity ?? 0n, 1024n) * 1024n;
  if (backing) {
    // qemu would read 'proto:...' as a protocol (nbd:, json:, file: ...)
    if (backing.path.includes(':')) return undefined;
    if (backing.format !== 'raw' && backing.format !== 'qcow2') return undefined;
    const base = inspectBaseImage(backing.abs);
    if (!base || base.probe.format !== backing.format || base.probe.encryption || base.probe.backingStore) return undefined;
    if (base.qcow2Problem !== undefined) return undefined;
    if (capacity === 0n) {
      // bdrv_getlength: raw = the file size in whole sectors (rounded up); qcow2 = header size in whole sectors
      if (base.probe.format === 'raw') capacity = divUp(base.size, 512n) * 512n;
      else if (base.probe.capacity !== undefined) capacity = (base.probe.capacity / 512n) * 512n;
      else return undefined;
    }
  }
  return plannedImage({
    capacity,
    clusterSize: t.clusterSize > 0n ? Number(t.clusterSize) : undefined,
    compat: t.compat === '1.1' ? '1.1' : '0.10',
    lazyRefcounts: t.lazyRefcounts,
    backingFile: backing?.path,
    backingFormat: backing?.format,
  });
}

/**
 * planQcow2Image is a pure function of its options, and most creates repeat a few (the same
 * size, no backing file): the last few small layouts are kept, with their rendered writes
 * (qcow2-image.ts), instead of replaying qemu's allocator and building ~300 KiB of buffers
 * for each create. Large layouts (MiBs of L1 table) are planned each time and not kept.
 */
const KEPT_PLANS = 16;
const keptPlans = new Map<string, Qcow2Plan | undefined>();

function plannedImage(opts: Qcow2CreateOptions): Qcow2Plan | undefined {
  const key = JSON.stringify([String(opts.capacity), opts.clusterSize, opts.compat, opts.lazyRefcounts, opts.backingFile, opts.backingFormat]);
  if (keptPlans.has(key)) {
    const plan = keptPlans.get(key);
    keptPlans.delete(key); // most recently used last
    keptPlans.set(key, plan);
    return plan;
  }
  const res = planQcow2Image(opts);
  const plan = res.ok ? res.plan : undefined;
  if (!plan || plan.bytes <= QCOW2_SYNC_WRITE_LIMIT) {
    keptPlans.set(key, plan);
    if (keptPlans.size > KEPT_PLANS) keptPlans.delete(keptPlans.keys().next().value!);
  }
  return plan;
}

/**
 * Writes the planned image. One of a few hundred KiB on a local filesystem: one positional
 * write per region as direct system calls (createFileDirect); larger ones (big L1 tables,
 * MiBs of zeros) through the thread pool. qemu-img flushes between its own rewrites of the
 * header, four times; here the image is written once, complete, so the one fsync at the end
 * makes it as durable (for a small one, still running when this returns: createFileDirect).
 * A failure removes the file.
 */
export function createQcow2(ctx: PoolContext, r: ResolvedCreate, plan: Qcow2Plan): Promise<BuiltVolume | void> {
  if (plan.bytes <= QCOW2_SYNC_WRITE_LIMIT) return createFileDirect(ctx, r, 'create qcow2 volume', (fd) => writeQcow2ImageSync(fd, plan));
  return createFileThreaded(ctx, r, 'create qcow2 volume', (fh) => writeQcow2Image(fh, plan));
}
