/* check_serializer.c - custom serialization: dc_options.serializer and zlib
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only.  What a serializer stored is checked by
 * reading the same directory through a second handle without one, and the
 * zlib serializer's bytes against zlib's own compress2().
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

Suite *serializer_suite(void);

static char *root;

static void setup(void)
{
	root = tu_mkdtemp();
}

static void teardown(void)
{
	tu_rmdtemp(&root);
}

static dc_cache *open_with(const char *dir, const struct dc_serializer *ser,
			   int shards)
{
	struct dc_options o;
	dc_cache *c = NULL;

	memset(&o, 0, sizeof(o));
	o.serializer = ser;
	o.shards = shards;
	ck_assert_int_eq(dc_cache_open(dir, &o, &c), 0);
	return c;
}

/* Deterministic bytes: incompressible (xorshift) or repetitive text. */
static unsigned char *make_random(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint64_t x = seed | 1;

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	return p;
}

static unsigned char *make_text(size_t n)
{
	static const char words[] = "the quick brown fox jumps over ";
	unsigned char *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)words[i % (sizeof(words) - 1)];
	return p;
}

/* zlib.compress(data, level) as Python computes it. */
static unsigned char *zcompress(const void *data, size_t len, int level,
				size_t *out_len)
{
	uLongf n = compressBound((uLong)len);
	unsigned char *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(
	    compress2(p, &n, len ? data : (const void *)"", (uLong)len, level),
	    Z_OK);
	*out_len = n;
	return p;
}

static void assert_value_eq(const struct dc_value *got,
			    const struct dc_value *want)
{
	ck_assert_int_eq(got->type, want->type);
	switch (want->type) {
	case DC_TYPE_INT:
		ck_assert(got->i == want->i);
		break;
	case DC_TYPE_FLOAT:
		ck_assert(got->f == want->f);
		break;
	case DC_TYPE_NONE:
		break;
	default:
		ck_assert_uint_eq(got->len, want->len);
		ck_assert_ptr_nonnull(got->data);
		ck_assert(want->len == 0 ||
			  memcmp(got->data, want->data, want->len) == 0);
		/* Output data is always NUL-terminated. */
		ck_assert_int_eq(((const char *)got->data)[got->len], 0);
	}
}

/* Read @key through @c and compare with @want; the tag must read back as
 * @tag (NULL: none). */
static void assert_get(dc_cache *c, const struct dc_value *key,
		       const struct dc_value *want, const char *tag)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, key, &buf, &it, 0), 0);
	assert_value_eq(&it.value, want);
	if (tag) {
		ck_assert_int_eq(it.tag.type, DC_TYPE_TEXT);
		ck_assert_uint_eq(it.tag.len, strlen(tag));
		ck_assert(memcmp(it.tag.data, tag, it.tag.len) == 0);
	} else {
		ck_assert_int_eq(it.tag.type, DC_TYPE_NONE);
	}
	dc_buf_release(&buf);
}

/* The raw stored value of @key, through a handle without serializer. */
static void get_raw(const char *dir, const struct dc_value *key,
		    struct dc_buf *buf, struct dc_item *it)
{
	dc_cache *raw = open_with(dir, NULL, 0);

	tu_item_init(it);
	ck_assert_int_eq(dc_cache_get(raw, key, buf, it, 0), 0);
	dc_cache_close(raw);
}

/* ------------------------------------------------------------------ */
/* The zlib serializer                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_zlib_levels)
{
	ck_assert_ptr_null(dc_serializer_zlib(-2));
	ck_assert_ptr_null(dc_serializer_zlib(10));
	ck_assert_ptr_null(dc_serializer_zlib(1000));
	for (int l = -1; l <= 9; l++) {
		const struct dc_serializer *s = dc_serializer_zlib(l);

		ck_assert_ptr_nonnull(s);
		ck_assert_ptr_nonnull(s->store);
		ck_assert_ptr_nonnull(s->fetch);
		/* One static instance per level. */
		ck_assert_ptr_eq(s, dc_serializer_zlib(l));
		if (l > -1)
			ck_assert_ptr_ne(s, dc_serializer_zlib(l - 1));
	}
}
END_TEST

