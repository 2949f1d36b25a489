/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entering a network namespace for one step and coming back (native/netns.c).
 * Internal to the shim: a socket iterator and a sock_diag socket both belong
 * to the namespace they are created in, so each is created inside the
 * namespace it must see, and the thread returns before anything else runs.
 */
#ifndef BPFPROXY_NATIVE_NETNS_H
#define BPFPROXY_NATIVE_NETNS_H

#include <stddef.h>

/* A namespace entered and the way back: pass to netns_leave. */
struct netns_visit {
	int home;		/* this thread's namespace before, or -1 */
	int target;		/* the namespace entered, or -1 */
};

/* Enters the namespace at path (NULL or "": stays). 0 or -errno, with the step in err. */
int netns_enter(const char *path, struct netns_visit *v, char *err, size_t err_len);
/* Comes back (aborts the process when it cannot) and closes the fds. */
void netns_leave(struct netns_visit *v);

#endif
