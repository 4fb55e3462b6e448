# Cistern image: coordinator, agent and cisternctl from one build.
#   docker build -t cistern .
#   docker run --rm cistern node dist/services/coordinator/main.js --help
# Same entry points as the README; docker-compose.yml wires nats + coordinator + agents.
FROM node:20-bookworm

# The Debian packages of scripts/setup.sh that the services use at run time (libvirt, used
# only by the benchmarks, is left out).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      protobuf-compiler \
      qemu-utils qemu-block-extra parted scrub \
      e2fsprogs xfsprogs dosfstools lvm2 util-linux \
      tgt libiscsi-bin \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/cistern

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# Sources (.dockerignore keeps node_modules, dist, generated code and local data out).
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

ENV NODE_ENV=production

EXPOSE 50051
CMD ["node", "dist/services/coordinator/main.js", "--help"]
