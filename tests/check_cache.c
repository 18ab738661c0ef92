/* check_cache.c - black-box tests of a plain Cache through dcache.h
 * SPDX-License-Identifier: MIT
 *
 * The behaviour under test is Python DiskCache 5.x's (spec §6 and the
 * upstream checklist §13.1), translated to C: Python objects the C API
 * cannot express are written as the pickle bytes Python would store, and
 * mocked time becomes an explicit @now.  The library is driven through
 * dcache.h only; the sqlite3 CLI and libc look at or damage the directory
 * the way a user or a Python peer could.
 *
 * Every test gets a fresh directory from the checked fixture.  A failing
 * assertion ends the forked test process without running the teardown,
 * so an atexit handler removes the directory then.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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

Suite *cache_suite(void);

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

static char *g_dir;       /* the test's temporary directory */
static char *g_db;        /* g_dir/cache.db */
static dc_cache *g_cache; /* a handle on g_dir, closed by the teardown */
static struct dc_buf g_buf;
static struct dc_item g_item;

static void remove_test_dir(void)
{
	if (g_dir)
		tu_rmtree(g_dir);
	free(g_dir);
	free(g_db);
	g_dir = NULL;
	g_db = NULL;
}

static void setup(void)
{
	static int registered;

	if (!registered) {
		atexit(remove_test_dir);
		registered = 1;
	}
	g_dir = tu_mkdtemp();
	ck_assert_int_gt(asprintf(&g_db, "%s/cache.db", g_dir), 0);
	dc_buf_init(&g_buf);
	memset(&g_item, 0, sizeof(g_item));
	ck_assert_int_eq(dc_cache_open(g_dir, NULL, &g_cache), 0);
	ck_assert_ptr_nonnull(g_cache);
}

static void teardown(void)
{
	dc_cache_close(g_cache);
	g_cache = NULL;
	dc_buf_release(&g_buf);
	remove_test_dir();
}

/* reopen - close the fixture's handle and open g_dir again with @opts
 * (NULL: defaults). */
static void reopen_opts(const struct dc_options *opts)
{
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_eq(dc_cache_open(g_dir, opts, &g_cache), 0);
	ck_assert_ptr_nonnull(g_cache);
}

static void reopen(const struct dc_setting *settings, size_t n)
{
	struct dc_options opts = { 0 };

	opts.settings = settings;
	opts.nsettings = n;
	reopen_opts(&opts);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */
/* ------------------------------------------------------------------ */

static int put(struct dc_value key, struct dc_value value)
{
	return dc_cache_set(g_cache, &key, &value, DC_NO_EXPIRE, NULL, 0);
}

static int put_x(struct dc_value key, struct dc_value value, double expire,
		 const struct dc_value *tag, unsigned flags)
{
	return dc_cache_set(g_cache, &key, &value, expire, tag, flags);
}

static int add_x(struct dc_value key, struct dc_value value, double expire)
{
	return dc_cache_add(g_cache, &key, &value, expire, NULL, 0);
}

/* get - read @key into g_item/g_buf.  The item is poisoned first so that
 * fields the library forgets to fill are noticed. */
static int get(struct dc_value key, unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	g_item.fd = 12345;
	return dc_cache_get(g_cache, &key, &g_buf, &g_item, flags);
}

static int pop(struct dc_value key, unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	g_item.fd = 12345;
	return dc_cache_pop(g_cache, &key, &g_buf, &g_item, flags);
}

static int del(struct dc_value key)
{
	return dc_cache_delete(g_cache, &key, 0);
}

static int has(struct dc_value key)
{
	return dc_cache_contains(g_cache, &key);
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

static int incr(struct dc_value key, int64_t delta, const int64_t *dflt,
		struct dc_value *result)
{
	return dc_cache_incr(g_cache, &key, delta, dflt, result, 0);
}

static int decr(struct dc_value key, int64_t delta, const int64_t *dflt,
		struct dc_value *result)
{
	return dc_cache_decr(g_cache, &key, delta, dflt, result, 0);
}

#define ASSERT_VALUE_INT(v, n)                                                 \
	do {                                                                   \
		const struct dc_value *v_ = (v);                               \
		ck_assert_int_eq(v_->type, DC_TYPE_INT);                       \
		ck_assert_int_eq(v_->i, (n));                                  \
	} while (0)

#define ASSERT_VALUE_FLOAT(v, x)                                               \
	do {                                                                   \
		const struct dc_value *v_ = (v);                               \
		ck_assert_int_eq(v_->type, DC_TYPE_FLOAT);                     \
		ck_assert(v_->f == (x));                                       \
	} while (0)

/* Output text and bytes are followed by a NUL that len does not count. */
#define ASSERT_VALUE_DATA(v, t, p, n)                                          \
	do {                                                                   \
		const struct dc_value *v_ = (v);                               \
		size_t n_ = (n);                                               \
		ck_assert_int_eq(v_->type, (t));                               \
		ck_assert_uint_eq(v_->len, n_);                                \
		ck_assert_ptr_nonnull(v_->data);                               \
		ck_assert_msg(memcmp(v_->data, (p), n_) == 0, "data differs"); \
		if ((t) == DC_TYPE_TEXT || (t) == DC_TYPE_BYTES)               \
			ck_assert_int_eq(((const char *)v_->data)[n_], 0);     \
	} while (0)

#define ASSERT_VALUE_TEXT(v, s) ASSERT_VALUE_DATA(v, DC_TYPE_TEXT, s, strlen(s))

#define ASSERT_VALUE_BYTES(v, p, n) ASSERT_VALUE_DATA(v, DC_TYPE_BYTES, p, n)

/* sql - run @fmt on the database @db with the sqlite3 CLI and return its
 * output, trailing newlines removed (malloc'd; the caller frees it).  The
 * SQL goes inside double quotes on a shell command line: no '"', '$',
 * '`' or '\' in it. */
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

/* ASSERT_SQL - the CLI's output of the query equals @expect. */
#define ASSERT_SQL(db, expect, ...)                                            \
	do {                                                                   \
		char *out_ = sql(db, __VA_ARGS__);                             \
		ck_assert_str_eq(out_, (expect));                              \
		free(out_);                                                    \
	} while (0)

static long sql_long(const char *db, const char *query)
{
	char *out = sql(db, "%s", query), *end;
	long v = strtol(out, &end, 10);

	ck_assert_msg(end != out && *end == '\0', "not a number: '%s' from %s",
		      out, query);
	free(out);
	return v;
}

/* value_path - absolute path of a key's value file, from the filename
 * column (malloc'd).  @where is an SQL condition such as "key = 0". */
static char *value_path(const char *dir, const char *where)
{
	char *db, *rel, *path;

	ck_assert_int_ge(asprintf(&db, "%s/cache.db", dir), 0);
	rel = sql(db, "SELECT filename FROM Cache WHERE %s", where);
	ck_assert_msg(rel[0] != '\0', "no value file for %s", where);
	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, rel), 0);
	free(rel);
	free(db);
	return path;
}

/* is_value_filename - DiskCache's relative name: ab/cd/<28 hex>.val. */
static int is_value_filename(const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (strlen(s) != 38 || s[2] != '/' || s[5] != '/' ||
	    strcmp(s + 34, ".val") != 0)
		return 0;
	for (int i = 0; i < 34; i++) {
		if (i == 2 || i == 5)
			continue;
		if (!strchr(hex, s[i]) || s[i] == '\0')
			return 0;
	}
	return 1;
}

static off_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -1;
	return st.st_size;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* read_fd_all - every byte from @fd's current offset (malloc'd). */
static char *read_fd_all(int fd, size_t *len)
{
	size_t cap = 65536;
	char *p = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(p);
	*len = 0;
	while ((n = read(fd, p + *len, cap - *len)) > 0) {
		*len += (size_t)n;
		if (*len == cap) {
			cap *= 2;
			p = realloc(p, cap);
			ck_assert_ptr_nonnull(p);
		}
	}
	ck_assert_int_eq(n, 0);
	return p;
}

/* Entries directly in @dir (without "." and ".."). */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* The pickle bytes Python writes for None, True and the tuple (1, 'a')
 * (protocol 5; spec Appendix C). */
static const unsigned char PICKLE_NONE[] = { 0x80, 0x05, 0x4e, 0x2e };
static const unsigned char PICKLE_TRUE[] = { 0x80, 0x05, 0x88, 0x2e };
/* (1,), optimized as Python pickles keys */
static const unsigned char PICKLE_TUPLE_1[] = { 0x80, 0x05, 0x95, 0x04, 0x00,
						0x00, 0x00, 0x00, 0x00, 0x00,
						0x00, 0x4b, 0x01, 0x85, 0x2e };
static const unsigned char PICKLE_TUPLE_A1[] = { 0x80, 0x05, 0x95, 0x07, 0x00,
						 0x00, 0x00, 0x00, 0x00, 0x00,
						 0x00, 0x8c, 0x01, 0x61, 0x4b,
						 0x01, 0x86, 0x2e };

#define PNONE dc_pickle(PICKLE_NONE, sizeof(PICKLE_NONE))

/* ------------------------------------------------------------------ */
/* Opening and settings                                               */
/* ------------------------------------------------------------------ */

struct expected_setting {
	const char *name;
	enum dc_type type;
	int64_t i;
	const char *s;
};

static const struct expected_setting defaults[] = {
	{ "statistics", DC_TYPE_INT, 0, NULL },
	{ "tag_index", DC_TYPE_INT, 0, NULL },
	{ "eviction_policy", DC_TYPE_TEXT, 0, "least-recently-stored" },
	{ "size_limit", DC_TYPE_INT, 1073741824, NULL },
	{ "cull_limit", DC_TYPE_INT, 10, NULL },
	{ "sqlite_auto_vacuum", DC_TYPE_INT, 1, NULL },
	{ "sqlite_cache_size", DC_TYPE_INT, 8192, NULL },
	{ "sqlite_journal_mode", DC_TYPE_TEXT, 0, "wal" },
	{ "sqlite_mmap_size", DC_TYPE_INT, 67108864, NULL },
	{ "sqlite_synchronous", DC_TYPE_INT, 1, NULL },
	{ "disk_min_file_size", DC_TYPE_INT, 32768, NULL },
	{ "disk_pickle_protocol", DC_TYPE_INT, 5, NULL },
	{ "count", DC_TYPE_INT, 0, NULL },
	{ "size", DC_TYPE_INT, 0, NULL },
	{ "hits", DC_TYPE_INT, 0, NULL },
	{ "misses", DC_TYPE_INT, 0, NULL },
};

/* VP - a pointer to a value built in place (an array compound literal,
 * since C has no address of a function's result). */
#define VP(x) ((const struct dc_value[]){ x })

static struct dc_value setting(dc_cache *c, const char *name)
{
	struct dc_value v;
	int rc;

	memset(&v, 0x5a, sizeof(v));
	rc = dc_cache_setting_get(c, name, &g_buf, &v);
	ck_assert_msg(rc == 0, "setting_get(%s) = %d", name, rc);
	return v;
}

static int64_t setting_int(dc_cache *c, const char *name)
{
	struct dc_value v = setting(c, name);

	ck_assert_msg(v.type == DC_TYPE_INT, "%s: type %d", name, (int)v.type);
	return v.i;
}

static void assert_setting_text(dc_cache *c, const char *name, const char *s)
{
	struct dc_value v = setting(c, name);

	ASSERT_VALUE_TEXT(&v, s);
}

START_TEST(test_fresh_cache_reports_every_default_setting)
{
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		const struct expected_setting *e = &defaults[i];
		struct dc_value v = setting(g_cache, e->name);

		ck_assert_msg(v.type == e->type, "%s: type %d", e->name,
			      (int)v.type);
		if (e->type == DC_TYPE_INT)
			ck_assert_msg(v.i == e->i, "%s = %" PRId64, e->name,
				      v.i);
		else
			ASSERT_VALUE_TEXT(&v, e->s);
	}
	/* The database holds the same, as Python would read it. */
	ASSERT_SQL(g_db, "integer|1073741824",
		   "SELECT typeof(value), value FROM Settings "
		   "WHERE key = 'size_limit'");
	ASSERT_SQL(g_db, "16", "SELECT COUNT(*) FROM Settings");
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_setting_names_lists_every_diskcache_setting)
{
	const char *const *names = dc_cache_setting_names();
	size_t n = 0;

	ck_assert_ptr_nonnull(names);
	while (names[n])
		n++;
	/* The twelve DEFAULT_SETTINGS; the metadata rows are not settings. */
	for (size_t i = 0; i < 12; i++) {
		int found = 0;

		for (size_t j = 0; j < n; j++)
			if (strcmp(names[j], defaults[i].name) == 0)
				found = 1;
		ck_assert_msg(found, "%s missing", defaults[i].name);
	}
	ck_assert_uint_eq(n, 12);
}
END_TEST

START_TEST(test_close_of_null_is_harmless)
{
	dc_cache_close(NULL);
	dc_iter_close(NULL);
	dc_buf_release(NULL);
	/* A handle closed and a new one opened on the same directory. */
	reopen(NULL, 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_directory_is_reported_as_given)
{
	char *sub;
	dc_cache *c = NULL;

	ck_assert_str_eq(dc_cache_directory(g_cache), g_dir);
	ck_assert_int_eq(dc_cache_shards(g_cache), 0);
	ck_assert_int_ge(asprintf(&sub, "%s/a/b/../c", g_dir), 0);
	/* Missing parents are created; the string is kept as given. */
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), 0);
	ck_assert_str_eq(dc_cache_directory(c), sub);
	dc_cache_close(c);
	ck_assert(exists(tu_path(g_dir, "a/c/cache.db")));
	free(sub);
}
END_TEST

START_TEST(test_open_time_settings_are_written_for_later_openers)
{
	struct dc_setting s1[] = {
		{ "disk_pickle_protocol", dc_int(1) },
		{ "disk_min_file_size", dc_int(1 << 20) },
	};
	struct dc_setting s2[] = {
		{ "size_limit", dc_int(12345) },
		{ "cull_limit", dc_int(3) },
	};
	char *big = tu_filled(40000, 'b');
	dc_cache *other = NULL;

	reopen(s1, ARRAY_SIZE(s1));
	ck_assert_int_eq(setting_int(g_cache, "disk_pickle_protocol"), 1);
	ck_assert_int_eq(setting_int(g_cache, "disk_min_file_size"), 1 << 20);
	/* The larger threshold is honoured: 40000 bytes stay inline. */
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(g_item.file_backed, 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);

	/* A second opener passing settings changes what a third one sees. */
	{
		struct dc_options o = { 0 };

		o.settings = s2;
		o.nsettings = ARRAY_SIZE(s2);
		ck_assert_int_eq(dc_cache_open(g_dir, &o, &other), 0);
		dc_cache_close(other);
	}
	reopen(NULL, 0);
	ck_assert_int_eq(setting_int(g_cache, "size_limit"), 12345);
	ck_assert_int_eq(setting_int(g_cache, "cull_limit"), 3);
	ck_assert_int_eq(setting_int(g_cache, "disk_min_file_size"), 1 << 20);
	free(big);
}
END_TEST

START_TEST(test_unknown_setting_at_open_is_kept)
{
	struct dc_setting s[] = { { "MAX_ENTRIES", dc_int(300) } };

	reopen(s, 1);
	ck_assert_int_eq(setting_int(g_cache, "MAX_ENTRIES"), 300);
	reopen(NULL, 0);
	ck_assert_int_eq(setting_int(g_cache, "MAX_ENTRIES"), 300);
	/* Now that the row exists, it can be changed. */
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "MAX_ENTRIES", VP(dc_int(500))), 0);
	ASSERT_SQL(g_db, "500",
		   "SELECT value FROM Settings WHERE key = 'MAX_ENTRIES'");
}
END_TEST

START_TEST(test_open_with_bad_eviction_policy_is_inval)
{
	struct dc_setting s[] = { { "eviction_policy", dc_text("bogus") } };
	struct dc_options o = { 0 };
	dc_cache *c = (dc_cache *)&o;

	o.settings = s;
	o.nsettings = 1;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &c), DC_INVAL);
	ck_assert_ptr_null(c);
	ASSERT_SQL(g_db, "least-recently-stored",
		   "SELECT value FROM Settings WHERE key = 'eviction_policy'");
}
END_TEST

START_TEST(test_open_of_a_garbage_database_is_corrupt)
{
	char *sub, *db, *junk = tu_filled(8192, 'j');
	dc_cache *c = (dc_cache *)&sub;

	ck_assert_int_ge(asprintf(&sub, "%s/junk", g_dir), 0);
	ck_assert_int_ge(asprintf(&db, "%s/junk/cache.db", g_dir), 0);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	write_file(db, junk, 8192);
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), DC_CORRUPT);
	ck_assert_ptr_null(c);
	free(junk);
	free(db);
	free(sub);
}
END_TEST

START_TEST(test_setting_get_of_unknown_name_is_notfound)
{
	struct dc_value v;

	ck_assert_int_eq(dc_cache_setting_get(g_cache, "no_such", &g_buf, &v),
			 DC_NOTFOUND);
}
END_TEST

START_TEST(test_setting_set_of_unknown_name_is_notfound)
{
	struct dc_value v;

	/* DiskCache's reset() updates existing rows only. */
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "no_such", VP(dc_int(1))),
	    DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_setting_get(g_cache, "no_such", &g_buf, &v),
			 DC_NOTFOUND);
	ASSERT_SQL(g_db, "0",
		   "SELECT COUNT(*) FROM Settings WHERE key = 'no_such'");
}
END_TEST

START_TEST(test_setting_set_of_bad_policy_is_inval_and_changes_nothing)
{
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "eviction_policy",
				 VP(dc_text("most-recently-used"))),
	    DC_INVAL);
	assert_setting_text(g_cache, "eviction_policy",
			    "least-recently-stored");
}
END_TEST

START_TEST(test_setting_set_persists_for_new_handles)
{
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(7))), 0);
	ck_assert_int_eq(setting_int(g_cache, "cull_limit"), 7);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "eviction_policy",
				 VP(dc_text("least-recently-used"))),
	    0);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "sqlite_cache_size",
					      VP(dc_int(4096))),
			 0);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "sqlite_mmap_size",
					      VP(dc_int(1 << 28))),
			 0);
	reopen(NULL, 0);
	ck_assert_int_eq(setting_int(g_cache, "cull_limit"), 7);
	ck_assert_int_eq(setting_int(g_cache, "sqlite_mmap_size"), 1 << 28);
	assert_setting_text(g_cache, "eviction_policy", "least-recently-used");
	ck_assert_int_eq(setting_int(g_cache, "sqlite_cache_size"), 4096);
	ASSERT_SQL(g_db, "integer|7",
		   "SELECT typeof(value), value FROM Settings "
		   "WHERE key = 'cull_limit'");
}
END_TEST

START_TEST(test_setting_get_reloads_another_handles_change)
{
	dc_cache *other = NULL;

	ck_assert_int_eq(dc_cache_open(g_dir, NULL, &other), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(other, "size_limit", VP(dc_int(999))), 0);
	ck_assert_int_eq(setting_int(g_cache, "size_limit"), 999);
	dc_cache_close(other);
}
END_TEST

