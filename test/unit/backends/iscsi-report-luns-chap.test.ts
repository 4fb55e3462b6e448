// The in-process REPORT LUNS client and a target whose CHAP challenge is malformed (RFC 7143
// 12.1.3, RFC 1994): an algorithm other than the MD5 (5) offered, an identifier that is not
// one octet, a challenge that is not whole hex or base64 bytes. Hashing the secret over what
// is left (Buffer.from('abc', 'hex') is one byte, 'zz' none) sends a response the target can
// only refuse, and the user was told PERMISSION_DENIED "wrong or missing CHAP credentials", to
// check a secret that is right. The challenge is refused before any response is sent, naming
// the target, the portal and the key.
import { expect } from 'chai';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { reportLuns } from '../../../libs/backends/iscsi-report-luns.js';
import { rejects } from '../../support/rejects.js';

function keys(text: Record<string, string>): Buffer {
  return Buffer.from(Object.entries(text).map(([k, v]) => `${k}=${v}\0`).join(''));
}

function decode(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of data.toString().split('\0')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

/** A CHAP target that answers CHAP_A=5 with `challenge`; `responses` gets every CHAP_R it is sent. */
async function chapTarget(challenge: Record<string, string>, responses: string[]): Promise<Server> {
  const server = createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 48) {
        const dlen = buf.readUIntBE(5, 3);
        const total = 48 + buf[4]! * 4 + dlen + ((4 - (dlen % 4)) % 4);
        if (buf.length < total) break;
        const bhs = Buffer.from(buf.subarray(0, 48));
        const got = decode(buf.subarray(48 + bhs[4]! * 4, 48 + bhs[4]! * 4 + dlen));
        buf = buf.subarray(total);
        if ((bhs[0]! & 0x3f) !== 0x03) continue;
        const r = Buffer.alloc(48);
        r[0] = 0x23;
        bhs.copy(r, 8, 8, 20);
        let data: Buffer = Buffer.alloc(0);
        if (got.has('AuthMethod')) data = keys({ AuthMethod: 'CHAP' });
        else if (got.has('CHAP_A')) data = keys(challenge);
        else if (got.has('CHAP_R')) {
          responses.push(got.get('CHAP_R')!);
          r[36] = 2; // authentication failure: the response cannot match
          r[37] = 1;
        }
        r.writeUIntBE(data.length, 5, 3);
        s.write(Buffer.concat([r, data, Buffer.alloc((4 - (data.length % 4)) % 4)]));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('REPORT LUNS client and a malformed CHAP challenge', function () {
  this.timeout(20_000);
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  const GOOD_C = '0x' + '5a'.repeat(16);
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a challenge of an odd number of hex digits', { CHAP_A: '5', CHAP_I: '7', CHAP_C: '0xabc' }, /CHAP_C '0xabc'/],
    ['an empty challenge', { CHAP_A: '5', CHAP_I: '7', CHAP_C: '0x' }, /CHAP_C '0x'/],
    ['a challenge that is not hex', { CHAP_A: '5', CHAP_I: '7', CHAP_C: '0xzz12' }, /CHAP_C '0xzz12'/],
    ['an identifier past one octet', { CHAP_A: '5', CHAP_I: '300', CHAP_C: GOOD_C }, /CHAP_I '300'/],
    ['an algorithm other than the MD5 offered', { CHAP_A: '7', CHAP_I: '7', CHAP_C: GOOD_C }, /CHAP_A '7'/],
  ];
  for (const [what, challenge, named] of cases) {
    it(`${what}: FAILED_PRECONDITION naming the target, portal and key; no response is sent`, async () => {
      const responses: string[] = [];
      const server = await chapTarget(challenge, responses);
      servers.push(server);
      const port = (server.address() as AddressInfo).port;
      const err = await rejects(
        reportLuns({ host: '127.0.0.1', port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', chap: { username: 'u', password: Buffer.from('secretsecret') }, timeoutMs: 15_000 }),
      );
      expect(err.code, err.message).to.equal('FAILED_PRECONDITION');
      expect(err.message).to.include(`'iqn.2026-11.test:t' at 127.0.0.1:${port}`);
      expect(err.message).to.match(named);
      expect(responses).to.deep.equal([]);
    });
  }

  it('a well-formed challenge is answered (the fake target then refuses it: PERMISSION_DENIED)', async () => {
    const responses: string[] = [];
    const server = await chapTarget({ CHAP_A: '5', CHAP_I: '7', CHAP_C: GOOD_C }, responses);
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const err = await rejects(
      reportLuns({ host: '127.0.0.1', port, target: 'iqn.2026-11.test:t', initiator: 'iqn.2026-11.test:i', chap: { username: 'u', password: Buffer.from('secretsecret') }, timeoutMs: 15_000 }),
    );
    expect(err.code).to.equal('PERMISSION_DENIED');
    expect(responses).to.have.length(1);
  });
});
