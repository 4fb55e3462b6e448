// Bundles cisternctl into one file, dist/cli/cisternctl.mjs (package.json "bin"): a CLI
// process then reads one file instead of resolving and loading ~150 modules, which is most
// of its start-up time. `node dist/cli/main.js` (tsc output) keeps working. Run by `npm run build`.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'cli', 'cisternctl.mjs');

await build({
  entryPoints: [join(root, 'cli', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  // error classes and messages keep their names
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS dependencies (grpc-js) call require() for Node's own modules
  banner: { js: "import { createRequire as __cisternRequire } from 'node:module'; const require = __cisternRequire(import.meta.url);" },
});
chmodSync(outfile, 0o755);