START_TEST(test_setting_set_min_file_size_changes_later_writes)
{
	char *data = tu_filled(2000, 'm');

	ck_assert_int_eq(put(dc_int(0), dc_bytes(data, 2000)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "disk_min_file_size",
					      VP(dc_int(1024))),
			 0);
	ck_assert_int_eq(put(dc_int(1), dc_bytes(data, 2000)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "disk_pickle_protocol",
					      VP(dc_int(2))),
			 0);
	ck_assert_int_eq(setting_int(g_cache, "disk_pickle_protocol"), 2);
	/* Python accepts -1 (the highest protocol); 6 does not exist. */
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "disk_pickle_protocol",
					      VP(dc_int(-1))),
			 0);
	ck_assert_int_eq(setting_int(g_cache, "disk_pickle_protocol"), -1);
	ck_assert_int_eq(dc_cache_setting_set(g_cache, "disk_pickle_protocol",
					      VP(dc_int(6))),
			 DC_INVAL);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ck_assert_int_eq(g_item.file_backed, 1);
	ASSERT_VALUE_BYTES(&g_item.value, data, 2000);
	/* The first value stays inline and readable. */
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(g_item.file_backed, 0);
	ASSERT_VALUE_BYTES(&g_item.value, data, 2000);
	free(data);
}
END_TEST

START_TEST(test_tag_index_setting_creates_and_drops_the_index)
{
	struct dc_setting on[] = { { "tag_index", dc_int(1) } };
	struct dc_setting off[] = { { "tag_index", dc_int(0) } };
	const char *q = "SELECT COUNT(*) FROM sqlite_master "
			"WHERE name = 'Cache_tag_rowid'";

	ASSERT_SQL(g_db, "0", "%s", q);
	reopen(on, 1);
	ck_assert_int_eq(setting_int(g_cache, "tag_index"), 1);
	ASSERT_SQL(g_db, "1", "%s", q);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "tag_index", VP(dc_int(0))), 0);
	ASSERT_SQL(g_db, "0", "%s", q);
	ck_assert_int_eq(setting_int(g_cache, "tag_index"), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "tag_index", VP(dc_int(1))), 0);
	ASSERT_SQL(g_db, "1", "%s", q);
	/* Re-opening with tag_index 0 drops it; a plain re-open keeps the
	 * stored setting. */
	reopen(off, 1);
	ASSERT_SQL(g_db, "0", "%s", q);
	reopen(NULL, 0);
	ASSERT_SQL(g_db, "0", "%s", q);
}
END_TEST

START_TEST(test_schema_is_the_diskcache_5x_schema)
{
	static const char *const lines[] = {
		"CREATE TABLE Settings ( key TEXT NOT NULL UNIQUE, value);",
		"CREATE TABLE Cache ( rowid INTEGER PRIMARY KEY, key BLOB, raw "
		"INTEGER, store_time REAL, expire_time REAL, access_time REAL, "
		"access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER "
		"DEFAULT 0, mode INTEGER DEFAULT 0, filename TEXT, value "
		"BLOB);",
		"CREATE UNIQUE INDEX Cache_key_raw ON Cache(key, raw);",
		"CREATE INDEX Cache_store_time ON Cache (store_time);",
		"CREATE TRIGGER Settings_count_insert AFTER INSERT ON Cache "
		"FOR EACH ROW BEGIN UPDATE Settings SET value = value + 1 "
		"WHERE key = \"count\"; END;",
		"CREATE TRIGGER Settings_count_delete AFTER DELETE ON Cache "
		"FOR EACH ROW BEGIN UPDATE Settings SET value = value - 1 "
		"WHERE key = \"count\"; END;",
		"CREATE TRIGGER Settings_size_insert AFTER INSERT ON Cache FOR "
		"EACH ROW BEGIN UPDATE Settings SET value = value + NEW.size "
		"WHERE key = \"size\"; END;",
		"CREATE TRIGGER Settings_size_update AFTER UPDATE ON Cache FOR "
		"EACH ROW BEGIN UPDATE Settings SET value = value + NEW.size - "
		"OLD.size WHERE key = \"size\"; END;",
		"CREATE TRIGGER Settings_size_delete AFTER DELETE ON Cache FOR "
		"EACH ROW BEGIN UPDATE Settings SET value = value - OLD.size "
		"WHERE key = \"size\"; END;",
	};
	char *cmd, *out = NULL;
	size_t cap = 0, nlines = 0;
	ssize_t n;
	FILE *p;
	int expire_index = 0;

	ck_assert_int_ge(asprintf(&cmd, "sqlite3 '%s' .schema", g_db), 0);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while ((n = getline(&out, &cap, p)) > 0) {
		int known = 0;

		if (out[n - 1] == '\n')
			out[n - 1] = '\0';
		nlines++;
		for (size_t i = 0; i < ARRAY_SIZE(lines); i++)
			if (strcmp(out, lines[i]) == 0)
				known = 1;
		/* Release or HEAD form of the expire index (spec 2.2). */
		if (strcmp(out, "CREATE INDEX Cache_expire_time ON Cache "
				"(expire_time);") == 0 ||
		    strcmp(out, "CREATE INDEX Cache_expire_time ON Cache "
				"(expire_time) WHERE expire_time IS NOT "
				"NULL;") == 0)
			known = expire_index = 1;
		ck_assert_msg(known, "unexpected schema line: %s", out);
	}
	pclose(p);
	free(out);
	free(cmd);
	ck_assert(expire_index);
	ck_assert_uint_eq(nlines, ARRAY_SIZE(lines) + 1);
}
END_TEST

START_TEST(test_database_is_wal_with_full_auto_vacuum)
{
	ASSERT_SQL(g_db, "wal", "PRAGMA journal_mode");
	ASSERT_SQL(g_db, "1", "PRAGMA auto_vacuum");
	ASSERT_SQL(g_db, "4096", "PRAGMA page_size");
}
END_TEST

START_TEST(test_policy_change_at_open_adds_its_index_and_keeps_old)
{
	struct dc_setting lru[] = { { "eviction_policy",
				      dc_text("least-recently-used") } };
	struct dc_setting lfu[] = { { "eviction_policy",
				      dc_text("least-frequently-used") } };
	struct dc_setting none[] = { { "eviction_policy", dc_text("none") } };

	reopen(lru, 1);
	reopen(lfu, 1);
	reopen(none, 1);
	ASSERT_SQL(g_db,
		   "Cache_access_count|Cache_access_time|Cache_store_time",
		   "SELECT group_concat(name, '|') FROM (SELECT name FROM "
		   "sqlite_master WHERE name IN ('Cache_store_time', "
		   "'Cache_access_time', 'Cache_access_count') ORDER BY name)");
	assert_setting_text(g_cache, "eviction_policy", "none");
}
END_TEST

