// A large XML document in a request is read off the coordinator's event loop: while one is read
// (about a second of CPU for 1 MiB), the coordinator keeps answering other calls. Real
// coordinator, real nats-server, one agent; the order of answers is asserted, not their times.
import { expect } from 'chai';
import { credentials, status } from '@grpc/grpc-js';
import { StorageServiceClient } from '../../libs/proto/cistern/v1/storage.js';
import { connectClient, promiseApi, type StorageApi } from '../support/client.js';
import { outcomeOf } from '../support/volume-data.js';
import { useStack } from '../support/index.js';

/**
 * Quick calls that must all be answered before the large document's answer. Measured on a busy
 * 2-CPU machine: with the document read on the event loop 3-12 were (those answered while the
 * large request was still on its way), with it read on a worker thread 97-398.
 */
const QUICK_CALLS = 30;

/**
 * About 1 MiB that reads slowly (every character a reference) and is refused only once it is
 * all read: it has no <name>. Within every limit of the reader, so it is read, not refused early.
 */
function slowPoolDocument(): string {
  return `<pool type='dir'><source><name>${'&#x41;'.repeat(170_000)}</name></source><target><path>/srv/x</path></target></pool>`;
}

describe('xml: a large request document does not hold up the coordinator (real nats-server, agent a)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });

  before(async () => {
    await ctx.stack.api.definePool({
      host: 'a',
      definition: undefined,
      xml: `<pool type='dir'><name>quick</name><target><path>${ctx.stack.roots.a}/quick</path></target></pool>`,
      requestId: '',
      validate: false,
    });
  });

  for (const [method, send] of [
    ['DefinePool', (api: StorageApi, xml: string) => api.definePool({ host: 'a', xml, definition: undefined, requestId: '', validate: false })],
    ['CreatePool', (api: StorageApi, xml: string) => api.createPool({ host: 'a', xml, definition: undefined, build: false, buildFlags: undefined, requestId: '' })],
  ] as const) {
    it(`while ${method} reads a 1 MiB document, ${QUICK_CALLS} GetPool and ListHosts calls are answered before it`, async () => {
      // the quick calls on their own connection, so that none waits behind the large upload; the
      // large request gzip-compressed (a few KiB on the wire), so that it reaches the coordinator
      // before the quick calls are under way: what they then wait for is its reading
      const quickClient = connectClient(ctx.stack.address);
      const largeClient = new StorageServiceClient(ctx.stack.address, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
      const quick = promiseApi(quickClient);
      const largeApi = promiseApi(largeClient);
      try {
        // both connected before the large call starts
        await quick.listHosts({ pageSize: 0, pageToken: '' });
        await largeApi.listHosts({ pageSize: 0, pageToken: '' });
        const order: string[] = [];
        const large = outcomeOf(send(largeApi, slowPoolDocument())).then((r) => {
          order.push('large');
          return r;
        });
        for (let i = 0; i < QUICK_CALLS; i++) {
          if (i % 2 === 0) expect((await quick.getPool({ name: 'hosts/a/pools/quick' })).definition?.name).to.equal('quick');
          else expect((await quick.listHosts({ pageSize: 0, pageToken: '' })).hosts.map((h) => h.hostId)).to.include('a');
          order.push(`quick ${i}`);
        }
        const answer = await large;
        // the large document is read and refused for what it says, as before
        expect(status[answer.code], answer.message).to.equal('INVALID_ARGUMENT');
        expect(answer.message).to.equal('xml: name: missing pool name element');
        expect(order.indexOf('large'), `answers in order: ${order.join(', ')}`).to.equal(QUICK_CALLS);
      } finally {
        quickClient.close();
        largeClient.close();
      }
    });
  }
});