/* Every type round-trips; only bytes are transformed. */
START_TEST(test_zlib_round_trip_all_types)
{
	dc_cache *c = open_with(root, dc_serializer_zlib(6), 0);
	unsigned char *rnd = make_random(100000, 7);
	unsigned char *txt = make_text(1 << 20);
	struct dc_value tag = dc_text("a-tag");
	struct dc_value vals[] = {
		dc_int(-42),
		dc_float(2.5),
		dc_text("h\xc3\xa9llo"),
		dc_textn((const char *)txt, 40000), /* a TEXT value file */
		dc_bytes("", 0),
		dc_bytes("abc\0def", 7),
		dc_bytes(rnd, 100000),  /* compressed stays a file */
		dc_bytes(txt, 1 << 20), /* compresses to an inline blob */
		dc_bytes(rnd, 40000),   /* file whatever its compression */
		dc_pickle("\x80\x05N.", 4),
	};
	const size_t n = sizeof(vals) / sizeof(vals[0]);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	for (size_t i = 0; i < n; i++) {
		struct dc_value key = dc_int((int64_t)i);

		ck_assert_int_eq(dc_cache_set(c, &key, &vals[i], DC_NO_EXPIRE,
					      i % 2 ? &tag : NULL, 0),
				 0);
	}
	for (size_t i = 0; i < n; i++) {
		struct dc_value key = dc_int((int64_t)i);

		assert_get(c, &key, &vals[i], i % 2 ? "a-tag" : NULL);
	}
	/* What the row holds: numbers, text and pickles as they were. */
	for (size_t i = 0; i < n; i++) {
		struct dc_value key = dc_int((int64_t)i);

		get_raw(root, &key, &buf, &it);
		if (vals[i].type != DC_TYPE_BYTES) {
			assert_value_eq(&it.value, &vals[i]);
		} else {
			size_t zl;
			unsigned char *z =
			    zcompress(vals[i].data, vals[i].len, 6, &zl);
			struct dc_value want = dc_bytes(z, zl);

			assert_value_eq(&it.value, &want);
			free(z);
		}
	}
	/* A value file where the stored length reaches min_file_size. */
	{
		struct dc_value k6 = dc_int(6), k7 = dc_int(7), k3 = dc_int(3);

		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_get(c, &k6, &buf, &it, 0), 0);
		ck_assert_int_eq(it.file_backed, 1);
		/* size describes the stored (compressed) value. */
		ck_assert_uint_gt(it.size, 100000);
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_get(c, &k7, &buf, &it, 0), 0);
		ck_assert_int_eq(it.file_backed, 0);
		ck_assert_uint_eq(it.value.len, 1 << 20);
		ck_assert_uint_lt(it.size, 32768);
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_get(c, &k3, &buf, &it, 0), 0);
		ck_assert_int_eq(it.file_backed, 1);
	}
	dc_buf_release(&buf);
	free(rnd);
	free(txt);
	dc_cache_close(c);
}
END_TEST

/* Each level stores exactly compress2(data, level), i.e. Python's
 * zlib.compress(data, level); a handle without serializer sees it. */
START_TEST(test_zlib_stores_compress2_bytes)
{
	unsigned char *txt = make_text(5000);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	for (int l = -1; l <= 9; l++) {
		dc_cache *c = open_with(root, dc_serializer_zlib(l), 0);
		struct dc_value key = dc_int(l), val = dc_bytes(txt, 5000);
		unsigned char *z;
		size_t zl;

		ck_assert_int_eq(
		    dc_cache_set(c, &key, &val, DC_NO_EXPIRE, NULL, 0), 0);
		dc_cache_close(c);
		get_raw(root, &key, &buf, &it);
		z = zcompress(txt, 5000, l, &zl);
		ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
		ck_assert_uint_eq(it.value.len, zl);
		ck_assert(memcmp(it.value.data, z, zl) == 0);
		if (l != 0)
			ck_assert_uint_lt(zl, 5000);
		free(z);
	}
	/* Any level reads any other's output. */
	{
		dc_cache *c = open_with(root, dc_serializer_zlib(1), 0);
		struct dc_value want = dc_bytes(txt, 5000);

		for (int l = -1; l <= 9; l++) {
			struct dc_value key = dc_int(l);

			assert_get(c, &key, &want, NULL);
		}
		dc_cache_close(c);
	}
	dc_buf_release(&buf);
	free(txt);
}
END_TEST

/* Stored bytes that are not zlib read as DC_CORRUPT, never a crash;
 * writing them through a raw handle puts them there. */
