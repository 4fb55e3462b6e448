// pool-define, pool-create (from XML files) and pool-define-as, pool-create-as
// (from options, like virshBuildPoolXML; sent as a structured definition).
import {
  AdapterType, BuildFlags, CreatePoolRequest, DefinePoolRequest, PoolDefinition, PoolSource,
  type Pool, type SourceAdapter, type SourceAuth,
} from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str, type OptionSpec, type ParsedOptions } from '../args.js';
import type { Command, CommandContext } from '../command.js';
import { attempt, CommandError, underContext, UsageError } from '../errors.js';
import { readXmlFile } from '../files.js';
import { parsePoolType } from '../format/pool.js';
import { poolAsXml, type PoolAsFields } from '../format/xml.js';
import { displayPool, fleetIsMultiHost, poolHost, poolShortName, resolveHost } from '../resolve.js';
import { VALIDATE_OPTION } from './vol-common.js';

export const HOST_OPTION: OptionSpec = {
  name: 'host', type: 'string', named: true, metavar: 'host', nonEmpty: true, help: 'host id (default: the only host of the fleet)',
};

const BUILD_OPTIONS: OptionSpec[] = [
  { name: 'build', type: 'bool', help: 'build the pool as normal' },
  { name: 'no-overwrite', type: 'bool', help: 'do not overwrite any existing data' },
  { name: 'overwrite', type: 'bool', help: 'overwrite any existing data' },
];

const FILE_OPTION: OptionSpec = {
  name: 'file', type: 'string', required: true, nonEmpty: true, help: 'file containing an XML pool description',
};

// virsh's VIRSH_COMMON_OPT_POOL_X_AS, in its order (the order positional values fill).
const X_AS_FIELDS: Array<[string, keyof PoolAsFields, string]> = [
  ['source-host', 'sourceHost', 'source-host for underlying storage'],
  ['source-path', 'sourcePath', 'source path for underlying storage'],
  ['source-dev', 'sourceDev', 'source device for underlying storage'],
  ['source-name', 'sourceName', 'source name for underlying storage'],
  ['target', 'target', 'target for underlying storage'],
  ['source-format', 'sourceFormat', 'format for underlying storage'],
  ['auth-type', 'authType', 'auth type to be used for underlying storage'],
  ['auth-username', 'authUsername', 'auth username to be used for underlying storage'],
  ['secret-usage', 'secretUsage', 'auth secret usage to be used for underlying storage'],
  ['secret-uuid', 'secretUuid', 'auth secret UUID to be used for underlying storage'],
  ['adapter-name', 'adapterName', 'adapter name to be used for underlying storage'],
  ['adapter-wwnn', 'adapterWwnn', 'adapter wwnn to be used for underlying storage'],
  ['adapter-wwpn', 'adapterWwpn', 'adapter wwpn to be used for underlying storage'],
  ['adapter-parent', 'adapterParent', 'adapter parent scsi_hostN to be used for underlying vHBA storage'],
  ['adapter-parent-wwnn', 'adapterParentWwnn', 'adapter parent scsi_hostN wwnn to be used for underlying vHBA storage'],
  ['adapter-parent-wwpn', 'adapterParentWwpn', 'adapter parent scsi_hostN wwpn to be used for underlying vHBA storage'],
  ['adapter-parent-fabric-wwn', 'adapterParentFabricWwn', 'adapter parent scsi_hostN fabric_wwn to be used for underlying vHBA storage'],
  ['source-protocol-ver', 'sourceProtocolVer', 'nfsvers value for NFS pool mount option'],
  ['source-initiator', 'sourceInitiator', 'initiator iqn for underlying storage'],
];

const X_AS_OPTIONS: OptionSpec[] = [
  { name: 'name', type: 'string', required: true, nonEmpty: true, help: 'name of the pool' },
  { name: 'type', type: 'string', required: true, nonEmpty: true, help: 'type of the pool' },
  { name: 'print-xml', type: 'bool', help: "print XML document, but don't define/create" },
  ...X_AS_FIELDS.map(([name, , help]): OptionSpec => ({ name, type: 'string', help })),
  HOST_OPTION,
];

