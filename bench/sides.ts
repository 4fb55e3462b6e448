// The two systems a side-by-side bench runs (bench/run.ts, bench/scaling.ts): a private
// libvirtd with ONE virsh session, and a Cistern stack; and stopping all of it exactly once,
// whether the run ends, fails, or is interrupted.
import { rmSync } from 'node:fs';
import { startCistern, type CisternSide } from './cistern.js';
import type { Ctx } from './context.js';
import { startLibvirtd, VirshSession, type LibvirtDaemon } from './libvirt.js';

export type SidesChoice = 'both' | 'libvirt' | 'cistern';

export function sidesFromEnv(variable: string): SidesChoice {
  const sides = process.env[variable] ?? 'both';
  if (sides !== 'both' && sides !== 'libvirt' && sides !== 'cistern') throw new Error(`${variable} must be both, libvirt or cistern`);
  return sides;
}

export interface BenchSides {
  daemon?: LibvirtDaemon;
  virsh?: VirshSession;
  cistern?: CisternSide;
  /** The workload context whose pools are dropped at the end (set it when it changes). */
  ctx?: Ctx;
  /** Stops everything this run started and removes `work`; once, however often it is called. */
  stop(): Promise<void>;
}

/**
 * Starts the chosen sides. Until stop(): an abrupt exit still destroys the libvirt pools,
 * stops libvirtd and removes `work` (the test harness kills the Cistern processes), and
 * Ctrl-C / SIGTERM stops everything in order (after `onSignal`, e.g. saving what was
 * measured) before exiting; a second signal, or 60 s, exits at once.
 */
export async function startSides(sides: SidesChoice, work: string, log: (msg: string) => void, onSignal?: () => void): Promise<BenchSides> {
  let stopping: Promise<void> | undefined;
  const onExit = (): void => {
    s.ctx?.dropLibvirtPoolsSync();
    if (s.virsh && !s.virsh.proc.killed) s.virsh.proc.kill('SIGKILL');
    s.daemon?.stopSync();
    rmSync(work, { recursive: true, force: true });
  };
  const signalled = (sig: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    log(`${sig}: stopping everything this run started`);
    onSignal?.();
    setTimeout(() => process.exit(130), 60_000).unref();
    void s.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const s: BenchSides = {
    stop: () =>
      (stopping ??= (async () => {
        await s.ctx?.dropAll().catch((e: Error) => log(`dropping pools: ${e.message}`));
        await s.virsh?.close().catch(() => undefined);
        await s.cistern?.stop().catch((e: Error) => log(`stopping Cistern: ${e.message}`));
        await s.daemon?.stop().catch((e: Error) => log(`stopping libvirtd: ${e.message}`));
        rmSync(work, { recursive: true, force: true });
        process.off('exit', onExit);
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.off(sig, signalled);
      })()),
  };
  process.on('exit', onExit);
  // the harness's own handler exits at once (killing Cistern but leaving its temp dirs)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(sig);
    process.on(sig, signalled);
  }
  try {
    if (sides !== 'cistern') {
      s.daemon = await startLibvirtd();
      log(`${s.daemon.version}${s.daemon.pid ? ` (private daemon, pid ${s.daemon.pid})` : ''} at ${s.daemon.uri}`);
      s.virsh = new VirshSession(s.daemon.uri);
      await s.virsh.run(['uri']);
      log(`one virsh session, pid ${s.virsh.pid}, drives every sequential libvirt workload`);
    }
    if (sides !== 'libvirt') {
      s.cistern = await startCistern();
      log(`Cistern: nats ${s.cistern.natsUrl}, coordinator ${s.cistern.address}, one agent`);
    }
  } catch (err) {
    await s.stop();
    throw err;
  }
  return s;
}
