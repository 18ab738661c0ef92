/* check_memo.c - dc_memo: DiskCache's memoize and memoize_stampede
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.  Key
 * fixtures are the bytes Python's Cache.memoize(name='f') stores for the
 * same call (Disk.put of wrapper.__cache_key__(...)).
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

Suite *memo_suite(void);

#define ARRAY_N(a) (sizeof(a) / sizeof((a)[0]))

static char *root;
static dc_cache *cache;

static void setup(void)
{
	root = tu_mkdtemp();
	ck_assert_int_eq(dc_cache_open(root, NULL, &cache), 0);
}

static void teardown(void)
{
	dc_cache_close(cache);
	cache = NULL;
	tu_rmdtemp(&root);
}

/* The function under test: "<name>:<sum of int args>" as text, or its
 * integer form; counts its calls and notes whether it ran on another
 * thread than the one that created it. */
struct fn_state {
	atomic_int calls;
	atomic_int bg_calls;
	atomic_int finished;
	pthread_t main;
	double sleep;
	int result_type; /* DC_TYPE_TEXT, _INT, _NONE, _PICKLE; -1: fail */
	const struct dc_value *fixed; /* if set, the result */
};

static int fn(void *arg, const struct dc_value *args, size_t nargs,
	      const struct dc_kwarg *kwargs, size_t nkwargs, struct dc_buf *buf,
	      struct dc_value *result)
{
	struct fn_state *st = arg;
	int64_t sum = 0;
	int n;

	atomic_fetch_add(&st->calls, 1);
	if (!pthread_equal(pthread_self(), st->main))
		atomic_fetch_add(&st->bg_calls, 1);
	if (st->sleep > 0)
		tu_sleep(st->sleep);
	for (size_t i = 0; i < nargs; i++)
		if (args[i].type == DC_TYPE_INT)
			sum += args[i].i;
	for (size_t i = 0; i < nkwargs; i++)
		if (kwargs[i].value.type == DC_TYPE_INT)
			sum += kwargs[i].value.i;
	atomic_fetch_add(&st->finished, 1);
	if (st->fixed) {
		*result = *st->fixed;
		return 0;
	}
	switch (st->result_type) {
	case DC_TYPE_INT:
		*result = dc_int(sum);
		return 0;
	case DC_TYPE_NONE:
		memset(result, 0, sizeof(*result));
		return 0;
	case DC_TYPE_PICKLE:
		/* Python's [1] */
		*result =
		    dc_pickle("\x80\x05\x95\x06\0\0\0\0\0\0\0]\x94K\x01a.", 17);
		return 0;
	case -1:
		return DC_EXISTS;
	default:
		break;
	}
	/* A struct dc_buf grows with realloc, by whoever writes it. */
	if (buf->cap < 64) {
		char *p = realloc(buf->data, 64);

		if (!p)
			return ENOMEM;
		buf->data = p;
		buf->cap = 64;
	}
	n = snprintf(buf->data, 64, "r%lld", (long long)sum);
	*result = dc_textn(buf->data, (size_t)n);
	return 0;
}

static void state_init(struct fn_state *st, int result_type)
{
	memset(st, 0, sizeof(*st));
	st->main = pthread_self();
	st->result_type = result_type;
}

static dc_memo *memo_new(struct fn_state *st, const char *name, unsigned flags,
			 double expire)
{
	struct dc_memo_opts o = { 0 };
	dc_memo *m = NULL;

	o.name = name;
	o.flags = flags;
	o.expire = expire;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, st, &m), 0);
	return m;
}

static void assert_text(const struct dc_item *it, const char *want)
{
	ck_assert_int_eq(it->value.type, DC_TYPE_TEXT);
	ck_assert_uint_eq(it->value.len, strlen(want));
	ck_assert_mem_eq(it->value.data, want, strlen(want));
	ck_assert_int_eq(((const char *)it->value.data)[it->value.len], 0);
}

