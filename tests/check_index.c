/* check_index.c - dc_index: Python DiskCache's Index behaviours (§13.4)
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *index_suite(void);

static char *root;
static dc_index *ix;

static void setup(void)
{
	root = tu_mkdtemp();
	ck_assert_int_eq(dc_index_open(root, NULL, &ix), 0);
}

static void teardown(void)
{
	dc_index_close(ix);
	ix = NULL;
	tu_rmdtemp(&root);
}

/* {'a': 0, 'b': 1, ... } for the first @n letters of "abcde". */
static void fill(int n)
{
	char k[2] = { 0, 0 };

	for (int i = 0; i < n; i++) {
		struct dc_value key, val = dc_int(i);

		k[0] = (char)('a' + i);
		key = dc_text(k);
		ck_assert_int_eq(dc_index_set(ix, &key, &val), 0);
	}
}

/* Walk @iter into a string: each key's letter, with @values followed by
 * its value's digit; with @del_after "xy", key y is deleted once x has
 * been seen.  Closes @iter. */
static const char *walk(dc_iter *iter, int values, const char *del_after)
{
	static char out[64];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	size_t n = 0;
	int ret;

	for (;;) {
		tu_item_init(&it);
		ret = dc_iter_next(iter, &buf, &it);
		if (ret == DC_NOTFOUND)
			break;
		ck_assert_int_eq(ret, 0);
		ck_assert_int_eq(it.key.type, DC_TYPE_TEXT);
		ck_assert_uint_lt(n, sizeof(out) - 2);
		out[n++] = ((const char *)it.key.data)[0];
		if (values) {
			ck_assert_int_eq(it.value.type, DC_TYPE_INT);
			out[n++] = (char)('0' + it.value.i);
		}
		if (del_after && it.key.len == 1 &&
		    ((const char *)it.key.data)[0] == del_after[0]) {
			struct dc_value k = dc_textn(del_after + 1, 1);

			ck_assert_int_eq(dc_index_delete(ix, &k), 0);
		}
	}
	out[n] = '\0';
	dc_iter_close(iter);
	dc_buf_release(&buf);
	return out;
}

/* Keys in iteration order (DC_REVERSE optional) as a string. */
static const char *keys(unsigned flags)
{
	dc_iter *iter = NULL;

	ck_assert_int_eq(
	    dc_iter_open(dc_index_cache(ix), flags, NULL, 0, &iter), 0);
	return walk(iter, 0, NULL);
}

static void assert_len(uint64_t want)
{
	uint64_t n;

	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, want);
}

START_TEST(test_get_set_delete)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value k = dc_text("k"), v = dc_text("value"), w = dc_int(7);

	tu_item_init(&it);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_set(ix, &k, &v), 0);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)it.value.data, "value");
	ck_assert_int_eq(dc_index_set(ix, &k, &w), 0);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 7);
	assert_len(1);
	ck_assert_int_eq(dc_index_delete(ix, &k), 0);
	ck_assert_int_eq(dc_index_delete(ix, &k), DC_NOTFOUND);
	assert_len(0);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_pop)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char k[2] = { 0, 0 };

	fill(5);
	for (int i = 0; i < 5; i++) {
		struct dc_value key;

		k[0] = (char)('a' + i);
		key = dc_text(k);
		tu_item_init(&it);
		ck_assert_int_eq(dc_index_pop(ix, &key, &buf, &it), 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_INT);
		ck_assert_int_eq(it.value.i, i);
		ck_assert_int_eq(dc_index_pop(ix, &key, &buf, &it),
				 DC_NOTFOUND);
	}
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_popitem)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	tu_item_init(&it);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_popitem(ix, DC_FIRST, &buf, &it),
			 DC_NOTFOUND);
	fill(5);
	ck_assert_int_eq(dc_index_popitem(ix, DC_RETRY, &buf, &it), DC_INVAL);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "e");
	ck_assert_int_eq(it.value.i, 4);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "d");
	ck_assert_int_eq(it.value.i, 3);
	ck_assert_int_eq(dc_index_popitem(ix, DC_FIRST, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "a");
	ck_assert_int_eq(it.value.i, 0);
	assert_len(2);
	ck_assert_str_eq(keys(0), "bc");
	/* popitem on an empty index inside the caller's transaction leaves
	 * the transaction (and what it wrote) alone. */
	struct dc_value k = dc_text("k");
	ck_assert_int_eq(dc_index_clear(ix), 0);
	ck_assert_int_eq(dc_cache_begin(dc_index_cache(ix), DC_RETRY), 0);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_set(ix, &k, &k), 0);
	ck_assert_int_eq(dc_index_popitem(ix, DC_FIRST, &buf, &it), 0);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_set(ix, &k, &k), 0);
	ck_assert_int_eq(dc_cache_commit(dc_index_cache(ix)), 0);
	assert_len(1);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_setdefault)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value k = dc_text("a"), zero = dc_int(0), one = dc_int(1);

	tu_item_init(&it);
	ck_assert_int_eq(dc_index_setdefault(ix, &k, &zero, &buf, &it), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_INT);
	ck_assert_int_eq(it.value.i, 0);
	ck_assert_int_eq(dc_index_setdefault(ix, &k, &one, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 0);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 0);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_order)
{
	struct dc_value k = dc_text("b"), v = dc_int(100);

	fill(5);
	ck_assert_str_eq(keys(0), "abcde");
	ck_assert_str_eq(keys(DC_REVERSE), "edcba");
	/* Overwriting keeps the place; re-inserting goes last. */
	ck_assert_int_eq(dc_index_set(ix, &k, &v), 0);
	ck_assert_str_eq(keys(0), "abcde");
	ck_assert_int_eq(dc_index_delete(ix, &k), 0);
	ck_assert_int_eq(dc_index_set(ix, &k, &v), 0);
	ck_assert_str_eq(keys(0), "acdeb");
	ck_assert_int_eq(dc_index_clear(ix), 0);
	assert_len(0);
	ck_assert_str_eq(keys(0), "");
}
END_TEST

