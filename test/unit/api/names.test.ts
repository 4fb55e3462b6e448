import { expect } from 'chai';
import { checkAbsolutePath, checkAbsolutePathFully, checkExistingVolumeName, checkHostId, checkObjectName, checkSize, MAX_SIZE } from '../../../libs/api/names.js';
import { parseHostName, parsePoolName, parseVolumeName, poolName, volumeName } from '../../../libs/api/resource-names.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';

function refusal(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected a refusal');
}

describe('object names', () => {
  for (const [bad, why] of [
    ['', 'is empty'],
    ['../x', "contains '/'"],
    ['a/b', "contains '/'"],
    ['..', 'is reserved (the directory itself or its parent)'],
    ['.', 'is reserved (the directory itself or its parent)'],
    ['x'.repeat(300), 'is 300 bytes long'],
    ['é'.repeat(200), 'is 400 bytes long'],
    ['a\nb', 'control character'],
    ['a\x00b', 'control character'],
    ['a\x85b', 'control character'],
    ['a\uD83Db', 'unpaired surrogate'],
    ['-rf', "starts with '-'"],
  ] as const) {
    it(`refuses ${JSON.stringify(bad.slice(0, 20))}: ${why}`, () => {
      const err = refusal(() => checkObjectName(bad, 'volume.name', 'volume name'));
      expect(err.message).to.contain('volume.name');
      expect(err.message).to.contain(why);
      expect(err.message).to.contain('allowed:');
      expect(err.message).not.to.match(/[\x00\n\x85]/);
      expect(err.message).not.to.match(/[\uD800-\uDFFF]/u);
    });
  }

  it("takes a leading '-' in the name of a volume that may exist already, and nothing else checkObjectName refuses", () => {
    expect(() => checkExistingVolumeName('-rf', 'name')).not.to.throw();
    expect(() => parseVolumeName('hosts/a/pools/p/volumes/--x')).not.to.throw();
    expect(refusal(() => parsePoolName('hosts/a/pools/-p')).message).to.contain("starts with '-'");
    for (const bad of ['', '../x', '..', 'a\nb', 'x'.repeat(300)]) {
      expect(refusal(() => checkExistingVolumeName(bad, 'volume')).message).to.match(/^volume: volume name .*; allowed: .*no control characters$/s);
    }
  });

  it('echoes a long name cut between characters, never inside a surrogate pair', () => {
    const err = refusal(() => checkObjectName('😀'.repeat(200), 'volume.name', 'volume name'));
    expect(err.message).to.contain('is 800 bytes long');
    expect(err.message).not.to.match(/[\uD800-\uDFFF]/u);
    expect(err.message).to.contain(`${'😀'.repeat(80)}...`);
  });

  it('accepts names libvirt accepts, including spaces, dots and unicode', () => {
    for (const ok of ['vm1.qcow2', 'disk with space', 'ünïcødé', 'a'.repeat(255), `${'é'.repeat(127)}a`, '😀', '.hidden', 'x-']) {
      expect(() => checkObjectName(ok, 'name')).not.to.throw();
    }
  });
});

describe('host ids', () => {
  it('accepts subject-safe ids and refuses the rest', () => {
    expect(checkHostId('host-a_1')).to.equal('host-a_1');
    for (const bad of ['a.b', 'a b', '*', '>', '', '-a', 'x'.repeat(65), 'ä']) {
      expect(() => checkHostId(bad), bad).to.throw(InvalidArgumentError, /host id/);
    }
  });
});

