// A secret value may hold any bytes (SetSecretValue takes 1 to 65,536 of them), but an
// environment variable cannot hold a NUL: Node refuses the spawn with an error that quotes
// the variable's value ("... must be a string without null bytes. Received 'pass\x00word'"),
// and that text became the stderr of the command's error: an iscsi-direct pool whose CHAP
// secret held a NUL sent its password back in the error of every refresh, as a login refused
// by the target.
import { expect } from 'chai';
import { ExecRunner } from '../../../libs/backends/exec-runner.js';
import { IscsiDirectBackend } from '../../../libs/backends/iscsi-direct.js';
import { InvalidArgumentError, type CisternError } from '../../../libs/errors/errors.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { writeSecretFile } from '../../../libs/backends/dir/secret-file.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rejects } from '../../support/rejects.js';

const UUID = '10ed4ad4-c7b0-4696-b574-b40e04fea84b';
const SECRET = 'T0pSecretChap';
const everything = (err: unknown): string => `${(err as Error).message} ${JSON.stringify((err as CisternError).details ?? {})}`;

describe('a secret value with a NUL byte', () => {
  it('a command with it in its environment fails naming the variable, not quoting its value', async () => {
    const err = await rejects(new ExecRunner().run(['true'], { env: { LIBISCSI_CHAP_PASSWORD: `${SECRET}\0x` } }));
    expect(everything(err)).to.contain('LIBISCSI_CHAP_PASSWORD');
    expect(everything(err)).to.not.contain(SECRET);
  });

  it('as an iscsi-direct CHAP secret is refused before anything logs in, naming the secret, not quoting it', async () => {
    const pool = PoolDefinition.fromPartial({
      type: PoolType.POOL_TYPE_ISCSI_DIRECT,
      name: 'direct',
      source: {
        hosts: [{ name: '127.0.0.1', port: 3260 }],
        devices: [{ path: 'iqn.2024-01.test:open' }],
        initiatorIqn: 'iqn.2024-01.test:init',
        auth: { type: 'chap', username: 'alice', secret: { uuid: UUID, usage: '', type: '' } },
      },
    });
    let loggedIn = false;
    const backend = new IscsiDirectBackend({
      session: async () => {
        loggedIn = true;
        throw new Error('logged in');
      },
    });
    const err = await rejects(backend.refreshPool({ runner: new ExecRunner(), pool, secrets: new Map([[UUID, Buffer.from(`${SECRET}\0x`)]]) }));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(everything(err)).to.contain(UUID).and.to.contain('NUL');
    expect(everything(err)).to.not.contain(SECRET);
    expect(loggedIn).to.equal(false);
  });
});

// qemu's LUKS driver reads its key secret with qcrypto_secret_lookup_as_utf8: a passphrase
// that is not UTF-8, or holds a NUL (g_utf8_validate refuses one within the length), fails
// qemu-img with 'Data from secret vnul_encrypt0 is not valid UTF-8', which names neither the
// secret nor what a passphrase may hold, after a file with the value was written
describe('a LUKS passphrase qemu cannot take', () => {
  const volume = (name: string) =>
    VolumeDefinition.fromPartial({ name, target: { format: 'raw', encryption: { format: 'luks', secrets: [{ type: 'passphrase', uuid: UUID }] } } });

  for (const [what, value] of [
    ['with a NUL byte', Buffer.from(`${SECRET}\0x`)],
    ['that is not UTF-8', Buffer.concat([Buffer.from(SECRET), Buffer.from([0xff, 0xfe])])],
  ] as const) {
    it(`${what} is refused naming the secret and what a passphrase may hold, and no file is written`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cistern-luks-nul-'));
      const saved = process.env.CISTERN_SECRET_DIR;
      process.env.CISTERN_SECRET_DIR = dir;
      try {
        const err = await rejects(writeSecretFile({ runner: new ExecRunner(), secrets: new Map([[UUID, value]]) }, volume('v1')));
        expect(err).to.be.instanceOf(InvalidArgumentError);
        expect(everything(err)).to.contain(UUID).and.to.contain('UTF-8').and.to.contain('NUL');
        expect(everything(err)).to.not.contain(SECRET);
        expect(readdirSync(dir)).to.deep.equal([]);
      } finally {
        if (saved === undefined) delete process.env.CISTERN_SECRET_DIR;
        else process.env.CISTERN_SECRET_DIR = saved;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
