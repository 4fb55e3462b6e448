// Volume operations: create, clone, delete, wipe, resize. Each re-reads the volume
// afterwards (backend.refreshVol) and takes new pool sizes, so the event and the reply
// carry the real new state (after a create, clone or resize as libvirt's refreshVol reads
// it: a qcow2 cluster size not asked for shows from the next pool refresh, probed-fields.ts).
import type { AgentOpValue } from '../../../libs/bus/agent-rpc.js';
import { isAbsolute } from 'node:path';
import type { AgentReply, AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { EventKind, VolumeDefinition, type Pool, type Volume } from '../../../libs/proto/cistern/v1/storage.js';
import type { BuiltVolume, CreateVolOptions, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import type { JournalHandle } from '../journal.js';
import { AbortedError, FailedPreconditionError, InvalidArgumentError, VolumeNotFoundError } from '../../../libs/errors/errors.js';
import { checkNewObjectName, printable } from '../../../libs/api/names.js';
import { parseVolumeName } from '../../../libs/api/resource-names.js';
import { volumeEvent, type Actor } from '../events.js';
import { sameVolume, type PoolEntry, type VolumeEntry } from '../state.js';
import { accountedPoolSizes, readPoolSizes } from '../pool-sizes.js';
import { keepUnprobedFields } from '../probed-fields.js';
import { publishScan, scanPool } from './pool-ops.js';
import {
  actorOf,
  activePool,
  backendFor,
  checkPoolResource,
  flushEvents,
  poolContext,
  requestPool,
  requireOperation,
  volumeBeingAllocated,
  volumeOfResource,
  type AgentContext,
} from '../context.js';
import { deletedReply, volumeReply } from './reply.js';
import { openImageChain, type ImageChain } from '../../../libs/backends/image-references.js';
import { admitInHostPools } from '../storage-locations.js';
import { FILE_POOL_TYPES } from '../../../libs/backends/pool-kinds.js';
import { fingerprintOf } from '../request-cache.js';
import { newCreateId } from '../../../libs/backends/create-id.js';


/** What a handler for one existing volume works on, resolved and checked. */
interface VolumeTarget {
  def: ReturnType<typeof requestPool>;
  name: string;
  pool: PoolEntry;
  backend: StorageBackend;
  vol: VolumeEntry;
  actor: Actor;
}

/**
 * Resolves the volume an operation names, refuses what the pool type cannot do before
 * anything runs, and runs `body` holding the volume's exclusive lock.
 */
async function withExistingVolume(
  ctx: AgentContext,
  request: AgentRequest,
  resource: string,
  operation: Parameters<typeof requireOperation>[1],
  what: string,
  lock: string,
  body: (t: VolumeTarget) => Promise<AgentReply>,
): Promise<AgentReply> {
  const def = requestPool(request);
  const name = volumeOfResource(ctx, resource, def.name, 'name');
  const actor = actorOf(request);
  await untilPublishedCreateEnds(ctx, def.name, name, lock, actor.signal);
  const pool = activePool(ctx, def.name);
  const backend = backendFor(ctx, pool.definition.type);
  requireOperation(backend, operation, what);
  const vol = existingVolume(ctx, pool, name);
  const release = ctx.locks.acquireVolume(def.name, name, lock);
  try {
    return await body({ def, name, pool, backend, vol, actor });
  } finally {
    release();
  }
}

/**
 * How the volume is re-read after an operation. 'probe': everything read from the image (as
 * libvirt's wipe and upload leave it). 'sizes': as libvirt's refreshVol after a create, clone
 * or resize, what the header alone tells (the cluster size) stays as `def` had it.
 */
export type Reread = 'probe' | 'sizes';

/**
 * After a volume changed: re-read it, take the pool's new sizes, store both with new
 * revisions and publish `kind` carrying the volume and the pool. Returns the volume.
 */
export async function commitVolume(
  ctx: AgentContext,
  pool: PoolEntry,
  backend: StorageBackend,
  pc: PoolContext,
  def: VolumeDefinition,
  kind: EventKind,
  actor: Actor,
): Promise<Volume> {
  return (await commitVolumeState(ctx, pool, backend, pc, def, kind, actor)).volume;
}

/**
 * After a write to a volume that failed or was cancelled part-way (wipe, resize, upload): the
 * volume as it is now, published as VOLUME_CHANGED when it differs from what was known (its
 * data, size or format may have changed before the failure). Nothing is published when the
 * failure came before any change.
 */
export async function rereadAfterFailure(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, pc: PoolContext, vol: VolumeEntry, actor: Actor): Promise<void> {
  if (!backend.refreshVol) return;
  try {
    // what the failed write changed, not what a probe would newly learn (the cluster size)
    const live = keepUnprobedFields(await backend.refreshVol({ ...pc, signal: undefined }, vol.definition), vol.definition);
    if (sameVolume(vol.definition, live)) return;
    await commitVolumeState(ctx, pool, backend, pc, live, EventKind.VOLUME_CHANGED, actor, 'sizes');
    await flushEvents(ctx);
  } catch (err) {
    ctx.log.warn('re-reading a volume after a failed write failed; the next refresh corrects it', { pool: pool.definition.name, volume: vol.definition.name, error: err });
  }
}

/**
 * commitVolume, also returning the pool state the event carried (for a complete reply).
 * `readBack`: the volume as the operation already read it from its own descriptor
 * (BuiltVolume.volume), which spares the re-read.
 */
export async function commitVolumeState(
  ctx: AgentContext,
  pool: PoolEntry,
  backend: StorageBackend,
  pc: PoolContext,
  def: VolumeDefinition,
  kind: EventKind,
  actor: Actor,
  how: Reread = 'probe',
  readBack?: VolumeDefinition,
): Promise<{ volume: Volume; pool: Pool }> {
  const reread = async (): Promise<VolumeDefinition> => {
    if (!backend.refreshVol) return def;
    try {
      // what the build read of its own file is what refreshVol would read by name now
      const live = readBack ?? (await backend.refreshVol(pc, def));
      return how === 'sizes' ? keepUnprobedFields(live, def) : live;
    } catch (err) {
      ctx.log.warn('re-reading a volume failed; its requested state is reported', { pool: pool.definition.name, volume: def.name, error: err });
      return def;
    }
  };
  // the volume and the pool's sizes are read side by side; where the sizes cannot be read,
  // the allocation the volume took is added (storageVolCreateXML / CreateXMLFrom)
  const before = pool.volumes.get(def.name)?.definition.allocation ?? 0n;
  const rereading = reread();
  const [live] = await Promise.all([rereading, refreshPoolSizes(ctx, pool, backend, pc, rereading.then((v) => (v.allocation ?? 0n) - before))]);
  const entry = ctx.state.setVolume(pool, live);
  const volume = ctx.state.volumeMessage(pool.definition.name, entry);
  const poolState = ctx.state.poolMessage(pool);
  ctx.events.publish(volumeEvent(kind, ctx.host, volume, actor, poolState));
  return { volume, pool: poolState };
}

/** `allocationChange`: the volume allocation the operation added (negative: freed), for pools whose sizes are not read (pool-sizes.ts). */
export async function refreshPoolSizes(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, pc: PoolContext, allocationChange: bigint | Promise<bigint> = 0n): Promise<void> {
  try {
    const read = await readPoolSizes(backend, pc, pool.runtime);
    const change = await allocationChange;
    // no await from here to the store: the adjustment goes onto the sizes as they are now
    ctx.state.touchPool(pool, read ?? accountedPoolSizes(pool.runtime, change));
  } catch (err) {
    ctx.log.warn('pool sizes not read', { pool: pool.definition.name, error: err });
    ctx.state.touchPool(pool);
  }
}

/**
 * Waits while the create or clone of a volume it has already published (VOLUME_CREATED is
 * out while the disk still flushes the new file) has not ended: a caller reacting to the
 * event waits those milliseconds instead of being told the volume is busy. A volume not yet
 * published is left to existingVolume ("still being allocated"); one whose flush failed is
 * gone once this returns. Resolve the pool and the volume after it.
 */
export async function untilPublishedCreateEnds(ctx: AgentContext, poolName: string, name: string, op: string, signal: AbortSignal | undefined): Promise<void> {
  if (ctx.locks.allocating(poolName, name) === undefined || !ctx.state.getPool(poolName)?.volumes.has(name)) return;
  await ctx.locks.untilCreated(poolName, name, op, signal);
}

/**
 * The pool's volume `name`. Else NOT_FOUND; or ABORTED while a create or clone still makes
 * it: libvirt lists a volume as soon as its build begins and refuses work on it ("volume is
 * still being allocated"), and a caller told NOT_FOUND would take the name for free.
 */
export function existingVolume(ctx: AgentContext, pool: PoolEntry, name: string): VolumeEntry {
  const entry = pool.volumes.get(name);
  if (entry) return entry;
  const op = ctx.locks.allocating(pool.definition.name, name);
  if (op !== undefined) throw volumeBeingAllocated(pool.definition.name, name, op);
  throw new VolumeNotFoundError(ctx.host, pool.definition.name, name);
}

/**
 * Ends a create's journal entry once. A create ends it as soon as the volume is complete,
 * before its VOLUME_CREATED is published: an agent that dies between the two keeps the
 * volume (its next sync reports it) rather than undoing at boot a create the stream has
 * already announced. A failure ends it in `finally`.
 */
/** The backend tells the journal which file or partition the create made (CreateVolOptions.onFileMade, onPartitionMade): the undo after a restart removes that one only. */
function madeInto(journal: Partial<JournalHandle> | undefined): Pick<CreateVolOptions, 'onFileMade' | 'onPartitionMade'> {
  const made = journal?.made;
  const madePartition = journal?.madePartition;
  return {
    ...(typeof made === 'function' ? { onFileMade: (file) => made(file) } : {}),
    ...(typeof madePartition === 'function' ? { onPartitionMade: (extent) => madePartition(extent) } : {}),
  };
}

function journalEnder(end: (() => Promise<void>) | undefined): () => Promise<void> {
  return async () => {
    const once = end;
    end = undefined;
    await once?.();
  };
}

/**
 * Waits for a new volume to be durable (BuiltVolume.durable). When it cannot be, the backend
 * has removed it, and the create, already announced, is taken back: VOLUME_DELETED, as if
 * deleted, and the create fails with the flush's error. (libvirt shows a volume being built
 * in its pool's listing too, from before its build.)
 */
async function untilDurable(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, pc: PoolContext, name: string, actor: Actor, durable: Promise<void> | undefined): Promise<void> {
  try {
    await durable;
  } catch (err) {
    if (pool.volumes.has(name)) publishRemoval(ctx, pool, actor, await removeVolumeState(ctx, pool, backend, pc, name));
    await flushEvents(ctx);
    throw err;
  }
}

/** Forgets a volume gone from the pool and takes the pool's new sizes; returns its last state (for VOLUME_DELETED). */
async function removeVolumeState(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, pc: PoolContext, name: string): Promise<VolumeEntry> {
  const last = ctx.state.deleteVolume(pool, name)!;
  // storageVolDeleteInternal: the pool gets the volume's allocation back
  await refreshPoolSizes(ctx, pool, backend, pc, -(last.definition.allocation ?? 0n));
  return last;
}

/** Publishes VOLUME_DELETED for `last`, with the pool as it is now; returns what the event carried. */
function publishRemoval(ctx: AgentContext, pool: PoolEntry, actor: Actor, last: VolumeEntry): { removed: Volume; poolState: Pool } {
  const removed = ctx.state.volumeMessage(pool.definition.name, last);
  const poolState = ctx.state.poolMessage(pool);
  ctx.events.publish(volumeEvent(EventKind.VOLUME_DELETED, ctx.host, removed, actor, poolState));
  return { removed, poolState };
}

export async function createVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'createVolume'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.parent, def.name, 'parent');
  const wanted = op.definition;
  if (!wanted) throw new InvalidArgumentError('definition', 'a volume definition is required (the coordinator turns XML into one)');
  checkNewObjectName(wanted.name, 'definition.name', 'volume name');
  const pool = activePool(ctx, def.name);
  const backend = backendFor(ctx, pool.definition.type);
  requireOperation(backend, 'createVol', 'creating a volume');
  const backingImage = openBackingStore(ctx, pool, wanted);
  const actor = actorOf(request);
  let release: (() => void) | undefined;
  try {
    release = ctx.locks.reserveVolumeName(def.name, wanted.name, 'create', pool.volumes.has(wanted.name));
    const pc = poolContext(ctx, pool.definition, actor, { operation: 'create', volume: wanted.name });
    const planned = await backend.createVol!(pc, wanted);
    // decided before the create, from what is known of the pool's other volumes
    const rescan = rescanAfterCreate(backend, pool, planned);
    // one id for the journal and the backend: an undo removes only what this create made
    const createId = newCreateId();
    const journal = await ctx.journal?.begin({ operation: 'create', pool: pool.definition, volume: planned, requestId: actor.requestId, principal: actor.principal, createId });
    const endJournal = journalEnder(journal);
    try {
      let built: BuiltVolume | void = undefined;
      if (backend.buildVol && backend.operations.has('buildVol')) {
        built = await backend.buildVol(pc, planned, { preallocMetadata: op.preallocMetadata, createId, ...madeInto(journal), ...(backingImage ? { backingImage } : {}) });
      }
      await endJournal();
      const done = await commitVolumeState(ctx, pool, backend, pc, planned, EventKind.VOLUME_CREATED, actor, 'sizes', built?.volume);
      // the event is stored while the disk flushes the new file; the answer waits for both
      const [sequence] = await Promise.all([flushEvents(ctx), untilDurable(ctx, pool, backend, pc, wanted.name, actor, built?.durable)]);
      ctx.log.info('volume created', { pool: def.name, volume: wanted.name, principal: actor.principal, requestId: actor.requestId });
      if (!rescan) return volumeReply(done.volume, sequence, done.pool);
      await publishOthersAfterCreate(ctx, pool, backend, pc, actor, wanted.name);
      return volumeReply(done.volume, await flushEvents(ctx), done.pool, false);
    } finally {
      await endJournal();
    }
  } finally {
    release?.();
    backingImage?.close();
  }
}

