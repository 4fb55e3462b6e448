// --sparse transfers (virsh vol-upload / vol-download --sparse): the stream carries every byte,
// and the receiving side skips the blocks that are all zeros (a seek over them) instead of
// writing them, as libvirt's sparse streams seek over holes. The caller sets the file's length
// at the end. Where nothing was written before (a new file, a fresh volume) a skipped block
// reads as zeros; elsewhere it keeps what it held, as with libvirt.
import type { FileHandle } from 'node:fs/promises';

/** Filesystem block granularity for holes. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

function isZero(data: Buffer, start: number, end: number): boolean {
  return data.compare(ZEROS, 0, end - start, start, end) === 0;
}

/**
 * Writes `data` at `position`, leaving out every block-aligned run of zeros; returns the bytes
 * written (not counting what was skipped).
 */
export async function writeSparse(fh: FileHandle, data: Buffer, position: number): Promise<number> {
  let written = 0;
  let runStart = -1;
  let i = 0;
  const flush = async (end: number): Promise<void> => {
    if (runStart < 0) return;
    for (let at = runStart; at < end; ) {
      const { bytesWritten } = await fh.write(data, at, end - at, position + at);
      if (bytesWritten === 0) throw new Error('write returned 0 bytes');
      at += bytesWritten;
      written += bytesWritten;
    }
    runStart = -1;
  };
  while (i < data.length) {
    // blocks follow the file's alignment, so a hole is a whole filesystem block
    const end = Math.min(data.length, i + BLOCK - ((position + i) % BLOCK));
    if (isZero(data, i, end)) await flush(i);
    else if (runStart < 0) runStart = i;
    i = end;
  }
  await flush(data.length);
  return written;
}
