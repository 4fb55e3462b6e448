// The token file (--tokens, services/coordinator/auth/tokens.ts): the rules an operator's file
// must meet, each refused with INVALID_ARGUMENT naming the entry and never echoing a token,
// and the 'authorization: Bearer <token>' form a client must send.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { asCisternError, type CisternError } from '../../../libs/errors/errors.js';
import { bearerToken, roleAllows, TokenTable, tokenDigest } from '../../../services/coordinator/auth/tokens.js';
import { useTempDir } from '../../support/cleanup.js';

const TOKEN = 'tok-0123456789abcdef';
const file = (...tokens: unknown[]) => JSON.stringify({ tokens });

function refusal(text: string): CisternError {
  try {
    TokenTable.parse(text, 'tokens.json');
  } catch (err) {
    const e = asCisternError(err);
    expect(e.code).to.equal('INVALID_ARGUMENT');
    return e;
  }
  throw new Error('expected the token file to be refused');
}

describe('token file', () => {
  const scratch = useTempDir('cistern-tokens-');

  it('looks a principal and its role up by token, whether the file holds the token or its sha256', () => {
    const other = 'another-token-of-20c';
    const table = TokenTable.parse(file({ principal: 'ci', role: 'operator', token: TOKEN }, { principal: 'alice', role: 'admin', sha256: tokenDigest(other).toUpperCase() }));
    expect(table.size).to.equal(2);
    expect(table.lookup(TOKEN)).to.deep.equal({ principal: 'ci', role: 'operator' });
    expect(table.lookup(other)).to.deep.equal({ principal: 'alice', role: 'admin' });
    expect(table.lookup(`${TOKEN}x`)).to.equal(undefined);
    expect(table.roleOf('alice')).to.equal('admin');
    expect(table.roleOf('nobody')).to.equal(undefined);
  });

  it('refuses a token under 16 characters and takes one of 16', () => {
    const short = refusal(file({ principal: 'ci', role: 'viewer', token: 'x'.repeat(15) }));
    expect(short.message).to.equal('tokens.json: tokens[0]: token must be at least 16 characters');
    expect(TokenTable.parse(file({ principal: 'ci', role: 'viewer', token: 'x'.repeat(16) })).lookup('x'.repeat(16))?.principal).to.equal('ci');
  });

  it('refuses a token a client cannot send as "authorization: Bearer <token>" (a space, a control or non-ASCII character), without printing it', () => {
    // such a token was taken at start and then never matched: its holder was told the header
    // was not 'Bearer <token>'
    for (const token of ['correct horse battery staple', 'tok-0123456789abcdé', 'tok-0123456789abcdef\n', 'tok-0123456789abc\tdef']) {
      const bad = refusal(file({ principal: 'ci', role: 'viewer', token }));
      expect(bad.message, JSON.stringify(token)).to.equal("tokens.json: tokens[0]: token must be printable ASCII without spaces (characters ! to ~), as a client sends it in 'authorization: Bearer <token>'");
    }
  });

  it('refuses a file that is not JSON saying so, without quoting the file (which holds tokens)', () => {
    const secret = 'SuperSecretTok3n-abcdefgh';
    for (const text of [
      `{"tokens":[{"principal":"a","role":"admin","token":'${secret}'}]}`,
      `{"tokens":[{"principal":"a","role":"admin","token":${secret}}]}`,
      `{"tokens":[{"principal":"a","role":"admin","token":"${secret}"},]}`,
      `{"tokens":[{"principal":"a","role":"admin","token":"${secret}"}]} x`,
    ]) {
      const bad = refusal(text);
      expect(bad.message, text).to.match(/^tokens\.json: is not valid JSON: \S.*\S$/);
      expect(bad.message, text).to.not.match(/Unexpected $/);
      expect(bad.message, text).to.not.include(secret.slice(0, 5));
    }
  });

  it('refuses a sha256 that is not 64 hex digits', () => {
    for (const sha256 of ['a'.repeat(63), 'a'.repeat(65), 'g'.repeat(64), ` ${'a'.repeat(63)}`]) {
      expect(refusal(file({ principal: 'ci', role: 'viewer', sha256 })).message, sha256).to.equal('tokens.json: tokens[0]: sha256 must be 64 hex digits');
    }
  });

  it('refuses an entry with both a token and a sha256, or with neither', () => {
    for (const entry of [{ principal: 'ci', role: 'viewer', token: TOKEN, sha256: tokenDigest(TOKEN) }, { principal: 'ci', role: 'viewer' }]) {
      expect(refusal(file(entry)).message).to.equal('tokens.json: tokens[0]: give exactly one of "token" or "sha256"');
    }
  });

  it('refuses two entries with the same token, also when one gives it as its sha256, without printing it', () => {
    for (const second of [{ principal: 'b', role: 'viewer', token: TOKEN }, { principal: 'b', role: 'viewer', sha256: tokenDigest(TOKEN) }]) {
      const dup = refusal(file({ principal: 'a', role: 'viewer', token: TOKEN }, second));
      expect(dup.message).to.equal("tokens: two entries have the same token (principal 'b')");
      expect(dup.message).to.not.include(TOKEN);
    }
  });

  it('refuses a principal given two roles; the same role twice (two tokens of one principal) is fine', () => {
    const two = refusal(file({ principal: 'ci', role: 'viewer', token: TOKEN }, { principal: 'ci', role: 'admin', token: `${TOKEN}-2` }));
    expect(two.message).to.equal("tokens: principal 'ci' has two roles (viewer, admin); give each principal one role");
    const same = TokenTable.parse(file({ principal: 'ci', role: 'viewer', token: TOKEN }, { principal: 'ci', role: 'viewer', token: `${TOKEN}-2` }));
    expect([same.lookup(TOKEN)?.principal, same.lookup(`${TOKEN}-2`)?.principal]).to.deep.equal(['ci', 'ci']);
  });

  it('loads a file only its owner can read; group or other access is refused naming the mode', () => {
    const path = join(scratch.path, 'tokens.json');
    writeFileSync(path, file({ principal: 'ci', role: 'operator', token: TOKEN }));
    chmodSync(path, 0o600);
    expect(TokenTable.load(path).lookup(TOKEN)?.role).to.equal('operator');
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(path, mode);
      let refused: unknown;
      try {
        TokenTable.load(path);
      } catch (err) {
        refused = err;
      }
      const e = asCisternError(refused);
      expect(e.code, mode.toString(8)).to.equal('INVALID_ARGUMENT');
      expect(e.message).to.equal(`--tokens: ${path} is accessible by group or others (mode ${mode.toString(8)}); chmod 600 it`);
    }
  });

  it("takes a token only from 'Bearer <token>'", () => {
    expect(bearerToken(`Bearer ${TOKEN}`)).to.equal(TOKEN);
    expect(bearerToken(`bearer\t${TOKEN} `)).to.equal(TOKEN);
    for (const value of [`Basic ${TOKEN}`, TOKEN, 'Bearer', 'Bearer ', `Bearer ${TOKEN} extra`, `Bearer ${TOKEN}é`, `Bearer${TOKEN}`, ['Bearer x'], undefined]) {
      expect(bearerToken(value), String(value)).to.equal(undefined);
    }
  });

  it('ranks admin over operator over viewer', () => {
    expect(['viewer', 'operator', 'admin'].map((r) => roleAllows(r as never, 'operator'))).to.deep.equal([false, true, true]);
    expect(roleAllows('viewer', 'viewer')).to.equal(true);
    expect(roleAllows('operator', 'admin')).to.equal(false);
  });
});
