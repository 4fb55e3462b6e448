// Property-based attacks on every input surface (fast-check). Each property takes a run
// count: `npm run fuzz` runs them with >= 100,000 cases in total, the normal suite with a
// small sample (test/integration/security-fuzz-sample.test.ts).
//   validators: names, paths, sizes, hosts, request ids, resource names, secret
//               definitions and XML, tokens, raw protobuf request bytes
//   agent:      operations on a real dir pool (in-process agent, real filesystem, recorded
//               argv) with hostile names and sizes, next to symlinks that leave the pool
//   cli:        cisternctl argument vectors against a fake API
// Invariants: no crash (only typed refusals), no hang (mocha's timeout), no file created or
// changed outside the pool, every refusal of malformed input INVALID_ARGUMENT, every
// external command gets `--` before its positional arguments.
import fc from 'fast-check';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { checkAbsolutePath, checkHostId, checkObjectName, checkSize, MAX_SIZE } from '../../libs/api/names.js';
import { parsePoolName, parseVolumeName } from '../../libs/api/resource-names.js';
import { CisternError, asCisternError } from '../../libs/errors/errors.js';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import {
  CloneVolumeRequest,
  CreateVolumeRequest,
  DefinePoolRequest,
  DefineSecretRequest,
  PoolDefinition,
  PoolType,
  ResizeVolumeRequest,
  Secret,
  VolumeDefinition,
  WipeAlgorithm,
} from '../../libs/proto/cistern/v1/storage.js';
import { RecordingRunner } from '../../libs/backends/recording-runner.js';
import '../../libs/backends/index.js';
import { dispatch } from '../../services/agent/agent.js';
import { checkRequestId, checkWipeAlgorithm, poolDefinitionFrom, requirePoolName, requireVolumeName, volumeDefinitionFrom } from '../../services/coordinator/validate.js';
import { checkSecretDefinition, parseSecretName } from '../../services/coordinator/secrets/store.js';
import { parseSecretXml } from '../../libs/xml/secret.js';
import { bearerToken, TokenTable } from '../../services/coordinator/auth/tokens.js';
import { runCli } from '../../cli/run.js';
import type { StorageApi } from '../../cli/api.js';
import { inProcessAgent } from '../support/agent-context.js';

const CONTROL = /[\x00-\x1f\x7f]/;
/** A secret's description keeps tabs and line feeds, as libvirt's does; no other control character. */
const DESCRIPTION_CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

/** What libs/api/names.ts promises a valid object name is. */
export function nameIsValid(name: string): boolean {
  return existingVolumeNameIsValid(name) && !name.startsWith('-');
}

/** What a volume already there may be named (checkExistingVolumeName): a leading '-' too. */
export function existingVolumeNameIsValid(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.includes('/') && name !== '.' && name !== '..' && !CONTROL.test(name);
}

/** Hostile strings: path tricks, options, control characters, unicode, long ones, plus arbitrary text. */
export const hostileName = (): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constantFrom('..', '.', '-rf', '--help', '-o', 'link-out', 'linkdir', 'a/b', '../outside/victim', '/etc/passwd', '', ' ', 'ok', 'x\0y', 'a\nb', 'é', '*', '$(id)', '`id`', 'a;b', 'a,b', 'a=b', '~', 'x'.repeat(256)),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.string({ unit: fc.constantFrom('.', '/', '-', 'a', '\0', '\n', ',', ' ', '\\'), maxLength: 12 }),
    fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/),
  );

const hostileSize = (): fc.Arbitrary<bigint> =>
  fc.oneof(
    fc.bigInt({ min: 0n, max: 4n * 1024n * 1024n }),
    fc.bigInt({ min: -(1n << 70n), max: -1n }),
    fc.bigInt({ min: MAX_SIZE + 1n, max: 1n << 70n }),
    fc.constantFrom(0n, 1n, 511n, 512n, MAX_SIZE + 1n, -1n),
  );