START_TEST(test_miss_then_hit)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a[2] = { dc_int(2), dc_int(3) };
	struct dc_value b[2] = { dc_int(2), dc_int(4) };
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "f", 0, 0);
	ck_assert_int_eq(dc_memo_call(m, a, 2, NULL, 0, &buf, &it), 0);
	assert_text(&it, "r5");
	ck_assert_int_eq(st.calls, 1);
	ck_assert(isnan(it.expire_time));
	ck_assert_int_eq(dc_memo_call(m, a, 2, NULL, 0, &buf, &it), 0);
	assert_text(&it, "r5");
	ck_assert_int_eq(st.calls, 1);
	ck_assert(!isnan(it.store_time));
	ck_assert_int_eq(dc_memo_call(m, b, 2, NULL, 0, &buf, &it), 0);
	assert_text(&it, "r6");
	ck_assert_int_eq(st.calls, 2);
	/* No arguments at all is a call too. */
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, NULL, 0, &buf, &it), 0);
	assert_text(&it, "r0");
	ck_assert_int_eq(st.calls, 3);
	dc_memo_free(m);
	dc_buf_release(&buf);
}
END_TEST

/* Results of every type come back as they were, cached or not. */
START_TEST(test_result_types)
{
	static const int types[] = { DC_TYPE_INT, DC_TYPE_PICKLE };
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a = dc_int(41);

	for (size_t i = 0; i < ARRAY_N(types); i++) {
		dc_memo *m;

		state_init(&st, types[i]);
		m = memo_new(&st, i ? "p" : "i", 0, 0);
		for (int k = 0; k < 2; k++) {
			ck_assert_int_eq(
			    dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
			ck_assert_int_eq(it.value.type, types[i]);
			if (types[i] == DC_TYPE_INT)
				ck_assert_int_eq(it.value.i, 41);
			else
				ck_assert_mem_eq(it.value.data,
						 "\x80\x05\x95\x06", 4);
		}
		ck_assert_int_eq(st.calls, 1);
		dc_memo_free(m);
	}
	/* None is not a plain memoize result (use a pickle), and an error
	 * of the function is returned with nothing stored. */
	state_init(&st, DC_TYPE_NONE);
	{
		dc_memo *m = memo_new(&st, "n", 0, 0);

		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it),
				 DC_INVAL);
		st.result_type = -1;
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it),
				 DC_EXISTS);
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it),
				 DC_EXISTS);
		ck_assert_int_eq(st.calls, 3);
		dc_memo_free(m);
	}
	dc_buf_release(&buf);
}
END_TEST

/* Python: memoize(name='f')(g).__cache_key__(1, 'hello', b'xy', 2.5,
 * None, k=3, a='zz') stored by Disk.put, untyped and typed=True. */
static const char key_untyped[] =
    "8005952a00000000000000288c01664b018c0568656c6c6f43027879474004000000"
    "0000004e4e8c01618c027a7a8c016b4b03742e";
static const char key_typed[] =
    "8005956900000000000000288c01664b018c0568656c6c6f43027879474004000000"
    "0000004e4e8c01618c027a7a8c016b4b038c086275696c74696e73948c03696e7493"
    "9468008c03737472939468008c0562797465739368008c05666c6f61749368008c04"
    "74797065934e855268026801742e";
/* f() and typed f('é', zeta=None, alpha=-7) */
static const char key_noargs[] = "80059506000000000000008c01664e862e";
static const char key_typed2[] =
    "8005954300000000000000288c01668c02c3a94e8c05616c7068614af9ffffff8c04"
    "7a6574614e8c086275696c74696e73948c037374729368008c03696e749368008c04"
    "74797065934e8552742e";

/* The typed key above at protocols 0 to 4, as Python's Disk stores it
 * on a Cache(disk_pickle_protocol=P): text opcodes, __builtin__.long
 * and unicode, bytes as _codecs.encode(..., 'latin1'). */
