// The iscsi pool (kernel initiator) without a kernel initiator: this machine cannot run
// iscsid or load iscsi_tcp, so every iscsiadm command sequence is pinned with the
// recording runner, the parsers read output captured from iscsiadm 2.1.8 (or its
// documented format where only a live session prints it), and refresh runs the shared
// LU scan against a fixture sysfs + /dev tree built per test. A host without kernel
// support gets FAILED_PRECONDITION naming what is missing, before any command runs.
import { expect } from 'chai';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IscsiBackend } from '../../../libs/backends/iscsi.js';
import {
  ifaceNameFor,
  iscsiadmError,
  iscsiadmPortal,
  nodeUpdateArgv,
  parseDiscovery,
  parseIfaces,
  parseSessions,
  setNodePassword,
} from '../../../libs/backends/iscsiadm.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import type { PoolContext } from '../../../libs/backends/backend.js';
import { CommandFailedError } from '../../../libs/errors/errors.js';
import { PoolType, type PoolDefinition, type VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { makeTempDir } from '../../support/cleanup.js';
import { rejects } from '../../support/rejects.js';

const TARGET = 'iqn.2024-01.test:open';
const UUID = '2ec115d7-3a88-3ceb-bc12-0ac909a6fd87';
const PASSWORD = 'very secret chap';

// Captured from iscsiadm 2.1.8 on Debian 12 (this machine, no iscsid):
const IFACES = 'default tcp,<empty>,<empty>,<empty>,<empty>\niser iser,<empty>,<empty>,<empty>,<empty>\n';
const NO_SESSIONS = 'iscsiadm: No active sessions.\n';
const NO_ISCSID = `iscsiadm: can not connect to iSCSI daemon (111)!
iscsiadm: Could not login to [iface: default, target: iqn.2024-01.test:open, portal: 127.0.0.1,33260].
iscsiadm: initiator reported error (20 - could not connect to iscsid)
iscsiadm: Could not log into all portals
`;
const NO_MODULE = `iscsiadm: Could not scan /sys/class/iscsi_transport.
libkmod: ERROR ../libkmod/libkmod-module.c:895 kmod_module_insert_module: could not find module by name='iscsi_tcp'
iscsiadm: Could not insert module tcp. Kmod error -2
iscsiadm: iSCSI driver tcp is not loaded. Load the module then retry the command.
iscsiadm: Could not perform SendTargets discovery: iSCSI driver not found. Please make sure it is loaded, and retry the operation
`;
const NODE_RECORD = '# BEGIN RECORD 2.1.8\nnode.name = iqn.2024-01.test:open\nnode.tpgt = 1\nnode.startup = manual\n# END RECORD\n';
// iscsiadm's documented session and discovery formats (a live kernel session prints these):
const SESSIONS = 'tcp: [3] 127.0.0.1:3260,1 iqn.2024-01.test:open (non-flash)\ntcp: [4] [::1]:3260,1 iqn.2024-01.test:other (non-flash)\n';
const DISCOVERY = '127.0.0.1:3260,1 iqn.2024-01.test:open\n127.0.0.1:3260,1 iqn.2024-01.test:chap\n';

function pool(extra: { chap?: boolean; initiator?: string; host?: string; target?: string } = {}): PoolDefinition {
  return {
    type: PoolType.POOL_TYPE_ISCSI,
    name: 'san',
    uuid: '',
    source: {
      hosts: [{ name: extra.host ?? '127.0.0.1', port: 0 }],
      devices: [{ path: TARGET, partSeparator: 0, freeExtents: [] }],
      dir: '',
      adapter: undefined,
      name: '',
      format: '',
      protocolVersion: '',
      initiatorIqn: extra.initiator ?? '',
      auth: extra.chap ? { type: 'chap', username: 'admin', secret: { uuid: UUID, usage: '', type: '' } } : undefined,
      vendor: '',
      product: '',
    },
    target: { path: extra.target ?? '/dev/disk/by-path', permissions: undefined },
    features: undefined,
    mountOptions: [],
  };
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A host with the kernel initiator, a session 3 on SCSI host 4 with LUNs 0 (controller), 1 and 2. */
function fixtureHost(): { root: string; sys: string; dev: string; proc: string; nodes: string } {
  const root = makeTempDir('cistern-iscsi-').path;
  const sys = join(root, 'sys');
  const dev = join(root, 'dev');
  const proc = join(root, 'proc');
  mkdirSync(join(sys, 'module', 'iscsi_tcp'), { recursive: true });
  mkdirSync(join(sys, 'class', 'iscsi_host', 'host4'), { recursive: true });
  mkdirSync(join(sys, 'class', 'iscsi_session', 'session3', 'device', 'target4:0:0'), { recursive: true });
  write(join(proc, 'net', 'unix'), 'Num RefCount Protocol Flags Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 20519 @ISCSIADM_ABSTRACT_NAMESPACE\n');
  const lu = (lun: number, type: number, block?: string, sectors?: number, wwid?: string): void => {
    const d = join(sys, 'bus', 'scsi', 'devices', `4:0:0:${lun}`);
    write(join(d, 'type'), `${type}\n`);
    if (wwid) write(join(d, 'wwid'), `${wwid}\n`);
    if (block) {
      write(join(d, 'block', block, 'size'), `${sectors}\n`);
      write(join(dev, block), '');
      mkdirSync(join(dev, 'disk', 'by-path'), { recursive: true });
      symlinkSync(`../../${block}`, join(dev, 'disk', 'by-path', `ip-127.0.0.1:3260-iscsi-${TARGET}-lun-${lun}`));
    }
  };
  lu(0, 12);
  lu(1, 0, 'sdc', 20480, 'naa.60000000000000000e00000000010001');
  lu(2, 0, 'sdd', 8, 'naa.60000000000000000e00000000010002');
  // Another host's LU is not the session's.
  write(join(sys, 'bus', 'scsi', 'devices', '0:0:0:0', 'type'), '0\n');
  const nodes = join(root, 'nodes');
  mkdirSync(nodes);
  return { root, sys, dev, proc, nodes };
}

function backendOn(f: ReturnType<typeof fixtureHost>): IscsiBackend {
  return new IscsiBackend({ sysfsRoot: f.sys, devRoot: f.dev, procRoot: f.proc, nodesDirs: [f.nodes], keySource: 'sysfs' });
}

describe('iscsiadm parsers and command lines', () => {
  it('reads sessions, ifaces (captured) and discovery', () => {
    expect(parseSessions(SESSIONS)).to.deep.equal([
      { transport: 'tcp', id: '3', portal: '127.0.0.1:3260', tpgt: 1, target: 'iqn.2024-01.test:open' },
      { transport: 'tcp', id: '4', portal: '[::1]:3260', tpgt: 1, target: 'iqn.2024-01.test:other' },
    ]);
    expect(parseSessions(NO_SESSIONS)).to.deep.equal([]);
    expect(parseIfaces(IFACES).map((i) => [i.name, i.transport, i.initiatorName])).to.deep.equal([
      ['default', 'tcp', ''],
      ['iser', 'iser', ''],
    ]);
    expect(parseIfaces('cistern-1 tcp,<empty>,<empty>,<empty>,iqn.2024-01.test:custom\n')[0]!.initiatorName).to.equal('iqn.2024-01.test:custom');
    expect(parseDiscovery(DISCOVERY).map((d) => d.target)).to.deep.equal(['iqn.2024-01.test:open', 'iqn.2024-01.test:chap']);
    expect(parseDiscovery('[fd00::1]:3260,1 iqn.x\n')).to.deep.equal([{ portal: '[fd00::1]:3260', tpgt: 1, target: 'iqn.x' }]);
  });

  it('writes portals as libvirt does: host:port,1 with IPv6 in brackets', () => {
    expect(iscsiadmPortal('127.0.0.1', 3260)).to.equal('127.0.0.1:3260,1');
    expect(iscsiadmPortal('fd00::1', 3261)).to.equal('[fd00::1]:3261,1');
  });

  it('never builds a command line carrying a password', () => {
    expect(() => nodeUpdateArgv('p', 't', 'node.session.auth.password', 'x')).to.throw(/never passed to iscsiadm/);
  });

  it('names a missing iscsid or kernel module in FAILED_PRECONDITION (captured stderr)', () => {
    const a = iscsiadmError(new CommandFailedError(['iscsiadm'], 20, NO_ISCSID), 'login');
    expect(a.code).to.equal('FAILED_PRECONDITION');
    expect(a.message).to.match(/iscsid is not running/);
    const b = iscsiadmError(new CommandFailedError(['iscsiadm'], 12, NO_MODULE), 'discovery');
    expect(b.code).to.equal('FAILED_PRECONDITION');
    expect(b.message).to.match(/iscsi_tcp/);
    expect(iscsiadmError(new CommandFailedError(['iscsiadm'], 24, 'iscsiadm: Login failed'), 'login').code).to.equal('PERMISSION_DENIED');
  });

  it('puts the CHAP password into the node record, mode 0600, replacing an old one', async () => {
    const root = makeTempDir('cistern-nodes-').path;
    const record = join(root, TARGET, '127.0.0.1,3260,1', 'default');
    write(record, NODE_RECORD.replace('# END', 'node.session.auth.password = old\n# END'));
    expect(await setNodePassword([root], TARGET, '127.0.0.1', 3260, 1, 'default', Buffer.from(PASSWORD))).to.equal(record);
    const text = readFileSync(record, 'utf8');
    expect(text.match(/node\.session\.auth\.password/g)).to.have.length(1);
    expect(text).to.contain(`node.session.auth.password = ${PASSWORD}\n# END RECORD`);
    expect(statSync(record).mode & 0o777).to.equal(0o600);
    const none = await rejects(setNodePassword([root], 'iqn.none', '127.0.0.1', 3260, 1, 'default', Buffer.from('x')));
    expect(none.code).to.equal('FAILED_PRECONDITION');
  });
});

describe('iscsi backend command sequences (recording runner, fixture sysfs)', () => {
  it('start without a session: node record, login; nothing else', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'session'], { exitCode: 21, stderr: NO_SESSIONS }).on(['iscsiadm', '--mode', 'node'], {});
    const b = backendOn(f);
    const ctx: PoolContext = { runner, pool: pool() };
    expect(await b.checkPool(ctx)).to.equal(false);
    runner.reset();
    await b.startPool(ctx);
    expect(runner.argvs).to.deep.equal([
      ['iscsiadm', '--mode', 'session'],
      ['iscsiadm', '--mode', 'node', '--portal', '127.0.0.1:3260,1', '--targetname', TARGET, '--op', 'new'],
      ['iscsiadm', '--mode', 'node', '--portal', '127.0.0.1:3260,1', '--targetname', TARGET, '--login'],
    ]);
    expect(runner.calls[0]!.options.okExitCodes).to.deep.equal([0, 21]);
  });

  it('start with an existing session logs in to nothing', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'session'], { stdout: SESSIONS });
    const b = backendOn(f);
    expect(await b.checkPool({ runner, pool: pool() })).to.equal(true);
    await b.startPool({ runner, pool: pool() });
    expect(runner.argvs.every((a) => a.join(' ') === 'iscsiadm --mode session')).to.equal(true);
  });

  it('start with CHAP and a custom initiator IQN: iface created once, CHAP set, password only in the node record', async () => {
    const f = fixtureHost();
    const initiator = 'iqn.2024-01.test:custom';
    const iface = ifaceNameFor(initiator);
    let ifaceMade = false;
    const runner = new RecordingRunner({ strict: true })
      .on(['iscsiadm', '--mode', 'session'], { exitCode: 21, stderr: NO_SESSIONS })
      .on(['iscsiadm', '--mode', 'iface', '--interface', iface, '--op', 'new'], () => {
        ifaceMade = true;
      })
      .on(['iscsiadm', '--mode', 'iface', '--interface', iface, '--op', 'update'], {})
      .onMatch((a) => a.join(' ') === 'iscsiadm --mode iface', () => ({
        stdout: IFACES + (ifaceMade ? `${iface} tcp,<empty>,<empty>,<empty>,${initiator}\n` : ''),
      }))
      .onMatch(
        (a) => a.includes('new') && a.includes('node'),
        () => write(join(f.nodes, TARGET, '127.0.0.1,3260,1', iface), NODE_RECORD), // what iscsiadm would write
      )
      .on(['iscsiadm', '--mode', 'node'], {});
    const b = backendOn(f);
    const ctx: PoolContext = { runner, pool: pool({ chap: true, initiator }), secrets: new Map([[UUID, Buffer.from(PASSWORD)]]) };
    await b.startPool(ctx);
    const P = ['--portal', '127.0.0.1:3260,1', '--targetname', TARGET];
    expect(runner.argvs).to.deep.equal([
      ['iscsiadm', '--mode', 'session'],
      ['iscsiadm', '--mode', 'iface'],
      ['iscsiadm', '--mode', 'iface', '--interface', iface, '--op', 'new'],
      ['iscsiadm', '--mode', 'iface', '--interface', iface, '--op', 'update', '--name', 'iface.initiatorname', '--value', initiator],
      ['iscsiadm', '--mode', 'iface'],
      ['iscsiadm', '--mode', 'node', ...P, '--op', 'new', '--interface', iface],
      ['iscsiadm', '--mode', 'node', ...P, '--op', 'update', '--name', 'node.session.auth.authmethod', '--value', 'CHAP', '--interface', iface],
      ['iscsiadm', '--mode', 'node', ...P, '--op', 'update', '--name', 'node.session.auth.username', '--value', 'admin', '--interface', iface],
      ['iscsiadm', '--mode', 'node', ...P, '--interface', iface, '--login'],
    ]);
    for (const a of runner.argvs) expect(a.join(' ')).not.to.contain('secret chap');
    expect(readFileSync(join(f.nodes, TARGET, '127.0.0.1,3260,1', iface), 'utf8')).to.contain(`node.session.auth.password = ${PASSWORD}`);

    // A second start reuses the iface: no --op new for it.
    runner.reset();
    await b.startPool(ctx);
    expect(runner.argvs.filter((a) => a.includes('iface') && a.includes('new'))).to.deep.equal([]);
  });

  it('stop logs out of the target when it has a session', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'session'], { stdout: SESSIONS }).on(['iscsiadm', '--mode', 'node'], {});
    await backendOn(f).stopPool({ runner, pool: pool() });
    expect(runner.argvs).to.deep.equal([
      ['iscsiadm', '--mode', 'session'],
      ['iscsiadm', '--mode', 'node', '--portal', '127.0.0.1:3260,1', '--targetname', TARGET, '--logout'],
    ]);
  });

  it('stop without a session succeeds and logs out of nothing (libvirt virStorageBackendISCSIStopPool)', async () => {
    // The target went away or someone logged out by hand: iscsiadm would answer a logout
    // with exit 21 "No matching sessions found" (captured on this machine), and the pool
    // must still stop.
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true })
      .on(['iscsiadm', '--mode', 'session'], { exitCode: 21, stderr: NO_SESSIONS })
      .on(['iscsiadm', '--mode', 'node'], { exitCode: 21, stderr: 'iscsiadm: No matching sessions found\n' });
    for (const p of [pool(), pool({ initiator: 'iqn.2024-01.test:custom' })]) {
      runner.reset();
      await backendOn(f).stopPool({ runner, pool: p });
      expect(runner.argvs).to.deep.equal([['iscsiadm', '--mode', 'session']]);
    }
  });

  it('refresh rescans the session and lists its disk LUs with stable paths under the target', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'session'], { stdout: SESSIONS }).on(['udevadm', 'settle'], {});
    const r = await backendOn(f).refreshPool({ runner, pool: pool() });
    // libvirt waits for udev after the rescan (virWaitForDevices): new LUNs need their by-path links
    expect(runner.argvs).to.deep.equal([
      ['iscsiadm', '--mode', 'session'],
      ['iscsiadm', '--mode', 'session', '-r', '3', '-R'],
      ['udevadm', 'settle'],
    ]);
    expect(r.volumes.map((v: VolumeDefinition) => [v.name, v.target?.path, v.key, v.capacity])).to.deep.equal([
      ['unit:0:0:1', `/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${TARGET}-lun-1`, '360000000000000000e00000000010001', 20480n * 512n],
      ['unit:0:0:2', `/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-${TARGET}-lun-2`, '360000000000000000e00000000010002', 4096n],
    ]);
    expect(r.runtime).to.deep.equal({ capacity: 20480n * 512n + 4096n, allocation: 20480n * 512n + 4096n, available: 0n });
  });

  it('refresh goes on when udevadm is missing or its settle fails (as libvirt)', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true })
      .on(['iscsiadm', '--mode', 'session'], { stdout: SESSIONS })
      .on(['udevadm', 'settle'], new CommandFailedError(['udevadm', 'settle'], undefined, 'spawn udevadm ENOENT'));
    const r = await backendOn(f).refreshPool({ runner, pool: pool() });
    expect(r.volumes.map((v: VolumeDefinition) => v.name)).to.deep.equal(['unit:0:0:1', 'unit:0:0:2']);
  });

  it('refresh without a session: FAILED_PRECONDITION, start the pool first', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'session'], { exitCode: 21, stderr: NO_SESSIONS });
    const err = await rejects(backendOn(f).refreshPool({ runner, pool: pool() }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/start the pool first/);
  });

  it('discovery lists one source per target', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'discovery'], { stdout: DISCOVERY });
    const found = await backendOn(f).findPoolSources({ runner }, pool().source);
    expect(runner.argvs).to.deep.equal([['iscsiadm', '--mode', 'discovery', '--type', 'sendtargets', '--portal', '127.0.0.1:3260,1', '--op', 'nonpersistent']]);
    expect(found.map((s) => s.devices[0]!.path)).to.deep.equal(['iqn.2024-01.test:open', 'iqn.2024-01.test:chap']);
    // libvirt's virStorageBackendISCSIPortal sets the default port on the spec it copies into every source
    expect(found.map((s) => s.hosts)).to.deep.equal([[{ name: '127.0.0.1', port: 3260 }], [{ name: '127.0.0.1', port: 3260 }]]);
  });

  it('discovery with an initiator IQN uses its existing iface and never creates one (libvirt virISCSIScanTargets)', async () => {
    const f = fixtureHost();
    const initiator = 'iqn.2024-01.test:custom';
    const known = new RecordingRunner({ strict: true })
      .onMatch((a) => a.join(' ') === 'iscsiadm --mode iface', () => ({ stdout: `${IFACES}libvirt-iface-0a1b2c3d tcp,<empty>,<empty>,<empty>,${initiator}\n` }))
      .on(['iscsiadm', '--mode', 'discovery'], { stdout: DISCOVERY });
    const found = await backendOn(f).findPoolSources({ runner: known }, pool({ initiator }).source);
    expect(known.argvs).to.deep.equal([
      ['iscsiadm', '--mode', 'iface'],
      ['iscsiadm', '--mode', 'discovery', '--type', 'sendtargets', '--portal', '127.0.0.1:3260,1', '--op', 'nonpersistent', '--interface', 'libvirt-iface-0a1b2c3d'],
    ]);
    expect(found.map((s) => s.initiatorIqn)).to.deep.equal([initiator, initiator]);

    const unknown = new RecordingRunner({ strict: true }).onMatch((a) => a.join(' ') === 'iscsiadm --mode iface', () => ({ stdout: IFACES }));
    const err = await rejects(backendOn(f).findPoolSources({ runner: unknown }, pool({ initiator }).source));
    expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/no iSCSI interface defined for initiator IQN 'iqn\.2024-01\.test:custom'/);
    expect(unknown.argvs).to.deep.equal([['iscsiadm', '--mode', 'iface']]);
  });

  it('on a host without the kernel initiator every operation but stop is FAILED_PRECONDITION naming what is missing, and nothing runs', async () => {
    const root = makeTempDir('cistern-nokernel-').path;
    const runner = new RecordingRunner({ strict: true });
    const b = new IscsiBackend({ sysfsRoot: join(root, 'sys'), procRoot: join(root, 'proc') });
    const ctx: PoolContext = { runner, pool: pool() };
    expect(await b.checkPool(ctx)).to.equal(false);
    for (const op of [() => b.startPool(ctx), () => b.refreshPool(ctx), () => b.findPoolSources(ctx, pool().source)]) {
      const err = await rejects(op());
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.match(/iscsi_tcp kernel module is not loaded/);
      expect(err.message).to.match(/iscsid is not running/);
      expect(err.message).to.match(/iscsi-direct/);
    }
    // without an iSCSI transport there is no session to end: stop succeeds, nothing runs
    await b.stopPool(ctx);
    expect(runner.calls).to.have.length(0);
  });

  it('refuses a non-stable target directory and bad sources', async () => {
    const f = fixtureHost();
    const runner = new RecordingRunner({ strict: true });
    const b = backendOn(f);
    expect((await rejects(b.refreshPool({ runner, pool: pool({ target: '/var/tmp' }) }))).code).to.equal('INVALID_ARGUMENT');
    expect((await rejects(b.startPool({ runner, pool: pool({ host: 'x;rm' }) }))).code).to.equal('INVALID_ARGUMENT');
    expect((await rejects(b.startPool({ runner, pool: pool({ chap: true }) }))).code).to.equal('FAILED_PRECONDITION'); // secret not provided
    expect(runner.calls).to.have.length(0);
  });
});
