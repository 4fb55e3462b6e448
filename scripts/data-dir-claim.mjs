// One stack per data dir (scripts/stack.mjs). Two `npm start`s on one data dir would run two
// nats-servers on one JetStream store, each with its own view of the catalog and both writing
// its files, and two agents for one host and root that the one-agent-per-host check cannot see
// (each is on its own NATS).
//
// The claim is a Linux abstract Unix socket named after the data dir's real path, not a lock
// file: binding it is atomic, and the kernel frees it when the launcher ends however it ends
// (SIGKILL included), so there is never a stale lock to tell from a live one (a pid in a file
// can be dead, or reused by another process). The holder answers a connection with who it is.
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

function socketName(dataDir) {
  return `\0cistern-stack-${createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 40)}`;
}

/**
 * Claims `dataDir` (which must exist) for this process until it exits. Resolves to
 * `{ claimed: true }`, or `{ claimed: false, holder }` when another process holds it; `holder`
 * is what that one passed as `about` (undefined if it did not answer).
 */
export async function claimDataDir(dataDir, about) {
  const name = socketName(dataDir);
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${JSON.stringify(about)}\n`);
  });
  const error = await new Promise((resolve) => {
    server.once('error', resolve);
    server.listen(name, () => resolve(undefined));
  });
  if (!error) {
    server.unref(); // the claim must not keep the launcher alive
    return { claimed: true };
  }
  if (error.code !== 'EADDRINUSE') throw error;
  return { claimed: false, holder: await askHolder(name) };
}

function askHolder(name, timeoutMs = 2000) {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection(name);
    const done = (value) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('end', () => {
      try {
        done(JSON.parse(text));
      } catch {
        done(undefined);
      }
    });
    socket.on('error', () => done(undefined));
  });
}
