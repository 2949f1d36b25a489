/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connected UDP sockets through NETLINK_SOCK_DIAG (native/sockdiag.c): list
 * those talking to given peers, and destroy some (SOCK_DESTROY, the call
 * behind `ss -K`). The kernels without bpf_sock_destroy use it
 * (src/dataplane/bpf/sock-diag.ts).
 *
 * Text in and out, one record a line, space separated, addresses as hex of
 * their network-order bytes (8 digits IPv4, 32 IPv6), ports in decimal:
 *   target: "ADDR PORT"
 *   socket: "COOKIE FAMILY SRC SPORT DST DPORT IFINDEX" (FAMILY 4 or 6)
 *   result: "COOKIE ERRNO" (0: destroyed)
 * Every function returns 0 (or a count) or a negative errno, with the step
 * that failed in `err`.
 */
#ifndef BPFPROXY_NATIVE_SOCKDIAG_H
#define BPFPROXY_NATIVE_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

/* A NETLINK_SOCK_DIAG socket of the namespace at netns_path (NULL or "":
 * the caller's); it keeps seeing that namespace after the thread left it.
 * Close it with close(2). */
int bpx_sockdiag_open(const char *netns_path, char *err, size_t err_len);

/* The connected UDP sockets of `family` (4 or 6) whose peer is one of
 * `targets` (IPv4 targets also match IPv4-mapped peers of IPv6 sockets), as
 * socket lines. The kernel filters when the targets fit one filter; else
 * every connected socket is listed. *total gets the whole text's length:
 * -ENOSPC when it did not fit in out. */
int bpx_sockdiag_dump(int fd, int family, const char *targets, void *out, size_t out_len, uint64_t *total,
		      char *err, size_t err_len);

/* Destroys each socket line of `sockets` (the application gets
 * ECONNABORTED); one result line per socket into out. Returns how many were
 * destroyed. A socket gone meanwhile (or one whose cookie is another's now)
 * answers ENOENT. */
int bpx_sockdiag_destroy(int fd, const char *sockets, void *out, size_t out_len, char *err, size_t err_len);

/* Whether this kernel can destroy UDP sockets over sock_diag: 0, or why not. */
int bpx_sockdiag_probe(char *err, size_t err_len);

/* The requests as sent, for tests: length written (0: a dump with no target
 * of the family, which is not sent), or a negative errno. */
int bpx_sockdiag_encode_dump(int family, const char *targets, uint32_t seq, void *out, size_t out_len);
int bpx_sockdiag_encode_destroy(const char *socket, uint32_t seq, void *out, size_t out_len);

#endif
