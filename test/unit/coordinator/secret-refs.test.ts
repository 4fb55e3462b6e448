// Which secrets go out with which agent operation (secrets/resolve.ts): a resize of a
// LUKS-encrypted volume carries its passphrase, found as libvirt finds it: the secret the
// volume's definition names, else the one whose usage is the volume's path.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import {
  PoolDefinition,
  PoolType,
  ResizeVolumeRequest,
  SecretUsageType,
  VolumeDefinition,
  type SecretRef,
} from '../../../libs/proto/cistern/v1/storage.js';
import type { CisternError } from '../../../libs/errors/errors.js';
import { FailedPreconditionError } from '../../../libs/errors/errors.js';
import { secretRefsOf, secretValuesFor } from '../../../services/coordinator/secrets/resolve.js';
import type { SecretStore } from '../../../services/coordinator/secrets/store.js';

const pool = (type = PoolType.POOL_TYPE_DIR, path = '/srv/pool/') => PoolDefinition.fromPartial({ type, name: 'p', target: { path } });
const resize = (allocate = false, p = pool()) =>
  AgentRequest.fromPartial({ pool: p, op: { $case: 'resizeVolume', value: ResizeVolumeRequest.fromPartial({ name: 'hosts/a/pools/p/volumes/v', capacity: 1n << 24n, allocate }) } });
const volume = (encryption?: { format: string; secrets?: Array<Partial<SecretRef>> }) =>
  VolumeDefinition.fromPartial({
    name: 'v',
    target: { path: '/somewhere/else/v', format: 'raw', ...(encryption ? { encryption: { format: encryption.format, secrets: encryption.secrets ?? [] } } : {}) },
  });

