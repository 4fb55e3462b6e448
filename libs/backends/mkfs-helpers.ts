// Which filesystems mkfs can make on this host. util-linux's mkfs -t TYPE only runs the helper
// mkfs.TYPE, looked up in /sbin/fs.d, /sbin/fs, /sbin and then PATH; libvirt's schema takes
// formats no Linux host has a helper for (iso9660, vmfs, ufs, gfs) and others only some have
// (hfs+, udf, gfs2, ocfs2). Asked before a build makes anything, a missing helper is a refusal
// naming it, not the target directory made and then an INTERNAL "failed to execute mkfs.TYPE".
import { accessSync, constants as fsc, statSync } from 'node:fs';
import { join } from 'node:path';

/** util-linux's FS_SEARCH_PATH, which mkfs puts before PATH. */
const FS_SEARCH_PATH: readonly string[] = ['/sbin/fs.d', '/sbin/fs', '/sbin'];

/** The directories mkfs looks for its helpers in, in its order. */
export function defaultMkfsSearchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...FS_SEARCH_PATH, ...(env.PATH ?? '/bin').split(':').filter(Boolean)];
}

/** Whether `mkfs.TYPE` is an executable file in one of `searchPath`. */
export function hasMkfsHelper(fsType: string, searchPath: readonly string[]): boolean {
  return searchPath.some((dir) => {
    const helper = join(dir, `mkfs.${fsType}`);
    try {
      accessSync(helper, fsc.X_OK);
      return statSync(helper).isFile();
    } catch {
      return false;
    }
  });
}
