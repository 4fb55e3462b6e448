// `node dist/bench/list-floor.js`: what listing N pools costs with no coordinator work at all.
// A child process serves ListPools from pools built and frozen once, through the coordinator's
// own response encoding (pool-list-encoding.ts: after the first pass a page is a copy of kept
// bytes) and a bare grpc-js server; this process lists them page by page through the generated
// grpc-js client, as the fleet bench does. The pass time, the client's and the server's CPU
// per pass are the floor under the fleet's ListPools row on this machine: the pools are the
// fleet simulator's, and the fleet's coordinator answers from the same kind of frozen views,
// plus the walk over its cache. Each page size is measured twice: with the generated client
// (every Pool decoded, as a user's stub does) and with a raw one that only counts the pools
// (raw-pages.ts): the difference is the generated client's decoding.
//
//   LIST_FLOOR_POOLS=10000 LIST_FLOOR_PASSES=30 node dist/bench/list-floor.js
import { credentials, Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ListPoolsRequest, Pool, PoolState, StorageServiceClient, StorageServiceService } from '../libs/proto/cistern/v1/storage.js';
import { serializeListPools } from '../services/coordinator/pool-list-encoding.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../services/coordinator/pagination.js';
import { simPools } from './fleet/sim-agent.js';
import { cpuSeconds } from './proc-cpu.js';
import { rawListAllPools } from './raw-pages.js';

const POOLS = Number(process.env.LIST_FLOOR_POOLS ?? 10_000);
const PASSES = Number(process.env.LIST_FLOOR_PASSES ?? 30);
const POOLS_PER_HOST = 20;

/** The fleet simulator's pools (bench/fleet/sim-agent.ts simPools), as a running pool's view. */
function fleetPools(count: number): Pool[] {
  const pools: Pool[] = [];
  for (let h = 0; pools.length < count; h++) {
    const host = `host-${String(h).padStart(4, '0')}`;
    for (const sim of simPools(h, POOLS_PER_HOST, 0)) {
      if (pools.length === count) break;
      const allocation = sim.capacity / 20n;
      pools.push(
        Object.freeze(
          Pool.fromPartial({
            name: `hosts/${host}/pools/${sim.definition.name}`,
            host,
            definition: sim.definition,
            state: PoolState.POOL_STATE_RUNNING,
            persistent: true,
            autostart: true,
            capacity: sim.capacity,
            allocation,
            available: sim.capacity - allocation,
            volumeCount: 100,
            revision: 12_345n,
            targetPermissions: sim.definition.target?.permissions,
          }),
        ),
      );
    }
  }
  return pools;
}

async function serve(): Promise<void> {
  const pools = fleetPools(POOLS);
  const server = new Server();
  const listPools = { ...StorageServiceService.listPools, responseSerialize: serializeListPools };
  server.addService({ listPools } as unknown as ServiceDefinition, {
    listPools: (call: { request: ListPoolsRequest }, done: (err: null, res: unknown) => void) => {
      const start = call.request.pageToken ? Number(call.request.pageToken) : 0;
      const end = Math.min(pools.length, start + Math.min(call.request.pageSize || DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE));
      done(null, { pools: pools.slice(start, end), nextPageToken: end < pools.length ? String(end) : '' });
    },
  });
  const port = await new Promise<number>((ok, fail) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))));
  process.stdout.write(`${port}\n`);
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

async function measure(): Promise<void> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } });
  try {
    const [first] = (await once(child.stdout!, 'data')) as [Buffer];
    const client = new StorageServiceClient(`127.0.0.1:${first.toString().trim()}`, credentials.createInsecure());
    const page = (pageSize: number, pageToken: string) =>
      new Promise<{ pools: Pool[]; nextPageToken: string }>((ok, fail) =>
        client.listPools({ host: '', types: [], pageSize, pageToken }, (err, res) => (err ? fail(err) : ok(res))),
      );
    const pass = async (pageSize: number): Promise<number> => {
      let token = '';
      let pools = 0;
      do {
        const res = await page(pageSize, token);
        pools += res.pools.length;
        token = res.nextPageToken;
      } while (token);
      return pools;
    };
    for (let i = 0; i < 5; i++) await pass(0);
    console.log(`${POOLS} pools (${POOLS_PER_HOST} per host), ${PASSES} passes each, load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
    const passes: Array<[string, (pageSize: number) => Promise<number>]> = [
      ['generated client', pass],
      ['raw client', async (pageSize) => (await rawListAllPools(client, pageSize)).pools],
    ];
    for (const [, run] of passes) await run(0); // warm-up
    for (const pageSize of [0, MAX_PAGE_SIZE]) {
      for (const [clientKind, run] of passes) {
        const times: number[] = [];
        const server0 = cpuSeconds(child.pid!);
        const client0 = process.cpuUsage();
        for (let i = 0; i < PASSES; i++) {
          const t0 = performance.now();
          if ((await run(pageSize)) !== POOLS) throw new Error('short listing');
          times.push(performance.now() - t0);
        }
        const used = process.cpuUsage(client0);
        times.sort((a, b) => a - b);
        console.log(
          `page_size ${pageSize || `${DEFAULT_PAGE_SIZE} (default)`}, ${clientKind}: pass p50 ${times[times.length >> 1]!.toFixed(1)} ms; ` +
            `CPU per pass: client ${((used.user + used.system) / 1000 / PASSES).toFixed(1)} ms, server ${(((cpuSeconds(child.pid!) - server0) * 1000) / PASSES).toFixed(1)} ms`,
        );
      }
    }
    client.close();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

await (process.argv[2] === 'serve' ? serve() : measure());
