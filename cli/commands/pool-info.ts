// pool-info and pool-dumpxml.
import { GetPoolRequest, GetPoolXMLRequest } from '../../libs/proto/cistern/v1/storage.js';
import { flag, req, str, type OptionSpec } from '../args.js';
import { JSON_OPTION, type Command } from '../command.js';
import { attempt } from '../errors.js';
import { dumpXml } from '../format/dumpxml.js';
import { toJson } from '../format/json.js';
import { poolJson, renderPoolInfo } from '../format/pool.js';
import { resolvePool } from '../resolve.js';
import { POOL_OPTION } from './pool-lifecycle.js';

export const poolInfo: Command = {
  name: 'pool-info',
  help: 'storage pool information',
  description: 'Returns basic information about the storage pool.',
  options: [POOL_OPTION, { name: 'bytes', type: 'bool', help: 'Return pool info in bytes' }, JSON_OPTION],
  async run(ctx) {
    const text = req(ctx.opts, 'pool');
    const api = ctx.api();
    const ref = await resolvePool(api, text);
    const pool = await attempt(`failed to get pool '${text}'`, () => api.getPool(GetPoolRequest.create({ name: ref.resource })));
    if (flag(ctx.opts, 'json')) {
      ctx.setMachineOutput();
      ctx.print(toJson(poolJson(pool)));
      return;
    }
    ctx.print(renderPoolInfo(pool, flag(ctx.opts, 'bytes')));
  },
};

export function withNewline(xml: string): string {
  return xml.endsWith('\n') ? xml : `${xml}\n`;
}

/** virsh 9.0's --xpath and --wrap of pool-dumpxml and vol-dumpxml. */
export const XPATH_OPTIONS: OptionSpec[] = [
  { name: 'xpath', type: 'string', named: true, help: 'xpath expression to filter the XML document' },
  { name: 'wrap', type: 'bool', help: 'wrap xpath results in an common root element' },
];

export const poolDumpxml: Command = {
  name: 'pool-dumpxml',
  help: 'pool information in XML',
  description: 'Output the pool information as an XML dump to stdout.',
  options: [POOL_OPTION, { name: 'inactive', type: 'bool', help: 'show inactive defined XML' }, ...XPATH_OPTIONS],
  async run(ctx) {
    const text = req(ctx.opts, 'pool');
    const api = ctx.api();
    const ref = await resolvePool(api, text);
    const doc = await attempt(`failed to get XML of pool '${text}'`, () =>
      api.getPoolXml(GetPoolXMLRequest.create({ name: ref.resource, inactive: flag(ctx.opts, 'inactive') })));
    ctx.print(dumpXml(doc.xml, str(ctx.opts, 'xpath'), flag(ctx.opts, 'wrap')));
  },
};
