/* drvutil.h - helpers shared by the interop driver programs
 * SPDX-License-Identifier: MIT
 *
 * The C programs in tests/interop/ that the Python tests run name keys,
 * values and tags the same way and print bytes the same way; this is
 * that common part.  The Makefile links drvutil.o into each of them (it
 * is not a program of its own).
 */
#ifndef DC_DRVUTIL_H
#define DC_DRVUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dcache.h"

/* A key, value or tag parsed from a SPEC, and the memory it points into
 * (owned; drv_spec_free() frees it). */
struct drv_spec {
	struct dc_value v;
	char *mem;
};

/* drv_spec_parse - a SPEC names a key, value or tag exactly:
 *   int:N  float:F (strtod: decimal or C99 hex)  str:TEXT  strx:HEX
 *   strrep:N:HEX (HEX repeated N times)  bytes:HEX  bytesrep:N:HEX
 *   pickle:HEX  picklerep:N:HEX  none
 * Returns 0, or -1 for a malformed SPEC (nothing to free then). */
int drv_spec_parse(const char *s, struct drv_spec *out);
void drv_spec_free(struct drv_spec *s);

/* drv_unhex - HEX repeated @times times, decoded into a new
 * NUL-terminated buffer *out of *outlen bytes, which the caller frees.
 * Returns 0, or -1 for an odd length or a non-hex digit. */
int drv_unhex(const char *hex, size_t times, char **out, size_t *outlen);

/* A whole string as a number: 0, or -1 for an empty string, trailing
 * characters, or (integers) a value out of range. */
int drv_parse_i64(const char *s, int64_t *out);
int drv_parse_double(const char *s, double *out);

/* @n bytes as lowercase hex on stdout, after @tag (NULL: none). */
void drv_print_hex(const char *tag, const void *p, size_t n);

/* An item before a read: nothing in it, no descriptor. */
void drv_item_init(struct dc_item *it);

/* Seconds of the real-time and the monotonic clock; a sleep of @secs
 * (none for 0 or less) that resumes after signals. */
double drv_wall(void);
double drv_mono(void);
void drv_sleep(double secs);

/* "PROGRAM: @msg" on stderr, and exit status 2. */
_Noreturn void drv_die(const char *msg);

#endif /* DC_DRVUTIL_H */
