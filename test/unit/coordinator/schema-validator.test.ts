// The validate flag (libvirt's *_VALIDATE): XML checked by xmllint against libvirt's RELAX NG
// schemas. With the real xmllint and Debian's libvirt0 schemas where they are installed
// (scripts/setup.sh installs both), and with a recording runner for the exact command line.
import { expect } from 'chai';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RecordingRunner } from '../../../libs/backends/recording-runner.js';
import {
  CancelledError,
  CisternError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  ResourceExhaustedError,
  SchemaValidationError,
} from '../../../libs/errors/errors.js';
import { DEFAULT_SCHEMA_DIR, firstLines, SchemaValidator } from '../../../services/coordinator/schema-validator.js';
import { Slots } from '../../../services/coordinator/slots.js';
import { validateAgainstSchema } from '../../../services/coordinator/validate.js';
import { hasTool } from '../../support/tools.js';
import { fixture, fixtureNames } from '../xml/helpers.js';

async function failure(p: Promise<unknown>): Promise<CisternError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CisternError);
    return err as CisternError;
  }
  throw new Error('expected a failure');
}

const HAVE_TOOLS = hasTool('xmllint') && existsSync(join(DEFAULT_SCHEMA_DIR, 'storagepool.rng'));

describe('schema validation (validate flag)', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'cistern-schema-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  /** A directory with an executable named xmllint (never run: the runner records) and a schema dir. */
  function fakeTools(): { path: string; schemaDir: string } {
    const bin = join(scratch, 'bin');
    const schemaDir = join(scratch, 'schemas');
    for (const d of [bin, schemaDir]) mkdirSync(d);
    writeFileSync(join(bin, 'xmllint'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'xmllint'), 0o755);
    writeFileSync(join(schemaDir, 'storagepool.rng'), '<grammar/>');
    return { path: bin, schemaDir };
  }

  describe('with the real xmllint and libvirt schemas', function () {
    before(function () {
      if (!HAVE_TOOLS) this.skip(); // needs xmllint (libxml2-utils) and libvirt0's schemas: bash scripts/setup.sh
    });
    const validator = new SchemaValidator();

    it('accepts libvirt\'s own valid pool and volume documents', async () => {
      await validator.validate(fixture('storagepoolxml2xmlin', 'pool-dir.xml'), 'storagepool');
      for (const name of fixtureNames('storagevolschemadata')) {
        await validator.validate(fixture('storagevolschemadata', name), 'storagevol');
      }
    });

    it('refuses an invalid document: INVALID_ARGUMENT on xml, in libvirt\'s words, with xmllint\'s first lines', async () => {
      const err = await failure(validator.validate(fixture('storagepoolschemadata', 'dir-missing-target-path-invalid.xml'), 'storagepool'));
      expect(err).to.be.instanceOf(SchemaValidationError);
      expect(err.code).to.equal('INVALID_ARGUMENT');
      expect((err as InvalidArgumentError).field).to.equal('xml');
      expect(err.message).to.equal(
        `xml: XML document failed to validate against schema: Unable to validate doc against ${DEFAULT_SCHEMA_DIR}/storagepool.rng\n` +
        'line 5: Expecting an element path, got nothing\n' +
        'line 5: Invalid sequence in interleave\n' +
        'line 5: Element target failed to validate content\n' +
        'line 1: Invalid sequence in interleave\n' +
        'line 1: Element pool failed to validate content');
      expect(err.details.schema).to.equal(`${DEFAULT_SCHEMA_DIR}/storagepool.rng`);
    });

    it('refuses an element the schema does not know, and a pool document checked as a volume', async () => {
      const extra = "<pool type='dir'><name>p</name><target><path>/srv/p</path></target><bogus/></pool>";
      const err = await failure(validator.validate(extra, 'storagepool'));
      expect(err.message).to.contain('Element pool has extra content: bogus');
      expect(await failure(validator.validate(fixture('storagepoolxml2xmlin', 'pool-dir.xml'), 'storagevol'))).to.be.instanceOf(SchemaValidationError);
    });

    it('a schema that does not compile is the coordinator\'s problem: FAILED_PRECONDITION', async () => {
      const dir = join(scratch, 'broken');
      mkdirSync(dir);
      writeFileSync(join(dir, 'storagepool.rng'), 'not a schema');
      const err = await failure(new SchemaValidator({ schemaDir: dir }).validate('<pool/>', 'storagepool'));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.contain(`${dir}/storagepool.rng does not compile`);
    });
  });

  it('runs xmllint with a fixed argv, the document on stdin and a timeout', async () => {
    const { path, schemaDir } = fakeTools();
    const runner = new RecordingRunner({ strict: true }).on([join(path, 'xmllint')], { exitCode: 0 });
    const xml = "<pool type='dir'><name>a b; $(x)</name></pool>";
    await new SchemaValidator({ schemaDir, runner, path }).validate(xml, 'storagepool');
    expect(runner.argvs).to.deep.equal([[join(path, 'xmllint'), '--noout', '--nonet', '--nocatalogs', '--relaxng', join(schemaDir, 'storagepool.rng'), '-']]);
    expect(runner.calls[0]!.options.input).to.equal(xml);
    expect(runner.calls[0]!.options.timeoutMs).to.be.greaterThan(0);
    // none of the coordinator's environment reaches a tool reading a client's document
    expect(runner.calls[0]!.options.cleanEnv).to.equal(true);
  });

  it('a document over 256 KiB is refused before xmllint runs (the check is quadratic in elements)', async () => {
    const { path, schemaDir } = fakeTools();
    const runner = new RecordingRunner({ strict: true });
    const big = `<pool type='logical'><name>p</name><source>${'<device path="/a"/>'.repeat(14_000)}</source></pool>`;
    const err = await failure(new SchemaValidator({ schemaDir, runner, path }).validate(big, 'storagepool'));
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect(err.message).to.match(/^xml: a document to validate may have at most 262144 bytes/);
    expect(runner.calls).to.have.length(0);
  });

  it('xmllint out of time is RESOURCE_EXHAUSTED naming the document; not well-formed for libxml2 is a parse error', async () => {
    const { path, schemaDir } = fakeTools();
    const xmllint = join(path, 'xmllint');
    const slow = new RecordingRunner().on([xmllint], new DeadlineExceededError('command timed out after 5000 ms'));
    const err = await failure(new SchemaValidator({ schemaDir, runner: slow, path }).validate('<pool/>', 'storagepool'));
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect(err.message).to.match(/^xml: the document did not validate within 5 s/);
    const malformed = new RecordingRunner().on([xmllint], { exitCode: 1, stderr: "-:1: parser error : expected '>'\n" });
    const bad = await failure(new SchemaValidator({ schemaDir, runner: malformed, path }).validate('<pool/>', 'storagepool'));
    expect(bad).to.be.instanceOf(InvalidArgumentError).and.not.instanceOf(SchemaValidationError);
    expect(bad.message).to.equal("xml: malformed XML (libxml2): line 1: parser error : expected '>'");
  });

  it('runs no more xmllint at once than its concurrency: the next waits for a slot', async () => {
    const { path, schemaDir } = fakeTools();
    const release: Array<() => void> = [];
    const runner = new RecordingRunner().on([join(path, 'xmllint')], async () => {
      await new Promise<void>((r) => release.push(r));
      return { exitCode: 0 };
    });
    const validator = new SchemaValidator({ schemaDir, runner, path, concurrency: 1 });
    const first = validator.validate('<pool/>', 'storagepool');
    const second = validator.validate('<pool/>', 'storagepool');
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(ok(), what).to.equal(true);
    };
    await until('the first xmllint to start', () => runner.calls.length === 1);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(runner.calls, 'the second waits').to.have.length(1);
    release.shift()!();
    await until('the second xmllint to start', () => runner.calls.length === 2);
    release.shift()!();
    await Promise.all([first, second]);
  });

  it('Slots: at most `size` at once, `maxWaiting` more in line, the rest refused; a cancelled waiter leaves', async () => {
    const slots = new Slots(2, 3, 'XML validations');
    let running = 0;
    let most = 0;
    const gates: Array<() => void> = [];
    const task = (): Promise<void> => new Promise<void>((resolve) => {
      running++;
      most = Math.max(most, running);
      gates.push(() => {
        running--;
        resolve();
      });
    });
    const cancel = new AbortController();
    const runs = [slots.run(undefined, task), slots.run(undefined, task), slots.run(undefined, task), slots.run(cancel.signal, task), slots.run(undefined, task)];
    expect(running).to.equal(2);
    const refused = await failure(slots.run(undefined, task));
    expect(refused).to.be.instanceOf(ResourceExhaustedError);
    expect(refused.message).to.equal('2 XML validations are running and 3 waiting; retry later');
    cancel.abort();
    expect(await failure(runs[3]!)).to.be.instanceOf(CancelledError);
    // release one at a time: each freed slot goes to the next in line
    while (gates.length > 0) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all([runs[0], runs[1], runs[2], runs[4]]);
    expect(most).to.equal(2);
    // all slots free again: a new task runs at once
    void slots.run(undefined, task);
    expect(running).to.equal(1);
    gates.shift()!();
  });

  it('without xmllint: FAILED_PRECONDITION naming the package, and nothing run', async () => {
    const { schemaDir } = fakeTools();
    const runner = new RecordingRunner();
    for (const options of [{ path: join(scratch, 'empty-path') }, { xmllint: join(scratch, 'no', 'xmllint') }]) {
      const err = await failure(new SchemaValidator({ schemaDir, runner, ...options }).validate('<pool/>', 'storagepool'));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      expect(err.message).to.match(/xmllint is not installed on the coordinator's machine \(Debian package libxml2-utils\)/);
    }
    expect(runner.calls).to.have.length(0);
  });

  it('looks xmllint up on absolute PATH entries only: a relative one (.) is skipped', async () => {
    const { path, schemaDir } = fakeTools();
    const runner = new RecordingRunner();
    const before = process.cwd();
    process.chdir(path); // ./xmllint exists here
    try {
      const err = await failure(new SchemaValidator({ schemaDir, runner, path: '.' }).validate('<pool/>', 'storagepool'));
      expect(err).to.be.instanceOf(FailedPreconditionError);
      await new SchemaValidator({ schemaDir, runner, path: `.:${path}` }).validate('<pool/>', 'storagepool');
      expect(runner.argvs.map((a) => a[0])).to.deep.equal([join(path, 'xmllint')]);
    } finally {
      process.chdir(before);
    }
  });

  it('without the schema: FAILED_PRECONDITION naming the file and how to point at another directory', async () => {
    const { path } = fakeTools();
    const runner = new RecordingRunner();
    const err = await failure(new SchemaValidator({ schemaDir: join(scratch, 'none'), runner, path }).validate('<volume/>', 'storagevol'));
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect(err.message).to.contain(`${join(scratch, 'none', 'storagevol.rng')} is missing`);
    expect(err.message).to.contain('CISTERN_SCHEMA_DIR');
    expect(runner.calls).to.have.length(0);
  });

  it('keeps xmllint\'s report short: five lines, 500 characters, no control characters', () => {
    const many = Array.from({ length: 9 }, (_, i) => `-:${i + 1}: error ${i}\x1b[0m`).join('\n') + '\n- fails to validate\n';
    expect(firstLines(many)).to.equal('line 1: error 0[0m\nline 2: error 1[0m\nline 3: error 2[0m\nline 4: error 3[0m\nline 5: error 4[0m\n…');
    expect(firstLines(`-:1: ${'x'.repeat(2000)}`)).to.have.length(500);
  });

  describe('validateAgainstSchema (the request check)', () => {
    it('validate with a structured definition is INVALID_ARGUMENT on validate, and nothing runs', async () => {
      const runner = new RecordingRunner();
      const err = await failure(validateAgainstSchema(new SchemaValidator({ runner }), { validate: true, xml: '', definition: { name: 'p' } }, 'storagepool'));
      expect((err as InvalidArgumentError).field).to.equal('validate');
      expect(err.message).to.match(/^validate: applies to xml/);
      expect(runner.calls).to.have.length(0);
    });

    it('a DOCTYPE is refused by the hardened reader before xmllint sees the document, naming the field xml', async () => {
      const { path, schemaDir } = fakeTools();
      const runner = new RecordingRunner();
      const doc = '<!DOCTYPE pool [<!ENTITY x "y">]><pool type="dir"><name>&x;</name></pool>';
      const err = await failure(validateAgainstSchema(new SchemaValidator({ runner, path, schemaDir }), { validate: true, xml: doc }, 'storagepool'));
      expect(err.message).to.match(/DOCTYPE is not allowed/);
      // a document sent as text is one field, as without validate
      expect((err as InvalidArgumentError).field).to.equal('xml');
      const control = await failure(validateAgainstSchema(new SchemaValidator({ runner, path, schemaDir }), { validate: true, xml: "<volume><name>&#x1b;</name></volume>" }, 'storagevol'));
      expect((control as InvalidArgumentError).field).to.equal('xml');
      expect(control.message).to.match(/^xml: volume\/name: /);
      expect(runner.calls).to.have.length(0);
    });

    it('a document declared in another encoding (UTF-7 hiding a DOCTYPE from a UTF-8 reader) never reaches xmllint', async () => {
      const { path, schemaDir } = fakeTools();
      const runner = new RecordingRunner();
      const doc = '<?xml version="1.0" encoding="UTF-7"?><!-- +AC0ALQA+ADwAIQBEAE8AQwBUAFkAUABF- --><pool type="dir"><name>p</name><target><path>+ACYAZQA7-</path></target></pool>';
      const err = await failure(validateAgainstSchema(new SchemaValidator({ runner, path, schemaDir }), { validate: true, xml: doc }, 'storagepool'));
      expect(err.message).to.match(/names encoding 'UTF-7'/);
      expect(runner.calls).to.have.length(0);
    });

    it('without validate nothing is checked here', async () => {
      const runner = new RecordingRunner();
      await validateAgainstSchema(new SchemaValidator({ runner }), { validate: false, xml: '<not-a-pool/>' }, 'storagepool');
      expect(runner.calls).to.have.length(0);
    });
  });
});
