// The user's editor on a temporary file, as virsh's vshEditWriteToTempFile and vshEditFile
// run it for the *-edit commands, except that no shell is ever involved.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from './errors.js';

type Env = Record<string, string | undefined>;

/**
 * $VISUAL, then $EDITOR, then vi (an empty one counts as unset), split on whitespace: `emacs -nw`
 * works as in virsh. virsh hands an $EDITOR with spaces or other characters to `sh -c`; this
 * splits it instead, so no quoting, variables or `;` are interpreted, ever.
 */
export function editorArgv(env: Env): string[] {
  const chosen = [env.VISUAL, env.EDITOR].find((e) => e !== undefined && e.trim() !== '') ?? 'vi';
  return chosen.trim().split(/\s+/);
}

/** Writes `text` to a new file only the user can read (virsh's $TMPDIR/virshXXXXXX.xml). */
export async function writeTempXml(env: Env, text: string): Promise<string> {
  // absolute, so that a TMPDIR such as '-x' cannot reach the editor as an option
  const dir = resolve(env.TMPDIR || tmpdir());
  const file = join(dir, `cisternctl${randomBytes(6).toString('hex')}.xml`);
  try {
    await writeFile(file, text, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    throw new UsageError(`failed to create temporary file: ${(err as Error).message}`);
  }
  return file;
}

export async function removeTempFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Runs the editor on `file` with cisternctl's stdin, stdout and stderr, and waits for it.
 * A failure is reported as libvirt's virCommandWait reports it. execa (argv, no shell) is
 * loaded only here, so that no other command pays for loading it.
 */
export async function runEditor(env: Env, file: string): Promise<void> {
  const argv = [...editorArgv(env), file];
  const shown = argv.join(' ');
  const { execa } = await import('execa');
  const result = await execa(argv[0]!, argv.slice(1), { stdio: 'inherit', env, extendEnv: false, reject: false });
  if (result.exitCode === 0) return;
  const code = (result.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'EACCES') {
    throw new UsageError(`cannot execute binary ${argv[0]}: ${code === 'ENOENT' ? 'No such file or directory' : 'Permission denied'}`);
  }
  if (result.signal) throw new UsageError(`internal error: Child process (${shown}) unexpected fatal signal ${result.signal}`);
  if (result.failed && result.exitCode === undefined) throw new UsageError(`cannot execute binary ${argv[0]}: ${result.shortMessage}`);
  throw new UsageError(`internal error: Child process (${shown}) unexpected exit status ${result.exitCode}`);
}
