// The in-process REPORT LUNS client against a target that takes the connection and then says
// nothing (a hung array, a firewall that passes the SYN only). The client's own time limit ends
// the wait: that is the portal's silence, UNAVAILABLE as for every iSCSI tool the agent stops
// at its limit (libiscsi-tools.ts iscsiToolError), not DEADLINE_EXCEEDED, which tells the caller
// its own deadline passed. The error names the target, the portal and what got no answer.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import { rejects } from '../../support/rejects.js';

/** A target that reads everything; `loginOk`: it answers logins (and then nothing else). */
async function silentTarget(loginOk: boolean): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (c) => {
      if (!loginOk) return;
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 48) {
        const dlen = buf.readUIntBE(5, 3);
        const total = 48 + buf[4]! * 4 + dlen + ((4 - (dlen % 4)) % 4);
        if (buf.length < total) break;
        const bhs = Buffer.from(buf.subarray(0, 48));
        buf = buf.subarray(total);
        if ((bhs[0]! & 0x3f) === 0x03) {
          const r = Buffer.alloc(48);
          r[0] = 0x23;
          r[1] = 0x80 | (bhs[1]! & 0x0c) | 0x03;
          bhs.copy(r, 8, 8, 20);
          s.write(r);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('REPORT LUNS client and a target that never answers', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  async function ask(loginOk: boolean): Promise<{ code: string; message: string; port: number }> {
    const server = await silentTarget(loginOk);
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const err = await rejects(reportLuns({ host: '127.0.0.1', port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 500 }));
    return { code: err.code, message: err.message, port };
  }

  it('silent at the login: UNAVAILABLE naming the target, its portal and the login', async () => {
    const { code, message, port } = await ask(false);
    expect(code).to.equal('UNAVAILABLE');
    expect(message).to.equal(`iSCSI target 'iqn.2026-11.test:t' at 127.0.0.1:${port} did not answer the login within 500 ms`);
  });

  it('silent after the login: UNAVAILABLE naming the target, its portal and REPORT LUNS', async () => {
    const { code, message, port } = await ask(true);
    expect(code).to.equal('UNAVAILABLE');
    expect(message).to.equal(`iSCSI target 'iqn.2026-11.test:t' at 127.0.0.1:${port} did not answer REPORT LUNS within 500 ms`);
  });
});
