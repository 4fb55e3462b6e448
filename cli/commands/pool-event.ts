// pool-event: follows WatchEvents. Without --loop it stops after the first event;
// --timeout SECONDS ends the wait; --after SEQ first replays the stored events after SEQ
// (--after 0: all of them, WatchEvents' from_start; its after_sequence 0 means only new ones).
import { parseHostName } from '../../libs/api/resource-names.js';
import { OutOfRangeError } from '../../libs/errors/errors.js';
import { GetPoolRequest, WatchEventsRequest, type Event, type EventKind } from '../../libs/proto/cistern/v1/storage.js';
import type { StorageApi } from '../api.js';
import { flag, str } from '../args.js';
import type { Command } from '../command.js';
import { attempt, CommandError, ReportedError, UsageError } from '../errors.js';
import { EVENT_CLASSES, eventClass, eventDetail, eventLine, kindsOf, type EventClass } from '../format/event.js';
import { toJson } from '../format/json.js';
import { poolJson } from '../format/pool.js';
import { volumeJson } from '../format/volume.js';
import { displayPool, fleetIsMultiHost, resolvePool, type ResolvedPool } from '../resolve.js';
import { parseCount } from '../size.js';
import { hostJson } from './host-list.js';

type Outcome = 'done' | 'timeout' | 'interrupt';

/**
 * One event as --json prints it, in the conventions of the other --json commands: 64-bit
 * values as JSON integers, lower-case words (`event` as --event names it, `detail` as the
 * line shows it), the states as pool-info, vol-info and host-list print them.
 */
export function eventJson(ev: Event): Record<string, unknown> {
  return {
    sequence: ev.sequence,
    event: eventClass(ev.kind) ?? 'unknown',
    detail: eventDetail(ev.kind).toLowerCase(),
    host: ev.host,
    pool: ev.pool,
    volume: ev.volume,
    time: ev.time ? ev.time.toISOString() : null,
    principal: ev.principal,
    requestId: ev.requestId,
    poolState: ev.poolState ? poolJson(ev.poolState) : null,
    volumeState: ev.volumeState ? volumeJson(ev.volumeState) : null,
    hostState: ev.hostState ? hostJson(ev.hostState) : null,
    progress: ev.progress ? { operation: ev.progress.operation, done: ev.progress.done, total: ev.progress.total } : null,
  };
}

/** The longest --timeout virsh takes (vshCommandOptTimeoutToMs: INT_MAX / 1000 seconds); Node's timers stop at 2^31-1 ms too. */
const MAX_TIMEOUT_SECONDS = 2_147_483n;

/**
 * virsh's vshCommandOptTimeoutToMs: 0 and anything over INT_MAX/1000 seconds are refused, naming
 * the value as read. A longer one would overflow Node's setTimeout, which then fires at once.
 */
export function timeoutToMs(seconds: bigint): number {
  if (seconds === 0n || seconds > MAX_TIMEOUT_SECONDS) {
    throw new UsageError(`Numeric value '${seconds}' for <timeout> option is malformed or out of range`);
  }
  return Number(seconds) * 1000;
}

/**
 * The pool --pool names, which must exist (virsh looks it up first too): a name, a UUID or
 * HOST/POOL. With --host, a name or UUID is looked up on that host only, and HOST/POOL must be
 * on it. Without these checks a typo would wait silently for events that never come.
 */
async function watchedPool(api: StorageApi, text: string, host: string | undefined): Promise<ResolvedPool> {
  const qualified = text.includes('/');
  const pool = await resolvePool(api, text, qualified ? undefined : host);
  if (qualified) {
    // resolvePool takes HOST/POOL as it is written; ask for it
    await attempt(`failed to get pool '${text}'`, () => api.getPool(GetPoolRequest.create({ name: pool.resource })));
    if (host !== undefined && pool.host !== host) {
      throw new UsageError(`pool '${text}' is on host '${pool.host}', and --host is '${host}': no event can match both`);
    }
  }
  return pool;
}

