/* check_api2.c - value types in metadata reads, rename, set_meta, changes
 * SPDX-License-Identifier: MIT
 *
 * The second round of the public API, driven through dcache.h only:
 *  - DC_NOVALUE, DC_FD and iteration report the stored type (and the
 *    number of an int or float) without the data;
 *  - dc_cache_rename within a shard (rowid kept) and across FanoutCache
 *    shards (the value file moves: same inode), read back by Python;
 *  - dc_cache_set_meta (tag, absolute expire_time), read back by Python;
 *  - dc_cache_changes, moved by our writes and by a Python writer;
 *  - overwrites that leave unchanged expire_time/tag columns alone still
 *    store exactly what was asked.
 * Python DiskCache 5.4.0 (/usr/bin/python3) and the sqlite3 CLI look at
 * the directory as a peer would.  Each test gets a fresh directory (the
 * cache lives in ROOT/cache; Python scripts are written to ROOT).
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
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

Suite *api2_suite(void);

#define PY "/usr/bin/python3"

/* VP - a pointer to a value built in place. */
#define VP(x) ((const struct dc_value[]){ x })

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

static char *g_root;      /* the test's temporary directory */
static char *g_dir;       /* g_root/cache: the cache directory */
static dc_cache *g_cache; /* a handle on g_dir, closed by the teardown */
static struct dc_buf g_buf;
static struct dc_item g_item;

static void remove_test_dir(void)
{
	if (g_root)
		tu_rmtree(g_root);
	free(g_root);
	free(g_dir);
	g_root = NULL;
	g_dir = NULL;
}

static void open_cache(int shards, const struct dc_setting *settings, size_t n)
{
	struct dc_options o = { 0 };

	o.shards = shards;
	o.settings = settings;
	o.nsettings = n;
	dc_cache_close(g_cache);
	g_cache = NULL;
	/* The fixture's plain Cache would make a FanoutCache DC_LAYOUT. */
	if (shards > 0)
		tu_rmtree(g_dir);
	ck_assert_int_eq(dc_cache_open(g_dir, &o, &g_cache), 0);
}

static void setup(void)
{
	static int registered;

	if (!registered) {
		/* A failing assertion ends the test process early. */
		atexit(remove_test_dir);
		registered = 1;
	}
	g_root = tu_mkdtemp();
	ck_assert_int_ge(asprintf(&g_dir, "%s/cache", g_root), 0);
	dc_buf_init(&g_buf);
	memset(&g_item, 0, sizeof(g_item));
	open_cache(DC_SHARDS_PLAIN, NULL, 0);
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
	return dc_cache_get(g_cache, &key, &g_buf, &g_item, flags);
}

static int ren(struct dc_value from, struct dc_value to, unsigned flags)
{
	return dc_cache_rename(g_cache, &from, &to, flags);
}

/* Expire @key now, leaving its row in place (a write with expire <= 0
 * would be culled by the same write's transaction). */
static void expire_now(const char *key)
{
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text(key)),
					   DC_META_EXPIRE_TIME, NULL,
					   tu_wall() - 10, 0),
			 0);
}

static uint64_t changes(void)
{
	uint64_t v = 0;

	ck_assert_int_eq(dc_cache_changes(g_cache, &v), 0);
	return v;
}

/* Run a shell command and return its output, trailing newlines removed
 * (malloc'd).  *status (may be NULL) receives the exit status. */
