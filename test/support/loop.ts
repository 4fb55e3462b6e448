// Loop devices for backend tests: a sparse file attached with losetup, detached
// by its exact device name in teardown (and by the root hook if a test forgets).
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, ftruncateSync } from 'node:fs';
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
