/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The raw netlink the shim speaks (conntrack.c: NETLINK_NETFILTER,
 * sockdiag.c: NETLINK_SOCK_DIAG), one way: open a bound socket, run a dump
 * message by message, read the ack of one request. Internal to the shim.
 */
#ifndef BPFPROXY_NATIVE_NETLINK_H
#define BPFPROXY_NATIVE_NETLINK_H

#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>

/* The receive buffer every caller passes: a dump's reply comes in parts of at most this. */
#define NL_RECV_BUF (64 * 1024)

/* A netlink socket of `protocol`, bound, in the calling thread's network namespace; -errno with err saying "<what> ..." otherwise. */
int nl_open(int protocol, const char *what, char *err, size_t err_len);

/* One message of a dump's reply (never NLMSG_DONE or NLMSG_ERROR); a negative return ends the dump with that error. */
typedef int (*nl_msg_fn)(const struct nlmsghdr *nh, void *ctx);

/*
 * Sends the dump request `req` (sequence number seq) and hands every reply
 * message of seq to fn until NLMSG_DONE. buf holds NL_RECV_BUF bytes.
 * Returns 0, or a negative errno: the socket's (err says "<what>: ...") or
 * the kernel's answer (err says "<what>: ...", the caller may say more) or fn's.
 */
int nl_dump(int fd, const void *req, size_t len, uint32_t seq, char *buf, nl_msg_fn fn, void *ctx,
	    const char *what, char *err, size_t err_len);

/* The kernel's answer to request seq (0: acknowledged), reading as needed; -errno when the socket fails. */
int nl_read_ack(int fd, char *buf, uint32_t seq);

#endif
