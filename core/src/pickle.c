/* pickle.c - CPython-exact pickles of flat tuples (memoize keys, recipes)
 * SPDX-License-Identifier: MIT
 *
 * The writer follows CPython 3.11's C pickler (Modules/_pickle.c) step by
 * step, because the bytes are the interface: DiskCache looks keys up by
 * their pickle, so one byte of difference is a different key.  What
 * matters, in the order CPython does it:
 *   - a frame opens at the first write after PROTO and after each commit;
 *     at the start of every save() a frame of 64 KiB or more is
 *     committed; a committed frame of fewer than 4 bytes loses its header;
 *   - str and bytes of 64 KiB or more commit the frame and are written
 *     outside any frame;
 *   - every str, bytes, non-empty tuple and global is memoized (MEMOIZE),
 *     and an object already in the memo is fetched with BINGET instead;
 *     identity decides, so only objects CPython itself shares are shared.
 * Protocols 0 to 2 differ in more than opcodes: protocol 0 is text (ints
 * and floats in decimal, str raw-unicode-escaped, memo ids in decimal),
 * bytes below protocol 3 are the call _codecs.encode(<str>, 'latin1')
 * (or bytes() for b'') saved as any reduce is, and globals take their
 * Python 2 names.
 * The optimizer is pickletools.optimize() on those bytes: it drops
 * memoizations nobody fetches, renumbers the rest and frames again the
 * way pickle.py's _Framer does (a different rule from the C pickler's).
 * The reader takes every protocol: the text opcodes of 0, and the
 * reduces above, decoding what needs it into a caller's buffer.
 */
#include "pickle.h"

#include "fanout.h"
#include "internal.h"
#include "shard.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes (Lib/pickle.py) */
enum {
	OP_MARK = '(',
	OP_STOP = '.',
	OP_POP = '0',
	OP_POP_MARK = '1',
	OP_DUP = '2',
	OP_FLOAT = 'F',
	OP_INT = 'I',
	OP_BININT = 'J',
	OP_BININT1 = 'K',
	OP_LONG = 'L',
	OP_BININT2 = 'M',
	OP_NONE = 'N',
	OP_PERSID = 'P',
	OP_BINPERSID = 'Q',
	OP_REDUCE = 'R',
	OP_STRING = 'S',
	OP_BINSTRING = 'T',
	OP_SHORT_BINSTRING = 'U',
	OP_UNICODE = 'V',
	OP_BINUNICODE = 'X',
	OP_APPEND = 'a',
	OP_BUILD = 'b',
	OP_GLOBAL = 'c',
	OP_DICT = 'd',
	OP_EMPTY_DICT = '}',
	OP_APPENDS = 'e',
	OP_GET = 'g',
	OP_BINGET = 'h',
	OP_INST = 'i',
	OP_LONG_BINGET = 'j',
	OP_LIST = 'l',
	OP_EMPTY_LIST = ']',
	OP_OBJ = 'o',
	OP_PUT = 'p',
	OP_BINPUT = 'q',
	OP_LONG_BINPUT = 'r',
	OP_SETITEM = 's',
	OP_TUPLE = 't',
	OP_EMPTY_TUPLE = ')',
	OP_SETITEMS = 'u',
	OP_BINFLOAT = 'G',
	OP_PROTO = 0x80,
	OP_NEWOBJ = 0x81,
	OP_EXT1 = 0x82,
	OP_EXT2 = 0x83,
	OP_EXT4 = 0x84,
	OP_TUPLE1 = 0x85,
	OP_TUPLE2 = 0x86,
	OP_TUPLE3 = 0x87,
	OP_NEWTRUE = 0x88,
	OP_NEWFALSE = 0x89,
	OP_LONG1 = 0x8a,
	OP_LONG4 = 0x8b,
	OP_BINBYTES = 'B',
	OP_SHORT_BINBYTES = 'C',
	OP_SHORT_BINUNICODE = 0x8c,
	OP_BINUNICODE8 = 0x8d,
	OP_BINBYTES8 = 0x8e,
	OP_EMPTY_SET = 0x8f,
	OP_ADDITEMS = 0x90,
	OP_FROZENSET = 0x91,
	OP_NEWOBJ_EX = 0x92,
	OP_STACK_GLOBAL = 0x93,
	OP_MEMOIZE = 0x94,
	OP_FRAME = 0x95,
	OP_BYTEARRAY8 = 0x96,
	OP_NEXT_BUFFER = 0x97,
	OP_READONLY_BUFFER = 0x98,
};

#define FRAME_SIZE_MIN    4
#define FRAME_SIZE_TARGET (64 * 1024)
#define FRAME_HEADER_SIZE 9
#define NO_FRAME          SIZE_MAX

/* ------------------------------------------------------------------ */
/* Little helpers                                                     */
/* ------------------------------------------------------------------ */

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Encode at @b the opcode @op and its @n-byte little-endian argument;
 * returns the length. */
static size_t op_arg(unsigned char *b, unsigned char op, uint64_t v, int n)
{
	b[0] = op;
	put_le(b + 1, v, n);
	return (size_t)n + 1;
}

/* The longest memo opcode: "p" or "g", 20 digits, "\n" (and snprintf's
 * NUL). */
#define MEMO_OP_MAX 24

/* Encode at @b the memo opcode for index @idx: a put (@get 0; MEMOIZE
 * from protocol 4 on) or a get, in decimal text at protocol 0, else in
 * its 1-byte form below 256. */
static size_t memo_op(unsigned char b[MEMO_OP_MAX], int get, int proto,
		      uint64_t idx)
{
	if (!get && proto >= 4) {
		b[0] = OP_MEMOIZE;
		return 1;
	}
	if (proto == 0)
		return (size_t)snprintf((char *)b, MEMO_OP_MAX,
					"%c%" PRIu64 "\n",
					get ? OP_GET : OP_PUT, idx);
	if (idx < 256)
		return op_arg(b, get ? OP_BINGET : OP_BINPUT, idx, 1);
	return op_arg(b, get ? OP_LONG_BINGET : OP_LONG_BINPUT, idx, 4);
}

