// What every workload gets: sizes, a scratch directory, the virsh session, the Cistern client.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CisternSide } from './cistern.js';
import { vq, type VirshSession } from './libvirt.js';

export interface Sizes {
  /** raw creates (and deletes), sequential, one client */
  creates: number;
  /** files in the refresh / list pool */
  files: number;
  /** qcow2 1 GiB creates */
  qcow2: number;
  /** bytes wiped */
  wipeBytes: number;
  /** clone source capacity and how many 1 MiB chunks of data it holds */
  cloneBytes: number;
  cloneChunks: number;
  /** round trips per repetition in the control-overhead workload */
  controlOps: number;
  /** raw creates spread over `clients` concurrent clients */
  concurrentCreates: number;
  clients: number;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export function sizesFromEnv(env: NodeJS.ProcessEnv = process.env): Sizes {
  const quick = env.BENCH_QUICK === '1';
  const base: Sizes = quick
    ? { creates: 100, files: 1000, qcow2: 20, wipeBytes: 32 * MiB, cloneBytes: 128 * MiB, cloneChunks: 12, controlOps: 100, concurrentCreates: 160, clients: 16 }
    : { creates: 1000, files: 10_000, qcow2: 200, wipeBytes: 256 * MiB, cloneBytes: GiB, cloneChunks: 100, controlOps: 500, concurrentCreates: 1000, clients: 16 };
  const num = (name: string, fallback: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}='${v}' is not a positive whole number`);
    return n;
  };
  return {
    creates: num('BENCH_CREATES', base.creates),
    files: num('BENCH_FILES', base.files),
    qcow2: num('BENCH_QCOW2', base.qcow2),
    wipeBytes: num('BENCH_WIPE_MIB', base.wipeBytes / MiB) * MiB,
    cloneBytes: num('BENCH_CLONE_MIB', base.cloneBytes / MiB) * MiB,
    cloneChunks: num('BENCH_CLONE_DATA_MIB', base.cloneChunks),
    controlOps: num('BENCH_CONTROL_OPS', base.controlOps),
    concurrentCreates: num('BENCH_CONCURRENT_CREATES', base.concurrentCreates),
    clients: num('BENCH_CLIENTS', base.clients),
  };
}

export class Ctx {
  private libvirtPools = new Set<string>();
  private cisternPools = new Set<string>();
  constructor(
    readonly sizes: Sizes,
    readonly work: string,
    readonly virsh: VirshSession | undefined,
    readonly libvirtUri: string | undefined,
    readonly cistern: CisternSide | undefined,
    readonly log: (msg: string) => void,
  ) {}

  get lv(): VirshSession {
    if (!this.virsh) throw new Error('libvirt side is not running');
    return this.virsh;
  }
  get cs(): CisternSide {
    if (!this.cistern) throw new Error('Cistern side is not running');
    return this.cistern;
  }

  dir(name: string): string {
    const d = join(this.work, name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** A transient libvirt dir pool over work/<name> (directory created if missing). */
  async libvirtPool(name: string, dir = this.dir(name)): Promise<string> {
    await this.lv.run([`pool-create-as ${vq(name)} dir --target ${vq(dir)}`]);
    this.libvirtPools.add(name);
    return dir;
  }

  async dropLibvirtPool(name: string, removeDir = true): Promise<void> {
    await this.lv.run([`pool-destroy ${vq(name)}`]);
    this.libvirtPools.delete(name);
    if (removeDir) rmSync(join(this.work, name), { recursive: true, force: true });
  }

  async cisternPool(name: string, dir = this.dir(name)): Promise<string> {
    const { createDirPool } = await import('./cistern.js');
    await createDirPool(this.cs.api, name, dir);
    this.cisternPools.add(name);
    return dir;
  }

  async dropCisternPool(name: string, removeDir = true): Promise<void> {
    const { destroyPool } = await import('./cistern.js');
    await destroyPool(this.cs.api, name);
    this.cisternPools.delete(name);
    if (removeDir) rmSync(join(this.work, name), { recursive: true, force: true });
  }

  /**
   * Best-effort teardown of whatever pools are still there. The libvirt pools the session
   * could not destroy go through a virsh of their own: Ctrl-C in a terminal kills the session
   * (SIGINT reaches the whole process group) before the bench's handler gets here, and a
   * daemon given by BENCH_LIBVIRT_URI would keep them after the run.
   */
  async dropAll(): Promise<void> {
    for (const p of [...this.libvirtPools]) await this.dropLibvirtPool(p, false).catch(() => undefined);
    this.dropLibvirtPoolsSync();
    for (const p of [...this.cisternPools]) await this.dropCisternPool(p, false).catch(() => undefined);
  }

  /** Synchronous last resort (process exit): destroy libvirt pools with a separate virsh. */
  dropLibvirtPoolsSync(): void {
    if (!this.libvirtUri) return;
    for (const p of this.libvirtPools) spawnSync('virsh', ['-q', '-c', this.libvirtUri, 'pool-destroy', p], { stdio: 'ignore' });
    this.libvirtPools.clear();
  }
}
