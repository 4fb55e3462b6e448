// A secured fleet for the security tests: nats-server with the per-agent users of
// scripts/nats-config.mjs, a coordinator with TLS (optional), tokens and a secret key,
// agents with their own NATS credentials. Everything is registered for cleanup.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { makeTempDir, registerCleanup } from '../support/cleanup.js';
import { connectClient, promiseApi, waitForHosts, type StorageApi } from '../support/client.js';
import { startNats, type NatsServer } from '../support/nats.js';
import { repoRoot } from '../support/paths.js';
import { runningProcesses } from '../support/process.js';
import { startAgent, startCoordinator, type AgentHandle, type CoordinatorHandle } from '../support/services.js';
import type { StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';

export interface FleetOptions {
  hosts?: string[];
  /** TLS on the gRPC port with certificates from scripts/make-certs.sh. */
  tls?: boolean;
  /** mutual TLS (implies tls). */
  mtls?: boolean;
  /** bearer tokens (admin, operator, viewer). */
  tokens?: boolean;
  coordinatorArgs?: string[];
  /** Extra environment of the agents (e.g. PATH with a wrapper recording qemu-img's argv). */
  agentEnv?: NodeJS.ProcessEnv;
}

export interface SecureFleet {
  dir: string;
  nats: NatsServer;
  natsUrl: string;
  /** users and password files of nats-config.mjs */
  natsPassFile(user: string): string;
  natsPass(user: string): string;
  coordinator: CoordinatorHandle;
  agents: Map<string, AgentHandle>;
  /** files of make-certs.sh (ca.crt, server.crt, client.crt, tokens.json, admin.token ...) */
  certs: string;
  tokens: Record<'admin' | 'operator' | 'viewer', string>;
  credentials: ChannelCredentials;
  /** a client with the admin token */
  api: StorageApi;
  client: StorageServiceClient;
  apiAs(token: string | undefined): StorageApi;
  logs(): string;
  stop(): Promise<void>;
}

/** scripts/make-certs.sh as the README runs it: by a relative path from the repository root. */
export function makeCerts(out: string, hosts: string[]): void {
  execFileSync('bash', ['scripts/make-certs.sh', '--out', out, '--hosts', hosts.join(',')], { cwd: repoRoot, stdio: 'pipe' });
}

export async function startSecureFleet(opts: FleetOptions = {}): Promise<SecureFleet> {
  const hosts = opts.hosts ?? ['a', 'b'];
  const tmp = makeTempDir('cistern-secure-');
  const dir = tmp.path;
  const certs = join(dir, 'certs');
  makeCerts(certs, hosts);
  const natsDir = join(certs, 'nats');
  const tokens = {
    admin: readFileSync(join(certs, 'admin.token'), 'utf8').trim(),
    operator: readFileSync(join(certs, 'operator.token'), 'utf8').trim(),
    viewer: readFileSync(join(certs, 'viewer.token'), 'utf8').trim(),
  };
  const tls = opts.tls || opts.mtls;
  const credentials = tls
    ? grpcCredentials.createSsl(
        readFileSync(join(certs, 'ca.crt')),
        opts.mtls ? readFileSync(join(certs, 'client.key')) : null,
        opts.mtls ? readFileSync(join(certs, 'client.crt')) : null,
      )
    : grpcCredentials.createInsecure();
  const parts: { nats?: NatsServer; coordinator?: CoordinatorHandle; agents: Map<string, AgentHandle>; clients: StorageServiceClient[] } = {
    agents: new Map(),
    clients: [],
  };
  const unregister = registerCleanup('secure fleet', async () => {
    for (const c of parts.clients) c.close();
    await Promise.allSettled([...parts.agents.values()].map((a) => a.stop()));
    await parts.coordinator?.stop();
    await parts.nats?.stop();
    await tmp.remove();
  });
  try {
    parts.nats = await startNats({ args: ['-c', join(natsDir, 'nats-auth.conf')] });
    const natsUrl = parts.nats.url;
    const passFile = (user: string) => join(natsDir, `${user}.pass`);
    const args = [
      '--nats-user', 'coordinator', '--nats-pass-file', passFile('coordinator'),
      '--secret-key-file', join(certs, 'secret.key'),
      ...(opts.tokens ? ['--tokens', join(certs, 'tokens.json')] : []),
      ...(tls ? ['--tls-cert', join(certs, 'server.crt'), '--tls-key', join(certs, 'server.key')] : []),
      ...(opts.mtls ? ['--tls-client-ca', join(certs, 'ca.crt')] : []),
      ...(opts.coordinatorArgs ?? []),
    ];
    parts.coordinator = await startCoordinator({ natsUrl, args, credentials, token: opts.tokens ? tokens.admin : undefined });
    const apiAs = (token: string | undefined): StorageApi => {
      const client = connectClient(parts.coordinator!.address, { credentials });
      parts.clients.push(client);
      return promiseApi(client, token ? { metadata: { authorization: `Bearer ${token}` } } : {});
    };
    const client = connectClient(parts.coordinator.address, { credentials });
    parts.clients.push(client);
    const api = promiseApi(client, opts.tokens ? { metadata: { authorization: `Bearer ${tokens.admin}` } } : {});
    await Promise.all(
      hosts.map(async (h) => {
        const agent = await startAgent({ natsUrl, hostId: h, api, env: opts.agentEnv, args: ['--nats-user', `agent-${h}`, '--nats-pass-file', passFile(`agent-${h}`)] });
        parts.agents.set(h, agent);
      }),
    );
    await waitForHosts(api, hosts);
    return {
      dir,
      nats: parts.nats,
      natsUrl,
      natsPassFile: passFile,
      natsPass: (user) => readFileSync(passFile(user), 'utf8').trim(),
      coordinator: parts.coordinator,
      agents: parts.agents,
      certs,
      tokens,
      credentials,
      api,
      client,
      apiAs,
      logs: () => runningProcesses().map((p) => p.logs()).join('\n'),
      stop: unregister,
    };
  } catch (err) {
    await unregister().catch(() => undefined);
    throw err;
  }
}

/** Writes a file readable by its owner only. */
export function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}
