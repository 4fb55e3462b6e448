// Pool directories filled with files made the way a user makes them: raw files with `truncate`
// semantics (sparse, ftruncate in-process) and qcow2 images made by `qemu-img create`. Making
// 5,000 qcow2 images one process each would take minutes, so a few qcow2 templates of different
// virtual sizes are made with qemu-img and copied byte for byte: each file in the pool is exactly
// what `qemu-img create -f qcow2 F SIZE` writes. Both pools get the same set of files.
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsc, copyFileSync, ftruncateSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface Template {
  path: string;
  virtualSize: number;
}

/** qcow2 templates made by qemu-img (the real tool), in `dir`. */
export function makeQcow2Templates(dir: string): Template[] {
  mkdirSync(dir, { recursive: true });
  return [1, 2, 4, 8].map((g) => {
    const path = join(dir, `tmpl-${g}G.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, `${g}G`]);
    return { path, virtualSize: g * GiB };
  });
}

/**
 * Fills `dir` with `count` files: even indexes raw (sparse, sizes 1..8 GiB; every fifth raw file
 * with 64 KiB of data at the start so allocation differs), odd indexes qcow2 (copies of the
 * templates, each in turn). Sizes and templates cycle over each kind's own count (k), not the
 * file number, which is always even for raw and odd for qcow2.
 */
export function populatePoolDir(dir: string, count: number, templates: Template[]): void {
  mkdirSync(dir, { recursive: true });
  const data = Buffer.alloc(64 * 1024, 0xa5);
  for (let i = 0; i < count; i++) {
    const base = `f${String(i).padStart(6, '0')}`;
    const k = i >> 1;
    if (i % 2 === 0) {
      const fd = openSync(join(dir, `${base}.img`), 'wx', 0o600);
      try {
        if (k % 5 === 0) writeSync(fd, data, 0, data.length, 0);
        ftruncateSync(fd, (1 + (k % 8)) * GiB);
      } finally {
        closeSync(fd);
      }
    } else {
      const t = templates[k % templates.length]!;
      copyFileSync(t.path, join(dir, `${base}.qcow2`));
    }
  }
}

/** Writes `chunks` chunks of `chunkMiB` MiB of pseudo-random data spread evenly over a sparse file. */
export function writeSpreadData(path: string, capacity: number, chunks: number, chunkMiB = 1): void {
  const buf = Buffer.alloc(chunkMiB * MiB);
  let x = 0x12345678;
  for (let i = 0; i < buf.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeInt32LE(x | 0, i);
  }
  const stride = Math.floor(capacity / chunks);
  const fd = openSync(path, 'r+');
  try {
    for (let c = 0; c < chunks; c++) writeSync(fd, buf, 0, buf.length, c * stride);
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether files in `dir` can share extents (FICLONE: XFS with reflink, btrfs; not ext4 or tmpfs).
 * There Cistern's clone of a sparse raw volume is a reflink (libs/backends/dir/create-raw.ts),
 * and libvirt's vol-clone copies unless given --reflink.
 */
export function sharesExtents(dir: string): boolean {
  const src = join(dir, `.reflink-probe-${process.pid}`);
  const dst = `${src}.clone`;
  try {
    writeFileSync(src, Buffer.alloc(4096, 1));
    copyFileSync(src, dst, fsc.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(src, { force: true });
    rmSync(dst, { force: true });
  }
}

export { GiB, MiB };
