// SPDX-License-Identifier: Apache-2.0
/* See netns.h. */
#define _GNU_SOURCE
#include "netns.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int netns_enter(const char *path, struct netns_visit *v, char *err, size_t err_len)
{
	int ret;

	v->home = v->target = -1;
	if (!path || !*path)
		return 0;
	v->home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (v->home < 0) {
		ret = -errno;
		set_err(err, err_len, "open this thread's network namespace: %s", strerror(errno));
		return ret;
	}
	v->target = open(path, O_RDONLY | O_CLOEXEC);
	if (v->target < 0 || setns(v->target, CLONE_NEWNET)) {
		ret = -errno;
		set_err(err, err_len, "enter the network namespace %s: %s", path, strerror(errno));
		if (v->target >= 0)
			close(v->target);
		close(v->home);
		v->home = v->target = -1;
		return ret;
	}
	return 0;
}

void netns_leave(struct netns_visit *v)
{
	/* The Node main thread must never stay in a pod's namespace: every
	 * socket it opened afterwards would land there. Failing to go back
	 * (it cannot, with an fd of our own namespace in hand) ends the process. */
	if (v->target >= 0 && setns(v->home, CLONE_NEWNET))
		abort();
	if (v->target >= 0)
		close(v->target);
	if (v->home >= 0)
		close(v->home);
	v->home = v->target = -1;
}
