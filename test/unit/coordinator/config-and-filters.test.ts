// Coordinator flags, and the WatchEvents filter (what a subscriber receives).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseArgs, USAGE } from '../../../services/coordinator/config.js';
import { repoRoot } from '../../support/paths.js';
import { matches, narrowSubject, parseEventFilter, replaySubject } from '../../../services/coordinator/handlers/events.js';
import { Event, EventKind } from '../../../libs/proto/cistern/v1/storage.js';
import { InvalidArgumentError, ResourceExhaustedError } from '../../../libs/errors/errors.js';

describe('coordinator flags', () => {
  it('takes flags over environment over defaults', () => {
    const fromEnv = parseArgs([], { NATS_URL: 'nats://127.0.0.1:9', CISTERN_LISTEN: '127.0.0.1:7000' });
    expect(fromEnv).to.include({ natsUrl: 'nats://127.0.0.1:9', listen: '127.0.0.1:7000', logLevel: 'info' });
    const fromFlags = parseArgs(['--nats', 'nats://127.0.0.1:5', '--listen=[::1]:6000', '--event-max-age', '12h', '--log-level', 'debug'], {
      NATS_URL: 'nats://127.0.0.1:9',
    });
    expect(fromFlags).to.include({ natsUrl: 'nats://127.0.0.1:5', listen: '[::1]:6000', eventMaxAgeSeconds: 43200, logLevel: 'debug' });
    expect(parseArgs([], {})).to.include({ natsUrl: 'nats://127.0.0.1:4222', listen: '127.0.0.1:50051' });
  });

  it('refuses unknown flags, bad durations and bad addresses naming the flag', () => {
    expect(() => parseArgs(['--bogus'], {})).to.throw(InvalidArgumentError, /--bogus/);
    expect(() => parseArgs(['--event-max-age', '3 weeks'], {})).to.throw(InvalidArgumentError, /--event-max-age/);
    expect(() => parseArgs(['--listen', 'nohostport'], {})).to.throw(InvalidArgumentError, /--listen/);
    expect(() => parseArgs(['--log-level', 'loud'], {})).to.throw(InvalidArgumentError, /--log-level/);
    expect(() => parseArgs(['--sync-wait-ms', '-1'], {})).to.throw(InvalidArgumentError, /--sync-wait-ms/);
  });

  it('refuses a --listen port outside 0-65535 before anything starts, naming the flag or the variable', () => {
    // '127.0.0.1:99999' used to pass the HOST:PORT check: the coordinator then connected to
    // NATS, applied its event retention to the shared stream and asked every agent for a full
    // sync, and only then failed, with grpc-js's "options.port should be >= 0 and < 65536"
    expect(() => parseArgs(['--listen', '127.0.0.1:99999'], {})).to.throw(InvalidArgumentError, /--listen: '127\.0\.0\.1:99999' .*port from 0 to 65535/);
    expect(() => parseArgs(['--listen', '[::1]:65536'], {})).to.throw(InvalidArgumentError, /--listen: .*port from 0 to 65535/);
    expect(() => parseArgs([], { CISTERN_LISTEN: '127.0.0.1:70000' })).to.throw(InvalidArgumentError, /CISTERN_LISTEN: .*port from 0 to 65535/);
    // 0 is the system's choice of a free port (the test harness starts coordinators so)
    expect(parseArgs(['--listen', '127.0.0.1:0'], {})).to.include({ listen: '127.0.0.1:0' });
    expect(parseArgs(['--listen', '127.0.0.1:65535'], {})).to.include({ listen: '127.0.0.1:65535' });
  });

  it('refuses an --event-max-age the event stream cannot have (NATS would refuse it at every start), naming the flag and the range', () => {
    // below the stream's 2 minute duplicate window ("duplicates window can not be larger then
    // max age") or past 2^63-1 ns ("invalid JSON"), the coordinator retried setting up the
    // stream forever and never served
    for (const bad of ['30s', '1m', '119']) {
      expect(() => parseArgs(['--event-max-age', bad], {}), bad).to.throw(InvalidArgumentError, /--event-max-age: .*from 2m \(the stream's duplicate window\) to 106751d/);
      expect(() => parseArgs([], { CISTERN_EVENT_MAX_AGE: bad }), bad).to.throw(InvalidArgumentError, /CISTERN_EVENT_MAX_AGE/);
    }
    expect(() => parseArgs(['--event-max-age', '1000000d'], {})).to.throw(InvalidArgumentError, /--event-max-age: .*to 106751d/);
    expect(parseArgs(['--event-max-age', '2m'], {})).to.include({ eventMaxAgeSeconds: 120 });
    expect(parseArgs(['--event-max-age', '106751d'], {})).to.include({ eventMaxAgeSeconds: 106751 * 86400 });
  });

  it('refuses a --request-ttl the requests bucket cannot have (NATS would refuse it at every start), naming the flag and the range', () => {
    // past 2^63-1 ns nats-server refuses the bucket's max age ("invalid JSON"): the coordinator
    // retried opening the bucket for a minute, never serving, then exited naming no flag
    expect(() => parseArgs(['--request-ttl', '200000d'], {})).to.throw(InvalidArgumentError, /--request-ttl: .*from 1s to 106751d/);
    expect(() => parseArgs([], { CISTERN_REQUEST_TTL: '200000d' })).to.throw(InvalidArgumentError, /CISTERN_REQUEST_TTL: .*to 106751d/);
    expect(parseArgs(['--request-ttl', '106751d'], {})).to.have.nested.property('reliability.requestTtlSeconds', 106751 * 86400);
    expect(parseArgs(['--request-ttl', '1s'], {})).to.have.nested.property('reliability.requestTtlSeconds', 1);
  });

  it('takes per-client limits of calls and of open sessions, whole numbers from 1 to 100000', () => {
    const sec = (argv: string[]) => (parseArgs(argv, {}) as Exclude<ReturnType<typeof parseArgs>, 'help'>).security;
    expect(sec(['--max-calls-per-client', '8', '--max-sessions-per-client=3'])).to.include({ maxCallsPerClient: 8, maxSessionsPerClient: 3 });
    expect(sec([]).maxSessionsPerClient).to.equal(undefined);
    for (const bad of ['0', '-1', '1.5', '100001', 'many']) {
      expect(() => parseArgs(['--max-sessions-per-client', bad], {}), bad).to.throw(InvalidArgumentError, /--max-sessions-per-client.*whole number from 1 to 100000/);
    }
  });

  it('takes --agent-timeout-ms and --stop-grace-ms over their environment, refusing a bad value naming the flag, the value and the range', () => {
    // agentTimeoutMs (1 h) and the graceful stop's grace (5 s) were fixed in code: no flag reached them
    expect(parseArgs(['--agent-timeout-ms', '60000', '--stop-grace-ms=0'], {})).to.include({ agentTimeoutMs: 60000, stopGraceMs: 0 });
    expect(parseArgs([], { CISTERN_AGENT_TIMEOUT_MS: '120000', CISTERN_STOP_GRACE_MS: '30000' })).to.include({ agentTimeoutMs: 120000, stopGraceMs: 30000 });
    expect(parseArgs(['--agent-timeout-ms', '5000'], { CISTERN_AGENT_TIMEOUT_MS: '120000' })).to.include({ agentTimeoutMs: 5000 });
    expect(parseArgs([], {})).to.include({ agentTimeoutMs: undefined, stopGraceMs: undefined });
    for (const bad of ['999', '86400001', '1.5', 'x', '-1', '']) {
      expect(() => parseArgs(['--agent-timeout-ms', bad], {}), bad).to.throw(InvalidArgumentError, new RegExp(`^--agent-timeout-ms: '${bad}' .*from 1000 to 86400000`));
    }
    for (const bad of ['-1', '600001', '2.5', 'soon']) {
      expect(() => parseArgs(['--stop-grace-ms', bad], {}), bad).to.throw(InvalidArgumentError, new RegExp(`^--stop-grace-ms: '${bad}' .*from 0 to 600000`));
    }
    expect(() => parseArgs([], { CISTERN_AGENT_TIMEOUT_MS: '10' })).to.throw(InvalidArgumentError, /^CISTERN_AGENT_TIMEOUT_MS: '10'/);
    expect(() => parseArgs([], { CISTERN_STOP_GRACE_MS: 'x' })).to.throw(InvalidArgumentError, /^CISTERN_STOP_GRACE_MS: 'x'/);
  });

  it('refuses a bad value of every numeric flag naming the flag, the value and the range', () => {
    // the older flags said only "must be a whole number", without the value or (--sync-wait-ms) any bound
    const cases: Array<[string, string, string]> = [
      ['--sync-wait-ms', '-5', 'from 0 to 3600000'],
      ['--sync-wait-ms', '3600001', 'from 0 to 3600000'],
      ['--stream-idle-ms', '999', 'from 1000 to 55000'],
      ['--keepalive-ms', '1e3x', 'from 1000 to 3600000'],
      ['--max-calls-per-client', '0', 'from 1 to 100000'],
      ['--max-sessions-per-client', '2.5', 'from 1 to 100000'],
      ['--max-connections-per-address', '100001', 'from 1 to 100000'],
      ['--max-connections', 'many', 'from 1 to 100000'],
      ['--connection-idle-ms', '10', 'from 1000 to 86400000'],
    ];
    for (const [flag, bad, range] of cases) {
      expect(() => parseArgs([flag, bad], {}), `${flag} ${bad}`).to.throw(InvalidArgumentError, new RegExp(`^${flag}: '${bad.replace('.', '\\.')}' .*${range}`));
    }
  });

  it('takes --sync-wait-ms (default 3000)', () => {
    expect(parseArgs([], {})).to.include({ syncWaitMs: 3000 });
    expect(parseArgs(['--sync-wait-ms', '0'], {})).to.include({ syncWaitMs: 0 });
    expect(parseArgs(['--sync-wait-ms=250'], {})).to.include({ syncWaitMs: 250 });
  });

  it('takes --schema-dir over CISTERN_SCHEMA_DIR (default: none set, the validator uses libvirt0\'s), absolute only', () => {
    expect(parseArgs([], {})).to.include({ schemaDir: undefined });
    expect(parseArgs([], { CISTERN_SCHEMA_DIR: '/env/schemas' })).to.include({ schemaDir: '/env/schemas' });
    expect(parseArgs(['--schema-dir', '/flag/schemas'], { CISTERN_SCHEMA_DIR: '/env/schemas' })).to.include({ schemaDir: '/flag/schemas' });
    expect(() => parseArgs(['--schema-dir', 'schemas'], {})).to.throw(InvalidArgumentError, /--schema-dir: 'schemas' is not an absolute path/);
    expect(() => parseArgs([], { CISTERN_SCHEMA_DIR: 'rel' })).to.throw(InvalidArgumentError, /CISTERN_SCHEMA_DIR/);
  });

  it('--help lists every flag it accepts (but --help; --nats-pass is there only to be refused)', () => {
    const sources = ['config.ts', 'reliability-config.ts'].map((f) => readFileSync(join(repoRoot, 'services', 'coordinator', f), 'utf8'));
    const flags = [...new Set(sources.flatMap((text) => [...text.matchAll(/case '(--[a-z-]+)'/g)].map((m) => m[1]!)))];
    expect(flags).to.include.members(['--sync-wait-ms', '--insecure', '--event-max-bytes']);
    const undocumented = flags.filter((f) => f !== '--nats-pass' && f !== '--help' && !new RegExp(`(^|[\\s\\[])${f}(?![a-z-])`, 'm').test(USAGE));
    expect(undocumented).to.deep.equal([]);
  });

  it('refuses a NATS password on the command line, pointing to the file and the environment', () => {
    expect(() => parseArgs(['--nats-user', 'coordinator', '--nats-pass', 'secret'], {})).to.throw(InvalidArgumentError, /--nats-pass: a password on the command line is readable by every local user.*--nats-pass-file FILE/);
  });
});

describe('WatchEvents filter', () => {
  const ev = (kind: EventKind, host: string, pool = '') => Event.fromPartial({ kind, host, pool });

  it('matches by host, pool (short or resource name) and kind', () => {
    const f = parseEventFilter({ hosts: ['a', 'hosts/b'], pools: ['p', 'hosts/b/pools/q'], kinds: [EventKind.POOL_STARTED] });
    expect(matches(f, ev(EventKind.POOL_STARTED, 'a', 'p'))).to.equal(true);
    expect(matches(f, ev(EventKind.POOL_STARTED, 'b', 'q'))).to.equal(true);
    expect(matches(f, ev(EventKind.POOL_STARTED, 'a', 'q'))).to.equal(false);
    expect(matches(f, ev(EventKind.POOL_STOPPED, 'a', 'p'))).to.equal(false);
    expect(matches(f, ev(EventKind.POOL_STARTED, 'c', 'p'))).to.equal(false);
    expect(matches(parseEventFilter({ hosts: [], pools: [], kinds: [] }), ev(EventKind.HOST_ONLINE, 'z'))).to.equal(true);
  });

  it('refuses an unknown or unspecified event kind naming the kinds a filter may hold, as the pool types filter does', () => {
    for (const kind of [99, EventKind.EVENT_KIND_UNSPECIFIED]) {
      let caught: unknown;
      try {
        parseEventFilter({ hosts: [], pools: [], kinds: [EventKind.POOL_STARTED, kind as EventKind] });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(InvalidArgumentError);
      const err = caught as InvalidArgumentError;
      expect(err.field).to.equal('kinds[1]');
      expect(err.message).to.match(new RegExp(`^kinds\\[1\\]: event kind ${kind} is not known; allowed: POOL_DEFINED \\(1\\) .* VOLUME_CREATED \\(20\\) .* OPERATION_PROGRESS \\(60\\)$`));
      expect(err.message).to.not.match(/UNSPECIFIED|UNRECOGNIZED/);
    }
  });

  // a watch keeps its filter (and grpc-js its decoded request) for as long as it is open: 4 MB
  // of two-character pool names held ~51 MB per watch (10 watches: 89 MB to 598 MB), 64 a viewer
  it(`refuses a filter field of more than ${10_000} entries, RESOURCE_EXHAUSTED naming the field and the limit`, () => {
    const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
    const fields = {
      hosts: (n: number) => ({ hosts: many(n, (i) => `h${i}`), pools: [], kinds: [] }),
      pools: (n: number) => ({ hosts: [], pools: many(n, (i) => `p${i}`), kinds: [] }),
      kinds: (n: number) => ({ hosts: [], pools: [], kinds: many(n, () => EventKind.POOL_STARTED) }),
    };
    for (const [field, request] of Object.entries(fields)) {
      expect(() => parseEventFilter(request(10_000)), field).to.not.throw();
      let caught: unknown;
      try {
        parseEventFilter(request(10_001));
      } catch (err) {
        caught = err;
      }
      expect(caught, field).to.be.instanceOf(ResourceExhaustedError);
      const err = caught as ResourceExhaustedError;
      expect(err.message).to.match(new RegExp(`^${field}: 10001 entries; a WatchEvents filter field holds at most 10000`));
      expect(err.details).to.deep.include({ field, limit: '10000' });
    }
  });

  it('narrows the stream subject only where one subject covers the filter', () => {
    expect(narrowSubject(parseEventFilter({ hosts: ['a'], pools: [], kinds: [] }))).to.equal('cistern.events.a.>');
    expect(narrowSubject(parseEventFilter({ hosts: [], pools: ['p'], kinds: [] }))).to.equal('cistern.events.*.p.*');
    expect(narrowSubject(parseEventFilter({ hosts: [], pools: ['hosts/a/pools/my pool'], kinds: [] }))).to.match(/^cistern\.events\.a\.~[-\w]+\.\*$/);
    expect(narrowSubject(parseEventFilter({ hosts: ['a', 'b'], pools: [], kinds: [] }))).to.equal(undefined);
  });

  it("reads a pool's replay on every subject while an older version's four-token events lie ahead of it", async () => {
    const asked: string[] = [];
    const source = (legacyUpTo: bigint) => ({
      lastSequence: async (subject?: string): Promise<bigint> => {
        asked.push(subject ?? '');
        return subject === 'cistern.events.*.*' ? legacyUpTo : 0n;
      },
    });
    const pool = parseEventFilter({ hosts: [], pools: ['hosts/a/pools/p'], kinds: [] });
    expect(await replaySubject(source(40n), pool, 40n, 100n)).to.equal(undefined);
    expect(await replaySubject(source(40n), pool, 41n, 100n)).to.equal('cistern.events.a.p.*');
    expect(await replaySubject(source(0n), pool, 1n, 100n)).to.equal('cistern.events.a.p.*');
    // a host's subject takes four tokens too; a call from the end has nothing before it
    asked.length = 0;
    expect(await replaySubject(source(40n), parseEventFilter({ hosts: ['a'], pools: [], kinds: [] }), 1n, 100n)).to.equal('cistern.events.a.>');
    expect(await replaySubject(source(40n), pool, 101n, 100n)).to.equal('cistern.events.a.p.*');
    expect(asked, 'no look at the stream').to.deep.equal([]);
  });

  it('refuses bad hosts, pools and kinds naming the entry', () => {
    expect(() => parseEventFilter({ hosts: ['../x'], pools: [], kinds: [] })).to.throw(InvalidArgumentError, /hosts\[0\]/);
    expect(() => parseEventFilter({ hosts: [], pools: ['ok', 'a/b'], kinds: [] })).to.throw(InvalidArgumentError, /pools\[1\]/);
    expect(() => parseEventFilter({ hosts: [], pools: [], kinds: [999 as EventKind] })).to.throw(InvalidArgumentError, /kinds\[0\]/);
  });
});
