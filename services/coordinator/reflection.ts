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
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { FILE_DESCRIPTOR_SET } from '../../libs/proto/descriptor-set.js';

/**
 * The FileDescriptorProtos of a FileDescriptorSet, each as its original bytes: the set is
 * `repeated FileDescriptorProto file = 1`, nothing else.
 */
function fileDescriptorProtos(set: Uint8Array): Buffer[] {
  const reader = new BinaryReader(set);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType);
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