START_TEST(test_new_directories_are_0700_and_value_files_0600)
{
	char *sub, *path;
	char *big = tu_filled(40000, 'q');
	mode_t old = umask(022);
	struct stat st;

	ck_assert_int_ge(asprintf(&sub, "%s/new/cache", g_dir), 0);
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_eq(dc_cache_open(sub, NULL, &g_cache), 0);
	ck_assert_int_eq(stat(sub, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	path = value_path(sub, "key = 0");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	/* Both levels of value directories. */
	*strrchr(path, '/') = '\0';
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	*strrchr(path, '/') = '\0';
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	umask(old);
	free(path);
	free(sub);
	free(big);
}
END_TEST

START_TEST(test_dir_mode_option_sets_directory_and_file_modes)
{
	struct dc_options o = { 0 };
	char *sub, *path;
	char *big = tu_filled(40000, 'q');
	mode_t old = umask(022);
	struct stat st;

	o.dir_mode = 0750;
	ck_assert_int_ge(asprintf(&sub, "%s/new", g_dir), 0);
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_eq(dc_cache_open(sub, &o, &g_cache), 0);
	ck_assert_int_eq(stat(sub, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	path = value_path(sub, "key = 0");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	*strrchr(path, '/') = '\0';
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	umask(old);
	free(path);
	free(sub);
	free(big);
}
END_TEST

START_TEST(test_strerror_version_and_type_names)
{
	static const int codes[] = { DC_NOTFOUND, DC_TIMEOUT,  DC_INVAL,
				     DC_EXISTS,   DC_OVERFLOW, DC_TYPE,
				     DC_CORRUPT,  DC_UNSAFE,   DC_LAYOUT,
				     DC_SQLITE };
	static const char *const names[] = { "none", "int",   "float",
					     "str",  "bytes", "pickle" };
	enum dc_type t;

	for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
		const char *s = dc_strerror(codes[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(s, dc_strerror(codes[j]));
	}
	ck_assert_ptr_nonnull(dc_strerror(0));
	ck_assert_str_eq(dc_strerror(ENOENT), strerror(ENOENT));
	ck_assert_ptr_nonnull(dc_strerror(-1));
	ck_assert_ptr_nonnull(strstr(dc_version(), DC_VERSION));
	for (int i = 0; i < 6; i++) {
		ck_assert_str_eq(dc_type_name((enum dc_type)i), names[i]);
		ck_assert_int_eq(dc_type_parse(names[i], &t), 0);
		ck_assert_int_eq(t, i);
	}
	ck_assert_ptr_null(dc_type_name((enum dc_type)42));
	ck_assert_int_eq(dc_type_parse("text", &t), 0);
	ck_assert_int_eq(t, DC_TYPE_TEXT);
	ck_assert_int_eq(dc_type_parse("list", &t), DC_INVAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Value and key types                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_inline_values_of_every_native_type_roundtrip)
{
	static const char bin[] = { 0, 1, 'a', 'b', 'c', 0 };
	static const char *const hello = "h\xc3\xa9llo"; /* héllo */

	ck_assert_int_eq(put(dc_text("int"), dc_int(42)), 0);
	ck_assert_int_eq(put(dc_text("neg"), dc_int(-7)), 0);
	ck_assert_int_eq(put(dc_text("max"), dc_int(INT64_MAX)), 0);
	ck_assert_int_eq(put(dc_text("min"), dc_int(INT64_MIN)), 0);
	ck_assert_int_eq(put(dc_text("float"), dc_float(3.5)), 0);
	ck_assert_int_eq(put(dc_text("inf"), dc_float(-INFINITY)), 0);
	ck_assert_int_eq(put(dc_text("str"), dc_text(hello)), 0);
	ck_assert_int_eq(put(dc_text("bytes"), dc_bytes(bin, sizeof(bin))), 0);
	ck_assert_int_eq(put(dc_text("none"), PNONE), 0);
	ck_assert_int_eq(
	    put(dc_text("tuple"),
		dc_pickle(PICKLE_TUPLE_A1, sizeof(PICKLE_TUPLE_A1))),
	    0);

	ck_assert_int_eq(get(dc_text("int"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 42);
	ck_assert_int_eq(g_item.file_backed, 0);
	ck_assert_uint_eq(g_item.size, 0);
	ck_assert_int_eq(g_item.fd, -1);
	ck_assert_int_eq(get(dc_text("neg"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, -7);
	ck_assert_int_eq(get(dc_text("max"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, INT64_MAX);
	ck_assert_int_eq(get(dc_text("min"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, INT64_MIN);
	ck_assert_int_eq(get(dc_text("float"), 0), 0);
	ASSERT_VALUE_FLOAT(&g_item.value, 3.5);
	ck_assert_uint_eq(g_item.size, 0);
	ck_assert_int_eq(get(dc_text("inf"), 0), 0);
	ASSERT_VALUE_FLOAT(&g_item.value, -INFINITY);
	ck_assert_int_eq(get(dc_text("str"), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, hello);
	ck_assert_uint_eq(g_item.size, 6); /* bytes, not code points */
	ck_assert_int_eq(g_item.file_backed, 0);
	ck_assert_int_eq(get(dc_text("bytes"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, bin, sizeof(bin));
	ck_assert_uint_eq(g_item.size, sizeof(bin));
	ck_assert_int_eq(get(dc_text("none"), 0), 0);
	ASSERT_VALUE_DATA(&g_item.value, DC_TYPE_PICKLE, PICKLE_NONE,
			  sizeof(PICKLE_NONE));
	ck_assert_int_eq(get(dc_text("tuple"), 0), 0);
	ASSERT_VALUE_DATA(&g_item.value, DC_TYPE_PICKLE, PICKLE_TUPLE_A1,
			  sizeof(PICKLE_TUPLE_A1));

	/* Stored exactly as Python stores them (spec Appendix A). */
	ASSERT_SQL(g_db,
		   "int|1|integer|42\n"
		   "neg|1|integer|-7\n"
		   "max|1|integer|9223372036854775807\n"
		   "min|1|integer|-9223372036854775808\n"
		   "float|1|real|3.5\n"
		   "inf|1|real|-Inf\n"
		   "str|1|text|'h\xc3\xa9llo'\n"
		   "bytes|1|blob|X'000161626300'\n"
		   "none|4|blob|X'80054E2E'\n"
		   "tuple|4|blob|X'80059507000000000000008C01614B01862E'",
		   "SELECT key, mode, typeof(value), quote(value) FROM Cache "
		   "ORDER BY rowid");
	ASSERT_SQL(g_db, "10|0|10|",
		   "SELECT COUNT(*), SUM(size), SUM(raw), "
		   "group_concat(filename) FROM Cache");
}
END_TEST

START_TEST(test_empty_text_and_bytes_roundtrip_inline)
{
	ck_assert_int_eq(put(dc_text("t"), dc_textn("", 0)), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_bytes("", 0)), 0);
	ck_assert_int_eq(get(dc_text("t"), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "");
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, "", 0);
	/* Python reads '' and b'' back, never None: not NULL columns. */
	ASSERT_SQL(g_db, "t|text|''\nb|blob|X''",
		   "SELECT key, typeof(value), quote(value) FROM Cache "
		   "ORDER BY rowid");
}
END_TEST

START_TEST(test_nan_value_reads_back_as_none)
{
	ck_assert_int_eq(put(dc_int(0), dc_float(NAN)), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_NONE);
	ASSERT_SQL(g_db, "null", "SELECT typeof(value) FROM Cache");
}
END_TEST

START_TEST(test_large_values_go_to_value_files_with_diskcache_modes)
{
	char *x = tu_filled(40000, 'x');
	char *y = tu_filled(40000, 'y');
	char *pk = tu_filled(40000, 'p');
	char *rows, *line, *save = NULL;
	int n = 0;

	ck_assert_int_eq(put(dc_text("str_file"), dc_text(x)), 0);
	ck_assert_int_eq(put(dc_text("bytes_file"), dc_bytes(y, 40000)), 0);
	ck_assert_int_eq(put(dc_text("pickle_file"), dc_pickle(pk, 40000)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 3);

	ck_assert_int_eq(get(dc_text("str_file"), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, x);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 40000);
	ck_assert_int_eq(get(dc_text("bytes_file"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, y, 40000);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_int_eq(get(dc_text("pickle_file"), 0), 0);
	ASSERT_VALUE_DATA(&g_item.value, DC_TYPE_PICKLE, pk, 40000);
	ck_assert_int_eq(g_item.file_backed, 1);

	ASSERT_SQL(g_db,
		   "str_file|3|40000|null\nbytes_file|2|40000|null\n"
		   "pickle_file|4|40000|null",
		   "SELECT key, mode, size, typeof(value) FROM Cache "
		   "ORDER BY rowid");
	ASSERT_SQL(g_db, "120000",
		   "SELECT value FROM Settings "
		   "WHERE key = 'size'");
	/* Relative names ab/cd/<28 hex>.val holding exactly the bytes. */
	rows = sql(g_db, "SELECT filename FROM Cache ORDER BY rowid");
	for (line = strtok_r(rows, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int fd;
		size_t len;
		char *data;

		ck_assert_msg(is_value_filename(line), "bad name %s", line);
		fd = open(tu_path(g_dir, line), O_RDONLY);
		ck_assert_int_ge(fd, 0);
		data = read_fd_all(fd, &len);
		close(fd);
		ck_assert_uint_eq(len, 40000);
		ck_assert(memcmp(data, n == 0 ? x : n == 1 ? y : pk, len) == 0);
		free(data);
		n++;
	}
	ck_assert_int_eq(n, 3);
	free(rows);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(x);
	free(y);
	free(pk);
}
END_TEST

/* The threshold compares code points for text and bytes otherwise:
 * 20000 'é' (40000 bytes) stays inline, 32768 'x' goes to a file. */
START_TEST(test_text_threshold_counts_code_points)
{
	size_t n = 20000;
	char *e = malloc(2 * n + 1);
	char *x = tu_filled(32768, 'x');
	char *y = tu_filled(32768, 'y');

	ck_assert_ptr_nonnull(e);
	for (size_t i = 0; i < n; i++)
		memcpy(e + 2 * i, "\xc3\xa9", 2);
	e[2 * n] = '\0';
	ck_assert_int_eq(put(dc_text("e"), dc_text(e)), 0);
	ck_assert_int_eq(get(dc_text("e"), 0), 0);
	ck_assert_int_eq(g_item.file_backed, 0);
	ck_assert_uint_eq(g_item.size, 40000);
	ASSERT_VALUE_TEXT(&g_item.value, e);
	ck_assert_int_eq(tu_count_files(g_dir), 0);

	ck_assert_int_eq(put(dc_text("x-1"), dc_textn(x, 32767)), 0);
	ck_assert_int_eq(put(dc_text("y-1"), dc_bytes(y, 32767)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(put(dc_text("x"), dc_textn(x, 32768)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(put(dc_text("y"), dc_bytes(y, 32768)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 2);
	ck_assert_int_eq(get(dc_text("x"), 0), 0);
	ck_assert_int_eq(g_item.file_backed, 1);
	ASSERT_VALUE_TEXT(&g_item.value, x);
	ASSERT_SQL(g_db, "e|1|0\nx-1|1|0\ny-1|1|0\nx|3|32768\ny|2|32768",
		   "SELECT key, mode, size FROM Cache ORDER BY rowid");
	free(e);
	free(x);
	free(y);
}
END_TEST

START_TEST(test_text_value_with_invalid_utf8_is_inval)
{
	char *big = tu_filled(40000, 'a');

	ck_assert_int_eq(put(dc_int(0), dc_text("ab\xff")), DC_INVAL);
	ck_assert_int_eq(put(dc_int(0), dc_text("\xc3")), DC_INVAL);
	big[20000] = (char)0xc0;
	ck_assert_int_eq(put(dc_int(1), dc_text(big)), DC_INVAL);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	/* Arbitrary bytes are fine as bytes. */
	ck_assert_int_eq(put(dc_int(0), dc_bytes("ab\xff", 3)), 0);
	free(big);
}
END_TEST

START_TEST(test_keys_of_every_native_type_roundtrip)
{
	static const char bkey[] = { 'b', 0, 'k' };
	struct dc_value keys[] = {
		dc_int(7),
		dc_int(-1),
		dc_float(1.25),
		dc_text("text key"),
		dc_bytes(bkey, sizeof(bkey)),
		dc_pickle(PICKLE_TUPLE_A1, sizeof(PICKLE_TUPLE_A1)),
		dc_pickle(PICKLE_TRUE, sizeof(PICKLE_TRUE)),
	};
	dc_iter *it = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		ck_assert_int_eq(put(keys[i], dc_int((int64_t)i)), 0);
	ck_assert_uint_eq(len_of(g_cache), ARRAY_SIZE(keys));
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		ck_assert_int_eq(get(keys[i], 0), 0);
		ASSERT_VALUE_INT(&g_item.value, (int64_t)i);
		ck_assert_int_eq(has(keys[i]), 0);
	}
	/* Iteration returns each key with its type and bytes. */
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		struct dc_value *k = &g_item.key;

		ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
		ck_assert_int_eq(k->type, keys[i].type);
		if (k->type == DC_TYPE_INT)
			ck_assert_int_eq(k->i, keys[i].i);
		else if (k->type == DC_TYPE_FLOAT)
			ck_assert(k->f == keys[i].f);
		else
			ASSERT_VALUE_DATA(k, keys[i].type, keys[i].data,
					  keys[i].len);
	}
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), DC_NOTFOUND);
	dc_iter_close(it);
	/* Pickled keys are raw = 0, the others raw = 1 (spec 5.1). */
	ASSERT_SQL(g_db,
		   "integer|1\ninteger|1\nreal|1\ntext|1\nblob|1\n"
		   "blob|0\nblob|0",
		   "SELECT typeof(key), raw FROM Cache ORDER BY rowid");
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		ck_assert_int_eq(del(keys[i]), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_int_one_and_float_one_are_one_key)
{
	ck_assert_int_eq(put(dc_int(1), dc_text("int")), 0);
	ck_assert_int_eq(get(dc_float(1.0), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "int");
	ck_assert_int_eq(put(dc_float(1.0), dc_text("float")), 0);
	ck_assert_uint_eq(len_of(g_cache), 1);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "float");
	/* The row keeps the key of its first insert. */
	ASSERT_SQL(g_db, "integer|1", "SELECT typeof(key), key FROM Cache");
	ck_assert_int_eq(del(dc_float(1.0)), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_text_bytes_and_number_keys_are_distinct)
{
	ck_assert_int_eq(put(dc_int(1), dc_int(10)), 0);
	ck_assert_int_eq(put(dc_text("1"), dc_int(20)), 0);
	ck_assert_int_eq(put(dc_bytes("1", 1), dc_int(30)), 0);
	ck_assert_uint_eq(len_of(g_cache), 3);
	ck_assert_int_eq(get(dc_text("1"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 20);
	ck_assert_int_eq(get(dc_bytes("1", 1), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 30);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 10);
}
END_TEST

START_TEST(test_pickle_key_and_equal_bytes_key_are_distinct)
{
	ck_assert_int_eq(put(PNONE, dc_int(1)), 0);
	ck_assert_int_eq(
	    put(dc_bytes(PICKLE_NONE, sizeof(PICKLE_NONE)), dc_int(2)), 0);
	ck_assert_uint_eq(len_of(g_cache), 2);
	ck_assert_int_eq(get(PNONE, 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(get(dc_bytes(PICKLE_NONE, sizeof(PICKLE_NONE)), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 2);
	ASSERT_SQL(g_db, "0|1\n1|2",
		   "SELECT raw, value FROM Cache WHERE key = X'80054E2E' "
		   "ORDER BY raw");
}
END_TEST

START_TEST(test_malformed_keys_are_inval)
{
	struct dc_value none = { 0 };

	none.type = DC_TYPE_NONE;
	ck_assert_int_eq(put(none, dc_int(0)), DC_INVAL);
	ck_assert_int_eq(put(dc_text("\xff\xfe"), dc_int(0)), DC_INVAL);
	ck_assert_int_eq(get(none, 0), DC_INVAL);
	ck_assert_int_eq(has(none), DC_INVAL);
	ck_assert_int_eq(del(none), DC_INVAL);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_tags_of_every_type_roundtrip)
{
	static const char btag[] = { 't', 0, 'g' };

	ck_assert_int_eq(
	    put_x(dc_int(0), PNONE, DC_NO_EXPIRE, VP(dc_text("zero")), 0), 0);
	ck_assert_int_eq(
	    put_x(dc_int(1), PNONE, DC_NO_EXPIRE, VP(dc_int(1234)), 0), 0);
	ck_assert_int_eq(
	    put_x(dc_int(2), PNONE, DC_NO_EXPIRE, VP(dc_float(5.67)), 0), 0);
	ck_assert_int_eq(put_x(dc_int(3), PNONE, DC_NO_EXPIRE,
			       VP(dc_bytes(btag, sizeof(btag))), 0),
			 0);
	ck_assert_int_eq(put(dc_int(4), PNONE), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.tag, "zero");
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_INT(&g_item.tag, 1234);
	ck_assert_int_eq(get(dc_int(2), 0), 0);
	ASSERT_VALUE_FLOAT(&g_item.tag, 5.67);
	ck_assert_int_eq(get(dc_int(3), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.tag, btag, sizeof(btag));
	ck_assert_int_eq(get(dc_int(4), 0), 0);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	/* Never pickled (spec 6.1). */
	ASSERT_SQL(g_db, "text\ninteger\nreal\nblob\nnull",
		   "SELECT typeof(tag) FROM Cache ORDER BY rowid");
}
END_TEST

START_TEST(test_pickle_tag_is_inval)
{
	ck_assert_int_eq(
	    put_x(dc_int(0), dc_int(0), DC_NO_EXPIRE, VP(PNONE), 0), DC_INVAL);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* get, set, add, touch, delete, pop                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_get_of_missing_key_is_notfound)
{
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(0), DC_FD), DC_NOTFOUND);
	ck_assert_int_eq(has(dc_int(0)), DC_NOTFOUND);
}
END_TEST

START_TEST(test_get_reports_times_expiry_and_tag)
{
	double t0 = tu_wall(), t1;

	ck_assert_int_eq(
	    put_x(dc_int(0), dc_int(0), DC_NO_EXPIRE, VP(dc_text("number")), 0),
	    0);
	ck_assert_int_eq(put_x(dc_int(1), dc_int(1), 3600, NULL, 0), 0);
	t1 = tu_wall();
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 0);
	ck_assert(isnan(g_item.expire_time));
	ASSERT_VALUE_TEXT(&g_item.tag, "number");
	ck_assert(g_item.store_time >= t0 - 1 && g_item.store_time <= t1 + 1);
	ck_assert(g_item.access_time >= t0 - 1 && g_item.access_time <= t1 + 1);
	ck_assert_int_eq(g_item.access_count, 0);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ck_assert(g_item.expire_time >= t0 + 3599 &&
		  g_item.expire_time <= t1 + 3601);
	ck_assert(fabs(g_item.expire_time - g_item.store_time - 3600) < 1);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	ASSERT_SQL(g_db, "null|text|real|real",
		   "SELECT typeof(a.expire_time), typeof(a.tag), "
		   "typeof(b.expire_time), typeof(b.store_time) FROM Cache a, "
		   "Cache b WHERE a.key = 0 AND b.key = 1");
}
END_TEST

START_TEST(test_overwrite_sequence_removes_old_value_file)
{
	char *big = tu_filled(1 << 16, 'L');
	int fd;
	size_t len;
	char *data;

	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(0), dc_int(1)), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 1 << 16)), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, big, 1 << 16);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	fd = g_item.fd;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES); /* type only */
	ck_assert_ptr_null(g_item.value.data);
	data = read_fd_all(fd, &len);
	ck_assert_uint_eq(len, 1 << 16);
	close(fd);
	free(data);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	/* Overwrite with another large value: still one file. */
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 1 << 15)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(put(dc_int(0), dc_int(2)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	ASSERT_VALUE_INT(&g_item.value, 2);
	ck_assert_int_eq(g_item.fd, -1);
	ck_assert_uint_eq(len_of(g_cache), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_expired_key_is_invisible_on_the_fast_path)
{
	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), 0.001, NULL, 0), 0);
	tu_sleep(0.01);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(has(dc_int(0)), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), DC_NOTFOUND);
	/* Invisible, but not deleted: len counts it. */
	ck_assert_uint_eq(len_of(g_cache), 1);
}
END_TEST

START_TEST(test_expired_key_is_invisible_on_the_slow_path)
{
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "eviction_policy",
				 VP(dc_text("least-recently-used"))),
	    0);
	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), 0.001, NULL, 0), 0);
	tu_sleep(0.01);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 1);
	ck_assert_int_eq(setting_int(g_cache, "misses"), 1);
}
END_TEST

START_TEST(test_zero_or_negative_expire_gives_an_expired_key)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };

	reopen(s, 1);
	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), 0, NULL, 0), 0);
	ck_assert_int_eq(put_x(dc_int(1), dc_int(1), -10, NULL, 0), 0);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(1), 0), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 2);
}
END_TEST

START_TEST(test_novalue_reports_metadata_without_counting_stats)
{
	char *big = tu_filled(40000, 'n');
	uint64_t hits = 99, misses = 99;

	ck_assert_int_eq(
	    put_x(dc_int(0), dc_bytes(big, 40000), 3600, VP(dc_text("t")), 0),
	    0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES); /* type only */
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.value.len, 0);
	ck_assert_int_eq(g_item.fd, -1);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 40000);
	ck_assert(g_item.expire_time > tu_wall() + 3500);
	ASSERT_VALUE_TEXT(&g_item.tag, "t");
	ck_assert_int_eq(get(dc_int(1), DC_NOVALUE), DC_NOTFOUND);
	/* The tag is optional: buf may be NULL. */
	memset(&g_item, 0, sizeof(g_item));
	ck_assert_int_eq(
	    dc_cache_get(g_cache, VP(dc_int(0)), NULL, &g_item, DC_NOVALUE), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	free(big);
}
END_TEST

START_TEST(test_lru_get_updates_access_time_but_novalue_does_not)
{
	struct dc_setting s[] = { { "eviction_policy",
				    dc_text("least-recently-used") } };
	double t0;

	reopen(s, 1);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	t0 = g_item.access_time;
	tu_sleep(0.02);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert(g_item.access_time == t0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert(g_item.access_time > t0 + 0.01);
	ck_assert_int_eq(g_item.access_count, 0);
}
END_TEST

START_TEST(test_lfu_get_counts_accesses_but_novalue_does_not)
{
	struct dc_setting s[] = { { "eviction_policy",
				    dc_text("least-frequently-used") } };

	reopen(s, 1);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.access_count, 3);
	ASSERT_SQL(g_db, "3", "SELECT access_count FROM Cache");
}
END_TEST

START_TEST(test_lrs_get_changes_no_access_metadata)
{
	double t0;

	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	t0 = g_item.access_time;
	tu_sleep(0.02);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	ck_assert(g_item.access_time == t0);
	ck_assert_int_eq(g_item.access_count, 0);
}
END_TEST

START_TEST(test_fd_keeps_reading_old_bytes_after_replace_and_delete)
{
	char *a = tu_filled(40000, 'a');
	char *b = tu_filled(40000, 'b');
	int fd1, fd2, flags;
	size_t len;
	char *data;

	ck_assert_int_eq(put(dc_int(0), dc_bytes(a, 40000)), 0);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	fd1 = g_item.fd;
	ck_assert_int_ge(fd1, 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES); /* type only */
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 40000);
	flags = fcntl(fd1, F_GETFD);
	ck_assert(flags & FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd1, F_GETFL) & O_ACCMODE, O_RDONLY);

	ck_assert_int_eq(put(dc_int(0), dc_bytes(b, 40000)), 0);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	fd2 = g_item.fd;
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(del(dc_int(0)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);

	data = read_fd_all(fd1, &len);
	ck_assert_uint_eq(len, 40000);
	ck_assert(memcmp(data, a, len) == 0);
	free(data);
	data = read_fd_all(fd2, &len);
	ck_assert_uint_eq(len, 40000);
	ck_assert(memcmp(data, b, len) == 0);
	free(data);
	close(fd1);
	close(fd2);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_fd_of_inline_value_returns_the_value)
{
	ck_assert_int_eq(put(dc_int(0), dc_text("abc")), 0);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "abc");
	ck_assert_int_eq(g_item.fd, -1);
	ck_assert_int_eq(g_item.file_backed, 0);
}
END_TEST

START_TEST(test_fd_of_file_backed_text_reads_its_utf8)
{
	char *x = tu_filled(40000, 'x');
	size_t len;
	char *data;

	memcpy(x, "\xc3\xa9", 2);
	ck_assert_int_eq(put(dc_int(0), dc_text(x)), 0);
	ck_assert_int_eq(get(dc_int(0), DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	data = read_fd_all(g_item.fd, &len);
	close(g_item.fd);
	ck_assert_uint_eq(len, 40000);
	ck_assert(memcmp(data, x, len) == 0);
	free(data);
	free(x);
}
END_TEST

START_TEST(test_get_of_vanished_value_file_is_a_miss)
{
	char *big = tu_filled(40000, 'v');
	char *path;
	uint64_t hits = 9, misses = 9;

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	path = value_path(g_dir, "key = 0");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(0), DC_FD), DC_NOTFOUND);
	/* With statistics on (the slow path) it is counted as a miss. */
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 1);
	ck_assert_uint_eq(len_of(g_cache), 1);
	free(path);
	free(big);
}
END_TEST

START_TEST(test_pop_of_vanished_value_file_is_notfound_and_drops_row)
{
	char *big = tu_filled(40000, 'v');
	char *path;

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	path = value_path(g_dir, "key = 0");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(pop(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 0);
	free(path);
	free(big);
}
END_TEST

START_TEST(test_contains_before_and_after_set)
{
	ck_assert_int_eq(has(dc_int(0)), DC_NOTFOUND);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(has(dc_int(0)), 0);
	ck_assert_int_eq(has(dc_float(0.0)), 0);
	ck_assert_int_eq(has(dc_text("0")), DC_NOTFOUND);
}
END_TEST

START_TEST(test_two_handles_see_each_others_writes)
{
	dc_cache *other = NULL;

	ck_assert_int_eq(dc_cache_open(g_dir, NULL, &other), 0);
	ck_assert_int_eq(dc_cache_set(other, VP(dc_text("a")), VP(dc_int(0)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_set(other, VP(dc_text("b")), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 0);
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(del(dc_text("a")), 0);
	ck_assert_int_eq(dc_cache_contains(other, VP(dc_text("a"))),
			 DC_NOTFOUND);
	ck_assert_uint_eq(len_of(other), 1);
	dc_cache_close(other);
}
END_TEST

START_TEST(test_touch_sequence)
{
	ck_assert_int_eq(put_x(dc_int(0), PNONE, 60, NULL, 0), 0);
	ck_assert_int_eq(
	    dc_cache_touch(g_cache, VP(dc_int(0)), DC_NO_EXPIRE, 0), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert(isnan(g_item.expire_time));
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_int(0)), 0, 0), 0);
	/* Now expired: touch no longer finds it. */
	ck_assert_int_eq(
	    dc_cache_touch(g_cache, VP(dc_int(0)), DC_NO_EXPIRE, 0),
	    DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_int(1)), 10, 0),
			 DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 1);
}
END_TEST

START_TEST(test_touch_changes_only_the_expiry)
{
	double store, t0;

	ck_assert_int_eq(
	    put_x(dc_int(0), dc_int(5), DC_NO_EXPIRE, VP(dc_text("t")), 0), 0);
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	store = g_item.store_time;
	tu_sleep(0.01);
	t0 = tu_wall();
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_int(0)), 100, 0), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 5);
	ASSERT_VALUE_TEXT(&g_item.tag, "t");
	ck_assert(g_item.store_time == store);
	ck_assert(g_item.expire_time >= t0 + 99 &&
		  g_item.expire_time <= tu_wall() + 101);
}
END_TEST

START_TEST(test_add_sequence)
{
	ck_assert_int_eq(add_x(dc_int(1), dc_int(1), DC_NO_EXPIRE), 0);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(add_x(dc_int(1), dc_int(2), DC_NO_EXPIRE), DC_EXISTS);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(del(dc_int(1)), 0);
	ck_assert_int_eq(add_x(dc_int(1), dc_int(1), 0.001), 0);
	tu_sleep(0.01);
	/* An expired key is replaced in place. */
	ck_assert_int_eq(add_x(dc_int(1), dc_int(3), DC_NO_EXPIRE), 0);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 3);
	ck_assert_uint_eq(len_of(g_cache), 1);
	/* set with DC_ADD is add. */
	ck_assert_int_eq(
	    put_x(dc_int(1), dc_int(4), DC_NO_EXPIRE, NULL, DC_ADD), DC_EXISTS);
	ck_assert_int_eq(
	    put_x(dc_int(2), dc_int(4), DC_NO_EXPIRE, NULL, DC_ADD), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_add_of_large_value_keeps_the_first_and_no_extra_file)
{
	size_t n = 4 << 16;
	char *v1 = tu_filled(n, '1');
	char *v2 = tu_filled(2 * n, '2');
	struct dc_value key = dc_bytes("test-key", 8);

	ck_assert_int_eq(add_x(key, dc_bytes(v1, n), DC_NO_EXPIRE), 0);
	ck_assert_int_eq(get(key, 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v1, n);
	ck_assert_int_eq(add_x(key, dc_bytes(v2, 2 * n), DC_NO_EXPIRE),
			 DC_EXISTS);
	ck_assert_int_eq(get(key, 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v1, n);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(v1);
	free(v2);
}
END_TEST

START_TEST(test_delete_of_present_then_missing_key)
{
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(del(dc_int(0)), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(del(dc_int(0)), DC_NOTFOUND);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_delete_of_expired_key_is_notfound_and_keeps_the_row)
{
	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), 0.001, NULL, 0), 0);
	tu_sleep(0.01);
	ck_assert_int_eq(del(dc_int(0)), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 1);
}
END_TEST