static char *run_out(int *status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *run_out(int *status, const char *fmt, ...)
{
	char *cmd, *out = NULL;
	size_t len = 0, cap = 0, n;
	va_list ap;
	FILE *p;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(rc, 0);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	for (;;) {
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
	rc = pclose(p);
	if (status)
		*status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
	while (len > 0 && out[len - 1] == '\n')
		len--;
	out[len] = '\0';
	free(cmd);
	return out;
}

/* sql - the sqlite3 CLI's output for @query on @rel (a database path
 * relative to the cache directory).  No '"', '$', '`' or '\' in it. */
static char *sql(const char *rel, const char *query)
{
	return run_out(NULL,
		       "sqlite3 -batch -cmd '.timeout 10000' '%s/%s' \"%s\" "
		       "2>&1",
		       g_dir, rel, query);
}

#define ASSERT_SQL(rel, expect, query)                                         \
	do {                                                                   \
		char *out_ = sql((rel), (query));                              \
		ck_assert_str_eq(out_, (expect));                              \
		free(out_);                                                    \
	} while (0)

static int have_python(void)
{
	if (access(PY, X_OK) == 0 &&
	    tu_run(PY " -c 'import diskcache' 2>/dev/null") == 0)
		return 1;
	fprintf(stderr, "SKIP: python3-diskcache is not installed; "
			"Python checks of check_api2 skipped\n");
	return 0;
}

/* py - run the Python program @code with the cache directory as
 * sys.argv[1] and return its output (stdout and stderr, malloc'd).  The
 * program is written to ROOT, outside the cache directory, so that
 * Python's check() never sees it.  The test fails if Python fails. */
static char *py(const char *code)
{
	char *path, *out;
	FILE *f;
	int status;

	ck_assert_int_ge(asprintf(&path, "%s/t.py", g_root), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("import diskcache, sys, warnings\n"
	      "warnings.simplefilter('ignore')\n"
	      "d = sys.argv[1]\n",
	      f);
	fputs(code, f);
	ck_assert_int_eq(fclose(f), 0);
	out = run_out(&status, PY " '%s' '%s' 2>&1", path, g_dir);
	ck_assert_msg(status == 0, "python failed (%d): %s", status, out);
	free(path);
	return out;
}

#define ASSERT_PY(expect, code)                                                \
	do {                                                                   \
		char *out_ = py(code);                                         \
		ck_assert_str_eq(out_, (expect));                              \
		free(out_);                                                    \
	} while (0)

/* The absolute path of the value file of the row matching the SQL
 * condition @where in the database @rel (malloc'd). */
static char *value_path_where(const char *rel, const char *where)
{
	char *q, *name, *dbdir, *path, *slash;

	ck_assert_int_ge(
	    asprintf(&q, "SELECT filename FROM Cache WHERE %s", where), 0);
	name = sql(rel, q);
	ck_assert_msg(name[0] != '\0', "no value file for %s in %s", where,
		      rel);
	dbdir = strdup(rel);
	slash = strrchr(dbdir, '/');
	if (slash)
		*slash = '\0';
	else
		dbdir[0] = '\0';
	ck_assert_int_ge(asprintf(&path, "%s/%s%s%s", g_dir, dbdir,
				  dbdir[0] ? "/" : "", name),
			 0);
	free(q);
	free(name);
	free(dbdir);
	return path;
}

/* The same for the text key @key. */
static char *value_path(const char *rel, const char *key)
{
	char where[64];

	snprintf(where, sizeof(where), "key = '%s'", key);
	return value_path_where(rel, where);
}

static ino_t inode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_ino;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Two text keys "kN" that a FanoutCache places in different shards. */
static void keys_in_two_shards(char a[16], char b[16], int *sa, int *sb)
{
	*sa = dc_cache_shard_of(g_cache, VP(dc_text("k0")));
	snprintf(a, 16, "k0");
	for (int i = 1; i < 1000; i++) {
		snprintf(b, 16, "k%d", i);
		*sb = dc_cache_shard_of(g_cache, VP(dc_text(b)));
		if (*sb != *sa)
			return;
	}
	ck_abort_msg("no two shards found");
}

/* A text key in shard @shard other than @not. */
static void key_in_shard(int shard, const char * not, char out[16])
{
	for (int i = 1000; i < 5000; i++) {
		snprintf(out, 16, "k%d", i);
		if (strcmp(out, not ) != 0 &&
		    dc_cache_shard_of(g_cache, VP(dc_text(out))) == shard)
			return;
	}
	ck_abort_msg("no key for shard %d", shard);
}

/* ------------------------------------------------------------------ */
/* Value types with DC_NOVALUE, DC_FD and iteration                   */
/* ------------------------------------------------------------------ */

START_TEST(test_novalue_reports_stored_type_and_number)
{
	char *big = tu_filled(40000, 'b');
	static const unsigned char pk[] = { 0x80, 0x05, 0x4e, 0x2e };

	ck_assert_int_eq(put(dc_text("i"), dc_int(-42)), 0);
	ck_assert_int_eq(put(dc_text("f"), dc_float(2.5)), 0);
	ck_assert_int_eq(put(dc_text("t"), dc_text("hello")), 0);
	ck_assert_int_eq(put(dc_text("e"), dc_text("")), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_bytes("\0\1", 2)), 0);
	ck_assert_int_eq(put(dc_text("p"), dc_pickle(pk, sizeof(pk))), 0);
	ck_assert_int_eq(put(dc_text("n"), dc_float(NAN)), 0);
	ck_assert_int_eq(put(dc_text("bt"), dc_textn(big, 40000)), 0);
	ck_assert_int_eq(put(dc_text("bb"), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_text("bp"), dc_pickle(big, 40000)), 0);

	ck_assert_int_eq(get(dc_text("i"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_INT);
	ck_assert_int_eq(g_item.value.i, -42);
	ck_assert_int_eq(get(dc_text("f"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_FLOAT);
	ck_assert(g_item.value.f == 2.5);
	ck_assert_int_eq(get(dc_text("t"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.value.len, 0);
	ck_assert_uint_eq(g_item.size, 5);
	/* An empty string is not an int 0 any more. */
	ck_assert_int_eq(get(dc_text("e"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_uint_eq(g_item.size, 0);
	ck_assert_int_eq(get(dc_text("b"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.size, 2);
	ck_assert_int_eq(get(dc_text("p"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_PICKLE);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.size, sizeof(pk));
	ck_assert_int_eq(get(dc_text("n"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_NONE);
	ck_assert_int_eq(get(dc_text("bt"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.value.len, 0);
	ck_assert_int_eq(g_item.file_backed, 1);
	ck_assert_uint_eq(g_item.size, 40000);
	ck_assert_int_eq(get(dc_text("bb"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES);
	ck_assert_int_eq(get(dc_text("bp"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_PICKLE);
	ck_assert_int_eq(g_item.fd, -1);
	/* Without a buffer too: numbers need none. */
	memset(&g_item, 0, sizeof(g_item));
	ck_assert_int_eq(
	    dc_cache_get(g_cache, VP(dc_text("i")), NULL, &g_item, DC_NOVALUE),
	    0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_INT);
	ck_assert_int_eq(g_item.value.i, -42);
	ck_assert_int_eq(
	    dc_cache_get(g_cache, VP(dc_text("t")), NULL, &g_item, DC_NOVALUE),
	    0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_ptr_null(g_item.value.data);
	free(big);
}
END_TEST

START_TEST(test_fd_reports_type_of_file_backed_values)
{
	char *big = tu_filled(40000, 'x');
	char *got;
	ssize_t n;

	ck_assert_int_eq(put(dc_text("t"), dc_textn(big, 40000)), 0);
	ck_assert_int_eq(put(dc_text("p"), dc_pickle(big, 40000)), 0);
	ck_assert_int_eq(put(dc_text("s"), dc_text("small")), 0);

	ck_assert_int_eq(get(dc_text("t"), DC_FD), 0);
	ck_assert_int_ge(g_item.fd, 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_uint_eq(g_item.value.len, 0);
	ck_assert_uint_eq(g_item.size, 40000);
	got = malloc(40001);
	n = read(g_item.fd, got, 40001);
	ck_assert_int_eq(n, 40000);
	ck_assert_int_eq(memcmp(got, big, 40000), 0);
	close(g_item.fd);

	ck_assert_int_eq(get(dc_text("p"), DC_FD), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_PICKLE);
	close(g_item.fd);

	/* Inline values still come back whole. */
	ck_assert_int_eq(get(dc_text("s"), DC_FD), 0);
	ck_assert_int_eq(g_item.fd, -1);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_uint_eq(g_item.value.len, 5);
	ck_assert_int_eq(memcmp(g_item.value.data, "small", 5), 0);

	/* pop with DC_FD: the type, and a descriptor of the unlinked file. */
	ck_assert_int_eq(
	    dc_cache_pop(g_cache, VP(dc_text("t")), &g_buf, &g_item, DC_FD), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_ptr_null(g_item.value.data);
	ck_assert_int_ge(g_item.fd, 0);
	ck_assert_int_eq(pread(g_item.fd, got, 10, 0), 10);
	close(g_item.fd);
	free(got);
	free(big);
}
END_TEST

START_TEST(test_iteration_reports_stored_type_and_number)
{
	char *big = tu_filled(40000, 'y');
	struct {
		enum dc_type type;
		int64_t i;
		double f;
	} want[] = {
		{ DC_TYPE_INT, 7, 0 },    { DC_TYPE_FLOAT, 0, -1.5 },
		{ DC_TYPE_TEXT, 0, 0 },   { DC_TYPE_BYTES, 0, 0 },
		{ DC_TYPE_BYTES, 0, 0 },  { DC_TYPE_NONE, 0, 0 },
		{ DC_TYPE_PICKLE, 0, 0 }, { DC_TYPE_TEXT, 0, 0 },
	};
	dc_iter *it = NULL;
	int n = 0;

	ck_assert_int_eq(put(dc_int(0), dc_int(7)), 0);
	ck_assert_int_eq(put(dc_int(1), dc_float(-1.5)), 0);
	ck_assert_int_eq(put(dc_int(2), dc_text("abc")), 0);
	ck_assert_int_eq(put(dc_int(3), dc_bytes("", 0)), 0);
	ck_assert_int_eq(put(dc_int(4), dc_bytes(big, 40000)), 0);
	ck_assert_int_eq(put(dc_int(5), dc_float(NAN)), 0);
	if (have_python()) {
		/* A list is pickled by Python: mode PICKLE, inline. */
		free(py("c = diskcache.Cache(d)\nc[6] = [1, 2]\n"
			"c[7] = 'z' * 40000\n"));
	} else {
		ck_assert_int_eq(put(dc_int(6), dc_pickle("\x80\x05N.", 4)), 0);
		ck_assert_int_eq(put(dc_int(7), dc_textn(big, 40000)), 0);
	}
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		ck_assert_int_lt(n, 8);
		ck_assert_int_eq(g_item.key.type, DC_TYPE_INT);
		ck_assert_int_eq(g_item.key.i, n);
		ck_assert_msg(g_item.value.type == want[n].type,
			      "key %d: type %d, want %d", n, g_item.value.type,
			      want[n].type);
		if (want[n].type == DC_TYPE_INT)
			ck_assert_int_eq(g_item.value.i, want[n].i);
		if (want[n].type == DC_TYPE_FLOAT)
			ck_assert(g_item.value.f == want[n].f);
		ck_assert_ptr_null(g_item.value.data);
		ck_assert_uint_eq(g_item.value.len, 0);
		n++;
	}
	ck_assert_int_eq(n, 8);
	dc_iter_close(it);
	free(big);
}
END_TEST

/* Read the next key of @it as a NUL-terminated string (text keys). */
static const char *next_text(dc_iter *it)
{
	static char key[64];
	int rc = dc_iter_next(it, &g_buf, &g_item);

	if (rc == DC_NOTFOUND)
		return "(end)";
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(g_item.key.type, DC_TYPE_TEXT);
	ck_assert_uint_lt(g_item.key.len, sizeof(key));
	memcpy(key, g_item.key.data, g_item.key.len);
	key[g_item.key.len] = '\0';
	return key;
}

START_TEST(test_seek_accepts_a_bound_that_is_not_utf8)
{
	static const char *const keys[] = { "a",          "d/a", "d/b/x",
					    "d/\xc3\xa9", "dz",  "e" };
	dc_iter *it = NULL;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_int_eq(put(dc_text(keys[i]), dc_int((int64_t)i)), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, DC_SORTED, NULL, 0, &it), 0);
	ck_assert_str_eq(next_text(it), "a");
	/* Past everything below "d/", the way dcachefs skips a directory. */
	ck_assert_int_eq(dc_iter_seek(it, "d/\xff", 3), 0);
	ck_assert_str_eq(next_text(it), "dz");
	ck_assert_str_eq(next_text(it), "e");
	ck_assert_str_eq(next_text(it), "(end)");
	dc_iter_close(it);
	ck_assert_int_eq(
	    dc_iter_open(g_cache, DC_SORTED | DC_REVERSE, "d/", 2, &it), 0);
	ck_assert_str_eq(next_text(it), "d/\xc3\xa9");
	ck_assert_int_eq(dc_iter_seek(it, "d/b", 3), 0);
	ck_assert_str_eq(next_text(it), "d/a");
	ck_assert_str_eq(next_text(it), "(end)");
	dc_iter_close(it);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Rename within one shard                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_rename_keeps_value_metadata_and_rowid)
{
	static const struct dc_setting lfu[] = {
		{ "eviction_policy",
		  { DC_TYPE_TEXT, 0, 0, "least-frequently-used", 21 } },
	};
	struct dc_item before;
	char *rows_before, *rows_after;
	dc_iter *it = NULL;
	const char *order[3] = { "a", "z", "c" };
	int n = 0;

	open_cache(DC_SHARDS_PLAIN, lfu, 1);
	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(
	    put_x(dc_text("b"), dc_text("bee"), 3600, VP(dc_text("tg"))), 0);
	ck_assert_int_eq(put(dc_text("c"), dc_int(3)), 0);
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ck_assert_int_eq(get(dc_text("b"), 0), 0); /* access_count 2 */
	ck_assert_int_eq(get(dc_text("b"), DC_NOVALUE), 0);
	before = g_item;
	rows_before = sql("cache.db",
			  "SELECT rowid, raw, store_time, expire_time, "
			  "access_time, access_count, quote(tag), size, mode, "
			  "quote(filename), quote(value) FROM Cache WHERE key "
			  "= 'b'");

	ck_assert_int_eq(ren(dc_text("b"), dc_text("z"), 0), 0);
	ck_assert_int_eq(get(dc_text("b"), DC_NOVALUE), DC_NOTFOUND);
	rows_after = sql("cache.db",
			 "SELECT rowid, raw, store_time, expire_time, "
			 "access_time, access_count, quote(tag), size, mode, "
			 "quote(filename), quote(value) FROM Cache WHERE key = "
			 "'z'");
	/* Every column but the key, rowid included, is what it was. */
	ck_assert_str_eq(rows_after, rows_before);
	ck_assert_int_eq(get(dc_text("z"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.access_count, 2);
	ck_assert(g_item.store_time == before.store_time);
	ck_assert(g_item.expire_time == before.expire_time);
	/* Insertion order: z stands where b stood. */
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		ck_assert_int_lt(n, 3);
		ck_assert_int_eq(g_item.key.type, DC_TYPE_TEXT);
		ck_assert_uint_eq(g_item.key.len, 1);
		ck_assert_int_eq(((const char *)g_item.key.data)[0],
				 order[n][0]);
		n++;
	}
	ck_assert_int_eq(n, 3);
	dc_iter_close(it);
	ASSERT_SQL("cache.db", "3",
		   "SELECT value FROM Settings WHERE key = "
		   "'count'");
	if (have_python())
		ASSERT_PY("bee tg True False 3",
			  "c = diskcache.Cache(d)\n"
			  "v, e, t = c.get('z', expire_time=True, tag=True)\n"
			  "print(v, t, e is not None, 'b' in c, len(c))\n");
	free(rows_before);
	free(rows_after);
}
END_TEST

START_TEST(test_rename_of_file_backed_value_keeps_its_file)
{
	char *big = tu_filled(40000, 'f');
	char *p1, *p2;
	ino_t ino;

	ck_assert_int_eq(put(dc_text("a"), dc_bytes(big, 40000)), 0);
	p1 = value_path("cache.db", "a");
	ino = inode_of(p1);
	ck_assert_int_eq(ren(dc_text("a"), dc_int(5), 0), 0);
	ASSERT_SQL("cache.db", "", "SELECT rowid FROM Cache WHERE key = 'a'");
	p2 = value_path_where("cache.db", "key = 5");
	ck_assert_str_eq(p1, p2);
	ck_assert(inode_of(p2) == ino);
	ck_assert_int_eq(get(dc_int(5), 0), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES);
	ck_assert_uint_eq(g_item.value.len, 40000);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	if (have_python())
		ASSERT_PY("40000 False 0",
			  "c = diskcache.Cache(d)\n"
			  "print(len(c[5]), 'a' in c, len(c.check()))\n");
	free(p1);
	free(p2);
	free(big);
}
END_TEST

START_TEST(test_rename_onto_existing_key_replaces_it_and_cleans_its_file)
{
	char *big = tu_filled(40000, 'o');
	char *old;

	ck_assert_int_eq(put(dc_text("src"), dc_text("mine")), 0);
	ck_assert_int_eq(put(dc_text("dst"), dc_bytes(big, 40000)), 0);
	old = value_path("cache.db", "dst");
	ck_assert(exists(old));
	ck_assert_int_eq(ren(dc_text("src"), dc_text("dst"), 0), 0);
	ck_assert(!exists(old));
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(get(dc_text("dst"), 0), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_TEXT);
	ck_assert_uint_eq(g_item.value.len, 4);
	ck_assert_int_eq(get(dc_text("src"), 0), DC_NOTFOUND);
	ASSERT_SQL("cache.db", "1|0", /* inline values have size 0 */
		   "SELECT (SELECT value FROM Settings WHERE key = 'count'), "
		   "(SELECT value FROM Settings WHERE key = 'size')");
	if (have_python())
		ASSERT_PY("mine 1 0", "c = diskcache.Cache(d)\n"
				      "print(c['dst'], len(c), "
				      "len(c.check()))\n");
	free(old);
	free(big);
}
END_TEST

START_TEST(test_rename_add_onto_live_key_is_exists_and_changes_nothing)
{
	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_int(2)), 0);
	ck_assert_int_eq(ren(dc_text("a"), dc_text("b"), DC_ADD), DC_EXISTS);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ck_assert_int_eq(g_item.value.i, 1);
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ck_assert_int_eq(g_item.value.i, 2);
	/* Onto itself: DC_EXISTS with DC_ADD, else a no-op. */
	ck_assert_int_eq(ren(dc_text("a"), dc_text("a"), DC_ADD), DC_EXISTS);
	ck_assert_int_eq(ren(dc_text("a"), dc_text("a"), 0), 0);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ck_assert_int_eq(g_item.value.i, 1);
	ASSERT_SQL("cache.db", "a|1\nb|2",
		   "SELECT key, value FROM Cache ORDER BY rowid");
}
END_TEST

START_TEST(test_rename_add_onto_expired_key_replaces_it)
{
	char *big = tu_filled(40000, 'e');
	char *old;

	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text("b"), dc_bytes(big, 40000)), 0);
	expire_now("b");
	old = value_path("cache.db", "b");
	ck_assert_int_eq(ren(dc_text("a"), dc_text("b"), DC_ADD), 0);
	ck_assert(!exists(old));
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ck_assert_int_eq(g_item.value.i, 1);
	ck_assert(isnan(g_item.expire_time));
	ASSERT_SQL("cache.db", "b", "SELECT key FROM Cache");
	free(old);
	free(big);
}
END_TEST

START_TEST(test_rename_of_missing_or_expired_key_is_notfound)
{
	ck_assert_int_eq(ren(dc_text("nope"), dc_text("x"), 0), DC_NOTFOUND);
	ck_assert_int_eq(put(dc_text("old"), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text("x"), dc_int(2)), 0);
	expire_now("old");
	ck_assert_int_eq(ren(dc_text("old"), dc_text("x"), 0), DC_NOTFOUND);
	/* The expired row is left as it is, the target too. */
	ASSERT_SQL("cache.db", "old|1\nx|2",
		   "SELECT key, value FROM Cache ORDER BY rowid");
	ck_assert_int_eq(ren(dc_text("nope"), dc_text("x"), 0), DC_NOTFOUND);
	/* A malformed key. */
	ck_assert_int_eq(dc_cache_rename(g_cache, VP(dc_text("x")),
					 VP(dc_textn("\xff", 1)), 0),
			 DC_INVAL);
	ck_assert_int_eq(
	    dc_cache_rename(NULL, VP(dc_text("x")), VP(dc_text("y")), 0),
	    DC_INVAL);
}
END_TEST

START_TEST(test_rename_is_part_of_a_caller_transaction)
{
	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_begin(g_cache, 0), 0);
	ck_assert_int_eq(ren(dc_text("a"), dc_text("b"), 0), 0);
	ck_assert_int_eq(get(dc_text("b"), 0), 0);
	ck_assert_int_eq(dc_cache_rollback(g_cache), 0);
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ck_assert_int_eq(get(dc_text("b"), 0), DC_NOTFOUND);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Rename across FanoutCache shards                                   */
/* ------------------------------------------------------------------ */

START_TEST(test_rename_across_shards_moves_the_file_and_python_reads_it)
{
	char *big = tu_filled(40000, 'm');
	char a[16], b[16], dba[32], dbb[32], *pa, *pb, *cnt;
	int sa, sb;
	ino_t ino;
	double exp_before;

	open_cache(8, NULL, 0);
	keys_in_two_shards(a, b, &sa, &sb);
	snprintf(dba, sizeof(dba), "%03d/cache.db", sa);
	snprintf(dbb, sizeof(dbb), "%03d/cache.db", sb);
	ck_assert_int_eq(
	    put_x(dc_text(a), dc_bytes(big, 40000), 3600, VP(dc_int(77))), 0);
	ck_assert_int_eq(get(dc_text(a), DC_NOVALUE), 0);
	exp_before = g_item.expire_time;
	pa = value_path(dba, a);
	ino = inode_of(pa);

	ck_assert_int_eq(ren(dc_text(a), dc_text(b), 0), 0);
	ck_assert(!exists(pa));
	pb = value_path(dbb, b);
	ck_assert(inode_of(pb) == ino);
	/* In the target shard's own directory. */
	ck_assert_int_eq(strncmp(pb, g_dir, strlen(g_dir)), 0);
	ck_assert_int_eq(atoi(pb + strlen(g_dir) + 1), sb);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(get(dc_text(b), 0), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_BYTES);
	ck_assert_int_eq(memcmp(g_item.value.data, big, 40000), 0);
	ck_assert(g_item.expire_time == exp_before);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_INT);
	ck_assert_int_eq(g_item.tag.i, 77);
	ck_assert_int_eq(get(dc_text(a), 0), DC_NOTFOUND);
	/* Each shard's count and size triggers ran. */
	cnt = sql(dba, "SELECT value FROM Settings WHERE key = 'count'");
	ck_assert_str_eq(cnt, "0");
	free(cnt);
	ASSERT_SQL(dbb, "1|40000",
		   "SELECT (SELECT value FROM Settings WHERE key = 'count'), "
		   "(SELECT value FROM Settings WHERE key = 'size')");
	if (have_python()) {
		char code[512];

		snprintf(code, sizeof(code),
			 "c = diskcache.FanoutCache(d, shards=8)\n"
			 "v, e, t = c.get('%s', expire_time=True, tag=True)\n"
			 "print(len(v), t, e > 0, '%s' in c, len(c), "
			 "len(c.check()))\n",
			 b, a);
		ASSERT_PY("40000 77 True False 1 0", code);
	}
	free(pa);
	free(pb);
	free(big);
}
END_TEST

START_TEST(test_rename_across_shards_keeps_inline_values_and_metadata)
{
	char a[16], b[16], dba[32], dbb[32], *before, *after;
	int sa, sb;

	open_cache(8, NULL, 0);
	keys_in_two_shards(a, b, &sa, &sb);
	snprintf(dba, sizeof(dba), "%03d/cache.db", sa);
	snprintf(dbb, sizeof(dbb), "%03d/cache.db", sb);
	ck_assert_int_eq(
	    put_x(dc_text(a), dc_float(1.25), 100, VP(dc_text("tag"))), 0);
	before = sql(dba, "SELECT raw, store_time, expire_time, access_time, "
			  "access_count, quote(tag), size, mode, "
			  "quote(filename), quote(value) FROM Cache");
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), 0), 0);
	after = sql(dbb, "SELECT raw, store_time, expire_time, access_time, "
			 "access_count, quote(tag), size, mode, "
			 "quote(filename), quote(value) FROM Cache");
	ck_assert_str_eq(after, before);
	ASSERT_SQL(dba, "", "SELECT * FROM Cache");
	ck_assert_int_eq(get(dc_text(b), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_FLOAT);
	ck_assert(g_item.value.f == 1.25);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_rename_across_shards_replaces_target_and_honours_add)
{
	char *big = tu_filled(40000, 'r');
	char a[16], b[16], dbb[32], *pb;
	int sa, sb;

	open_cache(8, NULL, 0);
	keys_in_two_shards(a, b, &sa, &sb);
	snprintf(dbb, sizeof(dbb), "%03d/cache.db", sb);
	ck_assert_int_eq(put(dc_text(a), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text(b), dc_bytes(big, 40000)), 0);
	pb = value_path(dbb, b);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), DC_ADD), DC_EXISTS);
	ck_assert(exists(pb));
	ck_assert_int_eq(get(dc_text(a), 0), 0);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), 0), 0);
	ck_assert(!exists(pb));
	ck_assert_int_eq(tu_count_files(g_dir), 0);
	ck_assert_int_eq(get(dc_text(b), 0), 0);
	ck_assert_int_eq(g_item.value.type, DC_TYPE_INT);
	ck_assert_int_eq(g_item.value.i, 1);
	ck_assert_int_eq(get(dc_text(a), 0), DC_NOTFOUND);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), 0), DC_NOTFOUND);
	if (have_python())
		ASSERT_PY("1 0", "c = diskcache.FanoutCache(d, shards=8)\n"
				 "print(len(c), len(c.check()))\n");
	free(pb);
	free(big);
}
END_TEST

START_TEST(test_rename_across_shards_rolls_back_with_the_caller)
{
	char *big = tu_filled(40000, 'c');
	char a[16], b[16], dba[32], *pa, *pa2;
	int sa, sb;
	ino_t ino;

	open_cache(8, NULL, 0);
	keys_in_two_shards(a, b, &sa, &sb);
	snprintf(dba, sizeof(dba), "%03d/cache.db", sa);
	ck_assert_int_eq(put(dc_text(a), dc_bytes(big, 40000)), 0);
	pa = value_path(dba, a);
	ino = inode_of(pa);
	ck_assert_int_eq(dc_cache_begin(g_cache, DC_RETRY), 0);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), DC_RETRY), 0);
	ck_assert_int_eq(get(dc_text(b), 0), 0);
	ck_assert_uint_eq(g_item.value.len, 40000);
	ck_assert_int_eq(dc_cache_rollback(g_cache), 0);
	/* As before: the old name, its file, and no second link. */
	pa2 = value_path(dba, a);
	ck_assert_str_eq(pa2, pa);
	ck_assert(inode_of(pa) == ino);
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(get(dc_text(b), 0), DC_NOTFOUND);
	ck_assert_int_eq(get(dc_text(a), 0), 0);
	ck_assert_uint_eq(g_item.value.len, 40000);
	/* And committed through the caller's transaction. */
	ck_assert_int_eq(dc_cache_begin(g_cache, DC_RETRY), 0);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), DC_RETRY), 0);
	ck_assert_int_eq(dc_cache_commit(g_cache), 0);
	ck_assert(!exists(pa));
	ck_assert_int_eq(tu_count_files(g_dir), 1);
	ck_assert_int_eq(get(dc_text(b), 0), 0);
	ck_assert_uint_eq(g_item.value.len, 40000);
	free(pa);
	free(pa2);
	free(big);
}
END_TEST

START_TEST(test_rename_across_shards_of_unsafe_filename_is_refused)
{
	char a[16], b[16], dba[32], *out;
	int sa, sb;

	open_cache(8, NULL, 0);
	keys_in_two_shards(a, b, &sa, &sb);
	snprintf(dba, sizeof(dba), "%03d/cache.db", sa);
	ck_assert_int_eq(put(dc_text(a), dc_bytes("x", 1)), 0);
	/* A hostile peer points the row at a file outside the cache. */
	out = sql(dba, "UPDATE Cache SET mode = 2, filename = '../../x', "
		       "value = NULL");
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(ren(dc_text(a), dc_text(b), 0), DC_UNSAFE);
	ASSERT_SQL(dba, "../../x", "SELECT filename FROM Cache");
}
END_TEST

struct mover {
	dc_cache *cache;
	char from[16], to[16];
	int rounds, failures;
};

static void *mover_main(void *arg)
{
	struct mover *m = arg;

	for (int i = 0; i < m->rounds; i++) {
		const char *x = (i & 1) ? m->to : m->from;
		const char *y = (i & 1) ? m->from : m->to;

		if (dc_cache_rename(m->cache, VP(dc_text(x)), VP(dc_text(y)),
				    DC_RETRY))
			m->failures++;
	}
	return NULL;
}

START_TEST(test_opposite_renames_across_shards_do_not_deadlock)
{
	struct mover m1 = { 0 }, m2 = { 0 };
	pthread_t t1, t2;
	int sa, sb;
	double t0 = tu_wall();

	open_cache(4, NULL, 0);
	keys_in_two_shards(m1.from, m1.to, &sa, &sb);
	/* The second mover goes from shard sb to shard sa. */
	key_in_shard(sb, m1.to, m2.from);
	key_in_shard(sa, m1.from, m2.to);
	ck_assert_int_eq(put(dc_text(m1.from), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text(m2.from), dc_int(2)), 0);
	m1.cache = m2.cache = g_cache;
	m1.rounds = m2.rounds = 60;
	ck_assert_int_eq(pthread_create(&t1, NULL, mover_main, &m1), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, mover_main, &m2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	ck_assert_int_eq(m1.failures, 0);
	ck_assert_int_eq(m2.failures, 0);
	/* An even number of moves: back where they started. */
	ck_assert_int_eq(get(dc_text(m1.from), 0), 0);
	ck_assert_int_eq(g_item.value.i, 1);
	ck_assert_int_eq(get(dc_text(m2.from), 0), 0);
	ck_assert_int_eq(g_item.value.i, 2);
	ck_assert_msg(tu_wall() - t0 < 120, "took %.0f s", tu_wall() - t0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* set_meta                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_set_meta_changes_tag_only)
{
	char *big = tu_filled(40000, 't');
	char *p1, *p2, *before, *after;
	uint64_t n = 0;

	ck_assert_int_eq(
	    put_x(dc_text("k"), dc_bytes(big, 40000), 3600, VP(dc_text("old"))),
	    0);
	p1 = value_path("cache.db", "k");
	before = sql("cache.db", "SELECT rowid, store_time, expire_time, "
				 "access_time, access_count, size, mode, "
				 "filename FROM Cache");
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_TAG, VP(dc_bytes("nb", 2)),
					   0.0, 0),
			 0);
	after = sql("cache.db", "SELECT rowid, store_time, expire_time, "
				"access_time, access_count, size, mode, "
				"filename FROM Cache");
	ck_assert_str_eq(after, before);
	p2 = value_path("cache.db", "k");
	ck_assert_str_eq(p1, p2);
	ASSERT_SQL("cache.db", "X'6E62'", "SELECT quote(tag) FROM Cache");
	ck_assert_int_eq(get(dc_text("k"), DC_NOVALUE), 0);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_BYTES);
	ck_assert_uint_eq(g_item.tag.len, 2);
	/* evict() finds it by its new tag. */
	ck_assert_int_eq(dc_cache_evict(g_cache, VP(dc_text("old")), 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* No tag. */
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_TAG, NULL, 0.0, 0),
			 0);
	ASSERT_SQL("cache.db", "NULL", "SELECT quote(tag) FROM Cache");
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_TAG, VP(dc_int(9)), 0.0, 0),
			 0);
	if (have_python())
		ASSERT_PY("40000 9 True",
			  "c = diskcache.Cache(d)\n"
			  "v, t = c.get('k', tag=True)\n"
			  "print(len(v), t, c.evict(9) == 1)\n");
	free(p1);
	free(p2);
	free(before);
	free(after);
	free(big);
}
END_TEST

