// SPDX-License-Identifier: Apache-2.0
/*
 * Attachments (XDP, tcx, clsact, cgroup), the record of clsact filters, and
 * the listing of an object's pinned maps: see the "Attachments, datapath
 * objects and device hooks" section of bpfproxy.h. Links are pinned so the
 * datapath outlives the proxy; a pinned link of the same device (or cgroup)
 * and hook gets the new program with bpf_link_update, so a restart never
 * leaves a moment without a program.
 */
#include "bpfproxy.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/*
 * Debian 12's UAPI headers are 6.1's: they predate tcx (6.6). The numbers are
 * UAPI, stable from 6.6 on. In struct bpf_link_info a tcx link reports
 * { ifindex, attach_type } in the union that starts right after the common
 * { type, id, prog_id } header, where an XDP link reports { ifindex }.
 */
#define TCX_INGRESS 46
#define TCX_EGRESS 47
#define LINK_TYPE_TCX 11

struct tcx_link_view {
	__u32 ifindex;
	__u32 attach_type;
};

/* ---- Pinned links ------------------------------------------------------------ */

static int link_info(int lfd, struct bpf_link_info *info)
{
	uint32_t len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(lfd, info, &len);
}

/* Pins lfd beside link_path, then renames it over: an old link pinned there
 * is released only once the new one is attached. bpffs refuses dots in names. */
static int pin_over(int lfd, const char *link_path, char *err, size_t err_len)
{
	char tmp[4096];
	int ret;

	snprintf(tmp, sizeof(tmp), "%s-next", link_path);
	unlink(tmp);
	ret = bpf_obj_pin(lfd, tmp);
	if (!ret && rename(tmp, link_path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		set_err(err, err_len, "pin link %s: %s", link_path, strerror(-ret));
	}
	return ret;
}

static int update_link(int lfd, int prog_fd, const char *link_path, char *err, size_t err_len)
{
	int ret = bpf_link_update(lfd, prog_fd, NULL);

	if (ret)
		set_err(err, err_len, "replace the program of link %s: %s", link_path, strerror(-ret));
	return ret ? ret : 1;
}

int bpx_pinned_link_info(const char *link_path, uint32_t out[4])
{
	struct bpf_link_info info;
	int lfd = bpf_obj_get(link_path), ret;

	if (lfd < 0)
		return -errno;
	ret = link_info(lfd, &info);
	close(lfd);
	if (ret)
		return ret;
	out[0] = info.id;
	out[1] = info.prog_id;
	out[2] = info.type;
	/* XDP and tcx: the device; 0 for other kinds. */
	out[3] = info.type == BPF_LINK_TYPE_XDP || info.type == LINK_TYPE_TCX ? info.xdp.ifindex : 0;
	return 0;
}

int bpx_link_detach_pinned(const char *link_path)
{
	int lfd = bpf_obj_get(link_path), ret;

	if (lfd < 0)
		return -errno;
	ret = bpf_link_detach(lfd);
	close(lfd);
	return ret;
}

/* ---- XDP ---------------------------------------------------------------------- */

/* The mode (BPX_XDP_NATIVE / BPX_XDP_GENERIC) prog_id runs in on ifindex, or 0. */
static int xdp_mode_of(int ifindex, uint32_t prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	if (bpf_xdp_query(ifindex, 0, &q))
		return 0;
	if (q.drv_prog_id == prog_id)
		return BPX_XDP_NATIVE;
	if (q.skb_prog_id == prog_id)
		return BPX_XDP_GENERIC;
	return 0;
}

int bpx_xdp_link(int prog_fd, int ifindex, int mode, int keep_mode, const char *link_path, int *mode_out,
		 char *err, size_t err_len)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	struct bpf_link_info info;
	int lfd, ret;

	lfd = bpf_obj_get(link_path);
	if (lfd >= 0) {
		if (!link_info(lfd, &info) && info.type == BPF_LINK_TYPE_XDP && info.xdp.ifindex == (__u32)ifindex) {
			int cur = xdp_mode_of(ifindex, info.prog_id);

			if (cur && (keep_mode || cur == mode)) {
				ret = update_link(lfd, prog_fd, link_path, err, err_len);
				close(lfd);
				*mode_out = cur;
				return ret;
			}
			/* Another mode was asked for. The kernel refuses native and
			 * generic XDP on one device at once ("can't be active at the
			 * same time", EEXIST), so the old link goes first: a gap the
			 * caller logs. */
			bpf_link_detach(lfd);
		}
		close(lfd);
	}
	opts.flags = mode == BPX_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	lfd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	if (lfd < 0) {
		set_err(err, err_len, "create %s XDP link: %s", mode == BPX_XDP_NATIVE ? "native" : "generic",
			strerror(-lfd));
		return lfd;
	}
	ret = pin_over(lfd, link_path, err, err_len);
	close(lfd);
	*mode_out = mode;
	return ret;
}

/* ---- tcx ---------------------------------------------------------------------- */

