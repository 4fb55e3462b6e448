// ListPools through grpc-js without decoding the pools: the response is walked at its top level
// only (field 1 = one pool, counted; field 2 = next_page_token). What a pass costs then is the
// server's work and the transport's, without the generated client's decoding of every Pool
// (ts-proto on @bufbuild/protobuf: most of a typed pass over 10,000 pools on this machine).
// Used by list-floor.ts and the fleet bench to show the two shares side by side.
import type { Client } from '@grpc/grpc-js';
import { ListPoolsRequest } from '../libs/proto/cistern/v1/storage.js';

export interface RawPage {
  pools: number;
  nextPageToken: string;
}

/** Reads a ListPoolsResponse's top level: pools counted, not decoded. Throws on truncated bytes. */
export function rawListPoolsPage(buf: Buffer): RawPage {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= buf.length) throw new RangeError('truncated ListPoolsResponse');
      const byte = buf[pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  };
  let pools = 0;
  let nextPageToken = '';
  while (pos < buf.length) {
    const tag = varint();
    if ((tag & 7) !== 2) throw new RangeError(`unexpected wire type in ListPoolsResponse (tag ${tag})`);
    const len = varint();
    if (pos + len > buf.length) throw new RangeError('truncated ListPoolsResponse');
    if (tag >>> 3 === 1) pools++;
    else if (tag >>> 3 === 2) nextPageToken = buf.toString('utf8', pos, pos + len);
    pos += len;
  }
  return { pools, nextPageToken };
}

const LIST_POOLS_PATH = '/cistern.v1.StorageService/ListPools';

/** One ListPools page on `client`'s channel, answered as a RawPage. */
export function rawListPools(client: Client, request: Partial<ListPoolsRequest>, deadlineMs = 30_000): Promise<RawPage> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      LIST_POOLS_PATH,
      (r: ListPoolsRequest) => Buffer.from(ListPoolsRequest.encode(r).finish()),
      rawListPoolsPage,
      ListPoolsRequest.fromPartial(request),
      { deadline: Date.now() + deadlineMs },
      (err, page) => (err || !page ? reject(err ?? new Error('no response')) : resolve(page)),
    );
  });
}

/** Every page of a fleet-wide ListPools through rawListPools; the pool count and pages read. */
export async function rawListAllPools(client: Client, pageSize = 0): Promise<{ pools: number; pages: number }> {
  let pageToken = '';
  let pools = 0;
  let pages = 0;
  do {
    const page = await rawListPools(client, { pageSize, pageToken });
    pools += page.pools;
    pages++;
    pageToken = page.nextPageToken;
  } while (pageToken);
  return { pools, pages };
}