START_TEST(test_set_meta_sets_absolute_expire_time)
{
	double when = floor(tu_wall()) + 1000.5;
	char *out;

	ck_assert_int_eq(
	    put_x(dc_text("k"), dc_int(1), DC_NO_EXPIRE, VP(dc_text("keep"))),
	    0);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_EXPIRE_TIME, NULL, when, 0),
			 0);
	ck_assert_int_eq(get(dc_text("k"), DC_NOVALUE), 0);
	ck_assert(g_item.expire_time == when);
	ck_assert_int_eq(g_item.tag.type, DC_TYPE_TEXT); /* untouched */
	if (have_python()) {
		out = py("c = diskcache.Cache(d)\n"
			 "v, e = c.get('k', expire_time=True)\n"
			 "print(v, repr(e))\n");
		ck_assert_int_eq(strncmp(out, "1 ", 2), 0);
		ck_assert(strtod(out + 2, NULL) == when);
		free(out);
	}
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_EXPIRE_TIME, NULL,
					   DC_NO_EXPIRE, 0),
			 0);
	ASSERT_SQL("cache.db", "NULL", "SELECT quote(expire_time) FROM Cache");
	/* Both at once. */
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_TAG | DC_META_EXPIRE_TIME,
					   VP(dc_float(0.5)), when, 0),
			 0);
	ASSERT_SQL("cache.db", "0.5|1",
		   "SELECT tag, expire_time IS NOT NULL "
		   "FROM Cache");
	/* A time in the past expires the key at once. */
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_EXPIRE_TIME, NULL,
					   tu_wall() - 10, 0),
			 0);
	ck_assert_int_eq(get(dc_text("k"), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_EXPIRE_TIME, NULL, when, 0),
			 DC_NOTFOUND);
	if (have_python())
		ASSERT_PY("False 1", "c = diskcache.Cache(d)\n"
				     "print('k' in c, len(c))\n");
}
END_TEST

