// An iscsi-direct pool on a CHAP target through the whole stack: gRPC -> coordinator
// (with a secret key) -> NATS -> agent -> libiscsi-bin / qemu-img -> a private tgtd on
// 127.0.0.1 serving one open target and one behind CHAP. The CHAP password lives in a
// Secret (usage iscsi, usage id = the target IQN) and reaches the agent only inside the
// operations that log in. Checks: start, LUN list with exact capacities, a download whose
// sha256 matches the backing file, discovery of both targets, a wrong password refused
// with a clear message that does not carry it (and the pool stays inactive), and no
// password in any XML dump.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { ListPoolsRequest, PoolState, PoolType, Secret, SecretUsageType, VolumeType } from '../../libs/proto/cistern/v1/storage.js';
import { download, makeTempDir, outcomeOf, registerCleanup, type Stack, startAgent, startStack, upload, waitFor } from '../support/index.js';
import { startTgtd, tgtdAvailable, type Tgtd } from '../support/tgtd.js';

const MiB = 1024 * 1024;
const OPEN = 'iqn.2024-01.io.cistern.it:chap-open';
const CHAP = 'iqn.2024-01.io.cistern.it:chap-locked';
const INITIATOR = 'iqn.2024-01.io.cistern.it:agent-a';
const USER = 'alice';
// letters and digits only, so the needle cannot be hidden by escaping in a message
const PASSWORD = `Pw${randomBytes(8).toString('hex')}`;
const WRONG = `Wr${randomBytes(8).toString('hex')}`;

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

const usable =
  tgtdAvailable() && ['/usr/bin/iscsi-ls', '/usr/bin/iscsi-inq', '/usr/bin/iscsi-readcapacity16', '/usr/bin/qemu-img'].every((p) => existsSync(p));

import { writeSecretKey } from '../support/secret-key.js';

