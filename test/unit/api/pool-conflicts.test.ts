// libvirt's storage source conflicts (virStoragePoolObjSourceFindDuplicate), pool type by pool type.
import { expect } from 'chai';
import { AdapterType, PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';
import type { DeepPartial } from '../../../libs/proto/cistern/v1/storage.js';
import { sourceConflict } from '../../../libs/api/pool-conflicts.js';

const pool = (name: string, type: PoolType, extra: DeepPartial<PoolDefinition> = {}): PoolDefinition => PoolDefinition.fromPartial({ name, type, ...extra });
const dev = (...paths: string[]) => paths.map((path) => ({ path }));

describe('pool source conflicts (libvirt virStoragePoolObjSourceFindDuplicate)', () => {
  it('dir: the same target directory, however it is written; another directory or name is fine', () => {
    const a = pool('a', PoolType.POOL_TYPE_DIR, { target: { path: '/srv/images' } });
    expect(sourceConflict(a, pool('b', PoolType.POOL_TYPE_DIR, { target: { path: '/srv/images/' } }))).to.match(/target directory/);
    expect(sourceConflict(a, pool('b', PoolType.POOL_TYPE_DIR, { target: { path: '/srv/other' } }))).to.equal(undefined);
    // redefining the same pool is not a conflict with itself
    expect(sourceConflict(a, pool('a', PoolType.POOL_TYPE_DIR, { target: { path: '/srv/images' } }))).to.equal(undefined);
  });

  it('netfs: the same export on the same server (a port given must match)', () => {
    const a = pool('a', PoolType.POOL_TYPE_NETFS, { source: { hosts: [{ name: 'nfs1', port: 0 }], dir: '/export' } });
    expect(sourceConflict(a, pool('b', PoolType.POOL_TYPE_NETFS, { source: { hosts: [{ name: 'nfs1', port: 0 }], dir: '/export' } }))).to.match(/nfs1:\/export/);
    expect(sourceConflict(a, pool('b', PoolType.POOL_TYPE_NETFS, { source: { hosts: [{ name: 'nfs2', port: 0 }], dir: '/export' } }))).to.equal(undefined);
    expect(sourceConflict(a, pool('b', PoolType.POOL_TYPE_NETFS, { source: { hosts: [{ name: 'nfs1', port: 2050 }], dir: '/export' } }))).to.equal(undefined);
  });

  it('fs, logical, disk: a shared source device; iscsi only against iscsi with the same initiator', () => {
    const fs = pool('a', PoolType.POOL_TYPE_FS, { source: { devices: dev('/dev/sdb1') } });
    expect(sourceConflict(fs, pool('b', PoolType.POOL_TYPE_LOGICAL, { source: { devices: dev('/dev/sdc', '/dev/sdb1') } }))).to.match(/\/dev\/sdb1/);
    expect(sourceConflict(fs, pool('b', PoolType.POOL_TYPE_DISK, { source: { devices: dev('/dev/sdc') } }))).to.equal(undefined);
    // two logical pools of one volume group conflict, though they name no device (libvirt lets
    // them be: deleting either would then vgremove the other's storage)
    expect(sourceConflict(pool('vg', PoolType.POOL_TYPE_LOGICAL, { source: { name: 'vg0' } }), pool('b', PoolType.POOL_TYPE_LOGICAL, { source: { name: 'vg0' } }))).to.equal("volume group 'vg0'");
    expect(sourceConflict(pool('vg0', PoolType.POOL_TYPE_LOGICAL, {}), pool('b', PoolType.POOL_TYPE_LOGICAL, { source: { name: 'vg0' } }))).to.equal("volume group 'vg0'");
    expect(sourceConflict(pool('vg', PoolType.POOL_TYPE_LOGICAL, { source: { name: 'vg0' } }), pool('b', PoolType.POOL_TYPE_LOGICAL, { source: { name: 'vg1' } }))).to.equal(undefined);
    const iscsi = pool('i', PoolType.POOL_TYPE_ISCSI, { source: { devices: dev('iqn.2026-01.x:t'), initiatorIqn: 'iqn.init:1' } });
    expect(sourceConflict(iscsi, pool('j', PoolType.POOL_TYPE_ISCSI, { source: { devices: dev('iqn.2026-01.x:t'), initiatorIqn: 'iqn.init:1' } }))).to.match(/iqn\.2026-01\.x:t/);
    expect(sourceConflict(iscsi, pool('j', PoolType.POOL_TYPE_ISCSI, { source: { devices: dev('iqn.2026-01.x:t'), initiatorIqn: 'iqn.init:2' } }))).to.equal(undefined);
    expect(sourceConflict(iscsi, pool('j', PoolType.POOL_TYPE_FS, { source: { devices: dev('iqn.2026-01.x:t') } }))).to.equal(undefined);
  });

  it('scsi: the same adapter; mpath: one per host; iscsi-direct: never', () => {
    const scsi = (name: string, adapter: string) => pool(name, PoolType.POOL_TYPE_SCSI, { source: { adapter: { type: AdapterType.ADAPTER_TYPE_SCSI_HOST, name: adapter } } });
    expect(sourceConflict(scsi('a', 'host3'), scsi('b', 'host3'))).to.match(/SCSI adapter/);
    expect(sourceConflict(scsi('a', 'host3'), scsi('b', 'host4'))).to.equal(undefined);
    // libvirt compares the host numbers (virSCSIHostGetNumber): host3 and scsi_host3 are one adapter
    expect(sourceConflict(scsi('a', 'host3'), scsi('b', 'scsi_host3'))).to.match(/SCSI adapter/);
    expect(sourceConflict(scsi('a', 'scsi_host03'), scsi('b', 'host3'))).to.match(/SCSI adapter/);
    expect(sourceConflict(scsi('a', 'scsi_host3'), scsi('b', 'host13'))).to.equal(undefined);
    expect(sourceConflict(scsi('a', 'fc_host3'), scsi('b', 'host3'))).to.match(/SCSI adapter/);
    expect(sourceConflict(pool('m', PoolType.POOL_TYPE_MPATH), pool('n', PoolType.POOL_TYPE_MPATH))).to.match(/one mpath pool per host/);
    const direct = (name: string) => pool(name, PoolType.POOL_TYPE_ISCSI_DIRECT, { source: { devices: dev('iqn.x:t'), hosts: [{ name: '127.0.0.1', port: 3260 }] } });
    expect(sourceConflict(direct('a'), direct('b'))).to.equal(undefined);
  });

  it('scsi fc_host: one vHBA whatever case or 0x prefix its WWNs are written with', () => {
    const fc = (name: string, wwnn: string, wwpn: string) =>
      pool(name, PoolType.POOL_TYPE_SCSI, { source: { adapter: { type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn, wwpn } } });
    const a = fc('a', '2001001b32a9da4e', '2101001b32a9da4e');
    // the agent writes and looks up both as the same WWNs (vhba.ts normalizeWwn): one vHBA
    expect(sourceConflict(a, fc('b', '0x2001001b32a9da4e', '0x2101001b32a9da4e'))).to.match(/SCSI adapter/);
    expect(sourceConflict(a, fc('b', '2001001B32A9DA4E', '2101001B32A9DA4E'))).to.match(/SCSI adapter/);
    expect(sourceConflict(a, fc('b', '2001001b32a9da4e', '2101001b32a9da4f'))).to.equal(undefined);
    expect(sourceConflict(a, fc('b', '2001001b32a9da4f', '2101001b32a9da4e'))).to.equal(undefined);
  });
});
