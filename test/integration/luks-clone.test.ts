// A clone of a LUKS volume through the whole stack (cisternctl vol-clone and CloneVolume with a
// structured definition), as libvirt 9.0 makes it: virsh vol-clone sends the source's
// vol-dumpxml, which after a refresh names the secret of the source's path
// (storageBackendLoadDefaultSecrets), so the clone is LUKS with that secret and holds the
// source's decrypted bytes. Cistern's agent reads the source from disk, where the image records
// no secret: the inherited <encryption> named none and the clone was refused with
// "definition.target.encryption.secrets: a single <secret type='passphrase'> is expected, got 0".
// Checks: both clones are LUKS, decrypt with the secret to the source's bytes, and no secret
// file is left in the agent's secret directory.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PoolDefinition, PoolType, Secret, SecretUsageType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, makeTempDir, startStack, type Stack } from '../support/index.js';
import { writeSecretKey } from '../support/secret-key.js';

const PASS = `Luks${randomBytes(12).toString('hex')}`;

describe('clone of a LUKS volume through the API and cisternctl vol-clone (real qemu-img)', function () {
  // each LUKS open runs the key slot's PBKDF (about 2 s of CPU time)
  this.timeout(300_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let target: string;
  let secretDir: string;
  let passFile: string;
  let argvLog: string;

  before(async function () {
    this.timeout(120_000);
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    tmp = makeTempDir('cistern-luks-clone-');
    target = join(tmp.path, 'pool');
    secretDir = join(tmp.path, 'secrets');
    mkdirSync(secretDir, { mode: 0o700 });
    passFile = join(tmp.path, 'pass');
    writeFileSync(passFile, PASS, { mode: 0o600 });
    // a qemu-img that records its argv, then runs the real one: where the secret files were
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    argvLog = join(tmp.path, 'argv.log');
    writeFileSync(join(bin, 'qemu-img'), `#!/bin/sh\nprintf '%s ' "$@" >> '${argvLog}'; echo >> '${argvLog}'\nexec /usr/bin/qemu-img "$@"\n`, { mode: 0o755 });
    stack = await startStack({
      hosts: ['a'],
      coordinatorArgs: ['--secret-key-file', writeSecretKey(tmp.path)],
      env: { CISTERN_SECRET_DIR: secretDir, PATH: `${bin}:${process.env.PATH}` },
    });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  const luksOpts = (name: string) => `driver=luks,key-secret=s0,file.filename=${join(target, name)}`;
  const info = (name: string) =>
    JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', join(target, name)], { encoding: 'utf8' })) as { format: string; 'virtual-size': number };
  /** `qemu-img compare` of a LUKS volume's decrypted content with `other` (image opts), true when identical. */
  const sameDecrypted = (name: string, other: string): boolean => {
    try {
      execFileSync('qemu-img', ['compare', '-U', '--object', `secret,id=s0,file=${passFile}`, '--image-opts', luksOpts(name), other], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  };

  it('vol-clone and CloneVolume give LUKS clones with the source\'s decrypted bytes, and leave no secret file', async () => {
    const api = stack!.api;
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/enc', build: true, buildFlags: undefined, requestId: '' });
    const secret = await api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: join(target, 'src') }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: secret.name, value: Buffer.from(PASS) });
    const xml =
      `<volume><name>src</name><capacity unit='M'>8</capacity><target><format type='raw'/>` +
      `<encryption format='luks'><secret type='passphrase' uuid='${secret.uuid}'/></encryption></target></volume>`;
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml, requestId: '' } as never);
    // known bytes written through the encryption, so a clone of zeros (or of the ciphertext) differs
    const plain = join(tmp!.path, 'plain.raw');
    writeFileSync(plain, randomBytes(8 * 1024 * 1024));
    execFileSync('qemu-img', ['convert', '-n', '--object', `secret,id=s0,file=${passFile}`, '-f', 'raw', plain, '--target-image-opts', luksOpts('src')]);
    // as libvirt after a refresh: the source is re-read from disk, where no secret is recorded
    await api.refreshPool({ name: 'hosts/a/pools/enc', requestId: '' });
    const plainOpts = `driver=raw,file.filename=${plain}`;
    expect(sameDecrypted('src', plainOpts), 'the source holds the written bytes').to.equal(true);

    const r = await stack!.cli(['vol-clone', 'src', 'c1', '--pool', 'a/enc']);
    expect(r.stderr).to.equal('');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('Vol c1 cloned from src');

    await api.cloneVolume({ parent: 'hosts/a/pools/enc', source: 'hosts/a/pools/enc/volumes/src', definition: VolumeDefinition.fromPartial({ name: 'c2' }), xml: '', requestId: '' } as never);

    for (const name of ['c1', 'c2']) {
      expect(info(name), name).to.deep.include({ format: 'luks', 'virtual-size': 8 * 1024 * 1024 });
      expect(sameDecrypted(name, plainOpts), `${name} decrypts to the source's bytes`).to.equal(true);
      const known = (await api.getVolume({ name: `hosts/a/pools/enc/volumes/${name}`, refresh: false })).definition?.target?.encryption;
      expect(known?.format, name).to.equal('luks');
    }
    // each clone's convert read the source and wrote the clone with a secret file of the agent's secret directory
    const converts = readFileSync(argvLog, 'utf8').split('\n').filter((l) => l.startsWith('convert '));
    expect(converts).to.have.length(2);
    const files = converts.flatMap((l) => [...l.matchAll(/secret,id=[^,\s]+,file=(\S+)/g)].map((m) => m[1]!));
    expect(files).to.have.length(4);
    for (const f of files) {
      expect(f.startsWith(`${secretDir}/`), f).to.equal(true);
      expect(existsSync(f), f).to.equal(false);
    }
    expect(readdirSync(secretDir), 'secret files left behind').to.deep.equal([]);
  });

  it('a source with no secret for its path: FAILED_PRECONDITION saying what to define, and no clone', async () => {
    const api = stack!.api;
    const secrets = await api.listSecrets({ pageSize: 0, pageToken: '' });
    const uuid = secrets.secrets.find((x) => x.usageId === join(target, 'src'))!.uuid;
    // made with the secret of another path: after a refresh none names it
    const xml =
      `<volume><name>w</name><capacity unit='M'>8</capacity><target><format type='raw'/>` +
      `<encryption format='luks'><secret type='passphrase' uuid='${uuid}'/></encryption></target></volume>`;
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml, requestId: '' } as never);
    await api.refreshPool({ name: 'hosts/a/pools/enc', requestId: '' });
    const r = await stack!.cli(['vol-clone', 'w', 'wc', '--pool', 'a/enc']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain('error: Failed to clone vol from w');
    expect(r.stderr).to.contain(`<usage type='volume'><volume>${join(target, 'w')}</volume></usage>`);
    const listed = await api.listVolumes({ parent: 'hosts/a/pools/enc', pageSize: 0, pageToken: '' });
    expect(listed.volumes.map((v) => v.name.split('/').pop())).to.not.include('wc');
    expect(readdirSync(target)).to.not.include('wc');
    expect(readdirSync(secretDir)).to.deep.equal([]);
  });
});
