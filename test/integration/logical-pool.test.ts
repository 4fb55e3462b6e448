// A logical pool through the gRPC API, the coordinator, NATS and a real agent, on two
// loop devices. The agent's environment carries LVM_SYSTEM_DIR pointing at a test-only
// lvm.conf (activation off: this kernel has no device-mapper; only the test's loop
// devices visible), which the agent's command runner passes to every LVM command.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachLoop, loopDevicesAvailable, makeTempDir, outcomeOf, registerCleanup, startStack, type LoopDevice, type Stack } from '../support/index.js';
import { PoolState, PoolType, Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';
import { writeSecretKey } from '../support/secret-key.js';

function hasLvm(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v lvcreate'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('logical pool through coordinator, NATS and agent (LVM on loop devices, activation off)', function () {
  this.timeout(180_000);
  let stack: Stack | undefined;
  let disks: LoopDevice[] = [];
  let confDir: string;
  const vg = `cistern_it${process.pid}_${randomBytes(3).toString('hex')}`;
  const poolName = `hosts/a/pools/${vg}`;

  before(async function () {
    if (!loopDevicesAvailable()) this.skip();
    if (!hasLvm()) this.skip();
    disks = [attachLoop(48 * 1024 * 1024, 'lvm-it-a'), attachLoop(48 * 1024 * 1024, 'lvm-it-b')];
    confDir = makeTempDir('cistern-lvm-it-').path;
    const accept = disks.map((d) => `"a|^${d.device}$|"`).join(', ');
    mkdirSync(join(confDir, 'lock'));
    writeFileSync(
      join(confDir, 'lvm.conf'),
      `devices {\n filter = [ ${accept}, "r|.*|" ]\n global_filter = [ ${accept}, "r|.*|" ]\n use_devicesfile = 0\n obtain_device_list_from_udev = 0\n hints = "none"\n}\n` +
        `activation {\n udev_sync = 0\n udev_rules = 0\n monitoring = 0\n}\n` +
        `global {\n activation = 0\n use_lvmpolld = 0\n event_activation = 0\n locking_dir = "${confDir}/lock"\n}\nbackup {\n backup = 0\n archive = 0\n}\n`,
    );
    const env = { ...process.env, LVM_SYSTEM_DIR: confDir, LVM_SUPPRESS_FD_WARNINGS: '1' };
    registerCleanup(`volume group ${vg}`, () => {
      for (const argv of [['vgremove', '-f', vg], ['pvremove', ...disks.map((d) => d.device)]]) {
        try {
          execFileSync(argv[0]!, argv.slice(1), { env, stdio: 'ignore' });
        } catch {
          /* gone already */
        }
      }
    });
    stack = await startStack({ hosts: ['a'], env: { LVM_SYSTEM_DIR: confDir }, coordinatorArgs: ['--secret-key-file', writeSecretKey(confDir)] });
  });

  after(async () => {
    await stack?.stop();
  });

  it('defines and builds the pool, creates, lists and deletes LVs, finds the VG, deletes the pool', async () => {
    const api = stack!.api;
    const devices = disks.map((d) => `<device path='${d.device}'/>`).join('');
    const xml = `<pool type='logical'><name>${vg}</name><source>${devices}<name>${vg}</name><format type='lvm2'/></source><target><path>/dev/${vg}</path></target></pool>`;
    await api.definePool({ host: 'a', definition: undefined, xml, requestId: '', validate: false });
    const pool = await api.startPool({ name: poolName, build: true, buildFlags: { overwrite: false, noOverwrite: true }, requestId: '' });
    expect(pool.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(pool.capacity > 80n * 1024n * 1024n).to.equal(true);

    const vol = await api.createVolume({ parent: poolName, definition: undefined, xml: "<volume><name>lv1</name><capacity unit='MiB'>8</capacity></volume>", preallocMetadata: false, requestId: '', validate: false });
    // storageVolCreateXML adds the new volume's allocation to the pool's: current without a refresh
    const afterCreate = await api.getPool({ name: poolName });
    expect([afterCreate.capacity, afterCreate.allocation, afterCreate.available]).to.deep.equal([pool.capacity, pool.allocation + 8n * 1024n * 1024n, pool.available - 8n * 1024n * 1024n]);
    expect(vol.definition?.target?.path).to.equal(`/dev/${vg}/lv1`);
    expect(vol.definition?.key).to.match(/^[A-Za-z0-9-]{38}$/);
    expect(vol.definition?.capacity).to.equal(8n * 1024n * 1024n);
    const volXml = await api.getVolumeXml({ name: vol.name, refresh: false });
    expect(volXml.xml).to.match(new RegExp(`<device path='${disks[0]!.device}'>\\s*<extent start='0' end='8388608'/>`));
    // the agent's lvcreate tagged the LV with the create's id (its undo removes only that LV)
    const lvmEnv = { ...process.env, LVM_SYSTEM_DIR: confDir, LVM_SUPPRESS_FD_WARNINGS: '1' };
    const tags = execFileSync('lvs', ['--noheadings', '-o', 'lv_tags', `${vg}/lv1`], { env: lvmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(tags.trim()).to.match(/^cistern\.create\.[0-9a-f]{16}$/);

    const bad = await outcomeOf(api.createVolume({ parent: poolName, definition: undefined, xml: '<volume><name>bad:name</name><capacity>1048576</capacity></volume>', preallocMetadata: false, requestId: '', validate: false }));
    expect(status[bad.code]).to.equal('INVALID_ARGUMENT');
    expect(bad.message).to.include('A-Z a-z 0-9 + _ . -');

    // a LUKS-encrypted LV: the coordinator sends the passphrase, the agent runs lvcreate for
    // 10 MiB + 2 MiB (libvirt 9.0); with activation off the LV has no node to format, so the
    // create fails saying so and removes the LV (no passphrase: nothing would run at all)
    const secret = await api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: `/dev/${vg}/sealed` }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: secret.name, value: Buffer.from('h65 lv passphrase') });
    const sealedXml = `<volume><name>sealed</name><capacity unit='MiB'>10</capacity><target><encryption format='luks'><secret type='passphrase' uuid='${secret.uuid}'/></encryption></target></volume>`;
    const sealed = await outcomeOf(api.createVolume({ parent: poolName, definition: undefined, xml: sealedXml, preallocMetadata: false, requestId: '', validate: false }));
    expect(status[sealed.code]).to.equal('FAILED_PRECONDITION');
    expect(sealed.message).to.match(/logical volume '\/dev\/[^']+\/sealed' is not active .*no device node to write its LUKS header to/);
    const lvNames = execFileSync('lvs', ['--noheadings', '-o', 'lv_name', vg], { env: lvmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(lvNames.split('\n').map((l) => l.trim()).filter(Boolean)).to.deep.equal(['lv1']);
    await api.undefineSecret({ name: secret.name, requestId: '' });

    const listed = await api.listVolumes({ parent: poolName, pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.definition?.name)).to.deep.equal(['lv1']);

    const sources = await api.findPoolSources({ host: 'a', type: PoolType.POOL_TYPE_LOGICAL, sourceXml: '', source: undefined });
    const mine = sources.sources.find((s) => s.name === vg);
    expect(mine?.devices.map((d) => d.path).sort()).to.deep.equal(disks.map((d) => d.device).sort());

    // libvirt's storageVolDeleteInternal gives the volume's allocation back to the pool: the
    // sizes are right straight after the delete, as the next refresh (vgs) reads them
    const withLv = await api.refreshPool({ name: poolName, requestId: '' });
    expect([withLv.capacity, withLv.allocation, withLv.available]).to.deep.equal([afterCreate.capacity, afterCreate.allocation, afterCreate.available]);
    await api.deleteVolume({ name: vol.name, requestId: '' });
    expect((await api.listVolumes({ parent: poolName, pageSize: 0, pageToken: '' })).volumes).to.deep.equal([]);
    const afterDelete = await api.getPool({ name: poolName });
    expect([afterDelete.capacity, afterDelete.allocation, afterDelete.available]).to.deep.equal([withLv.capacity, withLv.allocation - 8n * 1024n * 1024n, withLv.available + 8n * 1024n * 1024n]);
    const refreshed = await api.refreshPool({ name: poolName, requestId: '' });
    expect([refreshed.capacity, refreshed.allocation, refreshed.available]).to.deep.equal([afterDelete.capacity, afterDelete.allocation, afterDelete.available]);

    await api.stopPool({ name: poolName, requestId: '' });
    await api.deletePool({ name: poolName, requestId: '' });
    const env = { ...process.env, LVM_SYSTEM_DIR: confDir, LVM_SUPPRESS_FD_WARNINGS: '1' };
    const pvs = execFileSync('pvs', ['--noheadings', '-o', 'pv_name'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    for (const d of disks) expect(pvs).to.not.include(d.device);
    await api.undefinePool({ name: poolName, requestId: '' });
  });
});
