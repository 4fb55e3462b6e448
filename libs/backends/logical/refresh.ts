// A logical pool's refresh (virStorageBackendLogicalRefreshPool): its LVs from lvs, each
// with its extents, origin and device-node state, and the VG's sizes from vgs.
import { stat } from 'node:fs/promises';
import { VolumeType, type PoolDefinition, type VolumeDefinition, type VolumeSourceDevice } from '../../proto/cistern/v1/storage.js';
import { NotFoundError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { PoolContext, RefreshResult } from '../backend.js';
import { blockDeviceSize } from '../file-io.js';
import { permsOf } from '../stat-fields.js';
import { parseVgs, vgsArgv, type LvRecord, type LvState } from '../lvm-parse.js';
import { plainTarget } from '../volume-target.js';
import { listLvs, lvm, settleUdev } from './lvm.js';
import { lvPath, poolTarget, vgName } from './paths.js';
import { keepEncryption } from './luks.js';
import type { LogicalTools } from './tools.js';

/**
 * A volume of a logical pool as refresh reports it: the proto definition plus the LV's
 * device-mapper state (lv_attr), so an inactive LV is listed, not hidden as libvirt 9
 * hides it. `state` reaches users through VolumeDefinition.state; `sparse` stays in-process.
 */
export type LogicalVolumeDefinition = VolumeDefinition & { state: LvState; sparse: boolean };

/**
 * virStorageBackendLogicalRefreshPool: `udevadm settle` first (virWaitForDevices, so the
 * nodes of LVs just made or activated are there to be read), then lvs (every LV, inactive
 * ones with their state) and vgs (sizes).
 */
export async function refreshVolumeGroup(ctx: PoolContext, tools: LogicalTools): Promise<RefreshResult> {
  const vg = vgName(ctx.pool);
  await settleUdev(ctx, tools, false);
  const records = await listLvs(ctx);
  const { stdout } = await lvm(ctx, vgsArgv(vg), `cannot read the size of volume group '${vg}'`);
  const { size, free } = parseVgs(stdout);
  const volumes: VolumeDefinition[] = [];
  for (const r of records) {
    if (r.thinPool) continue;
    volumes.push(await toVolume(ctx.pool, r));
  }
  return { runtime: { capacity: size, allocation: size - free, available: free }, volumes };
}

/**
 * One LV read again from lvs. A volume known as encrypted (created so) keeps its encryption,
 * as libvirt keeps the created volume until a pool refresh, which lists every LV plainly.
 */
export async function refreshLv(ctx: PoolContext, volume: VolumeDefinition): Promise<VolumeDefinition> {
  lvPath(ctx.pool, volume.name);
  const rec = (await listLvs(ctx)).find((r) => r.name === volume.name && !r.thinPool);
  if (!rec) throw new NotFoundError(`logical volume '${printable(volume.name)}' not found in volume group '${vgName(ctx.pool)}'`);
  return keepEncryption(await toVolume(ctx.pool, rec), volume);
}

/** An LV as a volume: key = LV uuid, path = target/LV, extents per device, backing origin. */
async function toVolume(pool: PoolDefinition, r: LvRecord): Promise<LogicalVolumeDefinition> {
  const target = poolTarget(pool);
  const path = `${target === '/' ? '' : target}/${r.name}`;
  const sourceDevices: VolumeSourceDevice[] = [];
  for (const e of r.extents) {
    let dev = sourceDevices.find((d) => d.path === e.device);
    if (!dev) sourceDevices.push((dev = { path: e.device, extents: [] }));
    dev.extents.push({ start: e.start, end: e.end });
  }
  // a snapshot's lv_size is its COW area (the allocation); what it shows is its origin's
  // (or its virtual) size, which lvs reports as origin_size
  let capacity = r.visibleSize;
  let permissions;
  if (r.active) {
    // libvirt reads capacity and permissions from the device node
    try {
      const st = await stat(path, { bigint: true });
      if (st.isBlockDevice()) capacity = blockDeviceSize(st) || capacity;
      permissions = permsOf(st);
    } catch {
      // node not there (yet): the LVM sizes stand
    }
  }
  return {
    type: VolumeType.VOLUME_TYPE_BLOCK,
    name: r.name,
    key: r.uuid,
    capacity,
    allocation: r.size,
    physical: capacity,
    sourceDevices,
    target: plainTarget(path, '', permissions),
    // libvirt stores VIR_STORAGE_POOL_LOGICAL_LVM2 (1) as the file format, which prints as raw
    backingStore: r.backingOrigin ? { path: `${target === '/' ? '' : target}/${r.backingOrigin}`, format: 'raw', permissions: undefined, timestamps: undefined } : undefined,
    state: r.state,
    sparse: r.sparse,
  };
}
