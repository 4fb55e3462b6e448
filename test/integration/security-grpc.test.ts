// The gRPC port, attacked: TLS and mutual TLS, bearer tokens and roles, open health and
// reflection, per-client limits, message and upload limits, audit lines, cisternctl with
// token and CA, and the rule that plaintext stays on loopback.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Client, credentials as grpcCredentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import {
  CreateVolumeRequest,
  DefinePoolRequest,
  Event,
  ListPoolsRequest,
  PoolDefinition,
  PoolType,
  Secret,
  SessionRequest,
  SecretUsageType,
  StorageServiceClient,
  VolumeDefinition,
} from '../../libs/proto/cistern/v1/storage.js';
import { StorageSession } from '../../libs/api/session-client.js';
import type { CisternError } from '../../libs/errors/errors.js';
import { runCli } from '../support/cli.js';
import { rawSession } from '../support/raw-session.js';
import { unfinishedCall, type UnfinishedCall } from '../support/unfinished-call.js';
import { connectClient, promiseApi } from '../support/client.js';
import { freePort } from '../support/ports.js';
import { AbortWait, ServiceProcess, waitFor } from '../support/process.js';
import { entryPoints } from '../support/paths.js';
import { startSecureFleet, type SecureFleet } from '../security/fleet.js';
import { documentedMethodRoles } from '../support/security-doc.js';

const codeOf = async (p: Promise<unknown>): Promise<{ code: number; message: string }> => {
  const err = (await p.then(() => undefined, (e) => e)) as ServiceError | undefined;
  if (!err) return { code: 0, message: '' };
  return { code: err.code, message: err.details ?? err.message };
};

/** grpc.health.v1.Health/Check for `service` without credentials: the serving status number. */
function healthCheck(address: string, creds = grpcCredentials.createInsecure(), service = ''): Promise<number> {
  const client = new Client(address, creds);
  const req = service ? Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]) : Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      req,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res && res.length >= 2 ? res[1]! : 0);
      },
    );
  });
}

/**
 * StorageService/`method` with an empty request message (every field at its default), as the
 * holder of `token`: the status it ends with. Authorization comes before the request is read,
 * so a refused call is refused whatever it asks.
 */
function emptyCall(client: Client, method: string, token: string): Promise<{ code: number; message: string }> {
  const path = `/cistern.v1.StorageService/${method}`;
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const opts = { deadline: Date.now() + 30_000 };
  const id = (b: Buffer) => b;
  return new Promise<{ code: number; message: string }>((resolve) => {
    const done = (err: ServiceError | null) => resolve(err ? { code: err.code, message: err.details } : { code: 0, message: '' });
    if (method === 'UploadVolume') {
      client.makeClientStreamRequest(path, id, id, md, opts, (err) => done(err)).end();
    } else if (method === 'DownloadVolume' || method === 'WatchEvents') {
      const call = client.makeServerStreamRequest(path, id, id, Buffer.alloc(0), md, opts);
      call.on('data', () => call.cancel()); // let through: the test fails on the code below
      call.on('error', (e: ServiceError) => done(e));
      call.on('end', () => done(null));
    } else {
      client.makeUnaryRequest(path, id, id, Buffer.alloc(0), md, opts, (err) => done(err));
    }
  });
}

