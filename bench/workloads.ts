// The workloads. Each runs the same work on both sides; a side returns, per result row, either
// one time in ms (the repetition's figure) or a list of per-operation latencies in ms.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CloneVolumeRequest, WipeAlgorithm } from '../libs/proto/cistern/v1/storage.js';
import { HOST, listAllVolumes, pingAgent, poolName, volName, volumeRequest } from './cistern.js';
import { hostName } from '../libs/api/resource-names.js';
import type { Ctx } from './context.js';
import { GiB, makeQcow2Templates, populatePoolDir, sharesExtents, writeSpreadData } from './files.js';
import { VirshSession, vq } from './libvirt.js';
import { ShellSession } from './shell-session.js';
import { msSince, now } from './stats.js';
import { spawn } from 'node:child_process';
import { repoRoot } from '../test/support/index.js';

/** cisternctl as installed: package.json's "bin" entry (the esbuild bundle), one process. */
/** cisternctl as installed: package.json's bin entry. */
function cisternctlBin(): string {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return join(repoRoot, pkg.bin.cisternctl!);
}

/** One cisternctl interactive session (-q), driven as the virsh session is. */
function cisternctlSession(server: string): ShellSession {
  return new ShellSession(process.execPath, [cisternctlBin(), '-q'], { env: { ...process.env, CISTERN_SERVER: server } });
}

function runCisternctl(args: string[], server: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = cisternctlBin();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CISTERN_SERVER: server }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export type Sample = number | number[];
export type SideResult = Record<string, Sample>;

export interface Row {
  id: string;
  title: (ctx: Ctx) => string;
  /**
   * time: Cistern/libvirt time ratio must be <= maxRatio;
   * latency: Cistern per-op p50/p99 must be under the bounds (libvirt shown for reference).
   */
  target: { kind: 'time'; maxRatio: number; text: string } | { kind: 'latency'; p50: number; p99: number; text: string } | { kind: 'info'; text: string };
}

export interface Workload {
  id: string;
  rows: Row[];
  setup?(ctx: Ctx): Promise<void>;
  cistern(ctx: Ctx, rep: number): Promise<SideResult>;
  libvirt(ctx: Ctx, rep: number): Promise<SideResult>;
  teardown?(ctx: Ctx): Promise<void>;
}

const n = (x: number): string => x.toLocaleString('en-US');
const mib = (b: number): string => (b >= GiB ? `${b / GiB} GiB` : `${b / 1024 ** 2} MiB`);
const pad = (i: number): string => String(i).padStart(6, '0');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await fn();
  return msSince(t0);
}

// ----------------------------------------------------------------- creates and deletes