export function poolAsFields(opts: ParsedOptions): PoolAsFields {
  if (str(opts, 'secret-usage') !== undefined && str(opts, 'secret-uuid') !== undefined) {
    throw new UsageError('Options --secret-usage and --secret-uuid are mutually exclusive');
  }
  const fields: PoolAsFields = { name: req(opts, 'name'), type: req(opts, 'type') };
  for (const [option, key] of X_AS_FIELDS) {
    const v = str(opts, option);
    // "" and "-" leave a field out: the `pool-define-as NAME dir - - - - TARGET` idiom.
    if (v !== undefined && v !== '' && v !== '-') (fields as unknown as Record<string, string>)[key] = v;
  }
  return fields;
}

/** The same pool virshBuildPoolXML describes, as a PoolDefinition message. */
export function poolAsDefinition(f: PoolAsFields): PoolDefinition {
  const source = PoolSource.create();
  if (f.sourceHost !== undefined) source.hosts.push({ name: f.sourceHost, port: 0 });
  if (f.sourcePath !== undefined) source.dir = f.sourcePath;
  if (f.sourceDev !== undefined) source.devices.push({ path: f.sourceDev, partSeparator: 0, freeExtents: [] });
  if (f.sourceInitiator !== undefined) source.initiatorIqn = f.sourceInitiator;
  if (f.adapterWwnn !== undefined && f.adapterWwpn !== undefined) {
    const adapter: Partial<SourceAdapter> = { type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: f.adapterWwnn, wwpn: f.adapterWwpn };
    if (f.adapterParent !== undefined) adapter.parent = f.adapterParent;
    else if (f.adapterParentWwnn !== undefined && f.adapterParentWwpn !== undefined) {
      adapter.parentWwnn = f.adapterParentWwnn;
      adapter.parentWwpn = f.adapterParentWwpn;
    } else if (f.adapterParentFabricWwn !== undefined) adapter.parentFabricWwn = f.adapterParentFabricWwn;
    source.adapter = PoolSource.create({ adapter }).adapter;
  } else if (f.adapterName !== undefined) {
    source.adapter = PoolSource.create({ adapter: { type: AdapterType.ADAPTER_TYPE_SCSI_HOST, name: f.adapterName } }).adapter;
  }
  if (f.authType !== undefined && f.authUsername !== undefined && (f.secretUsage !== undefined || f.secretUuid !== undefined)) {
    const auth: Partial<SourceAuth> = {
      type: f.authType,
      username: f.authUsername,
      secret: { uuid: f.secretUsage !== undefined ? '' : f.secretUuid!, usage: f.secretUsage ?? '', type: '' },
    };
    source.auth = PoolSource.create({ auth }).auth;
  }
  if (f.sourceFormat !== undefined) source.format = f.sourceFormat;
  if (f.sourceName !== undefined) source.name = f.sourceName;
  if (f.sourceProtocolVer !== undefined) source.protocolVersion = f.sourceProtocolVer;
  return PoolDefinition.create({
    type: parsePoolType(f.type),
    name: f.name,
    source,
    ...(f.target !== undefined ? { target: { path: f.target } } : {}),
  });
}

function buildFlags(ctx: CommandContext): { build: boolean; buildFlags: BuildFlags } {
  const overwrite = flag(ctx.opts, 'overwrite');
  const noOverwrite = flag(ctx.opts, 'no-overwrite');
  if (overwrite && noOverwrite) throw new UsageError('Options --overwrite and --no-overwrite are mutually exclusive');
  return {
    build: flag(ctx.opts, 'build') || overwrite || noOverwrite,
    buildFlags: BuildFlags.create({ overwrite, noOverwrite }),
  };
}

interface Target {
  host: string;
  /** the new pool's name in messages, as every other command names it: HOST/POOL on a fleet of several hosts */
  name: (pool: Pool) => string;
}