/* index.items() both ways: key and value of each, in insertion order;
 * a key deleted ahead of the walk is skipped. */
static const char *items(unsigned flags, const char *del_after)
{
	dc_iter *iter = NULL;

	ck_assert_int_eq(dc_index_iter_open(ix, flags, &iter), 0);
	return walk(iter, 1, del_after);
}

START_TEST(test_items_both_ways)
{
	struct dc_value k = dc_text("b"), v = dc_int(7);
	dc_iter *iter = (dc_iter *)1;

	ck_assert_str_eq(items(0, NULL), "");
	fill(5);
	ck_assert_int_eq(dc_index_set(ix, &k, &v), 0);
	ck_assert_str_eq(items(0, NULL), "a0b7c2d3e4");
	ck_assert_str_eq(items(DC_REVERSE, NULL), "e4d3c2b7a0");
	/* After 'a' delete 'c'; backwards after 'e' delete 'b'. */
	ck_assert_str_eq(items(0, "ac"), "a0b7d3e4");
	ck_assert_str_eq(items(DC_REVERSE, "eb"), "e4d3a0");
	ck_assert_str_eq(keys(0), "ade");
	{
		/* The item outlives the iterator: stop early, close, use. */
		struct dc_buf buf = DC_BUF_INIT;
		struct dc_item it;

		ck_assert_int_eq(dc_index_iter_open(ix, DC_REVERSE, &iter), 0);
		tu_item_init(&it);
		ck_assert_int_eq(dc_iter_next(iter, &buf, &it), 0);
		dc_iter_close(iter);
		ck_assert_int_eq(it.key.type, DC_TYPE_TEXT);
		ck_assert_mem_eq(it.key.data, "e", 2);
		ck_assert_int_eq(it.value.i, 4);
		dc_buf_release(&buf);
	}
	ck_assert_int_eq(dc_index_iter_open(ix, DC_SORTED, &iter), DC_INVAL);
	ck_assert_ptr_null(iter);
}
END_TEST

/* index == mapping (doctest): an OrderedDict compares in order, a dict
 * in any order; lengths first; int 1 equals float 1.0. */
