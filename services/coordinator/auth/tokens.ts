// Bearer tokens -> principals and roles, from a JSON file the operator writes:
//
//   { "tokens": [
//       { "principal": "alice", "role": "admin",    "sha256": "<hex of sha256(token)>" },
//       { "principal": "ci",    "role": "operator", "token": "<the token itself>" } ] }
//
// A token is looked up by its SHA-256, so the table never compares secrets byte by byte
// and a file holding only hashes reveals no token. Tokens are at least 16 characters.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError } from '../../../libs/errors/errors.js';

export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Does `role` include what `needed` may do (admin > operator > viewer)? */
export function roleAllows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(RANK, value);
}

export const PRINCIPAL_RULE = /^[A-Za-z0-9@._:-]{1,128}$/;
export const MIN_TOKEN_LENGTH = 16;
/** What bearerToken takes: a token with anything else could never authenticate. */
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/**
 * V8's JSON.parse message without what it quotes of the text: 'Unexpected token 'x', "{"tokens":
 * [{"token": x..." is not valid JSON' quotes the file, which holds tokens. The messages that
 * quote nothing of it say where ("Expected ',' or '}' ... in JSON at position 79") and are kept whole.
 */
function jsonErrorWithoutQuotes(message: string): string {
  // the character after 'Unexpected token' is the file's, a token's perhaps; "..." is a quote of the file
  if (!/^Unexpected token|"/.test(message)) return message;
  const what = /^Unexpected token/.test(message) ? 'an unexpected character' : 'a syntax error';
  return `${what} (the parser's message is left out: it quotes the file, which holds tokens)`;
}

export interface TokenEntry {
  principal: string;
  role: Role;
}

export const tokenDigest = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export class TokenTable {
  private readonly byDigest = new Map<string, TokenEntry>();
  private readonly roles = new Map<string, Role>();

  constructor(entries: Array<TokenEntry & { digest: string }>) {
    for (const e of entries) {
      const known = this.roles.get(e.principal);
      if (known && known !== e.role) {
        throw new InvalidArgumentError('tokens', `principal '${e.principal}' has two roles (${known}, ${e.role}); give each principal one role`);
      }
      if (this.byDigest.has(e.digest)) throw new InvalidArgumentError('tokens', `two entries have the same token (principal '${e.principal}')`);
      this.byDigest.set(e.digest, { principal: e.principal, role: e.role });
      this.roles.set(e.principal, e.role);
    }
  }

  get size(): number {
    return this.byDigest.size;
  }

  lookup(token: string): TokenEntry | undefined {
    return this.byDigest.get(tokenDigest(token));
  }

  roleOf(principal: string): Role | undefined {
    return this.roles.get(principal);
  }

  /** Parses the JSON text of a token file; errors name the entry, never print a token. */
  static parse(text: string, source = 'token file'): TokenTable {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(source, `is not valid JSON: ${jsonErrorWithoutQuotes((err as Error).message)}`);
    }
    const list = (doc as { tokens?: unknown })?.tokens;
    if (!Array.isArray(list)) throw new InvalidArgumentError(source, 'must be an object with a "tokens" array');
    const entries = list.map((raw, i) => {
      const e = (raw ?? {}) as Record<string, unknown>;
      const where = `${source}: tokens[${i}]`;
      if (typeof e.principal !== 'string' || !PRINCIPAL_RULE.test(e.principal)) {
        throw new InvalidArgumentError(where, 'principal must be 1-128 of A-Z a-z 0-9 @ . _ : -');
      }
      if (!isRole(e.role)) throw new InvalidArgumentError(where, `role must be one of ${ROLES.join(', ')}`);
      let digest: string;
      if (typeof e.sha256 === 'string' && e.token === undefined) {
        if (!/^[0-9a-f]{64}$/i.test(e.sha256)) throw new InvalidArgumentError(where, 'sha256 must be 64 hex digits');
        digest = e.sha256.toLowerCase();
      } else if (typeof e.token === 'string' && e.sha256 === undefined) {
        if (e.token.length < MIN_TOKEN_LENGTH) throw new InvalidArgumentError(where, `token must be at least ${MIN_TOKEN_LENGTH} characters`);
        if (!TOKEN_CHARACTERS.test(e.token)) {
          throw new InvalidArgumentError(where, "token must be printable ASCII without spaces (characters ! to ~), as a client sends it in 'authorization: Bearer <token>'");
        }
        digest = tokenDigest(e.token);
      } else {
        throw new InvalidArgumentError(where, 'give exactly one of "token" or "sha256"');
      }
      return { principal: e.principal, role: e.role, digest };
    });
    return new TokenTable(entries);
  }

  static load(path: string): TokenTable {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0 && process.platform !== 'win32') {
      // readable by others: refuse rather than trust a leaked file
      throw new InvalidArgumentError('--tokens', `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    }
    return TokenTable.parse(readFileSync(path, 'utf8'), path);
  }
}

/** The token of an `authorization: Bearer <token>` metadata value, or undefined. */
export function bearerToken(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(value);
  return m ? m[1] : undefined;
}
