// A real nats-server with JetStream on a loopback port, its store in a temp dir.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, registerCleanup } from './cleanup.js';
import { natsServerBinary } from './paths.js';
import { AbortWait, ServiceProcess, waitFor } from './process.js';

export interface NatsOptions {
  /** Port to listen on; default: one the server picks (no race with other tests). */
  port?: number;
  /** JetStream store directory; default: a fresh temp dir. Reuse it to restart with the same data. */
  storeDir?: string;
  /** Extra nats-server arguments. */
  args?: string[];
  timeoutMs?: number;
}

export interface NatsServer {
  /** nats://127.0.0.1:PORT */
  url: string;
  port: number;
  storeDir: string;
  process: ServiceProcess;
  /** SIGTERM, wait for exit, remove the store dir if the harness created it. */
  stop(): Promise<void>;
  /** SIGKILL (fault tests); the store dir is kept for restart(). */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same store; updates `process`. */
  restart(): Promise<void>;
}

let serial = 0;

export async function startNats(opts: NatsOptions = {}): Promise<NatsServer> {
  const ownStore = opts.storeDir === undefined ? makeTempDir('cistern-nats-') : undefined;
  const storeDir = opts.storeDir ?? join(ownStore!.path, 'store');
  mkdirSync(storeDir, { recursive: true });
  const name = `cistern-test-${process.pid}-${++serial}`;

  const launch = async (port: number | undefined): Promise<{ proc: ServiceProcess; port: number }> => {
    const proc = ServiceProcess.spawn({
      name: 'nats-server',
      command: natsServerBinary(),
      args: ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port ?? -1), '-n', name, ...(opts.args ?? [])],
    });
    const found = await waitFor(
      'nats-server to be ready',
      () => {
        const logs = proc.logs();
        if (!proc.alive) {
          throw new AbortWait(new Error(`nats-server exited (${JSON.stringify(proc.exitStatus)}) before it was ready\n${proc.logTail()}`));
        }
        if (!logs.includes('Server is ready')) return undefined;
        const m = /Listening for client connections on [^\s]*:(\d+)/.exec(logs);
        return m ? Number(m[1]) : undefined;
      },
      { timeoutMs: opts.timeoutMs ?? 20_000, intervalMs: 25, context: () => proc.logTail() },
    );
    return { proc, port: found };
  };

  let { proc, port } = await launch(opts.port);
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: proc,
    stop: async () => {
      await unregister();
    },
    kill: async () => {
      await server.process.kill();
      await server.process.dispose();
    },
    restart: async () => {
      await server.process.dispose();
      ({ proc } = await launch(port));
      server.process = proc;
    },
  };
  const unregister = registerCleanup(`nats-server ${server.url}`, async () => {
    await server.process.dispose();
    await ownStore?.remove();
  });
  return server;
}
