// --json output as scripts read it: the fields docs/cli.md promises, and stdout that holds
// JSON or nothing at all.
import { expect } from 'chai';
import { NotFoundError } from '../../../libs/errors/errors.js';
import { Event, EventKind, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

/** A logical pool `vg` on host a with an inactive LV `lv0` and an active one `lv1`. */
function logicalFleet(): FakeApi {
  const api = new FakeApi(['a']);
  api.pools = [pool('a', 'vg', {}, { type: PoolType.POOL_TYPE_LOGICAL })];
  const lv = (name: string, state: string) => {
    const v = volume('a', 'vg', name, 4194304n, 4194304n, `/dev/vg/${name}`);
    v.definition = VolumeDefinition.create({ ...v.definition, state });
    return v;
  };
  api.volumes = [lv('lv0', 'inactive'), lv('lv1', 'active'), volume('a', 'vg', 'plain', 1n, 1n)];
  return api;
}

describe('cli --json', () => {
  describe('a volume\'s state (docs/cli.md: an inactive LV is a volume, its state in --json)', () => {
    it('vol-info --json has the state the backend saw, null when it reports none', async () => {
      const api = logicalFleet();
      const inactive = await run(api, ['vol-info', 'lv0', '--pool', 'vg', '--json']);
      expect(inactive.code).to.equal(0);
      expect(JSON.parse(inactive.stdout)).to.include({ name: 'lv0', state: 'inactive' });
      const plain = JSON.parse((await run(api, ['vol-info', 'plain', '--pool', 'vg', '--json'])).stdout) as Record<string, unknown>;
      expect(plain).to.have.property('state', null);
    });

    it('vol-list --json has each volume\'s state', async () => {
      const r = await run(logicalFleet(), ['vol-list', 'vg', '--json']);
      const states = (JSON.parse(r.stdout) as Array<{ name: string; state: unknown }>).map((v) => [v.name, v.state]);
      expect(states).to.deep.equal([['lv0', 'inactive'], ['lv1', 'active'], ['plain', null]]);
    });
  });

  describe('a command that fails prints nothing on stdout, only the error on stderr', () => {
    const failing: Array<[string, string[], (api: FakeApi) => void]> = [
      ['pool-info', ['pool-info', 'nope', '--json'], () => undefined],
      ['pool-list', ['pool-list', '--json'], (api) => api.failures.set('listPools', new NotFoundError('gone'))],
      ['vol-list', ['vol-list', 'nope', '--json'], () => undefined],
      ['vol-info', ['vol-info', 'nope', '--pool', 'default', '--json'], () => undefined],
      ['host-list', ['host-list', '--json'], (api) => api.failures.set('listHosts', new NotFoundError('gone'))],
      ['host-ping', ['host-ping', 'nohost', '--json'], () => undefined],
      ['secret-list', ['secret-list', '--json'], (api) => api.failures.set('listSecrets', new NotFoundError('gone'))],
      ['pool-event', ['pool-event', '--pool', 'nope', '--json'], () => undefined],
    ];
    for (const [name, argv, arrange] of failing) {
      it(`${name} --json`, async () => {
        const api = new FakeApi(['a']);
        api.pools = [pool('a', 'default')];
        arrange(api);
        const r = await run(api, argv);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(/^error: /);
        // a script that reads stdout as JSON gets no document, not a blank line
        expect(r.stdout).to.equal('');
      });
    }

    it('without --json the blank line virsh prints after a failed command is still there', async () => {
      const r = await run(new FakeApi(['a']), ['pool-info', 'nope']);
      expect(r.code).to.equal(1);
      expect(r.stdout).to.equal('\n');
    });
  });

  describe('strings stay strings, numbers stay numbers', () => {
    it('a string that looks like the writer\'s own mark for a 64-bit number is printed as the string it is', async () => {
      // the text an agent reports is not checked by the coordinator: whatever it holds is a string
      const api = new FakeApi(['a']);
      api.hosts[0]!.hostname = '\u0000bigint:7';
      api.hosts[0]!.agentVersion = '\u0000bigint:-1';
      const r = await run(api, ['host-list', '--json']);
      const [host] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      expect(host).to.include({ hostname: '\u0000bigint:7', agentVersion: '\u0000bigint:-1' });
      // and one JSON line each in pool-event's stream
      api.events = [Event.create({ sequence: 3n, kind: EventKind.HOST_ONLINE, host: 'a', hostState: api.hosts[0]! })];
      const ev = await run(api, ['pool-event', '--event', 'host', '--after', '0', '--json']);
      expect(JSON.parse(ev.stdout)).to.deep.include({ sequence: 3 });
      expect((JSON.parse(ev.stdout) as { hostState: Record<string, unknown> }).hostState).to.include({ hostname: '\u0000bigint:7' });
    });

    it('sizes up to 2^64-1 are exact integers, in the indented and the one-line form', async () => {
      const api = new FakeApi(['a']);
      api.pools = [pool('a', 'huge', { capacity: 18446744073709551615n, allocation: 9007199254740993n, available: 0n })];
      const r = await run(api, ['pool-info', 'huge', '--json']);
      expect(r.stdout).to.contain('"capacity": 18446744073709551615,\n').and.contain('"allocation": 9007199254740993,\n');
      api.events = [Event.create({ sequence: 18446744073709551615n, kind: EventKind.POOL_REFRESHED, host: 'a', pool: 'huge', poolState: api.pools[0]! })];
      const ev = await run(api, ['pool-event', '--event', 'refresh', '--after', '0', '--json']);
      expect(ev.stdout).to.match(/^\{"sequence":18446744073709551615,"event":"refresh",.*"capacity":18446744073709551615,"allocation":9007199254740993,.*\}\n$/);
    });
  });
});