/**
 * A backing store of a new file volume must be a file in one of this host's pools, and so must
 * every file its own chain names: qemu-img reads them all (a later clone copies the chain), and
 * all of them must open (the create records the chain without opening it, `qemu-img create
 * -u`, and would not notice a missing one). A relative path is the pool target's, as the
 * backend resolves it. Returns the chain opened: the backend reads it from these descriptors.
 */
function openBackingStore(ctx: AgentContext, pool: PoolEntry, wanted: VolumeDefinition): ImageChain | undefined {
  const backing = wanted.backingStore;
  if (!backing?.path || !FILE_POOL_TYPES.has(pool.definition.type)) return undefined;
  const target = pool.definition.target?.path ?? '';
  const name = isAbsolute(backing.path) ? backing.path : `${target}/${backing.path}`;
  return openImageChain(name, backing.format, admitInHostPools(ctx.state), 'backing store', { wholeChain: true });
}

/**
 * A clone reads its source and, through qemu-img convert, the source's whole backing chain:
 * the source (a link planted in the pool may lead anywhere) and every file of its chain must
 * be in one of this host's pools. Returns the chain opened: the backend reads it from these
 * descriptors.
 *
 * A file is read as its header says (as a refresh probed it). A block volume (an LV, a
 * partition, a LUN) is read as raw, as libvirt reads a VIR_STORAGE_VOL_BLOCK input: its bytes
 * are written by the guest using it, and a qcow2 header there is the guest's data, whose
 * backing file (another volume of the host) a clone must not read.
 */
