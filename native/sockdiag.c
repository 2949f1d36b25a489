// SPDX-License-Identifier: Apache-2.0
/*
 * Destroying connected UDP sockets over NETLINK_SOCK_DIAG, for kernels
 * without bpf_sock_destroy (before 6.5). See sockdiag.h for the calls and
 * their text formats.
 *
 * The kernel side is inet_diag + udp_diag: a SOCK_DIAG_BY_FAMILY dump lists
 * a family's UDP sockets (here only connected ones, and only those whose
 * peer is a target: an inet_diag bytecode filter), each with the socket's
 * cookie, and a SOCK_DESTROY request with that id (addresses, ports, bound
 * device, cookie) aborts the socket as bpf_sock_destroy does: ECONNABORTED
 * to the application, and the socket is disconnected. It needs
 * CONFIG_INET_DIAG_DESTROY; Debian builds inet_diag and udp_diag as modules,
 * which the kernel loads on the first request (request_module).
 *
 * Like ctnetlink in conntrack.c: raw netlink, no library, and the socket
 * sees the namespace it was created in, so bpx_sockdiag_open creates it
 * inside the namespace to visit (netns.c) and the thread comes back at once.
 */
#include "sockdiag.h"
#include "netlink.h"
#include "netns.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SK_CONNECTED 1		/* TCP_ESTABLISHED: the state connect() gives a UDP socket */
/* The filter is one netlink attribute, whose length is 16 bits. */
#define MAX_BYTECODE (UINT16_MAX - NLA_HDRLEN)

/* One socket line. */
struct diag_sock {
	uint64_t cookie;
	int family;		/* AF_INET or AF_INET6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;	/* host order */
	uint32_t ifindex;
};

static int hex_bytes(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (uint8_t)b;
	}
	return (int)(n / 2);
}

static void put_hex(char *buf, size_t len, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		append(buf, len, "%02x", b[i]);
}

static int parse_sock(const char *line, struct diag_sock *s)
{
	char src[40], dst[40];
	unsigned int fam, sport, dport;

	memset(s, 0, sizeof(*s));
	if (sscanf(line, "%" SCNu64 " %u %39s %u %39s %u %" SCNu32, &s->cookie, &fam, src, &sport, dst, &dport,
		   &s->ifindex) != 7 || (fam != 4 && fam != 6) || sport > 65535 || dport > 65535)
		return -EINVAL;
	s->family = fam == 4 ? AF_INET : AF_INET6;
	if (hex_bytes(src, s->src, 16) != (fam == 4 ? 4 : 16) || hex_bytes(dst, s->dst, 16) != (fam == 4 ? 4 : 16))
		return -EINVAL;
	s->sport = (uint16_t)sport;
	s->dport = (uint16_t)dport;
	return 0;
}

/* A request: nlmsghdr + inet_diag_req_v2 (zeroed, family and protocol set). */
static size_t put_request(char *buf, int type, int flags, int family, uint32_t seq)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct inet_diag_req_v2 *req = NLMSG_DATA(nh);

	memset(buf, 0, NLMSG_SPACE(sizeof(*req)));
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*req));
	nh->nlmsg_type = type;
	nh->nlmsg_flags = NLM_F_REQUEST | flags;
	nh->nlmsg_seq = seq;
	req->sdiag_family = family;
	req->sdiag_protocol = IPPROTO_UDP;
	return NLMSG_ALIGN(nh->nlmsg_len);
}

/*
 * The filter "peer is one of the targets", in inet_diag bytecode: each
 * condition is followed by a jump to the end (accept), and a condition that
 * fails skips its jump to the next condition; the last one fails past the
 * end (reject). The kernel's audit walks the "yes" chain and wants every
 * "no" target on it, which this layout gives (ss builds its ORs the same
 * way). A family's dump gets its own targets; an IPv6 dump also those of
 * IPv4, whose conditions match IPv4-mapped peers. Returns the bytecode's
 * length, 0 when no target is of the family, or -E2BIG when it would not fit.
 */
static int put_filter(uint8_t *bc, size_t room, int family, const char *targets)
{
	char *copy = strdup(targets ? targets : ""), *save = NULL;
	size_t at = 0;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char hex[40];
		unsigned int port;
		uint8_t addr[16];
		int alen;
		struct inet_diag_bc_op *op;
		struct inet_diag_hostcond *cond;
		size_t cond_len;

		if (sscanf(line, "%39s %u", hex, &port) != 2 || port > 65535 || (alen = hex_bytes(hex, addr, 16)) < 0 ||
		    (alen != 4 && alen != 16)) {
			ret = -EINVAL;
			goto out;
		}
		if (family == AF_INET && alen != 4)
			continue;
		cond_len = sizeof(*op) + sizeof(*cond) + alen;
		if (at + cond_len + sizeof(*op) > room || at + cond_len + sizeof(*op) > MAX_BYTECODE) {
			ret = -E2BIG;
			goto out;
		}
		/* The jump that ends the previous condition's "yes". */
		if (at > 0) {
			op = (struct inet_diag_bc_op *)(bc + at);
			op->code = INET_DIAG_BC_JMP;
			op->yes = sizeof(*op);
			at += sizeof(*op);
		}
		op = (struct inet_diag_bc_op *)(bc + at);
		op->code = INET_DIAG_BC_D_COND;
		op->yes = cond_len;
		op->no = cond_len + sizeof(*op);
		cond = (struct inet_diag_hostcond *)(op + 1);
		cond->family = alen == 4 ? AF_INET : AF_INET6;
		cond->prefix_len = alen * 8;
		cond->port = (int)port;
		memcpy(cond->addr, addr, alen);
		at += cond_len;
	}
	/* Every jump lands on the end: patch them now the length is known. */
	for (size_t p = 0; p < at;) {
		struct inet_diag_bc_op *op = (struct inet_diag_bc_op *)(bc + p);

		if (op->code == INET_DIAG_BC_JMP) {
			op->no = at - p;
			p += sizeof(*op);
		} else {
			p += op->yes;
		}
	}
	ret = (int)at;
