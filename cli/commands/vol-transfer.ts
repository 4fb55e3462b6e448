// vol-upload and vol-download: the file streams in 1 MiB chunks; a progress bar
// is drawn on stderr when it is a terminal.
import { open, unlink, type FileHandle } from 'node:fs/promises';
import {
  DownloadVolumeRequest, UploadVolumeRequest, type UploadVolumeRequest as UploadMessage,
} from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';
import { attempt, CommandError, ConnectionBrokenError, UsageError } from '../errors.js';
import { errnoText } from '../files.js';
import { progressBar } from '../format/progress.js';
import { volumeShortName } from '../format/volume.js';
import { MAX_SIZE, MAX_ULLONG, parseCount, parseWrappingCount } from '../size.js';
import { writeSparse } from '../../libs/backends/sparse-write.js';
import { assertAllowed } from '../read-only.js';
import { POOL_OPTIONAL, VOL_HOST_OPTION, VOL_OPTION, volumeFromOptions } from './vol-common.js';

export const CHUNK_SIZE = 1024 * 1024;

/** virsh's words: 'upload to' / 'download from'. */
const transferOptions = (direction: 'upload' | 'download') => [
  { name: 'offset', type: 'string' as const, metavar: 'number', help: direction === 'upload' ? 'volume offset to upload to' : 'volume offset to download from' },
  { name: 'length', type: 'string' as const, metavar: 'number', help: `amount of data to ${direction}` },
  { name: 'sparse', type: 'bool' as const, help: 'preserve sparseness of volume' },
  VOL_HOST_OPTION,
];

/** virsh's line for a local file ('cannot read FILE', 'cannot create FILE'), then why in plain words. */
function fileError(action: 'read' | 'create' | 'write', path: string, err: unknown): CommandError {
  return new CommandError(`cannot ${action} ${path}`, new Error(errnoText(err)));
}

/**
 * The file to upload, open; a directory is refused before anything is sent. `size` only for a
 * regular file: a pipe's or a device's stat size (0) says nothing of what it will give.
 */
async function openSource(path: string): Promise<{ fh: FileHandle; size?: bigint }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw fileError('read', path, err);
  }
  const info = await fh.stat();
  if (info.isDirectory()) {
    await fh.close();
    throw fileError('read', path, { code: 'EISDIR' });
  }
  return { fh, size: info.isFile() ? BigInt(info.size) : undefined };
}

/**
 * --offset and --length as virsh takes them: up to 2^64-1, and a negative --length wraps
 * (`-1` is 2^64-1; virsh reads --offset without the wrap). A length beyond 2^63-1 bytes limits
 * nothing (no file or volume is that large), so it is sent as 0, "to the end", which is what
 * virsh gets from it; an offset that large is left for the coordinator to refuse, as libvirt
 * refuses it, under the command's context line.
 */
function transferRange(opts: ParsedOptions): { offset: bigint; length: bigint } {
  const offset = parseCount(str(opts, 'offset') ?? '0', 'offset', MAX_ULLONG);
  const length = parseWrappingCount(str(opts, 'length') ?? '0', 'length');
  return { offset, length: length > MAX_SIZE ? 0n : length };
}

/** Header, then the file's bytes (at most `length`, 0 = all) in CHUNK_SIZE pieces. */
export async function* uploadMessages(
  fh: FileHandle,
  path: string,
  header: UploadVolumeRequest['part'] & { $case: 'header' },
  length: bigint,
  onProgress: (done: bigint) => void,
  signal?: AbortSignal,
): AsyncGenerator<UploadMessage> {
  yield UploadVolumeRequest.create({ part: header });
  let done = 0n;
  for (;;) {
    if (signal?.aborted) throw new UsageError('upload interrupted');
    const want = length > 0n ? Math.min(CHUNK_SIZE, Number(length - done)) : CHUNK_SIZE;
    if (want <= 0) return;
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, null).catch((err: unknown) => {
      throw fileError('read', path, err);
    });
    // Ctrl-C reaches a whole pipeline: the producer it killed ends the pipe while this read
    // waited on it. That end is the interrupt's, not the data's: the upload is cancelled, not
    // sent as ended (which would commit what was read so far as the whole upload)
    if (bytesRead === 0 && signal?.aborted) throw new UsageError('upload interrupted');
    if (bytesRead === 0) return;
    done += BigInt(bytesRead);
    onProgress(done);
    yield UploadVolumeRequest.create({ part: { $case: 'data', value: buf.subarray(0, bytesRead) } });
  }
}