START_TEST(test_pop_returns_value_and_metadata)
{
	char *s = tu_filled(1 << 20, '0');
	int64_t zero = 0;

	ck_assert_int_eq(incr(dc_text("alpha"), 1, &zero, NULL), 0);
	ck_assert_int_eq(pop(dc_text("alpha"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(get(dc_text("alpha"), 0), DC_NOTFOUND);
	TU_ASSERT_CHECK_CLEAN(g_cache);

	ck_assert_int_eq(
	    put_x(dc_text("alpha"), dc_int(123), 1, VP(dc_text("blue")), 0), 0);
	ck_assert_int_eq(pop(dc_text("alpha"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 123);
	ASSERT_VALUE_TEXT(&g_item.tag, "blue");
	ck_assert(!isnan(g_item.expire_time));

	ck_assert_int_eq(
	    put_x(dc_text("beta"), dc_int(456), 1e-9, VP(dc_text("green")), 0),
	    0);
	tu_sleep(0.01);
	ck_assert_int_eq(pop(dc_text("beta"), 0), DC_NOTFOUND);

	ck_assert_int_eq(put_x(dc_text("gamma"), dc_int(789), DC_NO_EXPIRE,
			       VP(dc_text("red")), 0),
			 0);
	ck_assert_int_eq(pop(dc_text("gamma"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 789);
	ck_assert(isnan(g_item.expire_time));
	ASSERT_VALUE_TEXT(&g_item.tag, "red");
	ck_assert_int_eq(pop(dc_text("dne"), 0), DC_NOTFOUND);

	ck_assert_int_eq(put(dc_text("epsilon"), dc_text(s)), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(pop(dc_text("epsilon"), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, s);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	free(s);
}
END_TEST

START_TEST(test_pop_with_fd_keeps_reading_after_the_file_is_gone)
{
	char *big = tu_filled(40000, 'p');
	size_t len;
	char *data;

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(pop(dc_int(0), DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	data = read_fd_all(g_item.fd, &len);
	close(g_item.fd);
	ck_assert_uint_eq(len, 40000);
	ck_assert(memcmp(data, big, len) == 0);
	free(data);
	free(big);
}
END_TEST

START_TEST(test_deleting_all_file_backed_items_removes_value_dirs)
{
	char *big = tu_filled(40000, 0);
	int start = count_entries(g_dir);

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(big, 40000)), 0);
	ck_assert_int_gt(count_entries(g_dir), start);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(del(dc_int(i)), 0);
	ck_assert_int_eq(count_entries(g_dir), start);
	ck_assert(exists(g_db));
	free(big);
}
END_TEST

START_TEST(test_getsetdel_roundtrip_of_values_then_keys)
{
	size_t n = 1 << 16;
	char *hello = malloc(5 * n + 1);
	char *world = malloc(5 * n);
	char *tuple = tu_filled(n + 20, 'N'); /* stands for a big pickle */
	struct dc_value vals[8];
	size_t i, nvals;

	ck_assert_ptr_nonnull(hello);
	ck_assert_ptr_nonnull(world);
	for (i = 0; i < n; i++) {
		memcpy(hello + 5 * i, "hello", 5);
		memcpy(world + 5 * i, "world", 5);
	}
	hello[5 * n] = '\0';
	vals[0] = PNONE;
	vals[1] = dc_pickle(tuple, n + 20);
	vals[2] = dc_int(1234);
	vals[3] = dc_float(56.78);
	vals[4] = dc_text("hello");
	vals[5] = dc_text(hello);
	vals[6] = dc_bytes("world", 5);
	vals[7] = dc_bytes(world, 5 * n);
	nvals = ARRAY_SIZE(vals);

	for (i = 0; i < nvals; i++)
		ck_assert_int_eq(put(dc_int((int64_t)i), vals[i]), 0);
	ck_assert_uint_eq(len_of(g_cache), nvals);
	for (i = 0; i < nvals; i++) {
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
	for (i = 0; i < nvals; i++)
		ck_assert_int_eq(del(dc_int((int64_t)i)), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	/* The same objects as keys (large text and bytes keys included). */
	for (i = 0; i < nvals; i++)
		ck_assert_int_eq(put(vals[i], dc_int((int64_t)i)), 0);
	ck_assert_uint_eq(len_of(g_cache), nvals);
	for (i = 0; i < nvals; i++) {
		ck_assert_int_eq(get(vals[i], 0), 0);
		ASSERT_VALUE_INT(&g_item.value, (int64_t)i);
	}
	for (i = 0; i < nvals; i++)
		ck_assert_int_eq(del(vals[i]), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(hello);
	free(world);
	free(tuple);
}
END_TEST

/* ------------------------------------------------------------------ */
/* set_fd, mkstemp and set_file                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_set_fd_stores_even_small_data_in_a_value_file)
{
	char *tmp;
	int fd;

	ck_assert_int_ge(asprintf(&tmp, "%s/in", g_dir), 0);
	write_file(tmp, "xxabcd", 6);
	fd = open(tmp, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 2, SEEK_SET), 2);
	ck_assert_int_eq(
	    dc_cache_set_fd(g_cache, VP(dc_int(0)), fd, DC_NO_EXPIRE, NULL, 0),
	    0);
	close(fd);
	unlink(tmp);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, "abcd", 4);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 4);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ASSERT_SQL(g_db, "2|4|null",
		   "SELECT mode, size, typeof(value) "
		   "FROM Cache");
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(tmp);
}
END_TEST

START_TEST(test_set_fd_reads_a_pipe_to_its_end)
{
	int p[2];
	char *data = tu_filled(100000, 'z');
	pid_t pid;
	int status;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		size_t off = 0;

		close(p[0]);
		while (off < 100000) {
			ssize_t n = write(p[1], data + off, 100000 - off);

			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(dc_cache_set_fd(g_cache, VP(dc_text("piped")), p[0],
					 10, VP(dc_text("tag")), 0),
			 0);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(get(dc_text("piped"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, data, 100000);
	ASSERT_VALUE_TEXT(&g_item.tag, "tag");
	ck_assert(!isnan(g_item.expire_time));
	free(data);
}
END_TEST

START_TEST(test_set_fd_of_an_empty_file_stores_empty_bytes)
{
	int fd = open("/dev/null", O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    dc_cache_set_fd(g_cache, VP(dc_int(0)), fd, DC_NO_EXPIRE, NULL, 0),
	    0);
	close(fd);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, "", 0);
	ck_assert_int_eq(g_item.file_backed, 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_set_fd_with_add_keeps_the_live_value)
{
	int fd = open("/dev/null", O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(put(dc_int(0), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_set_fd(g_cache, VP(dc_int(0)), fd,
					 DC_NO_EXPIRE, NULL, DC_ADD),
			 DC_EXISTS);
	close(fd);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
}
END_TEST

/* mkstemp_filled - a temporary file from dc_cache_mkstemp holding @len
 * bytes of @c; its path goes to @path.  Returns its inode number. */
static ino_t mkstemp_filled(char *path, size_t size, size_t len, int c)
{
	char *data = tu_filled(len, c);
	struct stat st;
	int fd;

	fd = dc_cache_mkstemp(g_cache, path, size);
	ck_assert_int_ge(fd, 0);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fstat(fd, &st), 0);
	close(fd);
	free(data);
	return st.st_ino;
}

START_TEST(test_set_file_adopts_the_file_without_copying)
{
	char path[4096];
	ino_t ino;
	struct stat st;
	size_t len;
	char *data, *expect = tu_filled(100000, 'f');

	ino = mkstemp_filled(path, sizeof(path), 100000, 'f');
	/* The temporary file lives inside the cache directory. */
	ck_assert_int_eq(strncmp(path, g_dir, strlen(g_dir)), 0);
	ck_assert_int_eq(path[strlen(g_dir)], '/');
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_text("k")), path,
					   DC_TYPE_BYTES, DC_NO_EXPIRE,
					   VP(dc_int(3)), 0),
			 0);
	ck_assert(!exists(path));
	ck_assert_int_eq(get(dc_text("k"), DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	ck_assert_uint_eq(g_item.size, 100000);
	ASSERT_VALUE_INT(&g_item.tag, 3);
	ck_assert_int_eq(fstat(g_item.fd, &st), 0);
	ck_assert_uint_eq(st.st_ino, ino);
	data = read_fd_all(g_item.fd, &len);
	close(g_item.fd);
	ck_assert_uint_eq(len, 100000);
	ck_assert(memcmp(data, expect, len) == 0);
	free(data);
	/* It is an ordinary value file now. */
	ASSERT_SQL(g_db, "2|100000", "SELECT mode, size FROM Cache");
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(expect);
}
END_TEST

START_TEST(test_set_file_as_text_or_pickle_reads_back_that_type)
{
	char path[4096];

	mkstemp_filled(path, sizeof(path), 10, 't');
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(0)), path,
					   DC_TYPE_TEXT, DC_NO_EXPIRE, NULL, 0),
			 0);
	mkstemp_filled(path, sizeof(path), 4, 'p');
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(1)), path,
					   DC_TYPE_PICKLE, DC_NO_EXPIRE, NULL,
					   0),
			 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "tttttttttt");
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	ASSERT_VALUE_DATA(&g_item.value, DC_TYPE_PICKLE, "pppp", 4);
	ASSERT_SQL(g_db, "3|10\n4|4",
		   "SELECT mode, size FROM Cache ORDER BY rowid");
}
END_TEST

START_TEST(test_set_file_failure_leaves_the_file_at_its_path)
{
	char path[4096];
	struct dc_value none = { 0 };
	ino_t ino;
	struct stat st;

	ck_assert_int_eq(put(dc_int(0), dc_int(1)), 0);
	ino = mkstemp_filled(path, sizeof(path), 50000, 'e');
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(0)), path,
					   DC_TYPE_BYTES, DC_NO_EXPIRE, NULL,
					   DC_ADD),
			 DC_EXISTS);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_ino, ino);
	ck_assert_int_eq(st.st_size, 50000);
	none.type = DC_TYPE_NONE;
	ck_assert_int_eq(dc_cache_set_file(g_cache, &none, path, DC_TYPE_BYTES,
					   DC_NO_EXPIRE, NULL, 0),
			 DC_INVAL);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_ino, ino);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	/* A second try with a good key works. */
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(1)), path,
					   DC_TYPE_BYTES, DC_NO_EXPIRE, NULL,
					   0),
			 0);
	ck_assert(!exists(path));
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_check_fix_removes_only_stale_mkstemp_files)
{
	char fresh[4096], stale[4096];
	struct timespec old[2];

	mkstemp_filled(fresh, sizeof(fresh), 10, 'f');
	mkstemp_filled(stale, sizeof(stale), 10, 's');
	ck_assert_str_ne(fresh, stale);
	/* Two days old: abandoned by whoever made it. */
	clock_gettime(CLOCK_REALTIME, &old[0]);
	old[0].tv_sec -= 2 * 24 * 3600;
	old[1] = old[0];
	ck_assert_int_eq(utimensat(AT_FDCWD, stale, old, 0), 0);
	tu_check(g_cache, 1, NULL);
	ck_assert(!exists(stale));
	/* A fresh one may be in use by a writer: it stays. */
	ck_assert(exists(fresh));
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(0)), fresh,
					   DC_TYPE_BYTES, DC_NO_EXPIRE, NULL,
					   0),
			 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, "ffffffffff", 10);
	for (int pass = 0; pass < 3 && tu_check(g_cache, 1, NULL) > 0; pass++)
		;
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_set_file_from_another_filesystem_is_exdev)
{
	char *other = NULL;
	struct stat a, b;

	ck_assert_int_eq(stat(g_dir, &a), 0);
	if (stat("/dev/shm", &b) != 0 || a.st_dev == b.st_dev) {
		fprintf(stderr, "SKIP %s: no second filesystem\n", __func__);
		return;
	}
	ck_assert_int_ge(
	    asprintf(&other, "/dev/shm/dcache-test-%d", (int)getpid()), 0);
	write_file(other, "abcd", 4);
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(0)), other,
					   DC_TYPE_BYTES, DC_NO_EXPIRE, NULL,
					   0),
			 EXDEV);
	ck_assert(exists(other));
	ck_assert_uint_eq(len_of(g_cache), 0);
	unlink(other);
	free(other);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Directory copies, threads, fork, permissions                       */
/* ------------------------------------------------------------------ */

START_TEST(test_copied_directory_keeps_small_and_large_values)
{
	char *big = tu_filled(1 << 16, 'c');
	char *src, *copy;
	dc_cache *c = NULL;
	struct dc_item item;

	/* Filenames are relative: a copy (or rsync) of the tree works. */
	ck_assert_int_ge(asprintf(&src, "%s/src", g_dir), 0);
	ck_assert_int_ge(asprintf(&copy, "%s/copy", g_dir), 0);
	ck_assert_int_eq(dc_cache_open(src, NULL, &c), 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(dc_cache_set(c, VP(dc_int(i)), VP(dc_int(i)),
					      DC_NO_EXPIRE, NULL, 0),
				 0);
		ck_assert_int_eq(dc_cache_set(c, VP(dc_int(100 + i)),
					      VP(dc_bytes(big, 1 << 16)),
					      DC_NO_EXPIRE, NULL, 0),
				 0);
	}
	dc_cache_close(c);
	ck_assert_int_eq(tu_run("cp -a '%s' '%s'", src, copy), 0);
	ck_assert_int_eq(tu_run("rm -rf '%s'", src), 0);
	ck_assert_int_eq(dc_cache_open(copy, NULL, &c), 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(
		    dc_cache_get(c, VP(dc_int(i)), &g_buf, &item, 0), 0);
		ASSERT_VALUE_INT(&item.value, i);
		ck_assert_int_eq(
		    dc_cache_get(c, VP(dc_int(100 + i)), &g_buf, &item, 0), 0);
		ASSERT_VALUE_BYTES(&item.value, big, 1 << 16);
	}
	TU_ASSERT_CHECK_CLEAN(c);
	dc_cache_close(c);
	free(src);
	free(copy);
	free(big);
}
END_TEST

struct worker {
	dc_cache *cache;
	int seed;
	int errors;
};

static void *set_worker(void *arg)
{
	struct worker *w = arg;
	int order[100];

	for (int i = 0; i < 100; i++)
		order[i] = i;
	/* A private shuffle, so that the threads collide on keys. */
	for (int i = 99; i > 0; i--) {
		int j = (int)((unsigned)(w->seed * 7919 + i * 104729) %
			      (unsigned)(i + 1));
		int t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < 100; i++) {
		int rc = dc_cache_set(w->cache, VP(dc_int(order[i])),
				      VP(dc_int(order[i])), DC_NO_EXPIRE, NULL,
				      DC_RETRY);

		if (rc != 0)
			w->errors++;
	}
	return NULL;
}