START_TEST(test_set_meta_rejects_bad_arguments)
{
	ck_assert_int_eq(put(dc_text("k"), dc_int(1)), 0);
	ck_assert_int_eq(
	    dc_cache_set_meta(g_cache, VP(dc_text("k")), 0, NULL, 0.0, 0),
	    DC_INVAL);
	ck_assert_int_eq(
	    dc_cache_set_meta(g_cache, VP(dc_text("k")), 1u << 5, NULL, 0.0, 0),
	    DC_INVAL);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_TAG, VP(dc_pickle("x", 1)),
					   0.0, 0),
			 DC_INVAL);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("k")),
					   DC_META_EXPIRE_TIME, NULL, INFINITY,
					   0),
			 DC_INVAL);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("none")),
					   DC_META_TAG, NULL, 0.0, 0),
			 DC_NOTFOUND);
	/* Without DC_META_TAG the tag argument is not even looked at. */
	ck_assert_int_eq(
	    dc_cache_set_meta(g_cache, VP(dc_text("k")), DC_META_EXPIRE_TIME,
			      VP(dc_pickle("x", 1)), DC_NO_EXPIRE, 0),
	    0);
	ASSERT_SQL("cache.db", "k|1|NULL|NULL",
		   "SELECT key, value, quote(tag), quote(expire_time) FROM "
		   "Cache");
}
END_TEST

