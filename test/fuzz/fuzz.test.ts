// `npm run fuzz`: the properties of properties.ts with FUZZ_RUNS cases in total
// (default 100,000): 60% validators and raw request bytes, 25% agent operations on a
// real dir pool, 15% cisternctl argument vectors. FUZZ_SEED replays a failure.
import { makeTempDir } from '../support/cleanup.js';
import fc from 'fast-check';
import { fuzzAgentDirPool, fuzzCli, fuzzValidators } from './properties.js';

const total = Number(process.env.FUZZ_RUNS ?? 100_000);
if (process.env.FUZZ_SEED) fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED) });

describe(`fuzz: ${total} generated cases`, function () {
  this.timeout(0);
  it(`validators and raw request messages (${Math.round(total * 0.6)} cases)`, async () => {
    await fuzzValidators(Math.round(total * 0.6));
  });
  it(`agent operations on a dir pool beside links that leave it (${Math.round(total * 0.25)} cases)`, async () => {
    const tmp = makeTempDir('cistern-fuzz-');
    try {
      await fuzzAgentDirPool(Math.round(total * 0.25), tmp.path);
    } finally {
      await tmp.remove();
    }
  });
  it(`cisternctl arguments (${Math.round(total * 0.15)} cases)`, async () => {
    const tmp = makeTempDir('cistern-fuzz-cli-');
    try {
      await fuzzCli(Math.round(total * 0.15), tmp.path);
    } finally {
      await tmp.remove();
    }
  });
});
