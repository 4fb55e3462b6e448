#!/usr/bin/env node
// cistern-coordinator: serves cistern.v1.StorageService over gRPC and forwards work to
// the agents over NATS. It keeps no state that matters: the catalog lives in JetStream KV.
import { mkdirSync } from 'node:fs';
import { asCisternError, InvalidArgumentError } from '../../libs/errors/errors.js';
import { parseArgs, USAGE } from './config.js';
import { startCoordinator, type CoordinatorOptions } from './coordinator.js';
import { CoordinatorRunner } from './coordinator-runner.js';
import { DEFAULT_STOP_GRACE_MS } from './server.js';
import { createLogger } from '../../libs/log/logger.js';
import { exitOnUnhandledRejection } from '../../libs/log/unhandled.js';
import { stopWhenNpxIsGone } from '../../libs/os/npx-parent.js';
import { setupSecurity } from './auth/setup.js';

async function main(): Promise<number> {
  let config;
  try {
    config = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`cistern-coordinator: ${(err as Error).message}\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = createLogger(config.logLevel, { service: 'coordinator' });
  exitOnUnhandledRejection(log);
  if (config.dataDir) mkdirSync(config.dataDir, { recursive: true });
  // signals are handled from the first moment: during start (NATS may be down, and the
  // connection waits for it) a signal ends the process at once with a log line.
  let signalled: (() => void) | undefined;
  const stopRequested = new Promise<void>((resolve) => (signalled = resolve));
  let starting = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info('signal received', { signal });
      if (starting) process.exit(0);
      signalled?.();
    });
  }
  stopWhenNpxIsGone(log);
  log.info('coordinator starting', { nats: config.natsUrl, listen: config.listen, sinceProcessStartMs: Math.round(process.uptime() * 1000) });
  let security;
  try {
    security = setupSecurity(config.listen, config.security, log);
  } catch (err) {
    log.error('coordinator security settings are not usable', { err: asCisternError(err).message });
    return 2;
  }
  for (const warning of security.warnings) log.warn(warning, { security: true });
  log.info('security', { tls: security.tls, mutualTls: security.mutualTls, bearerAuth: !!config.security.tokensFile, natsUser: security.natsUser ?? '' });
  const options: CoordinatorOptions = {
    natsUrl: config.natsUrl,
    listen: config.listen,
    log,
    eventMaxAgeSeconds: config.eventMaxAgeSeconds,
    syncWaitMs: config.syncWaitMs,
    streamIdleMs: config.streamIdleMs,
    keepaliveMs: config.keepaliveMs,
    maxConnectionsPerAddress: config.security.maxConnectionsPerAddress,
    maxConnections: config.security.maxConnections,
    connectionIdleMs: config.security.connectionIdleMs,
    tlsHandshakeTimeoutMs: config.security.tlsHandshakeTimeoutMs,
    schemaDir: config.schemaDir,
    agentTimeoutMs: config.agentTimeoutMs,
    stopGraceMs: config.stopGraceMs,
    ...config.reliability,
    guard: security.guard,
    serverCredentials: security.credentials,
    natsUser: security.natsUser,
    natsPass: security.natsPass,
    secretKey: security.secretKey,
  };
  // the event stream deleted and made again: everything this coordinator read of it is of
  // another stream, so it starts again, as an operator would restart it (coordinator-runner.ts)
  const runner = new CoordinatorRunner(
    async (replaced) => {
      const started = await startCoordinator({ ...options, onEventStreamReplaced: replaced });
      // a start again listens where this one does, also when the port was left to the system
      options.listen = options.listen.replace(/:0$/, `:${started.port}`);
      return started;
    },
    log,
    (err) => {
      log.error('coordinator failed to start again', { err: asCisternError(err).message });
      process.exit(1);
    },
  );
  try {
    await runner.startFirst();
  } catch (err) {
    log.error('coordinator failed to start', { err: asCisternError(err).message });
    // a setting NATS refused (store-limits.ts): the operator's to change, as a bad flag is
    if (err instanceof InvalidArgumentError) {
      process.stderr.write(`cistern-coordinator: ${err.message}\n`);
      return 2;
    }
    return 1;
  }
  starting = false;
  await stopRequested;
  // past the grace (server.ts answers the calls still running, then cuts the connections) and
  // the clean-ups after it: a fixed 15 s cut a longer --stop-grace-ms short
  const force = setTimeout(() => {
    log.error('shutdown took too long; exiting');
    process.exit(1);
  }, (config.stopGraceMs ?? DEFAULT_STOP_GRACE_MS) + 10_000);
  force.unref();
  await runner.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: 'fatal', err: String(err?.stack ?? err) })}\n`);
    process.exit(1);
  },
);
