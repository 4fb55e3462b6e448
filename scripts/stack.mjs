#!/usr/bin/env node
// `npm start`: the whole local Cistern in one command.
//   - builds first when dist/ is missing (npm part of scripts/setup.sh),
//   - starts its own nats-server with JetStream (store under the data dir) unless NATS_URL is set,
//   - a coordinator on CISTERN_LISTEN (default 127.0.0.1:50051),
//   - one agent for this host (CISTERN_HOST_ID, default the hostname),
//   - defines, builds, starts and autostarts a dir pool `default` under the data dir,
//   - and stops all of it on Ctrl-C / SIGTERM / SIGHUP, to itself or to `npm start` (the npm
//     script execs node, so npm's SIGTERM reaches this process, not a shell), or when npm is
//     gone. Should this process die without stopping them (SIGKILL), the kernel sends each
//     service SIGTERM (setpriv --pdeathsig, see dieWithParent in nats.mjs).
//
// Options (flags win over environment):
//   --data DIR       CISTERN_DATA      data directory (default ./.cistern; one stack at a time)
//   --listen H:P     CISTERN_LISTEN    coordinator gRPC address (default 127.0.0.1:50051; busy: refused)
//   --host-id ID     CISTERN_HOST_ID   this host's id (default: hostname)
//   --nats URL       NATS_URL          use this NATS instead of starting nats-server
//   --nats-port N    CISTERN_NATS_PORT port of the local nats-server (default 4222, busy: any free port)
//   --no-default-pool                  do not create the `default` pool
//   --verbose        CISTERN_VERBOSE=1 copy service logs to the terminal
//   CISTERN_TOKEN: bearer token for the launcher's own API calls, when the coordinator asks for one.
//   The coordinator and the agent inherit this environment: their own variables (CISTERN_AGENT_TIMEOUT_MS,
//   CISTERN_STOP_GRACE_MS, CISTERN_REQUEST_TTL, ...) reach them from `npm start` so.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { claimDataDir } from './data-dir-claim.mjs';
import { dieWithParent, startNatsServer, stopGroup } from './nats.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = {
  coordinator: join(root, 'dist', 'services', 'coordinator', 'main.js'),
  agent: join(root, 'dist', 'services', 'agent', 'main.js'),
  cli: join(root, 'dist', 'cli', 'main.js'),
  // the cisternctl bin (bundled by npm run build, not by tsc): what this launcher tells you to run
  cliBin: join(root, 'dist', 'cli', 'cisternctl.mjs'),
  proto: join(root, 'dist', 'libs', 'proto', 'cistern', 'v1', 'storage.js'),
};

// ------------------------------------------------------------------------------ options
// `--opt=value` is `--opt value`, as the coordinator and the agent read their flags
const argv = process.argv.slice(2).flatMap((a) => {
  const eq = a.indexOf('=');
  return a.startsWith('--') && eq > 2 ? [a.slice(0, eq), a.slice(eq + 1)] : [a];
});
function flag(name) {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) fail(`${name} needs a value`);
  return v;
}
const known = new Set(['--data', '--listen', '--host-id', '--nats', '--nats-port']);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (known.has(a)) i++;
  else if (a === '--help' || a === '-h') {
    console.log('usage: npm start [-- --data DIR --listen HOST:PORT --host-id ID --nats URL --nats-port N --no-default-pool --verbose]');
    process.exit(0);
  } else if (a !== '--no-default-pool' && a !== '--verbose') fail(`unknown option ${a} (see --help)`);
}
/**
 * A setting's value and where it came from (the flag, else its environment variable, else the
 * default), so that a refusal names what the user set. An empty variable is not set: the
 * shell's `CISTERN_DATA= npm start` must not make the data dir the current directory.
 */
