// encodeOver: a catalog entry written over the stored one keeps what this build does not know
// and changes exactly the fields the writer changed (catalog-fields.ts).
import { expect } from 'chai';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { encodeOver } from '../../../libs/bus/catalog-fields.js';
import { CatalogPool } from '../../../libs/proto/cistern/agent/v1/agent.js';
import { PoolDefinition, PoolType } from '../../../libs/proto/cistern/v1/storage.js';

const definition = PoolDefinition.fromPartial({ name: 'p', uuid: '8d9c1a2e-0b3f-4c5d-9e6f-7a8b9c0d1e2f', type: PoolType.POOL_TYPE_DIR, target: { path: '/srv/p' } });

/** The entry as a newer build writes it: autostart on, and a field 15 this build does not know. */
function newer(): Uint8Array {
  const w = new BinaryWriter();
  CatalogPool.encode(CatalogPool.fromPartial({ definition, autostart: true, persistent: true }), w);
  w.uint32((15 << 3) | WireType.LengthDelimited).string('newer');
  return w.finish();
}

describe('catalog entries written over the stored bytes (encodeOver)', () => {
  it('clears a flag by leaving its field out, and keeps the unknown field', () => {
    const out = encodeOver(newer(), CatalogPool.fromPartial({ definition, autostart: false, persistent: true }));
    expect(CatalogPool.decode(out)).to.deep.equal(CatalogPool.fromPartial({ definition, autostart: false, persistent: true }));
    expect(Buffer.from(out).includes(Buffer.from('newer'))).to.equal(true);
  });

  it('gives back the stored bytes unchanged when nothing changed', () => {
    const stored = newer();
    expect(Buffer.from(encodeOver(stored, CatalogPool.decode(stored))).equals(Buffer.from(stored))).to.equal(true);
  });

  it('writes a changed definition whole, in place of the stored one', () => {
    const moved = { ...definition, target: { path: '/srv/moved', permissions: undefined } };
    const out = encodeOver(newer(), CatalogPool.fromPartial({ definition: moved, autostart: true, persistent: true }));
    expect(CatalogPool.decode(out).definition?.target?.path).to.equal('/srv/moved');
    // one definition field, not the stored one beside it (ts-proto would read the last one, others merge them)
    expect(Buffer.from(out).includes(Buffer.from('/srv/p'))).to.equal(false);
    expect(Buffer.from(out).includes(Buffer.from('newer'))).to.equal(true);
  });

  it('encodes plainly over bytes that are no protobuf', () => {
    const value = CatalogPool.fromPartial({ definition, autostart: true, persistent: true });
    expect(Buffer.from(encodeOver(new Uint8Array([0xff, 0xff, 0xff]), value)).equals(Buffer.from(CatalogPool.encode(value).finish()))).to.equal(true);
  });
});
