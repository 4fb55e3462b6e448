// What keeps a coordinator's cache current from the bus: the event stream from its end at start
// (everything before is covered by the fleet's full syncs), and the catalog bucket with every
// change. Events the stream removed before the cache read them are made good by a fleet resync.
import type { NatsConnection } from '@nats-io/transport-node';
import type { Catalog } from '../../libs/bus/catalog.js';
import type { Logger } from '../../libs/log/logger.js';
import type { FleetCache } from './cache.js';
import type { CatalogWatermark } from './catalog-watermark.js';
import { readEvents, streamBounds } from './event-log.js';
import { GapResync, SequenceGaps } from './event-gaps.js';

export interface CacheFeedOptions {
  nc: NatsConnection;
  cache: FleetCache;
  catalog: Catalog;
  catalogWatermark: CatalogWatermark;
  log: Logger;
  /** asks every agent for a full sync */
  resyncFleet: () => void;
}

/** Follows the event stream, then the catalog, into the cache; returns what stops them, in the order opened (stop them last first). */
export async function feedCache(o: CacheFeedOptions): Promise<Array<() => Promise<void> | void>> {
  const { nc, cache, log } = o;
  const stops: Array<() => Promise<void> | void> = [];
  try {
    const bounds = await streamBounds(nc);
    cache.advance(bounds.last);
    const gapResync = new GapResync(o.resyncFleet);
    stops.push(() => gapResync.stop());
    const gaps = new SequenceGaps(bounds.last + 1n, (gap) => {
      log.warn('events were removed from the stream before this coordinator read them (retention outran it); asking every agent for a full sync', {
        after: String(gap.after),
        next: String(gap.next),
        missed: String(gap.next - gap.after - 1n),
      });
      gapResync.gapFound();
    });
    const reader = await readEvents(nc, bounds.last + 1n, { log, reader: 'cache' }, (skipped) => {
      gaps.delivered(skipped.sequence);
      const what = skipped.event ? `ignored an event ${skipped.why}` : `ignored a stored message: ${skipped.why}`;
      log.warn(what, { subject: skipped.subject, host: skipped.event?.host, kind: skipped.event?.kind, seq: skipped.sequence });
      cache.advance(skipped.sequence);
    });
    stops.push(() => reader.close());
    void (async () => {
      try {
        for await (const event of reader) {
          gaps.delivered(event.sequence);
          try {
            cache.applyEvent(event);
          } catch (err) {
            log.error('could not apply event', { seq: event.sequence, err });
            cache.advance(event.sequence);
          }
        }
      } catch (err) {
        log.error('event stream reader stopped', { err });
      }
    })();

    // current entries, then every change (with revisions, deletions included); the watermark
    // moves with every entry read, one that names no pool included (catch-up.ts waits for it)
    const watch = await o.catalog.follow(
      (host, pool, value, revision) => {
        try {
          cache.applyCatalog(host, pool, value, revision);
        } catch (err) {
          log.warn('bad catalog entry', { host, pool, err });
        }
      },
      (revision) => o.catalogWatermark.advance(revision),
    );
    stops.push(() => watch.stop());
    return stops;
  } catch (err) {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
    throw err;
  }
}
