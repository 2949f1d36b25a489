// SPDX-License-Identifier: Apache-2.0
/* See xdpfeatures.h. Generic netlink, two requests: the "netdev" family's id,
 * then NETDEV_CMD_DEV_GET for one ifindex, or as a dump for every device. */
#include "xdpfeatures.h"
#include "netlink.h"
#include "util.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* From the kernel's include/uapi/linux/netdev.h (6.3+; Debian 12's UAPI headers are 6.1's). */
#define BPX_NETDEV_CMD_DEV_GET 1
#define BPX_NETDEV_A_DEV_IFINDEX 1
#define BPX_NETDEV_A_DEV_XDP_FEATURES 3

struct gnl_req {
	struct nlmsghdr nh;
	struct genlmsghdr g;
	char attrs[64];
};

/* Appends one attribute; returns the message's new length. */
static size_t put_attr(struct gnl_req *r, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
	return r->nh.nlmsg_len;
}

/* Sends a request and finds attribute `want` (of at most `len` bytes) in the one reply. */
static int gnl_get(int fd, uint16_t family, uint8_t cmd, uint16_t attr, const void *val, uint16_t val_len,
		   uint16_t want, void *out, size_t len, char *buf)
{
	static uint32_t seq;
	struct gnl_req r;
	size_t n;

	memset(&r, 0, sizeof(r));
	r.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nh.nlmsg_type = family;
	r.nh.nlmsg_flags = NLM_F_REQUEST;
	r.nh.nlmsg_seq = ++seq;
	r.g.cmd = cmd;
	r.g.version = 1;
	n = put_attr(&r, attr, val, val_len);
	if (send(fd, &r, n, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t got = recv(fd, buf, NL_RECV_BUF, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)got); nh = NLMSG_NEXT(nh, got)) {
			int left;

			if (nh->nlmsg_seq != r.nh.nlmsg_seq)
				continue;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(nh))->error ?: -ENOENT;
			left = (int)nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
			for (struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(nh) + GENL_HDRLEN);
			     left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left;
			     left -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
				if ((a->nla_type & NLA_TYPE_MASK) != want)
					continue;
				if ((size_t)(a->nla_len - NLA_HDRLEN) > len)
					return -EMSGSIZE;
				memcpy(out, (char *)a + NLA_HDRLEN, a->nla_len - NLA_HDRLEN);
				return 0;
			}
			return -ENODATA;
		}
	}
}

/* The "netdev" family's id on fd; -EOPNOTSUPP (before 6.3) or -errno with err set. */
static int netdev_family(int fd, uint16_t *family, char *buf, char *err, size_t err_len)
{
	int ret = gnl_get(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, "netdev", sizeof("netdev"),
			  CTRL_ATTR_FAMILY_ID, family, sizeof(*family), buf);

	if (ret == -ENOENT) {
		set_err(err, err_len, "the kernel has no \"netdev\" generic netlink family (6.3+)");
		return -EOPNOTSUPP;
	}
	if (ret < 0)
		set_err(err, err_len, "resolve the \"netdev\" generic netlink family: %s", strerror(-ret));
	return ret;
}

/* A generic netlink socket and the "netdev" family's id on it; the socket, or -errno (closed) with err set. */
static int netdev_open(uint16_t *family, char *buf, char *err, size_t err_len)
{
	int fd = nl_open(NETLINK_GENERIC, "generic", err, err_len);
	int ret;

	if (fd < 0)
		return fd;
	ret = netdev_family(fd, family, buf, err, err_len);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

struct dump_ctx {
	int32_t *ifindexes;
	uint64_t *features;
	int max;
	int n;
};

/* One device of the dump: its ifindex and features (a device without the attribute: 0). */
static int dump_one(const struct nlmsghdr *nh, void *arg)
{
	struct dump_ctx *c = arg;
	int left = (int)nh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	int64_t ifindex = -1;
	uint64_t features = 0;

	for (const struct nlattr *a = (const struct nlattr *)((const char *)NLMSG_DATA(nh) + GENL_HDRLEN);
	     left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left;
	     left -= NLA_ALIGN(a->nla_len), a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
		uint16_t type = a->nla_type & NLA_TYPE_MASK;
		size_t len = a->nla_len - NLA_HDRLEN;

		if (type == BPX_NETDEV_A_DEV_IFINDEX && len == sizeof(uint32_t))
			ifindex = *(const uint32_t *)((const char *)a + NLA_HDRLEN);
		else if (type == BPX_NETDEV_A_DEV_XDP_FEATURES && len == sizeof(uint64_t))
			memcpy(&features, (const char *)a + NLA_HDRLEN, sizeof(features));
	}
	if (ifindex < 0)
		return 0;
	if (c->n >= c->max)
		return -ENOSPC;
	c->ifindexes[c->n] = (int32_t)ifindex;
	c->features[c->n] = features;
	c->n++;
	return 0;
}

int bpx_xdp_features_all(int32_t *ifindexes, uint64_t *features, int max, char *err, size_t err_len)
{
	static char buf[NL_RECV_BUF];
	struct dump_ctx c = { .ifindexes = ifindexes, .features = features, .max = max };
	struct gnl_req r;
	uint16_t family = 0;
	int fd, ret;

	fd = netdev_open(&family, buf, err, err_len);
	if (fd < 0)
		return fd;
	memset(&r, 0, sizeof(r));
	r.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nh.nlmsg_type = family;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.nh.nlmsg_seq = 1;
	r.g.cmd = BPX_NETDEV_CMD_DEV_GET;
	r.g.version = 1;
	ret = nl_dump(fd, &r, r.nh.nlmsg_len, r.nh.nlmsg_seq, buf, dump_one, &c, "netdev dev-get dump", err, err_len);
	if (ret == -ENOSPC)
		set_err(err, err_len, "netdev dev-get dump: more than %d devices", max);
	if (ret == 0)
		ret = c.n;
	close(fd);
	return ret;
}

int bpx_xdp_features(int ifindex, uint64_t *features, char *err, size_t err_len)
{
	static char buf[NL_RECV_BUF];
	uint16_t family = 0;
	uint32_t idx = (uint32_t)ifindex;
	int fd, ret;

	*features = 0;
	fd = netdev_open(&family, buf, err, err_len);
	if (fd < 0)
		return fd;
	ret = gnl_get(fd, family, BPX_NETDEV_CMD_DEV_GET, BPX_NETDEV_A_DEV_IFINDEX, &idx, sizeof(idx),
		      BPX_NETDEV_A_DEV_XDP_FEATURES, features, sizeof(*features), buf);
	if (ret < 0)
		set_err(err, err_len, "netdev dev-get of ifindex %d: %s", ifindex, strerror(-ret));
	close(fd);
	return ret;
}
