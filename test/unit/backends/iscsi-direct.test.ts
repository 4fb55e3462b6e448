// iscsi-direct without a target: parsers on output captured from libiscsi-bin 1.19 against
// tgtd 1.0.85, the exact command lines (recording runner), secrets kept off argv, input
// checks, and the REPORT LUNS wire helpers.
import { requireOperation } from '../../../services/agent/context.js';
import { UnimplementedError } from '../../../libs/errors/errors.js';
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { IscsiDirectBackend, lunOf, lunVolumePath } from '../../../libs/backends/iscsi-direct.js';
import { iscsiPortal, iscsiToolError, parseIscsiLs, qemuOptValue } from '../../../libs/backends/libiscsi-tools.js';
import { readCapacity } from '../../../libs/backends/iscsi-lun-commands.js';
import type { TargetSession } from '../../../libs/backends/iscsi-report-luns.js';
import { chapResponse, decodeKeys, encodeKeys, loginStatusError, parseReportLunsData } from '../../../libs/backends/iscsi-report-luns.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { CommandFailedError, DeadlineExceededError, type CisternError } from '../../../libs/errors/errors.js';
import { iscsiadmError } from '../../../libs/backends/iscsiadm.js';
import { PoolType, WipeAlgorithm, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { capacity, CONTROLLER, DISK, scriptedSessions, type ScriptedSessions } from '../../support/fake-lun-session.js';
import { rejects } from '../../support/rejects.js';

// Captured: iscsi-ls -i INIT iscsi://127.0.0.1:33260 (tgtd, two targets)
const ISCSI_LS = 'Target:iqn.2024-01.test:chap Portal:127.0.0.1:33260,1\nTarget:iqn.2024-01.test:open Portal:127.0.0.1:33260,1\n';
// Captured stderr of a wrong CHAP secret (qemu-img and iscsi-ls)
const QEMU_AUTH_FAIL =
  "qemu-img: Could not open 'driver=iscsi,...': iSCSI: Failed to connect to LUN : Failed to log in to target. Status: Authentication failure(513)\n";
const LS_REFUSED = 'discoveryconnect_cb: connection failed : iscsi_service: socket error Connection refused(111).\n';

const INIT = 'iqn.2024-01.test:init';
const TARGET = 'iqn.2024-01.test:open';
const UUID = '10ed4ad4-c7b0-4696-b574-b40e04fea84b';

function pool(extra: { chap?: boolean; host?: string; port?: number; target?: string; initiator?: string } = {}): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI_DIRECT,
    name: 'direct',
    uuid: '',
    source: {
      hosts: [{ name: extra.host ?? '127.0.0.1', port: extra.port ?? 3260 }],
      devices: [{ path: extra.target ?? TARGET, partSeparator: 0, freeExtents: [] }],
      dir: '',
      adapter: undefined,
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: extra.initiator ?? INIT,
      auth: extra.chap ? { type: 'chap', username: 'alice', secret: { uuid: UUID, usage: '', type: '' } } : undefined,
      vendor: '',
      product: '',
    },
    target: undefined,
    features: undefined,
    mountOptions: [],
  };
}

const PASSWORD = 'pa55,word with spaces';

/** A session answering READ CAPACITY(16) with `data` (GOOD). */
function answering(data: Buffer): TargetSession {
  return { where: 'target', reportLuns: async () => [], command: async () => ({ status: 0, data, sense: Buffer.alloc(0) }) };
}

function rc16(lastLba: bigint, blockSize: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64BE(lastLba, 0);
  b.writeUInt32BE(blockSize, 8);
  return b;
}