START_TEST(test_threads_share_one_handle)
{
	pthread_t t[8];
	struct worker w[8];

	for (int i = 0; i < 8; i++) {
		w[i].cache = g_cache;
		w[i].seed = i + 1;
		w[i].errors = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, set_worker, &w[i]),
				 0);
	}
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].errors, 0);
	}
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(get(dc_int(i), 0), 0);
		ASSERT_VALUE_INT(&g_item.value, i);
	}
	ck_assert_uint_eq(len_of(g_cache), 100);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_threads_with_own_handles_on_one_directory)
{
	pthread_t t[4];
	struct worker w[4];

	for (int i = 0; i < 4; i++) {
		w[i].cache = NULL;
		ck_assert_int_eq(dc_cache_open(g_dir, NULL, &w[i].cache), 0);
		w[i].seed = 10 + i;
		w[i].errors = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, set_worker, &w[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].errors, 0);
		dc_cache_close(w[i].cache);
	}
	ck_assert_uint_eq(len_of(g_cache), 100);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_forked_child_keeps_using_the_inherited_handle)
{
	pid_t pid;
	int status;

	ck_assert_int_eq(put(dc_text("parent"), dc_int(1)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dc_buf buf = DC_BUF_INIT;
		struct dc_item item;
		int ok;

		/* _exit: the atexit cleanup belongs to the parent. */
		ok = dc_cache_get(g_cache, VP(dc_text("parent")), &buf, &item,
				  0) == 0 &&
		     item.value.type == DC_TYPE_INT && item.value.i == 1 &&
		     dc_cache_set(g_cache, VP(dc_text("child")), VP(dc_int(2)),
				  DC_NO_EXPIRE, NULL, 0) == 0;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(get(dc_text("child"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 2);
	ck_assert_int_eq(put(dc_text("parent"), dc_int(3)), 0);
	ck_assert_uint_eq(len_of(g_cache), 2);
}
END_TEST

/* drop_privileges - become nobody, so that directory modes apply (root
 * ignores them).  Only in a forked test: it cannot be undone.  Returns 0
 * if the test must be skipped. */
static int drop_privileges(void)
{
	const char *fork_mode = getenv("CK_FORK");

	if (fork_mode && strcmp(fork_mode, "no") == 0) {
		fprintf(stderr, "SKIP: needs CK_FORK to drop privileges\n");
		return 0;
	}
	if (geteuid() != 0)
		return 1;
	/* nobody must be able to reach the directory ($TMPDIR may be
	 * private to root). */
	if (tu_run("setpriv --reuid=65534 --regid=65534 --clear-groups "
		   "test -x \"$(dirname '%s')\"",
		   g_dir) != 0) {
		fprintf(stderr, "SKIP: %s is out of reach of uid 65534\n",
			g_dir);
		return 0;
	}
	/* The test directory must stay removable by the new user. */
	ck_assert_int_eq(tu_run("chown -R 65534:65534 '%s'", g_dir), 0);
	if (setgid(65534) != 0 || setuid(65534) != 0) {
		fprintf(stderr, "SKIP: cannot drop privileges: %s\n",
			strerror(errno));
		return 0;
	}
	return 1;
}

START_TEST(test_open_of_an_uncreatable_directory_is_eacces)
{
	char *ro, *sub;
	dc_cache *c = (dc_cache *)&ro;

	dc_cache_close(g_cache);
	g_cache = NULL;
	if (!drop_privileges())
		return;
	ck_assert_int_ge(asprintf(&ro, "%s/ro", g_dir), 0);
	ck_assert_int_ge(asprintf(&sub, "%s/ro/cache", g_dir), 0);
	ck_assert_int_eq(mkdir(ro, 0500), 0);
	ck_assert_int_eq(dc_cache_open(sub, NULL, &c), EACCES);
	ck_assert_ptr_null(c);
	free(ro);
	free(sub);
}
END_TEST

START_TEST(test_value_file_creation_failure_returns_errno_and_no_row)
{
	char *sub, *big = tu_filled(40000, 'w');
	int rc;

	dc_cache_close(g_cache);
	g_cache = NULL;
	if (!drop_privileges())
		return;
	ck_assert_int_ge(asprintf(&sub, "%s/c", g_dir), 0);
	ck_assert_int_eq(dc_cache_open(sub, NULL, &g_cache), 0);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(chmod(sub, 0500), 0);
	rc = put(dc_int(1), dc_bytes(big, 40000));
	ck_assert_msg(rc == EACCES, "set = %d (%s)", rc, dc_strerror(rc));
	/* Inline values still work: only the value file failed. */
	ck_assert_int_eq(put(dc_int(2), dc_int(2)), 0);
	ck_assert_int_eq(chmod(sub, 0700), 0);
	ck_assert_int_eq(has(dc_int(1)), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 2);
	ck_assert_int_eq(tu_count_files(sub), 0);
	free(sub);
	free(big);
}
END_TEST

/* ------------------------------------------------------------------ */
/* incr and decr                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_incr_missing_key_with_default_inserts_default_plus_delta)
{
	int64_t five = 5;
	struct dc_value r;

	ck_assert_int_eq(incr(dc_text("key"), 1, &five, &r), 0);
	ASSERT_VALUE_INT(&r, 6);
	ck_assert_int_eq(incr(dc_text("key"), 2, &five, &r), 0);
	ASSERT_VALUE_INT(&r, 8);
	ck_assert_int_eq(get(dc_text("key"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 8);
	ck_assert(isnan(g_item.expire_time));
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	ASSERT_SQL(g_db, "1|integer|8",
		   "SELECT mode, typeof(value), value FROM Cache");
}
END_TEST

START_TEST(test_incr_missing_key_without_default_is_notfound)
{
	ck_assert_int_eq(incr(dc_text("key"), 1, NULL, NULL), DC_NOTFOUND);
	ck_assert_int_eq(decr(dc_text("key"), 1, NULL, NULL), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_incr_expired_key_without_default_is_notfound)
{
	ck_assert_int_eq(put_x(dc_text("key"), dc_int(100), 0.05, NULL, 0), 0);
	tu_sleep(0.07);
	ck_assert_int_eq(incr(dc_text("key"), 1, NULL, NULL), DC_NOTFOUND);
	ck_assert_int_eq(decr(dc_text("key"), 1, NULL, NULL), DC_NOTFOUND);
}
END_TEST

START_TEST(test_incr_expired_key_restarts_from_default_and_clears_tag)
{
	int64_t zero = 0;
	struct dc_value r;

	ck_assert_int_eq(
	    put_x(dc_text("key"), dc_int(100), 0.05, VP(dc_text("old")), 0), 0);
	tu_sleep(0.07);
	ck_assert_int_eq(incr(dc_text("key"), 1, &zero, &r), 0);
	ASSERT_VALUE_INT(&r, 1);
	ck_assert_int_eq(get(dc_text("key"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert(isnan(g_item.expire_time));
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	ck_assert_uint_eq(len_of(g_cache), 1);

	ck_assert_int_eq(put_x(dc_text("key"), dc_int(100), 0.05, NULL, 0), 0);
	tu_sleep(0.07);
	ck_assert_int_eq(decr(dc_text("key"), 1, &zero, &r), 0);
	ASSERT_VALUE_INT(&r, -1);
}
END_TEST

START_TEST(test_decr_sequence)
{
	int64_t five = 5;
	struct dc_value r;

	ck_assert_int_eq(decr(dc_text("key"), 1, &five, &r), 0);
	ASSERT_VALUE_INT(&r, 4);
	ck_assert_int_eq(decr(dc_text("key"), 2, &five, &r), 0);
	ASSERT_VALUE_INT(&r, 2);
	ck_assert_int_eq(decr(dc_text("key"), -10, NULL, &r), 0);
	ASSERT_VALUE_INT(&r, 12);
	ck_assert_int_eq(get(dc_text("key"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 12);
}
END_TEST

START_TEST(test_incr_of_live_key_keeps_tag_and_expiry)
{
	struct dc_value r;
	double expire;

	ck_assert_int_eq(
	    put_x(dc_text("k"), dc_int(10), 3600, VP(dc_text("t")), 0), 0);
	ck_assert_int_eq(get(dc_text("k"), DC_NOVALUE), 0);
	expire = g_item.expire_time;
	ck_assert_int_eq(incr(dc_text("k"), 5, NULL, &r), 0);
	ASSERT_VALUE_INT(&r, 15);
	ck_assert_int_eq(get(dc_text("k"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 15);
	ASSERT_VALUE_TEXT(&g_item.tag, "t");
	ck_assert(g_item.expire_time == expire);
	ck_assert_int_eq(incr(dc_text("k"), 1, NULL, NULL), 0);
	ck_assert_int_eq(get(dc_text("k"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 16);
}
END_TEST

START_TEST(test_incr_of_float_value_gives_a_float)
{
	struct dc_value r;

	ck_assert_int_eq(put(dc_text("f"), dc_float(1.5)), 0);
	ck_assert_int_eq(incr(dc_text("f"), 1, NULL, &r), 0);
	ASSERT_VALUE_FLOAT(&r, 2.5);
	ck_assert_int_eq(decr(dc_text("f"), 3, NULL, &r), 0);
	ASSERT_VALUE_FLOAT(&r, -0.5);
	ck_assert_int_eq(get(dc_text("f"), 0), 0);
	ASSERT_VALUE_FLOAT(&g_item.value, -0.5);
}
END_TEST

START_TEST(test_incr_overflow_is_overflow_and_leaves_the_row)
{
	struct dc_value r;
	double store;

	ck_assert_int_eq(put(dc_text("max"), dc_int(INT64_MAX)), 0);
	ck_assert_int_eq(put(dc_text("min"), dc_int(INT64_MIN)), 0);
	ck_assert_int_eq(get(dc_text("max"), DC_NOVALUE), 0);
	store = g_item.store_time;
	tu_sleep(0.01);
	ck_assert_int_eq(incr(dc_text("max"), 1, NULL, &r), DC_OVERFLOW);
	ck_assert_int_eq(decr(dc_text("max"), -1, NULL, &r), DC_OVERFLOW);
	ck_assert_int_eq(get(dc_text("max"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, INT64_MAX);
	ck_assert(g_item.store_time == store);
	ck_assert_int_eq(decr(dc_text("min"), 1, NULL, &r), DC_OVERFLOW);
	ck_assert_int_eq(incr(dc_text("min"), INT64_MIN, NULL, &r),
			 DC_OVERFLOW);
	ck_assert_int_eq(get(dc_text("min"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, INT64_MIN);
	/* The boundaries themselves are fine. */
	ck_assert_int_eq(incr(dc_text("max"), -1, NULL, &r), 0);
	ASSERT_VALUE_INT(&r, INT64_MAX - 1);
	ck_assert_int_eq(incr(dc_text("max"), 1, NULL, &r), 0);
	ASSERT_VALUE_INT(&r, INT64_MAX);
}
END_TEST

START_TEST(test_decr_by_int64_min_is_overflow)
{
	int64_t zero = 0;

	/* -INT64_MIN does not fit, whatever the stored value. */
	ck_assert_int_eq(put(dc_text("k"), dc_int(-1)), 0);
	ck_assert_int_eq(decr(dc_text("k"), INT64_MIN, NULL, NULL),
			 DC_OVERFLOW);
	ck_assert_int_eq(get(dc_text("k"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, -1);
	ck_assert_int_eq(decr(dc_text("new"), INT64_MIN, &zero, NULL),
			 DC_OVERFLOW);
	ck_assert_int_eq(has(dc_text("new")), DC_NOTFOUND);
}
END_TEST

START_TEST(test_incr_of_overflowing_default_stores_nothing)
{
	int64_t big = INT64_MAX;

	ck_assert_int_eq(incr(dc_text("huge"), 1, &big, NULL), DC_OVERFLOW);
	ck_assert_int_eq(has(dc_text("huge")), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_incr_of_a_non_number_is_type_and_changes_nothing)
{
	char *big = tu_filled(40000, '1');
	int64_t zero = 0;

	ck_assert_int_eq(put(dc_text("t"), dc_text("abc")), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_bytes("1", 1)), 0);
	ck_assert_int_eq(put(dc_text("p"), PNONE), 0);
	ck_assert_int_eq(put(dc_text("f"), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(incr(dc_text("t"), 1, &zero, NULL), DC_TYPE);
	ck_assert_int_eq(incr(dc_text("b"), 1, &zero, NULL), DC_TYPE);
	ck_assert_int_eq(decr(dc_text("p"), 1, &zero, NULL), DC_TYPE);
	ck_assert_int_eq(incr(dc_text("f"), 1, &zero, NULL), DC_TYPE);
	ck_assert_int_eq(get(dc_text("t"), 0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "abc");
	ck_assert_int_eq(get(dc_text("f"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, big, 40000);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_lru_incr_then_decr_reads_back_zero)
{
	struct dc_setting s[] = { { "eviction_policy",
				    dc_text("least-recently-used") } };
	int64_t zero = 0;

	reopen(s, 1);
	ck_assert_int_eq(incr(dc_int(0), 1, &zero, NULL), 0);
	ck_assert_int_eq(decr(dc_int(0), 1, &zero, NULL), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 0);
}
END_TEST

START_TEST(test_transaction_of_incrs_for_an_average)
{
	int64_t zero = 0;
	struct dc_value total, count;

	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(incr(dc_text("total"), 123, &zero, &total), 0);
	ck_assert_int_eq(incr(dc_text("count"), 1, &zero, &count), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ASSERT_VALUE_INT(&total, 123);
	ASSERT_VALUE_INT(&count, 1);
	ck_assert_int_eq(get(dc_text("total"), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 123);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Queue: push, pull, peek, peekitem                                  */
/* ------------------------------------------------------------------ */

static int push(struct dc_value value, const char *prefix, unsigned flags,
		struct dc_value *key)
{
	return dc_cache_push(g_cache, &value, prefix, DC_NO_EXPIRE, NULL, flags,
			     &g_buf, key);
}

static int pull(const char *prefix, unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	g_item.fd = 12345;
	return dc_cache_pull(g_cache, prefix, &g_buf, &g_item, flags);
}

static int peek(const char *prefix, unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	g_item.fd = 12345;
	return dc_cache_peek(g_cache, prefix, &g_buf, &g_item, flags);
}

static int peekitem(unsigned flags)
{
	memset(&g_item, 0x5a, sizeof(g_item));
	g_item.fd = 12345;
	return dc_cache_peekitem(g_cache, &g_buf, &g_item, flags);
}

START_TEST(test_push_then_pull_is_first_in_first_out)
{
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(push(dc_int(i), NULL, 0, NULL), 0);
	ck_assert_uint_eq(len_of(g_cache), 10);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(pull(NULL, 0), 0);
		ASSERT_VALUE_INT(&g_item.key, 500000000000000 + i);
		ASSERT_VALUE_INT(&g_item.value, i);
	}
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(pull(NULL, 0), DC_NOTFOUND);
	ck_assert_int_eq(peek(NULL, 0), DC_NOTFOUND);
}
END_TEST

START_TEST(test_push_keys_follow_diskcache_numbering)
{
	struct dc_value k;

	ck_assert_int_eq(push(dc_text("a"), NULL, 0, &k), 0);
	ASSERT_VALUE_INT(&k, 500000000000000);
	ck_assert_int_eq(push(dc_text("b"), NULL, DC_BACK, &k), 0);
	ASSERT_VALUE_INT(&k, 500000000000001);
	ck_assert_int_eq(push(dc_text("z"), NULL, DC_FRONT, &k), 0);
	ASSERT_VALUE_INT(&k, 499999999999999);
	ck_assert_int_eq(push(dc_text("p"), "jobs", 0, &k), 0);
	ASSERT_VALUE_TEXT(&k, "jobs-500000000000000");
	ck_assert_int_eq(push(dc_text("q"), "jobs", 0, &k), 0);
	ASSERT_VALUE_TEXT(&k, "jobs-500000000000001");
	ck_assert_int_eq(push(dc_text("o"), "jobs", DC_FRONT, &k), 0);
	ASSERT_VALUE_TEXT(&k, "jobs-499999999999999");
	/* key and buf may be NULL. */
	ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_int(1234)), "userids",
				       DC_NO_EXPIRE, NULL, 0, NULL, NULL),
			 0);
	ck_assert_int_eq(has(dc_text("userids-500000000000000")), 0);

	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 499999999999999);
	ASSERT_VALUE_TEXT(&g_item.value, "z");
	ck_assert_int_eq(pull(NULL, DC_BACK), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000001);
	ASSERT_VALUE_TEXT(&g_item.value, "b");
	ck_assert_int_eq(pull("jobs", 0), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "jobs-499999999999999");
	ASSERT_VALUE_TEXT(&g_item.value, "o");
	ck_assert_int_eq(pull("jobs", DC_FRONT), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "jobs-500000000000000");
	ASSERT_VALUE_TEXT(&g_item.value, "p");
	ck_assert_uint_eq(len_of(g_cache), 3);
}
END_TEST

START_TEST(test_push_on_an_empty_front_starts_at_the_middle)
{
	struct dc_value k;

	ck_assert_int_eq(push(dc_int(0), NULL, DC_FRONT, &k), 0);
	ASSERT_VALUE_INT(&k, 500000000000000);
	ck_assert_int_eq(push(dc_int(0), "p", DC_FRONT, &k), 0);
	ASSERT_VALUE_TEXT(&k, "p-500000000000000");
}
END_TEST

START_TEST(test_push_continues_from_numeric_keys_already_present)
{
	struct dc_value k;

	ck_assert_int_eq(put(dc_int(7), dc_text("seven")), 0);
	ck_assert_int_eq(push(dc_int(0), NULL, 0, &k), 0);
	ASSERT_VALUE_INT(&k, 8);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, NULL), 0);
	ck_assert_int_eq(put(dc_float(2.5), dc_text("float")), 0);
	ck_assert_int_eq(push(dc_int(0), NULL, DC_FRONT, &k), 0);
	ASSERT_VALUE_FLOAT(&k, 1.5);
}
END_TEST

START_TEST(test_push_pull_with_a_prefix)
{
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(push(dc_int(i), "key", 0, NULL), 0);
	ck_assert_int_eq(push(dc_int(99), NULL, 0, NULL), 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(peek("key", 0), 0);
		ck_assert_int_eq(g_item.key.type, DC_TYPE_TEXT);
		ck_assert_int_eq(strncmp(g_item.key.data, "key-", 4), 0);
		ASSERT_VALUE_INT(&g_item.value, i);
		ck_assert_int_eq(pull("key", 0), 0);
		ck_assert_int_eq(strncmp(g_item.key.data, "key-", 4), 0);
		ASSERT_VALUE_INT(&g_item.value, i);
	}
	ck_assert_int_eq(pull("key", 0), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_pull_and_peek_at_the_back_are_last_in_first_out)
{
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(push(dc_int(i), NULL, 0, NULL), 0);
	ck_assert_int_eq(peek(NULL, DC_BACK), 0);
	ASSERT_VALUE_INT(&g_item.value, 2);
	ck_assert_int_eq(peek(NULL, DC_FRONT), 0);
	ASSERT_VALUE_INT(&g_item.value, 0);
	for (int i = 2; i >= 0; i--) {
		ck_assert_int_eq(pull(NULL, DC_BACK), 0);
		ASSERT_VALUE_INT(&g_item.value, i);
	}
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_pull_and_peek_report_expiry_and_tag)
{
	double t0 = tu_wall();

	ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_text("test")), NULL, 10,
				       NULL, 0, NULL, NULL),
			 0);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000000);
	ASSERT_VALUE_TEXT(&g_item.value, "test");
	ck_assert(g_item.expire_time > t0 + 9);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	ck_assert_uint_eq(len_of(g_cache), 1);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ck_assert(g_item.expire_time > t0 + 9);
	ck_assert_uint_eq(len_of(g_cache), 0);

	ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_text("test")), NULL,
				       DC_NO_EXPIRE, VP(dc_text("foo")), 0,
				       NULL, NULL),
			 0);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ASSERT_VALUE_TEXT(&g_item.tag, "foo");
	ck_assert(isnan(g_item.expire_time));
	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000000);
	ASSERT_VALUE_TEXT(&g_item.tag, "foo");
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_pull_skips_and_deletes_expired_items)
{
	struct dc_value k;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_int(0)), NULL,
					       0.05, NULL, 0, NULL, NULL),
				 0);
	ck_assert_int_eq(push(dc_int(1), NULL, 0, &k), 0);
	tu_sleep(0.1);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000003);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_uint_eq(len_of(g_cache), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_peek_skips_expired_items_and_keeps_the_live_one)
{
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_int(0)), NULL,
					       0.05, NULL, 0, NULL, NULL),
				 0);
	ck_assert_int_eq(push(dc_int(1), NULL, 0, NULL), 0);
	tu_sleep(0.1);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000003);
	ASSERT_VALUE_INT(&g_item.value, 1);
	ck_assert_uint_eq(len_of(g_cache), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_push_pull_of_a_large_value)
{
	size_t n = 4 << 18;
	char *v = tu_filled(n, 't');

	ck_assert_int_eq(push(dc_bytes(v, n), NULL, 0, NULL), 0);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000000);
	ASSERT_VALUE_BYTES(&g_item.value, v, n);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(v);
}
END_TEST

/* DiskCache 5.4.0 deleted the file of a peeked value (fixed in 5.6.2);
 * the port follows the fixed behaviour. */
START_TEST(test_push_peek_of_a_large_value_keeps_its_file)
{
	size_t n = 4 << 18;
	char *v = tu_filled(n, 't');

	ck_assert_int_eq(push(dc_bytes(v, n), NULL, 0, NULL), 0);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v, n);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v, n);
	ck_assert_uint_eq(len_of(g_cache), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v, n);
	free(v);
}
END_TEST

START_TEST(test_pull_with_fd_returns_a_descriptor)
{
	char *v = tu_filled(40000, 'd');
	size_t len;
	char *data;

	ck_assert_int_eq(push(dc_bytes(v, 40000), NULL, 0, NULL), 0);
	ck_assert_int_eq(pull(NULL, DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	data = read_fd_all(g_item.fd, &len);
	close(g_item.fd);
	ck_assert_uint_eq(len, 40000);
	ck_assert(memcmp(data, v, len) == 0);
	free(data);
	free(v);
}
END_TEST

START_TEST(test_pull_skips_an_item_whose_file_vanished)
{
	char *a = tu_filled(40000, 'a');
	char *b = tu_filled(40000, 'b');
	char *path;

	ck_assert_int_eq(push(dc_bytes(a, 40000), NULL, 0, NULL), 0);
	ck_assert_int_eq(push(dc_bytes(b, 40000), NULL, 0, NULL), 0);
	path = value_path(g_dir, "key = 500000000000000");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ASSERT_VALUE_INT(&g_item.key, 500000000000001);
	ASSERT_VALUE_BYTES(&g_item.value, b, 40000);
	ck_assert_uint_eq(len_of(g_cache), 0);
	free(path);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_peekitem_of_an_empty_cache_is_notfound)
{
	ck_assert_int_eq(peekitem(0), DC_NOTFOUND);
	ck_assert_int_eq(peekitem(DC_FIRST), DC_NOTFOUND);
}
END_TEST

START_TEST(test_peekitem_returns_the_last_live_item_deleting_expired)
{
	ck_assert_int_eq(put(dc_text("a"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_int(1)), 0);
	ck_assert_int_eq(
	    put_x(dc_text("c"), dc_int(2), 10, VP(dc_text("foo")), 0), 0);
	ck_assert_int_eq(put_x(dc_text("d"), dc_int(3), 0.05, NULL, 0), 0);
	ck_assert_int_eq(put_x(dc_text("e"), dc_int(4), 0.05, NULL, 0), 0);
	tu_sleep(0.1);
	ck_assert_int_eq(peekitem(0), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "c");
	ASSERT_VALUE_INT(&g_item.value, 2);
	ck_assert(g_item.expire_time > 0);
	ASSERT_VALUE_TEXT(&g_item.tag, "foo");
	ck_assert_uint_eq(len_of(g_cache), 3);
	ck_assert_int_eq(peekitem(DC_FIRST), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "a");
	ASSERT_VALUE_INT(&g_item.value, 0);
	ck_assert(isnan(g_item.expire_time));
	ck_assert_uint_eq(len_of(g_cache), 3);
}
END_TEST

START_TEST(test_peekitem_returns_file_backed_values)
{
	char *v = tu_filled(40000, 'i');

	ck_assert_int_eq(put(dc_text("a"), dc_bytes(v, 40000)), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_text("small")), 0);
	ck_assert_int_eq(peekitem(DC_FIRST), 0);
	ASSERT_VALUE_BYTES(&g_item.value, v, 40000);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_int_eq(peekitem(0), 0);
	ASSERT_VALUE_TEXT(&g_item.value, "small");
	ck_assert_uint_eq(len_of(g_cache), 2);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(v);
}
END_TEST

START_TEST(test_contains_pop_pull_and_peek_do_not_count_statistics)
{
	uint64_t hits = 9, misses = 9;

	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	/* A text key: numeric keys would share the queue's key space. */
	ck_assert_int_eq(put(dc_text("one"), dc_int(1)), 0);
	ck_assert_int_eq(push(dc_int(2), NULL, 0, NULL), 0);
	ck_assert_int_eq(has(dc_text("one")), 0);
	ck_assert_int_eq(has(dc_text("five")), DC_NOTFOUND);
	ck_assert_int_eq(peek(NULL, 0), 0);
	ck_assert_int_eq(peekitem(0), 0);
	ck_assert_int_eq(pull(NULL, 0), 0);
	ck_assert_int_eq(pull(NULL, 0), DC_NOTFOUND);
	ck_assert_int_eq(pop(dc_text("one"), 0), 0);
	ck_assert_int_eq(pop(dc_text("one"), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Iteration                                                          */
/* ------------------------------------------------------------------ */

/* iter_ints - iterate with @flags and store INT keys into @out (at most
 * @max); returns how many came. */
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
	/* Done stays done. */
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), DC_NOTFOUND);
	dc_iter_close(it);
	return n;
}

START_TEST(test_iteration_follows_insertion_order_across_pages)
{
	static int64_t got[400];
	int64_t k;

	/* Keys in an order unlike their sort order, more than two pages. */
	for (int i = 0; i < 250; i++) {
		k = (i * 37) % 250;
		ck_assert_int_eq(put(dc_int(k), dc_int(i)), 0);
	}
	ck_assert_uint_eq(iter_ints(0, got, 400), 250);
	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(got[i], (i * 37) % 250);
	ck_assert_uint_eq(iter_ints(DC_REVERSE, got, 400), 250);
	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(got[i], ((249 - i) * 37) % 250);
}
END_TEST

START_TEST(test_iteration_returns_mixed_keys_in_insertion_order)
{
	static const char *const seq[] = { "a", "b", "c", "d", "e", "f" };
	dc_iter *it = NULL;

	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(put(dc_text(seq[i]), dc_int(i)), 0);
	ck_assert_int_eq(
	    put(dc_pickle(PICKLE_TUPLE_A1, sizeof(PICKLE_TUPLE_A1)), dc_int(6)),
	    0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
		ASSERT_VALUE_TEXT(&g_item.key, seq[i]);
	}
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_DATA(&g_item.key, DC_TYPE_PICKLE, PICKLE_TUPLE_A1,
			  sizeof(PICKLE_TUPLE_A1));
	/* A key added now is not returned by this iterator. */
	ck_assert_int_eq(put(dc_text("h"), dc_int(7)), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), DC_NOTFOUND);
	dc_iter_close(it);
}
END_TEST

START_TEST(test_iteration_does_not_return_keys_added_after_open)
{
	static int64_t got[300];
	dc_iter *it = NULL;
	size_t n = 0;

	for (int i = 0; i < 150; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	got[n++] = g_item.key.i;
	for (int i = 150; i < 300; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		ck_assert_uint_lt(n, 300);
		got[n++] = g_item.key.i;
	}
	dc_iter_close(it);
	ck_assert_uint_eq(n, 150);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(got[i], (int64_t)i);
}
END_TEST

START_TEST(test_iteration_skips_keys_deleted_in_later_pages)
{
	dc_iter *it = NULL;
	size_t n = 0;

	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	n++;
	/* No transaction is held: a later page reflects the delete. */
	ck_assert_int_eq(del(dc_int(240)), 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		ck_assert_int_ne(g_item.key.i, 240);
		n++;
	}
	dc_iter_close(it);
	ck_assert_uint_eq(n, 249);
}
END_TEST

START_TEST(test_iteration_includes_expired_keys_unless_alive_is_asked)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };
	static int64_t got[200];
	size_t n;

	reopen(s, 1);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i),
				       i % 2 ? 1e-9 : DC_NO_EXPIRE, NULL, 0),
				 0);
	tu_sleep(0.01);
	ck_assert_uint_eq(len_of(g_cache), 100);
	ck_assert_uint_eq(iter_ints(0, got, 200), 100);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(got[i], i);
	n = iter_ints(DC_ALIVE, got, 200);
	ck_assert_uint_eq(n, 50);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(got[i], 2 * (int64_t)i);
	n = iter_ints(DC_ALIVE | DC_REVERSE, got, 200);
	ck_assert_uint_eq(n, 50);
	ck_assert_int_eq(got[0], 98);
	n = iter_ints(DC_ALIVE | DC_SORTED, got, 200);
	ck_assert_uint_eq(n, 50);
	ck_assert_int_eq(got[49], 98);
}
END_TEST

