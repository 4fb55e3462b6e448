// A LUN whose logical blocks are not a multiple of 512 bytes (520, as a DIF-formatted array
// can present): READ CAPACITY lists it, as libvirt 9.0 does, but its data moves through
// qemu-img's iSCSI driver, which refuses to open such a LUN (block/iscsi.c
// iscsi_readcapacity_sync: "the target returned an invalid block size"). Every data operation
// then ended INTERNAL 'command failed: qemu-img ...'. It is the LUN's geometry, not a fault of
// the agent: FAILED_PRECONDITION naming the LUN and its block size, before qemu-img runs.
import { expect } from 'chai';
import { IscsiDirectBackend } from '../../../libs/backends/iscsi-direct.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { rejects } from '../../support/rejects.js';
import { capacity, scriptedSessions } from '../../support/fake-lun-session.js';


function pool(): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'direct',
    uuid: '',
    source: {
      hosts: [{ name: '127.0.0.1', port: 3260 }],
      devices: [{ path: 'iqn.2024-01.test:open', partSeparator: 0, freeExtents: [] }],
      dir: '',
      adapter: undefined,
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: 'iqn.2024-01.test:init',
      auth: undefined,
      vendor: '',
      product: '',
    },
    target: undefined,
    features: undefined,
    mountOptions: [],
  };
}

describe('iscsi-direct LUN with 520-byte blocks', () => {
  const backend = new IscsiDirectBackend({ session: scriptedSessions({ luns: [1], readCapacity: () => capacity(2048n, 520n) }).open });
  const vol = { name: 'unit:0:0:1' } as VolumeDefinition;
  // strict: a qemu-img run would fail the test with "no scripted answer"
  const runner = (): RecordingRunner => new RecordingRunner({ strict: true });

  it('is listed by a refresh, with its exact capacity', async () => {
    const r = await backend.refreshPool({ runner: runner(), pool: pool() });
    expect(r.volumes.map((v) => [v.name, v.capacity])).to.deep.equal([['unit:0:0:1', 2048n * 520n]]);
  });

  it('wipe, upload and download: FAILED_PRECONDITION naming the LUN and its block size; qemu-img is not run', async () => {
    const download = async (): Promise<void> => {
      for await (const _ of backend.downloadVol({ runner: runner(), pool: pool() }, vol, 0n, 0n)) void _;
    };
    const attempts: Array<Promise<unknown>> = [
      backend.wipeVol({ runner: runner(), pool: pool() }, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
      backend.uploadVol({ runner: runner(), pool: pool() }, vol, 0n, 4n, (async function* () {
        yield Buffer.from('data');
      })()),
      download(),
    ];
    for (const attempt of attempts) {
      const err = await rejects(attempt);
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/LUN 1 of iqn\.2024-01\.test:open has logical blocks of 520 bytes/);
    }
  });
});