function expectInvalidArgument(err: unknown, what: string): void {
  if (!(err instanceof CisternError) || err.code !== 'INVALID_ARGUMENT') {
    throw new Error(`${what}: expected INVALID_ARGUMENT, got ${err instanceof CisternError ? err.code : String((err as Error)?.stack ?? err)}`);
  }
}

/** Runs fn; returns its value or the INVALID_ARGUMENT it threw (anything else fails the property). */
function refusedOr<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    expectInvalidArgument(err, what);
    return undefined;
  }
}

async function refusedOrAsync<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    expectInvalidArgument(err, what);
    return undefined;
  }
}

// ------------------------------------------------------------------------ validators
export async function fuzzValidators(numRuns: number): Promise<void> {
  const share = Math.max(1, Math.floor(numRuns / 6));
  fc.assert(
    fc.property(hostileName(), (name) => {
      const ok = refusedOr('checkObjectName', () => (checkObjectName(name, 'name'), true)) ?? false;
      if (ok !== nameIsValid(name)) throw new Error(`checkObjectName(${JSON.stringify(name)}) = ${ok}`);
      const host = refusedOr('checkHostId', () => checkHostId(name));
      if (host !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(host)) throw new Error(`host ${JSON.stringify(host)} accepted`);
      const rid = refusedOr('checkRequestId', () => (checkRequestId(name), true));
      if (rid && name && !/^[A-Za-z0-9._:-]{1,128}$/.test(name)) throw new Error(`request id ${JSON.stringify(name)} accepted`);
      for (const value of [`hosts/h/pools/${name}`, `hosts/${name}/pools/p/volumes/v`, `hosts/h/pools/p/volumes/${name}`, name]) {
        const pool = refusedOr('parsePoolName', () => parsePoolName(value));
        if (pool && !nameIsValid(pool.pool)) throw new Error(`pool name ${JSON.stringify(pool.pool)} accepted`);
        const vol = refusedOr('parseVolumeName', () => parseVolumeName(value));
        if (vol && (!existingVolumeNameIsValid(vol.volume) || !nameIsValid(vol.pool))) throw new Error(`volume name ${JSON.stringify(vol.volume)} accepted`);
      }
      const secretName = refusedOr('parseSecretName', () => parseSecretName(name));
      if (secretName && !/^[0-9a-f-]{36}$/.test(secretName)) throw new Error(`secret name ${secretName} accepted`);
      const tok = bearerToken(`Bearer ${name}`);
      if (tok !== undefined && /[\s\x00-\x1f]/.test(tok)) throw new Error('token with whitespace accepted');
    }),
    { numRuns: share },
  );
  fc.assert(
    fc.property(fc.oneof(hostileName(), hostileName().map((n) => `/${n}`), fc.constantFrom('/a/../b', '/a/./b', '//x', '/x/', '/')), (path) => {
      const normal = refusedOr('checkAbsolutePath', () => checkAbsolutePath(path, 'path'));
      if (normal !== undefined && (!normal.startsWith('/') || normal.split('/').includes('..') || CONTROL.test(normal))) {
        throw new Error(`path ${JSON.stringify(path)} -> ${normal}`);
      }
    }),
    { numRuns: share },
  );
  fc.assert(
    fc.property(hostileSize(), (size) => {
      const ok = refusedOr('checkSize', () => checkSize(size, 'size'));
      if ((ok !== undefined) !== (size >= 0n && size <= MAX_SIZE)) throw new Error(`checkSize(${size})`);
    }),
    { numRuns: share },
  );
  const dirPool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/p' } });
  await fc.assert(
    fc.asyncProperty(
      hostileName(),
      hostileSize(),
      fc.option(hostileSize(), { nil: undefined }),
      fc.constantFrom('raw', 'qcow2', 'iso', 'vmdk', '', 'bogus', '-o', 'raw,x'),
      fc.option(hostileName(), { nil: undefined }),
      async (name, capacity, allocation, format, backing) => {
        const def = VolumeDefinition.fromPartial({ name, capacity, allocation, target: { format }, ...(backing !== undefined ? { backingStore: { path: backing } } : {}) });
        const v = await refusedOrAsync('volumeDefinitionFrom', () => volumeDefinitionFrom(def, '', dirPool));
        if (v && (!nameIsValid(v.name) || (v.capacity !== undefined && (v.capacity < 0n || v.capacity > MAX_SIZE)))) {
          throw new Error(`volume ${JSON.stringify(v.name)} capacity ${v.capacity} accepted`);
        }
        const xml = `<volume><name>${name.replace(/[<&]/g, '')}</name><capacity>${capacity}</capacity></volume>`;
        const vx = await refusedOrAsync('volume xml', () => volumeDefinitionFrom(undefined, xml, dirPool));
        if (vx && !nameIsValid(vx.name)) throw new Error(`volume xml name ${JSON.stringify(vx.name)} accepted`);
        const pd = await refusedOrAsync('poolDefinitionFrom', () =>
          poolDefinitionFrom(PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path: backing ?? '/srv/x' } }), ''),
        );
        if (pd && (!nameIsValid(pd.name) || !pd.target?.path.startsWith('/'))) throw new Error(`pool ${JSON.stringify(pd.name)} accepted`);
      },
    ),
    { numRuns: share },
  );
  fc.assert(
    fc.property(hostileName(), hostileName(), fc.integer({ min: -1, max: 5 }), fc.string({ maxLength: 30 }), (uuid, usage, usageType, text) => {
      const s = refusedOr('checkSecretDefinition', () => checkSecretDefinition(Secret.fromPartial({ uuid, usageId: usage, usageType, description: text })));
      if (s && (!/^[0-9a-f-]{36}$/.test(s.uuid) || CONTROL.test(s.usageId) || DESCRIPTION_CONTROL.test(s.description))) throw new Error('bad secret accepted');
      refusedOr('parseSecretXml', () => parseSecretXml(`<secret ephemeral='${text.replace(/'/g, '')}'><uuid>${uuid.replace(/[<&]/g, '')}</uuid><usage type='${usage.replace(/['<&]/g, '')}'><target>${text.replace(/[<&]/g, '')}</target></usage></secret>`));
      refusedOr('TokenTable.parse', () => TokenTable.parse(`{"tokens":[{"principal":${JSON.stringify(uuid)},"role":${JSON.stringify(usage)},"token":${JSON.stringify(text)}}]}`));
    }),
    { numRuns: share },
  );
  // raw bytes as request messages: decoding may fail (the coordinator answers INVALID_ARGUMENT
  // for undecodable bytes before any handler, strict-decode.ts); what decodes is checked like
  // any request
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => {
      let req: CreateVolumeRequest | undefined;
      try {
        req = CreateVolumeRequest.decode(bytes);
      } catch {
        return;
      }
      await refusedOrAsync('decoded CreateVolume', async () => {
        requirePoolName(req!.parent, 'parent');
        return volumeDefinitionFrom(req!.definition, req!.xml, dirPool);
      });
      for (const decode of [DefinePoolRequest.decode, CloneVolumeRequest.decode, ResizeVolumeRequest.decode, DefineSecretRequest.decode]) {
        try {
          decode(bytes);
        } catch {
          /* undecodable is fine */
        }
      }
    }),
    { numRuns: share },
  );
}

