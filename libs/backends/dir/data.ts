// The data path of a dir pool's volumes: wipe, upload and download, in-process on the file
// (libvirt's storageBackendVolWipeLocal, virStorageBackendVolUploadLocal / DownloadLocal);
// multi-pass wipes run scrub as libvirt does. block-data.ts is the same for block volumes.
import { constants as fsc, type BigIntStats } from 'node:fs';
import { WipeAlgorithm, type VolumeDefinition } from '../../proto/cistern/v1/storage.js';
import { InvalidArgumentError, UnimplementedError } from '../../errors/errors.js';
import { checkSize } from '../../api/names.js';
import type { PoolContext } from '../backend.js';
import { commandError, fsError, namingFile } from '../fs-errors.js';
import { MAX_POSITION, blockDeviceSize, checkAborted, readRange, statSize, writeFully, zeroFill } from '../file-io.js';
import { WIPE_ALGORITHMS, runScrub, scrubArgv } from '../wipe-algorithms.js';
import { writeSparse } from '../sparse-write.js';
import { poolVolumeDescriptor, writableVolume } from './paths.js';
import { punchWholeFile } from './punch-hole.js';
import type { DirTools } from './tools.js';

/**
 * zero: writes zeros over the whole file in-process (a real overwrite, not a
 * truncate); the other algorithms run `scrub -f -p ALG -- PATH` as libvirt does;
 * trim is not supported for files.
 */
export async function wipeVolume(ctx: PoolContext, volume: VolumeDefinition, algorithm: WipeAlgorithm, tools: Pick<DirTools, 'scrub' | 'fallocate'>): Promise<void> {
  if (algorithm === WipeAlgorithm.WIPE_ALGORITHM_TRIM) throw new UnimplementedError("wipe algorithm 'trim' is not supported for file volumes");
  const alg = WIPE_ALGORITHMS[algorithm];
  if (!alg) {
    throw new InvalidArgumentError('algorithm', `unsupported wipe algorithm ${algorithm}; allowed: ${Object.values(WIPE_ALGORITHMS).join(', ')}`);
  }
  const vol = await writableVolume(ctx.pool, volume.name, fsc.O_WRONLY, 'wipe');
  const { fh, path, stat: st } = vol;
  try {
    if (alg !== 'zero') {
      // scrub opens the file this agent opened and checked, not whatever the path holds by then
      const size = statSize(st);
      await runScrub(ctx, scrubArgv(alg, vol.fdPath, tools.scrub), alg, size).catch((err: unknown) => {
        throw namingFile(commandError(err), vol.fdPath, path);
      });
      return;
    }
    try {
      if (st.isFile() && st.blocks * 512n < st.size) {
        // libvirt (storageBackendVolZeroSparseFileLocal): a sparse file is zeroed by cutting it
        // to nothing and back to its size: its data is gone, and it stays sparse. Here one
        // hole punched over the whole file does that at its size: the two truncates are two
        // thread-pool round trips, and an agent killed between them left capacity 0 for good
        ctx.progress?.(0n, st.size);
        if (!(await punchWholeFile(ctx, fh, st, tools.fallocate))) {
          await fh.truncate(0);
          await fh.truncate(Number(st.size));
        }
        ctx.progress?.(st.size, st.size);
      } else {
        const size = zeroWipeLength(st);
        await zeroFill(fh, 0n, size, ctx, size);
      }
      await fh.datasync();
    } catch (err) {
      throw fsError(err, 'wipe', path);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * How many bytes a zero wipe of an allocated file writes from 0: libvirt
 * (storageBackendWipeLocal) writes the volume's allocation, so a file that ends inside a block
 * (every qcow2 qemu-img makes, a 1000-byte raw volume) is zeroed to the end of its last block
 * and then ends there, as scrub leaves it for the other algorithms. Never less than the size:
 * every byte of the volume reads as zero afterwards.
 */
function zeroWipeLength(st: BigIntStats): bigint {
  if (!st.isFile()) return statSize(st);
  const allocated = st.blocks * 512n;
  return allocated > st.size ? allocated : st.size;
}

/**
 * Writes the stream at `offset`, at most `length` bytes (0 = all of it); returns bytes
 * written. As libvirt (virStorageBackendVolUploadLocal), a file is written where it is told,
 * past its end too (it grows), whatever its format; a block device cannot grow, so nothing
 * is written past its end.
 */
export async function uploadVolume(
  ctx: PoolContext,
  volume: VolumeDefinition,
  offset: bigint,
  length: bigint,
  data: AsyncIterable<Buffer>,
  options: { sparse?: boolean } = {},
): Promise<bigint> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  // a sparse upload reads back what the file holds where the source has zeros
  const flags = options.sparse ? fsc.O_RDWR : fsc.O_WRONLY;
  const { fh, path, stat: opened } = await writableVolume(ctx.pool, volume.name, flags, 'upload into');
  const deviceEnd = opened.isBlockDevice() ? blockDeviceSize(opened) : undefined;
  // --sparse: blocks of zeros the file already holds are not written (a block device is
  // written in full); past its end at the start it holds only zeros
  const sparse = options.sparse === true && opened.isFile();
  const zerosFrom = Number(opened.size);
  const put = sparse
    ? (buf: Buffer, at: number) => writeSparse(fh, buf, at, zerosFrom)
    : (buf: Buffer, at: number) => writeFully(fh, buf, 0, buf.length, at);
  let written = 0n;
  try {
    if (deviceEnd !== undefined && offset > deviceEnd) {
      throw new InvalidArgumentError('offset', `offset ${offset} is past the end of the device (${deviceEnd} bytes)`);
    }
    for await (const chunk of data) {
      checkAborted(ctx.signal, 'upload');
      const over = length > 0n && written + BigInt(chunk.length) > length;
      const buf = over ? chunk.subarray(0, Number(length - written)) : chunk;
      const end = offset + written + BigInt(buf.length);
      if (end > MAX_POSITION) throw new InvalidArgumentError('offset', `the upload would pass ${MAX_POSITION} bytes, the largest offset written to exactly`);
      if (deviceEnd !== undefined && end > deviceEnd) {
        throw new InvalidArgumentError('length', `the stream is longer than the device: ${deviceEnd - offset} bytes fit from offset ${offset}`);
      }
      await put(buf, Number(offset + written));
      written += BigInt(buf.length);
      if (over) throw new InvalidArgumentError('length', `the stream carries more than the announced ${length} bytes; ${written} were written`);
      ctx.progress?.(written, length);
    }
    // zeros left out at the end still count: the file reaches at least the upload's end
    if (sparse && written > 0n && (await fh.stat({ bigint: true })).size < offset + written) await fh.truncate(Number(offset + written));
    await fh.datasync();
    return written;
  } catch (err) {
    // a file the filesystem cannot hold comes from where the upload starts
    throw fsError(err, 'upload to', path, 'offset');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Reads `length` bytes (0 = to the end) from `offset` in 1 MiB Buffers. */
export async function* downloadVolume(ctx: PoolContext, volume: VolumeDefinition, offset: bigint, length: bigint): AsyncIterable<Buffer> {
  checkSize(offset, 'offset');
  checkSize(length, 'length');
  // read through the same check as a write: a link planted in the pool that leads out of it
  // (to /etc/shadow, to the host's disk) must not hand its target to a client
  const { fh, stat: st } = await poolVolumeDescriptor(ctx.pool, volume.name, fsc.O_RDONLY, 'download');
  try {
    const size = statSize(st);
    yield* readRange(ctx, fh, offset, length, size);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
