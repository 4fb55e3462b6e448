// A disk-pool test's view of a loop device's partition table, read and changed with parted
// itself (independently of the backend), as an operator would by hand.
import { execFileSync } from 'node:child_process';
import { attachLoop, type LoopDevice } from './loop.js';
import { registerCleanup } from './cleanup.js';

const MiB = 1024n * 1024n;

/** The partitions parted reads: number, first byte, size. */
export function partitions(device: string): Array<{ n: number; start: bigint; size: bigint }> {
  return execFileSync('parted', ['-m', '-s', device, 'unit', 'B', 'print'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
    .split('\n')
    .map((l) => /^(\d+):(\d+)B:\d+B:(\d+)B:/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ n: Number(m[1]), start: BigInt(m[2]!), size: BigInt(m[3]!) }));
}

/** What an operator runs by hand: parted, then the kernel told of the table. */
export function parted(device: string, ...args: string[]): void {
  execFileSync('parted', ['-s', '--', device, ...args], { stdio: 'pipe' });
  // partx -u refuses a table without partitions (parted has dropped their nodes then)
  if (partitions(device).length) execFileSync('partx', ['-u', '--', device], { stdio: 'pipe' });
}

/** A 64 MiB loop device with a table of `label`, whose partitions are dropped (partx -d, exact name) before it is detached. */
export function diskWith(label: 'gpt' | 'msdos', name: string): LoopDevice {
  const loop = attachLoop(Number(64n * MiB), name);
  const drop = registerCleanup(`partitions of ${loop.device}`, () => {
    try {
      execFileSync('partx', ['-d', '--', loop.device], { stdio: 'pipe' });
    } catch {
      // no partitions left
    }
  });
  execFileSync('parted', ['-s', '--', loop.device, 'mklabel', label], { stdio: 'pipe' });
  return { ...loop, detach: async () => (await drop(), await loop.detach()) };
}