const createDelete: Workload = {
  id: 'create',
  rows: [
    { id: 'create', title: (c) => `${n(c.sizes.creates)} raw creates (1 GiB sparse), 1 client, sequential (one Session / one virsh session)`, target: { kind: 'time', maxRatio: 1, text: '<= 1.0x' } },
    { id: 'delete', title: (c) => `${n(c.sizes.creates)} deletes, 1 client, sequential (one Session / one virsh session)`, target: { kind: 'time', maxRatio: 1, text: '<= 1.0x' } },
    { id: 'create-unary', title: (c) => `${n(c.sizes.creates)} raw creates as unary calls (an HTTP/2 stream each)`, target: { kind: 'info', text: 'breakdown' } },
    { id: 'delete-unary', title: (c) => `${n(c.sizes.creates)} deletes as unary calls`, target: { kind: 'info', text: 'breakdown' } },
  ],
  async cistern(ctx, rep) {
    const count = ctx.sizes.creates;
    const run = async (api: typeof ctx.cs.api, pool: string): Promise<{ create: number; del: number }> => {
      await ctx.cisternPool(pool);
      const create = await timed(async () => {
        for (let i = 0; i < count; i++) await api.createVolume(volumeRequest(pool, `v${pad(i)}`, 'raw', BigInt(GiB), 0n));
      });
      const del = await timed(async () => {
        for (let i = 0; i < count; i++) await api.deleteVolume({ name: volName(pool, `v${pad(i)}`), requestId: '' });
      });
      await ctx.dropCisternPool(pool);
      return { create, del };
    };
    // each on a fresh pool directory; which goes first alternates with the repetition
    const order = rep % 2 === 0 ? (['session', 'unary'] as const) : (['unary', 'session'] as const);
    const out: Record<string, { create: number; del: number }> = {};
    for (const how of order) out[how] = await run(how === 'session' ? ctx.cs.session : ctx.cs.api, `cs-create-${how}-${rep}`);
    return { create: out.session!.create, delete: out.session!.del, 'create-unary': out.unary!.create, 'delete-unary': out.unary!.del };
  },
  async libvirt(ctx, rep) {
    const pool = `lv-create-${rep}`;
    const dir = await ctx.libvirtPool(pool);
    const count = ctx.sizes.creates;
    const names = Array.from({ length: count }, (_, i) => `v${pad(i)}`);
    const c = await ctx.lv.run(names.map((v) => `vol-create-as ${pool} ${v} 1G --allocation 0 --format raw`));
    statSync(join(dir, names[count - 1]!)); // the files are there
    const d = await ctx.lv.run(names.map((v) => `vol-delete ${v} --pool ${pool}`));
    await ctx.dropLibvirtPool(pool);
    // the unary rows compare with the same libvirt run
    return { create: c.ms, delete: d.ms, 'create-unary': c.ms, 'delete-unary': d.ms };
  },
};

// ----------------------------------------------------------------- refresh and list of a big pool

