// The secret store against a real nats-server, compared with libvirt 9.0's secret driver
// (virSecretObjListAdd, secretDefineXML): what a redefinition may change, that a usage id
// belongs to one secret even when two definitions race, and that an ephemeral secret is
// never written to disk (libvirt keeps it in memory only: it is gone when libvirtd restarts).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { registerCleanup, startNats, waitFor, type NatsServer } from '../support/index.js';
import { SecretStore } from '../../services/coordinator/secrets/store.js';
import { AlreadyExistsError, FailedPreconditionError } from '../../libs/errors/errors.js';
import { Secret, SecretUsageType } from '../../libs/proto/cistern/v1/storage.js';

const ISCSI = SecretUsageType.SECRET_USAGE_TYPE_ISCSI;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

describe('secret store (real nats-server)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  let nc: NatsConnection;
  let store: SecretStore;
  const key = randomBytes(32);

  const connectStore = async (): Promise<void> => {
    nc = await connect({ servers: nats.url });
    registerCleanup('secret-store test NATS connection', () => nc.close());
    store = await SecretStore.open(nc, key);
  };

  beforeEach(async () => {
    nats = await startNats();
    await connectStore();
  });

  const uuid = (): string => {
    const h = randomBytes(16).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };

  it('refuses a redefinition that gives a secret of no usage one (libvirt: "already defined for use with (null)")', async () => {
    const id = uuid();
    await store.define(Secret.fromPartial({ uuid: id }));
    await store.setValue(id, Buffer.from('pw'));
    let err: unknown;
    try {
      await store.define(Secret.fromPartial({ uuid: id, usageType: ISCSI, usageId: 'iqn.2026-11.example:t1' }));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.contain(`secret '${id}' is defined for none`);
    expect((await store.get(id)).usageType).to.equal(SecretUsageType.SECRET_USAGE_TYPE_UNSPECIFIED);
  });

  it('refuses a redefinition that makes a private secret not private (libvirt: "cannot change private flag on existing secret")', async () => {
    const id = uuid();
    await store.define(Secret.fromPartial({ uuid: id, private: true }));
    let err: unknown;
    try {
      await store.define(Secret.fromPartial({ uuid: id, private: false }));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.contain('private');
    expect((await store.get(id)).private).to.equal(true);
    // the other way is allowed, as in libvirt
    await store.define(Secret.fromPartial({ uuid: id, private: true, description: 'again' }));
  });

  it('gives a usage id to one secret only when definitions race (libvirt defines under one lock)', async () => {
    const ids = Array.from({ length: 6 }, uuid);
    const results = await Promise.allSettled(ids.map((id) => store.define(Secret.fromPartial({ uuid: id, usageType: ISCSI, usageId: 'iqn.2026-11.example:race' }))));
    const defined = results.filter((r) => r.status === 'fulfilled');
    expect(defined, 'definitions that succeeded').to.have.length(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).to.be.instanceOf(AlreadyExistsError);
    expect((await store.list()).filter((s) => s.usageId === 'iqn.2026-11.example:race')).to.have.length(1);
  });

  it('frees a usage id when its secret is undefined, or redefined away from it is refused', async () => {
    const a = uuid();
    const b = uuid();
    await store.define(Secret.fromPartial({ uuid: a, usageType: ISCSI, usageId: 'iqn.2026-11.example:free' }));
    await store.undefine(a);
    await store.define(Secret.fromPartial({ uuid: b, usageType: ISCSI, usageId: 'iqn.2026-11.example:free' }));
    // a redefinition of b itself keeps it
    await store.define(Secret.fromPartial({ uuid: b, usageType: ISCSI, usageId: 'iqn.2026-11.example:free', description: 'd' }));
    let err: unknown;
    try {
      await store.define(Secret.fromPartial({ uuid: a, usageType: ISCSI, usageId: 'iqn.2026-11.example:free' }));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(AlreadyExistsError);
  });

  it('keeps an ephemeral secret off the disk: its definition is in no file of the store, and it is gone when the server restarts', async () => {
    const ephemeral = uuid();
    const kept = uuid();
    const mark = randomBytes(8).toString('hex');
    const value = `Ephemeral-${mark}`;
    await store.define(Secret.fromPartial({ uuid: ephemeral, ephemeral: true, usageType: ISCSI, usageId: `iqn.2026-11.example:eph-${mark}`, description: `eph-${mark}` }));
    await store.setValue(ephemeral, Buffer.from(value));
    await store.define(Secret.fromPartial({ uuid: kept, usageType: ISCSI, usageId: `iqn.2026-11.example:kept-${mark}`, description: `kept-${mark}` }));
    await store.setValue(kept, Buffer.from('kept-value'));
    const got = await store.get(ephemeral);
    expect(got.ephemeral).to.equal(true);
    expect(got.hasValue).to.equal(true);
    expect((await store.list()).map((s) => s.uuid)).to.include.members([ephemeral, kept]);
    // the value goes out to an agent as any other, by uuid and by usage
    const resolved = await store.resolve({ uuid: ephemeral, usage: '', type: 'chap' }, ISCSI, 'a test pool');
    expect(Buffer.from(resolved.value).toString()).to.equal(value);
    const byUsage = await store.resolve({ uuid: '', usage: `iqn.2026-11.example:eph-${mark}`, type: 'chap' }, ISCSI, 'a test pool');
    expect(byUsage.uuid).to.equal(ephemeral);

    await nc.drain();
    await nats.process.stop(); // SIGTERM: the server writes what it keeps on disk, and exits
    const onDisk = filesUnder(nats.storeDir).map((f) => readFileSync(f).toString('latin1')).join('\n');
    expect(onDisk).to.contain(`kept-${mark}`);
    expect(onDisk).to.not.contain(`eph-${mark}`);

    await nats.restart();
    await connectStore();
    expect((await store.list()).map((s) => s.uuid)).to.deep.equal([kept]);
    expect((await store.get(kept)).hasValue).to.equal(true);
    // its usage is free again
    await store.define(Secret.fromPartial({ uuid: uuid(), usageType: ISCSI, usageId: `iqn.2026-11.example:eph-${mark}` }));
  });

  it('moves a secret, value included, when a redefinition changes ephemeral (libvirt saves it to disk or deletes it there)', async () => {
    const id = uuid();
    const mark = randomBytes(8).toString('hex');
    await store.define(Secret.fromPartial({ uuid: id, ephemeral: true, usageType: ISCSI, usageId: `iqn.2026-11.example:move-${mark}` }));
    await store.setValue(id, Buffer.from('moved'));
    const kept = await store.define(Secret.fromPartial({ uuid: id, ephemeral: false, usageType: ISCSI, usageId: `iqn.2026-11.example:move-${mark}` }));
    expect(kept).to.include({ ephemeral: false, hasValue: true });
    expect((await store.list()).filter((s) => s.uuid === id)).to.have.length(1);
    const back = await store.define(Secret.fromPartial({ uuid: id, ephemeral: true, usageType: ISCSI, usageId: `iqn.2026-11.example:move-${mark}` }));
    expect(back).to.include({ ephemeral: true, hasValue: true });
    expect((await store.list()).filter((s) => s.uuid === id).map((s) => s.ephemeral)).to.deep.equal([true]);
    expect(Buffer.from((await store.resolve({ uuid: id, usage: '', type: 'chap' }, ISCSI, 'a test pool')).value).toString()).to.equal('moved');
  });

  it('works on when the bus restarts under it: the ephemeral bucket is made again, empty', async () => {
    const id = uuid();
    await store.define(Secret.fromPartial({ uuid: id, ephemeral: true }));
    await nats.process.stop();
    await nats.restart();
    // the same connection, reconnected: the memory bucket is gone with the server
    await waitFor('the store answering again', async () => store.list().then(() => true, () => undefined), { timeoutMs: 20_000, intervalMs: 200 });
    expect(await store.list()).to.deep.equal([]);
    await store.define(Secret.fromPartial({ uuid: id, ephemeral: true }));
    expect((await store.get(id)).ephemeral).to.equal(true);
  });

  it('with another key after a restart, says which secret cannot be opened and what to do, and a new value works', async () => {
    const id = uuid();
    await store.define(Secret.fromPartial({ uuid: id, usageType: ISCSI, usageId: 'iqn.2026-11.example:rekey' }));
    await store.setValue(id, Buffer.from('old-key-value'));
    const other = await SecretStore.open(nc, randomBytes(32));
    expect((await other.get(id)).hasValue).to.equal(true);
    let err: unknown;
    try {
      await other.resolve({ uuid: id, usage: '', type: 'chap' }, ISCSI, "the <auth> of pool 'p'");
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(FailedPreconditionError);
    expect((err as Error).message).to.contain("the <auth> of pool 'p'").and.to.contain(id).and.to.contain('SetSecretValue');
    expect((err as Error).message).to.not.contain('old-key-value');
    await other.setValue(id, Buffer.from('new-key-value'));
    expect(Buffer.from((await other.resolve({ uuid: id, usage: '', type: 'chap' }, ISCSI, 'p')).value).toString()).to.equal('new-key-value');
  });
});