static const char *const key_typed_p[] = {
	/* 0 */
	"2856660a49310a5668656c6c6f0a635f636f646563730a656e636f64650a28567879"
	"0a566c6174696e310a745246322e350a4e4e56610a567a7a0a566b0a49330a635f5f"
	"6275696c74696e5f5f0a6c6f6e670a70300a635f5f6275696c74696e5f5f0a756e69"
	"636f64650a70310a635f5f6275696c74696e5f5f0a62797465730a635f5f6275696c"
	"74696e5f5f0a666c6f61740a635f5f6275696c74696e5f5f0a747970650a284e7452"
	"67310a67300a742e",
	/* 1 */
	"285801000000664b01580500000068656c6c6f635f636f646563730a656e636f6465"
	"0a285802000000787958060000006c6174696e3174524740040000000000004e4e58"
	"010000006158020000007a7a58010000006b4b03635f5f6275696c74696e5f5f0a6c"
	"6f6e670a7100635f5f6275696c74696e5f5f0a756e69636f64650a7101635f5f6275"
	"696c74696e5f5f0a62797465730a635f5f6275696c74696e5f5f0a666c6f61740a63"
	"5f5f6275696c74696e5f5f0a747970650a284e745268016800742e",
	/* 2 */
	"8002285801000000664b01580500000068656c6c6f635f636f646563730a656e636f"
	"64650a5802000000787958060000006c6174696e3186524740040000000000004e4e"
	"58010000006158020000007a7a58010000006b4b03635f5f6275696c74696e5f5f0a"
	"6c6f6e670a7100635f5f6275696c74696e5f5f0a756e69636f64650a7101635f5f62"
	"75696c74696e5f5f0a62797465730a635f5f6275696c74696e5f5f0a666c6f61740a"
	"635f5f6275696c74696e5f5f0a747970650a4e855268016800742e",
	/* 3 */
	"8003285801000000664b01580500000068656c6c6f43027879474004000000000000"
	"4e4e58010000006158020000007a7a58010000006b4b03636275696c74696e730a69"
	"6e740a7100636275696c74696e730a7374720a7101636275696c74696e730a627974"
	"65730a636275696c74696e730a666c6f61740a636275696c74696e730a747970650a"
	"4e855268016800742e",
	/* 4 */
	"8004956900000000000000288c01664b018c0568656c6c6f43027879474004000000"
	"0000004e4e8c01618c027a7a8c016b4b038c086275696c74696e73948c03696e7493"
	"9468008c03737472939468008c0562797465739368008c05666c6f61749368008c04"
	"74797065934e855268026801742e",
	key_typed,
};

START_TEST(test_key_matches_python)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	struct dc_value args[] = { dc_int(1),
				   dc_text("hello"),
				   dc_bytes("xy", 2),
				   dc_float(2.5),
				   { .type = DC_TYPE_NONE } };
	/* Given out of order: the key sorts them by name. */
	struct dc_kwarg kw[] = { { "k", dc_int(3) }, { "a", dc_text("zz") } };
	struct dc_value e = dc_text("\xc3\xa9");
	struct dc_kwarg kw2[] = { { "zeta", { .type = DC_TYPE_NONE } },
				  { "alpha", dc_int(-7) } };
	dc_memo *m, *t;
	char *h;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "f", 0, 0);
	t = memo_new(&st, "f", DC_MEMO_TYPED, 0);
	ck_assert_int_eq(dc_memo_key(m, args, 5, kw, 2, &buf, &key), 0);
	ck_assert_int_eq(key.type, DC_TYPE_PICKLE);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_untyped);
	free(h);
	ck_assert_int_eq(dc_memo_key(t, args, 5, kw, 2, &buf, &key), 0);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_typed);
	free(h);
	ck_assert_int_eq(dc_memo_key(m, NULL, 0, NULL, 0, &buf, &key), 0);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_noargs);
	free(h);
	ck_assert_int_eq(dc_memo_key(t, &e, 1, kw2, 2, &buf, &key), 0);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_typed2);
	free(h);
	dc_memo_free(m);
	dc_memo_free(t);
	dc_buf_release(&buf);
}
END_TEST

/* A cache created with disk_pickle_protocol @proto (C accepts 0-5). */
static dc_cache *open_proto(const char *dir, int proto)
{
	struct dc_setting set = { "disk_pickle_protocol", dc_int(proto) };
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	o.settings = &set;
	o.nsettings = 1;
	ck_assert_int_eq(dc_cache_open(dir, &o, &c), 0);
	return c;
}

/* At every protocol a Python cache may have: keys are Python's bytes,
 * and stampede pairs (pickled values, text at protocol 0) read back. */