// ------------------------------------------------------------------------ agent + dir backend
const ALLOWED_AGENT_CODES = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'RESOURCE_EXHAUSTED', 'PERMISSION_DENIED', 'UNIMPLEMENTED', 'ABORTED', 'OUT_OF_RANGE']);

function listTree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = `${prefix}${e.name}`;
    out.push(rel);
    if (e.isDirectory() && !e.isSymbolicLink()) out.push(...listTree(join(dir, e.name), `${rel}/`));
  }
  return out.sort();
}

export interface Sandbox {
  root: string;
  pool: string;
  outside: string;
  victim: string;
  remove(): void;
}

/** sandbox/{pool,outside}: pool/link-out -> ../outside/victim, pool/linkdir -> ../outside. */
export function makeSandbox(base: string): Sandbox {
  const root = join(base, `fuzz-${process.pid}-${Date.now()}`);
  const pool = join(root, 'pool');
  const outside = join(root, 'outside');
  mkdirSync(pool, { recursive: true });
  mkdirSync(outside, { recursive: true });
  const victim = join(outside, 'victim');
  writeFileSync(victim, 'VICTIM-CONTENT');
  symlinkSync('../outside/victim', join(pool, 'link-out'));
  symlinkSync('../outside', join(pool, 'linkdir'));
  return { root, pool, outside, victim, remove: () => rmSync(root, { recursive: true, force: true }) };
}

