// The validate flag end to end (pool-define --validate, vol-create --validate): the coordinator
// checks the XML against libvirt's RELAX NG schema with xmllint before anything is defined or
// created, and says so in libvirt's words; where the schema is missing it refuses, never skips.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { expectCode } from '../support/grpc-expect.js';
import { repoRoot } from '../support/paths.js';
import { useStack, useTempDir } from '../support/index.js';
import { hasTool } from '../support/tools.js';

const SCHEMAS = '/usr/share/libvirt/schemas';
const FIXTURES = [resolve(repoRoot, '..', 'shared', 'fixtures', 'libvirt'), '/work/shared/fixtures/libvirt'].find((p) => existsSync(p))!;
const fixture = (dir: string, name: string) => readFileSync(join(FIXTURES, dir, name), 'utf8');
const usable = hasTool('xmllint') && existsSync(join(SCHEMAS, 'storagepool.rng'));

describe('validate: XML against libvirt\'s schema (real nats-server, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-schema-it-');

  before(function () {
    if (!usable) this.skip(); // needs xmllint (libxml2-utils) and libvirt0's schemas: bash scripts/setup.sh
  });

  it('defines a valid pool XML with validate; refuses an invalid one with INVALID_ARGUMENT and defines nothing', async () => {
    const api = ctx.stack.api;
    const pool = await api.definePool({ host: 'a', xml: fixture('storagepoolxml2xmlin', 'pool-dir.xml'), definition: undefined, requestId: '', validate: true });
    expect(pool.name).to.equal('hosts/a/pools/virtimages');

    // libvirt's own schema test document: a dir pool without <target><path>
    const invalid = fixture('storagepoolschemadata', 'dir-missing-target-path-invalid.xml');
    const message = await expectCode(
      api.definePool({ host: 'a', xml: invalid, definition: undefined, requestId: '', validate: true }),
      status.INVALID_ARGUMENT,
    );
    expect(message).to.equal(
      `xml: XML document failed to validate against schema: Unable to validate doc against ${SCHEMAS}/storagepool.rng\n` +
      'line 5: Expecting an element path, got nothing\n' +
      'line 5: Invalid sequence in interleave\n' +
      'line 5: Element target failed to validate content\n' +
      'line 1: Invalid sequence in interleave\n' +
      'line 1: Element pool failed to validate content');
    // a document Cistern's own parser accepts, refused only by the schema: nothing defined
    const extra = "<pool type='dir'><name>extra</name><target><path>/srv/extra</path></target><bogus/></pool>";
    await expectCode(api.definePool({ host: 'a', xml: extra, definition: undefined, requestId: '', validate: true }),
      status.INVALID_ARGUMENT, /^xml: XML document failed to validate against schema: .*\n.*Element pool has extra content: bogus/);
    await expectCode(api.getPool({ name: 'hosts/a/pools/extra' }), status.NOT_FOUND);
    await expectCode(api.getPool({ name: 'hosts/a/pools/test' }), status.NOT_FOUND);
    const { pools } = await api.listPools({ host: 'a', types: [], pageSize: 0, pageToken: '' });
    expect(pools.map((p) => p.definition?.name)).to.not.include.members(['extra', 'test']);
    // without validate, the same document is defined (Cistern's parser ignores what it does not know, as libvirt's does)
    await api.definePool({ host: 'a', xml: extra, definition: undefined, requestId: '', validate: false });
    await api.undefinePool({ name: 'hosts/a/pools/extra', requestId: '' });
  });

  it('validate with a structured definition is INVALID_ARGUMENT on validate', async () => {
    const definition = { name: 'structured', type: PoolType.POOL_TYPE_DIR, uuid: '', target: { path: join(scratch.path, 's'), permissions: undefined }, source: undefined, features: undefined, mountOptions: [] };
    await expectCode(ctx.stack.api.definePool({ host: 'a', definition, xml: '', requestId: '', validate: true }), status.INVALID_ARGUMENT, /^validate: applies to xml/);
    await expectCode(ctx.stack.api.getPool({ name: 'hosts/a/pools/structured' }), status.NOT_FOUND);
  });

  it('vol-create and vol-create-from with validate: an invalid volume XML creates nothing', async () => {
    const api = ctx.stack.api;
    const path = join(scratch.path, 'vols');
    const definition = { name: 'vols', type: PoolType.POOL_TYPE_DIR, uuid: '', target: { path, permissions: undefined }, source: undefined, features: undefined, mountOptions: [] };
    await api.createPool({ host: 'a', definition, xml: '', build: true, buildFlags: undefined, requestId: '' });
    const parent = 'hosts/a/pools/vols';
    const good = "<volume><name>good</name><capacity unit='KiB'>64</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>";
    await api.createVolume({ parent, xml: good, definition: undefined, preallocMetadata: false, requestId: '', validate: true });
    // an element the schema does not know (Cistern's parser would ignore it, as libvirt's does)
    const bad = good.replace('good', 'bad').replace('</volume>', '<bogus/></volume>');
    await expectCode(api.createVolume({ parent, xml: bad, definition: undefined, preallocMetadata: false, requestId: '', validate: true }),
      status.INVALID_ARGUMENT, new RegExp(`^xml: XML document failed to validate against schema: Unable to validate doc against ${SCHEMAS}/storagevol.rng\\n`));
    await expectCode(api.cloneVolume({ parent, source: `${parent}/volumes/good`, xml: bad, definition: undefined, preallocMetadata: false, reflink: false, requestId: '', validate: true }),
      status.INVALID_ARGUMENT, /storagevol\.rng/);
    expect(existsSync(join(path, 'bad'))).to.equal(false);
    await expectCode(api.getVolume({ name: `${parent}/volumes/bad`, refresh: false }), status.NOT_FOUND);
  });

  it('cisternctl vol-clone --print-xml prints a document libvirt\'s schema accepts, and vol-create --validate takes it', async () => {
    const printed = await ctx.stack.cli(['vol-clone', 'good', 'copy', '--pool', 'a/vols', '--print-xml']);
    expect(printed.code, printed.stderr).to.equal(0);
    expect(printed.stdout).to.match(/^<volume type="file">\n  <name>copy<\/name>\n  <key>[^<]*\/vols\/good<\/key>\n/);
    await expectCode(ctx.stack.api.getVolume({ name: 'hosts/a/pools/vols/volumes/copy', refresh: false }), status.NOT_FOUND);
    const file = join(scratch.path, 'copy.xml');
    writeFileSync(file, printed.stdout);
    const created = await ctx.stack.cli(['vol-create', 'a/vols', file, '--validate']);
    expect(created.code, created.stderr).to.equal(0);
    expect(existsSync(join(scratch.path, 'vols', 'copy'))).to.equal(true);
  });
});

describe('validate where the schema is missing (coordinator --schema-dir with no schemas)', function () {
  this.timeout(120_000);
  const empty = mkdtempSync(join(tmpdir(), 'cistern-no-schemas-'));
  writeFileSync(join(empty, 'README'), 'no schemas here\n');
  const ctx = useStack({ hosts: ['a'], coordinatorArgs: ['--schema-dir', empty] });
  after(() => rmSync(empty, { recursive: true, force: true }));

  it('is FAILED_PRECONDITION naming the missing file, and defines nothing (validation is never skipped)', async () => {
    const xml = fixture('storagepoolxml2xmlin', 'pool-dir.xml');
    await expectCode(ctx.stack.api.definePool({ host: 'a', xml, definition: undefined, requestId: '', validate: true }),
      status.FAILED_PRECONDITION, new RegExp(`libvirt's schema ${empty}/storagepool.rng is missing on the coordinator's machine`));
    await expectCode(ctx.stack.api.getPool({ name: 'hosts/a/pools/virtimages' }), status.NOT_FOUND);
  });
});
