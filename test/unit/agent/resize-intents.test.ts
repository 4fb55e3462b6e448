// A retried resize by delta must not add the delta twice (issue 6), whether the first call
// failed part way, or the agent restarted in between and forgot it.
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../../libs/backends/backend.js';
import { UnavailableError, type CisternError } from '../../../libs/errors/errors.js';
import { dispatch } from '../../../services/agent/agent.js';
import { COMPACT_BYTES, ResizeIntents } from '../../../services/agent/resize-intents.js';
import { inProcessAgent } from '../../support/agent-context.js';
import { makeTempDir } from '../../support/cleanup.js';

/** One pool of raw files held in a map; its resize can be told to fail after the size changed. */
class MapBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  readonly operations: ReadonlySet<BackendOperation> = new Set<BackendOperation>(['checkPool', 'refreshPool', 'createVol', 'buildVol', 'resizeVol']);
  failAfterResize = false;
  resizes: bigint[] = [];
  constructor(readonly files: Map<string, bigint>) {}
  async refreshPool() {
    return { runtime: { capacity: 1n << 40n, allocation: 0n, available: 1n << 40n }, volumes: [...this.files].map(([n, c]) => this.def(n, c)) };
  }
  def(name: string, capacity: bigint) {
    return VolumeDefinition.fromPartial({ name, key: `/p/${name}`, capacity, allocation: 0n, target: { path: `/p/${name}`, format: 'raw' } });
  }
  async createVol(_ctx: PoolContext, v: VolumeDefinition) {
    return { ...v, key: `/p/${v.name}`, target: { ...v.target!, path: `/p/${v.name}` } };
  }
  async buildVol(_ctx: PoolContext, v: VolumeDefinition) {
    this.files.set(v.name, v.capacity ?? 0n);
  }
  async refreshVol(_ctx: PoolContext, v: VolumeDefinition) {
    return this.def(v.name, this.files.get(v.name) ?? 0n);
  }
  async resizeVol(_ctx: PoolContext, v: VolumeDefinition, capacity: bigint) {
    this.resizes.push(capacity);
    this.files.set(v.name, capacity);
    if (this.failAfterResize) throw new UnavailableError('the disk went away');
  }
}

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });

/** An agent over `files` whose resize intents live under `root`: a second one over the same root is the agent restarted. */
async function agentOver(files: Map<string, bigint>, root: string) {
  const backend = new MapBackend(files);
  const { ctx } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
  ctx.resizeIntents = ResizeIntents.open(root);
  const call = (op: AgentRequest['op'], requestId = '') => {
    const req = AgentRequest.fromPartial({ principal: 'alice', requestId, pool: poolDef });
    req.op = op;
    return dispatch(ctx, op!.$case, req);
  };
  await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
  const resize = (capacity: bigint, requestId: string, delta = true) =>
    call({ $case: 'resizeVolume', value: { name: 'hosts/h/pools/p/volumes/v', capacity, allocate: false, delta, shrink: false, requestId } }, requestId);
  return { backend, resize };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return `${(err as CisternError).code}: ${(err as Error).message}`;
  }
}

