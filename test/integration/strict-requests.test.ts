// Requests that are not what they claim: a string field that is not UTF-8, or bytes that are not
// the message at all, are INVALID_ARGUMENT naming the request, and change nothing. Before, the
// first was decoded with U+FFFD in place of the bad bytes (a volume asked for as 'v\xff\xfe1'
// was created as 'v\uFFFD\uFFFD1') and the second answered INTERNAL (review h6).
import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateVolumeRequest, GetPoolRequest } from '../../libs/proto/cistern/v1/storage.js';
import { useStack, useTempDir } from '../support/index.js';
import { startDirPool } from './reliability-helpers.js';

describe('requests that do not decode (real nats-server, coordinator, agent a)', function () {
  this.timeout(60_000);
  const ctx = useStack({ hosts: ['a'] });
  const scratch = useTempDir('cistern-strict-it-');

  /** A unary call with the request's bytes as given. */
  function rawCall(method: string, bytes: Buffer): Promise<ServiceError | undefined> {
    return new Promise((resolve) => {
      ctx.stack.client.makeUnaryRequest(
        `/cistern.v1.StorageService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        bytes,
        (err) => resolve(err ?? undefined),
      );
    });
  }

  it('a string that is not UTF-8 is INVALID_ARGUMENT, and no volume is made', async () => {
    const dir = join(scratch.path, 'strict');
    await startDirPool(ctx.stack, 'a', 'strict', dir);
    const encoded = Buffer.from(CreateVolumeRequest.encode(CreateVolumeRequest.fromPartial({ parent: 'hosts/a/pools/strict', definition: { name: 'vXX1', capacity: 1048576n } })).finish());
    const at = encoded.indexOf('vXX1');
    encoded[at + 1] = 0xff;
    encoded[at + 2] = 0xfe;
    const err = await rawCall('CreateVolume', encoded);
    expect(err?.code).to.equal(status.INVALID_ARGUMENT);
    expect(err?.details).to.equal('request: is not a valid CreateVolume request message: a string field is not valid UTF-8 (protobuf strings must be)');
    expect(existsSync(dir) ? readdirSync(dir) : []).to.deep.equal([]);
  });

  it('bytes that are not the message are INVALID_ARGUMENT, not INTERNAL', async () => {
    const err = await rawCall('GetPool', Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(err?.code).to.equal(status.INVALID_ARGUMENT);
    expect(err?.details).to.match(/^request: is not a valid GetPool request message: /);
    // a well-formed request on the same method still answers
    const fine = await rawCall('GetPool', Buffer.from(GetPoolRequest.encode({ name: 'hosts/a/pools/strict' }).finish()));
    expect(fine).to.equal(undefined);
  });
});
