# syntax=docker/dockerfile:1
# Checked by test/deploy.test.ts (parsed and linted; the suite has no Docker engine to build it).

# ---- dependencies: production packages only, exactly as locked ----
FROM oven/bun:1.4.5-slim AS deps
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production --ignore-scripts

# ---- dashboard: bundled once here, so the server does not bundle web/ at every start ----
FROM deps AS web
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
RUN bun web/build.ts

# ---- runtime ----
FROM oven/bun:1.4.5-slim AS runtime
# Shown by GET /version. Left empty, the server falls back to package.json's version and its
# start time.
ARG VERSION=
ARG BUILD_TIME=
ARG GIT_COMMIT=
LABEL org.opencontainers.image.title="ChatLogger" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${BUILD_TIME}"
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    VERSION=${VERSION} \
    BUILD_TIME=${BUILD_TIME} \
    GIT_COMMIT=${GIT_COMMIT}
WORKDIR /app
# Owned by root and read-only for the server: it can write only to /data.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json openapi.yaml tsconfig.json ./
COPY src ./src
COPY --from=web /app/dist/web ./dist/web
RUN mkdir -p /data && chown bun:bun /data
# The image's unprivileged user (uid 1000).
USER bun
VOLUME ["/data"]
EXPOSE 8080
# The slim image has no curl: Bun's own fetch asks /health.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# main.ts stops on SIGTERM: it finishes in-flight requests, then closes the database.
STOPSIGNAL SIGTERM
CMD ["bun", "src/main.ts"]