function openCloneSource(ctx: AgentContext, sourcePool: PoolEntry, source: VolumeEntry): ImageChain | undefined {
  const def = sourcePool.definition;
  const file = FILE_POOL_TYPES.has(def.type);
  const name = file ? `${def.target?.path ?? ''}/${source.definition.name}` : source.definition.target?.path ?? '';
  if (!name) return undefined;
  const chain = openImageChain(name, file ? 'probe' : 'raw', admitInHostPools(ctx.state), 'clone source');
  // an LV that is not active has no device node: the volume is there (its pool lists it), its data unreachable
  const state = source.definition.state;
  if (!chain.layers.length && chain.unopened?.code === 'ENOENT' && state !== undefined && state !== 'active') {
    chain.close();
    throw new FailedPreconditionError(`logical volume '${printable(name, 200)}' is not active (state ${printable(state)}); it has no device node to clone from`);
  }
  return chain;
}

/**
 * The new volume's definition for a clone, never smaller than the source (libvirt).
 * `fromXml`: the request's XML alone (storageVolCreateXMLFrom parses only the new document,
 * so what it leaves out has the defaults of a create, not the source's values), and an
 * allocation it does not give is the capacity as raised: a full copy. Otherwise the source's
 * definition, renamed, without what belongs to the source file (key, path, timestamps),
 * overlaid with what the request gives: an allocation not given is the source's, as when
 * virsh vol-clone sends the source's XML (a thick source gives a thick clone).
 */
