// An agent killed in the middle of a create into a disk pool, with the real disk backend,
// parted and partx on a loop device: the create journal's undo at the next start removes the
// partition that create made, and never another partition that holds its number by then
// (review h92: it removed partition N by number). Between the kill and the restart an
// operator may remove the half-made partition by hand and make another with parted, which
// takes the free number; on a dos disk, removing a logical partition renumbers the ones
// after it. libvirt removes nothing at a restart.
import { expect } from 'chai';
import { readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentRequest } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType, Tristate, VolumeDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { DiskBackend } from '../../libs/backends/disk.js';
import { ExecRunner } from '../../libs/backends/exec-runner.js';
import type { CommandRunner, RunOptions } from '../../libs/backends/runner.js';
import { silentLogger, type Logger } from '../../libs/log/logger.js';
import { dispatch } from '../../services/agent/agent.js';
import { CreateJournal, cleanupInterruptedCreates, cleanupWhenStarted } from '../../services/agent/journal.js';
import { inProcessAgent } from '../support/agent-context.js';
import { hasTool, loopDevicesAvailable, makeTempDir, type LoopDevice } from '../support/index.js';
import { diskWith, parted, partitions } from '../support/partition-table.js';

const MiB = 1024n * 1024n;

/** The real runner, except that the first `parted mkpart` is run and then never answers: the agent is killed there. */
class KilledAfterMkpart implements CommandRunner {
  readonly real = new ExecRunner();
  reached!: () => void;
  readonly atMkpart = new Promise<void>((r) => (this.reached = r));
  private killed = false;

  async run(argv: readonly string[], options?: RunOptions) {
    const result = await this.real.run(argv, options);
    if (!this.killed && argv[0] === 'parted' && argv.includes('mkpart')) {
      this.killed = true;
      this.reached();
      return new Promise<never>(() => undefined);
    }
    return result;
  }
}

