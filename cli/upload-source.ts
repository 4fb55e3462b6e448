// The local file vol-upload reads. A regular file or a device is read with positional-less
// reads on a FileHandle. A pipe or a FIFO (`producer | cisternctl vol-upload V /dev/stdin`) is
// read through a net.Socket instead: a FileHandle's read of a pipe blocks a libuv thread until
// the producer writes or closes, nothing can cut it short, its close waits for it and so does
// the process's exit. An upload the server refuses while the producer is quiet would then print
// its error only once the producer writes again. The socket polls the pipe and is destroyed at
// once.
import { constants as fsc, open as openCallback } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';

export interface UploadSource {
  /** The file's size: only for a regular file (a pipe's or a device's says nothing). */
  size?: bigint;
  /** Reads up to `want` bytes into `buf` from where the last read ended; 0 at the end. */
  read(buf: Buffer, want: number): Promise<number>;
  /** Lets go of the file; a read still waiting on a pipe ends (empty) without waiting for it. */
  close(): Promise<void>;
}

const openFd = promisify(openCallback);

/**
 * `fh` (open to read, its stat `isFile`/`isFIFO` given) as an upload source. A pipe is opened
 * again through its descriptor, non-blocking, for a socket to own (its writer is there: the
 * first open waited for it), and `fh` is closed.
 */
export async function uploadSource(fh: FileHandle, info: { isFile(): boolean; isFIFO(): boolean; size: number }): Promise<UploadSource> {
  if (!info.isFIFO()) return fileSource(fh, info.isFile() ? BigInt(info.size) : undefined);
  let fd: number;
  try {
    fd = await openFd(`/proc/self/fd/${fh.fd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    // no /proc: read it as before
    return fileSource(fh, undefined);
  }
  await fh.close();
  return pipeSource(fd);
}

function fileSource(fh: FileHandle, size: bigint | undefined): UploadSource {
  return {
    ...(size !== undefined ? { size } : {}),
    read: async (buf, want) => (await fh.read(buf, 0, want, null)).bytesRead,
    close: () => fh.close(),
  };
}

function pipeSource(fd: number): UploadSource {
  const socket = new Socket({ fd, readable: true, writable: false });
  socket.pause();
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const woken = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  socket.on('readable', woken);
  socket.on('end', () => {
    ended = true;
    woken();
  });
  socket.on('close', () => {
    ended = true;
    woken();
  });
  socket.on('error', (err) => {
    failure = err;
    woken();
  });
  return {
    async read(buf, want) {
      for (;;) {
        if (failure) throw failure;
        const chunk = socket.read() as Buffer | null;
        if (chunk) {
          const n = Math.min(want, chunk.length);
          chunk.copy(buf, 0, 0, n);
          // what does not fit goes back for the next read
          if (n < chunk.length) socket.unshift(chunk.subarray(n));
          return n;
        }
        if (ended || socket.destroyed) return 0;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    close: async () => {
      socket.destroy();
    },
  };
}
