/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device's XDP features, as the kernel advertises them through the
 * "netdev" generic netlink family (kernel 6.3+), for the local-redirect
 * decision (src/dataplane/bpf/local-endpoints.ts): a veth advertises
 * NETDEV_XDP_ACT_NDO_XMIT exactly when its peer runs NAPI (an XDP program or
 * GRO on the peer), which is when a frame redirected into it is delivered.
 */
#ifndef BPFPROXY_NATIVE_XDPFEATURES_H
#define BPFPROXY_NATIVE_XDPFEATURES_H

#include <stddef.h>
#include <stdint.h>

/* The NETDEV_XDP_ACT_* bits of the device `ifindex` of the calling thread's
 * namespace. 0, -EOPNOTSUPP when the kernel has no "netdev" family (before
 * 6.3), or another -errno, with the step in err. */
int bpx_xdp_features(int ifindex, uint64_t *features, char *err, size_t err_len);

/* Every device of the namespace at once (one dump): up to `max` ifindexes and
 * their NETDEV_XDP_ACT_* bits. The count, -EOPNOTSUPP before 6.3, -ENOSPC
 * past `max`, or another -errno, with the step in err. */
int bpx_xdp_features_all(int32_t *ifindexes, uint64_t *features, int max, char *err, size_t err_len);

#endif