START_TEST(test_zlib_garbage_is_corrupt)
{
	dc_cache *raw = open_with(root, NULL, 0);
	dc_cache *c = open_with(root, dc_serializer_zlib(-1), 0);
	unsigned char *txt = make_text(70000);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	unsigned char *z;
	size_t zl;
	struct dc_value key = dc_text("k");
	struct dc_value v;
	int rc;

	z = zcompress(txt, 70000, 9, &zl);
	/* Plain garbage, empty, truncated streams, a flipped byte. */
	{
		struct dc_value bad[] = {
			dc_bytes("not zlib at all", 15),
			dc_bytes("", 0),
			dc_bytes(z, 2),
			dc_bytes(z, zl / 2),
			dc_bytes(z, zl - 1), /* adler32 cut short */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ck_assert_int_eq(dc_cache_set(raw, &key, &bad[i],
						      DC_NO_EXPIRE, NULL, 0),
					 0);
			tu_item_init(&it);
			ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0),
					 DC_CORRUPT);
		}
	}
	z[zl - 1] ^= 0x55; /* wrong adler32 */
	v = dc_bytes(z, zl);
	ck_assert_int_eq(dc_cache_set(raw, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), DC_CORRUPT);
	z[zl - 1] ^= 0x55;

	/* Bytes after a complete stream are ignored, as Python does. */
	{
		unsigned char *t = malloc(zl + 3);

		memcpy(t, z, zl);
		memcpy(t + zl, "xyz", 3);
		v = dc_bytes(t, zl + 3);
		ck_assert_int_eq(
		    dc_cache_set(raw, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
		v = dc_bytes(txt, 70000);
		assert_get(c, &key, &v, NULL);
		free(t);
	}

	/* Random garbage, and random damage to a real stream: 0 with the
	 * right length or DC_CORRUPT, nothing else. */
	for (int i = 0; i < 300; i++) {
		unsigned char *g = make_random(1 + (size_t)i * 7, (uint64_t)i);

		if (i % 2) {
			v = dc_bytes(g, 1 + (size_t)i * 7);
		} else {
			memcpy(g, z,
			       1 + (size_t)i * 7 < zl ? 1 + (size_t)i * 7 : zl);
			g[i % (1 + i * 7)] ^= (unsigned char)(1 + i);
			v = dc_bytes(g, 1 + (size_t)i * 7);
		}
		ck_assert_int_eq(
		    dc_cache_set(raw, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
		tu_item_init(&it);
		rc = dc_cache_get(c, &key, &buf, &it, 0);
		ck_assert_msg(rc == 0 || rc == DC_CORRUPT, "round %d: %d", i,
			      rc);
		free(g);
	}
	/* A DC_CORRUPT pop still removes the item, as Python's does. */
	v = dc_bytes("garbage", 7);
	ck_assert_int_eq(dc_cache_set(raw, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_pop(c, &key, &buf, &it, 0), DC_CORRUPT);
	ck_assert_int_eq(dc_cache_contains(raw, &key), DC_NOTFOUND);

	dc_buf_release(&buf);
	free(z);
	free(txt);
	dc_cache_close(c);
	dc_cache_close(raw);
}
END_TEST

/* A stream that inflates 1000-fold: the buffer grows as it goes. */
START_TEST(test_zlib_high_ratio)
{
	dc_cache *c = open_with(root, dc_serializer_zlib(9), 0);
	size_t n = (size_t)32 << 20;
	unsigned char *zeros = calloc(1, n);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value key = dc_int(1), v = dc_bytes(zeros, n);

	ck_assert_ptr_nonnull(zeros);
	ck_assert_int_eq(dc_cache_set(c, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), 0);
	ck_assert_uint_lt(it.size, 100000); /* stored inline */
	ck_assert_uint_eq(it.value.len, n);
	ck_assert(memcmp(it.value.data, zeros, n) == 0);
	dc_buf_release(&buf);
	free(zeros);
	dc_cache_close(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Custom serializers                                                 */
/* ------------------------------------------------------------------ */

/* Stores an INT as the text "int:N" and a TEXT starting with "reject" is
 * refused; fetch turns "int:N" back into an INT and counts its calls. */
struct counting {
	pthread_mutex_t lock;
	int stores, fetches;
};

static int intext_store(void *arg, const struct dc_value *in,
			struct dc_buf *buf, struct dc_value *out)
{
	struct counting *cnt = arg;
	int n;

	pthread_mutex_lock(&cnt->lock);
	cnt->stores++;
	pthread_mutex_unlock(&cnt->lock);
	if (in->type == DC_TYPE_TEXT && in->len >= 6 &&
	    memcmp(in->data, "reject", 6) == 0)
		return DC_INVAL;
	if (in->type != DC_TYPE_INT)
		return 0; /* *out already is *in */
	if (buf->cap < 32) {
		char *p = realloc(buf->data, 32);

		if (!p)
			return ENOMEM;
		buf->data = p;
		buf->cap = 32;
	}
	n = snprintf(buf->data, buf->cap, "int:%lld", (long long)in->i);
	*out = dc_textn(buf->data, (size_t)n);
	return 0;
}

static int intext_fetch(void *arg, const struct dc_value *in,
			struct dc_buf *buf, struct dc_value *out)
{
	struct counting *cnt = arg;

	(void)buf;
	pthread_mutex_lock(&cnt->lock);
	cnt->fetches++;
	pthread_mutex_unlock(&cnt->lock);
	if (in->type == DC_TYPE_TEXT && in->len > 4 &&
	    memcmp(in->data, "int:", 4) == 0) {
		*out = dc_int(strtoll((const char *)in->data + 4, NULL, 10));
		return 0;
	}
	if (in->type == DC_TYPE_TEXT && in->len >= 4 &&
	    memcmp(in->data, "fail", 4) == 0)
		return EIO;
	return 0;
}

START_TEST(test_custom_changes_type)
{
	struct counting cnt = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	struct dc_serializer ser = { intext_store, intext_fetch, &cnt };
	dc_cache *c = open_with(root, &ser, 0);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value key = dc_text("n"), v = dc_int(123456789012LL);
	struct dc_value want = dc_text("int:123456789012");

	ck_assert_int_eq(dc_cache_set(c, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	ck_assert_int_eq(cnt.stores, 1);
	assert_get(c, &key, &v, NULL);
	ck_assert_int_eq(cnt.fetches, 1);
	get_raw(root, &key, &buf, &it);
	assert_value_eq(&it.value, &want);
	/* Iteration and DC_NOVALUE report what is stored, without fetch. */
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, NULL, &it, DC_NOVALUE), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
	ck_assert_int_eq(cnt.fetches, 1);
	/* incr works on what is stored: a text is DC_TYPE. */
	ck_assert_int_eq(dc_cache_incr(c, &key, 1, NULL, NULL, 0), DC_TYPE);
	/* An error of fetch is the read's. */
	v = dc_text("failing");
	ck_assert_int_eq(dc_cache_set(c, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), EIO);
	ck_assert_int_eq(it.fd, -1);
	dc_buf_release(&buf);
	dc_cache_close(c);
}
END_TEST

/* A store() error is returned and nothing is stored, by set, add and
 * push alike; an existing value stays. */
START_TEST(test_custom_rejects_value)
{
	struct counting cnt = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	struct dc_serializer ser = { intext_store, intext_fetch, &cnt };
	dc_cache *c = open_with(root, &ser, 0);
	struct dc_value key = dc_text("k"), bad = dc_text("rejected");
	struct dc_value good = dc_text("fine");
	uint64_t n;

	ck_assert_int_eq(dc_cache_set(c, &key, &bad, DC_NO_EXPIRE, NULL, 0),
			 DC_INVAL);
	ck_assert_int_eq(dc_cache_contains(c, &key), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_add(c, &key, &bad, DC_NO_EXPIRE, NULL, 0),
			 DC_INVAL);
	ck_assert_int_eq(
	    dc_cache_push(c, &bad, NULL, DC_NO_EXPIRE, NULL, 0, NULL, NULL),
	    DC_INVAL);
	ck_assert_int_eq(dc_cache_len(c, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_cache_set(c, &key, &good, DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_set(c, &key, &bad, DC_NO_EXPIRE, NULL, 0),
			 DC_INVAL);
	assert_get(c, &key, &good, NULL);
	ck_assert_int_eq(cnt.stores, 5);
	/* The caller's value is not validated before store(), its result
	 * is: NONE passes through store() and is then refused. */
	{
		struct dc_value none = { DC_TYPE_NONE, 0, 0.0, NULL, 0 };

		ck_assert_int_eq(
		    dc_cache_set(c, &key, &none, DC_NO_EXPIRE, NULL, 0),
		    DC_INVAL);
		ck_assert_int_eq(cnt.stores, 6);
		ck_assert_int_eq(
		    dc_cache_set(c, &key, NULL, DC_NO_EXPIRE, NULL, 0),
		    DC_INVAL);
	}
	dc_cache_close(c);
}
END_TEST

/* Where fetch() puts its result: a part of the input (in place), the
 * memory of its arg (copied), or its buffer (adopted).  "H:" + data + "T"
 * is stored; the three fetches strip the frame differently. */
struct where {
	int mode; /* 0 in place, 1 arg memory, 2 buffer, 3 bad type */
	char mem[64];
};

static int hdr_store(void *arg, const struct dc_value *in, struct dc_buf *buf,
		     struct dc_value *out)
{
	char *p;

	(void)arg;
	if (in->type != DC_TYPE_BYTES)
		return 0;
	p = realloc(buf->data, in->len + 3);
	if (!p)
		return ENOMEM;
	buf->data = p;
	buf->cap = in->len + 3;
	memcpy(buf->data, "H:", 2);
	if (in->len)
		memcpy(buf->data + 2, in->data, in->len);
	buf->data[in->len + 2] = 'T';
	*out = dc_bytes(buf->data, in->len + 3);
	return 0;
}

static int hdr_fetch(void *arg, const struct dc_value *in, struct dc_buf *buf,
		     struct dc_value *out)
{
	struct where *w = arg;
	size_t n;
	char *p;

	if (in->type != DC_TYPE_BYTES)
		return 0;
	if (in->len < 3 || memcmp(in->data, "H:", 2) != 0 ||
	    ((const char *)in->data)[in->len - 1] != 'T')
		return DC_CORRUPT;
	n = in->len - 3;
	switch (w->mode) {
	case 0:
		*out = dc_bytes((const char *)in->data + 2, n);
		break;
	case 1:
		if (n > sizeof(w->mem))
			return E2BIG;
		memcpy(w->mem, (const char *)in->data + 2, n);
		*out = dc_bytes(w->mem, n); /* not NUL-terminated */
		break;
	case 2:
		/* Exactly n bytes of room: no space for the NUL. */
		p = realloc(buf->data, n + 5);
		if (!p)
			return ENOMEM;
		buf->data = p;
		buf->cap = n + 5;
		memcpy(buf->data + 5, (const char *)in->data + 2, n);
		*out = dc_bytes(buf->data + 5, n);
		break;
	default:
		out->type = (enum dc_type)42;
	}
	return 0;
}

/* Each placement of the fetched value leaves value, tag and key (for
 * pull, peek and peekitem) correct in the caller's buffer, also when
 * that buffer already held large data from an earlier call. */
START_TEST(test_fetch_placement_keeps_tag_and_key)
{
	struct where w;
	struct dc_serializer ser = { hdr_store, hdr_fetch, &w };
	dc_cache *c = open_with(root, &ser, 0);
	struct dc_value tag = dc_text("the tag"), val = dc_bytes("payload", 7);
	struct dc_value key = dc_text("a text key");
	unsigned char *big = make_random(50000, 3);
	struct dc_value bigv = dc_bytes(big, 50000), bigk = dc_text("big");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	for (int mode = 0; mode < 3; mode++) {
		w.mode = mode;
		memset(w.mem, 'x', sizeof(w.mem));
		ck_assert_int_eq(
		    dc_cache_set(c, &bigk, &bigv, DC_NO_EXPIRE, NULL, 0), 0);
		/* Fill the buffer with something large first. */
		tu_item_init(&it);
		if (mode != 1) {
			ck_assert_int_eq(dc_cache_get(c, &bigk, &buf, &it, 0),
					 0);
			assert_value_eq(&it.value, &bigv);
		}
		ck_assert_int_eq(dc_cache_delete(c, &bigk, 0), 0);
		ck_assert_int_eq(
		    dc_cache_set(c, &key, &val, DC_NO_EXPIRE, &tag, 0), 0);

		/* get: item->key is the caller's and stays untouched. */
		tu_item_init(&it);
		it.key = dc_text("sentinel");
		ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), 0);
		assert_value_eq(&it.value, &val);
		assert_value_eq(&it.tag, &tag);
		ck_assert_str_eq(it.key.data, "sentinel");

		/* peekitem: key, tag and value all in @buf. */
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_peekitem(c, &buf, &it, 0), 0);
		assert_value_eq(&it.value, &val);
		assert_value_eq(&it.tag, &tag);
		assert_value_eq(&it.key, &key);
		/* The key read back addresses the item (index popitem does
		 * exactly this). */
		ck_assert_int_eq(dc_cache_delete(c, &it.key, 0), 0);

		/* push, then peek and pull with a text prefix. */
		ck_assert_int_eq(dc_cache_push(c, &val, "q", DC_NO_EXPIRE, &tag,
					       0, NULL, NULL),
				 0);
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_peek(c, "q", &buf, &it, 0), 0);
		assert_value_eq(&it.value, &val);
		assert_value_eq(&it.tag, &tag);
		ck_assert_int_eq(it.key.type, DC_TYPE_TEXT);
		ck_assert_str_eq(it.key.data, "q-500000000000000");
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_pull(c, "q", &buf, &it, 0), 0);
		assert_value_eq(&it.value, &val);
		assert_value_eq(&it.tag, &tag);
		ck_assert_str_eq(it.key.data, "q-500000000000000");

		/* pop */
		ck_assert_int_eq(
		    dc_cache_set(c, &key, &val, DC_NO_EXPIRE, &tag, 0), 0);
		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_pop(c, &key, &buf, &it, 0), 0);
		assert_value_eq(&it.value, &val);
		assert_value_eq(&it.tag, &tag);
		/* In place, a part of the file-backed value. */
		ck_assert_int_eq(
		    dc_cache_set(c, &bigk, &bigv, DC_NO_EXPIRE, &tag, 0), 0);
		tu_item_init(&it);
		if (mode == 1) {
			ck_assert_int_eq(dc_cache_get(c, &bigk, &buf, &it, 0),
					 E2BIG);
		} else {
			ck_assert_int_eq(dc_cache_get(c, &bigk, &buf, &it, 0),
					 0);
			assert_value_eq(&it.value, &bigv);
			assert_value_eq(&it.tag, &tag);
			ck_assert_int_eq(it.file_backed, 1);
		}
		ck_assert_int_eq(dc_cache_delete(c, &bigk, 0), 0);
	}
	/* A fetched value of no valid type is refused. */
	w.mode = 3;
	ck_assert_int_eq(dc_cache_set(c, &key, &val, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), DC_INVAL);
	dc_buf_release(&buf);
	free(big);
	dc_cache_close(c);
}
END_TEST

/* NULL callbacks pass values unchanged in that direction. */
START_TEST(test_null_callbacks)
{
	struct where w = { 0, { 0 } };
	struct dc_serializer none = { NULL, NULL, NULL };
	struct dc_serializer store_only = { hdr_store, NULL, &w };
	struct dc_value key = dc_int(1), val = dc_bytes("xy", 2);
	struct dc_value stored = dc_bytes("H:xyT", 5);
	dc_cache *c = open_with(root, &none, 0);
	dc_cache *s;

	ck_assert_int_eq(dc_cache_set(c, &key, &val, DC_NO_EXPIRE, NULL, 0), 0);
	assert_get(c, &key, &val, NULL);
	s = open_with(root, &store_only, 0);
	ck_assert_int_eq(dc_cache_set(s, &key, &val, DC_NO_EXPIRE, NULL, 0), 0);
	assert_get(s, &key, &stored, NULL);
	assert_get(c, &key, &stored, NULL);
	dc_cache_close(s);
	dc_cache_close(c);
}
END_TEST

/* DC_FD returns the stored file as it is; DC_NOVALUE reports the stored
 * type and size; set_fd and set_file store raw bytes. */
START_TEST(test_fd_novalue_set_fd_bypass)
{
	dc_cache *c = open_with(root, dc_serializer_zlib(6), 0);
	unsigned char *rnd = make_random(60000, 11);
	struct dc_value key = dc_int(1), small = dc_int(2), v;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	unsigned char *z, *back;
	size_t zl;
	char path[4096];
	int fd;

	z = zcompress(rnd, 60000, 6, &zl);
	v = dc_bytes(rnd, 60000);
	ck_assert_int_eq(dc_cache_set(c, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, DC_FD), 0);
	ck_assert_int_ge(it.fd, 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
	ck_assert_uint_eq(it.size, zl);
	back = malloc(zl + 1);
	ck_assert_int_eq(read(it.fd, back, zl + 1), (ssize_t)zl);
	ck_assert(memcmp(back, z, zl) == 0);
	close(it.fd);
	free(back);

	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, NULL, &it, DC_NOVALUE), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
	ck_assert_ptr_null(it.value.data);
	ck_assert_uint_eq(it.size, zl);

	/* An inline value with DC_FD is returned as usual: fetched. */
	v = dc_bytes("short", 5);
	ck_assert_int_eq(dc_cache_set(c, &small, &v, DC_NO_EXPIRE, NULL, 0), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &small, &buf, &it, DC_FD), 0);
	ck_assert_int_eq(it.fd, -1);
	assert_value_eq(&it.value, &v);

	/* pop with DC_FD: the descriptor reads the compressed file. */
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_pop(c, &key, &buf, &it, DC_FD), 0);
	ck_assert_int_ge(it.fd, 0);
	close(it.fd);

	/* set_fd stores the descriptor's bytes unchanged: not zlib, so
	 * reading them back through the serializer fails... */
	fd = dc_cache_mkstemp(c, path, sizeof(path));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "raw bytes", 9), 9);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(dc_cache_set_fd(c, &key, fd, DC_NO_EXPIRE, NULL, 0),
			 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(c, &key, &buf, &it, 0), DC_CORRUPT);
	/* ... unless they are zlib already: set_file adopts them as is. */
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(pwrite(fd, z, zl, 0), (ssize_t)zl);
	close(fd);
	ck_assert_int_eq(dc_cache_set_file(c, &key, path, DC_TYPE_BYTES,
					   DC_NO_EXPIRE, NULL, 0),
			 0);
	v = dc_bytes(rnd, 60000);
	assert_get(c, &key, &v, NULL);

	dc_buf_release(&buf);
	free(z);
	free(rnd);
	dc_cache_close(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* FanoutCache, sub-collections, Deque, Index                         */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_and_sub_inherit)
{
	const struct dc_serializer *z = dc_serializer_zlib(1);
	dc_cache *c = open_with(root, z, 4), *sub = NULL, *raw;
	unsigned char *txt = make_text(3000);
	struct dc_value v = dc_bytes(txt, 3000), key;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_options o;
	char k[16];
	size_t zl;
	unsigned char *zz = zcompress(txt, 3000, 1, &zl);
	struct dc_value stored = dc_bytes(zz, zl);

	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key = dc_text(k);
		ck_assert_int_eq(
		    dc_cache_set(c, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "key%d", i);
		key = dc_text(k);
		assert_get(c, &key, &v, NULL);
	}
	key = dc_text("key7");
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_pop(c, &key, &buf, &it, 0), 0);
	assert_value_eq(&it.value, &v);
	/* A raw FanoutCache handle sees zlib bytes. */
	raw = open_with(root, NULL, 0);
	key = dc_text("key8");
	assert_get(raw, &key, &stored, NULL);

	/* cache/NAME inherits the FanoutCache's serializer... */
	ck_assert_int_eq(dc_cache_open_sub(c, DC_SUB_CACHE, "s", NULL, &sub),
			 0);
	key = dc_int(1);
	ck_assert_int_eq(dc_cache_set(sub, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
	assert_get(sub, &key, &v, NULL);
	dc_cache_close(sub);
	sub = open_with(tu_path(root, "cache/s"), NULL, 0);
	assert_get(sub, &key, &stored, NULL);
	dc_cache_close(sub);
	/* ... unless its options name another (here: the identity). */
	{
		struct dc_serializer ident = { NULL, NULL, NULL };

		memset(&o, 0, sizeof(o));
		o.serializer = &ident;
		ck_assert_int_eq(
		    dc_cache_open_sub(c, DC_SUB_CACHE, "t", &o, &sub), 0);
		ck_assert_int_eq(
		    dc_cache_set(sub, &key, &v, DC_NO_EXPIRE, NULL, 0), 0);
		dc_cache_close(sub);
		sub = open_with(tu_path(root, "cache/t"), NULL, 0);
		assert_get(sub, &key, &v, NULL);
		dc_cache_close(sub);
	}
	/* A raw parent's sub-collection has none. */
	ck_assert_int_eq(dc_cache_open_sub(raw, DC_SUB_CACHE, "s", NULL, &sub),
			 0);
	assert_get(sub, &key, &stored, NULL);
	dc_cache_close(sub);

	dc_buf_release(&buf);
	dc_cache_close(raw);
	dc_cache_close(c);
	free(zz);
	free(txt);
}
END_TEST

START_TEST(test_deque_with_serializer)
{
	struct dc_options o;
	dc_deque *d = NULL, *sd = NULL;
	dc_cache *parent;
	unsigned char *txt = make_text(50000);
	struct dc_value a = dc_bytes("alpha alpha alpha", 17);
	struct dc_value b = dc_bytes(txt, 50000), n = dc_int(5);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	uint64_t cnt;

	memset(&o, 0, sizeof(o));
	o.serializer = dc_serializer_zlib(-1);
	ck_assert_int_eq(dc_deque_open(tu_path(root, "dq"), &o, &d), 0);
	ck_assert_int_eq(dc_deque_append(d, &a), 0);
	ck_assert_int_eq(dc_deque_append(d, &b), 0);
	ck_assert_int_eq(dc_deque_appendleft(d, &n), 0);
	ck_assert_int_eq(dc_deque_append(d, &a), 0);
	/* [5, a, b, a] */
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_get(d, 2, &buf, &it), 0);
	assert_value_eq(&it.value, &b);
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_peekleft(d, &buf, &it), 0);
	assert_value_eq(&it.value, &n);
	ck_assert_int_eq(dc_deque_count(d, &a, &cnt), 0);
	ck_assert_uint_eq(cnt, 2);
	ck_assert_int_eq(dc_deque_remove(d, &b), 0);
	ck_assert_int_eq(dc_deque_rotate(d, 1), 0);
	/* [a, 5, a] */
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_popleft(d, &buf, &it), 0);
	assert_value_eq(&it.value, &a);
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_pop(d, &buf, &it), 0);
	assert_value_eq(&it.value, &a);
	/* What the raw cache holds at the front key: zlib of b. */
	ck_assert_int_eq(dc_deque_set(d, 0, &b), 0);
	{
		dc_cache *raw = open_with(tu_path(root, "dq"), NULL, 0);
		size_t zl;
		unsigned char *z = zcompress(txt, 50000, -1, &zl);
		struct dc_value want = dc_bytes(z, zl);

		tu_item_init(&it);
		ck_assert_int_eq(dc_cache_peek(raw, NULL, &buf, &it, 0), 0);
		assert_value_eq(&it.value, &want);
		dc_cache_close(raw);
		free(z);
	}
	dc_deque_close(d);

	/* deque/NAME of a FanoutCache with a serializer inherits it. */
	parent = open_with(tu_path(root, "fan"), dc_serializer_zlib(9), 2);
	ck_assert_int_eq(dc_deque_open_sub(parent, "jobs", NULL, &sd), 0);
	ck_assert_int_eq(dc_deque_append(sd, &b), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_peek(sd, &buf, &it), 0);
	assert_value_eq(&it.value, &b);
	ck_assert_uint_lt(it.size, 50000);
	dc_deque_close(sd);
	dc_cache_close(parent);
	dc_buf_release(&buf);
	free(txt);
}
END_TEST