START_TEST(test_set_meta_on_fanout_routes_to_the_key_shard)
{
	char db[32];

	open_cache(8, NULL, 0);
	snprintf(db, sizeof(db), "%03d/cache.db",
		 dc_cache_shard_of(g_cache, VP(dc_text("fk"))));
	ck_assert_int_eq(put(dc_text("fk"), dc_text("v")), 0);
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("fk")),
					   DC_META_TAG, VP(dc_text("T")), 0.0,
					   DC_RETRY),
			 0);
	ASSERT_SQL(db, "fk|T", "SELECT key, tag FROM Cache");
	if (have_python())
		ASSERT_PY("v T", "c = diskcache.FanoutCache(d, shards=8)\n"
				 "v, t = c.get('fk', tag=True)\n"
				 "print(v, t)\n");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Change counter                                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_changes_moves_after_our_writes_only)
{
	uint64_t c0, c1, c2;
	dc_iter *it = NULL;

	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	c0 = changes();
	ck_assert_uint_eq(changes(), c0);
	/* Reads write nothing (statistics are off). */
	ck_assert_int_eq(get(dc_text("a"), 0), 0);
	ck_assert_int_eq(get(dc_text("zz"), 0), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_contains(g_cache, VP(dc_text("a"))), 0);
	ck_assert_int_eq(dc_iter_open(g_cache, 0, NULL, 0, &it), 0);
	ck_assert_int_eq(dc_iter_next(it, &g_buf, &g_item), 0);
	dc_iter_close(it);
	ck_assert_uint_eq(changes(), c0);
	/* A failed write changes nothing either. */
	ck_assert_int_eq(dc_cache_add(g_cache, VP(dc_text("a")), VP(dc_int(5)),
				      DC_NO_EXPIRE, NULL, 0),
			 DC_EXISTS);
	ck_assert_int_eq(dc_cache_delete(g_cache, VP(dc_text("zz")), 0),
			 DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_touch(g_cache, VP(dc_text("zz")), 10, 0),
			 DC_NOTFOUND);
	ck_assert_int_eq(ren(dc_text("zz"), dc_text("yy"), 0), DC_NOTFOUND);
	c1 = changes();
	ck_assert_uint_eq(c1, c0);
	ck_assert_int_eq(put(dc_text("b"), dc_int(2)), 0);
	c2 = changes();
	ck_assert_uint_ne(c2, c1);
	ck_assert_int_eq(dc_cache_delete(g_cache, VP(dc_text("b")), 0), 0);
	ck_assert_uint_ne(changes(), c2);
	c2 = changes();
	ck_assert_int_eq(ren(dc_text("a"), dc_text("c"), 0), 0);
	ck_assert_uint_ne(changes(), c2);
	c2 = changes();
	ck_assert_int_eq(dc_cache_set_meta(g_cache, VP(dc_text("c")),
					   DC_META_TAG, VP(dc_int(1)), 0.0, 0),
			 0);
	ck_assert_uint_ne(changes(), c2);
	ck_assert_int_eq(dc_cache_changes(NULL, &c2), DC_INVAL);
	ck_assert_int_eq(dc_cache_changes(g_cache, NULL), DC_INVAL);
}
END_TEST

