# syntax=docker/dockerfile:1
# The Passage relay image. Two stages: `build` compiles every workspace with the full dev
# toolchain; the runtime stage holds only production dependencies, the compiled server and
# shared code, and the built client — no compiler, no sources, no tests.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Manifests first, so that `npm ci` is cached until a dependency changes.
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
COPY testing/package.json testing/
COPY test/package.json test/
COPY bench/package.json bench/
COPY cli/package.json cli/
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
COPY testing/package.json testing/
COPY test/package.json test/
COPY bench/package.json bench/
COPY cli/package.json cli/
# Production dependencies only; no install scripts run. The npm cache is dropped in the same
# layer so it never ships.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/shared/dist shared/dist
COPY --from=build /app/server/dist server/dist
COPY --from=build /app/client/dist client/dist
# Containers listen on every interface of their own network namespace; compose publishes the
# port on the host's loopback only, and TLS terminates in a proxy in front.
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
# The image's unprivileged user; compose also runs the root file system read-only.
USER node
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# `node` directly (not `npm start`), so SIGTERM reaches the relay and it drains gracefully.
CMD ["node", "server/dist/main.js"]
