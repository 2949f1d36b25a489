/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conntrack hygiene for the rule-based modes (nftables, iptables, ipvs), as
 * kube-proxy does it: when a UDP (or SCTP) service loses an endpoint, or
 * gains its first one, the flows netfilter already tracks for its frontends
 * keep going where they went (a datagram matching an entry is NATed by the
 * entry, never by the rules), so the entries are deleted.
 *
 * Raw NETLINK_NETFILTER (ctnetlink), no libmnl and no `conntrack` binary:
 * kube-proxy moved from the tool to netlink (one dump per family instead of
 * one process per filter), and the socket lives in the caller's network
 * namespace, which is the proxy's (the node's).
 *
 * One call: dump the family's table (IPCTNL_MSG_CT_GET + NLM_F_DUMP), match
 * each entry against the rules in userspace (the kernel's CTA_FILTER cannot
 * express "reply source not in this set"), then delete the matches one by
 * one by their original tuple (IPCTNL_MSG_CT_DELETE), after the dump is done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netlink.h"
#include "util.h"

#define MAX_RULES 65536

/* Flows to (addr, port, proto) whose reply comes from none of `keep`. */
struct ct_rule {
	uint8_t proto;
	uint16_t port;		/* host order */
	uint8_t addr[16];
	uint32_t nkeep;
	uint8_t (*keep)[16];
};

/* What an entry of the dump says, as far as the rules care. */
struct ct_entry {
	uint8_t proto;
	uint16_t dport;
	uint8_t dst[16];
	uint8_t reply_src[16];
	const struct nlattr *orig;	/* CTA_TUPLE_ORIG, copied into the delete */
	const struct nlattr *zone;
};

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static const struct nlattr *attr_next(const struct nlattr *a, int *left)
{
	int len = NLA_ALIGN(a->nla_len);

	*left -= len;
	return (const struct nlattr *)((const char *)a + len);
}

static int attr_ok(const struct nlattr *a, int left)
{
	return left >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left;
}

#define for_each_attr(a, start, len) \
	for (int _left = (len), _u = 0; !_u; _u = 1) \
		for (const struct nlattr *a = (start); attr_ok(a, _left); a = attr_next(a, &_left))