START_TEST(test_changes_sees_another_handle_and_python)
{
	dc_cache *other = NULL;
	uint64_t c0, c1;

	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	ck_assert_int_eq(dc_cache_open(g_dir, NULL, &other), 0);
	c0 = changes();
	ck_assert_int_eq(dc_cache_set(other, VP(dc_text("o")), VP(dc_int(1)),
				      DC_NO_EXPIRE, NULL, 0),
			 0);
	c1 = changes();
	ck_assert_uint_ne(c1, c0);
	ck_assert_uint_eq(changes(), c1);
	dc_cache_close(other);
	if (!have_python())
		return;
	free(py("c = diskcache.Cache(d)\nc['py'] = 1\n"));
	c0 = changes();
	ck_assert_uint_ne(c0, c1);
	ck_assert_uint_eq(changes(), c0);
	/* A Python process that only reads commits nothing... */
	ASSERT_PY("1", "c = diskcache.Cache(d)\nprint(c['py'])\n");
	c1 = changes();
	/* ...except the settings its open may rewrite; in any case a later
	 * Python write moves the counter again. */
	free(py("c = diskcache.Cache(d)\ndel c['py']\n"));
	ck_assert_uint_ne(changes(), c1);
	ck_assert_int_eq(get(dc_text("py"), 0), DC_NOTFOUND);
}
END_TEST

