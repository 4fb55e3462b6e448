// The command runners: the real one (execa, no shell, LC_ALL=C, timeout, cancel, stderr
// in the error) and the recording one the other unit tests rely on.
import { expect } from 'chai';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecRunner } from '../../../libs/backends/exec-runner.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { CancelledError, CommandFailedError, DeadlineExceededError } from '../../../libs/errors/errors.js';

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('ExecRunner', () => {
  const runner = new ExecRunner();

  it('hands RunOptions.fds to the program as fd 3, 4 (through setpriv), with stdin input alongside', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-runner-fds-'));
    const fds = [openSync(join(dir, 'a'), 'w+'), openSync(join(dir, 'b'), 'w+')];
    try {
      writeSync(fds[0]!, 'three');
      writeSync(fds[1]!, 'four');
      const out = await runner.run(['sh', '-c', 'cat; cat /proc/self/fd/3 /proc/self/fd/4 >/dev/null; readlink /proc/self/fd/3 /proc/self/fd/4'], { fds, input: 'in\n' });
      expect(out.stdout).to.equal(`in\n${join(dir, 'a')}\n${join(dir, 'b')}\n`);
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failed command's error names the files it was given as descriptors", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-runner-fds-'));
    const fd = openSync(join(dir, 'vol.qcow2'), 'w+');
    try {
      const err = await rejects(runner.run(['sh', '-c', 'echo "/dev/fd/3: no" >&2; exit 1'], { fds: [fd] }));
      expect(err.message).to.equal(`command failed: sh -c echo "/dev/fd/3: no" >&2; exit 1 [fd 3: ${join(dir, 'vol.qcow2')}] (exit 1): /dev/fd/3: no`);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs argv without a shell and returns stdout', async () => {
    const r = await runner.run(['echo', '$HOME', ';', 'ls']);
    expect(r).to.deep.equal({ stdout: '$HOME ; ls\n', stderr: '', exitCode: 0 });
  });

  it('passes LC_ALL=C and extra environment', async () => {
    const r = await runner.run(['env'], { env: { CISTERN_X: 'y', LC_ALL: 'de_DE.UTF-8' } });
    expect(r.stdout).to.match(/^LC_ALL=C$/m);
    expect(r.stdout).to.match(/^CISTERN_X=y$/m);
  });

  it('tagEnv is set on every command, cleanEnv ones included, and a command cannot override it', async () => {
    const tagged = new ExecRunner({ tagEnv: { CISTERN_AGENT_CHILD: 'h:1:2' } });
    for (const cleanEnv of [false, true]) {
      const r = await tagged.run(['env'], { cleanEnv, env: { CISTERN_AGENT_CHILD: 'other' } });
      expect(r.stdout, `cleanEnv ${cleanEnv}`).to.match(/^CISTERN_AGENT_CHILD=h:1:2$/m);
    }
  });

  it('feeds stdin', async () => {
    expect((await runner.run(['cat'], { input: 'abc' })).stdout).to.equal('abc');
  });

  it('a non-zero exit is CommandFailedError with argv, exit code and stderr', async () => {
    const err = await rejects(runner.run(['ls', '--', '/nonexistent-cistern-path']));
    expect(err).to.be.instanceOf(CommandFailedError);
    const e = err as CommandFailedError;
    expect(e.argv).to.deep.equal(['ls', '--', '/nonexistent-cistern-path']);
    expect(e.exitCode).to.equal(2);
    expect(e.stderr).to.contain('No such file or directory');
    expect(e.code).to.equal('INTERNAL');
  });

  it('okExitCodes accepts other exit codes', async () => {
    expect((await runner.run(['false'], { okExitCodes: [0, 1] })).exitCode).to.equal(1);
  });

  it('a missing program is CommandFailedError without an exit code, saying it could not start (ENOENT)', async () => {
    for (const program of ['/nonexistent/cistern-program', 'cistern-no-such-program']) {
      const err = await rejects(runner.run([program, 'arg']));
      expect(err).to.be.instanceOf(CommandFailedError);
      const e = err as CommandFailedError;
      expect(e.argv).to.deep.equal([program, 'arg']);
      expect(e.exitCode).to.equal(undefined);
      expect(e.stderr).to.equal(`spawn ${program} ENOENT`);
    }
  });

  it('a program that cannot be executed is CommandFailedError without an exit code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cistern-runner-'));
    try {
      const file = join(dir, 'not-executable');
      writeFileSync(file, '#!/bin/sh\n', { mode: 0o644 });
      const e = (await rejects(runner.run([file]))) as CommandFailedError;
      expect(e).to.be.instanceOf(CommandFailedError);
      expect(e.exitCode).to.equal(undefined);
      expect(e.stderr).to.match(/^spawn \S+ (EACCES|failed: Permission denied)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every command is killed by the kernel when this process dies (parent death signal KILL), and runs as itself', async () => {
    // setpriv -d shows the parent death signal of the process it runs in
    expect((await runner.run(['setpriv', '-d'])).stdout).to.match(/^Parent death signal: KILL$/m);
    // the wrapper execs the tool: the pid execa times out and cancels is the tool's own
    expect((await runner.run(['cat', '/proc/self/comm'])).stdout).to.equal('cat\n');
  });

  it('a timeout kills the program: DEADLINE_EXCEEDED', async () => {
    const err = await rejects(runner.run(['sleep', '10'], { timeoutMs: 100 }));
    expect(err).to.be.instanceOf(DeadlineExceededError);
  });

  it('an abort signal cancels the program: CANCELLED', async () => {
    const ac = new AbortController();
    const p = runner.run(['sleep', '10'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await rejects(p)).to.be.instanceOf(CancelledError);
  });
});

describe('RecordingRunner', () => {
  it('records exact argv and answers by prefix, predicate or handler, in order added', async () => {
    const r = new RecordingRunner()
      .on(['qemu-img', 'info'], { stdout: '{"format":"qcow2"}' })
      .onMatch((a) => a.includes('boom'), { exitCode: 3, stderr: 'bad' })
      .on(['echo'], (argv) => ({ stdout: argv.slice(1).join(' ') }));
    expect((await r.run(['qemu-img', 'info', '--output=json', '/x'])).stdout).to.equal('{"format":"qcow2"}');
    expect((await r.run(['echo', 'a', 'b'])).stdout).to.equal('a b');
    const err = await rejects(r.run(['x', 'boom']));
    expect(err).to.be.instanceOf(CommandFailedError);
    expect((err as CommandFailedError).exitCode).to.equal(3);
    expect((await r.run(['unknown'])).exitCode).to.equal(0);
    expect(r.argvs).to.deep.equal([['qemu-img', 'info', '--output=json', '/x'], ['echo', 'a', 'b'], ['x', 'boom'], ['unknown']]);
    expect(r.callsOf('echo')).to.deep.equal([['echo', 'a', 'b']]);
  });

  it('strict mode refuses unscripted commands; times limits a rule', async () => {
    const r = new RecordingRunner({ strict: true }).on(['a'], { stdout: '1' }, 1);
    expect((await r.run(['a'])).stdout).to.equal('1');
    expect(await rejects(r.run(['a']))).to.be.instanceOf(CommandFailedError);
  });
});
