// SPDX-License-Identifier: Apache-2.0
/* See bpfproxy.h. Built by `make native` into build/native/libbpfproxy.so. */
#include "bpfproxy.h"
#include "hashes.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* ---- libbpf's messages, kept for the caller to log. ---------------------- */

static char log_buf[64 * 1024];
static size_t log_len;

static int log_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (log_len >= sizeof(log_buf) - 1)
		return 0;
	n = vsnprintf(log_buf + log_len, sizeof(log_buf) - log_len, fmt, ap);
	if (n > 0)
		log_len += (size_t)n < sizeof(log_buf) - log_len ? (size_t)n : sizeof(log_buf) - log_len - 1;
	return n;
}

__attribute__((constructor)) static void init_print(void)
{
	libbpf_set_print(log_print);
}

size_t bpx_log_take(char *out, size_t out_len)
{
	size_t n = log_len < out_len - 1 ? log_len : out_len - 1;

	memcpy(out, log_buf, n);
	out[n] = 0;
	log_len = 0;
	return n;
}

/* ---- Objects -------------------------------------------------------------- */

/* The requested max_entries for `name` in "a=1,b=2", or 0. */
static uint32_t size_for(const char *sizes, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = sizes;

	while (p && *p) {
		if (!strncmp(p, name, nlen) && p[nlen] == '=')
			return (uint32_t)strtoul(p + nlen + 1, NULL, 10);
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* Makes a map about to be created fit what is pinned already, or explains
 * why it cannot. Returns 0 or -errno. */
static int check_pinned(struct bpf_map *map, char *notes, size_t notes_len, char *err, size_t err_len)
{
	const char *path = bpf_map__pin_path(map);
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int fd, ret;

	if (!path)
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0; /* not pinned yet: libbpf creates and pins it */
	ret = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (ret)
		return ret;
	if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map)) {
		set_err(err, err_len,
			"pinned map %s has another layout (type %u key %u value %u, this build wants type %u key %u value %u): "
			"a layout change must come with a new map name; run `bpfproxy cleanup` to remove the old maps",
			path, info.type, info.key_size, info.value_size, bpf_map__type(map), bpf_map__key_size(map),
			bpf_map__value_size(map));
		return -EINVAL;
	}
	if (info.max_entries != bpf_map__max_entries(map)) {
		append(notes, notes_len,
		       "map %s: keeping the pinned size %u instead of %u (a pinned map cannot be resized in place: "
		       "`bpfproxy cleanup` then a restart applies the new size);", /* ';' ends a note */
		       bpf_map__name(map), info.max_entries, bpf_map__max_entries(map));
		bpf_map__set_max_entries(map, info.max_entries);
	}
	if (info.map_flags != bpf_map__map_flags(map))
		bpf_map__set_map_flags(map, info.map_flags);
	return 0;
}

struct bpf_object *bpx_object_load(const char *path, const char *pin_dir, const char *sizes, char *notes,
				   size_t notes_len, char *err, size_t err_len)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct bpf_object *obj;
	struct bpf_map *map;
	int ret;

	if (notes && notes_len)
		notes[0] = 0;
	obj = bpf_object__open_file(path, &opts);
	if (!obj) {
		ret = -errno;
		set_err(err, err_len, "open %s: %s", path, strerror(-ret));
		errno = -ret;
		return NULL;
	}
	bpf_object__for_each_map(map, obj) {
		uint32_t want = size_for(sizes, bpf_map__name(map));

		/* Arrays too: the Maglev array is sized at load (--bpf-lb-maglev-map-max). */
		if (want && bpf_map__type(map) != BPF_MAP_TYPE_PERCPU_ARRAY)
			bpf_map__set_max_entries(map, want);
		ret = check_pinned(map, notes, notes_len, err, err_len);
		if (ret) {
			bpf_object__close(obj);
			errno = -ret;
			return NULL;
		}
	}
	ret = bpf_object__load(obj);
	if (ret) {
		set_err(err, err_len, "load %s: %s (the verifier's or libbpf's log follows in the proxy's log)", path,
			strerror(-ret));
		bpf_object__close(obj);
		errno = -ret;
		return NULL;
	}
	return obj;
}

struct bpf_object *bpx_object_open(const char *path, char *err, size_t err_len)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj)
		set_err(err, err_len, "open %s: %s", path, strerror(errno));
	return obj;
}

void bpx_object_close(struct bpf_object *obj)
{
	bpf_object__close(obj);
}

int bpx_object_map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, name);

	return map ? bpf_map__fd(map) : -ENOENT;
}

int bpx_object_prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);

	return prog ? bpf_program__fd(prog) : -ENOENT;
}

int bpx_object_programs(struct bpf_object *obj, char *out, size_t out_len)
{
	struct bpf_program *prog;
	bool first = true;

	out[0] = 0;
	bpf_object__for_each_program(prog, obj) {
		append(out, out_len, "%s%s=%d", first ? "" : ";", bpf_program__name(prog),
		       (int)bpf_program__expected_attach_type(prog));
		first = false;
	}
	return 0;
}

