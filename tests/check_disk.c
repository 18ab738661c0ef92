/* check_disk.c - unit tests of the Disk layer: hashing, encoding, paths
 * SPDX-License-Identifier: MIT
 *
 * White-box tests of core/src/disk.c (key hashing as Python's
 * Disk.hash(), UTF-8 rules, the inline/file threshold, value-file naming)
 * and of the path-safety rules: a hostile filename column must never let
 * the library read, write or unlink outside the cache directory.
 */
#include "../core/src/disk.h"
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Suite *disk_suite(void);

static char *g_dir;

static void setup(void)
{
	g_dir = tu_mkdtemp();
}

static void teardown(void)
{
	tu_rmtree(g_dir);
	free(g_dir);
	g_dir = NULL;
}

static uint32_t hash_of(struct dc_value v)
{
	uint32_t h = 0xdeadbeef;

	ck_assert_int_eq(dc_key_hash(&v, &h), 0);
	return h;
}

/* ------------------------------------------------------------------ */
/* Disk.hash (spec Appendix B)                                        */
/* ------------------------------------------------------------------ */

START_TEST(test_hash_of_integers_is_floor_mod_0xffffffff)
{
	ck_assert_uint_eq(hash_of(dc_int(0)), 0);
	ck_assert_uint_eq(hash_of(dc_int(1)), 1);
	ck_assert_uint_eq(hash_of(dc_int(7)), 7);
	ck_assert_uint_eq(hash_of(dc_int(-1)), 4294967294u);
	ck_assert_uint_eq(hash_of(dc_int(4294967296LL)), 1);
	ck_assert_uint_eq(hash_of(dc_int(INT64_MAX)), 2147483647u);
	ck_assert_uint_eq(hash_of(dc_int(INT64_MIN)), 2147483647u);
}
END_TEST

START_TEST(test_hash_of_floats_is_adler32_of_big_endian_bytes)
{
	ck_assert_uint_eq(hash_of(dc_float(1.0)), 143655216u);
	ck_assert_uint_eq(hash_of(dc_float(1.5)), 147325240u);
	ck_assert_uint_eq(hash_of(dc_float(-0.0)), 67633281u);
}
END_TEST

START_TEST(test_hash_of_text_bytes_and_pickles_is_adler32)
{
	ck_assert_uint_eq(hash_of(dc_text("a")), 6422626u);
	ck_assert_uint_eq(hash_of(dc_bytes("a", 1)), 6422626u);
	ck_assert_uint_eq(hash_of(dc_text("abc")), 38600999u);
	ck_assert_uint_eq(hash_of(dc_bytes("abc", 3)), 38600999u);
	ck_assert_uint_eq(hash_of(dc_text("h\xc3\xa9llo")), 192152348u);
	ck_assert_uint_eq(hash_of(dc_text("")), 1);
	ck_assert_uint_eq(hash_of(dc_bytes("", 0)), 1);
	/* None, True, ('a', 1) and 2**64 pickled at protocol 5. */
	ck_assert_uint_eq(hash_of(dc_pickle("\x80\x05N.", 4)), 48038146u);
	ck_assert_uint_eq(hash_of(dc_pickle("\x80\x05\x88.", 4)), 55640380u);
	ck_assert_uint_eq(hash_of(dc_pickle("\x80\x05\x95\x07\0\0\0\0\0\0\0"
					    "\x8c\x01\x61K\x01\x86.",
					    18)),
			  457704208u);
	ck_assert_uint_eq(hash_of(dc_pickle("\x80\x05\x95\x0c\0\0\0\0\0\0\0"
					    "\x8a\x09\0\0\0\0\0\0\0\0\x01.",
					    23)),
			  540606953u);
}
END_TEST

START_TEST(test_hash_rejects_malformed_keys)
{
	struct dc_value none = { DC_TYPE_NONE, 0, 0, NULL, 0 };
	struct dc_value nan = dc_float(NAN);
	struct dc_value bad = dc_textn("\xff", 1);
	uint32_t h;

	ck_assert_int_eq(dc_key_hash(NULL, &h), DC_INVAL);
	ck_assert_int_eq(dc_key_hash(&none, &h), DC_INVAL);
	ck_assert_int_eq(dc_key_hash(&nan, &h), DC_INVAL);
	ck_assert_int_eq(dc_key_hash(&bad, &h), DC_INVAL);
	ck_assert_int_eq(dc_key_hash(&none, NULL), DC_INVAL);
}
END_TEST

