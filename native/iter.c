// SPDX-License-Identifier: Apache-2.0
/*
 * Runs a BPF iterator program once, in a given network namespace. See
 * bpfproxy.h.
 *
 * A socket iterator walks the sockets of the network namespace its fd was
 * created in (bpf_iter_create takes current's netns), not those of every
 * namespace. Pods have their own namespaces, so the caller names each one:
 * this thread enters it (netns.c), creates the iterator, and comes back
 * before reading, all inside one FFI call so no JavaScript runs meanwhile.
 */
#define _GNU_SOURCE
#include "bpfproxy.h"
#include "netns.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

/* Creates the iterator fd for prog_fd, inside netns_path when one is given. */
static int iter_create_in(int prog_fd, const char *netns_path, char *err, size_t err_len)
{
	struct netns_visit visit;
	int link_fd, ret;

	ret = netns_enter(netns_path, &visit, err, err_len);
	if (ret)
		return ret;
	link_fd = bpf_link_create(prog_fd, 0, BPF_TRACE_ITER, NULL);
	if (link_fd < 0) {
		ret = link_fd;
		set_err(err, err_len, "create the iterator link: %s", strerror(-ret));
	} else {
		ret = bpf_iter_create(link_fd);
		if (ret < 0)
			set_err(err, err_len, "create the iterator: %s", strerror(-ret));
		close(link_fd);	/* the iterator fd holds the link */
	}
	netns_leave(&visit);
	return ret;
}

int bpx_iter_run(int prog_fd, const char *netns_path, void *out, size_t out_len, uint64_t *total, char *err,
		 size_t err_len)
{
	char scratch[4096];
	size_t used = 0;
	ssize_t n;
	int fd;

	*total = 0;
	fd = iter_create_in(prog_fd, netns_path, err, err_len);
	if (fd < 0)
		return fd;
	/* Read to EOF: the program runs as the kernel fills the reads. What
	 * does not fit in `out` is still read (and counted), so every socket is
	 * visited. */
	for (;;) {
		char *dst = used < out_len ? (char *)out + used : scratch;
		size_t room = used < out_len ? out_len - used : sizeof(scratch);

		n = read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*total += (uint64_t)n;
		if (used < out_len)
			used += (size_t)n;
	}
	if (n < 0) {
		int ret = -errno;

		set_err(err, err_len, "read the iterator: %s", strerror(errno));
		close(fd);
		return ret;
	}
	close(fd);
	return 0;
}
