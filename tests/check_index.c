/* check_index.c - dc_index: Python DiskCache's Index behaviours (§13.4)
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
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
	tu_rmtree(root);
	free(root);
	root = NULL;
}

static void init_item(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
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

/* Keys in iteration order (DC_REVERSE optional) as a string. */
static const char *keys(unsigned flags)
{
	static char out[64];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	dc_iter *iter = NULL;
	size_t n = 0;
	int ret;

	ck_assert_int_eq(
	    dc_iter_open(dc_index_cache(ix), flags, NULL, 0, &iter), 0);
	for (;;) {
		init_item(&it);
		ret = dc_iter_next(iter, &buf, &it);
		if (ret == DC_NOTFOUND)
			break;
		ck_assert_int_eq(ret, 0);
		ck_assert_int_eq(it.key.type, DC_TYPE_TEXT);
		ck_assert_uint_lt(n, sizeof(out) - 1);
		out[n++] = ((const char *)it.key.data)[0];
	}
	out[n] = '\0';
	dc_iter_close(iter);
	dc_buf_release(&buf);
	return out;
}

START_TEST(test_get_set_delete)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value k = dc_text("k"), v = dc_text("value"), w = dc_int(7);
	uint64_t n;

	init_item(&it);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_set(ix, &k, &v), 0);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)it.value.data, "value");
	ck_assert_int_eq(dc_index_set(ix, &k, &w), 0);
	ck_assert_int_eq(dc_index_get(ix, &k, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 7);
	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_index_delete(ix, &k), 0);
	ck_assert_int_eq(dc_index_delete(ix, &k), DC_NOTFOUND);
	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, 0);
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
		init_item(&it);
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
	uint64_t n;

	init_item(&it);
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
	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, 2);
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
	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, 1);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_setdefault)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value k = dc_text("a"), zero = dc_int(0), one = dc_int(1);

	init_item(&it);
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
	uint64_t n;

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
	ck_assert_int_eq(dc_index_len(ix, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq(keys(0), "");
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
	tu_rmtree(dir);
	free(dir);
}
END_TEST

Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("index");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_get_set_delete);
	tcase_add_test(tc, test_pop);
	tcase_add_test(tc, test_popitem);
	tcase_add_test(tc, test_setdefault);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_sub_and_policy);
	suite_add_tcase(s, tc);
	return s;
}
