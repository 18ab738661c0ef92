/* util.c - strict parsers, UTF-8, escaping and I/O helpers of the CLI
 * SPDX-License-Identifier: MIT
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------------ */
/* Numbers                                                            */
/* ------------------------------------------------------------------ */

/* Only an optional sign and decimal digits: strtoll alone would accept
 * leading blanks, and the caller must see "12abc" or "" as an error. */
int cli_parse_i64(const char *s, int64_t *out)
{
	const char *p = s;
	char *end = NULL;
	long long v;
	int ret = -1;

	if (*p == '+' || *p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		goto out;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		goto out;
	*out = (int64_t)v;
	ret = 0;
out:
	return ret;
}

/* Accepts what Python's float() accepts in practice (decimal, exponent,
 * inf, nan), but not hex floats, blanks or values that overflow. */
int cli_parse_double(const char *s, double *out)
{
	char *end = NULL;
	double v;
	int ret = -1;

	if (*s == '\0' || isspace((unsigned char)*s) || strpbrk(s, "xX(") ||
	    strchr(s, ' '))
		goto out;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0')
		goto out;
	if (errno == ERANGE && isinf(v))
		goto out;
	*out = v;
	ret = 0;
out:
	return ret;
}

/* Seconds, optionally with an s/m/h/d suffix; "none" or "never" mean no
 * expiry.  Fractions and negative values are allowed, as DiskCache allows
 * any float expire (zero or less gives an already-expired key). */
int cli_parse_duration(const char *s, double *out)
{
	char num[64];
	size_t len = strlen(s);
	double mult = 1, v;
	int ret = -1;

	if (!strcmp(s, "none") || !strcmp(s, "never")) {
		*out = DC_NO_EXPIRE;
		ret = 0;
		goto out;
	}
	if (len == 0 || len >= sizeof(num))
		goto out;
	memcpy(num, s, len + 1);
	switch (num[len - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		mult = 0;
		break;
	}
	if (mult != 0)
		num[--len] = '\0';
	else
		mult = 1;
	/* digits, one dot, a sign: no exponent, inf or nan in a duration */
	if (len == 0 || strspn(num, "+-.0123456789") != len)
		goto out;
	if (cli_parse_double(num, &v) || !isfinite(v * mult))
		goto out;
	*out = v * mult;
	ret = 0;
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                              */
/* ------------------------------------------------------------------ */

/* Strict UTF-8 as Python decodes it: no overlongs, no surrogates, nothing
 * above U+10FFFF.  The state carries across chunks. */
void cli_utf8_feed(struct utf8_state *st, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len && !st->bad; i++) {
		unsigned char c = s[i];

		if (st->need) {
			if (c < st->lo || c > st->hi) {
				st->bad = 1;
				break;
			}
			st->need--;
			st->lo = 0x80;
			st->hi = 0xBF;
			continue;
		}
		st->lo = 0x80;
		st->hi = 0xBF;
		if (c < 0x80)
			continue;
		if (c >= 0xC2 && c <= 0xDF) {
			st->need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			st->need = 2;
			if (c == 0xE0)
				st->lo = 0xA0;
			else if (c == 0xED)
				st->hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			st->need = 3;
			if (c == 0xF0)
				st->lo = 0x90;
			else if (c == 0xF4)
				st->hi = 0x8F;
		} else {
			st->bad = 1;
		}
	}
}

int cli_utf8_valid(const void *p, size_t len)
{
	struct utf8_state st = { 0, 0x80, 0xBF, 0 };

	cli_utf8_feed(&st, p, len);
	return !st.bad && st.need == 0;
}

/* Length of the valid UTF-8 sequence at @p: 1..4, 0 if the first byte
 * cannot start one, -1 if the bytes so far are a valid but cut prefix. */
static int utf8_seq(const unsigned char *p, size_t n)
{
	struct utf8_state st = { 0, 0x80, 0xBF, 0 };
	size_t i;
	int ret = 0;

	for (i = 0; i < n && i < 4; i++) {
		cli_utf8_feed(&st, p + i, 1);
		if (st.bad)
			goto out;
		if (st.need == 0) {
			ret = (int)i + 1;
			goto out;
		}
	}
	ret = -1;
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* Buffers and raw I/O                                                */
/* ------------------------------------------------------------------ */

int cbuf_reserve(struct cbuf *b, size_t extra)
{
	size_t cap;
	char *p;
	int ret = 0;

	if (b->cap - b->len > extra)
		goto out;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len <= extra) {
		if (cap > SIZE_MAX / 2) {
			ret = ENOMEM;
			goto out;
		}
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p) {
		ret = ENOMEM;
		goto out;
	}
	b->data = p;
	b->cap = cap;
out:
	return ret;
}

int cbuf_append(struct cbuf *b, const void *p, size_t len)
{
	int ret = cbuf_reserve(b, len);

	if (ret == 0) {
		memcpy(b->data + b->len, p, len);
		b->len += len;
		b->data[b->len] = '\0';
	}
	return ret;
}

void cbuf_release(struct cbuf *b)
{
	if (b) {
		free(b->data);
		b->data = NULL;
		b->len = b->cap = 0;
	}
}

int cli_read_fd(int fd, struct cbuf *b, size_t limit, int *eof)
{
	ssize_t n;
	int ret = 0;

	*eof = 0;
	for (;;) {
		size_t want = 65536;

		if (limit && b->len >= limit)
			break;
		if (limit && limit - b->len < want)
			want = limit - b->len;
		ret = cbuf_reserve(b, want);
		if (ret)
			goto out;
		n = read(fd, b->data + b->len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno;
			goto out;
		}
		if (n == 0) {
			*eof = 1;
			break;
		}
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
out:
	return ret;
}

int cli_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;
	ssize_t n;
	int ret = 0;

	while (len > 0) {
		n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno;
			break;
		}
		s += n;
		len -= (size_t)n;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

/* Python's repr(float): the shortest digits that read back exactly,
 * fixed notation for exponents -4..15, always with a dot or exponent. */
void cli_format_double(double d, char *out, size_t size)
{
	char tmp[64], digits[32];
	char *p, *e;
	size_t nd = 0, i;
	int prec, exp10, pos = 0;
	int neg;

	if (isnan(d)) {
		snprintf(out, size, "nan");
		goto out;
	}
	if (isinf(d)) {
		snprintf(out, size, "%s", d < 0 ? "-inf" : "inf");
		goto out;
	}
	for (prec = 0; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.16e", d);
	p = tmp;
	neg = *p == '-';
	if (neg)
		p++;
	e = strchr(p, 'e');
	if (!e) {
		snprintf(out, size, "%s", tmp);
		goto out;
	}
	exp10 = atoi(e + 1);
	for (; p < e; p++)
		if (isdigit((unsigned char)*p) && nd < sizeof(digits) - 1)
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';

	tmp[0] = '\0';
	if (neg)
		pos += snprintf(tmp + pos, sizeof(tmp) - pos, "-");
	if (exp10 >= 16 || exp10 < -4) {
		pos += snprintf(tmp + pos, sizeof(tmp) - pos, "%c", digits[0]);
		if (nd > 1)
			pos += snprintf(tmp + pos, sizeof(tmp) - pos, ".%s",
					digits + 1);
		snprintf(tmp + pos, sizeof(tmp) - pos, "e%c%02d",
			 exp10 < 0 ? '-' : '+', abs(exp10));
	} else if (exp10 >= 0) {
		for (i = 0; i <= (size_t)exp10; i++)
			pos += snprintf(tmp + pos, sizeof(tmp) - pos, "%c",
					i < nd ? digits[i] : '0');
		if (nd > (size_t)exp10 + 1)
			snprintf(tmp + pos, sizeof(tmp) - pos, ".%s",
				 digits + exp10 + 1);
		else
			snprintf(tmp + pos, sizeof(tmp) - pos, ".0");
	} else {
		pos += snprintf(tmp + pos, sizeof(tmp) - pos, "0.");
		for (i = 0; i < (size_t)(-exp10 - 1); i++)
			pos += snprintf(tmp + pos, sizeof(tmp) - pos, "0");
		snprintf(tmp + pos, sizeof(tmp) - pos, "%s", digits);
	}
	snprintf(out, size, "%s", tmp);
out:
	return;
}

/* C1 controls (U+0080..U+009F) can drive a terminal as well as C0 ones. */
static int is_c1(const unsigned char *p, int n)
{
	return n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
}

void cli_print_escaped(FILE *f, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;
	int n;

	while (i < len) {
		unsigned char c = p[i];

		if (c == '\\') {
			fputs("\\\\", f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c < 0x20 || c == 0x7F) {
			fprintf(f, "\\x%02x", c);
		} else if (c < 0x80) {
			fputc(c, f);
		} else {
			n = utf8_seq(p + i, len - i);
			if (n > 0 && !is_c1(p + i, n)) {
				fwrite(p + i, 1, (size_t)n, f);
				i += (size_t)n;
				continue;
			}
			fprintf(f, "\\x%02x", c);
		}
		i++;
	}
}

void cli_print_value_line(FILE *f, const struct dc_value *v)
{
	char num[64];

	switch (v->type) {
	case DC_TYPE_INT:
		fprintf(f, "%" PRId64, v->i);
		break;
	case DC_TYPE_FLOAT:
		cli_format_double(v->f, num, sizeof(num));
		fputs(num, f);
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		cli_print_escaped(f, v->data, v->len);
		break;
	default:
		fputs("none", f);
		break;
	}
}

void out_init(struct out_stream *o, FILE *f, int tty)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->tty = tty;
}

static void tty_byte(struct out_stream *o, unsigned char c)
{
	fprintf(o->f, "\\x%02x", c);
	o->last_nl = 0;
}

/* On a terminal, text is shown as it is (newlines and tabs included);
 * control bytes and invalid UTF-8 become \xNN so that binary data cannot
 * drive the terminal.  A UTF-8 sequence cut by a chunk boundary waits in
 * pend[] for the next chunk. */
static void tty_write(struct out_stream *o, const unsigned char *p, size_t len)
{
	unsigned char rest[4];
	size_t i = 0, k;
	int n;

	while (i < len) {
		unsigned char c = p[i];

		if (o->npend) {
			o->pend[o->npend++] = c;
			i++;
			n = utf8_seq(o->pend, o->npend);
			if (n == -1)
				continue;
			if (n > 0 && !is_c1(o->pend, n)) {
				fwrite(o->pend, 1, o->npend, o->f);
				o->last_nl = 0;
				o->npend = 0;
				continue;
			}
			/* not a sequence: show the lead byte, and look at
			 * the bytes after it afresh */
			k = o->npend - 1;
			memcpy(rest, o->pend + 1, k);
			o->npend = 0;
			tty_byte(o, o->pend[0]);
			tty_write(o, rest, k);
			continue;
		}
		if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7F)) {
			fputc(c, o->f);
			o->last_nl = c == '\n';
			i++;
			continue;
		}
		if (c < 0x80) {
			tty_byte(o, c);
			i++;
			continue;
		}
		n = utf8_seq(p + i, len - i);
		if (n == -1) {
			/* cut by the chunk's end: at most 3 bytes */
			memcpy(o->pend, p + i, len - i);
			o->npend = len - i;
			break;
		}
		if (n > 0 && !is_c1(p + i, n)) {
			fwrite(p + i, 1, (size_t)n, o->f);
			o->last_nl = 0;
			i += (size_t)n;
		} else {
			tty_byte(o, c);
			i++;
		}
	}
}

void out_write(struct out_stream *o, const void *data, size_t len)
{
	if (len == 0)
		return;
	o->any = 1;
	if (o->tty)
		tty_write(o, data, len);
	else
		fwrite(data, 1, len, o->f);
}

void out_finish(struct out_stream *o)
{
	size_t i;

	if (!o->tty)
		return;
	for (i = 0; i < o->npend; i++)
		tty_byte(o, o->pend[i]);
	o->npend = 0;
	if (!o->last_nl)
		fputc('\n', o->f);
}
