// vol-clone --print-xml (virsh 9.0's cmdVolClone with virshMakeCloneXML): the source volume's
// XML with the new name, printed as libxml2 dumps it, and nothing cloned. The expected output
// is what virsh 9.0 printed for this same source XML (test:///default driver, a qcow2 volume
// made with vol-create, then `vol-clone rich.qcow2 'copy é.qcow2' --print-xml`).
import { expect } from 'chai';
import { XMLDocument, type GetVolumeXMLRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { cloneXml } from '../../../cli/commands/vol-create.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

// `virsh vol-dumpxml rich.qcow2` (libvirt's formatter: single quotes)
const SOURCE_XML = `<volume type='file'>
  <name>rich.qcow2</name>
  <key>/default-pool/rich.qcow2</key>
  <capacity unit='bytes'>1073741824</capacity>
  <allocation unit='bytes'>0</allocation>
  <target>
    <path>/default-pool/rich.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0600</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <compat>1.1</compat>
    <features>
      <lazy_refcounts/>
    </features>
  </target>
</volume>
`;

// `virsh vol-clone rich.qcow2 'copy é.qcow2' --print-xml`: key and path stay the source's;
// double quotes; no newline of its own (the one after it is virsh's line after every command)
const VIRSH_OUTPUT = `<volume type="file">
  <name>copy é.qcow2</name>
  <key>/default-pool/rich.qcow2</key>
  <capacity unit="bytes">1073741824</capacity>
  <allocation unit="bytes">0</allocation>
  <target>
    <path>/default-pool/rich.qcow2</path>
    <format type="qcow2"/>
    <permissions>
      <mode>0600</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <compat>1.1</compat>
    <features>
      <lazy_refcounts/>
    </features>
  </target>
</volume>`;

function fleet(): FakeApi {
  const api = new FakeApi(['a']);
  api.pools = [pool('a', 'default-pool')];
  api.volumes = [volume('a', 'default-pool', 'rich.qcow2', 1n << 30n, 0n, '/default-pool/rich.qcow2')];
  api.getVolumeXml = async (r: GetVolumeXMLRequest) => {
    api.calls.push({ method: 'getVolumeXml', request: r });
    return XMLDocument.create({ xml: SOURCE_XML });
  };
  return api;
}

describe('cisternctl vol-clone --print-xml', () => {
  it('prints what virsh 9.0 prints for the same source volume, then virsh\'s line; clones nothing', async () => {
    const api = fleet();
    const r = await run(api, ['vol-clone', 'rich.qcow2', 'copy é.qcow2', '--pool', 'default-pool', '--print-xml']);
    expect(r).to.deep.equal({ code: 0, stderr: '', stdout: `${VIRSH_OUTPUT}\n` });
    expect((api.callsOf('getVolumeXml')[0] as GetVolumeXMLRequest).name).to.equal('hosts/a/pools/default-pool/volumes/rich.qcow2');
    expect(api.callsOf('cloneVolume')).to.have.length(0);
  });

  it('-q: the document alone, without a final newline (as virsh -q)', async () => {
    const r = await run(fleet(), ['-q', 'vol-clone', 'rich.qcow2', 'copy é.qcow2', '--pool', 'default-pool', '--print-xml']);
    expect(r.stdout).to.equal(VIRSH_OUTPUT);
  });

  it('escapes the new name as libxml2 does (virsh 9.0: wé<x>"q prints as wé&lt;x&gt;"q)', () => {
    expect(cloneXml(SOURCE_XML, 'wé<x>"q').split('\n')[1]).to.equal('  <name>wé&lt;x&gt;"q</name>');
  });

  it('help: virsh 9.0\'s synopsis and wording (with Cistern\'s --host)', async () => {
    const help = (await run(new FakeApi(), ['help', 'vol-clone'])).stdout;
    expect(help).to.contain('    vol-clone <vol> <newname> [--pool <string>] [--prealloc-metadata] [--reflink] [--print-xml] [--host <string>]\n');
    expect(help).to.contain('    --print-xml      print XML document rather than clone the volume\n');
  });

  it('without --print-xml the clone is made, as before', async () => {
    const api = fleet();
    await run(api, ['vol-clone', 'rich.qcow2', 'copy', '--pool', 'default-pool']);
    expect(api.callsOf('cloneVolume')).to.have.length(1);
    expect(api.callsOf('getVolumeXml')).to.have.length(0);
  });
});