/** grpc.reflection.v1alpha list_services, without credentials: the response bytes as text. */
function reflectionList(address: string, creds = grpcCredentials.createInsecure()): Promise<string> {
  const client = new Client(address, creds);
  return new Promise((resolve, reject) => {
    const call = client.makeBidiStreamRequest(
      '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
      (b: Buffer) => b,
      (b: Buffer) => b,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    call.on('data', (b: Buffer) => {
      resolve(b.toString('latin1'));
      call.cancel();
      client.close();
    });
    call.on('error', (e: ServiceError) => (e.code === status.CANCELLED ? undefined : reject(e)));
    call.write(Buffer.from([0x3a, 0x01, 0x2a])); // list_services: "*"
  });
}

describe('security: gRPC authentication, roles, TLS and limits', function () {
  this.timeout(180_000);

  describe('TLS + bearer tokens', () => {
    let fleet: SecureFleet;
    let ca: Buffer;
    const withToken = (token: string) => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${token}`);
      return { metadata: md };
    };
    before(async function () {
      this.timeout(180_000);
      fleet = await startSecureFleet({ hosts: ['a'], tokens: true, tls: true, coordinatorArgs: ['--max-calls-per-client', '3', '--max-sessions-per-client', '2'] });
      ca = readFileSync(join(fleet.certs, 'ca.crt'));
      await fleet.api.definePool(
        DefinePoolRequest.fromPartial({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: join(fleet.dir, 'p') } }) }),
      );
      await fleet.api.startPool({ name: 'hosts/a/pools/p', build: true, buildFlags: undefined, requestId: '' });
    });
    after(async () => fleet?.stop());

    it('refuses calls without a token, with an unknown one, or a malformed header: UNAUTHENTICATED', async () => {
      const anon = fleet.apiAs(undefined);
      const none = await codeOf(anon.listPools(ListPoolsRequest.fromPartial({})));
      expect(none.code).to.equal(status.UNAUTHENTICATED);
      expect(none.message).to.match(/authorization: Bearer/);
      const bad = await codeOf(anon.listPools(ListPoolsRequest.fromPartial({}), withToken('x'.repeat(40))));
      expect(bad.code).to.equal(status.UNAUTHENTICATED);
      expect(bad.message).to.not.include('x'.repeat(20)); // the token is never echoed
      const md = new Metadata();
      md.set('authorization', `Basic ${fleet.tokens.admin}`);
      const basic = await codeOf(anon.listPools(ListPoolsRequest.fromPartial({}), { metadata: md }));
      expect(basic.code).to.equal(status.UNAUTHENTICATED);
      expect(basic.message).to.not.include(fleet.tokens.admin);
      // a principal claimed in metadata counts for nothing with tokens on
      const claim = new Metadata();
      claim.set('x-cistern-principal', 'admin');
      expect((await codeOf(anon.listPools(ListPoolsRequest.fromPartial({}), { metadata: claim }))).code).to.equal(status.UNAUTHENTICATED);
    });

    it('maps tokens to roles: beyond its role PERMISSION_DENIED naming the role needed', async () => {
      const viewer = fleet.apiAs(fleet.tokens.viewer);
      const operator = fleet.apiAs(fleet.tokens.operator);
      expect((await viewer.listPools(ListPoolsRequest.fromPartial({}))).pools).to.have.length(1);
      const create = CreateVolumeRequest.fromPartial({ parent: 'hosts/a/pools/p', definition: VolumeDefinition.fromPartial({ name: 'v', capacity: 4096n }) });
      const asViewer = await codeOf(viewer.createVolume(create));
      expect(asViewer.code).to.equal(status.PERMISSION_DENIED);
      expect(asViewer.message).to.match(/CreateVolume needs role 'operator'; principal 'viewer' has role 'viewer'/);
      const vol = await operator.createVolume(create);
      expect(vol.name).to.equal('hosts/a/pools/p/volumes/v');
      const stop = await codeOf(operator.stopPool({ name: 'hosts/a/pools/p', requestId: '' } as never));
      expect(stop.code).to.equal(status.PERMISSION_DENIED);
      expect(stop.message).to.match(/needs role 'admin'/);
      const secrets = await codeOf(operator.listSecrets({ pageSize: 0, pageToken: '' }));
      expect(secrets.code).to.equal(status.PERMISSION_DENIED);
      // refresh is operator work; admin may do everything
      await operator.refreshPool({ name: 'hosts/a/pools/p', requestId: '' } as never);
      const secret = await fleet.api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: 'iqn.roles:t' }), xml: '', requestId: '', validate: false });
      expect((await fleet.api.listSecrets({ pageSize: 0, pageToken: '' })).secrets.map((s) => s.name)).to.deep.equal([secret.name]);
      await fleet.api.undefineSecret({ name: secret.name, requestId: '' });
      // every mutating call is one audit line with principal, method, resource, code, duration
      const audit = fleet.coordinator.process
        .logs()
        .split('\n')
        .filter((l) => l.includes('"msg":"audit"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const created = audit.find((a) => a.method === 'CreateVolume' && a.code === 'OK');
      expect(created).to.include({ principal: 'operator', resource: 'hosts/a/pools/p' });
      expect(created!.time).to.be.a('string');
      expect(created!.durationMs).to.be.a('number');
      expect(audit.some((a) => a.method === 'CreateVolume' && a.principal === 'viewer' && a.code === 'PERMISSION_DENIED')).to.equal(true);
      expect(audit.some((a) => a.method === 'StopPool' && a.code === 'PERMISSION_DENIED')).to.equal(true);
    });

    it('refuses a viewer every method above viewer, and an operator every admin method, as docs/security.md lists them', async () => {
      const roles = documentedMethodRoles();
      const above = (role: 'viewer' | 'operator') => [...roles].filter(([, r]) => (role === 'viewer' ? r !== 'viewer' : r === 'admin'));
      // the ones whose loss would hurt most, so that a shrunken table cannot empty this test
      const admin = above('operator').map(([m]) => m);
      for (const m of ['DeletePool', 'UndefinePool', 'DefinePool', 'BuildPool', 'SetPoolAutostart', 'DeleteHost', 'DefineSecret']) expect(admin).to.include(m);
      const operatorWork = above('viewer').map(([m]) => m);
      for (const m of ['DownloadVolume', 'UploadVolume', 'WipeVolume', 'DeleteVolume', ...admin]) expect(operatorWork).to.include(m);
      for (const [who, token] of [['viewer', fleet.tokens.viewer], ['operator', fleet.tokens.operator]] as const) {
        for (const [method, needed] of above(who)) {
          const r = await emptyCall(fleet.client, method, token);
          expect(status[r.code], `${method} as ${who}: ${r.message}`).to.equal('PERMISSION_DENIED');
          expect(r.message).to.equal(`${method} needs role '${needed}'; principal '${who}' has role '${who}'`);
        }
      }
    });

    it("a Session's calls: each authenticated by the stream's token, authorized by its own method's role, audited as that method", async () => {
      const sessionAs = (token: string | undefined): StorageSession =>
        new StorageSession(fleet.client, () => {
          const md = new Metadata();
          if (token) md.set('authorization', `Bearer ${token}`);
          return md;
        });
      const anon = sessionAs(undefined);
      const none = await anon.call('listPools', ListPoolsRequest.fromPartial({})).then(() => undefined, (e: CisternError) => e);
      expect(none?.code).to.equal('UNAUTHENTICATED');
      expect(none?.message).to.match(/authorization: Bearer/);
      anon.close();
      const viewer = sessionAs(fleet.tokens.viewer);
      expect((await viewer.call('listPools', ListPoolsRequest.fromPartial({}))).pools).to.have.length(1);
      const create = CreateVolumeRequest.fromPartial({ parent: 'hosts/a/pools/p', definition: VolumeDefinition.fromPartial({ name: 'sv', capacity: 4096n }) });
      const denied = await viewer.call('createVolume', create).then(() => undefined, (e: CisternError) => e);
      expect(denied?.code).to.equal('PERMISSION_DENIED');
      expect(denied?.message).to.match(/CreateVolume needs role 'operator'; principal 'viewer' has role 'viewer'/);
      // the stream goes on after a refused call
      expect((await viewer.call('getPool', { name: 'hosts/a/pools/p' })).name).to.equal('hosts/a/pools/p');
      viewer.close();
      const operator = sessionAs(fleet.tokens.operator);
      expect((await operator.call('createVolume', create)).name).to.equal('hosts/a/pools/p/volumes/sv');
      await operator.call('deleteVolume', { name: 'hosts/a/pools/p/volumes/sv', requestId: '' });
      operator.close();
      const audit = fleet.coordinator.process
        .logs()
        .split('\n')
        .filter((l) => l.includes('"msg":"audit"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(audit.some((a) => a.method === 'CreateVolume' && a.principal === 'viewer' && a.code === 'PERMISSION_DENIED' && a.resource === 'hosts/a/pools/p')).to.equal(true);
      expect(audit.some((a) => a.method === 'CreateVolume' && a.principal === 'operator' && a.code === 'OK' && a.resource === 'hosts/a/pools/p')).to.equal(true);
      expect(audit.some((a) => a.method === 'DeleteVolume' && a.principal === 'operator' && a.code === 'OK')).to.equal(true);
    });

    it('a Session is authenticated as it opens: without a token it ends UNAUTHENTICATED, none of its messages answered', async () => {
      const anon = rawSession(fleet);
      // a request with no call would be answered INVALID_ARGUMENT by its id on an admitted stream
      anon.stream.write(SessionRequest.fromPartial({ id: 1n }));
      anon.stream.end();
      const ended = await anon.ended;
      expect(ended?.code).to.equal(status.UNAUTHENTICATED);
      expect(ended?.details).to.match(/authorization: Bearer/);
      expect(anon.answers).to.deep.equal([]);
    });

    it("limits a client's open Session streams: RESOURCE_EXHAUSTED beyond them, others still served, room again once one ends", async () => {
      const sessionAs = (token: string): StorageSession =>
        new StorageSession(fleet.client, () => {
          const md = new Metadata();
          md.set('authorization', `Bearer ${token}`);
          return md;
        });
      const open: StorageSession[] = [];
      try {
        // two idle sessions of the viewer (the limit is 2), each admitted (it answered a call)
        for (let i = 0; i < 2; i++) {
          const s = sessionAs(fleet.tokens.viewer);
          open.push(s);
          expect((await s.call('getPool', { name: 'hosts/a/pools/p' })).name).to.equal('hosts/a/pools/p');
        }
        const third = sessionAs(fleet.tokens.viewer);
        open.push(third);
        const over = await third.call('getPool', { name: 'hosts/a/pools/p' }).then(() => undefined, (e: CisternError) => e);
        expect(over?.code).to.equal('RESOURCE_EXHAUSTED');
        expect(over?.message).to.match(/too many open Session streams from this client \(2 allowed\)/);
        // another principal is not affected
        const operator = sessionAs(fleet.tokens.operator);
        open.push(operator);
        expect((await operator.call('getPool', { name: 'hosts/a/pools/p' })).name).to.equal('hosts/a/pools/p');
        // room again once one ends
        open.shift()!.close();
        await waitFor('a new viewer session to be admitted', async () => {
          const again = sessionAs(fleet.tokens.viewer);
          open.push(again);
          const ok = await again.call('getPool', { name: 'hosts/a/pools/p' }).then(() => true, () => false);
          if (!ok) again.close();
          return ok || undefined;
        }, { timeoutMs: 10_000, intervalMs: 50 });
      } finally {
        for (const s of open) s.close();
      }
    });

    it('keeps health and reflection open, over TLS only', async () => {
      const tls = grpcCredentials.createSsl(ca);
      expect(await healthCheck(fleet.coordinator.address, tls)).to.equal(1); // SERVING
      expect(await healthCheck(fleet.coordinator.address, tls, 'cistern.v1.StorageService')).to.equal(1);
      expect(await reflectionList(fleet.coordinator.address, tls)).to.include('cistern.v1.StorageService');
      // a plaintext client does not get through to a TLS port
      const plain = await codeOf(healthCheck(fleet.coordinator.address));
      expect(plain.code).to.equal(status.UNAVAILABLE);
      // nor does a client that does not trust the CA
      const untrusted = await codeOf(healthCheck(fleet.coordinator.address, grpcCredentials.createSsl()));
      expect(untrusted.code).to.equal(status.UNAVAILABLE);
    });

    it('cisternctl takes the token and CA from flags or the environment', async () => {
      const server = fleet.coordinator.address;
      const caFile = join(fleet.certs, 'ca.crt');
      const byFlags = await runCli(['--ca', caFile, '--token', fleet.tokens.viewer, 'pool-list', '--all'], { server });
      expect(byFlags.code, byFlags.stderr).to.equal(0);
      expect(byFlags.stdout).to.match(/\bp\b/);
      const byEnv = await runCli(['pool-list', '--all'], { server, env: { CISTERN_CA: caFile, CISTERN_TOKEN: fleet.tokens.viewer } });
      expect(byEnv.code, byEnv.stderr).to.equal(0);
      const noToken = await runCli(['pool-list', '--all'], { server, env: { CISTERN_CA: caFile, CISTERN_TOKEN: '' } });
      expect(noToken.code).to.not.equal(0);
      expect(noToken.stderr).to.match(/authenticat|token/i);
      const viewerWrites = await runCli(['vol-create-as', 'a/p', 'w', '1M'], { server, env: { CISTERN_CA: caFile, CISTERN_TOKEN: fleet.tokens.viewer } });
      expect(viewerWrites.code).to.not.equal(0);
      expect(viewerWrites.stderr).to.match(/operator/);
    });

    it('cisternctl to an IP address: nothing on stderr (no SNI, so no DEP0123), the certificate still checked against the IP', async () => {
      const server = fleet.coordinator.address;
      expect(server).to.match(/^127\.0\.0\.1:\d+$/);
      const caFile = join(fleet.certs, 'ca.crt');
      const env = { CISTERN_CA: caFile, CISTERN_TOKEN: fleet.tokens.viewer };
      for (const argv of [['host-list'], ['pool-list', '--all'], ['pool-info', 'p']]) {
        const r = await runCli(argv, { server, env });
        expect(r.code, r.stderr).to.equal(0);
        expect(r.stderr, argv.join(' ')).to.equal('');
      }

      // What reaches a TLS server on 127.0.0.1: no server name; and a certificate from the same
      // CA without 127.0.0.1 among its names is refused.
      const dir = join(fleet.dir, 'sni');
      mkdirSync(dir, { recursive: true });
      execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'dns.key'),
        '-out', join(dir, 'dns.csr'), '-subj', '/CN=elsewhere'], { stdio: 'pipe' });
      writeFileSync(join(dir, 'dns.ext'), 'subjectAltName=DNS:elsewhere.example\n');
      execFileSync('openssl', ['x509', '-req', '-in', join(dir, 'dns.csr'), '-CA', caFile, '-CAkey', join(fleet.certs, 'ca.key'),
        '-CAcreateserial', '-CAserial', join(dir, 'ca.srl'), '-out', join(dir, 'dns.crt'), '-days', '2', '-extfile', join(dir, 'dns.ext')], { stdio: 'pipe' });
      const servernames: Array<string | false | null> = [];
      const listen = async (cert: string, key: string): Promise<TlsServer> => {
        const tls = createTlsServer({ cert: readFileSync(cert), key: readFileSync(key), ALPNProtocols: ['h2'] }, (socket) => {
          if (cert.endsWith('server.crt')) servernames.push(socket.servername);
          socket.destroy();
        });
        tls.on('tlsClientError', () => undefined);
        await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
        return tls;
      };
      const servers = [await listen(join(fleet.certs, 'server.crt'), join(fleet.certs, 'server.key')), await listen(join(dir, 'dns.crt'), join(dir, 'dns.key'))];
      try {
        const [good, wrongName] = servers.map((t) => `127.0.0.1:${(t.address() as AddressInfo).port}`);
        const reached = await runCli(['host-list'], { server: good!, env });
        expect(reached.code).to.equal(1);
        expect(reached.stderr).to.not.match(/DEP0123|DeprecationWarning/);
        expect(servernames).to.deep.equal([false]); // the handshake completed, without SNI
        const refused = await runCli(['host-list'], { server: wrongName!, env });
        expect(refused.code).to.equal(1);
        expect(refused.stderr).to.match(/IP: 127\.0\.0\.1 is not in the cert's list/);
      } finally {
        for (const t of servers) t.close();
      }
    });

    it('limits concurrent calls per client: RESOURCE_EXHAUSTED for that client, others still served', async () => {
      const client = connectClient(fleet.coordinator.address, { credentials: fleet.credentials });
      const watches: Array<{ cancel(): void }> = [];
      try {
        // three long-lived calls of the viewer (the limit is 3), each running (an event arrived)
        for (let i = 0; i < 3; i++) {
          await new Promise<void>((resolve, reject) => {
            const call = client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: true }, withToken(fleet.tokens.viewer).metadata);
            watches.push(call);
            call.once('data', (_e: Event) => resolve());
            call.on('error', (e: ServiceError) => (e.code === status.CANCELLED ? undefined : reject(e)));
          });
        }
        const viewer = promiseApi(client, { metadata: { authorization: `Bearer ${fleet.tokens.viewer}` } });
        const over = await codeOf(viewer.listPools(ListPoolsRequest.fromPartial({})));
        expect(over.code).to.equal(status.RESOURCE_EXHAUSTED);
        expect(over.message).to.match(/too many concurrent calls/);
        // another principal is not affected
        expect((await fleet.api.listPools(ListPoolsRequest.fromPartial({}))).pools).to.have.length(1);
        // room again once one ends
        watches.pop()!.cancel();
        await waitFor('the viewer to be admitted again', async () => (await codeOf(viewer.listPools(ListPoolsRequest.fromPartial({})))).code === 0 || undefined, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
      } finally {
        for (const w of watches) w.cancel();
        client.close();
      }
    });

    it('refuses a call before reading its request: no token, a role too low, a client at its limit, while the message is still coming', async () => {
      // 16 MiB messages, read whole before the token was looked at: 60 such calls without any
      // token took the coordinator from 90 MB to 1.1 GB of memory, and a viewer's were not
      // counted against its limit until read. Each call here announces 1 MiB and sends 64 bytes
      const service = '/cistern.v1.StorageService';
      const open: UnfinishedCall[] = [];
      const call = (method: string, token?: string): UnfinishedCall => {
        const c = unfinishedCall({ address: fleet.coordinator.address, ca, path: `${service}/${method}`, metadata: token ? { authorization: `Bearer ${token}` } : {} });
        open.push(c);
        return c;
      };
      try {
        const anon = await call('GetPool').ended;
        expect(anon.code, anon.message).to.equal(status.UNAUTHENTICATED);
        expect(anon.message).to.match(/authorization: Bearer/);
        const denied = await call('CreateVolume', fleet.tokens.viewer).ended;
        expect(denied.code, denied.message).to.equal(status.PERMISSION_DENIED);
        expect(denied.message).to.equal("CreateVolume needs role 'operator'; principal 'viewer' has role 'viewer'");
        // the refusal is audited, without a resource: the request was never read
        const audit = fleet.coordinator.process
          .logs()
          .split('\n')
          .filter((l) => l.includes('"msg":"audit"'))
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(audit.some((a) => a.method === 'CreateVolume' && a.principal === 'viewer' && a.code === 'PERMISSION_DENIED' && a.resource === '')).to.equal(true);
        // three unfinished reads of the viewer hold its three call slots (--max-calls-per-client 3)
        const held = [0, 1, 2].map(() => call('GetPool', fleet.tokens.viewer));
        const viewer = fleet.apiAs(fleet.tokens.viewer);
        const over = await waitFor(
          "the viewer's unfinished calls to hold its slots",
          async () => {
            const r = await codeOf(viewer.listPools(ListPoolsRequest.fromPartial({})));
            return r.code === status.RESOURCE_EXHAUSTED ? r : undefined;
          },
          { timeoutMs: 10_000, intervalMs: 100 },
        );
        expect(over.message).to.match(/too many concurrent calls/);
        // another principal is served meanwhile; the viewer again once they end
        expect((await fleet.api.listPools(ListPoolsRequest.fromPartial({}))).pools).to.have.length(1);
        for (const c of held) c.close();
        await waitFor('the viewer to be admitted again', async () => (await codeOf(viewer.listPools(ListPoolsRequest.fromPartial({})))).code === 0 || undefined, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
      } finally {
        for (const c of open) c.close();
      }
    });

    it('limits the calls one address holds open on health and reflection, which need no token: RESOURCE_EXHAUSTED beyond them, room again once they end', async () => {
      // health and reflection are open to anyone, and grpc-js reads each of their request
      // messages whole: 100 calls without any token, each sending 4 MiB but one byte, took the
      // coordinator up 490 MB (Check, Watch, and either reflection version alike), without bound
      const open: UnfinishedCall[] = [];
      const held = (path: string, deadlineSeconds = 60): UnfinishedCall => {
        const c = unfinishedCall({ address: fleet.coordinator.address, ca, path, announced: 1024 * 1024, deadlineSeconds });
        open.push(c);
        return c;
      };
      try {
        // --max-calls-per-client 3: three unfinished requests, of the health and both reflection services
        const three = ['/grpc.health.v1.Health/Check', '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo'].map((p) => held(p));
        await Promise.all(three.map((c) => c.written));
        // a fourth from the same address is refused as its headers arrive, before its message is read
        // (unrefused, it would wait for the rest of the message until its deadline)
        for (const path of ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/Watch', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo']) {
          const over = await held(path, 20).ended;
          expect(status[over.code], `${path}: ${over.message}`).to.equal('RESOURCE_EXHAUSTED');
          expect(over.message).to.equal('too many concurrent health or reflection calls from this address (3 allowed); retry when some finish');
        }
        // the StorageService calls of a principal are counted apart
        expect((await fleet.apiAs(fleet.tokens.viewer).listPools(ListPoolsRequest.fromPartial({}))).pools).to.have.length(1);
        for (const c of three) c.close();
        const tls = grpcCredentials.createSsl(ca);
        await waitFor('health to answer again', async () => ((await healthCheck(fleet.coordinator.address, tls).catch(() => 0)) === 1) || undefined, {
          timeoutMs: 10_000,
          intervalMs: 50,
        });
      } finally {
        for (const c of open) c.close();
      }
    });

    it('refuses oversized messages and uploads beyond their declared length: RESOURCE_EXHAUSTED, service stays up', async () => {
      const huge = 'x'.repeat(17 * 1024 * 1024);
      const big = await codeOf(fleet.api.definePool(DefinePoolRequest.fromPartial({ host: 'a', xml: huge })));
      expect(big.code).to.equal(status.RESOURCE_EXHAUSTED);
      const vol = 'hosts/a/pools/p/volumes/v';
      const over = await new Promise<ServiceError | undefined>((resolve) => {
        const call = fleet.client.uploadVolume(withToken(fleet.tokens.operator).metadata, (err) => resolve(err ?? undefined));
        call.write({ part: { $case: 'header', value: { name: vol, offset: 0n, length: 1000n, sparse: false, requestId: '' } } });
        call.write({ part: { $case: 'data', value: Buffer.alloc(800, 1) } });
        call.write({ part: { $case: 'data', value: Buffer.alloc(800, 2) } });
        call.end();
      });
      expect(over?.code).to.equal(status.RESOURCE_EXHAUSTED);
      expect(over?.details).to.match(/declared length of 1000/);
      // everyone is still served
      expect((await fleet.apiAs(fleet.tokens.viewer).getVolume({ name: vol, refresh: false })).name).to.equal(vol);
    });
  });

  describe('mutual TLS', () => {
    let fleet: SecureFleet;
    before(async function () {
      this.timeout(180_000);
      fleet = await startSecureFleet({ hosts: ['a'], tokens: true, mtls: true });
    });
    after(async () => fleet?.stop());

    it('admits only clients with a certificate from the CA', async () => {
      const ca = readFileSync(join(fleet.certs, 'ca.crt'));
      expect((await fleet.api.listHosts({ pageSize: 0, pageToken: '' })).hosts.map((h) => h.hostId)).to.deep.equal(['a']);
      const noCert = new StorageServiceClient(fleet.coordinator.address, grpcCredentials.createSsl(ca));
      try {
        const r = await codeOf(promiseApi(noCert, { metadata: { authorization: `Bearer ${fleet.tokens.admin}` } }).listHosts({ pageSize: 0, pageToken: '' }, { deadlineMs: 10_000 }));
        expect(r.code).to.equal(status.UNAVAILABLE);
      } finally {
        noCert.close();
      }
      const cli = await runCli(
        ['--ca', join(fleet.certs, 'ca.crt'), '--cert', join(fleet.certs, 'client.crt'), '--key', join(fleet.certs, 'client.key'), 'host-list'],
        { server: fleet.coordinator.address, env: { CISTERN_TOKEN: fleet.tokens.viewer } },
      );
      expect(cli.code, cli.stderr).to.equal(0);
      expect(cli.stdout).to.match(/\ba\b/);
    });
  });

  describe('without a token file or TLS', () => {
    let fleet: SecureFleet;
    before(async function () {
      this.timeout(180_000);
      fleet = await startSecureFleet({ hosts: ['a'] });
    });
    after(async () => fleet?.stop());

    it('lets callers in on loopback and says so loudly in the log', async () => {
      expect((await fleet.apiAs(undefined).listHosts({ pageSize: 0, pageToken: '' })).hosts).to.have.length(1);
      expect(fleet.coordinator.process.logs()).to.match(/"level":"warn".*AUTHENTICATION IS OFF/);
    });

    it('refuses to start with a token file that group or others can read: exit 2 naming the mode', async () => {
      const tokens = join(fleet.dir, 'tokens-0644.json');
      writeFileSync(tokens, readFileSync(join(fleet.certs, 'tokens.json')));
      chmodSync(tokens, 0o644);
      const refused = ServiceProcess.spawn({
        name: 'coordinator (tokens mode 644)',
        command: process.execPath,
        args: [entryPoints.coordinator, '--nats', fleet.natsUrl, '--listen', `127.0.0.1:${await freePort()}`, '--tokens', tokens,
          '--nats-user', 'coordinator', '--nats-pass-file', fleet.natsPassFile('coordinator')],
      });
      try {
        await waitFor('the coordinator to refuse', () => (refused.alive ? undefined : true), { timeoutMs: 30_000, intervalMs: 50 });
        expect(refused.exitStatus?.code).to.equal(2);
        expect(refused.logs()).to.include(`${tokens} is accessible by group or others (mode 644); chmod 600 it`);
      } finally {
        await refused.dispose();
      }
    });

    it('refuses a non-loopback address without TLS unless --insecure, which warns', async () => {
      const port = await freePort();
      const refused = ServiceProcess.spawn({
        name: 'coordinator (0.0.0.0, plaintext)',
        command: process.execPath,
        args: [entryPoints.coordinator, '--nats', fleet.natsUrl, '--listen', `0.0.0.0:${port}`, '--nats-user', 'coordinator', '--nats-pass-file', fleet.natsPassFile('coordinator')],
      });
      try {
        await waitFor('the coordinator to refuse', () => (refused.alive ? undefined : true), { timeoutMs: 30_000, intervalMs: 50 });
        expect(refused.exitStatus?.code).to.equal(2);
        expect(refused.logs()).to.match(/not a loopback address and TLS is not configured/);
      } finally {
        await refused.dispose();
      }
      const insecure = ServiceProcess.spawn({
        name: 'coordinator (0.0.0.0, --insecure)',
        command: process.execPath,
        args: [entryPoints.coordinator, '--nats', fleet.natsUrl, '--listen', `0.0.0.0:${port}`, '--insecure', '--nats-user', 'coordinator', '--nats-pass-file', fleet.natsPassFile('coordinator')],
      });
      try {
        await waitFor(
          'the insecure coordinator to serve',
          () => {
            if (!insecure.alive) throw new AbortWait(new Error(insecure.logTail()));
            return /coordinator serving/.test(insecure.logs()) || undefined;
          },
          { timeoutMs: 30_000, intervalMs: 50 },
        );
        expect(insecure.logs()).to.match(/"level":"warn".*WITHOUT TLS \(--insecure\)/);
      } finally {
        await insecure.dispose();
      }
    });
  });
});
