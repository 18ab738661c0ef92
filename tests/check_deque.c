/* check_deque.c - dc_deque: Python DiskCache's Deque behaviours (§13.3)
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.  Items
 * are one-letter text values so a deque reads back as a string.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
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
	tu_rmdtemp(&root);
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

/* A deque's contents front to back as a string, via dc_deque_get. */
static const char *contents_of(dc_deque *q)
{
	static char out[256];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	uint64_t n;

	ck_assert_int_eq(dc_deque_len(q, &n), 0);
	ck_assert_uint_lt(n, sizeof(out));
	for (uint64_t i = 0; i < n; i++) {
		tu_item_init(&it);
		ck_assert_int_eq(dc_deque_get(q, (int64_t)i, &buf, &it), 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
		ck_assert_uint_eq(it.value.len, 1);
		out[i] = ((const char *)it.value.data)[0];
	}
	out[n] = '\0';
	dc_buf_release(&buf);
	return out;
}

static const char *contents(void)
{
	return contents_of(dq);
}

/* One-letter text values for each character of @s (at most 31). */
static size_t letters(const char *s, struct dc_value *out)
{
	size_t n = strlen(s);

	ck_assert_uint_lt(n, 32);
	for (size_t i = 0; i < n; i++)
		out[i] = dc_textn(s + i, 1);
	return n;
}

/* dc_deque_compare of @q with the letters of @s. */
static int cmp_str(dc_deque *q, const char *s)
{
	struct dc_value v[32];
	size_t n = letters(s, v);
	int c = 99;

	ck_assert_int_eq(dc_deque_compare(q, v, n, &c), 0);
	ck_assert(c >= -1 && c <= 1);
	return c;
}

/* dc_deque_compare of dq with @n ints. */
static int cmp_ints(const int64_t *x, size_t n)
{
	struct dc_value v[16];
	int c = 99;

	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++)
		v[i] = dc_int(x[i]);
	ck_assert_int_eq(dc_deque_compare(dq, v, n, &c), 0);
	return c;
}

/* The deque's INT items front to back, formatted "a,b,c". */
static const char *int_contents(void)
{
	static char out[512];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	size_t off = 0;
	uint64_t n;

	out[0] = '\0';
	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	for (uint64_t i = 0; i < n; i++) {
		tu_item_init(&it);
		ck_assert_int_eq(dc_deque_get(dq, (int64_t)i, &buf, &it), 0);
		ck_assert_int_eq(it.value.type, DC_TYPE_INT);
		off += (size_t)snprintf(out + off, sizeof(out) - off,
					"%s%" PRId64, i ? "," : "", it.value.i);
		ck_assert_uint_lt(off, sizeof(out));
	}
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

	tu_item_init(&it);
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
		tu_item_init(&it);
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

	tu_item_init(&it);
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
		tu_item_init(&it);
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
	tu_rmdtemp(&dir);
}
END_TEST

START_TEST(test_second_handle_compares_equal)
{
	struct dc_value v[32];
	size_t n = letters("abcde", v);
	dc_deque *other = NULL;

	/* Deque('abcde', directory=D) == Deque(directory=D) */
	ck_assert_int_eq(dc_deque_extend(dq, v, n), 0);
	ck_assert_int_eq(dc_deque_open(root, NULL, &other), 0);
	ck_assert_int_eq(cmp_str(other, "abcde"), 0);
	ck_assert_str_eq(contents_of(other), "abcde");
	/* What one handle appends, the other sees. */
	append_str("f", 0);
	ck_assert_int_eq(cmp_str(other, "abcdef"), 0);
	ck_assert_int_eq(cmp_str(other, "abcde"), 1);
	dc_deque_close(other);
}
END_TEST

