// --validate, where virsh 9.0 has it (pool-define, vol-create, vol-create-from; not pool-create):
// the flag reaches the server, whose schema refusal is printed under virsh's own line.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloneVolumeRequest, CreateVolumeRequest, DefinePoolRequest } from '../../../libs/proto/cistern/v1/storage.js';
import { SchemaValidationError } from '../../../libs/errors/errors.js';
import { FakeApi, pool, run, volume } from './fake-api.js';

describe('cisternctl --validate', () => {
  let dir: string;
  let poolXml: string;
  let volXml: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cisternctl-validate-'));
    poolXml = join(dir, 'pool.xml');
    volXml = join(dir, 'vol.xml');
    await writeFile(poolXml, "<pool type='dir'><name>fromxml</name><target><path>/srv/x</path></target></pool>");
    await writeFile(volXml, "<volume><name>fromxml</name><capacity>1024</capacity><allocation>0</allocation></volume>");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  function fleet(): FakeApi {
    const api = new FakeApi(['a']);
    api.pools = [pool('a', 'p')];
    api.volumes = [volume('a', 'p', 'disk.img', 1024n, 0n, '/p/disk.img')];
    return api;
  }

  it('pool-define --validate sends validate; without it, not', async () => {
    const api = fleet();
    expect((await run(api, ['pool-define', poolXml, '--validate'])).code).to.equal(0);
    expect((await run(api, ['pool-define', poolXml])).code).to.equal(0);
    expect(api.callsOf('definePool').map((r) => (r as DefinePoolRequest).validate)).to.deep.equal([true, false]);
  });

  it('vol-create --validate and vol-create-from --validate send validate', async () => {
    const api = fleet();
    expect((await run(api, ['vol-create', 'p', volXml, '--validate'])).code).to.equal(0);
    expect((await run(api, ['vol-create', 'p', volXml])).code).to.equal(0);
    expect(api.callsOf('createVolume').map((r) => (r as CreateVolumeRequest).validate)).to.deep.equal([true, false]);
    expect((await run(api, ['vol-create-from', 'p', volXml, 'disk.img', '--inputpool', 'p', '--validate'])).code).to.equal(0);
    const clone = api.callsOf('cloneVolume')[0] as CloneVolumeRequest;
    expect(clone).to.deep.include({ validate: true, source: 'hosts/a/pools/p/volumes/disk.img' });
  });

  it('pool-create has no --validate, as in virsh 9.0', async () => {
    const api = fleet();
    const r = await run(api, ['pool-create', poolXml, '--validate']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/--validate/);
    expect(api.callsOf('createPool')).to.have.length(0);
  });

  it('a schema refusal prints under virsh\'s line, in libvirt\'s words after the field', async () => {
    const api = fleet();
    api.failures.set('definePool', new SchemaValidationError('xml', '/usr/share/libvirt/schemas/storagepool.rng',
      'line 1: Element pool has extra content: bogus'));
    const r = await run(api, ['pool-define', poolXml, '--validate']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      `error: Failed to define pool from ${poolXml}\n` +
      'error: xml: XML document failed to validate against schema: Unable to validate doc against /usr/share/libvirt/schemas/storagepool.rng\n' +
      'line 1: Element pool has extra content: bogus\n');
  });

  it('help shows --validate where virsh 9.0 does (its synopsis, with Cistern\'s --host)', async () => {
    const synopsis = async (cmd: string) => (await run(new FakeApi(), ['help', cmd])).stdout.split('\n')[4];
    expect(await synopsis('pool-define')).to.equal('    pool-define <file> [--validate] [--host <string>]');
    expect(await synopsis('vol-create')).to.equal('    vol-create <pool> <file> [--prealloc-metadata] [--validate]');
    expect(await synopsis('vol-create-from')).to.equal(
      '    vol-create-from <pool> <file> <vol> [--inputpool <string>] [--prealloc-metadata] [--reflink] [--validate] [--host <string>]');
    expect((await run(new FakeApi(), ['help', 'pool-define'])).stdout).to.contain('    --validate       validate the XML against the schema\n');
  });
});