START_TEST(test_index_with_serializer)
{
	struct dc_options o;
	dc_index *ix = NULL;
	struct dc_value k1 = dc_text("first key"), k2 = dc_bytes("k\0two", 5);
	struct dc_value v1 = dc_bytes("one one one one", 15);
	struct dc_value v2 = dc_bytes("two", 3), dflt = dc_bytes("dflt", 4);
	struct dc_value k3 = dc_text("third");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	memset(&o, 0, sizeof(o));
	o.serializer = dc_serializer_zlib(3);
	ck_assert_int_eq(dc_index_open(root, &o, &ix), 0);
	ck_assert_int_eq(dc_index_set(ix, &k1, &v1), 0);
	ck_assert_int_eq(dc_index_set(ix, &k2, &v2), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_get(ix, &k1, &buf, &it), 0);
	assert_value_eq(&it.value, &v1);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_setdefault(ix, &k3, &dflt, &buf, &it), 0);
	assert_value_eq(&it.value, &dflt);
	/* peekitem and popitem read the key back from @buf after fetch:
	 * popitem deletes by it. */
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_peekitem(ix, DC_FIRST, &buf, &it), 0);
	assert_value_eq(&it.key, &k1);
	assert_value_eq(&it.value, &v1);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_popitem(ix, DC_FIRST, &buf, &it), 0);
	assert_value_eq(&it.key, &k1);
	assert_value_eq(&it.value, &v1);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_popitem(ix, DC_FIRST, &buf, &it), 0);
	assert_value_eq(&it.key, &k2);
	assert_value_eq(&it.value, &v2);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_pop(ix, &k3, &buf, &it), 0);
	assert_value_eq(&it.value, &dflt);
	/* push / pull through the Index. */
	ck_assert_int_eq(dc_index_push(ix, &v1, "p", DC_BACK, NULL, NULL), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_peek(ix, "p", DC_FRONT, &buf, &it), 0);
	assert_value_eq(&it.value, &v1);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_pull(ix, "p", DC_FRONT, &buf, &it), 0);
	assert_value_eq(&it.value, &v1);
	ck_assert_str_eq(it.key.data, "p-500000000000000");
	/* Stored compressed. */
	ck_assert_int_eq(dc_index_set(ix, &k1, &v1), 0);
	{
		size_t zl;
		unsigned char *z = zcompress(v1.data, v1.len, 3, &zl);
		struct dc_value want = dc_bytes(z, zl);

		get_raw(root, &k1, &buf, &it);
		assert_value_eq(&it.value, &want);
		free(z);
	}
	dc_buf_release(&buf);
	dc_index_close(ix);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads                                                            */
