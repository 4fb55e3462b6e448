// pool-dumpxml/vol-dumpxml --xpath and --wrap. The expected outputs were captured from virsh 9.0
// (`virsh -c test:///default pool-dumpxml default-pool --xpath ...`) and, for XML the test driver
// cannot hold (namespaces, mixed content), from libxml2 2.9.14 running virshDumpXML's code.
import { expect } from 'chai';
import { XMLDocument } from '../../../libs/proto/cistern/v1/storage.js';
import { dumpXml } from '../../../cli/format/dumpxml.js';
import { UsageError } from '../../../cli/errors.js';
import { compileXPath, evaluateXPath, XPathError } from '../../../cli/xpath.js';
import { parseXmlTree } from '../../../cli/xml-tree.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

// virsh -c test:///default pool-dumpxml default-pool
const TEST_POOL = `<pool type='dir'>
  <name>default-pool</name>
  <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
  <capacity unit='bytes'>107374182400</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>107374182400</available>
  <source>
  </source>
  <target>
    <path>/default-pool</path>
  </target>
</pool>
`;

const NETFS = `<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>n&#233;t &amp; "q"</name>
  <capacity unit='bytes'>0</capacity>
  <source>
    <host name='h&#233;&lt;1&gt;' port="2049"/>
    <host name='b'/>
    <dir path='/exp	ort'/>
    <auth type='chap' username="u'ser">
      <secret usage='x'/>
    </auth>
  </source>
  <fs:mount_opts>
    <fs:option name='sync'/>
    <fs:option name='lazytime'/>
  </fs:mount_opts>
  <mixed>text <b>bold</b> tail<i/>
  </mixed>
</pool>
`;

const select = (xml: string, expr: string) => evaluateXPath(compileXPath(expr), parseXmlTree(xml));

