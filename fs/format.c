/* format.c - numbers as text: Python float repr, human sizes and durations
 * SPDX-License-Identifier: MIT
 */
#include "dcfs.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Shortest round-trip digits first, then Python's layout rules: fixed
 * notation for exponents -4..15 (always with a fraction), scientific with
 * a two-digit exponent otherwise.  Matching Python means a float key or
 * value looks the same here as in a Python shell. */
size_t dcfs_format_float(double x, char out[DCFS_NUM_MAX])
{
	char tmp[DCFS_NUM_MAX], digits[DCFS_NUM_MAX];
	size_t nd = 0, n = 0, i;
	int prec, exp;
	char *p;

	if (isnan(x))
		return (size_t)snprintf(out, DCFS_NUM_MAX, "nan");
	if (isinf(x))
		return (size_t)snprintf(out, DCFS_NUM_MAX, "%sinf",
					x < 0 ? "-" : "");
	for (prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	p = tmp;
	if (*p == '-')
		out[n++] = *p++;
	for (; *p && *p != 'e'; p++)
		if (isdigit((unsigned char)*p))
			digits[nd++] = *p;
	exp = *p == 'e' ? atoi(p + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			out[n++] = '0';
			out[n++] = '.';
			for (i = 1; i < (size_t)-exp; i++)
				out[n++] = '0';
			for (i = 0; i < nd; i++)
				out[n++] = digits[i];
		} else {
			for (i = 0; i <= (size_t)exp; i++)
				out[n++] = i < nd ? digits[i] : '0';
			out[n++] = '.';
			if (nd > (size_t)exp + 1)
				for (i = (size_t)exp + 1; i < nd; i++)
					out[n++] = digits[i];
			else
				out[n++] = '0';
		}
		out[n] = '\0';
	} else {
		out[n++] = digits[0];
		if (nd > 1) {
			out[n++] = '.';
			for (i = 1; i < nd; i++)
				out[n++] = digits[i];
		}
		n += (size_t)snprintf(out + n, DCFS_NUM_MAX - n, "e%c%02d",
				      exp < 0 ? '-' : '+', abs(exp));
	}
	return n;
}

/* Copies @s into @tmp so that strto* see a terminated string; EINVAL if
 * it does not fit or is empty. */
static int terminate(const char *s, size_t len, char *tmp, size_t size)
{
	if (len == 0 || len >= size || memchr(s, '\0', len))
		return EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return 0;
}

int dcfs_parse_int64(const char *s, size_t len, int64_t *out)
{
	char tmp[DCFS_NUM_MAX], *end;
	long long v;
	int err;

	err = terminate(s, len, tmp, sizeof(tmp));
	if (err)
		goto out;
	if (!isdigit((unsigned char)tmp[0]) && tmp[0] != '-' && tmp[0] != '+') {
		err = EINVAL;
		goto out;
	}
	errno = 0;
	v = strtoll(tmp, &end, 10);
	if (errno == ERANGE)
		err = ERANGE;
	else if (*end || end == tmp)
		err = EINVAL;
	else
		*out = v;
out:
	return err;
}

int dcfs_parse_double(const char *s, size_t len, double *out)
{
	char tmp[64], *end;
	double v;
	int err;

	err = terminate(s, len, tmp, sizeof(tmp));
	if (err)
		goto out;
	if (isspace((unsigned char)tmp[0])) {
		err = EINVAL;
		goto out;
	}
	v = strtod(tmp, &end);
	if (*end || end == tmp)
		err = EINVAL;
	else
		*out = v;
out:
	return err;
}

struct unit {
	const char *name;
	double mult;
};

static const struct unit size_units[] = {
	{ "", 1.0 },
	{ "b", 1.0 },
	{ "k", 1024.0 },
	{ "kb", 1024.0 },
	{ "kib", 1024.0 },
	{ "m", 1048576.0 },
	{ "mb", 1048576.0 },
	{ "mib", 1048576.0 },
	{ "g", 1073741824.0 },
	{ "gb", 1073741824.0 },
	{ "gib", 1073741824.0 },
	{ "t", 1099511627776.0 },
	{ "tb", 1099511627776.0 },
	{ "tib", 1099511627776.0 },
	{ NULL, 0 },
};

