// An iscsi-direct pool through the whole stack: gRPC -> coordinator -> NATS -> agent ->
// libiscsi-bin / qemu-img against a private tgtd on 127.0.0.1. Define from libvirt XML,
// start, list the LUN volumes with exact capacities, look one up by key, download it,
// wipe it, find the target with FindPoolSources, refuse volume creation, stop.
//
// The CHAP target through the API, with its password from the Secret API, is in
// test/integration/iscsi-direct-chap.test.ts.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { PoolState, PoolType, VolumeType } from '../../libs/proto/cistern/v1/storage.js';
import { download, outcomeOf, useStack } from '../support/index.js';
import { startTgtd, tgtdAvailable, type Tgtd } from '../support/tgtd.js';

const MiB = 1024 * 1024;
const TARGET = 'iqn.2024-01.io.cistern.it:open';
const INITIATOR = 'iqn.2024-01.io.cistern.it:agent-a';

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

const usable =
  tgtdAvailable() && ['/usr/bin/iscsi-ls', '/usr/bin/iscsi-inq', '/usr/bin/iscsi-readcapacity16', '/usr/bin/qemu-img'].every((p) => existsSync(p));

describe('iscsi-direct pool through coordinator, NATS and agent (tgtd on 127.0.0.1)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let tgt: Tgtd | undefined;
  const content = randomBytes(2 * MiB);

  before(async function () {
    if (!usable) this.skip(); // needs Debian tgt, libiscsi-bin, qemu-utils and qemu-block-extra (scripts/setup.sh)
    tgt = await startTgtd([
      {
        iqn: TARGET,
        luns: [
          { lun: 1, size: 4 * MiB, content },
          { lun: 2, size: 6 * MiB + 512 },
        ],
      },
    ]);
  });
  after(async () => {
    await tgt?.stop();
  });

  it('define from XML, start, list LUNs, look up, download, wipe, discover, stop', async () => {
    const api = ctx.stack.api;
    const port = tgt!.port;
    const pool = 'hosts/a/pools/san';
    await api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='iscsi-direct'><name>san</name><source><host name='127.0.0.1' port='${port}'/><device path='${TARGET}'/><initiator><iqn name='${INITIATOR}'/></initiator></source></pool>`,
      requestId: '', validate: false,
    });
    const started = await api.startPool({ name: pool, build: false, buildFlags: undefined, requestId: '' });
    expect(started.state).to.equal(PoolState.POOL_STATE_RUNNING);
    expect(started.capacity).to.equal(BigInt(10 * MiB + 512));
    expect(started.allocation).to.equal(BigInt(10 * MiB + 512));

    const listed = await api.listVolumes({ parent: pool, pageSize: 0, pageToken: '' });
    const key = (lun: number): string => `ip-127.0.0.1:${port}-iscsi-${TARGET}-lun-${lun}`;
    expect(listed.volumes.map((v) => [v.name, v.definition?.key, v.definition?.target?.path, v.definition?.capacity, v.definition?.type])).to.deep.equal([
      [`${pool}/volumes/unit:0:0:1`, key(1), key(1), BigInt(4 * MiB), VolumeType.VOLUME_TYPE_NETWORK],
      [`${pool}/volumes/unit:0:0:2`, key(2), key(2), BigInt(6 * MiB + 512), VolumeType.VOLUME_TYPE_NETWORK],
    ]);

    const found = await api.lookupVolume({ host: 'a', key: key(2), path: '' });
    expect(found.name).to.equal(`${pool}/volumes/unit:0:0:2`);
    // libvirt's network paths are not absolute, and lookups by them work all the same
    const byPath = await api.lookupVolume({ host: 'a', key: '', path: key(1) });
    expect(byPath.name).to.equal(`${pool}/volumes/unit:0:0:1`);

    const xml = await api.getVolumeXml({ name: `${pool}/volumes/unit:0:0:1`, refresh: false });
    expect(xml.xml).to.contain('<name>unit:0:0:1</name>');
    expect(xml.xml).to.contain(key(1));

    const data = await download(ctx.stack, `${pool}/volumes/unit:0:0:1`, 0n, BigInt(content.length));
    expect(sha256(data)).to.equal(sha256(content));

    await api.wipeVolume({ name: `${pool}/volumes/unit:0:0:1`, algorithm: 0, requestId: '' });
    expect(readFileSync(tgt!.targets[0]!.files.get(1)!).every((b) => b === 0)).to.equal(true);

    const sources = await api.findPoolSources({
      host: 'a',
      type: PoolType.POOL_TYPE_ISCSI_DIRECT,
      sourceXml: `<source><host name='127.0.0.1' port='${port}'/><initiator><iqn name='${INITIATOR}'/></initiator></source>`,
      source: undefined,
    });
    expect(sources.sources.map((s) => s.devices[0]?.path)).to.deep.equal([TARGET]);

    const create = await outcomeOf(
      api.createVolume({ parent: pool, definition: undefined, xml: `<volume><name>new</name><capacity>1048576</capacity></volume>`, preallocMetadata: false, requestId: '', validate: false }),
    );
    expect(status[create.code]).to.equal('UNIMPLEMENTED');

    const stopped = await api.stopPool({ name: pool, requestId: '' });
    expect(stopped.state).to.equal(PoolState.POOL_STATE_INACTIVE);
    await api.undefinePool({ name: pool, requestId: '' });
  });
});
