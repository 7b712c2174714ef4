# One image, three entry points: the operator, the sidecar, and the sidecar's init-network mode.
#
#   docker build -t chaperone:dev .
#   operator:      chaperone-operator --namespace chaperone-system            (the chart's Deployment)
#   sidecar:       chaperone-sidecar --config /etc/chaperone/config/sidecar.yaml (injected by the webhook)
#   init-network:  chaperone-sidecar init-network --config …                  (injected for interception: transparent)
#
# Build stage: full npm install (TypeScript, the node@24 devDependency) and `tsc`.
# Runtime stage: Debian slim with Node 24's binary only (no npm, no compiler, no shell tools beyond
# what iptables needs), the production node_modules, the compiled dist/, non-root by default.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Install scripts are allowed only for the packages named in package.json `allowScripts` (npm 11).
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
COPY sidecar ./sidecar
RUN npm run build \
 && npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node node_modules/.bin/node

FROM ${BASE_IMAGE} AS runtime
# iptables for init-network (it alone runs as root with NET_ADMIN/NET_RAW); ca-certificates for upstream TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 chaperone \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin chaperone
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /opt/chaperone
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY crds ./crds
# The package's bins, on PATH by the names the webhook and the docs use (each file starts with `#!/usr/bin/env node`; the sidecar's with `-S node --liftoff-only`).
RUN for b in chaperone-sidecar:sidecar/cli.js chaperone-operator:operator/cli.js kubectl-chaperone:operator/kubectl-plugin/cli.js chaperone-verify:sidecar/recording/verify-cli.js; do \
      name=${b%%:*}; file=/opt/chaperone/dist/${b#*:}; test -f "$file" && chmod 0555 "$file" && ln -s "$file" "/usr/local/bin/$name" || exit 1; \
    done
ENV NODE_ENV=production
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/chaperone-sidecar"]