describe('agent killed during a create into a disk pool (journal cleanup at the next start)', function () {
  before(function () {
    if (!loopDevicesAvailable() || !hasTool('parted') || !hasTool('partx')) this.skip();
  });

  /** Starts a disk pool over `disk` in an agent with a journal under `root`; creates `name` of `size` there, killed once mkpart has written the table. */
  async function interruptedCreate(disk: LoopDevice, label: 'gpt' | 'dos', root: string, name: string, size: bigint): Promise<PoolDefinition> {
    const runner = new KilledAfterMkpart();
    const { ctx } = inProcessAgent({ runner, backend: new DiskBackend() });
    ctx.journal = await CreateJournal.open(root);
    const pool = PoolDefinition.fromPartial({
      type: PoolType.POOL_TYPE_DISK,
      name: 'disk',
      source: { devices: [{ path: disk.device, partSeparator: Tristate.TRISTATE_ABSENT, freeExtents: [] }], format: label },
      target: { path: '/dev' },
    });
    const call = (op: AgentRequest['op']) => {
      const req = AgentRequest.fromPartial({ principal: 'alice', requestId: '', pool });
      req.op = op;
      return dispatch(ctx, op!.$case, req);
    };
    await call({ $case: 'startPool', value: { name: 'hosts/h/pools/disk', build: false, buildFlags: undefined, requestId: '' } });
    const definition = VolumeDefinition.fromPartial({ name, capacity: size, target: { format: 'none' } });
    const create = call({ $case: 'createVolume', value: { parent: 'hosts/h/pools/disk', definition, xml: '', preallocMetadata: false, requestId: '', validate: false } });
    await Promise.race([
      runner.atMkpart,
      create.then(() => {
        throw new Error('the create ended without running mkpart');
      }),
    ]);
    return pool;
  }

  /** The next start of the agent: the journal read again, the pool started, its cleanup run. */
  async function restart(root: string, pool: PoolDefinition, log: Logger = silentLogger): Promise<CreateJournal> {
    const journal = await CreateJournal.open(root);
    const runner = new ExecRunner();
    await cleanupInterruptedCreates(journal, () => new DiskBackend(), runner, log);
    await cleanupWhenStarted(journal, pool, new DiskBackend(), runner, log);
    return journal;
  }

  /** A logger keeping its warnings' messages. */
  function warnings(): Logger & { seen: string[] } {
    const seen: string[] = [];
    const log: Logger = { ...silentLogger, warn: (msg: string) => void seen.push(msg), child: () => log };
    return Object.assign(log, { seen });
  }

  it('removes the partition the interrupted create made', async () => {
    const disk = diskWith('gpt', 'journal-own');
    const root = join(makeTempDir('cistern-diskjournal-').path, 'root');
    try {
      const name = disk.device.slice('/dev/'.length) + 'p1';
      const pool = await interruptedCreate(disk, 'gpt', root, name, 8n * MiB);
      expect(partitions(disk.device).map((p) => p.n)).to.deep.equal([1], 'mkpart wrote the table before the kill');
      const journal = await restart(root, pool);
      expect(partitions(disk.device)).to.deep.equal([]);
      expect(await journal.pending()).to.deep.equal([]);
    } finally {
      await disk.detach();
    }
  });

  it("leaves the partition an operator made under the interrupted one's number after removing it by hand", async () => {
    const disk = diskWith('gpt', 'journal-hand');
    const root = join(makeTempDir('cistern-diskjournal-').path, 'root');
    try {
      const name = disk.device.slice('/dev/'.length) + 'p1';
      const pool = await interruptedCreate(disk, 'gpt', root, name, 8n * MiB);
      // the operator: removes the half-made partition 1, makes a bigger one elsewhere (number 1 again)
      parted(disk.device, 'rm', '1');
      parted(disk.device, 'mkpart', 'data', '20MiB', '40MiB');
      const made = partitions(disk.device);
      expect(made.map((p) => p.n)).to.deep.equal([1]);
      const log = warnings();
      const journal = await restart(root, pool, log);
      expect(partitions(disk.device), "the operator's partition").to.deep.equal(made);
      expect(await journal.pending()).to.deep.equal([], 'nothing of this create is left to remove');
      // the log does not tell the operator their partition went
      expect(log.seen).to.deep.equal(['nothing of an interrupted volume create was left to remove']);
    } finally {
      await disk.detach();
    }
  });

  it('leaves the logical partition that took the interrupted one\'s number on a dos disk, and removes the interrupted one under its new number', async () => {
    const disk = diskWith('msdos', 'journal-dos');
    const root = join(makeTempDir('cistern-diskjournal-').path, 'root');
    try {
      const dev = disk.device.slice('/dev/'.length);
      // a dos table makes logical partitions once its four primary slots are taken (libvirt's rule)
      parted(disk.device, 'mkpart', 'extended', '1MiB', '40MiB');
      parted(disk.device, 'mkpart', 'primary', '40MiB', '44MiB');
      parted(disk.device, 'mkpart', 'primary', '44MiB', '48MiB');
      parted(disk.device, 'mkpart', 'primary', '48MiB', '52MiB');
      parted(disk.device, 'mkpart', 'logical', '2MiB', '10MiB');
      // the interrupted create: logical partition 6, after 5
      const pool = await interruptedCreate(disk, 'dos', root, `${dev}p6`, 8n * MiB);
      const interrupted = partitions(disk.device).find((p) => p.n === 6)!;
      expect(interrupted, 'mkpart wrote logical 6').to.not.equal(undefined);
      // the operator removes logical 5, so the interrupted partition is 5 now, and makes a logical 6
      parted(disk.device, 'rm', '5');
      parted(disk.device, 'mkpart', 'logical', '30MiB', '38MiB');
      const before = partitions(disk.device);
      expect(before.find((p) => p.n === 5)).to.deep.equal({ ...interrupted, n: 5 });
      const operators = before.find((p) => p.n === 6)!;
      expect(operators.start).to.not.equal(interrupted.start);
      const journal = await restart(root, pool);
      const logical = partitions(disk.device).filter((p) => p.n >= 5);
      expect(logical, "only the operator's logical partition is left").to.deep.equal([{ ...operators, n: 5 }]);
      expect(await journal.pending()).to.deep.equal([]);
    } finally {
      await disk.detach();
    }
  });

  it('an entry without the made record (an older agent, or killed before it) removes the partition at the extent the create planned, under its number now', async () => {
    const disk = diskWith('msdos', 'journal-old');
    const root = join(makeTempDir('cistern-diskjournal-').path, 'root');
    try {
      const dev = disk.device.slice('/dev/'.length);
      parted(disk.device, 'mkpart', 'primary', '1MiB', '5MiB');
      // dos: the create's extent is whole cylinders, not the capacity asked for
      const pool = await interruptedCreate(disk, 'dos', root, `${dev}p2`, 8n * MiB);
      const interrupted = partitions(disk.device).find((p) => p.n === 2)!;
      const log = join(root, 'journal', 'creates.log');
      writeFileSync(log, readFileSync(log, 'utf8').split('\n').filter((l) => !l.includes('"made"')).join('\n'));
      // the operator removes partition 1: the interrupted one keeps number 2 (dos primaries keep theirs), then makes 1 again elsewhere
      parted(disk.device, 'rm', '1');
      parted(disk.device, 'mkpart', 'primary', '40MiB', '50MiB');
      const operators = partitions(disk.device).find((p) => p.n === 1)!;
      const journal = await restart(root, pool);
      expect(partitions(disk.device), 'the interrupted partition goes, the other stays').to.deep.equal([operators]);
      expect(interrupted.start).to.not.equal(operators.start);
      expect(await journal.pending()).to.deep.equal([]);
    } finally {
      await disk.detach();
    }
  });

  it('leaves a partition at the same bytes on the disk the pool was redefined over before it started again', async () => {
    const disk = diskWith('gpt', 'journal-first');
    const other = diskWith('gpt', 'journal-other');
    const root = join(makeTempDir('cistern-diskjournal-').path, 'root');
    try {
      const pool = await interruptedCreate(disk, 'gpt', root, `${disk.device.slice('/dev/'.length)}p1`, 8n * MiB);
      const interrupted = partitions(disk.device)[0]!;
      // the pool did not come back at the restart; it is redefined over another disk, whose
      // partition 1 lies where the interrupted one does (parted's default alignment)
      parted(other.device, 'mkpart', 'data', `${interrupted.start}B`, `${interrupted.start + interrupted.size - 1n}B`);
      const others = partitions(other.device);
      expect(others.map((p) => ({ start: p.start, size: p.size }))).to.deep.equal([{ start: interrupted.start, size: interrupted.size }]);
      const redefined = PoolDefinition.fromPartial({ ...pool, source: { ...pool.source, devices: [{ ...pool.source!.devices[0]!, path: other.device }] } });
      const journal = await restart(root, redefined);
      expect(partitions(other.device), "the other disk's partition").to.deep.equal(others);
      expect(partitions(disk.device), 'the first disk is not the pool now: nothing of it is touched').to.deep.equal([interrupted]);
      expect(await journal.pending()).to.deep.equal([], 'the entry is forgotten (logged): the pool is over another disk');
    } finally {
      await other.detach();
      await disk.detach();
    }
  });

  it('leaves a partition at the same bytes on another disk that the pool\'s device path leads to by the restart', async () => {
    // the pool names its disk by a path that may lead to another disk at the next start: a
    // kernel name (/dev/sdb) after a reboot that enumerated the disks in another order, a
    // by-path link whose slot now holds another disk, a reused loop device. The path is the
    // same, so the pool did not "start over another disk" by its definition; the disk did.
    const disk = diskWith('gpt', 'journal-path-first');
    const other = diskWith('gpt', 'journal-path-other');
    const dir = makeTempDir('cistern-diskjournal-');
    const root = join(dir.path, 'root');
    const link = join(dir.path, 'pool-disk');
    try {
      symlinkSync(disk.device, link);
      const pool = await interruptedCreate({ ...disk, device: link }, 'gpt', root, `${disk.device.slice('/dev/'.length)}p1`, 8n * MiB);
      const interrupted = partitions(disk.device)[0]!;
      expect(interrupted, 'mkpart wrote the table before the kill').to.not.equal(undefined);
      // the other disk has its partition 1 where the interrupted one is (the same layout)
      parted(other.device, 'mkpart', 'data', `${interrupted.start}B`, `${interrupted.start + interrupted.size - 1n}B`);
      const others = partitions(other.device);
      expect(others.map((p) => ({ start: p.start, size: p.size }))).to.deep.equal([{ start: interrupted.start, size: interrupted.size }]);
      // by the restart the pool's path leads to the other disk
      unlinkSync(link);
      symlinkSync(other.device, link);
      const log = warnings();
      const journal = await restart(root, pool, log);
      expect(partitions(other.device), "the other disk's partition").to.deep.equal(others);
      expect(partitions(disk.device), 'the disk the create wrote on is not the pool now: nothing of it is touched').to.deep.equal([interrupted]);
      expect(await journal.pending()).to.deep.equal([], 'nothing of this create is on the disk the pool is over now');
      expect(log.seen).to.deep.equal(['nothing of an interrupted volume create was left to remove']);
    } finally {
      await other.detach();
      await disk.detach();
    }
  });
});