describe('iscsi-direct parsers (captured libiscsi-bin output)', () => {
  it('reads discovery lines', () => {
    expect(parseIscsiLs(ISCSI_LS)).to.deep.equal([
      { target: 'iqn.2024-01.test:chap', portal: '127.0.0.1:33260', tpgt: 1 },
      { target: 'iqn.2024-01.test:open', portal: '127.0.0.1:33260', tpgt: 1 },
    ]);
    expect(parseIscsiLs('Target:iqn.x Portal:[::1]:3260,1\n')).to.deep.equal([{ target: 'iqn.x', portal: '[::1]:3260', tpgt: 1 }]);
  });

  it('reports the exact capacity: (last LBA + 1) x block size, where libvirt 9.0 drops a block', async () => {
    const rc = await readCapacity(answering(rc16(20479n, 512)), 1);
    expect(rc).to.deep.equal({ lastLba: 20479n, blockSize: 512n, capacity: 10485760n });
    expect(rc.capacity - rc.lastLba * rc.blockSize).to.equal(512n); // libvirt's 9.0 value is one block short
  });

  it('a LUN of 0 bytes (last LBA 0xffffffffffffffff, as tgtd answers) has capacity 0, as libiscsi prints its total size', async () => {
    const rc = await readCapacity(answering(rc16(0xffffffffffffffffn, 512)), 1);
    expect(rc.capacity).to.equal(0n);
  });

  it('maps tool failures to errors a user understands', () => {
    const auth = iscsiToolError(new CommandFailedError(['qemu-img'], 1, QEMU_AUTH_FAIL), 'download');
    expect(auth.code).to.equal('PERMISSION_DENIED');
    expect(auth.message).to.match(/authentication failure/);
    const refused = iscsiToolError(new CommandFailedError(['iscsi-ls'], 10, LS_REFUSED), 'discovery');
    expect(refused.code).to.equal('UNAVAILABLE');
    const missing = iscsiToolError(new CommandFailedError(['iscsi-ls'], undefined, 'spawn iscsi-ls ENOENT'), 'discovery');
    expect(missing.code).to.equal('FAILED_PRECONDITION');
    expect(missing.message).to.match(/libiscsi-bin/);
  });

  it("a tool the agent stopped at its time limit: UNAVAILABLE saying what got no answer, not the caller's DEADLINE_EXCEEDED", () => {
    const argv = 'iscsi-ls -i iqn.2026-11.test:init -- iscsi://127.0.0.1:13852';
    const late = (): DeadlineExceededError => new DeadlineExceededError(`command timed out after 60000 ms: ${argv}`, { command: argv, stderr: '' });
    const direct = iscsiToolError(late(), 'SendTargets discovery on 127.0.0.1:13852');
    expect(direct.code).to.equal('UNAVAILABLE');
    expect(direct.message).to.equal(`SendTargets discovery on 127.0.0.1:13852: no answer from the iSCSI portal in time (command timed out after 60000 ms: ${argv})`);
    const kernel = iscsiadmError(late(), 'sendtargets discovery on 127.0.0.1:13852');
    expect(kernel.code).to.equal('UNAVAILABLE');
    expect(kernel.message).to.equal(`sendtargets discovery on 127.0.0.1:13852: no answer in time (command timed out after 60000 ms: ${argv})`);
  });

  it('brackets IPv6 portals and escapes commas in qemu options', () => {
    expect(iscsiPortal('::1', 3260)).to.equal('[::1]:3260');
    expect(iscsiPortal('san.example.com', 3261)).to.equal('san.example.com:3261');
    expect(qemuOptValue('a,b')).to.equal('a,,b');
  });
});