START_TEST(test_changes_of_a_fanout_cache_sees_python_writes_to_any_shard)
{
	uint64_t c0, c1;

	open_cache(8, NULL, 0);
	if (!have_python())
		return;
	/* Python's open writes its settings: take the base after it. */
	free(py("c = diskcache.FanoutCache(d, shards=8)\n"));
	c0 = changes();
	ck_assert_uint_eq(changes(), c0);
	for (int i = 0; i < 3; i++) {
		char code[128];

		snprintf(code, sizeof(code),
			 "c = diskcache.FanoutCache(d, shards=8)\n"
			 "c['key%d'] = %d\n",
			 i, i);
		free(py(code));
		c1 = changes();
		ck_assert_uint_ne(c1, c0);
		c0 = c1;
	}
	ck_assert_int_eq(get(dc_text("key2"), 0), 0);
	ck_assert_int_eq(g_item.value.i, 2);
}
END_TEST

struct poller {
	dc_cache *cache;
	volatile int *stop;
	int errors, backwards;
	uint64_t last;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	uint64_t v;

	while (!*p->stop) {
		if (dc_cache_changes(p->cache, &v)) {
			p->errors++;
			continue;
		}
		if (v < p->last)
			p->backwards++;
		p->last = v;
	}
	return NULL;
}

START_TEST(test_changes_is_safe_from_many_threads)
{
	struct poller p[3];
	pthread_t t[3];
	volatile int stop = 0;
	uint64_t c0;

	open_cache(3, NULL, 0);
	c0 = changes();
	for (int i = 0; i < 3; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].cache = g_cache;
		p[i].stop = &stop;
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, poller_main, &p[i]), 0);
	}
	for (int i = 0; i < 60; i++)
		ck_assert_int_eq(dc_cache_set(g_cache, VP(dc_int(i)),
					      VP(dc_int(i)), DC_NO_EXPIRE, NULL,
					      DC_RETRY),
				 0);
	stop = 1;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(p[i].errors, 0);
		/* Each shard's part only grows, so each thread's view does. */
		ck_assert_int_eq(p[i].backwards, 0);
	}
	ck_assert_uint_gt(changes(), c0);
}
END_TEST

