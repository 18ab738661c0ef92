/* check_deque.c - dc_deque: Python DiskCache's Deque behaviours (§13.3)
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.  Items
 * are one-letter text values so a deque reads back as a string.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

Suite *deque_suite(void);

static char *root;
static dc_deque *dq;

static void setup(void)
{
	root = tu_mkdtemp();
	ck_assert_int_eq(dc_deque_open(root, NULL, &dq), 0);
}

static void teardown(void)
{
	dc_deque_close(dq);
	dq = NULL;
	tu_rmtree(root);
	free(root);
	root = NULL;
}

static void init_item(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

static void append_str(const char *s, int left)
{
	for (; *s; s++) {
		struct dc_value v = dc_textn(s, 1);

		ck_assert_int_eq(left ? dc_deque_appendleft(dq, &v)
				      : dc_deque_append(dq, &v),
				 0);
	}
}

/* The deque's contents front to back as a string, via dc_deque_get. */
static const char *contents(void)
{
	static char out[256];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	uint64_t n;

	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	ck_assert_uint_lt(n, sizeof(out));
	for (uint64_t i = 0; i < n; i++) {
		init_item(&it);
		ck_assert_int_eq(dc_deque_get(dq, (int64_t)i, &buf, &it), 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
		ck_assert_uint_eq(it.value.len, 1);
		out[i] = ((const char *)it.value.data)[0];
	}
	out[n] = '\0';
	dc_buf_release(&buf);
	return out;
}

START_TEST(test_eviction_policy_none)
{
	dc_cache *c = dc_deque_cache(dq);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(dc_cache_shards(c), 0);
	ck_assert_int_eq(dc_cache_setting_get(c, "eviction_policy", &buf, &v),
			 0);
	ck_assert_int_eq(v.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)v.data, "none");
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_pop_order_and_empty)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value v;

	init_item(&it);
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_peek(dq, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_peekleft(dq, &buf, &it), DC_NOTFOUND);
	/* The doctest: [-4,-3,-2,-1,0,0,1,2,3,4]. */
	for (int i = 0; i < 5; i++) {
		v = dc_int(i);
		ck_assert_int_eq(dc_deque_append(dq, &v), 0);
		v = dc_int(-i);
		ck_assert_int_eq(dc_deque_appendleft(dq, &v), 0);
	}
	int64_t want[] = { -4, -3, -2, -1, 0, 0, 1, 2, 3, 4 };
	for (int i = 0; i < 10; i++) {
		init_item(&it);
		ck_assert_int_eq(dc_deque_get(dq, i, &buf, &it), 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_INT);
		ck_assert_int_eq(it.value.i, want[i]);
	}
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 4);
	ck_assert_int_eq(it.key.type, DC_TYPE_INT);
	ck_assert_int_eq(it.key.i, 500000000000004LL);
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, -4);
	ck_assert_int_eq(dc_deque_peek(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 3);
	ck_assert_int_eq(dc_deque_peekleft(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, -3);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), 0);
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), DC_NOTFOUND);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_maxlen)
{
	struct dc_value v = dc_text("x");

	ck_assert_int_eq(dc_deque_maxlen(dq), DC_DEQUE_UNBOUNDED);
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 3), 0);
	append_str("abcde", 0);
	ck_assert_str_eq(contents(), "cde");
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	append_str("abcde", 1);
	ck_assert_str_eq(contents(), "edc");
	/* Lowering maxlen trims from the front. */
	ck_assert_int_eq(dc_deque_set_maxlen(dq, DC_DEQUE_UNBOUNDED), 0);
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	append_str("abcde", 1);
	ck_assert_str_eq(contents(), "edcba");
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 3), 0);
	ck_assert_int_eq(dc_deque_maxlen(dq), 3);
	ck_assert_str_eq(contents(), "cba");
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 0), 0);
	ck_assert_str_eq(contents(), "");
	ck_assert_int_eq(dc_deque_append(dq, &v), 0);
	ck_assert_str_eq(contents(), "");
	ck_assert_int_eq(dc_deque_set_maxlen(dq, -2), DC_INVAL);
}
END_TEST

