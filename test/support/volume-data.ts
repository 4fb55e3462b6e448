// Volume data through the public API's streams, a call's gRPC outcome, and sparse files
// with data at chosen offsets, as the tests use them.
import { status, type ServiceError } from '@grpc/grpc-js';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import type { StorageServiceClient, UploadVolumeRequest } from '../../libs/proto/cistern/v1/storage.js';

const CHUNK = 256 * 1024;

/** UploadVolume: a header, then `payload` in 256 KiB parts; `length` 0 = as much as is sent. Returns bytes written. */
export async function upload(stack: { client: StorageServiceClient }, name: string, payload: Buffer, offset = 0n, length = 0n): Promise<bigint> {
  const res = await new Promise<{ bytesWritten: bigint }>((resolve, reject) => {
    const call = stack.client.uploadVolume((err, r) => (err ? reject(err) : resolve(r!)));
    call.write({ part: { $case: 'header', value: { name, offset, length, sparse: false, requestId: '' } } } satisfies UploadVolumeRequest);
    for (let at = 0; at < payload.length; at += CHUNK) call.write({ part: { $case: 'data', value: payload.subarray(at, at + CHUNK) } });
    call.end();
  });
  return res.bytesWritten;
}

/** A backend's download (or any stream of buffers), joined. */
export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

/** `buf` as a backend's upload input: pieces of `size` bytes. */
export async function* chunks(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** DownloadVolume: every chunk of the stream, joined; `length` 0 = to the end. */
export async function download(stack: { client: StorageServiceClient }, name: string, offset = 0n, length = 0n): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = stack.client.downloadVolume({ name, offset, length });
    call.on('data', (m: { data: Buffer }) => chunks.push(Buffer.from(m.data)));
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  return Buffer.concat(chunks);
}

/** How a call ended: its gRPC code and message (OK and '' when it succeeded). */
export async function outcomeOf(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, message: e.details ?? e.message };
  }
  return { code: status.OK, message: '' };
}

/** A sparse file of `size` bytes at `path` with `data` written at the given offsets (zeros written there are allocated). */
export function writeSparseFile(path: string, size: number, data: ReadonlyArray<readonly [number, Buffer]>): string {
  const fd = openSync(path, 'w', 0o600);
  try {
    ftruncateSync(fd, size);
    for (const [at, bytes] of data) writeSync(fd, bytes, 0, bytes.length, at);
  } finally {
    closeSync(fd);
  }
  return path;
}
