// cisternctl's progress bar for the long unary calls (wipe, clone, create-from, allocating
// creates, resize --allocate, pool-build), fed by OPERATION_PROGRESS events from WatchEvents:
// what a user sees on a terminal, and that nothing changes off a terminal.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Event, EventKind, Progress,
  type BuildPoolRequest, type CloneVolumeRequest, type CreateVolumeRequest, type ResizeVolumeRequest,
  type WatchEventsRequest, type WipeVolumeRequest,
} from '../../../libs/proto/cistern/v1/storage.js';
import { FailedPreconditionError, UnimplementedError } from '../../../libs/errors/errors.js';
import { withProgress } from '../../../cli/progress-watch.js';
import { xmlAllocates } from '../../../cli/commands/vol-create.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

const MiB = 1024n * 1024n;

/**
 * A FakeApi whose WatchEvents is live: events the "agent" publishes while a call runs reach
 * every open watch, as the real stream does. Each long call publishes progress for its request
 * id (and some progress of another request), then its result event.
 */
class LiveApi extends FakeApi {
  private watchers: Array<{ req: WatchEventsRequest; push: (e: Event) => void }> = [];
  /** progress steps (done of total) each long call reports */
  steps: bigint[] = [0n, 16n * MiB, 48n * MiB, 64n * MiB];
  total = 64n * MiB;
  /** publish the result event (the real agent always does) */
  sendResult = true;
  watchFails: Error | undefined;
  /** a watch is positioned (sees events) only this long after it is opened, as the server's */
  positionDelayMs = 0;

  get openWatches(): number {
    return this.watchers.length;
  }

  publish(e: Event): void {
    for (const w of this.watchers) {
      const r = w.req;
      if (r.kinds.length && !r.kinds.includes(e.kind)) continue;
      if (r.hosts.length && !r.hosts.includes(e.host)) continue;
      if (r.pools.length && !r.pools.includes(`hosts/${e.host}/pools/${e.pool}`)) continue;
      w.push(e);
    }
  }

  private operate(op: string, host: string, poolName: string, volName: string, requestId: string, result: EventKind): void {
    const ev = (over: Partial<Event>): Event => Event.create({ host, pool: poolName, volume: volName, ...over });
    // someone else's operation on the same pool: never drawn
    this.publish(ev({ kind: EventKind.OPERATION_PROGRESS, requestId: 'other', progress: Progress.create({ operation: op, done: 1n, total: 3n }) }));
    for (const done of this.steps) {
      this.publish(ev({ kind: EventKind.OPERATION_PROGRESS, requestId, progress: Progress.create({ operation: op, done, total: this.total }) }));
    }
    if (this.sendResult) this.publish(ev({ kind: result, requestId }));
  }

  override async *watchEvents(r: unknown, signal?: AbortSignal, onPositioned?: () => void): AsyncGenerator<Event> {
    this.calls.push({ method: 'watchEvents', request: r });
    if (this.watchFails) throw this.watchFails;
    const queue: Event[] = [];
    let wake: (() => void) | undefined;
    const w = { req: r as WatchEventsRequest, push: (e: Event) => { queue.push(e); wake?.(); } };
    // events published before the watch is positioned are not its to see
    if (this.positionDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.positionDelayMs));
    this.watchers.push(w);
    onPositioned?.();
    const aborted = new Promise<void>((resolve) => {
      if (!signal || signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (signal?.aborted) return;
        await Promise.race([aborted, new Promise<void>((resolve) => { wake = resolve; })]);
        if (signal?.aborted && queue.length === 0) return;
      }
    } finally {
      this.watchers = this.watchers.filter((x) => x !== w);
    }
  }

  override async wipeVolume(r: { name: string }) {
    const v = await super.wipeVolume(r);
    const req = r as WipeVolumeRequest;
    this.operate('wipe', v.host, v.pool, v.definition!.name, req.requestId, EventKind.VOLUME_WIPED);
    return v;
  }
  override async resizeVolume(r: { name: string }) {
    const v = await super.resizeVolume(r);
    this.operate('resize', v.host, v.pool, v.definition!.name, (r as ResizeVolumeRequest).requestId, EventKind.VOLUME_RESIZED);
    return v;
  }
  override async cloneVolume(r: Parameters<FakeApi['cloneVolume']>[0]) {
    const v = await super.cloneVolume(r);
    this.operate('clone', v.host, v.pool, v.definition!.name, (r as CloneVolumeRequest).requestId, EventKind.VOLUME_CREATED);
    return v;
  }
  override async createVolume(r: Parameters<FakeApi['createVolume']>[0]) {
    const v = await super.createVolume(r);
    this.operate('create', v.host, v.pool, v.definition!.name, (r as CreateVolumeRequest).requestId, EventKind.VOLUME_CREATED);
    return v;
  }
  override async buildPool(r: { name: string }) {
    const p = await super.buildPool(r);
    this.operate('build', p.host, p.definition!.name, '', (r as BuildPoolRequest).requestId, EventKind.POOL_CREATED);
    return p;
  }
}

