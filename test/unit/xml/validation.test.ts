// Refusals a user sees: every bad document or definition is INVALID_ARGUMENT naming the
// element or attribute, the value, what is allowed and the line; plus the hardened parser's
// limits, live documents, structured (gRPC) validation, sources and capabilities documents.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  formatPoolCapabilitiesXml,
  formatPoolSourcesXml,
  formatPoolXml,
  formatVolumeXml,
  parsePoolSourceXml,
  parsePoolXml,
  parseVolumeXml,
  parseXmlDocument,
  poolTypeFromString,
  poolTypeToString,
  validatePoolDefinition,
  validateVolumeDefinition,
  defaultPoolCapabilities,
  MAX_XML_ATTRIBUTES,
  MAX_XML_BYTES,
  MAX_XML_ELEMENTS,
} from '../../../libs/xml/index.js';
import { AdapterType, PoolDefinition, PoolType, Tristate, VolumeDefinition, VolumeType } from '../../../libs/proto/cistern/v1/storage.js';
import { expectInvalid, fixture } from './helpers.js';

const DIR_POOL = "<pool type='dir'><name>p</name><target><path>/srv/p</path></target></pool>";
const dirPool = () => parsePoolXml(DIR_POOL);

describe('xml safe-parse: hardened reader', () => {
  it('refuses a DOCTYPE, with its line', () => {
    expectInvalid(() => parsePoolXml(`<?xml version="1.0"?>\n<!DOCTYPE pool>\n${DIR_POOL}`), 'DOCTYPE is not allowed', '(line 2)');
    // hidden between a '<!--' in a processing instruction and a '-->' in an attribute value
    expectInvalid(() => parsePoolXml('<?pi <!-- ?><!DOCTYPE x [<!ENTITY e "boom">]><pool type="dir" a="-->"><name>x</name></pool>'), 'DOCTYPE is not allowed');
  });
  it('refuses an XML declaration naming an encoding other than UTF-8, wherever it stands', () => {
    // what reads as a comment here is, decoded as UTF-7 by libxml2, a DOCTYPE with an external entity
    const utf7 = '<?xml version="1.0" encoding="UTF-7"?><!-- +AC0ALQA+ADwAIQBEAE8AQwBUAFkAUABF- -->\n' + DIR_POOL;
    expectInvalid(() => parsePoolXml(utf7), "the XML declaration names encoding 'UTF-7'; documents are UTF-8", '(line 1)');
    expectInvalid(() => parsePoolXml(`<?xml version='1.0' encoding='latin1'?>${DIR_POOL}`), "encoding 'latin1'");
    expectInvalid(() => parsePoolXml(`${DIR_POOL}\n<?xml version="1.0" encoding="UTF-16"?>`), "encoding 'UTF-16'", '(line 2)');
    // UTF-8, spelt either way, or no encoding at all: accepted
    for (const decl of ['<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf8'?>", '<?xml version="1.0"?>']) {
      expect(parsePoolXml(`${decl}\n${DIR_POOL}`).name).to.equal('p');
    }
  });
  it('refuses an internal entity declaration (billion laughs) before expanding anything', () => {
    const lol = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><pool type="dir"><name>&lol2;</name></pool>';
    expectInvalid(() => parsePoolXml(lol), 'DOCTYPE');
  });
  it('refuses external entities and unknown entity references', () => {
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>&xxe;</name></pool>"), "entity reference '&xxe;' is not allowed");
    expectInvalid(() => parsePoolXml('<!ENTITY x SYSTEM "file:///etc/passwd"><pool/>'), 'entity declarations are not allowed');
  });
  it('decodes the predefined entities and character references', () => {
    const d = parsePoolXml("<pool type='dir'><name>a&amp;b&#65;&#x42;</name><target><path>/srv/&lt;x&gt;</path></target></pool>");
    expect(d.name).to.equal('a&bAB');
    expect(d.target?.path).to.equal('/srv/<x>');
    expect(formatPoolXml(d)).to.contain('<name>a&amp;bAB</name>');
  });
  it('refuses documents over 1 MiB', () => {
    const big = `<pool type='dir'><name>p</name><!--${'x'.repeat(MAX_XML_BYTES)}--></pool>`;
    expectInvalid(() => parsePoolXml(big), 'larger than 1048576 bytes');
  });
  it('counts the 1 MiB in UTF-8 bytes, not characters: multi-byte text over it is refused, up to it accepted', () => {
    expectInvalid(() => parseXmlDocument(`<a>${'é'.repeat(600_000)}</a>`), 'larger than 1048576 bytes');
    // '<a>x' + 2 bytes per 'é' + '</a>': exactly MAX_XML_BYTES bytes, in half as many characters
    const n = (MAX_XML_BYTES - 8) / 2;
    expect(parseXmlDocument(`<a>x${'é'.repeat(n)}</a>`).local).to.equal('a');
    expectInvalid(() => parseXmlDocument(`<a>xx${'é'.repeat(n)}</a>`), 'larger than 1048576 bytes');
  });
  it('refuses nesting deeper than 64 and accepts 64', () => {
    const nest = (n: number) => `${'<a>'.repeat(n)}${'</a>'.repeat(n)}`;
    expect(parseXmlDocument(nest(64)).local).to.equal('a');
    expectInvalid(() => parseXmlDocument(nest(65)), 'nested deeper than 64');
    // (100,000 elements: refused by their count before the parser sees the nesting)
    expectInvalid(() => parseXmlDocument(nest(100000)), 'more than 10000 elements');
  });
  it('refuses more than 10,000 elements or attributes, before parsing, and accepts 10,000', () => {
    const withChildren = (n: number, child = '<a/>') => `<pool type='dir'><name>p</name><target><path>/p</path></target>${child.repeat(n)}</pool>`;
    // root, name, target, path: 4 elements and 1 attribute of the pool itself
    expect(parsePoolXml(withChildren(MAX_XML_ELEMENTS - 4)).name).to.equal('p');
    expectInvalid(() => parsePoolXml(withChildren(MAX_XML_ELEMENTS - 3)), 'pool: document has more than 10000 elements; at most 10000 are allowed', '(line 1)');
    // the pool's type and two per child: 10,000 attributes, then one more
    const pairs = `${"<a b='1' c='2'/>".repeat((MAX_XML_ATTRIBUTES - 2) / 2)}<a b='1'/>`;
    expect(parsePoolXml(withChildren(1, pairs)).name).to.equal('p');
    expectInvalid(() => parsePoolXml(withChildren(1, `${pairs}<a b='1'/>`)), 'pool: document has more than 10000 attributes; at most 10000 are allowed');
    // 60,000 attributes on one element: refused by the count, not after half a second of parsing
    expectInvalid(() => parseXmlDocument(`<pool ${Array.from({ length: 60_000 }, (_, i) => `a${i}=''`).join(' ')}/>`), 'more than 10000 attributes');
  });
  it('counts only markup: not comments, CDATA, processing instructions, end tags or what quoted values hold', () => {
    const noise = "<!-- <a b='c'/> --><![CDATA[<a b='c'/>]]><?pi <a b='c'/> ?>";
    const d = parsePoolXml(
      `<pool type='dir'><name>p</name><target><path>/p</path></target>${"<a b='x=y>z' c=\"<!--\"/>".replace('<!--', '&lt;!--').repeat(4_998)}<x>${noise.repeat(2_000)}</x></pool>`,
    );
    expect(d.name).to.equal('p');
  });
  it('refuses more than one root, with the line of the second', () => {
    expectInvalid(() => parsePoolXml(`${DIR_POOL}\n<pool type='dir'/>`), 'more than one root element', '(line 2)');
  });
  it('reports malformed XML with line and column', () => {
    expectInvalid(() => parsePoolXml("<pool type='dir'>\n  <name>p</nam>\n</pool>"), 'malformed XML', 'line 2');
    expectInvalid(() => parsePoolXml('<pool type="dir"><name a=1>p</name></pool>'), 'malformed XML');
    expectInvalid(() => parsePoolXml(''), 'empty');
    expectInvalid(() => parsePoolXml('<pool a="<"/>'), "'<' is not allowed in an attribute value");
  });
  it('refuses what libxml2 refuses as not well-formed: -- in a comment, ]]> in text, a misplaced or misnamed <?xml, an unknown XML version', () => {
    // each of these was accepted (and the pool defined) while libvirt 9.0 refuses the document
    const at = (inside: string, before = '') => `${before}<pool type='dir'>${inside}<name>p</name><target><path>/srv/p</path></target></pool>`;
    expectInvalid(() => parsePoolXml(at('<!-- a -- b -->')), "'--' is not allowed inside a comment", '(line 1)');
    expectInvalid(() => parsePoolXml(at('\n<!-- a --->')), "'--' is not allowed inside a comment", '(line 2)');
    expectInvalid(() => parsePoolXml(at('<name>a]]>b</name>')), "']]>' is not allowed in text", "write ']]&gt;'");
    expectInvalid(() => parsePoolXml(at("<?xml version='1.0'?>")), 'an XML declaration is allowed only at the start of the document');
    expectInvalid(() => parsePoolXml(at("<?XmL a?>")), "processing instruction name 'XmL' is reserved");
    expectInvalid(() => parsePoolXml(at('<? a?>')), 'processing instruction without a name');
    expectInvalid(() => parsePoolXml(at('', "<?xml version='2.0'?>")), "XML version '2.0' is not supported; allowed: 1.0");
    // and what is well-formed stays accepted: ]]> in an attribute value or CDATA, '-' and '->' in comments, 1.1, PIs
    expect(parsePoolXml(at("<x a=']]>'/><![CDATA[a]]]]><!-- a - b -> c --><?pi x --?>", "<?xml version='1.1'?>\n<!-- - -->")).name).to.equal('p');
  });
  it('refuses control characters and undeclared namespace prefixes', () => {
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>a\u0001</name></pool>"), 'U+0001');
    expectInvalid(() => parsePoolXml("<pool type='fs'><fs:mount_opts/></pool>"), "namespace prefix 'fs' is not declared");
  });
  it('ignores elements in other namespaces, as libvirt does', () => {
    const d = parsePoolXml("<pool type='dir' xmlns:x='urn:x'><name>p</name><x:name>other</x:name><target><path>/srv/p</path></target></pool>");
    expect(d.name).to.equal('p');
  });
  it('refuses a wrong root element', () => {
    expectInvalid(() => parsePoolXml('<volume/>'), 'expecting <pool>');
    expectInvalid(() => parseVolumeXml('<pool/>', dirPool()), 'expecting <volume>');
  });
  it('says that a root element of the right name is in a namespace, not that it is the wrong element', () => {
    // was: "unexpected root element <pool>, expecting <pool>"
    const pool = expectInvalid(() => parsePoolXml("<pool type='dir' xmlns='http://example.com/x'><name>p</name><target><path>/srv/p</path></target></pool>"),
      "root element <pool> is in namespace 'http://example.com/x'", 'in no namespace', "leave out xmlns='http://example.com/x'");
    expect(pool.message).not.to.include('expecting <pool>');
    expectInvalid(() => parseVolumeXml("<v:volume xmlns:v='urn:v'><v:name>v</v:name></v:volume>", dirPool()), "root element <v:volume> is in namespace 'urn:v'", 'in no namespace');
    expectInvalid(() => parsePoolSourceXml("<source xmlns='urn:s'/>"), "root element <source> is in namespace 'urn:s'");
  });
});

describe('xml pool: checks', () => {
  it('refuses unsupported and unknown pool types, listing the supported ones', () => {
    for (const t of ['rbd', 'gluster', 'sheepdog', 'zfs', 'vstorage', 'bogus']) {
      expectInvalid(() => parsePoolXml(`<pool type='${t}'><name>x</name></pool>`), 'pool/@type', `unsupported pool type '${t}'`, 'supported: dir, fs, netfs, logical, disk, iscsi, iscsi-direct, scsi, mpath');
    }
    expectInvalid(() => parsePoolXml('<pool><name>x</name></pool>'), 'missing pool type');
    expect(poolTypeFromString('iscsi-direct')).to.equal(PoolType.POOL_TYPE_ISCSI_DIRECT);
    expect(poolTypeToString(PoolType.POOL_TYPE_MPATH)).to.equal('mpath');
    expectInvalid(() => poolTypeToString(PoolType.POOL_TYPE_UNSPECIFIED), 'unsupported pool type');
  });
  it('refuses a pool format the type does not allow, listing the allowed ones and the line', () => {
    const xml = "<pool type='fs'>\n<name>f</name>\n<source>\n<device path='/dev/sdb1'/>\n<format type='ntfs'/>\n</source><target><path>/mnt/f</path></target></pool>";
    const err = expectInvalid(() => parsePoolXml(xml), 'pool/source/format/@type', "unknown pool format type 'ntfs'", 'auto, ext2, ext3', '(line 5)');
    expect(err.details.line).to.equal('5');
  });
  it('refuses at define the source values the agent would refuse at start: hosts, export directories, volume group names', () => {
    const netfs = (host: string, dir = '/export') =>
      `<pool type='netfs'><name>n</name><source><host name='${host}'/><dir path='${dir}'/><format type='nfs'/></source><target><path>/mnt/n</path></target></pool>`;
    expectInvalid(() => parsePoolXml(netfs('-oremount')), 'pool/source/host/@name', "host '-oremount' starts with '-'", 'give a host name or an IP address');
    expectInvalid(() => parsePoolXml(netfs('h,vers=2')), 'pool/source/host/@name', "contains '@' or ','");
    expectInvalid(() => parsePoolXml(netfs('a@b')), 'pool/source/host/@name', "contains '@' or ','");
    expectInvalid(() => parsePoolXml(netfs('nfs.example.com', '/a/../b')), 'pool/source/dir/@path', "source directory '/a/../b' contains '..'");
    expect(parsePoolXml(netfs('nfs.example.com', '/export/vms')).source?.hosts[0]?.name).to.equal('nfs.example.com');
    const iscsi = (host: string) =>
      `<pool type='iscsi'><name>i</name><source><host name='${host}'/><device path='iqn.2013-06.com.example:t'/></source><target><path>/dev/disk/by-path</path></target></pool>`;
    expectInvalid(() => parsePoolXml(iscsi('-p')), 'pool/source/host/@name', "'-p' is not a host name or IP address");
    expect(parsePoolXml(iscsi('fe80::1')).source?.hosts[0]?.name).to.equal('fe80::1');
    // the target's and the initiator's iSCSI names too, at define as the agent checks them before iscsiadm
    const iscsiNamed = (target: string, initiator = 'iqn.2013-06.com.example:i') =>
      `<pool type='iscsi'><name>i</name><source><host name='h'/><device path='${target}'/><initiator><iqn name='${initiator}'/></initiator></source><target><path>/dev/disk/by-path</path></target></pool>`;
    expectInvalid(() => parsePoolXml(iscsiNamed('-T')), 'pool/source/device/@path', "'-T' is not a valid iSCSI name", 'allowed: 1-223 of A-Z a-z 0-9 . : _ -');
    expectInvalid(() => parsePoolXml(iscsiNamed('iqn.x t')), 'pool/source/device/@path', "'iqn.x t' is not a valid iSCSI name");
    expectInvalid(() => parsePoolXml(iscsiNamed('iqn.t', '--op=delete')), 'pool/source/initiator/iqn/@name', "'--op=delete' is not a valid iSCSI name");
    expectInvalid(() => parsePoolXml(`<pool type='iscsi-direct'><name>i</name><source><host name='h'/><device path='iqn.t'/><initiator><iqn name='a${'b'.repeat(223)}'/></initiator></source></pool>`), 'pool/source/initiator/iqn/@name');
    // libvirt's own test names pass: plain target names as well as IQNs
    expect(parsePoolXml(iscsiNamed('demo-target', 'initiator0')).source?.devices[0]?.path).to.equal('demo-target');
    const structured = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_ISCSI, name: 'i', source: { hosts: [{ name: 'h' }], devices: [{ path: 'iqn.t' }], initiatorIqn: 'a b' }, target: { path: '/dev/disk/by-path' } });
    expectInvalid(() => validatePoolDefinition(structured), 'source.initiator_iqn', "'a b' is not a valid iSCSI name");
    expectInvalid(() => parsePoolXml("<pool type='logical'><name>l</name><source><name>@tag</name></source></pool>"), 'pool/source/name', "volume group name '@tag' contains '@', which LVM refuses");
    expectInvalid(() => parsePoolXml("<pool type='logical'><name>l</name><source><name>vg a</name></source></pool>"), 'pool/source/name', "contains ' '");
    // without a source name the pool's name is the volume group's
    expectInvalid(() => parsePoolXml("<pool type='logical'><name>vg a</name></pool>"), 'pool/name', "volume group name 'vg a'");
    expect(parsePoolXml("<pool type='logical'><name>HostVG</name></pool>").source?.name).to.equal('HostVG');
    // structured definitions are held to the same rules, the field named as the message has it
    const def = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_NETFS, name: 'n', source: { hosts: [{ name: '-oremount' }], dir: '/export', format: 'nfs' }, target: { path: '/mnt/n' } });
    expectInvalid(() => validatePoolDefinition(def), 'source.hosts[0].name', "starts with '-'");
  });
  it('refuses mount options that change what the mount is: bind, move, remount, propagation', () => {
    const fs = (opt: string) =>
      `<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'><name>f</name><source><device path='/dev/sdb1'/></source><target><path>/mnt/f</path></target><fs:mount_opts><fs:option name='${opt}'/></fs:mount_opts></pool>`;
    for (const opt of ['bind', 'rbind', 'move', 'remount', 'make-private', 'make-rshared', 'BIND']) {
      expectInvalid(() => parsePoolXml(fs(opt)), `mount option '${opt}' changes what the mount is`, 'allowed: options of the filesystem');
    }
    expect(parsePoolXml(fs('noatime')).mountOptions).to.deep.equal(['noatime']);
    for (const opt of ['dev', 'suid', 'exec']) expectInvalid(() => parsePoolXml(fs(opt)), `mount option '${opt}' undoes nodev, nosuid, noexec`);
    for (const opt of ['log-file=/etc/cron.d/x', 'dump-fuse=/root/x', 'credentials=/etc/shadow', 'cred=/etc/shadow']) {
      expectInvalid(() => parsePoolXml(fs(opt)), `mount option '${opt}' names a file on the host`, 'allowed: options of the filesystem');
    }
  });
  it('applies format defaults: fs auto, netfs auto, disk unknown, logical lvm2', () => {
    expect(parsePoolXml("<pool type='fs'><name>f</name><source><device path='/dev/sdb1'/></source><target><path>/mnt</path></target></pool>").source?.format).to.equal('auto');
    expect(parsePoolXml("<pool type='disk'><name>d</name><source><device path='/dev/sdb'/></source><target><path>/dev</path></target></pool>").source?.format).to.equal('unknown');
    expect(parsePoolXml("<pool type='logical'><name>vg</name></pool>").source?.format).to.equal('lvm2');
  });
  it('requires what each type needs', () => {
    expectInvalid(() => parsePoolXml("<pool type='fs'><name>f</name><target><path>/mnt</path></target></pool>"), 'missing storage pool source device');
    expectInvalid(() => parsePoolXml("<pool type='netfs'><name>n</name><source><dir path='/x'/></source><target><path>/mnt</path></target></pool>"), 'missing storage pool source host');
    expectInvalid(() => parsePoolXml("<pool type='netfs'><name>n</name><source><host name='h'/></source><target><path>/mnt</path></target></pool>"), 'missing storage pool source path');
    expectInvalid(() => parsePoolXml("<pool type='scsi'><name>s</name><target><path>/dev</path></target></pool>"), 'missing storage pool source adapter');
    expectInvalid(() => parsePoolXml("<pool type='iscsi-direct'><name>i</name><source><host name='h'/><device path='iqn.x'/></source></pool>"), 'missing initiator IQN');
    expectInvalid(() => parsePoolXml("<pool type='dir'><target><path>/x</path></target></pool>"), 'missing pool name');
  });
  it('refuses bad names, paths, uuids, permissions', () => {
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>a/b</name><target><path>/x</path></target></pool>"), 'pool/name', "contains '/'");
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><target><path>relative</path></target></pool>"), 'pool/target/path', 'not absolute');
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><target><path>/a/../etc</path></target></pool>"), "contains '..'");
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><uuid>nope</uuid><target><path>/x</path></target></pool>"), 'pool/uuid', "malformed uuid 'nope'");
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><target><path>/x</path><permissions><mode>0999</mode></permissions></target></pool>"), 'pool/target/permissions/mode', 'malformed octal mode');
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><target><path>/x</path><permissions><owner>-5</owner></permissions></target></pool>"), 'owner');
  });
  it('checks fc_host and scsi_host adapters like libvirt', () => {
    const pool = (a: string) => `<pool type='scsi'><name>s</name><source>${a}</source><target><path>/dev/disk/by-path</path></target></pool>`;
    expectInvalid(() => parsePoolXml(pool("<adapter type='fc_host' wwnn='20000000c9831b4b'/>")), "'wwnn' and 'wwpn' must be specified");
    expectInvalid(() => parsePoolXml(pool("<adapter type='fc_host' wwnn='xyz' wwpn='10000000c9831b4b'/>")), "malformed wwnn 'xyz'");
    expectInvalid(() => parsePoolXml(pool("<adapter type='fc_host' wwnn='20000000c9831b4b' wwpn='10000000c9831b4b' parent_wwnn='20000000c9831b4b'/>")), 'parent_wwpn must also be provided');
    expectInvalid(() => parsePoolXml(pool("<adapter name='host0' wwnn='20000000c9831b4b'/>")), "requires the adapter 'type'");
    expectInvalid(() => parsePoolXml(pool("<adapter type='scsi_host' name='host0'><parentaddr unique_id='1'><address domain='0' bus='0' slot='1' function='0'/></parentaddr></adapter>")), "both 'name' and 'parentaddr'");
    expectInvalid(() => parsePoolXml(pool("<adapter type='iscsi_host' name='x'/>")), "unknown adapter type 'iscsi_host'");
    const d = parsePoolXml(pool("<adapter type='fc_host' parent_wwnn='20000000c9831b4b' parent_wwpn='10000000c9831b4b' parent_fabric_wwn='2000000000000001' managed='no' wwnn='20000000c9831b4c' wwpn='10000000c9831b4c'/>"));
    expect(d.source?.adapter?.type).to.equal(AdapterType.ADAPTER_TYPE_FC_HOST);
    expect(formatPoolXml(d)).to.contain("<adapter type='fc_host' parent_wwnn='20000000c9831b4b' parent_wwpn='10000000c9831b4b' parent_fabric_wwn='2000000000000001' managed='no' wwnn='20000000c9831b4c' wwpn='10000000c9831b4c'/>");
  });
  it('auth: chap with secret uuid or usage, exactly one', () => {
    const pool = (auth: string) => `<pool type='iscsi'><name>i</name><source><host name='h'/><device path='iqn.t'/>${auth}</source><target><path>/dev/disk/by-path</path></target></pool>`;
    const d = parsePoolXml(pool("<auth type='chap' username='u'><secret usage='libvirtiscsi'/></auth>"));
    expect(formatPoolXml(d)).to.contain("<auth type='chap' username='u'>\n      <secret usage='libvirtiscsi'/>\n    </auth>");
    expectInvalid(() => parsePoolXml(pool("<auth type='chap' username='u'><secret usage='a' uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/></auth>")), 'either secret uuid or usage');
    expectInvalid(() => parsePoolXml(pool("<auth username='u'><secret usage='a'/></auth>")), 'missing auth type');
    expectInvalid(() => parsePoolXml(pool("<auth type='chap'><secret usage='a'/></auth>")), 'missing username');
    expectInvalid(() => parsePoolXml(pool("<auth type='chap' username='u'/>")), 'missing <secret>');
  });
  it('hosts with ports, protocol version only for nfs', () => {
    const d = parsePoolXml("<pool type='netfs'><name>n</name><source><host name='a' port='2049'/><host name='b'/><dir path='/e'/><format type='nfs'/><protocol ver='4'/></source><target><path>/mnt/n</path></target></pool>");
    const xml = formatPoolXml(d);
    expect(xml).to.contain("<host name='a' port='2049'/>\n    <host name='b'/>");
    expect(xml).to.contain("<format type='nfs'/>\n    <protocol ver='4'/>");
    expectInvalid(() => parsePoolXml("<pool type='netfs'><name>n</name><source><host name='a'/><dir path='/e'/><format type='cifs'/><protocol ver='4'/></source><target><path>/mnt/n</path></target></pool>"), 'protocol ver');
    expectInvalid(() => parsePoolXml("<pool type='netfs'><name>n</name><source><host name='a' port='99999'/><dir path='/e'/></source><target><path>/mnt/n</path></target></pool>"), "invalid port '99999'");
  });
  it('NFS minor versions (4.1, 4.2) as libvirt 9.0 takes them, held to what the agent mounts with', () => {
    // libvirt 9.0 keeps <protocol ver> as a string (nfsvers=4.1); only ',' is refused there
    const nfs = (ver: string) =>
      `<pool type='netfs'><name>n</name><source><host name='a'/><dir path='/e'/><format type='nfs'/><protocol ver='${ver}'/></source><target><path>/mnt/n</path></target></pool>`;
    for (const ver of ['4.1', '4.2']) {
      const d = parsePoolXml(nfs(ver));
      expect(d.source?.protocolVersion).to.equal(ver);
      expect(formatPoolXml(d)).to.contain(`<format type='nfs'/>\n    <protocol ver='${ver}'/>`);
    }
    // the structured definition (gRPC DefinePool, pool-define-as --source-protocol-ver) too
    const structured = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_NETFS, name: 'n', source: { hosts: [{ name: 'a' }], dir: '/e', format: 'nfs', protocolVersion: '4.1' }, target: { path: '/mnt/n' } });
    expect(validatePoolDefinition(structured).source?.protocolVersion).to.equal('4.1');
    // what the agent would refuse before mount (libs/backends/netfs.ts) is refused at define, naming what is allowed
    expectInvalid(() => parsePoolXml(nfs('4,sec=none')), 'pool/source/protocol/@ver', "'4,sec=none'", 'such as 3, 4 or 4.1');
    expectInvalid(() => parsePoolXml(nfs('4.1.2')), 'pool/source/protocol/@ver', 'such as 3, 4 or 4.1');
    expectInvalid(() => parsePoolXml(nfs('1234')), 'pool/source/protocol/@ver', 'such as 3, 4 or 4.1');
  });
  it('fs:mount_opts and features/cow round-trip', () => {
    const xml = `<pool type='fs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>f</name>
  <uuid>7641d5a8-af11-f730-a34e-0a7dfcede71f</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <features>
    <cow state='no'/>
  </features>
  <source>
    <device path='/dev/sdb1'/>
    <format type='xfs'/>
  </source>
  <target>
    <path>/mnt/f</path>
  </target>
  <fs:mount_opts>
    <fs:option name='sync'/>
    <fs:option name='lazytime'/>
  </fs:mount_opts>
</pool>
`;
    const d = parsePoolXml(xml);
    expect(d.mountOptions).to.deep.equal(['sync', 'lazytime']);
    expect(d.features?.cow).to.equal(Tristate.TRISTATE_NO);
    expect(formatPoolXml(d)).to.equal(xml);
    expectInvalid(() => parsePoolXml("<pool type='iscsi'><name>i</name><features><cow state='yes'/></features><source><host name='h'/></source><target><path>/dev</path></target></pool>"), "cow feature may only be used for 'fs' and 'dir'");
  });
  it('live document: real sizes and free extents', () => {
    const def = parsePoolXml(fixture('storagepoolxml2xmlin', 'pool-disk.xml'));
    const xml = formatPoolXml(def, {
      capacity: 100027630080n,
      allocation: 100027597824n,
      available: 32256n,
      devices: [{ path: '/dev/sda', partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [{ start: 370137600n, end: 567544320n }, { start: 987033600n, end: 1044610560n }] }],
    });
    expect(xml).to.contain("<capacity unit='bytes'>100027630080</capacity>\n  <allocation unit='bytes'>100027597824</allocation>\n  <available unit='bytes'>32256</available>");
    expect(xml).to.contain("<device path='/dev/sda'>\n      <freeExtent start='370137600' end='567544320'/>\n      <freeExtent start='987033600' end='1044610560'/>\n    </device>");
    expect(formatPoolXml(def)).to.contain("<device path='/dev/sda'/>");
  });
  it('validatePoolDefinition applies the same defaults and checks to structured definitions', () => {
    const d = validatePoolDefinition(PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_LOGICAL, name: 'vg0', target: { path: '/ignored' } }));
    expect(d.source?.name).to.equal('vg0');
    expect(d.source?.format).to.equal('lvm2');
    expect(d.target?.path).to.equal('/dev/vg0');
    expect(d.uuid).to.have.length(36);
    expectInvalid(() => validatePoolDefinition(PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_FS, name: 'f', target: { path: '/mnt' }, source: { devices: [{ path: '/dev/sdb' }], format: 'ntfs' } })), 'source.format', "unknown pool format type 'ntfs'");
    expectInvalid(() => validatePoolDefinition(PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p' })), 'target.path', 'missing storage pool target path');
    expectInvalid(() => validatePoolDefinition(PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_UNSPECIFIED, name: 'p' })), 'unsupported pool type');
    expectInvalid(() => validatePoolDefinition(PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'p', target: { path: '/x' }, mountOptions: ['sync'] })), 'mount_options[0]', 'only for fs and netfs');
  });
});

