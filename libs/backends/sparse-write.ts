// --sparse transfers (virsh vol-upload / vol-download --sparse). libvirt's sparse streams
// carry holes as such and the receiver seeks over them; Cistern's stream carries every byte,
// so the receiver cannot tell a hole in the source from zeros written there. A block of zeros
// may therefore be left unwritten only where the target already reads as zeros: past the
// file's end when the transfer began (a new file, a fresh volume), or where the block reads
// back as zeros (a hole: reading it costs no disk I/O). Anywhere else the zeros are written,
// or the target would keep its old data there. The caller sets the file's length at the end.
import type { FileHandle } from 'node:fs/promises';

/** Filesystem block granularity for holes. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/** Is buf[start, end) all zeros? (end - start <= BLOCK) */
function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf.compare(ZEROS, 0, end - start, start, end) === 0;
}

/** What the file holds in [from, to); bytes past its end read as zeros. */
async function readBack(fh: FileHandle, from: number, to: number): Promise<Buffer> {
  const buf = Buffer.alloc(to - from);
  for (let at = 0; at < buf.length; ) {
    const { bytesRead } = await fh.read(buf, at, buf.length - at, from + at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return buf;
}

/**
 * Writes `data` at `position`, leaving out the block-aligned runs of zeros the file already
 * holds. `zerosFrom`: the file reads as zeros from there on (its size when the transfer began,
 * with nothing written past it since but by this transfer, front to back). Returns the bytes
 * written (not counting what was left out).
 */
export async function writeSparse(fh: FileHandle, data: Buffer, position: number, zerosFrom: number): Promise<number> {
  let written = 0;
  let runStart = -1; // start of the pending write, in data
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
  const keep = (i: number): void => {
    if (runStart < 0) runStart = i;
  };
  // blocks follow the file's alignment, so a hole is a whole filesystem block
  const blockEnd = (i: number): number => Math.min(data.length, i + BLOCK - ((position + i) % BLOCK));
  let i = 0;
  while (i < data.length) {
    let j = i;
    while (j < data.length && isZero(data, j, blockEnd(j))) j = blockEnd(j);
    if (j === i) {
      keep(i);
      i = blockEnd(i);
      continue;
    }
    // zeros in [i, j): below zerosFrom the file may hold data there; one read for the run
    const held = position + i < zerosFrom ? await readBack(fh, position + i, Math.min(position + j, zerosFrom)) : undefined;
    for (let k = i; k < j; k = blockEnd(k)) {
      const from = k - i;
      const to = Math.min(blockEnd(k) - i, held?.length ?? 0);
      if (from < to && !isZero(held!, from, to)) keep(k);
      else await flush(k);
    }
    i = j;
  }
  await flush(data.length);
  return written;
}
