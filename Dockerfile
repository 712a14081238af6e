# Herald's image: the tarball `npm pack` makes, installed into /app as a user installs it, run as
# the unprivileged `node` user. `herald <command>` is the entrypoint; the default command runs
# every role in one process (`start`), compose.yaml runs one role per container.
# Not built or run in this repository's CI, which has no Docker engine (docs/deploy.md).

FROM node:20-slim AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund
# prepack builds dist/ from a clean slate; the tarball holds only what Herald runs.
RUN npm pack --pack-destination /tmp && mv /tmp/herald-*.tgz /tmp/herald.tgz

FROM node:20-slim
WORKDIR /app
COPY --from=build /tmp/herald.tgz /tmp/herald.tgz
# Dependencies resolve from the ranges in package.json (the tarball carries no lockfile).
RUN npm init -y >/dev/null \
  && npm install --omit=dev --no-audit --no-fund /tmp/herald.tgz \
  && rm /tmp/herald.tgz \
  && npm cache clean --force \
  && mkdir /data \
  && chown node:node /data
# Listen on every interface of the container (Herald's default is 127.0.0.1). Without
# DATABASE_URL, the embedded PostgreSQL keeps its files in /data: mount a volume there.
ENV HOST=0.0.0.0 HERALD_DATA_DIR=/data
USER node
EXPOSE 3000 3001 3002
ENTRYPOINT ["/app/node_modules/.bin/herald"]
CMD ["start"]
