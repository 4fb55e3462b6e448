#!/usr/bin/env bash
# Idempotent setup of a Debian 12 machine for Cistern: Debian packages, npm dependencies, build.
# Fast when everything is already there: apt is only touched when a package is missing,
# `npm ci` only runs when node_modules does not match package-lock.json, and the build only
# runs when a source is newer than the last successful build.
#
#   bash scripts/setup.sh            # everything
#   bash scripts/setup.sh --npm-only # skip Debian packages (used by `npm start`)
#   bash scripts/setup.sh --print-packages image|all   # list the Debian packages, do nothing
#   CISTERN_SKIP_APT=1 / CISTERN_SKIP_BUILD=1 / CISTERN_FORCE_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Debian packages, by use. This machine gets all of them; the Dockerfile installs the `image`
# ones (BUILD_PACKAGES + COORDINATOR_PACKAGES + HOST_PACKAGES) by asking this script (--print-packages image), so the
# two lists cannot drift apart.
# ---------------------------------------------------------------------------------------------
BUILD_PACKAGES=(                      # npm run build
  protobuf-compiler                   # protoc, for libs/proto generation and Python stubs
  libprotobuf-dev                     # /usr/include/google/protobuf/timestamp.proto: protoc has no built-in copy,
                                      # and it is only a Recommends of protobuf-compiler
)
COORDINATOR_PACKAGES=(                # what the coordinator runs
  libxml2-utils                       # xmllint: XML checked against libvirt's schemas (requests with validate)
  libvirt0                            # those schemas: /usr/share/libvirt/schemas/storage{pool,vol}.rng
)
HOST_PACKAGES=(                       # what the agents' backends run on a host
  qemu-utils qemu-block-extra         # qemu-img: volume formats
  parted                              # disk pools
  scrub                               # volume wipe algorithms
  e2fsprogs xfsprogs dosfstools       # mkfs for fs pools
  nfs-common                          # mount.nfs, showmount: netfs pools, FindPoolSources
  lvm2                                # logical pools
  util-linux                          # losetup, mount, blkid, wipefs; setpriv: every command dies with the agent; flock: the --root lock
  dmsetup udev                        # mpath pools (dmsetup), scsi pools (scsi_id, udevadm settle)
  libiscsi-bin                        # iscsi-ls (iscsi-direct discovery)
  open-iscsi                          # iscsiadm for iscsi pools (kernel initiator: iscsi_tcp + iscsid where the kernel allows)
)
DEV_PACKAGES=(                        # npm start, npm test, npm run bench (not in the image)
  nats-server                         # the only infrastructure: NATS with JetStream (compose runs its own image)
  protobuf-compiler-grpc              # grpc_python_plugin (polyglot test)
  python3-grpcio python3-protobuf     # Python client in the polyglot test
  nfs-ganesha nfs-ganesha-vfs rpcbind # userspace NFS server for the netfs source-listing test (test/backends/netfs.test.ts)
  tgt                                 # iSCSI target for the iscsi-direct tests
  libvirt-daemon libvirt-clients      # benchmarks (bench/); Debian 12 ships the disk storage driver in libvirt-daemon
  faketime                            # fault tests: agents with skewed clocks (libfaketime)
)
PACKAGES=("${BUILD_PACKAGES[@]}" "${COORDINATOR_PACKAGES[@]}" "${HOST_PACKAGES[@]}" "${DEV_PACKAGES[@]}")

npm_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --npm-only) npm_only=1 ;;
    --print-packages)
      case "${2:-}" in
        image) printf '%s\n' "${BUILD_PACKAGES[@]}" "${COORDINATOR_PACKAGES[@]}" "${HOST_PACKAGES[@]}" ;;
        all) printf '%s\n' "${PACKAGES[@]}" ;;
        *) log "--print-packages takes image or all"; exit 2 ;;
      esac
      exit 0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) log "unknown argument: $1 (allowed: --npm-only, --print-packages image|all)"; exit 2 ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------

missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || printf '%s\n' "$p"
  done
}

