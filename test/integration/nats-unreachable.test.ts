// A coordinator or agent started while its NATS server is not reachable (not started yet, a
// wrong --nats, a nats-server that failed to start because its port was taken) waits for it,
// retrying, as it does for a NATS that goes away later. It must say so: without a line, the
// README's secure setup with a nats-server that did not come up shows a coordinator that logged
// 'security' and then nothing, and cisternctl's 'failed to connect to the coordinator'.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { entryPoints, freePort, useTempDir, waitFor } from '../support/index.js';
import { trackPid, untrackPid } from '../support/cleanup.js';

async function firstLinesWaiting(args: string[]): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NATS_URL: '' } });
  trackPid(child.pid!);
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor('a line saying NATS is not reachable', async () => /NATS is not reachable/.test(err) || undefined, { timeoutMs: 10_000 }).catch((e: Error) => {
      throw new Error(`${e.message}\nstderr:\n${err}`);
    });
    return err;
  } finally {
    child.kill('SIGTERM');
    await exited;
    untrackPid(child.pid!);
  }
}

describe('a service whose NATS is not reachable at start', function () {
  this.timeout(30_000);
  const scratch = useTempDir('cistern-nats-unreachable-');

  it('the coordinator says it is waiting for NATS, naming the URL', async function () {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const err = await firstLinesWaiting([entryPoints.coordinator, '--nats', url, '--listen', `127.0.0.1:${await freePort()}`]);
    const line = err.split('\n').find((l) => l.includes('NATS is not reachable'))!;
    const record = JSON.parse(line) as Record<string, unknown>;
    expect(record.level).to.equal('warn');
    expect(record.nats).to.equal(url);
  });

  it('the agent says it is waiting for NATS, naming the URL', async function () {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const err = await firstLinesWaiting([entryPoints.agent, '--nats', url, '--host-id', 'unreachable', '--root', join(scratch.path, 'agent')]);
    const line = err.split('\n').find((l) => l.includes('NATS is not reachable'))!;
    const record = JSON.parse(line) as Record<string, unknown>;
    expect(record.level).to.equal('warn');
    expect(record.nats).to.equal(url);
  });
});