function setting(name, envName, fallback, fallbackFrom = name) {
  const v = flag(name);
  if (v !== undefined) return { value: v, from: name };
  const e = envName ? process.env[envName] : undefined;
  if (e !== undefined && e !== '') return { value: e, from: envName };
  return { value: fallback, from: fallbackFrom };
}
// Checked before anything is made or started: each of these used to fail only once nats-server
// and the coordinator ran, if at all. The host id rule is the agent's (libs/api/names.ts
// checkHostId; dist/ may not be built yet): it is also a directory and a log file name here.
function checkHostId({ value, from }) {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value) || value.startsWith('-')) {
    fail(`${from}: host id '${value}' is not valid; allowed: 1-64 of A-Z a-z 0-9 _ -, not starting with '-'${from === 'the hostname' ? ' (give one with --host-id ID)' : ''}`);
  }
  return value;
}
function checkPort({ value, from }) {
  const s = String(value);
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) fail(`${from}: '${s}' is not a port number; allowed: 0 to 65535 (0: any free port)`);
  return Number(s);
}
// The coordinator's own HOST:PORT rule (services/coordinator/config.ts), and a port that
// exists and is not 0: the launcher calls the coordinator at this address, and with port 0
// it would listen on one nobody knows.
function checkListen({ value, from }) {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  if (!m) fail(`${from}: '${value}' is not HOST:PORT (e.g. 127.0.0.1:50051, [::1]:50051)`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) fail(`${from}: '${value}' is not HOST:PORT with a port from 1 to 65535`);
  return value;
}
const dataDir = resolve(setting('--data', 'CISTERN_DATA', join(root, '.cistern')).value);
const listen = checkListen(setting('--listen', 'CISTERN_LISTEN', '127.0.0.1:50051'));
const hostId = checkHostId(setting('--host-id', 'CISTERN_HOST_ID', hostname().split('.')[0], 'the hostname'));
const externalNats = setting('--nats', 'NATS_URL', undefined).value;
const natsPort = checkPort(setting('--nats-port', 'CISTERN_NATS_PORT', 4222));
const defaultPool = !argv.includes('--no-default-pool');
const verbose = argv.includes('--verbose') || process.env.CISTERN_VERBOSE === '1';
const logsDir = join(dataDir, 'logs');