export const volUpload: Command = {
  name: 'vol-upload',
  help: 'upload file contents to a volume',
  description: 'Upload file contents to a volume',
  options: [VOL_OPTION, { name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file' }, POOL_OPTIONAL, ...transferOptions('upload')],
  async run(ctx) {
    const file = req(ctx.opts, 'file');
    const { offset, length } = transferRange(ctx.opts);
    // virsh's order: the volume, then the file
    const vol = await volumeFromOptions(ctx);
    const { fh, size } = await openSource(file);
    try {
      // --length, or what the file holds from its start (0 for a pipe: all it gives)
      const total = size === undefined || (length > 0n && length < size) ? length : size;
      const bar = progressBar(ctx.stderr, `${volumeShortName(vol)}:`, total);
      const header = {
        $case: 'header' as const,
        // the length the file has (or --length): the agent refuses an upload that does not
        // fit before it writes a byte, instead of writing what fits and then failing. Exactly
        // that much is sent: a file still growing is sent as it was when the upload began,
        // where reading on to its end would be refused past the declared length, half written
        value: { name: vol.name, offset, length: total, sparse: flag(ctx.opts, 'sparse'), requestId: '' },
      };
      // how much was handed to the connection, and whether that was all of it: the agent
      // commits an upload of a declared length once it has written that much, before the end
      let sent = 0n;
      let allSent = false;
      const messages = async function* () {
        yield* uploadMessages(fh, file, header, total, (d) => {
          sent = d;
          if (total > 0n && d >= total) allSent = true;
          bar.update(d);
        }, ctx.signal);
        allSent = true;
      };
      try {
        await attempt(`cannot upload to volume ${req(ctx.opts, 'vol')}`, async () => {
          try {
            return await ctx.api().uploadVolume(messages());
          } catch (err) {
            throw err instanceof ConnectionBrokenError ? uploadCut(err, file, sent, allSent) : err;
          }
        });
        bar.update(total);
      } finally {
        // the bar's line ends before anything else is printed (an error, Ctrl-C's)
        bar.finish();
      }
    } finally {
      await fh.close();
    }
  },
};

/**
 * What an upload whose connection broke left. Cut before all its data was sent, it was not
 * committed (the agent commits once it has the declared length, or the end: the agent lets go
 * of the volume once no data has come for a minute), and what had reached the agent is written
 * in place, as libvirt's upload leaves it. Cut later, the agent may have committed it, or may still.
 */
function uploadCut(err: ConnectionBrokenError, file: string, sent: bigint, allSent: boolean): Error {
  if (!allSent) {
    return new Error(
      `${err.message}: the connection to the coordinator broke after ${sent} bytes of ${file} had been sent, before all of it: ` +
        'it was not committed (no VOLUME_UPLOADED), and the volume keeps what of those bytes reached it; ' +
        'run vol-upload again once its host has let go of the volume (within a minute; until then it is busy)',
    );
  }
  return new Error(
    `${err.message}: the connection to the coordinator broke after all ${sent} bytes of ${file} had been sent, before the answer: ` +
      'the agent may have committed the upload or may still do so (a VOLUME_UPLOADED event says it did); ' +
      'check the volume, or run vol-upload again, which writes the same bytes again',
  );
}

/** What a download whose connection broke left in its output. */
function downloadCut(err: ConnectionBrokenError, file: string, written: bigint, total: bigint, removed: boolean): Error {
  const left = removed
    ? `${file} was removed (this command created it, as virsh removes it)`
    : `${file} is partial: it holds only the first ${written} bytes of the download`;
  return new Error(`${err.message}: the connection to the coordinator broke after ${written} of ${total} bytes had been received; ${left}; run vol-download again`);
}

/** Writes all of `data` at the current position (a pipe may take fewer bytes at a time). */
async function writeInOrder(fh: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, null);
    done += bytesWritten;
  }
}

