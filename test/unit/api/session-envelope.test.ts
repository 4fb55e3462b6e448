// The hand-written SessionResponse envelope against ts-proto's own encoding of storage.proto.
import { expect } from 'chai';
import { decodeAnswer, encodeFailure, encodeResult, RESULT_FIELD } from '../../../libs/api/session-envelope.js';
import { encodeStatusDetails } from '../../../libs/errors/status-details.js';
import { ListVolumesResponse, SessionResponse, StorageServiceService, Volume } from '../../../libs/proto/cistern/v1/storage.js';

describe('session envelope', () => {
  it('numbers every unary method of StorageService, and no stream method', () => {
    const unary = Object.entries(StorageServiceService).filter(([, m]) => !m.requestStream && !m.responseStream).map(([k]) => k);
    expect([...RESULT_FIELD.keys()]).to.have.members(unary);
    expect(RESULT_FIELD.has('watchEvents' as never)).to.equal(false);
    expect(RESULT_FIELD.get('listHosts')).to.equal(10);
    expect(new Set(RESULT_FIELD.values()).size).to.equal(RESULT_FIELD.size);
  });

  it('a result envelope decodes with ts-proto as the same SessionResponse, and back', () => {
    const volume = Volume.fromPartial({ name: 'hosts/a/pools/p/volumes/v', host: 'a', pool: 'p', definition: { name: 'v', capacity: 1n << 40n } });
    const bytes = encodeResult(300n, 'getVolume', Volume.encode(volume).finish());
    const decoded = SessionResponse.decode(bytes);
    expect(decoded.id).to.equal(300n);
    expect(decoded.status).to.equal(undefined);
    expect(decoded.result).to.deep.equal({ $case: 'getVolume', value: volume });
    const answer = decodeAnswer(SessionResponse.encode(decoded).finish());
    expect(answer.id).to.equal(300n);
    expect(answer.result!.call).to.equal('getVolume');
    expect(Volume.decode(answer.result!.bytes)).to.deep.equal(volume);
  });

  it('writes the bytes ts-proto writes, for a result whose length takes a multi-byte varint and a 64-bit id', () => {
    const volumes = Array.from({ length: 3000 }, (_, i) => Volume.fromPartial({ name: `hosts/a/pools/p/volumes/v${i}`, definition: { name: `v${i}`, capacity: BigInt(i) << 30n } }));
    const page = ListVolumesResponse.encode({ volumes, nextPageToken: 'next' }).finish();
    expect(page.length).to.be.greaterThan(1 << 14); // a 3-byte length
    for (const id of [1n, 127n, 128n, (1n << 63n) + 5n]) {
      const expected = SessionResponse.encode(SessionResponse.fromPartial({ id, result: { $case: 'listVolumes', value: ListVolumesResponse.decode(page) } })).finish();
      expect(encodeResult(id, 'listVolumes', page).equals(Buffer.from(expected)), `id ${id}`).to.equal(true);
    }
  });

  it('an empty response is still a result; id 0 is written as proto3 writes it (not at all)', () => {
    const bytes = encodeResult(0n, 'deleteVolume', new Uint8Array());
    expect(SessionResponse.decode(bytes).result).to.deep.equal({ $case: 'deleteVolume', value: {} });
    expect(Buffer.from(bytes)).to.deep.equal(Buffer.from(SessionResponse.encode(SessionResponse.fromPartial({ result: { $case: 'deleteVolume', value: {} } })).finish()));
    const page = ListVolumesResponse.fromPartial({ nextPageToken: 'x' });
    expect(decodeAnswer(encodeResult(1n, 'listVolumes', ListVolumesResponse.encode(page).finish())).result!.call).to.equal('listVolumes');
  });

  it('a failure envelope carries the google.rpc.Status bytes as SessionStatus', () => {
    const status = encodeStatusDetails({ code: 5, message: 'not there', reason: 'NOT_FOUND', metadata: { pool: 'p' } });
    const decoded = SessionResponse.decode(encodeFailure(2n ** 63n, status));
    expect(decoded.id).to.equal(2n ** 63n);
    expect(decoded.status!.code).to.equal(5);
    expect(decoded.status!.message).to.equal('not there');
    expect(decoded.status!.details[0]!.typeUrl).to.equal('type.googleapis.com/google.rpc.ErrorInfo');
    expect(decoded.result).to.equal(undefined);
    expect(Buffer.from(decodeAnswer(encodeFailure(2n, status)).status!)).to.deep.equal(Buffer.from(status));
  });
});
