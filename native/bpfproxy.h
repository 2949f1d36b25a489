/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thin C layer between the TypeScript control plane (through koffi) and
 * libbpf. It exists so that no libbpf options struct is ever laid out by
 * hand in TypeScript: the compiler lays them out for the installed libbpf.
 * Every function returns 0 or a negative errno (or a pointer / NULL) and, where
 * there is more to say, writes a message into the caller's `err` buffer.
 */
#ifndef BPFPROXY_NATIVE_H
#define BPFPROXY_NATIVE_H

#include <stddef.h>
#include <stdint.h>

struct bpf_object;

/* Objects ------------------------------------------------------------------ */

/* Opens and loads a BPF object, pinning its maps by name under pin_dir and
 * reusing maps already pinned there. `sizes` is "map=N,map=N": max_entries
 * for new maps. A pinned map keeps its size (it cannot be resized in place);
 * that and anything else worth telling lands in `notes`. NULL on failure. */
struct bpf_object *bpx_object_load(const char *path, const char *pin_dir, const char *sizes,
				   char *notes, size_t notes_len, char *err, size_t err_len);
/* Opens without loading: enough to read BTF, no privileges needed. */
struct bpf_object *bpx_object_open(const char *path, char *err, size_t err_len);
void bpx_object_close(struct bpf_object *obj);
int bpx_object_map_fd(struct bpf_object *obj, const char *name);
int bpx_object_prog_fd(struct bpf_object *obj, const char *name);
/* "name=expected_attach_type;..." for every program, as libbpf derived it from the SEC() names. */
int bpx_object_programs(struct bpf_object *obj, char *out, size_t out_len);

/* "size=N;member:offset:size;..." for a struct or union in the object's BTF. */
int bpx_btf_struct(struct bpf_object *obj, const char *name, char *out, size_t out_len);
/* "NAME=value;..." for an enum in the object's BTF. */
int bpx_btf_enum(struct bpf_object *obj, const char *name, char *out, size_t out_len);

/* libbpf's messages (warnings, verifier logs) since the last call. */
size_t bpx_log_take(char *out, size_t out_len);

/* Maps --------------------------------------------------------------------- */

/* type, key_size, value_size, max_entries, map_flags, id */
int bpx_map_info(int fd, uint32_t out[6]);
int bpx_map_update_batch(int fd, const void *keys, const void *values, uint32_t *count, uint64_t elem_flags);
int bpx_map_delete_batch(int fd, const void *keys, uint32_t *count);
/* Dumps up to `max` entries (whole map when it fits). For per-CPU maps a value
 * is value_size rounded to 8, times the number of possible CPUs. *count gets
 * the number dumped; returns 0, or -ENOSPC when the map held more than max. */
int bpx_map_dump(int fd, void *keys, void *values, uint32_t max, uint32_t *count);
int bpx_num_possible_cpus(void);
/* bpx_map_dump, plus the map's order-independent fingerprint: two 32-bit
 * sums of per-entry hashes (see the C for the hash; the TypeScript side keeps
 * the same sums for what it wrote). Keys and values must be whole 32-bit
 * words (-EINVAL otherwise). Not for per-CPU maps. */
int bpx_map_dump_fp(int fd, void *keys, void *values, uint32_t max, uint32_t *count, uint32_t fp_out[2]);

/* The control plane's flat tables, in bulk (native/flat.c) ------------------ */

/* A first sync's batch of n entries (keys of kw words, values of vw, one
 * owner each) registered as the hash index over itself, as FlatIndex.claimAt
 * does entry by entry (src/util/flat-index.ts): an entry whose key is already
 * registered is left out and the entries after it move down, so the kept
 * ones are 0..kept-1; each kept one gets its bucket (linear probing, EMPTY -1,
 * buckets mask + 1 long and empty on entry) and used[slot] = 1, and is added
 * to the fingerprint fp_out (fingerprint.ts). Returns kept. */
uint32_t bpx_flat_adopt(uint32_t *keys, uint32_t kw, uint32_t *values, uint32_t vw, uint32_t *owners, uint32_t n,
			int32_t *buckets, uint32_t mask, uint8_t *used, uint32_t fp_out[2]);
/* For n entries of `words` (`stride` words apart), the key of kw words at
 * word `off` of each is looked up in the index (keys, buckets, mask) and
 * refs[slot] counted up when found: the references one table's values make
 * to a shared table's keys. */
void bpx_flat_count_refs(const uint32_t *words, uint32_t stride, uint32_t off, uint32_t n, const uint32_t *keys,
			 uint32_t kw, const int32_t *buckets, uint32_t mask, int32_t *refs);
