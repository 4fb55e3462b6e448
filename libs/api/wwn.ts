// A Fibre Channel WWN as one value, however the XML spells it. libvirt's virValidateWWN takes
// 16 hex digits with an optional 0x; the agent's vHBA code (libs/backends/vhba.ts) looks up
// and writes a WWN lower case without the 0x, so '0x2001001B32A9DA4E' and '2001001b32a9da4e'
// name one port: the define-time conflict rule must compare them as the agent uses them.

/** The WWN as the agent uses it: lower case, no 0x prefix ('' stays ''). */
export function wwnKey(wwn: string): string {
  return wwn.replace(/^0x/, '').toLowerCase();
}
