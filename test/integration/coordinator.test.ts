// The coordinator against a real nats-server and two real agents (hosts a and b):
// pool lifecycle through the gRPC API, bad input and its codes (nothing changes on disk),
// events with replay, host liveness, health and reflection, and a coordinator restart
// that keeps the catalog.
import { expect } from 'chai';
import { credentials, loadPackageDefinition, status } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { useStack, useTempDir, waitFor } from '../support/index.js';
import { expectCode, watchEvents as watch } from '../support/grpc-expect.js';
import { Heartbeat } from '../../libs/proto/cistern/agent/v1/agent.js';
import {
  Event,
  EventKind,
  PoolState,
  PoolType,
  type UploadVolumeRequest,
  type VolumeType,
} from '../../libs/proto/cistern/v1/storage.js';

const dirPool = (name: string, path: string) => ({ name, type: PoolType.POOL_TYPE_DIR, uuid: '', target: { path, permissions: undefined }, source: undefined, features: undefined, mountOptions: [] });

describe('coordinator (real nats-server, agents a and b)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a', 'b'], agentArgs: ['--heartbeat-ms', '300'] });
  const scratch = useTempDir('cistern-coord-it-');
  const poolDir = (name: string) => join(scratch.path, name);

  it('lists both hosts online with the pool types their agents support', async () => {
    const { hosts } = await ctx.stack.api.listHosts({ pageSize: 0, pageToken: '' });
    expect(hosts.map((h) => h.hostId)).to.deep.equal(['a', 'b']);
    for (const h of hosts) {
      expect(h.online).to.equal(true);
      expect(h.name).to.equal(`hosts/${h.hostId}`);
      expect(h.poolTypes).to.include(PoolType.POOL_TYPE_DIR);
    }
    expect((await ctx.stack.api.getHost({ name: 'hosts/a' })).hostId).to.equal('a');
    await expectCode(ctx.stack.api.getHost({ name: 'hosts/nope' }), status.NOT_FOUND, /nope/);
  });

  it('an event or heartbeat naming another host than its subject is ignored (one agent cannot speak for another)', async () => {
    const api = ctx.stack.api;
    const nc = await connect({ servers: ctx.stack.natsUrl });
    try {
      // published where agent b may publish, naming host a
      const forged = Event.fromPartial({
        kind: EventKind.POOL_STARTED,
        host: 'a',
        pool: 'ghost',
        poolState: { name: 'hosts/a/pools/ghost', host: 'a', state: PoolState.POOL_STATE_RUNNING, revision: 1n << 60n, definition: { name: 'ghost', type: PoolType.POOL_TYPE_DIR, target: { path: '/ghost' } } },
      });
      nc.publish('cistern.events.b.ghost', Event.encode(forged).finish());
      nc.publish('cistern.heartbeat.b', Heartbeat.encode(Heartbeat.fromPartial({ host: { hostId: 'a', online: true }, bootId: 424242n, intervalMs: 1000 })).finish());
      await nc.flush();
      // the coordinator says when it refuses such a message: once both are refused, they
      // were handled (and nothing after the refusal can apply them any more)
      const refused = (msg: string, subject: string) =>
        ctx.stack.coordinator.process
          .logs()
          .split('\n')
          .some((line) => line.includes(`"msg":"${msg}"`) && line.includes(`"subject":"${subject}"`));
      await waitFor('the forged event to be refused', () => refused('ignored an event naming another host than its subject', 'cistern.events.b.ghost'));
      await waitFor('the forged heartbeat to be refused', () => refused('ignored a heartbeat naming another host than its subject', 'cistern.heartbeat.b'));
      const onA = await api.listPools({ host: 'a', types: [], pageSize: 0, pageToken: '' });
      expect(onA.pools.map((p) => p.name)).to.not.include('hosts/a/pools/ghost');
      await expectCode(api.getPool({ name: 'hosts/a/pools/ghost' }), status.NOT_FOUND);
      // the forged boot id would have made a look restarted (offline until its next sync)
      expect((await api.getHost({ name: 'hosts/a' })).online).to.equal(true);
    } finally {
      await nc.close();
    }
  });

  it('refuses a second pool over the same directory on a host (libvirt: storage source conflict)', async () => {
    const api = ctx.stack.api;
    const path = poolDir('shared');
    await api.definePool({ host: 'a', definition: dirPool('first', path), xml: '', requestId: '', validate: false });
    await expectCode(api.definePool({ host: 'a', definition: dirPool('second', path), xml: '', requestId: '', validate: false }), status.ALREADY_EXISTS, /conflict with pool 'first'/);
    await expectCode(api.createPool({ host: 'a', definition: dirPool('third', path), xml: '', build: true, buildFlags: undefined, requestId: '' }), status.ALREADY_EXISTS, /conflict with pool 'first'/);
    // another host may use the same path: it is another machine's directory
    await api.definePool({ host: 'b', definition: dirPool('second', path), xml: '', requestId: '', validate: false });
    await api.undefinePool({ name: 'hosts/b/pools/second', requestId: '' });
    await api.undefinePool({ name: 'hosts/a/pools/first', requestId: '' });
  });

  it('refuses a second pool over the same directory named through a symlink (the agent compares the directories themselves)', async () => {
    const api = ctx.stack.api;
    const path = poolDir('real-dir');
    await api.createPool({ host: 'a', definition: dirPool('real', path), xml: '', build: true, buildFlags: undefined, requestId: '' });
    const alias = poolDir('alias-link');
    symlinkSync(path, alias);
    // the coordinator cannot see that: another path; the agent, at start, can
    await expectCode(api.createPool({ host: 'a', definition: dirPool('alias', alias), xml: '', build: false, buildFlags: undefined, requestId: '' }),
      status.ALREADY_EXISTS, new RegExp(`storage source conflict with pool 'real' on host 'a': both would use the target directory '${path}' \\(named '${alias}' here\\)`));
    await api.definePool({ host: 'a', definition: dirPool('alias', alias), xml: '', requestId: '', validate: false });
    await expectCode(api.startPool({ name: 'hosts/a/pools/alias', build: false, buildFlags: undefined, requestId: '' }), status.ALREADY_EXISTS, /conflict with pool 'real'/);
    expect((await api.getPool({ name: 'hosts/a/pools/alias' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    // once the first is stopped, the alias may start
    await api.stopPool({ name: 'hosts/a/pools/real', requestId: '' });
    await api.startPool({ name: 'hosts/a/pools/alias', build: false, buildFlags: undefined, requestId: '' });
    await api.stopPool({ name: 'hosts/a/pools/alias', requestId: '' });
    await api.undefinePool({ name: 'hosts/a/pools/alias', requestId: '' });
  });

  it('a pool name is free again once undefined; undefining it twice is NOT_FOUND', async () => {
    const api = ctx.stack.api;
    const first = await api.definePool({ host: 'a', definition: dirPool('again', poolDir('again')), xml: '', requestId: '', validate: false });
    await api.undefinePool({ name: 'hosts/a/pools/again', requestId: '' });
    await expectCode(api.undefinePool({ name: 'hosts/a/pools/again', requestId: '' }), status.NOT_FOUND, /again/);
    const second = await api.definePool({ host: 'a', definition: dirPool('again', poolDir('again')), xml: '', requestId: '', validate: false });
    expect(second.definition?.uuid).to.not.equal(first.definition?.uuid);
    expect((await api.getPool({ name: 'hosts/a/pools/again' })).persistent).to.equal(true);
    await api.undefinePool({ name: 'hosts/a/pools/again', requestId: '' });
  });

  it('defines, builds and starts, lists, stops and undefines a dir pool', async () => {
    const api = ctx.stack.api;
    const path = poolDir('life');
    const defined = await api.definePool({ host: 'a', definition: dirPool('life', path), xml: '', requestId: '', validate: false });
    expect(defined.name).to.equal('hosts/a/pools/life');
    expect(defined.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    expect(defined.persistent).to.equal(true);
    expect(defined.definition?.uuid).to.match(/^[0-9a-f-]{36}$/);

    const started = await api.startPool({ name: 'hosts/a/pools/life', build: true, buildFlags: undefined, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(statSync(path).isDirectory()).to.equal(true);
    expect(started.capacity > 0n).to.equal(true);

    const active = await api.listPools({ host: 'a', active: true, types: [], pageSize: 0, pageToken: '' });
    expect(active.pools.map((p) => p.name)).to.include('hosts/a/pools/life');
    const onB = await api.listPools({ host: 'b', types: [], pageSize: 0, pageToken: '' });
    expect(onB.pools.map((p) => p.name)).to.not.include('hosts/a/pools/life');

    const vol = await api.createVolume({
      parent: 'hosts/a/pools/life',
      definition: undefined,
      xml: "<volume><name>disk1.img</name><capacity unit='M'>4</capacity><target><format type='raw'/></target></volume>",
      preallocMetadata: false,
      requestId: '', validate: false,
    });
    expect(vol.name).to.equal('hosts/a/pools/life/volumes/disk1.img');
    expect(vol.definition?.capacity).to.equal(4n * 1024n * 1024n);
    expect(statSync(join(path, 'disk1.img')).size).to.equal(4 * 1024 * 1024);
    // a read right after the call sees the change
    expect((await api.getPool({ name: 'hosts/a/pools/life' })).volumeCount).to.equal(1);
    const listed = await api.listVolumes({ parent: 'hosts/a/pools/life', pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.name)).to.deep.equal(['hosts/a/pools/life/volumes/disk1.img']);
    const byPath = await api.lookupVolume({ host: 'a', key: '', path: join(path, 'disk1.img') });
    expect(byPath.name).to.equal(vol.name);
    const xml = await api.getVolumeXml({ name: vol.name, refresh: false });
    expect(xml.xml).to.contain('<name>disk1.img</name>');
    const poolXml = await api.getPoolXml({ name: 'hosts/a/pools/life', inactive: false });
    expect(poolXml.xml).to.match(/<pool type='dir'>/);
    // as libvirt's refresh does, the live document shows the target directory as it is on disk
    chmodSync(path, 0o750);
    await api.refreshPool({ name: 'hosts/a/pools/life', requestId: '' });
    const live = (await api.getPoolXml({ name: 'hosts/a/pools/life', inactive: false })).xml;
    const st = statSync(path);
    expect(live).to.contain(`<permissions>\n      <mode>0750</mode>\n      <owner>${st.uid}</owner>\n      <group>${st.gid}</group>\n    </permissions>`);
    // libvirt's --inactive of a running pool with no pending redefinition is its live document
    expect((await api.getPoolXml({ name: 'hosts/a/pools/life', inactive: true })).xml).to.equal(live);

    await api.deleteVolume({ name: vol.name, requestId: '' });
    expect(existsSync(join(path, 'disk1.img'))).to.equal(false);
    await expectCode(api.getVolume({ name: vol.name, refresh: false }), status.NOT_FOUND);

    // libvirt: an active pool is not undefined
    await expectCode(api.undefinePool({ name: 'hosts/a/pools/life', requestId: '' }), status.FAILED_PRECONDITION, /still active/);
    expect((await api.getPool({ name: 'hosts/a/pools/life' })).persistent).to.equal(true);

    const stopped = await api.stopPool({ name: 'hosts/a/pools/life', requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    const inactive = await api.listPools({ host: 'a', active: false, types: [], pageSize: 0, pageToken: '' });
    expect(inactive.pools.map((p) => p.name)).to.include('hosts/a/pools/life');

    await api.undefinePool({ name: 'hosts/a/pools/life', requestId: '' });
    await expectCode(api.getPool({ name: 'hosts/a/pools/life' }), status.NOT_FOUND);
    const all = await api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' });
    expect(all.pools.map((p) => p.name)).to.not.include('hosts/a/pools/life');
  });

  it('GetPoolXML inactive of a running pool: the live document, or the pending redefinition with sizes 0 (libvirt newDef)', async () => {
    const api = ctx.stack.api;
    const name = 'hosts/a/pools/redef';
    const path = poolDir('redef');
    const defined = await api.definePool({ host: 'a', definition: undefined, xml: `<pool type='dir'><name>redef</name><target><path>${path}</path></target></pool>`, requestId: '', validate: false });
    const uuid = defined.definition!.uuid;
    await api.startPool({ name, build: true, buildFlags: undefined, requestId: '' });
    chmodSync(path, 0o750);
    await api.refreshPool({ name, requestId: '' });
    const live = (await api.getPoolXml({ name, inactive: false })).xml;
    expect(live).to.match(/<capacity unit='bytes'>[1-9]\d*<\/capacity>/);
    expect(live).to.contain('<mode>0750</mode>');
    expect((await api.getPoolXml({ name, inactive: true })).xml).to.equal(live);

    // redefined while running: --inactive shows the new definition, as stored (sizes 0);
    // the live document keeps the running one until the pool is started again
    const changed = `<pool type='dir'><name>redef</name><uuid>${uuid}</uuid><target><path>${path}</path><permissions><mode>0700</mode></permissions></target></pool>`;
    await api.definePool({ host: 'a', definition: undefined, xml: changed, requestId: '', validate: false });
    const pending = (await api.getPoolXml({ name, inactive: true })).xml;
    expect(pending).to.equal(
      `<pool type='dir'>\n  <name>redef</name>\n  <uuid>${uuid}</uuid>\n  <capacity unit='bytes'>0</capacity>\n  <allocation unit='bytes'>0</allocation>\n  <available unit='bytes'>0</available>\n  <source>\n  </source>\n  <target>\n    <path>${path}</path>\n    <permissions>\n      <mode>0700</mode>\n    </permissions>\n  </target>\n</pool>\n`,
    );
    expect((await api.getPoolXml({ name, inactive: false })).xml).to.equal(live);

    await api.stopPool({ name, requestId: '' });
    expect((await api.getPoolXml({ name, inactive: false })).xml).to.equal(pending);
    await api.startPool({ name, build: false, buildFlags: undefined, requestId: '' });
    const restarted = (await api.getPoolXml({ name, inactive: false })).xml;
    expect(restarted).to.match(/<capacity unit='bytes'>[1-9]\d*<\/capacity>/);
    expect((await api.getPoolXml({ name, inactive: true })).xml).to.equal(restarted);
    await api.stopPool({ name, requestId: '' });
    await api.undefinePool({ name, requestId: '' });
  });

  it('refuses bad names with INVALID_ARGUMENT and changes nothing', async () => {
    const api = ctx.stack.api;
    const before = await api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' });
    const bad = ['../x', 'a/b', '', 'x'.repeat(300), 'é'.repeat(200), 'bad\u0001name', 'bad\u0085name', '-rf'];
    for (const name of bad) {
      const message = await expectCode(
        api.definePool({ host: 'a', definition: dirPool(name, poolDir('bad-pool')), xml: '', requestId: '', validate: false }),
        status.INVALID_ARGUMENT,
        /name/,
      );
      expect(message, `message for ${JSON.stringify(name)}`).to.match(/allowed/);
    }
    await expectCode(api.definePool({ host: 'a', definition: dirPool('ok', 'relative/path'), xml: '', requestId: '', validate: false }), status.INVALID_ARGUMENT, /path/);
    await expectCode(api.getPool({ name: 'hosts/a/pools/../x' }), status.INVALID_ARGUMENT);
    await expectCode(api.getPool({ name: 'hosts/a/pools/a/b' }), status.INVALID_ARGUMENT);
    await expectCode(api.getPool({ name: '' }), status.INVALID_ARGUMENT, /name/);

    // volumes in an active pool
    await api.createPool({ host: 'a', definition: dirPool('badvols', poolDir('badvols')), xml: '', build: true, buildFlags: undefined, requestId: '' });
    for (const name of bad) {
      await expectCode(
        api.createVolume({
          parent: 'hosts/a/pools/badvols',
          definition: { name, type: 0, key: '', capacity: 1024n, sourceDevices: [], target: undefined, backingStore: undefined },
          xml: '',
          preallocMetadata: false,
          requestId: '', validate: false,
        }),
        status.INVALID_ARGUMENT,
      );
    }
    await expectCode(
      api.createVolume({
        parent: 'hosts/a/pools/badvols',
        definition: { name: 'typed', type: 99 as VolumeType, key: '', capacity: 1024n, sourceDevices: [], target: undefined, backingStore: undefined },
        xml: '',
        preallocMetadata: false,
        requestId: '', validate: false,
      }),
      status.INVALID_ARGUMENT,
      /definition\.type: volume type 99 is not known; allowed: VOLUME_TYPE_UNSPECIFIED VOLUME_TYPE_FILE/,
    );
    await expectCode(
      api.createVolume({ parent: 'hosts/a/pools/badvols', definition: undefined, xml: "<volume><name>v</name><capacity unit='bogus'>1</capacity></volume>", preallocMetadata: false, requestId: '', validate: false }),
      status.INVALID_ARGUMENT,
    );
    expect(readdirSync(poolDir('badvols'))).to.deep.equal([]);
    expect(existsSync(poolDir('bad-pool'))).to.equal(false);
    const after = await api.listPools({ host: '', types: [], pageSize: 0, pageToken: '' });
    expect(after.pools.map((p) => p.name).filter((n) => n !== 'hosts/a/pools/badvols')).to.deep.equal(before.pools.map((p) => p.name));
    await api.stopPool({ name: 'hosts/a/pools/badvols', requestId: '' });
    // transient: gone once stopped
    await expectCode(api.getPool({ name: 'hosts/a/pools/badvols' }), status.NOT_FOUND);
  });

  it('answers NOT_FOUND, ALREADY_EXISTS and FAILED_PRECONDITION where libvirt would', async () => {
    const api = ctx.stack.api;
    await expectCode(api.definePool({ host: 'zz', definition: dirPool('p', poolDir('p')), xml: '', requestId: '', validate: false }), status.NOT_FOUND, /host 'zz'/);
    await expectCode(api.getPool({ name: 'hosts/zz/pools/p' }), status.NOT_FOUND, /host 'zz'/);
    await expectCode(api.getPool({ name: 'hosts/a/pools/missing' }), status.NOT_FOUND, /missing/);
    await expectCode(api.startPool({ name: 'hosts/a/pools/missing', build: false, buildFlags: undefined, requestId: '' }), status.NOT_FOUND);

    await api.definePool({ host: 'b', definition: dirPool('dup', poolDir('dup')), xml: '', requestId: '', validate: false });
    await expectCode(api.definePool({ host: 'b', definition: dirPool('dup', poolDir('dup2')), xml: '', requestId: '', validate: false }), status.ALREADY_EXISTS, /dup/);
    // the same name on another host is another pool
    await api.definePool({ host: 'a', definition: dirPool('dup', poolDir('dup-a')), xml: '', requestId: '', validate: false });

    await expectCode(
      api.createVolume({ parent: 'hosts/b/pools/dup', definition: undefined, xml: "<volume><name>v</name><capacity>1024</capacity></volume>", preallocMetadata: false, requestId: '', validate: false }),
      status.FAILED_PRECONDITION,
      /not active/,
    );
    await expectCode(api.stopPool({ name: 'hosts/b/pools/dup', requestId: '' }), status.FAILED_PRECONDITION, /not active/);
    await expectCode(api.refreshPool({ name: 'hosts/b/pools/dup', requestId: '' }), status.FAILED_PRECONDITION, /not active/);
    await expectCode(api.listVolumes({ parent: 'hosts/b/pools/dup', pageSize: 0, pageToken: '' }), status.FAILED_PRECONDITION);

    await api.startPool({ name: 'hosts/b/pools/dup', build: true, buildFlags: undefined, requestId: '' });
    await expectCode(api.startPool({ name: 'hosts/b/pools/dup', build: false, buildFlags: undefined, requestId: '' }), status.FAILED_PRECONDITION, /already active/);
    await api.createVolume({ parent: 'hosts/b/pools/dup', definition: undefined, xml: "<volume><name>v</name><capacity>1024</capacity></volume>", preallocMetadata: false, requestId: '', validate: false });
    await expectCode(
      api.createVolume({ parent: 'hosts/b/pools/dup', definition: undefined, xml: "<volume><name>v</name><capacity>2048</capacity></volume>", preallocMetadata: false, requestId: '', validate: false }),
      status.ALREADY_EXISTS,
    );
    expect(statSync(join(poolDir('dup'), 'v')).size).to.equal(1024);
    await expectCode(api.deletePool({ name: 'hosts/b/pools/dup', requestId: '' }), status.FAILED_PRECONDITION, /active/);
  });

  it('streams events with replay after a sequence and filters by host, pool and kind', async () => {
    const { client, api } = ctx.stack;
    const live = watch(client, { hosts: ['a'], kinds: [EventKind.POOL_DEFINED, EventKind.POOL_STARTED, EventKind.VOLUME_CREATED] });
    await live.ready;
    await api.definePool({ host: 'a', definition: dirPool('ev', poolDir('ev')), xml: '', requestId: '', validate: false });
    await api.definePool({ host: 'b', definition: dirPool('ev', poolDir('ev-b')), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/ev', build: true, buildFlags: undefined, requestId: '' });
    await api.createVolume({ parent: 'hosts/a/pools/ev', definition: undefined, xml: "<volume><name>e1</name><capacity>4096</capacity></volume>", preallocMetadata: false, requestId: '', validate: false });
    await waitFor('three events', () => live.events.length >= 3 || live.failure());
    live.call.cancel();
    expect(live.failure()).to.equal(undefined);
    expect(live.events.map((e) => [EventKind[e.kind], e.host, e.pool])).to.deep.equal([
      ['POOL_DEFINED', 'a', 'ev'],
      ['POOL_STARTED', 'a', 'ev'],
      ['VOLUME_CREATED', 'a', 'ev'],
    ]);
    expect(live.events[2]!.volumeState?.definition?.name).to.equal('e1');
    const seqs = live.events.map((e) => e.sequence);
    expect(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!).to.equal(true);

    // replay from the first one's sequence: the rest again, then live
    const replay = watch(client, { afterSequence: seqs[0]!, pools: ['hosts/a/pools/ev'] });
    await replay.ready;
    await waitFor('replayed events', () => replay.events.some((e) => e.kind === EventKind.VOLUME_CREATED) || replay.failure());
    replay.call.cancel();
    expect(replay.events[0]!.sequence > seqs[0]!).to.equal(true);
    expect(replay.events.every((e) => e.host === 'a' && e.pool === 'ev')).to.equal(true);
    expect(replay.events.map((e) => e.sequence)).to.include(seqs[1]!);

    await expectCode(
      new Promise((resolve, reject) => {
        const bad = client.watchEvents({ afterSequence: 0n, hosts: ['../x'], pools: [], kinds: [], fromStart: false });
        bad.on('error', reject);
        bad.on('end', resolve);
      }),
      status.INVALID_ARGUMENT,
      /hosts\[0\]/,
    );
  });

  it('uploads and downloads volume data (same sha256)', async function () {
    const api = ctx.stack.api;
    await api.createVolume({ parent: 'hosts/a/pools/ev', definition: undefined, xml: "<volume><name>data.img</name><capacity unit='M'>3</capacity></volume>", preallocMetadata: false, requestId: '', validate: false });
    const payload = randomBytes(3 * 1024 * 1024 - 100);
    const response = await new Promise<{ bytesWritten: bigint }>((resolve, reject) => {
      const call = ctx.stack.client.uploadVolume((err, res) => (err ? reject(err) : resolve(res!)));
      call.write({ part: { $case: 'header', value: { name: 'hosts/a/pools/ev/volumes/data.img', offset: 0n, length: 0n, sparse: false, requestId: '' } } } satisfies UploadVolumeRequest);
      for (let at = 0; at < payload.length; at += 200_000) call.write({ part: { $case: 'data', value: payload.subarray(at, at + 200_000) } });
      call.end();
    });
    expect(response.bytesWritten).to.equal(BigInt(payload.length));
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = ctx.stack.client.downloadVolume({ name: 'hosts/a/pools/ev/volumes/data.img', offset: 0n, length: BigInt(payload.length) });
      call.on('data', (m: { data: Buffer }) => chunks.push(Buffer.from(m.data)));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(Buffer.concat(chunks))).to.equal(sha(payload));
  });

  it('forwards pool capabilities to the host and names an unknown host', async () => {
    const caps = await ctx.stack.api.getPoolCapabilities({ host: 'a' });
    expect(caps.types.find((t) => t.type === PoolType.POOL_TYPE_DIR)?.supported).to.equal(true);
    expect(caps.xml).to.contain('<storagepoolCapabilities>');
    await expectCode(ctx.stack.api.getPoolCapabilities({ host: 'zz' }), status.NOT_FOUND, /zz/);
    await expectCode(ctx.stack.api.getPoolCapabilities({ host: 'a/b' }), status.INVALID_ARGUMENT, /host/);
  });

  it('serves health checking and server reflection', async () => {
    const healthPkg = loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as any;
    const health = new healthPkg.grpc.health.v1.Health(ctx.stack.address, credentials.createInsecure());
    const res = await new Promise<any>((resolve, reject) => health.check({ service: 'cistern.v1.StorageService' }, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
    health.close();
    expect(res.status).to.equal('SERVING');

    const reflPath = join(process.cwd(), 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto');
    const reflPkg = loadPackageDefinition(protoLoader.loadSync(reflPath)) as any;
    const refl = new reflPkg.grpc.reflection.v1alpha.ServerReflection(ctx.stack.address, credentials.createInsecure());
    const services = await new Promise<string[]>((resolve, reject) => {
      const call = refl.ServerReflectionInfo();
      call.on('data', (m: any) => {
        resolve((m.listServicesResponse?.service ?? []).map((s: any) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ listServices: '*' });
    });
    refl.close();
    expect(services).to.include('cistern.v1.StorageService');
  });

  it('keeps the catalog and the pools across a coordinator restart', async () => {
    const api = ctx.stack.api;
    await api.setPoolAutostart({ name: 'hosts/a/pools/ev', autostart: true, requestId: '' });
    await ctx.stack.restartCoordinator();
    const pool = await api.getPool({ name: 'hosts/a/pools/ev' });
    expect(pool.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(pool.autostart).to.equal(true);
    expect(pool.persistent).to.equal(true);
    const vols = await api.listVolumes({ parent: 'hosts/a/pools/ev', pageSize: 0, pageToken: '' });
    expect(vols.volumes.map((v) => v.definition?.name)).to.deep.equal(['data.img', 'e1']);
    expect((await api.getPool({ name: 'hosts/b/pools/ev' })).state).to.equal(PoolState.POOL_STATE_INACTIVE);
    const { hosts } = await api.listHosts({ pageSize: 0, pageToken: '' });
    expect(hosts.filter((h) => h.online).map((h) => h.hostId)).to.deep.equal(['a', 'b']);
  });

  it('answers UNAVAILABLE at once for a host whose agent stopped, and reads still work', async () => {
    const api = ctx.stack.api;
    const capsOnline = await api.getPoolCapabilities({ host: 'b' });
    const hostEvents = watch(ctx.stack.client, { hosts: ['b'], kinds: [EventKind.HOST_OFFLINE] });
    await hostEvents.ready;
    await ctx.stack.stopAgent('b');
    await ctx.stack.waitForHosts(['b'], { online: false });
    await waitFor('HOST_OFFLINE event', () => hostEvents.events.length > 0 || hostEvents.failure());
    hostEvents.call.cancel();
    expect(hostEvents.events[0]!.hostState?.online).to.equal(false);
    expect(hostEvents.events[0]!.host).to.equal('b');
    // at once: the answer is UNAVAILABLE within a short call deadline, not DEADLINE_EXCEEDED
    // after waiting for the agent (the coordinator's own agent timeout is an hour)
    const message = await expectCode(
      api.startPool({ name: 'hosts/b/pools/ev', build: false, buildFlags: undefined, requestId: '' }, { deadlineMs: 10_000 }),
      status.UNAVAILABLE,
      /host 'b' is offline/,
    );
    expect(message).to.match(/last seen/);
    const pool = await api.getPool({ name: 'hosts/b/pools/dup' });
    expect(pool.stale).to.equal(true);
    // capabilities are a read as well: the agent's last answer, from the cache
    expect(await api.getPoolCapabilities({ host: 'b' })).to.deep.equal(capsOnline);
  });
});
