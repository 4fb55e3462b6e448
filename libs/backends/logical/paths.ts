// Where a logical pool's things are: the volume group it names, its target directory
// (/dev/VG), an LV's device node and the PVs the pool lists, each name and path checked
// before it reaches an LVM command line.
import type { PoolDefinition } from '../../proto/cistern/v1/storage.js';
import { InvalidArgumentError } from '../../errors/errors.js';
import { checkAbsolutePath, printable } from '../../api/names.js';
import { checkLvName, checkVgName } from '../lvm-parse.js';

/** The VG name: <source><name>, defaulting to the pool name (libvirt). */
export function vgName(pool: PoolDefinition): string {
  return checkVgName(pool.source?.name || pool.name, pool.source?.name ? 'source.name' : 'name');
}

/** The pool target: /dev/VG unless given. */
export function poolTarget(pool: PoolDefinition): string {
  const path = pool.target?.path || `/dev/${vgName(pool)}`;
  return checkAbsolutePath(path, 'target.path');
}

/** target + '/' + LV name, the LV's device path (libvirt's vol->target.path). */
export function lvPath(pool: PoolDefinition, name: string, field = 'volume.name'): string {
  checkLvName(name, vgName(pool), field);
  const target = poolTarget(pool);
  return target === '/' ? `/${name}` : `${target}/${name}`;
}

/** The pool's source devices (the PVs), each an absolute path, none listed twice. */
export function sourceDevices(pool: PoolDefinition): string[] {
  const paths = (pool.source?.devices ?? []).map((d, i) => checkAbsolutePath(d.path, `source.devices[${i}].path`));
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) throw new InvalidArgumentError('source.devices', `device '${printable(p)}' is listed twice`);
    seen.add(p);
  }
  return paths;
}
