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
# Dockerfile rules check its default.
#
# No TypeScript runs in an image: the build stage compiles each service and
# the health probe to JavaScript (scripts/build-service.ts, esbuild), and the
# runtime carries production dependencies only: no tsx, esbuild, test kit or
# vitest, and no PGlite (an optional dependency, left out: a service in an
# image needs its database URL). `npm run image:deps` measures the
# node_modules each image carries.
ARG NODE_IMAGE=node:22.23.3-bookworm-slim

FROM ${NODE_IMAGE} AS base
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# The npm that writes package-lock.json on the project's machines, rather than
# the npm 10 bundled with Node 22: the same resolver reads the lock file, and
# dependencies' install scripts stay off as they are there. Only the stages
# that run npm have it; the runtime images (FROM base) do not carry the layer.
FROM base AS npm
RUN npm install -g npm@11.19.1 && npm cache clean --force

# Only the package manifests and the lock file, so the dependency layers below
# are rebuilt when dependencies change, not on every source edit.
FROM base AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name package.json -not -path "*/node_modules/*" -exec cp --parents {} /manifests/ \; \
 && cp package-lock.json /manifests/

# Production dependencies of one service (its workspace and the workspaces it
# uses), nothing from devDependencies and no optional dependencies (PGlite).
FROM npm AS deps
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build argument SERVICE is required (gateway, identity, catalog, orders, payments or notifications)" >&2; exit 1; }
COPY --from=manifests /manifests/ ./
# Then what only a compiler or an editor reads (type declarations, TypeScript
# sources, source maps: 20 of the 39 MB): Node loads no .ts file from
# node_modules, and the services run without --enable-source-maps.
RUN npm ci --omit=dev --omit=optional --workspace "services/${SERVICE}" \
 && find node_modules -type f \( -name "*.ts" -o -name "*.mts" -o -name "*.cts" -o -name "*.map" \) -delete \
 && npm cache clean --force

# Every workspace with its dev dependencies (esbuild, and the web client's
# bundler): this stage only compiles; its node_modules go nowhere.
FROM npm AS build
WORKDIR /src
COPY --from=manifests /manifests/ ./
RUN NODE_ENV=development npm ci
COPY . .
# Declared here, not above: the install above is the same for every service
# and stays cached across them.
ARG SERVICE
# services/${SERVICE}/dist/main.js and scripts/dist/health-probe.js
RUN node --import tsx scripts/build-service.ts "$SERVICE"

FROM base AS service
ARG SERVICE
# tini is PID 1: it forwards SIGTERM/SIGINT to node and reaps zombies. node runs
# the compiled service itself, so Docker's SIGTERM reaches the service's own
# handlers in shutdown.ts: NOT_SERVING, deregister, drain, close. Debian's
# tini, from the base's suite.
# apt's package caches go too (/var/cache/apt/*.bin: 80 MB where the base has
# no docker-clean hook, as on a debootstrap stand-in).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
# node_modules and the manifests (package.json "type": "module" makes the
# bundles ES modules), then the compiled service and probe: no sources.
COPY --from=deps /app/ ./
COPY --from=build /src/services/${SERVICE}/dist/ services/${SERVICE}/dist/
COPY --from=build /src/scripts/dist/ scripts/dist/
ENV MESHWORK_SERVICE=${SERVICE} \
    SERVICE_MAIN=services/${SERVICE}/dist/main.js
USER node
# gRPC health (grpc.health.v1 Check) on the service's own port; exits 0 only on SERVING.
# Timings (compose.yaml's x-healthcheck repeats them; a test compares): Docker
# 20.10 has no --start-interval, so a container turns healthy at the first
# passing probe, `interval` after start. Measured (2026-12, Docker 20.10, two
# cores): a service needs 1.6-2.1 s of CPU to serve (3.8 s when it ran
# through tsx), so it serves 2-4 s after start on a quiet machine; one run of
# the compiled probe costs 0.35-0.5 s of CPU (0.1 s of it is node's own
# start; the tsx probe cost 0.85-1.1 s). Every 5 s: a service up by then is
# healthy at about 5.5 s (catalog and orders on PostgreSQL: 5.6 and 5.8 s),
# a slower one gets a second chance before about 11 s, and the probe costs
# 7-10 % of a core per container, no more than the old 10 s interval with the
# tsx probe did. A shorter interval would buy a second or two once, at a
# price paid all day. start-period: failures in the first 30 s (migrations
# on a cold database) do not count; a pass ends it at once.
# Since then the probe speaks HTTP/2 itself (about 0.2 s of CPU a run, see
# scripts/health-probe.ts), and waits up to 3 s for a service that is not
# serving yet: with seven containers starting at once on two cores a service
# served 7 s after start, just after the 5 s probe, and turned healthy only at
# the 10 s one (11-12 s); waiting, the 5 s probe sees it serve. 3 s of waiting
# plus at most 1 s for the last attempt stays inside the 5 s timeout.
ENV MESHWORK_HEALTH_PROBE_WAIT_MS=3000
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "scripts/dist/health-probe.js"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# Exec form cannot expand $SERVICE_MAIN, so sh expands it and `exec` replaces
# the shell with node: tini's only child is the service.
CMD ["sh", "-c", "exec node \"$SERVICE_MAIN\""]

# The web client (workspace web/, package @meshwork/web), built for the gateway
# image only, on the build stage's install. After the service stage, so that
# the classic builder (which builds every stage before the target) skips it
# for the other services. Skipped cleanly (an empty dist) when the repository
# has no web/.
FROM build AS web
RUN if [ -f web/package.json ]; then npm run build -w @meshwork/web; else mkdir -p web/dist; fi

# The gateway also serves the web client (GATEWAY_WEB_DIR).
FROM service AS gateway
COPY --from=web /src/web/dist/ web/dist/
ENV GATEWAY_WEB_DIR=/app/web/dist
