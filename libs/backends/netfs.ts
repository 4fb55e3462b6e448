// The netfs pool backend: libvirt's storage_backend_fs.c "netfs" pool. A network export
// (NFS, CIFS, GlusterFS) mounted on the pool target with the command line libvirt builds
// (storage_util.c virStorageBackendFileSystemMountCmd); mounted, it is a dir pool (the
// shared MountedDirBackend in fs.ts). FindPoolSources lists a host's NFS exports with
// `showmount --no-headers --exports HOST` and its GlusterFS volumes with the gluster CLI
// (gluster-sources.ts), as libvirt does.
import { PoolSource, PoolType, type BuildFlags, type PoolDefinition } from '../proto/cistern/v1/storage.js';
import { CommandFailedError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors/errors.js';
import { printable } from '../api/names.js';
import { checkNetHost, checkNfsVersion, checkSourceDir } from '../api/source-names.js';

export { checkNetHost } from '../api/source-names.js';
import { NETFS_POOL_FORMATS } from '../xml/formats.js';
import type { BackendContext, PoolContext } from './backend.js';
import { MountedDirBackend, type MountedBackendOptions, type PreparedFormat, type ResolvedMount } from './fs.js';
import { poolTarget } from './dir/paths.js';
import { mountOptionString } from './mount.js';
import { GLUSTER, findGlusterSources } from './gluster-sources.js';

/** host:dir for NFS and GlusterFS (IPv6 addresses in brackets), //host/dir for CIFS. */
export function netfsSourceSpec(format: string, host: string, dir: string): string {
  if (format === 'cifs') return `//${host}/${dir.replace(/^\/+/, '')}`;
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${h}:${dir}`;
}

/**
 * The options libvirt adds per format: nfsvers=N from <protocol ver='N'/> (auto, nfs),
 * guest for cifs, direct-io-mode=1 for glusterfs.
 */
export function netfsTypeOptions(format: string, protocolVersion: string): string[] {
  if (protocolVersion) {
    if (format !== 'auto' && format !== 'nfs') {
      throw new InvalidArgumentError('source.protocol_version', `protocol ver is only supported for netfs pools with format nfs or auto, not ${format}`);
    }
    checkNfsVersion(protocolVersion);
    return [`nfsvers=${protocolVersion}`];
  }
  if (format === 'cifs') return ['guest'];
  if (format === 'glusterfs') return ['direct-io-mode=1'];
  return [];
}

/**
 * Export paths from `showmount --no-headers --exports HOST`: each line is the path
 * (which may contain spaces) and the client list; libvirt's regex ^(/.*\S) +\S+$.
 */
export function parseShowmountExports(stdout: string): string[] {
  const paths: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = /^(\/.*\S) +\S+$/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

export interface NetfsBackendOptions extends MountedBackendOptions {
  showmount?: string;
  /** The gluster CLI asked for GlusterFS volumes by FindPoolSources. */
  gluster?: string;
}

const SHOWMOUNT_TIMEOUT_MS = 60_000;

export class NetfsBackend extends MountedDirBackend {
  override readonly type: PoolType = PoolType.POOL_TYPE_NETFS;
  override readonly poolFormats: readonly string[] = NETFS_POOL_FORMATS;
  private readonly showmount: string;
  private readonly gluster: string;

  constructor(options: NetfsBackendOptions = {}) {
    super(options, ['findPoolSources']);
    this.showmount = options.showmount ?? 'showmount';
    this.gluster = options.gluster ?? GLUSTER;
  }

  protected override async resolveMount(pool: PoolDefinition): Promise<ResolvedMount> {
    const format = this.poolFormat(pool);
    const hosts = pool.source?.hosts ?? [];
    if (hosts.length !== 1) {
      throw new InvalidArgumentError('pool.source.hosts', `pool '${printable(pool.name)}' needs exactly one source host (<host name='...'/>), it has ${hosts.length}`);
    }
    const host = checkNetHost(hosts[0]!.name);
    const dir = checkSourceDir(pool.source?.dir ?? '', `pool '${printable(pool.name)}' has no source directory (<dir path='...'/>)`);
    const target = poolTarget(pool);
    const source = netfsSourceSpec(format, host, dir);
    return {
      spec: {
        fsType: format === 'auto' ? undefined : format,
        source,
        target,
        options: mountOptionString(netfsTypeOptions(format, pool.source?.protocolVersion ?? ''), pool.mountOptions ?? []),
      },
      source: { kind: 'network', spec: source },
      // the same export may be mounted in several places
      exclusive: false,
    };
  }

  /** A netfs pool has no device to format: overwrite / no_overwrite fail before anything is changed. */
  protected override async prepareFormat(ctx: PoolContext, _flags: BuildFlags): Promise<PreparedFormat> {
    throw new FailedPreconditionError(
      `no source device specified when formatting pool '${printable(ctx.pool.name)}': a netfs pool mounts a network export and has nothing to format; build it without overwrite/no_overwrite`,
    );
  }

  /**
   * virStorageBackendFileSystemNetFindPoolSources: one nfs source per export of the host
   * (showmount), then one glusterfs source per gluster volume (gluster CLI, if installed).
   * An error only when showmount failed and gluster found nothing.
   */
  async findPoolSources(ctx: BackendContext, hint: PoolSource | undefined): Promise<PoolSource[]> {
    const hosts = hint?.hosts ?? [];
    if (hosts.length !== 1) {
      throw new InvalidArgumentError('source.hosts', `finding netfs sources needs exactly one host (<source><host name='...'/></source>), got ${hosts.length}`);
    }
    const host = checkNetHost(hosts[0]!.name);
    // libvirt parses the spec as a netfs source, whose format must be a netfs one; it does not
    // narrow the discovery (NFS exports and gluster volumes are listed either way)
    const format = hint?.format ?? '';
    if (format && !NETFS_POOL_FORMATS.includes(format)) {
      throw new InvalidArgumentError('source.format', `unknown pool format type '${printable(format)}' for netfs pools; allowed: ${NETFS_POOL_FORMATS.join(', ')}`);
    }
    const argv = [this.showmount, '--no-headers', '--exports', '--', host];
    let nfs: PoolSource[] | undefined;
    let nfsError: CommandFailedError | DeadlineExceededError | undefined;
    try {
      const { stdout } = await ctx.runner.run(argv, { signal: ctx.signal, timeoutMs: SHOWMOUNT_TIMEOUT_MS });
      nfs = parseShowmountExports(stdout).map((dir) => PoolSource.create({ hosts: [{ name: host, port: 0 }], dir, format: 'nfs' }));
    } catch (err) {
      // a host that drops the packets runs showmount into its limit: that is showmount failing
      // (libvirt then asks gluster too); the caller's own cancel or deadline ends it all
      if (!(err instanceof CommandFailedError) && !(err instanceof DeadlineExceededError)) throw err;
      nfsError = err;
    }
    // libvirt asks gluster too, and fails only when NFS failed and gluster found nothing
    const gluster = await findGlusterSources(ctx.runner, host, { gluster: this.gluster, signal: ctx.signal });
    if (nfs) return [...nfs, ...gluster];
    if (gluster.length > 0) return gluster;
    const err = nfsError!;
    if (err instanceof DeadlineExceededError) {
      throw new NotFoundError(`no storage pools were found on host '${printable(host)}': showmount got no answer within ${SHOWMOUNT_TIMEOUT_MS / 1000} s`, {
        command: argv.join(' '),
      });
    }
    if (err.exitCode === undefined && /ENOENT|not found/i.test(err.stderr)) {
      throw new FailedPreconditionError(`cannot list the exports of '${printable(host)}': ${this.showmount} is not installed (Debian: nfs-common)`);
    }
    throw new NotFoundError(`no storage pools were found on host '${printable(host)}': ${err.stderr.trim() || 'showmount failed'}`, {
      command: argv.join(' '),
      stderr: err.stderr.trim(),
    });
  }
}

export const netfsBackend = new NetfsBackend();
