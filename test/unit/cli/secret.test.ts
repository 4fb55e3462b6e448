// cisternctl's secret commands against a fake server: virsh 9.0's output and option rules
// (seen against a private libvirtd 9.0), and what Cistern does differently on purpose: a value
// is never given back, and a value that is not base64 is refused rather than decoded loosely.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, SecretUsageType, type DefineSecretRequest, type SetSecretValueRequest } from '../../../libs/proto/cistern/v1/storage.js';
import type { Terminal } from '../../../cli/command.js';
import { UNARY_METHODS } from '../../../cli/api.js';
import { FakeApi, run } from './fake-api.js';

const ISCSI = '86d58299-8498-43b0-afa9-259128e57158';
const VOLUME = '0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f';
const UNUSED = '2aa1f882-be5a-4f07-9565-7da0af4e4e86';

function secretsApi(): FakeApi {
  const api = new FakeApi(['a']);
  api.secrets = [
    Secret.create({ name: `secrets/${ISCSI}`, uuid: ISCSI, private: true, usageType: SecretUsageType.SECRET_USAGE_TYPE_ISCSI, usageId: 'libvirtiscsi-s25' }),
    Secret.create({ name: `secrets/${VOLUME}`, uuid: VOLUME, usageType: SecretUsageType.SECRET_USAGE_TYPE_VOLUME, usageId: '/var/lib/x.img' }),
    Secret.create({ name: `secrets/${UNUSED}`, uuid: UNUSED, ephemeral: true }),
  ];
  return api;
}

