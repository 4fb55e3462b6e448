#!/usr/bin/env node
// cistern-agent: serves one host's storage over NATS.
//   cistern-agent --host-id ID [--nats URL] [--root DIR] [--pool-roots DIR]... [--heartbeat-ms N] [--resync-spread-ms N] [--log-level L]
import { parseArgs } from 'node:util';
import { passwordOnCommandLine, readPasswordFile } from '../../libs/bus/password-file.js';
import { isAbsolute, resolve } from 'node:path';
import { checkHostId } from '../../libs/api/names.js';
import { asCisternError } from '../../libs/errors/errors.js';
import { Agent, HostIdTakenError } from './agent.js';
import { RootTakenError } from './root-lock.js';
import { createLogger, isLogLevel, type LogLevel } from '../../libs/log/logger.js';
import { exitOnUnhandledRejection } from '../../libs/log/unhandled.js';
import { stopWhenNpxIsGone } from '../../libs/os/npx-parent.js';
import { secretRoot } from '../../libs/backends/secret-root.js';

const USAGE = `usage: cistern-agent --host-id ID [--nats URL] [--root DIR] [--pool-roots DIR]... [--heartbeat-ms N] [--log-level debug|info|warn|error]
  -h, --help          this text
  --nats URL[,URL...] NATS server, or a cluster's servers (default: $NATS_URL or nats://127.0.0.1:4222)
  --host-id ID        this host's id (1-64 of A-Z a-z 0-9 _ -, not starting with '-'), required
  --root DIR          where this host's default pools and this agent's state live (created; one
                      agent per root; default /var/lib/cistern/agent)
  --pool-roots DIR    dir, fs and netfs pools may only be in DIR, or under it (repeat for more;
                      env CISTERN_POOL_ROOTS, ':'-separated); --root is one too. Default: anywhere
  --heartbeat-ms N    heartbeat interval (default 2000)
  --resync-spread-ms N  answer a fleet-wide resync request after a random delay below N ms
                      (env CISTERN_RESYNC_SPREAD_MS; default 0.75 x heartbeat, at most 1500; 0 = at once)
  --log-level L       debug, info, warn or error (env CISTERN_LOG_LEVEL, default info)
  --nats-user USER    NATS user of this agent (env NATS_USER; scripts/nats-config.mjs makes agent-<host>)
  --nats-pass-file F  file holding its password (env NATS_PASSWORD_FILE, or NATS_PASSWORD)`;

/** NATS user and password: --nats-user / NATS_USER, password from --nats-pass-file / NATS_PASSWORD_FILE or NATS_PASSWORD (never argv). */
function natsCredentials(values: { 'nats-user'?: string; 'nats-pass-file'?: string }): { natsUser?: string; natsPass?: string } {
  const natsUser = values['nats-user'] ?? (process.env.NATS_USER || undefined);
  const file = values['nats-pass-file'] ?? process.env.NATS_PASSWORD_FILE;
  let natsPass = process.env.NATS_PASSWORD || undefined;
  if (file) {
    try {
      natsPass = readPasswordFile(file, '--nats-pass-file');
    } catch (err) {
      fail((err as Error).message);
    }
  }
  if (natsPass && !natsUser) fail('a NATS password needs --nats-user');
  return { natsUser: natsUser || undefined, natsPass };
}

function fail(message: string): never {
  process.stderr.write(`cistern-agent: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const OPTIONS = {
  nats: { type: 'string' },
  'host-id': { type: 'string' },
  root: { type: 'string' },
  'pool-roots': { type: 'string', multiple: true },
  'heartbeat-ms': { type: 'string' },
  'resync-spread-ms': { type: 'string' },
  'log-level': { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-pass-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * --nats-pass, which the strict parse would call only an "Unknown option": the coordinator's
 * reason instead (in any form, '--nats-pass X' or '--nats-pass=X'), never echoing the value.
 */
function refusePasswordOption(args: string[]): void {
  const { tokens } = parseArgs({ args, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'nats-pass')) fail(passwordOnCommandLine().message);
}

async function main(): Promise<void> {
  let values;
  try {
    const args = process.argv.slice(2);
    refusePasswordOption(args);
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const hostId = values['host-id'];
  if (!hostId) fail('--host-id is required');
  try {
    checkHostId(hostId, '--host-id');
  } catch (err) {
    fail((err as Error).message);
  }
  // an empty variable is unset, as the coordinator reads its environment; a bad value is
  // named where it came from, the flag or else the variable (as the coordinator names it)
  const given = values;
  const from = (flag: keyof typeof given, variable: string): string => (given[flag] !== undefined ? `--${flag}` : `${variable}:`);
  const level = values['log-level'] ?? (process.env.CISTERN_LOG_LEVEL || 'info');
  if (!isLogLevel(level)) fail(`${from('log-level', 'CISTERN_LOG_LEVEL')} '${level}' is not one of debug, info, warn, error`);
  const heartbeatMs = Number(values['heartbeat-ms'] ?? 2000);
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 50 || heartbeatMs > 600_000) {
    fail(`--heartbeat-ms '${values['heartbeat-ms']}' must be an integer from 50 to 600000`);
  }
  const spreadText = values['resync-spread-ms'] ?? process.env.CISTERN_RESYNC_SPREAD_MS;
  const resyncSpreadMs = spreadText === undefined || spreadText === '' ? undefined : Number(spreadText);
  if (resyncSpreadMs !== undefined && (!Number.isInteger(resyncSpreadMs) || resyncSpreadMs < 0 || resyncSpreadMs > 60_000)) {
    fail(`${from('resync-spread-ms', 'CISTERN_RESYNC_SPREAD_MS')} '${spreadText}' must be an integer from 0 to 60000`);
  }
  const poolRoots = values['pool-roots'] ?? (process.env.CISTERN_POOL_ROOTS ?? '').split(':').filter((r) => r !== '');
  for (const r of poolRoots) {
    if (!isAbsolute(r)) fail(`${from('pool-roots', 'CISTERN_POOL_ROOTS')} '${r}' is not an absolute path`);
  }
  try {
    // checked before anything connects, not at the first encrypted volume's create
    secretRoot();
  } catch (err) {
    fail((err as Error).message);
  }
  const natsUrl = values.nats ?? (process.env.NATS_URL || 'nats://127.0.0.1:4222');
  const root = resolve(values.root ?? '/var/lib/cistern/agent');
  const log = createLogger(level as LogLevel, { host: hostId });
  exitOnUnhandledRejection(log);

  let agent: Agent | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    void (async () => {
      try {
        await agent?.stop();
        log.info('stopped');
        process.exit(0);
      } catch (err) {
        log.error('stop failed', { error: err });
        process.exit(1);
      }
    })();
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  stopWhenNpxIsGone(log);

  try {
    agent = await Agent.start({ natsUrl: natsUrl.split(','), hostId, root, poolRoots, heartbeatMs, resyncSpreadMs, log, ...natsCredentials(values) });
  } catch (err) {
    const e = asCisternError(err);
    log.error('agent failed to start', { code: e.code, error: e.message });
    // a refusal the operator must act on, as for a bad argument: exit 2 with the reason on stderr
    if (err instanceof HostIdTakenError || err instanceof RootTakenError) {
      process.stderr.write(`cistern-agent: ${e.message}\n`);
      process.exit(2);
    }
    process.exit(1);
  }

}

void main();
