// Loop devices for backend tests: a sparse file attached with losetup, detached
// by its exact device name in teardown (and by the root hook if a test forgets).
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, registerCleanup } from './cleanup.js';

export interface LoopDevice {
  device: string;
  file: string;
  detach(): Promise<void>;
}

export function loopDevicesAvailable(): boolean {
  try {
    execFileSync('losetup', ['--find'], { stdio: 'pipe' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

export function attachLoop(sizeBytes: number, label = 'disk'): LoopDevice {
  const dir = makeTempDir(`cistern-loop-${label}-`);
  const file = join(dir.path, `${label}.img`);
  const fd = openSync(file, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  const device = execFileSync('losetup', ['--find', '--show', '--', file], { encoding: 'utf8' }).trim();
  const detach = registerCleanup(`loop device ${device}`, async () => {
    try {
      execFileSync('losetup', ['--detach', device], { stdio: 'pipe' });
    } finally {
      await dir.remove();
    }
  });
  return { device, file, detach };
}

/**
 * Runs `fn` while the device name `link` leads to another loop device, filled with 0x5a (as
 * when udev points a shared name at another disk, or a /dev name is reused), then puts the
 * link back and detaches that device. Resolves with what the other device holds afterwards.
 */
export async function withNameRepointed(link: string, sizeBytes: number, label: string, fn: () => Promise<void>): Promise<Buffer> {
  const other = attachLoop(sizeBytes, label);
  const before = readlinkSync(link);
  try {
    writeFileSync(other.file, Buffer.alloc(sizeBytes, 0x5a));
    unlinkSync(link);
    symlinkSync(other.device, link);
    await fn();
    return readFileSync(other.file);
  } finally {
    unlinkSync(link);
    symlinkSync(before, link);
    await other.detach();
  }
}
