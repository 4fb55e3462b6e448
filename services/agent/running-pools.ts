// Which pools are running, kept under the agent's root, as libvirt keeps a state file per
// active pool in /run/libvirt/storage: an agent restarted on the same boot of its host (an
// upgrade, a crash) finds them, and the pools still up stay running (restore.ts) instead of
// being reported inactive while guests use them. The record names the host's boot: after a
// reboot nothing is mounted or logged in any more, and only autostart brings pools back.
// It names its host too: an agent started on the same root under another host id (a host
// renamed) does not take the old host's pools for its own; it names them in its log.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceSmallFile } from './small-file.js';
import { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import type { PoolMount } from '../../libs/backends/pool-mounts.js';

export interface RunningPoolRecord {
  /** The live definition the pool was started with (its flags are the catalog's). */
  definition: PoolDefinition;
  /**
   * fs and netfs: the mount its start made (libs/backends/pool-mounts.ts), for a restarted agent
   * to know it when the source name no longer leads to it (an image moved aside, a link repointed).
   */
  mount?: PoolMount;
}

/** What load() found: this host's pools, or the host the record is of when it is another's. */
export interface LoadedRecord {
  pools: RunningPoolRecord[];
  otherHost?: { host: string; pools: string[] };
}

interface StoredFile {
  hostBootId: string;
  /** absent in a record written before it named its host: taken as this host's */
  hostId?: string;
  /** PoolDefinition messages, base64; the mount of an fs or netfs pool */
  pools: { definition: string; mount?: PoolMount }[];
}

/** A recorded mount as the file holds it, if it is one (three non-negative integers). */
function mountOf(value: unknown): PoolMount | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { mountId, major, minor } = value as Record<string, unknown>;
  const n = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return n(mountId) && n(major) && n(minor) ? { mountId, major, minor } : undefined;
}

const FILE = 'running-pools.json';

/** The kernel's id of this boot of the host; '' where it cannot be read. */
export function readHostBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

export class RunningPools {
  private constructor(
    private readonly file: string,
    private readonly hostId: string,
    private readonly hostBootId: string,
  ) {}

  /** The record of `hostId`'s agent under `root` (the directory must exist). */
  static open(root: string, hostId: string, hostBootId = readHostBootId()): RunningPools {
    return new RunningPools(join(root, FILE), hostId, hostBootId);
  }

  /**
   * The pools recorded as running during this boot of the host. Nothing when the record is
   * from another boot, missing or unreadable, or when the boot cannot be told: a pool is
   * never believed up on a guess.
   */
  load(): LoadedRecord {
    let stored: StoredFile;
    try {
      stored = JSON.parse(readFileSync(this.file, 'utf8')) as StoredFile;
    } catch {
      return { pools: [] };
    }
    if (!this.hostBootId || stored.hostBootId !== this.hostBootId || !Array.isArray(stored.pools)) return { pools: [] };
    const records: RunningPoolRecord[] = [];
    for (const p of stored.pools) {
      try {
        const mount = mountOf(p.mount);
        records.push({ definition: PoolDefinition.decode(Buffer.from(p.definition, 'base64')), ...(mount ? { mount } : {}) });
      } catch {
        /* a damaged entry: that pool is not restored */
      }
    }
    if (typeof stored.hostId === 'string' && stored.hostId !== this.hostId) {
      return { pools: [], otherHost: { host: stored.hostId, pools: records.map((r) => r.definition.name) } };
    }
    return { pools: records };
  }

  /** Replaces the record with these pools (small-file.ts: a write and a rename, never half a file, when there is space). */
  save(pools: Iterable<RunningPoolRecord>): void {
    const stored: StoredFile = { hostBootId: this.hostBootId, hostId: this.hostId, pools: [] };
    for (const p of pools) {
      const definition = Buffer.from(PoolDefinition.encode(p.definition).finish()).toString('base64');
      stored.pools.push(p.mount ? { definition, mount: p.mount } : { definition });
    }
    replaceSmallFile(this.file, `${JSON.stringify(stored)}\n`);
  }
}
