# syntax=docker/dockerfile:1
#
# One image recipe for every Meshwork service:
#   docker build --build-arg SERVICE=catalog --target service -t meshwork/catalog .
#   docker build --build-arg SERVICE=gateway --target gateway -t meshwork/gateway .
# compose.yaml builds each service this way.
#
# Base: Node 22 LTS (maintained until April 2027), pinned to an exact release
# on Debian bookworm-slim. Node 22 rather than 24 because 22.23.3 is the newest
# patch release this project could confirm from its registry; the engines range
# (>=20.11 <25) admits both, so moving to the newest Node 24 patch is a one-line
# change here. NODE_IMAGE is a build argument only so that a machine with no
# registry can build on a local stand-in (--build-arg NODE_IMAGE=...); the
# Dockerfile rules check its default. Nothing emits JavaScript: tsx runs the
# TypeScript sources.
# Expected size: the slim base (about 200 MB on disk) plus 71 MB of production
# node_modules per service (`npm run image:deps` measures it; see README).

ARG NODE_IMAGE=node:22.23.3-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false
# The npm that writes package-lock.json on the project's machines, rather than
# the npm 10 bundled with Node 22: the same resolver reads the lock file, and
# dependencies' install scripts stay off as they are there.
RUN npm install -g npm@11.19.1 && npm cache clean --force

# Only the package manifests and the lock file, so the dependency layers below
# are rebuilt when dependencies change, not on every source edit.
FROM base AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path "*/node_modules/*" -exec cp --parents {} /manifests/ \; \
 && cp package-lock.json /manifests/

# Production dependencies of one service (its workspace, the workspaces it uses,
# and the root's: tsx), nothing from devDependencies.
FROM base AS deps
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build argument SERVICE is required (gateway, identity, catalog, orders, payments or notifications)" >&2; exit 1; }
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --workspace "services/${SERVICE}" --include-workspace-root \
 && npm cache clean --force

# The web client (workspace web/, package @meshwork/web), built for the gateway
# image only. Skipped cleanly (an empty dist) when the repository has no web/.
FROM base AS web
WORKDIR /src
COPY --from=manifests /manifests/ ./
# Every workspace with its dev dependencies (the bundler, and whatever the web
# client imports from packages/): this stage only feeds web/dist to the image.
RUN if [ -f web/package.json ]; then NODE_ENV=development npm ci; fi
COPY . .
RUN if [ -f web/package.json ]; then npm run build -w @meshwork/web; else mkdir -p web/dist; fi

FROM base AS service
ARG SERVICE
# tini is PID 1: it forwards SIGTERM/SIGINT to node and reaps zombies. node runs
# the service itself (tsx is loaded in-process with --import, not the tsx CLI,
# which would spawn a second node process and relay signals to it), so
# Docker's SIGTERM reaches the service's own handlers in shutdown.ts:
# NOT_SERVING, deregister, drain, close. Debian's tini, from the base's suite.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deps /app/ ./
COPY package.json tsconfig.json ./
COPY packages/contracts/ packages/contracts/
COPY packages/platform/ packages/platform/
COPY scripts/health-probe.ts scripts/
COPY services/${SERVICE}/ services/${SERVICE}/
# Writable only where a service may write: PGlite's directory when no database
# URL is set (compose and Kubernetes always set one).
RUN mkdir -p /app/.data && chown node:node /app/.data
ENV MESHWORK_SERVICE=${SERVICE} \
    SERVICE_MAIN=services/${SERVICE}/src/main.ts
USER node
# gRPC health (grpc.health.v1 Check) on the service's own port; exits 0 only on SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "--import", "tsx", "scripts/health-probe.ts"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# Exec form cannot expand $SERVICE_MAIN, so sh expands it and `exec` replaces
# the shell with node: tini's only child is the service.
CMD ["sh", "-c", "exec node --import tsx \"$SERVICE_MAIN\""]

# The gateway also serves the web client (GATEWAY_WEB_DIR).
FROM service AS gateway
COPY --from=web /src/web/dist/ web/dist/
ENV GATEWAY_WEB_DIR=/app/web/dist
