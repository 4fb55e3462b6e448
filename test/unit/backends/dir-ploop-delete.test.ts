// Deleting a ploop image directory removes the directory with its files (libvirt's
// virFileDeleteTree), as root. The image's owner can write in it: swapping a subdirectory for
// a link to a directory outside the pool while the delete walks it must not make root remove
// what the link leads to.
//
// The swap is made deterministic by wrapping the fs calls a walk lists or opens a directory
// with (node:fs's callback readdir, which fs.rm's walk captures when it first loads, hence at
// import time here; node:fs/promises' readdir and open, ESM bindings synced): right before the
// first that lists or opens .../sub, after it was found to be a directory.
import { expect } from 'chai';
import fs, { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirBackend } from '../../../libs/backends/dir.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { PoolType, type PoolDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { fileVolume as vol } from '../../support/volume-definitions.js';

/** Called with the path before a directory is listed or opened; a pass-through unless set. */
let beforeListOrOpen: ((path: string) => void) | undefined;

type AnyFn = (...args: unknown[]) => unknown;
const callbacks = fs as unknown as Record<string, AnyFn>;
const promises = fsp as unknown as Record<string, AnyFn>;
for (const [table, name] of [[callbacks, 'readdir'], [promises, 'readdir'], [promises, 'open']] as const) {
  const original = table[name]!;
  table[name] = function (this: unknown, ...args: unknown[]) {
    beforeListOrOpen?.(String(args[0]));
    return original.apply(this, args);
  };
}
syncBuiltinESMExports();

function poolDef(path: string): PoolDefinition {
  return { type: PoolType.POOL_TYPE_DIR, name: 'p', uuid: '', source: undefined, target: { path, permissions: undefined }, features: undefined, mountOptions: [] };
}

describe('deleting a ploop image directory whose owner swaps a subdirectory for a link', () => {
  let root: string;
  let target: string;
  let ctx: PoolContext;
  const backend = new DirBackend();

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-ploop-delete-'));
    target = join(root, 'pool');
    mkdirSync(target);
    ctx = { runner: new RecordingRunner(), pool: poolDef(target) };
  });
  afterEach(() => {
    beforeListOrOpen = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  it('leaves what the link leads to alone (the canary outside the pool survives)', async () => {
    const image = join(target, 'vm.ploop');
    mkdirSync(join(image, 'sub'), { recursive: true });
    writeFileSync(join(image, 'DiskDescriptor.xml'), '<Parallels_disk_image/>');
    writeFileSync(join(image, 'root.hds'), 'image');
    writeFileSync(join(image, 'sub', 'snapshot.hds'), 'the owner\'s file');
    const outside = join(root, 'etc');
    mkdirSync(outside);
    writeFileSync(join(outside, 'canary'), 'root-only');

    let swapped = false;
    beforeListOrOpen = (path) => {
      if (swapped || !/\/sub\/?$/.test(path)) return;
      swapped = true;
      renameSync(join(image, 'sub'), join(root, 'moved-sub'));
      symlinkSync(outside, join(image, 'sub'));
    };
    const err = await backend.deleteVol(ctx, vol('vm.ploop', '')).then(() => undefined, (e: { code?: string; message?: string }) => e);
    expect(swapped, 'the swap happened during the delete').to.equal(true);
    // refused, naming the directory that was replaced
    expect(err?.code).to.equal('FAILED_PRECONDITION');
    expect(err?.message).to.include(`directory '${join(target, 'vm.ploop', 'sub')}' was replaced while it was being removed`);
    expect(existsSync(join(outside, 'canary')), 'the canary outside the pool').to.equal(true);
    expect(readFileSync(join(outside, 'canary'), 'utf8')).to.equal('root-only');
  });

  it('removes a ploop directory with its files and subdirectories when nothing is swapped', async () => {
    const image = join(target, 'vm.ploop');
    mkdirSync(join(image, 'a', 'b'), { recursive: true });
    writeFileSync(join(image, 'DiskDescriptor.xml'), '<Parallels_disk_image/>');
    writeFileSync(join(image, 'root.hds'), 'image');
    writeFileSync(join(image, 'a', 'b', 'f'), 'f');
    // a link inside is removed, never followed
    const outside = join(root, 'etc');
    mkdirSync(outside);
    writeFileSync(join(outside, 'canary'), 'root-only');
    symlinkSync(outside, join(image, 'a', 'link'));
    await backend.deleteVol(ctx, vol('vm.ploop', ''));
    expect(existsSync(image)).to.equal(false);
    expect(readFileSync(join(outside, 'canary'), 'utf8')).to.equal('root-only');
  });

  it('refuses a tree deeper than a ploop directory ever is', async () => {
    const image = join(target, 'vm.ploop');
    const deep = join(image, ...Array.from({ length: 17 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(image, 'DiskDescriptor.xml'), '<Parallels_disk_image/>');
    writeFileSync(join(image, 'root.hds'), 'image');
    const err = await backend.deleteVol(ctx, vol('vm.ploop', '')).then(() => undefined, (e: { code?: string; message?: string }) => e);
    expect(err?.code).to.equal('FAILED_PRECONDITION');
    expect(err?.message).to.include('more than 16 directories deep');
  });
});