describe('paths', () => {
  it('normalises absolute paths', () => {
    expect(checkAbsolutePath('/var//lib/./x/', 'target.path')).to.equal('/var/lib/x');
    expect(checkAbsolutePath('/', 'target.path')).to.equal('/');
  });
  it('refuses relative, dot-dot and control-character paths', () => {
    expect(refusal(() => checkAbsolutePath('var/lib', 'target.path')).message).to.contain('not absolute');
    expect(refusal(() => checkAbsolutePath('/var/../etc', 'target.path')).message).to.contain("'..'");
    expect(refusal(() => checkAbsolutePath('/var/\tx', 'target.path')).message).to.contain('control character');
    expect(refusal(() => checkAbsolutePath('', 'target.path')).message).to.contain('empty');
  });
  it('its fast path for plain normal paths gives what the full checks give, for every kind of path', () => {
    const answer = (check: (p: string, f: string) => string, p: string): string => {
      try {
        return `ok ${check(p, 'target.path')}`;
      } catch (err) {
        return `refused ${(err as Error).message}`;
      }
    };
    const pieces = ['/', '/', '.', '..', 'a', 'vm-1.img', ' ', '\t', '\x7f', 'é', '\uD800', '~', '-', '//'];
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const paths = ['/', '/a', '/a/', '/a/.', '/a/..', '/./a', '/../a', '/a/.b', '/a/..b', '/a/b..', '/a//b', 'a/b', '/a b', '/' + 'x'.repeat(4094), '/' + 'x'.repeat(4095), `/a/${'x'.repeat(255)}`, `/a/${'x'.repeat(256)}/b`, `/${'é'.repeat(128)}`];
    for (let i = 0; i < 5000; i++) {
      let p = '';
      for (let k = 1 + next(8); k > 0; k--) p += pieces[next(pieces.length)];
      paths.push(p);
    }
    for (const p of paths) expect(answer(checkAbsolutePath, p), JSON.stringify(p)).to.equal(answer(checkAbsolutePathFully, p));
    // a component longer than NAME_MAX is refused here, not by ENAMETOOLONG at the first system call
    expect(() => checkAbsolutePath(`/srv/${'x'.repeat(300)}`, 'target.path')).to.throw(/has a component of 300 bytes .*at most 255 bytes allowed per component/);
    expect(checkAbsolutePath(`/srv/${'x'.repeat(255)}`, 'target.path')).to.equal(`/srv/${'x'.repeat(255)}`);
    // the fast path does take the common case
    expect(checkAbsolutePath('/var/lib/libvirt/images/vm-1.qcow2', 'f')).to.equal('/var/lib/libvirt/images/vm-1.qcow2');
  });
});

describe('sizes', () => {
  it('accepts 0..2^63-1 and refuses the rest', () => {
    expect(checkSize(0n, 'capacity')).to.equal(0n);
    expect(checkSize(MAX_SIZE, 'capacity')).to.equal(MAX_SIZE);
    expect(refusal(() => checkSize(-1n, 'capacity')).message).to.contain('capacity');
    expect(refusal(() => checkSize(MAX_SIZE + 1n, 'capacity')).message).to.contain('out of range');
  });
});

describe('resource names', () => {
  it('round-trips pool and volume names', () => {
    expect(parsePoolName(poolName('a', 'default'))).to.deep.equal({ host: 'a', pool: 'default' });
    expect(parseVolumeName(volumeName('a', 'default', 'v.img'))).to.deep.equal({ host: 'a', pool: 'default', volume: 'v.img' });
  });
  it('refuses malformed names and bad components', () => {
    expect(refusal(() => parsePoolName('hosts/a/volumes/x')).message).to.contain('hosts/{host}/pools/{pool}');
    expect(refusal(() => parseVolumeName('hosts/a/pools/p/volumes/..')).message).to.contain("'..' is reserved");
    expect(refusal(() => parsePoolName('hosts/a.b/pools/p')).message).to.contain('host id');
  });
});

describe('host resource names', () => {
  it('takes hosts/{host} or the bare id', () => {
    expect(parseHostName('hosts/a')).to.equal('a');
    expect(parseHostName('a_b-1')).to.equal('a_b-1');
  });

  // a client sees the value it sent and what the field takes, not a fragment called a host id
  for (const bad of ['hosts/a/', 'host/a', 'hosts/a/pools/p', '/a', 'hosts//a']) {
    it(`refuses ${bad} as not a host resource name`, () => {
      const err = refusal(() => parseHostName(bad, 'name'));
      expect(err.field).to.equal('name');
      expect(err.message).to.equal(`name: '${bad}' is not a host resource name; expected hosts/{host} or a host id`);
    });
  }

  it('still refuses a bad bare id as a host id', () => {
    expect(refusal(() => parseHostName('-a')).message).to.match(/^host: host id '-a' is not valid/);
  });
});
