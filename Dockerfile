# Saguaro node image. One image, every role: SERVICES picks what a container runs.
#   docker build -t saguaro .                    (api, orchestrator, scrapers)
#   docker build -t saguaro-browser --target browser .   (browser-pool, mls: adds Chromium)

# --- dependencies (production only; the base image already has Node 24) ----------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error

# --- runtime ----------------------------------------------------------------------------------
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/app/data \
    REPL=off
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json moleculer.config.ts ./
COPY bin ./bin
COPY src ./src
COPY services ./services
COPY mixins ./mixins
COPY config ./config
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
EXPOSE 3000 3030 3031
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3031/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "bin/saguaro.ts"]

# --- browser nodes: the same plus Debian's Chromium -----------------------------------------
FROM runtime AS browser
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-liberation ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV CHROMIUM_PATH=/usr/bin/chromium
USER node
# BROWSER_NODE_FLAGS in src/browser/launch.ts: the pool's process favours memory over speed
# (--optimize-for-size is not allowed in NODE_OPTIONS, so the flags ride on the command line).
CMD ["node", "--max-semi-space-size=2", "--optimize-for-size", "bin/saguaro.ts"]