out:
	free(copy);
	return ret;
}

int bpx_sockdiag_encode_dump(int family, const char *targets, uint32_t seq, void *out, size_t out_len)
{
	int af = family == 6 ? AF_INET6 : AF_INET;
	char *buf = out;
	size_t at;
	struct nlattr *attr;
	int bc_len;

	if (out_len < NLMSG_SPACE(sizeof(struct inet_diag_req_v2)) + NLA_HDRLEN)
		return -ENOSPC;
	at = put_request(buf, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, af, seq);
	((struct inet_diag_req_v2 *)NLMSG_DATA((struct nlmsghdr *)buf))->idiag_states = 1 << SK_CONNECTED;
	attr = (struct nlattr *)(buf + at);
	bc_len = put_filter((uint8_t *)(attr + 1), out_len - at - NLA_HDRLEN, af, targets);
	if (bc_len < 0)
		return bc_len == -E2BIG ? (int)at : bc_len;	/* too many targets: no filter, all connected sockets */
	if (bc_len == 0)
		return 0;	/* no target of this family: nothing to ask */
	attr->nla_type = INET_DIAG_REQ_BYTECODE;
	attr->nla_len = NLA_HDRLEN + bc_len;
	at += NLA_ALIGN(attr->nla_len);
	((struct nlmsghdr *)buf)->nlmsg_len = at;
	return (int)at;
}

int bpx_sockdiag_encode_destroy(const char *socket, uint32_t seq, void *out, size_t out_len)
{
	struct inet_diag_req_v2 *req;
	struct diag_sock s;
	size_t at;

	if (out_len < NLMSG_SPACE(sizeof(*req)))
		return -ENOSPC;
	if (parse_sock(socket, &s))
		return -EINVAL;
	at = put_request(out, SOCK_DESTROY, NLM_F_ACK, s.family, seq);
	req = NLMSG_DATA((struct nlmsghdr *)out);
	req->id.idiag_sport = htons(s.sport);
	req->id.idiag_dport = htons(s.dport);
	memcpy(req->id.idiag_src, s.src, s.family == AF_INET ? 4 : 16);
	memcpy(req->id.idiag_dst, s.dst, s.family == AF_INET ? 4 : 16);
	req->id.idiag_if = s.ifindex;
	/* The kernel's halves, as sock_diag_save_cookie writes them. */
	req->id.idiag_cookie[0] = (uint32_t)s.cookie;
	req->id.idiag_cookie[1] = (uint32_t)(s.cookie >> 32);
	return (int)at;
}

int bpx_sockdiag_open(const char *netns_path, char *err, size_t err_len)
{
	struct netns_visit visit;
	int fd, ret;

	ret = netns_enter(netns_path, &visit, err, err_len);
	if (ret)
		return ret;
	/* Created inside the namespace, the socket keeps seeing it after the thread has left. */
	fd = nl_open(NETLINK_SOCK_DIAG, "sock_diag", err, err_len);
	netns_leave(&visit);
	return fd;
}

/* Where a dump's socket lines go: out (out_len bytes), total counting every byte, also what does not fit. */
struct sock_lines {
	char *out;
	size_t out_len;
	uint64_t *total;
};