describe('cli --xpath (pool-dumpxml, vol-dumpxml)', () => {
  it('prints each selected node as virsh does: libxml2 formatting, double quotes, one per line', () => {
    expect(dumpXml(TEST_POOL, '/pool/name', false)).to.equal('<name>default-pool</name>\n');
    expect(dumpXml(TEST_POOL, '/pool/target', false)).to.equal('<target>\n  <path>/default-pool</path>\n</target>\n');
    expect(dumpXml(TEST_POOL, '//capacity | //name', false))
      .to.equal('<name>default-pool</name>\n<capacity unit="bytes">107374182400</capacity>\n'); // document order
    expect(dumpXml(TEST_POOL, '/pool/@type', false)).to.equal(' type="dir"\n');
    expect(dumpXml(TEST_POOL, '/pool/name/text()', false)).to.equal('default-pool\n');
    expect(dumpXml(TEST_POOL, '/pool/nosuch', false)).to.equal('');
    // virsh's context node is the root element
    expect(dumpXml(TEST_POOL, 'name', false)).to.equal('<name>default-pool</name>\n');
    // blanks that are an element's only content stay, as libxml2 keeps them
    expect(dumpXml(TEST_POOL, '/pool/source', false)).to.equal('<source>\n  </source>\n');
  });

  it('--wrap puts the nodes under <nodes>, attributes on it (a later one of the same name wins)', () => {
    expect(dumpXml(TEST_POOL, '/pool/name', true)).to.equal('<nodes>\n  <name>default-pool</name>\n</nodes>\n');
    expect(dumpXml(TEST_POOL, '/pool/nosuch', true)).to.equal('<nodes/>\n');
    expect(dumpXml(TEST_POOL, '/pool/@type', true)).to.equal('<nodes type="dir"/>\n');
    expect(dumpXml(TEST_POOL, '/pool/name/text()', true)).to.equal('<nodes>default-pool</nodes>\n');
    expect(dumpXml(TEST_POOL, '//@*', true)).to.equal('<nodes type="dir" unit="bytes"/>\n');
    // without --xpath, --wrap changes nothing
    expect(dumpXml(TEST_POOL, undefined, true)).to.equal(TEST_POOL);
  });

  it('escapes and formats as libxml2: char refs for non-ASCII in attributes, mixed content unindented, namespaces', () => {
    expect(dumpXml(NETFS, '//host/@name', false)).to.equal(' name="h&#xE9;&lt;1&gt;"\n name="b"\n');
    expect(dumpXml(NETFS, 'name', false)).to.equal('<name>n\u00e9t &amp; "q"</name>\n');
    expect(dumpXml(NETFS, '/pool/source/dir', false)).to.equal('<dir path="/exp ort"/>\n');
    expect(dumpXml(NETFS, '//auth', false)).to.equal('<auth type="chap" username="u\'ser">\n  <secret usage="x"/>\n</auth>\n');
    expect(dumpXml(NETFS, '//*[local-name()="option"]', false)).to.equal('<fs:option name="sync"/>\n<fs:option name="lazytime"/>\n');
    expect(dumpXml(NETFS, '//*[local-name()="option"]', true)).to.equal(
      '<nodes>\n' +
      '  <fs:option xmlns:fs="http://libvirt.org/schemas/storagepool/fs/1.0" name="sync"/>\n' +
      '  <fs:option xmlns:fs="http://libvirt.org/schemas/storagepool/fs/1.0" name="lazytime"/>\n' +
      '</nodes>\n');
    expect(dumpXml(NETFS, '//mixed', false)).to.equal('<mixed>text <b>bold</b> tail<i/>\n  </mixed>\n');
    expect(dumpXml(NETFS, '//mixed/node()', true)).to.equal('<nodes>text <b>bold</b> tail<i/>\n  </nodes>\n');
  });

  it('an expression whose work explodes (nested predicates over //node()) fails with XPathError instead of hanging', () => {
    expect(() => select(NETFS, '//node()[//node()[//node()[//node()[//node()[//node()]]]]]')).to.throw(XPathError, /too much work/);
    const deep = `${'('.repeat(20000)}1${')'.repeat(20000)}`;
    expect(() => select(NETFS, `//host[${deep}]`)).to.throw(XPathError, /nested too deeply/);
  });

  it('evaluates XPath 1.0: axes, predicates, positions, functions, comparisons', () => {
    const names = (expr: string) => (select(NETFS, expr) as Array<{ type: string; name?: string }>).map((n) => n.name ?? n.type);
    expect(names('//host[last()]/@name')).to.deep.equal(['name']);
    expect(dumpXml(NETFS, '//host[@port > 2000]/@name', false)).to.equal(' name="h&#xE9;&lt;1&gt;"\n');
    expect(names('//secret/ancestor::*')).to.deep.equal(['pool', 'source', 'auth']);
    expect(names('//secret/ancestor::*[1]')).to.deep.equal(['auth']); // reverse axis: nearest first
    expect(names('//dir/preceding-sibling::*[1]')).to.deep.equal(['host']);
    expect(names('(//host | //dir)[last()]')).to.deep.equal(['dir']);
    expect(names('/pool/*[position() mod 2 = 0]')).to.deep.equal(['capacity', 'fs:mount_opts']);
    expect(names('//*[count(*) = 2 and starts-with(name(), "fs:")]')).to.deep.equal(['fs:mount_opts']);
    expect(names('//*[normalize-space(.) = "text bold tail"]')).to.deep.equal(['mixed']);
    expect(names('//*[substring(@name, 1, 1) = "b"]')).to.deep.equal(['host']);
    expect(names('//*[translate(@usage, "x", "X") = "X"]')).to.deep.equal(['secret']);
    expect(select(NETFS, 'count(//host)')).to.equal(2);
    expect(select(NETFS, 'string(//capacity/@unit)')).to.equal('bytes');
  });

  it('refuses what it does not evaluate, and invalid expressions, with a clear error; a non-node-set in virsh\'s words', () => {
    const err = (expr: string, wrap = false): string => {
      try {
        dumpXml(TEST_POOL, expr, wrap);
      } catch (e) {
        expect(e).to.be.instanceOf(UsageError);
        return (e as UsageError).messages.join('\n');
      }
      throw new Error(`no error for ${expr}`);
    };
    expect(err('count(/pool)')).to.match(/^internal error: Incorrect xpath 'count\(\/pool\)'\nthe expression gives a number, not a node-set/);
    expect(err('/pool[')).to.match(/^Invalid XPath expression '\/pool\[': /);
    expect(err('//fs:option')).to.equal("Invalid XPath expression '//fs:option': Undefined namespace prefix 'fs' in 'fs:option'");
    expect(err('namespace::*')).to.equal("XPath expression 'namespace::*' is not supported: the namespace axis is not supported");
    expect(err("//*[id('x')]")).to.match(/is not supported: the function id\(\) is not supported/);
    expect(err('$v')).to.match(/is not supported: variables/);
    expect(err('')).to.match(/^Invalid XPath expression '': empty expression/);
    expect(err('/', true)).to.match(/--wrap of the document node/);
    expect(() => compileXPath('frob(1)')).to.throw(XPathError, 'unknown function frob()');
    expect(() => compileXPath('count()')).to.throw(XPathError, 'wrong number of arguments');
  });

  it('pool-dumpxml and vol-dumpxml take --xpath (by name only, as in virsh) and --wrap', async () => {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'v', 1n << 20n, 0n, '/p/v')];
    api.getPoolXml = async () => XMLDocument.create({ xml: TEST_POOL });
    api.getVolumeXml = async () => XMLDocument.create({ xml: "<volume type='file'>\n  <name>v</name>\n  <target>\n    <format type='qcow2'/>\n  </target>\n</volume>\n" });
    expect(await run(api, ['pool-dumpxml', 'p', '--xpath', '//path/text()'])).to.deep.equal({ code: 0, stdout: '/default-pool\n\n', stderr: '' });
    expect((await run(api, ['pool-dumpxml', 'p', '--xpath=/pool/name', '--wrap'])).stdout).to.equal('<nodes>\n  <name>default-pool</name>\n</nodes>\n\n');
    expect((await run(api, ['vol-dumpxml', 'v', 'p', '--xpath', '//format/@type'])).stdout).to.equal(' type="qcow2"\n\n');
    expect((await run(api, ['pool-dumpxml', 'p', '/pool/name'])).stderr).to.equal("error: unexpected data '/pool/name'\n");
    const bad = await run(api, ['pool-dumpxml', 'p', '--xpath', 'count(//name)']);
    expect(bad.code).to.equal(1);
    expect(bad.stdout).to.equal('\n');
    expect(bad.stderr).to.match(/^error: internal error: Incorrect xpath 'count\(\/\/name\)'\nerror: the expression gives a number/);
  });
});
