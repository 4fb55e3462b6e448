// Where the time of one small operation goes: the full gRPC path against its parts, each measured
// alone, sequentially, on a live stack (nats-server, coordinator, one agent).
//   node dist/bench/breakdown.js            (BENCH_BREAKDOWN_OPS=N, default 300)
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, stat, statfs, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import { callAgent } from '../libs/bus/agent-rpc.js';
import { AgentReply, AgentRequest } from '../libs/proto/cistern/agent/v1/agent.js';
import { DirBackend } from '../libs/backends/dir.js';
import { makeQcow2Templates, populatePoolDir } from './files.js';
import { CreateVolumeRequest, DeleteVolumeRequest } from '../libs/proto/cistern/v1/storage.js';
import { createDirPool, destroyPool, HOST, pingAgent, poolName, startCistern, volName, volumeRequest } from './cistern.js';
import { fmtMs, percentile, textTable } from './stats.js';
import { cpuMark, cpuMsSince } from './proc-cpu.js';

const N = Number(process.env.BENCH_BREAKDOWN_OPS ?? '300');
const GiB = 1024 ** 3;

async function series(fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'cistern-bench-breakdown-'));
  const cs = await startCistern();
  const rows: string[][] = [];
  const cpu: string[][] = [];
  const add = (what: string, xs: number[]): void => {
    process.stderr.write(`${what}: p50 ${fmtMs(percentile(xs, 50))}\n`);
    rows.push([what, fmtMs(percentile(xs, 50)), fmtMs(percentile(xs, 90)), fmtMs(percentile(xs, 99)), fmtMs(xs.reduce((a, b) => a + b, 0) / xs.length)]);
  };
  try {
    const api = cs.api;
    const nc = await cs.nats();
    mkdirSync(join(work, 'bd'));
    await createDirPool(api, 'bd', join(work, 'bd'));
    const pool = await api.getPool({ name: poolName('bd') });

    // CPU per call of each process (all its threads: V8's garbage-collector helpers too)
    const withCpu = async (what: string, fn: (i: number) => Promise<unknown>): Promise<void> => {
      const mark = cpuMark(cs.pids);
      add(what, await series(fn));
      const ms = cpuMsSince(mark, cs.pids, N, 2);
      cpu.push([what, ...['coordinator', 'agent', 'nats', 'benchClient'].map((k) => `${ms[k]} ms`)]);
    };
    await withCpu('gRPC CreateVolume raw (full path)', (i) => api.createVolume(volumeRequest('bd', `g${i}`, 'raw', BigInt(GiB), 0n)));
    await withCpu('gRPC DeleteVolume (full path)', (i) => api.deleteVolume({ name: volName('bd', `g${i}`), requestId: '' }));
    const session = cs.session;
    await withCpu('Session CreateVolume raw (full path, one stream)', (i) => session.createVolume(volumeRequest('bd', `s${i}`, 'raw', BigInt(GiB), 0n)));
    await withCpu('Session DeleteVolume (full path, one stream)', (i) => session.deleteVolume({ name: volName('bd', `s${i}`), requestId: '' }));
    add('agent CreateVolume over NATS (no gRPC, no coordinator)', await series((i) =>
      callAgent(nc, HOST, AgentRequest.fromPartial({ pool: pool.definition, op: { $case: 'createVolume', value: CreateVolumeRequest.fromPartial(volumeRequest('bd', `n${i}`, 'raw', BigInt(GiB), 0n)) } })),
    ));
    add('agent DeleteVolume over NATS (no gRPC, no coordinator)', await series((i) =>
      callAgent(nc, HOST, AgentRequest.fromPartial({ pool: pool.definition, op: { $case: 'deleteVolume', value: DeleteVolumeRequest.fromPartial({ name: volName('bd', `n${i}`) }) } })),
    ));
    add('gRPC CreateVolume qcow2 1 GiB (full path)', await series((i) => api.createVolume(volumeRequest('bd', `q${i}.qcow2`, 'qcow2', BigInt(GiB), 0n))));
    add('agent CreateVolume qcow2 over NATS (no gRPC, no coordinator)', await series((i) =>
      callAgent(nc, HOST, AgentRequest.fromPartial({ pool: pool.definition, op: { $case: 'createVolume', value: CreateVolumeRequest.fromPartial(volumeRequest('bd', `m${i}.qcow2`, 'qcow2', BigInt(GiB), 0n)) } })),
    ));
    add('agent Ping over NATS', await series(() => pingAgent(nc)));
    await withCpu('gRPC GetPool (coordinator cache)', () => api.getPool({ name: poolName('bd') }));
    await withCpu('gRPC RefreshPool of a small pool', () => api.refreshPool({ name: poolName('bd'), requestId: '' }));
    await withCpu('Session GetPool (coordinator cache)', () => session.getPool({ name: poolName('bd') }));
    await withCpu('Session RefreshPool of a small pool', () => session.refreshPool({ name: poolName('bd'), requestId: '' }));

    // nats-server alone: a JetStream publish with ack, on a scratch file-backed stream
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'BENCH_SCRATCH', subjects: ['benchscratch.>'] });
    const js = jetstream(nc);
    const payload = new Uint8Array(600);
    add('JetStream publish + ack (nats-server, 600 B)', await series((i) => js.publish('benchscratch.x', payload, { msgID: `m${i}` })));
    // publish -> ordered consumer delivery
    const consumer = await js.consumers.get('BENCH_SCRATCH', { deliver_policy: DeliverPolicy.New });
    const msgs = await consumer.consume();
    const it = msgs[Symbol.asyncIterator]();
    add('JetStream publish -> ordered consumer receives', await series(async () => {
      await js.publish('benchscratch.y', payload);
      await it.next();
    }));
    // close() can wait for a pull that never ends; do not let it hold the run
    await Promise.race([msgs.close(), new Promise((r) => setTimeout(r, 1000))]);
    await jsm.streams.delete('BENCH_SCRATCH');

    // the file work of a raw create, in-process: async (libuv pool) and sync
    const dir = join(work, 'fs');
    mkdirSync(dir);
    add('fs/promises: open wx + ftruncate + close + stat + statfs', await series(async (i) => {
      const p = join(dir, `a${i}`);
      const fh = await open(p, 'wx', 0o600);
      await fh.truncate(GiB);
      await fh.close();
      await stat(p);
      await statfs(dir);
    }));
    add('fs sync: open wx + ftruncate + close', await series(async (i) => {
      const fd = openSync(join(dir, `s${i}`), 'wx', 0o600);
      ftruncateSync(fd, GiB);
      closeSync(fd);
    }));
    for (let i = 0; i < N; i++) await unlink(join(dir, `a${i}`));
    await destroyPool(api, 'bd');

    // refresh of a big pool: the scan alone, the agent over NATS (reply size), the full gRPC path
    const files = Number(process.env.BENCH_BREAKDOWN_FILES ?? '10000');
    const big = join(work, 'big');
    populatePoolDir(big, files, makeQcow2Templates(join(work, 'tmpl')));
    await createDirPool(api, 'big', big);
    const bigPool = (await api.getPool({ name: poolName('big') })).definition!;
    const backend = new DirBackend();
    const reps = async (fn: () => Promise<unknown>): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        out.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return out;
    };
    add(`DirBackend.refreshPool alone, ${files} files (in this process)`, await reps(() => backend.refreshPool({ pool: bigPool, runner: undefined as never })));
    let replyBytes = 0;
    let replyVolumes = 0;
    add(`agent RefreshPool over NATS, ${files} files`, await reps(async () => {
      const req = AgentRequest.fromPartial({ pool: bigPool, op: { $case: 'refreshPool', value: { name: poolName('big') } } });
      const msg = await nc.request(`cistern.agent.${HOST}.RefreshPool`, AgentRequest.encode(req).finish(), { timeout: 60_000 });
      replyBytes = msg.data.length;
      const reply = AgentReply.decode(msg.data);
      if (reply.error) throw new Error(`agent RefreshPool failed: ${reply.error.message}`);
      replyVolumes = reply.volumes.length;
    }));
    add(`gRPC RefreshPool, ${files} files (full path)`, await reps(() => api.refreshPool({ name: poolName('big'), requestId: '' }, { deadlineMs: 120_000 })));
    rows.push([`(the agent's RefreshPool reply: ${replyBytes} bytes, ${replyVolumes} volumes, for a refresh that changed nothing)`, '', '', '', '']);
    await destroyPool(api, 'big');
  } finally {
    await cs.stop();
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`\nper operation, ${N} sequential calls each\n\n${textTable(['what', 'p50', 'p90', 'p99', 'mean'], rows)}\n`);
  process.stdout.write(`\nCPU per call (user + system, every thread, from /proc)\n\n${textTable(['what', 'coordinator', 'agent', 'nats-server', 'bench client'], cpu)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
    process.exit(1);
  },
);
