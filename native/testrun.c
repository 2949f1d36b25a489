// SPDX-License-Identifier: Apache-2.0
/* BPF_PROG_TEST_RUN for the packet tests and `make bench`. See bpfproxy.h. */
#include "bpfproxy.h"

#include <bpf/bpf.h>
#include <time.h>

#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif

int bpx_prog_test_run(int prog_fd, const void *data_in, uint32_t size_in, void *data_out, uint32_t size_out,
		      uint32_t repeat, uint32_t out[3])
{
	/* data_size_out carries the buffer's size in: the kernel copies at most
	 * that much and says -ENOSPC when the packet grew past it. */
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_in, .data_size_in = size_in, .data_out = data_out,
		    .data_size_out = size_out, .repeat = repeat);
	int ret = bpf_prog_test_run_opts(prog_fd, &opts);

	out[0] = opts.retval;
	out[1] = opts.data_size_out;
	out[2] = opts.duration;
	return ret;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int bpx_prog_test_run_live(int prog_fd, const void *data_in, uint32_t size_in, uint32_t repeat, uint32_t batch_size,
			   uint64_t *wall_ns)
{
	/* Live frames: the program's verdict is carried out (XDP_REDIRECT
	 * transmits), so the kernel takes no data_out and reports no retval.
	 * The syscall also runs the softirq work its redirects schedule on this
	 * CPU (each batch ends with a flush and local_bh_enable), so its wall
	 * time is what the frames cost end to end here, which the kernel's own
	 * duration (time in the program loop) leaves out. */
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data_in, .data_size_in = size_in, .repeat = repeat,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = batch_size);
	uint64_t t0 = now_ns();
	int ret = bpf_prog_test_run_opts(prog_fd, &opts);

	*wall_ns = now_ns() - t0;
	return ret; /* libbpf 1.x: -errno already */
}