START_TEST(test_adler32_matches_zlib)
{
	static char big[100000];

	ck_assert_uint_eq(dc_adler32("", 0), 1);
	ck_assert_uint_eq(dc_adler32("Wikipedia", 9), 0x11e60398u);
	/* Longer than the 5552-byte block, so the modulo runs. */
	memset(big, 0xff, sizeof(big));
	ck_assert_uint_eq(dc_adler32(big, sizeof(big)), 0x149a302cu);
}
END_TEST

/* ------------------------------------------------------------------ */
/* UTF-8 and keys                                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_utf8_check_counts_code_points_and_rejects_bad_input)
{
	size_t n = 0;

	ck_assert(dc_utf8_check("h\xc3\xa9llo", 6, &n));
	ck_assert_uint_eq(n, 5);
	ck_assert(dc_utf8_check("\xf0\x9f\x98\x80", 4, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert(dc_utf8_check("a\0b", 3, &n)); /* NUL is a code point */
	ck_assert_uint_eq(n, 3);
	ck_assert(!dc_utf8_check("\xc0\x80", 2, NULL));         /* overlong */
	ck_assert(!dc_utf8_check("\xed\xa0\x80", 3, NULL));     /* surrogate */
	ck_assert(!dc_utf8_check("\xf4\x90\x80\x80", 4, NULL)); /* >10FFFF */
	ck_assert(!dc_utf8_check("\xc3", 1, NULL));             /* truncated */
	ck_assert(!dc_utf8_check("\x80", 1, NULL)); /* continuation */
	ck_assert(!dc_utf8_check("\xfe", 1, NULL));
}
END_TEST