START_TEST(test_copy)
{
	dc_deque *cp = NULL, *cp2 = NULL;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	ck_assert_int_eq(dc_deque_copy(NULL, &cp), DC_INVAL);
	ck_assert_int_eq(dc_deque_copy(dq, NULL), DC_INVAL);
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 3), 0);
	append_str("abcd", 0);
	ck_assert_int_eq(dc_deque_copy(dq, &cp), 0);
	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(dc_deque_maxlen(cp), 3);
	ck_assert_int_eq(cmp_str(cp, "bcd"), 0);
	ck_assert_ptr_eq(dc_deque_cache(cp), dc_deque_cache(dq));
	/* maxlen belongs to each handle. */
	ck_assert_int_eq(dc_deque_set_maxlen(cp, DC_DEQUE_UNBOUNDED), 0);
	ck_assert_int_eq(dc_deque_maxlen(dq), 3);
	struct dc_value e = dc_text("e");
	ck_assert_int_eq(dc_deque_append(cp, &e), 0);
	ck_assert_str_eq(contents(), "bcde");
	append_str("f", 0);
	ck_assert_str_eq(contents_of(cp), "def");
	/* The copy outlives the original, and a copy of the copy works. */
	ck_assert_int_eq(dc_deque_copy(cp, &cp2), 0);
	dc_deque_close(dq);
	dq = NULL;
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_popleft(cp, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "d");
	dc_deque_close(cp);
	ck_assert_str_eq(contents_of(cp2), "ef");
	ck_assert_int_eq(dc_deque_maxlen(cp2), DC_DEQUE_UNBOUNDED);
	dc_deque_close(cp2);
	/* Reopening shows what the copies did. */
	ck_assert_int_eq(dc_deque_open(root, NULL, &dq), 0);
	ck_assert_str_eq(contents(), "ef");
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_extend_extendleft)
{
	struct dc_value v[32], bad[3];
	size_t n;
	uint64_t len;

	ck_assert_int_eq(dc_deque_extend(dq, NULL, 0), 0);
	ck_assert_int_eq(dc_deque_extendleft(dq, NULL, 0), 0);
	ck_assert_int_eq(dc_deque_extend(dq, NULL, 1), DC_INVAL);
	ck_assert_int_eq(dc_deque_extend(NULL, v, 0), DC_INVAL);
	n = letters("abc", v);
	ck_assert_int_eq(dc_deque_extend(dq, v, n), 0);
	ck_assert_str_eq(contents(), "abc");
	n = letters("xyz", v);
	ck_assert_int_eq(dc_deque_extendleft(dq, v, n), 0);
	ck_assert_str_eq(contents(), "zyxabc");
	/* A bad value stores nothing, first or later in the list. */
	bad[0] = dc_text("1");
	bad[1] = (struct dc_value){ .type = DC_TYPE_NONE };
	bad[2] = dc_text("3");
	ck_assert_int_eq(dc_deque_extend(dq, bad, 3), DC_INVAL);
	ck_assert_int_eq(dc_deque_extendleft(dq, bad, 3), DC_INVAL);
	ck_assert_int_eq(dc_deque_extend(dq, bad + 1, 2), DC_INVAL);
	ck_assert_str_eq(contents(), "zyxabc");
	/* Inside the caller's transaction a value rejected before anything
	 * was stored keeps the caller's work. */
	ck_assert_int_eq(dc_cache_begin(dc_deque_cache(dq), DC_RETRY), 0);
	append_str("Q", 0);
	ck_assert_int_eq(dc_deque_extend(dq, bad + 1, 2), DC_INVAL);
	ck_assert_int_eq(dc_cache_commit(dc_deque_cache(dq)), 0);
	ck_assert_str_eq(contents(), "zyxabcQ");
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	/* maxlen 3: extend keeps the last three, extendleft the last three
	 * pushed at the front (Python's extendleft is appendleft each). */
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 3), 0);
	n = letters("abcde", v);
	ck_assert_int_eq(dc_deque_extend(dq, v, n), 0);
	ck_assert_str_eq(contents(), "cde");
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	ck_assert_int_eq(dc_deque_extendleft(dq, v, n), 0);
	ck_assert_str_eq(contents(), "edc");
	ck_assert_int_eq(dc_deque_len(dq, &len), 0);
	ck_assert_uint_eq(len, 3);
	/* The note of §13.3: extendleft('abcde') unbounded, then maxlen 3
	 * trims the front: ['c', 'b', 'a']. */
	ck_assert_int_eq(dc_deque_set_maxlen(dq, DC_DEQUE_UNBOUNDED), 0);
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	ck_assert_int_eq(dc_deque_extendleft(dq, v, n), 0);
	ck_assert_int_eq(dc_deque_set_maxlen(dq, 3), 0);
	ck_assert_str_eq(contents(), "cba");
}
END_TEST