const bigPool: Workload = {
  id: 'pool10k',
  rows: [
    { id: 'refresh', title: (c) => `refresh of a dir pool of ${n(c.sizes.files)} files (raw + qcow2)`, target: { kind: 'time', maxRatio: 1, text: '<= 1.0x' } },
    { id: 'list', title: (c) => `list with details, ${n(c.sizes.files)} volumes (ListVolumes, all pages)`, target: { kind: 'time', maxRatio: 0.05, text: '>= 20x faster' } },
    { id: 'list-cli', title: (c) => `list with details, ${n(c.sizes.files)} volumes (cisternctl vol-list --details, a process)`, target: { kind: 'time', maxRatio: 0.05, text: '>= 20x faster' } },
    { id: 'list-session', title: (c) => `list with details, ${n(c.sizes.files)} volumes (vol-list --details in a cisternctl session, as virsh runs)`, target: { kind: 'time', maxRatio: 0.05, text: '>= 20x faster' } },
  ],
  async setup(ctx) {
    const t0 = now();
    const templates = makeQcow2Templates(ctx.dir('templates'));
    if (ctx.virsh) populatePoolDir(ctx.dir('lv-big'), ctx.sizes.files, templates);
    if (ctx.cistern) populatePoolDir(ctx.dir('cs-big'), ctx.sizes.files, templates);
    ctx.log(`made ${n(ctx.sizes.files)} files per pool in ${msSince(t0).toFixed(0)} ms`);
    if (ctx.virsh) {
      const t = now();
      await ctx.libvirtPool('lv-big');
      ctx.log(`libvirt pool-create-as (start + first scan): ${msSince(t).toFixed(0)} ms`);
    }
    if (ctx.cistern) {
      const t = now();
      await ctx.cisternPool('cs-big');
      ctx.log(`Cistern CreatePool (start + first scan): ${msSince(t).toFixed(0)} ms`);
    }
  },
  async cistern(ctx) {
    const api = ctx.cs.api;
    const refresh = await timed(() => api.refreshPool({ name: poolName('cs-big'), requestId: '' }, { deadlineMs: 600_000 }));
    // The refreshed state reaches the coordinator's cache through the event stream: wait (untimed)
    // until the listing is complete before timing it.
    for (let i = 0; i < 600; i++) {
      const p = await api.getPool({ name: poolName('cs-big') });
      if (p.volumeCount === ctx.sizes.files) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    let got = 0;
    const list = await timed(async () => {
      got = (await listAllVolumes(api, 'cs-big')).length;
    });
    if (got !== ctx.sizes.files) throw new Error(`ListVolumes returned ${got} volumes, expected ${ctx.sizes.files}`);
    let cliOut = '';
    const listCli = await timed(async () => {
      const r = await runCisternctl(['vol-list', `${'bench'}/cs-big`, '--details'], ctx.cs.address, 600_000);
      if (r.code !== 0) throw new Error(`cisternctl vol-list failed (${r.code}): ${r.stderr}`);
      cliOut = r.stdout;
    });
    const lines = cliOut.split('\n').filter((l) => /\.(img|qcow2)\s/.test(l)).length;
    if (lines !== ctx.sizes.files) throw new Error(`cisternctl vol-list --details printed ${lines} volume lines, expected ${ctx.sizes.files}`);
    // as the virsh side: one session, already connected (an untimed pool-info), then the listing
    const session = cisternctlSession(ctx.cs.address);
    try {
      await session.run([`pool-info ${'bench'}/cs-big`]);
      const r = await session.run([`vol-list ${'bench'}/cs-big --details`]);
      const sessionLines = r.stdout.split('\n').filter((l) => /\.(img|qcow2)\s/.test(l)).length;
      if (sessionLines !== ctx.sizes.files) throw new Error(`vol-list --details in a cisternctl session printed ${sessionLines} volume lines, expected ${ctx.sizes.files}`);
      return { refresh, list, 'list-cli': listCli, 'list-session': r.ms };
    } finally {
      await session.close();
    }
  },
  async libvirt(ctx) {
    const refresh = (await ctx.lv.run(['pool-refresh lv-big'])).ms;
    const l = await ctx.lv.run(['vol-list lv-big --details']);
    const lines = l.stdout.split('\n').filter((x) => /\.(img|qcow2)\s/.test(x)).length;
    if (lines !== ctx.sizes.files) throw new Error(`virsh vol-list --details printed ${lines} volume lines, expected ${ctx.sizes.files}`);
    return { refresh, list: l.ms, 'list-cli': l.ms, 'list-session': l.ms };
  },
  async teardown(ctx) {
    if (ctx.virsh) await ctx.dropLibvirtPool('lv-big');
    if (ctx.cistern) await ctx.dropCisternPool('cs-big');
    rmSync(join(ctx.work, 'templates'), { recursive: true, force: true });
  },
};

// ----------------------------------------------------------------- qcow2 creates

const qcow2: Workload = {
  id: 'qcow2',
  rows: [
    { id: 'qcow2', title: (c) => `${n(c.sizes.qcow2)} qcow2 creates (1 GiB, no preallocation; one Session / one virsh session)`, target: { kind: 'time', maxRatio: 1 / 3, text: '>= 3x faster' } },
    { id: 'qcow2-unary', title: (c) => `${n(c.sizes.qcow2)} qcow2 creates as unary calls`, target: { kind: 'info', text: 'breakdown' } },
  ],
  async cistern(ctx, rep) {
    const run = async (api: typeof ctx.cs.api, pool: string): Promise<number> => {
      await ctx.cisternPool(pool);
      const ms = await timed(async () => {
        for (let i = 0; i < ctx.sizes.qcow2; i++) await api.createVolume(volumeRequest(pool, `q${pad(i)}.qcow2`, 'qcow2', BigInt(GiB), 0n));
      });
      await ctx.dropCisternPool(pool);
      return ms;
    };
    const order = rep % 2 === 0 ? (['session', 'unary'] as const) : (['unary', 'session'] as const);
    const out: Record<string, number> = {};
    for (const how of order) out[how] = await run(how === 'session' ? ctx.cs.session : ctx.cs.api, `cs-qcow2-${how}-${rep}`);
    return { qcow2: out.session!, 'qcow2-unary': out.unary! };
  },
  async libvirt(ctx, rep) {
    const pool = `lv-qcow2-${rep}`;
    await ctx.libvirtPool(pool);
    const cmds = Array.from({ length: ctx.sizes.qcow2 }, (_, i) => `vol-create-as ${pool} q${pad(i)}.qcow2 1G --allocation 0 --format qcow2`);
    const r = await ctx.lv.run(cmds);
    await ctx.dropLibvirtPool(pool);
    return { qcow2: r.ms, 'qcow2-unary': r.ms };
  },
};

// ----------------------------------------------------------------- wipe

const wipe: Workload = {
  id: 'wipe',
  rows: [{ id: 'wipe', title: (c) => `zero wipe of ${mib(c.sizes.wipeBytes)} (allocated raw)`, target: { kind: 'time', maxRatio: 1, text: '<= 1.0x' } }],
  async setup(ctx) {
    const size = ctx.sizes.wipeBytes;
    if (ctx.virsh) {
      await ctx.libvirtPool('lv-wipe');
      await ctx.lv.run([`vol-create-as lv-wipe w.img ${size} --allocation ${size} --format raw`]);
    }
    if (ctx.cistern) {
      await ctx.cisternPool('cs-wipe');
      await ctx.cs.api.createVolume(volumeRequest('cs-wipe', 'w.img', 'raw', BigInt(size), BigInt(size)), { deadlineMs: 600_000 });
    }
  },
  async cistern(ctx) {
    const ms = await timed(() =>
      ctx.cs.api.wipeVolume({ name: volName('cs-wipe', 'w.img'), algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO, requestId: '' }, { deadlineMs: 600_000 }),
    );
    return { wipe: ms };
  },
  async libvirt(ctx) {
    return { wipe: (await ctx.lv.run(['vol-wipe w.img --pool lv-wipe --algorithm zero'])).ms };
  },
  async teardown(ctx) {
    if (ctx.virsh) await ctx.dropLibvirtPool('lv-wipe');
    if (ctx.cistern) await ctx.dropCisternPool('cs-wipe');
  },
};

// ----------------------------------------------------------------- clone

/**
 * Whether the clones share extents: where the filesystem can (XFS with reflink, btrfs), Cistern's
 * clone of a sparse raw is a reflink and libvirt's vol-clone a copy unless given --reflink, so
 * libvirt gets --reflink there and both sides do the same work. Set by the workload's setup.
 */
let cloneByReflink = false;

const clone: Workload = {
  id: 'clone',
  rows: [
    {
      id: 'clone',
      title: (c) => `clone of a ${mib(c.sizes.cloneBytes)} sparse raw holding ${c.sizes.cloneChunks} MiB of data${cloneByReflink ? ' (reflink; libvirt: vol-clone --reflink)' : ''}`,
      target: { kind: 'time', maxRatio: 1, text: '<= 1.0x' },
    },
  ],
  async setup(ctx) {
    const size = ctx.sizes.cloneBytes;
    cloneByReflink = sharesExtents(ctx.work);
    if (cloneByReflink) ctx.log(`clone: ${ctx.work} shares extents (reflink): Cistern clones by reflink there, so libvirt's vol-clone gets --reflink`);
    if (ctx.virsh) {
      const dir = await ctx.libvirtPool('lv-clone');
      await ctx.lv.run([`vol-create-as lv-clone src.img ${size} --allocation 0 --format raw`]);
      writeSpreadData(join(dir, 'src.img'), size, ctx.sizes.cloneChunks);
      await ctx.lv.run(['pool-refresh lv-clone']);
    }
    if (ctx.cistern) {
      const dir = await ctx.cisternPool('cs-clone');
      await ctx.cs.api.createVolume(volumeRequest('cs-clone', 'src.img', 'raw', BigInt(size), 0n));
      writeSpreadData(join(dir, 'src.img'), size, ctx.sizes.cloneChunks);
      await ctx.cs.api.refreshPool({ name: poolName('cs-clone'), requestId: '' });
    }
  },
  async cistern(ctx, rep) {
    const api = ctx.cs.api;
    const name = `c${rep}.img`;
    const ms = await timed(() =>
      api.cloneVolume(CloneVolumeRequest.fromPartial({ parent: poolName('cs-clone'), source: volName('cs-clone', 'src.img'), definition: { name } }), { deadlineMs: 600_000 }),
    );
    await api.deleteVolume({ name: volName('cs-clone', name), requestId: '' });
    return { clone: ms };
  },
  async libvirt(ctx, rep) {
    const name = `c${rep}.img`;
    const r = await ctx.lv.run([`vol-clone src.img ${name} --pool lv-clone${cloneByReflink ? ' --reflink' : ''}`]);
    await ctx.lv.run([`vol-delete ${name} --pool lv-clone`]);
    return { clone: r.ms };
  },
  async teardown(ctx) {
    if (ctx.virsh) await ctx.dropLibvirtPool('lv-clone');
    if (ctx.cistern) await ctx.dropCisternPool('cs-clone');
  },
};

// ----------------------------------------------------------------- control overhead

/** Untimed rounds before the first repetition (each round is one call of every row). */
const CONTROL_WARMUP_ROUNDS = 100;

/** One call of each Cistern row, in this order, each timed on its own. */
async function controlRoundCistern(ctx: Ctx): Promise<Record<string, number>> {
  const { api, session } = ctx.cs;
  const nc = await ctx.cs.nats();
  const host = { name: hostName(HOST) };
  const pool = { name: poolName('cs-noop'), requestId: '' };
  return {
    'host-ping': await timed(() => session.pingHost(host)),
    'host-ping-unary': await timed(() => api.pingHost(host)),
    noop: await timed(() => session.refreshPool(pool)),
    'noop-unary': await timed(() => api.refreshPool(pool)),
    ping: await timed(() => pingAgent(nc)),
    get: await timed(() => api.getPool({ name: pool.name })),
  };
}

/** libvirt's two rows: pool-refresh and pool-info of an empty pool, one virsh command each. */
async function controlRoundLibvirt(ctx: Ctx): Promise<Record<string, number>> {
  return {
    noop: (await ctx.lv.run(['pool-refresh lv-noop'])).ms,
    get: (await ctx.lv.run(['pool-info lv-noop'])).ms,
  };
}

const control: Workload = {
  id: 'control',
  rows: [
    // the "no-op through gRPC, NATS and agent": PingHost does the whole path and no storage work
    { id: 'host-ping', title: () => 'control overhead: PingHost over a Session (gRPC + NATS + agent, no storage work), per op', target: { kind: 'latency', p50: 1, p99: 5, text: 'p50 < 1 ms, p99 < 5 ms' } },
    { id: 'host-ping-unary', title: () => 'control overhead: PingHost as unary calls, per op', target: { kind: 'info', text: 'breakdown' } },
    { id: 'noop', title: () => 'refresh of an empty pool over a Session (gRPC + NATS + agent + a refresh and its stored event) / virsh pool-refresh, per op', target: { kind: 'info', text: 'breakdown' } },
    { id: 'noop-unary', title: () => 'refresh of an empty pool as unary calls, per op', target: { kind: 'info', text: 'breakdown' } },
    { id: 'ping', title: () => 'control overhead: agent Ping over NATS only (no gRPC), per op', target: { kind: 'info', text: 'breakdown' } },
    { id: 'get', title: () => 'GetPool from the coordinator cache (gRPC only) / virsh pool-info, per op', target: { kind: 'info', text: 'breakdown' } },
  ],
  async setup(ctx) {
    if (ctx.virsh) await ctx.libvirtPool('lv-noop');
    if (ctx.cistern) await ctx.cisternPool('cs-noop');
    // untimed rounds first, on both sides: the rows are steady-state latencies, and without
    // them the first repetition also measures V8 compiling each path (and the caches warming)
    for (let i = 0; i < CONTROL_WARMUP_ROUNDS; i++) {
      if (ctx.cistern) await controlRoundCistern(ctx);
      if (ctx.virsh) await controlRoundLibvirt(ctx);
    }
  },
  async cistern(ctx) {
    const out: Record<string, number[]> = { 'host-ping': [], 'host-ping-unary': [], noop: [], 'noop-unary': [], ping: [], get: [] };
    for (let i = 0; i < ctx.sizes.controlOps; i++) {
      for (const [row, ms] of Object.entries(await controlRoundCistern(ctx))) out[row]!.push(ms);
    }
    return out;
  },
  async libvirt(ctx) {
    const out: Record<string, number[]> = { 'host-ping': [], 'host-ping-unary': [], noop: [], 'noop-unary': [], ping: [], get: [] };
    for (let i = 0; i < ctx.sizes.controlOps; i++) {
      for (const [row, ms] of Object.entries(await controlRoundLibvirt(ctx))) out[row]!.push(ms);
    }
    return out;
  },
  async teardown(ctx) {
    if (ctx.virsh) await ctx.dropLibvirtPool('lv-noop');
    if (ctx.cistern) await ctx.dropCisternPool('cs-noop');
  },
};

// ----------------------------------------------------------------- concurrent creates

const concurrent: Workload = {
  id: 'concurrent',
  rows: [
    {
      id: 'concurrent',
      title: (c) => `${n(c.sizes.concurrentCreates)} raw creates, ${c.sizes.clients} concurrent clients (libvirt: ${c.sizes.clients} virsh sessions)`,
      target: { kind: 'time', maxRatio: 0.2, text: '>= 5x throughput' },
    },
    { id: 'concurrent-unary', title: (c) => `${n(c.sizes.concurrentCreates)} raw creates, ${c.sizes.clients} concurrent clients, unary calls`, target: { kind: 'info', text: 'breakdown' } },
  ],
  async cistern(ctx, rep) {
    const { clients: k, concurrentCreates: total } = ctx.sizes;
    const run = async (how: 'session' | 'unary'): Promise<number> => {
      const pool = `cs-conc-${how}-${rep}`;
      await ctx.cisternPool(pool);
      const clients = Array.from({ length: k }, () => ctx.cs.newClient());
      const apis = clients.map((c) => (how === 'session' ? c.session : c.api));
      // one untimed call per client so each has its connection (and its session) up
      await Promise.all(apis.map((api) => api.getPool({ name: poolName(pool) })));
      const ms = await timed(() =>
        Promise.all(
          apis.map(async (api, j) => {
            for (let i = j; i < total; i += k) await api.createVolume(volumeRequest(pool, `v${pad(i)}`, 'raw', BigInt(GiB), 0n));
          }),
        ),
      );
      for (const c of clients) c.close();
      await ctx.dropCisternPool(pool);
      return ms;
    };
    const order = rep % 2 === 0 ? (['session', 'unary'] as const) : (['unary', 'session'] as const);
    const out: Record<string, number> = {};
    for (const how of order) out[how] = await run(how);
    return { concurrent: out.session!, 'concurrent-unary': out.unary! };
  },
  async libvirt(ctx, rep) {
    const pool = `lv-conc-${rep}`;
    await ctx.libvirtPool(pool);
    const { clients: k, concurrentCreates: total } = ctx.sizes;
    const sessions = Array.from({ length: k }, () => new VirshSession(ctx.libvirtUri!));
    try {
      await Promise.all(sessions.map((s) => s.run(['pool-info ' + vq(pool)])));
      // All batches are written at once; each is timed from its write to its last answer, so the
      // slowest one is the wall time of the whole run.
      const results = await Promise.all(
        sessions.map((s, j) => {
          const cmds: string[] = [];
          for (let i = j; i < total; i += k) cmds.push(`vol-create-as ${pool} v${pad(i)} 1G --allocation 0 --format raw`);
          return s.run(cmds);
        }),
      );
      const ms = Math.max(...results.map((r) => r.ms));
      return { concurrent: ms, 'concurrent-unary': ms };
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
      await ctx.dropLibvirtPool(pool);
    }
  },
};

export const WORKLOADS: Workload[] = [createDelete, bigPool, qcow2, wipe, clone, control, concurrent];