START_TEST(test_equal)
{
	struct dc_value k[] = { dc_text("a"), dc_text("b"), dc_text("c") };
	struct dc_value v[] = { dc_int(0), dc_int(1), dc_int(2) };
	struct dc_value rk[] = { dc_text("c"), dc_text("b"), dc_text("a") };
	struct dc_value rv[] = { dc_int(2), dc_int(1), dc_int(0) };
	struct dc_value fv[] = { dc_float(0.0), dc_float(1.0), dc_int(2) };
	struct dc_value bad[] = { dc_int(0), dc_text("1"), dc_int(2) };
	struct dc_value other[] = { dc_text("a"), dc_text("b"), dc_text("x") };
	const struct {
		const struct dc_value *keys, *values;
		size_t n;
		int ordered, want;
	} cases[] = {
		{ k, v, 3, 1, 1 },   { k, v, 3, 0, 1 },
		{ rk, rv, 3, 0, 1 }, { rk, rv, 3, 1, 0 }, /* order counts */
		{ k, fv, 3, 1, 1 },                       /* 0 == 0.0 */
		{ k, bad, 3, 0, 0 }, { other, v, 3, 0, 0 },
		{ k, v, 2, 0, 0 }, /* lengths first */
	};
	int eq = -1;

	ck_assert_int_eq(dc_index_equal(ix, NULL, NULL, 0, 1, &eq), 0);
	ck_assert_int_eq(eq, 1);
	fill(3);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(dc_index_equal(ix, cases[i].keys,
						cases[i].values, cases[i].n,
						cases[i].ordered, &eq),
				 0);
		ck_assert_msg(eq == cases[i].want, "case %zu: %d", i, eq);
	}
	ck_assert_int_eq(dc_index_equal(ix, NULL, v, 3, 0, &eq), DC_INVAL);
	ck_assert_int_eq(dc_index_equal(NULL, k, v, 3, 0, &eq), DC_INVAL);
}
END_TEST

START_TEST(test_sub_and_policy)
{
	dc_cache *fan = NULL;
	dc_index *sub = NULL;
	struct dc_options o = { .shards = 4 };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;
	char *dir = tu_mkdtemp();

	ck_assert_int_eq(dc_cache_setting_get(dc_index_cache(ix),
					      "eviction_policy", &buf, &v),
			 0);
	ck_assert_str_eq((const char *)v.data, "none");
	ck_assert_int_eq(dc_cache_open(dir, &o, &fan), 0);
	ck_assert_int_eq(dc_index_open_sub(fan, "names", NULL, &sub), 0);
	v = dc_int(1);
	ck_assert_int_eq(dc_index_set(sub, &v, &v), 0);
	ck_assert_int_eq(tu_run("test -f '%s/index/names/cache.db'", dir), 0);
	ck_assert_int_eq(dc_cache_setting_get(dc_index_cache(sub),
					      "eviction_policy", &buf, &v),
			 0);
	ck_assert_str_eq((const char *)v.data, "none");
	dc_index_close(sub);
	ck_assert_int_eq(dc_index_open_sub(fan, "..", NULL, &sub), DC_INVAL);
	ck_assert_ptr_null(sub);
	dc_cache_close(fan);
	dc_buf_release(&buf);
	tu_rmdtemp(&dir);
}
END_TEST