START_TEST(test_compare)
{
	int64_t zero = 0, one = 1;
	struct dc_value v[4];
	int c = 99;

	/* Empty: equal to [], not to [0]; != [1]. */
	ck_assert_int_eq(cmp_ints(NULL, 0), 0);
	ck_assert_int_eq(cmp_ints(&zero, 1), -1);
	ck_assert_int_ne(cmp_ints(&one, 1), 0);
	ck_assert_int_eq(dc_deque_compare(dq, NULL, 1, &c), DC_INVAL);
	ck_assert_int_eq(dc_deque_compare(dq, v, 0, NULL), DC_INVAL);
	/* After append(0): <= [0] (equal) and <= [1] (less). */
	v[0] = dc_int(0);
	ck_assert_int_eq(dc_deque_append(dq, &v[0]), 0);
	ck_assert_int_eq(cmp_ints(&zero, 1), 0);
	ck_assert_int_eq(cmp_ints(&one, 1), -1);
	ck_assert_int_eq(cmp_ints(NULL, 0), 1);
	int64_t zz[] = { 0, 0 };
	ck_assert_int_eq(cmp_ints(zz, 2), -1);
	/* Numbers by value: 0 == 0.0 < 0.5; -0.5 < 0. */
	v[0] = dc_float(0.0);
	ck_assert_int_eq(dc_deque_compare(dq, v, 1, &c), 0);
	ck_assert_int_eq(c, 0);
	v[0] = dc_float(0.5);
	ck_assert_int_eq(dc_deque_compare(dq, v, 1, &c), 0);
	ck_assert_int_eq(c, -1);
	v[0] = dc_float(-0.5);
	ck_assert_int_eq(dc_deque_compare(dq, v, 1, &c), 0);
	ck_assert_int_eq(c, 1);
	/* Exact int/float comparison: 2**53 + 1 > float(2**53). */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	v[0] = dc_int(9007199254740993LL);
	ck_assert_int_eq(dc_deque_append(dq, &v[0]), 0);
	v[1] = dc_float(9007199254740992.0);
	ck_assert_int_eq(dc_deque_compare(dq, &v[1], 1, &c), 0);
	ck_assert_int_eq(c, 1);
	v[1] = dc_float(1e300);
	ck_assert_int_eq(dc_deque_compare(dq, &v[1], 1, &c), 0);
	ck_assert_int_eq(c, -1);
	v[1] = dc_float(NAN);
	ck_assert_int_eq(dc_deque_compare(dq, &v[1], 1, &c), DC_TYPE);
	/* Text with text in code point order; the first difference decides
	 * before the lengths do. */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	append_str("abc", 0);
	ck_assert_int_eq(cmp_str(dq, "abc"), 0);
	ck_assert_int_eq(cmp_str(dq, "abd"), -1);
	ck_assert_int_eq(cmp_str(dq, "abb"), 1);
	ck_assert_int_eq(cmp_str(dq, "ab"), 1);
	ck_assert_int_eq(cmp_str(dq, "abcd"), -1);
	ck_assert_int_eq(cmp_str(dq, "b"), -1);
	v[0] = dc_text("a");
	v[1] = dc_text("\xc3\xa9"); /* U+00E9 sorts after 'z' */
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), 0);
	ck_assert_int_eq(c, -1);
	v[1] = dc_text("bb"); /* 'b' < 'bb' */
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), 0);
	ck_assert_int_eq(c, -1);
	/* A text and a number, or text and bytes: unequal, unorderable. */
	v[1] = dc_int(1);
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), DC_TYPE);
	v[1] = dc_bytes("b", 1);
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), DC_TYPE);
	/* ... but an earlier difference still decides. */
	v[0] = dc_text("Z");
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), 0);
	ck_assert_int_eq(c, 1);
	/* Bytes bytewise; pickles equal only by their bytes. */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	v[0] = dc_bytes("\x00\xff", 2);
	v[1] = dc_pickle("\x80\x05N.", 4);
	ck_assert_int_eq(dc_deque_extend(dq, v, 2), 0);
	ck_assert_int_eq(dc_deque_compare(dq, v, 2, &c), 0);
	ck_assert_int_eq(c, 0);
	v[2] = dc_bytes("\x01", 1);
	ck_assert_int_eq(dc_deque_compare(dq, &v[2], 1, &c), 0);
	ck_assert_int_eq(c, -1);
	v[2] = dc_pickle("\x80\x05\x88.", 4);
	v[3] = v[0];
	ck_assert_int_eq(dc_deque_compare(dq, &v[3], 1, &c), 0);
	ck_assert_int_eq(c, 1); /* equal prefix, longer deque */
	v[3] = v[2];
	struct dc_value pv[2] = { v[0], v[2] };
	ck_assert_int_eq(dc_deque_compare(dq, pv, 2, &c), DC_TYPE);
}
END_TEST

