# bpfproxy build. `make demo` and `make test` each install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
CLANG      ?= clang
CC         ?= gcc
BUILD      := build
BPF_SRC    := $(wildcard bpf/*.bpf.c)
BPF_OBJ    := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_HDR    := $(wildcard bpf/lib/*.h)
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -I/usr/include/$(MULTIARCH) -Ibpf
NATIVE_SO  := $(BUILD)/native/libbpfproxy.so
TS_SRC     := $(shell find src -name '*.ts' 2>/dev/null)
TS_STAMP   := dist/.stamp

APT_PACKAGES := clang llvm libbpf-dev bpftool linux-libc-dev gcc make iproute2 \
                iptables nftables ipvsadm curl python3 util-linux kmod

.PHONY: deps build bpf native ts test test-unit test-lab demo bench clean distclean lab-clean

# Idempotent: installs only what is missing.
deps: .cache/apt.stamp node_modules/.stamp

.cache/apt.stamp:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "apt packages missing and not root:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@mkdir -p .cache && touch $@

# `npm install` with the committed lock, not `npm ci`: npm 11 writes locks
# without other platforms' optional packages and then `npm ci` refuses them.
node_modules/.stamp: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

build: deps bpf native ts test-bpf

bpf: $(BPF_OBJ)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDR) | .cache/apt.stamp
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Test fixtures (test/bpf/objects): small programs the loader's lab tests attach.
# count-v1/-v2 differ only in the generation they count as; count-wide pins the
# same map name with another value size.
TEST_BPF := $(BUILD)/test-bpf
test-bpf: $(TEST_BPF)/count-v1.bpf.o $(TEST_BPF)/count-v2.bpf.o $(TEST_BPF)/count-wide.bpf.o

$(TEST_BPF)/count-v%.bpf.o: test/bpf/objects/count.bpf.c $(BPF_HDR) | .cache/apt.stamp
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -DCOUNT_GEN=$* -c $< -o $@

$(TEST_BPF)/count-wide.bpf.o: test/bpf/objects/count.bpf.c $(BPF_HDR) | .cache/apt.stamp
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -DCOUNT_WIDE -c $< -o $@

native: $(NATIVE_SO)

NATIVE_SRC := $(wildcard native/*.c)
NATIVE_HDR := $(wildcard native/*.h)

$(NATIVE_SO): $(NATIVE_SRC) $(NATIVE_HDR) | .cache/apt.stamp
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Werror -fPIC -shared -o $@ $(NATIVE_SRC) -lbpf

ts: $(TS_STAMP)

$(TS_STAMP): $(TS_SRC) tsconfig.json tsconfig.build.json node_modules/.stamp
	npx tsc -p tsconfig.build.json
	@touch $@

# Unit tests need no privileges; lab tests need root (CI runs as root).
test: build
	npx tsc -p tsconfig.json --noEmit
	npx vitest run

test-unit: build
	npx vitest run test/unit test/scenarios

test-lab: build
	npx vitest run test/lab test/bpf

demo: build
	node dist/demo/main.js

# Speed and memory, each against a baseline measured in the same run (root: it builds a lab).
# `make bench QUICK=1`: smaller sizes and fewer pairs, the whole run in under 3 minutes
# (QUICK reaches each bench through the environment).
bench: export QUICK := $(QUICK)
bench: build
	NODE_OPTIONS=--expose-gc npx vite-node bench/plan.ts
	npx vite-node bench/sync.ts
	npx vite-node bench/memory.ts
	NODE_OPTIONS=--expose-gc npx vite-node bench/dataplane.ts
	npx vite-node bench/packets.ts

# Removes what crashed lab runs left behind (namespaces, cgroups, pins).
lab-clean: ts
	node dist/lab/cleanup.js

clean:
	rm -rf $(BUILD) dist

distclean: clean
	rm -rf node_modules .cache
