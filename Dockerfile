# syntax=docker/dockerfile:1
# The Countersign worker image (docker-compose.yml's `worker`). Any `countersign` command runs the same
# way: `docker compose run --rm worker node dist/cli/index.js status <workflowId>`.

FROM node:20-slim AS build
WORKDIR /app
COPY . .
# Installs the versions in package-lock.json. `npm install`, not `npm ci`: the lock file lacks the
# native @swc/core packages of other platforms (optional dependencies of the Temporal bundler), which
# `npm ci` refuses. It also compiles (the `prepare` script), which is why the sources are copied first.
RUN --mount=type=cache,target=/root/.npm npm install --no-audit --no-fund
RUN npm run build
RUN npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
# The whole tree, not only dist/: the CLI finds the project root by its package.json.
COPY --from=build --chown=node:node /app /app
USER node
CMD ["node", "dist/cli/index.js", "worker"]
