// SPDX-License-Identifier: Apache-2.0
/*
 * Runs a BPF iterator program once, in a given network namespace. See
 * bpfproxy.h.
 *
 * A socket iterator walks the sockets of the network namespace its fd was
 * created in (bpf_iter_create takes current's netns), not those of every
 * namespace. Pods have their own namespaces, so the caller names each one:
 * this thread enters it, creates the iterator, and comes back before
 * reading, all inside one FFI call so no JavaScript runs meanwhile.
 */
#define _GNU_SOURCE
#include "bpfproxy.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

/* Creates the iterator fd for prog_fd, inside netns_path when one is given. */
static int iter_create_in(int prog_fd, const char *netns_path, char *err, size_t err_len)
{
	int home = -1, target = -1, link_fd = -1, iter_fd = -1, ret;

	if (netns_path && *netns_path) {
		home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (home < 0) {
			ret = -errno;
			set_err(err, err_len, "open this thread's network namespace: %s", strerror(errno));
			return ret;
		}
		target = open(netns_path, O_RDONLY | O_CLOEXEC);
		if (target < 0 || setns(target, CLONE_NEWNET)) {
			ret = -errno;
			set_err(err, err_len, "enter the network namespace %s: %s", netns_path, strerror(errno));
			goto out;
		}
	}
	link_fd = bpf_link_create(prog_fd, 0, BPF_TRACE_ITER, NULL);
	if (link_fd < 0) {
		ret = link_fd;
		set_err(err, err_len, "create the iterator link: %s", strerror(-ret));
		goto back;
	}
	iter_fd = bpf_iter_create(link_fd);
	ret = iter_fd;
	if (iter_fd < 0)
		set_err(err, err_len, "create the iterator: %s", strerror(-ret));
back:
	/* The Node main thread must never stay in a pod's namespace: every
	 * socket it opened afterwards would land there. Failing to go back
	 * (it cannot, with an fd of our own namespace in hand) ends the process. */
	if (home >= 0 && target >= 0 && setns(home, CLONE_NEWNET))
		abort();
out:
	if (link_fd >= 0)
		close(link_fd);	/* the iterator fd holds the link */
	if (target >= 0)
		close(target);
	if (home >= 0)
		close(home);
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
