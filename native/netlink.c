// SPDX-License-Identifier: Apache-2.0
/* See netlink.h. */
#include "netlink.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int nl_open(int protocol, const char *what, char *err, size_t err_len)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol), ret;

	if (fd < 0) {
		ret = -errno;
		set_err(err, err_len, "%s netlink socket: %s", what, strerror(-ret));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		ret = -errno;
		set_err(err, err_len, "%s netlink bind: %s", what, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

int nl_dump(int fd, const void *req, size_t len, uint32_t seq, char *buf, nl_msg_fn fn, void *ctx,
	    const char *what, char *err, size_t err_len)
{
	if (send(fd, req, len, 0) < 0) {
		int ret = -errno;

		set_err(err, err_len, "%s request: %s", what, strerror(-ret));
		return ret;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, NL_RECV_BUF, 0);

		if (n < 0) {
			int ret = -errno;

			if (ret == -EINTR)
				continue;
			set_err(err, err_len, "%s: %s", what, strerror(-ret));
			return ret;
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			int ret;

			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				return 0;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				ret = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
				set_err(err, err_len, "%s: %s", what, strerror(-ret));
				return ret;
			}
			ret = fn(nh, ctx);
			if (ret < 0)
				return ret;
		}
	}
}

int nl_read_ack(int fd, char *buf, uint32_t seq)
{
	for (;;) {
		ssize_t n = recv(fd, buf, NL_RECV_BUF, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n))
			if (nh->nlmsg_seq == seq && nh->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
	}
}
