// Secret files go where memory holds them, not onto a disk: a passphrase written to a
// disk-backed /tmp stays in its free blocks after the file is removed.
import { tmpdir } from 'node:os';
import { expect } from 'chai';
import { secretRoot } from '../../../libs/backends/secret-root.js';

describe('where a tool\'s secret file goes', () => {
  const memory = (dirs: string[]) => (dir: string): boolean => dirs.includes(dir);

  it('under /run when it is memory-backed (as libvirt keeps its secrets), else /dev/shm', () => {
    expect(secretRoot({}, memory(['/run', '/dev/shm']))).to.equal('/run');
    expect(secretRoot({}, memory(['/dev/shm']))).to.equal('/dev/shm');
  });

  it('in the temp folder when no memory-backed directory can be written', () => {
    expect(secretRoot({}, memory([]))).to.equal(tmpdir());
  });

  it('where the operator said: CISTERN_SECRET_DIR first, then an explicit TMPDIR', () => {
    expect(secretRoot({ CISTERN_SECRET_DIR: '/srv/keys', TMPDIR: '/var/tmp' }, memory(['/run']))).to.equal('/srv/keys');
    expect(secretRoot({ TMPDIR: '/var/tmp' }, memory(['/run']))).to.equal('/var/tmp');
  });

  it('a relative CISTERN_SECRET_DIR is refused: tools run in other directories', () => {
    expect(() => secretRoot({ CISTERN_SECRET_DIR: 'keys' }, memory([]))).to.throw(/CISTERN_SECRET_DIR: 'keys' is not an absolute path/);
  });
});