function liveApi(): LiveApi {
  const api = new LiveApi(['a']);
  api.pools = [pool('a', 'images')];
  api.volumes = [volume('a', 'images', 'disk.img', 64n * MiB, 64n * MiB)];
  return api;
}

/** The bar lines drawn (each redraw starts with \r). */
function bars(stderr: string): string[] {
  return stderr.split('\r').map((s) => s.trimEnd()).filter((s) => s.includes('['));
}

describe('cisternctl progress bar for long calls (WatchEvents)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-progress-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('vol-wipe on a terminal: watches the pool\'s progress before the call, draws its own request\'s bar to 100 %, then virsh\'s message', async () => {
    const api = liveApi();
    const r = await run(api, ['vol-wipe', 'disk.img', '--pool', 'images'], { tty: true });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Vol disk.img wiped\n\n');
    const order = api.calls.map((c) => c.method).filter((m) => m === 'watchEvents' || m === 'wipeVolume');
    expect(order).to.deep.equal(['watchEvents', 'wipeVolume']);
    const watch = api.callsOf('watchEvents')[0] as WatchEventsRequest;
    expect(watch.hosts).to.deep.equal(['a']);
    expect(watch.pools).to.deep.equal(['hosts/a/pools/images']);
    expect(watch.kinds).to.include(EventKind.OPERATION_PROGRESS);
    const wipe = api.callsOf('wipeVolume')[0] as WipeVolumeRequest;
    expect(wipe.requestId).to.match(/^[A-Za-z0-9._:-]{1,128}$/);
    const lines = bars(r.stderr);
    expect(lines[0]).to.equal('wipe disk.img: [>                             ]   0% 0.00 B / 64.00 MiB');
    expect(lines.at(-1)).to.equal('wipe disk.img: [==============================] 100% 64.00 MiB / 64.00 MiB');
    expect(lines.some((l) => l.includes('/ 3.00 B'))).to.equal(false); // the other request's progress
    expect(r.stderr.endsWith('\n')).to.equal(true);
    expect(api.openWatches).to.equal(0);
  });

  it('a watch the server positions late: the call waits for it, so the bar still starts at 0 % and reaches 100 %', async () => {
    const api = liveApi();
    api.positionDelayMs = 50; // a loaded server creating the watch's consumer
    const r = await run(api, ['vol-wipe', 'disk.img', '--pool', 'images'], { tty: true });
    expect(r.code).to.equal(0);
    const lines = bars(r.stderr);
    expect(lines[0]).to.equal('wipe disk.img: [>                             ]   0% 0.00 B / 64.00 MiB');
    expect(lines.at(-1)).to.equal('wipe disk.img: [==============================] 100% 64.00 MiB / 64.00 MiB');
  });

  it('off a terminal nothing changes: no watch, no request id, no bar, virsh\'s output only', async () => {
    const api = liveApi();
    const r = await run(api, ['vol-wipe', 'disk.img', '--pool', 'images']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Vol disk.img wiped\n\n');
    expect(r.stderr).to.equal('');
    expect(api.callsOf('watchEvents')).to.have.length(0);
    expect((api.callsOf('wipeVolume')[0] as WipeVolumeRequest).requestId).to.equal('');
  });

  it('vol-clone, vol-create-from, vol-create-as, vol-resize --allocate and pool-build draw their bars', async () => {
    const xml = join(dir, 'new.xml');
    await writeFile(xml, '<volume><name>new.img</name><capacity>67108864</capacity></volume>');
    const cases: Array<{ argv: string[]; label: string; message: string }> = [
      { argv: ['vol-clone', 'disk.img', 'copy.img', '--pool', 'images'], label: 'clone copy.img:', message: 'Vol copy.img cloned from disk.img\n' },
      { argv: ['vol-create-from', 'images', xml, 'disk.img', '--inputpool', 'images'], label: 'clone fromxml:', message: 'Vol fromxml created from input vol disk.img\n' },
      { argv: ['vol-create-as', 'images', 'full.img', '64M'], label: 'create full.img:', message: 'Vol full.img created\n' },
      { argv: ['vol-create', 'images', xml], label: 'create fromxml:', message: `Vol fromxml created from ${xml}\n` },
      { argv: ['vol-resize', 'disk.img', '128M', '--pool', 'images', '--allocate'], label: 'resize disk.img:', message: "Size of volume 'disk.img' successfully changed to 128M\n" },
      { argv: ['pool-build', 'images'], label: 'build images:', message: 'Pool images built\n' },
    ];
    for (const c of cases) {
      const api = liveApi();
      const r = await run(api, c.argv, { tty: true });
      expect(r.code, c.argv.join(' ') + r.stderr).to.equal(0);
      expect(r.stdout, c.argv[0]).to.equal(`${c.message}\n`);
      expect(bars(r.stderr).at(-1), c.argv[0]).to.equal(`${c.label} [==============================] 100% 64.00 MiB / 64.00 MiB`);
    }
  });

  it('creates that allocate nothing and resizes without --allocate send no request id and open no watch', async () => {
    const sparseXml = join(dir, 'sparse.xml');
    await writeFile(sparseXml, '<volume><name>s.img</name><capacity>1048576</capacity><allocation>0</allocation></volume>');
    for (const argv of [
      ['vol-create-as', 'images', 'sparse.img', '64M', '--allocation', '0'],
      ['vol-create', 'images', sparseXml],
      ['vol-resize', 'disk.img', '128M', '--pool', 'images'],
    ]) {
      const api = liveApi();
      const r = await run(api, argv, { tty: true });
      expect(r.code, argv.join(' ')).to.equal(0);
      expect(api.callsOf('watchEvents'), argv[0]).to.have.length(0);
      expect(r.stderr, argv[0]).to.equal('');
    }
    expect(xmlAllocates('<volume><capacity>1</capacity></volume>')).to.equal(true);
    expect(xmlAllocates("<volume><allocation unit='M'>10</allocation></volume>")).to.equal(true);
    expect(xmlAllocates("<volume><allocation unit='bytes'> 0 </allocation></volume>")).to.equal(false);
    expect(xmlAllocates('<volume><backingStore><path>/x</path></backingStore></volume>')).to.equal(false);
  });

  it('a failed call prints virsh\'s error after ending the bar line; the watch is closed', async () => {
    const api = liveApi();
    api.failures.set('wipeVolume', new FailedPreconditionError("storage pool 'images' is not active"));
    const r = await run(api, ['vol-wipe', 'disk.img', '--pool', 'images'], { tty: true });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("error: Failed to wipe vol disk.img\nerror: storage pool 'images' is not active\n");
    expect(r.stdout).to.equal('\n');
    expect(api.openWatches).to.equal(0);
  });

  it('a watch the server refuses only means no bar: the call runs and succeeds', async () => {
    const api = liveApi();
    api.watchFails = new UnimplementedError('WatchEvents is not implemented');
    const r = await run(api, ['vol-wipe', 'disk.img', '--pool', 'images'], { tty: true });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Vol disk.img wiped\n\n');
    expect(r.stderr).to.equal('');
    expect((api.callsOf('wipeVolume')[0] as WipeVolumeRequest).requestId).to.not.equal('');
  });

  it('withProgress: after the call returns it reads on until the result event, so late progress is still drawn', async () => {
    const api = liveApi();
    let stderr = '';
    const ctx = {
      api: () => api,
      stderr: { write: (t: string) => { stderr += t; }, isTTY: true },
      signal: new AbortController().signal,
    };
    const target = { host: 'a', pool: 'images', result: EventKind.VOLUME_WIPED };
    const result = await withProgress(ctx, target, async (requestId) => {
      // the events reach the watcher only after the call has answered
      setImmediate(() => {
        for (const done of [32n * MiB, 64n * MiB]) {
          api.publish(Event.create({ kind: EventKind.OPERATION_PROGRESS, host: 'a', pool: 'images', volume: 'v', requestId, progress: { operation: 'wipe', done, total: 64n * MiB } }));
        }
        api.publish(Event.create({ kind: EventKind.VOLUME_WIPED, host: 'a', pool: 'images', volume: 'v', requestId }));
      });
      return 'answer';
    }, { requestId: () => 'req-1' });
    expect(result).to.equal('answer');
    expect(bars(stderr).at(-1)).to.equal('wipe v: [==============================] 100% 64.00 MiB / 64.00 MiB');
  });

  it('withProgress: without a result event it stops after the grace period (no hang)', async () => {
    const api = liveApi();
    api.sendResult = false;
    let stderr = '';
    const ctx = {
      api: () => api,
      stderr: { write: (t: string) => { stderr += t; }, isTTY: true },
      signal: new AbortController().signal,
    };
    const out = await withProgress(ctx, { host: 'a', pool: 'images', result: EventKind.VOLUME_WIPED },
      async () => 'ok', { graceMs: 10 });
    expect(out).to.equal('ok');
    expect(stderr).to.equal('');
  });
});
