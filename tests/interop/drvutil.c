/* drvutil.c - helpers shared by the interop driver programs
 * SPDX-License-Identifier: MIT
 */
#include "drvutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Noreturn void drv_die(const char *msg)
{
	fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
	exit(2);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int drv_unhex(const char *hex, size_t times, char **out, size_t *outlen)
{
	size_t n = strlen(hex), i, t;
	char *p;
	int ret = -1;

	*out = NULL;
	if (n % 2)
		goto out;
	if (times && n / 2 > (SIZE_MAX - 1) / times)
		goto out;
	p = malloc(n / 2 * times + 1);
	if (!p)
		drv_die("out of memory");
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(p);
			goto out;
		}
		p[i] = (char)(hi << 4 | lo);
	}
	for (t = 1; t < times; t++)
		memcpy(p + t * (n / 2), p, n / 2);
	p[n / 2 * times] = '\0';
	*out = p;
	*outlen = n / 2 * times;
	ret = 0;
out:
	return ret;
}

void drv_spec_free(struct drv_spec *s)
{
	free(s->mem);
	s->mem = NULL;
}

int drv_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

int drv_parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || *end)
		return -1;
	return 0;
}

/* "strrep:N:HEX" style: @rest is "N:HEX". */
static int parse_rep(const char *rest, char **mem, size_t *len)
{
	const char *colon = strchr(rest, ':');
	char num[32];
	int64_t times;

	if (!colon || (size_t)(colon - rest) >= sizeof(num))
		return -1;
	memcpy(num, rest, (size_t)(colon - rest));
	num[colon - rest] = '\0';
	if (drv_parse_i64(num, &times) || times < 0)
		return -1;
	return drv_unhex(colon + 1, (size_t)times, mem, len);
}

/* The SPEC kinds whose data is hex, once or repeated (rep). */
static const struct {
	const char *name;
	enum dc_type type;
	int rep;
} hex_kinds[] = {
	{ "strx", DC_TYPE_TEXT, 0 },     { "strrep", DC_TYPE_TEXT, 1 },
	{ "bytes", DC_TYPE_BYTES, 0 },   { "bytesrep", DC_TYPE_BYTES, 1 },
	{ "pickle", DC_TYPE_PICKLE, 0 }, { "picklerep", DC_TYPE_PICKLE, 1 },
};

int drv_spec_parse(const char *s, struct drv_spec *out)
{
	const char *colon = strchr(s, ':');
	const char *rest = colon ? colon + 1 : "";
	size_t tlen = colon ? (size_t)(colon - s) : strlen(s);
	size_t len = 0, i;
	char *mem = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!colon) {
		if (!strcmp(s, "none")) {
			out->v.type = DC_TYPE_NONE;
			ret = 0;
		}
		goto out;
	}
	if (tlen == 3 && !strncmp(s, "int", 3)) {
		out->v.type = DC_TYPE_INT;
		ret = drv_parse_i64(rest, &out->v.i);
	} else if (tlen == 5 && !strncmp(s, "float", 5)) {
		out->v.type = DC_TYPE_FLOAT;
		ret = drv_parse_double(rest, &out->v.f);
	} else if (tlen == 3 && !strncmp(s, "str", 3)) {
		mem = strdup(rest);
		if (!mem)
			drv_die("out of memory");
		out->v = dc_textn(mem, strlen(mem));
		ret = 0;
	}
	for (i = 0; i < sizeof(hex_kinds) / sizeof(hex_kinds[0]); i++) {
		if (tlen != strlen(hex_kinds[i].name) ||
		    strncmp(s, hex_kinds[i].name, tlen))
			continue;
		ret = hex_kinds[i].rep ? parse_rep(rest, &mem, &len)
				       : drv_unhex(rest, 1, &mem, &len);
		out->v.type = hex_kinds[i].type;
		out->v.data = mem;
		out->v.len = len;
	}
out:
	out->mem = mem;
	if (ret)
		drv_spec_free(out);
	return ret;
}

void drv_print_hex(const char *tag, const void *p, size_t n)
{
	const unsigned char *b = p;

	if (tag)
		fputs(tag, stdout);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

void drv_item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

static double clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double drv_wall(void)
{
	return clock_seconds(CLOCK_REALTIME);
}

double drv_mono(void)
{
	return clock_seconds(CLOCK_MONOTONIC);
}

void drv_sleep(double secs)
{
	struct timespec ts;

	if (!(secs > 0))
		return;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
