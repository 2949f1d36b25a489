/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The socket programs' reverse-translation map (socket + backend -> the
 * frontend it was connected through), declared once for the objects that
 * share it through its pin: sock.bpf.c writes it (sock.h), sockdestroy.bpf.c
 * reads it. No includes of its own: sockdestroy.bpf.c builds on vmlinux.h,
 * whose types clash with the UAPI headers sock.h pulls in, so each includer
 * brings bpf_helpers.h and maps.h (the key and value structs) itself.
 */
#ifndef BPX_SOCK_RNAT_MAP_H
#define BPX_SOCK_RNAT_MAP_H

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct bpx_sk_rnat_key);
	__type(value, struct bpx_sk_rnat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpx_sk_rnat_v1 SEC(".maps");

#endif
