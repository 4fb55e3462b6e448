// Health checking while the coordinator is cut off from NATS (real nats-server, coordinator,
// agent a). Cut off, it can change nothing (every operation is UNAVAILABLE: no host can be
// reached) and its reads are stale: a load balancer or readiness probe asking for
// cistern.v1.StorageService must hear NOT_SERVING and send clients to a coordinator that is
// connected, then SERVING again once it is back. The server itself ('') stays SERVING: a
// liveness probe that restarted it would not bring NATS back.
import { expect } from 'chai';
import { credentials, loadPackageDefinition, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { registerCleanup, useStack, waitFor } from '../support/index.js';
import { outcomeOf } from '../support/volume-data.js';
import { SERVICE_NAME } from '../../services/coordinator/server.js';

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';
interface HealthClient {
  check(req: { service: string }, cb: (err: Error | null, res?: { status: Status }) => void): void;
  watch(req: { service: string }): ClientReadableStream<{ status: Status }>;
  close(): void;
}

describe('health checking while the coordinator is cut off from NATS (real processes)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });

  it('StorageService is NOT_SERVING while the bus is gone and SERVING again once it is back; the server stays SERVING', async () => {
    const healthPkg = loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HealthClient } } };
    };
    const health = new healthPkg.grpc.health.v1.Health(ctx.stack.address, credentials.createInsecure());
    const closeHealth = registerCleanup('health client', async () => health.close());
    const check = (service: string): Promise<Status> =>
      new Promise((resolve, reject) => health.check({ service }, (err, res) => (err ? reject(err) : resolve(res!.status))));

    const watched: Status[] = [];
    const watch = health.watch({ service: SERVICE_NAME });
    watch.on('data', (m: { status: Status }) => watched.push(m.status));
    watch.on('error', () => undefined); // its cancel below
    await waitFor('the watch to report the first status', () => watched.length > 0);
    expect(watched).to.deep.equal(['SERVING']);
    expect(await check(SERVICE_NAME)).to.equal('SERVING');

    await ctx.stack.nats!.kill();
    try {
      await waitFor('StorageService to be NOT_SERVING', async () => (await check(SERVICE_NAME)) === 'NOT_SERVING', {
        context: () => ctx.stack.logs(),
      });
      expect(await check('')).to.equal('SERVING');
      await waitFor('the watch to see NOT_SERVING', () => watched.includes('NOT_SERVING'));
    } finally {
      await ctx.stack.nats!.restart();
    }
    await waitFor('StorageService to be SERVING again', async () => (await check(SERVICE_NAME)) === 'SERVING', {
      timeoutMs: 60_000,
      context: () => ctx.stack.logs(),
    });
    await waitFor('the watch to see SERVING again', () => watched.lastIndexOf('SERVING') > watched.indexOf('NOT_SERVING'));
    expect(watched).to.deep.equal(['SERVING', 'NOT_SERVING', 'SERVING']);
    expect(await check('')).to.equal('SERVING');
    watch.cancel();
    await closeHealth();
  });

  it('a WatchEvents opened while the bus is gone is UNAVAILABLE at once, as the other calls, not left waiting for the reconnect', async () => {
    await ctx.stack.nats!.kill();
    try {
      await waitFor('the coordinator to see the bus gone', async () => (await outcomeOf(ctx.stack.api.pingHost({ name: 'hosts/a' }))).code === status.UNAVAILABLE);
      const call = ctx.stack.client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: false }, { deadline: Date.now() + 20_000 });
      const failure = await new Promise<ServiceError>((resolve) => {
        call.on('data', () => undefined);
        call.on('error', resolve);
      });
      expect(status[failure.code], failure.details).to.equal('UNAVAILABLE');
      expect(failure.details).to.match(/not connected to the message bus \(NATS\)/);
    } finally {
      await ctx.stack.nats!.restart();
    }
  });
});