export const volDownload: Command = {
  name: 'vol-download',
  help: 'download volume contents to a file',
  description: 'Download volume contents to a file',
  options: [VOL_OPTION, { name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file' }, POOL_OPTIONAL, ...transferOptions('download')],
  async run(ctx) {
    const file = req(ctx.opts, 'file');
    const { offset, length } = transferRange(ctx.opts);
    const vol = await volumeFromOptions(ctx);
    const capacity = vol.definition?.capacity ?? 0n;
    const remaining = capacity > offset ? capacity - offset : 0n;
    const total = length > 0n && length < remaining ? length : remaining;
    // virsh 9.0 -r empties an existing file before its download is refused: refuse first here
    await attempt(`cannot download from volume ${req(ctx.opts, 'vol')}`, async () => assertAllowed(ctx.api(), 'downloadVolume'));
    // virsh: create the file, or truncate an existing one; remove it again on failure if we created it.
    let created = true;
    let fh: FileHandle;
    try {
      fh = await open(file, 'wx', 0o666);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError('create', file, err);
      created = false;
      try {
        fh = await open(file, 'w');
      } catch (err2) {
        throw fileError('create', file, err2);
      }
    }
    const bar = progressBar(ctx.stderr, `${volumeShortName(vol)}:`, total);
    // Only a regular file is written at offsets, left with holes and cut to its length. A pipe
    // (`vol-download V /dev/stdout | gzip`, a FIFO) cannot seek (pwrite fails with ESPIPE) nor
    // be truncated, and neither can a device: as virsh does (safewrite), they take the stream
    // in order, zeros included, and are never truncated.
    const seekable = (await fh.stat()).isFile();
    const sparse = seekable && flag(ctx.opts, 'sparse');
    const writeAt = async (data: Buffer, at: number): Promise<void> => {
      try {
        // the output file was emptied when opened: every skipped block reads as zeros
        if (sparse) await writeSparse(fh, data, at, 0);
        else if (seekable) await fh.write(data, 0, data.length, at);
        else await writeInOrder(fh, data);
      } catch (err) {
        throw fileError('write', file, err);
      }
    };
    let ok = false;
    let written = 0n;
    try {
      await attempt(`cannot download from volume ${req(ctx.opts, 'vol')}`, async () => {
        let end = 0n;
        const stream = ctx.api().downloadVolume(DownloadVolumeRequest.create({ name: vol.name, offset, length }));
        for await (const msg of stream) {
          if (ctx.signal.aborted) throw new UsageError('download interrupted');
          // Chunks carry their volume offset; with --sparse, blocks of zeros become holes
          // (the file was emptied when opened: it holds only zeros where nothing was written).
          const at = msg.offset >= offset && (msg.offset > 0n || written === 0n) && msg.offset - offset >= written
            ? msg.offset - offset
            : written;
          if (msg.data.length > 0) await writeAt(msg.data, Number(at));
          written = at + BigInt(msg.data.length);
          if (written > end) end = written;
          bar.update(written);
        }
        if (seekable) await fh.truncate(Number(end));
      });
      ok = true;
      bar.update(total);
    } catch (err) {
      if (err instanceof CommandError && err.cause instanceof ConnectionBrokenError) {
        throw new CommandError(err.context, downloadCut(err.cause, file, written, total, created));
      }
      throw err;
    } finally {
      bar.finish();
      await fh.close();
      if (!ok && created) await unlink(file).catch(() => undefined);
    }
  },
};
