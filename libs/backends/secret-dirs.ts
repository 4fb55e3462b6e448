// Temp directories that hold a secret for a tool (a LUKS passphrase or a CHAP password for
// qemu-img's `--object secret,file=`) while it runs. The operation removes its directory when
// the tool ends; an agent killed meanwhile cannot, and the value would stay on disk in plain
// text. So a directory is named after the process that made it, `<kind>-<pid>.<start time>-`
// (the start time tells a reused pid apart), and a starting agent removes those of processes
// that are gone: not another running agent's (several may share a TMPDIR). Only a real
// directory of this process's user is ours: the folders they go in (/dev/shm, /tmp) are
// world-writable, and a root agent removing another user's tree recursively could be led,
// by a directory swapped for a link while rm walks it, to delete files elsewhere. Where
// they go: secret-root.ts.
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasExited, readProcStat } from '../os/proc.js';
import { secretRoot } from './secret-root.js';

export type SecretDirKind = 'cistern-secret' | 'cistern-iscsi';
const KINDS: readonly SecretDirKind[] = ['cistern-secret', 'cistern-iscsi'];
const OWNED = /^(cistern-secret|cistern-iscsi)-(\d+)\.(\d+)-[A-Za-z0-9]+$/;

let owner: string | undefined;
function ownerTag(): string {
  owner ??= `${process.pid}.${readProcStat(process.pid)?.startTime ?? '0'}`;
  return owner;
}

/** A fresh mode-700 directory for a secret's file, named after this process. */
export function makeSecretDir(kind: SecretDirKind, root = secretRoot()): Promise<string> {
  return mkdtemp(join(root, `${kind}-${ownerTag()}-`));
}

/**
 * Removes the secret directories of processes that are gone, under `roots` (by default where
 * they go now, and the temp folder, where earlier versions put them); returns their names.
 */
export async function sweepSecretDirs(roots: string | string[] = [secretRoot(), tmpdir()]): Promise<string[]> {
  const removed: string[] = [];
  for (const root of new Set(typeof roots === 'string' ? [roots] : roots)) removed.push(...(await sweepRoot(root)));
  return removed;
}

async function sweepRoot(root: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = OWNED.exec(name);
    if (!m || !KINDS.includes(m[1] as SecretDirKind)) continue;
    if (!hasExited(Number(m[2]), m[3]!)) continue;
    if (!(await madeByThisUser(join(root, name)))) continue;
    await rm(join(root, name), { recursive: true, force: true }).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

/** A directory (not a link) owned by the user this process runs as: one an agent could have made. */
async function madeByThisUser(path: string): Promise<boolean> {
  try {
    const st = await lstat(path);
    return st.isDirectory() && (process.getuid === undefined || st.uid === process.getuid());
  } catch {
    return false;
  }
}