/* Advises the whole 2 MB pages inside [p, p + len) MADV_HUGEPAGE, so their
 * first touch faults 2 MB at once: for big, fresh, not yet touched buffers.
 * 0 or -errno. */
int bpx_advise_huge(void *p, size_t len);

/* Test runs (native/testrun.c) ---------------------------------------------- */

/* Runs a program once or `repeat` times on a packet (BPF_PROG_TEST_RUN).
 * data_out receives the packet as the program left it, up to size_out bytes.
 * out: retval, data_size_out, duration (mean ns per run). 0 or -errno. */
int bpx_prog_test_run(int prog_fd, const void *data_in, uint32_t size_in, void *data_out, uint32_t size_out,
		      uint32_t repeat, uint32_t out[3]);
/* The same in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, kernel >= 5.18):
 * `repeat` frames built from data_in, batch_size (0: the kernel's 64) per
 * batch, each verdict carried out. *wall_ns: the syscall's wall time. 0 or -errno. */
int bpx_prog_test_run_live(int prog_fd, const void *data_in, uint32_t size_in, uint32_t repeat, uint32_t batch_size,
			   uint64_t *wall_ns);

/* Iterators (native/iter.c) ----------------------------------------------- */

/* Runs the iterator program prog_fd once, to EOF, over the network namespace
 * at netns_path (NULL or "": the caller's). Its output goes into out, up to
 * out_len bytes; *total gets the whole output's length. 0 or -errno. */
int bpx_iter_run(int prog_fd, const char *netns_path, void *out, size_t out_len, uint64_t *total, char *err,
		 size_t err_len);

/* Attachments, datapath objects and device hooks (native/attach.c) -------- */

/* Device links are pinned; a pinned link of the same device and hook gets the
 * new program through bpf_link_update (returns 1), else a link is created and
 * pinned over link_path (returns 0). ifindex is of the caller's network
 * namespace. Errors: -errno, with the step in `err`. */

/* Attaches prog_fd to the cgroup through a bpf_link pinned at link_path. When
 * a link is already pinned there for the same cgroup and attach type, its
 * program is replaced atomically (bpf_link_update): no moment without a
 * program. Returns 1 when a link was replaced, 0 when created. */
int bpx_cgroup_link(int prog_fd, const char *cgroup_path, int attach_type, const char *link_path,
		    char *err, size_t err_len);

enum bpx_xdp_mode {
	BPX_XDP_NATIVE = 1,	/* XDP_FLAGS_DRV_MODE */
	BPX_XDP_GENERIC = 2,	/* XDP_FLAGS_SKB_MODE */
};

/* keep_mode: a pinned link of this device is updated in whatever mode it runs
 * (restart without a gap); otherwise a link of the other mode is detached
 * first, since the kernel runs one mode per device. *mode_out: the mode in use. */
int bpx_xdp_link(int prog_fd, int ifindex, int mode, int keep_mode, const char *link_path, int *mode_out,
		 char *err, size_t err_len);
/* tcx (kernel >= 6.6): BPF_TCX_INGRESS / BPF_TCX_EGRESS links. */
int bpx_tcx_link(int prog_fd, int ifindex, int egress, const char *link_path, char *err, size_t err_len);
/* clsact filter (direct action) at a fixed handle and priority, replaced in
 * place when present (returns 1). Not a link: it outlives every fd, so the
 * caller records it. *prog_id: the program now attached. */
int bpx_tc_filter(int prog_fd, int ifindex, int egress, uint32_t handle, uint32_t priority, uint32_t *prog_id,
		  char *err, size_t err_len);
/* 0 also when the filter, its qdisc or its device is gone already. */
int bpx_tc_filter_remove(int ifindex, int egress, uint32_t handle, uint32_t priority);

/* link id, program id, link type, ifindex (XDP, tcx; else 0) of a pinned link. */
int bpx_pinned_link_info(const char *link_path, uint32_t out[4]);
/* Detaches a pinned link now (BPF_LINK_DETACH), whoever else holds an fd to
 * it: unpinning alone detaches only when the pin was the last reference. */
int bpx_link_detach_pinned(const char *link_path);

/* A hash map of the loader's own records (bpffs holds no regular files), pinned
 * at path: opened when pinned with this layout, created and pinned when not. */
int bpx_state_map(const char *path, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
		  char *err, size_t err_len);
/* "name;name;..." of the object's maps that are pinned by name. */
int bpx_object_pinned_maps(struct bpf_object *obj, char *out, size_t out_len);

#endif
