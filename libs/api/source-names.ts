// The checks of a pool's source names that both the coordinator (at define, so that a bad
// definition is refused before it is stored) and the agent (before a value reaches a command)
// make: network hosts, export directories, LVM volume group names, iSCSI portals and names.
import { InvalidArgumentError } from '../errors/errors.js';
import { printable } from './names.js';

/** A host name or address as it may appear in host:dir: no whitespace, '/', control characters, leading '-'. */
export function checkNetHost(host: string, field = 'source.hosts[0].name'): string {
  let problem: string | undefined;
  if (typeof host !== 'string' || host.length === 0) problem = 'is empty';
  else if (host.length > 255) problem = `is ${host.length} characters long`;
  else if (/[\x00-\x20\x7f]/.test(host)) problem = 'contains whitespace or a control character';
  else if (host.includes('/')) problem = "contains '/'";
  else if (host.startsWith('-')) problem = "starts with '-'";
  else if (host.includes('@') || host.includes(',')) problem = "contains '@' or ','";
  if (problem) {
    throw new InvalidArgumentError(field, `host '${printable(String(host ?? ''))}' ${problem}; give a host name or an IP address`);
  }
  return host;
}

/** A network export's directory: no control characters, no '..' (empty: `missing` says what is wanted). */
export function checkSourceDir(dir: string, missing: string, field = 'source.dir'): string {
  if (!dir) throw new InvalidArgumentError(field, missing);
  if (/[\x00-\x1f\x7f]/.test(dir)) throw new InvalidArgumentError(field, `source directory '${printable(dir)}' contains a control character`);
  if (dir.split('/').includes('..')) throw new InvalidArgumentError(field, `source directory '${printable(dir)}' contains '..'; give the export's path without '..'`);
  return dir;
}

/**
 * An NFS protocol version as mount's nfsvers= takes it: 3, 4, or a minor version such as 4.1.
 * libvirt 9.0 keeps <protocol ver> as a string and refuses only ','; anything more than a
 * version number would be another mount option, so that is what is held to here.
 */
export const NFS_VERSION_RULE = 'a version such as 3, 4 or 4.1 (1-3 digits, optionally a dot and 1-3 digits)';
export function checkNfsVersion(ver: string, field = 'source.protocol_version'): string {
  if (typeof ver !== 'string' || !/^[0-9]{1,3}(\.[0-9]{1,3})?$/.test(ver)) {
    throw new InvalidArgumentError(field, `storage pool protocol ver '${printable(String(ver ?? ''))}' is not an NFS version; expected ${NFS_VERSION_RULE}`);
  }
  return ver;
}

/** LVM's NAME_LEN: names are at most NAME_LEN - 1 characters. */
export const LVM_NAME_LEN = 128;
const NAME_CHARS = /^[A-Za-z0-9+_.-]+$/;
export const LVM_NAME_RULE = `1-${LVM_NAME_LEN - 1} characters of A-Z a-z 0-9 + _ . -, not starting with '-', not '.' or '..'`;
/** Why LVM would refuse `name` for a volume group or logical volume, or undefined. */
export function lvmNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'is empty';
  if (name.length > LVM_NAME_LEN - 1) return `is ${name.length} characters long`;
  if (name.startsWith('-')) return "starts with '-'";
  if (name === '.' || name === '..') return `is '${name}', which LVM refuses`;
  if (!NAME_CHARS.test(name)) {
    const bad = [...new Set([...name].filter((c) => !/[A-Za-z0-9+_.-]/.test(c)))].map((c) => `'${printable(c)}'`);
    return `contains ${bad.join(', ')}, which LVM refuses`;
  }
  return undefined;
}

/** A volume group name as vgcreate accepts it. */
export function checkVgName(name: string, field = 'source.name'): string {
  const problem = lvmNameProblem(name);
  if (problem) throw new InvalidArgumentError(field, `volume group name '${printable(String(name ?? ''))}' ${problem}; allowed: ${LVM_NAME_RULE}`);
  return name;
}

const HOST_RE = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;

