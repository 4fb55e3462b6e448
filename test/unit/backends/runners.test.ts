// The command runners: the real one (execa, no shell, LC_ALL=C, timeout, cancel, stderr
// in the error) and the recording one the other unit tests rely on.
import { expect } from 'chai';
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

  it('runs argv without a shell and returns stdout', async () => {
    const r = await runner.run(['echo', '$HOME', ';', 'ls']);
    expect(r).to.deep.equal({ stdout: '$HOME ; ls\n', stderr: '', exitCode: 0 });
  });

  it('passes LC_ALL=C and extra environment', async () => {
    const r = await runner.run(['env'], { env: { CISTERN_X: 'y', LC_ALL: 'de_DE.UTF-8' } });
    expect(r.stdout).to.match(/^LC_ALL=C$/m);
    expect(r.stdout).to.match(/^CISTERN_X=y$/m);
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

  it('a missing program is CommandFailedError', async () => {
    const err = await rejects(runner.run(['/nonexistent/cistern-program']));
    expect(err).to.be.instanceOf(CommandFailedError);
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
