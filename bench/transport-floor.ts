// The floor under Cistern's control path on this machine: one round trip of each transport
// between two Node processes, with nothing of Cistern in it. A TCP echo (the kernel and
// Node's event loop), a grpc-js unary call of 300 bytes (no protobuf: the bytes are the
// message), the same bytes as a message on an open grpc-js stream (what a Session call costs)
// and a NATS request/reply through a real nats-server. Each gRPC or NATS hop of an
// operation costs at least its row here.
//   node dist/bench/transport-floor.js          (BENCH_FLOOR_CALLS=N, default 3000, after 500 of warm-up)
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client, Metadata, Server, ServerCredentials, credentials, makeGenericClientConstructor, type ServerDuplexStream, type ServiceDefinition } from '@grpc/grpc-js';
import { connect as natsConnect } from '@nats-io/transport-node';
import { startNats } from '../test/support/index.js';
import { fmtMs, percentile, textTable } from './stats.js';

const CALLS = Number(process.env.BENCH_FLOOR_CALLS ?? '3000');
const WARMUP = 500;
const PAYLOAD = Buffer.alloc(300, 1);

const identity = (b: Buffer): Buffer => b;
const echoService: ServiceDefinition = {
  echo: {
    path: '/floor.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  // what a Session costs per call: one message each way on a stream that stays open
  chat: {
    path: '/floor.Echo/Chat',
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** The far end, in a child process: `tcp`, `grpc` or `nats URL`; sends its port (or 0) when ready. */
async function serve(kind: string, natsUrl?: string): Promise<void> {
  const ready = (port: number): void => void process.send!(port);
  if (kind === 'tcp') {
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.on('data', (d) => socket.write(d));
    });
    server.listen(0, '127.0.0.1', () => ready((server.address() as AddressInfo).port));
  } else if (kind === 'grpc') {
    const server = new Server();
    server.addService(echoService, {
      echo: (call: { request: Buffer }, cb: (e: null, v: Buffer) => void) => cb(null, call.request),
      chat: (call: ServerDuplexStream<Buffer, Buffer>) => {
        call.on('data', (b: Buffer) => call.write(b));
        call.on('end', () => call.end());
      },
    });
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
      if (err) throw err;
      ready(port);
    });
  } else {
    const nc = await natsConnect({ servers: natsUrl });
    nc.subscribe('floor.echo', {
      callback: (_err, msg) => {
        msg.respond(msg.data);
      },
    });
    await nc.flush();
    ready(0);
  }
}

function farEnd(...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', ...args]);
  return new Promise((resolve, reject) => {
    child.once('message', (port) => resolve({ child, port: Number(port) }));
    child.once('exit', (code) => reject(new Error(`the ${args[0]} echo server exited (${code})`)));
  });
}

async function measure(call: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await call();
  const out: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await call();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

async function tcpRow(): Promise<number[]> {
  const { child, port } = await farEnd('tcp');
  const socket = tcpConnect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  try {
    return await measure(
      () =>
        new Promise((resolve) => {
          socket.once('data', resolve);
          socket.write(PAYLOAD);
        }),
    );
  } finally {
    socket.destroy();
    child.kill();
  }
}

async function grpcRow(): Promise<number[]> {
  const { child, port } = await farEnd('grpc');
  const Client = makeGenericClientConstructor(echoService, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as {
    echo(b: Buffer, cb: (e: Error | null, v?: Buffer) => void): void;
    close(): void;
  };
  try {
    return await measure(() => new Promise((resolve, reject) => client.echo(PAYLOAD, (e, v) => (e ? reject(e) : resolve(v)))));
  } finally {
    client.close();
    child.kill();
  }
}

async function grpcStreamRow(): Promise<number[]> {
  const { child, port } = await farEnd('grpc');
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const m = echoService.chat!;
  const stream = client.makeBidiStreamRequest(m.path, identity, identity, new Metadata());
  let answer: ((b: Buffer) => void) | undefined;
  stream.on('data', (b: Buffer) => answer?.(b));
  // the far end is killed right after the stream is ended: that status is of no interest
  stream.on('error', () => undefined);
  try {
    return await measure(
      () =>
        new Promise((resolve) => {
          answer = resolve;
          stream.write(PAYLOAD);
        }),
    );
  } finally {
    stream.end();
    client.close();
    child.kill();
  }
}

async function natsRow(): Promise<number[]> {
  const server = await startNats();
  try {
    const { child } = await farEnd('nats', server.url);
    const nc = await natsConnect({ servers: server.url });
    try {
      return await measure(() => nc.request('floor.echo', PAYLOAD, { timeout: 5_000 }));
    } finally {
      await nc.close();
      child.kill();
    }
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const rows: string[][] = [];
  for (const [what, run] of [
    ['TCP echo, 300 B (Node to Node, loopback)', tcpRow],
    ['grpc-js unary echo, 300 B (no protobuf)', grpcRow],
    ['grpc-js message echo on an open bidirectional stream, 300 B (a Session call)', grpcStreamRow],
    ['NATS request/reply, 300 B (through nats-server)', natsRow],
  ] as const) {
    const xs = await run();
    process.stderr.write(`${what}: p50 ${fmtMs(percentile(xs, 50))}\n`);
    rows.push([what, fmtMs(percentile(xs, 50)), fmtMs(percentile(xs, 90)), fmtMs(percentile(xs, 99)), fmtMs(Math.max(...xs))]);
  }
  process.stdout.write(`\nround trips, ${CALLS} sequential calls each after ${WARMUP} of warm-up\n\n${textTable(['what', 'p50', 'p90', 'p99', 'max'], rows)}\n`);
}

if (process.argv[2] === 'serve') {
  void serve(process.argv[3]!, process.argv[4]);
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error)?.stack ?? err}\n`);
      process.exit(1);
    },
  );
}
