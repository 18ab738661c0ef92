/* check_fanout.c - black-box tests of a FanoutCache and its layout
 * SPDX-License-Identifier: MIT
 *
 * The behaviour under test is Python DiskCache 5.x's FanoutCache (spec §7
 * and the upstream checklist §13.2): shard directories 000/ ..., keys
 * routed by Disk.hash() % shards, per-shard size limits, aggregated
 * statistics, and the sub-collections cache/NAME, deque/NAME, index/NAME.
 * Layout detection and DC_LAYOUT are tested here too.  The library is
 * driven through dcache.h only; the sqlite3 CLI inspects the shards.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Suite *fanout_suite(void);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* VP - a pointer to a value built in place. */
#define VP(x) ((const struct dc_value[]){ x })

/* ------------------------------------------------------------------ */
/* Fixture: a fresh directory and an 8-shard FanoutCache on it        */
/* ------------------------------------------------------------------ */

static char *g_dir;
static dc_cache *g_cache;
static struct dc_buf g_buf;
static struct dc_item g_item;

static void remove_test_dir(void)
{
	if (g_dir)
		tu_rmtree(g_dir);
	free(g_dir);
	g_dir = NULL;
}

static void open_fanout(int shards, double timeout,
			const struct dc_setting *settings, size_t n)
{
	struct dc_options o = { 0 };

	o.shards = shards;
	o.timeout = timeout;
	o.settings = settings;
	o.nsettings = n;
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &g_cache), 0);
	ck_assert_ptr_nonnull(g_cache);
}

static void setup(void)
{
	static int registered;

	if (!registered) {
		atexit(remove_test_dir);
		registered = 1;
	}
	g_dir = tu_mkdtemp();
	dc_buf_init(&g_buf);
	memset(&g_item, 0, sizeof(g_item));
	open_fanout(8, 0, NULL, 0);
}

static void teardown(void)
{
	dc_cache_close(g_cache);
	g_cache = NULL;
	dc_buf_release(&g_buf);
	remove_test_dir();
}

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int put(struct dc_value key, struct dc_value value)
{
	return dc_cache_set(g_cache, &key, &value, DC_NO_EXPIRE, NULL, 0);
}

static int put_x(struct dc_value key, struct dc_value value, double expire,
		 const struct dc_value *tag)
{
	return dc_cache_set(g_cache, &key, &value, expire, tag, 0);
}

static int get(struct dc_value key, unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	return dc_cache_get(g_cache, &key, &g_buf, &g_item, flags);
}

static int has(struct dc_value key)
{
	return dc_cache_contains(g_cache, &key);
}

static int del(struct dc_value key)
{
	return dc_cache_delete(g_cache, &key, 0);
}

static int shard_of(struct dc_value key)
{
	return dc_cache_shard_of(g_cache, &key);
}

static uint64_t len_of(dc_cache *c)
{
	uint64_t n = UINT64_MAX;

	ck_assert_int_eq(dc_cache_len(c, &n), 0);
	return n;
}

static uint64_t volume_of(dc_cache *c)
{
	uint64_t n = UINT64_MAX;

	ck_assert_int_eq(dc_cache_volume(c, &n), 0);
	return n;
}

#define ASSERT_VALUE_INT(v, n)                                                 \
	do {                                                                   \
		const struct dc_value *v_ = (v);                               \
		ck_assert_int_eq(v_->type, DC_TYPE_INT);                       \
		ck_assert_int_eq(v_->i, (n));                                  \
	} while (0)

#define ASSERT_VALUE_DATA(v, t, p, n)                                          \
	do {                                                                   \
		const struct dc_value *v_ = (v);                               \
		size_t n_ = (n);                                               \
		ck_assert_int_eq(v_->type, (t));                               \
		ck_assert_uint_eq(v_->len, n_);                                \
		ck_assert_ptr_nonnull(v_->data);                               \
		ck_assert_msg(memcmp(v_->data, (p), n_) == 0, "data differs"); \
	} while (0)

#define ASSERT_VALUE_TEXT(v, s) ASSERT_VALUE_DATA(v, DC_TYPE_TEXT, s, strlen(s))

/* shard_path - "g_dir/NNN[/rel]" (malloc'd). */
static char *shard_path(int shard, const char *rel)
{
	char *p;

	ck_assert_int_ge(asprintf(&p, "%s/%03d%s%s", g_dir, shard,
				  rel ? "/" : "", rel ? rel : ""),
			 0);
	return p;
}

/* sql - run a query with the sqlite3 CLI on @db and return its output,
 * trailing newlines removed (malloc'd).  No '"', '$', '`' or '\'. */
static char *sql(const char *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *sql(const char *db, const char *fmt, ...)
{
	char *query, *cmd, *out = NULL;
	size_t len = 0, cap = 0;
	va_list ap;
	FILE *p;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&query, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(rc, 0);
	ck_assert_int_ge(asprintf(&cmd,
				  "sqlite3 -batch -cmd '.timeout 10000' "
				  "'%s' \"%s\" 2>&1",
				  db, query),
			 0);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		n = fread(out + len, 1, cap - len - 1, p);
		if (n == 0)
			break;
		len += n;
	}
	pclose(p);
	while (len > 0 && out[len - 1] == '\n')
		len--;
	out[len] = '\0';
	free(query);
	free(cmd);
	return out;
}

/* ASSERT_SHARD_SQL - the query's output on shard @shard is @expect. */
#define ASSERT_SHARD_SQL(shard, expect, ...)                                   \
	do {                                                                   \
		char *db_ = shard_path((shard), "cache.db");                   \
		char *out_ = sql(db_, __VA_ARGS__);                            \
		ck_assert_msg(strcmp(out_, (expect)) == 0,                     \
			      "shard %03d: '%s' != '%s'", (shard), out_,       \
			      (expect));                                       \
		free(out_);                                                    \
		free(db_);                                                     \
	} while (0)

static const unsigned char PICKLE_NONE[] = { 0x80, 0x05, 0x4e, 0x2e };
static const unsigned char PICKLE_TRUE[] = { 0x80, 0x05, 0x88, 0x2e };
static const unsigned char PICKLE_TUPLE_A1[] = { 0x80, 0x05, 0x95, 0x07, 0x00,
						 0x00, 0x00, 0x00, 0x00, 0x00,
						 0x00, 0x8c, 0x01, 0x61, 0x4b,
						 0x01, 0x86, 0x2e };
static const unsigned char PICKLE_2_64[] = { 0x80, 0x05, 0x95, 0x0c, 0x00, 0x00,
					     0x00, 0x00, 0x00, 0x00, 0x00, 0x8a,
					     0x09, 0x00, 0x00, 0x00, 0x00, 0x00,
					     0x00, 0x00, 0x00, 0x01, 0x2e };

/* ------------------------------------------------------------------ */
/* Layout                                                             */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_creates_shard_directories_000_to_007)
{
	for (int i = 0; i < 8; i++) {
		char *db = shard_path(i, "cache.db");

		ck_assert_msg(exists(db), "%s missing", db);
		free(db);
	}
	ck_assert(!exists(tu_path(g_dir, "008")));
	/* Nothing in the root records the shard count (spec 1.2). */
	ck_assert(!exists(tu_path(g_dir, "cache.db")));
	ck_assert_int_eq(dc_cache_shards(g_cache), 8);
	ck_assert_str_eq(dc_cache_directory(g_cache), g_dir);
}
END_TEST

