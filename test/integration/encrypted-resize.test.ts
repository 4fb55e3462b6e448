// Resizing a LUKS-encrypted volume through the whole stack (gRPC -> coordinator with a
// secret key -> NATS -> agent -> qemu-img), as libvirt's storageBackendResizeQemuImg does it:
// the coordinator sends the volume's passphrase with the ResizeVolume (the secret whose usage
// is the volume's path, libvirt's default secret: a volume read from disk names none), the
// agent runs `qemu-img resize --object secret,file=... --image-opts driver=luks,...`.
// Checks: the new capacity in the reply and in qemu-img info, --shrink, allocate refused on
// its field without a passphrase going out, a volume with no secret for its path refused
// with a message saying what to define, and the passphrase in no argv, log or error.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { PoolDefinition, PoolType, Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';
import { hasTool, makeTempDir, outcomeOf, runningProcesses, startStack, type Stack } from '../support/index.js';

const MiB = 1024n * 1024n;
// letters and digits only, so no escaping in a message can hide it
const PASS = `Luks${randomBytes(12).toString('hex')}`;

import { writeSecretKey } from '../support/secret-key.js';

describe('resize of a LUKS-encrypted volume through the API (real qemu-img)', function () {
  // each unlock runs the key slot's PBKDF (2 s of CPU time at create)
  this.timeout(300_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;
  let argvLog: string;
  let target: string;
  const seen: string[] = [];

  before(async function () {
    this.timeout(120_000);
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    tmp = makeTempDir('cistern-enc-resize-');
    const keyFile = writeSecretKey(tmp.path);
    // a qemu-img that records its argv as the kernel (and ps) sees it, then runs the real one
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    argvLog = join(tmp.path, 'argv.log');
    writeFileSync(join(bin, 'qemu-img'), `#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline >> '${argvLog}'; echo >> '${argvLog}'\nexec /usr/bin/qemu-img "$@"\n`, { mode: 0o755 });
    target = join(tmp.path, 'pool');
    stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', keyFile], env: { PATH: `${bin}:${process.env.PATH}` } });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  const vol = (name: string) => `hosts/a/pools/enc/volumes/${name}`;
  const luksXml = (name: string, uuid: string) =>
    `<volume><name>${name}</name><capacity unit='M'>8</capacity><target><format type='raw'/>` +
    `<encryption format='luks'><secret type='passphrase' uuid='${uuid}'/></encryption></target></volume>`;
  const virtualSize = (name: string) =>
    (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', join(target, name)], { encoding: 'utf8' })) as { 'virtual-size': number; format: string });
  const resizes = () => (existsSync(argvLog) ? readFileSync(argvLog, 'utf8').split('\n').filter((l) => / resize /.test(l)) : []);
  const volumeSecret = async (usageId: string) => {
    const s = await stack!.api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId }), xml: '', requestId: '', validate: false });
    await stack!.api.setSecretValue({ name: s.name, value: Buffer.from(PASS) });
    return s;
  };
  const fails = async (p: Promise<unknown>, code: status, pattern: RegExp): Promise<string> => {
    const r = await outcomeOf(p);
    seen.push(r.message);
    expect(status[r.code], r.message).to.equal(status[code]);
    expect(r.message).to.match(pattern);
    return r.message;
  };

  it('grows and shrinks with the secret of its path; allocate is refused on its field', async () => {
    const api = stack!.api;
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/enc', build: true, buildFlags: undefined, requestId: '' });
    const secret = await volumeSecret(join(target, 'v'));
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('v', secret.uuid), requestId: '' } as never);
    expect(virtualSize('v')).to.deep.include({ format: 'luks', 'virtual-size': 8 * 1024 * 1024 });

    const grown = await api.resizeVolume({ name: vol('v'), capacity: 24n * MiB, allocate: false, delta: false, shrink: false, requestId: '' });
    expect(grown.definition?.capacity).to.equal(24n * MiB);
    expect(virtualSize('v')['virtual-size']).to.equal(24 * 1024 * 1024);
    expect((await api.getVolume({ name: vol('v'), refresh: false })).definition?.capacity).to.equal(24n * MiB);

    await fails(api.resizeVolume({ name: vol('v'), capacity: 12n * MiB, allocate: false, delta: false, shrink: false, requestId: '' }), status.INVALID_ARGUMENT, /shrink/);
    const shrunk = await api.resizeVolume({ name: vol('v'), capacity: 12n * MiB, allocate: false, delta: false, shrink: true, requestId: '' });
    expect(shrunk.definition?.capacity).to.equal(12n * MiB);
    expect(virtualSize('v')['virtual-size']).to.equal(12 * 1024 * 1024);
    const lines = resizes();
    expect(lines).to.have.length(2);
    for (const l of lines) expect(l).to.match(/ resize (--shrink )?--object secret,id=v_encrypt0,file=\S+ --image-opts -- driver=luks,key-secret=v_encrypt0,file\.filename=\/proc\/\d+\/fd\/\d+ \d+ $/);
    expect(lines[1]).to.include(' --shrink ');
    // the secret files are gone
    for (const l of lines) expect(existsSync(/file=(\S+?) /.exec(l)![1]!)).to.equal(false);

    // libvirt: VIR_ERR_OPERATION_UNSUPPORTED "preallocate is only supported for an unencrypted raw
    // volume", which Cistern answers UNIMPLEMENTED; no qemu-img, no passphrase sent
    await fails(
      api.resizeVolume({ name: vol('v'), capacity: 16n * MiB, allocate: true, delta: false, shrink: false, requestId: '' }),
      status.UNIMPLEMENTED,
      /^preallocate is only supported for an unencrypted raw volume/,
    );
    expect(resizes()).to.have.length(2);
    expect(virtualSize('v')['virtual-size']).to.equal(12 * 1024 * 1024);
  });

  it('a volume without a secret for its path: FAILED_PRECONDITION saying what to define; defined, the resize works', async () => {
    const api = stack!.api;
    // created with a secret whose usage is another path
    const other = await volumeSecret(join(target, 'elsewhere'));
    await api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml: luksXml('w', other.uuid), requestId: '' } as never);
    // as libvirt after a pool refresh: the volume is re-read from disk, where no secret is recorded
    await api.refreshPool({ name: 'hosts/a/pools/enc', requestId: '' });
    const known = (await api.getVolume({ name: vol('w'), refresh: false })).definition?.target?.encryption;
    expect(known?.format).to.equal('luks');
    expect(known?.secrets).to.deep.equal([]);
    const path = join(target, 'w');
    const message = await fails(
      api.resizeVolume({ name: vol('w'), capacity: 16n * MiB, allocate: false, delta: false, shrink: false, requestId: '' }),
      status.FAILED_PRECONDITION,
      /is LUKS-encrypted and its definition names no passphrase secret/,
    );
    expect(message).to.include(`<usage type='volume'><volume>${path}</volume></usage>`);
    expect(virtualSize('w')['virtual-size']).to.equal(8 * 1024 * 1024);
    const before = resizes().length;

    await volumeSecret(path);
    const grown = await api.resizeVolume({ name: vol('w'), capacity: 16n * MiB, allocate: false, delta: false, shrink: false, requestId: '' });
    expect(grown.definition?.capacity).to.equal(16n * MiB);
    expect(virtualSize('w')['virtual-size']).to.equal(16 * 1024 * 1024);
    expect(resizes()).to.have.length(before + 1);
  });

  it('the passphrase is in no argv, service log or error message', () => {
    const haystacks: Record<string, string> = {
      'qemu-img argv': existsSync(argvLog) ? readFileSync(argvLog, 'utf8') : '',
      'service logs': runningProcesses().map((p) => p.logs()).join('\n'),
      errors: seen.join('\n'),
    };
    expect(haystacks['qemu-img argv']).to.match(/--object secret,id=/);
    for (const [where, text] of Object.entries(haystacks)) {
      for (const needle of [PASS, Buffer.from(PASS).toString('base64'), Buffer.from(PASS).toString('hex')]) {
        expect(text.includes(needle), `passphrase found in ${where}`).to.equal(false);
      }
    }
  });
});
