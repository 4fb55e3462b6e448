// Marks the package's bins (package.json "bin") executable, as npm does when it installs a
// package: in a clone, dist/ is built after `npm ci`, and tsc writes its files 0644, so
// `npx cistern-agent` (node_modules/.bin -> dist/...) would be refused by the shell.
//   node scripts/bin-modes.mjs [PACKAGE_DIR]      (default: this repository)
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const { bin = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(bin)) {
  const path = join(root, file);
  chmodSync(path, (statSync(path).mode & 0o7777) | 0o111);
}
