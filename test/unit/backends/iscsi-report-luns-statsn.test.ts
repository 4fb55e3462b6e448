// The in-process REPORT LUNS client against a target whose status sequence numbers wrap. A
// target picks the StatSN it starts from (RFC 7143), and StatSN is a 32-bit serial number:
// after 0xffffffff comes 0. The ExpStatSN the client sends back is that 32-bit number, not
// a JavaScript integer past 2^32 that a 32-bit field cannot hold.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import { loginAccepted, onPdus } from '../../support/fake-iscsi-target.js';

/** A target that logs anyone in with StatSN `statSN` and answers REPORT LUNS with LUNs 0 and 1. */
async function wrappingTarget(statSN: number, seenExpStatSN: number[]): Promise<Server> {
  const server = createServer((s) => {
    let sn = statSN;
    onPdus(s, (bhs) => {
      const op = bhs[0]! & 0x3f;
      if (op === 0x03) {
        s.write(loginAccepted(bhs, sn));
        sn = (sn + 1) >>> 0;
      } else if (op === 0x01) {
        seenExpStatSN.push(bhs.readUInt32BE(28));
        const data = Buffer.alloc(24);
        data.writeUInt32BE(16, 0);
        data[17] = 1; // LUN 0 at 8, LUN 1 at 16
        const pdu = Buffer.alloc(48);
        pdu[0] = 0x25;
        pdu[1] = 0x81; // final, status
        pdu.writeUIntBE(data.length, 5, 3);
        bhs.copy(pdu, 16, 16, 20);
        pdu.writeUInt32BE(sn, 24);
        s.write(Buffer.concat([pdu, data]));
        sn = (sn + 1) >>> 0;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('REPORT LUNS client and a StatSN that wraps', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  it('a login answered with StatSN 0xffffffff: REPORT LUNS carries ExpStatSN 0 and lists the LUNs', async () => {
    const seen: number[] = [];
    const server = await wrappingTarget(0xffffffff, seen);
    servers.push(server);
    const luns = await reportLuns({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 15_000 });
    expect(luns).to.deep.equal([0, 1]);
    expect(seen).to.deep.equal([0]);
  });
});
