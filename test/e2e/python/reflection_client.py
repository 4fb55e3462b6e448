#!/usr/bin/python3
"""Asks the coordinator's server reflection (grpc.reflection.v1) for StorageService, as grpcurl
and other reflection clients do, and calls it with nothing but what reflection returned: the
descriptors go into an empty descriptor pool, the request and response classes are made from
it, and the call is a generic unary call by method path (see
test/e2e/python-reflection.test.ts, which generates the reflection stubs and runs this).

    reflection_client.py --stubs DIR --server HOST:PORT --protoc-set FILE --host a

--stubs holds reflection_v1/reflection_pb2*.py (protoc + grpc_python_plugin from the
grpc.reflection.v1 reflection.proto of @grpc/reflection, as module reflection_v1: under grpc/
the installed grpc package would hide it); --protoc-set is the FileDescriptorSet protoc writes for
storage.proto (--include_imports), to compare the served descriptors with.

Each step prints one JSON object on its own line: {"step": ..., ...}. What the server refused or
what a descriptor pool refused is printed as the step's "error"; an unexpected error exits
with status 1.
"""
import argparse
import json
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--stubs", required=True, help="directory holding reflection_v1/reflection_pb2*.py")
    p.add_argument("--server", required=True, help="coordinator HOST:PORT")
    p.add_argument("--protoc-set", required=True, help="protoc's FileDescriptorSet of storage.proto")
    p.add_argument("--host", required=True, help="host id of an agent")
    args = p.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc  # noqa: E402
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # noqa: E402
    from reflection_v1 import reflection_pb2 as rpb  # noqa: E402
    from reflection_v1 import reflection_pb2_grpc as rpb_grpc  # noqa: E402

    def out(step, **fields):
        print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)

    with open(args.protoc_set, "rb") as f:
        protoc_set = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    protoc_files = {fd.name: fd for fd in protoc_set.file}

    with grpc.insecure_channel(args.server) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        reflection = rpb_grpc.ServerReflectionStub(channel)

        def ask(**request):
            """One request on the reflection stream: the response's FileDescriptorProtos (or
            service names), or the error it carried."""
            responses = list(reflection.ServerReflectionInfo(iter([rpb.ServerReflectionRequest(**request)]), timeout=30))
            if len(responses) != 1:
                raise RuntimeError("%d responses to one request" % len(responses))
            r = responses[0]
            kind = r.WhichOneof("message_response")
            if kind == "error_response":
                code = r.error_response.error_code
                name = next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
                return None, "%s: %s" % (name, r.error_response.error_message)
            if kind == "list_services_response":
                return [s.name for s in r.list_services_response.service], None
            return [descriptor_pb2.FileDescriptorProto.FromString(b)
                    for b in r.file_descriptor_response.file_descriptor_proto], None

        services, err = ask(list_services="*")
        out("list-services", services=sorted(services or []), error=err)

        files = {}
        for step, request in (("file-containing-symbol", {"file_containing_symbol": "cistern.v1.StorageService"}),
                              ("file-by-filename", {"file_by_filename": "cistern/v1/storage.proto"})):
            answer, err = ask(**request)
            answer = answer or []
            out(step, error=err, files=[{"name": fd.name, "dependency": list(fd.dependency)} for fd in answer])
            for fd in answer:
                files.setdefault(fd.name, fd)

        # The served descriptors are protoc's: the same FileDescriptorProto as protoc writes for
        # the same file, comments (source_code_info) aside.
        same = {}
        for name, fd in sorted(files.items()):
            expected = protoc_files.get(name)
            if expected is None:
                same[name] = False
                continue
            a, b = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
            a.CopyFrom(fd)
            b.CopyFrom(expected)
            a.ClearField("source_code_info")
            b.ClearField("source_code_info")
            same[name] = a == b
        storage = files.get("cistern/v1/storage.proto")
        out("as-protoc", same=same,
            comments=bool(storage is not None and any(l.leading_comments or l.trailing_comments
                                                       for l in storage.source_code_info.location)))

        # Everything below uses only the reflected descriptors, in a pool of their own.
        pool = descriptor_pool.DescriptorPool()
        added, pending = set(), dict(files)
        try:
            while pending:
                ready = [n for n, fd in pending.items() if all(d in added for d in fd.dependency)]
                if not ready:
                    missing = sorted({d for fd in pending.values() for d in fd.dependency if d not in added})
                    raise TypeError("imports not served: %s" % ", ".join(missing))
                for name in sorted(ready):
                    pool.AddSerializedFile(pending.pop(name).SerializeToString())
                    added.add(name)
            service = pool.FindServiceByName("cistern.v1.StorageService")
        except (TypeError, KeyError) as e:
            out("pool", error=str(e))
            return 0
        host_fields = [f.name for f in pool.FindMessageTypeByName("cistern.v1.Host").fields]
        active = pool.FindMessageTypeByName("cistern.v1.ListPoolsRequest").fields_by_name.get("active")
        active_proto = next((f for fd in files.values() if fd.package == "cistern.v1" for m in fd.message_type
                             if m.name == "ListPoolsRequest" for f in m.field if f.name == "active"), None)
        out("pool", error=None, methods=len(service.methods), host_fields=host_fields,
            active={"has_presence": bool(active is not None and active.has_presence),
                    "proto3_optional": bool(active_proto is not None and active_proto.proto3_optional)})

        factory = message_factory.MessageFactory(pool)
        make = getattr(message_factory, "GetMessageClass", None) or factory.GetPrototype

        def call(method_name, **fields):
            method = service.FindMethodByName(method_name)
            request_class, response_class = make(method.input_type), make(method.output_type)
            stub = channel.unary_unary("/%s/%s" % (service.full_name, method.name),
                                       request_serializer=request_class.SerializeToString,
                                       response_deserializer=response_class.FromString)
            response = stub(request_class(**fields), timeout=30)
            return json_format.MessageToDict(response, preserving_proto_field_name=True)

        hosts = call("ListHosts")
        out("list-hosts", hosts=[{"host_id": h.get("host_id"), "online": h.get("online", False),
                                  "has_last_seen": "last_seen" in h} for h in hosts.get("hosts", [])])
        # proto3 optional: active=False is sent (presence) and asks for the inactive pools only
        for step, active in (("list-pools-active", True), ("list-pools-inactive", False)):
            pools = call("ListPools", host=args.host, active=active, page_size=100)
            out(step, pools=[p.get("name") for p in pools.get("pools", [])])
    return 0


if __name__ == "__main__":
    sys.exit(main())
