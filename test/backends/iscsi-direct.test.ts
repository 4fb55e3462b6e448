// The iscsi-direct backend against a real iSCSI target: a private tgtd on 127.0.0.1 with
// file-backed LUNs, one target open and one behind CHAP. Everything the user sees: the
// LUN list with exact capacities, lookups by path, a zero wipe (the backing file reads
// back as zeros), an upload/download round trip, discovery of both targets, and clear
// errors for wrong CHAP credentials.
import { requireOperation } from '../../services/agent/context.js';
import { UnimplementedError } from '../../libs/errors/errors.js';
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { IscsiDirectBackend } from '../../libs/backends/iscsi-direct.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { PoolContext } from '../../libs/backends/backend.js';
import type { CisternError } from '../../libs/errors/errors.js';
import { PoolType, VolumeType, WipeAlgorithm, type PoolDefinition, type PoolSource, type VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { startTgtd, tgtdAvailable, type Tgtd } from '../support/tgtd.js';
import { chunks, collect } from '../support/volume-data.js';

const MiB = 1024 * 1024;
const INITIATOR = 'iqn.2024-01.io.cistern.test:initiator';
const OPEN = 'iqn.2024-01.io.cistern.test:open';
const CHAP = 'iqn.2024-01.io.cistern.test:chap';
const SECRET_UUID = '10ed4ad4-c7b0-4696-b574-b40e04fea84b';
const PASSWORD = 'chap-secret-1234';

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function source(tgt: Tgtd, target: string | undefined, auth?: { username: string }): PoolSource {
  return {
    hosts: [{ name: tgt.host, port: tgt.port }],
    devices: target ? [{ path: target, partSeparator: 0, freeExtents: [] }] : [],
    dir: '',
    adapter: undefined,
    name: '',
    format: '',
    protocolVersion: '',
    initiatorIqn: INITIATOR,
    auth: auth ? { type: 'chap', username: auth.username, secret: { uuid: SECRET_UUID, usage: '', type: '' } } : undefined,
    vendor: '',
    product: '',
  };
}

function poolDef(tgt: Tgtd, target: string, auth?: { username: string }): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'direct',
    uuid: '',
    source: source(tgt, target, auth),
    target: undefined,
    features: undefined,
    mountOptions: [],
  };
}

async function errorOf(p: Promise<unknown>): Promise<CisternError> {
  try {
    await p;
  } catch (err) {
    return err as CisternError;
  }
  throw new Error('expected the call to fail');
}



const toolsThere = tgtdAvailable() && ['/usr/bin/iscsi-ls', '/usr/bin/iscsi-inq', '/usr/bin/iscsi-readcapacity16', '/usr/bin/qemu-img'].every((p) => existsSync(p));

