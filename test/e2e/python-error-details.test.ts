// Errors as a Python client reads them (grpcio, C-core): the google.rpc.Status in
// `grpc-status-details-bin` with its ErrorInfo and BadRequest, checked the way
// grpc_status.rpc_status.from_call checks it, and an INTERNAL error whose command printed far
// more than a C-core client accepts in trailers (8 KiB) still arriving as itself.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, repoRoot, useStack } from '../support/index.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLIENT = join(repoRoot, 'test', 'e2e', 'python', 'error_details.py');
const LONG_STDERR_BYTES = 40_000;

type Step = { step: string; code?: string; message?: string; trailer_keys?: string[]; details?: Record<string, unknown>[] | null };

/** A qemu-img that fails every create with a long stderr and runs the real one otherwise. */
function fakeQemuImg(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const script = join(bin, 'qemu-img');
  writeFileSync(
    script,
    `#!/bin/sh\nif [ "$1" = create ]; then\n  printf '%*s' ${LONG_STDERR_BYTES} '' | tr ' ' e >&2\n  exit 1\nfi\nexec /usr/bin/qemu-img "$@"\n`,
  );
  chmodSync(script, 0o755);
  return bin;
}

describe('Python client reading error details (google.rpc.Status)', function () {
  this.timeout(120_000);
  let stubs: string;
  // filled in before the stack starts (the hooks run in this order), so nothing is made
  // when no test of this file runs
  const env: NodeJS.ProcessEnv = { ...process.env };
  before(function () {
    const scratch = makeTempDir('cistern-pyerr-');
    env.PATH = `${fakeQemuImg(scratch.path)}:${process.env.PATH ?? '/usr/bin:/bin'}`;
    stubs = join(scratch.path, 'stubs');
  });
  const ctx = useStack({ hosts: ['a'], env });
  const steps = new Map<string, Step>();

  before(async function () {
    mkdirSync(stubs);
    await run('/usr/bin/protoc', [
      '-I', join(repoRoot, 'proto'), '-I', join(repoRoot, 'test', 'e2e', 'python', 'rpc-protos'), '-I', '/usr/include',
      `--python_out=${stubs}`, `--grpc_out=${stubs}`, '--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin',
      join(repoRoot, 'proto', 'cistern', 'v1', 'storage.proto'),
      join(repoRoot, 'test', 'e2e', 'python', 'rpc-protos', 'google', 'rpc', 'status.proto'),
    ]);
    const target = join(ctx.stack.roots['a']!, 'pools', 'errs');
    let stdout: string;
    try {
      ({ stdout } = await run(PYTHON, [CLIENT, '--stubs', stubs, '--server', ctx.stack.address, '--host', 'a', '--pool', 'errs', '--target', target], {
        timeout: 120_000,
        env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      }));
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`error_details.py exited with ${e.code}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}`);
    }
    for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) {
      const parsed = JSON.parse(line) as Step;
      steps.set(parsed.step, parsed);
    }
  });

  function step(name: string): Step {
    const s = steps.get(name);
    expect(s, `no "${name}" step in ${JSON.stringify([...steps.values()])}`).to.not.equal(undefined);
    return s!;
  }

  it('an invalid name: ErrorInfo with Cistern\'s reason and a BadRequest naming the field', function () {
    const s = step('bad-name');
    expect(s.code).to.equal('INVALID_ARGUMENT');
    expect(s.message).to.match(/^definition\.name: /);
    expect(s.details).to.deep.equal([
      { type: 'ErrorInfo', reason: 'INVALID_ARGUMENT', domain: 'cistern.v1', metadata: { field: 'definition.name' } },
      { type: 'BadRequest', violations: [{ field: 'definition.name', description: s.message!.replace(/^definition\.name: /, '') }] },
    ]);
    expect(existsSync(join(ctx.stack.roots['a']!, 'pools', 'x'))).to.equal(false);
  });

  it('an unknown pool: NOT_FOUND with an ErrorInfo only', function () {
    const s = step('unknown-pool');
    expect(s.code).to.equal('NOT_FOUND');
    expect(s.details).to.have.length(1);
    expect(s.details![0]).to.include({ type: 'ErrorInfo', reason: 'NOT_FOUND', domain: 'cistern.v1' });
  });

  it('an existing volume: ALREADY_EXISTS whose ErrorInfo names the host, pool and volume', function () {
    const s = step('exists');
    expect(s.code).to.equal('ALREADY_EXISTS');
    expect(s.details).to.deep.equal([
      { type: 'ErrorInfo', reason: 'ALREADY_EXISTS', domain: 'cistern.v1', metadata: { host: 'a', pool: 'errs', volume: 'v1' } },
    ]);
  });

  it('a pool document with the wrong root element: BadRequest on the field xml', function () {
    const s = step('xml-wrong-root');
    expect(s.code).to.equal('INVALID_ARGUMENT');
    expect(s.message).to.equal('xml: unexpected root element <volume>, expecting <pool>');
    expect(s.details).to.deep.equal([
      { type: 'ErrorInfo', reason: 'INVALID_ARGUMENT', domain: 'cistern.v1', metadata: { field: 'xml' } },
      { type: 'BadRequest', violations: [{ field: 'xml', description: 'unexpected root element <volume>, expecting <pool>' }] },
    ]);
  });

  it("a bad value inside the document: field xml, the element and line in the message and details", function () {
    const s = step('xml-bad-type');
    expect(s.code).to.equal('INVALID_ARGUMENT');
    expect(s.message).to.match(/^xml: pool\/@type: unsupported pool type 'zzz'/);
    const info = s.details![0] as { metadata: Record<string, string> };
    expect(info.metadata).to.deep.equal({ field: 'xml', line: '1' });
    expect(s.details![1]).to.deep.include({ type: 'BadRequest' });
    expect((s.details![1] as { violations: Array<{ field: string }> }).violations[0]!.field).to.equal('xml');
  });

  /** The step's one field violation, checked against its ErrorInfo's field and the message. */
  function violation(s: Step): { field: string; description: string } {
    expect(s.code, s.message).to.equal('INVALID_ARGUMENT');
    const info = s.details![0] as { metadata: Record<string, string> };
    const bad = (s.details![1] as { violations: Array<{ field: string; description: string }> }).violations;
    expect(bad).to.have.length(1);
    expect(info.metadata['field']).to.equal(bad[0]!.field);
    expect(s.message).to.equal(`${bad[0]!.field}: ${bad[0]!.description}`);
    return bad[0]!;
  }

  it("a CreatePool definition the agent refuses: the field under definition, as the .proto names it", function () {
    const v = violation(step('create-pool-two-hosts'));
    expect(v.field).to.equal('definition.source.hosts');
    expect(v.description).to.match(/exactly one source host.*it has 2/);
    expect(existsSync(`${join(ctx.stack.roots['a']!, 'pools', 'errs')}-nf`)).to.equal(false);
  });

  it('a CreatePool document the agent refuses: the field xml, the element in the message', function () {
    const v = violation(step('create-pool-xml-two-hosts'));
    expect(v.field).to.equal('xml');
    expect(v.description).to.match(/^source\.hosts: .*exactly one source host.*it has 2/);
  });

  it('a FindPoolSources hint without its host: source.hosts, the field sent', function () {
    const v = violation(step('find-sources-no-host'));
    expect(v.field).to.equal('source.hosts');
    expect(v.description).to.match(/exactly one host.*got 0/);
  });

  it('a FindPoolSources source_xml without its host: the field source_xml', function () {
    const v = violation(step('find-sources-xml-no-host'));
    expect(v.field).to.equal('source_xml');
    expect(v.description).to.match(/^source\.hosts: .*exactly one host.*got 0/);
  });

  it('a raw volume larger than the agent can give a file (2^53 + 1): definition.capacity, nothing left behind', function () {
    const v = violation(step('raw-too-large'));
    expect(v.field).to.equal('definition.capacity');
    // Node's file calls stop at 2^53 - 1, below xfs's or tmpfs's own limit: said so, not blamed on the filesystem
    expect(v.description).to.match(/larger than the agent can give a file \(at most 9007199254740991 bytes, 8 PiB - 1\)/);
    expect(existsSync(join(ctx.stack.roots['a']!, 'pools', 'errs', 'huge'))).to.equal(false);
  });

  it('the same size in a document: the field xml, capacity in the message', function () {
    const v = violation(step('raw-too-large-xml'));
    expect(v.field).to.equal('xml');
    expect(v.description).to.match(/^capacity: .*larger than the agent can give a file/);
  });

  it('an upload message with its part oneof unset: INVALID_ARGUMENT naming data, not "a header"', function () {
    const s = step('upload-unset-part');
    expect(s.code).to.equal('INVALID_ARGUMENT');
    expect(s.message).to.equal('data: is required in every message after the header (the part oneof was unset)');
    expect((s.details![1] as { violations: Array<{ field: string }> }).violations[0]!.field).to.equal('data');
  });

  it('a second upload header: INVALID_ARGUMENT naming header', function () {
    const s = step('upload-two-headers');
    expect(s.code).to.equal('INVALID_ARGUMENT');
    expect(s.message).to.equal('header: only the first message of an upload may be a header');
  });

  it(`a command failing with ${LONG_STDERR_BYTES} bytes of stderr arrives as INTERNAL, cut, not as a trailer-size error`, function () {
    const s = step('long-stderr');
    expect(s.code, s.message).to.equal('INTERNAL');
    expect(s.message).to.match(/^command failed: qemu-img create .* \(exit 1\): e+\u2026$/);
    expect(s.trailer_keys).to.include.members(['grpc-status-details-bin', 'x-cistern-error', 'x-cistern-exitcode', 'x-cistern-stderr']);
    const info = s.details![0] as { reason: string; metadata: Record<string, string> };
    expect(info.reason).to.equal('INTERNAL');
    expect(info.metadata['exitCode']).to.equal('1');
    expect(info.metadata['stderr']).to.match(/^e+\u2026$/);
    expect(existsSync(join(ctx.stack.roots['a']!, 'pools', 'errs', 'big'))).to.equal(false); // a failed create leaves nothing
  });
});