/* Items whose key is still listed but whose value is gone (Python's
 * KeyError mid-iteration) are skipped by indexing, count, remove and
 * compare.  Expired rows are exactly that: len() and the key walk count
 * them, a read misses them.  Layout: Y(gone) a b c X(gone). */
/* iter(deque) and reversed(deque): the values in order both ways; an
 * item removed ahead of the walk (it was already read in the walk's page)
 * is skipped, as Python skips a KeyError. */
static const char *walk(unsigned flags, int remove_at)
{
	static char out[64];
	struct dc_buf buf = DC_BUF_INIT, gbuf = DC_BUF_INIT;
	struct dc_item it, gone;
	dc_iter *iter;
	size_t n = 0;
	int rc;

	ck_assert_int_eq(dc_deque_iter_open(dq, flags, &iter), 0);
	for (;;) {
		tu_item_init(&it);
		rc = dc_iter_next(iter, &buf, &it);
		if (rc)
			break;
		ck_assert_int_eq(it.value.type, DC_TYPE_TEXT);
		ck_assert_int_eq(it.key.type, DC_TYPE_INT);
		ck_assert_uint_lt(n, sizeof(out) - 1);
		out[n++] = ((const char *)it.value.data)[0];
		if ((int)n != remove_at)
			continue;
		/* Take the far end, which the walk has not reached. */
		tu_item_init(&gone);
		ck_assert_int_eq((flags & DC_REVERSE)
				     ? dc_deque_popleft(dq, &gbuf, &gone)
				     : dc_deque_pop(dq, &gbuf, &gone),
				 0);
	}
	ck_assert_int_eq(rc, DC_NOTFOUND);
	out[n] = '\0';
	dc_iter_close(iter);
	dc_buf_release(&buf);
	dc_buf_release(&gbuf);
	return out;
}

START_TEST(test_iteration_both_ways)
{
	dc_iter *iter = (dc_iter *)1;

	ck_assert_str_eq(walk(0, 0), "");
	ck_assert_str_eq(walk(DC_REVERSE, 0), "");
	append_str("cba", 1);
	append_str("de", 0);
	ck_assert_str_eq(walk(0, 0), "abcde");
	ck_assert_str_eq(walk(DC_REVERSE, 0), "edcba");
	ck_assert_str_eq(walk(0, 1), "abcd");
	ck_assert_str_eq(contents(), "abcd");
	ck_assert_str_eq(walk(DC_REVERSE, 1), "dcb");
	ck_assert_str_eq(contents(), "bcd");
	ck_assert_int_eq(dc_deque_iter_open(dq, DC_SORTED, &iter), DC_INVAL);
	ck_assert_ptr_null(iter);
	ck_assert_int_eq(dc_deque_iter_open(NULL, 0, &iter), DC_INVAL);
}
END_TEST

