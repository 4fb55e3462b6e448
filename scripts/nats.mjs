#!/usr/bin/env node
// Starts a local nats-server with JetStream for the stack launcher (scripts/stack.mjs).
//
//   node scripts/nats.mjs [--data DIR] [--port N]   # standalone: runs until Ctrl-C
//
// The server gets its own process group and is stopped by its exact pid; the kernel sends it
// SIGTERM if the process that started it dies first (dieWithParent).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function natsServerBinary() {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('nats-server not found: run `bash scripts/setup.sh` (Debian package nats-server) or set NATS_SERVER_BIN');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let setprivPath;
/**
 * [command, args] that run `cmd args` so that the kernel sends it SIGTERM when the process
 * that spawned it dies, however it dies (SIGKILL included): util-linux's
 * `setpriv --pdeathsig TERM -- cmd args` sets PR_SET_PDEATHSIG and execs cmd, so the pid
 * stays cmd's. Without setpriv (not Debian), [cmd, args] as they are.
 */
export function dieWithParent(cmd, args) {
  if (setprivPath === undefined) {
    const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/bin'];
    setprivPath = dirs.map((dir) => join(dir, 'setpriv')).find((p) => existsSync(p)) ?? null;
  }
  return setprivPath ? [setprivPath, ['--pdeathsig', 'TERM', '--', cmd, ...args]] : [cmd, args];
}

/**
 * Starts nats-server -js on 127.0.0.1. `port` 0 or -1 lets the server pick a free port.
 * Resolves once the server logged "Server is ready"; returns { url, port, pid, logFile, exited, stop() }.
 */
export async function startNatsServer({ storeDir, logFile, port = 4222, host = '127.0.0.1', name = 'cistern', timeoutMs = 20_000 }) {
  mkdirSync(storeDir, { recursive: true });
  const fd = openSync(logFile, 'a');
  const start = readLength(logFile);
  let child;
  try {
    // Its own process group (a Ctrl-C on the terminal is for the launcher, which stops it in
    // order), and SIGTERM from the kernel should the launcher die without stopping it.
    const [cmd, args] = dieWithParent(natsServerBinary(), ['-js', '-sd', storeDir, '-a', host, '-p', String(port || -1), '-n', name]);
    child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let status;
  const exited = new Promise((r) => {
    child.once('error', (err) => r((status = { code: -1, signal: null, error: err })));
    child.once('exit', (code, signal) => r((status = { code, signal })));
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(logFile, 'utf8').slice(start);
    if (status) {
      const err = new Error(`nats-server exited before it was ready (${status.error?.message ?? `code ${status.code}`}):\n${text.trim().split('\n').slice(-10).join('\n')}`);
      err.addressInUse = /address already in use/i.test(text);
      throw err;
    }
    const m = /Listening for client connections on [^\s]*:(\d+)/.exec(text);
    if (m && text.includes('Server is ready')) {
      const actual = Number(m[1]);
      return {
        url: `nats://${host}:${actual}`,
        port: actual,
        pid: child.pid,
        logFile,
        exited,
        get alive() {
          return status === undefined;
        },
        stop: (graceMs = 10_000) => stopGroup(child.pid, exited, () => status !== undefined, graceMs),
      };
    }
    if (Date.now() > deadline) {
      await stopGroup(child.pid, exited, () => status !== undefined, 1000);
      throw new Error(`nats-server did not become ready within ${timeoutMs} ms; see ${logFile}`);
    }
    await sleep(25);
  }
}

function readLength(file) {
  try {
    return readFileSync(file, 'utf8').length;
  } catch {
    return 0;
  }
}

/** SIGTERM to the process group `pid` (its exact id), SIGKILL after graceMs. */
export async function stopGroup(pid, exited, isDone, graceMs = 10_000) {
  if (isDone()) return exited;
  const send = (sig) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* gone */
      }
    }
  };
  send('SIGTERM');
  const timer = setTimeout(() => send('SIGKILL'), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

// Standalone use.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (flag, dflt) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const dataDir = resolve(opt('--data', process.env.CISTERN_DATA ?? '.cistern'));
  mkdirSync(join(dataDir, 'logs'), { recursive: true });
  const nats = await startNatsServer({
    storeDir: join(dataDir, 'nats'),
    logFile: join(dataDir, 'logs', 'nats-server.log'),
    port: Number(opt('--port', process.env.CISTERN_NATS_PORT ?? '4222')),
  });
  console.log(`nats-server with JetStream on ${nats.url} (pid ${nats.pid}, log ${nats.logFile}); Ctrl-C stops it`);
  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      stopping = true;
      await nats.stop();
      process.exit(0);
    });
  }
  const st = await nats.exited;
  if (stopping) await new Promise(() => {}); // the signal handler exits
  console.error(`nats-server exited (${JSON.stringify(st)})`);
  process.exit(1);
}
