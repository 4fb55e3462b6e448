// Where the repository and its built entry points are, seen from dist/test/support.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Repository root: this file runs from <root>/dist/test/support/paths.js. */
export const repoRoot = resolve(here, '..', '..', '..');
export const distDir = resolve(repoRoot, 'dist');

export const entryPoints = {
  coordinator: resolve(distDir, 'services', 'coordinator', 'main.js'),
  agent: resolve(distDir, 'services', 'agent', 'main.js'),
  cli: resolve(distDir, 'cli', 'main.js'),
} as const;

/** nats-server from NATS_SERVER_BIN, PATH, or Debian's /usr/sbin (not on PATH for non-root users). */
export function natsServerBinary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const candidate = resolve(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  for (const candidate of ['/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server']) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('nats-server not found: run `bash scripts/setup.sh` (Debian package nats-server) or set NATS_SERVER_BIN');
}