START_TEST(test_vanished_keys_skipped)
{
	dc_cache *c = dc_deque_cache(dq);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value x = dc_text("X"), y = dc_text("a");
	struct dc_value a = dc_text("a"), key;
	uint64_t n;
	int cmp;

	append_str("abc", 0);
	/* Pushed alive, then expired: a push culls expired rows. */
	ck_assert_int_eq(
	    dc_cache_push(c, &x, NULL, DC_NO_EXPIRE, NULL, DC_BACK, NULL, NULL),
	    0);
	ck_assert_int_eq(dc_cache_push(c, &y, NULL, DC_NO_EXPIRE, NULL,
				       DC_FRONT, NULL, NULL),
			 0);
	key = dc_int(500000000000003LL);
	ck_assert_int_eq(
	    dc_cache_set_meta(c, &key, DC_META_EXPIRE_TIME, NULL, 1.0, 0), 0);
	key = dc_int(499999999999999LL);
	ck_assert_int_eq(
	    dc_cache_set_meta(c, &key, DC_META_EXPIRE_TIME, NULL, 1.0, 0), 0);
	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	ck_assert_uint_eq(n, 5);
	const struct {
		int64_t index;
		int want;
	} cases[] = {
		{ 0, 'a' },  { 1, 'a' }, { 2, 'b' },  { 3, 'c' },
		{ 4, 0 },    { 5, 0 },   { -1, 'c' }, { -2, 'c' },
		{ -4, 'a' }, { -5, 0 },  { -6, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_item_init(&it);
		int rc = dc_deque_get(dq, cases[i].index, &buf, &it);
		if (!cases[i].want) {
			ck_assert_msg(rc == DC_NOTFOUND, "d[%d]: %d",
				      (int)cases[i].index, rc);
			continue;
		}
		ck_assert_msg(rc == 0, "d[%d]: %d", (int)cases[i].index, rc);
		ck_assert_int_eq(((const char *)it.value.data)[0],
				 cases[i].want);
	}
	/* The expired "a" at the front is neither counted nor removed. */
	ck_assert_int_eq(dc_deque_count(dq, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_deque_count(dq, &x, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_deque_remove(dq, &x), DC_NOTFOUND);
	/* Compare walks a b c but the length (5) still counts the two. */
	ck_assert_int_eq(cmp_str(dq, "abc"), 1);
	ck_assert_int_eq(cmp_str(dq, "abcde"), 0);
	ck_assert_int_eq(cmp_str(dq, "abd"), -1);
	ck_assert_int_eq(dc_deque_remove(dq, &a), 0);
	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	ck_assert_uint_eq(n, 4);
	/* pop/popleft drop the expired ends and return the live ones. */
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "c");
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), 0);
	ck_assert_str_eq((const char *)it.value.data, "b");
	ck_assert_int_eq(dc_deque_len(dq, &n), 0);
	ck_assert_uint_eq(n, 0);
	cmp = 9;
	ck_assert_int_eq(dc_deque_compare(dq, NULL, 0, &cmp), 0);
	ck_assert_int_eq(cmp, 0);
	dc_buf_release(&buf);
}
END_TEST

/* The doctests of Deque, count and rotate, and transact's example. */
START_TEST(test_doctests)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value v[10];
	uint64_t n;

	/* deque += range(5); appendleft(-value) for value in range(5) */
	for (int i = 0; i < 5; i++)
		v[i] = dc_int(i);
	ck_assert_int_eq(dc_deque_extend(dq, v, 5), 0);
	for (int i = 0; i < 5; i++) {
		struct dc_value m = dc_int(-i);

		ck_assert_int_eq(dc_deque_appendleft(dq, &m), 0);
	}
	ck_assert_str_eq(int_contents(), "-4,-3,-2,-1,0,0,1,2,3,4");
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, 4);
	ck_assert_int_eq(dc_deque_popleft(dq, &buf, &it), 0);
	ck_assert_int_eq(it.value.i, -4);
	ck_assert_int_eq(dc_deque_reverse(dq), 0);
	ck_assert_str_eq(int_contents(), "3,2,1,0,0,-1,-2,-3");
	/* count: [1, 2, 2, 3, 3, 3, 4, 4, 4, 4] */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	for (int i = 1; i < 5; i++)
		for (int j = 0; j < i; j++)
			ck_assert_int_eq(dc_deque_append(dq, &v[i]), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(dc_deque_count(dq, &v[i], &n), 0);
		ck_assert_uint_eq(n, (uint64_t)i);
	}
	/* rotate(2) -> [3, 4, 0, 1, 2]; rotate(-1) -> [4, 0, 1, 2, 3] */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	ck_assert_int_eq(dc_deque_extend(dq, v, 5), 0);
	ck_assert_int_eq(dc_deque_rotate(dq, 2), 0);
	ck_assert_str_eq(int_contents(), "3,4,0,1,2");
	ck_assert_int_eq(dc_deque_rotate(dq, -1), 0);
	ck_assert_str_eq(int_contents(), "4,0,1,2,3");
	/* with deque.transact(): value = deque.pop(); appendleft(value) */
	ck_assert_int_eq(dc_deque_clear(dq), 0);
	ck_assert_int_eq(dc_deque_extend(dq, v, 5), 0);
	ck_assert_int_eq(dc_cache_begin(dc_deque_cache(dq), DC_RETRY), 0);
	ck_assert_int_eq(dc_deque_pop(dq, &buf, &it), 0);
	ck_assert_int_eq(dc_deque_appendleft(dq, &it.value), 0);
	ck_assert_int_eq(dc_cache_commit(dc_deque_cache(dq)), 0);
	ck_assert_str_eq(int_contents(), "4,0,1,2,3");
	dc_buf_release(&buf);
}
END_TEST

