// Server reflection (grpc.reflection.v1 and v1alpha) from protoc's own descriptors.
//
// @grpc/reflection answers from the FileDescriptorProtos of the PackageDefinition it is given.
// A PackageDefinition from @grpc/proto-loader carries descriptors that protobufjs re-synthesizes
// from what it parsed: files named after packages (cistern_v1.proto), no dependency list,
// camelCase field names, proto3 `optional` as real oneofs; descriptor pools (Python, grpcurl)
// refuse them. So the PackageDefinition given to it here carries, unchanged, the
// FileDescriptorProtos protoc wrote (scripts/generate-proto.sh -> libs/proto/descriptor-set.ts),
// which is all the library reads of it. (It decodes and re-encodes them with protobufjs's copy
// of descriptor.proto, which has every field protoc writes here; test/e2e/python-reflection.test.ts
// compares what is served with protoc's output.)
import type { Server } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { FILE_DESCRIPTOR_SET } from '../../libs/proto/descriptor-set.js';

/**
 * The FileDescriptorProtos of a FileDescriptorSet, each as its original bytes: the set is
 * `repeated FileDescriptorProto file = 1`, nothing else.
 */
function fileDescriptorProtos(set: Uint8Array): Buffer[] {
  const bytes = Buffer.from(set.buffer, set.byteOffset, set.byteLength);
  const files: Buffer[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= bytes.length || shift > 28) throw new Error('FileDescriptorSet: bad varint');
      const b = bytes[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  };
  while (at < bytes.length) {
    const tag = varint();
    if (tag !== ((1 << 3) | 2)) throw new Error(`FileDescriptorSet: unexpected tag ${tag}`);
    const length = varint();
    if (at + length > bytes.length) throw new Error('FileDescriptorSet: truncated');
    files.push(bytes.subarray(at, at + length));
    at += length;
  }
  return files;
}

/**
 * Adds server reflection for the services of libs/proto/descriptor-set.ts: StorageService,
 * grpc.health.v1.Health and the reflection service itself, all listed by list_services.
 */
export function addReflection(server: Pick<Server, 'addService'>): void {
  // the PackageDefinition of the proto-loader @grpc/reflection itself depends on
  const definition: ConstructorParameters<typeof ReflectionService>[0] = {
    // the key and type are not read; every definition from proto-loader carries all the files
    'protoc.FileDescriptorSet': {
      format: 'Protocol Buffer 3 DescriptorProto',
      type: {},
      fileDescriptorProtos: fileDescriptorProtos(FILE_DESCRIPTOR_SET),
    },
  };
  new ReflectionService(definition).addToServer(server);
}
