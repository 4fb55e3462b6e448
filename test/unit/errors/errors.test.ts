import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import {
  AbortedError,
  asCisternError,
  CommandFailedError,
  errorFromWire,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  UnavailableError,
} from '../../../libs/errors/errors.js';
import { fromGrpcError, percentEncode, toGrpcError } from '../../../libs/errors/grpc-status.js';

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
    expect(percentEncode('é'.repeat(3000))).to.equal('%C3%A9'.repeat(2048)); // 4096 bytes, whole characters
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

  it('turns errno failures into their conditions', () => {
    const enospc = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
    expect(asCisternError(enospc)).to.be.instanceOf(ResourceExhaustedError);
  });

  it('keeps the failing command and its stderr', () => {
    const e = new CommandFailedError(['qemu-img', 'create', '-f', 'qcow2', '--', '/p/v', '1024'], 1, 'Could not create\n');
    expect(e.code).to.equal('INTERNAL');
    expect(e.message).to.contain('qemu-img create -f qcow2 -- /p/v 1024');
    expect(e.details.stderr).to.equal('Could not create');
  });
});
