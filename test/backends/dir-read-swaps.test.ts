// Someone who can write in a dir pool's directory (the qemu user, say) swaps a name the agent
// has just checked as a clone source, a file of its backing chain or a new volume's backing
// store, for a link to a file outside the pools: at the moment the tool's command line is seen
// (test/support/swapping-runner.ts). The agent (driven in-process through its handlers, with
// the real tools) must read only what it checked: the new volume holds the checked bytes, never
// the outside file's, and qemu-img opens no file of the pool or outside it by name (strace).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../libs/backends/index.js';
import { AgentRequest, type AgentReply } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { dispatch } from '../../services/agent/agent.js';
import { inProcessAgent } from '../support/agent-context.js';
import { hasTool } from '../support/index.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';
import { SwappingRunner } from '../support/swapping-runner.js';

const SECRET = 'root:$y$j9T$not-a-real-hash:19000:0:99999:7:::\n'.repeat(64);
const MiB = 1024 * 1024;

describe('dir backend: a checked clone source, chain file or backing store swapped for a link out of the pools before the tool reads it', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  let root: string;
  let target: string;
  let outside: string;

  before(function () {
    if (!hasTool('qemu-img') || !hasTool('strace')) this.skip(); // skip reason: needs qemu-img (qemu-utils) and strace
  });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'cistern-read-swap-'));
    target = join(root, 'pool');
    mkdirSync(target);
    outside = join(root, 'shadow');
    writeFileSync(outside, SECRET, { mode: 0o640 });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** An agent with pool 'p' at `target` started (and the `others`: name -> target); its runner is `runner`. */
  const agentWith = async (runner: SwappingRunner, others: Record<string, string> = {}) => {
    const { ctx } = inProcessAgent({ runner });
    const callIn = (name: string, path: string) => {
      const pool = PoolDefinition.fromPartial({ name, type: PoolType.POOL_TYPE_DIR, target: { path } });
      const base = { principal: 't', pool, persistent: true };
      return (op: { $case: string; value: unknown }): Promise<AgentReply> =>
        dispatch(ctx, op.$case as NonNullable<AgentRequest['op']>['$case'], AgentRequest.fromPartial({ ...base, op } as Parameters<typeof AgentRequest.fromPartial>[0]));
    };
    for (const [name, path] of Object.entries(others)) await callIn(name, path)({ $case: 'startPool', value: { name: `hosts/h/pools/${name}` } });
    const call = callIn('p', target);
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p' } });
    return Object.assign(call, { in: callIn });
  };

  /** Moves `name` aside in the pool and puts a link to `to` (the outside file) in its place. */
  const swapForLink = (name: string, to = outside) => () => {
    renameSync(join(target, name), join(target, `${name}.aside`));
    symlinkSync(to, join(target, name));
  };

  /** The guest-visible bytes of an image, as qemu-img reads it (run before any swap, or on the result). */
  const contentOf = (path: string): Buffer => {
    const out = join(root, `content-${Math.random().toString(36).slice(2)}.raw`);
    execFileSync('qemu-img', ['convert', '-O', 'raw', '--', path, out]);
    try {
      return readFileSync(out);
    } finally {
      rmSync(out);
    }
  };

  /** Nothing but /dev/fd/N of the pool's or the outside files: qemu-img opened no name under the test's directory. */
  const expectOnlyDescriptorsOpened = (runner: SwappingRunner): void => {
    expect(runner.opened.length, 'strace recorded the opens').to.be.greaterThan(0);
    expect(runner.opened.filter((p) => p.startsWith(root))).to.deep.equal([]);
    expect(runner.opened.some((p) => /^\/dev\/fd\/\d+$/.test(p))).to.equal(true);
  };

  /** A chain in the pool: base.raw (data) <- mid.qcow2 (a cluster of its own) <- top.qcow2. */
  const makeChain = (): Buffer => {
    const data = Buffer.alloc(2 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    writeFileSync(join(target, 'base.raw'), data);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', 'base.raw', '--', join(target, 'mid.qcow2')]);
    execFileSync('qemu-io', ['-c', 'write -P 0x55 64k 64k', '--', join(target, 'mid.qcow2')], { stdio: 'pipe' });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', 'mid.qcow2', '--', join(target, 'top.qcow2')]);
    return contentOf(join(target, 'top.qcow2'));
  };

  const clone = (source: string, name: string, format: string, extra: { nocow?: boolean } = {}, into = 'p') => ({
    $case: 'cloneVolume',
    value: {
      parent: `hosts/h/pools/${into}`,
      source: `hosts/h/pools/p/volumes/${source}`,
      definition: VolumeDefinition.fromPartial({ name, target: { format, ...extra } }),
    },
  });

  for (const format of ['raw', 'qcow2']) {
    for (const swapped of ['top.qcow2', 'base.raw']) {
      it(`a clone of a qcow2 with a backing chain into ${format}, ${swapped} swapped: the checked chain is copied, and qemu-img opens no name`, async function () {
        if (!hasTool('qemu-io')) this.skip(); // skip reason: needs qemu-io (qemu-utils) to write into the middle image
        const expected = makeChain();
        // the source swapped: for an overlay of the outside file, made outside the pools
        const overlay = join(root, 'overlay.qcow2');
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', outside, '--', overlay]);
        const to = swapped === 'top.qcow2' ? overlay : outside;
        const runner = new SwappingRunner((argv) => argv[0] === 'qemu-img' && argv[1] === 'convert', swapForLink(swapped, to), { trace: true });
        const call = await agentWith(runner);
        await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p' } });
        await call(clone('top.qcow2', `copy.${format}`, format));
        expect(runner.swapped).to.equal(1);
        const copy = contentOf(join(target, `copy.${format}`));
        expect(copy.includes(Buffer.from('root:$y$')), 'the outside file was copied').to.equal(false);
        expect(copy.equals(expected)).to.equal(true);
        expectOnlyDescriptorsOpened(runner);
      });
    }
  }

  it('a raw to raw clone copies the checked source, not a link put in place of its name', async () => {
    const data = Buffer.alloc(MiB, 0x5a);
    writeFileSync(join(target, 'src.raw'), data);
    // the copy starts after chattr +C (nocow): the swap lands between the check and the copy
    const runner = new SwappingRunner((argv) => argv[0] === 'chattr', swapForLink('src.raw'));
    const call = await agentWith(runner);
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p' } });
    await call(clone('src.raw', 'copy.raw', 'raw', { nocow: true }));
    expect(runner.swapped).to.equal(1);
    const copy = readFileSync(join(target, 'copy.raw'));
    expect(copy.subarray(0, SECRET.length).toString('latin1')).to.not.equal(SECRET);
    expect(copy.equals(data)).to.equal(true);
  });

  for (const [how, path] of [
    ['absolute', () => join(target, 'base.raw')],
    ['relative', () => 'base.raw'],
  ] as const) {
    it(`a create with a backing store (${how}) and no capacity: qemu-img opens no backing file by name; the size is the checked file's`, async () => {
      writeFileSync(join(target, 'base.raw'), Buffer.alloc(3 * MiB + 512, 1));
      const runner = new SwappingRunner((argv) => argv[0] === 'qemu-img' && argv[1] === 'create', swapForLink('base.raw'), { trace: true });
      const call = await agentWith(runner);
      // qed: a format qemu-img makes (a plain qcow2 overlay is written in-process)
      await call({
        $case: 'createVolume',
        value: {
          parent: 'hosts/h/pools/p',
          definition: VolumeDefinition.fromPartial({ name: 'top.qed', target: { format: 'qed' }, backingStore: { path: path(), format: 'raw' } }),
        },
      });
      expect(runner.swapped).to.equal(1);
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', '--backing-chain', '--', join(target, 'top.qed')], { cwd: target, encoding: 'utf8' })) as Array<{
        'virtual-size': number;
        'backing-filename'?: string;
        'backing-filename-format'?: string;
      }>;
      // what qemu-img create -b would have read from the checked file: its size in whole sectors
      expect(info[0]!['virtual-size']).to.equal(3 * MiB + 512);
      expect(info[0]!['backing-filename']).to.equal(path());
      expect(info[0]!['backing-filename-format']).to.equal('raw');
      expectOnlyDescriptorsOpened(runner);
    });
  }

  it("a pool whose target was swapped for a link to another directory since it started is no place to read from: a clone of its volume is PERMISSION_DENIED", async () => {
    const other = join(root, 'other');
    mkdirSync(other);
    const elsewhere = join(root, 'etc');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'shadow'), SECRET);
    const call = await agentWith(new SwappingRunner(() => false, () => undefined), { q: other });
    writeFileSync(join(target, 'shadow'), 'a volume of the pool');
    await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p' } });
    // whoever can write in the target's parent swaps the target for a link to another directory
    renameSync(target, `${target}.moved`);
    symlinkSync(elsewhere, target);
    const into = call.in('q', other);
    const err = await into(clone('shadow', 'copy.raw', 'raw', {}, 'q')).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    expect(err?.code, err?.message).to.equal('PERMISSION_DENIED');
    expect(err?.message).to.match(/in none of the active pools/);
    expect(existsSync(join(other, 'copy.raw'))).to.equal(false);
  });
});