START_TEST(test_every_protocol)
{
	int proto = _i;
	char *dir = tu_mkdtemp();
	dc_cache *c = open_proto(dir, proto);
	struct dc_value args[] = { dc_int(1),
				   dc_text("hello"),
				   dc_bytes("xy", 2),
				   dc_float(2.5),
				   { .type = DC_TYPE_NONE } };
	struct dc_kwarg kw[] = { { "k", dc_int(3) }, { "a", dc_text("zz") } };
	const struct dc_value results[] = {
		dc_textn("\xc3\xa9\xe2\x82\xac\\\n\0\xf0\x9f\x98\x80", 12),
		dc_bytes("\xe9\0\\\n", 4),
		dc_bytes("", 0),
		dc_float(0.1),
		dc_int(-5),
		{ .type = DC_TYPE_NONE },
	};
	struct dc_memo_opts o = { 0 };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	struct dc_item it;
	struct fn_state st;
	dc_memo *m;
	char *h;

	state_init(&st, DC_TYPE_TEXT);
	o.name = "f";
	o.flags = DC_MEMO_TYPED;
	ck_assert_int_eq(dc_memo_new(c, &o, fn, &st, &m), 0);
	ck_assert_int_eq(dc_memo_key(m, args, 5, kw, 2, &buf, &key), 0);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_typed_p[proto]);
	free(h);
	ck_assert_int_eq(dc_memo_call(m, args, 5, kw, 2, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_call(m, args, 5, kw, 2, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 1);
	dc_memo_free(m);

	o.name = "s";
	o.flags = DC_MEMO_STAMPEDE;
	o.expire = 60;
	ck_assert_int_eq(dc_memo_new(c, &o, fn, &st, &m), 0);
	for (size_t i = 0; i < ARRAY_N(results); i++) {
		const struct dc_value *want = &results[i];
		struct dc_value a = dc_int((int64_t)i);
		int before;

		st.fixed = want;
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		before = st.calls;
		st.fixed = NULL; /* a recomputation would give text */
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		ck_assert_int_eq(st.calls, before);
		ck_assert_int_eq(it.value.type, want->type);
		if (want->type == DC_TYPE_FLOAT) {
			ck_assert(it.value.f == want->f);
		} else if (want->type == DC_TYPE_INT) {
			ck_assert_int_eq(it.value.i, want->i);
		} else if (want->type != DC_TYPE_NONE) {
			ck_assert_uint_eq(it.value.len, want->len);
			if (want->len)
				ck_assert_mem_eq(it.value.data, want->data,
						 want->len);
		}
	}
	dc_memo_free(m);
	dc_buf_release(&buf);
	dc_cache_close(c);
	tu_rmdtemp(&dir);
}
END_TEST

/* A Python cache's protocol -1 is pickle's HIGHEST_PROTOCOL, 5; above 5
 * (pickle.dumps raises ValueError) or not an integer, no key can be
 * pickled: DC_INVAL. */
START_TEST(test_protocol_setting_from_python)
{
	static const char *const bad[] = { "6", "'5'", "2.0" };
	struct fn_state st;
	struct dc_memo_opts o = { 0 };
	struct dc_value args[] = { dc_int(1),
				   dc_text("hello"),
				   dc_bytes("xy", 2),
				   dc_float(2.5),
				   { .type = DC_TYPE_NONE } };
	struct dc_kwarg kw[] = { { "k", dc_int(3) }, { "a", dc_text("zz") } };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	dc_memo *m = NULL;
	char *h;

	state_init(&st, DC_TYPE_TEXT);
	o.name = "f";
	o.flags = DC_MEMO_TYPED;
	tu_set_pickle_protocol(cache, root, "-1");
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), 0);
	ck_assert_int_eq(dc_memo_key(m, args, 5, kw, 2, &buf, &key), 0);
	h = tu_hex(key.data, key.len);
	ck_assert_str_eq(h, key_typed);
	free(h);
	dc_memo_free(m);
	for (size_t i = 0; i < ARRAY_N(bad); i++) {
		tu_set_pickle_protocol(cache, root, bad[i]);
		m = (dc_memo *)1;
		ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
		ck_assert_ptr_null(m);
	}
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_typed_keeps_types_apart)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT, kb = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value i3 = dc_int(3), f3 = dc_float(3.0), key;
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "typed", DC_MEMO_TYPED, 0);
	ck_assert_int_eq(dc_memo_call(m, &i3, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_call(m, &f3, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_call(m, &i3, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 2);
	/* The key ends with builtins.int. */
	ck_assert_int_eq(dc_memo_key(m, &i3, 1, NULL, 0, &kb, &key), 0);
	ck_assert_ptr_nonnull(memmem(key.data, key.len, "builtins", 8));
	ck_assert_ptr_nonnull(memmem(key.data, key.len, "\x8c\x03int", 5));
	ck_assert_int_eq(dc_cache_contains(cache, &key), 0);
	dc_memo_free(m);
	dc_buf_release(&buf);
	dc_buf_release(&kb);
}
END_TEST

START_TEST(test_kwargs_sorted_and_checked)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_kwarg ab[] = { { "a", dc_int(1) }, { "b", dc_int(2) } };
	struct dc_kwarg ba[] = { { "b", dc_int(2) }, { "a", dc_int(1) } };
	struct dc_kwarg dup[] = { { "a", dc_int(1) }, { "a", dc_int(2) } };
	struct dc_kwarg bad[] = { { "\xff", dc_int(1) } };
	struct dc_value pk = dc_pickle("\x80\x05N.", 4);
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "kw", 0, 0);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, ab, 2, &buf, &it), 0);
	assert_text(&it, "r3");
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, ba, 2, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 1);
	/* A keyword is not the same as a positional argument. */
	ck_assert_int_eq(dc_memo_call(m, &ab[0].value, 1, &ab[1], 1, &buf, &it),
			 0);
	ck_assert_int_eq(st.calls, 2);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, dup, 2, &buf, &it), DC_INVAL);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, bad, 1, &buf, &it), DC_INVAL);
	ck_assert_int_eq(dc_memo_call(m, &pk, 1, NULL, 0, &buf, &it), DC_INVAL);
	ck_assert_int_eq(st.calls, 2);
	dc_memo_free(m);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_expire_and_tag)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a = dc_int(7), tag = dc_text("grp");
	struct dc_memo_opts o = { 0 };
	dc_memo *m;
	double t0 = (double)time(NULL);

	state_init(&st, DC_TYPE_TEXT);
	o.name = "exp";
	o.expire = 0.3;
	o.tag = &tag;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), 0);
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.tag.type, DC_TYPE_TEXT);
	ck_assert_mem_eq(it.tag.data, "grp", 3);
	ck_assert(it.expire_time > t0 && it.expire_time < t0 + 10);
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 1);
	assert_text(&it, "r7");
	ck_assert_int_eq(it.tag.type, DC_TYPE_TEXT);
	ck_assert_uint_eq(it.tag.len, 3);
	ck_assert_mem_eq(it.tag.data, "grp", 3);
	ck_assert(it.expire_time > t0 && it.expire_time < t0 + 10);
	/* The tag is what dc_cache_evict goes by. */
	{
		uint64_t n = 0;

		ck_assert_int_eq(dc_cache_evict(cache, &tag, DC_RETRY, &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 2);
	tu_sleep(0.5);
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 3);
	dc_memo_free(m);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_negative_expire_stores_nothing)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT, kb = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a = dc_int(1), key;
	uint64_t n;
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "neg", 0, -1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		assert_text(&it, "r1");
		ck_assert(isnan(it.store_time));
	}
	ck_assert_int_eq(st.calls, 3);
	ck_assert_int_eq(dc_memo_key(m, &a, 1, NULL, 0, &kb, &key), 0);
	ck_assert_int_eq(dc_cache_contains(cache, &key), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_len(cache, &n), 0);
	ck_assert_uint_eq(n, 0);
	dc_memo_free(m);
	dc_buf_release(&buf);
	dc_buf_release(&kb);
}
END_TEST

