// Server reflection as reflection clients (grpcurl, Python, Postman) use it: a Python client
// with only the reflection stubs (protoc + grpc_python_plugin from @grpc/reflection's
// reflection.proto) asks for StorageService, loads the answer into an empty descriptor pool,
// and calls ListHosts and ListPools through it (test/e2e/python/reflection_client.py). The
// served descriptors must be protoc's own: file names as in the import statements, their
// dependencies, snake_case field names, proto3 `optional` as proto3_optional.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTempDir, repoRoot, useStack } from '../support/index.js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const PROTOC = '/usr/bin/protoc';
const GRPC_PYTHON_PLUGIN = '/usr/bin/grpc_python_plugin';
const CLIENT = join(repoRoot, 'test', 'e2e', 'python', 'reflection_client.py');
const REFLECTION_PROTOS = join(repoRoot, 'node_modules', '@grpc', 'reflection', 'build', 'proto');

type Step = { step: string; [field: string]: unknown };

function step(steps: Map<string, Step>, name: string): Step {
  const s = steps.get(name);
  expect(s, `reflection_client.py printed no "${name}" step; it printed ${JSON.stringify([...steps.values()])}`).to.not.equal(undefined);
  return s!;
}

describe('server reflection, used by a Python client with no .proto of Cistern', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  let steps: Map<string, Step>;

  before(async function () {
    const dir = makeTempDir('cistern-pyrefl-').path;
    // two pools on host a, one running, for ListPools with `active` set to true and to false
    const { api } = ctx.stack;
    for (const name of ['refl-on', 'refl-off']) {
      const definition = PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: join(dir, name) } });
      await api.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false });
    }
    await api.startPool({ name: 'hosts/a/pools/refl-on', build: true, buildFlags: undefined, requestId: '' });
    // The reflection service's own stubs, as Python module reflection_v1 (under the name grpc/
    // they would hide behind the grpc package itself), and what protoc makes of storage.proto
    // to compare with.
    await run(PROTOC, [
      '-I', `reflection_v1=${join(REFLECTION_PROTOS, 'grpc', 'reflection', 'v1')}`,
      `--python_out=${dir}`,
      `--grpc_out=${dir}`,
      `--plugin=protoc-gen-grpc=${GRPC_PYTHON_PLUGIN}`,
      'reflection_v1/reflection.proto',
    ]);
    const protocSet = join(dir, 'storage.binpb');
    await run(PROTOC, [
      '-I', join(repoRoot, 'proto'),
      '-I', '/usr/include',
      '--include_imports',
      `--descriptor_set_out=${protocSet}`,
      join(repoRoot, 'proto', 'cistern', 'v1', 'storage.proto'),
    ]);
    const args = [CLIENT, '--stubs', dir, '--server', ctx.stack.address, '--protoc-set', protocSet, '--host', 'a'];
    let stdout: string;
    try {
      ({ stdout } = await run(PYTHON, args, { timeout: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }));
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`reflection_client.py exited with ${e.code}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}`);
    }
    steps = new Map();
    for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) {
      const parsed = JSON.parse(line) as Step;
      steps.set(parsed.step, parsed);
    }
  });

  it('lists StorageService, health checking and reflection itself', function () {
    expect(step(steps, 'list-services')).to.deep.equal({
      step: 'list-services',
      error: null,
      services: [
        'cistern.v1.StorageService',
        'grpc.health.v1.Health',
        'grpc.reflection.v1.ServerReflection',
        'grpc.reflection.v1alpha.ServerReflection',
      ],
    });
  });

  it('serves storage.proto under its own name, with its import, by symbol and by file name', function () {
    const files = [
      { name: 'cistern/v1/storage.proto', dependency: ['google/protobuf/any.proto', 'google/protobuf/duration.proto', 'google/protobuf/timestamp.proto'] },
      { name: 'google/protobuf/timestamp.proto', dependency: [] },
      { name: 'google/protobuf/duration.proto', dependency: [] },
      { name: 'google/protobuf/any.proto', dependency: [] },
    ];
    expect(step(steps, 'file-containing-symbol')).to.deep.equal({ step: 'file-containing-symbol', error: null, files });
    expect(step(steps, 'file-by-filename')).to.deep.equal({ step: 'file-by-filename', error: null, files });
  });

  it('serves the descriptors protoc makes, with the .proto comments', function () {
    expect(step(steps, 'as-protoc')).to.deep.equal({
      step: 'as-protoc',
      same: { 'cistern/v1/storage.proto': true, 'google/protobuf/any.proto': true, 'google/protobuf/duration.proto': true, 'google/protobuf/timestamp.proto': true },
      comments: true,
    });
  });

  it('builds a descriptor pool: snake_case fields, proto3 optional', function () {
    const pool = step(steps, 'pool');
    expect(pool['error'], `the descriptor pool refused the reflected files: ${String(pool['error'])}`).to.equal(null);
    expect(pool['methods']).to.be.greaterThan(30);
    expect(pool['host_fields']).to.deep.equal([
      'name', 'host_id', 'hostname', 'agent_version', 'pool_types', 'online', 'last_seen', 'pool_count', 'stale', 'stale_since', 'offline_reason',
    ]);
    expect(pool['active']).to.deep.equal({ has_presence: true, proto3_optional: true });
  });

  it('calls ListHosts and ListPools with the reflected descriptors only', function () {
    expect(step(steps, 'list-hosts')['hosts']).to.deep.equal([{ host_id: 'a', online: true, has_last_seen: true }]);
    expect(step(steps, 'list-pools-active')['pools']).to.include('hosts/a/pools/refl-on').and.not.include('hosts/a/pools/refl-off');
    expect(step(steps, 'list-pools-inactive')['pools']).to.deep.equal(['hosts/a/pools/refl-off']);
  });
});
