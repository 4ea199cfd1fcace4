# syntax=docker/dockerfile:1.7
#
# One image for all five Postmesh services; the service is chosen by the first argument:
#
#   docker run --rm ghcr.io/postmesh/postmesh:0.1.0 storage
#
# runs `node services/storage/dist/main.js` under tini (PID 1), so SIGTERM from the kubelet reaches
# Node and each service can drain (DESIGN.md §1: stop accepting, finish or hand back work in flight).
# The runtime stage holds only compiled output and production dependencies, runs as an unprivileged
# numeric user and works with a read-only root filesystem (write only to /tmp, an emptyDir in the
# chart). See docs/operations.md for build, push and signing.

# Node 20 is the version every Postmesh machine and CI run tests on (package.json `engines`,
# .nvmrc). It is past its end of life: moving to Node 22 is changing this argument (and .nvmrc,
# `engines`, @types/node) once the test machines run 22; see docs/operations.md §2.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- manifests: only what `npm ci` reads ---------------------------------------------------------
# The whole context is copied here, but the next stages take only the manifests from it: a change
# to sources leaves /manifests byte-identical, so the dependency layers below stay cached.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN sh tools/image/stage.sh manifests /src /manifests

# ---- build: full dev toolchain, compile every workspace ----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NX_DAEMON=false NX_NO_CLOUD=true CI=true
COPY --from=manifests /manifests/ ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && sh tools/image/stage.sh runtime /src /out

# ---- prod-deps: the services' production dependencies only -----------------------------------
# `--workspace` for each service: npm installs what the services (and the libraries they link)
# need at run time, and none of the tools' dependencies; `--omit=dev` leaves out the compilers,
# test runners and the test harness. libs/testing is still linked as a workspace: unlink it.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace=services/admin --workspace=services/imap --workspace=services/mta-delivery \
      --workspace=services/smtp-inbound --workspace=services/storage \
      --workspace=services/storage-imap --workspace=services/imap-proxy \
 && npm cache clean --force \
 && rm -rf node_modules/@postmesh/testing libs/testing tools

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG POSTMESH_VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="postmesh" \
      org.opencontainers.image.description="Postmesh email platform services (smtp-inbound, storage, imap, mta-delivery, admin, storage-imap, imap-proxy)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${POSTMESH_VERSION}"
# tini forwards signals to Node and reaps zombies; ca-certificates brings the openssl CLI, which
# smtp-inbound uses to write the RFC 7919 DH group at start. The package manager and npm are not
# needed at run time, so they leave the image (smaller attack surface).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && groupadd --system --gid 10001 postmesh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin postmesh
WORKDIR /app
# Root-owned and read-only to the service user: nothing under /app is written at run time.
COPY --from=prod-deps --chown=0:0 /app/ ./
COPY --from=build --chown=0:0 /out/ ./
COPY --chmod=0755 <<'SH' /usr/local/bin/postmesh
#!/bin/sh
# Usage: postmesh <smtp-inbound|storage|imap|mta-delivery|admin|storage-imap|imap-proxy> [node args...]
set -eu
name="${1:-}"
case "$name" in
  smtp-inbound|storage|imap|mta-delivery|admin|storage-imap|imap-proxy) shift ;;
  *) echo "usage: postmesh <smtp-inbound|storage|imap|mta-delivery|admin|storage-imap|imap-proxy>" >&2; exit 64 ;;
esac
# exec: Node replaces this shell, so tini's SIGTERM goes straight to it.
exec node --enable-source-maps "/app/services/$name/dist/main.js" "$@"
SH
ENV NODE_ENV=production \
    HOME=/tmp \
    POSTMESH_OPS_HOST=0.0.0.0 \
    POSTMESH_OPS_PORT=9100
USER 10001:10001
EXPOSE 9100
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/postmesh"]
CMD ["admin"]