START_TEST(test_changes_works_in_a_forked_child)
{
	uint64_t c0 = changes();
	pid_t pid;
	int status;

	ck_assert_int_eq(put(dc_text("a"), dc_int(1)), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		uint64_t v0 = 0, v1 = 0;
		int ok;

		ok = dc_cache_changes(g_cache, &v0) == 0 &&
		     dc_cache_set(g_cache, VP(dc_text("child")), VP(dc_int(2)),
				  DC_NO_EXPIRE, NULL, 0) == 0 &&
		     dc_cache_changes(g_cache, &v1) == 0 && v1 != v0;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_ne(changes(), c0);
	ck_assert_int_eq(get(dc_text("child"), 0), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Overwrites that leave unchanged columns out                        */
/* ------------------------------------------------------------------ */

START_TEST(test_overwrite_stores_expire_and_tag_exactly)
{
	static const struct dc_setting tagidx[] = {
		{ "tag_index", { DC_TYPE_INT, 1, 0, NULL, 0 } },
	};
	char *out;

	open_cache(DC_SHARDS_PLAIN, tagidx, 1);
	ck_assert_int_eq(put(dc_text("k"), dc_int(1)), 0);
	ck_assert_int_eq(put(dc_text("k"), dc_int(2)), 0);
	ASSERT_SQL("cache.db", "2|NULL|NULL",
		   "SELECT value, quote(expire_time), quote(tag) FROM Cache");
	ck_assert_int_eq(put_x(dc_text("k"), dc_int(3), 100, VP(dc_int(1))), 0);
	ASSERT_SQL("cache.db", "3|1|1",
		   "SELECT value, expire_time IS NOT NULL, tag FROM Cache");
	/* Same tag, new expiry; then the same int tag as a float. */
	ck_assert_int_eq(put_x(dc_text("k"), dc_int(4), 200, VP(dc_int(1))), 0);
	ASSERT_SQL("cache.db", "4|1|1|integer",
		   "SELECT value, expire_time > strftime('%s','now') + 150, "
		   "tag, typeof(tag) FROM Cache");
	ck_assert_int_eq(
	    put_x(dc_text("k"), dc_int(5), DC_NO_EXPIRE, VP(dc_float(1.0))), 0);
	ASSERT_SQL("cache.db", "5|NULL|real",
		   "SELECT value, quote(expire_time), typeof(tag) FROM Cache");
	ck_assert_int_eq(
	    put_x(dc_text("k"), dc_int(6), DC_NO_EXPIRE, VP(dc_text("1.0"))),
	    0);
	ASSERT_SQL("cache.db", "6|text",
		   "SELECT value, typeof(tag) FROM Cache");
	ck_assert_int_eq(put_x(dc_text("k"), dc_int(7), DC_NO_EXPIRE,
			       VP(dc_bytes("1.0", 3))),
			 0);
	ASSERT_SQL("cache.db", "7|blob",
		   "SELECT value, typeof(tag) FROM Cache");
	ck_assert_int_eq(put(dc_text("k"), dc_int(8)), 0);
	ASSERT_SQL("cache.db", "8|NULL|NULL|0",
		   "SELECT value, quote(expire_time), quote(tag), "
		   "access_count FROM Cache");
	/* The indexes agree with the table (each index checked). */
	out = sql("cache.db", "PRAGMA integrity_check");
	ck_assert_str_eq(out, "ok");
	free(out);
	ASSERT_SQL("cache.db", "k",
		   "SELECT key FROM Cache INDEXED BY "
		   "Cache_tag_rowid WHERE tag IS NULL");
	ASSERT_SQL("cache.db", "k",
		   "SELECT key FROM Cache INDEXED BY "
		   "Cache_expire_time WHERE expire_time IS "
		   "NULL");
}
END_TEST

/* dc_iter_open(DC_VALUES | DC_FD): inline values come as data, a
 * file-backed one as a descriptor owned by the caller; expired keys are
 * skipped; the key is valid after the iterator is closed. */
START_TEST(test_iter_values_with_fd)
{
	char *big = tu_filled(40000, 'z');
	struct dc_value kb = dc_text("big"), ks = dc_text("small");
	struct dc_value ke = dc_text("expired");
	struct dc_value vb = dc_bytes(big, 40000), vs = dc_text("tiny");
	char back[40000];
	int seen = 0, fds = 0;
	dc_iter *it;

	ck_assert_int_eq(dc_cache_set(g_cache, &kb, &vb, DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_cache_set(g_cache, &ke, &vs, -1, NULL, 0), 0);
	ck_assert_int_eq(dc_cache_set(g_cache, &ks, &vs, DC_NO_EXPIRE, NULL, 0),
			 0);
	ck_assert_int_eq(dc_iter_open(g_cache, DC_VALUES | DC_FD, NULL, 0, &it),
			 0);
	while (dc_iter_next(it, &g_buf, &g_item) == 0) {
		seen++;
		if (g_item.fd >= 0) {
			fds++;
			ck_assert_mem_eq(g_item.key.data, "big", 4);
			ck_assert_int_eq(
			    pread(g_item.fd, back, sizeof(back), 0), 40000);
			ck_assert_mem_eq(back, big, 40000);
			close(g_item.fd);
		} else {
			ck_assert_mem_eq(g_item.key.data, "small", 6);
			ck_assert_uint_eq(g_item.value.len, 4);
			ck_assert_mem_eq(g_item.value.data, "tiny", 4);
		}
	}
	dc_iter_close(it);
	ck_assert_int_eq(seen, 2);
	ck_assert_int_eq(fds, 1);
	/* The last item's key lives in g_buf, not in the closed iterator. */
	ck_assert_mem_eq(g_item.key.data, "small", 6);
	free(big);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                              */
/* ------------------------------------------------------------------ */

Suite *api2_suite(void)
{
	Suite *s = suite_create("api2");
	TCase *tc;

	tc = tcase_create("types");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_novalue_reports_stored_type_and_number);
	tcase_add_test(tc, test_fd_reports_type_of_file_backed_values);
	tcase_add_test(tc, test_iteration_reports_stored_type_and_number);
	tcase_add_test(tc, test_seek_accepts_a_bound_that_is_not_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("rename");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_rename_keeps_value_metadata_and_rowid);
	tcase_add_test(tc, test_rename_of_file_backed_value_keeps_its_file);
	tcase_add_test(
	    tc, test_rename_onto_existing_key_replaces_it_and_cleans_its_file);
	tcase_add_test(
	    tc, test_rename_add_onto_live_key_is_exists_and_changes_nothing);
	tcase_add_test(tc, test_rename_add_onto_expired_key_replaces_it);
	tcase_add_test(tc, test_rename_of_missing_or_expired_key_is_notfound);
	tcase_add_test(tc, test_rename_is_part_of_a_caller_transaction);
	suite_add_tcase(s, tc);

	tc = tcase_create("move");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(
	    tc, test_rename_across_shards_moves_the_file_and_python_reads_it);
	tcase_add_test(
	    tc, test_rename_across_shards_keeps_inline_values_and_metadata);
	tcase_add_test(
	    tc, test_rename_across_shards_replaces_target_and_honours_add);
	tcase_add_test(tc,
		       test_rename_across_shards_rolls_back_with_the_caller);
	tcase_add_test(tc,
		       test_rename_across_shards_of_unsafe_filename_is_refused);
	tcase_add_test(tc, test_opposite_renames_across_shards_do_not_deadlock);
	suite_add_tcase(s, tc);

	tc = tcase_create("meta");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_set_meta_changes_tag_only);
	tcase_add_test(tc, test_set_meta_sets_absolute_expire_time);
	tcase_add_test(tc, test_set_meta_rejects_bad_arguments);
	tcase_add_test(tc, test_set_meta_on_fanout_routes_to_the_key_shard);
	suite_add_tcase(s, tc);

	tc = tcase_create("changes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_changes_moves_after_our_writes_only);
	tcase_add_test(tc, test_changes_sees_another_handle_and_python);
	tcase_add_test(
	    tc, test_changes_of_a_fanout_cache_sees_python_writes_to_any_shard);
	tcase_add_test(tc, test_changes_is_safe_from_many_threads);
	tcase_add_test(tc, test_changes_works_in_a_forked_child);
	suite_add_tcase(s, tc);

	tc = tcase_create("overwrite");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_overwrite_stores_expire_and_tag_exactly);
	tcase_add_test(tc, test_iter_values_with_fd);
	suite_add_tcase(s, tc);
	return s;
}
