# bpfproxy image: the control plane (Node 20), the BPF objects and the libbpf
# shim. Built objects need no kernel headers at run time (no CO-RE, no vmlinux.h).
FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev linux-libc-dev gcc make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY . .
# The apt step of `make deps` is for developer machines; this stage has its tools.
RUN mkdir -p .cache && touch .cache/apt.stamp node_modules/.stamp \
 && make bpf native ts \
 && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/bpfproxy
COPY --from=build /src/package.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/build ./build
COPY --from=build /src/node_modules ./node_modules
ENTRYPOINT ["/opt/bpfproxy/bin/bpfproxy"]
