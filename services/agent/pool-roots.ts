// Where this host's dir, fs and netfs pools may keep their directory (cistern-agent
// --pool-roots). libvirt lets an admin put a pool anywhere: a dir pool on /root/.ssh is a way to
// upload an authorized_keys, one on /etc to replace the host's files, an fs pool to mount over
// them; the agent runs as root. With pool roots, a pool's target must be one of them or under
// one, as its path resolves on this host (symlinks followed), when it is built, started,
// restored after a restart or deleted. Without, any directory, as libvirt.
// The agent's own --root counts as a root (its default pools live there), but not the agent's
// state in it: the root itself, its journal, or a directory holding them. The agent acts on its
// journal's records at its next start (an interrupted create's volume is deleted, in whatever
// pool the record names): a pool there would let an admin write such a record and have a file
// anywhere deleted; a mount over them would hand the agent a journal of the mount's making.
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { PermissionDeniedError } from '../../libs/errors/errors.js';
import { printable } from '../../libs/api/names.js';
import { PoolType, type PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';

/** Types whose target directory holds the pool's files (or the mount of them). */
const DIRECTORY_POOLS: ReadonlySet<PoolType> = new Set([PoolType.POOL_TYPE_DIR, PoolType.POOL_TYPE_FS, PoolType.POOL_TYPE_NETFS]);

export class PoolRoots {
  private constructor(
    readonly roots: readonly string[],
    /** The agent's --root: its state (the root itself, journal/) is no pool's. */
    private readonly agentRoot: string,
  ) {}

  /**
   * The roots given (absolute paths; `--pool-roots` repeated, or CISTERN_POOL_ROOTS split on
   * ':'), plus the agent's own --root, where its default pools live. None given: undefined,
   * every directory allowed.
   */
  static of(given: readonly string[], agentRoot: string): PoolRoots | undefined {
    const roots = given.filter((r) => r !== '');
    if (roots.length === 0) return undefined;
    for (const r of roots) {
      if (!isAbsolute(r)) throw new Error(`pool root '${r}' is not an absolute path`);
    }
    return new PoolRoots([...new Set([...roots.map((r) => resolve(r)), resolve(agentRoot)])], resolve(agentRoot));
  }

  /** PERMISSION_DENIED when `def`'s target directory is outside every root, or over the agent's own state. */
  async require(def: PoolDefinition): Promise<void> {
    if (!DIRECTORY_POOLS.has(def.type)) return;
    const target = def.target?.path;
    if (!target) return;
    const where = await resolveAsFarAsExists(target);
    const shown = where === resolve(target) ? '' : ` (it resolves to '${printable(where, 200)}')`;
    let inside = false;
    for (const root of this.roots) inside ||= within(await realpath(root).catch(() => root), where);
    if (inside) {
      const state = await realpath(this.agentRoot).catch(() => this.agentRoot);
      // the root itself or a directory above it (within(where, state)), or the journal or below it
      if (within(where, state) || within(join(state, 'journal'), where)) {
        const how = where !== state && within(where, state) ? 'holds' : 'is';
        throw new PermissionDeniedError(
          `pool '${printable(def.name)}' has its target '${printable(target, 200)}'${shown}, which ${how} the agent's own state ` +
            `(its --root '${printable(this.agentRoot, 200)}' and journal): pools may be in the root's other directories, not on the root, above it or in its journal`,
          { pool: def.name, target },
        );
      }
      return;
    }
    throw new PermissionDeniedError(
      `pool '${printable(def.name)}' has its target '${printable(target, 200)}'${shown} outside this host's pool roots ` +
        `(${this.roots.map((r) => `'${printable(r, 200)}'`).join(', ')}); the agent's --pool-roots says where pools may be`,
      { pool: def.name, target },
    );
  }
}

/** Whether `path` is `base` or below it (both absolute and resolved). */
function within(base: string, path: string): boolean {
  if (base === path) return true;
  const rel = relative(base, path);
  // '..data' is a name below base; '..' and '../x' are above it
  return rel !== '' && rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel);
}

/**
 * The path as this host resolves it: its longest existing ancestor's real path, then the
 * components that do not exist yet (a directory a build makes).
 */
async function resolveAsFarAsExists(path: string): Promise<string> {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail.reverse());
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(path);
      tail.push(head.slice(up === '/' ? 1 : up.length + 1));
      head = up;
    }
  }
}
