// Loaded into the coordinator by bench/fleet/run.ts (node --expose-gc --import <this>): on SIGUSR2
// it writes process.memoryUsage() before and after a full garbage collection to $FLEET_MEM_FILE.
// Nothing else: the coordinator runs unchanged.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.FLEET_MEM_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    const before = process.memoryUsage();
    const gc = (globalThis as { gc?: () => void }).gc;
    const t0 = performance.now();
    gc?.();
    const gcMs = performance.now() - t0;
    const after = process.memoryUsage();
    writeFileSync(`${file}.tmp`, JSON.stringify({ before, after, gcMs, collected: !!gc, at: Date.now() }));
    renameSync(`${file}.tmp`, file);
  });
}