/** A host name, IPv4 or IPv6 address (no brackets). */
export function checkIscsiHost(host: string, field = 'source.hosts[0].name'): string {
  if (typeof host !== 'string' || !host) throw new InvalidArgumentError(field, 'a host name or address is required');
  const ok = host.length <= 253 && (HOST_RE.test(host) || (host.includes(':') && IPV6_RE.test(host)));
  if (!ok) throw new InvalidArgumentError(field, `'${printable(host)}' is not a host name or IP address (brackets are added for IPv6, do not give them)`);
  return host;
}

/**
 * mount(8) options that make a mount something else than a filesystem of the pool's source
 * on its target: bind and move take any directory or mount of the host and put it where the
 * pool's volumes are served from (with no nodev, nosuid, noexec), remount changes a mount
 * that is already there, make-* change how mounts propagate.
 */
const MOUNT_OPERATIONS = /^(bind|rbind|move|remount|make-(r?)(shared|slave|private|unbindable)|x-mount\.\S*)$/i;

/**
 * Options that undo the nodev,nosuid,noexec every pool mount gets first. A volume is opened as
 * a block device when it is one: with dev, a device node in the pool's filesystem (an fs image
 * an operator uploaded, an NFS export someone else serves) would let an upload write the host
 * disk it names. libvirt takes them (and logs the pool as tainted); Cistern refuses them.
 */
const UNDO_DEFAULTS = /^(dev|suid|exec)$/i;

/**
 * Options whose value is a file on the host that a mount helper opens as root: mount.glusterfs
 * gives log-file= and dump-fuse= to the glusterfs client, which writes its log and every FUSE
 * request there (appending to /etc/cron.d/x, say); mount.cifs reads credentials= (cred=) and
 * sends the user and password lines it finds to the server. Where a pool's files go is the
 * pool's target, nothing else on the host (docs/security.md).
 */
const HOST_FILE_OPTIONS = /^(log-file|dump-fuse|credentials|cred)$/i;

/** A pool's mount option (fs:mount_opts): one option, none that changes what the mount is or names a host file. */
export function checkMountOptionName(option: string, field: string): string {
  if (UNDO_DEFAULTS.test(option)) {
    throw new InvalidArgumentError(
      field,
      `mount option '${printable(option)}' undoes nodev, nosuid, noexec, which every pool is mounted with (a device node or set-uid program in the pool's filesystem would take effect); allowed: options of the filesystem mounted from the pool's source, such as noatime, discard, ro, user_xattr`,
    );
  }
  if (MOUNT_OPERATIONS.test(option.split('=')[0]!)) {
    throw new InvalidArgumentError(
      field,
      `mount option '${printable(option)}' changes what the mount is (bind, move, remount, propagation); allowed: options of the filesystem mounted from the pool's source, such as noatime, discard, ro, user_xattr`,
    );
  }
  if (HOST_FILE_OPTIONS.test(option.split('=')[0]!)) {
    throw new InvalidArgumentError(
      field,
      `mount option '${printable(option)}' names a file on the host that the mount helper (mount.glusterfs, mount.cifs) writes or reads as root, outside the pool; allowed: options of the filesystem mounted from the pool's source, such as noatime, discard, ro, user_xattr`,
    );
  }
  return option;
}

/** RFC 7143: an iSCSI name is at most 223 bytes. */
export const ISCSI_NAME_MAX = 223;
const IQN_RE = /^[A-Za-z0-9][A-Za-z0-9.:_-]*$/;

/** An iSCSI name (IQN/EUI/NAA or a plain target name as libvirt accepts): letters, digits, . : _ - */
export function checkIscsiName(name: string, field: string): string {
  if (typeof name !== 'string' || !name) throw new InvalidArgumentError(field, 'an iSCSI name is required');
  if (name.length > ISCSI_NAME_MAX || !IQN_RE.test(name)) {
    throw new InvalidArgumentError(
      field,
      `'${printable(name)}' is not a valid iSCSI name; allowed: 1-${ISCSI_NAME_MAX} of A-Z a-z 0-9 . : _ -, starting with a letter or digit (e.g. iqn.2013-06.com.example:target)`,
    );
  }
  return name;
}
