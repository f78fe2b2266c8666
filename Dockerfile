# syntax=docker/dockerfile:1
# Production image for every Sluice role: `sluice start | api | worker | migrate`
# (the role is the container command; see compose.yaml and docs/operations.md).
# Node 24 runs the TypeScript in src/ directly (type stripping), so there is no
# compile step for the server: src/ is copied as it is.

# --- build: all dependencies, then the chat UI into web/dist ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:web

# --- runtime: production dependencies only, non-root ---
FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/.sluice
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY --from=build /app/web/dist ./web/dist
# DATA_DIR is only written when DATABASE_URL or REDIS_URL is unset (embedded defaults);
# it must still be writable by the unprivileged user.
RUN mkdir -p /app/.sluice && chown node:node /app/.sluice
# The `node` user (uid 1000) ships with the official image.
USER node
EXPOSE 3000
# Ready = PostgreSQL and Redis answer and migrations are applied. A worker serves no HTTP:
# compose.yaml disables this check for worker containers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (graceful shutdown).
ENTRYPOINT ["node", "src/main/cli.ts"]
CMD ["start"]
