// The XML virsh builds for pool-define-as/pool-create-as --print-xml
// (virshBuildPoolXML) and vol-create-as --print-xml, element for element.
// Unlike virsh, values are escaped.

export interface PoolAsFields {
  name: string;
  type: string;
  sourceHost?: string;
  sourcePath?: string;
  sourceDev?: string;
  sourceName?: string;
  target?: string;
  sourceFormat?: string;
  sourceInitiator?: string;
  authType?: string;
  authUsername?: string;
  secretUsage?: string;
  secretUuid?: string;
  adapterName?: string;
  adapterWwnn?: string;
  adapterWwpn?: string;
  adapterParent?: string;
  adapterParentWwnn?: string;
  adapterParentWwpn?: string;
  adapterParentFabricWwn?: string;
  sourceProtocolVer?: string;
}

export function xmlEscape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

export function poolAsXml(f: PoolAsFields): string {
  const e = xmlEscape;
  const lines: string[] = [`<pool type='${e(f.type)}'>`, `  <name>${e(f.name)}</name>`];
  const fcHost = f.adapterWwnn !== undefined && f.adapterWwpn !== undefined;
  if (f.sourceHost !== undefined || f.sourcePath !== undefined || f.sourceDev !== undefined ||
      f.sourceInitiator !== undefined || f.sourceFormat !== undefined || f.sourceName !== undefined ||
      fcHost || f.adapterName !== undefined) {
    lines.push('  <source>');
    if (f.sourceHost !== undefined) lines.push(`    <host name='${e(f.sourceHost)}'/>`);
    if (f.sourcePath !== undefined) lines.push(`    <dir path='${e(f.sourcePath)}'/>`);
    if (f.sourceDev !== undefined) lines.push(`    <device path='${e(f.sourceDev)}'/>`);
    if (f.sourceInitiator !== undefined) {
      lines.push('    <initiator>', `      <iqn name='${e(f.sourceInitiator)}'/>`, '    </initiator>');
    }
    if (fcHost) {
      let a = "    <adapter type='fc_host'";
      if (f.adapterParent !== undefined) a += ` parent='${e(f.adapterParent)}'`;
      else if (f.adapterParentWwnn !== undefined && f.adapterParentWwpn !== undefined) {
        a += ` parent_wwnn='${e(f.adapterParentWwnn)}' parent_wwpn='${e(f.adapterParentWwpn)}'`;
      } else if (f.adapterParentFabricWwn !== undefined) a += ` parent_fabric_wwn='${e(f.adapterParentFabricWwn)}'`;
      lines.push(`${a} wwnn='${e(f.adapterWwnn!)}' wwpn='${e(f.adapterWwpn!)}'/>`);
    } else if (f.adapterName !== undefined) {
      lines.push(`    <adapter type='scsi_host' name='${e(f.adapterName)}'/>`);
    }
    if (f.authType !== undefined && f.authUsername !== undefined && (f.secretUsage !== undefined || f.secretUuid !== undefined)) {
      lines.push(`    <auth type='${e(f.authType)}' username='${e(f.authUsername)}'>`);
      lines.push(f.secretUsage !== undefined
        ? `      <secret usage='${e(f.secretUsage)}'/>`
        : `      <secret uuid='${e(f.secretUuid!)}'/>`);
      lines.push('    </auth>');
    }
    if (f.sourceFormat !== undefined) lines.push(`    <format type='${e(f.sourceFormat)}'/>`);
    if (f.sourceName !== undefined) lines.push(`    <name>${e(f.sourceName)}</name>`);
    if (f.sourceProtocolVer !== undefined) lines.push(`    <protocol ver='${e(f.sourceProtocolVer)}'/>`);
    lines.push('  </source>');
  }
  if (f.target !== undefined) lines.push('  <target>', `    <path>${e(f.target)}</path>`, '  </target>');
  lines.push('</pool>');
  return `${lines.join('\n')}\n`;
}

export interface VolAsFields {
  name: string;
  capacity: bigint;
  allocation?: bigint;
  format?: string;
  backingPath?: string;
  backingFormat?: string;
}

export function volAsXml(f: VolAsFields): string {
  const e = xmlEscape;
  const lines = ['<volume>', `  <name>${e(f.name)}</name>`, `  <capacity>${f.capacity}</capacity>`];
  if (f.allocation !== undefined) lines.push(`  <allocation>${f.allocation}</allocation>`);
  if (f.format !== undefined) lines.push('  <target>', `    <format type='${e(f.format)}'/>`, '  </target>');
  if (f.backingPath !== undefined) {
    lines.push('  <backingStore>', `    <path>${e(f.backingPath)}</path>`);
    if (f.backingFormat !== undefined) lines.push(`    <format type='${e(f.backingFormat)}'/>`);
    lines.push('  </backingStore>');
  }
  lines.push('</volume>');
  return `${lines.join('\n')}\n`;
}
