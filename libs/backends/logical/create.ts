// Creating a logical volume: createVol's checks (name, capacity, snapshot origin, encryption)
// and buildVol's lvcreate with libvirt 9's command line (virStorageBackendLogicalLVCreate) and
// the create's tag, the LUKS format of an encrypted one (luks.ts), then the node's mode and
// owner; a failure of lvcreate or after it removes the LV carrying that tag again (tags.ts).
import { chmod, chown } from 'node:fs/promises';
import { VolumeType, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { InvalidArgumentError, NotFoundError } from '../../errors/errors.js';
import { checkAbsolutePath, checkSize, printable } from '../../api/names.js';
import type { CreateVolOptions, PoolContext } from '../backend.js';
import { checkLvName } from '../lvm-parse.js';
import { DEFAULT_VOL_MODE, wantedOwner } from '../stat-fields.js';
import { plainTarget } from '../volume-target.js';
import { listLvs, lvm } from './lvm.js';
import { lvPath, poolTarget, vgName } from './paths.js';
import { deviceError } from '../fs-errors.js';
import { deleteLv } from './delete.js';
import { createTag } from './tags.js';
import { newCreateId } from '../create-id.js';
import { removeSecretFile, type SecretFile } from '../dir/secret-file.js';
import { checkLvEncryption, formatLuks, headerRoomFor, passphraseFile } from './luks.js';
import type { LogicalTools } from './tools.js';

/**
 * lvcreate exactly as libvirt 9 builds it (virStorageBackendLogicalLVCreate), then `--addtag
 * TAG` when given (the create's tag). `headerRoom`: what an encrypted LV gets on top of its
 * capacity for the LUKS header (luks.ts), added after the capacity is compared with the
 * allocation, as libvirt adds it: a sparse LV takes it on its virtual size only.
 */
export function lvcreateArgv(vg: string, name: string, capacity: bigint, allocation: bigint, backingPath?: string, tag?: string, headerRoom = 0n): string[] {
  const k = (n: bigint): string => `${(n + 1023n) / 1024n}K`;
  const argv = ['lvcreate', '--name', name, '-L'];
  if (capacity !== allocation) argv.push(k(allocation === 0n ? 1n : allocation), '--type', 'snapshot', '--virtualsize');
  argv.push(k(capacity + headerRoom));
  if (backingPath) argv.push('-s', backingPath);
  else argv.push(vg);
  argv.push('--yes');
  if (tag !== undefined) argv.push('--addtag', tag);
  return argv;
}

/** Checks the request (LV name, capacity, backing origin, encryption); fills in type, path. Nothing runs. */
export async function planLv(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
  const vg = vgName(ctx.pool);
  const path = lvPath(ctx.pool, volume.name);
  const capacity = volume.capacity;
  if (capacity === undefined || capacity === 0n) {
    throw new InvalidArgumentError('volume.capacity', 'a logical volume needs a capacity greater than 0 bytes');
  }
  checkSize(capacity, 'volume.capacity');
  let allocation = volume.allocation ?? capacity;
  checkSize(allocation, 'volume.allocation');
  // An allocation above the capacity makes a plain LV of the capacity (fully allocated).
  // libvirt 9 instead runs `lvcreate -L <allocation> --type snapshot --virtualsize
  // <capacity>`: a sparse LV, a dm-snapshot of zeros whose COW area can still overflow
  // (and the LV become unusable) when the excess does not cover the exception store.
  if (allocation > capacity) allocation = capacity;
  const enc = volume.target?.encryption;
  checkLvEncryption(enc, volume.backingStore?.path);
  // an LV has no format of its own: libvirt ignores a given one (a clone's definition
  // carries the source file's format, e.g. qcow2, which the copy converts to raw)
  let backingStore = undefined;
  if (volume.backingStore?.path) {
    const bpath = checkAbsolutePath(volume.backingStore.path, 'volume.backing_store.path');
    const target = poolTarget(ctx.pool);
    const prefix = target === '/' ? '/' : `${target}/`;
    const origin = bpath.startsWith(prefix) ? bpath.slice(prefix.length) : '';
    if (!origin || origin.includes('/')) {
      throw new InvalidArgumentError(
        'volume.backing_store.path',
        `backing store '${printable(bpath)}' is not a volume of this pool; a snapshot's origin must be ${prefix}<logical volume>`,
      );
    }
    checkLvName(origin, vg, 'volume.backing_store.path');
    // libvirt 9.0 would run `lvcreate -L ALLOCATION --type snapshot --virtualsize CAPACITY -s
    // ORIGIN`, which lvm2 refuses as a usage error ("Volume group name expected (no slash)"):
    // a snapshot's size is its copy-on-write area, it has no allocation of its own to give
    if (allocation !== capacity) {
      throw new InvalidArgumentError(
        'volume.allocation',
        `a snapshot of '${printable(bpath)}' cannot have an allocation (${allocation} bytes) below its capacity (${capacity} bytes): the capacity is the size of its copy-on-write area; allowed: no allocation, or one equal to the capacity`,
      );
    }
    backingStore = { path: bpath, format: 'raw', permissions: undefined, timestamps: undefined };
  }
  return {
    ...volume,
    type: VolumeType.VOLUME_TYPE_BLOCK,
    key: '',
    capacity,
    allocation,
    physical: undefined,
    sourceDevices: [],
    target: { ...plainTarget(path, '', volume.target?.permissions), encryption: enc },
    backingStore,
  };
}

/** An LV is made whole by lvcreate: preallocation and reflink have nothing to act on. */
export function refuseFileCreateFlags(options: CreateVolOptions): void {
  if (options?.preallocMetadata || options?.preallocation || options?.reflink) {
    throw new InvalidArgumentError('flags', 'preallocation and reflink do not apply to logical volumes');
  }
}

/**
 * lvcreate with libvirt's arguments and the create's tag; an encrypted LV is then formatted
 * LUKS (its passphrase's file written before lvcreate: none given, nothing is made); an active
 * LV then gets its mode (default 0600) and owner on the device node. Any failure from
 * lvcreate on removes the LV carrying the tag: an lvcreate killed, timed out or cancelled may
 * have recorded the LV before it died, and one that failed may have left it (LVM does not
 * always roll back). Returns the tag, for the clone's own undo. `regularFiles`: a regular
 * file may stand for an LV's node (unit tests).
 */
export async function createLv(ctx: PoolContext, volume: VolumeDefinition, options: CreateVolOptions, tools: LogicalTools, regularFiles = false): Promise<string> {
  // libvirt's storageVolCreateXML takes VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA for any pool
  // and its logical backend ignores it (an LV has no metadata to preallocate): not refused
  refuseFileCreateFlags({ ...options, preallocMetadata: false });
  const planned = await planLv(ctx, volume);
  const secret = await passphraseFile(ctx, planned);
  try {
    return await makeLv(ctx, planned, options, tools, secret, regularFiles);
  } finally {
    await removeSecretFile(secret);
  }
}

async function makeLv(ctx: PoolContext, planned: VolumeDefinition, options: CreateVolOptions, tools: LogicalTools, secret: SecretFile | undefined, regularFiles: boolean): Promise<string> {
  const vg = vgName(ctx.pool);
  const tag = createTag(options.createId ?? newCreateId());
  const argv = lvcreateArgv(vg, planned.name, planned.capacity!, planned.allocation!, planned.backingStore?.path, tag, headerRoomFor(planned));
  try {
    await lvm(ctx, argv, `cannot create logical volume '${planned.name}' in '${vg}'`);
    const rec = (await listLvs(ctx)).find((r) => r.name === planned.name);
    if (!rec) throw new NotFoundError(`cannot find newly created volume '${planned.target!.path}'`);
    // libvirt 9.0: qemu-img formats the LV before its node's owner and mode are set
    if (secret) await formatLuks(ctx, tools, planned, rec, secret, regularFiles);
    if (rec.active) {
      const perms = planned.target?.permissions;
      const path = planned.target!.path;
      const mode = perms?.mode ?? DEFAULT_VOL_MODE;
      try {
        await chmod(path, mode);
        const { uid, gid } = wantedOwner(perms);
        if (uid !== -1 || gid !== -1) await chown(path, uid, gid);
      } catch (err) {
        throw deviceError(err, 'set permissions of', path);
      }
    }
  } catch (err) {
    await removeAfterFailure(ctx, planned, tools, tag);
    throw err;
  }
  return tag;
}

/**
 * Undoes an lvcreate whose create or clone failed: removes the LV only if it carries the
 * create's `tag` (a same-named LV without it is someone else's). Not under the caller's
 * signal: a cancelled create must still remove what it made (every command would be refused).
 */
export async function removeAfterFailure(ctx: PoolContext, planned: VolumeDefinition, tools: LogicalTools, tag: string): Promise<void> {
  await deleteLv({ ...ctx, signal: undefined }, planned, tools, tag).catch(() => undefined);
}