static const struct unit duration_units[] = {
	{ "", 1.0 },      { "s", 1.0 },      { "ms", 0.001 },
	{ "m", 60.0 },    { "min", 60.0 },   { "h", 3600.0 },
	{ "d", 86400.0 }, { "w", 604800.0 }, { NULL, 0 },
};

/* A number followed by a unit from @units; returns the product. */
static int parse_with_unit(const char *s, const struct unit *units, double *out)
{
	char *end;
	double v;
	int err = EINVAL;
	size_t i;

	if (!*s || isspace((unsigned char)*s))
		goto out;
	v = strtod(s, &end);
	if (end == s || !isfinite(v))
		goto out;
	for (i = 0; units[i].name; i++) {
		if (strcasecmp(end, units[i].name) == 0) {
			*out = v * units[i].mult;
			err = 0;
			break;
		}
	}
out:
	return err;
}

int dcfs_parse_size(const char *s, uint64_t *out)
{
	unsigned long long exact;
	char *end;
	double v;
	int err;

	/* Plain integers exactly, without a trip through double. */
	if (isdigit((unsigned char)*s)) {
		errno = 0;
		exact = strtoull(s, &end, 10);
		if (!*end) {
			err = errno == ERANGE ? ERANGE : 0;
			if (!err)
				*out = exact;
			goto out;
		}
	}
	err = parse_with_unit(s, size_units, &v);
	if (err)
		goto out;
	if (v < 0 || v >= 18446744073709551616.0) {
		err = ERANGE;
		goto out;
	}
	*out = (uint64_t)llround(v);
out:
	return err;
}

int dcfs_parse_duration(const char *s, double *out)
{
	int err = 0;

	if (strcasecmp(s, "none") == 0 || strcasecmp(s, "never") == 0)
		*out = DC_NO_EXPIRE;
	else
		err = parse_with_unit(s, duration_units, out);
	return err;
}

int dcfs_parse_setting(const char *name, const char *text, size_t len,
		       struct dc_value *out)
{
	char tmp[64];
	uint64_t u;
	int64_t i;
	int err;

	len = dcfs_trim(text, len);
	if (strcmp(name, "eviction_policy") == 0 ||
	    strcmp(name, "sqlite_journal_mode") == 0) {
		if (len == 0 || memchr(text, '\0', len)) {
			err = EINVAL;
			goto out;
		}
		*out = dc_textn(text, len);
		err = 0;
		goto out;
	}
	err = terminate(text, len, tmp, sizeof(tmp));
	if (err)
		goto out;
	if (tmp[0] == '-') {
		/* sqlite_cache_size may be negative (KiB, in SQLite's
		 * terms); no units there. */
		err = dcfs_parse_int64(tmp, len, &i);
	} else {
		err = dcfs_parse_size(tmp, &u);
		if (!err && u > INT64_MAX)
			err = ERANGE;
		i = (int64_t)u;
	}
	if (!err)
		*out = dc_int(i);
	else
		err = EINVAL;
out:
	return err;
}

size_t dcfs_value_render(const struct dc_value *v, char num[DCFS_NUM_MAX],
			 const void **data)
{
	size_t len;

	switch (v->type) {
	case DC_TYPE_INT:
		len = (size_t)snprintf(num, DCFS_NUM_MAX, "%lld",
				       (long long)v->i);
		*data = num;
		break;
	case DC_TYPE_FLOAT:
		len = dcfs_format_float(v->f, num);
		*data = num;
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		len = v->len;
		*data = v->data;
		break;
	default:
		len = 0;
		num[0] = '\0';
		*data = num;
		break;
	}
	return len;
}

size_t dcfs_trim(const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	return len;
}