/* With a serializer the stored type and size are not the caller's:
 * count, remove and compare judge the values read back through it. */
START_TEST(test_serializer_values_compared_as_read)
{
	struct dc_options o = { 0 };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	dc_deque *z = NULL, *raw = NULL;
	char big[1000], other[1000];
	struct dc_value v[2];
	uint64_t n;
	int c = 9;

	o.serializer = dc_serializer_zlib(-1);
	ck_assert_ptr_nonnull(o.serializer);
	memset(big, 'z', sizeof(big));
	memset(other, 'z', sizeof(other));
	other[999] = 'y';
	v[0] = dc_bytes(big, sizeof(big));
	v[1] = dc_text("t");
	dc_deque_close(dq);
	ck_assert_int_eq(dc_deque_open(root, &o, &z), 0);
	dq = z;
	ck_assert_int_eq(dc_deque_extend(z, v, 2), 0);
	/* Stored compressed: a handle without the serializer sees fewer
	 * bytes. */
	ck_assert_int_eq(dc_deque_open(root, NULL, &raw), 0);
	tu_item_init(&it);
	ck_assert_int_eq(dc_deque_get(raw, 0, &buf, &it), 0);
	ck_assert_int_eq(it.value.type, DC_TYPE_BYTES);
	ck_assert_uint_lt(it.value.len, sizeof(big));
	dc_deque_close(raw);
	dc_buf_release(&buf);
	ck_assert_int_eq(dc_deque_count(z, &v[0], &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(dc_deque_compare(z, v, 2, &c), 0);
	ck_assert_int_eq(c, 0);
	v[1] = dc_bytes(other, sizeof(other));
	ck_assert_int_eq(dc_deque_compare(z, &v[1], 1, &c), 0);
	ck_assert_int_eq(c, 1); /* 'z' > 'y' at the last byte */
	ck_assert_int_eq(dc_deque_remove(z, &v[1]), DC_NOTFOUND);
	ck_assert_int_eq(dc_deque_remove(z, &v[0]), 0);
	ck_assert_int_eq(dc_deque_len(z, &n), 0);
	ck_assert_uint_eq(n, 1);
}
END_TEST

/* Thread stress: each thread appends its own ids at alternating ends
 * and pops from alternating ends; afterwards the rest is drained.  Every
 * id must come out exactly once.  Some values are file-backed. */
#define ST_THREADS 4
#define ST_ITEMS   120
#define ST_BIG     40000

struct stress {
	dc_deque *q; /* the thread's handle */
	int id;
	int *seen; /* shared, indexed by id; written under seen_lock */
	pthread_mutex_t *seen_lock;
	char err[160];
};

/* The id an item carries: an INT, or BYTES starting with 8 digits. */
static int item_id(const struct dc_value *v)
{
	char digits[9];

	if (v->type == DC_TYPE_INT)
		return (int)v->i;
	if (v->type != DC_TYPE_BYTES || v->len != ST_BIG)
		return -1;
	memcpy(digits, v->data, 8);
	digits[8] = '\0';
	return atoi(digits);
}

static void note_popped(struct stress *s, const struct dc_value *v)
{
	int id = item_id(v);

	pthread_mutex_lock(s->seen_lock);
	if (id < 0 || id >= ST_THREADS * ST_ITEMS)
		snprintf(s->err, sizeof(s->err), "popped a foreign value");
	else
		s->seen[id]++;
	pthread_mutex_unlock(s->seen_lock);
}

static void *stress_worker(void *arg)
{
	struct stress *s = arg;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char *big = malloc(ST_BIG);
	int rc = 0;

	if (!big) {
		snprintf(s->err, sizeof(s->err), "malloc");
		return NULL;
	}
	memset(big, 'b', ST_BIG);
	for (int i = 0; i < ST_ITEMS && !s->err[0]; i++) {
		int id = s->id * ST_ITEMS + i;
		struct dc_value v = dc_int(id);

		if (i % 16 == 5) {
			char digits[16];

			snprintf(digits, sizeof(digits), "%08d",
				 id % 100000000);
			memcpy(big, digits, 8);
			v = dc_bytes(big, ST_BIG);
		}
		rc = i % 2 ? dc_deque_appendleft(s->q, &v)
			   : dc_deque_append(s->q, &v);
		if (rc) {
			snprintf(s->err, sizeof(s->err), "append %d: %s", id,
				 dc_strerror(rc));
			break;
		}
		if (i % 3 == 2)
			continue;
		tu_item_init(&it);
		/* From the other end, so items pass between threads. */
		rc = i % 2 ? dc_deque_pop(s->q, &buf, &it)
			   : dc_deque_popleft(s->q, &buf, &it);
		if (rc == DC_NOTFOUND)
			continue;
		if (rc) {
			snprintf(s->err, sizeof(s->err), "pop: %s",
				 dc_strerror(rc));
			break;
		}
		note_popped(s, &it.value);
	}
	dc_buf_release(&buf);
	free(big);
	return NULL;
}

/* @mode 0: one handle for all threads; 1: each thread its own handle,
 * opened (even threads) or a dc_deque_copy (odd threads). */
static void run_stress(int mode)
{
	struct stress s[ST_THREADS];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int *seen = calloc(ST_THREADS * ST_ITEMS, sizeof(int));
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int rc, popped = 0;

	ck_assert_ptr_nonnull(seen);
	memset(s, 0, sizeof(s));
	for (int t = 0; t < ST_THREADS; t++) {
		s[t].id = t;
		s[t].seen = seen;
		s[t].seen_lock = &lock;
		s[t].q = dq;
		if (mode && t % 2 == 0)
			ck_assert_int_eq(dc_deque_open(root, NULL, &s[t].q), 0);
		else if (mode)
			ck_assert_int_eq(dc_deque_copy(dq, &s[t].q), 0);
	}
	tu_run_threads(ST_THREADS, stress_worker, s, sizeof(s[0]));
	for (int t = 0; t < ST_THREADS; t++) {
		ck_assert_msg(!s[t].err[0], "thread %d: %s", t, s[t].err);
		if (mode)
			dc_deque_close(s[t].q);
	}
	for (;;) {
		tu_item_init(&it);
		rc = dc_deque_popleft(dq, &buf, &it);
		if (rc)
			break;
		note_popped(&s[0], &it.value);
		ck_assert_msg(!s[0].err[0], "drain: %s", s[0].err);
	}
	ck_assert_int_eq(rc, DC_NOTFOUND);
	for (int id = 0; id < ST_THREADS * ST_ITEMS; id++) {
		ck_assert_msg(seen[id] == 1, "id %d popped %d times", id,
			      seen[id]);
		popped += seen[id];
	}
	ck_assert_int_eq(popped, ST_THREADS * ST_ITEMS);
	TU_ASSERT_CHECK_CLEAN(dc_deque_cache(dq));
	ck_assert_int_eq(tu_count_files(root), 0);
	dc_buf_release(&buf);
	free(seen);
}

START_TEST(test_threads_one_handle)
{
	run_stress(0);
}
END_TEST

START_TEST(test_threads_own_handles)
{
	run_stress(1);
}
END_TEST

Suite *deque_suite(void)
{
	Suite *s = suite_create("deque");
	TCase *tc = tu_tcase(s, "deque", setup, teardown, 60);

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
	tcase_add_test(tc, test_second_handle_compares_equal);
	tcase_add_test(tc, test_copy);
	tcase_add_test(tc, test_extend_extendleft);
	tcase_add_test(tc, test_compare);
	tcase_add_test(tc, test_vanished_keys_skipped);
	tcase_add_test(tc, test_iteration_both_ways);
	tcase_add_test(tc, test_doctests);
	tcase_add_test(tc, test_serializer_values_compared_as_read);

	tc = tu_tcase(s, "threads", setup, teardown, 120);
	tcase_add_test(tc, test_threads_one_handle);
	tcase_add_test(tc, test_threads_own_handles);
	return s;
}