export function cloneDefinition(source: VolumeDefinition, given: VolumeDefinition, fromXml = false, formats: readonly string[] = []): VolumeDefinition {
  const base = fromXml ? ownDefinition(given) : overSource(source, given, formats);
  if ((base.capacity ?? 0n) < (source.capacity ?? 0n)) base.capacity = source.capacity;
  if (fromXml && base.allocation === undefined) base.allocation = base.capacity;
  return base;
}

/** A definition without what belongs to a volume that exists (key, path, timestamps, extents). */
function ownDefinition(given: VolumeDefinition): VolumeDefinition {
  const base = VolumeDefinition.fromPartial(given);
  base.key = '';
  base.physical = undefined;
  base.sourceDevices = [];
  if (base.target) {
    base.target.path = '';
    base.target.timestamps = undefined;
  }
  return base;
}

/**
 * `formats`: the volume formats of the destination pool's type (none listed: any). A source
 * of a format the destination does not know (a partition's 'none' or 'linux' into a dir
 * pool, a file's 'raw' into a disk pool) gives the destination's default format: the copy is
 * of the source's bytes (a block volume is read as raw), not of a format it could not have.
 */
function overSource(source: VolumeDefinition, given: VolumeDefinition, formats: readonly string[]): VolumeDefinition {
  const base = ownDefinition(source);
  base.name = given.name;
  if (base.target && !given.target?.format && base.target.format && formats.length > 0 && !formats.includes(base.target.format)) {
    base.target.format = '';
    base.target.compat = '';
    base.target.clusterSize = 0n;
    base.target.lazyRefcounts = false;
    base.target.extendedL2 = false;
  }
  if (base.target) {
    // a clone into another format takes nothing of the source's format-specific layout (as
    // libvirt, which takes only the new XML's): a qcow2 source's cluster size made a raw
    // clone fail with 'cluster size is only available with qcow2 and qed'
    if (given.target?.format && given.target.format !== base.target.format) {
      base.target.compat = '';
      base.target.clusterSize = 0n;
      base.target.lazyRefcounts = false;
      base.target.extendedL2 = false;
      base.target.encryption = undefined;
    }
    if (given.target?.format) base.target.format = given.target.format;
    if (given.target?.permissions) base.target.permissions = given.target.permissions;
    if (given.target?.compat) base.target.compat = given.target.compat;
    if (given.target?.clusterSize) base.target.clusterSize = given.target.clusterSize;
    if (given.target?.nocow) base.target.nocow = true;
    if (given.target?.lazyRefcounts) base.target.lazyRefcounts = true;
    if (given.target?.extendedL2) base.target.extendedL2 = true;
    if (given.target?.encryption) base.target.encryption = given.target.encryption;
  } else if (given.target) {
    base.target = { ...given.target, path: '', timestamps: undefined };
  }
  if (given.type) base.type = given.type;
  if (given.allocation !== undefined) base.allocation = given.allocation;
  // a clone is a full copy (qemu-img convert flattens): it keeps no backing store
  // of its source's, only one the request names
  base.backingStore = given.backingStore;
  if (given.capacity !== undefined) base.capacity = given.capacity;
  return base;
}

