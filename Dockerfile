# syntax=docker/dockerfile:1
# The Countersign worker image (docker-compose.yml's `worker`), on Node 22. Any `countersign` command runs
# the same way: `docker compose run --rm worker bin/countersign.js status <workflowId>`.
# The base is pinned to Node 22 on Debian bookworm; pin a digest (node:22-bookworm-slim@sha256:…) to freeze
# it completely.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY . .
# Installs exactly the versions in package-lock.json (as sandbox/bootstrap.js does). It also compiles
# (the `prepare` script), which is why the sources are copied first.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
RUN npm run build
# The build writes dist/workflow-bundle.js, which the worker loads instead of bundling at start; the
# bundler (@temporalio/worker) stays a runtime dependency for a worker whose bundle is stale. Only the
# dev tools (typescript, jest, eslint, …) go.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# The whole tree, not only dist/: bin/countersign.js runs dist/, and the CLI finds the project root by its
# package.json. Owned by root and only readable by the worker's user: the running worker cannot change
# its own code.
COPY --from=build /app /app
USER node
# Exec form, so SIGTERM reaches node and the worker drains (compose: init + stop_grace_period). The bin
# script itself, not `node bin/countersign.js`: its first line (env -S, coreutils) starts node with the
# worker's memory settings; env execs node, so node is still the process that gets the signal.
CMD ["bin/countersign.js", "worker"]
