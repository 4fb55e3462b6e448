// The dir backend refuses to write through a symlink that leaves the pool (a volume
// name that is a link to /etc/shadow must never be wiped, resized or uploaded into).
import { mkdirSync, readFileSync, lstatSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, WipeAlgorithm } from '../../libs/proto/cistern/v1/storage.js';
import { CisternError } from '../../libs/errors/errors.js';
import { RecordingRunner } from '../../libs/backends/recording-runner.js';
import '../../libs/backends/index.js';
import { dispatch } from '../../services/agent/agent.js';
import { makeTempDir } from '../support/cleanup.js';
import { makeSandbox } from '../fuzz/properties.js';
import { inProcessAgent } from '../support/agent-context.js';
import { dirBackend } from '../../libs/backends/dir.js';
import { rejects } from '../support/rejects.js';

describe('security: symlinks out of a dir pool are refused for writes and downloads', () => {
  it('wipe, resize and delete of a link to a file outside: refused or only the link goes; the target is untouched', async () => {
    const tmp = makeTempDir('cistern-symlink-');
    const sb = makeSandbox(tmp.path);
    try {
      const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: sb.pool } });
      const runner = new RecordingRunner();
      const { ctx } = inProcessAgent({ runner });
      const base = { principal: 't', pool, persistent: true };
      await dispatch(ctx, 'startPool', AgentRequest.fromPartial({ ...base, op: { $case: 'startPool', value: { name: 'hosts/h/pools/p' } } }));
      const vol = 'hosts/h/pools/p/volumes/link-out';
      const failure = async (r: AgentRequest): Promise<string> => {
        try {
          await dispatch(ctx, r.op!.$case, r);
          return 'OK';
        } catch (err) {
          expect(err).to.be.instanceOf(CisternError);
          return `${(err as CisternError).code}: ${(err as Error).message}`;
        }
      };
      const size = statSync(sb.victim).size;
      const wipe = await failure(AgentRequest.fromPartial({ ...base, op: { $case: 'wipeVolume', value: { name: vol, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO } } }));
      const resize = await failure(AgentRequest.fromPartial({ ...base, op: { $case: 'resizeVolume', value: { name: vol, capacity: 1n << 20n } } }));
      for (const r of [wipe, resize]) expect(r).to.match(/^(PERMISSION_DENIED|NOT_FOUND|INVALID_ARGUMENT|FAILED_PRECONDITION)/);
      expect(wipe).to.not.equal('OK');
      expect(resize).to.not.equal('OK');
      expect(readFileSync(sb.victim, 'utf8')).to.equal('VICTIM-CONTENT');
      expect(statSync(sb.victim).size).to.equal(size);
      // creating a volume named like the link does not follow it either
      const create = await failure(
        AgentRequest.fromPartial({ ...base, op: { $case: 'createVolume', value: { parent: 'hosts/h/pools/p', definition: { name: 'link-out', capacity: 4096n, allocation: 0n, target: { format: 'raw' } } as never } } }),
      );
      expect(create).to.not.equal('OK');
      expect(readFileSync(sb.victim, 'utf8')).to.equal('VICTIM-CONTENT');
      await failure(AgentRequest.fromPartial({ ...base, op: { $case: 'deleteVolume', value: { name: vol } } }));
      expect(readFileSync(sb.victim, 'utf8')).to.equal('VICTIM-CONTENT');
      expect(lstatSync(sb.victim).isFile()).to.equal(true);
      for (const argv of runner.argvs) expect(argv.join(' ')).to.not.include('victim');
    } finally {
      sb.remove();
      await tmp.remove();
    }
  });

  it('download of a link to a file outside: PERMISSION_DENIED, not one byte of the target read; links inside still read', async () => {
    const tmp = makeTempDir('cistern-symlink-read-');
    const sb = makeSandbox(tmp.path);
    try {
      const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: sb.pool } });
      const ctx = { pool, runner: new RecordingRunner() };
      const read = async (name: string): Promise<Buffer> => {
        const parts: Buffer[] = [];
        for await (const b of dirBackend.downloadVol(ctx, { name } as never, 0n, 0n)) parts.push(b);
        return Buffer.concat(parts);
      };
      const err = await rejects(read('link-out'));
      expect(err.code, err.message).to.equal('PERMISSION_DENIED');
      expect(err.message).to.match(/outside the pool target/);
      expect((await rejects(read('linkdir'))).code).to.equal('PERMISSION_DENIED');
      // a link that stays in the pool is followed, as libvirt follows it
      writeFileSync(join(sb.pool, 'inside'), 'INSIDE');
      symlinkSync('inside', join(sb.pool, 'link-in'));
      expect((await read('link-in')).toString()).to.equal('INSIDE');
    } finally {
      sb.remove();
      await tmp.remove();
    }
  });

  it("wipe, resize and download through a link into a sibling directory named like the pool ('pool-sibling'): PERMISSION_DENIED, the victim untouched", async () => {
    const tmp = makeTempDir('cistern-symlink-sibling-');
    const sb = makeSandbox(tmp.path);
    try {
      const victim = `${sb.pool}-sibling/victim`;
      mkdirSync(`${sb.pool}-sibling`);
      writeFileSync(victim, 'SIBLING-VICTIM');
      symlinkSync(victim, join(sb.pool, 'sideways'));
      const pool = PoolDefinition.fromPartial({ name: 'p', type: PoolType.POOL_TYPE_DIR, target: { path: sb.pool } });
      const runner = new RecordingRunner();
      const { ctx } = inProcessAgent({ runner });
      const base = { principal: 't', pool, persistent: true };
      await dispatch(ctx, 'startPool', AgentRequest.fromPartial({ ...base, op: { $case: 'startPool', value: { name: 'hosts/h/pools/p' } } }));
      const vol = 'hosts/h/pools/p/volumes/sideways';
      for (const r of [
        AgentRequest.fromPartial({ ...base, op: { $case: 'wipeVolume', value: { name: vol, algorithm: WipeAlgorithm.WIPE_ALGORITHM_ZERO } } }),
        AgentRequest.fromPartial({ ...base, op: { $case: 'resizeVolume', value: { name: vol, capacity: 1n << 20n } } }),
      ]) {
        const err = await rejects(dispatch(ctx, r.op!.$case, r));
        expect(err.code, `${r.op!.$case}: ${err.message}`).to.equal('PERMISSION_DENIED');
        expect(err.message).to.include(`outside the pool target '${sb.pool}'`);
      }
      const read = async (): Promise<void> => {
        for await (const _ of dirBackend.downloadVol({ pool, runner }, { name: 'sideways' } as never, 0n, 0n)) void _;
      };
      const download = await rejects(read());
      expect(download.code, download.message).to.equal('PERMISSION_DENIED');
      expect(readFileSync(victim, 'utf8')).to.equal('SIBLING-VICTIM');
      for (const argv of runner.argvs) expect(argv.join(' ')).to.not.include('victim');
    } finally {
      sb.remove();
      await tmp.remove();
    }
  });
});