describe('resize by delta, retried with the same request id', () => {
  let root: { path: string; remove: () => Promise<void> };
  beforeEach(() => {
    root = makeTempDir('cistern-resize-intents-');
  });
  afterEach(() => root.remove());

  it('a retry after a call that failed once the size had changed resizes to the same capacity, not one delta further', async () => {
    const files = new Map([['v', 100n]]);
    const { backend, resize } = await agentOver(files, root.path);
    backend.failAfterResize = true;
    expect(await outcome(resize(50n, 'grow-1'))).to.match(/^UNAVAILABLE/);
    expect(files.get('v')).to.equal(150n);
    backend.failAfterResize = false;
    expect(await outcome(resize(50n, 'grow-1'))).to.equal('OK');
    expect(files.get('v')).to.equal(150n);
    expect(backend.resizes).to.deep.equal([150n, 150n]);
  });

  it('a retry reaching the agent after a restart resizes to the capacity the first call chose', async () => {
    const files = new Map([['v', 100n]]);
    const first = await agentOver(files, root.path);
    expect(await outcome(first.resize(50n, 'grow-2'))).to.equal('OK');
    expect(files.get('v')).to.equal(150n);
    // the agent restarts: a new process, the same root and the same volume
    const restarted = await agentOver(files, root.path);
    expect(await outcome(restarted.resize(50n, 'grow-2'))).to.equal('OK');
    expect(files.get('v')).to.equal(150n);
    // a new request id is a new change
    expect(await outcome(restarted.resize(50n, 'grow-3'))).to.equal('OK');
    expect(files.get('v')).to.equal(200n);
  });

  it('a retry that changes the request is refused and changes nothing', async () => {
    const files = new Map([['v', 100n]]);
    const first = await agentOver(files, root.path);
    await first.resize(50n, 'grow-4');
    const restarted = await agentOver(files, root.path);
    expect(await outcome(restarted.resize(60n, 'grow-4'))).to.match(/^INVALID_ARGUMENT: request_id: request id 'grow-4' was already used for a different resizeVolume request/);
    expect(files.get('v')).to.equal(150n);
  });

  it('a resize to an absolute capacity, or one without a request id, is not written down', async () => {
    const files = new Map([['v', 100n]]);
    const { resize } = await agentOver(files, root.path);
    await resize(300n, 'absolute-1', false);
    await resize(10n, '');
    await resize(10n, '');
    expect(files.get('v')).to.equal(320n);
    expect(readFileSync(join(root.path, 'journal', 'resize-intents.log'), { flag: 'a+' }).toString()).to.equal('');
  });
});

