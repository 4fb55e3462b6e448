// What a clone into a block volume (an LV, a partition) reads: the source and its backing chain
// through the descriptors the agent's check opened (CreateVolOptions.sourceImage), never by
// name. The source's name is in a pool directory someone else may write in: swapped for a link
// to /etc/shadow after the check, a copy by name would put the host's file into a volume an
// operator can download. Raw data is copied from the source's descriptor; an image goes to
// `qemu-img convert` as a json: chain of /dev/fd/N, every layer's format and backing spelled
// out, as the dir clone hands it over.
import { FailedPreconditionError, NotFoundError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { holdsRawData } from './block-data.js';
import { openImageChain, type ImageChain, type ImageLayer } from './image-references.js';
import { qemuDescriptorChain, qemuImgCreateArgv } from './qemu-img-argv.js';

/** The opened source: its own layer, the whole chain, and what to close when the clone is done. */
export interface BlockCloneSource {
  head: ImageLayer;
  layers: readonly ImageLayer[];
  close(): void;
}

/**
 * The source named `path`, of the volume's format `format`, as `given` (the agent's checked
 * chain) opened it; without one (the backend driven directly), opened here, unchecked, read as
 * that format. Raw data needs only its own file; an image needs its whole chain open, in the
 * format the volume was read as (a header changed since is refused, not converted as whatever
 * it now says).
 */
export function openBlockCloneSource(path: string, format: string, volumeName: string, given?: ImageChain): BlockCloneSource {
  const raw = holdsRawData(format);
  const chain = given ?? openImageChain(path, raw ? 'raw' : format, () => undefined, 'clone source');
  const close = given ? () => undefined : () => chain.close();
  try {
    const head = chain.layers[0];
    const name = printable(volumeName);
    if (!head) {
      if (chain.notAFile) throw new FailedPreconditionError(`cannot clone volume '${name}': it is not a regular file or block device`);
      throw new NotFoundError(`source volume '${name}' not found${chain.unopened ? ` (${chain.unopened.code})` : ''}`);
    }
    if (!raw) {
      if (head.format !== format) {
        throw new FailedPreconditionError(
          `cannot clone volume '${name}': it is known as a '${printable(format)}' image but its header now says '${printable(head.format)}'; refresh its pool and try again`,
        );
      }
      if (chain.unopened) {
        throw new FailedPreconditionError(
          `cannot clone volume '${name}': its backing chain names '${printable(chain.unopened.name, 200)}', which cannot be opened (${chain.unopened.code})`,
        );
      }
    }
    return { head, layers: chain.layers, close };
  } catch (err) {
    close();
    throw err;
  }
}

/**
 * `qemu-img convert -f FMT -O raw -- json:{chain of /dev/fd/3 ...} DST` and the descriptors
 * that become the program's fd 3, 4 ... (RunOptions.fds).
 */
export function convertIntoBlockArgv(source: BlockCloneSource, dst: string, qemuImg: string): { argv: string[]; fds: number[] } {
  const inputPath = qemuDescriptorChain(
    source.layers.map((l) => ({ format: l.format, blockDevice: l.stat.isBlockDevice() })),
    3,
  );
  return {
    argv: qemuImgCreateArgv({ format: 'raw', path: dst, inputPath, inputFormat: source.head.format }, qemuImg),
    fds: source.layers.map((l) => l.fd),
  };
}
