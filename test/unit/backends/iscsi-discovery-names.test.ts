// SendTargets discovery against a hostile portal: the TargetName values it announces are the
// peer's bytes, which iscsi-ls and iscsiadm print as they came (anything but NUL). A name with
// terminal escapes or XML markup would reach the operator's terminal through
// find-pool-sources (formatPoolSourcesXml escapes only < > & ' ", and libvirt's
// virBufferEscapeString drops control characters), and no pool can be defined with a name that
// is not an iSCSI name (checkIscsiName at define): such a target is not a source.
import { expect } from 'chai';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IscsiDirectBackend } from '../../../libs/backends/iscsi-direct.js';
import { IscsiBackend } from '../../../libs/backends/iscsi.js';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import { PoolSource } from '../../../libs/proto/cistern/v1/storage.js';
import { makeTempDir } from '../../support/cleanup.js';

const INIT = 'iqn.2024-01.test:init';
const EVIL = 'iqn.2024-01.test:x\x1b]0;owned\x07\x1b[2J';

function hint(initiatorIqn = INIT): PoolSource {
  return PoolSource.fromPartial({ hosts: [{ name: '127.0.0.1', port: 3260 }], initiatorIqn });
}

describe('discovery of a portal that announces names which are not iSCSI names', () => {
  it('iscsi-direct (iscsi-ls): only the targets with iSCSI names are sources', async () => {
    const stdout = `Target:iqn.2024-01.test:ok Portal:127.0.0.1:3260,1\nTarget:${EVIL} Portal:127.0.0.1:3260,1\nTarget:iqn.2024-01.test:<a>&amp; Portal:127.0.0.1:3260,1\n`;
    const runner = new RecordingRunner({ strict: true }).on(['iscsi-ls'], { stdout });
    const found = await new IscsiDirectBackend().findPoolSources({ runner }, hint());
    expect(found.map((s) => s.devices[0]!.path)).to.deep.equal(['iqn.2024-01.test:ok']);
  });

  it('iscsi (iscsiadm sendtargets): only the targets with iSCSI names are sources', async () => {
    const stdout = `127.0.0.1:3260,1 iqn.2024-01.test:ok\n127.0.0.1:3260,1 ${EVIL}\n`;
    const runner = new RecordingRunner({ strict: true }).on(['iscsiadm', '--mode', 'discovery'], { stdout });
    // a host with the kernel initiator: iscsi_tcp loaded, an iSCSI host class, iscsid listening
    const tmp = makeTempDir('cistern-iscsi-names-');
    const sys = join(tmp.path, 'sys');
    const proc = join(tmp.path, 'proc');
    mkdirSync(join(sys, 'module', 'iscsi_tcp'), { recursive: true });
    mkdirSync(join(sys, 'class', 'iscsi_host'), { recursive: true });
    mkdirSync(join(proc, 'net'), { recursive: true });
    writeFileSync(join(proc, 'net', 'unix'), 'Num RefCount Protocol Flags Type St Inode Path\n0000: 00000002 00000000 00010000 0001 01 20519 @ISCSIADM_ABSTRACT_NAMESPACE\n');
    try {
      const found = await new IscsiBackend({ sysfsRoot: sys, procRoot: proc }).findPoolSources({ runner }, hint(''));
      expect(found.map((s) => s.devices[0]!.path)).to.deep.equal(['iqn.2024-01.test:ok']);
    } finally {
      await tmp.remove();
    }
  });
});
