// The bus, attacked: a real nats-server with scripts/nats-config.mjs's users. Agent
// credentials reach their own subjects only; the fleet still works end to end.
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { AgentReply, AgentRequest, HostSync, PoolSecretsReply, PoolSecretsRequest, ResyncRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { Event, EventKind, ListPoolsRequest, PoolDefinition, PoolState, PoolType, Secret, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { Catalog } from '../../libs/bus/catalog.js';
import { CATALOG_BUCKET, EVENT_STREAM } from '../../libs/bus/subjects.js';
import { startSecureFleet, type SecureFleet } from '../security/fleet.js';

const errText = (e: unknown): string => String((e as Error)?.message ?? e);

/**
 * nats-server's log lines about refused messages ("Publish Violation", "Subscription
 * Violation", "Permissions Violation") of the services' connections: nats.js puts the
 * connection name after the client version, e.g. "v3.4.0:nats.js:cistern-agent-a". The
 * tests' own raw connections (the attacks below) have no name and are not counted.
 */
const serviceViolations = (natsLog: string): string[] =>
  natsLog.split('\n').filter((line) => /Violation/i.test(line) && /"[^"]*:nats\.js:cistern-(agent|coordinator)[^"]*"/.test(line));

describe('security: NATS permissions per agent (real nats-server)', function () {
  this.timeout(120_000);
  let fleet: SecureFleet;
  const conns: NatsConnection[] = [];
  /** Records when a subscription is closed by the server (permission violation). */
const closedReason = (sub: { closed: Promise<void | Error> }): { reason?: string } => {
  const r: { reason?: string } = {};
  sub.closed.then(
    (e) => (r.reason = e ? errText(e) : 'closed'),
    (e) => (r.reason = errText(e)),
  );
  return r;
};

/** A raw connection with the credentials of `user` (what a compromised agent holds). */
  const as = async (user: string, inboxPrefix?: string): Promise<NatsConnection> => {
    const nc = await connect({ servers: fleet.natsUrl, user, pass: fleet.natsPass(user), ...(inboxPrefix ? { inboxPrefix } : {}) });
    conns.push(nc);
    return nc;
  };

  before(async function () {
    this.timeout(180_000);
    fleet = await startSecureFleet({ hosts: ['a', 'b'] });
  });
  after(async () => {
    await Promise.allSettled(conns.map((c) => c.close()));
    await fleet?.stop();
  });

  it('runs the fleet with agent users: pools, volumes, upload, download, autostart from the catalog', async () => {
    const api = fleet.api;
    const target = `${fleet.dir}/pool-a`;
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/p', build: true, buildFlags: undefined, requestId: '' });
    await api.setPoolAutostart({ name: 'hosts/a/pools/p', autostart: true, requestId: '' });
    const vol = await api.createVolume({
      parent: 'hosts/a/pools/p',
      definition: VolumeDefinition.fromPartial({ name: 'v1', capacity: 1024n * 1024n }),
      xml: '',
      requestId: '',
    } as never);
    expect(vol.name).to.equal('hosts/a/pools/p/volumes/v1');
    // upload then download through the gRPC streams
    const data = Buffer.alloc(300_000, 7);
    const up = await new Promise<{ bytesWritten: bigint }>((resolve, reject) => {
      const call = fleet.client.uploadVolume((err, res) => (err ? reject(err) : resolve(res!)));
      call.write({ part: { $case: 'header', value: { name: vol.name, offset: 0n, length: BigInt(data.length), sparse: false, requestId: '' } } });
      call.write({ part: { $case: 'data', value: data } });
      call.end();
    });
    expect(up.bytesWritten).to.equal(BigInt(data.length));
    const got: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = fleet.client.downloadVolume({ name: vol.name, offset: 0n, length: BigInt(data.length) });
      call.on('data', (m: { data: Buffer }) => got.push(Buffer.from(m.data)));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    expect(Buffer.concat(got).equals(data)).to.equal(true);
    // the agent reads its own catalog keys at boot: restart it and the pool comes back active
    const agent = fleet.agents.get('a')!;
    await agent.stop();
    const { startAgent } = await import('../support/services.js');
    const again = await startAgent({
      natsUrl: fleet.natsUrl,
      hostId: 'a',
      root: agent.root,
      api,
      args: ['--nats-user', 'agent-a', '--nats-pass-file', fleet.natsPassFile('agent-a')],
    });
    fleet.agents.set('a', again);
    const { waitFor } = await import('../support/process.js');
    await waitFor('pool p autostarted', async () => (await api.getPool({ name: 'hosts/a/pools/p' })).state === PoolState.POOL_STATE_RUNNING || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    // nats-server logs every message it refuses, with the client's connection name, and the
    // services log the errors the server sends back to them. Everything above (starts,
    // heartbeats, syncs, events, catalog reads, streams, the restart) ran with the users of
    // nats-config.mjs: none of it may have been refused.
    const natsLog = fleet.nats.process.logs();
    expect(natsLog, 'the nats-server log is read').to.match(/Server is ready/);
    expect(serviceViolations(natsLog), 'permission violations of the fleet\'s own services in the nats-server log').to.deep.equal([]);
    for (const [host, agent] of fleet.agents) {
      expect(agent.process.logs(), `agent ${host}'s log`).to.not.match(/NATS refused an operation/);
    }
    expect(fleet.coordinator.process.logs(), "the coordinator's log").to.not.match(/NATS refused an operation/);
  });

  it("agent a cannot receive b's requests", async () => {
    const a = await as('agent-a', '_INBOX_agent_a');
    const errors: string[] = [];
    void (async () => {
      for await (const s of a.status()) if (s.type === 'error') errors.push(errText((s as { error?: unknown }).error ?? s));
    })();
    const got: Msg[] = [];
    const sub = a.subscribe('cistern.agent.b.>');
    const subClosed = closedReason(sub);
    void (async () => {
      for await (const m of sub) got.push(m);
    })();
    const wide = a.subscribe('cistern.agent.>');
    void (async () => {
      for await (const m of wide) got.push(m);
    })();
    await a.flush();
    const coord = await as('coordinator');
    coord.publish('cistern.agent.b.DeleteVolume', AgentRequest.encode(AgentRequest.create({ principal: 'x' })).finish());
    await coord.flush();
    await a.flush(); // any message routed to a is ahead of this round trip
    expect(got).to.have.length(0);
    await a.flush();
    expect(subClosed.reason).to.match(/permission/i);
  });

  it('agent a cannot publish events, heartbeats or syncs as b', async () => {
    const a = await as('agent-a', '_INBOX_agent_a');
    const coord = await as('coordinator');
    const seen: Msg[] = [];
    const sub = coord.subscribe('cistern.>');
    void (async () => {
      for await (const m of sub) if (/\.b(\.|$)/.test(m.subject)) seen.push(m);
    })();
    await coord.flush();
    const forged = Event.encode(Event.create({ kind: EventKind.POOL_DELETED, host: 'b', pool: 'forged' })).finish();
    const js = jetstream(a, { timeout: 2_000 });
    let err: unknown;
    try {
      await js.publish('cistern.events.b.forged.a', forged);
    } catch (e) {
      err = e;
    }
    expect(errText(err)).to.match(/permission|timeout|no responders/i);
    a.publish('cistern.heartbeat.b', new Uint8Array([1]));
    a.publish('cistern.sync.b', new Uint8Array([1]));
    a.publish('cistern.download.b.x', new Uint8Array([1]));
    await a.flush();
    await coord.flush();
    expect(seen.map((m) => m.subject)).to.deep.equal([]);
    const jsm = await jetstreamManager(coord);
    const stored = await jsm.streams.getMessage(EVENT_STREAM, { last_by_subj: 'cistern.events.b.forged.a' }).catch(() => null);
    expect(stored).to.equal(null);
    // its own events it may publish
    const own = await js.publish('cistern.events.a.probe.a', Event.encode(Event.create({ kind: EventKind.POOL_REFRESHED, host: 'a', pool: 'probe' })).finish());
    expect(own.seq).to.be.greaterThan(0);
  });

  it('an event reader (events-reader, made by make-certs) reads the event stream with an ordered consumer, and nothing else', async () => {
    const reader = await as('events-reader', '_INBOX_reader_events-reader');
    // the docs/events.md way: an ordered consumer from the first event
    const consumer = await jetstream(reader).consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.All });
    const first = await consumer.next({ expires: 5_000 });
    expect(first, 'an event was read').to.not.equal(null);
    expect(Event.decode(first!.data).host).to.be.a('string').and.not.equal('');
    // nothing but events: no publishing as an agent, no catalog, no secrets, no other inbox
    const coord = await as('coordinator');
    const seen: Msg[] = [];
    const watch = coord.subscribe('cistern.>');
    void (async () => {
      for await (const m of watch) if (m.subject.endsWith('.from-reader')) seen.push(m);
    })();
    await coord.flush();
    const forged = await jetstream(reader, { timeout: 2_000 })
      .publish('cistern.events.a.from-reader.a', Event.encode(Event.create({ kind: EventKind.POOL_DELETED, host: 'a', pool: 'x' })).finish())
      .catch((e) => e);
    expect(errText(forged)).to.match(/permission|timeout|no responders/i);
    reader.publish('cistern.agent.a.from-reader', new Uint8Array([1]));
    await reader.flush();
    await coord.flush();
    expect(seen).to.deep.equal([]);
    const catalog = await new Kvm(reader).open('cistern-catalog').then((kv) => kv.get('pools.a.p')).catch((e) => e);
    expect(errText(catalog)).to.match(/permission|timeout|no responders/i);
    const sniff = closedReason(reader.subscribe('_INBOX.>'));
    await reader.flush();
    await reader.flush();
    expect(sniff.reason, "the default inbox, where a coordinator's replies go").to.match(/permission/i);
    // and it cannot remove the coordinators' event consumers
    const jsm = await jetstreamManager(coord);
    const names: string[] = [];
    for await (const c of jsm.consumers.list(EVENT_STREAM)) names.push(c.name);
    expect(names.length, 'the event stream has consumers').to.be.greaterThan(0);
    const del = await reader.request(`$JS.API.CONSUMER.DELETE.${EVENT_STREAM}.${names[0]}`, '', { timeout: 2_000 }).catch((e) => e);
    expect(errText(del)).to.match(/permission|timeout|no responders/i);
  });

  it("agent a cannot read secrets, the secrets bucket or b's catalog entries", async () => {
    const api = fleet.api;
    const secret = await api.defineSecret({ secret: Secret.fromPartial({ usageType: 1, usageId: 'iqn.2024-01.test:target' }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: secret.name, value: Buffer.from('planted-chap-password-5150') });
    const target = `${fleet.dir}/pool-b`;
    await api.definePool({ host: 'b', definition: PoolDefinition.fromPartial({ name: 'pb', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });

    const a = await as('agent-a', '_INBOX_agent_a');
    // the secrets bucket: no stream info, no direct get, no consumer, no raw subscription
    const kvm = new Kvm(a);
    const viaCreate = await kvm.create('cistern-secrets', { history: 1 }).then(
      (kv) => kv.get(`s.${secret.uuid}`),
      (e) => e,
    );
    expect(errText(viaCreate)).to.match(/permission|timeout|no responders/i);
    const bound = await kvm.open('cistern-secrets');
    const viaOpen = await bound.get(`s.${secret.uuid}`).catch((e) => e);
    expect(errText(viaOpen)).to.match(/permission|timeout|no responders/i);
    const raw = await a
      .request(`$JS.API.STREAM.MSG.GET.KV_cistern-secrets`, JSON.stringify({ last_by_subj: `$KV.cistern-secrets.s.${secret.uuid}` }), { timeout: 2_000 })
      .catch((e) => e);
    expect(errText(raw)).to.match(/permission|timeout|no responders/i);
    const sniff = closedReason(a.subscribe('$KV.cistern-secrets.>'));
    await a.flush();
    await a.flush();
    expect(sniff.reason).to.match(/permission/i);

    // the catalog: its own keys yes, b's no
    const catalog = await new Kvm(a).create('cistern-catalog');
    const own = await catalog.get('pools.a.p');
    expect(own?.operation).to.equal('PUT');
    const other = await catalog.get('pools.b.pb').catch((e) => e);
    expect(errText(other)).to.match(/permission|timeout|no responders/i);
    const listOther = await (async () => {
      const keys: string[] = [];
      for await (const k of await catalog.keys('pools.b.>')) keys.push(k);
      return keys;
    })().catch((e) => e);
    expect(Array.isArray(listOther) ? listOther : errText(listOther)).to.satisfy((x: unknown) => (Array.isArray(x) ? x.length === 0 : /permission|timeout|no responders/i.test(String(x))));
    // nor by walking the stream with direct get's seq + next_by_subj: on the stream's plain
    // DIRECT.GET subject it is refused, and on the subject of its own key the server takes
    // no body (408), so it never returns another key's message
    const walk = (subject: string): Promise<string> =>
      a.request(subject, JSON.stringify({ seq: 1, next_by_subj: '$KV.cistern-catalog.pools.b.>' }), { timeout: 2_000 }).then(
        (m) => `${m.headers?.code ?? 0} ${m.headers?.get('Nats-Subject') ?? ''}`,
        (e) => errText(e),
      );
    expect(await walk('$JS.API.DIRECT.GET.KV_cistern-catalog')).to.match(/permission/i);
    expect(await walk('$JS.API.DIRECT.GET.KV_cistern-catalog.$KV.cistern-catalog.pools.a.p')).to.equal('408 ');
  });

  it("agent a cannot delete, inspect or replace the catalog consumers of a coordinator or of agent b, and reads its own entries with none", async () => {
    const stream = `KV_${CATALOG_BUCKET}`;
    const coord = await as('coordinator');
    const jsm = await jetstreamManager(coord);
    // a coordinator's catalog watch: the ordered consumer Catalog.watch() and follow() run
    const watched: string[] = [];
    const watch = await (await new Kvm(coord).open(CATALOG_BUCKET)).watch({ key: 'pools.>' });
    void (async () => {
      for await (const e of watch) watched.push(e.key);
    })();
    // a consumer on b's entries, made by agent b as the agents' catalog reads made them under
    // the old permissions; an agent user that may create none (nats-config.mjs now) has no
    // consumer to lose, and the coordinator makes this one instead
    const b = await as('agent-b', '_INBOX_agent_b');
    const deliveredToB: Msg[] = [];
    const bSub = b.subscribe('_INBOX_agent_b.reader', {
      callback: (_e, m) => {
        deliveredToB.push(m);
      },
    });
    await b.flush();
    const bConfig = {
      name: 'b-reader',
      filter_subject: `$KV.${CATALOG_BUCKET}.pools.b.>`,
      deliver_subject: '_INBOX_agent_b.reader',
      ack_policy: 'none',
      deliver_policy: 'last_per_subject',
      inactive_threshold: 120_000_000_000,
      mem_storage: true,
      num_replicas: 1,
    };
    const madeByB = await b
      .request(`$JS.API.CONSUMER.CREATE.${stream}.b-reader.${bConfig.filter_subject}`, JSON.stringify({ stream_name: stream, config: bConfig }), { timeout: 2_000 })
      .then(
        (m) => !(JSON.parse(new TextDecoder().decode(m.data)) as { error?: unknown }).error,
        () => false,
      );
    if (!madeByB) await jsm.consumers.add(stream, bConfig as never);

    // every consumer on the catalog stream: the fleet coordinator's own, the watch, b's
    const before = new Map<string, { filter?: string; deliver?: string }>();
    for await (const ci of jsm.consumers.list(stream)) before.set(ci.name, { filter: ci.config.filter_subject, deliver: ci.config.deliver_subject });
    expect(before.has('b-reader')).to.equal(true);
    expect(before.size, "the fleet coordinator's, the test's watch and b's").to.be.at.least(3);

    // a knows their names (the strongest attacker) and tries each API call on each
    const a = await as('agent-a', '_INBOX_agent_a');
    const attempt = (subject: string, body = ''): Promise<string> =>
      a.request(subject, body, { timeout: 2_000 }).then(
        (m) => `answered: ${new TextDecoder().decode(m.data).slice(0, 200)}`,
        (e) => errText(e),
      );
    const refused = (outcome: string): string => (/permissions violation/i.test(outcome) ? 'refused' : outcome);
    const outcomes: Record<string, Record<string, string>> = {};
    for (const name of before.keys()) {
      const takeover = { ...bConfig, name, filter_subject: `$KV.${CATALOG_BUCKET}.pools.a.>`, deliver_subject: '_INBOX_agent_a.taken' };
      outcomes[name] = {
        info: refused(await attempt(`$JS.API.CONSUMER.INFO.${stream}.${name}`)),
        delete: refused(await attempt(`$JS.API.CONSUMER.DELETE.${stream}.${name}`)),
        create: refused(await attempt(`$JS.API.CONSUMER.CREATE.${stream}.${name}.${takeover.filter_subject}`, JSON.stringify({ stream_name: stream, config: takeover }))),
      };
    }
    outcomes['(the stream)'] = { list: refused(await attempt(`$JS.API.CONSUMER.LIST.${stream}`)), names: refused(await attempt(`$JS.API.CONSUMER.NAMES.${stream}`)) };
    expect(outcomes, "what the server let agent a do to the catalog's consumers").to.deep.equal({
      ...Object.fromEntries([...before.keys()].map((name) => [name, { info: 'refused', delete: 'refused', create: 'refused' }])),
      '(the stream)': { list: 'refused', names: 'refused' },
    });

    // all still there, unchanged, and the watch still delivers: a change after the attacks
    const after = new Map<string, { filter?: string; deliver?: string }>();
    for await (const ci of jsm.consumers.list(stream)) after.set(ci.name, { filter: ci.config.filter_subject, deliver: ci.config.deliver_subject });
    for (const [name, config] of before) expect(after.get(name), `consumer ${name} after a's attempts`).to.deep.equal(config);
    const api = fleet.api;
    await api.definePool({
      host: 'b',
      definition: PoolDefinition.fromPartial({ name: 'after-attack', type: PoolType.POOL_TYPE_DIR, target: { path: `${fleet.dir}/after-attack` } }),
      xml: '',
      requestId: '',
      validate: false,
    });
    const { waitFor } = await import('../support/process.js');
    await waitFor('the watch to see the pool defined after the attacks', () => watched.includes('pools.b.after-attack') || undefined, { timeoutMs: 10_000, intervalMs: 20 });
    await waitFor("b's consumer to deliver it", () => deliveredToB.some((m) => m.subject.endsWith('pools.b.after-attack')) || undefined, { timeoutMs: 10_000, intervalMs: 20 });
    await api.undefinePool({ name: 'hosts/b/pools/after-attack', requestId: '' });

    // what the agent needs of the catalog it still has: its own entries, read as cistern-agent
    // reads them at boot (Catalog.list(host): no consumer), and not b's the same way
    const extra = Array.from({ length: 40 }, (_, i) => `own-${i}`);
    for (const name of extra) {
      await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: `${fleet.dir}/${name}` } }), xml: '', requestId: '', validate: false });
    }
    await api.undefinePool({ name: 'hosts/a/pools/own-0', requestId: '' }); // its key's last message: a delete marker
    const catalog = await Catalog.open(a);
    const own = await catalog.list('a');
    expect(own.map((e) => e.pool).sort()).to.deep.equal(['p', ...extra.slice(1)].sort());
    expect(own.every((e) => e.host === 'a' && e.value.definition?.name === e.pool)).to.equal(true);
    expect(own.map((e) => e.revision), 'in revision order').to.deep.equal(own.map((e) => e.revision).sort((x, y) => x - y));
    expect(errText(await catalog.list('b').catch((e) => e))).to.match(/permission/i);
    for (const name of extra.slice(1)) await api.undefinePool({ name: `hosts/a/pools/${name}`, requestId: '' });

    watch.stop();
    bSub.unsubscribe();
    await jsm.consumers.delete(stream, 'b-reader').catch(() => undefined);
  });

  it("agent a gets the CHAP secret of its own catalog pool only (autostart), never b's", async () => {
    const api = fleet.api;
    const usage = 'iqn.2024-01.test:autostart';
    const secret = await api.defineSecret({ secret: Secret.fromPartial({ usageType: 1, usageId: usage }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: secret.name, value: Buffer.from('autostart-chap-7781') });
    const chapXml = (name: string): string =>
      `<pool type='iscsi-direct'><name>${name}</name><source><host name='127.0.0.1' port='3260'/><device path='${usage}'/>` +
      `<initiator><iqn name='iqn.2024-01.test:init'/></initiator><auth type='chap' username='u'><secret usage='${usage}'/></auth></source></pool>`;
    await api.definePool({ host: 'a', definition: undefined, xml: chapXml('chap-a'), requestId: '', validate: false });
    await api.definePool({ host: 'b', definition: undefined, xml: chapXml('chap-b'), requestId: '', validate: false });

    const a = await as('agent-a', '_INBOX_agent_a');
    const ask = async (subject: string, pool: string): Promise<PoolSecretsReply | string> =>
      a.request(subject, PoolSecretsRequest.encode({ pool }).finish(), { timeout: 2_000 }).then(
        (m) => PoolSecretsReply.decode(m.data),
        (e) => errText(e),
      );
    const own = await ask('cistern.secrets.a', 'chap-a');
    expect(typeof own === 'string' ? own : own.secrets.map((v) => Buffer.from(v.value).toString())).to.deep.equal(['autostart-chap-7781']);
    const othersPool = await ask('cistern.secrets.a', 'chap-b');
    expect(typeof othersPool === 'string' ? othersPool : othersPool.error?.code).to.equal('NOT_FOUND');
    const noSecret = await ask('cistern.secrets.a', 'p');
    expect(typeof noSecret === 'string' ? noSecret : noSecret.error?.code).to.equal('FAILED_PRECONDITION');
    // posing as b is refused by the server before any coordinator sees it
    const asB = await ask('cistern.secrets.b', 'chap-b');
    expect(asB).to.be.a('string').that.matches(/permission|timeout|no responders/i);
  });

  it('a forged reply from a wrong host is never accepted', async () => {
    const coord = await as('coordinator');
    const a = await as('agent-a', '_INBOX_agent_a');
    // the strongest attacker: a knows the exact reply subject of a request sent to b (a
    // coordinator names its requests' replies after the host: libs/bus/reply-inbox.ts)
    const replySubject = 'cistern.reply.b.forgery-test.1';
    const replies: Msg[] = [];
    const sub = coord.subscribe(replySubject);
    void (async () => {
      for await (const m of sub) replies.push(m);
    })();
    await coord.flush();
    const forged = AgentReply.encode(AgentReply.create({ result: { $case: 'pong', value: { hostId: 'b' } } })).finish();
    a.publish(replySubject, forged);
    a.publish('_INBOX.anything', forged);
    await a.flush();
    coord.publish('cistern.agent.b.Ping', AgentRequest.encode(AgentRequest.create({ op: { $case: 'ping', value: {} } })).finish(), { reply: replySubject });
    const { waitFor } = await import('../support/process.js');
    await waitFor('the reply of b', () => (replies.length > 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    await a.flush();
    await coord.flush();
    expect(replies).to.have.length(1);
    const reply = AgentReply.decode(replies[0]!.data);
    expect(reply.result?.$case).to.equal('pong');
    // a may answer only requests it received: one more try at the same subject after b's reply
    a.publish(replySubject, forged);
    await a.flush();
    await coord.flush();
    expect(replies).to.have.length(1);
    // and through the API, host b's work is b's
    const hosts = await fleet.api.listHosts({ pageSize: 0, pageToken: '' });
    expect(hosts.hosts.map((h) => h.hostId).sort()).to.deep.equal(['a', 'b']);
  });

  it("agent a cannot reach b's subjects by answering a message it sent itself (a reply subject of its choosing)", async () => {
    const coord = await as('coordinator');
    const a = await as('agent-a', '_INBOX_agent_a');
    const seen: Msg[] = [];
    const watch = coord.subscribe('cistern.>');
    void (async () => {
      for await (const m of watch) if (/^cistern\.(agent|sync|secrets|events|heartbeat)\.b(\.|$)/.test(m.subject)) seen.push(m);
    })();
    await coord.flush();
    // a receives its own ping (it subscribes to cistern.agent.a.>) with a reply subject that is
    // b's request subject, and "answers" it: with allow_responses the answer went to b
    const own = a.subscribe('cistern.agent.a.Ping', { max: 1 });
    const answered = (async () => {
      for await (const m of own) {
        try {
          m.respond(AgentRequest.encode(AgentRequest.create({ principal: 'admin', op: { $case: 'deletePool', value: { name: 'hosts/b/pools/pb' } } })).finish());
        } catch {
          /* refused by the client or the server: what the test wants */
        }
      }
    })();
    for (const target of ['cistern.agent.b.deletePool', 'cistern.sync.b', 'cistern.secrets.b']) {
      a.publish('cistern.agent.a.Ping', new Uint8Array([0]), { reply: target });
    }
    await a.flush();
    await answered;
    await a.flush();
    await coord.flush();
    expect(seen.map((m) => m.subject)).to.deep.equal([]);
  });

  it('agent a cannot speak as a coordinator: a HOST_DELETED or POOL_UNDEFINED it forges for its own host reaches no watcher and no cache', async () => {
    const { watchEvents } = await import('../support/grpc-expect.js');
    const { waitFor } = await import('../support/process.js');
    const coord = await as('coordinator');
    const jsm = await jetstreamManager(coord);
    const lastSeq = async (): Promise<bigint> => BigInt((await jsm.streams.info(EVENT_STREAM)).state.last_seq);
    const before = await lastSeq();
    // a live watcher (the shared tail), and replays on their own consumers: all events, the
    // host's subjects, the pool's subject
    const watchers = {
      live: watchEvents(fleet.client, { hosts: ['a'] }),
      replayAll: watchEvents(fleet.client, { afterSequence: before }),
      replayHost: watchEvents(fleet.client, { afterSequence: before, hosts: ['a'] }),
      replayPool: watchEvents(fleet.client, { afterSequence: before, pools: ['hosts/a/pools/p'] }),
    };
    await Promise.all(Object.values(watchers).map((w) => w.ready));

    // with agent a's credentials, the coordinators' events of host a, on every subject an
    // event of host a could be stored under (the old four tokens, an agent's, a coordinator's)
    const a = await as('agent-a', '_INBOX_agent_a');
    const js = jetstream(a, { timeout: 2_000 });
    const forgeries: Array<[string, Event]> = [];
    for (const origin of ['', '.a', '.c']) {
      const hostState = { hostId: 'a', name: 'hosts/a' };
      forgeries.push([`cistern.events.a._host${origin}`, Event.create({ kind: EventKind.HOST_DELETED, host: 'a', principal: 'admin-alice', requestId: `forged-host${origin}`, hostState })]);
      forgeries.push([`cistern.events.a.p${origin}`, Event.create({ kind: EventKind.POOL_UNDEFINED, host: 'a', pool: 'p', principal: 'admin-alice', requestId: `forged-pool${origin}` })]);
    }
    const outcomes: Record<string, string> = {};
    for (const [subject, event] of forgeries) {
      outcomes[subject] = await js.publish(subject, Event.encode(event).finish()).then(
        () => 'stored',
        (e) => (/permission|timeout|no responders/i.test(errText(e)) ? 'refused' : errText(e)),
      );
    }
    const forgedUpTo = await lastSeq();

    // then real events after them: the agent's refresh of p, the coordinator's definition of a
    // pool. Every watcher that has one has read past every forgery (the stream's order).
    await fleet.api.refreshPool({ name: 'hosts/a/pools/p', requestId: '' });
    await fleet.api.definePool({
      host: 'a',
      definition: PoolDefinition.fromPartial({ name: 'after-forgery', type: PoolType.POOL_TYPE_DIR, target: { path: `${fleet.dir}/after-forgery` } }),
      xml: '',
      requestId: '',
      validate: false,
    });
    for (const [name, w] of Object.entries(watchers)) {
      const marker = name === 'replayPool' ? EventKind.POOL_REFRESHED : EventKind.POOL_DEFINED;
      await waitFor(`watcher ${name} to read past the forgeries`, () => w.failure() ?? (w.events.some((e) => e.kind === marker && e.sequence > forgedUpTo) || undefined), {
        timeoutMs: 15_000,
        intervalMs: 50,
      });
      expect(w.failure(), `watcher ${name}`).to.equal(undefined);
      w.call.cancel();
    }
    const received = Object.fromEntries(
      Object.entries(watchers).map(([name, w]) => [name, w.events.filter((e) => e.requestId.startsWith('forged')).map((e) => `${EventKind[e.kind]} ${e.requestId}`)]),
    );
    expect(received, 'forged coordinator events sent to watchers').to.deep.equal({ live: [], replayAll: [], replayHost: [], replayPool: [] });
    // the server refuses what an agent may not say at all; an agent's own subject takes it,
    // and the readers above dropped it
    expect(outcomes).to.deep.equal({
      'cistern.events.a._host': 'refused',
      'cistern.events.a.p': 'refused',
      'cistern.events.a._host.a': 'stored',
      'cistern.events.a.p.a': 'stored',
      'cistern.events.a._host.c': 'refused',
      'cistern.events.a.p.c': 'refused',
    });
    // the coordinator's view: it read and ignored them, and host a and pool p are still there
    await waitFor("the coordinator's cache to ignore the forgeries", () => /ignored an event of a kind only coordinators publish \(HOST_DELETED\) under an agent's subject/.test(fleet.coordinator.process.logs()) || undefined, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(fleet.coordinator.process.logs()).to.match(/ignored an event of a kind only coordinators publish \(POOL_UNDEFINED\) under an agent's subject/);
    const hosts = await fleet.api.listHosts({ pageSize: 0, pageToken: '' });
    expect(hosts.hosts.map((h) => h.hostId)).to.include('a');
    expect((await fleet.api.getPool({ name: 'hosts/a/pools/p' })).name).to.equal('hosts/a/pools/p');
    await fleet.api.undefinePool({ name: 'hosts/a/pools/after-forgery', requestId: '' });
  });

  it("a stored message a reader's push consumer delivers onto an agent's or a coordinator's subject is not acted on", async () => {
    // An event reader may create consumers on CISTERN_EVENTS, and a consumer's deliver subject
    // is in the request body, which no permission sees: JetStream delivers the stored messages
    // there as the server itself, whatever the reader may publish. A compromised agent stores
    // the bytes it likes on its own event subjects. Such a delivery keeps the stored message's
    // subject, so a subscriber that checks the subject it got tells it apart. nats-server 2.9.10
    // starts a push consumer only for a literal subscription of its deliver subject (the
    // agents' cistern.control.resync is one); the coordinator's literal subscriptions below
    // stand for any other (an upload's cistern.agent.b.stream.<id>, or a server that counts
    // wildcard interest).
    const { waitFor } = await import('../support/process.js');
    const a = await as('agent-a', '_INBOX_agent_a');
    const b = await as('agent-b', '_INBOX_agent_b');
    const reader = await as('events-reader', '_INBOX_reader_events-reader');
    const coord = await as('coordinator');
    const consumers: string[] = [];
    const deliver = async (filter: string, to: string): Promise<void> => {
      const interest = coord.subscribe(to, { max: 1 });
      await coord.flush();
      const config = { deliver_subject: to, filter_subject: filter, deliver_policy: 'all', ack_policy: 'none' };
      const res = await reader.request(`$JS.API.CONSUMER.CREATE.${EVENT_STREAM}`, JSON.stringify({ stream_name: EVENT_STREAM, config }), { timeout: 5_000 });
      const created = JSON.parse(new TextDecoder().decode(res.data)) as { name?: string; error?: unknown };
      expect(created.error, 'the reader may create a push consumer').to.equal(undefined);
      consumers.push(created.name!);
      for await (const m of interest) expect(m.subject, 'delivered with its stored subject').to.equal(filter);
    };
    const ignored = (logs: string) => /ignored a message on a subject it did not subscribe to/.test(logs);
    try {
      // agent a's bytes: agent b to create, build and start a dir pool of a's choosing
      const target = `${fleet.dir}/forged-through-a-reader`;
      const definition = PoolDefinition.fromPartial({ name: 'forged', type: PoolType.POOL_TYPE_DIR, target: { path: target } });
      const request = AgentRequest.create({ principal: 'admin', pool: definition, op: { $case: 'createPool', value: { host: 'b', definition, build: true } } });
      await jetstream(a, { timeout: 5_000 }).publish('cistern.events.a.forged.a', AgentRequest.encode(request).finish());
      await deliver('cistern.events.a.forged.a', 'cistern.agent.b.createPool');
      const agentB = fleet.agents.get('b')!.process;
      await waitFor('agent b to act on the delivery or ignore it', () => existsSync(target) || ignored(agentB.logs()) || undefined, {
        timeoutMs: 10_000,
        intervalMs: 50,
        context: () => agentB.logTail(),
      });
      expect(existsSync(target), 'agent b built the pool a stored message asked for').to.equal(false);
      // agent a's bytes again, onto the subject every agent listens to literally: a resync of the fleet
      await jetstream(a, { timeout: 5_000 }).publish('cistern.events.a.resync.a', ResyncRequest.encode({ coordinatorId: 'forged', host: 'b' }).finish());
      await deliver('cistern.events.a.resync.a', 'cistern.control.resync');
      await waitFor('agent b to take the resync or ignore it', () => /"coordinator":"forged"/.test(agentB.logs()) || (ignored(agentB.logs()) && agentB.logs().includes('cistern.events.a.resync.a')) || undefined, {
        timeoutMs: 10_000,
        intervalMs: 50,
        context: () => agentB.logTail(),
      });
      expect(agentB.logs(), 'agent b resynced for a stored message').to.not.match(/"coordinator":"forged"/);
      // agent b's bytes, on a subject of its own that ends like host a's sync subject: a full
      // sync of host a without its pool p
      const sync = HostSync.create({ syncId: '00000000-0000-4000-8000-0000000000a1', chunk: 0, last: true, host: { hostId: 'a', name: 'hosts/a' }, revision: 1n << 40n, reason: 'start' });
      await jetstream(b, { timeout: 5_000 }).publish('cistern.events.b.forged.a', HostSync.encode(sync).finish());
      await deliver('cistern.events.b.forged.a', 'cistern.sync.a');
      const pools = async () => (await fleet.api.listPools(ListPoolsRequest.fromPartial({}))).pools.map((p) => p.name);
      await waitFor('the coordinator to take the delivery or ignore it', async () => !(await pools()).includes('hosts/a/pools/p') || ignored(fleet.coordinator.process.logs()) || undefined, {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      expect(await pools(), "host a's pools after agent b's sync for it").to.include('hosts/a/pools/p');
    } finally {
      const jsm = await jetstreamManager(coord);
      for (const name of consumers) await jsm.consumers.delete(EVENT_STREAM, name).catch(() => undefined);
    }
  });

  it("a message that is no Event, stored on agent a's own event subject, does not stop the coordinator's event reader", async () => {
    const a = await as('agent-a', '_INBOX_agent_a');
    const js = jetstream(a, { timeout: 5_000 });
    await js.publish('cistern.events.a.junk.a', new Uint8Array([0x78])); // 'x'
    // then a real event of host a that only the event stream tells the coordinator: a pool
    // state with a far higher revision and a capacity no refresh would give
    const pool = await fleet.api.getPool({ name: 'hosts/a/pools/p' });
    const changed = { ...pool, capacity: 123_456_789n, revision: pool.revision + 1_000_000n, stale: false };
    await js.publish('cistern.events.a.p.a', Event.encode(Event.create({ kind: EventKind.POOL_REFRESHED, host: 'a', pool: 'p', poolState: changed })).finish());
    const { waitFor } = await import('../support/process.js');
    await waitFor('the event after the junk applied', async () => ((await fleet.api.getPool({ name: 'hosts/a/pools/p' })).capacity === 123_456_789n ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect(fleet.coordinator.process.logs()).to.match(/ignored a stored message: not an Event/);
  });

  it("a full sync carrying events lost is confirmed on the agent's own inbox, within the agent's permissions; one naming another reply subject is not", async () => {
    // agent b's own credentials, as agent b sends it (services/agent/sync.ts): the last chunk
    // as a request, its reply under _INBOX_agent_b
    await fleet.agents.get('b')!.stop();
    const b = await as('agent-b', '_INBOX_agent_b');
    const lost = Event.create({ kind: EventKind.POOL_STOPPED, host: 'b', pool: 'gone', poolState: { revision: 5n, state: PoolState.POOL_STATE_INACTIVE } });
    const sync = (syncId: string) =>
      HostSync.encode(HostSync.create({ syncId, chunk: 0, last: true, host: { hostId: 'b', name: 'hosts/b' }, revision: 9n, eventsLost: [lost], reason: 'event publish failed' })).finish();
    const answer = await b.request('cistern.sync.b', sync('00000000-0000-4000-8000-000000000001'), { timeout: 10_000 });
    expect(answer.subject.startsWith('_INBOX_agent_b.')).to.equal(true);
    // a reply subject that is not the agent's inbox gets nothing, and the coordinator says why
    const coord = await as('coordinator');
    const probe = coord.subscribe('cistern.agent.b.probe');
    b.publish('cistern.sync.b', sync('00000000-0000-4000-8000-000000000002'), { reply: 'cistern.agent.b.probe' });
    await b.flush();
    const { waitFor } = await import('../support/process.js');
    await waitFor('the coordinator to refuse the reply subject', () => /sync confirmation not sent: its reply subject is not the agent's inbox/.test(fleet.coordinator.process.logs()), {
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    // syncs are taken in turn: once the next one is confirmed, that one was taken too
    await b.request('cistern.sync.b', sync('00000000-0000-4000-8000-000000000003'), { timeout: 10_000 });
    await coord.flush();
    expect(probe.getProcessed()).to.equal(0);
    probe.unsubscribe();
  });
});