describe('iSCSI wire helpers (REPORT LUNS client)', () => {
  it('decodes REPORT LUNS data with peripheral and flat addressing, the address method kept as libiscsi and Linux keep it', () => {
    const data = Buffer.alloc(8 + 3 * 8);
    data.writeUInt32BE(24, 0);
    data[8 + 1] = 0; // LUN 0
    data[16 + 1] = 7; // LUN 7 (peripheral)
    data[24] = 0x41; // flat addressing, LUN 0x100 + 2
    data[24 + 1] = 0x02;
    // 0x4102: the number libvirt 9.0 names the volume after (unit:0:0:16642) and the one
    // libiscsi's tools and qemu must be given to address that LUN (0x102 would be bus 1, LUN 2)
    expect(parseReportLunsData(data)).to.deep.equal([0, 7, 0x4102]);
  });

  it('computes the CHAP response as RFC 1994 (MD5 of id, secret, challenge)', () => {
    const expected = createHash('md5').update(Buffer.from([7])).update('secret').update(Buffer.from('0102ff', 'hex')).digest('hex');
    expect(chapResponse(7, Buffer.from('secret'), '0x0102ff')).to.equal(`0x${expected}`);
  });

  it('round-trips login keys and names login failures', () => {
    expect([...decodeKeys(encodeKeys([['A', '1'], ['TargetName', 'iqn.x:y']]))]).to.deep.equal([['A', '1'], ['TargetName', 'iqn.x:y']]);
    expect(loginStatusError(2, 1, 't', 'h:1').message).to.match(/authentication failure/);
    expect((loginStatusError(2, 1, 't', 'h:1') as CisternError).code).to.equal('PERMISSION_DENIED');
    expect((loginStatusError(2, 3, 't', 'h:1') as CisternError).code).to.equal('NOT_FOUND');
  });
});