function resetPool(sb: Sandbox): void {
  for (const e of readdirSync(sb.pool)) if (e !== 'link-out' && e !== 'linkdir') rmSync(join(sb.pool, e), { recursive: true, force: true });
}

type OpCase =
  | { op: 'create'; name: string; capacity: bigint; allocation?: bigint; format: string }
  | { op: 'delete' | 'wipe'; name: string; algorithm: number }
  | { op: 'resize'; name: string; capacity: bigint; allocate: boolean; delta: boolean; shrink: boolean }
  | { op: 'clone'; name: string; source: string; format: string };

const opCase = (): fc.Arbitrary<OpCase> =>
  fc.oneof(
    fc.record({ op: fc.constant('create' as const), name: hostileName(), capacity: hostileSize(), allocation: fc.option(fc.bigInt({ min: -5n, max: 1n << 20n }), { nil: undefined }), format: fc.constantFrom('raw', 'qcow2', '', 'bogus', 'iso') }),
    fc.record({ op: fc.constantFrom('delete' as const, 'wipe' as const), name: hostileName(), algorithm: fc.integer({ min: -1, max: 12 }) }),
    fc.record({ op: fc.constant('resize' as const), name: hostileName(), capacity: hostileSize(), allocate: fc.boolean(), delta: fc.boolean(), shrink: fc.boolean() }),
    fc.record({ op: fc.constant('clone' as const), name: hostileName(), source: hostileName(), format: fc.constantFrom('raw', 'qcow2', '') }),
  );

function agentRequest(pool: PoolDefinition, c: OpCase): AgentRequest {
  const vol = (n: string) => `hosts/h/pools/p/volumes/${n}`;
  const base = { principal: 'fuzz', requestId: '', pool, persistent: true, autostart: false };
  switch (c.op) {
    case 'create':
      return AgentRequest.fromPartial({ ...base, op: { $case: 'createVolume', value: { parent: 'hosts/h/pools/p', definition: VolumeDefinition.fromPartial({ name: c.name, capacity: c.capacity, allocation: c.allocation ?? 0n, target: { format: c.format } }), xml: '' } } });
    case 'delete':
      return AgentRequest.fromPartial({ ...base, op: { $case: 'deleteVolume', value: { name: vol(c.name) } } });
    case 'wipe':
      return AgentRequest.fromPartial({ ...base, op: { $case: 'wipeVolume', value: { name: vol(c.name), algorithm: c.algorithm as WipeAlgorithm } } });
    case 'resize':
      return AgentRequest.fromPartial({ ...base, op: { $case: 'resizeVolume', value: { name: vol(c.name), capacity: c.capacity, allocate: c.allocate, delta: c.delta, shrink: c.shrink } } });
    case 'clone':
      return AgentRequest.fromPartial({ ...base, sourcePool: pool, op: { $case: 'cloneVolume', value: { parent: 'hosts/h/pools/p', source: vol(c.source), definition: VolumeDefinition.fromPartial({ name: c.name, capacity: 1024n, target: { format: c.format } }), xml: '' } } });
  }
}