export async function cloneVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'cloneVolume'>): Promise<AgentReply> {
  const def = requestPool(request);
  checkPoolResource(ctx, op.parent, def.name, 'parent');
  const given = op.definition;
  if (!given) throw new InvalidArgumentError('definition', 'a definition with at least the new volume name is required');
  checkNewObjectName(given.name, 'definition.name', 'volume name');
  const src = parseVolumeName(op.source, 'source');
  if (src.host !== ctx.host) {
    throw new InvalidArgumentError('source', `the source volume is on host '${src.host}'; a clone stays on one host ('${ctx.host}')`);
  }
  if (src.pool !== def.name && request.sourcePool && request.sourcePool.name !== src.pool) {
    throw new InvalidArgumentError('source_pool', `names pool '${request.sourcePool.name}' but the source is in pool '${src.pool}'`);
  }
  await untilPublishedCreateEnds(ctx, src.pool, src.volume, `clone to '${given.name}'`, actorOf(request).signal);
  const pool = activePool(ctx, def.name);
  const sourcePool = src.pool === def.name ? pool : activePool(ctx, src.pool);
  const backend = backendFor(ctx, pool.definition.type);
  requireOperation(backend, 'createVol', 'creating a volume');
  requireOperation(backend, 'buildVolFrom', 'cloning a volume');
  const sourceVolume = existingVolume(ctx, sourcePool, src.volume);
  const actor = actorOf(request);
  let release: (() => void) | undefined;
  let releaseSource: (() => void) | undefined;
  let sourceImage: ImageChain | undefined;
  try {
    release = ctx.locks.reserveVolumeName(def.name, given.name, 'clone', pool.volumes.has(given.name));
    releaseSource = ctx.locks.acquireVolume(src.pool, src.volume, `clone to '${given.name}'`, 'shared');
    // opened under the source's lock: the file read is the one no delete or write of the volume replaces meanwhile
    sourceImage = openCloneSource(ctx, sourcePool, sourceVolume);
    const pc = poolContext(ctx, pool.definition, actor, { operation: 'clone', volume: given.name });
    const planned = await backend.createVol!(pc, cloneDefinition(sourceVolume.definition, given, request.cloneFromXml, backend.volumeFormats));
    const rescan = rescanAfterCreate(backend, pool, planned);
    const createId = newCreateId();
    const journal = await ctx.journal?.begin({ operation: 'clone', pool: pool.definition, volume: planned, requestId: actor.requestId, principal: actor.principal, createId });
    const endJournal = journalEnder(journal);
    try {
      await backend.buildVolFrom!(
        pc,
        planned,
        { pool: sourcePool.definition, volume: sourceVolume.definition },
        { preallocMetadata: op.preallocMetadata, createId, ...madeInto(journal), ...(op.reflink ? { reflink: true } : {}), ...(sourceImage ? { sourceImage } : {}) },
      );
      await endJournal();
      const done = await commitVolumeState(ctx, pool, backend, pc, planned, EventKind.VOLUME_CREATED, actor, 'sizes');
      ctx.log.info('volume cloned', { pool: def.name, volume: given.name, source: op.source, requestId: actor.requestId });
      if (rescan) await publishOthersAfterCreate(ctx, pool, backend, pc, actor, given.name);
      return volumeReply(done.volume, await flushEvents(ctx), done.pool, !rescan);
    } finally {
      await endJournal();
    }
  } finally {
    releaseSource?.();
    release?.();
    sourceImage?.close();
  }
}

