// A refresh reads every file of a dir pool and the backing file each header names. Opening a
// character device is not a read without side effects (a watchdog starts its countdown and
// reboots the host when it is closed without the magic character; a tape rewinds; a serial
// line drops DTR), and a header is whatever an upload wrote: a refresh must not open one,
// whether a link in the pool leads to it or a qcow2 header names it. strace records the opens;
// an O_PATH one, which names a file without opening it, is allowed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { distDir, hasTool, makeTempDir } from '../support/index.js';

describe('security: a dir pool refresh opens no character device', function () {
  this.timeout(60_000);

  it('skips a link to a character device and does not probe one named as a backing file', function () {
    if (!hasTool('strace') || !hasTool('qemu-img')) this.skip(); // skip reason: needs strace and qemu-img
    if (process.getuid?.() !== 0) this.skip(); // skip reason: mknod needs root
    const tmp = makeTempDir('cistern-devices-');
    try {
      const pool = join(tmp.path, 'pool');
      const outside = join(tmp.path, 'outside');
      mkdirSync(pool);
      mkdirSync(outside);
      // the numbers of /dev/null: harmless if opened, but still a device this test can see opened
      const device = join(outside, 'char-device');
      execFileSync('mknod', ['-m', '0600', '--', device, 'c', '1', '3']);
      symlinkSync(device, join(pool, 'link-to-device'));
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', device, '-F', 'raw', '--', join(pool, 'overlay'), '1M']);
      const script = [
        `const { dirBackend } = await import(${JSON.stringify(join(distDir, 'libs/backends/dir.js'))});`,
        `const r = await dirBackend.refreshPool({ pool: { name: 'p', type: 1, target: { path: ${JSON.stringify(pool)} } }, runner: undefined });`,
        `console.log(JSON.stringify(r.volumes.map((v) => [v.name, v.backingStore?.path ?? ''])));`,
      ].join('\n');
      const log = join(tmp.path, 'strace.log');
      const out = execFileSync('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', log, process.execPath, '--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
      // the overlay is listed with its backing file's name; the link to a device is no volume
      expect(JSON.parse(out.trim().split('\n').pop()!)).to.deep.equal([['overlay', device]]);
      // an O_PATH descriptor opens nothing for I/O (no driver sees it): the agent resolves names
      // into one before it decides what to open (libs/backends/safe-open.ts)
      const touching = readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(`"${device}"`) || /[/"]link-to-device"/.test(l));
      expect(touching.length, 'strace recorded the resolution of the link and the backing name').to.be.greaterThan(0);
      const opens = touching.filter((l) => !l.includes('O_PATH'));
      expect(opens, opens.join('\n')).to.deep.equal([]);
    } finally {
      void tmp.remove();
    }
  });
});