/** What the coordinator's handlers check before forwarding (services/coordinator/handlers/volumes.ts). */
async function coordinatorChecks(pool: PoolDefinition, c: OpCase): Promise<true> {
  const req = agentRequest(pool, c).op!;
  switch (req.$case) {
    case 'createVolume':
      requirePoolName(req.value.parent, 'parent');
      await volumeDefinitionFrom(req.value.definition, '', pool);
      break;
    case 'cloneVolume':
      requirePoolName(req.value.parent, 'parent');
      requireVolumeName(req.value.source, 'source');
      await volumeDefinitionFrom(req.value.definition, '', pool, { cloning: true });
      break;
    case 'deleteVolume':
      requireVolumeName(req.value.name);
      break;
    case 'wipeVolume':
      requireVolumeName(req.value.name);
      checkWipeAlgorithm(req.value.algorithm);
      break;
    case 'resizeVolume':
      requireVolumeName(req.value.name);
      checkSize(req.value.capacity, 'capacity');
      break;
    default:
      break;
  }
  return true;
}

export async function fuzzAgentDirPool(numRuns: number, base: string): Promise<void> {
  const sb = makeSandbox(base);
  const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: sb.pool } });
  const outsideBefore = listTree(sb.outside);
  const rootBefore = readdirSync(sb.root).sort();
  const runner = new RecordingRunner();
  const { ctx } = inProcessAgent({ runner });
  try {
    await dispatch(ctx, 'startPool', AgentRequest.fromPartial({ principal: 'fuzz', pool, op: { $case: 'startPool', value: { name: 'hosts/h/pools/p' } } }));
    // a volume that exists, so clone/wipe/resize/delete have a real target too
    await fc.assert(
      fc.asyncProperty(opCase(), async (c) => {
        resetPool(sb);
        writeFileSync(join(sb.pool, 'ok'), Buffer.alloc(4096));
        await dispatch(ctx, 'refreshPool', AgentRequest.fromPartial({ principal: 'fuzz', pool, op: { $case: 'refreshPool', value: { name: 'hosts/h/pools/p' } } }));
        runner.calls.length = 0;
        // the coordinator's checks run first on the real path: malformed input stops there
        // a new volume's name (create, clone) is held to the full rule; one that may exist already
        // (delete, wipe, resize, a clone's source) may start with '-', as a refresh lists it
        const badName =
          c.op === 'create' || c.op === 'clone' ? !nameIsValid(c.name) || (c.op === 'clone' && !existingVolumeNameIsValid(c.source)) : !existingVolumeNameIsValid(c.name);
        const badSize = (c.op === 'create' || c.op === 'resize') && (c.capacity < 0n || c.capacity > MAX_SIZE);
        const checked = await refusedOrAsync(`coordinator checks of ${c.op}`, () => coordinatorChecks(pool, c));
        if ((badName || badSize) && checked !== undefined) throw new Error(`malformed ${c.op} ${JSON.stringify(c.name)} passed the coordinator's checks`);
        // and the agent (defence in depth) gets the request anyway
        const request = agentRequest(pool, c);
        let code = 'OK';
        try {
          await dispatch(ctx, request.op!.$case, request);
        } catch (err) {
          if (!(err instanceof CisternError)) throw new Error(`untyped failure for ${JSON.stringify(c, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}: ${(err as Error)?.stack ?? err}`);
          code = asCisternError(err).code;
          if (!ALLOWED_AGENT_CODES.has(code)) throw new Error(`${code} for ${c.op} ${JSON.stringify(c.name)}: ${(err as Error).message}`);
        }
        if (badName && code !== 'INVALID_ARGUMENT') {
          throw new Error(`the agent answered a malformed ${c.op} ${JSON.stringify(c.name)} with ${code}, expected INVALID_ARGUMENT`);
        }
        // nothing outside the pool was created or changed
        if (readFileSync(sb.victim, 'utf8') !== 'VICTIM-CONTENT') throw new Error(`${c.op} ${JSON.stringify(c.name)} wrote through a link out of the pool`);
        if (JSON.stringify(listTree(sb.outside)) !== JSON.stringify(outsideBefore)) throw new Error(`${c.op} ${JSON.stringify(c.name)} created something outside the pool`);
        if (JSON.stringify(readdirSync(sb.root).sort()) !== JSON.stringify(rootBefore)) throw new Error(`${c.op} created something beside the pool`);
        if (c.op !== 'delete') {
          let link = false;
          try {
            link = lstatSync(join(sb.pool, 'link-out')).isSymbolicLink();
          } catch {
            /* gone */
          }
          if (!link) throw new Error(`${c.op} ${JSON.stringify(c.name)} removed or replaced the link in the pool`);
        }
        // every command: argv array, `--` before positionals
        for (const argv of runner.argvs) {
          if (!argv.includes('--')) throw new Error(`no '--' in ${JSON.stringify(argv)}`);
        }
        // put the links back if a delete removed one (deleting a link is allowed: the target stays)
        for (const [link, to] of [['link-out', '../outside/victim'], ['linkdir', '../outside']] as const) {
          try {
            lstatSync(join(sb.pool, link));
          } catch {
            symlinkSync(to, join(sb.pool, link));
          }
        }
      }),
      { numRuns },
    );
  } finally {
    sb.remove();
  }
}