describe('cisternctl secret commands', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'cistern-cli-secret-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every Secret API method is wired to the real client', () => {
    expect(UNARY_METHODS).to.include.members(['defineSecret', 'setSecretValue', 'getSecret', 'listSecrets', 'undefineSecret']);
  });

  it('secret-list prints virsh 9.0\'s table, by UUID, "Unused" for a secret without usage', async () => {
    const r = await run(secretsApi(), ['secret-list']);
    expect(r).to.deep.equal({
      code: 0,
      stderr: '',
      stdout:
        ' UUID                                   Usage\n' +
        '----------------------------------------------------------------\n' +
        ` ${VOLUME}   volume /var/lib/x.img\n` +
        ` ${UNUSED}   Unused\n` +
        ` ${ISCSI}   iscsi libvirtiscsi-s25\n` +
        '\n',
    });
  });

  it('secret-list filters as virsh does: one flag of a pair keeps its side, both keep all', async () => {
    const uuids = async (...flags: string[]) =>
      (await run(secretsApi(), ['secret-list', ...flags])).stdout.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(/\s+/)[0]);
    expect(await uuids('--ephemeral')).to.deep.equal([UNUSED]);
    expect(await uuids('--no-ephemeral')).to.deep.equal([VOLUME, ISCSI]);
    expect(await uuids('--private')).to.deep.equal([ISCSI]);
    expect(await uuids('--no-private', '--no-ephemeral')).to.deep.equal([VOLUME]);
    expect(await uuids('--private', '--no-private')).to.deep.equal([VOLUME, UNUSED, ISCSI]);
    const empty = await run(new FakeApi(['a']), ['secret-list']);
    expect(empty.stdout).to.equal(' UUID   Usage\n---------------\n\n');
  });

  it('secret-list --json', async () => {
    const r = await run(secretsApi(), ['secret-list', '--private', '--json']);
    expect(JSON.parse(r.stdout)).to.deep.equal([
      { uuid: ISCSI, usageType: 'iscsi', usageId: 'libvirtiscsi-s25', description: '', ephemeral: false, private: true, hasValue: false },
    ]);
  });

  it('secret-define sends the file\'s XML (and --validate) and prints virsh\'s line; secret-dumpxml prints it back', async () => {
    const api = new FakeApi(['a']);
    const file = join(dir, 's.xml');
    writeFileSync(file, `<secret ephemeral='no' private='yes'><uuid>${ISCSI}</uuid><usage type='iscsi'><target>t1</target></usage></secret>`);
    const r = await run(api, ['secret-define', file, '--validate']);
    expect(r).to.deep.equal({ code: 0, stdout: `Secret ${ISCSI} created\n\n`, stderr: '' });
    expect((api.callsOf('defineSecret')[0] as DefineSecretRequest).validate).to.equal(true);
    const xml = await run(api, ['secret-dumpxml', ISCSI]);
    expect(xml.stdout).to.equal(
      `<secret ephemeral='no' private='yes'>\n  <uuid>${ISCSI}</uuid>\n  <usage type='iscsi'>\n    <target>t1</target>\n  </usage>\n</secret>\n\n`,
    );
  });

  // virsh 9.0's secret-dumpxml has --xpath and --wrap, as pool-dumpxml and vol-dumpxml; the
  // outputs below are a private libvirtd 9.0's for the same secret
  it('secret-dumpxml --xpath prints the nodes selected, and --wrap puts them under <nodes>, as virsh 9.0', async () => {
    const api = new FakeApi(['a']);
    const file = join(dir, 's-xpath.xml');
    writeFileSync(file, `<secret ephemeral='no' private='yes'><uuid>${ISCSI}</uuid><usage type='iscsi'><target>t1</target></usage></secret>`);
    expect((await run(api, ['secret-define', file])).code).to.equal(0);
    expect(await run(api, ['secret-dumpxml', ISCSI, '--xpath', '//usage/target/text()'])).to.deep.equal({ code: 0, stdout: 't1\n\n', stderr: '' });
    expect((await run(api, ['secret-dumpxml', ISCSI, '--xpath', '//uuid | //usage/@type', '--wrap'])).stdout).to.equal(
      `<nodes type="iscsi">\n  <uuid>${ISCSI}</uuid>\n</nodes>\n\n`,
    );
  });

  it('secret-define of a file it cannot read says which and why', async () => {
    const r = await run(new FakeApi(['a']), ['secret-define', join(dir, 'nope.xml')]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`error: Failed to open file '${join(dir, 'nope.xml')}': No such file or directory\n`);
  });

  it('an unknown secret is virsh\'s "failed to get secret", with the server\'s reason', async () => {
    const r = await run(secretsApi(), ['secret-dumpxml', '6c7b0b60-3c69-4c5b-9d23-1f8d2f0d7a11']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: failed to get secret '6c7b0b60-3c69-4c5b-9d23-1f8d2f0d7a11'\nerror: .*no secret with matching uuid/);
  });

  it('secret-set-value --file decodes base64 (a trailing newline allowed); --plain sends the bytes as they are', async () => {
    const api = secretsApi();
    const b64 = join(dir, 'v.b64');
    writeFileSync(b64, `${Buffer.from('hunter2').toString('base64')}\n`);
    expect(await run(api, ['secret-set-value', ISCSI, '--file', b64])).to.deep.equal({ code: 0, stdout: 'Secret value set\n\n', stderr: '' });
    expect(api.secretValues.get(ISCSI)?.toString()).to.equal('hunter2');
    const plain = join(dir, 'v.txt');
    writeFileSync(plain, 'pass word\n');
    expect((await run(api, ['secret-set-value', '--secret', VOLUME, '--file', plain, '--plain'])).code).to.equal(0);
    expect(api.secretValues.get(VOLUME)?.toString()).to.equal('pass word\n');
    expect((api.callsOf('setSecretValue')[1] as SetSecretValueRequest).name).to.equal(`secrets/${VOLUME}`);
  });

  it("secret-set-value --base64 '' is refused as virsh refuses it, before any call", async () => {
    const api = secretsApi();
    const r = await run(api, ['secret-set-value', ISCSI, '--base64', '']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal("error: Failed to get option 'base64': Option argument is empty\n");
    expect(api.callsOf('setSecretValue')).to.deep.equal([]);
  });

  it('secret-set-value refuses a file that is not base64 without --plain, and sets nothing', async () => {
    const api = secretsApi();
    const plain = join(dir, 'pw.txt');
    writeFileSync(plain, 'hunter2');
    const r = await run(api, ['secret-set-value', ISCSI, '--file', plain]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`error: the content of file '${plain}' is not base64 (A-Z a-z 0-9 + / in groups of 4, '=' padding at the end): give --plain to set the bytes as they are\n`);
    expect(api.callsOf('setSecretValue')).to.deep.equal([]);
    // a password or a key, not data: over 1,024 bytes (virsh's limit) is refused, as virsh refuses it
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(1025, 0x61));
    const tooBig = await run(api, ['secret-set-value', ISCSI, '--file', big, '--plain']);
    expect(tooBig.stderr).to.equal(`error: File '${big}' is too large: at most 1024 bytes of a secret value\n`);
    expect(api.callsOf('setSecretValue')).to.deep.equal([]);
  });

  it('secret-set-value --base64 warns that the value is on the command line, and sets it', async () => {
    const api = secretsApi();
    const r = await run(api, ['secret-set-value', ISCSI, '--base64', 'aGk=']);
    expect(r).to.deep.equal({ code: 0, stdout: 'Secret value set\n\n', stderr: 'warning: Passing secret value as command-line argument is insecure!\n' });
    expect(api.secretValues.get(ISCSI)?.toString()).to.equal('hi');
  });

  it('secret-set-value: virsh\'s exclusive options, in its order, and a missing value', async () => {
    const api = secretsApi();
    const f = join(dir, 'x');
    writeFileSync(f, 'aGk=');
    const cases: Array<[string[], string]> = [
      [['--file', f, '--base64', 'aGk='], 'Options --file and --base64 are mutually exclusive'],
      [['--plain', '--base64', 'aGk='], 'Options --plain and --base64 are mutually exclusive'],
      [['--interactive', '--plain'], 'Options --interactive and --plain are mutually exclusive'],
      [['--interactive', '--file', f], 'Options --interactive and --file are mutually exclusive'],
      [[], 'Input secret value is missing: give --file FILE (base64, or --plain for the bytes as they are), --interactive, or --base64 VALUE'],
      [['--interactive'], '--interactive reads the value from a terminal, and stdin is not one: give --file (with --plain for a value that is not base64)'],
    ];
    for (const [args, message] of cases) {
      const r = await run(api, ['secret-set-value', ISCSI, ...args]);
      expect(r.code, args.join(' ')).to.equal(1);
      expect(r.stderr).to.equal(`error: ${message}\n`);
    }
    expect(api.callsOf('setSecretValue')).to.deep.equal([]);
  });

  it('secret-set-value --interactive reads the value hidden from the terminal, as plain text', async () => {
    const api = secretsApi();
    const asked: string[] = [];
    const terminal: Terminal = {
      lend: (fn) => fn(),
      ask: async () => 'shown',
      askHidden: async (question) => {
        asked.push(question);
        return 's3cr3t';
      },
    };
    const r = await run(api, ['secret-set-value', ISCSI, '--interactive'], { terminal });
    expect(r.code, r.stderr).to.equal(0);
    expect(asked).to.deep.equal(['Enter new value for secret:']);
    expect(api.secretValues.get(ISCSI)?.toString()).to.equal('s3cr3t');
  });

  it('secret-get-value never prints a value: it says why, and what to do', async () => {
    const api = secretsApi();
    api.secretValues.set(ISCSI, Buffer.from('hunter2'));
    const r = await run(api, ['secret-get-value', ISCSI]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('\n');
    expect(r.stderr).to.equal(
      `error: failed to get the value of secret '${ISCSI}'\n` +
        `error: Cistern never gives a secret's value back (docs/security.md, "Secrets"); secret ${ISCSI} has a value: replace it with secret-set-value\n`,
    );
  });

  it('secret-undefine deletes and says so; the secret is gone', async () => {
    const api = secretsApi();
    expect(await run(api, ['secret-undefine', VOLUME])).to.deep.equal({ code: 0, stdout: `Secret ${VOLUME} deleted\n\n`, stderr: '' });
    expect(api.secrets.map((s) => s.uuid)).to.not.include(VOLUME);
    expect((await run(api, ['secret-undefine', VOLUME])).stderr).to.match(new RegExp(`^error: failed to get secret '${VOLUME}'\n`));
  });

  it('help lists the Secret group as virsh does', async () => {
    const r = await run(new FakeApi(['a']), ['help', 'secret']);
    expect(r.stdout).to.equal(
      " Secret (help keyword 'secret'):\n" +
        '    secret-define                  define or modify a secret from an XML file\n' +
        '    secret-dumpxml                 secret attributes in XML\n' +
        '    secret-get-value               Output a secret value\n' +
        '    secret-list                    list secrets\n' +
        '    secret-set-value               set a secret value\n' +
        '    secret-undefine                undefine a secret\n' +
        '\n',
    );
  });
});
