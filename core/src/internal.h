/* internal.h - helpers shared by every libdcache source file (private)
 * SPDX-License-Identifier: MIT
 *
 * Nothing here is part of the public contract; see dcache.h for that.
 */
#ifndef DC_INTERNAL_H
#define DC_INTERNAL_H

#include "dcache.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DC_UNUSED        __attribute__((unused))
#define DC_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define DC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Where messages go: the callback of struct dc_options.  Copied into every
 * object that may need to log, so it lives as long as they do. */
struct dc_logger {
	dc_log_fn fn;
	void *arg;
};

void dc_log(const struct dc_logger *lg, enum dc_log_level level,
	    const char *fmt, ...) DC_PRINTF(3, 4);

/* dc_now - the current time as DiskCache's time.time(): Unix seconds as a
 * double.  One clock_gettime (a vDSO call, no system call). */
static inline double dc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dc_buf_reserve - make room for @need bytes in total (not additional).
 * Returns 0 or ENOMEM.  Grows geometrically so a hot loop stops
 * allocating once its buffer is large enough. */
int dc_buf_reserve(struct dc_buf *buf, size_t need);

/* A list of strings kept NUL-separated in one growable buffer: value
 * files to unlink after a commit, or to remove after a rollback.  The
 * memory is kept between uses so that steady-state writes allocate
 * nothing. */
struct dc_strlist {
	char *data;
	size_t len;
	size_t cap;
};

int dc_strlist_add(struct dc_strlist *l, const char *s, size_t n);
void dc_strlist_free(struct dc_strlist *l);

#define dc_strlist_foreach(l, p)                                               \
	for (const char *p = (l)->data; p && p < (l)->data + (l)->len;         \
	     p += strlen(p) + 1)

/* UTF-8 (disk.c).  dc_utf8_check returns true for valid UTF-8 (no
 * surrogates, no overlong forms, at most U+10FFFF) and stores the number
 * of code points in *ncp when ncp is not NULL. */
bool dc_utf8_check(const void *s, size_t len, size_t *ncp);

/* adler32 as zlib computes it, starting from 1. */
uint32_t dc_adler32(const void *p, size_t len);

#endif /* DC_INTERNAL_H */