/* ------------------------------------------------------------------ */

struct worker {
	dc_cache *c;
	int id;
	int failures;
};

/* DC_VALUES iteration fetches through the serializer; the key appended
 * after value and tag (the buffer may move) leaves all three intact. */
START_TEST(test_iter_values_keep_tag_and_key)
{
	dc_cache *c = open_with(root, dc_serializer_zlib(6), 3);
	unsigned char *big = make_text(50000);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	dc_iter *iter;
	char name[32], tagtext[32];
	int seen = 0;

	for (int i = 0; i < 12; i++) {
		struct dc_value k, v, t;

		snprintf(name, sizeof(name), "key-%02d-%s", i,
			 i % 2 ? "long-enough-to-grow" : "s");
		snprintf(tagtext, sizeof(tagtext), "tag-%d", i);
		k = dc_text(name);
		v = dc_bytes(big, 1000 + (size_t)i * 4000);
		t = dc_text(tagtext);
		ck_assert_int_eq(dc_cache_set(c, &k, &v, DC_NO_EXPIRE, &t, 0),
				 0);
	}
	ck_assert_int_eq(dc_iter_open(c, DC_VALUES, NULL, 0, &iter), 0);
	for (;;) {
		int i;

		tu_item_init(&it);
		if (dc_iter_next(iter, &buf, &it))
			break;
		ck_assert_int_eq(it.key.type, DC_TYPE_TEXT);
		ck_assert_int_eq(sscanf(it.key.data, "key-%d-", &i), 1);
		snprintf(name, sizeof(name), "key-%02d-%s", i,
			 i % 2 ? "long-enough-to-grow" : "s");
		ck_assert_uint_eq(it.key.len, strlen(name));
		ck_assert_mem_eq(it.key.data, name, strlen(name) + 1);
		snprintf(tagtext, sizeof(tagtext), "tag-%d", i);
		ck_assert_uint_eq(it.tag.len, strlen(tagtext));
		ck_assert_mem_eq(it.tag.data, tagtext, strlen(tagtext));
		ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
		ck_assert_uint_eq(it.value.len, 1000 + (size_t)i * 4000);
		ck_assert_mem_eq(it.value.data, big, it.value.len);
		seen++;
	}
	ck_assert_int_eq(seen, 12);
	dc_iter_close(iter);
	dc_buf_release(&buf);
	free(big);
	dc_cache_close(c);
}
END_TEST

