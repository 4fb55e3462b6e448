// The TargetAddress key of an iSCSI login redirect (RFC 7143 13.8):
// domainname[:port][,portal-group-tag], an IPv6 address in brackets. It comes from the network
// peer, so it is held to what a pool's own host may be (checkIscsiHost) before anything
// connects to it: never a shell word, a path, or a port out of range.
import { checkIscsiHost } from '../api/source-names.js';
import { ISCSI_DEFAULT_PORT } from './libiscsi-tools.js';

/** The host and port of a TargetAddress value, or undefined when it is not one. */
export function parseTargetAddress(value: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s\[\]:,]+))(?::(\d{1,5}))?(?:,\d{1,5})?$/.exec(value);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = m[3] === undefined ? ISCSI_DEFAULT_PORT : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  try {
    checkIscsiHost(host);
  } catch {
    return undefined;
  }
  return { host, port };
}