/* Appends one socket line, counting what does not fit. */
static int emit_sock(const struct nlmsghdr *nh, void *arg)
{
	const struct inet_diag_msg *m = NLMSG_DATA(nh);
	struct sock_lines *o = arg;
	char line[160] = "";
	size_t alen, n;
	uint64_t cookie;

	if (nh->nlmsg_type != SOCK_DIAG_BY_FAMILY || nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	alen = m->idiag_family == AF_INET ? 4 : 16;
	cookie = m->id.idiag_cookie[0] | (uint64_t)m->id.idiag_cookie[1] << 32;
	append(line, sizeof(line), "%" PRIu64 " %d ", cookie, m->idiag_family == AF_INET ? 4 : 6);
	put_hex(line, sizeof(line), (const uint8_t *)m->id.idiag_src, alen);
	append(line, sizeof(line), " %u ", ntohs(m->id.idiag_sport));
	put_hex(line, sizeof(line), (const uint8_t *)m->id.idiag_dst, alen);
	append(line, sizeof(line), " %u %u\n", ntohs(m->id.idiag_dport), m->id.idiag_if);
	n = strlen(line);
	if (*o->total + n <= o->out_len)
		memcpy(o->out + *o->total, line, n);
	*o->total += n;
	return 0;
}

int bpx_sockdiag_dump(int fd, int family, const char *targets, void *out, size_t out_len, uint64_t *total,
		      char *err, size_t err_len)
{
	uint32_t seq = (uint32_t)getpid() ^ (uint32_t)family << 16;
	size_t req_len = NLMSG_SPACE(sizeof(struct inet_diag_req_v2)) + NLA_HDRLEN + MAX_BYTECODE + 8;
	char *req = calloc(1, req_len), *buf = malloc(NL_RECV_BUF);
	struct sock_lines lines = { .out = out, .out_len = out_len, .total = total };
	int len, ret = 0;

	*total = 0;
	if (!req || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	len = bpx_sockdiag_encode_dump(family, targets, seq, req, req_len);
	if (len < 0) {
		ret = len;
		set_err(err, err_len, "sock_diag dump request: cannot encode the targets");
		goto out;
	}
	if (len == 0)
		goto out;
	ret = nl_dump(fd, req, len, seq, buf, emit_sock, &lines, "sock_diag dump of UDP sockets", err, err_len);
	/* No handler for the family, or no udp_diag: sock_diag answers ENOENT. */
	if (ret == -ENOENT)
		set_err(err, err_len, "sock_diag dump of UDP sockets: %s (no UDP socket diagnostics: CONFIG_INET_UDP_DIAG, or its module did not load)",
			strerror(ENOENT));
	if (ret == 0 && *total > out_len) {
		ret = -ENOSPC;
		set_err(err, err_len, "sock_diag dump: %" PRIu64 " bytes of sockets, room for %zu", *total, out_len);
	}
out:
	free(req);
	free(buf);
	return ret;
}

/*
 * Only ever for sockets a dump just listed as connected: SOCK_DESTROY finds
 * its socket through the receive lookup (__udp4_lib_lookup), where an
 * unconnected socket matches any peer. Measured here (6.18): destroying the
 * same 4-tuple twice succeeds twice, the second time on the now
 * disconnected, still bound socket, whose cookie has not changed, and hands
 * its application a second ECONNABORTED.
 */
int bpx_sockdiag_destroy(int fd, const char *sockets, void *out, size_t out_len, char *err, size_t err_len)
{
	char *copy = strdup(sockets ? sockets : ""), *save = NULL, *buf = malloc(NL_RECV_BUF);
	uint32_t seq = (uint32_t)getpid() << 8;
	int destroyed = 0, ret = 0;

	if (out_len)
		*(char *)out = 0;
	if (!copy || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char req[NLMSG_SPACE(sizeof(struct inet_diag_req_v2))];
		struct diag_sock s;
		int len, r;

		if (parse_sock(line, &s)) {
			ret = -EINVAL;
			set_err(err, err_len, "sock_diag destroy: cannot read \"%s\"", line);
			goto out;
		}
		len = bpx_sockdiag_encode_destroy(line, ++seq, req, sizeof(req));
		if (len < 0 || send(fd, req, len, 0) < 0) {
			ret = len < 0 ? len : -errno;
			set_err(err, err_len, "sock_diag destroy request: %s", strerror(-ret));
			goto out;
		}
		r = nl_read_ack(fd, buf, seq);
		if (r == 0)
			destroyed++;
		append(out, out_len, "%" PRIu64 " %d\n", s.cookie, -r);
	}
	ret = destroyed;
out:
	free(copy);
	free(buf);
	return ret;
}

int bpx_sockdiag_probe(char *err, size_t err_len)
{
	/* A dump that matches nothing (0.0.0.0:0 is nobody's peer) shows that
	 * inet_diag and udp_diag answer (loading their modules); destroying a
	 * socket that does not exist then says whether SOCK_DESTROY is built
	 * in: ENOENT (looked up, not found) when it is, EOPNOTSUPP when not. */
	char out[256], scratch[64];
	uint64_t total;
	int fd, ret;

	fd = bpx_sockdiag_open(NULL, err, err_len);
	if (fd < 0)
		return fd;
	ret = bpx_sockdiag_dump(fd, 4, "00000000 0", out, sizeof(out), &total, err, err_len);
	if (ret == 0) {
		ret = bpx_sockdiag_destroy(fd, "1 4 00000000 0 00000000 0 0", scratch, sizeof(scratch), err, err_len);
		if (ret >= 0) {
			int answer = atoi(strchr(scratch, ' ') ? strchr(scratch, ' ') + 1 : "0");

			if (answer == ENOENT)
				ret = 0;
			else {
				ret = -answer;
				set_err(err, err_len, "sock_diag cannot destroy UDP sockets: %s%s", strerror(answer),
					answer == EOPNOTSUPP ? " (CONFIG_INET_DIAG_DESTROY is not set)" : "");
			}
		}
	}
	close(fd);
	return ret;
}
