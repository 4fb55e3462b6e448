// The in-process REPORT LUNS client and a portal that redirects its logins (RFC 7143 11.13.5,
// status class 1 with a TargetAddress key): portal groups that balance their logins (an
// EqualLogic group address, a target moved to another portal) answer every login this way.
// libiscsi, which libvirt 9.0's iscsi-direct backend and Cistern's own iscsi-inq,
// iscsi-readcapacity16 and qemu-img use, logs in again at the address given; REPORT LUNS must
// too, or the pool cannot start where libvirt's does. The address is a network peer's word:
// it is checked as a pool's host is, and the hops are bounded.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import { rejects } from '../../support/rejects.js';
import { loginAccepted, onPdus } from '../../support/fake-iscsi-target.js';

/** Key=value\0 text. */
function keys(text: Record<string, string>): Buffer {
  return Buffer.from(Object.entries(text).map(([k, v]) => `${k}=${v}\0`).join(''));
}

/** A PDU with its data segment padded to 4 bytes. */
function pdu(bhs: Buffer, data: Buffer = Buffer.alloc(0)): Buffer {
  bhs.writeUIntBE(data.length, 5, 3);
  return Buffer.concat([bhs, data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
}

/** A target on loopback: `onLogin` answers each login request, a SCSI command gets LUNs 0 and 1. */
async function target(onLogin: (s: Socket, req: Buffer) => void): Promise<Server> {
  const server = createServer((s) => {
    onPdus(s, (bhs) => {
      const op = bhs[0]! & 0x3f;
      if (op === 0x03) onLogin(s, bhs);
      else if (op === 0x01) {
        const data = Buffer.alloc(24);
        data.writeUInt32BE(16, 0);
        data[17] = 1; // LUN 0 at 8, LUN 1 at 16
        const r = Buffer.alloc(48);
        r[0] = 0x25;
        r[1] = 0x81; // final, status
        bhs.copy(r, 16, 16, 20);
        s.write(pdu(r, data));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Login success, straight to full feature phase. */
function loggedIn(s: Socket, req: Buffer): void {
  s.write(loginAccepted(req));
}

/** Login status class 1 (redirect), detail 1 (moved temporarily), to `address`. */
function redirectTo(address: string): (s: Socket, req: Buffer) => void {
  return (s, req) => {
    const r = Buffer.alloc(48);
    r[0] = 0x23;
    req.copy(r, 8, 8, 20);
    r[36] = 1;
    r[37] = 1;
    s.write(pdu(r, keys({ TargetAddress: address })));
  };
}

describe('REPORT LUNS client and a portal that redirects the login', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));
  const portOf = (s: Server): number => (s.address() as AddressInfo).port;
  const ask = (port: number): Promise<number[]> =>
    reportLuns({ host: '127.0.0.1', port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', timeoutMs: 15_000 });

  it('logs in again at the TargetAddress given and lists the LUNs there, as libiscsi does', async () => {
    const real = await target(loggedIn);
    servers.push(real);
    const group = await target(redirectTo(`127.0.0.1:${portOf(real)},1`));
    servers.push(group);
    expect(await ask(portOf(group))).to.deep.equal([0, 1]);
  });

  it('a portal that redirects to itself for ever: FAILED_PRECONDITION naming the portal, after a bounded number of hops', async () => {
    let port = 0;
    let logins = 0;
    const loop = await target((s, req) => {
      logins++;
      redirectTo(`127.0.0.1:${port}`)(s, req);
    });
    servers.push(loop);
    port = portOf(loop);
    const err = await rejects(ask(port));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.match(new RegExp(`'iqn\\.2026-11\\.test:t' at 127\\.0\\.0\\.1:${port}.*redirected`));
    expect(err.message).to.match(/too many redirects/);
    expect(logins).to.be.within(2, 8);
  });

  it('a TargetAddress that is no host name or address is refused naming it', async () => {
    const group = await target(redirectTo('$(reboot) :3260'));
    servers.push(group);
    const err = await rejects(ask(portOf(group)));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(err.message).to.include("TargetAddress '$(reboot) :3260'");
  });
});

describe('TargetAddress of a login redirect', () => {
  it('takes host[:port][,tag] and [IPv6][:port][,tag], the default port 3260; refuses what a pool host could not be', async () => {
    const { parseTargetAddress } = await import('../../../libs/backends/iscsi-target-address.js');
    expect(parseTargetAddress('[::1]:3261,1')).to.deep.equal({ host: '::1', port: 3261 });
    expect(parseTargetAddress('san.example.com,2')).to.deep.equal({ host: 'san.example.com', port: 3260 });
    expect(parseTargetAddress('127.0.0.1:3262')).to.deep.equal({ host: '127.0.0.1', port: 3262 });
    for (const bad of ['', '127.0.0.1:0', '127.0.0.1:65536', '-oProxyCommand=x', 'a b', '::1:3260', '[fe80::1%eth0]:3260', '127.0.0.1:3260,', '$(reboot)']) {
      expect(parseTargetAddress(bad), bad).to.equal(undefined);
    }
  });
});
