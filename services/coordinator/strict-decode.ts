// Requests decoded strictly, and refused as bad input when they do not decode. grpc-js turns a
// deserializer that throws into INTERNAL "Error deserializing request", and protobuf's own
// reader replaces bytes that are not UTF-8 with U+FFFD: a volume asked for as 'v\xff1' was
// created as 'v\uFFFD1', another name than the one sent. Here a string that is not UTF-8, or
// bytes that are not the message, decode to a MalformedRequest, which the call paths refuse
// with INVALID_ARGUMENT (server.ts run, the upload's messages, a Session's messages).
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { InvalidArgumentError } from '../../libs/errors/errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A request message that did not decode: why, for the INVALID_ARGUMENT the call answers. */
export class MalformedRequest {
  constructor(
    /** 'CreateVolume' */
    readonly method: string,
    readonly reason: string,
  ) {}

  error(): InvalidArgumentError {
    return new InvalidArgumentError('request', `is not a valid ${this.method} request message: ${this.reason}`);
  }
}

/** Throws the INVALID_ARGUMENT of a message that did not decode; anything else passes. */
export function refuseMalformed(message: unknown): void {
  if (message instanceof MalformedRequest) throw message.error();
}

function strictUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TypeError('a string field is not valid UTF-8 (protobuf strings must be)');
  }
}

interface MethodDefinition {
  path: string;
  requestDeserialize: (value: Buffer) => unknown;
}

/** `service` with every request decoded strictly: a MalformedRequest where it does not decode. */
export function strictRequests<S extends Record<string, MethodDefinition>>(service: S): S {
  return Object.fromEntries(
    Object.entries(service).map(([key, method]) => {
      const name = method.path.slice(method.path.lastIndexOf('/') + 1);
      const decode = method.requestDeserialize;
      const requestDeserialize = (value: Buffer): unknown => {
        try {
          // the generated decoders take a reader as well as bytes: this one is strict about UTF-8
          return decode(new BinaryReader(value, strictUtf8) as unknown as Buffer);
        } catch (err) {
          return new MalformedRequest(name, err instanceof Error ? err.message : String(err));
        }
      };
      return [key, { ...method, requestDeserialize }];
    }),
  ) as S;
}