START_TEST(test_put_key_maps_types_to_columns_and_raw)
{
	struct dc_dbkey k;
	struct dc_value v;

	v = dc_int(5);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_int_eq(k.type, SQLITE_INTEGER);
	ck_assert_int_eq(k.raw, 1);
	v = dc_float(2.5);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_int_eq(k.type, SQLITE_FLOAT);
	v = dc_text("x");
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_int_eq(k.type, SQLITE_TEXT);
	ck_assert_int_eq(k.raw, 1);
	v = dc_bytes("x", 1);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_int_eq(k.type, SQLITE_BLOB);
	ck_assert_int_eq(k.raw, 1);
	v = dc_pickle("\x80\x05N.", 4);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_int_eq(k.type, SQLITE_BLOB);
	ck_assert_int_eq(k.raw, 0);
	/* Empty text and bytes are real (non-NULL) values. */
	v = dc_bytes(NULL, 0);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), 0);
	ck_assert_ptr_nonnull(k.p);
	v = dc_bytes(NULL, 3);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), DC_INVAL);
	v = dc_textn("\xc3", 1);
	ck_assert_int_eq(dc_disk_put_key(&v, &k), DC_INVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Values and value files                                             */
/* ------------------------------------------------------------------ */

static struct dc_disk disk_at(const char *dir, int *fd)
{
	struct dc_disk d;

	*fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(*fd, 0);
	d.dirfd = *fd;
	d.file_mode = 0600;
	d.dir_mode = 0700;
	d.log = NULL;
	return d;
}

START_TEST(test_text_threshold_counts_code_points_not_bytes)
{
	size_t n = 200; /* "é" is 2 bytes: 100 code points, 200 bytes */
	char *e = malloc(n);
	struct dc_store s;
	struct dc_value v;
	struct dc_disk d;
	int fd;

	for (size_t i = 0; i < n; i += 2) {
		e[i] = (char)0xc3;
		e[i + 1] = (char)0xa9;
	}
	d = disk_at(g_dir, &fd);
	v = dc_textn(e, n);
	ck_assert_int_eq(dc_disk_store(&d, &v, 101, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_RAW);
	ck_assert_int_eq(s.has_file, 0);
	ck_assert_int_eq(dc_disk_store(&d, &v, 100, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_TEXT);
	ck_assert_int_eq(s.has_file, 1);
	ck_assert_int_eq(s.size, 200); /* the file holds the UTF-8 bytes */
	v = dc_bytes(e, 100);
	ck_assert_int_eq(dc_disk_store(&d, &v, 101, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_RAW);
	ck_assert_int_eq(dc_disk_store(&d, &v, 100, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_BINARY);
	v = dc_pickle(e, 100);
	ck_assert_int_eq(dc_disk_store(&d, &v, 101, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_PICKLE);
	ck_assert_int_eq(s.has_file, 0);
	ck_assert_int_eq(dc_disk_store(&d, &v, 100, &s), 0);
	ck_assert_int_eq(s.mode, DC_MODE_PICKLE);
	ck_assert_int_eq(s.has_file, 1);
	v = dc_textn("\xc3(", 2);
	ck_assert_int_eq(dc_disk_store(&d, &v, 0, &s), DC_INVAL);
	close(fd);
	free(e);
}
END_TEST

START_TEST(test_value_files_are_named_like_python_and_private)
{
	struct dc_store s;
	struct dc_value v = dc_bytes("hello", 5);
	struct dc_disk d;
	struct stat st;
	int fd;

	d = disk_at(g_dir, &fd);
	ck_assert_int_eq(dc_disk_store(&d, &v, 0, &s), 0);
	ck_assert_uint_eq(strlen(s.name), DC_FNAME_LEN);
	for (int i = 0; i < DC_FNAME_LEN - 4; i++) {
		char c = s.name[i];

		if (i == 2 || i == 5)
			ck_assert_int_eq(c, '/');
		else
			ck_assert((c >= '0' && c <= '9') ||
				  (c >= 'a' && c <= 'f'));
	}
	ck_assert_str_eq(s.name + DC_FNAME_LEN - 4, ".val");
	ck_assert_int_eq(stat(tu_path(g_dir, s.name), &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	dc_disk_remove(&d, s.name, strlen(s.name));
	/* The file and both directories are gone, the cache dir stays. */
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	s.name[2] = '\0';
	ck_assert_int_ne(access(tu_path(g_dir, s.name), F_OK), 0);
	ck_assert_int_eq(access(g_dir, F_OK), 0);
	close(fd);
}
END_TEST

START_TEST(test_read_fd_returns_the_whole_file)
{
	struct dc_buf b = DC_BUF_INIT;
	struct dc_store s;
	char data[70000];
	struct dc_value v = dc_bytes(data, sizeof(data));
	struct dc_disk d;
	size_t len = 0;
	int fd, vfd;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	d = disk_at(g_dir, &fd);
	ck_assert_int_eq(dc_disk_store(&d, &v, 0, &s), 0);
	ck_assert_int_eq(dc_disk_open(&d, s.name, strlen(s.name), &vfd), 0);
	ck_assert_int_eq(dc_disk_read_fd(vfd, &b, 3, &len), 0);
	ck_assert_uint_eq(len, sizeof(data));
	ck_assert_mem_eq(b.data + 3, data, sizeof(data));
	ck_assert_int_eq(b.data[3 + len], '\0');
	close(vfd);
	close(fd);
	dc_buf_release(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Path safety                                                        */
/* ------------------------------------------------------------------ */

START_TEST(test_path_ok_accepts_relative_names_only)
{
	static const char *const good[] = {
		"ab/cd/0123456789abcdef0123456789ab.val",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc",
		"x",
		"a/b/c/d.val",
		"..x",
		"x..",
		"a/.b",
	};
	static const char *const bad[] = {
		"",
		"/etc/passwd",
		"..",
		"../x",
		"ab/../x",
		"ab/..",
		".",
		"./x",
		"ab/./x",
		"ab//x",
		"x/",
		"cache.db",
		"cache.db-wal",
		"cache.db-tmp/tmp-1",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(dc_disk_path_ok(good[i], strlen(good[i])), "%s",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!dc_disk_path_ok(bad[i], strlen(bad[i])), "%s",
			      bad[i]);
	ck_assert(!dc_disk_path_ok("ab\0cd", 5));
	ck_assert(!dc_disk_path_ok(NULL, 0));
}
END_TEST

START_TEST(test_open_refuses_symlinks_and_escapes)
{
	char outside[4200], evil[4200], target[4300];
	struct dc_disk d;
	int fd, vfd = -1;

	/* outside/secret, and in the cache ab -> outside, x.val -> secret */
	snprintf(outside, sizeof(outside), "%s/outside", g_dir);
	ck_assert_int_eq(mkdir(outside, 0700), 0);
	ck_assert_int_eq(tu_run("echo secret > '%s/secret'", outside), 0);
	snprintf(evil, sizeof(evil), "%s/cache", g_dir);
	ck_assert_int_eq(mkdir(evil, 0700), 0);
	ck_assert_int_eq(symlink(outside, tu_path(evil, "ab")), 0);
	ck_assert_int_eq(mkdir(tu_path(evil, "cd"), 0700), 0);
	snprintf(target, sizeof(target), "%s/secret", outside);
	ck_assert_int_eq(symlink(target, tu_path(evil, "cd/x.val")), 0);
	d = disk_at(evil, &fd);
	ck_assert_int_eq(dc_disk_open(&d, "ab/secret", 9, &vfd), DC_UNSAFE);
	ck_assert_int_eq(dc_disk_open(&d, "cd/x.val", 8, &vfd), DC_UNSAFE);
	ck_assert_int_eq(dc_disk_open(&d, "../outside/secret", 17, &vfd),
			 DC_UNSAFE);
	ck_assert_int_eq(dc_disk_open(&d, "/etc/passwd", 11, &vfd), DC_UNSAFE);
	ck_assert_int_eq(vfd, -1);
	/* Removal through a symlinked directory or of a symlink never
	 * touches the target. */
	dc_disk_remove(&d, "ab/secret", 9);
	ck_assert_int_eq(access(tu_path(outside, "secret"), F_OK), 0);
	dc_disk_remove(&d, "../outside/secret", 17);
	ck_assert_int_eq(access(tu_path(outside, "secret"), F_OK), 0);
	dc_disk_remove(&d, "cd/x.val", 8);
	ck_assert_int_eq(access(tu_path(outside, "secret"), F_OK), 0);
	/* the symlink itself is removed (it is inside the cache) */
	ck_assert_int_ne(access(tu_path(evil, "cd/x.val"), F_OK), 0);
	close(fd);
}
END_TEST

START_TEST(test_hostile_row_is_unsafe_and_fix_spares_the_outside_file)
{
	struct dc_value k = dc_text("k"), v = dc_text("inline");
	struct dc_buf b = DC_BUF_INIT;
	struct dc_item item;
	char outside[4200];
	uint64_t n = 0;
	dc_cache *c;

	snprintf(outside, sizeof(outside), "%s/secret", g_dir);
	ck_assert_int_eq(tu_run("echo secret > '%s'", outside), 0);
	ck_assert_int_eq(dc_cache_open(tu_path(g_dir, "c"), NULL, &c), 0);
	ck_assert_int_eq(dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0), 0);
	ck_assert_int_eq(tu_run("sqlite3 '%s/c/cache.db' \"UPDATE Cache SET "
				"mode = 2, value = NULL, filename = "
				"'../secret'\"",
				g_dir),
			 0);
	ck_assert_int_eq(dc_cache_get(c, &k, &b, &item, 0), DC_UNSAFE);
	ck_assert_int_eq(dc_cache_get(c, &k, &b, &item, DC_FD), DC_UNSAFE);
	ck_assert_int_eq(access(outside, F_OK), 0);
	ck_assert_int_eq(dc_cache_check(c, 0, 0, NULL, NULL, &n), 0);
	ck_assert_uint_ge(n, 1);
	ck_assert_int_eq(dc_cache_check(c, 1, 0, NULL, NULL, &n), 0);
	ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	ck_assert_int_eq(access(outside, F_OK), 0);
	ck_assert_int_eq(dc_cache_check(c, 0, 0, NULL, NULL, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* pop deletes the row before reading (as Python) and reports it;
	 * the outside file is neither read nor unlinked. */
	ck_assert_int_eq(dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0), 0);
	ck_assert_int_eq(tu_run("sqlite3 '%s/c/cache.db' \"UPDATE Cache SET "
				"mode = 2, value = NULL, filename = "
				"'../secret'\"",
				g_dir),
			 0);
	ck_assert_int_eq(dc_cache_pop(c, &k, &b, &item, 0), DC_UNSAFE);
	ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	ck_assert_int_eq(access(outside, F_OK), 0);
	dc_cache_close(c);
	dc_buf_release(&b);
}
END_TEST

Suite *disk_suite(void)
{
	Suite *s = suite_create("disk");
	TCase *tc;

	tc = tcase_create("hash");
	tcase_add_test(tc, test_hash_of_integers_is_floor_mod_0xffffffff);
	tcase_add_test(tc, test_hash_of_floats_is_adler32_of_big_endian_bytes);
	tcase_add_test(tc, test_hash_of_text_bytes_and_pickles_is_adler32);
	tcase_add_test(tc, test_hash_rejects_malformed_keys);
	tcase_add_test(tc, test_adler32_matches_zlib);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_test(
	    tc, test_utf8_check_counts_code_points_and_rejects_bad_input);
	tcase_add_test(tc, test_put_key_maps_types_to_columns_and_raw);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_text_threshold_counts_code_points_not_bytes);
	tcase_add_test(tc, test_value_files_are_named_like_python_and_private);
	tcase_add_test(tc, test_read_fd_returns_the_whole_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_path_ok_accepts_relative_names_only);
	tcase_add_test(tc, test_open_refuses_symlinks_and_escapes);
	tcase_add_test(
	    tc, test_hostile_row_is_unsafe_and_fix_spares_the_outside_file);
	suite_add_tcase(s, tc);
	return s;
}
