/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers internal to the shim (not part of bpfproxy.h's API): the messages
 * written into a caller's buffer, one way for every file.
 */
#ifndef BPFPROXY_NATIVE_UTIL_H
#define BPFPROXY_NATIVE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Writes the message into err; a caller that passed no buffer wants none. */
static inline __attribute__((format(printf, 3, 4))) void set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

/* Appends to the NUL-terminated text in buf; what does not fit is cut. */
static inline __attribute__((format(printf, 3, 4))) void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used >= len - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

#endif
