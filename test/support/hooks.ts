// Mocha root hooks (loaded through .mocharc's `require`): on a failed test, print the tail of
// every service the harness is running; after all tests, tear down whatever is left.
import type { Context } from 'mocha';
import { runAllCleanups } from './cleanup.js';
import { runningProcesses } from './process.js';

export const mochaHooks = {
  afterEach(this: Context): void {
    const test = this.currentTest;
    if (test?.state !== 'failed') return;
    const procs = runningProcesses();
    if (procs.length === 0) return;
    process.stderr.write(`\nservice output for failed test "${test.fullTitle()}":\n`);
    for (const p of procs) process.stderr.write(`${p.logTail(80)}\n`);
  },
  async afterAll(this: Context): Promise<void> {
    this.timeout(60_000);
    await runAllCleanups();
  },
};
