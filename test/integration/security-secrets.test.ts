// A planted secret must not leak: not into a log line, an event, an error message, an
// XML dump, a reply, the argv of a command (what `ps` shows), nor the NATS store on disk.
// The LUKS passphrase reaches qemu-img through `--object secret,file=...` as in libvirt.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { Event, EventKind, GetPoolXMLRequest, ListPoolsRequest, ListVolumesRequest, PoolDefinition, PoolType, Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';
import { startSecureFleet, type SecureFleet } from '../security/fleet.js';

const PLANTED = `Planted-${randomBytes(12).toString('hex')}`;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('security: secret values never leak (real fleet, real qemu-img)', function () {
  this.timeout(180_000);
  let fleet: SecureFleet;
  let wrapperDir: string;
  let argvLog: string;
  const seen: string[] = []; // every reply and error text a client got

  before(async function () {
    this.timeout(180_000);
    // a qemu-img that records its argv exactly as the kernel (and ps) sees it, then runs the real one
    wrapperDir = join(process.env.TMPDIR ?? '/tmp', `cistern-wrap-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(wrapperDir, { recursive: true });
    argvLog = join(wrapperDir, 'argv.log');
    const wrapper = join(wrapperDir, 'qemu-img');
    writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$0 $*" >> '${argvLog}'\nfor f in /proc/$$/cmdline; do tr '\\0' ' ' < "$f" >> '${argvLog}'; echo >> '${argvLog}'; done\nexec /usr/bin/qemu-img "$@"\n`);
    chmodSync(wrapper, 0o755);
    fleet = await startSecureFleet({ hosts: ['a'], tokens: true, tls: true, agentEnv: { PATH: `${wrapperDir}:${process.env.PATH}` } });
  });
  after(async () => {
    await fleet?.stop();
    const { rmSync } = await import('node:fs');
    if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  });

  it('plants a secret, uses it for a LUKS volume, and finds it nowhere', async () => {
    const api = fleet.api;
    const record = (x: unknown) => seen.push(JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    const target = join(fleet.dir, 'pool-enc');
    record(await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false }));
    record(await api.startPool({ name: 'hosts/a/pools/enc', build: true, buildFlags: undefined, requestId: '' }));

    const secret = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: join(target, 'v-luks'), description: 'luks passphrase' }),
      xml: '',
      requestId: '',
      validate: false,
    });
    record(secret);
    record(await api.setSecretValue({ name: secret.name, value: Buffer.from(PLANTED) }));
    const got = await api.getSecret({ name: secret.name });
    record(got);
    expect(got.hasValue).to.equal(true);
    record(await api.listSecrets({ pageSize: 0, pageToken: '' }));

    const luksXml = (name: string, ref: string, cipher = '') => `<volume><name>${name}</name><capacity unit='M'>8</capacity>
      <target><format type='raw'/><encryption format='luks'><secret type='passphrase' ${ref}/>${cipher}</encryption></target></volume>`;
    const vol = await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-luks', `uuid='${secret.uuid}'`), requestId: '' } as never);
    record(vol);
    // it is a LUKS volume, and the passphrase opens it (qemu-img reads the secret from a file)
    const header = readFileSync(join(target, 'v-luks')).subarray(0, 6);
    expect(header.equals(Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]))).to.equal(true);
    // by usage too
    const byUsage = await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-luks2', `usage='${join(target, 'v-luks')}'`), requestId: '' } as never);
    record(byUsage);

    // a secret for something else (an iSCSI login) is not released for a volume's encryption,
    // even named by its uuid: libvirt refuses it, and its value would reach a host the caller picks
    const chap = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: 'iqn.2026-01.example:chap', description: 'chap' }),
      xml: '',
      requestId: '',
      validate: false,
    });
    record(await api.setSecretValue({ name: chap.name, value: Buffer.from(PLANTED) }));
    const misused = await (api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-chap', `uuid='${chap.uuid}'`), requestId: '' } as never) as Promise<unknown>).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(misused?.code).to.equal(9); // FAILED_PRECONDITION
    expect(misused?.details).to.match(/of type 'iscsi', not the expected 'volume'/);
    seen.push(misused!.message, misused!.details ?? '');
    expect(existsSync(join(target, 'v-chap'))).to.equal(false);

    // error paths: each message is recorded
    const fails = async (p: Promise<unknown>): Promise<ServiceError> => {
      const err = (await p.then(() => undefined, (e) => e)) as ServiceError | undefined;
      expect(err, 'expected the call to fail').to.not.equal(undefined);
      seen.push(err!.message, err!.details ?? '', JSON.stringify(err!.metadata?.getMap() ?? {}));
      return err!;
    };
    // qemu-img fails with the secret on its command line path (an unknown cipher): the error carries argv and stderr
    const bad = await fails(
      api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-bad', `uuid='${secret.uuid}'`, "<cipher name='nosuch' size='256' mode='cbc' hash='sha256'/>"), requestId: '' } as never),
    );
    // Cistern, like libvirt, passes the cipher name to qemu-img unchecked ('cipher-alg=nosuch-256'):
    // qemu-img refuses it, and a command that fails is INTERNAL with its command line and stderr
    expect(bad.code).to.equal(13);
    expect(bad.metadata.get('x-cistern-command')[0]).to.match(/^qemu-img create -f luks --object secret,id=v-bad_encrypt0,file=\S+ -o key-secret=v-bad_encrypt0,cipher-alg=nosuch-256,/);
    expect(bad.metadata.get('x-cistern-exitcode')).to.deep.equal(['1']);
    expect(bad.metadata.get('x-cistern-stderr')[0]).to.match(/cipher-alg.*'nosuch-256'/);
    const other = await api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: 'iqn.x:t' }), xml: '', requestId: '', validate: false });
    const noValue = await fails(api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-none', `uuid='${other.uuid}'`), requestId: '' } as never));
    expect(noValue.code).to.equal(9); // FAILED_PRECONDITION: no value yet
    await fails(api.setSecretValue({ name: secret.name, value: Buffer.alloc(70_000, PLANTED) }));
    await fails(api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v-luks', `uuid='${secret.uuid}'`), requestId: '' } as never));
    // a viewer may not touch secrets: PERMISSION_DENIED naming admin
    const viewer = fleet.apiAs(fleet.tokens.viewer);
    const denied = await fails(viewer.getSecret({ name: secret.name }));
    expect(denied.code).to.equal(7);
    expect(denied.message).to.match(/needs role 'admin'/);

    // dumps
    record(await api.getVolumeXml({ name: vol.name, refresh: false }));
    record(await api.getPoolXml(GetPoolXMLRequest.fromPartial({ name: 'hosts/a/pools/enc' })));
    record(await api.listVolumes(ListVolumesRequest.fromPartial({ parent: 'hosts/a/pools/enc' })));
    record(await api.listPools(ListPoolsRequest.fromPartial({})));
    // marker: the last event to read up to
    record(await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: "<volume><name>marker</name><capacity>1024</capacity></volume>", requestId: '' } as never));

    // every event, from the start of the log
    const events: Event[] = [];
    await new Promise<void>((resolve, reject) => {
      const md = new Metadata();
      md.set('authorization', `Bearer ${fleet.tokens.admin}`);
      const call = fleet.client.watchEvents({ afterSequence: 0n, hosts: [], pools: [], kinds: [], fromStart: true }, md);
      call.on('data', (e: Event) => {
        events.push(e);
        if (e.kind === EventKind.VOLUME_CREATED && e.volume.endsWith('marker')) {
          call.cancel();
          resolve();
        }
      });
      call.on('error', (e: ServiceError) => (e.code === 1 ? resolve() : reject(e)));
    });
    expect(events.length).to.be.greaterThan(3);
    const eventText = events.map((e) => JSON.stringify(Event.toJSON(e))).join('\n') + events.map((e) => Buffer.from(Event.encode(e).finish()).toString('latin1')).join('');

    // what ps showed: qemu-img ran with --object secret,...,file=..., never the value
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).to.match(/--object secret,id=[^ ]*,file=\S+/);
    const secretFiles = [...argv.matchAll(/file=(\S+?)(?:,|\s)/g)].map((m) => m[1]!);
    expect(secretFiles.length).to.be.greaterThan(0);
    for (const f of secretFiles) expect(existsSync(f), `secret file ${f} removed after the operation`).to.equal(false);

    const logs = fleet.logs();
    const haystacks: Record<string, string> = {
      'service logs': logs,
      events: eventText,
      'replies and errors': seen.join('\n'),
      'qemu-img argv': argv,
    };
    const needles = [PLANTED, Buffer.from(PLANTED).toString('base64'), Buffer.from(PLANTED).toString('hex')];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const n of needles) expect(text.includes(n), `secret found in ${where}`).to.equal(false);
    }
    expect(logs).to.include('"msg":"audit"');

    // at rest: the NATS store on disk and the raw KV record hold only ciphertext
    const store = fleet.nats.storeDir;
    for (const file of filesUnder(store)) {
      if (statSync(file).size > 64 * 1024 * 1024) continue;
      const bytes = readFileSync(file);
      for (const n of needles) expect(bytes.includes(Buffer.from(n)), `secret found in NATS store file ${file}`).to.equal(false);
    }
    const nc = await connect({ servers: fleet.natsUrl, user: 'coordinator', pass: fleet.natsPass('coordinator') });
    try {
      const { Kvm } = await import('@nats-io/kv');
      const kv = await new Kvm(nc).create('cistern-secrets');
      const raw = await kv.get(`s.${secret.uuid}`);
      expect(raw?.value.length).to.be.greaterThan(0);
      expect(Buffer.from(raw!.value).includes(Buffer.from(PLANTED))).to.equal(false);
    } finally {
      await nc.close();
    }

    // undefine: gone, and the value does not linger in the bucket's history
    await api.undefineSecret({ name: secret.name, requestId: 'undefine-1' });
    const gone = await fails(api.getSecret({ name: secret.name }));
    expect(gone.code).to.equal(5);
    // a retry whose first answer was lost gets that answer, not NOT_FOUND
    expect(await api.undefineSecret({ name: secret.name, requestId: 'undefine-1' })).to.deep.equal({});
    expect((await fails(api.undefineSecret({ name: secret.name, requestId: '' }))).code).to.equal(5);
  });
});