START_TEST(test_iteration_of_an_empty_cache_ends_at_once)
{
	static const unsigned flags[] = { 0, DC_REVERSE, DC_SORTED,
					  DC_SORTED | DC_REVERSE, DC_ALIVE };
	int64_t got[1];

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		ck_assert_uint_eq(iter_ints(flags[i], got, 1), 0);
}
END_TEST

START_TEST(test_sorted_iteration_orders_numbers_text_then_blobs)
{
	static const int64_t ints[] = { 4, 1, 3, 0, 2 };
	int64_t got[8];
	dc_iter *it = NULL;

	for (size_t i = 0; i < 5; i++)
		ck_assert_int_eq(put(dc_int(ints[i]), dc_int(0)), 0);
	ck_assert_uint_eq(iter_ints(DC_SORTED, got, 8), 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(got[i], i);
	ck_assert_uint_eq(iter_ints(DC_SORTED | DC_REVERSE, got, 8), 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(got[i], 4 - i);

	ck_assert_int_eq(dc_cache_clear(g_cache, 0, NULL), 0);
	/* Python: [1, 1.5, 2, 'a', 'b', b'a', b'\x80\x05N.', (1,)]. */
	ck_assert_int_eq(put(dc_text("b"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(2), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_bytes("a", 1), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_float(1.5), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("a"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(1), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_bytes(PICKLE_NONE, 4), dc_int(0)), 0);
	ck_assert_int_eq(
	    put(dc_pickle(PICKLE_TUPLE_1, sizeof(PICKLE_TUPLE_1)), dc_int(0)),
	    0);
	for (int pass = 0; pass < 2; pass++) {
		int n = 0;

		ck_assert_int_eq(
		    dc_iter_open(g_cache, DC_SORTED | (pass ? DC_REVERSE : 0),
				 NULL, 0, &it),
		    0);
		while (dc_iter_next(it, &g_buf, &g_item) == 0) {
			int at = pass ? 7 - n : n;
			const struct dc_value *k = &g_item.key;

			switch (at) {
			case 0:
				ASSERT_VALUE_INT(k, 1);
				break;
			case 1:
				ASSERT_VALUE_FLOAT(k, 1.5);
				break;
			case 2:
				ASSERT_VALUE_INT(k, 2);
				break;
			case 3:
				ASSERT_VALUE_TEXT(k, "a");
				break;
			case 4:
				ASSERT_VALUE_TEXT(k, "b");
				break;
			case 5:
				ASSERT_VALUE_BYTES(k, "a", 1);
				break;
			case 6:
				ASSERT_VALUE_BYTES(k, PICKLE_NONE, 4);
				break;
			default:
				ASSERT_VALUE_DATA(k, DC_TYPE_PICKLE,
						  PICKLE_TUPLE_1,
						  sizeof(PICKLE_TUPLE_1));
			}
			n++;
		}
		dc_iter_close(it);
		ck_assert_int_eq(n, 8);
	}
}
END_TEST

START_TEST(test_sorted_iteration_crosses_pages_in_key_order)
{
	static int64_t got[300];

	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(put(dc_int((i * 37) % 250), dc_int(i)), 0);
	ck_assert_uint_eq(iter_ints(DC_SORTED, got, 300), 250);
	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(got[i], i);
	ck_assert_uint_eq(iter_ints(DC_SORTED | DC_REVERSE, got, 300), 250);
	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(got[i], 249 - i);
}
END_TEST

/* iter_texts - the TEXT keys an iterator returns, joined with ','. */
static void iter_texts(unsigned flags, const char *prefix, char *out,
		       size_t size)
{
	dc_iter *it = NULL;
	int rc;

	out[0] = '\0';
	ck_assert_int_eq(dc_iter_open(g_cache, flags, prefix,
				      prefix ? strlen(prefix) : 0, &it),
			 0);
	while ((rc = dc_iter_next(it, &g_buf, &g_item)) == 0) {
		size_t len = strlen(out);

		ck_assert_int_eq(g_item.key.type, DC_TYPE_TEXT);
		snprintf(out + len, size - len, "%s%.*s", len ? "," : "",
			 (int)g_item.key.len, (const char *)g_item.key.data);
	}
	ck_assert_int_eq(rc, DC_NOTFOUND);
	dc_iter_close(it);
}

START_TEST(test_prefix_iteration_returns_only_matching_text_keys)
{
	char out[256];

	ck_assert_int_eq(put(dc_text("dir/b"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("dirx"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_bytes("dir/c", 5), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("dir/a"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(5), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("other"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("dir/"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("di"), dc_int(0)), 0);
	iter_texts(0, "dir/", out, sizeof(out));
	ck_assert_str_eq(out, "dir/b,dir/a,dir/");
	iter_texts(DC_REVERSE, "dir/", out, sizeof(out));
	ck_assert_str_eq(out, "dir/,dir/a,dir/b");
	iter_texts(DC_SORTED, "dir/", out, sizeof(out));
	ck_assert_str_eq(out, "dir/,dir/a,dir/b");
	iter_texts(DC_SORTED | DC_REVERSE, "dir", out, sizeof(out));
	ck_assert_str_eq(out, "dirx,dir/b,dir/a,dir/");
	iter_texts(DC_SORTED, "zzz", out, sizeof(out));
	ck_assert_str_eq(out, "");
	/* An empty prefix matches every text key. */
	iter_texts(DC_SORTED, "", out, sizeof(out));
	ck_assert_str_eq(out, "di,dir/,dir/a,dir/b,dirx,other");
}
END_TEST

START_TEST(test_iter_seek_continues_after_the_given_text)
{
	char out[256];
	dc_iter *it = NULL;

	ck_assert_int_eq(put(dc_int(1), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("c"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("a/2"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("b/1"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_text("a/1"), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_bytes("a", 1), dc_int(0)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, DC_SORTED, NULL, 0, &it), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_INT(&g_item.key, 1);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "a/1");
	/* Skip the rest of "a/": the first text key above "a0". */
	ck_assert_int_eq(dc_iter_seek(it, "a0", 2), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "b/1");
	/* Strictly greater: seeking to "c" skips "c". */
	ck_assert_int_eq(dc_iter_seek(it, "b/1", 3), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "c");
	ck_assert_int_eq(dc_iter_seek(it, "c", 1), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_BYTES(&g_item.key, "a", 1);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), DC_NOTFOUND);
	dc_iter_close(it);

	/* Seeking backwards works too. */
	ck_assert_int_eq(dc_iter_open(g_cache, DC_SORTED, "a", 1, &it), 0);
	ck_assert_int_eq(dc_iter_seek(it, "a/1", 3), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_TEXT(&g_item.key, "a/2");
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), DC_NOTFOUND);
	dc_iter_close(it);
	iter_texts(DC_SORTED, "a/", out, sizeof(out));
	ck_assert_str_eq(out, "a/1,a/2");
}
END_TEST

START_TEST(test_iter_seek_without_sorted_is_inval)
{
	dc_iter *it = NULL;

	ck_assert_int_eq(put(dc_text("a"), dc_int(0)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	ck_assert_int_eq(dc_iter_seek(it, "a", 1), DC_INVAL);
	dc_iter_close(it);
}
END_TEST

START_TEST(test_iteration_reports_metadata_but_not_the_value)
{
	char *big = tu_filled(40000, 'm');
	dc_iter *it = NULL;

	ck_assert_int_eq(
	    put_x(dc_int(0), dc_bytes(big, 40000), 100, VP(dc_text("tag0")), 0),
	    0);
	ck_assert_int_eq(put(dc_int(1), dc_text("h\xc3\xa9llo")), 0);
	ck_assert_int_eq(put(dc_int(2), dc_float(2.0)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	memset(&g_item, 0x5a, sizeof(g_item));
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ASSERT_VALUE_INT(&g_item.key, 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES); /* type only */
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.value.len, 0);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 40000);
	ASSERT_VALUE_TEXT(&g_item.tag, "tag0");
	ck_assert(g_item.expire_time > tu_wall() + 90);
	ck_assert(g_item.store_time > tu_wall() - 60);
	memset(&g_item, 0x5a, sizeof(g_item));
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT); /* type only */
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_int_eq(g_item.file_backed, 0);
	ck_assert_uint_eq(g_item.size, 6); /* bytes, not characters */
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_NONE);
	ck_assert(isnan(g_item.expire_time));
	memset(&g_item, 0x5a, sizeof(g_item));
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	ck_assert_uint_eq(g_item.size, 0);
	dc_iter_close(it);
	free(big);
}
END_TEST

START_TEST(test_overwritten_key_keeps_its_position)
{
	int64_t got[4];

	ck_assert_int_eq(put(dc_int(10), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(20), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(30), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(10), dc_text("new")), 0);
	ck_assert_uint_eq(iter_ints(0, got, 4), 3);
	ck_assert_int_eq(got[0], 10);
	ck_assert_int_eq(got[1], 20);
	ck_assert_int_eq(got[2], 30);
	ck_assert_int_eq(peekitem(0), 0);
	ASSERT_VALUE_INT(&g_item.key, 30);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Eviction, culling, expiry, bulk removal, statistics                */
/* ------------------------------------------------------------------ */

START_TEST(test_write_time_cull_removes_expired_rows)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };

	reopen(s, 1);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), 0, NULL, 0), 0);
	for (int i = 10; i < 15; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	ck_assert_uint_eq(len_of(g_cache), 15);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(10))), 0);
	ck_assert_int_eq(put(dc_int(15), dc_int(15)), 0);
	ck_assert_uint_eq(len_of(g_cache), 6);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_write_time_cull_removes_at_most_cull_limit_rows)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };

	reopen(s, 1);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), 0, NULL, 0), 0);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(3))), 0);
	ck_assert_int_eq(put(dc_int(10), dc_int(10)), 0);
	ck_assert_uint_eq(len_of(g_cache), 8);
	/* Oldest expiry first. */
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), DC_NOTFOUND);
	ASSERT_SQL(g_db, "3,4,5,6,7,8,9,10",
		   "SELECT group_concat(key) FROM (SELECT key FROM Cache "
		   "ORDER BY key)");
}
END_TEST

START_TEST(test_set_with_negative_expire_leaves_no_row)
{
	/* The write-time cull of the same transaction sees it expired. */
	ck_assert_int_eq(put_x(dc_int(0), dc_int(0), -1, NULL, 0), 0);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(put_x(dc_int(1), dc_int(1), 0, NULL, 0), 0);
	ck_assert_uint_eq(len_of(g_cache), 1);
}
END_TEST

/* keys_left - the INT keys in sort order, joined with ','. */
static void keys_left(char *out, size_t size)
{
	int64_t got[64];
	size_t n = iter_ints(DC_SORTED, got, 64);

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(out);

		snprintf(out + len, size - len, "%s%" PRId64, i ? "," : "",
			 got[i]);
	}
}

/* Spec §13.1 with the exact sets Python 5.4.0 leaves (1e6-byte values,
 * size_limit 10.1e6, cull_limit 2). */
START_TEST(test_least_recently_stored_eviction_sequence)
{
	struct dc_setting s[] = {
		{ "eviction_policy", dc_text("least-recently-stored") },
		{ "size_limit", dc_int(10100000) },
		{ "cull_limit", dc_int(2) },
	};
	static const char *const expect[] = {
		"2,3,4,5,6,7,8,9,10",
		"4,5,6,7,8,9,10,11",
		"6,7,8,9,10,11,12",
		"8,9,10,11,12,13",
	};
	size_t m = 1000000;
	char *million = tu_filled(4 * m, 'x');
	char out[256];

	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 10);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(get(dc_int(i), 0), 0);
		ASSERT_VALUE_BYTES(&g_item.value, million, m);
	}
	for (int i = 10; i < 20; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 10);
	keys_left(out, sizeof(out));
	ck_assert_str_eq(out, "10,11,12,13,14,15,16,17,18,19");
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 10);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(
		    put(dc_int(10 + i), dc_bytes(million, m * (size_t)(i + 1))),
		    0);
		ck_assert_uint_eq(len_of(g_cache), (uint64_t)(10 - (i + 1)));
		keys_left(out, sizeof(out));
		ck_assert_str_eq(out, expect[i]);
	}
	ck_assert_int_eq(get(dc_int(12), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, million, 3 * m);
	ck_assert_int_eq(get(dc_int(13), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, million, 4 * m);
	ck_assert_int_eq(tu_count_files(g_dir), 6);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(million);
}
END_TEST

START_TEST(test_least_recently_used_eviction_keeps_the_keys_read)
{
	struct dc_setting s[] = {
		{ "eviction_policy", dc_text("least-recently-used") },
		{ "size_limit", dc_int(10100000) },
		{ "cull_limit", dc_int(5) },
	};
	size_t m = 1000000;
	char *million = tu_filled(m, 'x');
	static const int reads[] = { 0, 1, 7, 8, 9 };
	char out[256];

	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 10);
	for (size_t i = 0; i < ARRAY_SIZE(reads); i++)
		ck_assert_int_eq(get(dc_int(reads[i]), 0), 0);
	ck_assert_int_eq(put(dc_int(10), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 6);
	keys_left(out, sizeof(out));
	ck_assert_str_eq(out, "0,1,7,8,9,10");
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(million);
}
END_TEST

START_TEST(test_least_frequently_used_eviction_keeps_frequent_keys)
{
	struct dc_setting s[] = {
		{ "eviction_policy", dc_text("least-frequently-used") },
		{ "size_limit", dc_int(10100000) },
		{ "cull_limit", dc_int(5) },
	};
	size_t m = 1000000;
	char *million = tu_filled(m, 'x');
	static const int keys[] = { 0, 1, 7, 8, 9 };
	char out[256];

	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(million, m)), 0);
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5 - i; j++)
			ck_assert_int_eq(get(dc_int(keys[i]), 0), 0);
	ck_assert_int_eq(put(dc_int(10), dc_bytes(million, m)), 0);
	ck_assert_uint_eq(len_of(g_cache), 6);
	keys_left(out, sizeof(out));
	ck_assert_str_eq(out, "0,1,7,8,9,10");
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(million);
}
END_TEST

START_TEST(test_cull_of_value_files_brings_volume_under_the_limit)
{
	struct dc_setting s[] = {
		{ "cull_limit", dc_int(0) },
		{ "size_limit", dc_int(30 * 32768) },
	};
	char *v = tu_filled(3 * 32768, 'f');
	uint64_t count = 0;
	char out[256];

	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < 45; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(v, 3 * 32768)), 0);
	ck_assert_uint_gt(volume_of(g_cache), 30 * 32768);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, &count), 0);
	ck_assert_uint_le(volume_of(g_cache), 30 * 32768);
	/* Python removes ten at a time, least recently stored first, while
	 * the volume exceeds the limit: 40 go, 40..44 stay. */
	ck_assert_uint_eq(count, 40);
	keys_left(out, sizeof(out));
	ck_assert_str_eq(out, "40,41,42,43,44");
	ck_assert_int_eq(tu_count_files(g_dir), 5);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(v);
}
END_TEST

/* test_cull_of_database_pages - needs auto_vacuum FULL to shrink. */
static void cull_database_pages(int64_t limit)
{
	struct dc_setting s[] = {
		{ "cull_limit", dc_int(0) },
		{ "size_limit", dc_int(limit) },
	};
	int count = (2 * 32768) / 108;

	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < count; i++)
		ck_assert_int_eq(
		    put(dc_int(i), dc_bytes("0123456789012345678901234567890"
					    "1234567890123456789012345678901"
					    "2345678901234567890123456789012"
					    "3456789",
					    100)),
		    0);
	ck_assert_uint_gt(volume_of(g_cache), 2 * 32768);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, NULL), 0);
	ck_assert_uint_le(volume_of(g_cache), 2 * 32768);
}

START_TEST(test_cull_of_database_pages_brings_volume_under_the_limit)
{
	cull_database_pages(2 * 32768);
	ck_assert_uint_gt(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_cull_with_size_limit_zero_empties_the_cache)
{
	cull_database_pages(0);
	ck_assert_uint_eq(len_of(g_cache), 0);
}
END_TEST

START_TEST(test_cull_with_policy_none_keeps_volume_and_reports_zero)
{
	struct dc_setting s[] = {
		{ "eviction_policy", dc_text("none") },
		{ "size_limit", dc_int(2 * 32768) },
		{ "cull_limit", dc_int(0) },
	};
	int count = (2 * 32768) / 108;
	char v[100];
	uint64_t n = 99;

	memset(v, '7', sizeof(v));
	reopen(s, ARRAY_SIZE(s));
	for (int i = 0; i < count; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(v, sizeof(v))), 0);
	/* Expired rows are still removed, but not counted (DiskCache). */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(
		    put_x(dc_int(10000 + i), dc_int(0), 0, NULL, 0), 0);
	ck_assert_uint_gt(volume_of(g_cache), 2 * 32768);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_gt(volume_of(g_cache), 2 * 32768);
	ck_assert_uint_eq(len_of(g_cache), (uint64_t)count);
}
END_TEST