START_TEST(test_new_directory_without_shards_is_a_plain_cache)
{
	char *sub;
	dc_cache *c = NULL;

	ck_assert_int_ge(asprintf(&sub, "%s/plain", g_dir), 0);
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), 0);
	ck_assert_int_eq(dc_cache_shards(c), 0);
	ck_assert_int_eq(dc_cache_shard_of(c, VP(dc_text("a"))), 0);
	dc_cache_close(c);
	ck_assert(exists(tu_path(sub, "cache.db")));
	ck_assert(!exists(tu_path(sub, "000")));
	free(sub);
}
END_TEST

START_TEST(test_existing_fanout_is_detected_with_its_shard_count)
{
	char *sub;
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	ck_assert_int_ge(asprintf(&sub, "%s/four", g_dir), 0);
	o.shards = 4;
	ck_assert_int_eq(dc_cache_open(sub, &o, &c), 0);
	ck_assert_int_eq(dc_cache_set(c, VP(dc_text("k")), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	dc_cache_close(c);
	c = NULL;
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), 0);
	ck_assert_int_eq(dc_cache_shards(c), 4);
	ck_assert_int_eq(dc_cache_get(c, VP(dc_text("k")), &g_buf, &g_item, 0),
			 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	dc_cache_close(c);
	free(sub);
}
END_TEST

START_TEST(test_explicit_shard_count_mismatch_is_layout)
{
	struct dc_options o = { 0 };
	dc_cache *c = (dc_cache *)&o;

	dc_cache_close(g_cache);
	g_cache = NULL;
	o.shards = 4;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &c), DC_LAYOUT);
	ck_assert_ptr_null(c);
	o.shards = 16;
	c = (dc_cache *)&o;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &c), DC_LAYOUT);
	ck_assert_ptr_null(c);
	/* Nothing was created. */
	ck_assert(!exists(tu_path(g_dir, "008")));
	o.shards = DC_SHARDS_PLAIN;
	c = (dc_cache *)&o;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &c), DC_LAYOUT);
	ck_assert_ptr_null(c);
	ck_assert(!exists(tu_path(g_dir, "cache.db")));
	o.shards = 8;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &g_cache), 0);
	ck_assert_int_eq(dc_cache_shards(g_cache), 8);
}
END_TEST

START_TEST(test_plain_cache_opened_as_fanout_is_layout)
{
	char *sub;
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	ck_assert_int_ge(asprintf(&sub, "%s/plain", g_dir), 0);
	o.shards = DC_SHARDS_PLAIN;
	ck_assert_int_eq(dc_cache_open(sub, &o, &c), 0);
	dc_cache_close(c);
	c = NULL;
	o.shards = 8;
	ck_assert_int_eq(dc_cache_open(sub, &o, &c), DC_LAYOUT);
	ck_assert_ptr_null(c);
	ck_assert(!exists(tu_path(sub, "000")));
	o.shards = 0;
	ck_assert_int_eq(dc_cache_open(sub, &o, &c), 0);
	ck_assert_int_eq(dc_cache_shards(c), 0);
	dc_cache_close(c);
	free(sub);
}
END_TEST

START_TEST(test_sub_collections_do_not_confuse_layout_detection)
{
	dc_cache *sub = NULL;

	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_CACHE, "sessions", NULL, &sub),
	    0);
	dc_cache_close(sub);
	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_DEQUE, "jobs/high", NULL, &sub),
	    0);
	dc_cache_close(sub);
	open_fanout(0, 0, NULL, 0);
	ck_assert_int_eq(dc_cache_shards(g_cache), 8);
}
END_TEST

START_TEST(test_python_fanout_directory_is_detected)
{
	char *sub;
	dc_cache *c = NULL;
	int rc;

	/* A FanoutCache made by Python DiskCache, if it is installed. */
	ck_assert_int_ge(asprintf(&sub, "%s/py", g_dir), 0);
	rc = tu_run("/usr/bin/python3 -c 'import diskcache as d; "
		    "c = d.FanoutCache(\"%s\", shards=3); c[\"a\"] = 1; "
		    "c[7] = \"seven\"; c.close()' 2>/dev/null",
		    sub);
	if (rc != 0) {
		fprintf(stderr, "SKIP %s: no Python DiskCache\n", __func__);
		free(sub);
		return;
	}
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), 0);
	ck_assert_int_eq(dc_cache_shards(c), 3);
	ck_assert_uint_eq(len_of(c), 2);
	ck_assert_int_eq(dc_cache_get(c, VP(dc_text("a")), &g_buf, &g_item, 0),
			 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(dc_cache_get(c, VP(dc_int(7)), &g_buf, &g_item, 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "seven");
	dc_cache_close(c);
	free(sub);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Settings                                                           */
/* ------------------------------------------------------------------ */

static struct dc_value setting(dc_cache *c, const char *name)
{
	struct dc_value v;
	int rc;

	memset(&v, 0x5a, sizeof(v));
	rc = dc_cache_setting_get(c, name, &g_buf, &v);
	ck_assert_msg(rc == 0, "setting_get(%s) = %d", name, rc);
	return v;
}

/* The default size_limit, 2**30, divided among 8 shards by Python's true
 * division: 134217728.0, stored REAL in every shard. */
START_TEST(test_fanout_defaults_give_each_shard_a_real_size_limit)
{
	struct dc_value v = setting(g_cache, "size_limit");

	ck_assert_msg(v.type == DC_TYPE_FLOAT || v.type == DC_TYPE_INT,
		      "type %d", (int)v.type);
	if (v.type == DC_TYPE_FLOAT)
		ck_assert(v.f == 134217728.0);
	else
		ck_assert_int_eq(v.i, 134217728);
	for (int i = 0; i < 8; i++)
		ASSERT_SHARD_SQL(i, "real|134217728.0",
				 "SELECT typeof(value), value FROM Settings "
				 "WHERE key = 'size_limit'");
	v = setting(g_cache, "eviction_policy");
	ASSERT_VALUE_TEXT(&v, "least-recently-stored");
	v = setting(g_cache, "cull_limit");
	ASSERT_VALUE_INT(&v, 10);
	v = setting(g_cache, "disk_min_file_size");
	ASSERT_VALUE_INT(&v, 32768);
	v = setting(g_cache, "statistics");
	ASSERT_VALUE_INT(&v, 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_fanout_size_limit_at_open_is_divided_among_shards)
{
	struct dc_setting s[] = { { "size_limit", dc_int(4000000) } };
	char *sub;
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	ck_assert_int_ge(asprintf(&sub, "%s/f4", g_dir), 0);
	o.shards = 4;
	o.settings = s;
	o.nsettings = 1;
	ck_assert_int_eq(dc_cache_open(sub, &o, &c), 0);
	dc_cache_close(c);
	for (int i = 0; i < 4; i++) {
		char *db, *out;

		ck_assert_int_ge(asprintf(&db, "%s/%03d/cache.db", sub, i), 0);
		out = sql(db, "SELECT typeof(value), value FROM Settings "
			      "WHERE key = 'size_limit'");
		ck_assert_str_eq(out, "real|1000000.0");
		free(out);
		free(db);
	}
	free(sub);
}
END_TEST

START_TEST(test_fanout_setting_set_gives_every_shard_the_value)
{
	struct dc_value v;

	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "size_limit", VP(dc_int(5000))), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(3))), 0);
	for (int i = 0; i < 8; i++) {
		ASSERT_SHARD_SQL(i, "5000",
				 "SELECT value FROM Settings "
				 "WHERE key = 'size_limit'");
		ASSERT_SHARD_SQL(i, "3",
				 "SELECT value FROM Settings "
				 "WHERE key = 'cull_limit'");
	}
	v = setting(g_cache, "cull_limit");
	ASSERT_VALUE_INT(&v, 3);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "nope", VP(dc_int(3))),
			 DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "eviction_policy",
					      VP(dc_text("bogus"))),
			 DC_INVAL);
}
END_TEST