describe('iscsi-direct pool on a CHAP target, password from the Secret API (tgtd on 127.0.0.1)', function () {
  this.timeout(180_000);
  let stack: Stack | undefined;
  let tgt: Tgtd | undefined;
  let keyDir: { path: string; remove: () => Promise<void> } | undefined;
  const content = randomBytes(3 * MiB + 4096);

  before(async function () {
    this.timeout(120_000);
    if (!usable) this.skip(); // needs Debian tgt, libiscsi-bin, qemu-utils and qemu-block-extra (scripts/setup.sh)
    tgt = await startTgtd([
      { iqn: OPEN, luns: [{ lun: 1, size: 2 * MiB }] },
      {
        iqn: CHAP,
        luns: [
          { lun: 1, size: 4 * MiB, content },
          { lun: 3, size: 5 * MiB + 512 },
        ],
        chap: { username: USER, password: PASSWORD },
      },
    ]);
    keyDir = makeTempDir('cistern-chap-key-');
    const keyFile = writeSecretKey(keyDir.path);
    stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', keyFile] });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tgt?.stop();
    await keyDir?.remove();
  });

  const poolXml = (name: string, secretRef: string): string =>
    `<pool type='iscsi-direct'><name>${name}</name><source><host name='127.0.0.1' port='${tgt!.port}'/><device path='${CHAP}'/>` +
    `<initiator><iqn name='${INITIATOR}'/></initiator><auth type='chap' username='${USER}'><secret ${secretRef}/></auth></source></pool>`;

  it('starts with the secret named by usage, lists the LUNs with exact capacities, downloads a LUN, discovers both targets', async () => {
    const api = stack!.api;
    const port = tgt!.port;
    const secret = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: CHAP, description: 'CHAP of the locked target' }),
      xml: '',
      requestId: '',
      validate: false,
    });
    const set = await api.setSecretValue({ name: secret.name, value: Buffer.from(PASSWORD) });
    expect(set.hasValue).to.equal(true);

    const pool = 'hosts/a/pools/locked';
    await api.definePool({ host: 'a', definition: undefined, xml: poolXml('locked', `usage='${CHAP}'`), requestId: '', validate: false });
    const started = await api.startPool({ name: pool, build: false, buildFlags: undefined, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(started.capacity).to.equal(BigInt(9 * MiB + 512));
    expect(started.allocation).to.equal(BigInt(9 * MiB + 512));

    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    const key = (lun: number): string => `ip-127.0.0.1:${port}-iscsi-${CHAP}-lun-${lun}`;
    expect(listed.volumes.map((v) => [v.name, v.definition?.key, v.definition?.target?.path, v.definition?.capacity, v.definition?.type])).to.deep.equal([
      [`${pool}/volumes/unit:0:0:1`, key(1), key(1), BigInt(4 * MiB), VolumeType.VOLUME_TYPE_NETWORK],
      [`${pool}/volumes/unit:0:0:3`, key(3), key(3), BigInt(5 * MiB + 512), VolumeType.VOLUME_TYPE_NETWORK],
    ]);

    // the whole LUN, read over iSCSI with CHAP, is the backing file byte for byte
    const backing = readFileSync(tgt!.targets[1]!.files.get(1)!);
    const data = await download(stack!, `${pool}/volumes/unit:0:0:1`);
    expect(data.length).to.equal(4 * MiB);
    expect(sha256(data)).to.equal(sha256(backing));
    expect(data.subarray(0, content.length).equals(content)).to.equal(true);
    // an unaligned window in the middle
    const part = await download(stack!, `${pool}/volumes/unit:0:0:1`, 1000n, 70_000n);
    expect(part.equals(backing.subarray(1000, 71_000))).to.equal(true);

    // upload (unaligned offset and length) then download: the same bytes, also in the backing file
    const payload = randomBytes(MiB + 1234);
    const at = 777n;
    expect(await upload(stack!, `${pool}/volumes/unit:0:0:3`, payload, at, BigInt(payload.length))).to.equal(BigInt(payload.length));
    const back = await download(stack!, `${pool}/volumes/unit:0:0:3`, at, BigInt(payload.length));
    expect(sha256(back)).to.equal(sha256(payload));
    const lun3 = tgt!.targets[1]!.files.get(3)!;
    expect(sha256(readFileSync(lun3).subarray(Number(at), Number(at) + payload.length))).to.equal(sha256(payload));
    expect(readFileSync(lun3).subarray(0, Number(at)).every((b) => b === 0)).to.equal(true);

    // a zero wipe over CHAP: the backing file reads back as zeros
    await api.wipeVolume({ name: `${pool}/volumes/unit:0:0:3`, algorithm: 0, requestId: '' });
    const wiped = readFileSync(lun3);
    expect(wiped.length).to.equal(5 * MiB + 512);
    expect(wiped.every((b) => b === 0)).to.equal(true);

    // a refresh logs in again with the secret
    const refreshed = await api.refreshPool({ name: pool, requestId: '' });
    expect(refreshed.capacity).to.equal(BigInt(9 * MiB + 512));

    // SendTargets discovery through the API lists both targets of the portal
    const sources = await api.findPoolSources({
      host: 'a',
      type: PoolType.POOL_TYPE_ISCSI_DIRECT,
      sourceXml: `<source><host name='127.0.0.1' port='${port}'/><initiator><iqn name='${INITIATOR}'/></initiator></source>`,
      source: undefined,
    });
    expect(sources.sources.map((s) => s.devices[0]?.path).sort()).to.deep.equal([CHAP, OPEN].sort());
    for (const s of sources.sources) expect(s.hosts[0]?.name).to.equal('127.0.0.1');

    // the pool's XML names the secret, never the password
    for (const inactive of [false, true]) {
      const { xml } = await api.getPoolXml({ name: pool, inactive });
      expect(xml).to.contain(`username='${USER}'`).and.to.match(new RegExp(`<secret usage='${CHAP.replace(/\./g, '\\.')}'`));
      expect(xml).to.not.contain(PASSWORD);
    }
    const volXml = await api.getVolumeXml({ name: `${pool}/volumes/unit:0:0:1`, refresh: false });
    expect(volXml.xml).to.not.contain(PASSWORD);
    // vol-info and vol-dumpxml (refresh) read the LUN again, which logs in with the secret too
    const reread = await api.getVolume({ name: `${pool}/volumes/unit:0:0:3`, refresh: true });
    expect(reread.definition?.capacity).to.equal(BigInt(5 * MiB + 512));
    const rereadXml = await api.getVolumeXml({ name: `${pool}/volumes/unit:0:0:1`, refresh: true });
    expect(rereadXml.xml).to.contain(`<capacity unit='bytes'>${4 * MiB}</capacity>`).and.to.not.contain(PASSWORD);

    const stopped = await api.stopPool({ name: pool, requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.undefinePool({ name: pool, requestId: '' });
  });

  it('a secret holding the wrong password: start refused with a clear message without the password; the pool stays inactive', async () => {
    const api = stack!.api;
    // a second secret, referenced by uuid (its usage id must differ from the right one's)
    const wrong = await api.defineSecret({
      secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: `${CHAP}-wrong`, description: 'a wrong CHAP password' }),
      xml: '',
      requestId: '',
      validate: false,
    });
    await api.setSecretValue({ name: wrong.name, value: Buffer.from(WRONG) });

    const pool = 'hosts/a/pools/badauth';
    await api.definePool({ host: 'a', definition: undefined, xml: poolXml('badauth', `uuid='${wrong.uuid}'`), requestId: '', validate: false });
    const failed = await outcomeOf(api.startPool({ name: pool, build: false, buildFlags: undefined, requestId: '' }));
    expect(status[failed.code], failed.message).to.be.oneOf(['PERMISSION_DENIED', 'FAILED_PRECONDITION']);
    expect(failed.message).to.match(/authentication failure/i);
    expect(failed.message).to.match(/CHAP/);
    for (const pw of [WRONG, PASSWORD]) {
      expect(failed.message).to.not.contain(pw);
      expect(failed.message).to.not.contain(Buffer.from(pw).toString('base64'));
    }

    const got = await api.getPool({ name: pool });
    expect(got.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    const listed = await api.listPools(ListPoolsRequest.fromPartial({ host: 'a', active: true }));
    expect(listed.pools.map((p) => p.name)).to.not.include(pool);
    const volumes = await outcomeOf(api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' }));
    expect(status[volumes.code]).to.equal('FAILED_PRECONDITION');

    const { xml } = await api.getPoolXml({ name: pool, inactive: false });
    expect(xml).to.contain(`<secret uuid='${wrong.uuid}'`);
    expect(xml).to.not.contain(WRONG);

    // no password in what the services logged
    const logs = stack!.logs();
    for (const pw of [WRONG, PASSWORD]) expect(logs.includes(pw), 'password found in service logs').to.equal(false);

    await api.undefinePool({ name: pool, requestId: '' });
  });

  it('an autostart CHAP pool comes back active after an agent restart, its password asked of the coordinator', async () => {
    const api = stack!.api;
    const pool = 'hosts/a/pools/boot';
    await api.definePool({ host: 'a', definition: undefined, xml: poolXml('boot', `usage='${CHAP}'`), requestId: '', validate: false });
    await api.setPoolAutostart({ name: pool, autostart: true, requestId: '' });
    await stack!.restartAgent('a');
    await stack!.waitForHosts(['a']);
    await waitFor('the autostart pool to be running', async () => (await api.getPool({ name: pool })).state === PoolState.POOL_STATE_RUNNING, { timeoutMs: 30_000 });
    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.name)).to.deep.equal([`${pool}/volumes/unit:0:0:1`, `${pool}/volumes/unit:0:0:3`]);
    const logs = stack!.logs();
    expect(logs).to.match(/secret released to an agent for a pool start/);
    expect(logs.includes(PASSWORD), 'password found in service logs').to.equal(false);
    await api.stopPool({ name: pool, requestId: '' });
    await api.undefinePool({ name: pool, requestId: '' });
  });

  it('an autostart CHAP pool whose agent starts while no coordinator runs starts once a coordinator comes up', async () => {
    const api = stack!.api;
    const pool = 'hosts/a/pools/later';
    await api.definePool({ host: 'a', definition: undefined, xml: poolXml('later', `usage='${CHAP}'`), requestId: '', validate: false });
    await api.setPoolAutostart({ name: pool, autostart: true, requestId: '' });
    await stack!.stopAgent('a');
    await stack!.coordinator.stop();
    // the agent alone: nobody answers its secret request, so the pool waits for a coordinator
    const agent = await startAgent({ natsUrl: stack!.natsUrl, hostId: 'a', root: stack!.roots.a });
    registerCleanup('agent a started without a coordinator', () => agent.stop());
    await waitFor('the first autostart round', () => /autostart done/.test(agent.process.logs()), { timeoutMs: 30_000 });
    expect(agent.process.logs()).to.not.match(/a coordinator is up/);
    await stack!.restartCoordinator();
    await waitFor('the autostart pool to be running', async () => (await stack!.api.getPool({ name: pool })).state === PoolState.POOL_STATE_RUNNING, { timeoutMs: 30_000 });
    expect(agent.process.logs()).to.match(/a coordinator is up: starting the autostart pools that waited for their secret/);
    expect(stack!.logs().includes(PASSWORD) || agent.process.logs().includes(PASSWORD), 'password found in service logs').to.equal(false);
    await stack!.api.stopPool({ name: pool, requestId: '' });
    await stack!.api.undefinePool({ name: pool, requestId: '' });
  });
});
