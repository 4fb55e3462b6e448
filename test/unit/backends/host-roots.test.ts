// Every backend of one agent looks at the same host: options first, then CISTERN_SYSFS_ROOT,
// CISTERN_DEV_ROOT and CISTERN_PROC_ROOT, then /sys, /dev and /proc. The iscsi backend once
// read only its options, so an agent pointed at a fixture tree probed the real /sys for it.
import { expect } from 'chai';
import { join } from 'node:path';
import { hostRoots } from '../../../libs/backends/host-roots.js';
import { IscsiBackend } from '../../../libs/backends/iscsi.js';
import { MpathBackend } from '../../../libs/backends/mpath.js';
import { ScsiBackend } from '../../../libs/backends/scsi.js';
import { makeTempDir } from '../../support/cleanup.js';

const VARIABLES = ['CISTERN_SYSFS_ROOT', 'CISTERN_DEV_ROOT', 'CISTERN_PROC_ROOT'] as const;

describe('host roots (/sys, /dev, /proc) of the block backends', () => {
  const saved = new Map<string, string | undefined>();
  beforeEach(() => VARIABLES.forEach((v) => saved.set(v, process.env[v])));
  afterEach(() =>
    saved.forEach((value, v) => {
      if (value === undefined) delete process.env[v];
      else process.env[v] = value;
    }),
  );

  it('takes options over the environment, and the environment over the host', () => {
    const env = { CISTERN_SYSFS_ROOT: '/e/sys', CISTERN_DEV_ROOT: '/e/dev', CISTERN_PROC_ROOT: '/e/proc' };
    expect(hostRoots({}, {})).to.deep.equal({ sysfs: '/sys', dev: '/dev', proc: '/proc' });
    expect(hostRoots({}, env)).to.deep.equal({ sysfs: '/e/sys', dev: '/e/dev', proc: '/e/proc' });
    expect(hostRoots({ sysfsRoot: '/o/sys', devRoot: '/o/dev', procRoot: '/o/proc' }, env)).to.deep.equal({
      sysfs: '/o/sys',
      dev: '/o/dev',
      proc: '/o/proc',
    });
    expect(hostRoots({ devRoot: '/o/dev' }, env)).to.deep.equal({ sysfs: '/e/sys', dev: '/o/dev', proc: '/e/proc' });
  });

  it('treats an empty variable as unset, so paths never become relative', () => {
    expect(hostRoots({}, { CISTERN_SYSFS_ROOT: '', CISTERN_DEV_ROOT: '', CISTERN_PROC_ROOT: '' })).to.deep.equal({
      sysfs: '/sys',
      dev: '/dev',
      proc: '/proc',
    });
  });

  it('scsi, mpath and iscsi all read the environment', async () => {
    const root = makeTempDir('cistern-host-roots-').path;
    process.env.CISTERN_SYSFS_ROOT = join(root, 'sys');
    process.env.CISTERN_DEV_ROOT = join(root, 'dev');
    process.env.CISTERN_PROC_ROOT = join(root, 'proc');

    const scsi = new ScsiBackend();
    expect([scsi.sysfsRoot, scsi.devRoot]).to.deep.equal([join(root, 'sys'), join(root, 'dev')]);
    const mpath = new MpathBackend();
    expect([mpath.devRoot, mpath.procRoot]).to.deep.equal([join(root, 'dev'), join(root, 'proc')]);
    // The fixture host is empty: iscsi must find the kernel support missing in it, naming its
    // paths, whatever the real /sys of the machine running the test holds.
    const missing = await new IscsiBackend().missingKernelSupport();
    expect(missing).to.include(join(root, 'sys', 'module', 'iscsi_tcp'));
    expect(missing).to.include(join(root, 'sys', 'class', 'iscsi_host'));
  });
});
