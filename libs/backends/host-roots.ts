// Where a backend finds the host's /sys, /dev and /proc. Tests point an agent at fixture trees
// through CISTERN_SYSFS_ROOT, CISTERN_DEV_ROOT and CISTERN_PROC_ROOT; one place reads them so
// every backend of that agent looks at the same host.

export const DEFAULT_SYSFS_ROOT = '/sys';
export const DEFAULT_DEV_ROOT = '/dev';
export const DEFAULT_PROC_ROOT = '/proc';

export interface HostRootOptions {
  sysfsRoot?: string;
  devRoot?: string;
  procRoot?: string;
}

export interface HostRoots {
  sysfs: string;
  dev: string;
  proc: string;
}

/** A backend's roots: its options first, then the environment, then the real host's. */
export function hostRoots(options: HostRootOptions = {}, env: NodeJS.ProcessEnv = process.env): HostRoots {
  return {
    sysfs: options.sysfsRoot ?? nonEmpty(env.CISTERN_SYSFS_ROOT) ?? DEFAULT_SYSFS_ROOT,
    dev: options.devRoot ?? nonEmpty(env.CISTERN_DEV_ROOT) ?? DEFAULT_DEV_ROOT,
    proc: options.procRoot ?? nonEmpty(env.CISTERN_PROC_ROOT) ?? DEFAULT_PROC_ROOT,
  };
}

/** An empty variable is unset: `CISTERN_DEV_ROOT= agent` must not make paths relative. */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
