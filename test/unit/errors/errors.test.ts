import { expect } from 'chai';
import { status, type ServiceError } from '@grpc/grpc-js';
import {
  AbortedError,
  AlreadyExistsError,
  asCisternError,
  type CisternError,
  CommandFailedError,
  errorFromWire,
  type ErrorCode,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnavailableError,
} from '../../../libs/errors/errors.js';
import { fromGrpcError, percentEncode, toGrpcError, trailerBytes, TRAILER_BUDGET } from '../../../libs/errors/grpc-status.js';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

/** Every field of a message: varints as numbers, length-delimited as strings when UTF-8 text, else bytes. */
function fieldsOf(bytes: Uint8Array, asBytes: number[] = [3]): Map<number, unknown[]> {
  const r = new BinaryReader(bytes);
  const out = new Map<number, unknown[]>();
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    const value = type === WireType.Varint ? r.int32() : asBytes.includes(no) ? r.bytes() : r.string();
    out.set(no, [...(out.get(no) ?? []), value]);
  }
  return out;
}

function decodeStatus(bytes: Uint8Array): { code: number; message: string; details: { typeUrl: string; value: Uint8Array }[] } {
  const f = fieldsOf(bytes);
  return {
    code: f.get(1)![0] as number,
    message: f.get(2)![0] as string,
    details: (f.get(3) ?? []).map((any) => {
      const a = fieldsOf(any as Uint8Array, [2]);
      return { typeUrl: a.get(1)![0] as string, value: a.get(2)![0] as Uint8Array };
    }),
  };
}

