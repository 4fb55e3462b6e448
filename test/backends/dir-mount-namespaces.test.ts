// A file reached through another mount namespace (a link to /proc/PID/root/...) is named by
// /proc/self/fd as it is named in that namespace, which its owner chooses: any local user can
// unshare a user and mount namespace, mount a tmpfs over a pool's path there and bind a
// root-only file onto a name in it. The agent, as root, must not take that name for the file's
// real place: reads, writes, backing stores and clone sources through such a link are refused,
// and the file stays unread and unchanged. The namespace is made here with unshare(1) as root.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '../../libs/backends/index.js';
import { DirBackend } from '../../libs/backends/dir.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import { AgentRequest, type AgentReply } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, VolumeDefinition, WipeAlgorithm } from '../../libs/proto/cistern/v1/storage.js';
import { dispatch } from '../../services/agent/agent.js';
import { inProcessAgent } from '../support/agent-context.js';
import { hasTool } from '../support/index.js';
import { usePrivateTmpdir } from '../support/private-tmpdir.js';
import { rejects } from '../support/rejects.js';
import { fileVolume as vol } from '../support/volume-definitions.js';
import { collect } from '../support/volume-data.js';

const SECRET = 'ROOT-ONLY-SECRET\n';
const MiB = 1024n * 1024n;

describe('dir backend: links through another mount namespace (/proc/PID/root) are refused', function () {
  usePrivateTmpdir();
  this.timeout(60_000);
  let root: string;
  let target: string;
  let victim: string;
  let holder: ChildProcess | undefined;
  /** The victim as the other namespace shows it at the pool's path: /proc/PID/root/POOL/x. */
  let magic: string;

  before(function () {
    const probe = spawnSync('unshare', ['--mount', 'true']);
    if (!hasTool('qemu-img') || probe.status !== 0) this.skip(); // skip reason: needs qemu-img and unshare --mount (root)
  });
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'cistern-mntns-'));
    target = join(root, 'pool');
    mkdirSync(target);
    victim = join(root, 'shadow');
    writeFileSync(victim, SECRET, { mode: 0o600 });
    // in a mount namespace of its own: a tmpfs over the pool's path, the victim bound onto x
    holder = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none "$1" && touch "$1/x" && mount --bind "$2" "$1/x" && echo ready && exec sleep 300', 'sh', target, victim],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(holder.stdout!, 'data')) as [Buffer];
    expect(line.toString().trim()).to.equal('ready');
    magic = `/proc/${holder.pid}/root${target}/x`;
    expect(readFileSync(magic, 'utf8'), 'the other namespace shows the victim at the pool path').to.equal(SECRET);
  });
  afterEach(async () => {
    if (holder && holder.exitCode === null) {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    holder = undefined;
    rmSync(root, { recursive: true, force: true });
  });

  const victimUnchanged = () => {
    expect(readFileSync(victim, 'utf8')).to.equal(SECRET);
    expect(statSync(victim).size).to.equal(SECRET.length);
  };

  it('download, upload, wipe and resize of a volume that is such a link: PERMISSION_DENIED naming the other namespace; the file is neither read nor changed', async () => {
    const backend = new DirBackend();
    const ctx = { runner: new ExecRunner(), pool: PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } }) };
    await backend.startPool(ctx);
    symlinkSync(magic, join(target, 'evil.img'));
    const download = (): Promise<Buffer> => collect(backend.downloadVol(ctx, vol('evil.img', ''), 0n, 0n));
    async function* data(): AsyncIterable<Buffer> {
      yield Buffer.from('WRITTEN-BY-ROOT-AGENT');
    }
    const refusals = [
      await rejects(download()),
      await rejects(backend.uploadVol(ctx, vol('evil.img', ''), 0n, 0n, data())),
      await rejects(backend.wipeVol(ctx, vol('evil.img', ''), WipeAlgorithm.WIPE_ALGORITHM_ZERO)),
      await rejects(backend.resizeVol(ctx, vol('evil.img', ''), MiB, { allocate: false, delta: false, shrink: false })),
    ];
    for (const err of refusals) {
      expect(err.code, err.message).to.equal('PERMISSION_DENIED');
      expect(err.message).to.contain('leads into another mount namespace');
    }
    victimUnchanged();
    await backend.stopPool(ctx);
  });

  describe('through the agent', () => {
    const agent = async () => {
      const { ctx } = inProcessAgent({ runner: new ExecRunner() });
      const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: target } });
      const call = (op: { $case: string; value: unknown }): Promise<AgentReply> =>
        dispatch(ctx, op.$case as NonNullable<AgentRequest['op']>['$case'], AgentRequest.fromPartial({ principal: 't', pool, persistent: true, op } as Parameters<typeof AgentRequest.fromPartial>[0]));
      await call({ $case: 'startPool', value: { name: 'hosts/h/pools/p' } });
      return call;
    };
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => expect.fail('the call was not refused'),
        (e: { code?: string; message: string }) => e,
      );

    it('a backing store named by such a path (no link in the pool needed): PERMISSION_DENIED; nothing created, the file unread', async () => {
      const call = await agent();
      const err = await refusal(
        call({
          $case: 'createVolume',
          value: {
            parent: 'hosts/h/pools/p',
            definition: VolumeDefinition.fromPartial({ name: 'overlay.qcow2', capacity: MiB, target: { format: 'qcow2' }, backingStore: { path: magic, format: 'raw' } }),
          },
        }),
      );
      expect(err.code, err.message).to.equal('PERMISSION_DENIED');
      expect(err.message).to.contain('leads into another mount namespace');
      expect(existsSync(join(target, 'overlay.qcow2'))).to.equal(false);
      victimUnchanged();
    });

    it('a clone whose source is such a link: PERMISSION_DENIED; no copy of the file is made', async () => {
      const call = await agent();
      symlinkSync(magic, join(target, 'evil.img'));
      await call({ $case: 'refreshPool', value: { name: 'hosts/h/pools/p' } });
      const err = await refusal(
        call({
          $case: 'cloneVolume',
          value: {
            parent: 'hosts/h/pools/p',
            source: 'hosts/h/pools/p/volumes/evil.img',
            definition: VolumeDefinition.fromPartial({ name: 'copy.raw', target: { format: 'raw' } }),
          },
        }),
      );
      expect(err.code, err.message).to.equal('PERMISSION_DENIED');
      expect(err.message).to.contain('leads into another mount namespace');
      expect(existsSync(join(target, 'copy.raw'))).to.equal(false);
      victimUnchanged();
    });
  });
});
