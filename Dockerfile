# gradlens container: Debian-based Node 20 (glibc: tfjs-node does not work on Alpine/musl), multi-stage, non-root.
#
#   docker build -t gradlens .                                   # wasm/cpu + native OpenBLAS kernels
#   docker build --build-arg TFJS_NODE=1 -t gradlens .           # also try tfjs-node (needs its download to work)
#   docker build --build-arg TFJS_NODE_GPU=1 -t gradlens-gpu .   # tfjs-node-gpu (CUDA 11.2 + cuDNN 8.1 on the host image)
#   docker build --build-arg WEBGPU=1 -t gradlens-webgpu .         # WebGPU through Dawn + Vulkan (NVIDIA/AMD/Intel; no CUDA)
#   docker run --init -p 3000:3000 -v gradlens-data:/app/data gradlens
#   docker run --init --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics -p 3000:3000 gradlens-webgpu
#   (the NVIDIA container toolkit mounts the driver's Vulkan ICD with the `graphics` capability; the image only
#   carries the Vulkan loader. WEBGPU_SOFTWARE=1 adds Mesa's lavapipe from bookworm-backports, for checks only.)

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG TFJS_NODE=0
ARG TFJS_NODE_GPU=0
ARG WEBGPU=0
# Compilers for better-sqlite3 (if its prebuilt binary is unavailable) and the native OpenBLAS kernels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libopenblas-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
COPY native ./native
# Optional dependencies are omitted first (tfjs-node downloads libtensorflow at install time, which fails
# for many users since Aug 2026, tfjs #8742); the build arguments ask for them explicitly, and a failed
# download leaves the image working on the native/wasm backends.
RUN npm ci --omit=optional --no-audit --no-fund
RUN if [ "$TFJS_NODE" = "1" ]; then npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node@4.22.0 || echo "tfjs-node did not install; continuing without it"; fi \
 && if [ "$TFJS_NODE_GPU" = "1" ]; then npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 || echo "tfjs-node-gpu did not install; continuing without it"; fi \
 && if [ "$WEBGPU" = "1" ]; then npm install --no-save --no-audit --no-fund webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0; fi
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY scripts ./scripts
COPY bench ./bench
COPY public ./public
RUN npm run build \
 && (npm run build:native || echo "native kernels not built; the wasm backend will be used") \
 && mkdir -p native/build/Release \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ARG WEBGPU=0
ARG WEBGPU_SOFTWARE=0
# Runtime library of the native kernels only (no compilers in the final image); with WEBGPU=1 the Vulkan
# loader Dawn opens (the GPU's ICD comes from the host driver), with WEBGPU_SOFTWARE=1 also lavapipe: Debian
# 12's own Mesa 22.3 is rejected by Dawn, Mesa 25 from bookworm-backports works.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread libgfortran5 tini \
 && if [ "$WEBGPU" = "1" ]; then apt-get install -y --no-install-recommends libvulkan1; fi \
 && if [ "$WEBGPU_SOFTWARE" = "1" ]; then \
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/backports.sources \
      && apt-get update && apt-get install -y --no-install-recommends -t bookworm-backports mesa-vulkan-drivers; fi \
 && rm -rf /var/lib/apt/lists/*
# Graphics is the capability that mounts the NVIDIA driver's Vulkan libraries (compute alone does not).
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    GRADLENS_DB=/app/data/gradlens.db \
    OPENBLAS_NUM_THREADS=1
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/native/build/Release ./native/build/Release
COPY --from=build --chown=node:node /app/public ./public
COPY --chown=node:node openapi ./openapi
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
VOLUME ["/app/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tini forwards SIGTERM so close-with-grace can drain; exec form, not `npm start`.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/server.js"]