describe('ResizeIntents (the file)', () => {
  let root: { path: string; remove: () => Promise<void> };
  beforeEach(() => {
    root = makeTempDir('cistern-resize-intents-');
  });
  afterEach(() => root.remove());
  const key = (requestId: string) => ({ principal: 'alice', requestId, fingerprint: 'f' });

  it('drops expired entries and a line cut short, and keeps the rest across opens', () => {
    let now = 1_000;
    const clock = () => now;
    const a = ResizeIntents.open(root.path, 100, clock);
    expect(a.capacityFor(key('old'), () => 5n)).to.equal(5n);
    now = 1_050;
    expect(a.capacityFor(key('new'), () => 7n)).to.equal(7n);
    const file = join(root.path, 'journal', 'resize-intents.log');
    appendFileSync(file, '{"key":"cut');
    now = 1_120; // 'old' has expired, 'new' has not
    const b = ResizeIntents.open(root.path, 100, clock);
    expect(b.capacityFor(key('new'), () => 99n)).to.equal(7n);
    expect(b.capacityFor(key('old'), () => 11n)).to.equal(11n);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).to.have.length(2);
    expect(lines.map((l) => (JSON.parse(l) as { capacity: string }).capacity)).to.deep.equal(['7', '11']);
  });

  // A rewrite replaces the file with a new one (tmp + rename): its inode changes.
  const fileOf = () => join(root.path, 'journal', 'resize-intents.log');
  const inode = () => statSync(fileOf()).ino;
  /** A fingerprint as long as a real one (a sha256 in hex): a line of about 200 bytes. */
  const realKey = (requestId: string) => ({ principal: 'alice', requestId, fingerprint: 'ab'.repeat(32) });
  /** Resizes with fresh request ids `from`..`to` - 1; how many of them rewrote the file. */
  function appendCounting(intents: ResizeIntents, from: number, to: number, tick: () => void = () => {}): number {
    let rewrites = 0;
    let before = inode();
    for (let i = from; i < to; i++) {
      tick();
      intents.capacityFor(realKey(`r-${i}`), () => BigInt(i));
      const after = inode();
      if (after !== before) rewrites++;
      before = after;
    }
    return rewrites;
  }

  it('past the compaction size, an append of a live entry does not rewrite the file (review h10 F3)', () => {
    const a = ResizeIntents.open(root.path);
    a.capacityFor(realKey('first'), () => 1n);
    const line = statSync(fileOf()).size;
    const past = Math.ceil(COMPACT_BYTES / line) + 200;
    // nothing has expired: there is nothing to drop, so nothing to rewrite, below or past 1 MiB
    expect(appendCounting(a, 0, past)).to.equal(0);
    expect(statSync(fileOf()).size).to.be.above(COMPACT_BYTES);
    expect(a.capacityFor(realKey('first'), () => 99n)).to.equal(1n);
  });

  it('with entries expiring, the file is rewritten about once per live size of appends and stays below twice the live size', () => {
    let now = 0;
    const ttl = 100; // one entry per tick: about 100 live entries
    const a = ResizeIntents.open(root.path, ttl, () => now, { compactBytes: 4096 });
    a.capacityFor(realKey('first'), () => 1n);
    const line = statSync(fileOf()).size + 8; // (a capacity and an expiry with more digits later)
    let largest = 0;
    const rewrites = appendCounting(a, 0, 5_000, () => {
      now++;
      largest = Math.max(largest, statSync(fileOf()).size);
    });
    // a rewrite writes about 100 lines and comes after at least as many appended: not one per append
    expect(rewrites).to.be.above(0);
    expect(rewrites).to.be.at.most(5_000 / 90);
    expect(largest).to.be.at.most(2 * (ttl + 1) * line + line);
    // what is live is still held, across an open
    const b = ResizeIntents.open(root.path, ttl, () => now, { compactBytes: 4096 });
    expect(b.capacityFor(realKey('r-4999'), () => 0n)).to.equal(4999n);
    expect(b.capacityFor(realKey('r-4800'), () => 0n)).to.equal(0n); // expired: a new intent
  });

  it('keeps at most maxEntries intents, forgetting the oldest first, and the file stays bounded', () => {
    const limits = { compactBytes: 4096, maxEntries: 100 };
    const a = ResizeIntents.open(root.path, undefined, undefined, limits);
    a.capacityFor(realKey('first'), () => 1n);
    const line = statSync(fileOf()).size + 8;
    expect(appendCounting(a, 0, 2_000)).to.be.at.most(2_000 / 90);
    expect(statSync(fileOf()).size).to.be.at.most(2 * 100 * line + line);
    const b = ResizeIntents.open(root.path, undefined, undefined, limits);
    expect(b.capacityFor(realKey('r-1999'), () => 0n)).to.equal(1999n);
    expect(b.capacityFor(realKey('r-1900'), () => 0n)).to.equal(1900n); // the oldest of the 100 kept
    expect(b.capacityFor(realKey('r-1899'), () => 7n)).to.equal(7n); // forgotten: a new intent
    expect(b.capacityFor(realKey('first'), () => 8n)).to.equal(8n);
  });

  it('an open of a file whose entries are all live reads it and leaves it as it is', () => {
    const a = ResizeIntents.open(root.path);
    for (let i = 0; i < 10; i++) a.capacityFor(realKey(`r-${i}`), () => BigInt(i));
    const before = statSync(fileOf());
    const b = ResizeIntents.open(root.path);
    expect(statSync(fileOf()).ino).to.equal(before.ino);
    expect(statSync(fileOf()).size).to.equal(before.size);
    expect(b.capacityFor(realKey('r-3'), () => 0n)).to.equal(3n);
  });

  it('writes nothing when computing the capacity fails', () => {
    const a = ResizeIntents.open(root.path);
    expect(() =>
      a.capacityFor(key('bad'), () => {
        throw new Error('below the allocation');
      }),
    ).to.throw('below the allocation');
    expect(a.capacityFor(key('bad'), () => 3n)).to.equal(3n);
  });
});