/* Python passes size_limit = total / shards on every open, overwriting
 * what reset() stored (spec 7.1). */
START_TEST(test_fanout_reopen_rewrites_the_per_shard_size_limit)
{
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "size_limit", VP(dc_int(5000))), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(4))), 0);
	open_fanout(8, 0, NULL, 0);
	for (int i = 0; i < 8; i++) {
		ASSERT_SHARD_SQL(i, "134217728.0",
				 "SELECT value FROM Settings "
				 "WHERE key = 'size_limit'");
		/* Other settings are inherited. */
		ASSERT_SHARD_SQL(i, "4",
				 "SELECT value FROM Settings "
				 "WHERE key = 'cull_limit'");
	}
}
END_TEST

START_TEST(test_fanout_tag_index_is_created_and_dropped_on_every_shard)
{
	struct dc_value v = setting(g_cache, "tag_index");

	ASSERT_VALUE_INT(&v, 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "tag_index", VP(dc_int(1))), 0);
	v = setting(g_cache, "tag_index");
	ASSERT_VALUE_INT(&v, 1);
	for (int i = 0; i < 8; i++)
		ASSERT_SHARD_SQL(i, "1",
				 "SELECT COUNT(*) FROM sqlite_master "
				 "WHERE name = 'Cache_tag_rowid'");
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "tag_index", VP(dc_int(0))), 0);
	v = setting(g_cache, "tag_index");
	ASSERT_VALUE_INT(&v, 0);
	for (int i = 0; i < 8; i++)
		ASSERT_SHARD_SQL(i, "0",
				 "SELECT COUNT(*) FROM sqlite_master "
				 "WHERE name = 'Cache_tag_rowid'");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hashing and routing                                                */
/* ------------------------------------------------------------------ */

struct hash_case {
	struct dc_value key;
	uint32_t hash;
};

/* Disk.hash() of Python DiskCache 5.4.0 (spec 5.3 and Appendix B). */
START_TEST(test_key_hash_matches_diskcache)
{
	const struct hash_case cases[] = {
		{ dc_int(0), 0 },
		{ dc_int(1), 1 },
		{ dc_int(7), 7 },
		{ dc_int(-1), 4294967294u },
		{ dc_int(4294967295LL), 0 },
		{ dc_int(4294967296LL), 1 },
		{ dc_int(INT64_MAX), 2147483647u },
		{ dc_int(INT64_MIN), 2147483647u },
		{ dc_text("a"), 6422626 },
		{ dc_bytes("a", 1), 6422626 },
		{ dc_float(1.0), 143655216 },
		{ dc_float(1.5), 147325240 },
		{ dc_float(-0.0), 67633281 },
		{ dc_text("abc"), 38600999 },
		{ dc_bytes("abc", 3), 38600999 },
		{ dc_text("h\xc3\xa9llo"), 192152348 },
		{ dc_text(""), 1 },
		{ dc_bytes("", 0), 1 },
		{ dc_text("jobs/high"), 295109502 },
		{ dc_bytes("\x00\xff\x00\xff\x00\xff", 6), 150799102 },
		{ dc_pickle(PICKLE_NONE, sizeof(PICKLE_NONE)), 48038146 },
		{ dc_pickle(PICKLE_TRUE, sizeof(PICKLE_TRUE)), 55640380 },
		{ dc_pickle(PICKLE_TUPLE_A1, sizeof(PICKLE_TUPLE_A1)),
		  457704208 },
		{ dc_pickle(PICKLE_2_64, sizeof(PICKLE_2_64)), 540606953 },
	};
	struct dc_value none = { 0 };
	uint32_t h;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		h = 12345;
		ck_assert_int_eq(dc_key_hash(&cases[i].key, &h), 0);
		ck_assert_msg(h == cases[i].hash,
			      "case %zu: %" PRIu32 " != %" PRIu32, i, h,
			      cases[i].hash);
		ck_assert_int_eq(dc_cache_shard_of(g_cache, &cases[i].key),
				 (int)(cases[i].hash % 8));
	}
	none.type = DC_TYPE_NONE;
	ck_assert_int_eq(dc_key_hash(&none, &h), DC_INVAL);
	ck_assert_int_eq(dc_cache_shard_of(g_cache, &none), DC_INVAL);
	ck_assert_int_eq(dc_key_hash(VP(dc_text("\xff")), &h), DC_INVAL);
}
END_TEST

START_TEST(test_shard_of_matches_the_appendix_b_examples)
{
	ck_assert_int_eq(shard_of(dc_int(0)), 0);
	ck_assert_int_eq(shard_of(dc_int(1)), 1);
	ck_assert_int_eq(shard_of(dc_int(7)), 7);
	ck_assert_int_eq(shard_of(dc_int(-1)), 6);
	ck_assert_int_eq(shard_of(dc_text("a")), 2);
	ck_assert_int_eq(shard_of(dc_bytes("a", 1)), 2);
	ck_assert_int_eq(shard_of(dc_float(1.0)), 0);
	ck_assert_int_eq(shard_of(dc_pickle(PICKLE_NONE, 4)), 2);
}
END_TEST