/**
 * --host, or the fleet's only host; asked before the call, so nothing fails after the pool is
 * made. A failure here ('the fleet has 2 hosts ...') comes under the command's context line,
 * as every failure of the call does.
 */
async function targetHost(ctx: CommandContext, context: string): Promise<Target> {
  const api = ctx.api();
  const explicit = str(ctx.opts, 'host');
  try {
    const host = await resolveHost(api, explicit);
    // without --host, resolveHost found the fleet's only host
    const multiHost = explicit !== undefined && await fleetIsMultiHost(api);
    return { host, name: (pool) => displayPool(poolHost(pool), poolShortName(pool), multiHost) };
  } catch (err) {
    throw new CommandError(context, err);
  }
}

export const poolDefine: Command = {
  name: 'pool-define',
  help: 'define an inactive persistent storage pool or modify an existing persistent one from an XML file',
  description: 'Define or modify a persistent storage pool.',
  options: [FILE_OPTION, VALIDATE_OPTION, HOST_OPTION],
  async run(ctx) {
    const file = req(ctx.opts, 'file');
    const xml = await readXmlFile(file);
    const api = ctx.api();
    const context = `Failed to define pool from ${file}`;
    const { host, name } = await targetHost(ctx, context);
    const pool = await attempt(context, () =>
      api.definePool(DefinePoolRequest.create({ host, xml, validate: flag(ctx.opts, 'validate') })));
    ctx.printExtra(`Pool ${name(pool)} defined from ${file}\n`);
  },
};

export const poolCreate: Command = {
  name: 'pool-create',
  help: 'create a pool from an XML file',
  description: 'Create a pool.',
  options: [FILE_OPTION, ...BUILD_OPTIONS, HOST_OPTION],
  async run(ctx) {
    const file = req(ctx.opts, 'file');
    const flags = buildFlags(ctx);
    const xml = await readXmlFile(file);
    const api = ctx.api();
    const context = `Failed to create pool from ${file}`;
    const { host, name } = await targetHost(ctx, context);
    const pool = await attempt(context, () =>
      api.createPool(CreatePoolRequest.create({ host, xml, ...flags })));
    ctx.printExtra(`Pool ${name(pool)} created from ${file}\n`);
  },
};

export const poolDefineAs: Command = {
  name: 'pool-define-as',
  help: 'define a pool from a set of args',
  description: 'Define a pool.',
  options: X_AS_OPTIONS,
  async run(ctx) {
    const fields = poolAsFields(ctx.opts);
    if (flag(ctx.opts, 'print-xml')) {
      ctx.print(poolAsXml(fields));
      return;
    }
    const context = `Failed to define pool ${fields.name}`;
    // libvirt refuses an unknown type when it parses the XML: virsh's context line comes first
    const definition = underContext(context, () => poolAsDefinition(fields));
    const api = ctx.api();
    const { host, name } = await targetHost(ctx, context);
    const pool = await attempt(context, () =>
      api.definePool(DefinePoolRequest.create({ host, definition })));
    ctx.printExtra(`Pool ${name(pool)} defined\n`);
  },
};

export const poolCreateAs: Command = {
  name: 'pool-create-as',
  help: 'create a pool from a set of args',
  description: 'Create a pool.',
  options: [...X_AS_OPTIONS, ...BUILD_OPTIONS],
  async run(ctx) {
    const fields = poolAsFields(ctx.opts);
    const flags = buildFlags(ctx);
    if (flag(ctx.opts, 'print-xml')) {
      ctx.print(poolAsXml(fields));
      return;
    }
    const context = `Failed to create pool ${fields.name}`;
    const definition = underContext(context, () => poolAsDefinition(fields));
    const api = ctx.api();
    const { host, name } = await targetHost(ctx, context);
    const pool = await attempt(context, () =>
      api.createPool(CreatePoolRequest.create({ host, definition, ...flags })));
    ctx.printExtra(`Pool ${name(pool)} created\n`);
  },
};
