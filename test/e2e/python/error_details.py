#!/usr/bin/python3
"""Reads Cistern's errors as a Python client does: the status code and message, and the
google.rpc.Status in the `grpc-status-details-bin` trailer (what grpc_status.rpc_status.from_call
reads, with its checks). Run by test/e2e/python-error-details.test.ts.

    error_details.py --stubs DIR --server HOST:PORT --host a --pool p --target /abs/dir

Each step prints one JSON object on its own line: {"step": ..., ...}.
"""
import argparse
import json
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--stubs", required=True, help="directory holding cistern/v1 and google/rpc *_pb2.py")
    p.add_argument("--server", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--target", required=True)
    args = p.parse_args()

    sys.path.insert(0, args.stubs)
    import grpc  # noqa: E402
    from cistern.v1 import storage_pb2 as pb  # noqa: E402
    from cistern.v1 import storage_pb2_grpc as pb_grpc  # noqa: E402
    from google.rpc import status_pb2  # noqa: E402

    def out(step, **fields):
        print(json.dumps({"step": step, **fields}, sort_keys=True), flush=True)

    def rich_status(err):
        """grpc_status.rpc_status.from_call, with the same checks."""
        for key, value in err.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                if status.code != err.code().value[0]:
                    raise ValueError("Code in Status proto (%d) doesn't match status code (%s)" % (status.code, err.code()))
                if status.message != err.details():
                    raise ValueError("Message in Status proto (%r) doesn't match status details (%r)" % (status.message, err.details()))
                return status
        return None

    def details_of(status):
        found = []
        for any_ in status.details:
            if any_.Is(status_pb2.ErrorInfo.DESCRIPTOR):
                info = status_pb2.ErrorInfo()
                any_.Unpack(info)
                found.append({"type": "ErrorInfo", "reason": info.reason, "domain": info.domain, "metadata": dict(info.metadata)})
            elif any_.Is(status_pb2.BadRequest.DESCRIPTOR):
                bad = status_pb2.BadRequest()
                any_.Unpack(bad)
                found.append({"type": "BadRequest", "violations": [
                    {"field": v.field, "description": v.description} for v in bad.field_violations]})
            else:
                found.append({"type": any_.type_url})
        return found

    def attempt(step, method, request):
        try:
            getattr(stub, method)(request, timeout=60)
            out(step, code="OK")
        except grpc.RpcError as err:
            status = rich_status(err)
            out(step, code=err.code().name, message=err.details(),
                trailer_keys=sorted(k for k, _ in err.trailing_metadata() or ()),
                details=details_of(status) if status else None)

    pool_name = "hosts/%s/pools/%s" % (args.host, args.pool)
    with grpc.insecure_channel(args.server) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.StorageServiceStub(channel)
        definition = pb.PoolDefinition(type=pb.POOL_TYPE_DIR, name=args.pool, target=pb.PoolTarget(path=args.target))
        stub.CreatePool(pb.CreatePoolRequest(host=args.host, definition=definition, build=True), timeout=60)
        out("pool", name=pool_name)

        attempt("bad-name", "CreateVolume", pb.CreateVolumeRequest(
            parent=pool_name, definition=pb.VolumeDefinition(name="../x", capacity=1 << 20)))
        attempt("unknown-pool", "GetPool", pb.GetPoolRequest(name="hosts/%s/pools/nosuchpool" % args.host))
        stub.CreateVolume(pb.CreateVolumeRequest(
            parent=pool_name, definition=pb.VolumeDefinition(name="v1", capacity=1 << 20)), timeout=60)
        attempt("exists", "CreateVolume", pb.CreateVolumeRequest(
            parent=pool_name, definition=pb.VolumeDefinition(name="v1", capacity=1 << 20)))
        attempt("xml-wrong-root", "DefinePool", pb.DefinePoolRequest(host=args.host, xml="<volume/>"))
        attempt("xml-bad-type", "DefinePool", pb.DefinePoolRequest(
            host=args.host, xml="<pool type='zzz'><name>x</name></pool>"))
        # a pool or a discovery the agent refuses: named in the request's own fields (the
        # structured definition's, or the document's field), not in the agent's
        two_hosts = [pb.SourceHost(name="127.0.0.1"), pb.SourceHost(name="127.0.0.2")]
        attempt("create-pool-two-hosts", "CreatePool", pb.CreatePoolRequest(host=args.host, definition=pb.PoolDefinition(
            type=pb.POOL_TYPE_NETFS, name="nf", source=pb.PoolSource(dir="/x", hosts=two_hosts),
            target=pb.PoolTarget(path=args.target + "-nf"))))
        attempt("create-pool-xml-two-hosts", "CreatePool", pb.CreatePoolRequest(host=args.host, xml=(
            "<pool type='netfs'><name>nf</name><source><host name='127.0.0.1'/><host name='127.0.0.2'/>"
            "<dir path='/x'/></source><target><path>%s-nf</path></target></pool>" % args.target)))
        attempt("find-sources-no-host", "FindPoolSources", pb.FindPoolSourcesRequest(
            host=args.host, type=pb.POOL_TYPE_NETFS, source=pb.PoolSource(dir="/x")))
        attempt("find-sources-xml-no-host", "FindPoolSources", pb.FindPoolSourcesRequest(
            host=args.host, type=pb.POOL_TYPE_NETFS, source_xml="<source><dir path='/x'/></source>"))
        # a raw volume larger than a file can be (2^53 + 1 bytes: past what this filesystem and
        # Node's ftruncate take): the size is refused, named as the request named it
        attempt("raw-too-large", "CreateVolume", pb.CreateVolumeRequest(
            parent=pool_name, definition=pb.VolumeDefinition(name="huge", capacity=(1 << 53) + 1)))
        attempt("raw-too-large-xml", "CreateVolume", pb.CreateVolumeRequest(
            parent=pool_name, xml="<volume><name>huge</name><capacity>%d</capacity></volume>" % ((1 << 53) + 1)))
        def upload(step, messages):
            try:
                stub.UploadVolume(iter(messages), timeout=60)
                out(step, code="OK")
            except grpc.RpcError as err:
                status = rich_status(err)
                out(step, code=err.code().name, message=err.details(),
                    details=details_of(status) if status else None)
        header = pb.UploadVolumeRequest(header=pb.UploadVolumeRequest.Header(name=pool_name + "/volumes/v1"))
        upload("upload-unset-part", [header, pb.UploadVolumeRequest()])
        upload("upload-two-headers", [header, header])
        # vmdk is made by qemu-img, whose stand-in on this agent's PATH fails with a long stderr
        attempt("long-stderr", "CreateVolume", pb.CreateVolumeRequest(
            parent=pool_name, definition=pb.VolumeDefinition(
                name="big", capacity=1 << 20, target=pb.VolumeTarget(format="vmdk"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
