// A fast sample of the fuzz properties (test/fuzz/properties.ts) in the normal suite;
// `npm run fuzz` runs 100,000+ cases.
import { makeTempDir } from '../support/cleanup.js';
import { fuzzAgentDirPool, fuzzCli, fuzzValidators } from '../fuzz/properties.js';

describe('security: fuzz sample (validators, agent on a dir pool, cisternctl)', function () {
  this.timeout(120_000);
  it('refuses malformed names, paths, sizes, secrets, tokens and request bytes with INVALID_ARGUMENT only', async () => {
    await fuzzValidators(600);
  });
  it('never writes outside a dir pool, whatever the names and sizes; refusals of malformed input are INVALID_ARGUMENT', async () => {
    const tmp = makeTempDir('cistern-fuzz-');
    try {
      await fuzzAgentDirPool(300, tmp.path);
    } finally {
      await tmp.remove();
    }
  });
  it('cisternctl survives hostile argument vectors and writes no file', async () => {
    const tmp = makeTempDir('cistern-fuzz-cli-');
    try {
      await fuzzCli(200, tmp.path);
    } finally {
      await tmp.remove();
    }
  });
});
