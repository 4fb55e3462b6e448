// A gRPC call whose request message never finishes: HTTP/2 headers (with the metadata given),
// then a length prefix announcing more bytes than are sent, and the stream left open. What the
// server answers before the message is complete is all it decided without reading the request;
// a server that waits for the message first answers only when the call's deadline passes.
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';

export interface UnfinishedCall {
  /** grpc-status and grpc-message of the call's end */
  ended: Promise<{ code: number; message: string }>;
  /** resolves once what was sent has left this process (the server's flow control let it go) */
  written: Promise<void>;
  close(): void;
}

export interface UnfinishedCallOptions {
  /** the coordinator's HOST:PORT */
  address: string;
  /** CA of the server's certificate (TLS), or none for plaintext */
  ca?: Buffer;
  /** e.g. /cistern.v1.StorageService/GetPool */
  path: string;
  metadata?: Record<string, string>;
  /** the message length the prefix announces (only `sent` bytes of it are sent) */
  announced?: number;
  /** how many bytes of the message are sent (default 64): fewer than announced */
  sent?: number;
  /** grpc-timeout: the server ends the call DEADLINE_EXCEEDED after it */
  deadlineSeconds?: number;
}

export function unfinishedCall(opts: UnfinishedCallOptions): UnfinishedCall {
  const [host, port] = [opts.address.slice(0, opts.address.lastIndexOf(':')), Number(opts.address.slice(opts.address.lastIndexOf(':') + 1))];
  const ca = opts.ca;
  // TLS without a servername: an IP as SNI would print DEP0123 (cli/client.ts, IpTlsCredentials)
  const session: ClientHttp2Session = ca
    ? connect(`https://${opts.address}`, { createConnection: () => tlsConnect({ host, port, ca, ALPNProtocols: ['h2'] }) })
    : connect(`http://${opts.address}`);
  session.on('error', () => undefined);
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: opts.path,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': `${opts.deadlineSeconds ?? 30}S`,
    ...opts.metadata,
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(opts.announced ?? 1024 * 1024, 1);
  const written = new Promise<void>((resolve) => stream.write(Buffer.concat([prefix, Buffer.alloc(opts.sent ?? 64, 0x0a)]), () => resolve()));
  const ended = new Promise<{ code: number; message: string }>((resolve) => {
    let headers: Record<string, unknown> = {};
    const done = (h: Record<string, unknown>): void =>
      resolve({ code: Number(h['grpc-status'] ?? -1), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
    stream.on('response', (h) => {
      headers = h;
      // a trailers-only answer carries the status in its headers
      if (h['grpc-status'] !== undefined) done(h);
    });
    stream.on('trailers', (t) => done({ ...headers, ...t }));
    stream.on('close', () => done(headers));
    stream.on('error', () => undefined);
    stream.resume();
  });
  return {
    ended,
    written,
    close: () => {
      stream.close(constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
}