START_TEST(test_keys_are_stored_in_the_shard_they_hash_to)
{
	int expect[8] = { 0 };
	char *big = tu_filled(40000, 'S');

	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(put(dc_int(i * 1000003), dc_int(i)), 0);
		expect[shard_of(dc_int(i * 1000003))]++;
	}
	for (int i = 0; i < 8; i++) {
		char n[16];

		snprintf(n, sizeof(n), "%d", expect[i]);
		ASSERT_SHARD_SQL(i, n, "SELECT COUNT(*) FROM Cache");
	}
	ck_assert_int_eq(put(dc_text("a"), dc_text("in two")), 0);
	ASSERT_SHARD_SQL(2, "in two",
			 "SELECT value FROM Cache "
			 "WHERE key = 'a'");
	/* A value file lives inside its shard's directory. */
	ck_assert_int_eq(put(dc_int(7), dc_bytes(big, 40000)), 0);
	{
		char *d7 = shard_path(7, NULL);

		ck_assert_int_eq(tu_count_files(d7), 1);
		ck_assert_int_eq(tu_count_files(g_dir), 1);
		free(d7);
	}
	ASSERT_SHARD_SQL(7, "2|40000",
			 "SELECT mode, size FROM Cache "
			 "WHERE key = 7");
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_fanout_int_one_and_float_one_are_two_keys)
{
	/* One key in a plain Cache, but they hash to shards 1 and 0. */
	ck_assert_int_eq(put(dc_int(1), dc_text("int")), 0);
	ck_assert_int_eq(put(dc_float(1.0), dc_text("float")), 0);
	ck_assert_uint_eq(len_of(g_cache), 2);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "int");
	ck_assert_int_eq(get(dc_float(1.0), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "float");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_set_get_contains_delete_clear_over_100_keys)
{
	uint64_t n = 0;

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_uint_eq(len_of(g_cache), 100);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(get(dc_int(i), 0), 0);
		ASSERT_VALUE_INT(&g_item.value, i);
		ck_assert_int_eq(has(dc_int(i)), 0);
	}
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(del(dc_int(i)), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_int_eq(del(dc_int(100)), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, &n), 0);
	ck_assert_uint_eq(n, 100);
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_fanout_touch_add_incr_and_pop)
{
	int64_t zero = 0;
	struct dc_value r;

	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), 60, NULL), 0);
	ck_assert_int_eq(
	    dc_cache_touch(g_cache, VP(dc_int(0)), DC_NO_EXPIRE, 0), 0);
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_int(0)), 0, 0), 0);
	ck_assert_int_eq(
	    dc_cache_touch(g_cache, VP(dc_int(0)), DC_NO_EXPIRE, 0),
	    DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_add(g_cache, VP(dc_int(1)), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_add(g_cache, VP(dc_int(1)), VP(dc_int(2)),
				      DC_NO_EXPIRE, NULL, 0),
			 DC_EXISTS);
	ck_assert_int_eq(
	    dc_cache_incr(g_cache, VP(dc_text("key")), 3, &zero, &r, 0), 0);
	ASSERT_VALUE_INT(&r, 3);
	ck_assert_int_eq(
	    dc_cache_decr(g_cache, VP(dc_text("k2")), 2, &zero, &r, 0), 0);
	ASSERT_VALUE_INT(&r, -2);
	ck_assert_int_eq(
	    dc_cache_incr(g_cache, VP(dc_text("k3")), 1, NULL, &r, 0),
	    DC_NOTFOUND);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(100 + i), dc_int(i)), 0);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(dc_cache_pop(g_cache, VP(dc_int(100 + i)),
					      &g_buf, &g_item, 0),
				 0);
		ASSERT_VALUE_INT(&g_item.value, i);
	}
	ck_assert_int_eq(
	    dc_cache_pop(g_cache, VP(dc_int(100)), &g_buf, &g_item, 0),
	    DC_NOTFOUND);
}
END_TEST

START_TEST(test_fanout_getsetdel_roundtrip_with_value_files)
{
	size_t n = 1 << 12;
	char *hello = malloc(5 * n + 1);
	char *world = malloc(40 * n);
	struct dc_value vals[6];
	size_t i;

	ck_assert_ptr_nonnull(hello);
	ck_assert_ptr_nonnull(world);
	for (i = 0; i < n; i++)
		memcpy(hello + 5 * i, "hello", 5);
	for (i = 0; i < 8 * n; i++)
		memcpy(world + 5 * i, "world", 5);
	hello[5 * n] = '\0';
	vals[0] = dc_pickle(PICKLE_NONE, sizeof(PICKLE_NONE));
	vals[1] = dc_int(1234);
	vals[2] = dc_float(56.78);
	vals[3] = dc_text(hello);
	vals[4] = dc_bytes("world", 5);
	vals[5] = dc_bytes(world, 40 * n);
	for (i = 0; i < ARRAY_SIZE(vals); i++)
		ck_assert_int_eq(put(dc_int((int64_t)i), vals[i]), 0);
	ck_assert_uint_eq(len_of(g_cache), ARRAY_SIZE(vals));
	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		ck_assert_int_eq(get(dc_int((int64_t)i), 0), 0);
		ck_assert_int_eq(g_item.value.type, vals[i].type);
		if (vals[i].type == DC_TYPE_INT)
			ck_assert_int_eq(g_item.value.i, vals[i].i);
		else if (vals[i].type == DC_TYPE_FLOAT)
			ck_assert(g_item.value.f == vals[i].f);
		else
			ASSERT_VALUE_DATA(&g_item.value, vals[i].type,
					  vals[i].data, vals[i].len);
	}
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(get(dc_int(5), DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	close(g_item.fd);
	for (i = 0; i < ARRAY_SIZE(vals); i++)
		ck_assert_int_eq(put(vals[i], dc_int((int64_t)i)), 0);
	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		ck_assert_int_eq(get(vals[i], 0), 0);
		ASSERT_VALUE_INT(&g_item.value, (int64_t)i);
	}
	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		ck_assert_int_eq(del(dc_int((int64_t)i)), 0);
		ck_assert_int_eq(del(vals[i]), 0);
	}
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(hello);
	free(world);
}
END_TEST

START_TEST(test_fanout_expire_and_evict_cover_every_shard)
{
	static const char *const colors[] = { "red", "blue", "yellow" };
	uint64_t n = 0;

	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(0))), 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), 1e-9, NULL), 0);
	ck_assert_uint_eq(len_of(g_cache), 100);
	tu_sleep(0.01);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(10))), 0);
	ck_assert_int_eq(dc_cache_expire(g_cache, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 100);
	ck_assert_uint_eq(len_of(g_cache), 0);

	for (int i = 0; i < 90; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), DC_NO_EXPIRE,
				       VP(dc_text(colors[i % 3]))),
				 0);
	ck_assert_uint_eq(len_of(g_cache), 90);
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_text("red")), 0, &n), 0);
	ck_assert_uint_eq(n, 30);
	ck_assert_uint_eq(len_of(g_cache), 60);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_fanout_expire_at_an_explicit_time)
{
	double t0 = tu_wall();
	uint64_t n = 0;

	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(0))), 0);
	for (int i = 1; i <= 100; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), i, NULL), 0);
	ck_assert_int_eq(dc_cache_expire(g_cache, t0 + 11, 0, &n), 0);
	ck_assert_uint_eq(n, 10);
	ck_assert_uint_eq(len_of(g_cache), 90);
}
END_TEST

