// host-ping: is a host's agent answering, and what does a round trip to it cost (PingHost).
// Cistern's own command: virsh has no hosts. Each line gives the whole round trip as this
// client saw it, and the coordinator's share of it (the bus and the agent), so a slow client
// link tells itself apart from a slow host.
import { PingHostRequest, type PingHostResponse } from '../../libs/proto/cistern/v1/storage.js';
import { hostName, parseHostName } from '../../libs/api/resource-names.js';
import { flag, req, str } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { attempt, UsageError } from '../errors.js';
import { toJson } from '../format/json.js';
import { parseCount } from '../size.js';

/** Enough pings to see a p99; more is a load test, not a check. */
export const MAX_PINGS = 10_000;

interface PingResult {
  hostname: string;
  /** the whole round trip, client to agent and back */
  ms: number;
  /** the coordinator to the agent and back */
  agentMs: number;
}

const durationMs = (d: PingHostResponse['agentRoundTrip']): number => (d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : 0);
const fixed = (ms: number): string => ms.toFixed(3);
const microseconds = (ms: number): number => Math.round(ms * 1000) / 1000;

function parsePingCount(text: string | undefined): number {
  if (text === undefined) return 1;
  const outOfRange = () => new UsageError(`Numeric value '${text}' for <count> option is malformed or out of range: from 1 to ${MAX_PINGS}`);
  let n: number;
  try {
    n = Number(parseCount(text, 'count', BigInt(MAX_PINGS)));
  } catch {
    throw outOfRange();
  }
  if (n === 0) throw outOfRange();
  return n;
}

export const hostPing: Command = {
  name: 'host-ping',
  help: 'check that a host\'s agent answers, and time the round trip',
  description: 'Each ping goes to the host\'s agent as an operation does and is answered without touching storage. time= is the whole round trip; agent= is the coordinator\'s share (the bus and the agent).',
  options: [
    { name: 'host', type: 'string', required: true, nonEmpty: true, help: 'host id (or hosts/HOST)' },
    { name: 'count', type: 'string', named: true, metavar: 'number', help: `how many pings, one after another (default 1, at most ${MAX_PINGS})` },
    { ...JSON_OPTION, help: 'print the pings as a JSON array, after the last one' },
  ],
  async run(ctx) {
    const host = parseHostName(req(ctx.opts, 'host'), 'host');
    const count = parsePingCount(str(ctx.opts, 'count'));
    const json = flag(ctx.opts, 'json');
    const api = ctx.api();
    const results: PingResult[] = [];
    for (let i = 0; i < count && !ctx.signal.aborted; i++) {
      const started = performance.now();
      const res = await attempt(`Failed to ping host ${host}`, () => api.pingHost(PingHostRequest.create({ name: hostName(host) })));
      const result = { hostname: res.hostname, ms: performance.now() - started, agentMs: durationMs(res.agentRoundTrip) };
      results.push(result);
      if (!json) ctx.print(`Reply from ${host} (${result.hostname || 'unnamed'}): time=${fixed(result.ms)} ms agent=${fixed(result.agentMs)} ms\n`);
    }
    if (json) {
      ctx.setMachineOutput();
      // microseconds are what the clock measures to; more digits are float noise (6.425721999999979)
      ctx.print(toJson(results.map((r) => ({ host, hostname: r.hostname, timeMs: microseconds(r.ms), agentRoundTripMs: microseconds(r.agentMs) }))));
      return;
    }
    if (results.length > 1) ctx.printExtra(summary(host, results));
  },
};

/** ping(8)'s closing lines: how many answered, and min/avg/max of the round trips. */
function summary(host: string, results: PingResult[]): string {
  const times = results.map((r) => r.ms);
  const avg = times.reduce((a, b) => a + b, 0) / times.length;
  return `--- ${host} ping statistics ---\n${results.length} pings answered, round trip min/avg/max = ${fixed(Math.min(...times))}/${fixed(avg)}/${fixed(Math.max(...times))} ms\n`;
}