describe('iscsi-direct backend against tgtd (real target)', function () {
  this.timeout(120_000);
  let tgt: Tgtd;
  const backend = new IscsiDirectBackend();
  const runner = new ExecRunner();
  const lun1Content = randomBytes(64 * 1024);

  before(async function () {
    if (!toolsThere) this.skip(); // needs Debian tgt, libiscsi-bin, qemu-utils + qemu-block-extra (scripts/setup.sh installs them)
    tgt = await startTgtd([
      {
        iqn: OPEN,
        luns: [
          { lun: 1, size: 8 * MiB, content: lun1Content },
          { lun: 2, size: 3 * MiB + 4096 }, // not a power of two: the exact-capacity check
        ],
      },
      { iqn: CHAP, luns: [{ lun: 1, size: 4 * MiB }], chap: { username: 'alice', password: PASSWORD } },
    ]);
  });

  after(async () => {
    await tgt?.stop();
  });

  const openCtx = (): PoolContext => ({ runner, pool: poolDef(tgt, OPEN) });
  const chapCtx = (password = PASSWORD): PoolContext => ({
    runner,
    pool: poolDef(tgt, CHAP, { username: 'alice' }),
    secrets: new Map([[SECRET_UUID, Buffer.from(password)]]),
  });

  it('lists the disk LUNs of the open target with exact capacities, libvirt names and keys', async () => {
    const r = await backend.refreshPool(openCtx());
    const portal = `127.0.0.1:${tgt.port}`;
    expect(r.volumes.map((v) => [v.name, v.key, v.target?.path, v.capacity, v.allocation, v.type])).to.deep.equal([
      ['unit:0:0:1', `ip-${portal}-iscsi-${OPEN}-lun-1`, `ip-${portal}-iscsi-${OPEN}-lun-1`, BigInt(8 * MiB), BigInt(8 * MiB), VolumeType.VOLUME_TYPE_NETWORK],
      ['unit:0:0:2', `ip-${portal}-iscsi-${OPEN}-lun-2`, `ip-${portal}-iscsi-${OPEN}-lun-2`, BigInt(3 * MiB + 4096), BigInt(3 * MiB + 4096), VolumeType.VOLUME_TYPE_NETWORK],
    ]);
    // Pool sizes are the sum over the LUNs (the controller LUN 0 is not a volume).
    expect(r.runtime.capacity).to.equal(BigInt(11 * MiB + 4096));
    expect(r.runtime.allocation).to.equal(BigInt(11 * MiB + 4096));
  });

  it('looks a LUN up by its path and re-reads it', async () => {
    const ctx = openCtx();
    const path = `ip-127.0.0.1:${tgt.port}-iscsi-${OPEN}-lun-2`;
    const v = await backend.refreshVol(ctx, { name: '', key: '', target: { path } } as VolumeDefinition);
    expect(v.name).to.equal('unit:0:0:2');
    expect(v.capacity).to.equal(BigInt(3 * MiB + 4096));
    const err = await errorOf(backend.refreshVol(ctx, { name: '', key: '', target: { path: `ip-127.0.0.1:${tgt.port}-iscsi-${CHAP}-lun-1` } } as VolumeDefinition));
    expect(err.code).to.equal('NOT_FOUND');
  });

  it('downloads what the backing file holds, and an upload reads back with the same sha256', async () => {
    const ctx = openCtx();
    const vol = (await backend.refreshPool(ctx)).volumes.find((v) => v.name === 'unit:0:0:1')!;
    const head = await collect(backend.downloadVol!(ctx, vol, 0n, BigInt(lun1Content.length)));
    expect(sha256(head)).to.equal(sha256(lun1Content));

    const data = randomBytes(5 * MiB + 123);
    const offset = 1024n * 1024n;
    const written = await backend.uploadVol!(ctx, vol, offset, 0n, chunks(data, 100_000));
    expect(written).to.equal(BigInt(data.length));
    const back = await collect(backend.downloadVol!(ctx, vol, offset, BigInt(data.length)));
    expect(back.length).to.equal(data.length);
    expect(sha256(back)).to.equal(sha256(data));
    // And the target's backing file holds exactly those bytes at that offset.
    const file = readFileSync(tgt.targets[0]!.files.get(1)!);
    expect(sha256(file.subarray(Number(offset), Number(offset) + data.length))).to.equal(sha256(data));
    // A whole-LUN download is the LUN's exact size.
    const all = await collect(backend.downloadVol!(ctx, vol, 0n, 0n));
    expect(all.length).to.equal(8 * MiB);
    expect(sha256(all)).to.equal(sha256(file));
  });

  it('uploads and downloads at offsets and lengths that are not block aligned', async () => {
    const ctx = openCtx();
    const vol = { name: 'unit:0:0:2' } as VolumeDefinition;
    const file = tgt.targets[0]!.files.get(2)!;
    const before = readFileSync(file);
    const data = randomBytes(70_001);
    expect(await backend.uploadVol!(ctx, vol, 1001n, 0n, chunks(data, 9999))).to.equal(BigInt(data.length));
    const expected = Buffer.from(before);
    data.copy(expected, 1001);
    expect(sha256(readFileSync(file))).to.equal(sha256(expected));
    const back = await collect(backend.downloadVol!(ctx, vol, 1001n, BigInt(data.length)));
    expect(sha256(back)).to.equal(sha256(data));
    const tail = await collect(backend.downloadVol!(ctx, vol, BigInt(3 * MiB + 4000), 0n));
    expect(tail.length).to.equal(96);
  });

  it('refuses an upload that passes the end of the LUN', async () => {
    const ctx = openCtx();
    const vol = { name: 'unit:0:0:2' } as VolumeDefinition;
    const err = await errorOf(backend.uploadVol!(ctx, vol, BigInt(3 * MiB), 8192n, chunks(Buffer.alloc(8192), 4096)));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/end of LUN 2/);
  });

  it('zero-wipes a LUN: the backing file reads back as zeros', async () => {
    const ctx = openCtx();
    const file = tgt.targets[0]!.files.get(1)!;
    expect(readFileSync(file).some((b) => b !== 0)).to.equal(true);
    await backend.wipeVol!(ctx, { name: 'unit:0:0:1' } as VolumeDefinition, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    const after = readFileSync(file);
    expect(after.length).to.equal(8 * MiB);
    expect(after.every((b) => b === 0)).to.equal(true);
    const err = await errorOf(backend.wipeVol!(ctx, { name: 'unit:0:0:1' } as VolumeDefinition, WipeAlgorithm.WIPE_ALGORITHM_DOD));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/'zero' only/);
  });

  it('reaches the CHAP target with the right secret: list, upload, download, wipe', async () => {
    const ctx = chapCtx();
    const r = await backend.refreshPool(ctx);
    expect(r.volumes.map((v) => [v.name, v.capacity])).to.deep.equal([['unit:0:0:1', BigInt(4 * MiB)]]);
    const vol = r.volumes[0]!;
    const data = randomBytes(MiB);
    await backend.uploadVol!(ctx, vol, 0n, BigInt(data.length), chunks(data, 65536));
    expect(sha256(await collect(backend.downloadVol!(ctx, vol, 0n, BigInt(data.length))))).to.equal(sha256(data));
    await backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    expect(readFileSync(tgt.targets[1]!.files.get(1)!).every((b) => b === 0)).to.equal(true);
  });

  it('wrong CHAP credentials give PERMISSION_DENIED saying authentication failed, for every operation', async () => {
    const ctx = chapCtx('not-the-password');
    const vol = { name: 'unit:0:0:1' } as VolumeDefinition;
    for (const op of [
      () => backend.refreshPool(ctx),
      () => backend.refreshVol(ctx, vol),
      () => backend.wipeVol!(ctx, vol, WipeAlgorithm.WIPE_ALGORITHM_ZERO),
      () => collect(backend.downloadVol!(ctx, vol, 0n, 0n)),
      () => backend.uploadVol!(ctx, vol, 0n, 0n, chunks(Buffer.alloc(512), 512)),
    ]) {
      const err = await errorOf(op());
      expect(err.code, err.message).to.equal('PERMISSION_DENIED');
      expect(err.message).to.match(/authentication failure/);
      expect(err.message).not.to.contain('not-the-password');
    }
    // No credentials at all for the CHAP target: the same answer.
    const none = await errorOf(backend.refreshPool({ runner, pool: poolDef(tgt, CHAP) }));
    expect(none.code).to.equal('PERMISSION_DENIED');
    // A CHAP pool whose secret value was not handed to the agent: FAILED_PRECONDITION.
    const missing = await errorOf(backend.refreshPool({ runner, pool: poolDef(tgt, CHAP, { username: 'alice' }) }));
    expect(missing.code).to.equal('FAILED_PRECONDITION');
    expect(missing.message).to.contain(SECRET_UUID);
  });

  it('discovers both targets of the portal (FindPoolSources)', async () => {
    const found = await backend.findPoolSources({ runner }, source(tgt, undefined));
    expect(found.map((s) => s.devices[0]?.path).sort()).to.deep.equal([CHAP, OPEN].sort());
    for (const s of found) {
      expect(s.hosts).to.deep.equal([{ name: '127.0.0.1', port: tgt.port }]);
      expect(s.initiatorIqn).to.equal(INITIATOR);
    }
  });

  it('an unknown target is NOT_FOUND and a closed port UNAVAILABLE', async () => {
    const unknown = await errorOf(backend.refreshPool({ runner, pool: poolDef(tgt, 'iqn.2024-01.io.cistern.test:nope') }));
    expect(unknown.code).to.equal('NOT_FOUND');
    const pool = poolDef(tgt, OPEN);
    pool.source!.hosts[0]!.port = 1;
    const closed = await errorOf(backend.refreshPool({ runner, pool }));
    expect(closed.code).to.equal('UNAVAILABLE');
  });

  it('cannot create or delete LUN volumes (UNIMPLEMENTED with the reason)', async () => {
    expect(backend.operations.has('createVol')).to.equal(false);
    expect(backend.operations.has('deleteVol')).to.equal(false);
    expect(() => requireOperation(backend, 'createVol', 'creating a volume')).to.throw(UnimplementedError, /LUNs, created on the storage array/);
  });
});