export async function deleteVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'deleteVolume'>): Promise<AgentReply> {
  return withExistingVolume(ctx, request, op.name, 'deleteVol', 'deleting a volume', 'delete', async ({ def, name, pool, backend, vol, actor }) => {
    const pc = poolContext(ctx, pool.definition, actor);
    // decided before the delete, from what is known of the pool's other volumes
    const rescan = rescanAfterDelete(backend, pool, vol);
    const releaseMoved = holdMovedVolumes(ctx, pool, backend, vol, name);
    try {
      await backend.deleteVol!(pc, vol.definition);
      const { removed, poolState } = publishRemoval(ctx, pool, actor, await removeVolumeState(ctx, pool, backend, pc, name));
      // deleting a dos logical partition renumbers the ones after it (libvirt re-reads a disk
      // pool too); removing an LVM origin removes its snapshots: re-read the pool, publish what went
      if (rescan) await publishScan(ctx, pool, await scanPool(ctx, pool, backend, pc), actor, new Set([name, ...releaseMoved.names]));
      ctx.log.info('volume deleted', { pool: def.name, volume: name, principal: actor.principal, requestId: actor.requestId });
      // after a rescan the reply does not hold every change: the coordinator waits for the events
      return deletedReply(removed, poolState, await flushEvents(ctx), !rescan);
    } finally {
      releaseMoved();
    }
  });
}

