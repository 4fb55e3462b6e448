// pool-name and pool-uuid against a fake server; the expected output is virsh 9.0's
// (virsh -c test:///default, whose pool default-pool has UUID dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566).
import { expect } from 'chai';
import { FakeApi, pool, run } from './fake-api.js';

const UUID = 'dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566';

function fleet(hosts: string[] = ['a']): FakeApi {
  const api = new FakeApi(hosts);
  api.pools = [pool('a', 'default-pool', {}, { uuid: UUID }), pool('a', 'other', {}, { uuid: '11111111-2222-3333-4444-555555555555' })];
  return api;
}

describe('cisternctl pool-uuid', () => {
  it('prints the UUID of a pool named by name, then the blank line; -q drops the blank line', async () => {
    expect(await run(fleet(), ['pool-uuid', 'default-pool'])).to.deep.equal({ code: 0, stdout: `${UUID}\n\n`, stderr: '' });
    expect(await run(fleet(), ['-q', 'pool-uuid', '--pool', 'a/default-pool'])).to.deep.equal({ code: 0, stdout: `${UUID}\n`, stderr: '' });
  });

  it('takes a UUID too, as every pool command does (virsh 9.0 looks pool-uuid up by name only)', async () => {
    expect((await run(fleet(), ['pool-uuid', UUID.toUpperCase()])).stdout).to.equal(`${UUID}\n\n`);
  });

  it("an unknown pool is virsh's two error lines", async () => {
    expect(await run(fleet(), ['pool-uuid', 'nosuch'])).to.deep.equal({
      code: 1,
      stdout: '\n',
      stderr: "error: failed to get pool 'nosuch'\nerror: Storage pool not found: no storage pool with matching name 'nosuch'\n",
    });
  });

  it('requires the pool and takes nothing more, in virsh wording', async () => {
    expect(await run(fleet(), ['pool-uuid'])).to.deep.equal({ code: 1, stdout: '', stderr: "error: command 'pool-uuid' requires <pool> option\n" });
    expect(await run(fleet(), ['pool-uuid', 'default-pool', 'extra'])).to.deep.equal({ code: 1, stdout: '', stderr: "error: unexpected data 'extra'\n" });
  });
});

describe('cisternctl pool-name', () => {
  it('prints the name of the pool with that UUID (any case), then the blank line', async () => {
    expect(await run(fleet(), ['pool-name', UUID])).to.deep.equal({ code: 0, stdout: 'default-pool\n\n', stderr: '' });
    expect(await run(fleet(), ['-q', 'pool-name', '--pool', UUID.toUpperCase()])).to.deep.equal({ code: 0, stdout: 'default-pool\n', stderr: '' });
  });

  it('on a fleet of several hosts prints HOST/POOL, as pool-list names pools, so any command takes it back', async () => {
    const api = fleet(['a', 'b']);
    expect((await run(api, ['pool-name', UUID])).stdout).to.equal('a/default-pool\n\n');
  });

  it('a name is not a UUID: not found, with no reason, as virsh says it', async () => {
    expect(await run(fleet(), ['pool-name', 'default-pool'])).to.deep.equal({ code: 1, stdout: '\n', stderr: "error: failed to get pool 'default-pool'\n" });
    // virsh parses only 36-character arguments as UUIDs
    expect((await run(fleet(), ['pool-name', UUID.replace(/-/g, '')])).stderr).to.equal(`error: failed to get pool '${UUID.replace(/-/g, '')}'\n`);
  });

  it("an unknown UUID is virsh's two lines, the UUID in libvirt's form; a malformed one says so", async () => {
    expect(await run(fleet(), ['pool-name', 'AAAAAAAA-0000-0000-0000-000000000000'])).to.deep.equal({
      code: 1,
      stdout: '\n',
      stderr: "error: failed to get pool 'AAAAAAAA-0000-0000-0000-000000000000'\n" +
        "error: Storage pool not found: no storage pool with matching uuid 'aaaaaaaa-0000-0000-0000-000000000000'\n",
    });
    expect((await run(fleet(), ['pool-name', 'aaaaaaaa0000-0000-0000-0000-00000000'])).stderr).to.equal(
      "error: failed to get pool 'aaaaaaaa0000-0000-0000-0000-00000000'\n" +
      "error: Storage pool not found: no storage pool with matching uuid 'aaaaaaaa-0000-0000-0000-000000000000'\n");
    expect((await run(fleet(), ['pool-name', 'aaaaaaaa-0000-0000-0000-00000000000g'])).stderr).to.equal(
      "error: failed to get pool 'aaaaaaaa-0000-0000-0000-00000000000g'\n" +
      'error: uuidstr in virStoragePoolLookupByUUIDString must be a valid UUID\n');
  });

  it('a UUID two hosts share is an error naming both pools', async () => {
    const api = fleet(['a', 'b']);
    api.pools.push(pool('b', 'copy', {}, { uuid: UUID }));
    const r = await run(api, ['pool-name', UUID]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`error: pool UUID '${UUID}' is ambiguous: pools a/default-pool, b/copy have it\n`);
  });
});

describe('cisternctl help for pool-name and pool-uuid', () => {
  it("is laid out as virsh's, with no DESCRIPTION (virsh's is empty)", async () => {
    expect((await run(new FakeApi(), ['help', 'pool-name'])).stdout).to.equal(
      '  NAME\n    pool-name - convert a pool UUID to pool name\n\n  SYNOPSIS\n    pool-name <pool>\n\n' +
      '  OPTIONS\n    [--pool] <string>  pool name (POOL or HOST/POOL) or uuid\n\n\n');
    expect((await run(new FakeApi(), ['help', 'pool-uuid'])).stdout).to.match(/^ {2}NAME\n {4}pool-uuid - convert a pool name to pool UUID\n\n {2}SYNOPSIS\n {4}pool-uuid <pool>\n\n {2}OPTIONS\n/);
  });
});