static const void *attr_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static int attr_payload(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static int attr_type(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

/* A CTA_TUPLE_* nest: addresses (src or dst as asked) and ports. */
static void read_tuple(const struct nlattr *tuple, int family, uint8_t *src, uint8_t *dst, uint8_t *proto, uint16_t *dport)
{
	int v4 = family == AF_INET;

	for_each_attr(a, attr_data(tuple), attr_payload(tuple)) {
		if (attr_type(a) == CTA_TUPLE_IP) {
			for_each_attr(ip, attr_data(a), attr_payload(a)) {
				int t = attr_type(ip);
				uint8_t *out = NULL;

				if (t == (v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC))
					out = src;
				else if (t == (v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST))
					out = dst;
				if (out && attr_payload(ip) == (int)addr_len(family))
					memcpy(out, attr_data(ip), addr_len(family));
			}
		} else if (attr_type(a) == CTA_TUPLE_PROTO) {
			for_each_attr(p, attr_data(a), attr_payload(a)) {
				if (attr_type(p) == CTA_PROTO_NUM && proto)
					*proto = *(const uint8_t *)attr_data(p);
				else if (attr_type(p) == CTA_PROTO_DST_PORT && dport)
					*dport = ntohs(*(const uint16_t *)attr_data(p));
			}
		}
	}
}

static int entry_of(const struct nlmsghdr *nh, int family, struct ct_entry *e)
{
	const struct nlattr *start = (const struct nlattr *)((const char *)NLMSG_DATA(nh) + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	int len = (int)nh->nlmsg_len - NLMSG_HDRLEN - NLMSG_ALIGN(sizeof(struct nfgenmsg));
	uint8_t ignored[16];

	memset(e, 0, sizeof(*e));
	for_each_attr(a, start, len) {
		switch (attr_type(a)) {
		case CTA_TUPLE_ORIG:
			e->orig = a;
			read_tuple(a, family, ignored, e->dst, &e->proto, &e->dport);
			break;
		case CTA_TUPLE_REPLY:
			read_tuple(a, family, e->reply_src, ignored, NULL, NULL);
			break;
		case CTA_ZONE:
			e->zone = a;
			break;
		}
	}
	return e->orig ? 0 : -1;
}

/* Rules are sorted by (proto, port, addr): one binary search per entry, so
 * the first sync after a start (a rule per UDP frontend) costs a dump, not
 * entries x rules comparisons. */
static int rule_cmp(const void *a, const void *b)
{
	const struct ct_rule *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static int entry_matches(const struct ct_rule *rules, uint32_t nrules, const struct ct_entry *e, size_t alen)
{
	struct ct_rule key = { .proto = e->proto, .port = e->dport };
	const struct ct_rule *r;

	memcpy(key.addr, e->dst, alen);
	r = bsearch(&key, rules, nrules, sizeof(*rules), rule_cmp);
	if (!r)
		return 0;
	for (uint32_t i = 0; i < r->nkeep; i++)
		if (memcmp(r->keep[i], e->reply_src, alen) == 0)
			return 0;
	return 1;
}

/* Appends a request: nlmsghdr + nfgenmsg, attributes follow. */
static size_t put_header(char *buf, int type, int flags, int family, uint32_t seq)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct nfgenmsg *g = NLMSG_DATA(nh);

	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*g));
	nh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nh->nlmsg_flags = NLM_F_REQUEST | flags;
	nh->nlmsg_seq = seq;
	nh->nlmsg_pid = 0;
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	return NLMSG_ALIGN(nh->nlmsg_len);
}

static size_t put_attr(char *buf, size_t at, const struct nlattr *a)
{
	memcpy(buf + at, a, a->nla_len);
	((struct nlmsghdr *)buf)->nlmsg_len = at + a->nla_len;
	return at + NLA_ALIGN(a->nla_len);
}

/* The next message's error (0 for an ack), reading as needed. */
/* What the dump of one family gathers: the delete requests of the entries the rules match. */
struct clear_ctx {
	int family;
	size_t alen;
	const struct ct_rule *rules;
	uint32_t nrules;
	char *pending;
	size_t pending_len, pending_cap;
};

static int gather_match(const struct nlmsghdr *nh, void *arg)
{
	struct clear_ctx *c = arg;
	struct ct_entry e;
	char req[512];
	size_t at;

	if (entry_of(nh, c->family, &e) != 0)
		return 0;
	if (!entry_matches(c->rules, c->nrules, &e, c->alen))
		return 0;
	if (e.orig->nla_len + (e.zone ? e.zone->nla_len : 0) + 64 > sizeof(req))
		return 0;
	at = put_header(req, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, c->family, 0);
	at = put_attr(req, at, e.orig);
	if (e.zone)
		at = put_attr(req, at, e.zone);
	if (c->pending_len + at > c->pending_cap) {
		size_t cap = c->pending_cap ? c->pending_cap * 2 : 16384;
		char *p = realloc(c->pending, cap);

		if (!p)
			return -ENOMEM;
		c->pending = p;
		c->pending_cap = cap;
	}
	memcpy(c->pending + c->pending_len, req, at);
	c->pending_len += at;
	return 0;
}

/*
 * Dumps one family and deletes what the rules match. Matches are gathered
 * as ready-made delete requests in `pending` and sent after NLMSG_DONE: a
 * socket in the middle of a dump takes no other request.
 */
static int clear_family(int fd, int family, const struct ct_rule *rules, uint32_t nrules, uint32_t *deleted,
			char *err, size_t err_len)
{
	struct clear_ctx c = { .family = family, .alen = addr_len(family), .rules = rules, .nrules = nrules };
	char *buf = malloc(NL_RECV_BUF);
	uint32_t seq = (uint32_t)time(NULL);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = nl_dump(fd, buf, put_header(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, seq), seq, buf, gather_match, &c,
		      "conntrack dump", err, err_len);
	for (size_t at = 0; ret == 0 && at < c.pending_len;) {
		struct nlmsghdr *nh = (struct nlmsghdr *)(c.pending + at);
		int r;

		nh->nlmsg_seq = ++seq;
		if (send(fd, nh, nh->nlmsg_len, 0) < 0) {
			ret = -errno;
			set_err(err, err_len, "conntrack delete: %s", strerror(errno));
			break;
		}
		r = nl_read_ack(fd, buf, seq);
		/* ENOENT: the entry timed out or was deleted meanwhile, which is the goal. */
		if (r == 0)
			(*deleted)++;
		else if (r != -ENOENT) {
			ret = r;
			set_err(err, err_len, "conntrack delete: %s", strerror(-r));
			break;
		}
		at += NLMSG_ALIGN(nh->nlmsg_len);
	}
	free(c.pending);
	free(buf);
	return ret;
}

/* One rule per line: "PROTO ADDR PORT [KEEP...]", space separated, addresses of `family`. */
static int parse_rules(const char *text, int family, struct ct_rule **out, uint32_t *count, char *err, size_t err_len)
{
	char *copy = strdup(text), *save = NULL;
	struct ct_rule *rules = NULL;
	uint32_t n = 0, cap = 0;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		uint32_t words = 1;
		for (const char *c = line; *c; c++)
			words += *c == ' ';
		char *wsave = NULL;
		char *proto = strtok_r(line, " ", &wsave), *addr = strtok_r(NULL, " ", &wsave), *port = strtok_r(NULL, " ", &wsave);
		struct ct_rule r = { 0 };

		if (!proto || !addr || !port || inet_pton(family, addr, r.addr) != 1 || n >= MAX_RULES) {
			set_err(err, err_len, "conntrack rule %u: cannot read it", n + 1);
			ret = -EINVAL;
			break;
		}
		r.proto = (uint8_t)atoi(proto);
		r.port = (uint16_t)atoi(port);
		r.keep = calloc(words, 16);
		if (!r.keep) {
			ret = -ENOMEM;
			break;
		}
		for (char *k = strtok_r(NULL, " ", &wsave); k; k = strtok_r(NULL, " ", &wsave))
			if (inet_pton(family, k, r.keep[r.nkeep]) == 1)
				r.nkeep++;
		if (n == cap) {
			struct ct_rule *p = realloc(rules, (cap = cap ? cap * 2 : 16) * sizeof(*rules));

			if (!p) {
				free(r.keep);
				ret = -ENOMEM;
				break;
			}
			rules = p;
		}
		rules[n++] = r;
	}
	free(copy);
	*out = rules;
	*count = n;
	return ret;
}

static void free_rules(struct ct_rule *rules, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(rules[i].keep);
	free(rules);
}

/*
 * Deletes the conntrack entries of `family` (4 or 6) that the rules match
 * (see parse_rules; protocols are IANA numbers). *deleted gets the count.
 * 0 or -errno, with the step in `err`.
 */
int bpx_ct_clear(int family, const char *rules_text, uint32_t *deleted, char *err, size_t err_len)
{
	int af = family == 6 ? AF_INET6 : AF_INET;
	struct ct_rule *rules = NULL;
	uint32_t nrules = 0;
	int fd, ret;

	*deleted = 0;
	ret = parse_rules(rules_text, af, &rules, &nrules, err, err_len);
	if (ret != 0 || nrules == 0)
		goto out;
	qsort(rules, nrules, sizeof(*rules), rule_cmp);
	fd = nl_open(NETLINK_NETFILTER, "conntrack", err, err_len);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	ret = clear_family(fd, af, rules, nrules, deleted, err, err_len);
	close(fd);
out:
	free_rules(rules, nrules);
	return ret;
}
