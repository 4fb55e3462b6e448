// A starting agent removes the secret directories of processes that are gone, and only those:
// several agents may share a TMPDIR, and one still running needs its file until qemu-img ends.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { makeTempDir } from '../../support/index.js';
import { makeSecretDir, sweepSecretDirs } from '../../../libs/backends/secret-dirs.js';
import { readProcStat } from '../../../libs/os/proc.js';

describe('secret directories of a tool run', () => {
  it('are named after this process, mode 700, and kept by a sweep while it runs', async () => {
    const root = makeTempDir('cistern-secret-dirs-').path;
    const dir = await makeSecretDir('cistern-secret', root);
    expect(dir.slice(root.length + 1)).to.match(new RegExp(`^cistern-secret-${process.pid}\\.${readProcStat(process.pid)!.startTime}-`));
    expect((await import('node:fs')).statSync(dir).mode & 0o777).to.equal(0o700);
    expect(await sweepSecretDirs(root)).to.deep.equal([]);
    expect(existsSync(dir)).to.equal(true);
  });

  it('go into memory, not onto a disk, when the operator named no folder (a removed file stays in a disk\'s free blocks)', async function () {
    const TMPFS_MAGIC = 0x01021994;
    const memoryBacked = ['/run', '/dev/shm'].filter((d) => {
      try {
        return statfsSync(d).type === TMPFS_MAGIC;
      } catch {
        return false;
      }
    });
    if (memoryBacked.length === 0) this.skip(); // nothing on this machine to prefer over the temp folder
    const saved = process.env.TMPDIR;
    delete process.env.TMPDIR;
    let dir = '';
    try {
      dir = await makeSecretDir('cistern-secret');
      expect(statfsSync(dir).type, dir).to.equal(TMPFS_MAGIC);
    } finally {
      if (saved !== undefined) process.env.TMPDIR = saved;
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are removed by a sweep once their process is gone, or its pid belongs to another process', async () => {
    const root = makeTempDir('cistern-secret-dirs-').path;
    const gone = spawnSync('true').pid!; // exited: its pid names no running process of that start
    const self = readProcStat(process.pid)!.startTime;
    const names = [`cistern-secret-${gone}.1-abc123`, `cistern-iscsi-${gone}.1-def456`, `cistern-secret-${process.pid}.${Number(self) + 1}-reused`];
    for (const n of names) {
      mkdirSync(join(root, n));
      writeFileSync(join(root, n, 'secret'), 'pw', { mode: 0o600 });
    }
    // neither another kind nor an unnamed one is touched
    mkdirSync(join(root, 'cistern-secret-legacy'));
    mkdirSync(join(root, `cistern-target-${gone}.1-abc123`));
    expect((await sweepSecretDirs(root)).sort()).to.deep.equal([...names].sort());
    expect(readdirSync(root).sort()).to.deep.equal(['cistern-secret-legacy', `cistern-target-${gone}.1-abc123`].sort());
  });

  it('leave alone what another user made under a dead process\'s name: the folder is world-writable and the sweep runs as root', async function () {
    // /dev/shm and /tmp are 1777: any user may make an entry named like one of ours. A root
    // agent removing it recursively walks a tree that user controls (a directory swapped for
    // a link to /etc between rm's lstat and its readdir makes rm delete files there).
    if (process.getuid?.() !== 0) this.skip(); // chown to another user takes root
    const root = makeTempDir('cistern-secret-dirs-').path;
    const gone = spawnSync('true').pid!;
    const foreign = `cistern-secret-${gone}.1-other`;
    mkdirSync(join(root, foreign, 'sub'), { recursive: true });
    chownSync(join(root, foreign), 65534, 65534);
    const target = makeTempDir('cistern-secret-target-').path;
    writeFileSync(join(target, 'keep'), 'x');
    const link = `cistern-iscsi-${gone}.1-link`;
    symlinkSync(target, join(root, link));
    expect(await sweepSecretDirs(root)).to.deep.equal([]);
    expect(readdirSync(root).sort()).to.deep.equal([foreign, link].sort());
    expect(existsSync(join(target, 'keep'))).to.equal(true);
  });
});