START_TEST(test_key_then_delete_forgets)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT, kb = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a = dc_text("x"), key;
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "del", 0, 0);
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_key(m, &a, 1, NULL, 0, &kb, &key), 0);
	ck_assert_int_eq(dc_cache_contains(cache, &key), 0);
	ck_assert_int_eq(dc_cache_delete(cache, &key, DC_RETRY), 0);
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(st.calls, 2);
	dc_memo_free(m);
	dc_buf_release(&buf);
	dc_buf_release(&kb);
}
END_TEST

START_TEST(test_bad_options)
{
	struct fn_state st;
	struct dc_memo_opts o = { 0 };
	struct dc_value ptag = dc_pickle("\x80\x05N.", 4);
	dc_memo *m = (dc_memo *)1;

	state_init(&st, DC_TYPE_TEXT);
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	ck_assert_ptr_null(m);
	o.name = "s";
	o.flags = DC_MEMO_STAMPEDE;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	o.expire = -1;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	o.expire = 1;
	o.flags = 1u << 7;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	o.flags = 0;
	o.tag = &ptag;
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	o.tag = NULL;
	o.name = "\xc3";
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), DC_INVAL);
	ck_assert_int_eq(dc_memo_new(cache, &o, NULL, &st, &m), DC_INVAL);
	dc_memo_free(NULL);
}
END_TEST

