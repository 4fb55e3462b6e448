// Loaded into the coordinator by bench/fleet/run.ts (node --expose-gc --import <this>): on SIGUSR2
// it writes process.memoryUsage() before and after a full garbage collection (once the memory of
// the ArrayBuffers it found dead is freed) to $FLEET_MEM_FILE,
// with where the resident memory is (/proc/self: anonymous or file-backed; the C heap of brk,
// [heap], apart from other anonymous mappings: V8's heap, malloc's mmaps and other threads'
// arenas). Nothing else: the coordinator runs unchanged.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const file = process.env.FLEET_MEM_FILE;

/** Resident KiB by kind of mapping, from /proc/self/smaps (Linux; empty elsewhere). */
function residency(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    for (const key of ['VmRSS', 'RssAnon', 'RssFile', 'VmHWM']) {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
      if (m) out[`${key}KiB`] = Number(m[1]);
    }
    let kind = '';
    let heap = 0;
    let anon = 0;
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (header) {
        const name = header[1]!;
        kind = name === '[heap]' ? 'heap' : name === '' ? 'anon' : 'other';
        continue;
      }
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (!rss) continue;
      if (kind === 'heap') heap += Number(rss[1]);
      else if (kind === 'anon') anon += Number(rss[1]);
    }
    out.brkHeapKiB = heap;
    out.anonMappingsKiB = anon;
  } catch {
    // not Linux: process.memoryUsage() only
  }
  return out;
}

/** Until arrayBuffers stops falling: V8 frees dead ArrayBuffers' memory on a background thread after the GC returns. */
async function swept(): Promise<void> {
  let last = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = process.memoryUsage().arrayBuffers;
    if (now >= last) return;
    last = now;
  }
}

if (file) {
  process.on('SIGUSR2', () => {
    const before = process.memoryUsage();
    const gc = (globalThis as { gc?: () => void }).gc;
    const t0 = performance.now();
    gc?.();
    const gcMs = performance.now() - t0;
    void swept().then(() => {
      const after = process.memoryUsage();
      writeFileSync(`${file}.tmp`, JSON.stringify({ before, after, gcMs, collected: !!gc, at: Date.now(), residency: residency() }));
      renameSync(`${file}.tmp`, file);
    });
  });
}