/* The code point of the UTF-8 sequence at s[*i] (advancing *i), or -1
 * for an invalid one (overlong, surrogate, above U+10FFFF, truncated). */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
	uint32_t cp = s[*i];
	size_t n, k;

	if (cp < 0x80) {
		(*i)++;
		return (int32_t)cp;
	}
	if ((cp & 0xe0) == 0xc0)
		n = 1;
	else if ((cp & 0xf0) == 0xe0)
		n = 2;
	else if ((cp & 0xf8) == 0xf0)
		n = 3;
	else
		return -1;
	if (len - *i <= n)
		return -1;
	cp &= 0x3fu >> n;
	for (k = 1; k <= n; k++) {
		if ((s[*i + k] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[*i + k] & 0x3fu);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*i += n + 1;
	return (int32_t)cp;
}

/* Encode @cp as UTF-8 at @o; returns the length. */
static size_t utf8_put(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Numbers in protocol 0 are C-locale text, whatever locale the program
 * using the library has set (a decimal comma would be another key). */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Switch this thread to the C locale; *old is what to restore. */
static int c_locale_enter(locale_t *old)
{
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale == (locale_t)0)
		return ENOMEM;
	*old = uselocale(c_locale);
	return 0;
}

static uint64_t pow10u(int p)
{
	uint64_t v = 1;

	while (p-- > 0)
		v *= 10;
	return v;
}

/* %.*e of @a parsed back: its @p digits into *m, its exponent into *e;
 * returns strtod of the text. */
static double sci_digits(double a, int p, uint64_t *m, int *e)
{
	char buf[40], *end;
	uint64_t v = 0;

	snprintf(buf, sizeof(buf), "%.*e", p - 1, a);
	for (const char *q = buf; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9')
			v = v * 10 + (uint64_t)(*q - '0');
	*m = v;
	*e = (int)strtol(strchr(buf, 'e') + 1, &end, 10);
	return strtod(buf, NULL);
}

/* repr(@f) as CPython writes it (float_repr_style 'short': the shortest
 * digits that read back as @f, in fixed notation from 0.0001 to below
 * 1e16, else as d.ddde+XX), into @out (at least 32 bytes).
 * Of the p-digit decimals the correctly rounded one is tried first;
 * near a power of two, where the gap below is half the gap above, only
 * its neighbour across @f may read back, and that is what Python's dtoa
 * finds.  Returns 0 and *outlen, or ENOMEM (no C locale). */
static int py_float_repr(double f, char *out, size_t cap, size_t *outlen)
{
	double a = fabs(f);
	char dig[24];
	uint64_t m = 0;
	int e = 0, p, nd, decpt, n = 0, rc;
	locale_t old;

	if (isnan(f) || isinf(f)) {
		n = snprintf(out, cap, "%s",
			     isnan(f) ? "nan" : (f < 0 ? "-inf" : "inf"));
		*outlen = (size_t)n;
		return 0;
	}
	rc = c_locale_enter(&old);
	if (rc)
		return rc;
	for (p = 1; p <= 17; p++) {
		double back = sci_digits(a, p, &m, &e);
		uint64_t m2 = m;
		int e2 = e;
		char buf[40];

		if (back == a)
			break;
		if (back < a) {
			if (++m2 == pow10u(p)) {
				m2 = pow10u(p - 1);
				e2++;
			}
		} else if (m2-- == pow10u(p - 1)) {
			m2 = pow10u(p) - 1;
			e2--;
		}
		snprintf(buf, sizeof(buf), "%" PRIu64 "e%d", m2, e2 - (p - 1));
		if (strtod(buf, NULL) == a) {
			m = m2;
			e = e2;
			break;
		}
	}
	uselocale(old);
	nd = snprintf(dig, sizeof(dig), "%" PRIu64, m);
	while (nd > 1 && dig[nd - 1] == '0')
		dig[--nd] = '\0';
	decpt = e + 1; /* the value is 0.DIGITS * 10^decpt */
	if (signbit(f))
		out[n++] = '-';
	if (decpt <= -4 || decpt > 16) {
		n += snprintf(out + n, cap - (size_t)n, "%c%s%se%c%02d", dig[0],
			      nd > 1 ? "." : "", dig + 1, e < 0 ? '-' : '+',
			      e < 0 ? -e : e);
	} else if (decpt <= 0) {
		/* 0.000DIGITS */
		out[n++] = '0';
		out[n++] = '.';
		for (int i = decpt; i < 0; i++)
			out[n++] = '0';
		memcpy(out + n, dig, (size_t)nd);
		n += nd;
	} else if (decpt >= nd) {
		/* DIGITS000.0 (Py_DTSF_ADD_DOT_0) */
		memcpy(out + n, dig, (size_t)nd);
		n += nd;
		for (int i = nd; i < decpt; i++)
			out[n++] = '0';
		out[n++] = '.';
		out[n++] = '0';
	} else {
		memcpy(out + n, dig, (size_t)decpt);
		n += decpt;
		out[n++] = '.';
		memcpy(out + n, dig + decpt, (size_t)(nd - decpt));
		n += nd - decpt;
	}
	out[n] = '\0';
	*outlen = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writer (the C pickler)                                             */
/* ------------------------------------------------------------------ */

/* Objects that CPython shares by identity, so that a second occurrence
 * is a memo fetch.  Keyed by class and bytes. */
enum shared_class {
	SH_MODULE = 1, /* the "builtins" string of type globals */
	SH_GLOBAL,     /* a builtin type, by name */
	SH_STR,        /* a singleton str */
	SH_BYTES,      /* a singleton bytes */
	SH_ENCODE,     /* _codecs.encode (bytes below protocol 3) */
	SH_LATIN1,     /* its argument 'latin1', one interned str */
};

struct shared {
	enum shared_class cls;
	const char *data;
	size_t len;
	uint32_t idx;
};

struct pkw {
	struct dc_buf *out;
	int proto;
	int framing;
	size_t frame_start; /* offset in out of the frame header, or none */
	uint32_t memo_len;
	struct shared *sh;
	size_t nsh, capsh;
	int depth;
	/* The UTF-8 of the code points 0-255, the singleton str objects a
	 * 1-byte bytes decodes to below protocol 3 (see pkw_latin1_str). */
	char latin1[256][2];
};

/* End the frame whose 9-byte hole is at @start of @out, running to its
 * end: the hole becomes a FRAME header, or goes for fewer than 4 bytes
 * (both picklers' rule). */
static void frame_close(struct dc_buf *out, size_t start)
{
	unsigned char *q = (unsigned char *)out->data + start;
	size_t n = out->len - start - FRAME_HEADER_SIZE;

	if (n >= FRAME_SIZE_MIN) {
		op_arg(q, OP_FRAME, n, 8);
	} else {
		memmove(q, q + FRAME_HEADER_SIZE, n);
		out->len -= FRAME_HEADER_SIZE;
	}
}

static int pkw_commit(struct pkw *w)
{
	if (!w->framing || w->frame_start == NO_FRAME)
		return 0;
	frame_close(w->out, w->frame_start);
	w->frame_start = NO_FRAME;
	return 0;
}

static int pkw_write(struct pkw *w, const void *p, size_t n)
{
	int need_frame = w->framing && w->frame_start == NO_FRAME;
	size_t need = w->out->len + n + (need_frame ? FRAME_HEADER_SIZE : 0);
	int rc;

	rc = dc_buf_reserve(w->out, need + 1);
	if (rc)
		return rc;
	if (need_frame) {
		w->frame_start = w->out->len;
		memset(w->out->data + w->out->len, 0xfe, FRAME_HEADER_SIZE);
		w->out->len += FRAME_HEADER_SIZE;
	}
	if (n)
		memcpy(w->out->data + w->out->len, p, n);
	w->out->len += n;
	return 0;
}

static int pkw_op(struct pkw *w, unsigned char op)
{
	return pkw_write(w, &op, 1);
}

/* _Pickler_OpcodeBoundary: called at the start of every save(). */
static int pkw_boundary(struct pkw *w)
{
	if (!w->framing || w->frame_start == NO_FRAME)
		return 0;
	if (w->out->len - w->frame_start - FRAME_HEADER_SIZE >=
	    FRAME_SIZE_TARGET)
		return pkw_commit(w);
	return 0;
}

/* _Pickler_write_bytes: large payloads go outside frames. */
static int pkw_write_bytes(struct pkw *w, const unsigned char *hdr, size_t hlen,
			   const void *data, size_t dlen)
{
	int bypass = dlen >= FRAME_SIZE_TARGET;
	int framing = w->framing;
	int rc;

	if (bypass) {
		rc = pkw_commit(w);
		if (rc)
			return rc;
		w->framing = 0;
	}
	rc = pkw_write(w, hdr, hlen);
	if (!rc)
		rc = pkw_write(w, data, dlen);
	w->framing = framing;
	return rc;
}

static int pkw_memo_put(struct pkw *w)
{
	unsigned char b[MEMO_OP_MAX];
	int rc;

	rc = pkw_write(w, b, memo_op(b, 0, w->proto, w->memo_len));
	if (!rc)
		w->memo_len++;
	return rc;
}

static int pkw_memo_get(struct pkw *w, uint32_t idx)
{
	unsigned char b[MEMO_OP_MAX];

	return pkw_write(w, b, memo_op(b, 1, w->proto, idx));
}

static struct shared *pkw_find(struct pkw *w, enum shared_class cls,
			       const char *data, size_t len)
{
	for (size_t i = 0; i < w->nsh; i++) {
		struct shared *s = &w->sh[i];

		if (s->cls == cls && s->len == len &&
		    (len == 0 || memcmp(s->data, data, len) == 0))
			return s;
	}
	return NULL;
}

/* Remember that the object just memoized (index memo_len - 1) is
 * shared.  @data is borrowed for the whole dumps call. */
static int pkw_remember(struct pkw *w, enum shared_class cls, const char *data,
			size_t len)
{
	if (w->nsh == w->capsh) {
		size_t cap = w->capsh ? w->capsh * 2 : 16;
		struct shared *n = realloc(w->sh, cap * sizeof(*n));

		if (!n)
			return ENOMEM;
		w->sh = n;
		w->capsh = cap;
	}
	w->sh[w->nsh].cls = cls;
	w->sh[w->nsh].data = data;
	w->sh[w->nsh].len = len;
	w->sh[w->nsh].idx = w->memo_len - 1;
	w->nsh++;
	return 0;
}

/* A str or bytes that CPython keeps as a singleton object. */
static int is_singleton(const struct dc_py *o)
{
	const unsigned char *s = (const unsigned char *)o->data;

	if (o->len == 0)
		return 1;
	if (o->kind == DC_PY_BYTES)
		return o->len == 1;
	/* One code point below 256: one ASCII byte, or C2/C3 + one. */
	if (o->len == 1)
		return 1;
	return o->len == 2 && (s[0] == 0xc2 || s[0] == 0xc3);
}

static int pkw_save(struct pkw *w, const struct dc_py *o);

/* The code point at s[*i]: a byte of Latin-1 (@latin1) or UTF-8 (-1 if
 * invalid, which callers have ruled out). */
static int32_t text_next(const unsigned char *s, size_t len, size_t *i,
			 int latin1)
{
	return latin1 ? s[(*i)++] : utf8_next(s, len, i);
}

/* Protocol 0's UNICODE: the text raw-unicode-escaped as _pickle.c's
 * raw_unicode_escape() does -- code points below 256 as one Latin-1
 * byte, except those that would end or garble the line (backslash, NUL,
 * LF, CR, ^Z), which become \u00XX like every code point above. */
static int pkw_unicode0(struct pkw *w, const unsigned char *s, size_t len,
			int latin1)
{
	unsigned char chunk[512];
	size_t n = 0, i = 0;
	int rc;

	rc = pkw_op(w, OP_UNICODE);
	while (!rc && i < len) {
		int32_t cp = text_next(s, len, &i, latin1);

		if (cp < 0)
			return DC_INVAL;
		if (cp >= 0x10000)
			n += (size_t)snprintf((char *)chunk + n, 11, "\\U%08x",
					      (unsigned)cp);
		else if (cp >= 256 || cp == '\\' || cp == 0 || cp == '\n' ||
			 cp == '\r' || cp == 0x1a)
			n += (size_t)snprintf((char *)chunk + n, 7, "\\u%04x",
					      (unsigned)cp);
		else
			chunk[n++] = (unsigned char)cp;
		if (n > sizeof(chunk) - 11) {
			rc = pkw_write(w, chunk, n);
			n = 0;
		}
	}
	if (!rc)
		rc = pkw_write(w, chunk, n);
	if (!rc)
		rc = pkw_op(w, '\n');
	return rc;
}

/* The opcode and payload of a str (UTF-8 @s of @len bytes). */
static int pkw_str_raw(struct pkw *w, const char *s, size_t len)
{
	unsigned char h[9];
	size_t hl;

	if (w->proto == 0)
		return pkw_unicode0(w, (const unsigned char *)s, len, 0);
	if (len <= 0xff && w->proto >= 4)
		hl = op_arg(h, OP_SHORT_BINUNICODE, len, 1);
	else if ((uint64_t)len > 0xffffffffu && w->proto >= 4)
		hl = op_arg(h, OP_BINUNICODE8, len, 8);
	else
		hl = op_arg(h, OP_BINUNICODE, len, 4);
	return pkw_write_bytes(w, h, hl, s, len);
}

static int pkw_bytes_raw(struct pkw *w, const char *s, size_t len)
{
	unsigned char h[9];
	size_t hl;

	if (len <= 0xff)
		hl = op_arg(h, OP_SHORT_BINBYTES, len, 1);
	else if ((uint64_t)len <= 0xffffffffu)
		hl = op_arg(h, OP_BINBYTES, len, 4);
	else
		hl = op_arg(h, OP_BINBYTES8, len, 8);
	return pkw_write_bytes(w, h, hl, s, len);
}

/* A str object other than a shared one: save(str). */
static int pkw_save_str(struct pkw *w, const char *s, size_t len,
			enum shared_class cls)
{
	struct shared *sh;
	int rc;

	rc = pkw_boundary(w);
	if (rc)
		return rc;
	if (cls) {
		sh = pkw_find(w, cls, s, len);
		if (sh)
			return pkw_memo_get(w, sh->idx);
	}
	rc = pkw_str_raw(w, s, len);
	if (!rc)
		rc = pkw_memo_put(w);
	if (!rc && cls)
		rc = pkw_remember(w, cls, s, len);
	return rc;
}

/* save(str) of the bytes @o decoded as Latin-1 (below protocol 3 only,
 * so no frames).  A 1-byte bytes decodes to CPython's singleton str of
 * that code point, the very object a 1-character str item is. */
static int pkw_latin1_str(struct pkw *w, const struct dc_py *o)
{
	const unsigned char *s = (const unsigned char *)o->data;
	const char *one = NULL;
	size_t onelen = 0, n8 = o->len, i;
	unsigned char chunk[512], h[5];
	struct shared *sh;
	int rc;

	if (o->len == 1) {
		one = w->latin1[s[0]];
		onelen = s[0] < 0x80 ? 1 : 2;
		sh = pkw_find(w, SH_STR, one, onelen);
		if (sh)
			return pkw_memo_get(w, sh->idx);
	}
	if (w->proto == 0) {
		rc = pkw_unicode0(w, s, o->len, 1);
	} else {
		for (i = 0; i < o->len; i++)
			n8 += s[i] >= 0x80;
		if ((uint64_t)n8 > 0xffffffffu)
			return DC_INVAL;
		rc = pkw_write(w, h, op_arg(h, OP_BINUNICODE, n8, 4));
		for (i = 0; !rc && i < o->len;) {
			size_t n = 0;

			while (i < o->len && n < sizeof(chunk) - 2)
				n += utf8_put(chunk + n, s[i++]);
			rc = pkw_write(w, chunk, n);
		}
	}
	if (!rc)
		rc = pkw_memo_put(w);
	if (!rc && one)
		rc = pkw_remember(w, SH_STR, one, onelen);
	return rc;
}

/* save_bytes below protocol 3, which has no bytes opcode: CPython saves
 * the reduce (bytes, ()) for b'', else (_codecs.encode, (<the bytes as a
 * Latin-1 str>, 'latin1')) -- callable, argument tuple and strings each
 * memoized and shared as any object -- and REDUCE rebuilds it. */
static int pkw_bytes_reduce(struct pkw *w, const struct dc_py *o)
{
	static const struct dc_py bytes_type = { .kind = DC_PY_TYPE,
						 .data = "bytes",
						 .len = 5 };
	static const struct dc_py empty = { .kind = DC_PY_TUPLE };
	struct shared *sh;
	int rc;

	if (o->len == 0) {
		rc = pkw_save(w, &bytes_type);
		if (!rc)
			rc = pkw_save(w, &empty);
	} else {
		sh = pkw_find(w, SH_ENCODE, "", 0);
		if (sh) {
			rc = pkw_memo_get(w, sh->idx);
		} else {
			rc = pkw_write(w, "c_codecs\nencode\n", 16);
			if (!rc)
				rc = pkw_memo_put(w);
			if (!rc)
				rc = pkw_remember(w, SH_ENCODE, "", 0);
		}
		if (!rc && w->proto < 2)
			rc = pkw_op(w, OP_MARK);
		if (!rc)
			rc = pkw_latin1_str(w, o);
		if (!rc)
			rc = pkw_save_str(w, "latin1", 6, SH_LATIN1);
		if (!rc)
			rc = pkw_op(w, w->proto < 2 ? OP_TUPLE : OP_TUPLE2);
		if (!rc)
			rc = pkw_memo_put(w);
	}
	if (!rc)
		rc = pkw_op(w, OP_REDUCE);
	return rc;
}

/* Below protocol 3 CPython names globals as Python 2 did
 * (_compat_pickle.REVERSE_NAME_MAPPING); every other builtin is
 * __builtin__.<name>. */
static const struct {
	const char *name, *module, *name2;
} py2_names[] = {
	{ "ArithmeticError", "exceptions", "ArithmeticError" },
	{ "AssertionError", "exceptions", "AssertionError" },
	{ "AttributeError", "exceptions", "AttributeError" },
	{ "BaseException", "exceptions", "BaseException" },
	{ "BrokenPipeError", "exceptions", "OSError" },
	{ "BufferError", "exceptions", "BufferError" },
	{ "BytesWarning", "exceptions", "BytesWarning" },
	{ "ChildProcessError", "exceptions", "OSError" },
	{ "ConnectionAbortedError", "exceptions", "OSError" },
	{ "ConnectionError", "exceptions", "OSError" },
	{ "ConnectionRefusedError", "exceptions", "OSError" },
	{ "ConnectionResetError", "exceptions", "OSError" },
	{ "DeprecationWarning", "exceptions", "DeprecationWarning" },
	{ "EOFError", "exceptions", "EOFError" },
	{ "EnvironmentError", "exceptions", "EnvironmentError" },
	{ "Exception", "exceptions", "Exception" },
	{ "FileExistsError", "exceptions", "OSError" },
	{ "FileNotFoundError", "exceptions", "OSError" },
	{ "FloatingPointError", "exceptions", "FloatingPointError" },
	{ "FutureWarning", "exceptions", "FutureWarning" },
	{ "GeneratorExit", "exceptions", "GeneratorExit" },
	{ "IOError", "exceptions", "IOError" },
	{ "ImportError", "exceptions", "ImportError" },
	{ "ImportWarning", "exceptions", "ImportWarning" },
	{ "IndentationError", "exceptions", "IndentationError" },
	{ "IndexError", "exceptions", "IndexError" },
	{ "InterruptedError", "exceptions", "OSError" },
	{ "IsADirectoryError", "exceptions", "OSError" },
	{ "KeyError", "exceptions", "KeyError" },
	{ "KeyboardInterrupt", "exceptions", "KeyboardInterrupt" },
	{ "LookupError", "exceptions", "LookupError" },
	{ "MemoryError", "exceptions", "MemoryError" },
	{ "ModuleNotFoundError", "exceptions", "ImportError" },
	{ "NameError", "exceptions", "NameError" },
	{ "NotADirectoryError", "exceptions", "OSError" },
	{ "NotImplementedError", "exceptions", "NotImplementedError" },
	{ "OSError", "exceptions", "OSError" },
	{ "OverflowError", "exceptions", "OverflowError" },
	{ "PendingDeprecationWarning", "exceptions",
	  "PendingDeprecationWarning" },
	{ "PermissionError", "exceptions", "OSError" },
	{ "ProcessLookupError", "exceptions", "OSError" },
	{ "ReferenceError", "exceptions", "ReferenceError" },
	{ "RuntimeError", "exceptions", "RuntimeError" },
	{ "RuntimeWarning", "exceptions", "RuntimeWarning" },
	{ "StopIteration", "exceptions", "StopIteration" },
	{ "SyntaxError", "exceptions", "SyntaxError" },
	{ "SyntaxWarning", "exceptions", "SyntaxWarning" },
	{ "SystemError", "exceptions", "SystemError" },
	{ "SystemExit", "exceptions", "SystemExit" },
	{ "TabError", "exceptions", "TabError" },
	{ "TimeoutError", "exceptions", "OSError" },
	{ "TypeError", "exceptions", "TypeError" },
	{ "UnboundLocalError", "exceptions", "UnboundLocalError" },
	{ "UnicodeDecodeError", "exceptions", "UnicodeDecodeError" },
	{ "UnicodeEncodeError", "exceptions", "UnicodeEncodeError" },
	{ "UnicodeError", "exceptions", "UnicodeError" },
	{ "UnicodeTranslateError", "exceptions", "UnicodeTranslateError" },
	{ "UnicodeWarning", "exceptions", "UnicodeWarning" },
	{ "UserWarning", "exceptions", "UserWarning" },
	{ "ValueError", "exceptions", "ValueError" },
	{ "Warning", "exceptions", "Warning" },
	{ "ZeroDivisionError", "exceptions", "ZeroDivisionError" },
	{ "chr", "__builtin__", "unichr" },
	{ "filter", "itertools", "ifilter" },
	{ "int", "__builtin__", "long" },
	{ "map", "itertools", "imap" },
	{ "range", "__builtin__", "xrange" },
	{ "str", "__builtin__", "unicode" },
	{ "zip", "itertools", "izip" },
};

/* save_global below protocol 4: GLOBAL "module\nname\n", Python 2
 * names below protocol 3 (where names must be ASCII, too). */
static int pkw_global_text(struct pkw *w, const char *name, size_t len)
{
	const char *mod = "builtins";
	int rc;

	if (w->proto < 3) {
		mod = "__builtin__";
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)name[i] >= 0x80)
				return DC_INVAL;
		for (size_t i = 0; i < DC_ARRAY_SIZE(py2_names); i++) {
			if (strlen(py2_names[i].name) == len &&
			    memcmp(py2_names[i].name, name, len) == 0) {
				mod = py2_names[i].module;
				name = py2_names[i].name2;
				len = strlen(name);
				break;
			}
		}
	}
	rc = pkw_op(w, OP_GLOBAL);
	if (!rc)
		rc = pkw_write(w, mod, strlen(mod));
	if (!rc)
		rc = pkw_op(w, '\n');
	if (!rc)
		rc = pkw_write(w, name, len);
	if (!rc)
		rc = pkw_op(w, '\n');
	return rc;
}

/* save_global: STACK_GLOBAL (4+) of builtins.<name>, else GLOBAL. */
static int pkw_global(struct pkw *w, const char *name, size_t len)
{
	int rc;

	if (w->proto >= 4) {
		rc = pkw_save_str(w, "builtins", 8, SH_MODULE);
		if (!rc)
			rc = pkw_save_str(w, name, len, 0);
		if (!rc)
			rc = pkw_op(w, OP_STACK_GLOBAL);
	} else {
		rc = pkw_global_text(w, name, len);
	}
	if (!rc)
		rc = pkw_memo_put(w);
	if (!rc)
		rc = pkw_remember(w, SH_GLOBAL, name, len);
	return rc;
}

/* save_type: the types of singletons pickle as type(singleton). */
static int pkw_type(struct pkw *w, const struct dc_py *o)
{
	static const struct dc_py type = { .kind = DC_PY_TYPE,
					   .data = "type",
					   .len = 4 };
	static const struct dc_py none = { .kind = DC_PY_NONE };
	struct dc_py args = { .kind = DC_PY_TUPLE, .items = &none, .len = 1 };
	int rc;

	if (o->len == 8 && memcmp(o->data, "NoneType", 8) == 0) {
		rc = pkw_save(w, &type);
		if (!rc)
			rc = pkw_save(w, &args);
		if (!rc)
			rc = pkw_op(w, OP_REDUCE);
		if (!rc)
			rc = pkw_memo_put(w);
		if (!rc)
			rc = pkw_remember(w, SH_GLOBAL, o->data, o->len);
		return rc;
	}
	return pkw_global(w, o->data, o->len);
}

/* save_long: 4-byte ints as INT text (protocol 0) or BININT*; bigger as
 * LONG text (below protocol 2) or LONG1. */
static int pkw_long(struct pkw *w, int64_t v)
{
	unsigned char b[32];
	int n;

	if (v >= INT32_MIN && v <= INT32_MAX && w->proto == 0) {
		n = snprintf((char *)b, sizeof(b), "I%" PRId64 "\n", v);
		return pkw_write(w, b, (size_t)n);
	}
	if (v >= 0 && v <= 0xff)
		return pkw_write(w, b, op_arg(b, OP_BININT1, (uint64_t)v, 1));
	if (v >= 0 && v <= 0xffff)
		return pkw_write(w, b, op_arg(b, OP_BININT2, (uint64_t)v, 2));
	if (v >= INT32_MIN && v <= INT32_MAX)
		return pkw_write(w, b, op_arg(b, OP_BININT, (uint64_t)v, 4));
	if (w->proto < 2) {
		/* repr() plus Python 2's "L" */
		n = snprintf((char *)b, sizeof(b), "L%" PRId64 "L\n", v);
		return pkw_write(w, b, (size_t)n);
	}
	/* LONG1: the shortest two's complement, little-endian. */
	for (n = 1; n < 8; n++) {
		int64_t lo = -((int64_t)1 << (8 * n - 1));
		int64_t hi = ((int64_t)1 << (8 * n - 1)) - 1;

		if (v >= lo && v <= hi)
			break;
	}
	op_arg(b, OP_LONG1, (uint64_t)n, 1);
	put_le(b + 2, (uint64_t)v, n);
	return pkw_write(w, b, (size_t)n + 2);
}

static int pkw_float(struct pkw *w, double f)
{
	unsigned char b[40];
	uint64_t u;
	size_t n;
	int rc;

	if (w->proto == 0) {
		b[0] = OP_FLOAT;
		rc = py_float_repr(f, (char *)b + 1, sizeof(b) - 2, &n);
		if (rc)
			return rc;
		b[n + 1] = '\n';
		return pkw_write(w, b, n + 2);
	}
	memcpy(&u, &f, 8);
	b[0] = OP_BINFLOAT;
	for (int i = 0; i < 8; i++)
		b[1 + i] = (unsigned char)(u >> (56 - 8 * i));
	return pkw_write(w, b, 9);
}

/* save_tuple: TUPLE1-3 from protocol 2 on, else MARK ... TUPLE; the
 * empty tuple is a singleton CPython never memoizes. */
static int pkw_tuple(struct pkw *w, const struct dc_py *items, size_t n)
{
	static const unsigned char len2op[] = { OP_EMPTY_TUPLE, OP_TUPLE1,
						OP_TUPLE2, OP_TUPLE3 };
	int marked = n > 3 || w->proto < 2;
	int rc = 0;

	if (n == 0)
		return w->proto ? pkw_op(w, OP_EMPTY_TUPLE)
				: pkw_write(w, "(t", 2);
	if (w->depth >= 8)
		return DC_INVAL;
	w->depth++;
	if (marked)
		rc = pkw_op(w, OP_MARK);
	for (size_t i = 0; !rc && i < n; i++)
		rc = pkw_save(w, &items[i]);
	if (!rc)
		rc = pkw_op(w, marked ? OP_TUPLE : len2op[n]);
	if (!rc)
		rc = pkw_memo_put(w);
	w->depth--;
	return rc;
}

static int pkw_save(struct pkw *w, const struct dc_py *o)
{
	struct shared *sh;
	int rc;

	rc = pkw_boundary(w);
	if (rc)
		return rc;
	switch (o->kind) {
	case DC_PY_NONE:
		return pkw_op(w, OP_NONE);
	case DC_PY_BOOL:
		if (w->proto < 2)
			return pkw_write(w, o->i ? "I01\n" : "I00\n", 4);
		return pkw_op(w, o->i ? OP_NEWTRUE : OP_NEWFALSE);
	case DC_PY_INT:
		return pkw_long(w, o->i);
	case DC_PY_FLOAT:
		return pkw_float(w, o->f);
	case DC_PY_STR:
	case DC_PY_BYTES: {
		enum shared_class cls = 0;

		if (o->len && !o->data)
			return DC_INVAL;
		if (o->kind == DC_PY_STR && !dc_utf8_check(o->data, o->len, 0))
			return DC_INVAL;
		/* 4-byte lengths only in protocols 1 to 3 (Python:
		 * OverflowError). */
		if (w->proto > 0 && w->proto < 4 &&
		    (uint64_t)o->len > 0xffffffffu)
			return DC_INVAL;
		if (is_singleton(o)) {
			cls = o->kind == DC_PY_STR ? SH_STR : SH_BYTES;
			sh = pkw_find(w, cls, o->data, o->len);
			if (sh)
				return pkw_memo_get(w, sh->idx);
		}
		if (o->kind == DC_PY_STR)
			rc = pkw_str_raw(w, o->data, o->len);
		else if (w->proto < 3)
			rc = pkw_bytes_reduce(w, o);
		else
			rc = pkw_bytes_raw(w, o->data, o->len);
		if (!rc)
			rc = pkw_memo_put(w);
		if (!rc && cls)
			rc = pkw_remember(w, cls, o->data, o->len);
		return rc;
	}
	case DC_PY_TYPE:
		if (!o->data || !o->len || memchr(o->data, '\n', o->len) ||
		    !dc_utf8_check(o->data, o->len, 0))
			return DC_INVAL;
		if ((o->len == 8 && memcmp(o->data, "ellipsis", 8) == 0) ||
		    (o->len == 18 &&
		     memcmp(o->data, "NotImplementedType", 18) == 0))
			return DC_INVAL;
		sh = pkw_find(w, SH_GLOBAL, o->data, o->len);
		if (sh)
			return pkw_memo_get(w, sh->idx);
		return pkw_type(w, o);
	case DC_PY_TUPLE:
		if (o->len && !o->items)
			return DC_INVAL;
		return pkw_tuple(w, o->items, o->len);
	}
	return DC_INVAL;
}

/* ------------------------------------------------------------------ */
/* Opcode scanner                                                     */
/* ------------------------------------------------------------------ */

struct pk_op {
	unsigned char code;
	size_t pos, end;          /* the opcode and its argument */
	const unsigned char *arg; /* string/bytes/line arguments */
	size_t arglen;
	uint64_t n; /* fixed-size integer argument (little-endian) */
};

/* pk_next - decode the opcode at @pos.  Returns 0, DC_CORRUPT (unknown
 * opcode, truncated argument). */
static int pk_next(const unsigned char *p, size_t len, size_t pos,
		   struct pk_op *op)
{
	size_t a = pos + 1, fixed = 0, lenbytes = 0, lines = 0;

	if (pos >= len)
		return DC_CORRUPT;
	op->code = p[pos];
	op->pos = pos;
	op->arg = NULL;
	op->arglen = 0;
	op->n = 0;
	switch (op->code) {
	case OP_MARK:
	case OP_STOP:
	case OP_POP:
	case OP_POP_MARK:
	case OP_DUP:
	case OP_NONE:
	case OP_BINPERSID:
	case OP_REDUCE:
	case OP_APPEND:
	case OP_BUILD:
	case OP_DICT:
	case OP_EMPTY_DICT:
	case OP_APPENDS:
	case OP_LIST:
	case OP_EMPTY_LIST:
	case OP_OBJ:
	case OP_SETITEM:
	case OP_TUPLE:
	case OP_EMPTY_TUPLE:
	case OP_SETITEMS:
	case OP_NEWOBJ:
	case OP_TUPLE1:
	case OP_TUPLE2:
	case OP_TUPLE3:
	case OP_NEWTRUE:
	case OP_NEWFALSE:
	case OP_EMPTY_SET:
	case OP_ADDITEMS:
	case OP_FROZENSET:
	case OP_NEWOBJ_EX:
	case OP_STACK_GLOBAL:
	case OP_MEMOIZE:
	case OP_NEXT_BUFFER:
	case OP_READONLY_BUFFER:
		break;
	case OP_BININT1:
	case OP_BINGET:
	case OP_BINPUT:
	case OP_EXT1:
	case OP_PROTO:
		fixed = 1;
		break;
	case OP_BININT2:
	case OP_EXT2:
		fixed = 2;
		break;
	case OP_BININT:
	case OP_LONG_BINGET:
	case OP_LONG_BINPUT:
	case OP_EXT4:
		fixed = 4;
		break;
	case OP_BINFLOAT:
	case OP_FRAME:
		fixed = 8;
		break;
	case OP_SHORT_BINSTRING:
	case OP_SHORT_BINBYTES:
	case OP_SHORT_BINUNICODE:
	case OP_LONG1:
		lenbytes = 1;
		break;
	case OP_BINSTRING:
	case OP_BINUNICODE:
	case OP_BINBYTES:
	case OP_LONG4:
		lenbytes = 4;
		break;
	case OP_BINUNICODE8:
	case OP_BINBYTES8:
	case OP_BYTEARRAY8:
		lenbytes = 8;
		break;
	case OP_FLOAT:
	case OP_INT:
	case OP_LONG:
	case OP_PERSID:
	case OP_STRING:
	case OP_UNICODE:
	case OP_GET:
	case OP_PUT:
		lines = 1;
		break;
	case OP_GLOBAL:
	case OP_INST:
		lines = 2;
		break;
	default:
		return DC_CORRUPT;
	}
	if (fixed) {
		if (len - a < fixed)
			return DC_CORRUPT;
		op->n = get_le(p + a, (int)fixed);
		op->arg = p + a;
		op->arglen = fixed;
		a += fixed;
	} else if (lenbytes) {
		uint64_t n;

		if (len - a < lenbytes)
			return DC_CORRUPT;
		n = get_le(p + a, (int)lenbytes);
		a += lenbytes;
		if (n > len - a)
			return DC_CORRUPT;
		op->n = n;
		op->arg = p + a;
		op->arglen = (size_t)n;
		a += (size_t)n;
	} else if (lines) {
		op->arg = p + a;
		while (lines--) {
			const unsigned char *nl = memchr(p + a, '\n', len - a);

			if (!nl)
				return DC_CORRUPT;
			a = (size_t)(nl - p) + 1;
		}
		op->arglen = a - (size_t)(op->arg - p);
		/* PUT and GET: a decimal memo id. */
		if (op->code == OP_PUT || op->code == OP_GET) {
			if (op->arglen < 2 || op->arglen > 20)
				return DC_CORRUPT;
			for (size_t i = 0; i + 1 < op->arglen; i++) {
				if (op->arg[i] < '0' || op->arg[i] > '9')
					return DC_CORRUPT;
				op->n =
				    op->n * 10 + (uint64_t)(op->arg[i] - '0');
			}
		}
	}
	op->end = a;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pickletools.optimize                                               */
/* ------------------------------------------------------------------ */

/* The protocol that introduced @code (pickletools' opcode.proto). */
static int op_proto(unsigned char code)
{
	switch (code) {
	case OP_BYTEARRAY8:
	case OP_NEXT_BUFFER:
	case OP_READONLY_BUFFER:
		return 5;
	case OP_SHORT_BINUNICODE:
	case OP_BINUNICODE8:
	case OP_BINBYTES8:
	case OP_EMPTY_SET:
	case OP_ADDITEMS:
	case OP_FROZENSET:
	case OP_NEWOBJ_EX:
	case OP_STACK_GLOBAL:
	case OP_MEMOIZE:
	case OP_FRAME:
		return 4;
	case OP_BINBYTES:
	case OP_SHORT_BINBYTES:
		return 3;
	case OP_PROTO:
	case OP_NEWOBJ:
	case OP_EXT1:
	case OP_EXT2:
	case OP_EXT4:
	case OP_TUPLE1:
	case OP_TUPLE2:
	case OP_TUPLE3:
	case OP_NEWTRUE:
	case OP_NEWFALSE:
	case OP_LONG1:
	case OP_LONG4:
		return 2;
	case OP_BININT:
	case OP_BININT1:
	case OP_BININT2:
	case OP_BINSTRING:
	case OP_SHORT_BINSTRING:
	case OP_BINUNICODE:
	case OP_BINFLOAT:
	case OP_EMPTY_LIST:
	case OP_APPENDS:
	case OP_EMPTY_TUPLE:
	case OP_EMPTY_DICT:
	case OP_SETITEMS:
	case OP_POP_MARK:
	case OP_BINGET:
	case OP_LONG_BINGET:
	case OP_BINPUT:
	case OP_LONG_BINPUT:
	case OP_OBJ:
	case OP_BINPERSID:
		return 1;
	default:
		return 0;
	}
}

/* pickle.py's _Framer writing into out: the current frame is kept in
 * out itself behind a 9-byte hole that commit fills or closes. */
struct pyframer {
	struct dc_buf *out;
	size_t start; /* offset of the hole, NO_FRAME when not framing */
};

static size_t pf_size(const struct pyframer *f)
{
	return f->out->len - f->start - FRAME_HEADER_SIZE;
}

static int pf_open(struct pyframer *f)
{
	int rc = dc_buf_reserve(f->out, f->out->len + FRAME_HEADER_SIZE + 1);

	if (rc)
		return rc;
	f->start = f->out->len;
	f->out->len += FRAME_HEADER_SIZE;
	return 0;
}

/* commit_frame(force): write the frame (with a FRAME header when it has
 * at least 4 bytes) and begin an empty one. */
static int pf_commit(struct pyframer *f, int force)
{
	if (f->start == NO_FRAME)
		return 0;
	if (pf_size(f) < FRAME_SIZE_TARGET && !force)
		return 0;
	frame_close(f->out, f->start);
	return pf_open(f);
}

static int pf_raw(struct pyframer *f, const void *p, size_t n)
{
	int rc = dc_buf_reserve(f->out, f->out->len + n + 1);

	if (rc)
		return rc;
	if (n)
		memcpy(f->out->data + f->out->len, p, n);
	f->out->len += n;
	return 0;
}

/* The writes of one opcode, with _Framer's rule before each. */
static int pf_op(struct pyframer *f, const void *p, size_t n)
{
	int frameless = n > FRAME_SIZE_TARGET;
	int rc = pf_commit(f, frameless);
	size_t hole;

	if (rc)
		return rc;
	if (!frameless || f->start == NO_FRAME)
		return pf_raw(f, p, n);
	/* Written to the file before the (empty) frame just opened: move the
	 * hole after the data. */
	hole = f->start;
	f->out->len = hole;
	rc = pf_raw(f, p, n);
	if (!rc)
		rc = pf_open(f);
	return rc;
}

/* Python: optimize(p) over the pickle at out->data + start. */
static int pk_optimize(struct dc_buf *out, size_t start)
{
	const unsigned char *p;
	unsigned char *src = NULL;
	size_t len = out->len - start, pos = 0, nput = 0;
	int32_t *newids = NULL; /* by old memo id: -1 unused, else new id */
	int proto = 0, rc;
	size_t hdr = 0;
	struct pk_op op = { 0 };
	struct pyframer f = { out, NO_FRAME };
	int32_t idx = 0;

	/* Work from a copy: the output is rebuilt in place. */
	src = malloc(len ? len : 1);
	if (!src)
		return ENOMEM;
	memcpy(src, out->data + start, len);
	p = src;
	/* Pass 1: which memo ids are fetched, and the protocol. */
	newids = calloc(len + 1, sizeof(*newids));
	if (!newids) {
		rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i <= len; i++)
		newids[i] = -1;
	while (pos < len) {
		rc = pk_next(p, len, pos, &op);
		if (rc)
			goto out;
		switch (op.code) {
		case OP_MEMOIZE:
			nput++;
			break;
		case OP_BINPUT:
		case OP_LONG_BINPUT:
		case OP_PUT:
			/* Only the pickles written above reach here: their
			 * PUT ids are sequential. */
			if (op.n != nput) {
				rc = DC_INVAL;
				goto out;
			}
			nput++;
			break;
		case OP_BINGET:
		case OP_LONG_BINGET:
		case OP_GET:
			if (op.n >= nput) {
				rc = DC_CORRUPT;
				goto out;
			}
			newids[op.n] = 0;
			proto = op_proto(op.code) > proto ? op_proto(op.code)
							  : proto;
			break;
		case OP_PROTO:
			if ((int)op.n > proto)
				proto = (int)op.n;
			if (pos == 0)
				hdr = op.end;
			break;
		case OP_FRAME:
			break;
		default:
			/* optimize() puts and gets with the highest protocol
			 * of any opcode: text memo opcodes only when all are
			 * protocol 0 ones. */
			proto = op_proto(op.code) > proto ? op_proto(op.code)
							  : proto;
			break;
		}
		pos = op.end;
		if (op.code == OP_STOP)
			break;
	}
	if (pos != len || op.code != OP_STOP) {
		rc = DC_CORRUPT;
		goto out;
	}
	/* Pass 2: rewrite. */
	out->len = start;
	rc = pf_raw(&f, p, hdr);
	if (rc)
		goto out;
	if (proto >= 4) {
		rc = pf_open(&f);
		if (rc)
			goto out;
	}
	pos = 0;
	nput = 0;
	while (pos < len) {
		unsigned char b[MEMO_OP_MAX];
		size_t bl = 0;

		pk_next(p, len, pos, &op);
		pos = op.end;
		switch (op.code) {
		case OP_MEMOIZE:
		case OP_BINPUT:
		case OP_LONG_BINPUT:
		case OP_PUT:
			if (newids[nput] < 0) {
				nput++;
				continue;
			}
			newids[nput++] = idx;
			bl = memo_op(b, 0, proto, (uint64_t)idx++);
			rc = pf_op(&f, b, bl);
			break;
		case OP_BINGET:
		case OP_LONG_BINGET:
		case OP_GET:
			bl = memo_op(b, 1, proto, (uint64_t)newids[op.n]);
			rc = pf_op(&f, b, bl);
			break;
		case OP_FRAME:
			continue;
		case OP_PROTO:
			if (op.pos == 0)
				continue;
			rc = pf_op(&f, p + op.pos, op.end - op.pos);
			break;
		default:
			rc = pf_op(&f, p + op.pos, op.end - op.pos);
			break;
		}
		if (rc)
			goto out;
		if (op.code == OP_STOP)
			break;
	}
	/* end_framing */
	if (f.start != NO_FRAME) {
		if (pf_size(&f) > 0) {
			rc = pf_commit(&f, 1);
			if (rc)
				goto out;
		}
		out->len = f.start;
	}
	rc = 0;
out:
	free(newids);
	free(src);
	return rc;
}

int dc_pickle_dumps(const struct dc_py *items, size_t n, int tuple,
		    int protocol, int optimize, struct dc_buf *out)
{
	struct pkw w = { .out = out,
			 .proto = protocol,
			 .frame_start = NO_FRAME };
	struct dc_py top;
	size_t start = out->len;
	unsigned char hdr[2];
	int rc;

	if (protocol < 0 || protocol > 5 || (n && !items) ||
	    (!tuple && n != 1)) {
		rc = DC_INVAL;
		goto out;
	}
	if (protocol < 3)
		for (unsigned c = 0; c < 256; c++)
			utf8_put((unsigned char *)w.latin1[c], c);
	if (tuple) {
		memset(&top, 0, sizeof(top));
		top.kind = DC_PY_TUPLE;
		top.items = items;
		top.len = n;
	} else {
		top = items[0];
	}
	/* PROTO from protocol 2 on; 0 and 1 just begin. */
	hdr[0] = OP_PROTO;
	hdr[1] = (unsigned char)protocol;
	rc = pkw_write(&w, hdr, protocol >= 2 ? 2 : 0);
	if (rc)
		goto out;
	w.framing = protocol >= 4;
	rc = pkw_save(&w, &top);
	if (!rc)
		rc = pkw_op(&w, OP_STOP);
	if (!rc)
		rc = pkw_commit(&w);
	if (!rc && optimize)
		rc = pk_optimize(out, start);
out:
	free(w.sh);
	if (rc)
		out->len = start;
	if (out->data && out->cap > out->len)
		out->data[out->len] = '\0';
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reader                                                             */
/* ------------------------------------------------------------------ */

enum {
	SV_MARK = 100,  /* a MARK on the stack */
	SV_TUPLE,       /* a tuple: its items are ar[start, start+len) */
	SV_OTHER,       /* a tuple holding a tuple or a function: only
			 * DC_TYPE if returned */
	SV_GLOBAL_TYPE, /* builtins.type, the callable of type(None) */
	SV_ENCODE,      /* _codecs.encode, the callable of old bytes */
};

struct sv {
	int kind; /* enum dc_py_kind or SV_* */
	struct dc_py v;
	size_t start; /* SV_TUPLE */
	/* v.data is in the decoded text, at text->data + toff (the buffer
	 * may move until the end). */
	int in_text;
	size_t toff;
};

struct pkr {
	struct sv *st; /* the stack */
	size_t nst, capst;
	struct sv *memo;
	size_t nmemo, capmemo;
	struct sv *ar; /* tuple items */
	size_t nar, capar;
	struct dc_buf *text; /* decoded strings */
};

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t cap2;
	void *n;

	if (need <= *cap)
		return 0;
	cap2 = *cap ? *cap * 2 : 16;
	while (cap2 < need)
		cap2 *= 2;
	n = realloc(*p, cap2 * size);
	if (!n)
		return ENOMEM;
	*p = n;
	*cap = cap2;
	return 0;
}

/* Where the data of @s is now. */
static const unsigned char *sv_data(const struct pkr *r, const struct sv *s)
{
	if (s->in_text)
		return (const unsigned char *)r->text->data + s->toff;
	return (const unsigned char *)s->v.data;
}

static int pkr_push(struct pkr *r, const struct sv *v)
{
	int rc = grow((void **)&r->st, &r->capst, r->nst + 1, sizeof(*v));

	if (!rc)
		r->st[r->nst++] = *v;
	return rc;
}

static int pkr_push_py(struct pkr *r, enum dc_py_kind kind, int64_t i, double f,
		       const void *data, size_t len)
{
	struct sv v = { .kind = (int)kind };

	v.v.kind = kind;
	v.v.i = i;
	v.v.f = f;
	v.v.data = data;
	v.v.len = len;
	return pkr_push(r, &v);
}

/* Push a str or bytes of @len bytes just decoded at text->data + @off. */
static int pkr_push_text(struct pkr *r, enum dc_py_kind kind, size_t off,
			 size_t len)
{
	struct sv v = { .kind = (int)kind, .in_text = 1, .toff = off };

	v.v.kind = kind;
	v.v.len = len;
	r->text->len = off + len;
	r->text->data[r->text->len] = '\0';
	return pkr_push(r, &v);
}

/* Room for @n more bytes of decoded text (and a NUL); returns where. */
static int text_reserve(struct pkr *r, size_t n, unsigned char **at)
{
	int rc;

	if (n > SIZE_MAX - r->text->len - 1)
		return ENOMEM;
	rc = dc_buf_reserve(r->text, r->text->len + n + 1);
	if (!rc)
		*at = (unsigned char *)r->text->data + r->text->len;
	return rc;
}

/* Pop the items above the topmost MARK (or the top @n when @n is not
 * SIZE_MAX) into a tuple. */
static int pkr_tuple(struct pkr *r, size_t n)
{
	struct sv t = { .kind = SV_TUPLE };
	size_t first;
	int rc;

	if (n == SIZE_MAX) {
		size_t m = r->nst;

		while (m > 0 && r->st[m - 1].kind != SV_MARK)
			m--;
		if (m == 0)
			return DC_CORRUPT;
		first = m;
	} else {
		if (r->nst < n)
			return DC_CORRUPT;
		first = r->nst - n;
	}
	rc = grow((void **)&r->ar, &r->capar, r->nar + (r->nst - first),
		  sizeof(*r->ar));
	if (rc)
		return rc;
	t.start = r->nar;
	t.v.len = r->nst - first;
	for (size_t i = first; i < r->nst; i++) {
		int k = r->st[i].kind;

		if (k == SV_TUPLE || k == SV_OTHER || k == SV_ENCODE)
			t.kind = SV_OTHER;
		else if (k == SV_MARK)
			return DC_CORRUPT;
		r->ar[r->nar++] = r->st[i];
	}
	r->nst = first;
	if (n == SIZE_MAX)
		r->nst--; /* the MARK */
	return pkr_push(r, &t);
}

/* Protocol 2 pickles name Python 2's builtins (_compat_pickle). */
static void builtin2(struct dc_py *v)
{
	static const char *const map[][2] = {
		{ "unicode", "str" }, { "basestring", "str" },
		{ "long", "int" },    { "xrange", "range" },
		{ "unichr", "chr" },
	};

	for (size_t i = 0; i < DC_ARRAY_SIZE(map); i++) {
		if (v->len == strlen(map[i][0]) &&
		    memcmp(v->data, map[i][0], v->len) == 0) {
			v->data = map[i][1];
			v->len = strlen(map[i][1]);
			return;
		}
	}
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* UNICODE's line (without its newline) as Python's raw-unicode-escape
 * decoder reads it: \uXXXX and \UXXXXXXXX are code points, a backslash
 * before anything else is itself, every other byte a Latin-1 code
 * point.  Plain ASCII stays in the pickle; the rest is decoded to
 * UTF-8.  A lone surrogate is a str UTF-8 cannot hold: DC_TYPE. */
static int pkr_unicode(struct pkr *r, const unsigned char *s, size_t len)
{
	unsigned char *o, *o0;
	size_t i;
	int rc;

	for (i = 0; i < len && s[i] < 0x80 && s[i] != '\\'; i++)
		;
	if (i == len)
		return pkr_push_py(r, DC_PY_STR, 0, 0, s, len);
	/* Each byte gives at most 2 bytes of UTF-8 (an escape fewer). */
	if (len > SIZE_MAX / 2)
		return ENOMEM;
	rc = text_reserve(r, 2 * len, &o0);
	if (rc)
		return rc;
	o = o0;
	for (i = 0; i < len;) {
		uint32_t cp = s[i++];

		if (cp == '\\' && i < len && (s[i] == 'u' || s[i] == 'U')) {
			int count = s[i++] == 'u' ? 4 : 8;

			for (cp = 0; count; count--, i++) {
				int d = i < len ? hexval(s[i]) : -1;

				if (d < 0)
					return DC_CORRUPT;
				cp = cp << 4 | (uint32_t)d;
			}
			if (cp > 0x10ffff)
				return DC_CORRUPT;
			if (cp >= 0xd800 && cp <= 0xdfff)
				return DC_TYPE;
		} else if (cp == '\\' && i < len) {
			*o++ = '\\';
			cp = s[i++];
		}
		o += utf8_put(o, cp);
	}
	return pkr_push_text(r, DC_PY_STR, r->text->len, (size_t)(o - o0));
}

/* STRING (a Python 2 str, which Python 3 reads as ASCII): quoted, and
 * read here only without escapes.  Returns DC_TYPE for escapes. */
static int pkr_string(struct pkr *r, const unsigned char *s, size_t len)
{
	if (len < 2 || s[0] != s[len - 1] || (s[0] != '\'' && s[0] != '"'))
		return DC_CORRUPT;
	for (size_t i = 1; i + 1 < len; i++) {
		if (s[i] == '\\')
			return DC_TYPE;
		if (s[i] >= 0x80)
			return DC_CORRUPT;
	}
	return pkr_push_py(r, DC_PY_STR, 0, 0, s + 1, len - 2);
}

/* BINSTRING and SHORT_BINSTRING: Python 2 str, decoded as ASCII. */
static int pkr_binstring(struct pkr *r, const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 0x80)
			return DC_CORRUPT; /* Python: UnicodeDecodeError */
	return pkr_push_py(r, DC_PY_STR, 0, 0, s, len);
}

/* A decimal line (INT, LONG) into a NUL-terminated copy at @buf; @suffix
 * drops LONG's trailing "L".  Returns DC_TYPE for a line too long to be
 * an int64 but made of digits, DC_CORRUPT for other junk. */
static int line_copy(const unsigned char *arg, size_t arglen, char *buf,
		     size_t cap, int suffix)
{
	size_t n = arglen - 1; /* without the newline */

	if (suffix && n > 0 && arg[n - 1] == 'L')
		n--;
	if (n >= cap) {
		for (size_t i = 0; i < n; i++)
			if ((arg[i] < '0' || arg[i] > '9') &&
			    !(i == 0 && (arg[i] == '-' || arg[i] == '+')))
				return DC_CORRUPT;
		return DC_TYPE;
	}
	memcpy(buf, arg, n);
	buf[n] = '\0';
	return 0;
}

/* INT ("I01\n" and "I00\n" are True and False: Python's load_int gives
 * a bool for a 2-character line of value 0 or 1) and LONG, read as
 * Python does, with strtol's base 0.  Outside int64: DC_TYPE. */
static int pkr_text_int(struct pkr *r, const struct pk_op *op)
{
	char buf[32], *end;
	long long v;
	int rc;

	if (op->arglen < 2)
		return DC_CORRUPT;
	rc = line_copy(op->arg, op->arglen, buf, sizeof(buf),
		       op->code == OP_LONG);
	if (rc)
		return rc;
	errno = 0;
	v = strtoll(buf, &end, 0);
	if (end == buf || *end)
		return DC_CORRUPT;
	if (errno == ERANGE)
		return DC_TYPE;
	if (op->code == OP_INT && op->arglen == 3 && (v == 0 || v == 1))
		return pkr_push_py(r, DC_PY_BOOL, v, 0, NULL, 0);
	return pkr_push_py(r, DC_PY_INT, v, 0, NULL, 0);
}

/* FLOAT: repr() text, in the C locale. */
static int pkr_text_float(struct pkr *r, const struct pk_op *op)
{
	char buf[512], *end;
	size_t n = op->arglen - 1;
	locale_t old;
	double d;
	int rc, err;

	if (n == 0 || n >= sizeof(buf) || op->arg[0] == ' ' ||
	    memchr(op->arg, 'x', n) || memchr(op->arg, 'X', n))
		return DC_CORRUPT;
	memcpy(buf, op->arg, n);
	buf[n] = '\0';
	rc = c_locale_enter(&old);
	if (rc)
		return rc;
	errno = 0;
	d = strtod(buf, &end);
	err = errno;
	uselocale(old);
	if (end == buf || *end || (err == ERANGE && isinf(d)))
		return DC_CORRUPT; /* Python: ValueError, OverflowError */
	return pkr_push_py(r, DC_PY_FLOAT, 0, d, NULL, 0);
}

/* _codecs.encode(@s, 'latin1'): the str's code points as bytes (none
 * above 255, or Python raises UnicodeEncodeError). */
static int pkr_latin1(struct pkr *r, const struct sv *s)
{
	const unsigned char *p = sv_data(r, s);
	unsigned char *o, *o0;
	size_t len = s->v.len, i;
	struct sv b;
	int rc;

	for (i = 0; i < len && p[i] < 0x80; i++)
		;
	if (i == len) {
		b = *s; /* ASCII: the same bytes */
		b.kind = DC_PY_BYTES;
		b.v.kind = DC_PY_BYTES;
		return pkr_push(r, &b);
	}
	rc = text_reserve(r, len, &o0);
	if (rc)
		return rc;
	p = sv_data(r, s); /* the text may have moved */
	o = o0;
	for (i = 0; i < len;) {
		int32_t cp = utf8_next(p, len, &i);

		if (cp < 0 || cp > 0xff)
			return DC_CORRUPT;
		*o++ = (unsigned char)cp;
	}
	return pkr_push_text(r, DC_PY_BYTES, r->text->len, (size_t)(o - o0));
}

/* REDUCE of the few calls the picklers write for our kinds: type(None)
 * for NoneType; below protocol 3, bytes() for b'' and
 * _codecs.encode(str, 'latin1') for other bytes.  Else DC_TYPE. */
static int pkr_reduce(struct pkr *r)
{
	struct sv fn, args, a0, a1;

	if (r->nst < 2)
		return DC_CORRUPT;
	fn = r->st[r->nst - 2];
	args = r->st[r->nst - 1];
	if (fn.kind == SV_MARK || args.kind == SV_MARK)
		return DC_CORRUPT;
	if (args.kind != SV_TUPLE)
		return DC_TYPE;
	r->nst -= 2;
	if (fn.kind == SV_GLOBAL_TYPE && args.v.len == 1 &&
	    r->ar[args.start].kind == DC_PY_NONE)
		return pkr_push_py(r, DC_PY_TYPE, 0, 0, "NoneType", 8);
	if (fn.kind == DC_PY_TYPE && fn.v.len == 5 &&
	    memcmp(fn.v.data, "bytes", 5) == 0 && args.v.len == 0)
		return pkr_push_py(r, DC_PY_BYTES, 0, 0, "", 0);
	if (fn.kind != SV_ENCODE || args.v.len != 2)
		return DC_TYPE;
	a0 = r->ar[args.start];
	a1 = r->ar[args.start + 1];
	if (a0.kind != DC_PY_STR || a1.kind != DC_PY_STR || a1.v.len != 6 ||
	    memcmp(sv_data(r, &a1), "latin1", 6) != 0)
		return DC_TYPE;
	return pkr_latin1(r, &a0);
}

/* GLOBAL and STACK_GLOBAL: builtin types (also by their Python 2 names),
 * and _codecs.encode. */
static int pkr_global(struct pkr *r, const struct pk_op *op)
{
	const unsigned char *mod, *name;
	size_t ml, nl;
	struct sv g = { .kind = DC_PY_TYPE };

	if (op->code == OP_STACK_GLOBAL) {
		struct sv *a, *b;

		if (r->nst < 2)
			return DC_CORRUPT;
		a = &r->st[r->nst - 2];
		b = &r->st[r->nst - 1];
		if (a->kind != DC_PY_STR || b->kind != DC_PY_STR)
			return DC_CORRUPT;
		/* Names come as SHORT_BINUNICODE, never decoded text. */
		if (a->in_text || b->in_text)
			return DC_TYPE;
		mod = (const unsigned char *)a->v.data;
		ml = a->v.len;
		name = (const unsigned char *)b->v.data;
		nl = b->v.len;
		r->nst -= 2;
	} else {
		const unsigned char *nl1;

		mod = op->arg;
		nl1 = memchr(mod, '\n', op->arglen);
		ml = (size_t)(nl1 - mod);
		name = nl1 + 1;
		nl = op->arglen - ml - 2;
	}
	if (ml == 7 && !memcmp(mod, "_codecs", 7) && nl == 6 &&
	    !memcmp(name, "encode", 6)) {
		struct sv e = { .kind = SV_ENCODE };

		return pkr_push(r, &e);
	}
	if (!((ml == 8 && !memcmp(mod, "builtins", 8)) ||
	      (ml == 11 && !memcmp(mod, "__builtin__", 11)) ||
	      (ml == 10 && !memcmp(mod, "exceptions", 10))) ||
	    nl == 0 || memchr(name, '.', nl))
		return DC_TYPE;
	g.v.kind = DC_PY_TYPE;
	g.v.data = (const char *)name;
	g.v.len = nl;
	if (ml == 11)
		builtin2(&g.v);
	if (nl == 4 && !memcmp(name, "type", 4))
		g.kind = SV_GLOBAL_TYPE;
	return pkr_push(r, &g);
}

/* PUT, BINPUT, LONG_BINPUT and MEMOIZE: remember the top of the stack. */
static int pkr_memo_put(struct pkr *r, size_t id)
{
	int rc;

	if (r->nst == 0 || r->st[r->nst - 1].kind == SV_MARK)
		return DC_CORRUPT;
	/* Picklers number memos in order; a far-off id would only make us
	 * allocate. */
	if (id > r->nmemo + 4096)
		return DC_TYPE;
	rc = grow((void **)&r->memo, &r->capmemo, id + 1, sizeof(*r->memo));
	if (rc)
		return rc;
	while (r->nmemo <= id)
		r->memo[r->nmemo++].kind = -1;
	r->memo[id] = r->st[r->nst - 1];
	return 0;
}

static int pkr_run(struct pkr *r, const unsigned char *p, size_t len)
{
	size_t pos = 0;
	struct pk_op op;
	int rc;

	for (;;) {
		rc = pk_next(p, len, pos, &op);
		if (rc)
			return rc;
		pos = op.end;
		switch (op.code) {
		case OP_PROTO:
			if (op.n > 5)
				return DC_CORRUPT;
			break;
		case OP_FRAME:
			/* Frames only group bytes; their bounds need not be
			 * checked to read the opcodes right. */
			if (op.n > len - pos)
				return DC_CORRUPT;
			break;
		case OP_STOP:
			return pos == len ? 0 : DC_CORRUPT;
		case OP_MARK: {
			struct sv m = { .kind = SV_MARK };

			rc = pkr_push(r, &m);
			break;
		}
		case OP_NONE:
			rc = pkr_push_py(r, DC_PY_NONE, 0, 0, NULL, 0);
			break;
		case OP_NEWTRUE:
		case OP_NEWFALSE:
			rc = pkr_push_py(r, DC_PY_BOOL, op.code == OP_NEWTRUE,
					 0, NULL, 0);
			break;
		case OP_INT:
		case OP_LONG:
			rc = pkr_text_int(r, &op);
			break;
		case OP_BININT1:
		case OP_BININT2:
			rc = pkr_push_py(r, DC_PY_INT, (int64_t)op.n, 0, NULL,
					 0);
			break;
		case OP_BININT:
			rc = pkr_push_py(r, DC_PY_INT, (int32_t)(uint32_t)op.n,
					 0, NULL, 0);
			break;
		case OP_LONG1:
		case OP_LONG4: {
			uint64_t u = 0;
			size_t n = op.arglen;

			/* Trim redundant sign bytes, then it must fit. */
			while (
			    n > 8 &&
			    ((op.arg[n - 1] == 0 && !(op.arg[n - 2] & 0x80)) ||
			     (op.arg[n - 1] == 0xff && (op.arg[n - 2] & 0x80))))
				n--;
			if (n > 8)
				return DC_TYPE;
			if (n == 0) {
				rc = pkr_push_py(r, DC_PY_INT, 0, 0, NULL, 0);
				break;
			}
			u = get_le(op.arg, (int)n);
			if (n < 8 && (op.arg[n - 1] & 0x80))
				u |= ~(uint64_t)0 << (8 * n);
			rc = pkr_push_py(r, DC_PY_INT, (int64_t)u, 0, NULL, 0);
			break;
		}
		case OP_FLOAT:
			rc = pkr_text_float(r, &op);
			break;
		case OP_BINFLOAT: {
			uint64_t u = 0;
			double d;

			for (int i = 0; i < 8; i++)
				u = (u << 8) | op.arg[i];
			memcpy(&d, &u, 8);
			rc = pkr_push_py(r, DC_PY_FLOAT, 0, d, NULL, 0);
			break;
		}
		case OP_UNICODE:
			rc = pkr_unicode(r, op.arg, op.arglen - 1);
			break;
		case OP_STRING:
			rc = pkr_string(r, op.arg, op.arglen - 1);
			break;
		case OP_SHORT_BINSTRING:
		case OP_BINSTRING:
			rc = pkr_binstring(r, op.arg, op.arglen);
			break;
		case OP_SHORT_BINUNICODE:
		case OP_BINUNICODE:
		case OP_BINUNICODE8:
			rc = pkr_push_py(r, DC_PY_STR, 0, 0, op.arg, op.arglen);
			break;
		case OP_SHORT_BINBYTES:
		case OP_BINBYTES:
		case OP_BINBYTES8:
			rc = pkr_push_py(r, DC_PY_BYTES, 0, 0, op.arg,
					 op.arglen);
			break;
		case OP_EMPTY_TUPLE:
			rc = pkr_tuple(r, 0);
			break;
		case OP_TUPLE1:
		case OP_TUPLE2:
		case OP_TUPLE3:
			rc = pkr_tuple(r, (size_t)(op.code - OP_TUPLE1 + 1));
			break;
		case OP_TUPLE:
			rc = pkr_tuple(r, SIZE_MAX);
			break;
		case OP_MEMOIZE:
			rc = pkr_memo_put(r, r->nmemo);
			break;
		case OP_PUT:
		case OP_BINPUT:
		case OP_LONG_BINPUT:
			rc = pkr_memo_put(r, (size_t)op.n);
			break;
		case OP_GET:
		case OP_BINGET:
		case OP_LONG_BINGET:
			if (op.n >= r->nmemo || r->memo[op.n].kind < 0)
				return DC_CORRUPT;
			rc = pkr_push(r, &r->memo[op.n]);
			break;
		case OP_STACK_GLOBAL:
		case OP_GLOBAL:
			rc = pkr_global(r, &op);
			break;
		case OP_REDUCE:
			rc = pkr_reduce(r);
			break;
		case OP_POP:
			if (r->nst == 0)
				return DC_CORRUPT;
			r->nst--;
			break;
		default:
			/* Well-formed, but builds something else. */
			return DC_TYPE;
		}
		if (rc)
			return rc;
	}
}

/* @s as the caller gets it: text data resolved to where it ended up. */
static struct dc_py sv_out(const struct pkr *r, const struct sv *s)
{
	struct dc_py v = s->v;

	if (s->in_text)
		v.data = (const char *)sv_data(r, s);
	return v;
}

int dc_unpickle(const void *data, size_t len, struct dc_py *items, size_t max,
		size_t *n, int *is_tuple, struct dc_buf *text)
{
	struct pkr r = { 0 };
	struct sv *top;
	int rc;

	*n = 0;
	*is_tuple = 0;
	if (!text) {
		rc = DC_INVAL;
		goto out;
	}
	text->len = 0;
	r.text = text;
	if (!data || len < 1) {
		rc = DC_CORRUPT;
		goto out;
	}
	rc = pkr_run(&r, data, len);
	if (rc)
		goto out;
	if (r.nst != 1) {
		rc = DC_CORRUPT;
		goto out;
	}
	top = &r.st[0];
	if (top->kind == SV_GLOBAL_TYPE)
		top->kind = DC_PY_TYPE;
	if (top->kind == SV_TUPLE) {
		if (top->v.len > max) {
			rc = DC_INVAL;
			goto out;
		}
		for (size_t i = 0; i < top->v.len; i++)
			items[i] = sv_out(&r, &r.ar[top->start + i]);
		*n = top->v.len;
		*is_tuple = 1;
	} else if (top->kind == SV_MARK) {
		rc = DC_CORRUPT;
	} else if (top->kind == SV_OTHER || top->kind == SV_ENCODE) {
		rc = DC_TYPE;
	} else {
		if (max < 1) {
			rc = DC_INVAL;
			goto out;
		}
		items[0] = sv_out(&r, top);
		*n = 1;
	}
out:
	free(r.st);
	free(r.memo);
	free(r.ar);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The cache's protocol                                               */
/* ------------------------------------------------------------------ */

int dc_pickle_protocol(dc_cache *cache, int *proto)
{
	/* As Python's Disk, the protocol read when the handle was opened
	 * (or last reset): shard 0's, whose Disk a FanoutCache uses. */
	int p = atomic_load_explicit(&cache->shards[0]->pickle_protocol,
				     memory_order_relaxed);

	*proto = p < 0 ? 5 : p;
	return p < 0 ? DC_INVAL : 0;
}
