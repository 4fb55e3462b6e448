// pool-capabilities, find-storage-pool-sources, find-storage-pool-sources-as.
import { FindPoolSourcesRequest, GetPoolCapabilitiesRequest } from '../../libs/proto/cistern/v1/storage.js';
import { req, str } from '../args.js';
import type { Command } from '../command.js';
import { attempt, emptyOptionError, underContext, UsageError } from '../errors.js';
import { readXmlFile } from '../files.js';
import { parsePoolType } from '../format/pool.js';
import { xmlEscape } from '../format/xml.js';
import { resolveHost } from '../resolve.js';
import { HOST_OPTION } from './pool-define.js';
import { withNewline } from './pool-info.js';

export const poolCapabilities: Command = {
  name: 'pool-capabilities',
  help: 'storage pool capabilities',
  description: 'Returns capabilities of storage pool support.',
  options: [HOST_OPTION],
  async run(ctx) {
    const api = ctx.api();
    const host = await resolveHost(api, str(ctx.opts, 'host'));
    const caps = await attempt('failed to get storage pool capabilities', () =>
      api.getPoolCapabilities(GetPoolCapabilitiesRequest.create({ host })));
    // The document as libvirt prints it; built from the type list when the server sends only that.
    // the XML library is loaded only here: every other command starts without it
    const xml = caps.xml || (caps.types.length > 0 ? (await import('../../libs/xml/capabilities.js')).formatPoolCapabilitiesXml(caps.types) : '');
    // virsh 9.0 prints it with "%s\n" (cmdPoolCapabilities): the document's own newline, then a blank line
    ctx.print(`${withNewline(xml)}\n`);
  },
};

export const findStoragePoolSources: Command = {
  name: 'find-storage-pool-sources',
  help: 'discover potential storage pool sources',
  description: 'Returns XML <sources> document.',
  options: [
    { name: 'type', type: 'string', required: true, nonEmpty: true, help: 'type of storage pool sources to discover' },
    { name: 'srcSpec', type: 'string', nonEmpty: true, help: 'optional file of source xml to query for pools' },
    HOST_OPTION,
  ],
  async run(ctx) {
    const type = req(ctx.opts, 'type');
    // libvirt refuses an unknown type under virsh's context line
    const poolType = underContext(`Failed to find any ${type} pool sources`, () => parsePoolType(type));
    const specFile = str(ctx.opts, 'srcSpec');
    const sourceXml = specFile !== undefined ? await readXmlFile(specFile) : '';
    const api = ctx.api();
    const host = await resolveHost(api, str(ctx.opts, 'host'));
    const res = await attempt(`Failed to find any ${type} pool sources`, () =>
      api.findPoolSources(FindPoolSourcesRequest.create({ host, type: poolType, sourceXml })));
    ctx.print(withNewline(res.xml));
  },
};

/** The <source> spec virsh builds from --host/--port/--initiator. */
export function sourceSpecXml(host: string | undefined, port: string | undefined, initiator: string | undefined): string {
  if (host === undefined) return '';
  const e = xmlEscape;
  let xml = `<source>\n  <host name='${e(host)}'${port !== undefined ? ` port='${e(port)}'` : ''}/>\n`;
  if (initiator !== undefined) xml += `  <initiator>\n    <iqn name='${e(initiator)}'/>\n  </initiator>\n`;
  return `${xml}</source>\n`;
}

export const findStoragePoolSourcesAs: Command = {
  name: 'find-storage-pool-sources-as',
  help: 'find potential storage pool sources',
  description: 'Returns XML <sources> document.\n    Here --host is the storage host to query (as in virsh); the Cistern host that runs the query is --agent-host.',
  options: [
    { name: 'type', type: 'string', required: true, nonEmpty: true, help: 'type of storage pool sources to find' },
    { name: 'host', type: 'string', nonEmpty: true, help: 'optional host to query' },
    { name: 'port', type: 'string', help: 'optional port to query' },
    { name: 'initiator', type: 'string', nonEmpty: true, help: 'optional initiator IQN to use for query' },
    { name: 'agent-host', type: 'string', named: true, metavar: 'host', nonEmpty: true, help: 'Cistern host id that runs the query (default: the only host)' },
  ],
  async run(ctx) {
    const type = req(ctx.opts, 'type');
    const poolType = underContext(`Failed to find any ${type} pool sources`, () => parsePoolType(type));
    const storageHost = str(ctx.opts, 'host');
    const initiator = str(ctx.opts, 'initiator');
    const port = str(ctx.opts, 'port');
    // virsh reads --port only with --host, and then an empty one is refused with a second line
    if (storageHost !== undefined && port === '') throw new UsageError(emptyOptionError('port').message, 'missing argument');
    const sourceXml = sourceSpecXml(storageHost, port, initiator);
    const api = ctx.api();
    const host = await resolveHost(api, str(ctx.opts, 'agent-host'));
    const res = await attempt(`Failed to find any ${type} pool sources`, () =>
      api.findPoolSources(FindPoolSourcesRequest.create({ host, type: poolType, sourceXml })));
    ctx.print(withNewline(res.xml));
  },
};