START_TEST(test_fanout_statistics_are_summed_over_shards)
{
	uint64_t hits = 9, misses = 9;

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(get(dc_int(i), 0), 0);
	for (int i = 100; i < 110; i++)
		ck_assert_int_eq(get(dc_int(i), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 1, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 100);
	ck_assert_uint_eq(misses, 10);
	ck_assert_int_eq(dc_cache_stats(g_cache, 0, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(get(dc_int(i), 0), 0);
	for (int i = 100; i < 110; i++)
		ck_assert_int_eq(get(dc_int(i), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 0, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	for (int i = 0; i < 8; i++)
		ASSERT_SHARD_SQL(i, "0",
				 "SELECT value FROM Settings "
				 "WHERE key = 'statistics'");
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_fanout_len_and_volume_are_sums_over_shards)
{
	char *big = tu_filled(40000, 'V');
	uint64_t len = 0, vol = 0;

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(
		    put(dc_text(i % 2 ? "a" : "bb"), dc_bytes(big, 40000)), 0);
	for (int i = 0; i < 8; i++) {
		char *d = shard_path(i, NULL);
		struct dc_options o = { 0 };
		dc_cache *c = NULL;

		o.shards = DC_SHARDS_PLAIN;
		ck_assert_int_eq(dc_cache_open(d, &o, &c), 0);
		len += len_of(c);
		vol += volume_of(c);
		dc_cache_close(c);
		free(d);
	}
	ck_assert_uint_eq(len, 102);
	ck_assert_uint_eq(len_of(g_cache), len);
	ck_assert_uint_eq(volume_of(g_cache), vol);
	ck_assert_uint_gt(vol, 80000);
	free(big);
}
END_TEST

START_TEST(test_fanout_check_reports_and_fixes_every_shard)
{
	char *big = tu_filled(40000, 'c');
	char *db, *rel, *path;
	struct tu_warnings w;

	/* 'a' hashes to shard 2 and 7 to shard 7. */
	ck_assert_int_eq(put(dc_text("a"), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_int(7), dc_bytes(big, 40000)), 0);
	db = shard_path(2, "cache.db");
	rel = sql(db, "SELECT filename FROM Cache WHERE key = 'a'");
	ck_assert_int_ge(asprintf(&path, "%s/002/%s", g_dir, rel), 0);
	ck_assert_int_eq(unlink(path), 0);
	free(rel);
	free(path);
	free(db);
	db = shard_path(7, "cache.db");
	rel = sql(db, "UPDATE Cache SET size = 1 WHERE key = 7");
	free(rel);
	free(db);
	tu_check(g_cache, 0, &w);
	ck_assert_int_eq(w.kind[DC_WARN_FILE_MISSING], 1);
	ck_assert_int_eq(w.kind[DC_WARN_FILE_SIZE], 1);
	tu_check(g_cache, 1, NULL);
	for (int pass = 0; pass < 3 && tu_check(g_cache, 1, NULL) > 0; pass++)
		;
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_uint_eq(len_of(g_cache), 1);
	ck_assert_int_eq(get(dc_int(7), 0), 0);
	ck_assert_uint_eq(g_item.size, 40000);
	free(big);
}
END_TEST

START_TEST(test_fanout_cull_brings_each_shard_under_its_limit)
{
	char *v = tu_filled(3 * 32768, 'f');
	uint64_t n = 0;

	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(0))), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "size_limit", VP(dc_int(30 * 32768))),
	    0);
	for (int i = 0; i < 40 * 8; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(v, 3 * 32768)), 0);
	ck_assert_uint_gt(volume_of(g_cache) / 8, 30 * 32768);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, &n), 0);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_le(volume_of(g_cache) / 8, 30 * 32768);
	ck_assert_uint_eq(len_of(g_cache), 320 - n);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(v);
}
END_TEST

START_TEST(test_fanout_cull_of_database_pages)
{
	char v[100];
	int count = (2 * 32768) / 108 * 8;

	memset(v, '0', sizeof(v));
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(0))), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "size_limit", VP(dc_int(2 * 32768))),
	    0);
	for (int i = 0; i < count; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(v, sizeof(v))), 0);
	ck_assert_uint_gt(volume_of(g_cache) / 8, 2 * 32768);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, NULL), 0);
	ck_assert_uint_le(volume_of(g_cache) / 8, 2 * 32768);
}
END_TEST

START_TEST(test_fanout_copied_tree_keeps_every_value)
{
	char *big = tu_filled(40000, 'T');
	char *copy;
	dc_cache *c = NULL;
	struct dc_item item;

	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(put(dc_int(100 + i), dc_bytes(big, 40000)), 0);
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_ge(asprintf(&copy, "%s/copy", g_dir), 0);
	ck_assert_int_eq(
	    tu_run("mkdir '%s' && cp -a '%s'/0* '%s'", copy, g_dir, copy), 0);
	ck_assert_int_eq(dc_cache_open(copy, NULL, &c), 0);
	ck_assert_int_eq(dc_cache_shards(c), 8);
	ck_assert_uint_eq(len_of(c), 55);
	for (int i = 0; i < 50; i++) {
		ck_assert_int_eq(
		    dc_cache_get(c, VP(dc_int(i)), &g_buf, &item, 0), 0);
		ASSERT_VALUE_INT(&item.value, i);
	}
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(
		    dc_cache_get(c, VP(dc_int(100 + i)), &g_buf, &item, 0), 0);
		ASSERT_VALUE_DATA(&item.value, DC_TYPE_BYTES, big, 40000);
	}
	TU_ASSERT_CHECK_CLEAN(c);
	dc_cache_close(c);
	free(copy);
	free(big);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Iteration                                                          */
/* ------------------------------------------------------------------ */

static size_t iter_ints(unsigned flags, int64_t *out, size_t max)
{
	dc_iter *it = NULL;
	size_t n = 0;
	int rc;

	ck_assert_int_eq(dc_iter_open(g_cache, flags, NULL, 0, &it), 0);
	while ((rc = dc_iter_next(it, &g_buf, &g_item)) == 0) {
		ck_assert_int_eq(g_item.key.type, DC_TYPE_INT);
		ck_assert_uint_lt(n, max);
		out[n++] = g_item.key.i;
	}
	ck_assert_int_eq(rc, DC_NOTFOUND);
	dc_iter_close(it);
	return n;
}

START_TEST(test_fanout_iteration_goes_shard_by_shard)
{
	static int64_t fwd[400], rev[400];
	int seen[300] = { 0 };
	size_t n;

	/* Inserted in descending order to tell insertion from key order. */
	for (int i = 299; i >= 0; i--)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	n = iter_ints(0, fwd, 400);
	ck_assert_uint_eq(n, 300);
	for (size_t i = 0; i < n; i++) {
		ck_assert(fwd[i] >= 0 && fwd[i] < 300);
		seen[fwd[i]]++;
		if (i > 0) {
			int a = shard_of(dc_int(fwd[i - 1]));
			int b = shard_of(dc_int(fwd[i]));

			/* Shard order, then insertion order in a shard. */
			ck_assert_int_le(a, b);
			if (a == b)
				ck_assert_int_gt(fwd[i - 1], fwd[i]);
		}
	}
	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_uint_eq(iter_ints(DC_REVERSE, rev, 400), 300);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(rev[i], fwd[n - 1 - i]);
}
END_TEST

START_TEST(test_fanout_sorted_iteration_is_sorted_within_each_shard)
{
	static int64_t got[300];
	size_t n;

	for (int i = 299; i >= 0; i--)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	n = iter_ints(DC_SORTED, got, 300);
	ck_assert_uint_eq(n, 300);
	for (size_t i = 1; i < n; i++) {
		int a = shard_of(dc_int(got[i - 1]));
		int b = shard_of(dc_int(got[i]));

		ck_assert_int_le(a, b);
		if (a == b)
			ck_assert_int_lt(got[i - 1], got[i]);
	}
}
END_TEST

