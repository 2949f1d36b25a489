# bpfproxy image: the control plane on Node.js 26 (the active LTS line since
# 2026-10-28; supported until 2029-04-30), the BPF objects, the libbpf shim,
# and the tools the fallback modes and an operator need. Built objects need no
# kernel headers at run time (sockdestroy's vmlinux.h is used at build time only).
#
#   docker build --build-arg BPFPROXY_COMMIT=$(git rev-parse --short=12 HEAD) -t bpfproxy:0.1.0 .
#
# test/unit/deploy/image-tree.test.ts assembles the final stage's file tree
# from the COPY lines below and starts the CLI from it: keep each COPY on one
# line, `COPY --from=build /src/PATH DEST`.
ARG NODE_MAJOR=26
ARG DEBIAN=trixie

# The BPF objects, with the compiler and headers they are tested with here
# (Debian 12's clang 14 and libbpf 1.1 headers): what the verifier accepts can
# change with the compiler, and the objects run on any distribution's kernel.
FROM debian:bookworm-slim AS bpf
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev linux-libc-dev gcc make bpftool \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY bpf ./bpf
# sockdestroy.bpf.o is built when the build host exposes /sys/kernel/btf/vmlinux.
RUN mkdir -p .cache && touch .cache/apt.stamp && make bpf

# The control plane and the libbpf shim, built against the runtime's libbpf.
FROM node:${NODE_MAJOR}-${DEBIAN} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf-dev gcc make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# The lock as committed, never rewritten (test/unit/deploy/lockfile.test.ts
# keeps it complete for every platform). Dependency install scripts are off,
# whatever the npm version's default (npm 11.19 blocks them unless allowed):
# nothing needs them (koffi loads its prebuilt binary from
# @koromix/koffi-linux-*; msgpackr falls back to JavaScript).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The apt step of `make deps` is for developer machines; this stage has its tools.
RUN mkdir -p .cache && touch .cache/apt.stamp node_modules/.stamp \
 && make native ts \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && sh deploy/trim-node-modules.sh node_modules

# The node binary alone, without npm, npx, corepack or yarn.
FROM node:${NODE_MAJOR}-${DEBIAN}-slim AS node

FROM debian:${DEBIAN}-slim
# libbpf1: the shim's libbpf (the same version the shim was compiled against).
# bpftool: inspecting pinned maps and links when debugging a node.
# iproute2, nftables, iptables, ipvsadm, ipset, conntrack: the fallback
# dataplanes, `cleanup --kube-proxy`, and conntrack flushes.
# libatomic1, libstdc++6: what the node binary links against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libbpf1 bpftool iproute2 nftables iptables ipvsadm ipset conntrack libatomic1 libstdc++6 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /opt/bpfproxy
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=bpf /src/build/bpf ./build/bpf
COPY --from=build /src/build/native ./build/native
COPY --from=build /src/node_modules ./node_modules
ARG BPFPROXY_COMMIT=unknown
ENV BPFPROXY_COMMIT=${BPFPROXY_COMMIT} NODE_ENV=production
ENTRYPOINT ["/opt/bpfproxy/bin/bpfproxy"]
