// Resource names (AIP-122): hosts/{host}/pools/{pool}/volumes/{volume}.
import { InvalidArgumentError } from '../errors/errors.js';
import { checkExistingVolumeName, checkHostId, checkObjectName, printable } from './names.js';

export { printable };

export interface PoolRef { host: string; pool: string }
export interface VolumeRef extends PoolRef { volume: string }

export const hostName = (host: string): string => `hosts/${host}`;
export const poolName = (host: string, pool: string): string => `hosts/${host}/pools/${pool}`;
export const volumeName = (host: string, pool: string, volume: string): string =>
  `hosts/${host}/pools/${pool}/volumes/${volume}`;

/** Accepts `hosts/{host}` or a bare host id. */
export function parseHostName(value: string, field = 'host'): string {
  const host = value.startsWith('hosts/') ? value.slice('hosts/'.length) : value;
  // a '/' left is a name of something else (hosts/a/, host/a, hosts/a/pools/p): say what the
  // field takes, about the value as sent, rather than call a fragment of it a bad host id
  if (host.includes('/')) {
    throw new InvalidArgumentError(field, `'${printable(value)}' is not a host resource name; expected hosts/{host} or a host id`);
  }
  checkHostId(host, field);
  return host;
}

export function parsePoolName(value: string, field = 'name'): PoolRef {
  const parts = value.split('/');
  if (parts.length !== 4 || parts[0] !== 'hosts' || parts[2] !== 'pools') {
    throw new InvalidArgumentError(field, `'${printable(value)}' is not a pool resource name; expected hosts/{host}/pools/{pool}`);
  }
  checkHostId(parts[1]!, field);
  checkObjectName(parts[3]!, field, 'pool name');
  return { host: parts[1]!, pool: parts[3]! };
}

export function parseVolumeName(value: string, field = 'name'): VolumeRef {
  const parts = value.split('/');
  if (parts.length !== 6 || parts[0] !== 'hosts' || parts[2] !== 'pools' || parts[4] !== 'volumes') {
    throw new InvalidArgumentError(
      field,
      `'${printable(value)}' is not a volume resource name; expected hosts/{host}/pools/{pool}/volumes/{volume}`,
    );
  }
  checkHostId(parts[1]!, field);
  checkObjectName(parts[3]!, field, 'pool name');
  // a volume a name refers to may have any name a refresh lists (a new one is checked where it is made)
  checkExistingVolumeName(parts[5]!, field);
  return { host: parts[1]!, pool: parts[3]!, volume: parts[5]! };
}
