// A promise rejected with nobody handling it ends a service (the work it belonged to is in an
// unknown state), but first the service's log says so with the error's code and stack: run in
// a process of its own, since this test's process has mocha's handler for the same event.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { distDir } from '../../support/index.js';

describe('exitOnUnhandledRejection', function () {
  this.timeout(30_000);

  it('logs the rejection with its code and stack, then exits 1', () => {
    const url = (path: string) => pathToFileURL(join(distDir, path)).href;
    const script = `
      import { exitOnUnhandledRejection } from '${url('libs/log/unhandled.js')}';
      import { createLogger } from '${url('libs/log/logger.js')}';
      import { UnavailableError } from '${url('libs/errors/errors.js')}';
      exitOnUnhandledRejection(createLogger('info', { service: 'test' }));
      void Promise.reject(new UnavailableError("host 'h1' is offline: no agent answers for it on the bus", { host: 'h1' }));
      setTimeout(() => process.stdout.write('still running'), 2000);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stdout).to.equal('');
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(line).to.include({
      level: 'error',
      msg: 'unhandled promise rejection; exiting',
      service: 'test',
      error: "host 'h1' is offline: no agent answers for it on the bus",
      code: 'UNAVAILABLE',
    });
    expect(line.details).to.deep.equal({ host: 'h1' });
    expect(line.stack).to.match(/^UnavailableError: host 'h1' is offline[^\n]*\n\s+at /);
  });
});