if [ "$npm_only" = 0 ] && [ "${CISTERN_SKIP_APT:-0}" != 1 ]; then
  if ! command -v dpkg-query >/dev/null; then
    log "not a Debian system (no dpkg-query): install the equivalents of: ${PACKAGES[*]}"
  else
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -gt 0 ]; then
      SUDO=()
      if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then SUDO=(sudo); else
          log "missing Debian packages and not root (no sudo): ${missing[*]}"; exit 1
        fi
      fi
      log "installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      "${SUDO[@]}" apt-get update -q </dev/null
      "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
      mapfile -t still < <(missing_packages)
      if [ "${#still[@]}" -gt 0 ]; then log "still missing after install: ${still[*]}"; exit 1; fi
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
# 2. npm dependencies: install only when node_modules does not match the lockfile
# ---------------------------------------------------------------------------------------------
node_modules_fresh() {
  [ -d node_modules ] || return 1
  if [ ! -f package-lock.json ]; then
    [ node_modules/.package-lock.json -nt package.json ] && return 0
    return 1
  fi
  # Every package the lockfile pins must be installed at the pinned version.
  node --input-type=module -e '
    import { readFileSync, existsSync } from "node:fs";
    const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    const root = lock.packages?.[""] ?? {};
    for (const f of ["dependencies", "devDependencies"]) {
      if (JSON.stringify(root[f] ?? {}) !== JSON.stringify(pkg[f] ?? {})) {
        console.error(`package.json ${f} differ from package-lock.json`); process.exit(1);
      }
    }
    for (const [path, meta] of Object.entries(lock.packages ?? {})) {
      if (!path || meta.link || meta.optional || !path.startsWith("node_modules/")) continue;
      const manifest = path + "/package.json";
      if (!existsSync(manifest)) { console.error(`missing ${path}`); process.exit(1); }
      const v = JSON.parse(readFileSync(manifest, "utf8")).version;
      if (meta.version && v !== meta.version) { console.error(`${path} is ${v}, lockfile says ${meta.version}`); process.exit(1); }
    }
  ' 2>&1 | sed 's/^/setup: /' >&2
  return "${PIPESTATUS[0]}"
}

npm_retry() {
  local i
  for i in 1 2 3; do
    if "$@"; then return 0; fi
    log "'$*' failed (attempt $i), retrying in 5s"; sleep 5
  done
  return 1
}

if ! node_modules_fresh; then
  if [ -f package-lock.json ]; then
    log "installing npm dependencies (npm ci)"
    npm_retry npm ci --no-audit --no-fund </dev/null
  else
    log "installing npm dependencies (npm install, no lockfile)"
    npm_retry npm install --no-audit --no-fund </dev/null
  fi
fi

# ---------------------------------------------------------------------------------------------
# 3. Build (generate + tsc) when a source is newer than the last successful build
# ---------------------------------------------------------------------------------------------
stamp=dist/.build-stamp
build_needed() {
  [ "${CISTERN_FORCE_BUILD:-0}" = 1 ] && return 0
  [ -f "$stamp" ] || return 0
  [ -d libs/proto/cistern ] || return 0
  # the cisternctl bin (scripts/bundle-cli.mjs), which tsc alone does not make
  [ -f dist/cli/cisternctl.mjs ] || return 0
  local newer
  newer=$(find proto libs services cli test bench scripts/generate-proto.sh scripts/bundle-cli.mjs scripts/bin-modes.mjs tsconfig.json \
            package.json package-lock.json node_modules/.package-lock.json \
            -path libs/proto -prune -o -newer "$stamp" -type f -print -quit 2>/dev/null || true)
  [ -n "$newer" ]
}

if [ "${CISTERN_SKIP_BUILD:-0}" != 1 ] && build_needed; then
  log "building (npm run build)"
  rc=0
  npm run build --silent </dev/null >/tmp/cistern-build.$$.log 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then
    mkdir -p dist && rm -f dist/.build-errors && touch "$stamp"
  elif [ -d dist ] && [ -d libs/proto/cistern ]; then
    # tsc emits even when some files have type errors: keep the errors for test.sh to report.
    cat /tmp/cistern-build.$$.log >&2
    cp /tmp/cistern-build.$$.log dist/.build-errors
    log "build reported errors (exit $rc); JavaScript was emitted, continuing (see dist/.build-errors)"
  else
    cat /tmp/cistern-build.$$.log >&2; rm -f /tmp/cistern-build.$$.log
    log "build failed (exit $rc)"; exit "$rc"
  fi
  rm -f /tmp/cistern-build.$$.log
fi
log "ready"