// ------------------------------------------------------------------------ cli
class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (this.text.length < 100_000) this.text += chunk.toString();
    cb();
  }
}

/** A fake API: reads answer empty lists, everything else NOT_FOUND; every request is recorded. */
function fakeApi(requests: unknown[]): StorageApi {
  return new Proxy({} as StorageApi, {
    get(_t, prop) {
      if (prop === 'then') return undefined;
      return (req: unknown) => {
        requests.push(req);
        const name = String(prop);
        if (name.startsWith('list')) return Promise.resolve({ hosts: [], pools: [], volumes: [], secrets: [], nextPageToken: '' });
        if (name === 'close') return undefined;
        const { NotFoundError } = CisternErrorCtor;
        return Promise.reject(new NotFoundError('not found'));
      };
    },
  });
}
const CisternErrorCtor = { NotFoundError: class extends CisternError { readonly code = 'NOT_FOUND' as const; } };

const COMMAND_WORDS = ['pool-list', 'pool-info', 'pool-define-as', 'pool-create-as', 'pool-start', 'pool-destroy', 'pool-delete', 'pool-undefine', 'pool-refresh', 'pool-dumpxml', 'vol-create-as', 'vol-delete', 'vol-wipe', 'vol-resize', 'vol-clone', 'vol-info', 'vol-list', 'vol-upload', 'vol-download', 'vol-dumpxml', 'host-list', 'help', 'secret-list'];

export async function fuzzCli(numRuns: number, base: string): Promise<void> {
  // the CLI runs in an empty directory of its own: a file it writes shows up there
  const cwd = join(base, `fuzz-cli-${process.pid}-${Date.now()}`);
  mkdirSync(cwd, { recursive: true });
  const previous = process.cwd();
  process.chdir(cwd);
  const before = readdirSync(cwd).sort();
  try {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...COMMAND_WORDS),
      fc.array(fc.oneof(hostileName(), fc.constantFrom('--format', '--pool', '--all', '--details', '--', '-', '--server', '--token', '1G', '-1', '99999999999999999999E', '+5M', '--offset', '--length', '--xml')), { maxLength: 8 }),
      async (command, args) => {
        const stdout = new Sink();
        const stderr = new Sink();
        const requests: unknown[] = [];
        const code = await runCli([command, ...args], { stdout, stderr, env: {}, api: fakeApi(requests) });
        if (![0, 1, 2].includes(code)) throw new Error(`exit ${code} for ${JSON.stringify([command, ...args])}`);
        if (code !== 0 && !stderr.text.trim()) throw new Error(`exit ${code} without a message for ${JSON.stringify([command, ...args])}`);
      },
    ),
    { numRuns },
  );
  const after = readdirSync(cwd).sort();
  if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`the CLI created files: ${after.filter((f) => !before.includes(f)).join(', ')}`);
  } finally {
    process.chdir(previous);
    rmSync(cwd, { recursive: true, force: true });
  }
}
