// Page tokens: opaque to clients, they hold the last key of the previous page, so a page
// boundary stays right while objects come and go between calls.
import { InvalidArgumentError } from '../../libs/errors/errors.js';
import { varintLength } from './varint.js';

export const DEFAULT_PAGE_SIZE = 1000;
export const MAX_PAGE_SIZE = 10_000;
/**
 * A page's encoded items stay under the 4 MiB a gRPC client accepts by default (Python, Go,
 * C++, Java, grpc-js), with room for the page token: a page of long names holds fewer items
 * than page_size, as AIP-158 allows, instead of a response the client refuses.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024 - 64 * 1024;

/** The bytes one item takes as a repeated message field (tag, length, body). */
export function itemBytes(size: number): number {
  return 1 + varintLength(size) + size;
}

export function pageSize(requested: number, field = 'page_size'): number {
  if (!Number.isInteger(requested) || requested < 0) throw new InvalidArgumentError(field, `must be 0 (default ${DEFAULT_PAGE_SIZE}) or positive`);
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

export function encodePageToken(kind: string, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([kind, ...key]), 'utf8').toString('base64url');
}

/** The key a token holds; INVALID_ARGUMENT for a token of another listing or garbage. */
export function decodePageToken(token: string, kind: string, parts: number, field = 'page_token'): string[] | undefined {
  if (!token) return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (
    !Array.isArray(decoded) ||
    decoded[0] !== kind ||
    decoded.length !== parts + 1 ||
    !decoded.every((p) => typeof p === 'string') ||
    // only a token as this coordinator writes them: base64url decoding skips characters outside
    // its alphabet, and a token with junk added would otherwise pass as the original
    encodePageToken(kind, decoded.slice(1) as string[]) !== token
  ) {
    throw new InvalidArgumentError(
      field,
      'is not a page token of this listing; pass next_page_token from the previous response of the same listing (same parent and filters)',
    );
  }
  return decoded.slice(1) as string[];
}

/** First index whose item compares greater than `after` in a sorted array. */
export function firstAfter<T>(items: readonly T[], after: T, cmp: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(items[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * One page of a short listing held whole in memory (hosts, secrets), sorted by `keyOf`
 * (plain string order): the items after the token's key, up to page_size, and with `sizeOf`
 * (an item's encoded bytes) no more than MAX_PAGE_BYTES of them (at least one).
 */
export function pageOf<T>(
  sorted: readonly T[],
  keyOf: (item: T) => string,
  req: { pageSize: number; pageToken: string },
  kind: string,
  sizeOf?: (item: T) => number,
): { items: T[]; nextPageToken: string } {
  const size = pageSize(req.pageSize);
  const after = decodePageToken(req.pageToken, kind, 1);
  const keys = sorted.map(keyOf);
  const start = after ? firstAfter(keys, after[0]!, (a, b) => (a < b ? -1 : a > b ? 1 : 0)) : 0;
  let end = Math.min(start + size, sorted.length);
  if (sizeOf) {
    let bytes = 0;
    for (let i = start; i < end; i++) {
      bytes += itemBytes(sizeOf(sorted[i]!));
      if (bytes > MAX_PAGE_BYTES && i > start) {
        end = i;
        break;
      }
    }
  }
  const items = sorted.slice(start, end);
  const nextPageToken = end < sorted.length ? encodePageToken(kind, [keys[end - 1]!]) : '';
  return { items, nextPageToken };
}

/** page_size and page_token checked before a listing is read. */
export function checkPageRequest(req: { pageSize: number; pageToken: string }, kind: string): void {
  pageSize(req.pageSize);
  decodePageToken(req.pageToken, kind, 1);
}
