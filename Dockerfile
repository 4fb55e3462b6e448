# Cistern image: coordinator, agent and cisternctl from one build.
#   docker build -t cistern .
#   docker run --rm cistern node dist/services/coordinator/main.js --help
# Same entry points as the README; docker-compose.yml wires nats + coordinator + agents.
FROM node:20-bookworm

WORKDIR /opt/cistern

# The Debian packages that scripts/setup.sh lists for the build (protoc and the well-known
# .proto files of libprotobuf-dev), for the coordinator (xmllint and libvirt's schemas) and
# for the agents' backends on a host: the script prints
# them, so the image and a machine set up by it have the same ones. Left out: nats-server
# (compose runs its own image) and what only the tests and benchmarks use.
COPY scripts/setup.sh scripts/setup.sh
RUN packages="$(bash scripts/setup.sh --print-packages image)" \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# Sources (.dockerignore keeps node_modules, dist, generated code and local data out).
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

ENV NODE_ENV=production

EXPOSE 50051
CMD ["node", "dist/services/coordinator/main.js", "--help"]