/**
 * Takes the locks of the volumes deleting `vol` renumbers (backend.volumesMovedByDelete), at
 * once or not at all: an upload or wipe of one of them resolves its node and then opens it,
 * and a renumbering in between would point it at another partition. One of them busy: the
 * delete is ABORTED, naming it, and nothing is done.
 */
function holdMovedVolumes(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, vol: VolumeEntry, name: string): (() => void) & { names: string[] } {
  const poolName = pool.definition.name;
  const others = function* (): Iterable<VolumeDefinition> {
    for (const v of pool.volumes.values()) if (v !== vol) yield v.definition;
  };
  const names = backend.volumesMovedByDelete?.(vol.definition, others()) ?? [];
  const releases: Array<() => void> = [];
  const releaseAll = Object.assign(() => {
    for (const r of releases.splice(0)) r();
  }, { names });
  try {
    for (const other of names) releases.push(ctx.locks.acquireVolume(poolName, other, 'delete'));
  } catch (err) {
    releaseAll();
    if (err instanceof AbortedError) {
      throw new AbortedError(`deleting '${name}' renumbers ${names.join(', ')}, and ${err.message}; nothing was deleted`, { pool: poolName, volume: name });
    }
    throw err;
  }
  return releaseAll;
}

/** Does creating `planned` change other volumes of the pool (backend.refreshAfterCreateVol)? */
function rescanAfterCreate(backend: StorageBackend, pool: PoolEntry, planned: VolumeDefinition): boolean {
  const rule = backend.refreshAfterCreateVol;
  if (typeof rule !== 'function') return !!rule;
  function* others(): Iterable<VolumeDefinition> {
    for (const v of pool.volumes.values()) if (v.definition.name !== planned.name) yield v.definition;
  }
  return rule(planned, others());
}

/**
 * After a create or clone that changed other volumes (a dos logical partition counts in its
 * extended one): the pool re-read, what changed published. The create itself has succeeded
 * and been announced: a failed re-read is logged, not raised (the next refresh corrects the
 * others), and a cancel arriving now does not stop it.
 */
async function publishOthersAfterCreate(ctx: AgentContext, pool: PoolEntry, backend: StorageBackend, pc: PoolContext, actor: Actor, name: string): Promise<void> {
  try {
    await publishScan(ctx, pool, await scanPool(ctx, pool, backend, { ...pc, signal: undefined }), actor, new Set([name]));
  } catch (err) {
    ctx.log.warn('re-reading the pool after a create failed; its other volumes are corrected by the next refresh', { pool: pool.definition.name, volume: name, error: err });
  }
}

/** Does deleting `vol` change other volumes of the pool (backend.refreshAfterDeleteVol)? */
function rescanAfterDelete(backend: StorageBackend, pool: PoolEntry, vol: VolumeEntry): boolean {
  const rule = backend.refreshAfterDeleteVol;
  if (typeof rule !== 'function') return !!rule;
  function* others(): Iterable<VolumeDefinition> {
    for (const v of pool.volumes.values()) if (v !== vol) yield v.definition;
  }
  return rule(vol.definition, others());
}