static void *work(void *arg)
{
	struct worker *w = arg;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char k[32], val[600];

	for (int i = 0; i < 150; i++) {
		struct dc_value key, v;
		int len = snprintf(val, sizeof(val), "%d-%d ", w->id, i);

		for (int j = len; j < (int)sizeof(val); j++)
			val[j] = (char)('a' + (i + j) % 7);
		snprintf(k, sizeof(k), "t%d-%d", w->id, i % 10);
		key = dc_text(k);
		v = i % 3 ? dc_bytes(val, sizeof(val)) : dc_int(i);
		if (dc_cache_set(w->c, &key, &v, DC_NO_EXPIRE, &key,
				 DC_RETRY)) {
			w->failures++;
			continue;
		}
		tu_item_init(&it);
		if (dc_cache_get(w->c, &key, &buf, &it, DC_RETRY) ||
		    it.value.type != v.type ||
		    (v.type == DC_TYPE_INT
			 ? it.value.i != v.i
			 : it.value.len != v.len ||
			       memcmp(it.value.data, v.data, v.len)) ||
		    it.tag.len != key.len ||
		    memcmp(it.tag.data, key.data, key.len))
			w->failures++;
	}
	dc_buf_release(&buf);
	return NULL;
}

START_TEST(test_threads)
{
	struct counting cnt = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	struct dc_serializer ser = { intext_store, intext_fetch, &cnt };
	const struct dc_serializer *sers[] = { dc_serializer_zlib(6), &ser };

	for (size_t s = 0; s < 2; s++) {
		dc_cache *c =
		    open_with(tu_path(root, s ? "b" : "a"), sers[s], s ? 0 : 3);
		struct worker w[4];

		for (int i = 0; i < 4; i++) {
			w[i].c = c;
			w[i].id = i;
			w[i].failures = 0;
		}
		tu_run_threads(4, work, w, sizeof(w[0]));
		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(w[i].failures, 0);
		dc_cache_close(c);
	}
	ck_assert_int_eq(cnt.stores, 600);
	ck_assert_int_eq(cnt.fetches, 600);
}
END_TEST

Suite *serializer_suite(void)
{
	Suite *s = suite_create("serializer");
	TCase *tc = tu_tcase(s, "serializer", setup, teardown, 120);

	tcase_add_test(tc, test_zlib_levels);
	tcase_add_test(tc, test_zlib_round_trip_all_types);
	tcase_add_test(tc, test_zlib_stores_compress2_bytes);
	tcase_add_test(tc, test_zlib_garbage_is_corrupt);
	tcase_add_test(tc, test_zlib_high_ratio);
	tcase_add_test(tc, test_custom_changes_type);
	tcase_add_test(tc, test_custom_rejects_value);
	tcase_add_test(tc, test_fetch_placement_keeps_tag_and_key);
	tcase_add_test(tc, test_null_callbacks);
	tcase_add_test(tc, test_fd_novalue_set_fd_bypass);
	tcase_add_test(tc, test_fanout_and_sub_inherit);
	tcase_add_test(tc, test_deque_with_serializer);
	tcase_add_test(tc, test_index_with_serializer);
	tcase_add_test(tc, test_iter_values_keep_tag_and_key);
	tcase_add_test(tc, test_threads);
	return s;
}
