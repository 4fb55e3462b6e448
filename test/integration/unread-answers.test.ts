// Answers a client never reads. A unary call's handler ends as soon as its answer is handed to
// grpc-js, but a client that grants no HTTP/2 flow-control window (or never reads its socket)
// leaves that answer in the coordinator's memory until it reads it or goes. Counting a call
// only while its handler runs let one viewer pile up such answers without bound: 3,000
// ListVolumes of a 200-volume pool, never read and sent 50 at a time, took the coordinator
// from 105 MB to 728 MB, and not one of them was refused. A call now counts against its
// client's --max-calls-per-client until its answer has been delivered or its stream is gone.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { ListHostsRequest } from '../../libs/proto/cistern/v1/storage.js';
import { expectCode } from '../support/grpc-expect.js';
import { startSecureFleet, type SecureFleet } from '../security/fleet.js';

const LIMIT = 4;

interface UnreadCall {
  /** the answer's headers arrived: the handler has ended and its answer is waiting for window */
  answered: Promise<Record<string, unknown>>;
  /** the call's status, once its answer could be delivered */
  ended: Promise<{ code: number; message: string }>;
}

/** A ListHosts sent whole on `session`, whose answer the session's zero window keeps unread. */
function unreadListHosts(session: ClientHttp2Session, token: string): UnreadCall {
  const body = ListHostsRequest.encode(ListHostsRequest.fromPartial({})).finish();
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  Buffer.from(body).copy(frame, 5);
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: '/cistern.v1.StorageService/ListHosts',
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${token}`,
  });
  stream.on('error', () => undefined);
  stream.end(frame);
  let headers: Record<string, unknown> = {};
  const answered = new Promise<Record<string, unknown>>((resolve) => stream.on('response', (h) => resolve((headers = h))));
  const ended = new Promise<{ code: number; message: string }>((resolve) => {
    const done = (h: Record<string, unknown>): void =>
      resolve({ code: Number(h['grpc-status'] ?? -1), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
    stream.on('trailers', (t) => done({ ...headers, ...t }));
    stream.on('close', () => done(headers));
  });
  stream.resume();
  return { answered, ended };
}

describe('answers a client does not read: each call holds its slot until its answer is delivered', function () {
  this.timeout(120_000);
  let fleet: SecureFleet;
  let session: ClientHttp2Session | undefined;
  before(async function () {
    this.timeout(120_000);
    fleet = await startSecureFleet({ hosts: ['a'], tokens: true, coordinatorArgs: ['--max-calls-per-client', String(LIMIT)] });
  });
  after(async () => {
    session?.destroy();
    await fleet?.stop();
  });

  it(`a viewer with ${LIMIT} answers unread is refused a call more, naming the limit; others are answered; reading frees them`, async () => {
    // a window of 0: the coordinator may send the answers' headers, not one byte of their data
    session = connect(`http://${fleet.coordinator.address}`, { settings: { initialWindowSize: 0 } });
    session.on('error', () => undefined);
    const unread = Array.from({ length: LIMIT }, () => unreadListHosts(session!, fleet.tokens.viewer));
    for (const call of unread) {
      const headers = await call.answered;
      // answered with data waiting, not refused (a refusal is trailers-only, its status in the headers)
      expect(headers['grpc-status'], String(headers['grpc-message'])).to.equal(undefined);
    }
    const viewer = fleet.apiAs(fleet.tokens.viewer);
    await expectCode(
      viewer.listHosts({ pageSize: 0, pageToken: '' }),
      status.RESOURCE_EXHAUSTED,
      new RegExp(`too many concurrent calls from this client \\(${LIMIT} allowed\\)`),
    );
    // another client is not starved by the viewer's unread answers
    const operator = await fleet.apiAs(fleet.tokens.operator).listHosts({ pageSize: 0, pageToken: '' });
    expect(operator.hosts.map((h) => h.hostId)).to.deep.equal(['a']);
    // the viewer reads: its answers are delivered, whole, and its slots are free again
    session.settings({ initialWindowSize: 65_535 });
    for (const call of unread) expect((await call.ended).code).to.equal(status.OK);
    const again = await viewer.listHosts({ pageSize: 0, pageToken: '' });
    expect(again.hosts.map((h) => h.hostId)).to.deep.equal(['a']);
  });
});
