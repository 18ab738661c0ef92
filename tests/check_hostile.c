/* check_hostile.c - hostile databases, bad arguments, full disks, kills
 * SPDX-License-Identifier: MIT
 *
 * Black-box tests against dcache.h only; hostile databases are crafted
 * with the sqlite3 CLI.  What is checked: a filename column never makes
 * the library read or unlink a file outside the cache directory; bad
 * arguments and undecodable rows give error codes, never a crash (the
 * suite also runs under ASan/UBSan); a full filesystem fails writes
 * cleanly and leaves no partial value; a writer killed with SIGKILL
 * leaves a cache that check(fix) repairs and that holds every committed
 * key; an unreadable directory gives EACCES.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Suite *hostile_suite(void);

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

/* One directory per TCase, made and removed in the runner process by an
 * unchecked fixture (so it goes away even if a test dies); each test
 * works in a fresh subdirectory. */
static char *base_dir;
static char *dir;
static char cdir[1024]; /* dir/cache (short: paths are built on it) */

static void base_setup(void)
{
	base_dir = tu_mkdtemp();
}

static void base_teardown(void)
{
	tu_rmtree(base_dir);
	free(base_dir);
	base_dir = NULL;
}

static void dir_setup(void)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/t-XXXXXX", base_dir) > 0);
	ck_assert_ptr_nonnull(mkdtemp(p));
	dir = p;
	snprintf(cdir, sizeof(cdir), "%s/cache", dir);
}

static void dir_teardown(void)
{
	tu_rmtree(dir);
	free(dir);
	dir = NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

#define BIG 40000 /* > disk_min_file_size: a value file */

static dc_cache *open_at(const char *path, int shards, double timeout)
{
	struct dc_options o;
	dc_cache *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.shards = shards;
	o.timeout = timeout;
	rc = dc_cache_open(path, &o, &c);
	ck_assert_msg(rc == 0, "open %s: %d %s", path, rc, dc_strerror(rc));
	ck_assert_ptr_nonnull(c);
	return c;
}

static dc_cache *open_cache(void)
{
	return open_at(cdir, 0, 0);
}

static void fill_value(char *buf, size_t len, const char *hdr)
{
	size_t hl = strlen(hdr);

	for (size_t i = 0; i < len; i++)
		buf[i] = hdr[i % hl];
}

/* 1 if @data is fill_value(@hdr) of length @len. */
static int value_is(const void *data, size_t len, const char *hdr)
{
	const char *d = data;
	size_t hl = strlen(hdr);

	if (!d)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (d[i] != hdr[i % hl])
			return 0;
	return 1;
}

static void set_filled(dc_cache *c, const char *key, size_t len, int text)
{
	struct dc_value k = dc_text(key), v;
	char hdr[64];
	char *data = malloc(len + 1);
	int rc;

	ck_assert_ptr_nonnull(data);
	snprintf(hdr, sizeof(hdr), "%s|#", key);
	fill_value(data, len, hdr);
	v = text ? dc_textn(data, len) : dc_bytes(data, len);
	rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == 0, "set %s: %s", key, dc_strerror(rc));
	free(data);
}

/* 0 if @key holds set_filled(@key, @len), else an error code (DC_CORRUPT
 * for a wrong value). */
static int check_filled(dc_cache *c, const char *key, size_t len)
{
	struct dc_value k = dc_text(key);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char hdr[64];
	int rc;

	snprintf(hdr, sizeof(hdr), "%s|#", key);
	memset(&item, 0, sizeof(item));
	rc = dc_cache_get(c, &k, &buf, &item, 0);
	if (rc == 0 &&
	    (item.value.len != len || !value_is(item.value.data, len, hdr)))
		rc = DC_CORRUPT;
	dc_buf_release(&buf);
	return rc;
}

static void assert_filled(dc_cache *c, const char *key, size_t len)
{
	int rc = check_filled(c, key, len);

	ck_assert_msg(rc == 0, "%s: %d %s", key, rc, dc_strerror(rc));
}

struct warns {
	int n;
	int kinds[16];
	char first[512];
};

static void on_warn(void *arg, enum dc_warning kind, const char *msg)
{
	struct warns *w = arg;
	int k = (int)kind;

	if (w->n == 0)
		snprintf(w->first, sizeof(w->first), "kind %d: %s", k,
			 msg ? msg : "(null)");
	if (k > 0 && k < 16)
		w->kinds[k]++;
	w->n++;
}

static struct warns run_check(dc_cache *c, int fix)
{
	struct warns w;
	uint64_t n = 0;
	int rc;

	memset(&w, 0, sizeof(w));
	rc = dc_cache_check(c, fix, DC_RETRY, on_warn, &w, &n);
	ck_assert_msg(rc == 0, "check(fix=%d): %d %s", fix, rc,
		      dc_strerror(rc));
	ck_assert_uint_eq(n, (uint64_t)w.n);
	return w;
}

static void assert_check_clean(dc_cache *c)
{
	struct warns w = run_check(c, 0);

	ck_assert_msg(w.n == 0, "check: %d warnings, first %s", w.n, w.first);
}

/* Only warnings a crash or a failed write may leave, and that
 * check(fix) repairs: unreferenced files and empty directories. */
static void assert_only_fixable(const struct warns *w)
{
	int bad =
	    w->n - w->kinds[DC_WARN_UNKNOWN_FILE] - w->kinds[DC_WARN_EMPTY_DIR];

	ck_assert_msg(bad == 0, "check: %d unexpected warnings of %d, first %s",
		      bad, w->n, w->first);
}

static uint64_t cache_len(dc_cache *c)
{
	uint64_t n = 0;
	int rc = dc_cache_len(c, &n);

	ck_assert_msg(rc == 0, "len: %s", dc_strerror(rc));
	return n;
}

/* Run SQL on the cache's database with the sqlite3 CLI. */
static void sql(const char *db_dir, const char *stmt)
{
	int rc = tu_run("sqlite3 -cmd '.timeout 5000' '%s/cache.db' \"%s\"",
			db_dir, stmt);

	ck_assert_msg(rc == 0, "sqlite3 failed (%d): %s", rc, stmt);
}

/* The value-file name of @key, from the database. */
static void filename_of(const char *key, char *out, size_t size)
{
	char *cmd = NULL;
	FILE *p;
	size_t n;

	ck_assert(asprintf(&cmd,
			   "sqlite3 '%s/cache.db' \"SELECT filename FROM "
			   "Cache WHERE key = '%s'\"",
			   cdir, key) > 0);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(out, (int)size, p));
	pclose(p);
	free(cmd);
	n = strlen(out);
	while (n && out[n - 1] == '\n')
		out[--n] = 0;
	ck_assert_uint_gt(n, 0);
}

static char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 65536;
			data = realloc(data, cap);
			ck_assert_ptr_nonnull(data);
		}
		got = fread(data + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return data;
}

