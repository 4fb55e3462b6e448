// Which volume groups this host has and on which physical volumes: the pool's own VG
// (libvirt's virStorageBackendLogicalMatchPoolSource, asked before start and by checkPool)
// and every VG for find-storage-pool-sources.
import { realpath } from 'node:fs/promises';
import { PoolSource, Tristate } from '../../proto/cistern/v1/storage.js';
import { CancelledError, FailedPreconditionError } from '../../errors/errors.js';
import type { BackendContext, PoolContext } from '../backend.js';
import { parsePvs, pvsArgv } from '../lvm-parse.js';
import { lvm, runLvm } from './lvm.js';
import { sourceDevices, vgName } from './paths.js';

/** vgscan (errors ignored, as libvirt) + pvs: VG name -> PV paths. */
export async function pvGroups(ctx: BackendContext): Promise<Map<string, string[]>> {
  try {
    await runLvm(ctx, ['vgscan']);
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    // only a refresh of LVM's view; the pvs below still answers
  }
  const { stdout } = await lvm(ctx, pvsArgv(), 'cannot list physical volumes');
  return parsePvs(stdout);
}

/**
 * virStorageBackendLogicalMatchPoolSource: the VG is listed by pvs and, if the pool
 * names devices, at least one of them is a PV of it. `known`: pvGroups already read.
 */
export async function matchPoolSource(ctx: PoolContext, known?: Map<string, string[]>): Promise<void> {
  const vg = vgName(ctx.pool);
  const groups = known ?? (await pvGroups(ctx));
  const pvs = groups.get(vg);
  if (!pvs) throw new FailedPreconditionError(`cannot find logical volume group '${vg}'`, { vg });
  const devices = sourceDevices(ctx.pool);
  if (devices.length === 0) return;
  const real = async (p: string): Promise<string> => realpath(p).catch(() => p);
  const pvReal = new Set(await Promise.all(pvs.map(real)));
  let matches = 0;
  for (const d of devices) if (pvs.includes(d) || pvReal.has(await real(d))) matches++;
  if (matches === 0) {
    throw new FailedPreconditionError(
      `cannot find any matching source devices for logical volume group '${vg}': the pool names ${devices.join(', ')}, the volume group has ${pvs.join(', ')}`,
      { vg },
    );
  }
}

/** vgscan + pvs: one source per VG with its PVs (PVs in no VG are not listed). */
export async function findVolumeGroups(ctx: BackendContext): Promise<PoolSource[]> {
  const groups = await pvGroups(ctx);
  return [...groups.entries()].map(([vg, pvs]) =>
    PoolSource.fromPartial({
      name: vg,
      format: 'lvm2',
      devices: pvs.map((path) => ({ path, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] })),
    }),
  );
}