describe('errors', () => {
  it('maps each condition to its gRPC code', () => {
    expect(toGrpcError(new InvalidArgumentError('capacity', 'bad')).code).to.equal(status.INVALID_ARGUMENT);
    expect(toGrpcError(new NotFoundError('x')).code).to.equal(status.NOT_FOUND);
    expect(toGrpcError(new AbortedError('x')).code).to.equal(status.ABORTED);
    expect(toGrpcError(new UnavailableError('x')).code).to.equal(status.UNAVAILABLE);
    expect(toGrpcError(new Error('boom')).code).to.equal(status.INTERNAL);
  });

  it('an unreachable NATS server is UNAVAILABLE, not INTERNAL; a DOMException timeout is not the bus', async () => {
    const { TimeoutError, RequestError, NoRespondersError, ClosedConnectionError } = await import('@nats-io/transport-node');
    for (const err of [new TimeoutError(), new ClosedConnectionError(), new RequestError('request failed', { cause: new NoRespondersError('x') })]) {
      const mapped = asCisternError(err);
      expect(mapped, err.name).to.be.instanceOf(UnavailableError);
      expect(mapped.message).to.match(/message bus \(NATS\)/);
    }
    const signal = AbortSignal.timeout(1);
    const reason = await new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)));
    expect((reason as Error).name).to.equal('TimeoutError');
    expect(asCisternError(reason)).to.be.instanceOf(InternalError);
  });

  it('names the field in an INVALID_ARGUMENT message', () => {
    const e = toGrpcError(new InvalidArgumentError('volume.capacity', "'-1' is negative; allowed: 0 to 2^63-1"));
    expect(e.details).to.equal("volume.capacity: '-1' is negative; allowed: 0 to 2^63-1");
  });

  it('sends details as percent-encoded trailers: non-ASCII names come back exactly', () => {
    const names = ['vé', '\u202Eevil', 'a%b c', '😀'];
    for (const volume of names) {
      const md = toGrpcError(new NotFoundError('no such volume', { volume })).metadata!;
      const sent = String(md.get('x-cistern-volume')[0]);
      expect(sent, volume).to.match(/^[\x20-\x7e]*$/);
      expect(decodeURIComponent(sent)).to.equal(volume);
    }
    expect(percentEncode('a%b é')).to.equal('a%25b %C3%A9');
  });

  it('sends a google.rpc.Status with an ErrorInfo, and a BadRequest naming the field', () => {
    const e = toGrpcError(new InvalidArgumentError('definition.capacity', "'-1' is negative", { pool: 'vé' }));
    const status = decodeStatus(e.metadata!.get('grpc-status-details-bin')[0] as Buffer);
    expect(status.code).to.equal(3);
    expect(status.message).to.equal(e.details); // grpc_status.from_call insists they are equal
    expect(status.details.map((d) => d.typeUrl)).to.deep.equal([
      'type.googleapis.com/google.rpc.ErrorInfo',
      'type.googleapis.com/google.rpc.BadRequest',
    ]);
    const info = fieldsOf(status.details[0]!.value);
    expect(info.get(1)).to.deep.equal(['INVALID_ARGUMENT']);
    expect(info.get(2)).to.deep.equal(['cistern.v1']);
    const metadata = new Map((info.get(3) ?? []).map((entry) => {
      const kv = fieldsOf(entry as Uint8Array);
      return [kv.get(1)![0], kv.get(2)![0]];
    }));
    expect(Object.fromEntries(metadata)).to.deep.equal({ field: 'definition.capacity', pool: 'vé' });
    const violation = fieldsOf(fieldsOf(status.details[1]!.value, [1]).get(1)![0] as Uint8Array);
    expect(violation.get(1)).to.deep.equal(['definition.capacity']);
    expect(violation.get(2)).to.deep.equal(["'-1' is negative"]);
    const notFound = decodeStatus(toGrpcError(new NotFoundError('no such pool')).metadata!.get('grpc-status-details-bin')[0] as Buffer);
    expect(notFound.details.map((d) => d.typeUrl)).to.deep.equal(['type.googleapis.com/google.rpc.ErrorInfo']);
  });

  it('keeps every error under the 8 KiB trailer limit of C-core clients, cutting long output', () => {
    const stderr = `${'x'.repeat(50_000)}\n${'é'.repeat(50_000)}`;
    const e = toGrpcError(new CommandFailedError(['mkfs.ext4', '-F', '--', `/dev/${'d'.repeat(3000)}`], 1, stderr));
    expect(trailerBytes(e.metadata!, e.details)).to.be.at.most(TRAILER_BUDGET);
    expect(e.details).to.match(/^command failed: mkfs\.ext4 -F -- \/dev\/d+/);
    expect(e.details.endsWith('\u2026')).to.equal(true);
    expect(e.metadata!.get('x-cistern-exitcode')).to.deep.equal(['1']); // the short detail is never crowded out
    const cutStderr = decodeURIComponent(String(e.metadata!.get('x-cistern-stderr')[0] ?? ''));
    expect(stderr.startsWith(cutStderr.slice(0, -1))).to.equal(true);
    const status = decodeStatus(e.metadata!.get('grpc-status-details-bin')[0] as Buffer);
    expect(status.message).to.equal(e.details);
    // a message of characters grpc-js sends as %XX is cut by its sent size, whole characters
    const wide = toGrpcError(new NotFoundError('é'.repeat(5000)));
    expect(trailerBytes(wide.metadata!, wide.details)).to.be.at.most(TRAILER_BUDGET);
    expect(wide.details).to.match(/^é+\u2026$/);
    // a lone surrogate is escaped when the error is made (libs/errors/visible.ts), so none reaches the wire
    expect(toGrpcError(new NotFoundError('lone \ud800 surrogate')).details).to.equal('lone \\ud800 surrogate');
  });

  it('rebuilds the same class from the wire, on the bus and from gRPC', () => {
    const wire = errorFromWire('RESOURCE_EXHAUSTED', 'no space', { path: '/x' });
    expect(wire).to.be.instanceOf(ResourceExhaustedError);
    expect(wire.details.path).to.equal('/x');
    expect(errorFromWire('NOT_A_CODE', 'x')).to.be.instanceOf(InternalError);
    const back = fromGrpcError(toGrpcError(new InvalidArgumentError('name', 'empty')));
    expect(back).to.be.instanceOf(InvalidArgumentError);
    expect(back.message).to.equal('name: empty');
  });

  it('turns errno failures into their conditions; an errno it does not know is INTERNAL with its message', () => {
    const cases: Array<[string, new (...args: never[]) => CisternError, string]> = [
      ['ENOSPC', ResourceExhaustedError, 'no space left: write failed'],
      ['EDQUOT', ResourceExhaustedError, 'no space left: write failed'],
      ['ENOENT', NotFoundError, 'write failed'],
      ['EEXIST', AlreadyExistsError, 'write failed'],
      ['EACCES', PermissionDeniedError, 'write failed'],
      ['EPERM', PermissionDeniedError, 'write failed'],
      ['EBUSY', FailedPreconditionError, 'device or resource busy: write failed'],
      ['EIO', InternalError, 'write failed'],
    ];
    for (const [errno, cls, message] of cases) {
      const mapped = asCisternError(Object.assign(new Error('write failed'), { code: errno }));
      expect(mapped, errno).to.be.instanceOf(cls);
      expect(mapped.message, errno).to.equal(message);
    }
  });

  it('sends every condition as the gRPC status of the same name, and reads it back as that condition', () => {
    // a Record, so that a new ErrorCode does not compile until it is listed here
    const codes: Record<ErrorCode, true> = {
      INVALID_ARGUMENT: true, NOT_FOUND: true, ALREADY_EXISTS: true, FAILED_PRECONDITION: true, ABORTED: true,
      RESOURCE_EXHAUSTED: true, UNAVAILABLE: true, UNIMPLEMENTED: true, PERMISSION_DENIED: true, UNAUTHENTICATED: true,
      DEADLINE_EXCEEDED: true, OUT_OF_RANGE: true, CANCELLED: true, INTERNAL: true,
    };
    for (const code of Object.keys(codes) as ErrorCode[]) {
      const sent = toGrpcError(errorFromWire(code, 'x'));
      expect(status[sent.code], code).to.equal(code);
      expect(fromGrpcError(sent as ServiceError).code, code).to.equal(code);
    }
  });

  it('keeps the failing command and its stderr', () => {
    const e = new CommandFailedError(['qemu-img', 'create', '-f', 'qcow2', '--', '/p/v', '1024'], 1, 'Could not create\n');
    expect(e.code).to.equal('INTERNAL');
    expect(e.message).to.contain('qemu-img create -f qcow2 -- /p/v 1024');
    expect(e.details.stderr).to.equal('Could not create');
  });
});