describe('xml volume: checks', () => {
  it('refuses a volume format the pool does not allow, listing the allowed ones', () => {
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><format type='ext4'/></target></volume>", dirPool()), 'volume/target/format/@type', "unknown volume format type 'ext4'", 'raw, dir, bochs');
    const disk = parsePoolXml(fixture('storagepoolxml2xmlin', 'pool-disk.xml'));
    expectInvalid(() => parseVolumeXml("<volume><name>sda9</name><capacity>1</capacity><target><format type='qcow2'/></target></volume>", disk), "'qcow2'", 'none, linux, fat16');
    expect(parseVolumeXml("<volume><name>sda9</name><capacity>1</capacity><target><format type='linux-swap'/></target></volume>", disk).target?.format).to.equal('linux-swap');
  });
  it('the pool decides type, key and (for file and logical pools) the path', () => {
    const v = parseVolumeXml("<volume type='block'><name>v.img</name><key>/etc/shadow</key><capacity>1</capacity><target><path>/etc/shadow</path></target></volume>", dirPool());
    expect(v.type).to.equal(VolumeType.VOLUME_TYPE_FILE);
    expect(v.key).to.equal('');
    expect(v.target?.path).to.equal('/srv/p/v.img');
    const d = parseVolumeXml("<volume><name>sub</name><capacity>0</capacity><target><format type='dir'/></target></volume>", dirPool());
    expect(d.type).to.equal(VolumeType.VOLUME_TYPE_DIR);
    expectInvalid(() => parseVolumeXml("<volume type='disk'><name>v</name><capacity>1</capacity></volume>", dirPool()), "unknown volume type 'disk'");
  });
  it('refuses bad names, encryption, features and compat', () => {
    expectInvalid(() => parseVolumeXml('<volume><name>../x</name><capacity>1</capacity></volume>', dirPool()), 'volume/name', "contains '/'");
    expectInvalid(() => parseVolumeXml('<volume><capacity>1</capacity></volume>', dirPool()), 'missing volume name');
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><encryption format='aes'/></target></volume>", dirPool()), "unknown volume encryption format type 'aes'", 'luks');
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><encryption format='luks'><secret uuid='f52a81b2-424e-490c-823d-6bd4235bc572'/></encryption></target></volume>", dirPool()), 'secret type');
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><encryption format='luks'><ivgen name='plain64'/></encryption></target></volume>", dirPool()), 'cipher is missing');
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><features><preallocated/></features></target></volume>", dirPool()), "unsupported feature 'preallocated'", 'lazy_refcounts, extended_l2');
    expectInvalid(() => parseVolumeXml("<volume><name>v</name><capacity>1</capacity><target><compat>1.x</compat></target></volume>", dirPool()), "forbidden characters in compat '1.x'");
  });
  it('extended_l2 (qcow2 subclusters, libvirt 9.0): read, implies compat 1.1, printed back', () => {
    const pool = parsePoolXml(fixture('storagepoolxml2xmlin', 'pool-dir.xml'));
    const doc = (target: string) => `<volume><name>v</name><capacity>1073741824</capacity><target>${target}</target></volume>`;
    const both = parseVolumeXml(doc("<format type='qcow2'/><features><extended_l2/><lazy_refcounts/></features>"), pool);
    expect(both.target?.extendedL2).to.equal(true);
    expect(both.target?.lazyRefcounts).to.equal(true);
    expect(both.target?.compat).to.equal('1.1');
    // libvirt 9.0 prints lazy_refcounts first, then extended_l2 (virStorageFileFeature order)
    expect(formatVolumeXml(both, pool)).to.contain('<compat>1.1</compat>\n    <features>\n      <lazy_refcounts/>\n      <extended_l2/>\n    </features>');
    const only = parseVolumeXml(doc("<format type='qcow2'/><features><extended_l2/></features>"), pool);
    expect(only.target?.lazyRefcounts).to.equal(false);
    expect(formatVolumeXml(only, pool)).to.contain('<features>\n      <extended_l2/>\n    </features>');
    // refused at create time, by the backend's plan (test/unit/backends/dir.test.ts), as libvirt refuses it
  });
  it('live document: key, physical, timestamps and extents print when the agent set them', () => {
    const pool = parsePoolXml(fixture('storagepoolxml2xmlin', 'pool-logical.xml'));
    const v = parseVolumeXml(fixture('storagevolxml2xmlin', 'vol-logical.xml'), pool);
    expect(v.sourceDevices).to.deep.equal([]);
    const live: VolumeDefinition = {
      ...v,
      key: 'r4xkCv-MQhr-WKIT-R66x-Epn2-e8hG-1Z5gY0',
      physical: 2080374784n,
      sourceDevices: [{ path: '/dev/sda2', extents: [{ start: 31440502784n, end: 33520877568n }] }],
      target: { ...v.target!, timestamps: { atime: '1341933637.273190990', mtime: '1341930622', ctime: '', btime: '' } },
    };
    const xml = formatVolumeXml(live, pool);
    expect(xml).to.contain("<source>\n    <device path='/dev/sda2'>\n      <extent start='31440502784' end='33520877568'/>\n    </device>\n  </source>");
    expect(xml).to.contain("<physical unit='bytes'>2080374784</physical>");
    // libvirt 9.0 prints <btime>0</btime> where the filesystem gives no birth time
    expect(xml).to.contain('<timestamps>\n      <atime>1341933637.273190990</atime>\n      <mtime>1341930622</mtime>\n      <btime>0</btime>\n    </timestamps>');
  });
  it('validateVolumeDefinition: capacity required unless cloning or backed; output-only fields cleared', () => {
    const pool = dirPool();
    expectInvalid(() => validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v' }), pool), 'capacity', 'missing capacity');
    const c = validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v' }), pool, { cloning: true });
    expect(c.capacity).to.equal(0n);
    // a clone's allocation not given is decided against its source, not set to the capacity here
    expect(c.allocation).to.equal(undefined);
    expect(validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v', capacity: 10n }), pool, { cloning: true }).allocation).to.equal(undefined);
    expect(validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v', allocation: 0n }), pool, { cloning: true }).allocation).to.equal(0n);
    expect(parseVolumeXml('<volume><name>v</name><capacity>1000</capacity></volume>', pool, { cloning: true }).allocation).to.equal(undefined);
    expect(parseVolumeXml('<volume><name>v</name><capacity>1000</capacity><allocation>5</allocation></volume>', pool, { cloning: true }).allocation).to.equal(5n);
    const v = validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v', key: 'k', physical: 5n, capacity: 10n, target: { format: 'qcow2', lazyRefcounts: true } }), pool);
    expect(v.key).to.equal('');
    expect(v.physical).to.equal(undefined);
    expect(v.allocation).to.equal(10n);
    expect(v.target?.compat).to.equal('1.1');
    expect(v.target?.path).to.equal('/srv/p/v');
    expectInvalid(() => validateVolumeDefinition(VolumeDefinition.fromPartial({ name: 'v', capacity: 1n << 63n }), pool), 'capacity', 'out of range');
  });
});

describe('xml sources and capabilities documents', () => {
  it('parses a <source> spec and prints <sources> as find-storage-pool-sources', () => {
    const src = parsePoolSourceXml("<source><host name='nfs.example.com'/></source>", PoolType.POOL_TYPE_NETFS);
    expect(src.hosts[0]?.name).to.equal('nfs.example.com');
    const xml = formatPoolSourcesXml(
      [
        { ...src, dir: '/export/a', format: 'nfs' },
        { ...src, dir: '/export/b', format: 'nfs' },
      ],
      PoolType.POOL_TYPE_NETFS,
    );
    expect(xml).to.equal(
      "<sources>\n  <source>\n    <host name='nfs.example.com'/>\n    <dir path='/export/a'/>\n    <format type='nfs'/>\n  </source>\n  <source>\n    <host name='nfs.example.com'/>\n    <dir path='/export/b'/>\n    <format type='nfs'/>\n  </source>\n</sources>\n",
    );
    expect(formatPoolSourcesXml([])).to.equal('<sources>\n</sources>\n');
    expectInvalid(() => parsePoolSourceXml('<pool/>'), 'expecting <source>');
    expectInvalid(() => parsePoolSourceXml("<source><format type='zzz'/></source>", PoolType.POOL_TYPE_LOGICAL), "unknown pool format type 'zzz'");
  });
  it('prints <storagepoolCapabilities> with every libvirt pool type, formats and defaults', () => {
    const xml = formatPoolCapabilitiesXml(defaultPoolCapabilities(new Map([['dir', ['createVol']], ['logical', []]])));
    expect(xml).to.match(/^<storagepoolCapabilities>\n  <pool type='dir' supported='yes'>\n    <volOptions>\n      <defaultFormat type='raw'\/>\n      <enum name='targetFormatType'>\n        <value>none<\/value>\n        <value>raw<\/value>/);
    expect(xml).to.contain("<pool type='logical' supported='yes'>\n    <poolOptions>\n      <defaultFormat type='lvm2'/>\n      <enum name='sourceFormatType'>\n        <value>unknown</value>\n        <value>lvm2</value>\n      </enum>\n    </poolOptions>\n  </pool>");
    expect(xml).to.contain("<pool type='fs' supported='no'>");
    expect(xml).to.contain("<pool type='sheepdog' supported='no'>\n  </pool>");
    expect(parseXmlDocument(xml).children).to.have.length(14);
  });
  it('prints pool-capabilities byte for byte as libvirtd 9.0 (same backends), volOptions of rbd, gluster and vstorage included', () => {
    // captured from `virsh pool-capabilities` against Debian's libvirtd 9.0 (built without iscsi-direct),
    // less the two newlines virsh adds after the document
    const expected = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'test', 'unit', 'xml', 'data', 'pool-capabilities-libvirtd-9.0.xml'), 'utf8');
    const sameBackends = new Map(['dir', 'fs', 'netfs', 'logical', 'disk', 'iscsi', 'scsi', 'mpath'].map((n) => [n, [] as string[]]));
    expect(formatPoolCapabilitiesXml(defaultPoolCapabilities(sameBackends))).to.equal(expected);
  });
});

describe('xml numbers read as libvirt 9.0 reads them (virStrToLong_*): blanks before, nothing after', () => {
  // each pair checked with virsh 9.0 (vol-create in a dir pool, pool-define in the test driver):
  // the leading blank is taken, the trailing one refused
  const volume = (capacity: string, extra = '') => `<volume><name>v</name><capacity>${capacity}</capacity>${extra}</volume>`;
  const perms = (inner: string) => `<target><permissions>${inner}</permissions></target>`;

  it('capacity, allocation, mode, owner and group', () => {
    expect(parseVolumeXml(volume(' 1024'), dirPool()).capacity).to.equal(1024n);
    expect(parseVolumeXml(volume('\t1', '<allocation>\n0</allocation>'), dirPool()).allocation).to.equal(0n);
    expect(parseVolumeXml(volume('1', perms('<mode> 0644</mode><owner> 0</owner><group>\t7</group>')), dirPool()).target?.permissions)
      .to.deep.include({ mode: 0o644, owner: 0n, group: 7n });
    expectInvalid(() => parseVolumeXml(volume('1024 '), dirPool()), 'volume/capacity', "size '1024 ' is not a non-negative integer");
    expectInvalid(() => parseVolumeXml(volume('1', '<allocation>0\n</allocation>'), dirPool()), 'volume/allocation');
    expectInvalid(() => parseVolumeXml(volume('1', perms('<mode>0644 </mode>')), dirPool()), 'malformed octal mode');
    expectInvalid(() => parseVolumeXml(volume('1', perms('<owner>0 </owner>')), dirPool()), 'malformed owner');
    expectInvalid(() => parsePoolXml("<pool type='dir'><name>p</name><target><path>/srv/p</path><permissions><group>1 </group></permissions></target></pool>"), 'malformed group');
  });

  it('a host port, a scsi parent address and unique_id, a cipher size', () => {
    const iscsi = (port: string) => `<pool type='iscsi'><name>i</name><source><host name='h' port='${port}'/><device path='iqn.x'/></source><target><path>/dev/disk/by-path</path></target></pool>`;
    expect(parsePoolXml(iscsi(' 3260')).source?.hosts[0]?.port).to.equal(3260);
    expectInvalid(() => parsePoolXml(iscsi('3260 ')), "invalid port '3260 '");
    const scsi = (uid: string, domain: string) =>
      `<pool type='scsi'><name>s</name><source><adapter type='scsi_host'><parentaddr unique_id='${uid}'><address domain='${domain}' bus='0' slot='0' function='0'/></parentaddr></adapter></source><target><path>/dev/disk/by-path</path></target></pool>`;
    expect(parsePoolXml(scsi(' 5', ' 0')).source?.adapter?.uniqueId).to.equal(5);
    expectInvalid(() => parsePoolXml(scsi('5 ', '0')), 'unique_id');
    expectInvalid(() => parsePoolXml(scsi('5', '0 ')), "'0 ' is not a valid unsigned number");
    const luks = (size: string) =>
      volume('1', `<target><format type='raw'/><encryption format='luks'><secret type='passphrase' uuid='f52a81b2-424e-490c-823d-6bd4235bc572'/><cipher name='aes' size='${size}' mode='cbc' hash='sha256'/></encryption></target>`);
    expect(parseVolumeXml(luks(' 256'), dirPool()).target?.encryption?.cipher?.size).to.equal(256);
    expectInvalid(() => parseVolumeXml(luks('256 '), dirPool()), "cipher 'size' '256 '");
  });
});

describe('xml: SCSI LUN pools name their volumes under /dev', () => {
  // the agent refuses any other target directory at start (scsi-scan.ts checkScsiTargetDir):
  // refused at define, a pool that could never start is not defined (found by review h29)
  it('refuses an iscsi or scsi target path outside /dev, in XML and in a structured definition', () => {
    const iscsi = (path: string) => `<pool type='iscsi'><name>i</name><source><host name='127.0.0.1'/><device path='iqn.2026-11.test:t'/></source><target><path>${path}</path></target></pool>`;
    expectInvalid(() => parsePoolXml(iscsi('/tmp/x')), 'pool/target/path', "unable to use target path '/tmp/x' for SCSI LUNs: use /dev or a stable directory under /dev");
    expectInvalid(() => parsePoolXml(iscsi('/devices')), "target path '/devices'");
    for (const ok of ['/dev', '/dev/disk/by-path', '/dev/disk/by-id/']) expect(parsePoolXml(iscsi(ok)).target?.path).to.match(/^\/dev/);
    const scsi = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_SCSI, name: 's', source: { adapter: { type: AdapterType.ADAPTER_TYPE_SCSI_HOST, name: 'host0' } }, target: { path: '/srv/luns' } });
    expectInvalid(() => validatePoolDefinition(scsi), 'target.path', "unable to use target path '/srv/luns'");
  });
});