int bpx_tcx_link(int prog_fd, int ifindex, int egress, const char *link_path, char *err, size_t err_len)
{
	uint32_t attach_type = egress ? TCX_EGRESS : TCX_INGRESS;
	struct bpf_link_info info;
	int lfd, ret;

	lfd = bpf_obj_get(link_path);
	if (lfd >= 0) {
		const struct tcx_link_view *tcx = (const void *)&info.xdp;

		if (!link_info(lfd, &info) && info.type == LINK_TYPE_TCX && tcx->ifindex == (__u32)ifindex &&
		    tcx->attach_type == attach_type) {
			ret = update_link(lfd, prog_fd, link_path, err, err_len);
			close(lfd);
			return ret;
		}
		/* A link of a device that is gone (or was recreated): replaced by the rename. */
		close(lfd);
	}
	lfd = bpf_link_create(prog_fd, ifindex, attach_type, NULL);
	if (lfd < 0) {
		set_err(err, err_len, "create tcx %s link: %s", egress ? "egress" : "ingress", strerror(-lfd));
		return lfd;
	}
	ret = pin_over(lfd, link_path, err, err_len);
	close(lfd);
	return ret;
}

/* ---- cgroup ------------------------------------------------------------------- */

int bpx_cgroup_link(int prog_fd, const char *cgroup_path, int attach_type, const char *link_path, char *err,
		    size_t err_len)
{
	struct bpf_link_info info;
	struct stat st;
	int cg, lfd, ret;

	cg = open(cgroup_path, O_RDONLY | O_DIRECTORY);
	if (cg < 0 || fstat(cg, &st)) {
		ret = -errno;
		set_err(err, err_len, "open cgroup %s: %s", cgroup_path, strerror(-ret));
		if (cg >= 0)
			close(cg);
		return ret;
	}
	lfd = bpf_obj_get(link_path);
	if (lfd >= 0) {
		/* On cgroup v2 the cgroup id is the directory's inode number. */
		if (!link_info(lfd, &info) && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == st.st_ino &&
		    info.cgroup.attach_type == (uint32_t)attach_type) {
			ret = update_link(lfd, prog_fd, link_path, err, err_len);
			close(lfd);
			close(cg);
			return ret;
		}
		/* A link of another cgroup or hook: replaced by the rename. */
		close(lfd);
	}
	lfd = bpf_link_create(prog_fd, cg, attach_type, NULL);
	close(cg);
	if (lfd < 0) {
		set_err(err, err_len, "attach to cgroup %s (attach type %d): %s", cgroup_path, attach_type,
			strerror(-lfd));
		return lfd;
	}
	ret = pin_over(lfd, link_path, err, err_len);
	close(lfd);
	return ret;
}

/* ---- clsact ------------------------------------------------------------------- */

int bpx_tc_filter(int prog_fd, int ifindex, int egress, uint32_t handle, uint32_t priority, uint32_t *prog_id,
		  char *err, size_t err_len)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, query, .handle = handle, .priority = priority);
	LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE, .handle = handle,
		    .priority = priority);
	bool existed;
	int ret;

	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST) {
		set_err(err, err_len, "create the clsact qdisc: %s", strerror(-ret));
		return ret;
	}
	existed = bpf_tc_query(&hook, &query) == 0;
	ret = bpf_tc_attach(&hook, &opts);
	if (ret) {
		set_err(err, err_len, "attach clsact %s filter (handle %u, priority %u): %s", egress ? "egress" : "ingress",
			handle, priority, strerror(-ret));
		return ret;
	}
	*prog_id = opts.prog_id;
	return existed ? 1 : 0;
}

int bpx_tc_filter_remove(int ifindex, int egress, uint32_t handle, uint32_t priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	int ret = bpf_tc_detach(&hook, &opts);

	/* Gone already (the device, the qdisc or the filter) is what we wanted.
	 * The clsact qdisc itself stays: other tools' filters may sit on it. */
	return ret == -ENOENT || ret == -ENODEV || ret == -EINVAL ? 0 : ret;
}

/* ---- State maps and object listing ---------------------------------------------- */

int bpx_state_map(const char *path, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  char *err, size_t err_len)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int fd = bpf_obj_get(path), ret;

	if (fd >= 0) {
		ret = bpf_obj_get_info_by_fd(fd, &info, &len);
		if (!ret && info.type == BPF_MAP_TYPE_HASH && info.key_size == key_size && info.value_size == value_size)
			return fd;
		close(fd);
		set_err(err, err_len, "pinned map %s has another layout (key %u value %u, this build wants key %u value %u)",
			path, info.key_size, info.value_size, key_size, value_size);
		return ret ? ret : -EINVAL;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, name, key_size, value_size, max_entries, NULL);
	if (fd < 0) {
		set_err(err, err_len, "create map %s: %s", name, strerror(-fd));
		return fd;
	}
	ret = bpf_obj_pin(fd, path);
	if (ret) {
		close(fd);
		set_err(err, err_len, "pin map %s: %s", path, strerror(-ret));
		return ret;
	}
	return fd;
}

int bpx_object_pinned_maps(struct bpf_object *obj, char *out, size_t out_len)
{
	struct bpf_map *map;
	size_t used = 0;

	out[0] = 0;
	bpf_object__for_each_map(map, obj) {
		int n;

		if (!bpf_map__pin_path(map))
			continue;
		n = snprintf(out + used, out_len - used, "%s%s", used ? ";" : "", bpf_map__name(map));
		if (n < 0 || (size_t)n >= out_len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}