START_TEST(test_expire_at_an_explicit_time_removes_due_keys)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };
	double t0;
	uint64_t n = 0;

	reopen(s, 1);
	t0 = tu_wall();
	for (int i = 1; i <= 100; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), i, NULL, 0), 0);
	ck_assert_uint_eq(len_of(g_cache), 100);
	ck_assert_int_eq(
	    dc_cache_setting_set(g_cache, "cull_limit", VP(dc_int(10))), 0);
	ck_assert_int_eq(dc_cache_expire(g_cache, t0 + 11, 0, &n), 0);
	ck_assert_uint_eq(n, 10);
	ck_assert_uint_eq(len_of(g_cache), 90);
	ck_assert_int_eq(has(dc_int(10)), DC_NOTFOUND);
	ck_assert_int_eq(has(dc_int(11)), 0);
	/* Far in the future: everything with an expiry, in batches. */
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(dc_cache_expire(g_cache, t0 + 1000, 0, &n), 0);
	ck_assert_uint_eq(n, 90);
	ck_assert_uint_eq(len_of(g_cache), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_expire_at_zero_uses_the_current_time)
{
	struct dc_setting s[] = { { "cull_limit", dc_int(0) } };
	char *big = tu_filled(40000, 'e');
	uint64_t n = 0;

	reopen(s, 1);
	for (int i = 0; i < 150; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), 1e-9, NULL, 0), 0);
	ck_assert_int_eq(
	    put_x(dc_int(150), dc_bytes(big, 40000), 1e-9, NULL, 0), 0);
	ck_assert_int_eq(put_x(dc_int(151), dc_int(0), 3600, NULL, 0), 0);
	tu_sleep(0.01);
	ck_assert_int_eq(dc_cache_expire(g_cache, 0, 0, &n), 0);
	ck_assert_uint_eq(n, 151);
	ck_assert_uint_eq(len_of(g_cache), 1);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_evict_removes_only_keys_with_that_tag)
{
	static const char *const colors[] = { "red", "blue", "yellow" };
	uint64_t n = 0;

	for (int i = 0; i < 90; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), DC_NO_EXPIRE,
				       VP(dc_text(colors[i % 3])), 0),
				 0);
	for (int i = 90; i < 95; i++)
		ck_assert_int_eq(
		    put_x(dc_int(i), dc_int(i), DC_NO_EXPIRE, VP(dc_int(7)), 0),
		    0);
	ck_assert_uint_eq(len_of(g_cache), 95);
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_text("red")), 0, &n), 0);
	ck_assert_uint_eq(n, 30);
	ck_assert_uint_eq(len_of(g_cache), 65);
	ck_assert_int_eq(has(dc_int(0)), DC_NOTFOUND);
	ck_assert_int_eq(has(dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_int(7)), 0, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_text("none")), 0, &n),
			 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(len_of(g_cache), 60);
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_evict_works_with_the_tag_index)
{
	struct dc_setting s[] = { { "tag_index", dc_int(1) } };
	uint64_t n = 0;

	reopen(s, 1);
	for (int i = 0; i < 250; i++)
		ck_assert_int_eq(put_x(dc_int(i), dc_int(i), DC_NO_EXPIRE,
				       VP(dc_text(i % 2 ? "odd" : "even")), 0),
				 0);
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_text("odd")), 0, &n), 0);
	ck_assert_uint_eq(n, 125);
	ck_assert_uint_eq(len_of(g_cache), 125);
}
END_TEST

START_TEST(test_clear_removes_every_key_and_value_file)
{
	char *big = tu_filled(40000, 'c');
	int start = count_entries(g_dir);
	uint64_t n = 0;

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	for (int i = 100; i < 105; i++)
		ck_assert_int_eq(put(dc_int(i), dc_bytes(big, 40000)), 0);
	ck_assert_uint_eq(len_of(g_cache), 105);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, &n), 0);
	ck_assert_uint_eq(n, 105);
	ck_assert_uint_eq(len_of(g_cache), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(count_entries(g_dir), start);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, NULL), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_volume_is_pages_plus_value_file_bytes)
{
	char *big = tu_filled(100000, 'v');
	long pages;
	uint64_t v;

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 100000)), 0);
	v = volume_of(g_cache);
	pages = sql_long(g_db, "PRAGMA page_count");
	ck_assert_uint_eq(v, (uint64_t)pages * 4096 + 100000);
	ck_assert_int_eq(del(dc_int(0)), 0);
	ck_assert_uint_eq(volume_of(g_cache),
			  (uint64_t)sql_long(g_db, "PRAGMA page_count") * 4096);
	free(big);
}
END_TEST