export async function wipeVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'wipeVolume'>): Promise<AgentReply> {
  return withExistingVolume(ctx, request, op.name, 'wipeVol', 'wiping a volume', 'wipe', async ({ def, name, pool, backend, vol, actor }) => {
    const pc = poolContext(ctx, pool.definition, actor, { operation: 'wipe', volume: name });
    try {
      await backend.wipeVol!(pc, vol.definition, op.algorithm);
    } catch (err) {
      await rereadAfterFailure(ctx, pool, backend, pc, vol, actor);
      throw err;
    }
    const done = await commitVolumeState(ctx, pool, backend, pc, vol.definition, EventKind.VOLUME_WIPED, actor);
    ctx.log.info('volume wiped', { pool: def.name, volume: name, algorithm: op.algorithm, requestId: actor.requestId });
    return volumeReply(done.volume, await flushEvents(ctx), done.pool);
  });
}

/**
 * libvirt's storageVolResize rules: delta adds to (or with shrink, subtracts from) the
 * current capacity; shrinking needs the flag; never below the allocation. Returns the
 * absolute new capacity. (Whether an allocating resize fits is the backend's check:
 * it reads the pool's free space at that moment.)
 */
export function resizeTarget(
  current: { capacity: bigint; allocation: bigint },
  request: { capacity: bigint; delta: boolean; shrink: boolean },
): bigint {
  let target: bigint;
  if (request.delta) {
    target = request.shrink
      ? current.capacity - (request.capacity < current.capacity ? request.capacity : current.capacity)
      : current.capacity + request.capacity;
  } else {
    target = request.capacity;
  }
  if (target < current.allocation) {
    throw new InvalidArgumentError('capacity', `can't shrink capacity below existing allocation (${current.allocation} bytes)`);
  }
  if (target < current.capacity && !request.shrink) {
    throw new InvalidArgumentError(
      'capacity',
      `can't shrink capacity below current capacity (${current.capacity} bytes) unless the shrink flag is given`,
    );
  }
  return target;
}

export async function resizeVolume(ctx: AgentContext, request: AgentRequest, op: AgentOpValue<'resizeVolume'>): Promise<AgentReply> {
  return withExistingVolume(ctx, request, op.name, 'resizeVol', 'resizing a volume', 'resize', async ({ def, name, pool, backend, vol, actor }) => {
    const target = (): bigint =>
      resizeTarget({ capacity: vol.definition.capacity ?? 0n, allocation: vol.definition.allocation ?? 0n }, op);
    // a retry of a delta resize goes to the capacity its first call went to, not one delta further
    const capacity =
      op.delta && actor.requestId && ctx.resizeIntents
        ? ctx.resizeIntents.capacityFor({ principal: actor.principal, requestId: actor.requestId, fingerprint: fingerprintOf(request) }, target)
        : target();
    const pc = poolContext(ctx, pool.definition, actor, op.allocate ? { operation: 'resize', volume: name } : undefined);
    // an allocating grow a kill interrupts is undone at the next start (grow-journal.ts)
    const grow = op.allocate && ctx.grows ? ctx.grows.track(pool.definition, name, actor.requestId) : undefined;
    try {
      // an overlay that grows has qemu-img open its backing chain: only files of this host's pools
      await backend.resizeVol!(pc, vol.definition, capacity, {
        allocate: op.allocate,
        delta: false,
        shrink: op.shrink,
        admitBacking: admitInHostPools(ctx.state),
        ...(grow?.onAllocatingPastEnd ? { onAllocatingPastEnd: grow.onAllocatingPastEnd } : {}),
      });
    } catch (err) {
      await rereadAfterFailure(ctx, pool, backend, pc, vol, actor);
      throw err;
    } finally {
      grow?.done();
    }
    const done = await commitVolumeState(ctx, pool, backend, pc, { ...vol.definition, capacity }, EventKind.VOLUME_RESIZED, actor, 'sizes');
    ctx.log.info('volume resized', { pool: def.name, volume: name, capacity, requestId: actor.requestId });
    return volumeReply(done.volume, await flushEvents(ctx), done.pool);
  });
}