/* Python's memoize_stampede stores (result, delta) pickled; a hit near
 * expiry is recomputed on a background thread while callers keep
 * getting the cached result. */
START_TEST(test_stampede_recomputes_early)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT, kb = DC_BUF_INIT, vb = DC_BUF_INIT;
	struct dc_item it, raw;
	struct dc_value a = dc_int(5), key;
	int ncalls = 0, misses_seen;
	double t;
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	st.sleep = 0.02;
	m = memo_new(&st, "st", DC_MEMO_STAMPEDE, 0.1);
	t = tu_mono();
	for (;;) {
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		assert_text(&it, "r5");
		ncalls++;
		tu_sleep(0.002);
		if (tu_mono() - t > 1.0)
			break;
	}
	misses_seen = st.calls - st.bg_calls;
	/* Recomputed at least once, most calls served from the cache. */
	ck_assert_int_ge(st.calls, 2);
	ck_assert_int_lt(st.calls, ncalls / 2);
	ck_assert_int_ge(misses_seen, 1);
	ck_assert_int_ge(st.bg_calls, 1);
	/* The stored value is the pickled pair (str, float). */
	ck_assert_int_eq(dc_memo_key(m, &a, 1, NULL, 0, &kb, &key), 0);
	dc_memo_free(m);
	memset(&raw, 0, sizeof(raw));
	ck_assert_int_eq(dc_cache_get(cache, &key, &vb, &raw, 0), 0);
	ck_assert_int_eq(raw.value.type, DC_TYPE_PICKLE);
	ck_assert_mem_eq(raw.value.data,
			 "\x80\x05\x95\x11\0\0\0\0\0\0\0\x8c\x02r5\x94G", 16);
	ck_assert_mem_eq((const char *)raw.value.data + raw.value.len - 3,
			 "\x86\x94.", 3);
	ck_assert(!isnan(raw.expire_time));
	dc_buf_release(&buf);
	dc_buf_release(&kb);
	dc_buf_release(&vb);
}
END_TEST

/* dc_memo_free waits for a recomputation in progress, which stores. */
START_TEST(test_stampede_free_joins)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value a = dc_int(1);
	struct dc_memo_opts o = { 0 };
	dc_memo *m;

	state_init(&st, DC_TYPE_INT);
	o.name = "join";
	o.flags = DC_MEMO_STAMPEDE;
	o.expire = 60;
	o.beta = 1e12; /* every hit recomputes */
	ck_assert_int_eq(dc_memo_new(cache, &o, fn, &st, &m), 0);
	st.sleep = 0.01;
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_INT);
	ck_assert_int_eq(it.value.i, 1);
	st.sleep = 0.3;
	ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 1);
	/* The claim (expiring after the 10 ms the first run took) holds
	 * back a second thread only briefly; whatever started must end. */
	dc_memo_free(m);
	ck_assert_int_ge(st.bg_calls, 1);
	ck_assert_int_eq(st.finished, st.calls);
	dc_buf_release(&buf);
}
END_TEST

struct worker {
	dc_memo *m;
	int id;
	int errors;
};

static void *worker_run(void *p)
{
	struct worker *w = p;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	for (int i = 0; i < 60; i++) {
		int64_t x = (i * 7 + w->id) % 5;
		struct dc_value a = dc_int(x);
		char want[16];

		snprintf(want, sizeof(want), "r%lld", (long long)x);
		if (dc_memo_call(w->m, &a, 1, NULL, 0, &buf, &it) ||
		    it.value.type != DC_TYPE_TEXT ||
		    it.value.len != strlen(want) ||
		    memcmp(it.value.data, want, it.value.len))
			w->errors++;
	}
	dc_buf_release(&buf);
	return NULL;
}