export const poolEvent: Command = {
  name: 'pool-event',
  help: 'Storage Pool Events',
  description: 'List event types, or wait for storage pool events to occur\n    With no --event, every kind but progress is shown. Cistern adds the volume, host and progress kinds.',
  options: [
    { name: 'pool', type: 'string', nonEmpty: true, help: 'filter by storage pool name or uuid' },
    { name: 'event', type: 'string', nonEmpty: true, help: `which event type to wait for (${EVENT_CLASSES.join(', ')})` },
    { name: 'loop', type: 'bool', help: 'loop until timeout or interrupt, rather than one-shot' },
    { name: 'timeout', type: 'string', metavar: 'number', help: 'timeout seconds' },
    { name: 'list', type: 'bool', help: 'list valid event types' },
    { name: 'timestamp', type: 'bool', help: 'show timestamp for each printed event' },
    { name: 'after', type: 'string', named: true, metavar: 'number', help: 'first replay the stored events after this sequence number (0: all of them)' },
    { name: 'host', type: 'string', named: true, metavar: 'host', nonEmpty: true, help: 'only events of this host' },
    { name: 'json', type: 'bool', help: 'print each event as one line of JSON' },
  ],
  async run(ctx) {
    const json = flag(ctx.opts, 'json');
    if (flag(ctx.opts, 'list')) {
      // --json is JSON and nothing else, here as for the events: one line, one array
      if (json) {
        ctx.setMachineOutput();
        ctx.print(toJson(EVENT_CLASSES, 0));
      } else ctx.print(EVENT_CLASSES.map((c) => `${c}\n`).join(''));
      return;
    }
    const loop = flag(ctx.opts, 'loop');
    const stamp = flag(ctx.opts, 'timestamp');
    const eventWord = str(ctx.opts, 'event');
    let classes: EventClass[] = ['lifecycle', 'refresh', 'volume', 'host'];
    if (eventWord !== undefined) {
      if (!EVENT_CLASSES.includes(eventWord as EventClass)) {
        throw new UsageError(`unknown event type ${eventWord}; allowed: ${EVENT_CLASSES.join(', ')}`);
      }
      classes = [eventWord as EventClass];
    }
    const timeoutText = str(ctx.opts, 'timeout');
    const timeoutMs = timeoutText !== undefined ? timeoutToMs(parseCount(timeoutText, 'timeout')) : undefined;
    const afterText = str(ctx.opts, 'after');
    const after = afterText !== undefined ? parseCount(afterText, 'after') : undefined;

    const poolText = str(ctx.opts, 'pool');
    if (poolText !== undefined && eventWord === 'host') {
      // WatchEvents' pool filter leaves out host events, which belong to no pool
      throw new UsageError(`--event host shows hosts' events, which belong to no pool, and --pool is '${poolText}': no event can match both; use --host`);
    }
    const api = ctx.api();
    // checked here: the server would name its own field (hosts[0]), not the option typed
    const hostText = str(ctx.opts, 'host');
    const host = hostText !== undefined ? parseHostName(hostText, 'host') : undefined;
    const pool = poolText !== undefined ? await watchedPool(api, poolText, host) : undefined;
    const multiHost = await fleetIsMultiHost(api);
    const kinds: EventKind[] = classes.flatMap(kindsOf);
    const request = WatchEventsRequest.create({
      afterSequence: after ?? 0n,
      fromStart: after === 0n,
      hosts: host !== undefined ? [host] : [],
      pools: pool ? [pool.resource] : [],
      kinds,
    });

    const stop = new AbortController();
    const state: { outcome: Outcome } = { outcome: 'done' };
    const end = (o: Outcome): void => {
      if (!stop.signal.aborted) {
        state.outcome = o;
        stop.abort();
      }
    };
    const timer = timeoutMs !== undefined ? setTimeout(() => end('timeout'), timeoutMs) : undefined;
    const onInterrupt = (): void => end('interrupt');
    ctx.signal.addEventListener('abort', onInterrupt, { once: true });
    if (ctx.signal.aborted) end('interrupt');
    if (json) ctx.setMachineOutput();
    let count = 0;
    // the last sequence this watch has dealt with: once the server positioned it (its first
    // sequence to look at, S), everything up to S - 1 is behind it, received or not
    let lastSequence: bigint | undefined;
    const positioned = (start?: bigint): void => {
      // (a replay of an empty stream starts at 0: --after 0 is still right)
      if (start !== undefined && lastSequence === undefined) lastSequence = start > 0n ? start - 1n : 0n;
    };
    try {
      for await (const ev of api.watchEvents(request, stop.signal, positioned)) {
        lastSequence = ev.sequence;
        const cls = eventClass(ev.kind);
        if (!cls || !classes.includes(cls)) continue;
        if (pool && (ev.host !== pool.host || ev.pool !== pool.pool)) continue;
        count++;
        if (json) {
          ctx.print(toJson(eventJson(ev), 0));
        } else {
          ctx.print(eventLine(ev, ev.pool ? displayPool(ev.host, ev.pool, multiHost) : '', stamp));
        }
        if (!loop) {
          end('done');
          break;
        }
      }
    } catch (err) {
      // the stream ended under the watcher (a coordinator shutting down): what was shown is
      // counted as a normal end counts it, and the watcher is told where to resume (text output
      // shows no sequences; a watch that received nothing yet would otherwise be run again
      // from "now" and miss what came meanwhile). A watch never positioned was refused: its
      // reason alone (docs/events.md)
      if (lastSequence === undefined) throw err;
      if (!json) ctx.print(`events received: ${count}\n`);
      // fell behind retention: --after with its last sequence is refused the same way; the
      // reason says where the stream now begins, after the state is read again
      if (err instanceof OutOfRangeError) throw err;
      throw new CommandError(`the event stream ended after sequence ${lastSequence}: resume with --after ${lastSequence}`, err);
    } finally {
      if (timer) clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onInterrupt);
    }
    if (!json) {
      if (state.outcome === 'timeout') ctx.print('event loop timed out\n');
      if (state.outcome === 'interrupt') ctx.print('event loop interrupted\n');
      ctx.print(`events received: ${count}\n`);
    }
    // virsh's cmdPoolEvent succeeds only when an event came (`if (count) ret = true`): a
    // timeout or Ctrl-C with none is exit status 1, with nothing more printed
    if (count === 0) throw new ReportedError();
  },
};
