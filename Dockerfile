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

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: full dev toolchain, compile every workspace ----------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NX_DAEMON=false NX_NO_CLOUD=true CI=true
# Manifests first so the dependency layer is cached while only sources change.
COPY package.json package-lock.json ./
COPY libs/ libs/
COPY services/ services/
COPY tools/ tools/
COPY proto/ proto/
COPY tsconfig.base.json nx.json ./
RUN npm ci --no-audit --no-fund
RUN npm run build
# Stage what the runtime needs: every workspace manifest (npm must see them to link workspaces),
# its compiled dist/ and any runtime assets it ships, plus the gRPC contracts.
RUN set -eu; mkdir -p /out; cp package.json package-lock.json /out/; cp -r proto /out/proto; \
    for pkg in libs/* services/* tools/*; do \
      [ -f "$pkg/package.json" ] || continue; \
      mkdir -p "/out/$pkg"; cp "$pkg/package.json" "/out/$pkg/"; \
      for d in dist assets config public bin; do \
        if [ -d "$pkg/$d" ]; then cp -r "$pkg/$d" "/out/$pkg/$d"; fi; \
      done; \
    done

# ---- prod-deps: production dependencies only --------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY --from=build /out/ ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG POSTMESH_VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="postmesh" \
      org.opencontainers.image.description="Postmesh email platform services (smtp-inbound, storage, imap, mta-delivery, admin)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${POSTMESH_VERSION}"
# tini forwards signals to Node and reaps zombies; the package manager and npm are not needed at
# run time, so they leave the image (smaller attack surface).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && groupadd --system --gid 10001 postmesh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin postmesh
WORKDIR /app
COPY --from=prod-deps --chown=0:0 /app/ ./
COPY --chmod=0755 <<'SH' /usr/local/bin/postmesh
#!/bin/sh
# Usage: postmesh <smtp-inbound|storage|imap|mta-delivery|admin> [node args...]
set -eu
name="${1:-}"
case "$name" in
  smtp-inbound|storage|imap|mta-delivery|admin) shift ;;
  *) echo "usage: postmesh <smtp-inbound|storage|imap|mta-delivery|admin>" >&2; exit 64 ;;
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
