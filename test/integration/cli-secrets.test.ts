// cisternctl's secret commands end to end (real nats-server, coordinator with a secret key,
// agent a, real qemu-img): a secret defined from XML, its value set from a file, and a LUKS
// volume created with it through vol-create, as an operator does it with virsh. The value is
// never printed back.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, startStack, type Stack } from '../support/index.js';
import { hasTool } from '../support/tools.js';
import { writeSecretKey } from '../support/secret-key.js';

const UUID = '5f0c8a3e-2b7d-4c1e-9a6f-0d3b8e7c1a24';
const PASS = `Luks${randomBytes(12).toString('hex')}`;

describe('cisternctl secret-* (real stack, real qemu-img)', function () {
  // the LUKS key slot's PBKDF runs at create
  this.timeout(180_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;

  before(async function () {
    this.timeout(120_000);
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    tmp = makeTempDir('cistern-cli-secrets-');
    const keyFile = writeSecretKey(tmp.path);
    stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', keyFile] });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  const cli = async (...args: string[]) => stack!.cli(args);

  it('defines a secret from XML, sets its value from a file, and a LUKS volume is made with it', async () => {
    const target = join(tmp!.path, 'enc');
    expect((await cli('pool-create-as', 'enc', 'dir', '--target', target, '--build')).code).to.equal(0);
    const volPath = join(target, 'v-luks');
    const secretXml = join(tmp!.path, 'secret.xml');
    writeFileSync(secretXml, `<secret ephemeral='no' private='yes'>\n  <uuid>${UUID}</uuid>\n  <description>passphrase of v-luks</description>\n  <usage type='volume'>\n    <volume>${volPath}</volume>\n  </usage>\n</secret>\n`);

    const defined = await cli('secret-define', secretXml, '--validate');
    expect(defined, defined.stderr).to.deep.include({ code: 0, stdout: `Secret ${UUID} created\n\n` });
    const listed = await cli('secret-list');
    expect(listed.stdout).to.contain(` ${UUID}   volume ${volPath}\n`);
    const dumped = await cli('secret-dumpxml', UUID);
    // what was defined, in libvirt's layout (the file is written in it): then virsh's blank line
    expect(dumped.stdout).to.equal(`${readFileSync(secretXml, 'utf8')}\n`);

    // a create that needs the value before it is set fails, naming the secret, not a value
    const volXml = join(tmp!.path, 'vol.xml');
    writeFileSync(volXml, `<volume><name>v-luks</name><capacity unit='M'>8</capacity><target><format type='raw'/><encryption format='luks'><secret type='passphrase' uuid='${UUID}'/></encryption></target></volume>`);
    const early = await cli('vol-create', 'enc', volXml);
    expect(early.code).to.equal(1);
    expect(early.stderr).to.contain(UUID);
    expect(existsSync(volPath)).to.equal(false);

    const valueFile = join(tmp!.path, 'pass');
    writeFileSync(valueFile, PASS, { mode: 0o600 });
    const set = await cli('secret-set-value', UUID, '--file', valueFile, '--plain');
    expect(set, set.stderr).to.deep.include({ code: 0, stdout: 'Secret value set\n\n' });

    const created = await cli('vol-create', 'enc', volXml);
    expect(created.code, created.stderr).to.equal(0);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', volPath], { encoding: 'utf8' })) as { format: string };
    expect(info.format).to.equal('luks');
    // the passphrase set through the CLI is the one that opens it
    execFileSync('qemu-img', ['info', '--object', `secret,id=s0,data=${PASS}`, '--image-opts', `driver=luks,key-secret=s0,file.filename=${volPath}`]);

    const got = await cli('secret-get-value', UUID);
    expect(got.code).to.equal(1);
    expect(got.stdout + got.stderr).to.not.contain(PASS);
    expect(got.stderr).to.contain("Cistern never gives a secret's value back");
  });

  it('secret-define --validate refuses what libvirt\'s schema refuses, and defines nothing', async () => {
    const bad = join(tmp!.path, 'bad.xml');
    writeFileSync(bad, "<secret ephemeral='no' private='no'><uuid>7e0c8a3e-2b7d-4c1e-9a6f-0d3b8e7c1a25</uuid><bogus/></secret>");
    const r = await cli('secret-define', bad, '--validate');
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: Failed to set attributes from .*bad\.xml\nerror: .*failed to validate against schema.*secret\.rng/);
    expect((await cli('secret-list')).stdout).to.not.contain('7e0c8a3e');
    // without --validate the unknown element is ignored, as libvirt's parser ignores it
    expect((await cli('secret-define', bad)).code).to.equal(0);
    expect((await cli('secret-undefine', '7e0c8a3e-2b7d-4c1e-9a6f-0d3b8e7c1a25')).stdout).to.equal('Secret 7e0c8a3e-2b7d-4c1e-9a6f-0d3b8e7c1a25 deleted\n\n');
  });

  it('secret-undefine removes it: the listing and the lookups say so', async () => {
    expect((await cli('vol-delete', 'v-luks', '--pool', 'enc')).code).to.equal(0);
    expect((await cli('secret-undefine', UUID)).code).to.equal(0);
    expect((await cli('secret-list', '--json')).stdout).to.equal('[]\n');
    const gone = await cli('secret-dumpxml', UUID);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(new RegExp(`^error: failed to get secret '${UUID}'\n`));
  });
});
