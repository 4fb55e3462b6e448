// The pools an agent brings up as it starts: those that were running when it stopped and are
// still up (restore.ts), then the catalog's autostart pools (autostart.ts). Agent.start waits
// for each at most AUTOSTART_WAIT_MS: a pool whose start hangs must not keep the host offline.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Catalog } from '../../libs/bus/catalog.js';
import { autostartPools } from './autostart.js';
import type { AgentContext } from './context.js';
import { coordinatorPoolSecrets } from './pool-secrets.js';
import { restoreRunningPools } from './restore.js';
import { RunningPools } from './running-pools.js';
import { poolMountOf } from '../../libs/backends/pool-mounts.js';
import type { HostSyncer } from './sync.js';

/**
 * Restores the pools running when this agent stopped, and keeps their record under `root`
 * current from now on. The record keeps those not settled yet (a check still running, or the
 * catalog unreadable) besides the active ones, so a restart meanwhile does not forget them; a
 * pool started or stopped meanwhile is settled by that. A hung check (a dead NFS server) holds
 * its pool's lock, not the agent. Resolves when the restore is over (a failure is logged).
 */
export function restorePoolsRunningBefore(ctx: AgentContext, root: string, catalog: Catalog): Promise<void> {
  const { state, log } = ctx;
  const running = RunningPools.open(root, ctx.host);
  const loaded = running.load();
  if (loaded.otherHost) {
    // still mounted or logged in, maybe: the operator decides, not this agent
    log.warn(`pools recorded as running by the agent of host '${loaded.otherHost.host}' on this root are not restored as this host's; stop them by hand or start that host's agent`, {
      host: loaded.otherHost.host,
      pools: loaded.otherHost.pools,
    });
  }
  const unsettled = new Map(loaded.pools.map((r) => [r.definition.name, r]));
  const recordRunning = (): void => {
    try {
      // an fs or netfs pool's mount too: what a restart finds it by when its source name changed
      const active = [...state.pools.values()].map((e) => ({ definition: e.definition, mount: poolMountOf(e.definition) }));
      running.save([...active, ...[...unsettled.values()].filter((r) => !state.pools.has(r.definition.name))]);
    } catch (err) {
      log.error('could not record the running pools; a restart of this agent will show them inactive', { error: err });
    }
  };
  const settled = (pool: string): void => {
    unsettled.delete(pool);
    recordRunning();
  };
  state.onPoolSetChanged = settled;
  return restoreRunningPools(ctx, [...unsettled.values()], catalog, settled).then(
    () => undefined,
    (err: unknown) => log.error('the pools running before could not be restored; they are inactive for now', { error: err }),
  );
}

/**
 * Starts the catalog's autostart pools. One with CHAP auth gets its secret from a coordinator;
 * without one it waits, and is started when the syncer next sees a coordinator (a
 * ResyncRequest). Resolves when the first round is over (a failure is logged).
 */
export function autostartAtBoot(ctx: AgentContext, nc: NatsConnection, catalog: Catalog, syncer: HostSyncer): Promise<void> {
  const { log } = ctx;
  const secretsFor = coordinatorPoolSecrets(nc, ctx.host);
  let waitingForSecrets = new Set<string>();
  // a coordinator seen while the first round still runs: its pools that waited are retried at once
  let firstRoundDone = false;
  let seenDuringFirstRound = false;
  syncer.onCoordinatorSeen = () => {
    if (!firstRoundDone) {
      seenDuringFirstRound = true;
      return;
    }
    if (waitingForSecrets.size === 0) return;
    const retry = waitingForSecrets;
    waitingForSecrets = new Set();
    log.info('a coordinator is up: starting the autostart pools that waited for their secret', { pools: [...retry] });
    void autostartPools(ctx, catalog, secretsFor, retry).then(
      (result) => {
        for (const pool of result.retryable) waitingForSecrets.add(pool);
        if (result.started.length > 0) void syncer.request('autostart');
      },
      (err: unknown) => log.error('autostart could not read the catalog', { error: err }),
    );
  };
  return autostartPools(ctx, catalog, secretsFor).then(
    (result) => {
      waitingForSecrets = new Set(result.retryable);
      firstRoundDone = true;
      if (seenDuringFirstRound) syncer.onCoordinatorSeen?.();
    },
    (err: unknown) => {
      firstRoundDone = true;
      log.error('autostart could not read the catalog', { error: err });
    },
  );
}