describe('iscsi-direct backend command lines (recording runner)', () => {
  const TEN_MIB = capacity(20480n);
  function backend(luns: number[], sessions: ScriptedSessions = scriptedSessions({ luns, readCapacity: () => TEN_MIB })): IscsiDirectBackend {
    return new IscsiDirectBackend({ session: sessions.open });
  }
  const secrets = new Map([[UUID, Buffer.from(PASSWORD)]]);

  it('refresh: REPORT LUNS, INQUIRY of each LUN, READ CAPACITY of the disks, in one session; controller LUNs are not volumes', async () => {
    const runner = new RecordingRunner({ strict: true });
    const sessions = scriptedSessions({ luns: [1, 0, 1], inquiry: (lun) => (lun === 0 ? CONTROLLER : DISK), readCapacity: () => TEN_MIB });
    const r = await backend([], sessions).refreshPool({ runner, pool: pool({ chap: true }), secrets });
    expect(sessions.opened).to.have.length(1);
    expect(sessions.asked).to.deep.equal(['reportLuns', 'inquiry 0', 'inquiry 1', 'readCapacity 1']);
    expect(runner.calls).to.have.length(0);
    expect(r.volumes.map((v) => [v.name, v.key, v.target?.path, v.capacity, v.allocation, v.physical])).to.deep.equal([
      // no physical size: libvirt 9.0's vol-dumpxml of an iscsi-direct LUN has no <physical>
      ['unit:0:0:1', `ip-127.0.0.1:3260-iscsi-${TARGET}-lun-1`, `ip-127.0.0.1:3260-iscsi-${TARGET}-lun-1`, 10485760n, 10485760n, undefined],
    ]);
    expect(r.runtime).to.deep.equal({ capacity: 10485760n, allocation: 10485760n, available: 0n });
    // CHAP: the session gets the secret
    expect(sessions.opened[0]!.chap).to.deep.equal({ username: 'alice', password: Buffer.from(PASSWORD) });
  });

  it("refuses a LUN whose READ CAPACITY is past a volume's size or whose blocks the transfers cannot hold: FAILED_PRECONDITION naming it", async () => {
    // a hostile target's answer: before, a capacity of 2^96 reached the agent's state, and the
    // next full sync, which could not encode it, ended the agent
    const answers = [
      [{ lastLba: 18446744073709551615n, blockSize: 4294967296n, capacity: 0n }, /LUN 1 of .* reports logical blocks of 4294967296 bytes; from 512 to 65536 are supported/],
      // (last LBA 0xffffffffffffffff is a LUN without blocks, capacity 0: the largest real one is one less)
      [capacity(18446744073709551615n, 4096n), /LUN 1 of .* reports a capacity of 75557863725914323415040 bytes; at most 9223372036854775807/],
      [capacity(2048n, 536870912n), /reports logical blocks of 536870912 bytes/],
    ] as const;
    for (const [rc, message] of answers) {
      const runner = new RecordingRunner({ strict: true });
      const err = await rejects(backend([], scriptedSessions({ luns: [1], readCapacity: () => rc })).refreshPool({ runner, pool: pool(), secrets }));
      expect((err as CisternError).code).to.equal('FAILED_PRECONDITION');
      expect((err as Error).message).to.match(message);
    }
  });

  it('zero wipe: qemu-img convert from null-co, the CHAP secret in a 0600 file removed afterwards', async () => {
    let secretFile = '';
    const runner = new RecordingRunner({ strict: true })
      .on(['qemu-img', 'convert'], (argv) => {
        const obj = argv[argv.indexOf('--object') + 1]!;
        secretFile = /file=(.*)$/.exec(obj)![1]!;
        expect(readFileSync(secretFile, 'utf8')).to.equal(PASSWORD);
        return {};
      });
    await backend([1]).wipeVol({ runner, pool: pool({ chap: true }), secrets }, { name: 'unit:0:0:1' } as VolumeDefinition, WipeAlgorithm.WIPE_ALGORITHM_ZERO);
    const q = runner.callsOf('qemu-img')[0]!;
    expect(q).to.deep.equal([
      'qemu-img',
      'convert',
      '-n',
      '-t',
      'writeback',
      '--object',
      `secret,id=cistern-chap,file=${secretFile}`,
      '--image-opts',
      '--target-image-opts',
      '--',
      'driver=null-co,size=10485760,read-zeroes=on',
      `driver=raw,offset=0,size=10485760,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:3260,file.target=${TARGET},file.lun=1,file.initiator-name=${INIT},file.user=alice,file.password-secret=cistern-chap`,
    ]);
    expect(existsSync(secretFile)).to.equal(false);
    for (const a of runner.argvs) expect(a.join(' ')).not.to.contain('pa55');
  });

  it('download: block-aligned windows read with qemu-img, the requested bytes returned', async () => {
    const lunBytes = Buffer.alloc(10485760);
    for (let i = 0; i < 4096; i++) lunBytes[i] = i & 0xff;
    const runner = new RecordingRunner({ strict: true })
      .on(['qemu-img', 'convert'], (argv) => {
        const opts = argv[argv.length - 2]!;
        const offset = Number(/offset=(\d+)/.exec(opts)![1]);
        const size = Number(/,size=(\d+)/.exec(opts)![1]);
        writeFileSync(argv[argv.length - 1]!, lunBytes.subarray(offset, offset + size));
        return {};
      });
    const parts: Buffer[] = [];
    for await (const b of backend([1]).downloadVol({ runner, pool: pool() }, { name: 'unit:0:0:1' } as VolumeDefinition, 100n, 1000n)) parts.push(b);
    expect(Buffer.concat(parts)).to.deep.equal(lunBytes.subarray(100, 1100));
    const q = runner.callsOf('qemu-img')[0]!;
    expect(q.slice(0, 6)).to.deep.equal(['qemu-img', 'convert', '-O', 'raw', '--image-opts', '--']);
    expect(q[6]).to.match(/^driver=raw,offset=0,size=1536,file.driver=iscsi,/);
  });

  it('download from past the end of the LUN: INVALID_ARGUMENT naming offset, as every block volume; from its end: empty', async () => {
    // docs/api.md: a download from past the end is INVALID_ARGUMENT (`offset`) for a block
    // device (partition, logical volume, LUN), as block-data.ts refuses it
    const runner = new RecordingRunner({ strict: true });
    const vol = { name: 'unit:0:0:1' } as VolumeDefinition;
    const read = async (offset: bigint): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const b of backend([1]).downloadVol({ runner, pool: pool() }, vol, offset, 0n)) parts.push(b);
      return Buffer.concat(parts);
    };
    const err = await rejects(read(10485761n));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/offset/).and.to.match(/10485760 bytes/);
    expect((await read(10485760n)).length).to.equal(0);
    expect(runner.callsOf('qemu-img')).to.have.length(0);
  });

  it('wipe algorithms other than zero are refused before anything runs (as libvirt)', async () => {
    const runner = new RecordingRunner({ strict: true });
    const err = await rejects(backend([1]).wipeVol({ runner, pool: pool() }, { name: 'unit:0:0:1' } as VolumeDefinition, WipeAlgorithm.WIPE_ALGORITHM_GUTMANN));
    expect(err.code).to.equal('INVALID_ARGUMENT');
    expect(err.message).to.match(/'zero' only, not 'gutmann'/);
    expect(runner.calls).to.have.length(0);
  });

  it('discovery: iscsi-ls on the portal, one source per target', async () => {
    const runner = new RecordingRunner({ strict: true }).on(['iscsi-ls'], { stdout: ISCSI_LS });
    const found = await backend([]).findPoolSources({ runner }, pool({ port: 33260 }).source);
    expect(runner.argvs).to.deep.equal([['iscsi-ls', '-i', INIT, '--', 'iscsi://127.0.0.1:33260']]);
    expect(found.map((s) => [s.hosts[0]!.name, s.hosts[0]!.port, s.devices[0]!.path, s.initiatorIqn])).to.deep.equal([
      ['127.0.0.1', 33260, 'iqn.2024-01.test:chap', INIT],
      ['127.0.0.1', 33260, 'iqn.2024-01.test:open', INIT],
    ]);
  });

  it('refuses bad sources with INVALID_ARGUMENT naming the field, before any command', async () => {
    const runner = new RecordingRunner({ strict: true });
    const b = backend([1]);
    const ctx = (p: PoolDefinition): PoolContext => ({ runner, pool: p });
    const cases: Array<[PoolDefinition, RegExp]> = [
      [pool({ target: 'iqn.x,driver=file' }), /devices\[0\]\.path/],
      [pool({ target: '-o' }), /devices\[0\]\.path/],
      [pool({ initiator: '' }), /initiator_iqn/],
      [pool({ host: 'a b' }), /hosts\[0\]\.name/],
      [pool({ port: 70000 }), /port 70000/],
    ];
    for (const [p, re] of cases) {
      const err = await rejects(b.refreshPool(ctx(p)));
      expect(err.code, err.message).to.equal('INVALID_ARGUMENT');
      expect(err.message).to.match(re);
    }
    const two = pool();
    two.source!.hosts.push({ name: 'b', port: 0 });
    expect((await rejects(b.refreshPool(ctx(two)))).message).to.match(/exactly 1 host/);
    // CHAP without the secret value handed to this operation
    const missing = await rejects(b.refreshPool(ctx(pool({ chap: true }))));
    expect(missing.code).to.equal('FAILED_PRECONDITION');
    expect(missing.message).to.contain(UUID);
    expect(runner.calls).to.have.length(0);
  });

  it('names volumes after LUNs and finds them by name or path', () => {
    const t = { host: '::1', port: 3260, target: TARGET, initiator: INIT, portal: iscsiPortal('::1', 3260) };
    expect(lunVolumePath(t, 3)).to.equal(`ip-[::1]:3260-iscsi-${TARGET}-lun-3`);
    expect(lunOf(t, { name: 'unit:0:0:3', key: '' })).to.equal(3);
    expect(lunOf(t, { name: 'unit:0:0:16684', key: '' })).to.equal(16684); // LUN 300, flat addressing
    expect(() => lunOf(t, { name: 'unit:0:0:65536', key: '' })).to.throw(/unit:0:0:N/);
    expect(lunOf(t, { name: '', key: '', target: { path: `ip-[::1]:3260-iscsi-${TARGET}-lun-12` } })).to.equal(12);
    expect(() => lunOf(t, { name: 'unit:0:0:x', key: '' })).to.throw(/unit:0:0:N/);
    expect(() => lunOf(t, { name: '', key: '', target: { path: 'ip-[::1]:3260-iscsi-other-lun-1' } })).to.throw(/no volume with path/);
  });

  it('cannot create or delete volumes: UNIMPLEMENTED, saying LUNs come from the array', async () => {
    const b = backend([]);
    expect(b.operations.has('createVol')).to.equal(false);
    expect(b.operations.has('deleteVol')).to.equal(false);
    expect(() => requireOperation(b, 'deleteVol', 'deleting a volume')).to.throw(UnimplementedError, /removed on the storage array/);
  });
});
