#!/usr/bin/env bash
# Generates libs/proto from proto/ with ts-proto. The output is never edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: run scripts/setup.sh" >&2; exit 1; }
out=libs/proto
rm -rf "$out" && mkdir -p "$out"
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=esModuleInterop=true,outputServices=grpc-js,forceLong=bigint,useDate=true,importSuffix=.js,env=node,useOptionals=none,oneof=unions-value,removeEnumPrefix=false \
  -I proto -I /usr/include \
  proto/cistern/v1/storage.proto proto/cistern/agent/v1/agent.proto
