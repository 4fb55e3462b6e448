// A structured (gRPC) definition's refusal names its field by the .proto's field names, as
// every other field of the API is named (request_id, page_token, definition.target.cluster_size,
// definition.mount_options[0]): the path a Python, Go or Java client finds in its generated
// message and in BadRequest.field_violations. The TypeScript stubs' camelCase names
// (initiatorIqn, backingStore) exist in no other language's stubs.
import { join } from 'node:path';
import { expect } from 'chai';
import * as protoLoader from '@grpc/proto-loader';
import { parsePoolXml, parseVolumeXml, validatePoolDefinition, validateVolumeDefinition } from '../../../libs/xml/index.js';
import { AdapterType, PoolDefinition, PoolType, Tristate, VolumeDefinition } from '../../../libs/proto/cistern/v1/storage.js';
import { repoRoot } from '../../support/paths.js';
import { expectInvalid } from './helpers.js';

const definitions = protoLoader.loadSync('cistern/v1/storage.proto', { keepCase: true, includeDirs: [join(repoRoot, 'proto')] });

interface FieldDescriptor {
  name: string;
  typeName: string;
}

/** Whether `path` (a.b[0].c) walks proto field names from message `type` of cistern.v1. */
function isProtoFieldPath(type: string, path: string): boolean {
  let message: string | undefined = type;
  for (const segment of path.split('.')) {
    if (message === undefined) return false;
    const name = segment.replace(/\[\d+\]$/, '');
    const fields: FieldDescriptor[] = (definitions[`cistern.v1.${message}`] as { type: { field: FieldDescriptor[] } } | undefined)?.type.field ?? [];
    const field: FieldDescriptor | undefined = fields.find((f) => f.name === name);
    if (!field) return false;
    message = field.typeName || undefined;
  }
  return true;
}

const DIR_POOL = parsePoolXml("<pool type='dir'><name>p</name><target><path>/srv/p</path></target></pool>");
const BY_PATH = { path: '/dev/disk/by-path' };
const fcHost = (extra: Record<string, string>) =>
  PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_SCSI,
    name: 's',
    source: { adapter: { type: AdapterType.ADAPTER_TYPE_FC_HOST, wwnn: '2000000000000001', wwpn: '2000000000000002', ...extra } },
    target: BY_PATH,
  });
const scsiParent = (uniqueId: number, slot: number) =>
  PoolDefinition.fromPartial({
    type: PoolType.POOL_TYPE_SCSI,
    name: 's',
    source: { adapter: { type: AdapterType.ADAPTER_TYPE_SCSI_HOST, hasParentAddress: true, uniqueId, parentAddress: { domain: 0, bus: 0, slot, function: 0 } } },
    target: BY_PATH,
  });
const backed = (path: string, format: string, mode?: number): VolumeDefinition =>
  VolumeDefinition.fromPartial({ name: 'v', capacity: 1024n, target: { format: 'qcow2' }, backingStore: { path, format, permissions: mode === undefined ? undefined : { mode } } });

const poolCases: Array<[string, PoolDefinition, string]> = [
  [
    'an initiator IQN',
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_ISCSI, name: 'i', source: { hosts: [{ name: 'h' }], devices: [{ path: 'iqn.t' }], initiatorIqn: 'a b' }, target: BY_PATH }),
    'source.initiator_iqn',
  ],
  [
    'an NFS protocol version',
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_NETFS, name: 'n', source: { hosts: [{ name: 'h' }], dir: '/x', format: 'nfs', protocolVersion: '9x' }, target: { path: '/mnt/n' } }),
    'source.protocol_version',
  ],
  [
    'a protocol version on a dir pool',
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'd', source: { protocolVersion: '4' }, target: { path: '/srv/d' } }),
    'source.protocol_version',
  ],
  ['a scsi_host unique_id', scsiParent(2 ** 31, 1), 'source.adapter.unique_id'],
  ['a scsi_host parent PCI slot', scsiParent(1, 99), 'source.adapter.parent_address.slot'],
  ['a parent_wwnn without its parent_wwpn', fcHost({ parentWwnn: '2000000000000003' }), 'source.adapter.parent_wwnn'],
  ['a parent_wwpn without its parent_wwnn', fcHost({ parentWwpn: '2000000000000003' }), 'source.adapter.parent_wwpn'],
  ['a parent_fabric_wwn', fcHost({ parentFabricWwn: 'zz' }), 'source.adapter.parent_fabric_wwn'],
  [
    "a device's part_separator",
    PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DISK, name: 'k', source: { devices: [{ path: '/dev/sdz', partSeparator: 7 as Tristate }] }, target: { path: '/dev' } }),
    'source.devices[0].part_separator',
  ],
];

const volumeCases: Array<[string, VolumeDefinition, string]> = [
  ['a relative backing store path', backed('rel', 'raw'), 'backing_store.path'],
  ['a backing store format', backed('/srv/p/base', 'nope'), 'backing_store.format'],
  ["a backing store's mode", backed('/srv/p/base', 'raw', 0o77777), 'backing_store.permissions.mode'],
];

describe('structured definitions: the field a refusal names is the .proto field path', () => {
  for (const [what, def, field] of poolCases) {
    it(`PoolDefinition: ${what} is ${field}`, () => {
      const err = expectInvalid(() => validatePoolDefinition(def));
      expect(err.field).to.equal(field);
      expect(isProtoFieldPath('PoolDefinition', err.field!), `${err.field} is a path of PoolDefinition's proto fields`).to.equal(true);
      expect(err.message.startsWith(`${field}: `)).to.equal(true);
    });
  }
  for (const [what, def, field] of volumeCases) {
    it(`VolumeDefinition: ${what} is ${field}`, () => {
      const err = expectInvalid(() => validateVolumeDefinition(def, DIR_POOL));
      expect(err.field).to.equal(field);
      expect(isProtoFieldPath('VolumeDefinition', err.field!), `${err.field} is a path of VolumeDefinition's proto fields`).to.equal(true);
    });
  }

  it('a document still names the element or attribute it was read from, with its line', () => {
    const scsi = "<pool type='scsi'><name>s</name><source>\n<adapter type='scsi_host'><parentaddr unique_id='x'><address domain='0' bus='0' slot='1' function='0'/></parentaddr></adapter></source></pool>";
    expectInvalid(() => parsePoolXml(scsi), 'pool/source/adapter/parentaddr/@unique_id', '(line 2)');
    const disk = "<pool type='disk'><name>k</name><source><device path='/dev/sdz' part_separator='maybe'/></source></pool>";
    expectInvalid(() => parsePoolXml(disk), 'pool/source/device/@part_separator');
    const nfs = "<pool type='netfs'><name>n</name><source><host name='h'/><dir path='/x'/><format type='nfs'/><protocol ver='9x'/></source><target><path>/mnt/n</path></target></pool>";
    expectInvalid(() => parsePoolXml(nfs), 'pool/source/protocol/@ver');
    const vol = "<volume><name>v</name><capacity>1024</capacity><target><format type='qcow2'/></target>\n<backingStore><path>rel</path><format type='raw'/></backingStore></volume>";
    expectInvalid(() => parseVolumeXml(vol, DIR_POOL), 'volume/backingStore/path', '(line 2)');
  });
});