START_TEST(test_fanout_iteration_includes_expired_keys_until_expire)
{
	static int64_t got[200];
	int seen[100] = { 0 };

	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(0))), 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), 1e-9, NULL), 0);
	tu_sleep(0.02);
	ck_assert_uint_eq(iter_ints(0, got, 200), 100);
	for (int i = 0; i < 100; i++)
		seen[got[i]]++;
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert_uint_eq(iter_ints(DC_ALIVE, got, 200), 0);
	ck_assert_int_eq(dc_cache_expire(g_cache, 0, 0, NULL), 0);
	ck_assert_uint_eq(iter_ints(0, got, 200), 0);
}
END_TEST

START_TEST(test_fanout_prefix_iteration_spans_shards)
{
	char name[32];
	dc_iter *it = NULL;
	int n = 0;

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "dir/%02d", i);
		ck_assert_int_eq(put(dc_text(name), dc_int(i)), 0);
		snprintf(name, sizeof(name), "other/%02d", i);
		ck_assert_int_eq(put(dc_text(name), dc_int(i)), 0);
	}
	ck_assert_int_eq(dc_iter_open(g_cache, DC_SORTED, "dir/", 4, &it), 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		ck_assert_int_eq(g_item.key.type, DC_TYPE_TEXT);
		ck_assert_int_eq(strncmp(g_item.key.data, "dir/", 4), 0);
		n++;
	}
	dc_iter_close(it);
	ck_assert_int_eq(n, 50);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrency                                                        */
/* ------------------------------------------------------------------ */

struct adder {
	dc_cache *cache;
	int wins, exists, errors;
};

static void *add_worker(void *arg)
{
	struct adder *a = arg;

	for (int i = 0; i < 1000; i++) {
		int rc = dc_cache_add(a->cache, VP(dc_int(i)), VP(dc_int(i)),
				      DC_NO_EXPIRE, NULL, DC_RETRY);

		if (rc == 0)
			a->wins++;
		else if (rc == DC_EXISTS)
			a->exists++;
		else
			a->errors++;
	}
	return NULL;
}

/* Upstream test_add_concurrent: one shard, 16 threads. */
START_TEST(test_fanout_16_threads_add_1000_keys_exactly_once)
{
	pthread_t t[16];
	struct adder a[16];
	int wins = 0;

	dc_cache_close(g_cache);
	g_cache = NULL;
	tu_rmtree(g_dir);
	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	open_fanout(1, 0, NULL, 0);
	for (int i = 0; i < 16; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].cache = g_cache;
		ck_assert_int_eq(pthread_create(&t[i], NULL, add_worker, &a[i]),
				 0);
	}
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(a[i].errors, 0);
		ck_assert_int_eq(a[i].wins + a[i].exists, 1000);
		wins += a[i].wins;
	}
	ck_assert_int_eq(wins, 1000);
	ck_assert_uint_eq(len_of(g_cache), 1000);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

struct incrementer {
	dc_cache *cache;
	int errors;
};

static void *incr_worker(void *arg)
{
	struct incrementer *w = arg;
	int64_t zero = 0;

	for (int i = 0; i < 50; i++) {
		if (dc_cache_incr(w->cache, VP(dc_bytes("key", 3)), 1, &zero,
				  NULL, DC_RETRY) != 0)
			w->errors++;
		tu_sleep(0.001);
	}
	return NULL;
}

/* Upstream test_incr_concurrent: one shard, timeout 0.001. */
START_TEST(test_fanout_16_threads_incr_with_a_tiny_timeout_reach_800)
{
	pthread_t t[16];
	struct incrementer w[16];

	dc_cache_close(g_cache);
	g_cache = NULL;
	tu_rmtree(g_dir);
	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	open_fanout(1, 0.001, NULL, 0);
	for (int i = 0; i < 16; i++) {
		w[i].cache = g_cache;
		w[i].errors = 0;
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, incr_worker, &w[i]), 0);
	}
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].errors, 0);
	}
	ck_assert_int_eq(get(dc_bytes("key", 3), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 800);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A foreign writer holding one shard                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_writes_to_a_locked_shard_time_out)
{
	struct tu_lock l;
	char *db = shard_path(2, "cache.db"); /* shard of 'a' */
	int64_t zero = 0;
	double t0;

	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	tu_lock_db(&l, db);
	t0 = tu_wall();
	ck_assert_int_eq(put(dc_text("a"), dc_int(2)), DC_TIMEOUT);
	/* The default shard timeout is 10 ms, not a minute. */
	ck_assert(tu_wall() - t0 < 5);
	ck_assert_int_eq(dc_cache_add(g_cache, VP(dc_bytes("a", 1)),
				      VP(dc_int(0)), DC_NO_EXPIRE, NULL, 0),
			 DC_TIMEOUT);
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_text("a")), 10, 0),
			 DC_TIMEOUT);
	ck_assert_int_eq(
	    dc_cache_incr(g_cache, VP(dc_text("a")), 1, &zero, NULL, 0),
	    DC_TIMEOUT);
	ck_assert_int_eq(
	    dc_cache_decr(g_cache, VP(dc_text("a")), 1, &zero, NULL, 0),
	    DC_TIMEOUT);
	ck_assert_int_eq(del(dc_text("a")), DC_TIMEOUT);
	/* get and pop report a timeout as a miss (Python returns the
	 * default). */
	ck_assert_int_eq(get(dc_text("a"), 0), DC_NOTFOUND);
	ck_assert_int_eq(
	    dc_cache_pop(g_cache, VP(dc_text("a")), &g_buf, &g_item, 0),
	    DC_NOTFOUND);
	/* Other shards are free. */
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(has(dc_text("a")), 0);
	tu_unlock_db(&l);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	free(db);
}
END_TEST

struct unlocker {
	struct tu_lock *lock;
	double delay;
};

static void *unlock_later(void *arg)
{
	struct unlocker *u = arg;

	tu_sleep(u->delay);
	tu_unlock_db(u->lock);
	return NULL;
}

/* Bulk removal retries a busy shard and never reports DC_TIMEOUT. */
START_TEST(test_fanout_bulk_removal_waits_out_a_locked_shard)
{
	struct tu_lock l;
	struct unlocker u = { &l, 0.3 };
	char *db = shard_path(3, "cache.db");
	pthread_t th;
	uint64_t n = 0;

	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	tu_lock_db(&l, db);
	ck_assert_int_eq(pthread_create(&th, NULL, unlock_later, &u), 0);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, &n), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(n, 200);
	ck_assert_uint_eq(len_of(g_cache), 0);
	free(db);
}
END_TEST

START_TEST(test_fanout_retry_waits_out_a_locked_shard)
{
	struct tu_lock l;
	struct unlocker u = { &l, 0.2 };
	char *db = shard_path(2, "cache.db");
	pthread_t th;

	tu_lock_db(&l, db);
	ck_assert_int_eq(pthread_create(&th, NULL, unlock_later, &u), 0);
	ck_assert_int_eq(dc_cache_set(g_cache, VP(dc_text("a")), VP(dc_int(5)),
				      DC_NO_EXPIRE, NULL, DC_RETRY),
			 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 5);
	free(db);
}
END_TEST

