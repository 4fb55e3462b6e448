// The agent's record of uploads that carry a request id (services/agent/upload-requests.ts):
// what a retry with the same id finds, by the state the first upload is in.
import { expect } from 'chai';
import { AgentRequest } from '../../../libs/proto/cistern/agent/v1/agent.js';
import type { UploadResult } from '../../../libs/bus/streams.js';
import { UploadRequests } from '../../../services/agent/upload-requests.js';

const request = (requestId: string, offset = 0n): AgentRequest =>
  AgentRequest.fromPartial({
    principal: 'alice',
    requestId,
    pool: { name: 'p' },
    op: { $case: 'uploadBegin', value: { volume: 'v.img', offset, length: 0n, sparse: false } },
  });

const result: UploadResult = { volume: undefined, bytesWritten: 4096n, eventSequence: 7n };

function running(allTaken: boolean) {
  let settle!: { resolve: (r: UploadResult) => void; reject: (e: Error) => void };
  const outcome = new Promise<UploadResult>((resolve, reject) => (settle = { resolve, reject }));
  const stops: string[] = [];
  return { outcome, settle, stops, upload: { outcome, allTaken: () => allTaken, stop: (reason: string) => void stops.push(reason) } };
}

describe('agent: uploads by request id', () => {
  it('a retry of an upload with all its data taken waits for it and gets its outcome, without stopping it', async () => {
    const uploads = new UploadRequests();
    const first = running(true);
    uploads.track(request('r1'), first.upload);
    const retry = uploads.earlier(request('r1'));
    first.settle.resolve(result);
    expect(await retry).to.deep.equal(result);
    expect(first.stops).to.deep.equal([]);
  });

  it('a retry of an upload still taking data stops it, and does the work once it has failed', async () => {
    const uploads = new UploadRequests();
    const first = running(false);
    uploads.track(request('r2'), first.upload);
    const retry = uploads.earlier(request('r2'));
    expect(first.stops).to.have.length(1);
    expect(first.stops[0]).to.include("'r2'");
    first.settle.reject(new Error('cancelled'));
    expect(await retry).to.equal(undefined);
  });

  it('the id of a committed upload with another header is INVALID_ARGUMENT naming header.request_id, the field UploadVolumeRequest has', async () => {
    const uploads = new UploadRequests();
    const first = running(true);
    uploads.track(request('r3'), first.upload);
    first.settle.resolve(result);
    await first.outcome;
    const err = await uploads.earlier(request('r3', 512n)).then(() => undefined, (e: Error & { field?: string }) => e);
    expect(err?.message).to.match(/^header\.request_id: /);
    expect(await uploads.earlier(request('r3'))).to.deep.equal(result);
  });

  it('a committed upload is forgotten after the ttl: its retry does the work', async () => {
    let now = 0;
    const uploads = new UploadRequests(1000, () => now);
    const first = running(true);
    uploads.track(request('r4'), first.upload);
    first.settle.resolve(result);
    await first.outcome;
    await Promise.resolve();
    now = 1001;
    expect(await uploads.earlier(request('r4'))).to.equal(undefined);
  });
});

describe('agent: uploads by request id are bounded', () => {
  // every upload with a request id is tracked for 15 minutes after it committed, each entry
  // holding its closure (request, pool, volume); an operator's stream of small uploads with
  // fresh ids must not grow the root agent's memory without bound, as the request cache is
  // bounded for the other operations (request-cache.ts, 20,000 entries)
  const committed = async (uploads: UploadRequests, id: string): Promise<void> => {
    const u = running(true);
    uploads.track(request(id), u.upload);
    u.settle.resolve(result);
    await u.outcome;
    await Promise.resolve();
  };

  it('keeps at most its limit of committed uploads, forgetting the oldest first', async () => {
    const uploads = new UploadRequests(60_000, () => 0, 2);
    for (const id of ['b1', 'b2', 'b3']) await committed(uploads, id);
    expect(await uploads.earlier(request('b1'))).to.equal(undefined);
    expect(await uploads.earlier(request('b2'))).to.deep.equal(result);
    expect(await uploads.earlier(request('b3'))).to.deep.equal(result);
  });

  it('never forgets an upload still running for the limit: its retry must still stop it', async () => {
    const uploads = new UploadRequests(60_000, () => 0, 1);
    const first = running(false);
    uploads.track(request('c1'), first.upload);
    for (const id of ['c2', 'c3']) await committed(uploads, id);
    const retry = uploads.earlier(request('c1'));
    expect(first.stops).to.have.length(1);
    first.settle.reject(new Error('cancelled'));
    expect(await retry).to.equal(undefined);
  });
});
