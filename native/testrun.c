// SPDX-License-Identifier: Apache-2.0
/* BPF_PROG_TEST_RUN for the packet tests and `make bench`. See bpfproxy.h. */
#include "bpfproxy.h"

#include <bpf/bpf.h>

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