/* A setting change retries a busy shard rather than giving up
 * (FanoutCache.reset retries each shard on Timeout). */
START_TEST(test_fanout_setting_set_waits_out_a_locked_shard)
{
	struct tu_lock l;
	struct unlocker u = { &l, 0.3 };
	char *db = shard_path(5, "cache.db");
	pthread_t th;

	tu_lock_db(&l, db);
	ck_assert_int_eq(pthread_create(&th, NULL, unlock_later, &u), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(6))), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	for (int i = 0; i < 8; i++)
		ASSERT_SHARD_SQL(i, "6",
				 "SELECT value FROM Settings "
				 "WHERE key = 'cull_limit'");
	free(db);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Transactions                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_begin_needs_retry_and_locks_every_shard)
{
	dc_cache *other = NULL;
	struct dc_options o = { 0 };

	/* Opened first: opening writes the settings of every shard. */
	o.timeout = 0.02;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &other), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), DC_INVAL);
	ck_assert_int_eq(dc_cache_commit(g_cache), DC_INVAL);
	ck_assert_int_eq(dc_cache_begin(g_cache, DC_RETRY), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	/* Another handle cannot write to any shard meanwhile. */
	for (int i = 100; i < 108; i++)
		ck_assert_int_eq(dc_cache_set(other, VP(dc_int(i)),
					      VP(dc_int(i)), DC_NO_EXPIRE, NULL,
					      0),
				 DC_TIMEOUT);
	ck_assert_uint_eq(len_of(other), 0);
	ck_assert_int_eq(dc_cache_rollback(g_cache), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, DC_RETRY), 0);
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert_uint_eq(len_of(other), 16);
	dc_cache_close(other);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sub-collections                                                    */
/* ------------------------------------------------------------------ */

