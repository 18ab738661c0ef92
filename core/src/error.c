/* error.c - error strings, version, buffers, type names and logging
 * SPDX-License-Identifier: MIT
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *dc_strerror(int err)
{
	const char *s;

	switch (err) {
	case DC_OK:
		return "success";
	case DC_NOTFOUND:
		return "key not found";
	case DC_TIMEOUT:
		return "database timeout (locked)";
	case DC_INVAL:
		return "invalid argument";
	case DC_EXISTS:
		return "key exists";
	case DC_OVERFLOW:
		return "integer overflow";
	case DC_TYPE:
		return "value has the wrong type";
	case DC_CORRUPT:
		return "cache is corrupt";
	case DC_UNSAFE:
		return "unsafe value file path";
	case DC_LAYOUT:
		return "cache directory layout mismatch";
	case DC_SQLITE:
		return "SQLite error";
	case DC_NOTHELD:
		return "lock or semaphore not held";
	default:
		break;
	}
	if (err > 0) {
		s = strerrordesc_np(err);
		if (s)
			return s;
	}
	return "unknown error";
}

static char version_text[96];
static pthread_once_t version_once = PTHREAD_ONCE_INIT;

static void version_init(void)
{
	snprintf(version_text, sizeof(version_text), "libdcache %s (SQLite %s)",
		 DC_VERSION, sqlite3_libversion());
}

const char *dc_version(void)
{
	pthread_once(&version_once, version_init);
	return version_text;
}

void dc_buf_init(struct dc_buf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void dc_buf_release(struct dc_buf *buf)
{
	if (!buf)
		return;
	free(buf->data);
	dc_buf_init(buf);
}

int dc_buf_reserve(struct dc_buf *buf, size_t need)
{
	size_t cap;
	char *p;

	if (need <= buf->cap)
		return 0;
	cap = buf->cap ? buf->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	p = realloc(buf->data, cap);
	if (!p)
		return ENOMEM;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

int dc_strlist_add(struct dc_strlist *l, const char *s, size_t n)
{
	size_t need = l->len + n + 1;
	size_t cap;
	char *p;

	if (need > l->cap) {
		cap = l->cap ? l->cap * 2 : 256;
		while (cap < need)
			cap *= 2;
		p = realloc(l->data, cap);
		if (!p)
			return ENOMEM;
		l->data = p;
		l->cap = cap;
	}
	memcpy(l->data + l->len, s, n);
	l->data[l->len + n] = '\0';
	l->len = need;
	return 0;
}

void dc_strlist_free(struct dc_strlist *l)
{
	free(l->data);
	l->data = NULL;
	l->len = 0;
	l->cap = 0;
}

static const char *const type_names[] = {
	[DC_TYPE_NONE] = "none",   [DC_TYPE_INT] = "int",
	[DC_TYPE_FLOAT] = "float", [DC_TYPE_TEXT] = "str",
	[DC_TYPE_BYTES] = "bytes", [DC_TYPE_PICKLE] = "pickle",
};

const char *dc_type_name(enum dc_type type)
{
	if ((unsigned)type >= DC_ARRAY_SIZE(type_names))
		return NULL;
	return type_names[type];
}

int dc_type_parse(const char *name, enum dc_type *type)
{
	if (!name || !type)
		return DC_INVAL;
	for (size_t i = 0; i < DC_ARRAY_SIZE(type_names); i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*type = (enum dc_type)i;
			return 0;
		}
	}
	if (strcmp(name, "text") == 0) {
		*type = DC_TYPE_TEXT;
		return 0;
	}
	return DC_INVAL;
}

void dc_log(const struct dc_logger *lg, enum dc_log_level level,
	    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!lg || !lg->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	lg->fn(lg->arg, level, msg);
}
