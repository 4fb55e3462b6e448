#!/usr/bin/env bash
# Makes what a secured test fleet needs (docs/security.md):
#   ca.crt ca.key                 a private CA (keep ca.key offline in real use)
#   server.crt server.key         the coordinator's gRPC certificate (SAN: localhost, 127.0.0.1, ::1, --san ...)
#   client.crt client.key         a client certificate for mutual TLS (CN=cisternctl)
#   tokens.json                   bearer tokens -> roles for --tokens (SHA-256 hashes only)
#   admin.token operator.token viewer.token   the tokens themselves, for CISTERN_TOKEN
#   secret.key                    AES-256 key for --secret-key-file
#   nats/                         with --hosts: nats-server users and passwords (scripts/nats-config.mjs):
#                                 coordinator, agent-<host>, events-reader
# Every private file is mode 600.
#
# usage: scripts/make-certs.sh [--out DIR] [--hosts a,b,...] [--san NAME-or-IP]... [--days N] [--force]
set -euo pipefail
# This script's directory, resolved before any cd (it may be called by a relative path).
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)

out=./cistern-certs
hosts=""
days=365
force=0
sans=("DNS:localhost" "IP:127.0.0.1" "IP:::1")
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --hosts) hosts="$2"; shift 2 ;;
    --days) days="$2"; shift 2 ;;
    --san)
      if [[ "$2" =~ ^[0-9.]+$ || "$2" == *:* ]]; then sans+=("IP:$2"); else sans+=("DNS:$2"); fi
      shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-certs: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "make-certs: openssl is required" >&2; exit 1; }
# Everything it needs is checked before anything is written: a run that stops halfway
# leaves a CA behind, and the next run then asks for --force.
if [ -n "$hosts" ]; then
  command -v node >/dev/null || { echo "make-certs: node is required for --hosts (NATS users)" >&2; exit 1; }
  [ -f "$here/nats-config.mjs" ] || { echo "make-certs: $here/nats-config.mjs is missing" >&2; exit 1; }
fi
if [ -e "$out/ca.key" ] && [ "$force" != 1 ]; then
  echo "make-certs: $out already holds a CA; use --force to replace everything in it" >&2
  exit 1
fi
umask 077
mkdir -p "$out"
cd "$out"
san=$(IFS=,; echo "${sans[*]}")

# CA
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -days "$days" -subj "/CN=Cistern test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

issue() { # name cn extensions...
  local name=$1 cn=$2 ext=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
  printf '%b\n' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days "$days" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue server "cistern-coordinator" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=$san"
issue client "cisternctl" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 644 ca.crt server.crt client.crt

# tokens: 32 random bytes each; the coordinator's file holds only their SHA-256
entries=()
for role in admin operator viewer; do
  token=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')
  printf '%s\n' "$token" > "$role.token"
  digest=$(printf '%s' "$token" | openssl dgst -sha256 -r | cut -d' ' -f1)
  entries+=("    { \"principal\": \"$role\", \"role\": \"$role\", \"sha256\": \"$digest\" }")
done
{
  echo '{ "tokens": ['
  (IFS=$'\n'; echo "${entries[*]}" | sed '$!s/$/,/')
  echo '] }'
} > tokens.json

openssl rand -base64 32 > secret.key

if [ -n "$hosts" ]; then
  # events-reader: reads the event stream directly, and nothing else (docs/events.md)
  node "$here/nats-config.mjs" --hosts "$hosts" --readers events-reader --out nats >/dev/null
fi
chmod 600 ./*.key ./*.token tokens.json
echo "made in $(pwd): ca.crt server.crt/key client.crt/key tokens.json {admin,operator,viewer}.token secret.key${hosts:+ nats/}"
