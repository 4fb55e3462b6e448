// The backing chain of an image a resize grows, for qemu-img resize: where the base reaches
// past the image's old end, qemu makes the added area read as zeros, and only if it knows the
// chain. Opened and admitted as a clone's source chain is (image-references.ts), read by qemu
// from the descriptors, never by name.
import { isAbsolute } from 'node:path';
import type { PoolDefinition } from '../../proto/cistern/v1/storage.js';
import { FailedPreconditionError, type CommandFailedError } from '../../errors/errors.js';
import { printable } from '../../api/names.js';
import type { ResizeFlags } from '../backend.js';
import type { DescriptorLayer } from '../qemu-img-argv.js';
import { openImageChain, type ImageChain, type ImageLayer } from '../image-references.js';
import { volumePath } from './paths.js';

/** The backing chain's descriptors are qemu-img's fds 3, 4 ... */
export const FIRST_BACKING_FD = 3;

/**
 * The backing chain of an overlay about to grow, opened (each file admitted) for qemu-img:
 * where the base reaches past the overlay's old end, qemu makes the area the resize adds
 * read as zeros (BDRV_REQ_ZERO_WRITE), so the guest does not see the base's bytes there, and
 * it can only do so knowing the chain; libvirt runs qemu-img by name, the chain open. Its
 * files are read from these descriptors, never by name. A chain that does not open whole is
 * FAILED_PRECONDITION, as libvirt's qemu-img fails on it. A shrink needs no chain (backing:
 * null), nor does an image without a backing file.
 */
export function openGrownBacking(pool: PoolDefinition, name: string, backing: { raw: string; format: string } | undefined, flags: ResizeFlags): ImageChain | undefined {
  if (!backing?.raw) return undefined;
  const image = volumePath(pool, name);
  // as qemu: a relative name is the image's directory's, appended as it is
  const base = isAbsolute(backing.raw) ? backing.raw : `${image.slice(0, image.lastIndexOf('/') + 1)}${backing.raw}`;
  try {
    return openImageChain(base, backing.format, flags.admitBacking ?? (() => undefined), `the backing file of '${printable(name)}'`, { wholeChain: true });
  } catch (err) {
    // the chain's own words name the file that is missing, not the volume the user resizes
    if (err instanceof FailedPreconditionError) err.message = `cannot grow volume '${printable(name)}': ${err.message}`;
    throw err;
  }
}

export function descriptorLayer(l: ImageLayer): DescriptorLayer {
  return { format: l.format, blockDevice: l.stat.isBlockDevice() };
}

/**
 * A qcow2 of compat 0.10 has no zero clusters: where its base reaches past its old end,
 * qemu-img cannot make the grown area read as zeros and refuses, the image unchanged (as
 * libvirt 9.0's resize fails).
 */
export function cannotZeroGrownArea(name: string, capacity: bigint, err: CommandFailedError): FailedPreconditionError {
  return new FailedPreconditionError(
    `cannot grow volume '${printable(name)}' past its capacity of ${capacity} bytes: its backing file reaches further, and the image cannot ` +
      'make the added area read as zeros instead of the backing file\'s data (a qcow2 of compat 0.10 has no zero clusters; qemu-img: failed to zero out new clusters); ' +
      'an overlay with compat 1.1 can grow',
    err.details,
  );
}
