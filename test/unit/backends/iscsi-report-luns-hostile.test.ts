// The in-process REPORT LUNS client against a hostile target on loopback: it takes the login,
// then answers REPORT LUNS with more than was asked for. What the agent (root) holds stays
// bounded, and the refusal comes at once, not at the 30 s timeout with gigabytes read.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import type { CisternError } from '../../../libs/errors/errors.js';
import { rejects } from '../../support/rejects.js';
import { loginAccepted, onPdus } from '../../support/fake-iscsi-target.js';

/** A target that logs anyone in and answers a SCSI command with `answer(socket, bhs)`. */
async function hostileTarget(answer: (s: Socket, bhs: Buffer) => void): Promise<Server> {
  const server = createServer((s) => {
    onPdus(s, (bhs) => {
      const op = bhs[0]! & 0x3f;
      if (op === 0x03) s.write(loginAccepted(bhs));
      else if (op === 0x01) answer(s, bhs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function dataIn(bhs: Buffer, bytes: number, final: boolean): Buffer {
  const pdu = Buffer.alloc(48);
  pdu[0] = 0x25;
  if (final) pdu[1] = 0x81;
  pdu.writeUIntBE(bytes, 5, 3);
  bhs.copy(pdu, 16, 16, 20);
  return Buffer.concat([pdu, Buffer.alloc(bytes)]);
}

describe('REPORT LUNS client against a hostile target', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  async function ask(answer: (s: Socket, bhs: Buffer) => void): Promise<{ err: CisternError; ms: number }> {
    const server = await hostileTarget(answer);
    servers.push(server);
    const started = Date.now();
    const err = await rejects(reportLuns({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 15_000 }));
    return { err, ms: Date.now() - started };
  }

  it('refuses a PDU larger than the 8 KiB the protocol lets a target send', async () => {
    const { err } = await ask((s, bhs) => s.write(dataIn(bhs, 1 << 20, false)));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(/sent a PDU of 1048576 data bytes; at most 8192/);
  });

  it('a target that closes the connection in the middle of its answer: UNAVAILABLE naming the portal and target', async () => {
    let port = 0;
    const { err } = await ask((s, bhs) => {
      port = (s.localPort ?? 0);
      s.write(dataIn(bhs, 16, true).subarray(0, 30)); // half a Data-In header
      s.end();
    });
    expect(err.code).to.equal('UNAVAILABLE');
    expect(err.message).to.equal(`iSCSI target 'iqn.2026-11.test:t' at 127.0.0.1:${port} closed the connection`);
  });

  it('refuses Data-In past the 64 KiB asked for, without waiting for the end that never comes', async () => {
    const { err } = await ask((s, bhs) => {
      const one = dataIn(bhs, 8192, false);
      const pump = (): void => {
        while (!s.destroyed && s.write(one));
      };
      s.on('drain', pump);
      pump();
    });
    expect(err.code).to.equal('FAILED_PRECONDITION');
    // the refusal itself, not the 15 s timeout (UNAVAILABLE)
    expect(err.message).to.match(/sent more than the 65536 bytes of REPORT LUNS data asked for|sent more than it was asked for/);
  });

  it('a target with more LUNs than the first answer holds: asked again for the whole list (SPC: the list length says so)', async () => {
    const total = 9000; // 72,008 bytes of parameter data: more than the first 64 KiB asked for
    const list = Buffer.alloc(8 + total * 8);
    list.writeUInt32BE(total * 8, 0);
    for (let i = 0; i < total; i++) list.writeUInt16BE(0x4000 | (i + 1), 8 + i * 8); // flat space LUNs 1..9000
    const asked: number[] = [];
    const server = await hostileTarget((s, bhs) => {
      // an honest target: at most the CDB's allocation length, in Data-In PDUs of 8 KiB, the last one final
      const alloc = bhs.readUInt32BE(32 + 6);
      asked.push(alloc);
      const data = list.subarray(0, Math.min(alloc, list.length));
      for (let off = 0; off < data.length; off += 8192) {
        const part = data.subarray(off, off + 8192);
        const pdu = dataIn(bhs, 0, off + 8192 >= data.length);
        pdu.writeUIntBE(part.length, 5, 3);
        s.write(Buffer.concat([pdu.subarray(0, 48), part]));
      }
    });
    servers.push(server);
    const luns = await reportLuns({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 15_000 });
    expect(luns.length).to.equal(total);
    expect(luns.at(-1)).to.equal(0x4000 | total);
    expect(asked).to.deep.equal([65536, 8 + total * 8]);
  });
});
