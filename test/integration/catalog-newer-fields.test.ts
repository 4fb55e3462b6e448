// A rolling upgrade runs coordinators of two builds against one catalog. A newer build may
// write fields into a pool's entry (CatalogPool, or the PoolDefinition inside it) that this
// build's protobuf does not know. This build's read-modify-writes of the entry (SetPoolAutostart,
// a redefinition) must keep them: a compare-and-swap that re-encodes only what it decoded would
// silently erase the newer build's data, and nothing would ever bring it back (docs/upgrades.md).
import { expect } from 'chai';
import { join } from 'node:path';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus } from '../../libs/bus/connect.js';
import { CATALOG_BUCKET, catalogKeys } from '../../libs/bus/subjects.js';
import { CatalogPool } from '../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition } from '../../libs/proto/cistern/v1/storage.js';
import { useStack, useTempDir } from '../support/index.js';
import { dirPool } from './reliability-helpers.js';

/** A field number no build of Cistern has used: what a newer build would add to CatalogPool. */
const NEWER_ENTRY_FIELD = 15;
/** Likewise inside PoolDefinition. */
const NEWER_DEFINITION_FIELD = 90;

/** The top-level fields of an encoded message: number and the raw bytes of each occurrence. */
function fieldsOf(data: Uint8Array): Array<{ no: number; bytes: Uint8Array }> {
  const reader = new BinaryReader(data);
  const out: Array<{ no: number; bytes: Uint8Array }> = [];
  while (reader.pos < reader.len) {
    const [no, type] = reader.tag();
    const start = reader.pos;
    reader.skip(type, no);
    out.push({ no, bytes: data.subarray(start, reader.pos) });
  }
  return out;
}

/** A length-delimited field's content as text (its bytes after the length). */
function text(bytes: Uint8Array): string {
  const reader = new BinaryReader(bytes);
  return reader.string();
}

/** What a newer build writes: the entry with one field more at the top and one more in its definition. */
function newerEntry(value: CatalogPool): Uint8Array {
  const definition = new BinaryWriter();
  PoolDefinition.encode(value.definition!, definition);
  definition.uint32((NEWER_DEFINITION_FIELD << 3) | WireType.LengthDelimited).string('written by a newer definition');
  const entry = new BinaryWriter();
  entry.uint32((1 << 3) | WireType.LengthDelimited).bytes(definition.finish());
  if (value.autostart) entry.uint32((2 << 3) | WireType.Varint).bool(true);
  if (value.persistent) entry.uint32((3 << 3) | WireType.Varint).bool(true);
  entry.uint32((NEWER_ENTRY_FIELD << 3) | WireType.LengthDelimited).string('written by a newer entry');
  return entry.finish();
}

describe('catalog entries written by a newer build (real nats-server, coordinator, agent a)', function () {
  this.timeout(120_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-newer-fields-it-');
  let nc: NatsConnection;
  let kv: KV;

  before(async () => {
    nc = await connectBus({ servers: ctx.stack.natsUrl, name: 'test-newer-fields' });
    kv = await new Kvm(nc).open(CATALOG_BUCKET);
  });
  after(async () => {
    await nc?.close();
  });

  /** Defines the pool, then puts the newer build's encoding of the same entry over it; returns its revision. */
  async function definedByNewer(name: string): Promise<number> {
    const { api } = ctx.stack;
    await api.definePool({ host: 'a', definition: dirPool(name, join(scratch.path, name)), xml: '', requestId: '', validate: false });
    const key = catalogKeys.pool('a', name);
    const stored = (await kv.get(key))!;
    // (SetPoolAutostart and DefinePool read the entry from the bucket, not from the cache)
    return kv.update(key, newerEntry(CatalogPool.decode(stored.value)), stored.revision);
  }

  async function stored(name: string): Promise<Uint8Array> {
    return (await kv.get(catalogKeys.pool('a', name)))!.value;
  }

  it('SetPoolAutostart keeps the fields this build does not know, in the entry and in its definition', async () => {
    const before = await definedByNewer('auto');
    await ctx.stack.api.setPoolAutostart({ name: 'hosts/a/pools/auto', autostart: true, requestId: '' });
    const after = await kv.get(catalogKeys.pool('a', 'auto'));
    expect(after!.revision).to.be.greaterThan(before);
    const data = await stored('auto');
    expect(CatalogPool.decode(data).autostart).to.equal(true);
    const fields = fieldsOf(data);
    expect(fields.filter((f) => f.no === NEWER_ENTRY_FIELD).map((f) => text(f.bytes))).to.deep.equal(['written by a newer entry']);
    const definition = fields.filter((f) => f.no === 1);
    expect(definition).to.have.length(1);
    const inner = fieldsOf(new BinaryReader(definition[0]!.bytes).bytes());
    expect(inner.filter((f) => f.no === NEWER_DEFINITION_FIELD).map((f) => text(f.bytes))).to.deep.equal(['written by a newer definition']);
  });

  it('a redefinition replaces the definition whole but keeps the entry fields this build does not know', async () => {
    const { api } = ctx.stack;
    await definedByNewer('redef');
    await api.setPoolAutostart({ name: 'hosts/a/pools/redef', autostart: true, requestId: '' });
    const uuid = CatalogPool.decode(await stored('redef')).definition!.uuid;
    const moved = join(scratch.path, 'redef-moved');
    await api.definePool({ host: 'a', definition: { ...dirPool('redef', moved), uuid }, xml: '', requestId: '', validate: false });
    const data = await stored('redef');
    const value = CatalogPool.decode(data);
    expect(value.definition?.target?.path).to.equal(moved);
    expect(value.autostart).to.equal(true);
    const fields = fieldsOf(data);
    expect(fields.filter((f) => f.no === NEWER_ENTRY_FIELD).map((f) => text(f.bytes))).to.deep.equal(['written by a newer entry']);
    // the definition is the caller's: what the newer one said beyond it is not carried over
    const inner = fieldsOf(new BinaryReader(fields.find((f) => f.no === 1)!.bytes).bytes());
    expect(inner.map((f) => f.no)).to.not.include(NEWER_DEFINITION_FIELD);
  });
});