describe('secrets of an agent operation (secrets/resolve.ts)', () => {
  it('a resize of a LUKS volume whose definition names no secret: the secret of usage <pool target>/<name>, with a message saying what to define', () => {
    const refs = secretRefsOf(resize(), volume({ format: 'luks' }));
    expect(refs).to.have.length(1);
    // the path is the catalog pool's target + name, not the path the agent reported
    expect(refs[0]!.ref).to.deep.include({ uuid: '', usage: '/srv/pool/v' });
    expect(refs[0]!.usage).to.equal(SecretUsageType.SECRET_USAGE_TYPE_VOLUME);
    expect(refs[0]!.notDefined).to.match(/^volume 'v' is LUKS-encrypted and its definition names no passphrase secret/);
    expect(refs[0]!.notDefined).to.include("<usage type='volume'><volume>/srv/pool/v</volume></usage>");
    expect(refs[0]!.notDefined).to.include('SetSecretValue');
  });

  it('a resize of a LUKS volume whose definition names its secret: that one', () => {
    const refs = secretRefsOf(resize(), volume({ format: 'luks', secrets: [{ uuid: '0b7c9d2e-5f41-4c3a-8e6d-2a1b3c4d5e6f', type: 'passphrase' }] }));
    expect(refs.map((r) => [r.ref.uuid, r.usage, r.notDefined])).to.deep.equal([['0b7c9d2e-5f41-4c3a-8e6d-2a1b3c4d5e6f', SecretUsageType.SECRET_USAGE_TYPE_VOLUME, undefined]]);
  });

  it('no secret for: an unencrypted volume, legacy qcow encryption, an allocating resize (refused by the agent), a pool that is no file pool, no known volume', () => {
    expect(secretRefsOf(resize(), volume())).to.deep.equal([]);
    expect(secretRefsOf(resize(), volume({ format: 'qcow' }))).to.deep.equal([]);
    expect(secretRefsOf(resize(true), volume({ format: 'luks' }))).to.deep.equal([]);
    expect(secretRefsOf(resize(false, pool(PoolType.POOL_TYPE_LOGICAL, '/dev/vg')), volume({ format: 'luks' }))).to.deep.equal([]);
    expect(secretRefsOf(resize())).to.deep.equal([]);
    // the other volume operations do not look at the volume
    const wipe = AgentRequest.fromPartial({ pool: pool(), op: { $case: 'wipeVolume', value: { name: 'hosts/a/pools/p/volumes/v' } } });
    expect(secretRefsOf(wipe, volume({ format: 'luks' }))).to.deep.equal([]);
  });

  it("a clone of a LUKS volume of a file pool: the source's passphrase (the secret of its path in the source pool), then the new volume's", () => {
    const DST = '6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
    const clone = (source: PoolDefinition, encrypted = true) =>
      AgentRequest.fromPartial({
        pool: pool(),
        sourcePool: source,
        op: {
          $case: 'cloneVolume',
          value: {
            source: 'hosts/a/pools/src/volumes/v',
            definition: VolumeDefinition.fromPartial({
              name: 'c',
              target: { format: 'qcow2', ...(encrypted ? { encryption: { format: 'luks', secrets: [{ uuid: DST, type: 'passphrase' }] } } : {}) },
            }),
          },
        },
      });
    const src = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_DIR, name: 'src', target: { path: '/srv/src' } });
    const refs = secretRefsOf(clone(src), volume({ format: 'luks' }));
    expect(refs.map((r) => [r.ref.uuid || r.ref.usage, r.usage])).to.have.deep.members([
      ['/srv/src/v', SecretUsageType.SECRET_USAGE_TYPE_VOLUME],
      [DST, SecretUsageType.SECRET_USAGE_TYPE_VOLUME],
    ]);
    expect(refs.find((r) => r.ref.usage)!.notDefined).to.include("<usage type='volume'><volume>/srv/src/v</volume></usage>");
    // an unencrypted source: only the new volume's; a block source (an LV) is read as raw bytes, as libvirt reads it
    expect(secretRefsOf(clone(src, false), volume())).to.deep.equal([]);
    const lv = PoolDefinition.fromPartial({ type: PoolType.POOL_TYPE_LOGICAL, name: 'vg', target: { path: '/dev/vg' } });
    expect(secretRefsOf(clone(lv, false), volume({ format: 'luks', secrets: [{ uuid: DST, type: 'passphrase' }] }))).to.deep.equal([]);
  });

  it('a find-pool-sources whose source names CHAP auth: that secret, of usage type iscsi (no pool in the request); without <auth>, none', () => {
    const find = (auth?: { uuid?: string; usage?: string }) =>
      AgentRequest.fromPartial({
        op: {
          $case: 'findPoolSources',
          value: {
            host: 'a',
            type: PoolType.POOL_TYPE_ISCSI_DIRECT,
            source: { hosts: [{ name: '127.0.0.1', port: 3260 }], ...(auth ? { auth: { type: 'chap', username: 'u', secret: auth } } : {}) },
          },
        },
      });
    const refs = secretRefsOf(find({ usage: 'iqn.2024-01.test:chap' }));
    expect(refs.map((r) => [r.ref.usage, r.usage])).to.deep.equal([['iqn.2024-01.test:chap', SecretUsageType.SECRET_USAGE_TYPE_ISCSI]]);
    expect(secretRefsOf(find())).to.deep.equal([]);
  });

  it("a find-pool-sources names its source spec's <auth>, not a pool, and sends a secret only where discovery logs in (iscsi-direct)", () => {
    const find = (type: PoolType) =>
      AgentRequest.fromPartial({
        op: {
          $case: 'findPoolSources',
          value: { host: 'a', type, source: { hosts: [{ name: '127.0.0.1', port: 3260 }], auth: { type: 'chap', username: 'u', secret: { usage: 'iqn.2024-01.test:chap' } } } },
        },
      });
    const direct = secretRefsOf(find(PoolType.POOL_TYPE_ISCSI_DIRECT));
    expect(direct.map((r) => r.what)).to.deep.equal(['the <auth> of the source spec']);
    // netfs (showmount, gluster), iscsi (iscsiadm sendtargets without CHAP) and logical (pvs)
    // discover without logging in, as libvirt's: their secret value must not leave the coordinator
    for (const t of [PoolType.POOL_TYPE_NETFS, PoolType.POOL_TYPE_ISCSI, PoolType.POOL_TYPE_LOGICAL]) {
      expect(secretRefsOf(find(t)), PoolType[t]).to.deep.equal([]);
    }
  });

  it('secretValuesFor asks the store with the message for a missing default secret', async () => {
    const asked: Array<{ ref: SecretRef; notDefined?: string }> = [];
    const store = {
      resolve: async (ref: SecretRef, _usage: SecretUsageType, _what: string, notDefined?: string) => {
        asked.push({ ref, notDefined });
        throw new FailedPreconditionError(notDefined ?? 'not defined');
      },
    } as unknown as SecretStore;
    const err = (await secretValuesFor(store, resize(), volume({ format: 'luks' })).then(
      () => undefined,
      (e: unknown) => e,
    )) as CisternError;
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.include("for the volume's path, '/srv/pool/v', and none is defined");
    expect(asked.map((a) => a.ref.usage)).to.deep.equal(['/srv/pool/v']);
  });
});
