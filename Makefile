# bpfproxy build. `make demo` and `make test` each install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := build

MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
CLANG      ?= clang
CC         ?= gcc
BUILD      := build
BPF_SRC    := $(wildcard bpf/*.bpf.c bpf/bench/*.bpf.c)
BPF_OBJ    := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_HDR    := $(wildcard bpf/lib/*.h)
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -I/usr/include/$(MULTIARCH) -Ibpf
NATIVE_SO  := $(BUILD)/native/libbpfproxy.so
TS_SRC     := $(shell find src -name '*.ts' 2>/dev/null)
TS_STAMP   := dist/.stamp

APT_PACKAGES := clang llvm libbpf-dev bpftool linux-libc-dev gcc make iproute2 \
                iptables nftables ipvsadm ipset curl python3 util-linux kmod \
                qemu-system-x86 busybox-static cpio xz-utils zstd python3-argcomplete python3-requests udev

.PHONY: deps build bpf native ts test test-unit test-lab test-vm demo bench clean distclean lab-clean

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

# sockdestroy.bpf.c is the one program that reads kernel types (CO-RE): its
# vmlinux.h is generated from the build host's BTF into build/ (never
# committed). A kernel without BTF gets no such object, and the proxy runs
# without it (connected UDP sockets keep a removed backend until they reconnect).
KERNEL_BTF := /sys/kernel/btf/vmlinux
VMLINUX_H  := $(BUILD)/vmlinux/vmlinux.h
ifeq ($(wildcard $(KERNEL_BTF)),)
BPF_OBJ := $(filter-out $(BUILD)/bpf/sockdestroy.bpf.o,$(BPF_OBJ))
else
$(VMLINUX_H): | .cache/apt.stamp
	@mkdir -p $(dir $@)
	bpftool btf dump file $(KERNEL_BTF) format c > $@.tmp && mv $@.tmp $@
$(BUILD)/bpf/sockdestroy.bpf.o: $(VMLINUX_H)
$(BUILD)/bpf/sockdestroy.bpf.o: BPF_CFLAGS += -I$(dir $(VMLINUX_H))
endif

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
	npx vite-node test/vm/main.ts auto --batch ci

# Kernel-in-VM (docs/vm.md): Debian's 6.1 and 6.12 kernels, fetched through apt
# and cached in .cache/vm, each booted once under qemu (software emulation)
# with the host's root shared read-only; inside, the batch of
# test/vm/vitest.guest.config.ts (lab files and kernel checks). Then one short
# boot through vng, when virtme-ng is installed or beside the project.
# `make test` boots both kernels (--batch ci: the kernel checks and probes and
# the ClusterIP lab file on both, the ipvs file on 6.1; docs/vm.md has the
# times and what joins next) when this host can boot a
# guest, and says in one line why when it cannot.
# VM_ARGS: e.g. `--kernel 6.12`, `--batch ci`, `--kvm` (an operator's working KVM), `--vng PATH`.
test-vm: build
	npx vite-node test/vm/main.ts run $(VM_ARGS)
	npx vite-node test/vm/main.ts vng-smoke $(VM_ARGS)

test-unit: build
	npx vitest run test/unit test/scenarios

test-lab: build
	npx vitest run test/lab test/bpf

demo: build
	node dist/demo/main.js

# Speed and memory, each against a baseline measured in the same run (root: it builds a lab).
# bench/run.ts runs every bench under one time plan (a budget per step, printed at the start
# and checked at the end; a step far past its budget is stopped): under 20 minutes, with the
# ipvs rows from one Debian 6.1 guest (bench/vm-bench.ts, under flock /tmp/bpfproxy-vm.lock).
# `make bench QUICK=1`: smaller sizes and fewer pairs, no guest, about 2.5 minutes (bound: 3).
# Each bench prints its figures as it goes and appends them to BENCH_RESULTS;
# bench/report.ts then writes bench/results/latest.md and one SVG chart per measurement.
BENCH_RESULTS := bench/results/raw.jsonl
bench: export QUICK := $(QUICK)
bench: export BENCH_RESULTS := $(abspath $(BENCH_RESULTS))
bench: build
	@mkdir -p bench/results && : > $(BENCH_RESULTS)
	@node node_modules/vite-node/vite-node.mjs bench/run.ts

# Removes what crashed lab runs left behind (namespaces, cgroups, pins).
lab-clean: ts
	node dist/lab/cleanup.js

clean:
	rm -rf $(BUILD) dist

distclean: clean
	rm -rf node_modules .cache