int bpx_btf_struct(struct bpf_object *obj, const char *name, char *out, size_t out_len)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_member *m;
	const struct btf_type *t;
	int id, i;

	if (!btf)
		return -ENODATA;
	id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (id < 0)
		id = btf__find_by_name_kind(btf, name, BTF_KIND_UNION);
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	out[0] = 0;
	append(out, out_len, "size=%u", t->size);
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		long sz = btf__resolve_size(btf, m->type);

		append(out, out_len, ";%s:%u:%ld", btf__name_by_offset(btf, m->name_off),
		       btf_member_bit_offset(t, i) / 8, sz < 0 ? 0 : sz);
	}
	return 0;
}

int bpx_btf_enum(struct bpf_object *obj, const char *name, char *out, size_t out_len)
{
	struct btf *btf = bpf_object__btf(obj);
	const struct btf_enum *e;
	const struct btf_type *t;
	int id, i;

	if (!btf)
		return -ENODATA;
	id = btf__find_by_name_kind(btf, name, BTF_KIND_ENUM);
	if (id < 0)
		return -ENOENT;
	t = btf__type_by_id(btf, id);
	out[0] = 0;
	e = btf_enum(t);
	for (i = 0; i < btf_vlen(t); i++, e++)
		append(out, out_len, "%s%s=%d", i ? ";" : "", btf__name_by_offset(btf, e->name_off), e->val);
	return 0;
}

/* ---- Maps --------------------------------------------------------------------- */

int bpx_map_info(int fd, uint32_t out[6])
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	int ret = bpf_obj_get_info_by_fd(fd, &info, &len);

	if (ret)
		return ret;
	out[0] = info.type;
	out[1] = info.key_size;
	out[2] = info.value_size;
	out[3] = info.max_entries;
	out[4] = info.map_flags;
	out[5] = info.id;
	return 0;
}

int bpx_map_update_batch(int fd, const void *keys, const void *values, uint32_t *count, uint64_t elem_flags)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = elem_flags);

	return bpf_map_update_batch(fd, keys, values, count, &opts);
}

int bpx_map_delete_batch(int fd, const void *keys, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);

	return bpf_map_delete_batch(fd, keys, count, &opts);
}

int bpx_num_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}

int bpx_map_dump(int fd, void *keys, void *values, uint32_t max, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t info[6], vsize, done = 0;
	/* Batch positions: a 4-byte bucket index for hash maps, a key for arrays. */
	char in_batch[64] = {}, out_batch[64] = {};
	int ret, ncpu;
	bool first = true;

	ret = bpx_map_info(fd, info);
	if (ret)
		return ret;
	vsize = info[2];
	if (info[0] == BPF_MAP_TYPE_PERCPU_ARRAY || info[0] == BPF_MAP_TYPE_PERCPU_HASH ||
	    info[0] == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
		ncpu = libbpf_num_possible_cpus();
		if (ncpu < 0)
			return ncpu;
		vsize = ((vsize + 7) & ~7u) * (uint32_t)ncpu;
	}
	*count = 0;
	for (;;) {
		uint32_t n = max - done;

		if (n == 0) {
			/* The caller's buffers are full: is there more? Probe one entry
			 * into buffers of the map's own key and value size. */
			uint32_t one = 1;
			void *k = malloc(info[1]), *v = malloc(vsize);

			if (!k || !v) {
				free(k);
				free(v);
				return -ENOMEM;
			}
			ret = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch, k, v, &one, &opts);
			free(k);
			free(v);
			if (ret == -ENOENT && one == 0)
				break;
			return -ENOSPC;
		}
		ret = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch, (char *)keys + (size_t)done * info[1],
					   (char *)values + (size_t)done * vsize, &n, &opts);
		if (ret && ret != -ENOENT)
			return ret;
		done += n;
		if (ret == -ENOENT)
			break;
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
	*count = done;
	return 0;
}


/*
 * The fingerprint of a map's contents that does not depend on the order a
 * dump returns them in: two 32-bit sums, over the entries, of a hash of each
 * entry's key and value words (native/hashes.h: murmur3's mixing, two seeds). The control
 * plane keeps the same sums for what it wrote (src/dataplane/bpf/fingerprint.ts,
 * which must stay identical to this), so a resync compares two numbers
 * instead of every entry. Keys and values are whole 32-bit words here.
 */
int bpx_map_dump_fp(int fd, void *keys, void *values, uint32_t max, uint32_t *count, uint32_t fp_out[2])
{
	uint32_t info[6], kw, vw, i, a = 0, b = 0;
	int ret;

	ret = bpx_map_dump(fd, keys, values, max, count);
	if (ret)
		return ret;
	ret = bpx_map_info(fd, info);
	if (ret)
		return ret;
	if (info[1] % 4 || info[2] % 4)
		return -EINVAL;
	kw = info[1] / 4;
	vw = info[2] / 4;
	for (i = 0; i < *count; i++) {
		const uint32_t *k = (const uint32_t *)keys + (size_t)i * kw;
		const uint32_t *v = (const uint32_t *)values + (size_t)i * vw;

		a += entry_hash(k, kw, v, vw, FP_SEED_A);
		b += entry_hash(k, kw, v, vw, FP_SEED_B);
	}
	fp_out[0] = a;
	fp_out[1] = b;
	return 0;
}