static void write_whole(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

#define EXPECT_RC(want, call)                                                  \
	do {                                                                   \
		int rc_ = (call);                                              \
		ck_assert_msg(rc_ == (want), "%s: got %d (%s), want %s",       \
			      #call, rc_, dc_strerror(rc_), #want);            \
	} while (0)

/* ------------------------------------------------------------------ */
/* 1: filenames that point outside the cache directory                */
/* ------------------------------------------------------------------ */

enum variant {
	V_ABS,          /* /.../outside/secret.val */
	V_DOTDOT,       /* ../outside/secret.val */
	V_DOTDOT_INNER, /* ab/../../outside/secret.val */
	V_SYMDIR,       /* zz/secret.val, zz -> ../outside */
	V_SYMFILE,      /* ab/cd/<hex>.val -> outside/secret.val */
	V_PASSWD,       /* /etc/passwd: only operations that cannot unlink */
	V_DB,           /* cache.db: inside, but must survive */
	V_SYMLOOSE,     /* no row points out; loose -> ../outside lies around */
	NVARIANTS
};

static const char *const variant_name[] = {
	"absolute",       "dotdot",     "dotdot-inner", "symlinked-dir",
	"symlinked-file", "etc-passwd", "cache.db",     "loose-symlink",
};

enum uop {
	U_GET,
	U_GETFD,
	U_CONTAINS,
	U_POP,
	U_PULL,
	U_PEEK,
	U_PEEKITEM,
	U_DELETE,
	U_SET,
	U_TOUCH,
	U_CLEAR,
	U_EXPIRE,
	U_CULL,
	U_EVICT,
	U_WCULL,
	U_INCR,
	U_CHECK,
	U_FIX,
	U_ITER,
	NUOPS
};

static const char *const uop_name[] = {
	"get",   "get(DC_FD)", "contains",   "pop",     "pull",
	"peek",  "peekitem",   "delete",     "set",     "touch",
	"clear", "expire",     "cull",       "evict",   "write-time cull",
	"incr",  "check",      "check(fix)", "iterate",
};

static int needs_expired_victim(int op)
{
	return op == U_EXPIRE || op == U_CULL || op == U_WCULL || op == U_INCR;
}

/* Does the crafted row point outside (so reads must refuse)? */
static int points_outside(int v)
{
	return v <= V_PASSWD;
}

static char odir[1024], secret[1100];

/* Build the cache (victim first, then keeper, small, and a queue item
 * last) and the outside file, then point victim and the queue item at
 * the outside file as the variant says. */
static void craft_unsafe(int v, int op)
{
	char *data = malloc(BIG);
	char stmt[2048];
	const char *fname = NULL;
	struct dc_value k = dc_text("victim"), tag = dc_text("T"), val;
	dc_cache *c;

	ck_assert_ptr_nonnull(data);
	snprintf(odir, sizeof(odir), "%s/outside", dir);
	snprintf(secret, sizeof(secret), "%s/secret.val", odir);
	ck_assert_int_eq(mkdir(odir, 0700), 0);
	fill_value(data, BIG, "SECRET|#");
	write_whole(secret, data, BIG);

	c = open_cache();
	fill_value(data, BIG, "victim|#");
	val = dc_bytes(data, BIG);
	EXPECT_RC(0, dc_cache_set(c, &k, &val, DC_NO_EXPIRE, &tag, 0));
	set_filled(c, "keeper", BIG, 0);
	set_filled(c, "small", 20, 1);
	fill_value(data, BIG, "queued|#");
	EXPECT_RC(
	    0, dc_cache_push(c, &val, NULL, DC_NO_EXPIRE, NULL, 0, NULL, NULL));
	dc_cache_close(c);
	free(data);

	switch (v) {
	case V_ABS:
		fname = secret;
		break;
	case V_DOTDOT:
		fname = "../outside/secret.val";
		break;
	case V_DOTDOT_INNER:
		/* ab must exist for ab/.. to resolve. */
		mkdir(tu_path(cdir, "ab"), 0700);
		fname = "ab/../../outside/secret.val";
		break;
	case V_SYMDIR:
		ck_assert_int_eq(symlink(odir, tu_path(cdir, "zz")), 0);
		fname = "zz/secret.val";
		break;
	case V_SYMFILE:
		mkdir(tu_path(cdir, "ab"), 0700);
		mkdir(tu_path(cdir, "ab/cd"), 0700);
		fname = "ab/cd/0123456789abcdef0123456789ab.val";
		ck_assert_int_eq(symlink(secret, tu_path(cdir, fname)), 0);
		break;
	case V_PASSWD:
		fname = "/etc/passwd";
		break;
	case V_DB:
		fname = "cache.db";
		break;
	case V_SYMLOOSE:
		/* Not hex, so no value-file directory can be there already. */
		ck_assert_int_eq(symlink(odir, tu_path(cdir, "loose")), 0);
		break;
	}
	if (fname) {
		snprintf(stmt, sizeof(stmt),
			 "UPDATE Cache SET filename = '%s' WHERE key = "
			 "'victim' OR (key = 500000000000000 AND raw = 1);",
			 fname);
		sql(cdir, stmt);
	}
	if (needs_expired_victim(op))
		sql(cdir, "UPDATE Cache SET expire_time = 1 WHERE key = "
			  "'victim';");
}

static int secret_content(const struct dc_item *it)
{
	return it->value.len >= 6 && it->value.data &&
	       memcmp(it->value.data, "SECRET", 6) == 0;
}

/* The result of an operation that returns a value. */
static void check_read(int v, int op, int rc, struct dc_item *it, int must_miss)
{
	if (it->fd >= 0 && rc == 0) {
		char head[8] = { 0 };

		ck_assert_int_ge(pread(it->fd, head, 6, 0), 0);
		close(it->fd);
		ck_assert_msg(memcmp(head, "SECRET", 6) != 0,
			      "%s/%s: descriptor of the outside file",
			      variant_name[v], uop_name[op]);
	}
	if (!points_outside(v))
		return;
	ck_assert_msg(!(rc == 0 && secret_content(it)),
		      "%s/%s returned the outside file's content",
		      variant_name[v], uop_name[op]);
	if (rc == 0 && !must_miss)
		return;
	ck_assert_msg(rc == DC_UNSAFE || rc == DC_NOTFOUND,
		      "%s/%s: got %d (%s), want DC_UNSAFE or DC_NOTFOUND",
		      variant_name[v], uop_name[op], rc, dc_strerror(rc));
}

static int mutation_rc_ok(int rc)
{
	return rc == 0 || rc == DC_UNSAFE || rc == DC_NOTFOUND;
}

START_TEST(test_unsafe_filename_never_escapes_cache_dir)
{
	int v = _i / NUOPS, op = _i % NUOPS;
	struct dc_value victim = dc_text("victim"), tag = dc_text("T");
	struct dc_value nv = dc_text("new"), knew = dc_text("new");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char *before = NULL, *after = NULL;
	size_t blen = 0, alen = 0;
	uint64_t count = 0;
	int64_t zero = 0;
	struct warns w;
	dc_cache *c;
	int rc = 0;

	if (v == V_PASSWD && op != U_GET && op != U_GETFD && op != U_CONTAINS &&
	    op != U_CHECK && op != U_ITER)
		return; /* never risk the real /etc/passwd */
	craft_unsafe(v, op);
	before = read_whole(v == V_PASSWD ? "/etc/passwd" : secret, &blen);
	ck_assert_ptr_nonnull(before);
	c = open_cache();
	memset(&item, 0, sizeof(item));
	item.fd = -1;
	switch (op) {
	case U_GET:
		rc = dc_cache_get(c, &victim, &buf, &item, 0);
		check_read(v, op, rc, &item, 1);
		break;
	case U_GETFD:
		rc = dc_cache_get(c, &victim, &buf, &item, DC_FD);
		if (points_outside(v) && rc != 0)
			ck_assert_msg(item.fd < 0, "fd returned with an error");
		check_read(v, op, rc, &item, 1);
		break;
	case U_CONTAINS:
		rc = dc_cache_contains(c, &victim);
		ck_assert(rc == 0 || rc == DC_UNSAFE);
		break;
	case U_POP:
		rc = dc_cache_pop(c, &victim, &buf, &item, 0);
		check_read(v, op, rc, &item, 1);
		break;
	case U_PULL:
		rc = dc_cache_pull(c, NULL, &buf, &item, 0);
		check_read(v, op, rc, &item, 0);
		break;
	case U_PEEK:
		rc = dc_cache_peek(c, NULL, &buf, &item, 0);
		check_read(v, op, rc, &item, 0);
		break;
	case U_PEEKITEM:
		rc = dc_cache_peekitem(c, &buf, &item, 0);
		check_read(v, op, rc, &item, 0);
		break;
	case U_DELETE:
		rc = dc_cache_delete(c, &victim, 0);
		break;
	case U_SET:
		rc = dc_cache_set(c, &victim, &nv, DC_NO_EXPIRE, NULL, 0);
		break;
	case U_TOUCH:
		rc = dc_cache_touch(c, &victim, 100, 0);
		break;
	case U_CLEAR:
		rc = dc_cache_clear(c, 0, &count);
		break;
	case U_EXPIRE:
		rc = dc_cache_expire(c, 0, 0, &count);
		break;
	case U_CULL:
		rc = dc_cache_cull(c, 0, &count);
		break;
	case U_EVICT:
		rc = dc_cache_evict(c, &tag, 0, &count);
		break;
	case U_WCULL:
		rc = dc_cache_set(c, &knew, &nv, DC_NO_EXPIRE, NULL, 0);
		break;
	case U_INCR:
		rc = dc_cache_incr(c, &victim, 1, &zero, NULL, 0);
		break;
	case U_CHECK:
		w = run_check(c, 0);
		if (points_outside(v))
			ck_assert_msg(w.kinds[DC_WARN_UNSAFE_PATH] >= 1,
				      "%s: check did not report the unsafe "
				      "path (%d warnings, first %s)",
				      variant_name[v], w.n, w.first);
		break;
	case U_FIX:
		run_check(c, 1);
		w = run_check(c, 0);
		ck_assert_msg(w.kinds[DC_WARN_UNSAFE_PATH] == 0,
			      "%s: unsafe path still there after check(fix)",
			      variant_name[v]);
		break;
	case U_ITER: {
		dc_iter *it = NULL;

		EXPECT_RC(0, dc_iter_open(c, 0, NULL, 0, &it));
		while ((rc = dc_iter_next(it, &buf, &item)) == 0)
			count++;
		dc_iter_close(it);
		ck_assert_int_eq(rc, DC_NOTFOUND);
		ck_assert_uint_eq(count, 4);
		rc = 0;
		break;
	}
	}
	ck_assert_msg(mutation_rc_ok(rc) || (v == V_DB && (rc == DC_CORRUPT)),
		      "%s/%s: %d %s", variant_name[v], uop_name[op], rc,
		      dc_strerror(rc));
	if (op == U_SET && rc == 0) {
		char got[16] = "";
		struct dc_item it2;

		ck_assert_int_eq(dc_cache_get(c, &victim, &buf, &it2, 0), 0);
		snprintf(got, sizeof(got), "%.*s", (int)it2.value.len,
			 (const char *)it2.value.data);
		ck_assert_str_eq(got, "new");
	}
	/* Whatever happened, the outside file is untouched and alone. */
	after = read_whole(v == V_PASSWD ? "/etc/passwd" : secret, &alen);
	ck_assert_msg(after != NULL, "%s/%s: the outside file is gone",
		      variant_name[v], uop_name[op]);
	ck_assert_msg(alen == blen && memcmp(before, after, blen) == 0,
		      "%s/%s: the outside file changed", variant_name[v],
		      uop_name[op]);
	ck_assert_int_eq(count_entries(odir), 1);
	if (op != U_CLEAR)
		assert_filled(c, "keeper", BIG);
	run_check(c, 0);
	dc_cache_close(c);

	/* The database itself survived (V_DB points a row at it). */
	ck_assert(exists(tu_path(cdir, "cache.db")));
	c = open_cache();
	if (op != U_CLEAR)
		assert_filled(c, "keeper", BIG);
	run_check(c, 1);
	dc_cache_close(c);
	free(after);
	after = read_whole(v == V_PASSWD ? "/etc/passwd" : secret, &alen);
	ck_assert_msg(after && alen == blen && !memcmp(before, after, blen),
		      "%s/%s: check(fix) changed the outside file",
		      variant_name[v], uop_name[op]);
	free(before);
	free(after);
	dc_buf_release(&buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 2: invalid arguments                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_null_arguments_are_inval)
{
	dc_cache *c = open_cache(), *out = (dc_cache *)1;
	struct dc_value k = dc_text("k"), v = dc_text("v"), val;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char path[4096];
	uint32_t h;
	uint64_t n;
	int64_t zero = 0;
	dc_iter *it = NULL;
	enum dc_type t;

	EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0));

	EXPECT_RC(DC_INVAL, dc_cache_open(NULL, NULL, &out));
	ck_assert_ptr_null(out);
	EXPECT_RC(DC_INVAL, dc_cache_open(cdir, NULL, NULL));

	EXPECT_RC(DC_INVAL, dc_cache_get(NULL, &k, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_get(c, NULL, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_get(c, &k, &buf, NULL, 0));
	/* A text value needs a buffer unless DC_NOVALUE. */
	EXPECT_RC(DC_INVAL, dc_cache_get(c, &k, NULL, &item, 0));
	EXPECT_RC(0, dc_cache_get(c, &k, NULL, &item, DC_NOVALUE));
	EXPECT_RC(DC_INVAL, dc_cache_contains(NULL, &k));
	EXPECT_RC(DC_INVAL, dc_cache_contains(c, NULL));

	EXPECT_RC(DC_INVAL, dc_cache_set(NULL, &k, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set(c, NULL, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set(c, &k, NULL, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_add(NULL, &k, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_add(c, NULL, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_add(c, &k, NULL, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL,
		  dc_cache_set_fd(NULL, &k, 0, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set_fd(c, NULL, 0, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set_file(c, &k, NULL, DC_TYPE_BYTES,
					      DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL,
		  dc_cache_set_file(c, NULL, "/nonexistent", DC_TYPE_BYTES,
				    DC_NO_EXPIRE, NULL, 0));
	ck_assert_int_lt(dc_cache_mkstemp(c, NULL, 4096), 0);
	ck_assert_int_lt(dc_cache_mkstemp(NULL, path, sizeof(path)), 0);
	ck_assert_int_lt(dc_cache_mkstemp(c, path, 1), 0);
	EXPECT_RC(DC_INVAL, dc_cache_touch(NULL, &k, 1, 0));
	EXPECT_RC(DC_INVAL, dc_cache_touch(c, NULL, 1, 0));
	EXPECT_RC(DC_INVAL, dc_cache_delete(NULL, &k, 0));
	EXPECT_RC(DC_INVAL, dc_cache_delete(c, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_incr(NULL, &k, 1, &zero, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_incr(c, NULL, 1, &zero, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_decr(c, NULL, 1, &zero, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_pop(NULL, &k, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_pop(c, NULL, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_pop(c, &k, &buf, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_push(NULL, &v, NULL, DC_NO_EXPIRE, NULL, 0,
					  NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_push(c, NULL, NULL, DC_NO_EXPIRE, NULL, 0,
					  NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_pull(NULL, NULL, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_pull(c, NULL, &buf, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_peek(NULL, NULL, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_peek(c, NULL, &buf, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_peekitem(NULL, &buf, &item, 0));
	EXPECT_RC(DC_INVAL, dc_cache_peekitem(c, &buf, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_clear(NULL, 0, &n));
	EXPECT_RC(DC_INVAL, dc_cache_expire(NULL, 0, 0, &n));
	EXPECT_RC(DC_INVAL, dc_cache_evict(NULL, &v, 0, &n));
	EXPECT_RC(DC_INVAL, dc_cache_cull(NULL, 0, &n));
	EXPECT_RC(DC_INVAL, dc_cache_len(NULL, &n));
	EXPECT_RC(DC_INVAL, dc_cache_volume(NULL, &n));
	EXPECT_RC(DC_INVAL, dc_cache_stats(NULL, 0, 0, NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_check(NULL, 0, 0, NULL, NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_iter_open(NULL, 0, NULL, 0, &it));
	EXPECT_RC(DC_INVAL, dc_iter_open(c, 0, NULL, 0, NULL));
	EXPECT_RC(DC_INVAL, dc_iter_next(NULL, &buf, &item));
	EXPECT_RC(DC_INVAL, dc_iter_seek(NULL, "a", 1));
	EXPECT_RC(0, dc_iter_open(c, 0, NULL, 0, &it));
	EXPECT_RC(DC_INVAL, dc_iter_next(it, &buf, NULL));
	/* seek is for DC_SORTED iterators only */
	EXPECT_RC(DC_INVAL, dc_iter_seek(it, "a", 1));
	dc_iter_close(it);
	EXPECT_RC(DC_INVAL, dc_cache_begin(NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_commit(NULL));
	EXPECT_RC(DC_INVAL, dc_cache_rollback(NULL));
	EXPECT_RC(DC_INVAL,
		  dc_cache_setting_get(NULL, "size_limit", &buf, &val));
	EXPECT_RC(DC_INVAL, dc_cache_setting_get(c, NULL, &buf, &val));
	EXPECT_RC(DC_INVAL, dc_cache_setting_get(c, "size_limit", &buf, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_setting_set(NULL, "size_limit", &v));
	EXPECT_RC(DC_INVAL, dc_cache_setting_set(c, NULL, &v));
	EXPECT_RC(DC_INVAL, dc_cache_setting_set(c, "size_limit", NULL));
	out = (dc_cache *)1;
	EXPECT_RC(DC_INVAL,
		  dc_cache_open_sub(NULL, DC_SUB_CACHE, "x", NULL, &out));
	ck_assert_ptr_null(out);
	EXPECT_RC(DC_INVAL,
		  dc_cache_open_sub(c, DC_SUB_CACHE, NULL, NULL, &out));
	EXPECT_RC(DC_INVAL,
		  dc_cache_open_sub(c, DC_SUB_CACHE, "x", NULL, NULL));
	ck_assert_int_lt(dc_cache_shard_of(NULL, &k), 0);
	ck_assert_int_lt(dc_cache_shard_of(c, NULL), 0);
	EXPECT_RC(DC_INVAL, dc_key_hash(NULL, &h));
	EXPECT_RC(DC_INVAL, dc_key_hash(&k, NULL));
	EXPECT_RC(DC_INVAL, dc_type_parse(NULL, &t));
	EXPECT_RC(DC_INVAL, dc_type_parse("int", NULL));
	/* Optional outputs really are optional. */
	EXPECT_RC(DC_TYPE, dc_cache_incr(c, &k, 0, NULL, NULL, 0));
	EXPECT_RC(0, dc_cache_clear(c, 0, NULL));
	EXPECT_RC(0, dc_cache_check(c, 0, 0, NULL, NULL, NULL));
	/* Destructors accept NULL. */
	dc_cache_close(NULL);
	dc_iter_close(NULL);
	dc_buf_release(NULL);
	ck_assert_uint_eq(cache_len(c), 0);
	dc_cache_close(c);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_bad_types_are_inval)
{
	dc_cache *c = open_cache();
	struct dc_value knone, kbad, knull, k = dc_text("k"), v = dc_text("v");
	struct dc_value vnone, vbad, tpickle, tbad, kp, tag = dc_text("t");
	struct dc_value big = dc_int(INT64_MAX), res;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	const struct dc_value *bad_keys[3];
	char *bytes = calloc(1, BIG);
	int64_t zero = 0;
	uint32_t h;
	enum dc_type t;

	ck_assert_ptr_nonnull(bytes);
	memset(&knone, 0, sizeof(knone));
	kbad = knone;
	kbad.type = (enum dc_type)42;
	knull = dc_textn(NULL, 3);
	vnone = knone;
	vbad = kbad;
	tpickle = dc_pickle("\x80\x05N.", 4);
	tbad = kbad;
	bad_keys[0] = &knone;
	bad_keys[1] = &kbad;
	bad_keys[2] = &knull;
	for (int i = 0; i < 3; i++) {
		const struct dc_value *bk = bad_keys[i];

		EXPECT_RC(DC_INVAL, dc_cache_get(c, bk, &buf, &item, 0));
		EXPECT_RC(DC_INVAL, dc_cache_contains(c, bk));
		EXPECT_RC(DC_INVAL,
			  dc_cache_set(c, bk, &v, DC_NO_EXPIRE, NULL, 0));
		EXPECT_RC(DC_INVAL,
			  dc_cache_add(c, bk, &v, DC_NO_EXPIRE, NULL, 0));
		EXPECT_RC(DC_INVAL, dc_cache_delete(c, bk, 0));
		EXPECT_RC(DC_INVAL, dc_cache_touch(c, bk, 1, 0));
		EXPECT_RC(DC_INVAL, dc_cache_incr(c, bk, 1, &zero, NULL, 0));
		EXPECT_RC(DC_INVAL, dc_cache_pop(c, bk, &buf, &item, 0));
		EXPECT_RC(DC_INVAL, dc_key_hash(bk, &h));
		ck_assert_int_lt(dc_cache_shard_of(c, bk), 0);
	}
	EXPECT_RC(DC_INVAL, dc_cache_set(c, &k, &vnone, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set(c, &k, &vbad, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_push(c, &vnone, NULL, DC_NO_EXPIRE, NULL,
					  0, NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, &tpickle, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, &tbad, 0));
	EXPECT_RC(DC_INVAL, dc_cache_push(c, &v, NULL, DC_NO_EXPIRE, &tpickle,
					  0, NULL, NULL));
	EXPECT_RC(DC_INVAL, dc_cache_evict(c, &tpickle, 0, NULL));
	ck_assert_ptr_null(dc_type_name((enum dc_type)42));
	EXPECT_RC(DC_INVAL, dc_type_parse("bogus", &t));
	ck_assert_ptr_nonnull(dc_strerror(123456789));
	ck_assert_ptr_nonnull(dc_strerror(-1));
	ck_assert_ptr_nonnull(dc_strerror(INT_MIN));
	ck_assert_ptr_nonnull(dc_version());
	ck_assert_uint_eq(cache_len(c), 0);

	/* Numbers only for incr; overflow changes nothing. */
	EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, &tag, 0));
	EXPECT_RC(DC_TYPE, dc_cache_incr(c, &k, 1, &zero, NULL, 0));
	v = dc_bytes(bytes, BIG);
	EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_TYPE, dc_cache_incr(c, &k, 1, &zero, NULL, 0));
	kp = dc_pickle("\x80\x05\x88.", 4); /* True, as Python pickles it */
	v = dc_pickle("\x80\x05N.", 4);
	EXPECT_RC(0, dc_cache_set(c, &kp, &v, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_TYPE, dc_cache_incr(c, &kp, 1, &zero, NULL, 0));
	EXPECT_RC(0, dc_cache_set(c, &k, &big, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_OVERFLOW, dc_cache_incr(c, &k, 1, &zero, &res, 0));
	big = dc_int(INT64_MIN + 1);
	EXPECT_RC(0, dc_cache_set(c, &k, &big, DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_OVERFLOW, dc_cache_decr(c, &k, 2, &zero, &res, 0));
	EXPECT_RC(DC_OVERFLOW, dc_cache_decr(c, &k, INT64_MIN, &zero, &res, 0));
	EXPECT_RC(0, dc_cache_get(c, &k, &buf, &item, 0));
	ck_assert_int_eq(item.value.type, DC_TYPE_INT);
	ck_assert_int_eq(item.value.i, INT64_MIN + 1);
	ck_assert_uint_eq(cache_len(c), 2);
	assert_check_clean(c);
	dc_cache_close(c);
	dc_buf_release(&buf);
	free(bytes);
}
END_TEST

static const char *const bad_utf8[] = {
	"\xff",
	"\xc0\x80",
	"\xe0\x80\xaf",
	"\xed\xa0\x80",
	"\xf4\x90\x80\x80",
	"\xc3",
	"a\x80z",
	"\xf8\x88\x80\x80\x80",
	"ok\xe2\x82",
	"\xfe\xfe\xff\xff",
};

START_TEST(test_invalid_utf8_text_is_inval)
{
	dc_cache *c = open_cache();
	struct dc_value good = dc_text("good"), tag;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char prefix[32];

	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct dc_value bad = dc_text(bad_utf8[i]);

		tag = bad;
		EXPECT_RC(DC_INVAL,
			  dc_cache_set(c, &bad, &good, DC_NO_EXPIRE, NULL, 0));
		EXPECT_RC(DC_INVAL,
			  dc_cache_set(c, &good, &bad, DC_NO_EXPIRE, NULL, 0));
		EXPECT_RC(DC_INVAL,
			  dc_cache_set(c, &good, &good, DC_NO_EXPIRE, &tag, 0));
		EXPECT_RC(DC_INVAL,
			  dc_cache_add(c, &bad, &good, DC_NO_EXPIRE, NULL, 0));
		EXPECT_RC(DC_INVAL, dc_cache_get(c, &bad, &buf, &item, 0));
		EXPECT_RC(DC_INVAL, dc_cache_contains(c, &bad));
		EXPECT_RC(DC_INVAL, dc_cache_delete(c, &bad, 0));
		EXPECT_RC(DC_INVAL, dc_cache_evict(c, &tag, 0, NULL));
		EXPECT_RC(DC_INVAL, dc_cache_push(c, &bad, NULL, DC_NO_EXPIRE,
						  NULL, 0, NULL, NULL));
		snprintf(prefix, sizeof(prefix), "q%s", bad_utf8[i]);
		EXPECT_RC(DC_INVAL,
			  dc_cache_push(c, &good, prefix, DC_NO_EXPIRE, NULL, 0,
					NULL, NULL));
		EXPECT_RC(DC_INVAL, dc_cache_pull(c, prefix, &buf, &item, 0));
		EXPECT_RC(DC_INVAL, dc_cache_peek(c, prefix, &buf, &item, 0));
		EXPECT_RC(DC_INVAL,
			  dc_cache_setting_set(c, "eviction_policy", &bad));
	}
	ck_assert_uint_eq(cache_len(c), 0);
	assert_check_clean(c);
	dc_cache_close(c);
	dc_buf_release(&buf);
}
END_TEST

/* Valid but unusual text must not be rejected by an over-strict check,
 * and must mean to Python what it means to us. */
START_TEST(test_unusual_valid_text_round_trips_with_python)
{
	static const struct {
		const char *k;
		size_t klen;
		const char *v;
	} t[] = {
		{ "a\0b", 3, "nul" },
		{ "a", 1, "plain" },
		{ "", 0, "empty" },
		{ "\xf4\x8f\xbf\xbf", 4, "max" },
		{ "\xef\xbf\xbf", 3, "fffff" },
	};
	dc_cache *c = open_cache();
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value k, v, key;
	int rc;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		k = dc_textn(t[i].k, t[i].klen);
		v = dc_text(t[i].v);
		EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0));
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		k = dc_textn(t[i].k, t[i].klen);
		EXPECT_RC(0, dc_cache_get(c, &k, &buf, &item, 0));
		ck_assert_str_eq((const char *)item.value.data, t[i].v);
	}
	ck_assert_uint_eq(cache_len(c), 5);
	/* Push prefixes: "" and one with a '-' behave as in Python. */
	v = dc_text("x");
	EXPECT_RC(0,
		  dc_cache_push(c, &v, "", DC_NO_EXPIRE, NULL, 0, &buf, &key));
	ck_assert_int_eq(key.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)key.data, "-500000000000000");
	EXPECT_RC(
	    0, dc_cache_push(c, &v, "a-b", DC_NO_EXPIRE, NULL, 0, &buf, &key));
	EXPECT_RC(
	    0, dc_cache_push(c, &v, "a-b", DC_NO_EXPIRE, NULL, 0, &buf, &key));
	ck_assert_str_eq((const char *)key.data, "a-b-500000000000001");
	dc_cache_close(c);
	rc = tu_run(
	    "/usr/bin/python3 -c 'import diskcache, sys\n"
	    "c = diskcache.Cache(sys.argv[1])\n"
	    "assert c[\"a\\x00b\"] == \"nul\"\n"
	    "assert c[\"a\"] == \"plain\"\n"
	    "assert c[\"\"] == \"empty\"\n"
	    "assert c[\"\\U0010ffff\"] == \"max\"\n"
	    "assert c[\"\\uffff\"] == \"fffff\"\n"
	    "assert c.pull(prefix=\"a-b\")[0] == \"a-b-500000000000000\"\n"
	    "assert c.push(1, prefix=\"\") == \"-500000000000001\"\n"
	    "' '%s'",
	    cdir);
	ck_assert_msg(rc == 0, "python disagrees (exit %d)", rc);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_unknown_setting_names)
{
	struct dc_setting custom = { "my_custom", dc_text("kept") };
	struct dc_value one = dc_int(1), val;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_options o;
	dc_cache *c = NULL;

	/* At open, unknown names are kept (DjangoCache stores its own). */
	memset(&o, 0, sizeof(o));
	o.settings = &custom;
	o.nsettings = 1;
	EXPECT_RC(0, dc_cache_open(cdir, &o, &c));
	dc_cache_close(c);
	c = open_cache();
	EXPECT_RC(0, dc_cache_setting_get(c, "my_custom", &buf, &val));
	ck_assert_int_eq(val.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)val.data, "kept");
	/* reset(name, value) only updates existing rows. */
	EXPECT_RC(DC_NOTFOUND,
		  dc_cache_setting_set(c, "no_such_setting", &one));
	EXPECT_RC(DC_NOTFOUND,
		  dc_cache_setting_get(c, "no_such_setting", &buf, &val));
	EXPECT_RC(0, dc_cache_setting_set(c, "my_custom", &one));
	EXPECT_RC(0, dc_cache_setting_get(c, "my_custom", &buf, &val));
	ck_assert_int_eq(val.type, DC_TYPE_INT);
	{
		int rc = dc_cache_setting_set(c, "", &one);

		ck_assert_msg(rc == DC_NOTFOUND || rc == DC_INVAL,
			      "empty setting name: %s", dc_strerror(rc));
	}
	dc_cache_close(c);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_bad_setting_values_are_inval)
{
	struct dc_setting bogus = { "eviction_policy", dc_text("bogus") };
	struct dc_setting number = { "eviction_policy", dc_int(3) };
	struct dc_setting limit = { "size_limit", dc_text("huge") };
	const struct dc_setting *bad[3] = { &bogus, &number, &limit };
	struct dc_value v = dc_text("bogus"), got;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_options o;
	dc_cache *c;

	for (int i = 0; i < 3; i++) {
		memset(&o, 0, sizeof(o));
		o.settings = bad[i];
		o.nsettings = 1;
		c = (dc_cache *)1;
		EXPECT_RC(DC_INVAL, dc_cache_open(cdir, &o, &c));
		ck_assert_ptr_null(c);
	}
	c = open_cache();
	EXPECT_RC(DC_INVAL, dc_cache_setting_set(c, "eviction_policy", &v));
	v = dc_int(2);
	EXPECT_RC(DC_INVAL, dc_cache_setting_set(c, "eviction_policy", &v));
	EXPECT_RC(0, dc_cache_setting_get(c, "eviction_policy", &buf, &got));
	ck_assert_str_eq((const char *)got.data, "least-recently-stored");
	v = dc_text("least-recently-used");
	EXPECT_RC(0, dc_cache_setting_set(c, "eviction_policy", &v));
	dc_cache_close(c);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_layout_mismatch_and_non_directories)
{
	dc_cache *c, *out;
	char file[PATH_MAX], plain[PATH_MAX];
	int rc;

	c = open_at(cdir, 4, 0);
	ck_assert_int_eq(dc_cache_shards(c), 4);
	dc_cache_close(c);
	{
		struct dc_options o;
		int bad_shards[] = { 8, 2, DC_SHARDS_PLAIN };

		for (int i = 0; i < 3; i++) {
			memset(&o, 0, sizeof(o));
			o.shards = bad_shards[i];
			out = (dc_cache *)1;
			EXPECT_RC(DC_LAYOUT, dc_cache_open(cdir, &o, &out));
			ck_assert_ptr_null(out);
		}
		o.shards = -7;
		out = (dc_cache *)1;
		EXPECT_RC(DC_INVAL, dc_cache_open(cdir, &o, &out));
		ck_assert_ptr_null(out);
		/* The shards were not touched: still 4. */
		ck_assert_int_eq(count_entries(cdir), 4);

		snprintf(plain, sizeof(plain), "%s/plain", dir);
		c = open_at(plain, DC_SHARDS_PLAIN, 0);
		dc_cache_close(c);
		o.shards = 2;
		EXPECT_RC(DC_LAYOUT, dc_cache_open(plain, &o, &out));
	}
	c = open_at(cdir, 0, 0);
	ck_assert_int_eq(dc_cache_shards(c), 4);
	dc_cache_close(c);

	/* A file where the directory should be. */
	snprintf(file, sizeof(file), "%s/afile", dir);
	write_whole(file, "not a dir", 9);
	EXPECT_RC(ENOTDIR, dc_cache_open(file, NULL, &out));
	snprintf(file, sizeof(file), "%s/afile/sub", dir);
	EXPECT_RC(ENOTDIR, dc_cache_open(file, NULL, &out));
	snprintf(file, sizeof(file), "%s/afile", dir);
	ck_assert(exists(file));
	/* cache.db is a directory. */
	snprintf(file, sizeof(file), "%s/dbdir", dir);
	ck_assert_int_eq(mkdir(file, 0700), 0);
	ck_assert_int_eq(mkdir(tu_path(file, "cache.db"), 0700), 0);
	out = (dc_cache *)1;
	rc = dc_cache_open(file, NULL, &out);
	ck_assert_msg(rc != 0, "opened a cache whose cache.db is a directory");
	ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_sub_collection_names_are_checked)
{
	static const char *const bad[] = {
		"",       "/",     "a//b", ".",  "..",
		"a/../b", "a/./b", "/abs", "a/", "../../escape",
	};
	struct dc_options o;
	dc_cache *c = open_at(cdir, 2, 0), *sub;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sub = (dc_cache *)1;
		EXPECT_RC(DC_INVAL, dc_cache_open_sub(c, DC_SUB_DEQUE, bad[i],
						      NULL, &sub));
		ck_assert_ptr_null(sub);
	}
	ck_assert(!exists(tu_path(dir, "escape")));
	ck_assert(!exists(tu_path(cdir, "escape")));
	EXPECT_RC(DC_INVAL,
		  dc_cache_open_sub(c, (enum dc_sub)99, "x", NULL, &sub));
	memset(&o, 0, sizeof(o));
	o.shards = 4;
	EXPECT_RC(DC_INVAL, dc_cache_open_sub(c, DC_SUB_INDEX, "x", &o, &sub));
	EXPECT_RC(0, dc_cache_open_sub(c, DC_SUB_DEQUE, "a/b", NULL, &sub));
	ck_assert(exists(tu_path(cdir, "deque/a/b/cache.db")));
	dc_cache_close(sub);
	/* Transactions: no begin, and FanoutCache needs DC_RETRY. */
	EXPECT_RC(DC_INVAL, dc_cache_commit(c));
	EXPECT_RC(DC_INVAL, dc_cache_rollback(c));
	EXPECT_RC(DC_INVAL, dc_cache_begin(c, 0));
	EXPECT_RC(0, dc_cache_begin(c, DC_RETRY));
	EXPECT_RC(0, dc_cache_rollback(c));
	dc_cache_close(c);
}
END_TEST

START_TEST(test_set_fd_and_set_file_misuse)
{
	dc_cache *c = open_cache();
	struct dc_value k = dc_text("k"), other = dc_text("other");
	char path[4096], tmp[PATH_MAX], fname[256], outside[PATH_MAX];
	char data[100];
	struct stat st;
	int fd, rc, dfd;

	memset(data, 'x', sizeof(data));
	set_filled(c, "f", BIG, 0);
	/* Bad descriptors. */
	rc = dc_cache_set_fd(c, &k, -1, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == EBADF || rc == DC_INVAL, "fd -1: %s",
		      dc_strerror(rc));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	rc = dc_cache_set_fd(c, &k, dfd, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == EISDIR || rc == DC_INVAL, "directory fd: %s",
		      dc_strerror(rc));
	close(dfd);
	snprintf(tmp, sizeof(tmp), "%s/wronly", dir);
	fd = open(tmp, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	rc = dc_cache_set_fd(c, &k, fd, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == EBADF || rc == DC_INVAL, "write-only fd: %s",
		      dc_strerror(rc));
	close(fd);
	ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	ck_assert_int_eq(tu_count_files(cdir), 1); /* no orphan */

	/* Bad paths for set_file; each leaves the path as it was. */
	snprintf(tmp, sizeof(tmp), "%s/missing", dir);
	EXPECT_RC(ENOENT, dc_cache_set_file(c, &k, tmp, DC_TYPE_BYTES,
					    DC_NO_EXPIRE, NULL, 0));
	/* A directory, inside the cache and outside it. */
	for (int inside = 0; inside < 2; inside++) {
		snprintf(tmp, sizeof(tmp), "%s/adir", inside ? cdir : dir);
		ck_assert_int_eq(mkdir(tmp, 0700), 0);
		rc = dc_cache_set_file(c, &k, tmp, DC_TYPE_BYTES, DC_NO_EXPIRE,
				       NULL, 0);
		ck_assert_msg(rc == EISDIR || rc == DC_INVAL,
			      "directory (inside %d): %s", inside,
			      dc_strerror(rc));
		ck_assert(stat(tmp, &st) == 0 && S_ISDIR(st.st_mode));
		rmdir(tmp);
	}
	/* A symlink to an outside file is not a regular file. */
	snprintf(outside, sizeof(outside), "%s/outside-file", dir);
	write_whole(outside, "OUTSIDE", 7);
	snprintf(tmp, sizeof(tmp), "%s/link", cdir);
	ck_assert_int_eq(symlink(outside, tmp), 0);
	rc =
	    dc_cache_set_file(c, &k, tmp, DC_TYPE_BYTES, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc != 0, "adopted a symlink to an outside file");
	ck_assert_int_eq(lstat(tmp, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	unlink(tmp);
	/* A type that cannot live in a file. */
	fd = dc_cache_mkstemp(c, path, sizeof(path));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);
	EXPECT_RC(DC_INVAL, dc_cache_set_file(c, &k, path, DC_TYPE_INT,
					      DC_NO_EXPIRE, NULL, 0));
	EXPECT_RC(DC_INVAL, dc_cache_set_file(c, &k, path, DC_TYPE_NONE,
					      DC_NO_EXPIRE, NULL, 0));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)sizeof(data));
	/* Adopting a file that already is a value file. */
	filename_of("f", fname, sizeof(fname));
	EXPECT_RC(DC_EXISTS,
		  dc_cache_set_file(c, &other, tu_path(cdir, fname),
				    DC_TYPE_BYTES, DC_NO_EXPIRE, NULL, 0));
	assert_filled(c, "f", BIG);
	/* Another filesystem (tmpfs /dev/shm), if it is one. */
	{
		struct stat a, b;

		if (stat("/dev/shm", &a) == 0 && stat(cdir, &b) == 0 &&
		    a.st_dev != b.st_dev) {
			char shm[64];

			snprintf(shm, sizeof(shm), "/dev/shm/dcache-x-%d",
				 (int)getpid());
			write_whole(shm, data, sizeof(data));
			rc = dc_cache_set_file(c, &k, shm, DC_TYPE_BYTES,
					       DC_NO_EXPIRE, NULL, 0);
			ck_assert_msg(exists(shm), "cross-fs file moved away");
			unlink(shm);
			ck_assert_msg(rc == EXDEV, "cross-fs: %s",
				      dc_strerror(rc));
		}
	}
	ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_contains(c, &other), DC_NOTFOUND);
	/* The adoptable file is still ours; adopt it properly now. */
	EXPECT_RC(0, dc_cache_set_file(c, &k, path, DC_TYPE_BYTES, DC_NO_EXPIRE,
				       NULL, 0));
	ck_assert_uint_eq(cache_len(c), 2);
	assert_check_clean(c);
	dc_cache_close(c);
}
END_TEST

/* Files that are not DiskCache databases.  Opening must fail with
 * DC_CORRUPT and must not modify them. */
START_TEST(test_garbage_cache_db_is_corrupt)
{
	char db[PATH_MAX], *before, *after;
	size_t blen, alen;
	dc_cache *c = (dc_cache *)1;
	int rc;

	ck_assert_int_eq(mkdir(cdir, 0700), 0);
	snprintf(db, sizeof(db), "%s/cache.db", cdir);
	switch (_i) {
	case 0: { /* random bytes */
		char junk[8192];
		unsigned seed = 42;

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)rand_r(&seed);
		write_whole(db, junk, sizeof(junk));
		break;
	}
	case 1: { /* SQLite's magic, then garbage */
		char junk[8192];

		memset(junk, 0xa5, sizeof(junk));
		memcpy(junk, "SQLite format 3", 16);
		write_whole(db, junk, sizeof(junk));
		break;
	}
	case 2:
		write_whole(db, "hello, world\n", 13);
		break;
	case 3:
		sql(cdir,
		    "CREATE TABLE Cache(x); INSERT INTO Cache VALUES(1);");
		break;
	case 4:
		sql(cdir, "CREATE TABLE Settings(a, b, c);");
		break;
	}
	before = read_whole(db, &blen);
	ck_assert_ptr_nonnull(before);
	rc = dc_cache_open(cdir, NULL, &c);
	ck_assert_msg(rc == DC_CORRUPT, "variant %d: got %d (%s)", _i, rc,
		      dc_strerror(rc));
	ck_assert_ptr_null(c);
	after = read_whole(db, &alen);
	ck_assert_msg(after && alen == blen && !memcmp(before, after, blen),
		      "variant %d: a failed open changed cache.db", _i);
	free(before);
	free(after);
}
END_TEST

START_TEST(test_garbage_shard_and_truncated_db_do_not_crash)
{
	char db[PATH_MAX];
	dc_cache *c = NULL;
	int rc;

	/* A FanoutCache whose shard 001 is garbage. */
	c = open_at(cdir, 2, 0);
	dc_cache_close(c);
	snprintf(db, sizeof(db), "%s/001/cache.db", cdir);
	write_whole(db, "garbage garbage garbage", 23);
	unlink(tu_path(cdir, "001/cache.db-wal"));
	unlink(tu_path(cdir, "001/cache.db-shm"));
	c = (dc_cache *)1;
	EXPECT_RC(DC_CORRUPT, dc_cache_open(cdir, NULL, &c));
	ck_assert_ptr_null(c);

	/* A zero-length cache.db is an empty database: Python opens it. */
	snprintf(db, sizeof(db), "%s/empty", dir);
	ck_assert_int_eq(mkdir(db, 0700), 0);
	write_whole(tu_path(db, "cache.db"), "", 0);
	c = open_at(db, 0, 0);
	assert_check_clean(c);
	dc_cache_close(c);

	/* A database cut short: whatever open says, nothing crashes. */
	snprintf(db, sizeof(db), "%s/cut", dir);
	c = open_at(db, 0, 0);
	for (int i = 0; i < 200; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		set_filled(c, key, 500, 1);
	}
	dc_cache_close(c);
	ck_assert_int_eq(
	    tu_run("sqlite3 '%s/cache.db' 'PRAGMA wal_checkpoint(TRUNCATE)'"
		   " >/dev/null",
		   db),
	    0);
	ck_assert_int_eq(truncate(tu_path(db, "cache.db"), 3 * 4096), 0);
	c = NULL;
	rc = dc_cache_open(db, NULL, &c);
	if (rc == 0) {
		struct dc_buf buf = DC_BUF_INIT;
		struct dc_item item;
		struct dc_value k = dc_text("k150"), v = dc_text("v");
		uint64_t n;

		rc = dc_cache_get(c, &k, &buf, &item, 0);
		ck_assert_msg(rc == 0 || rc < 0, "get: %d", rc);
		dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
		dc_cache_len(c, &n);
		dc_cache_check(c, 0, 0, NULL, NULL, &n);
		dc_cache_close(c);
		dc_buf_release(&buf);
	} else {
		ck_assert_ptr_null(c);
	}
}
END_TEST

/* Rows no implementation would write.  Each names the key it damages,
 * the SQL that damages it, what to do to its value file, and what a
 * get of it may return. */
enum fs_damage { FS_NONE, FS_TRUNCATE, FS_DIR, FS_BAD_UTF8 };

static const struct bad_row {
	const char *key;
	const char *sql;
	enum fs_damage fs;
	int ok[3]; /* acceptable get results; 1 = anything but a crash */
} bad_rows[] = {
	{ "r",
	  "UPDATE Cache SET mode = 99 WHERE key = 'r'",
	  FS_NONE,
	  { DC_CORRUPT, DC_CORRUPT, DC_CORRUPT } },
	{ "f",
	  "UPDATE Cache SET filename = NULL, value = NULL WHERE key = 'f'",
	  FS_NONE,
	  { DC_CORRUPT, DC_NOTFOUND, DC_CORRUPT } },
	{ "f", NULL, FS_TRUNCATE, { DC_CORRUPT, DC_NOTFOUND, DC_CORRUPT } },
	{ "f", NULL, FS_DIR, { DC_CORRUPT, DC_NOTFOUND, DC_CORRUPT } },
	{ "f",
	  "UPDATE Cache SET mode = 3 WHERE key = 'f'",
	  FS_BAD_UTF8,
	  { DC_CORRUPT, 0, DC_CORRUPT } },
	{ "r",
	  "UPDATE Cache SET value = CAST(x'ff41' AS TEXT) WHERE key = 'r'",
	  FS_NONE,
	  { DC_CORRUPT, 0, DC_CORRUPT } },
	{ "r",
	  "UPDATE Cache SET key = NULL WHERE key = 'r'",
	  FS_NONE,
	  { DC_NOTFOUND, DC_NOTFOUND, DC_NOTFOUND } },
	{ "r",
	  "UPDATE Cache SET raw = 0, key = x'deadbeef' WHERE key = 'r'",
	  FS_NONE,
	  { DC_NOTFOUND, DC_NOTFOUND, DC_NOTFOUND } },
	{ "i",
	  "UPDATE Cache SET value = x'0102' WHERE key = 'i'",
	  FS_NONE,
	  { 0, DC_CORRUPT, 0 } },
	{ "f",
	  "UPDATE Cache SET size = -5 WHERE key = 'f'",
	  FS_NONE,
	  { 1, 1, 1 } },
	{ "r",
	  "UPDATE Cache SET expire_time = 'abc' WHERE key = 'r'",
	  FS_NONE,
	  { 1, 1, 1 } },
	{ "r",
	  "UPDATE Cache SET tag = CAST(x'ff' AS TEXT) WHERE key = 'r'",
	  FS_NONE,
	  { 1, 1, 1 } },
	{ "f",
	  "UPDATE Cache SET filename = '' WHERE key = 'f'",
	  FS_NONE,
	  { DC_CORRUPT, DC_NOTFOUND, DC_UNSAFE } },
	{ "f",
	  "UPDATE Cache SET filename = 'ab' WHERE key = 'f'",
	  FS_NONE,
	  { DC_CORRUPT, DC_NOTFOUND, DC_UNSAFE } },
	{ "f",
	  "UPDATE Cache SET filename = '.' WHERE key = 'f'",
	  FS_NONE,
	  { DC_CORRUPT, DC_NOTFOUND, DC_UNSAFE } },
	{ "r",
	  "DELETE FROM Settings WHERE key = 'count'",
	  FS_NONE,
	  { 0, 0, 0 } },
	{ "r",
	  "UPDATE Settings SET value = 'abc' WHERE key = 'size_limit';"
	  "UPDATE Settings SET value = NULL WHERE key = 'cull_limit';"
	  "UPDATE Settings SET value = -5 WHERE key = 'disk_min_file_size'",
	  FS_NONE,
	  { 1, 1, 1 } },
	{ "r",
	  "UPDATE Settings SET value = 42 WHERE key = 'eviction_policy'",
	  FS_NONE,
	  { 1, 1, 1 } },
};

static int rc_allowed(const struct bad_row *b, int rc)
{
	for (int i = 0; i < 3; i++)
		if (b->ok[i] == 1 || b->ok[i] == rc)
			return 1;
	return 0;
}

START_TEST(test_undecodable_rows_do_not_crash)
{
	const struct bad_row *b = &bad_rows[_i];
	struct dc_value k = dc_text(b->key), v = dc_text("fresh"), ik;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char fname[256], path[PATH_MAX];
	dc_iter *it = NULL;
	dc_cache *c;
	uint64_t n;
	int64_t zero = 0;
	int rc;

	c = open_cache();
	set_filled(c, "r", 30, 1);
	set_filled(c, "f", BIG, 0);
	ik = dc_text("i");
	EXPECT_RC(0, dc_cache_incr(c, &ik, 7, &zero, NULL, 0));
	set_filled(c, "keeper", 40, 1);
	mkdir(tu_path(cdir, "ab"), 0700); /* for filename 'ab' */
	dc_cache_close(c);
	if (b->fs != FS_NONE) {
		filename_of("f", fname, sizeof(fname));
		snprintf(path, sizeof(path), "%s/%s", cdir, fname);
		if (b->fs == FS_TRUNCATE) {
			ck_assert_int_eq(truncate(path, 10), 0);
		} else if (b->fs == FS_DIR) {
			ck_assert_int_eq(unlink(path), 0);
			ck_assert_int_eq(mkdir(path, 0700), 0);
		} else {
			char junk[BIG];

			memset(junk, 0xff, sizeof(junk));
			write_whole(path, junk, sizeof(junk));
		}
	}
	if (b->sql)
		sql(cdir, b->sql);

	c = NULL;
	rc = dc_cache_open(cdir, NULL, &c);
	if (rc != 0) {
		/* Only damaged settings may make open refuse. */
		ck_assert_msg(strstr(b->sql ? b->sql : "", "Settings") != NULL,
			      "row %d: open: %s", _i, dc_strerror(rc));
		ck_assert_ptr_null(c);
		goto out;
	}
	memset(&item, 0, sizeof(item));
	rc = dc_cache_get(c, &k, &buf, &item, 0);
	ck_assert_msg(rc_allowed(b, rc), "row %d: get %s: %d %s", _i, b->key,
		      rc, dc_strerror(rc));
	rc = dc_cache_get(c, &k, &buf, &item, DC_FD);
	if (rc == 0 && item.fd >= 0)
		close(item.fd);
	dc_cache_contains(c, &k);
	dc_cache_incr(c, &k, 1, NULL, NULL, 0);
	ck_assert_int_eq(dc_iter_open(c, DC_SORTED, NULL, 0, &it), 0);
	while ((rc = dc_iter_next(it, &buf, &item)) == 0)
		;
	dc_iter_close(it);
	ck_assert_int_ne(rc, 0);
	dc_cache_len(c, &n);
	dc_cache_volume(c, &n);
	dc_cache_peekitem(c, &buf, &item, DC_FIRST);
	rc = dc_cache_check(c, 0, 0, NULL, NULL, &n);
	ck_assert_msg(rc == 0, "row %d: check: %s", _i, dc_strerror(rc));
	rc = dc_cache_check(c, 1, 0, NULL, NULL, &n);
	ck_assert_msg(rc == 0, "row %d: check(fix): %s", _i, dc_strerror(rc));
	dc_cache_delete(c, &k, 0);
	dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
	/* The cache itself survives all of it. */
	if (strcmp(b->key, "keeper") != 0)
		assert_filled(c, "keeper", 40);
	dc_cache_close(c);
	ck_assert(exists(tu_path(cdir, "cache.db")));
	c = open_cache();
	assert_filled(c, "keeper", 40);
	dc_cache_close(c);
out:
	dc_buf_release(&buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 3: a full filesystem                                               */
/* ------------------------------------------------------------------ */

static char mnt[512];
static int mnt_ok;
static int mnt_errno;

/* Mount a 2 MiB tmpfs for the TCase, in the runner process, so that the
 * unmount runs whatever the tests do. */
static void mnt_setup(void)
{
	base_setup();
	snprintf(mnt, sizeof(mnt), "%s/mnt", base_dir);
	mnt_ok = 0;
	if (mkdir(mnt, 0700) != 0)
		mnt_errno = errno;
	else if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV,
		       "size=2m,mode=0700") != 0)
		mnt_errno = errno;
	else
		mnt_ok = 1;
}

static void mnt_teardown(void)
{
	if (mnt_ok && umount2(mnt, 0) != 0)
		umount2(mnt, MNT_DETACH);
	mnt_ok = 0;
	base_teardown();
}

static int rm_below(const char *path)
{
	return tu_run("find '%s' -mindepth 1 -delete", path);
}

/* The per-test part: an empty filesystem, the cache at mnt/cache. */
static void mnt_test_setup(void)
{
	dir_setup();
	if (mnt_ok) {
		rm_below(mnt);
		snprintf(cdir, sizeof(cdir), "%s/cache", mnt);
	}
}

static void mnt_test_teardown(void)
{
	if (mnt_ok)
		rm_below(mnt);
	dir_teardown();
}

/* 0 if the test should run; 1 to skip (not root).  Fails as root. */
static int need_mount(void)
{
	if (mnt_ok)
		return 0;
	if (geteuid() != 0) {
		fprintf(stderr,
			"SKIP: full-disk test needs root to mount a tmpfs "
			"(mount: %s)\n",
			strerror(mnt_errno));
		return 1;
	}
	ck_abort_msg("mount -t tmpfs failed as root: %s", strerror(mnt_errno));
	return 1;
}

static uint64_t free_bytes(const char *path)
{
	struct statvfs s;

	ck_assert_int_eq(statvfs(path, &s), 0);
	return (uint64_t)s.f_bavail * s.f_frsize;
}

/* Fill the filesystem with a ballast file, then give back @leave bytes.
 * Returns the descriptor (kept open so the ballast can shrink later). */
static int fill_fs(const char *path, off_t leave)
{
	static char chunk[65536];
	off_t size = 0;
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	memset(chunk, 'B', sizeof(chunk));
	for (;;) {
		n = write(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		size += n;
	}
	ck_assert_msg(n < 0 && errno == ENOSPC, "filling: %s", strerror(errno));
	/* Small writes until the last page is used too. */
	while (write(fd, chunk, 1) == 1)
		size++;
	if (leave > 0)
		ck_assert_int_eq(ftruncate(fd, size > leave ? size - leave : 0),
				 0);
	return fd;
}

static int is_full(int rc)
{
	return rc == ENOSPC || rc == DC_SQLITE;
}

/* Warnings a failed write may leave: empty value directories only. */
static void assert_no_orphans(dc_cache *c)
{
	struct warns w = run_check(c, 0);

	ck_assert_msg(w.n == w.kinds[DC_WARN_EMPTY_DIR],
		      "check after ENOSPC: %d warnings, first %s", w.n,
		      w.first);
}

START_TEST(test_full_disk_fails_writes_cleanly_and_reads_go_on)
{
	struct dc_value k = dc_text("nb"), kfd = dc_text("nb2"), v, key;
	struct dc_buf buf = DC_BUF_INIT;
	char *data = malloc(1 << 17), src[PATH_MAX], name[16];
	int ok_small[20];
	int fd, srcfd, rc, nfiles;
	dc_cache *c;

	if (need_mount())
		return;
	ck_assert_ptr_nonnull(data);
	c = open_cache();
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		set_filled(c, name, 100, 1);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		set_filled(c, name, BIG, 0);
	}
	nfiles = tu_count_files(cdir);
	ck_assert_int_eq(nfiles, 5);
	/* The source of set_fd lies outside the small filesystem. */
	snprintf(src, sizeof(src), "%s/src", dir);
	fill_value(data, 1 << 17, "nb2|#");
	write_whole(src, data, 1 << 17);

	fd = fill_fs(tu_path(mnt, "ballast"), 0);
	fill_value(data, 1 << 17, "nb|#");
	v = dc_bytes(data, 1 << 16);
	rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(is_full(rc), "set on a full disk: %d %s", rc,
		      dc_strerror(rc));
	srcfd = open(src, O_RDONLY);
	ck_assert_int_ge(srcfd, 0);
	rc = dc_cache_set_fd(c, &kfd, srcfd, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(is_full(rc), "set_fd on a full disk: %d %s", rc,
		      dc_strerror(rc));
	close(srcfd);
	rc = dc_cache_push(c, &v, NULL, DC_NO_EXPIRE, NULL, 0, &buf, &key);
	ck_assert_msg(is_full(rc), "push on a full disk: %d %s", rc,
		      dc_strerror(rc));
	v = dc_textn(data, BIG);
	rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(is_full(rc), "text set on a full disk: %d %s", rc,
		      dc_strerror(rc));
	ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_contains(c, &kfd), DC_NOTFOUND);
	ck_assert_int_eq(tu_count_files(cdir), nfiles);
	/* Small inline writes may or may not fit in the WAL. */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		{
			struct dc_value kx = dc_text(name), vx;

			fill_value(data, 1000, "x|#");
			vx = dc_textn(data, 1000);
			rc = dc_cache_set(c, &kx, &vx, DC_NO_EXPIRE, NULL, 0);
			ck_assert_msg(rc == 0 || is_full(rc),
				      "small set on a full disk: %s",
				      dc_strerror(rc));
			ok_small[i] = rc == 0;
			ck_assert_int_eq(dc_cache_contains(c, &kx),
					 rc == 0 ? 0 : DC_NOTFOUND);
		}
	}
	/* Everything committed before is intact and readable. */
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_filled(c, name, 100);
	}
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		assert_filled(c, name, BIG);
	}
	{
		uint64_t n = cache_len(c), want = 15;

		for (int i = 0; i < 20; i++)
			want += (uint64_t)ok_small[i];
		ck_assert_uint_eq(n, want);
	}
	assert_no_orphans(c);

	/* Space again: writes work again. */
	close(fd);
	ck_assert_int_eq(unlink(tu_path(mnt, "ballast")), 0);
	v = dc_bytes(data, 1 << 16);
	EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0));
	srcfd = open(src, O_RDONLY);
	EXPECT_RC(0, dc_cache_set_fd(c, &kfd, srcfd, DC_NO_EXPIRE, NULL, 0));
	close(srcfd);
	assert_filled(c, "nb2", 1 << 17);
	run_check(c, 1);
	assert_check_clean(c);
	dc_cache_close(c);
	c = open_cache();
	assert_filled(c, "b4", BIG);
	assert_filled(c, "s9", 100);
	dc_cache_close(c);
	dc_buf_release(&buf);
	free(data);
}
END_TEST

START_TEST(test_full_disk_midway_leaves_no_partial_value)
{
	size_t len = 1 << 20;
	char *data = malloc(len), src[PATH_MAX];
	struct dc_value k = dc_text("huge"), v;
	uint64_t before, after;
	int fd, srcfd, rc;
	dc_cache *c;

	if (need_mount())
		return;
	ck_assert_ptr_nonnull(data);
	c = open_cache();
	set_filled(c, "b0", BIG, 0);
	set_filled(c, "s0", 100, 1);
	fill_value(data, len, "huge|#");
	snprintf(src, sizeof(src), "%s/src", dir);
	write_whole(src, data, len);

	/* 256 KiB free: a 1 MiB value runs out in the middle. */
	fd = fill_fs(tu_path(mnt, "ballast"), 256 * 1024);
	before = free_bytes(mnt);
	for (int how = 0; how < 4; how++) {
		if (how == 0) {
			v = dc_bytes(data, len);
			rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
		} else if (how == 1) {
			v = dc_textn(data, len);
			rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
		} else if (how == 2) {
			srcfd = open(src, O_RDONLY);
			ck_assert_int_ge(srcfd, 0);
			rc = dc_cache_set_fd(c, &k, srcfd, DC_NO_EXPIRE, NULL,
					     0);
			close(srcfd);
		} else {
			v = dc_bytes(data, len);
			rc = dc_cache_push(c, &v, NULL, DC_NO_EXPIRE, NULL, 0,
					   NULL, NULL);
		}
		ck_assert_msg(is_full(rc),
			      "write %d of 1 MiB into 256 KiB: %d %s", how, rc,
			      dc_strerror(rc));
		ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
		ck_assert_uint_eq(cache_len(c), 2);
		ck_assert_int_eq(tu_count_files(cdir), 1);
		after = free_bytes(mnt);
		/* The partial file is gone (a little slack for the WAL). */
		ck_assert_msg(after + 65536 >= before,
			      "write %d: %" PRIu64
			      " bytes free before, %" PRIu64 " after",
			      how, before, after);
	}
	assert_filled(c, "b0", BIG);
	assert_filled(c, "s0", 100);
	assert_no_orphans(c);

	close(fd);
	ck_assert_int_eq(unlink(tu_path(mnt, "ballast")), 0);
	v = dc_bytes(data, len);
	EXPECT_RC(0, dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0));
	assert_filled(c, "huge", len);
	run_check(c, 1);
	assert_check_clean(c);
	dc_cache_close(c);
	free(data);
}
END_TEST

START_TEST(test_full_disk_filled_by_the_cache_itself)
{
	struct dc_value v;
	char *data = malloc(1 << 16), name[16];
	int reserve, committed = 0, rc = 0;
	dc_cache *c;

	if (need_mount())
		return;
	ck_assert_ptr_nonnull(data);
	/* A reserve we can give back when even deletes find no room. */
	reserve = open(tu_path(mnt, "reserve"), O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(reserve, 0);
	memset(data, 'R', 1 << 16);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(write(reserve, data, 1 << 16), 1 << 16);
	close(reserve);

	c = open_cache();
	for (int i = 0; i < 100; i++) {
		struct dc_value k;
		char hdr[32];

		snprintf(name, sizeof(name), "f%d", i);
		snprintf(hdr, sizeof(hdr), "%s|#", name);
		fill_value(data, 1 << 16, hdr);
		k = dc_text(name);
		v = dc_bytes(data, 1 << 16);
		rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
		if (rc != 0)
			break;
		committed++;
	}
	ck_assert_msg(is_full(rc), "filling the disk: %d %s", rc,
		      dc_strerror(rc));
	ck_assert_int_gt(committed, 5);
	snprintf(name, sizeof(name), "f%d", committed);
	{
		struct dc_value k = dc_text(name);

		ck_assert_int_eq(dc_cache_contains(c, &k), DC_NOTFOUND);
	}
	ck_assert_int_eq(tu_count_files(cdir), committed);
	for (int i = 0; i < committed; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_filled(c, name, 1 << 16);
	}
	ck_assert_uint_eq(cache_len(c), (uint64_t)committed);
	assert_no_orphans(c);

	ck_assert_int_eq(unlink(tu_path(mnt, "reserve")), 0);
	for (int i = 0; i < 4; i++) {
		struct dc_value k;

		snprintf(name, sizeof(name), "f%d", i);
		k = dc_text(name);
		EXPECT_RC(0, dc_cache_delete(c, &k, 0));
	}
	set_filled(c, "after", 1 << 16, 0);
	assert_filled(c, "after", 1 << 16);
	ck_assert_uint_eq(cache_len(c), (uint64_t)committed - 3);
	run_check(c, 1);
	assert_check_clean(c);
	dc_cache_close(c);
	c = open_cache();
	snprintf(name, sizeof(name), "f%d", committed - 1);
	assert_filled(c, name, 1 << 16);
	dc_cache_close(c);
	free(data);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 4: a writer killed with SIGKILL                                    */
/* ------------------------------------------------------------------ */

/* The child: set k0, k1, ... (every third a value file) and report each
 * committed index on @wfd. */
static int killed_writer(int wfd)
{
	struct dc_options o;
	dc_cache *c = NULL;
	char *data = malloc(BIG), key[16], hdr[32];

	memset(&o, 0, sizeof(o));
	if (!data || dc_cache_open(cdir, &o, &c) != 0)
		return 2;
	for (int i = 0; i < 1000000; i++) {
		struct dc_value k, v;
		size_t len = i % 3 == 0 ? BIG : 60;

		snprintf(key, sizeof(key), "k%d", i);
		snprintf(hdr, sizeof(hdr), "%s|#", key);
		fill_value(data, len, hdr);
		k = dc_text(key);
		v = i % 3 == 0 ? dc_bytes(data, len) : dc_textn(data, len);
		if (dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0) != 0)
			return 3;
		if (write(wfd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			return 4;
	}
	return 0;
}

START_TEST(test_killed_writer_leaves_every_committed_key)
{
	static const int kill_after[] = { 15, 60, 150 };
	int p[2], st = 0, idx, last = -1, got = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	struct warns w;
	dc_cache *c;
	pid_t pid;

	c = open_cache(); /* create it, so the child does not race on it */
	dc_cache_close(c);
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		_exit(killed_writer(p[1]));
	}
	close(p[1]);
	while (got < kill_after[_i] &&
	       read(p[0], &idx, sizeof(idx)) == (ssize_t)sizeof(idx)) {
		last = idx;
		got++;
	}
	if (got < kill_after[_i]) {
		waitpid(pid, &st, 0);
		ck_abort_msg("writer stopped early: status 0x%x", st);
	}
	/* Land somewhere inside a set: file write, commit, or between. */
	usleep((useconds_t)(rand_r(&seed) % 3000));
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	while (read(p[0], &idx, sizeof(idx)) == (ssize_t)sizeof(idx))
		last = idx;
	close(p[0]);

	c = open_cache();
	w = run_check(c, 0);
	assert_only_fixable(&w);
	run_check(c, 1);
	assert_check_clean(c);
	for (int i = 0; i <= last; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		assert_filled(c, key, i % 3 == 0 ? BIG : 60);
	}
	/* The set in flight is all there or not there at all. */
	{
		char key[16];
		int rc;

		snprintf(key, sizeof(key), "k%d", last + 1);
		rc = check_filled(c, key, (last + 1) % 3 == 0 ? BIG : 60);
		ck_assert_msg(rc == 0 || rc == DC_NOTFOUND, "%s: %s", key,
			      dc_strerror(rc));
		ck_assert_uint_eq(cache_len(c),
				  (uint64_t)last + 1 + (rc == 0 ? 1 : 0));
	}
	set_filled(c, "after", BIG, 0);
	dc_cache_close(c);
}
END_TEST

START_TEST(test_killed_inside_transaction_commits_nothing)
{
	int p[2], st = 0, msg = 0;
	dc_cache *c, *watcher;
	pid_t pid;

	c = open_cache();
	set_filled(c, "pre", 50, 1);
	dc_cache_close(c);
	/* Another process keeps the cache open the whole time. */
	watcher = open_at(cdir, 0, 5);
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dc_cache *cc = NULL;
		int one = 1;

		close(p[0]);
		if (dc_cache_open(cdir, NULL, &cc) != 0 ||
		    dc_cache_begin(cc, 0) != 0)
			_exit(2);
		for (int i = 0; i < 10; i++) {
			char key[16];

			snprintf(key, sizeof(key), "t%d", i);
			set_filled(cc, key, i % 2 ? 50 : BIG, i % 2);
		}
		if (write(p[1], &one, sizeof(one)) != (ssize_t)sizeof(one))
			_exit(3);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &msg, sizeof(msg)) != (ssize_t)sizeof(msg)) {
		waitpid(pid, &st, 0);
		ck_abort_msg("child failed: status 0x%x", st);
	}
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(p[0]);

	/* The lock died with the child: the watcher writes at once. */
	set_filled(watcher, "watcher", 50, 1);
	assert_filled(watcher, "pre", 50);
	for (int i = 0; i < 10; i++) {
		char key[16];
		struct dc_value k;

		snprintf(key, sizeof(key), "t%d", i);
		k = dc_text(key);
		ck_assert_int_eq(dc_cache_contains(watcher, &k), DC_NOTFOUND);
	}
	ck_assert_uint_eq(cache_len(watcher), 2);
	{
		struct warns w = run_check(watcher, 0);

		assert_only_fixable(&w);
	}
	run_check(watcher, 1);
	assert_check_clean(watcher);
	ck_assert_int_eq(tu_count_files(cdir), 0);
	dc_cache_close(watcher);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 5: permissions (as nobody; root ignores modes)                     */
/* ------------------------------------------------------------------ */

static void drop_privileges(void)
{
	struct passwd *pw = getpwnam("nobody");
	uid_t uid = pw ? pw->pw_uid : 65534;
	gid_t gid = pw ? pw->pw_gid : 65534;

	if (geteuid() != 0)
		return;
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		_exit(90);
	if (geteuid() == 0)
		_exit(91);
}

/* In the unprivileged child.  Returns 0 or the number of the failed
 * check (details on stderr). */
static int eacces_checks(const char *top)
{
	char path[1024], fname[PATH_MAX];
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value k;
	dc_cache *c = NULL;
	DIR *d;
	struct dirent *e;
	int rc, status = 0;

	/* A cache directory nobody may enter. */
	snprintf(path, sizeof(path), "%s/locked", top);
	if (mkdir(path, 0700) != 0 || chmod(path, 0) != 0)
		return 1;
	rc = dc_cache_open(path, NULL, &c);
	if (rc != EACCES || c) {
		fprintf(stderr, "open of a mode-000 dir: %d %s\n", rc,
			dc_strerror(rc));
		status = 2;
		goto out;
	}
	/* A missing cache below a directory we may not write. */
	snprintf(path, sizeof(path), "%s/ro", top);
	if (mkdir(path, 0555) != 0)
		return 3;
	snprintf(path, sizeof(path), "%s/ro/new", top);
	rc = dc_cache_open(path, NULL, &c);
	if (rc != EACCES || c) {
		fprintf(stderr, "create below a read-only dir: %d %s\n", rc,
			dc_strerror(rc));
		status = 4;
		goto out;
	}
	/* An unreadable cache.db. */
	snprintf(path, sizeof(path), "%s/db", top);
	if (dc_cache_open(path, NULL, &c) != 0)
		return 5;
	dc_cache_close(c);
	c = NULL;
	if (chmod(tu_path(path, "cache.db"), 0) != 0)
		return 6;
	rc = dc_cache_open(path, NULL, &c);
	if (rc != EACCES || c) {
		fprintf(stderr, "open of a mode-000 cache.db: %d %s\n", rc,
			dc_strerror(rc));
		status = 7;
		goto out;
	}
	/* A value file we may not read counts as a miss. */
	snprintf(path, sizeof(path), "%s/val", top);
	if (dc_cache_open(path, NULL, &c) != 0)
		return 8;
	{
		char *data = calloc(1, BIG);
		struct dc_value v;

		k = dc_text("big");
		v = dc_bytes(data, BIG);
		rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
		free(data);
		if (rc != 0)
			return 9;
	}
	d = opendir(path);
	if (!d)
		return 10;
	fname[0] = 0;
	while ((e = readdir(d)))
		if (strlen(e->d_name) == 2 && e->d_name[0] != '.')
			snprintf(fname, sizeof(fname), "%s/%s", path,
				 e->d_name);
	closedir(d);
	if (!fname[0] || chmod(fname, 0) != 0)
		return 11;
	rc = dc_cache_get(c, &k, &buf, &item, 0);
	if (rc != DC_NOTFOUND) {
		fprintf(stderr, "get of an unreadable value file: %d %s\n", rc,
			dc_strerror(rc));
		status = 12;
	}
	chmod(fname, 0700);
	dc_cache_close(c);
	c = NULL;
out:
	dc_cache_close(c);
	dc_buf_release(&buf);
	return status;
}

START_TEST(test_unreadable_directory_gives_eacces)
{
	char top[512];
	pid_t pid;
	int st = 0;

	/* Let nobody reach its own directory below ours. */
	ck_assert_int_eq(chmod(base_dir, 0711), 0);
	ck_assert_int_eq(chmod(dir, 0711), 0);
	snprintf(top, sizeof(top), "%s/eacces", dir);
	ck_assert_int_eq(mkdir(top, 0700), 0);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");

		ck_assert_int_eq(chown(top, pw ? pw->pw_uid : 65534,
				       pw ? pw->pw_gid : 65534),
				 0);
	}
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		drop_privileges();
		_exit(eacces_checks(top));
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "unprivileged child: status 0x%x (check %d failed)", st,
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
END_TEST

/* ------------------------------------------------------------------ */

static TCase *new_tcase(const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, timeout);
	return tc;
}

Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc;

	tc = new_tcase("unsafe_paths", 60);
	tcase_add_loop_test(tc, test_unsafe_filename_never_escapes_cache_dir, 0,
			    NVARIANTS * NUOPS);
	suite_add_tcase(s, tc);

	tc = new_tcase("invalid_args", 60);
	tcase_add_test(tc, test_null_arguments_are_inval);
	tcase_add_test(tc, test_bad_types_are_inval);
	tcase_add_test(tc, test_invalid_utf8_text_is_inval);
	tcase_add_test(tc, test_unusual_valid_text_round_trips_with_python);
	tcase_add_test(tc, test_unknown_setting_names);
	tcase_add_test(tc, test_bad_setting_values_are_inval);
	tcase_add_test(tc, test_layout_mismatch_and_non_directories);
	tcase_add_test(tc, test_sub_collection_names_are_checked);
	tcase_add_test(tc, test_set_fd_and_set_file_misuse);
	suite_add_tcase(s, tc);

	tc = new_tcase("corrupt", 60);
	tcase_add_loop_test(tc, test_garbage_cache_db_is_corrupt, 0, 5);
	tcase_add_test(tc, test_garbage_shard_and_truncated_db_do_not_crash);
	tcase_add_loop_test(tc, test_undecodable_rows_do_not_crash, 0,
			    (int)(sizeof(bad_rows) / sizeof(bad_rows[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("full_disk");
	tcase_add_unchecked_fixture(tc, mnt_setup, mnt_teardown);
	tcase_add_checked_fixture(tc, mnt_test_setup, mnt_test_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_full_disk_fails_writes_cleanly_and_reads_go_on);
	tcase_add_test(tc, test_full_disk_midway_leaves_no_partial_value);
	tcase_add_test(tc, test_full_disk_filled_by_the_cache_itself);
	suite_add_tcase(s, tc);

	tc = new_tcase("killed", 120);
	tcase_add_loop_test(tc, test_killed_writer_leaves_every_committed_key,
			    0, 3);
	tcase_add_test(tc, test_killed_inside_transaction_commits_nothing);
	suite_add_tcase(s, tc);

	tc = new_tcase("permissions", 60);
	tcase_add_test(tc, test_unreadable_directory_gives_eacces);
	suite_add_tcase(s, tc);
	return s;
}
