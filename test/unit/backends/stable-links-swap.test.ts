// The agent (root) resolves a /dev path from a request (LookupVolume by kernel name). /dev has
// directories any user can write (/dev/shm, /dev/mqueue): a user makes /dev/shm/d/x and, while
// the agent resolves it, swaps /dev/shm/d for a link to a directory outside /dev. Whatever the
// agent then looks at must still be the x it checked, never the one the link leads to.
//
// The swap is made deterministic by wrapping node:fs/promises (its ESM bindings synced, so the
// module under test calls the wrappers): it happens right after the first call that looked at
// .../d or .../d/x, before the next one, i.e. between a resolve and the look that follows it.
import { expect } from 'chai';
import { mkdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { deviceIdentity, stableLinksTo } from '../../../libs/backends/stable-links.js';
import { useTempDir } from '../../support/index.js';

type AnyFn = (...args: unknown[]) => Promise<unknown>;
const WRAPPED = ['realpath', 'stat', 'lstat', 'open', 'readlink', 'readdir'] as const;

/** Runs `fn` with every call in WRAPPED reported to `before` (ahead of it) and `after` (once it returned). */
async function withFsCalls<T>(before: (path: string) => void, after: (path: string) => void, fn: () => Promise<T>): Promise<T> {
  const table = fsp as unknown as Record<string, AnyFn>;
  const originals = new Map<string, AnyFn>();
  for (const name of WRAPPED) {
    const original = table[name]!;
    originals.set(name, original);
    table[name] = async (...args: unknown[]) => {
      const path = String(args[0]);
      before(path);
      try {
        return await original(...args);
      } finally {
        after(path);
      }
    };
  }
  syncBuiltinESMExports();
  try {
    return await fn();
  } finally {
    for (const [name, original] of originals) table[name] = original;
    syncBuiltinESMExports();
  }
}

describe('resolving a /dev path from a request, while a user swaps a directory of it', () => {
  const scratch = useTempDir('cistern-stable-swap-');

  it('looks at the file it resolved, not at where a directory swapped since leads (outside /dev)', async () => {
    const base = join(scratch.path, `t-${Math.random().toString(36).slice(2)}`);
    const dev = join(base, 'dev');
    const shmDir = join(dev, 'shm', 'd');
    mkdirSync(shmDir, { recursive: true });
    writeFileSync(join(shmDir, 'x'), 'the user file under /dev');
    const outside = join(base, 'etc');
    mkdirSync(outside);
    writeFileSync(join(outside, 'x'), 'a root-only file outside /dev');
    const inside = statSync(join(shmDir, 'x'), { bigint: true });
    const out = statSync(join(outside, 'x'), { bigint: true });

    let armed = false;
    let swapped = false;
    const swap = (): void => {
      if (!armed || swapped) return;
      swapped = true;
      renameSync(shmDir, `${shmDir}.orig`);
      symlinkSync(outside, shmDir);
    };
    const id = await withFsCalls(
      () => swap(),
      (path) => {
        if (/\/d(\/x)?$/.test(path)) armed = true;
      },
      () => deviceIdentity('/dev/shm/d/x', dev),
    );
    expect(swapped, 'the swap happened during the resolution').to.equal(true);
    expect(id, 'the identity of the file outside /dev').to.not.equal(`${out.dev}:${out.ino}`);
    expect(id).to.equal(`${inside.dev}:${inside.ino}`);
  });

  it('stops at the first step that leaves /dev, without looking where the link leads', async () => {
    const base = join(scratch.path, `t-${Math.random().toString(36).slice(2)}`);
    const dev = join(base, 'dev');
    mkdirSync(join(dev, 'shm'), { recursive: true });
    writeFileSync(join(dev, 'sdb'), 'sdb');
    const outside = join(base, 'nfs', 'hung');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'f'), 'outside');
    symlinkSync(join(outside, 'f'), join(dev, 'shm', 'abs'));
    symlinkSync('../../nfs/hung/f', join(dev, 'shm', 'rel'));
    symlinkSync('../shm/rel', join(dev, 'shm', 'chain'));
    const seen: string[] = [];
    const ids = await withFsCalls(
      (path) => seen.push(path),
      () => undefined,
      async () => [await deviceIdentity('/dev/shm/abs', dev), await deviceIdentity('/dev/shm/rel', dev), await deviceIdentity('/dev/shm/chain', dev)],
    );
    // and a pool's directory under /dev holding such links (a dir pool on /dev/shm) is read the same way
    const sdb = await deviceIdentity('/dev/sdb', dev);
    const links = await withFsCalls(
      (path) => seen.push(path),
      () => undefined,
      () => stableLinksTo('/dev/shm', sdb!, dev),
    );
    expect(links).to.deep.equal([]);
    expect(ids).to.deep.equal([undefined, undefined, undefined]);
    expect(seen.filter((p) => p.includes('/nfs')), 'calls on a path outside /dev').to.deep.equal([]);
  });

  it("follows links within /dev as the kernel does: relative, absolute /dev/X, '..', at most 40", async () => {
    const base = join(scratch.path, `t-${Math.random().toString(36).slice(2)}`);
    const dev = join(base, 'dev');
    mkdirSync(join(dev, 'disk', 'by-path'), { recursive: true });
    writeFileSync(join(dev, 'sdb1'), 'sdb1');
    const sdb1 = statSync(join(dev, 'sdb1'), { bigint: true });
    const want = `${sdb1.dev}:${sdb1.ino}`;
    symlinkSync('../../sdb1', join(dev, 'disk', 'by-path', 'rel'));
    symlinkSync('/dev/sdb1', join(dev, 'disk', 'by-path', 'abs')); // /dev/X is X under this host's /dev
    symlinkSync('../by-path/../../disk/by-path/rel', join(dev, 'disk', 'by-path', 'dots'));
    symlinkSync('by-path', join(dev, 'disk', 'alias'));
    expect(await deviceIdentity('/dev/disk/by-path/rel', dev)).to.equal(want);
    expect(await deviceIdentity('/dev/disk/by-path/abs', dev)).to.equal(want);
    expect(await deviceIdentity('/dev/disk/by-path/dots', dev)).to.equal(want);
    expect(await deviceIdentity('/dev/disk/alias/rel', dev)).to.equal(want);
    // a chain of 40 links resolves, 41 is ELOOP; a loop is ELOOP
    let prev = 'sdb1';
    for (let i = 1; i <= 41; i++) {
      symlinkSync(prev, join(dev, `l${i}`));
      prev = `l${i}`;
    }
    expect(await deviceIdentity('/dev/l40', dev)).to.equal(want);
    expect(await deviceIdentity('/dev/l41', dev)).to.equal(undefined);
    symlinkSync('loop-b', join(dev, 'loop-a'));
    symlinkSync('loop-a', join(dev, 'loop-b'));
    expect(await deviceIdentity('/dev/loop-a', dev)).to.equal(undefined);
    // a link to /dev itself, '..' above it, a file taken as a directory: nothing
    symlinkSync('..', join(dev, 'disk', 'up'));
    expect(await deviceIdentity('/dev/disk/up', dev)).to.equal(undefined);
    symlinkSync('../..', join(dev, 'disk', 'above'));
    expect(await deviceIdentity('/dev/disk/above/dev/sdb1', dev)).to.equal(undefined);
    expect(await deviceIdentity('/dev/sdb1/x', dev)).to.equal(undefined);
  });
});
