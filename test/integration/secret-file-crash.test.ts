// A LUKS passphrase handed to qemu-img sits in a 0600 file of a private temp directory while
// qemu-img runs (libs/backends/dir/secret-file.ts), removed when it ends. An agent killed
// meanwhile (SIGKILL, OOM, a power cut) never removes it: the passphrase stayed in /tmp, in
// plain text, for good. libvirt keeps its such files in /run (a tmpfs, gone at boot); Cistern's
// starting agent removes what an earlier run of an agent left.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { makeTempDir, startStack, waitFor, type Stack } from '../support/index.js';
import { writeSecretKey } from '../support/secret-key.js';
import { hasTool } from '../support/tools.js';
import { PoolDefinition, PoolType, Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';

const PASS = 'crash-test-passphrase-7f3a';

describe('a LUKS passphrase file left by a killed agent', function () {
  this.timeout(180_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;

  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  it('is removed when the agent starts again', async function () {
    if (!hasTool('qemu-img')) this.skip(); // skip reason: qemu-img is not installed (Debian package qemu-utils)
    tmp = makeTempDir('cistern-secret-crash-');
    const keyFile = writeSecretKey(tmp.path);
    const agentTmp = join(tmp.path, 'tmp');
    mkdirSync(agentTmp, { mode: 0o700 });
    // a qemu-img whose LUKS create hangs (with the passphrase file in place) until it is killed
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    const started = join(tmp.path, 'create-started');
    writeFileSync(
      join(bin, 'qemu-img'),
      `#!/bin/sh\ncase "$*" in *create*secret*) : > '${started}'; exec sleep 600;; esac\nexec /usr/bin/qemu-img "$@"\n`,
      { mode: 0o755 },
    );
    stack = await startStack({ hosts: ['a'], coordinatorArgs: ['--secret-key-file', keyFile], env: { PATH: `${bin}:${process.env.PATH}`, TMPDIR: agentTmp } });
    const api = stack.api;
    const target = join(tmp.path, 'pool');
    await api.definePool({ host: 'a', definition: PoolDefinition.fromPartial({ name: 'enc', type: PoolType.POOL_TYPE_DIR, target: { path: target } }), xml: '', requestId: '', validate: false });
    await api.startPool({ name: 'hosts/a/pools/enc', build: true, buildFlags: undefined, requestId: '' });
    const s = await api.defineSecret({ secret: Secret.fromPartial({ usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: join(target, 'v') }), xml: '', requestId: '', validate: false });
    await api.setSecretValue({ name: s.name, value: Buffer.from(PASS) });
    const xml = `<volume><name>v</name><capacity unit='M'>8</capacity><target><format type='raw'/>` +
      `<encryption format='luks'><secret type='passphrase' uuid='${s.uuid}'/></encryption></target></volume>`;
    const create = api.createVolume({ parent: 'hosts/a/pools/enc', definition: undefined, xml, requestId: '' } as never).catch((e: unknown) => e);
    await waitFor('qemu-img create to run', () => (existsSync(started) ? true : undefined), { timeoutMs: 60_000, intervalMs: 50 });
    const secretDirs = () => readdirSync(agentTmp).filter((n) => n.startsWith('cistern-secret-'));
    // the test sees the file it looks for: the passphrase is there while qemu-img runs
    expect(secretDirs()).to.have.length(1);
    expect(readFileSync(join(agentTmp, secretDirs()[0]!, 'secret'), 'utf8')).to.equal(PASS);

    await stack.restartAgent('a', { kill: true });
    await create;
    expect(secretDirs()).to.deep.equal([]);
  });
});