START_TEST(test_indexing)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value v = dc_text("Z");

	init_item(&it);
	ck_assert_int_eq(dc_deque_get(dq, 0, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_get(dq, -1, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_set(dq, 0, &v), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_delete(dq, -1), DC_NOTFOUND);
	append_str("abcde", 0);
	ck_assert_int_eq(dc_deque_get(dq, -1, &buf, &it), 0);
	ck_assert_int_eq(((const char *)it.value.data)[0], 'e');
	ck_assert_int_eq(it.key.type, DC_TYPE_INT);
	ck_assert_int_eq(it.key.i, 500000000000004LL);
	ck_assert_int_eq(dc_deque_get(dq, -5, &buf, &it), 0);
	ck_assert_int_eq(((const char *)it.value.data)[0], 'a');
	ck_assert_int_eq(dc_deque_get(dq, 5, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_get(dq, -6, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_get(dq, INT64_MIN, &buf, &it), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_set(dq, 1, &v), 0);
	ck_assert_int_eq(dc_deque_set(dq, -2, &v), 0);
	ck_assert_str_eq(contents(), "aZcZe");
	/* Alternate del d[0] / del d[-1] until empty. */
	const char *want[] = { "ZcZe", "ZcZ", "cZ", "c", "" };
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(dc_deque_delete(dq, i % 2 ? -1 : 0), 0);
		ck_assert_str_eq(contents(), want[i]);
	}
	ck_assert_int_eq(dc_deque_delete(dq, 0), DC_NOTFOUND);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_rotate)
{
	ck_assert_int_eq(dc_deque_rotate(dq, 3), 0); /* empty: no-op */
	ck_assert_str_eq(contents(), "");
	append_str("abcde", 0);
	ck_assert_int_eq(dc_deque_rotate(dq, 3), 0);
	ck_assert_str_eq(contents(), "cdeab");
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	append_str("abcde", 0);
	ck_assert_int_eq(dc_deque_rotate(dq, -2), 0);
	ck_assert_str_eq(contents(), "cdeab");
	ck_assert_int_eq(dc_deque_rotate(dq, 10), 0);
	ck_assert_str_eq(contents(), "cdeab");
	ck_assert_int_eq(dc_deque_rotate(dq, -7), 0);
	ck_assert_str_eq(contents(), "eabcd");
	ck_assert_int_eq(dc_deque_rotate(dq, INT64_MIN), 0);
}
END_TEST

START_TEST(test_reverse)
{
	ck_assert_int_eq(dc_deque_reverse(dq), 0);
	append_str("abcde", 0);
	ck_assert_int_eq(dc_deque_reverse(dq), 0);
	ck_assert_str_eq(contents(), "edcba");
	/* Both ends still work after the keys moved. */
	append_str("X", 0);
	append_str("Y", 1);
	ck_assert_str_eq(contents(), "YedcbaX");
	ck_assert_int_eq(dc_deque_reverse(dq), 0);
	ck_assert_str_eq(contents(), "XabcdeY");
}
END_TEST

START_TEST(test_remove_count)
{
	struct dc_value a = dc_text("a"), z = dc_text("z"), zero = dc_int(0);
	uint64_t n = 99;

	append_str("abaca", 0);
	ck_assert_int_eq(dc_deque_count(dq, &a, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(dc_deque_count(dq, &z, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_deque_remove(dq, &a), 0);
	ck_assert_str_eq(contents(), "baca");
	ck_assert_int_eq(dc_deque_remove(dq, &a), 0);
	ck_assert_str_eq(contents(), "bca");
	ck_assert_int_eq(dc_deque_remove(dq, &a), 0);
	ck_assert_str_eq(contents(), "bc");
	ck_assert_int_eq(dc_deque_remove(dq, &a), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_remove(dq, &zero), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_count(dq, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* Types differ: int 1 is not float 1.0; equal bytes of another type
	 * are not equal either. */
	struct dc_value one = dc_int(1), onef = dc_float(1.0);
	struct dc_value bc = dc_bytes("b", 1);
	ck_assert_int_eq(dc_deque_append(dq, &one), 0);
	ck_assert_int_eq(dc_deque_count(dq, &onef, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_deque_count(dq, &one, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_deque_count(dq, &bc, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_remove_large)
{
	size_t len = 100000;
	char *big = malloc(len), *other = malloc(len);
	struct dc_value v, w;
	uint64_t n;

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(other);
	memset(big, 'q', len);
	memset(other, 'q', len);
	other[len - 1] = 'r'; /* same size, different last byte */
	v = dc_bytes(big, len);
	w = dc_bytes(other, len);
	ck_assert_int_eq(dc_deque_append(dq, &w), 0);
	ck_assert_int_eq(dc_deque_append(dq, &v), 0);
	ck_assert_int_eq(dc_deque_count(dq, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_deque_remove(dq, &v), 0);
	ck_assert_int_eq(dc_deque_count(dq, &w, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(big);
	free(other);
}
END_TEST

START_TEST(test_peek_large_twice)
{
	size_t len = 100000;
	char *big = malloc(len);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value v;
	uint64_t n;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)(i * 7);
	v = dc_bytes(big, len);
	ck_assert_int_eq(dc_deque_append(dq, &v), 0);
	for (int i = 0; i < 2; i++) {
		init_item(&it);
		ck_assert_int_eq(i ? dc_deque_peekleft(dq, &buf, &it)
				   : dc_deque_peek(dq, &buf, &it),
				 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
		ck_assert_uint_eq(it.value.len, len);
		ck_assert_int_eq(memcmp(it.value.data, big, len), 0);
		ck_assert_int_eq(dc_deque_len(dq, &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), 0);
	ck_assert_uint_eq(it.value.len, len);
	ck_assert_int_eq(memcmp(it.value.data, big, len), 0);
	dc_buf_release(&buf);
	free(big);
}
END_TEST

START_TEST(test_sub_and_transaction)
{
	dc_cache *fan = NULL;
	dc_deque *sub = NULL;
	struct dc_options o = { .shards = 2 };
	struct dc_value v = dc_text("a");
	uint64_t n;
	char *dir = tu_mkdtemp();

	ck_assert_int_eq(dc_cache_open(dir, &o, &fan), 0);
	ck_assert_int_eq(dc_deque_open_sub(fan, "q/one", NULL, &sub), 0);
	ck_assert_int_eq(dc_deque_append(sub, &v), 0);
	ck_assert_int_eq(tu_run("test -f '%s/deque/q/one/cache.db'", dir), 0);
	/* A FanoutCache directory is not a deque. */
	dc_deque *bad = NULL;
	ck_assert_int_eq(dc_deque_open(dir, NULL, &bad), DC_LAYOUT);
	ck_assert_ptr_null(bad);
	/* Several calls in one transaction, rolled back. */
	ck_assert_int_eq(dc_cache_begin(dc_deque_cache(sub), DC_RETRY), 0);
	ck_assert_int_eq(dc_deque_append(sub, &v), 0);
	ck_assert_int_eq(dc_deque_appendleft(sub, &v), 0);
	ck_assert_int_eq(dc_cache_rollback(dc_deque_cache(sub)), 0);
	ck_assert_int_eq(dc_deque_len(sub, &n), 0);
	ck_assert_uint_eq(n, 1);
	/* A rejected value inside the caller's transaction does not undo
	 * the caller's earlier work. */
	struct dc_value none = { .type = DC_TYPE_NONE };
	ck_assert_int_eq(dc_cache_begin(dc_deque_cache(sub), DC_RETRY), 0);
	ck_assert_int_eq(dc_deque_append(sub, &v), 0);
	ck_assert_int_eq(dc_deque_append(sub, &none), DC_INVAL);
	ck_assert_int_eq(dc_deque_appendleft(sub, &none), DC_INVAL);
	ck_assert_int_eq(dc_cache_commit(dc_deque_cache(sub)), 0);
	ck_assert_int_eq(dc_deque_len(sub, &n), 0);
	ck_assert_uint_eq(n, 2);
	dc_deque_close(sub);
	dc_cache_close(fan);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

Suite *deque_suite(void)
{
	Suite *s = suite_create("deque");
	TCase *tc = tcase_create("deque");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_eviction_policy_none);
	tcase_add_test(tc, test_pop_order_and_empty);
	tcase_add_test(tc, test_maxlen);
	tcase_add_test(tc, test_indexing);
	tcase_add_test(tc, test_rotate);
	tcase_add_test(tc, test_reverse);
	tcase_add_test(tc, test_remove_count);
	tcase_add_test(tc, test_remove_large);
	tcase_add_test(tc, test_peek_large_twice);
	tcase_add_test(tc, test_sub_and_transaction);
	suite_add_tcase(s, tc);
	return s;
}
