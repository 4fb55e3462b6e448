// The field a refusal of a pool's definition names, per backend type: one convention whichever
// call finds it. DefinePool and CreatePool name the request's field (`definition.source.hosts`,
// or `xml` with the element in the message); StartPool, BuildPool and DeletePool, which act on
// the stored definition, name the definition's own field (`source.hosts`), as the fs, disk and
// logical backends' start checks do (`source.devices`). The iscsi, iscsi-direct, scsi and netfs
// backends name their fields with a `pool.` prefix, which CreatePool mapped and StartPool showed
// as it was: `pool.source.hosts: expected exactly 1 host for an iscsi pool, got 2`.
// As libvirt 9.0, a definition the parser takes (two hosts, an adapter name that is no hostN)
// is defined, and refused when the pool starts (virStorageBackendISCSIPortal, getAdapterName).
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { PoolDefinition, PoolType } from '../../libs/proto/cistern/v1/storage.js';
import { formatPoolXml } from '../../libs/xml/pool.js';
import { makeTempDir, outcomeOf, startStack, type Stack } from '../support/index.js';

interface Case {
  type: string;
  definition: Partial<PoolDefinition>;
  /** the definition's own field that is refused */
  field: string;
  /** the refusal needs the pool built (CreatePool and StartPool with build, BuildPool) */
  build?: boolean;
  /** refused when read (DefinePool too), not when started */
  byReader?: boolean;
}

const IQN = 'iqn.2020-01.com.example:t';
const TWO_HOSTS = [{ name: '127.0.0.1' }, { name: '127.0.0.2' }];
// paths no device has: the checks refuse them before any is opened
const NO_DEVICES = [{ path: '/dev/cistern-h121-none-a' }, { path: '/dev/cistern-h121-none-b' }];

const CASES: Case[] = [
  { type: 'netfs', definition: { type: PoolType.POOL_TYPE_NETFS, source: { hosts: TWO_HOSTS, dir: '/export', format: 'nfs' } as never }, field: 'source.hosts' },
  { type: 'iscsi', definition: { type: PoolType.POOL_TYPE_ISCSI, target: { path: '/dev/disk/by-path' } as never, source: { hosts: TWO_HOSTS, devices: [{ path: IQN }] } as never }, field: 'source.hosts' },
  {
    type: 'iscsi-direct',
    definition: { type: PoolType.POOL_TYPE_ISCSI_DIRECT, source: { hosts: TWO_HOSTS, devices: [{ path: IQN }], initiatorIqn: 'iqn.2020-01.com.example:i' } as never },
    field: 'source.hosts',
  },
  { type: 'scsi', definition: { type: PoolType.POOL_TYPE_SCSI, target: { path: '/dev/disk/by-path' } as never, source: { adapter: { type: 1, name: 'bogus' } } as never }, field: 'source.adapter.name' },
  { type: 'fs', definition: { type: PoolType.POOL_TYPE_FS, source: { devices: NO_DEVICES } as never }, field: 'source.devices' },
  { type: 'disk', definition: { type: PoolType.POOL_TYPE_DISK, source: { devices: NO_DEVICES } as never }, field: 'source.devices' },
  {
    type: 'logical',
    definition: { type: PoolType.POOL_TYPE_LOGICAL, source: { name: 'cisternh121none', devices: [NO_DEVICES[0]!, NO_DEVICES[0]!] } as never },
    field: 'source.devices',
    build: true,
  },
  // no source of their own: a target path that is not absolute, refused by the reader
  { type: 'dir', definition: { type: PoolType.POOL_TYPE_DIR, target: { path: 'relative/dir' } as never }, field: 'target.path', byReader: true },
  { type: 'mpath', definition: { type: PoolType.POOL_TYPE_MPATH, target: { path: 'relative/mapper' } as never }, field: 'target.path', byReader: true },
];

describe('a refused pool definition field is named the same way by DefinePool, CreatePool and StartPool', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let tmp: { path: string; remove: () => Promise<void> } | undefined;

  before(async function () {
    this.timeout(60_000);
    tmp = makeTempDir('cistern-pool-fields-');
    stack = await startStack({ hosts: ['a'] });
  });
  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await tmp?.remove();
  });

  /** INVALID_ARGUMENT, and the field its message starts with (`field: detail`). */
  const refusal = async (p: Promise<unknown>): Promise<string> => {
    const r = await outcomeOf(p);
    expect(status[r.code], r.message).to.equal('INVALID_ARGUMENT');
    return r.message;
  };

  for (const c of CASES) {
    it(`${c.type}: ${c.byReader ? 'definition' : c.field} in DefinePool and CreatePool, ${c.byReader ? 'never defined' : `${c.field} in StartPool${c.build ? ' and BuildPool' : ''}`}`, async () => {
      const api = stack!.api;
      const name = `f-${c.type}`;
      const definition = PoolDefinition.fromPartial({ name, target: { path: `${tmp!.path}/${name}` } as never, ...c.definition });
      const created = await refusal(api.createPool({ host: 'a', definition, xml: '', build: !!c.build, buildFlags: undefined, requestId: '' }));
      expect(created).to.match(new RegExp(`^definition\\.${c.field.replace(/[.[\]]/g, '\\$&')}: `));
      const detail = created.slice(`definition.${c.field}: `.length);
      // the same refusal of the definition given as XML names `xml`, the field in the message
      const fromXml = await refusal(api.createPool({ host: 'a', definition: undefined, xml: formatPoolXml(definition), build: !!c.build, buildFlags: undefined, requestId: '' }));
      expect(fromXml).to.match(/^xml: /);
      expect(fromXml).to.include(detail.replace(/ \(line \d+\)$/, ''));

      const defined = await outcomeOf(api.definePool({ host: 'a', definition, xml: '', requestId: '', validate: false }));
      if (c.byReader) {
        expect(status[defined.code], defined.message).to.equal('INVALID_ARGUMENT');
        expect(defined.message).to.equal(created);
        return;
      }
      expect(status[defined.code], defined.message).to.equal('OK');
      try {
        const started = await refusal(api.startPool({ name: `hosts/a/pools/${name}`, build: !!c.build, buildFlags: undefined, requestId: '' }));
        expect(started).to.equal(`${c.field}: ${detail}`);
        if (c.build) {
          const built = await refusal(api.buildPool({ name: `hosts/a/pools/${name}`, flags: undefined, requestId: '' }));
          expect(built).to.equal(`${c.field}: ${detail}`);
        }
      } finally {
        await api.undefinePool({ name: `hosts/a/pools/${name}`, requestId: '' });
      }
    });
  }
});