static void run_workers(dc_memo *m)
{
	struct worker w[4];

	for (int i = 0; i < 4; i++) {
		w[i].m = m;
		w[i].id = i;
		w[i].errors = 0;
	}
	tu_run_threads(4, worker_run, w, sizeof(w[0]));
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(w[i].errors, 0);
}

START_TEST(test_threads_share_a_memo)
{
	struct fn_state st;
	dc_memo *m, *s;

	state_init(&st, DC_TYPE_TEXT);
	m = memo_new(&st, "thr", 0, 0);
	run_workers(m);
	/* Five distinct calls; a race may compute one twice, as Python. */
	ck_assert_int_ge(st.calls, 5);
	ck_assert_int_le(st.calls, 20);
	dc_memo_free(m);
	state_init(&st, DC_TYPE_TEXT);
	s = memo_new(&st, "thr-st", DC_MEMO_STAMPEDE, 0.05);
	run_workers(s);
	dc_memo_free(s);
	ck_assert_int_eq(st.finished, st.calls);
}
END_TEST

static void exercise(dc_cache *c)
{
	struct fn_state st;
	struct dc_buf buf = DC_BUF_INIT, kb = DC_BUF_INIT;
	struct dc_item it;
	struct dc_memo_opts o = { 0 };
	struct dc_value key;
	dc_memo *m;

	state_init(&st, DC_TYPE_TEXT);
	o.name = "fan";
	for (int64_t i = 0; i < 20; i++) {
		struct dc_value a = dc_int(i);

		ck_assert_int_eq(dc_memo_new(c, &o, fn, &st, &m), 0);
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		ck_assert_int_eq(dc_memo_call(m, &a, 1, NULL, 0, &buf, &it), 0);
		ck_assert_int_eq(dc_memo_key(m, &a, 1, NULL, 0, &kb, &key), 0);
		ck_assert_int_eq(dc_cache_contains(c, &key), 0);
		dc_memo_free(m);
	}
	ck_assert_int_eq(st.calls, 20);
	o.flags = DC_MEMO_STAMPEDE;
	o.expire = 10;
	ck_assert_int_eq(dc_memo_new(c, &o, fn, &st, &m), 0);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(dc_memo_call(m, NULL, 0, NULL, 0, &buf, &it), 0);
	assert_text(&it, "r0");
	ck_assert_int_eq(st.calls, 21);
	dc_memo_free(m);
	dc_buf_release(&buf);
	dc_buf_release(&kb);
}

START_TEST(test_fanout_and_index)
{
	struct dc_options opts = { 0 };
	dc_cache *fc;
	dc_index *idx;
	char *d = tu_mkdtemp();
	uint64_t n;

	opts.shards = 4;
	ck_assert_int_eq(dc_cache_open(tu_path(d, "fan"), &opts, &fc), 0);
	exercise(fc);
	ck_assert_int_eq(dc_cache_len(fc, &n), 0);
	ck_assert_uint_eq(n, 21);
	dc_cache_close(fc);
	ck_assert_int_eq(dc_index_open(tu_path(d, "idx"), NULL, &idx), 0);
	exercise(dc_index_cache(idx));
	ck_assert_int_eq(dc_index_len(idx, &n), 0);
	ck_assert_uint_eq(n, 21);
	dc_index_close(idx);
	tu_rmdtemp(&d);
}
END_TEST

Suite *memo_suite(void)
{
	Suite *s = suite_create("memo");
	TCase *tc = tu_tcase(s, "core", setup, teardown, 60);

	tcase_add_test(tc, test_miss_then_hit);
	tcase_add_test(tc, test_result_types);
	tcase_add_test(tc, test_key_matches_python);
	tcase_add_loop_test(tc, test_every_protocol, 0, 6);
	tcase_add_test(tc, test_protocol_setting_from_python);
	tcase_add_test(tc, test_typed_keeps_types_apart);
	tcase_add_test(tc, test_kwargs_sorted_and_checked);
	tcase_add_test(tc, test_expire_and_tag);
	tcase_add_test(tc, test_negative_expire_stores_nothing);
	tcase_add_test(tc, test_key_then_delete_forgets);
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_stampede_recomputes_early);
	tcase_add_test(tc, test_stampede_free_joins);
	tcase_add_test(tc, test_threads_share_a_memo);
	tcase_add_test(tc, test_fanout_and_index);
	return s;
}
