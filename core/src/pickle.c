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
 * The optimizer is pickletools.optimize() on those bytes: it drops
 * memoizations nobody fetches, renumbers the rest and frames again the
 * way pickle.py's _Framer does (a different rule from the C pickler's).
 */
#include "pickle.h"

#include "internal.h"

#include <errno.h>
#include <math.h>
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

/* Encode at @b the memo opcode for index @idx: a put (@get 0; MEMOIZE
 * from protocol 4 on) or a get, each in its 1-byte form below 256. */
static size_t memo_op(unsigned char b[5], int get, int proto, uint64_t idx)
{
	if (!get && proto >= 4) {
		b[0] = OP_MEMOIZE;
		return 1;
	}
	if (idx < 256)
		return op_arg(b, get ? OP_BINGET : OP_BINPUT, idx, 1);
	return op_arg(b, get ? OP_LONG_BINGET : OP_LONG_BINPUT, idx, 4);
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
	unsigned char b[5];
	int rc;

	rc = pkw_write(w, b, memo_op(b, 0, w->proto, w->memo_len));
	if (!rc)
		w->memo_len++;
	return rc;
}

static int pkw_memo_get(struct pkw *w, uint32_t idx)
{
	unsigned char b[5];

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

static int pkw_str_raw(struct pkw *w, const char *s, size_t len)
{
	unsigned char h[9];
	size_t hl;

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

/* save_global: STACK_GLOBAL (4+) of builtins.<name>. */
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
		rc = pkw_op(w, OP_GLOBAL);
		if (!rc)
			rc = pkw_write(w, "builtins\n", 9);
		if (!rc)
			rc = pkw_write(w, name, len);
		if (!rc)
			rc = pkw_write(w, "\n", 1);
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

static int pkw_long(struct pkw *w, int64_t v)
{
	unsigned char b[10];
	int n;

	if (v >= 0 && v <= 0xff)
		return pkw_write(w, b, op_arg(b, OP_BININT1, (uint64_t)v, 1));
	if (v >= 0 && v <= 0xffff)
		return pkw_write(w, b, op_arg(b, OP_BININT2, (uint64_t)v, 2));
	if (v >= INT32_MIN && v <= INT32_MAX)
		return pkw_write(w, b, op_arg(b, OP_BININT, (uint64_t)v, 4));
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
	unsigned char b[9];
	uint64_t u;

	memcpy(&u, &f, 8);
	b[0] = OP_BINFLOAT;
	for (int i = 0; i < 8; i++)
		b[1 + i] = (unsigned char)(u >> (56 - 8 * i));
	return pkw_write(w, b, 9);
}

static int pkw_tuple(struct pkw *w, const struct dc_py *items, size_t n)
{
	static const unsigned char len2op[] = { OP_EMPTY_TUPLE, OP_TUPLE1,
						OP_TUPLE2, OP_TUPLE3 };
	int rc = 0;

	if (n == 0)
		return pkw_op(w, OP_EMPTY_TUPLE);
	if (w->depth >= 8)
		return DC_INVAL;
	w->depth++;
	if (n > 3)
		rc = pkw_op(w, OP_MARK);
	for (size_t i = 0; !rc && i < n; i++)
		rc = pkw_save(w, &items[i]);
	if (!rc)
		rc = pkw_op(w, n > 3 ? OP_TUPLE : len2op[n]);
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
		/* Protocol 3 has no 8-byte lengths (Python: OverflowError). */
		if (w->proto < 4 && (uint64_t)o->len > 0xffffffffu)
			return DC_INVAL;
		if (is_singleton(o)) {
			cls = o->kind == DC_PY_STR ? SH_STR : SH_BYTES;
			sh = pkw_find(w, cls, o->data, o->len);
			if (sh)
				return pkw_memo_get(w, sh->idx);
		}
		if (o->kind == DC_PY_STR)
			rc = pkw_str_raw(w, o->data, o->len);
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
	}
	op->end = a;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pickletools.optimize                                               */
/* ------------------------------------------------------------------ */

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
			if (op.code == OP_PUT || op.n != nput) {
				rc = DC_INVAL;
				goto out;
			}
			nput++;
			break;
		case OP_BINGET:
		case OP_LONG_BINGET:
			if (op.n >= nput) {
				rc = DC_CORRUPT;
				goto out;
			}
			newids[op.n] = 0;
			break;
		case OP_GET:
			rc = DC_INVAL;
			goto out;
		case OP_PROTO:
			if ((int)op.n > proto)
				proto = (int)op.n;
			if (pos == 0)
				hdr = op.end;
			break;
		default:
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
		unsigned char b[5];
		size_t bl = 0;

		pk_next(p, len, pos, &op);
		pos = op.end;
		switch (op.code) {
		case OP_MEMOIZE:
		case OP_BINPUT:
		case OP_LONG_BINPUT:
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

	if (protocol < 3 || protocol > 5 || (n && !items) ||
	    (!tuple && n != 1)) {
		rc = DC_INVAL;
		goto out;
	}
	if (tuple) {
		memset(&top, 0, sizeof(top));
		top.kind = DC_PY_TUPLE;
		top.items = items;
		top.len = n;
	} else {
		top = items[0];
	}
	hdr[0] = OP_PROTO;
	hdr[1] = (unsigned char)protocol;
	rc = pkw_write(&w, hdr, 2);
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
	SV_NESTED,      /* a tuple holding a tuple: only DC_TYPE if returned */
	SV_GLOBAL_TYPE, /* builtins.type, the callable of type(None) */
};

struct sv {
	int kind; /* enum dc_py_kind or SV_* */
	struct dc_py v;
	size_t start; /* SV_TUPLE */
};

struct pkr {
	struct sv *st; /* the stack */
	size_t nst, capst;
	struct sv *memo;
	size_t nmemo, capmemo;
	struct dc_py *ar; /* tuple items */
	size_t nar, capar;
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
		if (r->st[i].kind == SV_TUPLE || r->st[i].kind == SV_NESTED)
			t.kind = SV_NESTED;
		else if (r->st[i].kind == SV_MARK)
			return DC_CORRUPT;
		r->ar[r->nar++] = r->st[i].v;
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

static int pkr_run(struct pkr *r, const unsigned char *p, size_t len)
{
	size_t pos = 0;
	struct pk_op op;
	int rc, proto = 0;

	for (;;) {
		rc = pk_next(p, len, pos, &op);
		if (rc)
			return rc;
		pos = op.end;
		switch (op.code) {
		case OP_PROTO:
			proto = (int)op.n;
			if (proto > 5)
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
		case OP_BINFLOAT: {
			uint64_t u = 0;
			double d;

			for (int i = 0; i < 8; i++)
				u = (u << 8) | op.arg[i];
			memcpy(&d, &u, 8);
			rc = pkr_push_py(r, DC_PY_FLOAT, 0, d, NULL, 0);
			break;
		}
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
		case OP_BINPUT:
		case OP_LONG_BINPUT: {
			size_t id =
			    op.code == OP_MEMOIZE ? r->nmemo : (size_t)op.n;

			if (r->nst == 0 || r->st[r->nst - 1].kind == SV_MARK)
				return DC_CORRUPT;
			/* Picklers number memos in order; a far-off id
			 * would only make us allocate. */
			if (id > r->nmemo + 4096)
				return DC_TYPE;
			rc = grow((void **)&r->memo, &r->capmemo, id + 1,
				  sizeof(*r->memo));
			if (rc)
				return rc;
			while (r->nmemo <= id)
				r->memo[r->nmemo++].kind = -1;
			r->memo[id] = r->st[r->nst - 1];
			break;
		}
		case OP_BINGET:
		case OP_LONG_BINGET:
			if (op.n >= r->nmemo || r->memo[op.n].kind < 0)
				return DC_CORRUPT;
			rc = pkr_push(r, &r->memo[op.n]);
			break;
		case OP_STACK_GLOBAL:
		case OP_GLOBAL: {
			const unsigned char *mod, *name;
			size_t ml, nl;
			struct sv g = { .kind = DC_PY_TYPE };

			if (op.code == OP_STACK_GLOBAL) {
				struct sv *a, *b;

				if (r->nst < 2)
					return DC_CORRUPT;
				a = &r->st[r->nst - 2];
				b = &r->st[r->nst - 1];
				if (a->kind != DC_PY_STR ||
				    b->kind != DC_PY_STR)
					return DC_CORRUPT;
				mod = (const unsigned char *)a->v.data;
				ml = a->v.len;
				name = (const unsigned char *)b->v.data;
				nl = b->v.len;
				r->nst -= 2;
			} else {
				const unsigned char *nl1;

				mod = op.arg;
				nl1 = memchr(mod, '\n', op.arglen);
				ml = (size_t)(nl1 - mod);
				name = nl1 + 1;
				nl = op.arglen - ml - 2;
			}
			if (!((ml == 8 && !memcmp(mod, "builtins", 8)) ||
			      (ml == 11 && !memcmp(mod, "__builtin__", 11))) ||
			    nl == 0 || memchr(name, '.', nl))
				return DC_TYPE;
			g.v.kind = DC_PY_TYPE;
			g.v.data = (const char *)name;
			g.v.len = nl;
			if (ml == 11)
				builtin2(&g.v);
			if (nl == 4 && !memcmp(name, "type", 4))
				g.kind = SV_GLOBAL_TYPE;
			rc = pkr_push(r, &g);
			break;
		}
		case OP_REDUCE: {
			struct sv *fn, *args;
			struct sv t = { .kind = DC_PY_TYPE };

			/* Only type(None), the pickle of NoneType. */
			if (r->nst < 2)
				return DC_CORRUPT;
			fn = &r->st[r->nst - 2];
			args = &r->st[r->nst - 1];
			if (fn->kind != SV_GLOBAL_TYPE ||
			    args->kind != SV_TUPLE || args->v.len != 1 ||
			    r->ar[args->start].kind != DC_PY_NONE)
				return DC_TYPE;
			r->nst -= 2;
			t.v.kind = DC_PY_TYPE;
			t.v.data = "NoneType";
			t.v.len = 8;
			rc = pkr_push(r, &t);
			break;
		}
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

int dc_unpickle(const void *data, size_t len, struct dc_py *items, size_t max,
		size_t *n, int *is_tuple)
{
	struct pkr r = { 0 };
	struct sv *top;
	int rc;

	*n = 0;
	*is_tuple = 0;
	if (!data || len < 2 || ((const unsigned char *)data)[0] != OP_PROTO ||
	    ((const unsigned char *)data)[1] < 2) {
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
			items[i] = r.ar[top->start + i];
		*n = top->v.len;
		*is_tuple = 1;
	} else if (top->kind == SV_NESTED || top->kind == SV_MARK) {
		rc = top->kind == SV_MARK ? DC_CORRUPT : DC_TYPE;
	} else {
		if (max < 1) {
			rc = DC_INVAL;
			goto out;
		}
		items[0] = top->v;
		*n = 1;
	}
out:
	free(r.st);
	free(r.memo);
	free(r.ar);
	return rc;
}
