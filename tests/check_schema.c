/* check_schema.c - unit tests of schema, settings and per-connection setup
 * SPDX-License-Identifier: MIT
 *
 * A cache created by libdcache must be indistinguishable from one
 * created by Python DiskCache 5.4.0: the same `.schema` text byte for
 * byte, the same Settings rows with the same storage classes, and the
 * same pragmas on every connection (spec section 2, 3 and Appendix A).
 * The pooled connections are inspected through the private headers.
 */
#include "../core/src/fanout.h"
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *schema_suite(void);

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

/* The output of a shell command, at most @size - 1 bytes. */
static void capture(char *out, size_t size, const char *fmt, const char *a)
{
	char cmd[8192];
	size_t n = 0, r;
	FILE *p;

	snprintf(cmd, sizeof(cmd), fmt, a, a);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (n < size - 1 && (r = fread(out + n, 1, size - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
}

static dc_cache *open_with(const char *dir, const struct dc_setting *s,
			   size_t n, int shards)
{
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	o.settings = s;
	o.nsettings = n;
	o.shards = shards;
	ck_assert_int_eq(dc_cache_open(dir, &o, &c), 0);
	return c;
}

static const char appendix_a_schema[] =
    "CREATE TABLE Settings ( key TEXT NOT NULL UNIQUE, value);\n"
    "CREATE TABLE Cache ( rowid INTEGER PRIMARY KEY, key BLOB, raw "
    "INTEGER, store_time REAL, expire_time REAL, access_time REAL, "
    "access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT 0, "
    "mode INTEGER DEFAULT 0, filename TEXT, value BLOB);\n"
    "CREATE UNIQUE INDEX Cache_key_raw ON Cache(key, raw);\n"
    "CREATE INDEX Cache_expire_time ON Cache (expire_time);\n"
    "CREATE INDEX Cache_store_time ON Cache (store_time);\n"
    "CREATE TRIGGER Settings_count_insert AFTER INSERT ON Cache FOR EACH "
    "ROW BEGIN UPDATE Settings SET value = value + 1 WHERE key = "
    "\"count\"; END;\n"
    "CREATE TRIGGER Settings_count_delete AFTER DELETE ON Cache FOR EACH "
    "ROW BEGIN UPDATE Settings SET value = value - 1 WHERE key = "
    "\"count\"; END;\n"
    "CREATE TRIGGER Settings_size_insert AFTER INSERT ON Cache FOR EACH "
    "ROW BEGIN UPDATE Settings SET value = value + NEW.size WHERE key = "
    "\"size\"; END;\n"
    "CREATE TRIGGER Settings_size_update AFTER UPDATE ON Cache FOR EACH "
    "ROW BEGIN UPDATE Settings SET value = value + NEW.size - OLD.size "
    "WHERE key = \"size\"; END;\n"
    "CREATE TRIGGER Settings_size_delete AFTER DELETE ON Cache FOR EACH "
    "ROW BEGIN UPDATE Settings SET value = value - OLD.size WHERE key = "
    "\"size\"; END;\n";

static const char appendix_a_settings[] =
    "statistics|integer|0\n"
    "tag_index|integer|0\n"
    "eviction_policy|text|least-recently-stored\n"
    "size_limit|integer|1073741824\n"
    "cull_limit|integer|10\n"
    "sqlite_auto_vacuum|integer|1\n"
    "sqlite_cache_size|integer|8192\n"
    "sqlite_journal_mode|text|wal\n"
    "sqlite_mmap_size|integer|67108864\n"
    "sqlite_synchronous|integer|1\n"
    "disk_min_file_size|integer|32768\n"
    "disk_pickle_protocol|integer|5\n"
    "count|integer|0\n"
    "size|integer|0\n"
    "hits|integer|0\n"
    "misses|integer|0\n";

#define SETTINGS_SQL                                                           \
	"sqlite3 '%s/cache.db' 'SELECT key, typeof(value), value FROM "        \
	"Settings ORDER BY rowid'"

START_TEST(test_new_cache_schema_is_byte_identical_to_python_5_4_0)
{
	char out[8192];
	dc_cache *c = open_with(g_dir, NULL, 0, 0);

	capture(out, sizeof(out), "sqlite3 '%s/cache.db' .schema", g_dir);
	ck_assert_str_eq(out, appendix_a_schema);
	capture(out, sizeof(out), SETTINGS_SQL, g_dir);
	ck_assert_str_eq(out, appendix_a_settings);
	capture(out, sizeof(out),
		"sqlite3 '%s/cache.db' 'PRAGMA journal_mode; PRAGMA "
		"auto_vacuum; PRAGMA page_size'",
		g_dir);
	ck_assert_str_eq(out, "wal\n1\n4096\n");
	dc_cache_close(c);
}
END_TEST

START_TEST(test_schema_and_settings_equal_what_python_creates)
{
	char ours[8192], theirs[8192], py[4200];
	dc_cache *c;

	if (access("/usr/bin/python3", X_OK) != 0 ||
	    tu_run("/usr/bin/python3 -c 'import diskcache' 2>/dev/null")) {
		fprintf(stderr, "SKIP: python3-diskcache is not installed\n");
		return;
	}
	snprintf(py, sizeof(py), "%s/py", g_dir);
	ck_assert_int_eq(tu_run("/usr/bin/python3 -c 'import diskcache; "
				"diskcache.Cache(\"%s\").close()'",
				py),
			 0);
	c = open_with(tu_path(g_dir, "c"), NULL, 0, 0);
	capture(ours, sizeof(ours), "sqlite3 '%s/c/cache.db' .schema", g_dir);
	capture(theirs, sizeof(theirs), "sqlite3 '%s/py/cache.db' .schema",
		g_dir);
	ck_assert_str_eq(ours, theirs);
	capture(ours, sizeof(ours),
		"sqlite3 '%s/c/cache.db' 'SELECT key, typeof(value), value "
		"FROM Settings ORDER BY rowid'",
		g_dir);
	capture(theirs, sizeof(theirs),
		"sqlite3 '%s/py/cache.db' 'SELECT key, typeof(value), value "
		"FROM Settings ORDER BY rowid'",
		g_dir);
	ck_assert_str_eq(ours, theirs);
	dc_cache_close(c);
}
END_TEST

/* Ask every one of @n connections of shard 0 for @pragma. */
static void pragma_on_conns(dc_cache *c, int n, const char *pragma,
			    const char *want)
{
	struct dc_conn *conns[8];
	char sql[64];

	ck_assert_int_le(n, 8);
	snprintf(sql, sizeof(sql), "PRAGMA %s", pragma);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(dc_conn_get(c->shards[0], &conns[i]), 0);
	for (int i = 0; i < n; i++) {
		sqlite3_stmt *st = NULL;

		ck_assert_int_eq(
		    sqlite3_prepare_v2(conns[i]->db, sql, -1, &st, NULL),
		    SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		ck_assert_msg(
		    strcmp((const char *)sqlite3_column_text(st, 0), want) == 0,
		    "conn %d: %s = %s, want %s", i, pragma,
		    sqlite3_column_text(st, 0), want);
		sqlite3_finalize(st);
	}
	for (int i = 0; i < n; i++)
		dc_conn_put(conns[i]);
}

START_TEST(test_every_pooled_connection_has_the_default_pragmas)
{
	dc_cache *c = open_with(g_dir, NULL, 0, 0);

	pragma_on_conns(c, 4, "auto_vacuum", "1");
	pragma_on_conns(c, 4, "cache_size", "8192");
	pragma_on_conns(c, 4, "journal_mode", "wal");
	pragma_on_conns(c, 4, "mmap_size", "67108864");
	pragma_on_conns(c, 4, "synchronous", "1");
	pragma_on_conns(c, 4, "page_size", "4096");
	pragma_on_conns(c, 4, "busy_timeout", "60000");
	dc_cache_close(c);
}
END_TEST

START_TEST(test_pragma_setting_reaches_every_connection)
{
	struct dc_value v = dc_int(1000);
	dc_cache *c = open_with(g_dir, NULL, 0, 0);

	pragma_on_conns(c, 3, "cache_size", "8192");
	ck_assert_int_eq(dc_cache_setting_set(c, "sqlite_cache_size", &v), 0);
	pragma_on_conns(c, 3, "cache_size", "1000");
	dc_cache_close(c);
	/* A new handle applies the stored value to its connections. */
	c = open_with(g_dir, NULL, 0, 0);
	pragma_on_conns(c, 2, "cache_size", "1000");
	dc_cache_close(c);
}
END_TEST

START_TEST(test_fanout_shards_store_size_limit_as_real)
{
	struct dc_setting s[] = { { "size_limit", dc_int(1000) } };
	char out[256];
	dc_cache *c = open_with(g_dir, NULL, 0, 4);

	capture(out, sizeof(out),
		"sqlite3 '%s/002/cache.db' \"SELECT typeof(value), value FROM "
		"Settings WHERE key = 'size_limit'\"",
		g_dir);
	ck_assert_str_eq(out, "real|268435456.0\n");
	dc_cache_close(c);
	c = open_with(g_dir, s, 1, 0);
	ck_assert_int_eq(dc_cache_shards(c), 4);
	capture(out, sizeof(out),
		"sqlite3 '%s/003/cache.db' \"SELECT typeof(value), value FROM "
		"Settings WHERE key = 'size_limit'\"",
		g_dir);
	ck_assert_str_eq(out, "real|250.0\n");
	dc_cache_close(c);
}
END_TEST

static int has_index(const char *name)
{
	char out[256], sql[512];

	snprintf(sql, sizeof(sql),
		 "sqlite3 '%%s/cache.db' \"SELECT count(*) FROM sqlite_master "
		 "WHERE name = '%s'\"",
		 name);
	capture(out, sizeof(out), sql, g_dir);
	return atoi(out);
}

START_TEST(test_tag_index_follows_the_setting_at_every_open)
{
	struct dc_setting on[] = { { "tag_index", dc_int(1) } };
	struct dc_setting off[] = { { "tag_index", dc_int(0) } };
	struct dc_value v = dc_int(1);
	struct dc_buf b = DC_BUF_INIT;
	dc_cache *c;

	c = open_with(g_dir, on, 1, 0);
	ck_assert_int_eq(has_index("Cache_tag_rowid"), 1);
	ck_assert_int_eq(dc_cache_setting_get(c, "tag_index", &b, &v), 0);
	ck_assert_int_eq(v.type, DC_TYPE_INT);
	ck_assert_int_eq(v.i, 1);
	dc_cache_close(c);
	c = open_with(g_dir, NULL, 0, 0); /* inherits tag_index 1 */
	ck_assert_int_eq(has_index("Cache_tag_rowid"), 1);
	dc_cache_close(c);
	c = open_with(g_dir, off, 1, 0);
	ck_assert_int_eq(has_index("Cache_tag_rowid"), 0);
	v = dc_int(1);
	ck_assert_int_eq(dc_cache_setting_set(c, "tag_index", &v), 0);
	ck_assert_int_eq(has_index("Cache_tag_rowid"), 1);
	v = dc_int(0);
	ck_assert_int_eq(dc_cache_setting_set(c, "tag_index", &v), 0);
	ck_assert_int_eq(has_index("Cache_tag_rowid"), 0);
	dc_cache_close(c);
	dc_buf_release(&b);
}
END_TEST

START_TEST(test_policy_indexes_accumulate_and_appear_at_open)
{
	struct dc_setting lru[] = { { "eviction_policy",
				      dc_text("least-recently-used") } };
	struct dc_setting lfu[] = { { "eviction_policy",
				      dc_text("least-frequently-used") } };
	struct dc_value v = dc_text("none");
	dc_cache *c;

	c = open_with(g_dir, lru, 1, 0);
	ck_assert_int_eq(has_index("Cache_access_time"), 1);
	ck_assert_int_eq(has_index("Cache_store_time"), 0);
	/* reset() does not create the new policy's index (Python). */
	v = dc_text("least-frequently-used");
	ck_assert_int_eq(dc_cache_setting_set(c, "eviction_policy", &v), 0);
	ck_assert_int_eq(has_index("Cache_access_count"), 0);
	dc_cache_close(c);
	c = open_with(g_dir, lfu, 1, 0);
	ck_assert_int_eq(has_index("Cache_access_count"), 1);
	ck_assert_int_eq(has_index("Cache_access_time"), 1);
	dc_cache_close(c);
}
END_TEST

START_TEST(test_settings_merge_and_unknown_keys_survive)
{
	struct dc_setting first[] = { { "MAX_ENTRIES", dc_int(5) },
				      { "cull_limit", dc_int(3) } };
	struct dc_value v;
	struct dc_buf b = DC_BUF_INIT;
	char out[1024];
	dc_cache *c;

	c = open_with(g_dir, first, 2, 0);
	dc_cache_close(c);
	c = open_with(g_dir, NULL, 0, 0);
	ck_assert_int_eq(dc_cache_setting_get(c, "MAX_ENTRIES", &b, &v), 0);
	ck_assert_int_eq(v.type, DC_TYPE_INT);
	ck_assert_int_eq(v.i, 5);
	ck_assert_int_eq(dc_cache_setting_get(c, "cull_limit", &b, &v), 0);
	ck_assert_int_eq(v.i, 3);
	ck_assert_int_eq(dc_cache_setting_get(c, "eviction_policy", &b, &v), 0);
	ck_assert_int_eq(v.type, DC_TYPE_TEXT);
	ck_assert_str_eq(v.data, "least-recently-stored");
	ck_assert_int_eq(dc_cache_setting_get(c, "nope", &b, &v), DC_NOTFOUND);
	v = dc_int(1);
	ck_assert_int_eq(dc_cache_setting_set(c, "nope", &v), DC_NOTFOUND);
	v = dc_text("sideways");
	ck_assert_int_eq(dc_cache_setting_set(c, "eviction_policy", &v),
			 DC_INVAL);
	v = dc_text("wal; DROP TABLE Cache");
	ck_assert_int_eq(dc_cache_setting_set(c, "sqlite_journal_mode", &v),
			 DC_INVAL);
	dc_cache_close(c);
	capture(out, sizeof(out),
		"sqlite3 '%s/cache.db' \"SELECT key FROM Settings WHERE key = "
		"'MAX_ENTRIES'\"",
		g_dir);
	ck_assert_str_eq(out, "MAX_ENTRIES\n");
	dc_buf_release(&b);
}
END_TEST

START_TEST(test_size_limit_stored_as_real_is_read_as_a_number)
{
	struct dc_value v;
	struct dc_buf b = DC_BUF_INIT;
	dc_cache *c;

	c = open_with(g_dir, NULL, 0, 0);
	dc_cache_close(c);
	ck_assert_int_eq(tu_run("sqlite3 '%s/cache.db' \"UPDATE Settings SET "
				"value = 12345.5 WHERE key = 'size_limit'\"",
				g_dir),
			 0);
	c = open_with(g_dir, NULL, 0, 0);
	ck_assert_double_eq(atomic_load(&c->shards[0]->size_limit), 12345.5);
	ck_assert_int_eq(dc_cache_setting_get(c, "size_limit", &b, &v), 0);
	ck_assert_int_eq(v.type, DC_TYPE_FLOAT);
	ck_assert_double_eq(v.f, 12345.5);
	dc_cache_close(c);
	dc_buf_release(&b);
}
END_TEST

START_TEST(test_bad_open_settings_are_rejected)
{
	struct dc_setting bad[] = { { "cull_limit", dc_text("ten") } };
	struct dc_options o = { 0 };
	dc_cache *c = (dc_cache *)1;

	o.settings = bad;
	o.nsettings = 1;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &c), DC_INVAL);
	ck_assert_ptr_null(c);
	ck_assert_int_ne(access(tu_path(g_dir, "cache.db"), F_OK), 0);
}
END_TEST

Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("schema");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
		       test_new_cache_schema_is_byte_identical_to_python_5_4_0);
	tcase_add_test(tc, test_schema_and_settings_equal_what_python_creates);
	tcase_add_test(tc,
		       test_every_pooled_connection_has_the_default_pragmas);
	tcase_add_test(tc, test_pragma_setting_reaches_every_connection);
	tcase_add_test(tc, test_fanout_shards_store_size_limit_as_real);
	tcase_add_test(tc, test_tag_index_follows_the_setting_at_every_open);
	tcase_add_test(tc, test_policy_indexes_accumulate_and_appear_at_open);
	tcase_add_test(tc, test_settings_merge_and_unknown_keys_survive);
	tcase_add_test(tc, test_size_limit_stored_as_real_is_read_as_a_number);
	tcase_add_test(tc, test_bad_open_settings_are_rejected);
	suite_add_tcase(s, tc);
	return s;
}
