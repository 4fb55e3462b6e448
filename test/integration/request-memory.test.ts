// What one client can make the coordinator hold with requests it never finishes sending. grpc-js
// reads a message whole before anything sees it, so every open Session stream and every call
// admitted before its request is read (admit-before-read.ts) can hold one partial message of up
// to the server's receive limit. With 16 MiB messages and 256 sessions a client, that was
// about 4 GiB per viewer (20 sessions took the coordinator up 315 MB). The largest legitimate
// request is an upload data message (4 MiB); documents are at most 1 MiB.
import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { useStack } from '../support/index.js';
import { unfinishedCall, type UnfinishedCall } from '../support/unfinished-call.js';

/** docs/api.md: the largest request message, an upload data message of 4 MiB plus 1 KiB for its framing */
const MESSAGE_LIMIT = 4 * 1024 * 1024 + 1024;
/** docs/security.md: the defaults of --max-sessions-per-client and --max-calls-per-client */
const SESSIONS = 32;
const CALLS = 64;

const SERVICE = '/cistern.v1.StorageService';

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

describe('requests a client never finishes: what the coordinator holds (coordinator defaults, no token file)', function () {
  this.timeout(180_000);
  const ctx = useStack({ hosts: ['a'] });
  const open: UnfinishedCall[] = [];
  const call = (method: string, announced: number, sent = 64): UnfinishedCall => {
    const c = unfinishedCall({ address: ctx.stack.coordinator.address, path: `${SERVICE}/${method}`, announced, sent, deadlineSeconds: 20 });
    open.push(c);
    return c;
  };
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
  });

  it('refuses a message longer than the limit as its length arrives, on a unary call and on a Session, naming the limit', async () => {
    for (const method of ['GetPool', 'Session']) {
      const refused = await call(method, MESSAGE_LIMIT + 1).ended;
      expect(refused.code, `${method}: ${refused.message}`).to.equal(status.RESOURCE_EXHAUSTED);
      expect(refused.message, method).to.include(`${MESSAGE_LIMIT + 1} vs ${MESSAGE_LIMIT}`);
    }
    // a message of the limit itself is read (the call ends only at its deadline, or here)
    const atLimit = call('Session', MESSAGE_LIMIT, MESSAGE_LIMIT);
    await atLimit.written;
    const answered = await ctx.stack.api.listHosts({ pageSize: 0, pageToken: '' });
    expect(answered.hosts.map((h) => h.hostId)).to.deep.equal(['a']);
  });

  it(`holds at most ${SESSIONS} sessions and ${CALLS} calls of one client, each with one message of at most 4 MiB + 1 KiB unread`, async () => {
    const pid = ctx.stack.coordinator.process.pid;
    const before = rssBytes(pid);
    // every session and call slot the client has, each with a message one byte short of the limit
    const sessions = Array.from({ length: SESSIONS }, () => call('Session', MESSAGE_LIMIT, MESSAGE_LIMIT - 1));
    await Promise.all(sessions.map((s) => s.written));
    const oneMore = await call('Session', MESSAGE_LIMIT).ended;
    expect(oneMore.code, oneMore.message).to.equal(status.RESOURCE_EXHAUSTED);
    expect(oneMore.message).to.match(new RegExp(`too many open Session streams from this client \\(${SESSIONS} allowed\\)`));
    const calls = Array.from({ length: CALLS }, () => call('GetPool', MESSAGE_LIMIT, MESSAGE_LIMIT - 1));
    await Promise.all(calls.map((c) => c.written));
    const callOver = await call('GetPool', MESSAGE_LIMIT).ended;
    expect(callOver.code, callOver.message).to.equal(status.RESOURCE_EXHAUSTED);
    expect(callOver.message).to.match(new RegExp(`too many concurrent calls from this client \\(${CALLS} allowed\\)`));
    const grown = rssBytes(pid) - before;
    const sent = (SESSIONS + CALLS) * (MESSAGE_LIMIT - 1);
    // the measurement saw the messages arrive (held as read: about what was sent) ...
    expect(grown, `RSS grew by ${grown} bytes for ${sent} bytes sent`).to.be.above(sent / 2);
    // ... and holds them once (measured 1.12x: chunk lists), not the refused ones too, whatever
    // else it allocates meanwhile (a margin for a busy machine's heap)
    expect(grown, `RSS grew by ${grown} bytes for ${sent} bytes sent`).to.be.below(sent * 1.5 + 64 * 1024 * 1024);
  });
});
