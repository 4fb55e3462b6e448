// GlusterFS volumes of a host for netfs FindPoolSources: libvirt's
// virStorageBackendFindGlusterPoolSources / virStorageUtilGlusterExtractPoolSources
// (storage_util.c). It asks the gluster CLI, when the host has one:
//   gluster --xml --log-file=/dev/null volume info all --remote-host=HOST
// and takes the name of every //volumes/volume as a source (dir = the volume name,
// format glusterfs). No gluster CLI, or a CLI that fails (no glusterd on HOST), means
// no gluster volumes, not an error: NFS discovery may still find something.
import { PoolSource } from '../proto/cistern/v1/storage.js';
import { CommandFailedError, DeadlineExceededError, InternalError } from '../errors/errors.js';
import { child, childrenNamed, parseXmlDocument, type XmlElement } from '../xml/safe-parse.js';
import type { CommandRunner } from './runner.js';

export const GLUSTER = 'gluster';
const GLUSTER_TIMEOUT_MS = 60_000;

/** The command line libvirt runs (HOST is checked by the caller: no leading '-', no spaces). */
export function glusterVolumeInfoArgv(host: string, gluster = GLUSTER): string[] {
  return [gluster, '--xml', '--log-file=/dev/null', 'volume', 'info', 'all', `--remote-host=${host}`];
}

/** Every element named `local` below `el` (XPath //local). */
function descendants(el: XmlElement, local: string, out: XmlElement[] = []): XmlElement[] {
  for (const c of el.children) {
    if (c.local === local && c.ns === '') out.push(c);
    descendants(c, local, out);
  }
  return out;
}

/** The netfs sources in `gluster --xml volume info all` output: one per //volumes/volume. */
export function parseGlusterVolumes(host: string, xml: string): PoolSource[] {
  let root: XmlElement;
  try {
    root = parseXmlDocument(xml, 'gluster_cli_output');
  } catch (err) {
    throw new InternalError(`cannot read the gluster CLI output for host '${host}': ${(err as Error).message}`);
  }
  const sources: PoolSource[] = [];
  for (const volumes of descendants(root, 'volumes')) {
    for (const volume of childrenNamed(volumes, 'volume')) {
      const name = child(volume, 'name')?.text.trim();
      if (!name) throw new InternalError(`failed to extract gluster volume name (host '${host}')`);
      sources.push(PoolSource.create({ hosts: [{ name: host, port: 0 }], dir: name, format: 'glusterfs' }));
    }
  }
  return sources;
}

/** The gluster volumes HOST serves; [] when there is no gluster CLI or it cannot ask HOST. */
export async function findGlusterSources(runner: CommandRunner, host: string, options: { gluster?: string; signal?: AbortSignal } = {}): Promise<PoolSource[]> {
  let stdout: string;
  try {
    ({ stdout } = await runner.run(glusterVolumeInfoArgv(host, options.gluster), { signal: options.signal, timeoutMs: GLUSTER_TIMEOUT_MS }));
  } catch (err) {
    // not installed (libvirt: not in PATH), a non-zero exit, or no answer from HOST within the
    // limit: no gluster volumes (what NFS found still stands)
    if (err instanceof CommandFailedError || err instanceof DeadlineExceededError) return [];
    throw err;
  }
  return parseGlusterVolumes(host, stdout);
}
