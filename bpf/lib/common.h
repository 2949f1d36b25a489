/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes and small helpers every program needs. UAPI and libbpf headers only:
 * the programs read no kernel internals, so no vmlinux.h and no CO-RE. */
#ifndef BPX_COMMON_H
#define BPX_COMMON_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define NSEC_PER_SEC 1000000000ULL

/* Return codes of cgroup sock_addr programs. */
#define SYS_PROCEED 1
#define SYS_REJECT 0

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#endif