START_TEST(test_sub_collections_live_at_the_python_paths)
{
	dc_cache *c = NULL, *d = NULL, *x = NULL;
	struct dc_value v;
	char *path;

	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_CACHE, "sessions", NULL, &c), 0);
	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_DEQUE, "jobs/high", NULL, &d), 0);
	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_INDEX, "users", NULL, &x), 0);
	ck_assert(exists(tu_path(g_dir, "cache/sessions/cache.db")));
	ck_assert(exists(tu_path(g_dir, "deque/jobs/high/cache.db")));
	ck_assert(exists(tu_path(g_dir, "index/users/cache.db")));
	ck_assert_int_eq(dc_cache_shards(c), 0);
	ck_assert_int_eq(dc_cache_shards(d), 0);
	ck_assert_int_eq(dc_cache_shards(x), 0);
	ck_assert_int_ge(asprintf(&path, "%s/deque/jobs/high", g_dir), 0);
	ck_assert_str_eq(dc_cache_directory(d), path);
	free(path);
	/* Deques and indexes never evict; a sub-cache is a default Cache. */
	ck_assert_int_eq(dc_cache_setting_get(d, "eviction_policy", &g_buf, &v),
			 0);
	ASSERT_VALUE_TEXT(&v, "none");
	ck_assert_int_eq(dc_cache_setting_get(x, "eviction_policy", &g_buf, &v),
			 0);
	ASSERT_VALUE_TEXT(&v, "none");
	ck_assert_int_eq(dc_cache_setting_get(c, "eviction_policy", &g_buf, &v),
			 0);
	ASSERT_VALUE_TEXT(&v, "least-recently-stored");
	ck_assert_int_eq(dc_cache_setting_get(c, "size_limit", &g_buf, &v), 0);
	ASSERT_VALUE_INT(&v, 1073741824);

	/* Independent of the shards and of each other. */
	ck_assert_int_eq(dc_cache_set(c, VP(dc_text("s")), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_push(d, VP(dc_text("job")), NULL,
				       DC_NO_EXPIRE, NULL, 0, NULL, NULL),
			 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_uint_eq(len_of(c), 1);
	ck_assert_uint_eq(len_of(d), 1);
	ck_assert_uint_eq(len_of(x), 0);
	ck_assert_int_eq(dc_cache_pull(d, NULL, &g_buf, &g_item, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000000);
	ASSERT_VALUE_TEXT(&g_item.value, "job");
	TU_ASSERT_CHECK_CLEAN(g_cache);
	dc_cache_close(c);
	dc_cache_close(d);
	dc_cache_close(x);
}
END_TEST

/* The doctests of FanoutCache.cache/deque/index, in C. */
START_TEST(test_sub_collection_doctests)
{
	dc_cache *c = NULL, *d = NULL, *x = NULL;
	struct dc_value k;

	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_CACHE, "test", NULL, &c), 0);
	ck_assert_int_eq(dc_cache_set(c, VP(dc_text("apple")), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(
	    dc_cache_get(c, VP(dc_text("apple")), &g_buf, &g_item, 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_uint_eq(len_of(c), 1);
	ck_assert_int_eq(dc_cache_delete(c, VP(dc_text("apple")), 0), 0);
	ck_assert_uint_eq(len_of(c), 0);

	/* deque: extend('abcde'), popleft() == 'a', pop() == 'e', len 3. */
	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_DEQUE, "test", NULL, &d), 0);
	for (const char *p = "abcde"; *p; p++) {
		char one[2] = { *p, 0 };

		ck_assert_int_eq(dc_cache_push(d, VP(dc_text(one)), NULL,
					       DC_NO_EXPIRE, NULL, DC_BACK,
					       &g_buf, &k),
				 0);
	}
	ck_assert_int_eq(dc_cache_pull(d, NULL, &g_buf, &g_item, DC_FRONT), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "a");
	ck_assert_int_eq(dc_cache_pull(d, NULL, &g_buf, &g_item, DC_BACK), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "e");
	ck_assert_uint_eq(len_of(d), 3);

	/* index: popitem() of abc/def/ghi is ('ghi', 789). */
	ck_assert_int_eq(
	    dc_cache_open_sub(g_cache, DC_SUB_INDEX, "test", NULL, &x), 0);
	ck_assert_int_eq(dc_cache_set(x, VP(dc_text("abc")), VP(dc_int(123)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_set(x, VP(dc_text("def")), VP(dc_int(456)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_set(x, VP(dc_text("ghi")), VP(dc_int(789)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_peekitem(x, &g_buf, &g_item, 0), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "ghi");
	ASSERT_VALUE_INT(&g_item.value, 789);
	ck_assert_int_eq(dc_cache_delete(x, VP(dc_text("ghi")), 0), 0);
	ck_assert_uint_eq(len_of(x), 2);
	ck_assert_int_eq(dc_cache_delete(x, VP(dc_text("abc")), 0), 0);
	ck_assert_int_eq(
	    dc_cache_get(x, VP(dc_text("def")), &g_buf, &g_item, 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 456);
	dc_cache_close(c);
	dc_cache_close(d);
	dc_cache_close(x);
}
END_TEST

START_TEST(test_sub_collection_names_are_validated)
{
	static const char *const bad[] = { "",  "/abs", "a//b",   "a/",
					   ".", "..",   "a/../b", "a/./b" };
	dc_cache *c;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		c = (dc_cache *)&c;
		ck_assert_msg(dc_cache_open_sub(g_cache, DC_SUB_CACHE, bad[i],
						NULL, &c) == DC_INVAL,
			      "name '%s' accepted", bad[i]);
		ck_assert_ptr_null(c);
	}
	ck_assert(!exists(tu_path(g_dir, "b")));
	ck_assert(!exists(tu_path(g_dir, "abs")));
}
END_TEST

START_TEST(test_sub_collection_with_shards_is_inval)
{
	struct dc_options o = { 0 };
	dc_cache *c = NULL;

	o.shards = 4;
	ck_assert_int_eq(dc_cache_open_sub(g_cache, DC_SUB_CACHE, "s", &o, &c),
			 DC_INVAL);
	ck_assert_ptr_null(c);
	o.shards = DC_SHARDS_PLAIN;
	ck_assert_int_eq(dc_cache_open_sub(g_cache, DC_SUB_CACHE, "s", &o, &c),
			 0);
	dc_cache_close(c);
}
END_TEST

START_TEST(test_sub_collection_of_a_plain_parent)
{
	char *sub;
	dc_cache *p = NULL, *c = NULL;

	ck_assert_int_ge(asprintf(&sub, "%s/plain", g_dir), 0);
	ck_assert_int_eq(dc_cache_open(sub, NULL, &p), 0);
	ck_assert_int_eq(dc_cache_open_sub(p, DC_SUB_INDEX, "a/b", NULL, &c),
			 0);
	ck_assert(exists(tu_path(sub, "index/a/b/cache.db")));
	dc_cache_close(c);
	dc_cache_close(p);
	/* The plain parent is still a plain Cache. */
	ck_assert_int_eq(dc_cache_open(sub, NULL, &p), 0);
	ck_assert_int_eq(dc_cache_shards(p), 0);
	dc_cache_close(p);
	free(sub);
}
END_TEST

START_TEST(test_sub_collection_settings_at_open_are_applied)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(2) } };
	struct dc_options o = { 0 };
	dc_cache *c = NULL;
	char *db;

	o.settings = s;
	o.nsettings = 1;
	ck_assert_int_eq(dc_cache_open_sub(g_cache, DC_SUB_DEQUE, "q", &o, &c),
			 0);
	dc_cache_close(c);
	ck_assert_int_ge(asprintf(&db, "%s/deque/q/cache.db", g_dir), 0);
	{
		char *out = sql(db, "SELECT value FROM Settings WHERE key IN "
				    "('cull_limit', 'eviction_policy') "
				    "ORDER BY key");

		ck_assert_str_eq(out, "2\nnone");
		free(out);
	}
	free(db);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                              */
/* ------------------------------------------------------------------ */

static TCase *tcase(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

Suite *fanout_suite(void)
{
	Suite *s = suite_create("fanout");
	TCase *tc;

	tc = tcase(s, "layout", 30);
	tcase_add_test(tc, test_fanout_creates_shard_directories_000_to_007);
	tcase_add_test(tc, test_new_directory_without_shards_is_a_plain_cache);
	tcase_add_test(tc,
		       test_existing_fanout_is_detected_with_its_shard_count);
	tcase_add_test(tc, test_explicit_shard_count_mismatch_is_layout);
	tcase_add_test(tc, test_plain_cache_opened_as_fanout_is_layout);
	tcase_add_test(tc,
		       test_sub_collections_do_not_confuse_layout_detection);
	tcase_add_test(tc, test_python_fanout_directory_is_detected);

	tc = tcase(s, "settings", 30);
	tcase_add_test(tc,
		       test_fanout_defaults_give_each_shard_a_real_size_limit);
	tcase_add_test(tc,
		       test_fanout_size_limit_at_open_is_divided_among_shards);
	tcase_add_test(tc, test_fanout_setting_set_gives_every_shard_the_value);
	tcase_add_test(tc,
		       test_fanout_reopen_rewrites_the_per_shard_size_limit);
	tcase_add_test(
	    tc, test_fanout_tag_index_is_created_and_dropped_on_every_shard);

	tc = tcase(s, "hash", 30);
	tcase_add_test(tc, test_key_hash_matches_diskcache);
	tcase_add_test(tc, test_shard_of_matches_the_appendix_b_examples);
	tcase_add_test(tc, test_keys_are_stored_in_the_shard_they_hash_to);
	tcase_add_test(tc, test_fanout_int_one_and_float_one_are_two_keys);

	tc = tcase(s, "ops", 60);
	tcase_add_test(tc,
		       test_fanout_set_get_contains_delete_clear_over_100_keys);
	tcase_add_test(tc, test_fanout_touch_add_incr_and_pop);
	tcase_add_test(tc, test_fanout_getsetdel_roundtrip_with_value_files);
	tcase_add_test(tc, test_fanout_expire_and_evict_cover_every_shard);
	tcase_add_test(tc, test_fanout_expire_at_an_explicit_time);
	tcase_add_test(tc, test_fanout_statistics_are_summed_over_shards);
	tcase_add_test(tc, test_fanout_len_and_volume_are_sums_over_shards);
	tcase_add_test(tc, test_fanout_check_reports_and_fixes_every_shard);
	tcase_add_test(tc, test_fanout_cull_brings_each_shard_under_its_limit);
	tcase_add_test(tc, test_fanout_cull_of_database_pages);
	tcase_add_test(tc, test_fanout_copied_tree_keeps_every_value);

	tc = tcase(s, "iter", 30);
	tcase_add_test(tc, test_fanout_iteration_goes_shard_by_shard);
	tcase_add_test(
	    tc, test_fanout_sorted_iteration_is_sorted_within_each_shard);
	tcase_add_test(
	    tc, test_fanout_iteration_includes_expired_keys_until_expire);
	tcase_add_test(tc, test_fanout_prefix_iteration_spans_shards);

	tc = tcase(s, "threads", 180);
	tcase_add_test(tc, test_fanout_16_threads_add_1000_keys_exactly_once);
	tcase_add_test(
	    tc, test_fanout_16_threads_incr_with_a_tiny_timeout_reach_800);

	tc = tcase(s, "timeout", 60);
	tcase_add_test(tc, test_fanout_writes_to_a_locked_shard_time_out);
	tcase_add_test(tc, test_fanout_bulk_removal_waits_out_a_locked_shard);
	tcase_add_test(tc, test_fanout_retry_waits_out_a_locked_shard);
	tcase_add_test(tc, test_fanout_setting_set_waits_out_a_locked_shard);
	tcase_add_test(tc, test_fanout_begin_needs_retry_and_locks_every_shard);

	tc = tcase(s, "sub", 30);
	tcase_add_test(tc, test_sub_collections_live_at_the_python_paths);
	tcase_add_test(tc, test_sub_collection_doctests);
	tcase_add_test(tc, test_sub_collection_names_are_validated);
	tcase_add_test(tc, test_sub_collection_with_shards_is_inval);
	tcase_add_test(tc, test_sub_collection_of_a_plain_parent);
	tcase_add_test(tc, test_sub_collection_settings_at_open_are_applied);
	return s;
}
