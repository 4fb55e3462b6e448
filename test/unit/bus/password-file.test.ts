// The coordinator and the agent read a NATS password file the same way, and refuse the same
// files: a missing one, one others may read, and an empty one. The agent once connected with an
// empty password where the coordinator refused the file.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPasswordFile } from '../../../libs/bus/password-file.js';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';
import { makeTempDir } from '../../support/cleanup.js';
import { entryPoints } from '../../support/paths.js';

function fileWith(dir: string, name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe('NATS password files', () => {
  it('are read as their first line, trimmed', () => {
    const dir = makeTempDir('cistern-pass-').path;
    expect(readPasswordFile(fileWith(dir, 'p', '  s3cret \nignored\n'), '--nats-pass-file')).to.equal('s3cret');
  });

  it('are refused, naming the flag, when missing, not a file, readable by others or empty', () => {
    const dir = makeTempDir('cistern-pass-').path;
    mkdirSync(join(dir, 'd'), { mode: 0o700 });
    const cases: Array<[string, RegExp]> = [
      [join(dir, 'missing'), /^--nats-pass-file: cannot read .*missing: ENOENT$/],
      [join(dir, 'd'), /^--nats-pass-file: .*\/d is not a regular file$/],
      [fileWith(dir, 'open', 'pw\n', 0o640), /^--nats-pass-file: .*open is accessible by group or others; chmod 600 it$/],
      [fileWith(dir, 'empty', ''), /^--nats-pass-file: .*empty is empty$/],
      [fileWith(dir, 'blank', '   \nsecond line\n'), /^--nats-pass-file: .*blank is empty$/],
    ];
    for (const [path, message] of cases) {
      expect(() => readPasswordFile(path, '--nats-pass-file'), path).to.throw(InvalidArgumentError, message);
    }
  });

  for (const [name, entry] of [['cistern-agent', () => entryPoints.agent], ['cistern-coordinator', () => entryPoints.coordinator]] as const) {
    it(`${name} refuses an empty one before connecting (exit 2)`, () => {
      const dir = makeTempDir('cistern-pass-').path;
      const empty = fileWith(dir, 'empty', '\n');
      // Port 1 on loopback: nothing listens there, so reaching NATS at all would fail differently.
      const args = [entry(), '--nats', 'nats://127.0.0.1:1', '--nats-user', 'u', '--nats-pass-file', empty];
      if (name === 'cistern-agent') args.push('--host-id', 'a', '--root', join(dir, 'root'));
      else args.push('--listen', '127.0.0.1:0', '--data', join(dir, 'data'));
      const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NATS_PASSWORD: '', NATS_PASSWORD_FILE: '' } });
      expect(run.status, run.stderr).to.equal(2);
      expect(run.stderr).to.contain(`--nats-pass-file: ${empty} is empty`);
    });
  }
});
