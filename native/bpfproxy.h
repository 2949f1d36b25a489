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

/* Attachments --------------------------------------------------------------- */

/* Attaches prog_fd to the cgroup through a bpf_link pinned at link_path. When
 * a link is already pinned there for the same cgroup and attach type, its
 * program is replaced atomically (bpf_link_update): no moment without a
 * program. Returns 1 when a link was replaced, 0 when created. */
int bpx_cgroup_link(int prog_fd, const char *cgroup_path, int attach_type, const char *link_path,
		    char *err, size_t err_len);

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

#endif
