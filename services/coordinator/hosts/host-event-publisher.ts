// Publishing HOST_ONLINE / HOST_OFFLINE until the stream stores them. Nothing else would: a
// host's change of state is seen once (a silence, a sync), and a watcher that is not told
// believes a gone host is still there, or a returned one still gone. JetStream refuses events
// now and then (the stream full with discard=new, a publish whose ack timed out, the bus
// restarting), so a refused host event is published again, backing off, for up to
// HOST_EVENT_RETRY_FOR_MS: within JetStream's 2 minute duplicate window, where the event's
// request id makes a repeat of one that was stored after all (an ack lost) a no-op.
//
// A host's events are stored in the order they were made: each is published at once, and a
// refused one is given up when a newer event of the same host was made meanwhile (logged),
// before its next attempt: the newer one, published already, says the host's state now, and an
// outdated one stored after it would say the opposite (a HOST_OFFLINE after the HOST_ONLINE of
// the host's return). An attempt already on its way was sent before the newer event, on the
// same connection, and JetStream stores them in that order.
import { EventKind, type Event } from '../../../libs/proto/cistern/v1/storage.js';
import type { Logger } from '../../../libs/log/logger.js';

/** How long a refused host event is published again (JetStream's duplicate window is 2 minutes). */
export const HOST_EVENT_RETRY_FOR_MS = 100_000;
/** Waits between attempts: doubling from the first, at most the last. */
export const HOST_EVENT_RETRY_DELAYS_MS = [250, 500, 1000, 2000];

export interface HostEventPublisherOptions {
  publish: (event: Event) => Promise<unknown>;
  log: Logger;
  retryForMs?: number;
  delaysMs?: number[];
}

export class HostEventPublisher {
  /**
   * per host with an event still being published: the number of its newest event, and how many
   * of its events are in flight. A host leaves the map with its last one, so hosts seen once
   * (deleted, renamed) cost nothing for the coordinator's lifetime; numbering starts again
   * from 1 then, with no older attempt left to compare against it.
   */
  private readonly hosts = new Map<string, { newest: number; inFlight: number }>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private readonly wakers = new Set<() => void>();

  constructor(private readonly o: HostEventPublisherOptions) {}

  /** Publishes the event now, and again while it is refused and no newer one of its host was made. */
  emit(event: Event): void {
    if (this.stopped) return;
    const host = event.host;
    let state = this.hosts.get(host);
    if (!state) this.hosts.set(host, (state = { newest: 0, inFlight: 0 }));
    const number = ++state.newest;
    state.inFlight++;
    const own = state;
    const publishing = this.publishUntilStored(event, () => own.newest !== number).finally(() => {
      this.inFlight.delete(publishing);
      if (--own.inFlight === 0) this.hosts.delete(host);
    });
    this.inFlight.add(publishing);
  }

  /** Hosts with an event still being published (tests: nothing is kept once they are stored). */
  get hostsInFlight(): number {
    return this.hosts.size;
  }

  /** Resolves when every event emitted so far is stored or given up (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** No more attempts: the coordinator stops. */
  stop(): void {
    this.stopped = true;
    for (const wake of [...this.wakers]) wake();
  }

  private async publishUntilStored(event: Event, superseded: () => boolean): Promise<void> {
    const { log } = this.o;
    const delays = this.o.delaysMs ?? HOST_EVENT_RETRY_DELAYS_MS;
    const until = Date.now() + (this.o.retryForMs ?? HOST_EVENT_RETRY_FOR_MS);
    const what = { host: event.host, kind: EventKind[event.kind], requestId: event.requestId };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.o.publish(event);
        if (attempt > 0) log.info('host event stored', { ...what, attempts: attempt + 1 });
        return;
      } catch (err) {
        const delay = delays[Math.min(attempt, delays.length - 1)] ?? 1000;
        if (this.stopped) return;
        if (superseded()) {
          log.warn('host event not stored; a newer event of the host was published instead', { ...what, err });
          return;
        }
        if (Date.now() + delay > until) {
          log.error('host event not stored: watchers of the event stream miss this change of the host', { ...what, attempts: attempt + 1, err });
          return;
        }
        log.warn('host event not stored; publishing it again', { ...what, inMs: delay, err });
        await this.sleep(delay);
        if (this.stopped) return;
        if (superseded()) {
          log.warn('host event not stored; a newer event of the host was published instead', { ...what });
          return;
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakers.add(done);
    });
  }
}