START_TEST(test_statistics_sequence)
{
	uint64_t hits = 9, misses = 9;

	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	ck_assert_int_eq(setting_int(g_cache, "statistics"), 1);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(get(dc_int(0), 0), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(get(dc_int(1), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 1, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 100);
	ck_assert_uint_eq(misses, 10);
	ck_assert_int_eq(dc_cache_stats(g_cache, 0, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	ck_assert_int_eq(setting_int(g_cache, "statistics"), 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(get(dc_int(0), 0), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(get(dc_int(1), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_stats(g_cache, 0, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 0);
	ck_assert_uint_eq(misses, 0);
	ASSERT_SQL(g_db, "0|0",
		   "SELECT (SELECT value FROM Settings WHERE key = 'hits'), "
		   "(SELECT value FROM Settings WHERE key = 'misses')");
	TU_ASSERT_CHECK_CLEAN(g_cache);
}
END_TEST

START_TEST(test_statistics_enabled_at_open_persist)
{
	struct dc_setting s[] = { { "statistics", dc_int(1) } };
	uint64_t hits = 0, misses = 0;

	reopen(s, 1);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(get(dc_int(1), 0), DC_NOTFOUND);
	reopen(NULL, 0);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, &hits, &misses), 0);
	ck_assert_uint_eq(hits, 2);
	ck_assert_uint_eq(misses, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_check_fix_repairs_files_sizes_and_metadata)
{
	char *blob = tu_filled(40000, 'a');
	struct dc_value keys[] = {
		dc_int(0),       dc_int(1),        dc_int(1234),
		dc_float(56.78), dc_text("hello"), dc_bytes("world", 5),
		PNONE,
	};
	struct tu_warnings w;
	char *p0, *p1, *moved;
	uint64_t n;
	int pass;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		ck_assert_int_eq(put(keys[i], dc_bytes(blob, 40000)), 0);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	/* Mayhem: a renamed file, a deleted one, wrong sizes and metadata. */
	p0 = value_path(g_dir, "key = 0");
	p1 = value_path(g_dir, "key = 1");
	ck_assert_int_ge(asprintf(&moved, "%s_moved", p0), 0);
	ck_assert_int_eq(rename(p0, moved), 0);
	ck_assert_int_eq(unlink(p1), 0);
	ASSERT_SQL(g_db, "",
		   "UPDATE Cache SET size = 1 WHERE rowid > 4; "
		   "UPDATE Settings SET value = 0 WHERE key IN ('count', "
		   "'size')");
	ck_assert_int_eq(mkdir(tu_path(g_dir, "zz"), 0700), 0);
	ck_assert_int_eq(mkdir(tu_path(g_dir, "zz/yy"), 0700), 0);

	n = tu_check(g_cache, 0, &w);
	ck_assert_int_eq(w.kind[DC_WARN_FILE_MISSING], 2);
	ck_assert_int_eq(w.kind[DC_WARN_FILE_SIZE], 3);
	ck_assert_int_eq(w.kind[DC_WARN_UNKNOWN_FILE], 1);
	ck_assert_int_ge(w.kind[DC_WARN_EMPTY_DIR], 1);
	ck_assert_int_eq(w.kind[DC_WARN_COUNT], 1);
	ck_assert_int_eq(w.kind[DC_WARN_SIZE], 1);
	ck_assert_int_eq(w.kind[DC_WARN_INTEGRITY], 0);
	ck_assert_int_eq(w.kind[DC_WARN_UNSAFE_PATH], 0);
	ck_assert_uint_ge(n, 9);
	/* Checking without fix changed nothing. */
	ck_assert(exists(moved));
	ck_assert_uint_eq(len_of(g_cache), 0);

	tu_check(g_cache, 1, &w);
	ck_assert_int_ge(w.kind[DC_WARN_FILE_MISSING], 2);
	/* Python needs a pass per level to remove nested empty directories;
	 * everything else is repaired by the first. */
	n = tu_check(g_cache, 0, &w);
	ck_assert_msg(n == (uint64_t)w.kind[DC_WARN_EMPTY_DIR], "after fix: %s",
		      w.first);
	for (pass = 0; pass < 3 && tu_check(g_cache, 1, NULL) > 0; pass++)
		;
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert(!exists(moved));
	ck_assert(!exists(tu_path(g_dir, "zz")));
	ck_assert_uint_eq(len_of(g_cache), 5);
	ck_assert_int_eq(setting_int(g_cache, "size"), 200000);
	ASSERT_SQL(g_db, "5|200000", "SELECT COUNT(*), SUM(size) FROM Cache");
	ck_assert_int_eq(get(dc_int(0), 0), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_int(1), 0), DC_NOTFOUND);
	for (size_t i = 2; i < ARRAY_SIZE(keys); i++) {
		ck_assert_int_eq(get(keys[i], 0), 0);
		ASSERT_VALUE_BYTES(&g_item.value, blob, 40000);
	}
	free(moved);
	free(p0);
	free(p1);
	free(blob);
}
END_TEST

START_TEST(test_check_reports_and_fixes_a_corrupted_header)
{
	struct tu_warnings w;
	int fd;

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(put(dc_int(i), dc_int(i)), 0);
	dc_cache_close(g_cache);
	g_cache = NULL;
	/* Bytes 52-53 of the header: the largest root page for
	 * auto-vacuum, which must not be zeroed this way. */
	fd = open(g_db, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\x00\x01", 2, 52), 2);
	close(fd);
	reopen(NULL, 0);
	tu_check(g_cache, 0, &w);
	ck_assert_int_ge(w.kind[DC_WARN_INTEGRITY], 1);
	tu_check(g_cache, 1, &w);
	ck_assert_int_ge(w.kind[DC_WARN_INTEGRITY], 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_uint_eq(len_of(g_cache), 1000);
	ck_assert_int_eq(get(dc_int(999), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 999);
	ASSERT_SQL(g_db, "ok", "PRAGMA integrity_check");
}
END_TEST

START_TEST(test_check_ignores_database_side_files)
{
	char *big = tu_filled(40000, 's');

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	/* cache.db-wal and cache.db-shm exist while the handle is open. */
	ck_assert(exists(tu_path(g_dir, "cache.db-wal")));
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_int_eq(tu_check(g_cache, 1, NULL), 0);
	ck_assert(exists(g_db));
	ck_assert_int_eq(get(dc_int(0), 0), 0);
	free(big);
}
END_TEST

START_TEST(test_check_fix_removes_unknown_files_and_empty_dirs)
{
	struct tu_warnings w;

	ck_assert_int_eq(mkdir(tu_path(g_dir, "ab"), 0700), 0);
	ck_assert_int_eq(mkdir(tu_path(g_dir, "ab/cd"), 0700), 0);
	write_file(tu_path(g_dir, "ab/cd/0123456789abcdef0123456789ab.val"),
		   "x", 1);
	write_file(tu_path(g_dir, "stray"), "x", 1);
	tu_check(g_cache, 0, &w);
	ck_assert_int_eq(w.kind[DC_WARN_UNKNOWN_FILE], 2);
	ck_assert_uint_eq(w.total, 2);
	tu_check(g_cache, 1, &w);
	ck_assert(!exists(tu_path(g_dir, "stray")));
	for (int pass = 0; pass < 3 && tu_check(g_cache, 1, NULL) > 0; pass++)
		;
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert(!exists(tu_path(g_dir, "ab")));
}
END_TEST

/* A cache in g_dir/c with a file next to it, g_dir/outside.val, that a
 * tampered filename column points to. */
static char *unsafe_setup(char **outside)
{
	char *sub, *big = tu_filled(40000, 'o');

	ck_assert_int_ge(asprintf(&sub, "%s/c", g_dir), 0);
	ck_assert_int_ge(asprintf(outside, "%s/outside.val", g_dir), 0);
	dc_cache_close(g_cache);
	g_cache = NULL;
	ck_assert_int_eq(dc_cache_open(sub, NULL, &g_cache), 0);
	write_file(*outside, big, 40000);
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_int(1), dc_bytes(big, 40000)), 0);
	free(big);
	return sub;
}

/* unsafe_expect - key 0's filename leads outside the cache: reads refuse
 * it, check reports it, fix drops the row, and the outside file is never
 * touched. */
static void unsafe_expect(const char *outside)
{
	struct tu_warnings w;

	ck_assert_int_eq(get(dc_int(0), 0), DC_UNSAFE);
	ck_assert_int_eq(get(dc_int(0), DC_FD), DC_UNSAFE);
	tu_check(g_cache, 0, &w);
	ck_assert_int_ge(w.kind[DC_WARN_UNSAFE_PATH], 1);
	tu_check(g_cache, 1, NULL);
	ck_assert_int_eq(has(dc_int(0)), DC_NOTFOUND);
	ck_assert_int_eq(file_size(outside), 40000);
	ck_assert_int_eq(get(dc_int(1), 0), 0);
	for (int pass = 0; pass < 3 && tu_check(g_cache, 1, NULL) > 0; pass++)
		;
	TU_ASSERT_CHECK_CLEAN(g_cache);
	ck_assert_int_eq(file_size(outside), 40000);
}

/* insert_unsafe - a row for @key whose filename is @name. */
static void insert_unsafe(const char *db, int key, const char *name)
{
	ASSERT_SQL(db, "",
		   "INSERT INTO Cache (key, raw, store_time, access_time, "
		   "size, mode, filename) VALUES (%d, 1, 0, 0, 40000, 2, '%s')",
		   key, name);
}

/* unsafe_writes_spare_outside - pop, delete and overwrite of rows with
 * an unsafe filename never unlink what it points to. */
static void unsafe_writes_spare_outside(const char *db, const char *name,
					const char *outside)
{
	int rc;

	insert_unsafe(db, 5, name);
	ck_assert_int_eq(get(dc_int(5), 0), DC_UNSAFE);
	rc = pop(dc_int(5), 0);
	ck_assert_msg(rc == DC_UNSAFE || rc == DC_NOTFOUND, "pop = %d", rc);
	ck_assert_int_eq(file_size(outside), 40000);
	insert_unsafe(db, 6, name);
	del(dc_int(6));
	ck_assert_int_eq(file_size(outside), 40000);
	insert_unsafe(db, 7, name);
	ck_assert_int_eq(put(dc_int(7), dc_int(7)), 0);
	ck_assert_int_eq(file_size(outside), 40000);
	insert_unsafe(db, 8, name);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, NULL), 0);
	ck_assert_int_eq(file_size(outside), 40000);
}

START_TEST(test_filename_with_dotdot_is_unsafe)
{
	char *outside, *sub = unsafe_setup(&outside);
	char *db;

	ck_assert_int_ge(asprintf(&db, "%s/cache.db", sub), 0);
	ASSERT_SQL(
	    db, "",
	    "UPDATE Cache SET filename = '../outside.val' WHERE key = 0");
	unsafe_expect(outside);
	unsafe_writes_spare_outside(db, "ab/../../outside.val", outside);
	free(db);
	free(sub);
	free(outside);
}
END_TEST

START_TEST(test_absolute_filename_is_unsafe)
{
	char *outside, *sub = unsafe_setup(&outside);
	char *db;

	ck_assert_int_ge(asprintf(&db, "%s/cache.db", sub), 0);
	ASSERT_SQL(db, "", "UPDATE Cache SET filename = '%s' WHERE key = 0",
		   outside);
	unsafe_expect(outside);
	unsafe_writes_spare_outside(db, outside, outside);
	free(db);
	free(sub);
	free(outside);
}
END_TEST

START_TEST(test_value_file_replaced_by_a_symlink_is_unsafe)
{
	char *outside, *sub = unsafe_setup(&outside);
	char *path = value_path(sub, "key = 0");

	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(outside, path), 0);
	unsafe_expect(outside);
	free(path);
	free(sub);
	free(outside);
}
END_TEST

START_TEST(test_value_directory_replaced_by_a_symlink_is_unsafe)
{
	char *outside, *sub = unsafe_setup(&outside);
	char *path = value_path(sub, "key = 0");
	char *base = strrchr(path, '/') + 1;
	char *target;

	/* ab/cd -> g_dir/evil, holding a file of the same name. */
	ck_assert_int_eq(mkdir(tu_path(g_dir, "evil"), 0700), 0);
	ck_assert_int_ge(asprintf(&target, "%s/evil/%s", g_dir, base), 0);
	ck_assert_int_eq(rename(path, target), 0);
	base[-1] = '\0';
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(symlink(tu_path(g_dir, "evil"), path), 0);
	ck_assert_int_eq(get(dc_int(0), 0), DC_UNSAFE);
	ck_assert_int_eq(file_size(target), 40000);
	tu_check(g_cache, 1, NULL);
	ck_assert_int_eq(file_size(target), 40000);
	ck_assert_int_eq(file_size(outside), 40000);
	free(target);
	free(path);
	free(sub);
	free(outside);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Transactions                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_nested_begin_commits_only_at_the_outermost)
{
	dc_cache *other = NULL;

	ck_assert_int_eq(dc_cache_open(g_dir, NULL, &other), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_int(2)), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	/* Inside: the thread sees its writes; others do not yet. */
	ck_assert_int_eq(has(dc_text("b")), 0);
	ck_assert_int_eq(dc_cache_contains(other, VP(dc_text("a"))),
			 DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_contains(other, VP(dc_text("b"))),
			 DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert_int_eq(dc_cache_contains(other, VP(dc_text("a"))), 0);
	ck_assert_int_eq(dc_cache_contains(other, VP(dc_text("b"))), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), DC_INVAL);
	dc_cache_close(other);
}
END_TEST

START_TEST(test_rollback_leaves_no_row_and_no_value_file)
{
	char *big = tu_filled(40000, 'r');

	ck_assert_int_eq(put(dc_text("keep"), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_text("small"), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text("large"), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_text("keep"), dc_int(3)), 0);
	ck_assert_int_eq(del(dc_text("keep")), 0);
	ck_assert_int_eq(dc_cache_rollback(g_cache), 0);
	ck_assert_int_eq(has(dc_text("small")), DC_NOTFOUND);
	ck_assert_int_eq(has(dc_text("large")), DC_NOTFOUND);
	ck_assert_uint_eq(len_of(g_cache), 1);
	/* The file of the key overwritten and deleted inside survives. */
	ck_assert_int_eq(get(dc_text("keep"), 0), 0);
	ASSERT_VALUE_BYTES(&g_item.value, big, 40000);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(dc_cache_rollback(g_cache), DC_INVAL);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_rollback_abandons_every_level)
{
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_int(1), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_int(2), dc_int(2)), 0);
	ck_assert_int_eq(dc_cache_rollback(g_cache), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), DC_INVAL);
	ck_assert_uint_eq(len_of(g_cache), 0);
	/* The handle works normally afterwards. */
	ck_assert_int_eq(put(dc_int(3), dc_int(3)), 0);
	ck_assert_uint_eq(len_of(g_cache), 1);
}
END_TEST

START_TEST(test_commit_or_rollback_without_begin_is_inval)
{
	ck_assert_int_eq(dc_cache_commit(g_cache), DC_INVAL);
	ck_assert_int_eq(dc_cache_rollback(g_cache), DC_INVAL);
}
END_TEST

START_TEST(test_commit_unlinks_the_files_overwritten_inside)
{
	char *big = tu_filled(40000, 'o');

	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_int(0), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(put(dc_int(1), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_transaction_blocks_other_writers_until_commit)
{
	struct dc_options o = { 0 };
	dc_cache *other = NULL;

	o.timeout = 0.05;
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &other), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_int(1), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_set(other, VP(dc_int(2)), VP(dc_int(2)),
				      DC_NO_EXPIRE, NULL, 0),
			 DC_TIMEOUT);
	/* Reads go on in WAL mode. */
	ck_assert_uint_eq(len_of(other), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert_int_eq(dc_cache_set(other, VP(dc_int(2)), VP(dc_int(2)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_uint_eq(len_of(g_cache), 2);
	dc_cache_close(other);
}
END_TEST

struct txn_thread {
	dc_cache *cache;
	int rc_begin, rc_set, rc_commit;
};

static void *txn_other_thread(void *arg)
{
	struct txn_thread *t = arg;

	/* Another thread is not part of the first thread's transaction. */
	t->rc_begin = dc_cache_begin(t->cache, DC_RETRY);
	t->rc_set = dc_cache_set(t->cache, VP(dc_int(2)), VP(dc_int(2)),
				 DC_NO_EXPIRE, NULL, 0);
	t->rc_commit = dc_cache_commit(t->cache);
	return NULL;
}

START_TEST(test_transaction_belongs_to_the_calling_thread)
{
	struct txn_thread t = { g_cache, -1, -1, -1 };
	pthread_t th;

	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(put(dc_int(1), dc_int(1)), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, txn_other_thread, &t), 0);
	tu_sleep(0.1);
	/* The other thread waits for our commit. */
	ck_assert_int_eq(has(dc_int(2)), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.rc_begin, 0);
	ck_assert_int_eq(t.rc_set, 0);
	ck_assert_int_eq(t.rc_commit, 0);
	ck_assert_uint_eq(len_of(g_cache), 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A foreign writer holding the database (Python's Timeout)           */
/* ------------------------------------------------------------------ */

/* reopen_with_timeout - the fixture's handle with a short busy timeout,
 * opened before the foreign lock is taken (opening writes settings). */
static void reopen_with_timeout(double timeout)
{
	struct dc_options o = { 0 };

	o.timeout = timeout;
	reopen_opts(&o);
}

START_TEST(test_set_under_a_foreign_lock_times_out_and_removes_its_file)
{
	struct tu_lock l;
	char *big = tu_filled(1 << 20, 'b');
	char path[4096];
	int64_t zero = 0;
	uint64_t n = 99;
	int files;

	reopen_with_timeout(0.1);
	ck_assert_int_eq(put(dc_int(9), dc_int(9)), 0);
	mkstemp_filled(path, sizeof(path), 100, 'm');
	files = tu_count_files(g_dir);
	tu_lock_db(&l, g_db);
	ck_assert_int_eq(put(dc_text("a"), dc_bytes(big, 1 << 20)), DC_TIMEOUT);
	ck_assert_int_eq(tu_count_files(g_dir), files);
	ck_assert_int_eq(add_x(dc_int(0), dc_int(0), DC_NO_EXPIRE), DC_TIMEOUT);
	ck_assert_int_eq(dc_cache_push(g_cache, VP(dc_bytes(big, 1 << 20)),
				       NULL, DC_NO_EXPIRE, NULL, 0, NULL, NULL),
			 DC_TIMEOUT);
	ck_assert_int_eq(tu_count_files(g_dir), files);
	ck_assert_int_eq(dc_cache_set_file(g_cache, VP(dc_int(1)), path,
					   DC_TYPE_BYTES, DC_NO_EXPIRE, NULL,
					   0),
			 DC_TIMEOUT);
	ck_assert_int_eq(file_size(path), 100);
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_int(9)), 5, 0),
			 DC_TIMEOUT);
	ck_assert_int_eq(del(dc_int(9)), DC_TIMEOUT);
	ck_assert_int_eq(incr(dc_int(9), 1, &zero, NULL), DC_TIMEOUT);
	ck_assert_int_eq(pop(dc_int(9), 0), DC_TIMEOUT);
	ck_assert_int_eq(pull(NULL, 0), DC_TIMEOUT);
	ck_assert_int_eq(dc_cache_clear(g_cache, 0, &n), DC_TIMEOUT);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(dc_cache_cull(g_cache, 0, NULL), DC_TIMEOUT);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), DC_TIMEOUT);
	/* Reads need no transaction and proceed (WAL). */
	ck_assert_int_eq(get(dc_int(9), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 9);
	ck_assert_int_eq(has(dc_int(9)), 0);
	ck_assert_uint_eq(len_of(g_cache), 1);
	tu_unlock_db(&l);
	ck_assert_int_eq(get(dc_int(9), 0), 0);
	ASSERT_VALUE_INT(&g_item.value, 9);
	ck_assert_uint_eq(len_of(g_cache), 1);
	/* The caller removes a temporary file it gave up on; what is left
	 * of the temporary area is check(fix)'s business. */
	unlink(path);
	tu_check(g_cache, 1, NULL);
	TU_ASSERT_CHECK_CLEAN(g_cache);
	free(big);
}
END_TEST

START_TEST(test_get_with_statistics_under_a_foreign_lock_times_out)
{
	struct tu_lock l;

	reopen_with_timeout(0.1);
	ck_assert_int_eq(put(dc_int(0), dc_int(0)), 0);
	ck_assert_int_eq(dc_cache_stats(g_cache, 1, 0, NULL, NULL), 0);
	tu_lock_db(&l, g_db);
	ck_assert_int_eq(get(dc_int(0), 0), DC_TIMEOUT);
	/* Metadata only: no statistics, so no transaction. */
	ck_assert_int_eq(get(dc_int(0), DC_NOVALUE), 0);
	tu_unlock_db(&l);
	ck_assert_int_eq(get(dc_int(0), 0), 0);
}
END_TEST

struct retry_thread {
	dc_cache *cache;
	int rc;
	double done;
};

static void *retry_set(void *arg)
{
	struct retry_thread *t = arg;

	t->rc = dc_cache_set(t->cache, VP(dc_int(1)), VP(dc_int(1)),
			     DC_NO_EXPIRE, NULL, DC_RETRY);
	t->done = tu_wall();
	return NULL;
}

START_TEST(test_retry_waits_out_a_foreign_lock)
{
	struct tu_lock l;
	struct retry_thread t = { NULL, -1, 0 };
	pthread_t th;
	double released;

	reopen_with_timeout(0.02);
	t.cache = g_cache;
	tu_lock_db(&l, g_db);
	ck_assert_int_eq(pthread_create(&th, NULL, retry_set, &t), 0);
	tu_sleep(0.3);
	released = tu_wall();
	tu_unlock_db(&l);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(t.rc, 0);
	ck_assert(t.done >= released);
	ck_assert_int_eq(has(dc_int(1)), 0);
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

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc;

	tc = tcase(s, "settings", 30);
	tcase_add_test(tc, test_fresh_cache_reports_every_default_setting);
	tcase_add_test(tc, test_setting_names_lists_every_diskcache_setting);
	tcase_add_test(tc, test_close_of_null_is_harmless);
	tcase_add_test(tc, test_directory_is_reported_as_given);
	tcase_add_test(tc,
		       test_open_time_settings_are_written_for_later_openers);
	tcase_add_test(tc, test_unknown_setting_at_open_is_kept);
	tcase_add_test(tc, test_open_with_bad_eviction_policy_is_inval);
	tcase_add_test(tc, test_open_of_a_garbage_database_is_corrupt);
	tcase_add_test(tc, test_setting_get_of_unknown_name_is_notfound);
	tcase_add_test(tc, test_setting_set_of_unknown_name_is_notfound);
	tcase_add_test(
	    tc, test_setting_set_of_bad_policy_is_inval_and_changes_nothing);
	tcase_add_test(tc, test_setting_set_persists_for_new_handles);
	tcase_add_test(tc, test_setting_get_reloads_another_handles_change);
	tcase_add_test(tc, test_setting_set_min_file_size_changes_later_writes);
	tcase_add_test(tc, test_tag_index_setting_creates_and_drops_the_index);
	tcase_add_test(tc, test_schema_is_the_diskcache_5x_schema);
	tcase_add_test(tc, test_database_is_wal_with_full_auto_vacuum);
	tcase_add_test(tc,
		       test_policy_change_at_open_adds_its_index_and_keeps_old);
	tcase_add_test(tc, test_new_directories_are_0700_and_value_files_0600);
	tcase_add_test(tc, test_dir_mode_option_sets_directory_and_file_modes);
	tcase_add_test(tc, test_strerror_version_and_type_names);
	tcase_add_test(tc, test_open_of_an_uncreatable_directory_is_eacces);
	tcase_add_test(
	    tc, test_value_file_creation_failure_returns_errno_and_no_row);

	tc = tcase(s, "types", 30);
	tcase_add_test(tc, test_inline_values_of_every_native_type_roundtrip);
	tcase_add_test(tc, test_empty_text_and_bytes_roundtrip_inline);
	tcase_add_test(tc, test_nan_value_reads_back_as_none);
	tcase_add_test(
	    tc, test_large_values_go_to_value_files_with_diskcache_modes);
	tcase_add_test(tc, test_text_threshold_counts_code_points);
	tcase_add_test(tc, test_text_value_with_invalid_utf8_is_inval);
	tcase_add_test(tc, test_keys_of_every_native_type_roundtrip);
	tcase_add_test(tc, test_int_one_and_float_one_are_one_key);
	tcase_add_test(tc, test_text_bytes_and_number_keys_are_distinct);
	tcase_add_test(tc, test_pickle_key_and_equal_bytes_key_are_distinct);
	tcase_add_test(tc, test_malformed_keys_are_inval);
	tcase_add_test(tc, test_tags_of_every_type_roundtrip);
	tcase_add_test(tc, test_pickle_tag_is_inval);
	tcase_add_test(tc, test_getsetdel_roundtrip_of_values_then_keys);

	tc = tcase(s, "rw", 30);
	tcase_add_test(tc, test_get_of_missing_key_is_notfound);
	tcase_add_test(tc, test_get_reports_times_expiry_and_tag);
	tcase_add_test(tc, test_overwrite_sequence_removes_old_value_file);
	tcase_add_test(tc, test_expired_key_is_invisible_on_the_fast_path);
	tcase_add_test(tc, test_expired_key_is_invisible_on_the_slow_path);
	tcase_add_test(tc, test_zero_or_negative_expire_gives_an_expired_key);
	tcase_add_test(tc,
		       test_novalue_reports_metadata_without_counting_stats);
	tcase_add_test(tc,
		       test_lru_get_updates_access_time_but_novalue_does_not);
	tcase_add_test(tc, test_lfu_get_counts_accesses_but_novalue_does_not);
	tcase_add_test(tc, test_lrs_get_changes_no_access_metadata);
	tcase_add_test(
	    tc, test_fd_keeps_reading_old_bytes_after_replace_and_delete);
	tcase_add_test(tc, test_fd_of_inline_value_returns_the_value);
	tcase_add_test(tc, test_fd_of_file_backed_text_reads_its_utf8);
	tcase_add_test(tc, test_get_of_vanished_value_file_is_a_miss);
	tcase_add_test(
	    tc, test_pop_of_vanished_value_file_is_notfound_and_drops_row);
	tcase_add_test(tc, test_contains_before_and_after_set);
	tcase_add_test(tc, test_two_handles_see_each_others_writes);
	tcase_add_test(tc, test_touch_sequence);
	tcase_add_test(tc, test_touch_changes_only_the_expiry);
	tcase_add_test(tc, test_add_sequence);
	tcase_add_test(
	    tc, test_add_of_large_value_keeps_the_first_and_no_extra_file);
	tcase_add_test(tc, test_delete_of_present_then_missing_key);
	tcase_add_test(
	    tc, test_delete_of_expired_key_is_notfound_and_keeps_the_row);
	tcase_add_test(tc, test_pop_returns_value_and_metadata);
	tcase_add_test(tc,
		       test_pop_with_fd_keeps_reading_after_the_file_is_gone);
	tcase_add_test(tc,
		       test_deleting_all_file_backed_items_removes_value_dirs);
	tcase_add_test(tc, test_copied_directory_keeps_small_and_large_values);
	tcase_add_test(tc, test_threads_share_one_handle);
	tcase_add_test(tc, test_threads_with_own_handles_on_one_directory);
	tcase_add_test(tc, test_forked_child_keeps_using_the_inherited_handle);

	tc = tcase(s, "files", 30);
	tcase_add_test(tc, test_set_fd_stores_even_small_data_in_a_value_file);
	tcase_add_test(tc, test_set_fd_reads_a_pipe_to_its_end);
	tcase_add_test(tc, test_set_fd_of_an_empty_file_stores_empty_bytes);
	tcase_add_test(tc, test_set_fd_with_add_keeps_the_live_value);
	tcase_add_test(tc, test_set_file_adopts_the_file_without_copying);
	tcase_add_test(tc,
		       test_set_file_as_text_or_pickle_reads_back_that_type);
	tcase_add_test(tc, test_set_file_failure_leaves_the_file_at_its_path);
	tcase_add_test(tc, test_check_fix_removes_only_stale_mkstemp_files);
	tcase_add_test(tc, test_set_file_from_another_filesystem_is_exdev);

	tc = tcase(s, "incr", 30);
	tcase_add_test(
	    tc, test_incr_missing_key_with_default_inserts_default_plus_delta);
	tcase_add_test(tc, test_incr_missing_key_without_default_is_notfound);
	tcase_add_test(tc, test_incr_expired_key_without_default_is_notfound);
	tcase_add_test(
	    tc, test_incr_expired_key_restarts_from_default_and_clears_tag);
	tcase_add_test(tc, test_decr_sequence);
	tcase_add_test(tc, test_incr_of_live_key_keeps_tag_and_expiry);
	tcase_add_test(tc, test_incr_of_float_value_gives_a_float);
	tcase_add_test(tc, test_incr_overflow_is_overflow_and_leaves_the_row);
	tcase_add_test(tc, test_decr_by_int64_min_is_overflow);
	tcase_add_test(tc, test_incr_of_overflowing_default_stores_nothing);
	tcase_add_test(tc,
		       test_incr_of_a_non_number_is_type_and_changes_nothing);
	tcase_add_test(tc, test_lru_incr_then_decr_reads_back_zero);
	tcase_add_test(tc, test_transaction_of_incrs_for_an_average);

	tc = tcase(s, "queue", 30);
	tcase_add_test(tc, test_push_then_pull_is_first_in_first_out);
	tcase_add_test(tc, test_push_keys_follow_diskcache_numbering);
	tcase_add_test(tc, test_push_on_an_empty_front_starts_at_the_middle);
	tcase_add_test(tc,
		       test_push_continues_from_numeric_keys_already_present);
	tcase_add_test(tc, test_push_pull_with_a_prefix);
	tcase_add_test(tc,
		       test_pull_and_peek_at_the_back_are_last_in_first_out);
	tcase_add_test(tc, test_pull_and_peek_report_expiry_and_tag);
	tcase_add_test(tc, test_pull_skips_and_deletes_expired_items);
	tcase_add_test(tc,
		       test_peek_skips_expired_items_and_keeps_the_live_one);
	tcase_add_test(tc, test_push_pull_of_a_large_value);
	tcase_add_test(tc, test_push_peek_of_a_large_value_keeps_its_file);
	tcase_add_test(tc, test_pull_with_fd_returns_a_descriptor);
	tcase_add_test(tc, test_pull_skips_an_item_whose_file_vanished);
	tcase_add_test(tc, test_peekitem_of_an_empty_cache_is_notfound);
	tcase_add_test(
	    tc, test_peekitem_returns_the_last_live_item_deleting_expired);
	tcase_add_test(tc, test_peekitem_returns_file_backed_values);
	tcase_add_test(tc,
		       test_contains_pop_pull_and_peek_do_not_count_statistics);

	tc = tcase(s, "iter", 30);
	tcase_add_test(tc, test_iteration_follows_insertion_order_across_pages);
	tcase_add_test(tc,
		       test_iteration_returns_mixed_keys_in_insertion_order);
	tcase_add_test(tc,
		       test_iteration_does_not_return_keys_added_after_open);
	tcase_add_test(tc, test_iteration_skips_keys_deleted_in_later_pages);
	tcase_add_test(
	    tc, test_iteration_includes_expired_keys_unless_alive_is_asked);
	tcase_add_test(tc, test_iteration_of_an_empty_cache_ends_at_once);
	tcase_add_test(tc,
		       test_sorted_iteration_orders_numbers_text_then_blobs);
	tcase_add_test(tc, test_sorted_iteration_crosses_pages_in_key_order);
	tcase_add_test(tc,
		       test_prefix_iteration_returns_only_matching_text_keys);
	tcase_add_test(tc, test_iter_seek_continues_after_the_given_text);
	tcase_add_test(tc, test_iter_seek_without_sorted_is_inval);
	tcase_add_test(tc, test_iteration_reports_metadata_but_not_the_value);
	tcase_add_test(tc, test_overwritten_key_keeps_its_position);

	tc = tcase(s, "evict", 120);
	tcase_add_test(tc, test_write_time_cull_removes_expired_rows);
	tcase_add_test(tc,
		       test_write_time_cull_removes_at_most_cull_limit_rows);
	tcase_add_test(tc, test_set_with_negative_expire_leaves_no_row);
	tcase_add_test(tc, test_least_recently_stored_eviction_sequence);
	tcase_add_test(tc,
		       test_least_recently_used_eviction_keeps_the_keys_read);
	tcase_add_test(tc,
		       test_least_frequently_used_eviction_keeps_frequent_keys);
	tcase_add_test(tc,
		       test_cull_of_value_files_brings_volume_under_the_limit);
	tcase_add_test(
	    tc, test_cull_of_database_pages_brings_volume_under_the_limit);
	tcase_add_test(tc, test_cull_with_size_limit_zero_empties_the_cache);
	tcase_add_test(
	    tc, test_cull_with_policy_none_keeps_volume_and_reports_zero);
	tcase_add_test(tc, test_expire_at_an_explicit_time_removes_due_keys);
	tcase_add_test(tc, test_expire_at_zero_uses_the_current_time);
	tcase_add_test(tc, test_evict_removes_only_keys_with_that_tag);
	tcase_add_test(tc, test_evict_works_with_the_tag_index);
	tcase_add_test(tc, test_clear_removes_every_key_and_value_file);
	tcase_add_test(tc, test_volume_is_pages_plus_value_file_bytes);
	tcase_add_test(tc, test_statistics_sequence);
	tcase_add_test(tc, test_statistics_enabled_at_open_persist);

	tc = tcase(s, "check", 60);
	tcase_add_test(tc, test_check_fix_repairs_files_sizes_and_metadata);
	tcase_add_test(tc, test_check_reports_and_fixes_a_corrupted_header);
	tcase_add_test(tc, test_check_ignores_database_side_files);
	tcase_add_test(tc, test_check_fix_removes_unknown_files_and_empty_dirs);
	tcase_add_test(tc, test_filename_with_dotdot_is_unsafe);
	tcase_add_test(tc, test_absolute_filename_is_unsafe);
	tcase_add_test(tc, test_value_file_replaced_by_a_symlink_is_unsafe);
	tcase_add_test(tc,
		       test_value_directory_replaced_by_a_symlink_is_unsafe);

	tc = tcase(s, "txn", 30);
	tcase_add_test(tc, test_nested_begin_commits_only_at_the_outermost);
	tcase_add_test(tc, test_rollback_leaves_no_row_and_no_value_file);
	tcase_add_test(tc, test_rollback_abandons_every_level);
	tcase_add_test(tc, test_commit_or_rollback_without_begin_is_inval);
	tcase_add_test(tc, test_commit_unlinks_the_files_overwritten_inside);
	tcase_add_test(tc, test_transaction_blocks_other_writers_until_commit);
	tcase_add_test(tc, test_transaction_belongs_to_the_calling_thread);

	tc = tcase(s, "timeout", 60);
	tcase_add_test(
	    tc, test_set_under_a_foreign_lock_times_out_and_removes_its_file);
	tcase_add_test(tc,
		       test_get_with_statistics_under_a_foreign_lock_times_out);
	tcase_add_test(tc, test_retry_waits_out_a_foreign_lock);
	return s;
}