START_TEST(test_pop_default)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value c = dc_text("c"), d = dc_text("d");

	/* pop('c', default=3) -> 3: the C caller gets DC_NOTFOUND and uses
	 * its default; pop('d') -> KeyError: the same DC_NOTFOUND.  Neither
	 * changes anything. */
	fill(2);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_pop(ix, &c, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_pop(ix, &d, &buf, &it), DC_NOTFOUND);
	assert_len(2);
	ck_assert_int_eq(dc_index_pop(ix, NULL, &buf, &it), DC_INVAL);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_peekitem)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char k[2] = { 0, 0 };

	tu_item_init(&it);
	ck_assert_int_eq(dc_index_peekitem(ix, 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_peekitem(ix, DC_FIRST, &buf, &it),
			 DC_NOTFOUND);
	/* for num, letter in enumerate('xyz'): index[letter] = num */
	for (int i = 0; i < 3; i++) {
		struct dc_value key, val = dc_int(i);

		k[0] = (char)('x' + i);
		key = dc_text(k);
		ck_assert_int_eq(dc_index_set(ix, &key, &val), 0);
	}
	ck_assert_int_eq(dc_index_peekitem(ix, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "z");
	ck_assert_int_eq(it.value.i, 2);
	ck_assert_int_eq(dc_index_peekitem(ix, DC_FIRST, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "x");
	ck_assert_int_eq(it.value.i, 0);
	assert_len(3);
	ck_assert_int_eq(dc_index_peekitem(ix, DC_FRONT, &buf, &it), DC_INVAL);
	ck_assert_int_eq(dc_index_peekitem(NULL, 0, &buf, &it), DC_INVAL);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_push_pull_peek)
{
	struct dc_buf buf = DC_BUF_INIT, kbuf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value key, v;
	const char *fruit[] = { "apples", "beans", "cherries" };
	const int64_t want[] = { 500000000000000LL, 500000000000001LL,
				 499999999999999LL };

	/* The push doctest. */
	for (int i = 0; i < 3; i++) {
		v = dc_text(fruit[i]);
		ck_assert_int_eq(dc_index_push(ix, &v, NULL,
					       i == 2 ? DC_FRONT : 0, &kbuf,
					       &key),
				 0);
		ck_assert_int_eq(key.type, DC_TYPE_INT);
		ck_assert_int_eq(key.i, want[i]);
	}
	key = dc_int(500000000000001LL);
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_get(ix, &key, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "beans");
	v = dc_text("dates");
	ck_assert_int_eq(dc_index_push(ix, &v, "fruit", DC_BACK, &kbuf, &key),
			 0);
	ck_assert_int_eq(key.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)key.data, "fruit-500000000000000");
	/* peek leaves, pull takes: front by default, DC_BACK the back. */
	ck_assert_int_eq(dc_index_peek(ix, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.key.i, 499999999999999LL);
	ck_assert_str_eq((const char *)it.value.data, "cherries");
	ck_assert_int_eq(dc_index_peek(ix, NULL, DC_BACK, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "beans");
	ck_assert_int_eq(dc_index_pull(ix, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.key.i, 499999999999999LL);
	ck_assert_str_eq((const char *)it.value.data, "cherries");
	ck_assert_int_eq(dc_index_pull(ix, NULL, DC_BACK, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "beans");
	ck_assert_int_eq(dc_index_pull(ix, "fruit", 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "fruit-500000000000000");
	ck_assert_str_eq((const char *)it.value.data, "dates");
	/* pull(prefix='fruit') on an empty queue -> (None, None). */
	ck_assert_int_eq(dc_index_pull(ix, "fruit", 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_peek(ix, "fruit", DC_BACK, &buf, &it),
			 DC_NOTFOUND);
	ck_assert_int_eq(dc_index_pull(ix, NULL, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "apples");
	ck_assert_int_eq(dc_index_pull(ix, NULL, DC_BACK, &buf, &it),
			 DC_NOTFOUND);
	/* The pull doctest: 'abc' -> keys ...000-...002, pull 'a', back 'c'. */
	for (int i = 0; i < 3; i++) {
		char s[2] = { (char)('a' + i), 0 };

		v = dc_text(s);
		ck_assert_int_eq(dc_index_push(ix, &v, NULL, 0, NULL, NULL), 0);
	}
	ck_assert_int_eq(dc_index_pull(ix, NULL, 0, &buf, &it), 0);
	ck_assert_int_eq(it.key.i, 500000000000000LL);
	ck_assert_str_eq((const char *)it.value.data, "a");
	ck_assert_int_eq(dc_index_pull(ix, NULL, DC_BACK, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "c");
	/* Flags other than the side are rejected. */
	ck_assert_int_eq(dc_index_push(ix, &v, NULL, DC_ADD, NULL, NULL),
			 DC_INVAL);
	ck_assert_int_eq(dc_index_pull(ix, NULL, DC_FD, &buf, &it), DC_INVAL);
	ck_assert_int_eq(dc_index_peek(ix, NULL, DC_FIRST, &buf, &it),
			 DC_INVAL);
	ck_assert_int_eq(dc_index_push(ix, NULL, NULL, 0, NULL, NULL),
			 DC_INVAL);
	dc_buf_release(&buf);
	dc_buf_release(&kbuf);
}
END_TEST

START_TEST(test_second_handle_same_items)
{
	dc_index *other = NULL;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value d = dc_text("d"), v = dc_int(3);

	/* Index(directory, mapping) == Index(directory) */
	fill(3);
	ck_assert_int_eq(dc_index_open(root, NULL, &other), 0);
	ck_assert_int_eq(dc_index_set(other, &d, &v), 0);
	ck_assert_str_eq(keys(0), "abcd");
	tu_item_init(&it);
	ck_assert_int_eq(dc_index_popitem(ix, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "d");
	ck_assert_int_eq(dc_index_peekitem(other, 0, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.key.data, "c");
	dc_index_close(other);
	dc_buf_release(&buf);
}
END_TEST

/* Threads using one index as a queue (push at either end, pull from
 * either end), on one handle and on separate ones: every pushed item is
 * pulled exactly once. */
#define IQ_THREADS 4
#define IQ_ITEMS   120

struct iq {
	dc_index *ix;
	int id;
	int *seen;
	pthread_mutex_t *lock;
	char err[160];
};

static void iq_note(struct iq *q, const struct dc_item *it)
{
	int id = it->value.type == DC_TYPE_INT ? (int)it->value.i : -1;

	pthread_mutex_lock(q->lock);
	if (id < 0 || id >= IQ_THREADS * IQ_ITEMS ||
	    it->key.type != DC_TYPE_TEXT ||
	    strncmp((const char *)it->key.data, "jobs-", 5))
		snprintf(q->err, sizeof(q->err), "foreign item");
	else
		q->seen[id]++;
	pthread_mutex_unlock(q->lock);
}

static void *iq_worker(void *arg)
{
	struct iq *q = arg;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int rc;

	for (int i = 0; i < IQ_ITEMS && !q->err[0]; i++) {
		struct dc_value v = dc_int(q->id * IQ_ITEMS + i);

		rc = dc_index_push(q->ix, &v, "jobs", i % 2 ? DC_FRONT : 0,
				   NULL, NULL);
		if (rc) {
			snprintf(q->err, sizeof(q->err), "push: %s",
				 dc_strerror(rc));
			break;
		}
		if (i % 3 == 2)
			continue;
		tu_item_init(&it);
		/* From the other end, so items pass between threads. */
		rc = dc_index_pull(q->ix, "jobs", i % 2 ? DC_BACK : 0, &buf,
				   &it);
		if (rc == DC_NOTFOUND)
			continue;
		if (rc) {
			snprintf(q->err, sizeof(q->err), "pull: %s",
				 dc_strerror(rc));
			break;
		}
		iq_note(q, &it);
	}
	dc_buf_release(&buf);
	return NULL;
}

static void run_iq(int own)
{
	struct iq q[IQ_THREADS];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int *seen = calloc(IQ_THREADS * IQ_ITEMS, sizeof(int));
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int rc;

	ck_assert_ptr_nonnull(seen);
	memset(q, 0, sizeof(q));
	for (int t = 0; t < IQ_THREADS; t++) {
		q[t].id = t;
		q[t].seen = seen;
		q[t].lock = &lock;
		q[t].ix = ix;
		if (own)
			ck_assert_int_eq(dc_index_open(root, NULL, &q[t].ix),
					 0);
	}
	tu_run_threads(IQ_THREADS, iq_worker, q, sizeof(q[0]));
	for (int t = 0; t < IQ_THREADS; t++) {
		ck_assert_msg(!q[t].err[0], "thread %d: %s", t, q[t].err);
		if (own)
			dc_index_close(q[t].ix);
	}
	while (!(rc = dc_index_pull(ix, "jobs", 0, &buf, &it))) {
		iq_note(&q[0], &it);
		ck_assert_msg(!q[0].err[0], "drain: %s", q[0].err);
	}
	ck_assert_int_eq(rc, DC_NOTFOUND);
	for (int id = 0; id < IQ_THREADS * IQ_ITEMS; id++)
		ck_assert_msg(seen[id] == 1, "item %d pulled %d times", id,
			      seen[id]);
	assert_len(0);
	dc_buf_release(&buf);
	free(seen);
}

START_TEST(test_threads_queue_one_handle)
{
	run_iq(0);
}
END_TEST

START_TEST(test_threads_queue_own_handles)
{
	run_iq(1);
}
END_TEST

Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tu_tcase(s, "index", setup, teardown, 60);

	tcase_add_test(tc, test_get_set_delete);
	tcase_add_test(tc, test_pop);
	tcase_add_test(tc, test_popitem);
	tcase_add_test(tc, test_setdefault);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_items_both_ways);
	tcase_add_test(tc, test_equal);
	tcase_add_test(tc, test_sub_and_policy);
	tcase_add_test(tc, test_pop_default);
	tcase_add_test(tc, test_peekitem);
	tcase_add_test(tc, test_push_pull_peek);
	tcase_add_test(tc, test_second_handle_same_items);

	tc = tu_tcase(s, "threads", setup, teardown, 120);
	tcase_add_test(tc, test_threads_queue_one_handle);
	tcase_add_test(tc, test_threads_queue_own_handles);
	return s;
}
