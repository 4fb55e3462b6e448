// The --root lock (services/agent/root-lock.ts): held by a live agent it refuses another, left
// by one that is gone it is taken over, and only its holder removes it.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readlinkSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { RootLock, RootTakenError, ROOT_LOCK } from '../../../services/agent/root-lock.js';
import { readProcStat } from '../../../libs/os/proc.js';
import { silentLogger } from '../../../libs/log/logger.js';
import { makeTempDir } from '../../support/index.js';

describe('agent --root lock', () => {
  let tmp: { path: string };
  beforeEach(() => {
    tmp = makeTempDir('cistern-root-lock-');
  });

  it('a live holder (another process) is refused, naming its host and pid; nothing changes', () => {
    const parent = readProcStat(process.ppid)!;
    const target = `${process.ppid}:${parent.startTime}:a`;
    symlinkSync(target, join(tmp.path, ROOT_LOCK));
    expect(() => RootLock.take(tmp.path, 'b', silentLogger))
      .to.throw(RootTakenError)
      .with.property('message', `--root '${tmp.path}' is in use by the agent of host 'a' (pid ${process.ppid}): give each agent a --root of its own`);
    expect(readlinkSync(join(tmp.path, ROOT_LOCK))).to.equal(target);
  });

  it('the lock of a process that exited is taken over, and released at stop', () => {
    const gone = spawnSync('true').pid!;
    symlinkSync(`${gone}:1:a`, join(tmp.path, ROOT_LOCK));
    const lock = RootLock.take(tmp.path, 'b', silentLogger);
    expect(readlinkSync(join(tmp.path, ROOT_LOCK))).to.match(new RegExp(`^${process.pid}:[0-9]+:b$`));
    lock.release();
    expect(existsSync(join(tmp.path, ROOT_LOCK))).to.equal(false);
  });

  it('a file that is no lock link (written by hand) is replaced', () => {
    writeFileSync(join(tmp.path, ROOT_LOCK), 'junk');
    RootLock.take(tmp.path, 'b', silentLogger).release();
    expect(existsSync(join(tmp.path, ROOT_LOCK))).to.equal(false);
  });

  it('release leaves a lock another agent holds', () => {
    const lock = RootLock.take(tmp.path, 'b', silentLogger);
    const parent = readProcStat(process.ppid)!;
    const other = `${process.ppid}:${parent.startTime}:c`;
    spawnSync('ln', ['-sfn', other, join(tmp.path, ROOT_LOCK)]);
    lock.release();
    expect(readlinkSync(join(tmp.path, ROOT_LOCK))).to.equal(other);
  });
});
