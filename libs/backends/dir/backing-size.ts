// The size a new overlay takes from its backing store when the request gives none: what
// `qemu-img create -b BACKING` without a size would read (bdrv_getlength of the backing file
// opened alone), read here from the descriptor the agent checked so that qemu-img itself can be
// run with -u and the size, and open no backing file by name.
import type { BackendContext } from '../backend.js';
import type { ImageLayer } from '../image-references.js';
import { blockDeviceSize } from '../file-io.js';
import { divUp, qemuDescriptorChain } from '../qemu-img-argv.js';
import { commandError } from '../fs-errors.js';
import { FailedPreconditionError } from '../../errors/errors.js';

/** Formats whose header size qemu takes as it is, in whole sectors (qcow2_do_open, qcow_open, bdrv_qed_open: size / 512). */
const HEADER_SIZED = new Set(['qcow2', 'qcow', 'qed']);

/**
 * The backing store's virtual size in bytes, as qemu-img would take it: raw, the file's size
 * rounded up to whole sectors; qcow2, qcow and qed, the header's size in whole sectors; any
 * other format, what `qemu-img info` says of it opened through the descriptor (handed over as
 * its fd 3, its own backing chain closed).
 */
export async function backingVirtualSize(ctx: BackendContext, layer: ImageLayer, qemuImg: string): Promise<bigint> {
  if (layer.format === 'raw') {
    const bytes = layer.stat.isBlockDevice() ? blockDeviceSize(layer.stat) : layer.stat.size;
    return divUp(bytes, 512n) * 512n;
  }
  if (HEADER_SIZED.has(layer.format) && layer.probe.capacity !== undefined) return (layer.probe.capacity / 512n) * 512n;
  const spec = qemuDescriptorChain([{ format: layer.format, blockDevice: layer.stat.isBlockDevice() }], 3);
  let stdout: string;
  try {
    ({ stdout } = await ctx.runner.run([qemuImg, 'info', '--output=json', '--', spec], { signal: ctx.signal, fds: [layer.fd] }));
  } catch (err) {
    throw commandError(err);
  }
  // read as digits, not through JSON.parse: a size past 2^53 would come back rounded
  const size = /"virtual-size":\s*(\d+)/.exec(stdout)?.[1];
  if (size === undefined) throw new FailedPreconditionError(`qemu-img info gave no virtual size for the backing store (${layer.format})`);
  return BigInt(size);
}