function log(msg) {
  process.stderr.write(`stack: ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`stack: ${msg}\n`);
  process.exit(2);
}

// ------------------------------------------------------------------------------ children
/** @type {{name: string, pid: number, exited: Promise<any>, done: () => boolean}[]} */
const children = [];
let shuttingDown = false;

const TAIL_LINES = 5;

function startService(name, args) {
  const logFile = join(logsDir, `${name.replace(/\s+/g, '-')}.log`);
  const out = createWriteStream(logFile, { flags: 'a' });
  // Its own process group: a Ctrl-C on the terminal is for this launcher, which stops the
  // services in order (agent, coordinator, nats-server).
  const [cmd, argv_] = dieWithParent(process.execPath, args);
  const child = spawn(cmd, argv_, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: root });
  let status;
  const exited = new Promise((r) => {
    child.once('error', (err) => r((status = { code: -1, signal: null, error: err })));
    child.once('exit', (code, signal) => r((status = { code, signal })));
  });
  // Its last lines, for the terminal should it exit: a service says why it refuses to run on
  // stderr, which otherwise reaches only its log file.
  const tail = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      out.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) tail.push(line);
      tail.splice(0, tail.length - TAIL_LINES);
      if (verbose) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  }
  const handle = { name, pid: child.pid, logFile, exited, done: () => status !== undefined };
  children.push(handle);
  exited.then((st) => {
    out.end();
    if (!shuttingDown) {
      log(`${name} exited unexpectedly (${st.error?.message ?? `code ${st.code}, signal ${st.signal}`}); see ${logFile}${tail.length ? `; its last lines:\n${tail.map((l) => `  ${l}`).join('\n')}` : ''}`);
      shutdown(1);
    }
  });
  return handle;
}

async function shutdown(code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  log('stopping...');
  // Newest first: agent, coordinator, then nats-server.
  for (const c of [...children].reverse()) {
    // the coordinator lets its running calls finish for CISTERN_STOP_GRACE_MS (it reads the
    // variable from this environment, and refuses a bad one at its start): not cut short here
    const grace = c.name === 'coordinator' && /^\d+$/.test(process.env.CISTERN_STOP_GRACE_MS ?? '') ? Number(process.env.CISTERN_STOP_GRACE_MS) : 0;
    await stopGroup(c.pid, c.exited, c.done, Math.max(10_000, grace + 10_000));
  }
  log('stopped');
  process.exit(code);
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGHUP', () => shutdown(0));
// Under `npm start` npm is the parent and owns the terminal: when it is gone (killed with
// SIGKILL, say), this process has been re-parented; stop everything rather than run on alone.
if (process.env.npm_lifecycle_event) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      log(`parent process ${parent} (npm) is gone`);
      shutdown(0);
    }
  }, 500).unref();
}
process.on('exit', () => {
  // Last resort (an exception): no child outlives the launcher.
  for (const c of children) {
    if (!c.done()) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
});
process.on('uncaughtException', (err) => {
  log(`error: ${err?.stack ?? err}`);
  shutdown(1);
});
process.on('unhandledRejection', (err) => {
  log(`error: ${err?.stack ?? err}`);
  shutdown(1);
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    if (shuttingDown) await new Promise(() => {});
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(200);
  }
}

/**
 * Whether something already listens on `address` (HOST:PORT, [V6]:PORT). Asked before anything
 * starts: the coordinator would fail to listen only after nats-server was up, and meanwhile
 * the launcher's own calls would be answered by whatever holds the port (another stack's
 * coordinator), so it would report that one as its own. Any other bind error (an address not
 * on this machine) is left to the coordinator to report.
 */
function addressInUse(address) {
  const m = /^\[(.*)\]:(\d+)$/.exec(address) ?? /^([^:]*):(\d+)$/.exec(address);
  if (!m || Number(m[2]) === 0) return Promise.resolve(false);
  return new Promise((res) => {
    const probe = createServer();
    probe.once('error', (err) => res(err.code === 'EADDRINUSE'));
    probe.listen({ host: m[1], port: Number(m[2]), exclusive: true }, () => probe.close(() => res(false)));
  });
}

// ------------------------------------------------------------------------------ main
async function main() {
  // First: with the same data dir, another stack is what holds the address too, and what to
  // change is the data dir as well as the address.
  mkdirSync(dataDir, { recursive: true });
  const claim = await claimDataDir(dataDir, { pid: process.pid, listen });
  if (!claim.claimed) {
    const who = claim.holder ? ` (pid ${claim.holder.pid}, coordinator ${claim.holder.listen})` : '';
    fail(`the data dir ${dataDir} is in use by another Cistern stack${who}: stop that one (Ctrl-C in its terminal), or give this one a data dir of its own with --data DIR (or CISTERN_DATA) and an address with --listen HOST:PORT`);
  }
  if (await addressInUse(listen)) {
    fail(`${listen} is in use (another Cistern stack?): give the coordinator another address with --listen HOST:PORT (or CISTERN_LISTEN), e.g. npm start -- --listen 127.0.0.1:50052`);
  }
  if (![entry.coordinator, entry.agent, entry.cli, entry.cliBin, entry.proto].every(existsSync)) {
    log('dist/ is missing or incomplete: installing npm dependencies and building (scripts/setup.sh --npm-only)');
    const r = spawnSync('bash', [join(root, 'scripts', 'setup.sh'), '--npm-only'], { stdio: 'inherit', cwd: root });
    if (r.status !== 0) fail('setup failed');
    for (const f of [entry.coordinator, entry.agent, entry.proto]) if (!existsSync(f)) fail(`${f} was not built`);
  }
  mkdirSync(logsDir, { recursive: true });

  let natsUrl = externalNats;
  if (!natsUrl) {
    const opts = { storeDir: join(dataDir, 'nats'), logFile: join(logsDir, 'nats-server.log'), name: `cistern-${hostId}` };
    let nats;
    try {
      nats = await startNatsServer({ ...opts, port: natsPort });
    } catch (err) {
      if (!err.addressInUse || natsPort <= 0) throw err;
      log(`port ${natsPort} is in use: starting nats-server on a free port instead`);
      nats = await startNatsServer({ ...opts, port: -1 });
    }
    natsUrl = nats.url;
    const handle = { name: 'nats-server', pid: nats.pid, logFile: nats.logFile, exited: nats.exited, done: () => !nats.alive };
    children.push(handle);
    nats.exited.then((st) => {
      if (!shuttingDown) {
        log(`nats-server exited unexpectedly (code ${st.code}, signal ${st.signal}); see ${nats.logFile}`);
        shutdown(1);
      }
    });
    log(`nats-server (JetStream) on ${natsUrl}, store ${opts.storeDir}`);
  } else {
    log(`using NATS at ${natsUrl}`);
  }

  const grpc = await import('@grpc/grpc-js');
  const pb = await import(entry.proto);
  const client = new pb.StorageServiceClient(listen, grpc.credentials.createInsecure());
  // every request through its type's fromPartial: fields added to a request later (a page
  // size, a request id) get their defaults instead of failing serialization as undefined
  const call = (method, request) =>
    new Promise((res, rej) => {
      const type = pb[`${method[0].toUpperCase()}${method.slice(1)}Request`];
      const md = new grpc.Metadata();
      if (process.env.CISTERN_TOKEN) md.set('authorization', `Bearer ${process.env.CISTERN_TOKEN}`);
      client[method](type.fromPartial(request), md, { deadline: new Date(Date.now() + 60_000) }, (err, r) => (err ? rej(err) : res(r)));
    });

  // the key that encrypts secret values at rest (Secret API): made once, kept with the data
  const secretKeyFile = join(dataDir, 'secret.key');
  if (!existsSync(secretKeyFile)) {
    writeFileSync(secretKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    log(`made the secret key ${secretKeyFile}`);
  }
  startService('coordinator', [
    entry.coordinator,
    '--nats', natsUrl,
    '--listen', listen,
    '--data', join(dataDir, 'coordinator'),
    '--secret-key-file', secretKeyFile,
  ]);
  await waitUntil(`the coordinator on ${listen}`, () => call('listHosts', {}).then(() => true));
  log(`coordinator on ${listen}`);

  const agentRoot = join(dataDir, 'hosts', hostId);
  mkdirSync(agentRoot, { recursive: true });
  const agentStartedAt = Date.now();
  startService(`agent-${hostId}`, [entry.agent, '--nats', natsUrl, '--host-id', hostId, '--root', agentRoot]);
  await waitUntil(`host ${hostId} to come online`, async () => {
    const { hosts } = await call('listHosts', {});
    // The coordinator may still show this host online from a previous run: wait for a heartbeat
    // of the agent just started.
    return hosts.some((h) => h.hostId === hostId && h.online && (h.lastSeen?.getTime() ?? 0) >= agentStartedAt);
  });
  log(`agent for host ${hostId} online (root ${agentRoot})`);

  if (defaultPool) await ensureDefaultPool(pb, call);

  const addr = listen;
  const cli = 'npx cisternctl';
  process.stdout.write(
    [
      '',
      `Cistern is running: coordinator ${addr}, NATS ${natsUrl}, host ${hostId}, data ${dataDir}`,
      `Logs: ${logsDir}`,
      '',
      'In another terminal:',
      `  export CISTERN_SERVER=${addr}`,
      `  ${cli} host-list`,
      `  ${cli} pool-list --all --details`,
      // without the default pool these would only print "pool not found"
      ...(defaultPool
        ? [`  ${cli} vol-create-as default v1 1G --format qcow2`, `  ${cli} vol-list default --details`, `  ${cli} pool-dumpxml default`]
        : [`  ${cli} pool-define-as images dir --target /srv/images   (then pool-build, pool-start)`]),
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  client.close();
}

async function ensureDefaultPool(pb, call) {
  const name = `hosts/${hostId}/pools/default`;
  const target = join(dataDir, 'pools', 'default');
  const { pools } = await call('listPools', { host: hostId, types: [], pageSize: 0, pageToken: '' });
  let pool = pools.find((p) => p.name === name);
  if (!pool) {
    pool = await call('definePool', {
      host: hostId,
      definition: pb.PoolDefinition.fromPartial({ type: pb.PoolType.POOL_TYPE_DIR, name: 'default', target: { path: target } }),
      xml: '',
      requestId: '',
    });
    log(`defined pool default (dir, ${target})`);
  }
  const target_ = pool.definition?.target?.path ?? target;
  if (pool.state !== pb.PoolState.POOL_STATE_RUNNING) {
    const build = !existsSync(target_);
    try {
      pool = await call('startPool', { name, build, buildFlags: undefined, requestId: '' });
      log(`started pool default${build ? ' (built its directory)' : ''}`);
    } catch (err) {
      // The agent may have autostarted it meanwhile.
      pool = await call('getPool', { name });
      if (pool.state !== pb.PoolState.POOL_STATE_RUNNING) throw err;
    }
  }
  if (!pool.autostart) {
    await call('setPoolAutostart', { name, autostart: true });
    log('pool default autostarts');
  }
}

main().catch((err) => {
  log(`failed: ${err?.message ?? err}`);
  for (const c of children) log(`  ${c.name} log: ${c.logFile}`);
  shutdown(1);
});
