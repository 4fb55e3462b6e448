// A dir-like in-memory backend of one volume 'v' whose re-reads (refreshVol) and pool scans
// (refreshPool) take the size as they start and may then wait on a gate: a slow stat, lvs, iSCSI
// READ CAPACITY or readdir of a big pool, so that a test can run other work while they read.
// A scan may also wait before it reads (the volume it finds is then the one of that moment),
// and a create's build may wait and then fail, removing what its create made.
import { PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import type { BackendOperation, PoolContext, StorageBackend } from '../../libs/backends/backend.js';
import { dispatch } from '../../services/agent/agent.js';
import { checkAborted } from '../../libs/backends/file-io.js';
import { inProcessAgent } from './agent-context.js';
import { attachSignal } from '../../services/agent/context.js';

export class SlowReadBackend implements StorageBackend {
  readonly type = PoolType.POOL_TYPE_DIR;
  readonly poolFormats = [];
  readonly defaultPoolFormat = '';
  readonly volumeFormats = ['raw'];
  readonly defaultVolumeFormat = 'raw';
  readonly operations: ReadonlySet<BackendOperation> = new Set(['refreshPool', 'createVol', 'buildVol', 'deleteVol', 'resizeVol']);
  /** undefined: the volume is gone */
  size: bigint | undefined = 3n;
  /** the next read waits for this after taking the size */
  nextReadGate: Promise<void> | undefined;
  /** the next pool scan waits for this after taking the size */
  nextScanGate: Promise<void> | undefined;
  /** the next pool scan waits for this before taking the size */
  nextScanReadGate: Promise<void> | undefined;
  /** the next pool scan fails with this after its gates (the pool's directory gone, lvs failing) */
  nextScanFailure: Error | undefined;
  /** the next build waits for this, then fails and removes the volume its create made */
  nextFailingBuild: Promise<void> | undefined;
  def(capacity: bigint): VolumeDefinition {
    return VolumeDefinition.fromPartial({ name: 'v', key: '/p/v', capacity, allocation: capacity, target: { path: '/p/v', format: 'raw' } });
  }
  async refreshPool(ctx?: PoolContext) {
    const before = this.nextScanReadGate;
    this.nextScanReadGate = undefined;
    if (before) await before;
    const size = this.size;
    const gate = this.nextScanGate;
    this.nextScanGate = undefined;
    if (gate) await gate;
    // as the dir backend between its slices: a scan whose caller gave up stops here
    checkAborted(ctx?.signal, 'refresh');
    const failure = this.nextScanFailure;
    this.nextScanFailure = undefined;
    if (failure) throw failure;
    return { runtime: this.sizesWith(size), volumes: size === undefined ? [] : [this.def(size)] };
  }
  /** The pool's sizes with the volume at `size` (a refresh reads them as it starts; poolSizes now). */
  private sizesWith(size: bigint | undefined) {
    const allocation = size ?? 0n;
    return { capacity: 1000n, allocation, available: 1000n - allocation };
  }
  async poolSizes() {
    return this.sizesWith(this.size);
  }
  async refreshVol(_ctx: PoolContext, _v: VolumeDefinition): Promise<VolumeDefinition> {
    const size = this.size;
    const gate = this.nextReadGate;
    this.nextReadGate = undefined;
    if (gate) await gate;
    if (size === undefined) throw new Error("cannot stat file '/p/v'");
    return this.def(size);
  }
  async createVol(_ctx: PoolContext, v: VolumeDefinition): Promise<VolumeDefinition> {
    this.size = v.capacity ?? 0n;
    return this.def(this.size);
  }
  async buildVol(): Promise<void> {
    const gate = this.nextFailingBuild;
    this.nextFailingBuild = undefined;
    if (!gate) return;
    await gate;
    this.size = undefined;
    throw new Error("cannot write '/p/v': No space left on device");
  }
  async deleteVol() {
    this.size = undefined;
  }
  async resizeVol(_ctx: PoolContext, _v: VolumeDefinition, capacity: bigint) {
    this.size = capacity;
  }
}

const poolDef = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/p' } });

/** An in-process agent over a SlowReadBackend, its pool 'p' started, and the requests tests send. */
export async function slowReadAgent() {
  const backend = new SlowReadBackend();
  const { ctx, events } = inProcessAgent({ runner: { run: async () => ({ stdout: '', stderr: '', exitCode: 0 }) }, backend });
  /** Sends `op`; `signal`: its caller's cancel (the client's, or its deadline). */
  const call = (op: AgentRequest['op'], signal?: AbortSignal) => {
    const req = AgentRequest.fromPartial({ principal: 'alice', pool: poolDef });
    req.op = op;
    if (signal) attachSignal(req, signal);
    return dispatch(ctx, op!.$case, req);
  };
  await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p', build: false, buildFlags: undefined, requestId: '' } });
  const reread = { $case: 'refreshVolume' as const, value: { name: 'hosts/h/pools/p/volumes/v', refresh: true } };
  const capacityOf = (r: Awaited<ReturnType<typeof call>>) => (r.result?.$case === 'volume' ? r.result.value.definition?.capacity : undefined);
  /** Sets one of the backend's gates; returns what opens it. */
  const hold = (gate: 'nextReadGate' | 'nextScanGate' | 'nextScanReadGate' | 'nextFailingBuild') => (): (() => void) => {
    let open!: () => void;
    backend[gate] = new Promise<void>((r) => (open = r));
    return open;
  };
  /** The next re-read waits after it took the size. */
  const holdNextRead = hold('nextReadGate');
  /** The next pool scan waits after it took the size. */
  const holdNextScan = hold('nextScanGate');
  /** The next pool scan waits before it takes the size. */
  const holdNextScanRead = hold('nextScanReadGate');
  /** The next build waits, then fails and removes the volume. */
  const holdNextBuildThenFail = hold('nextFailingBuild');
  return { backend, ctx, events, call, reread, capacityOf, holdNextRead, holdNextScan, holdNextScanRead, holdNextBuildThenFail };
}

/** A RefreshPool of the pool slowReadAgent starts. */
export const REFRESH_POOL = { $case: 'refreshPool' as const, value: { name: 'hosts/h/pools/p', requestId: '' } };

/** Lets the handlers run up to their next real wait. */
export const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
