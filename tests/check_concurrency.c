/* check_concurrency.c - threads, processes and fork() sharing one cache
 * SPDX-License-Identifier: MIT
 *
 * Black-box tests against dcache.h only.  Many threads hammer one handle
 * (plain and FanoutCache), several processes share one directory, a child
 * keeps using a handle inherited across fork(), threads run their own
 * transactions, and readers keep working next to a connection (ours or
 * Python's) that holds the write lock.  Every test ends with exact
 * invariants: counter totals, every queued item pulled exactly once,
 * len() equal to the rows, check() clean.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Suite *concurrency_suite(void);

/* ------------------------------------------------------------------ */
/* Fixture                                                            */
/* ------------------------------------------------------------------ */

/* One directory per TCase, made in the runner process by an unchecked
 * fixture, so that it is removed even when a test dies before its own
 * teardown runs; each test works in a fresh subdirectory of it. */
static char *base_dir;
static char *dir;       /* this test's directory */
static char cdir[1024]; /* the cache directory, dir/cache */

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

static dc_cache *open_cache(int shards, double timeout)
{
	struct dc_options o;
	dc_cache *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.shards = shards;
	o.timeout = timeout;
	rc = dc_cache_open(cdir, &o, &c);
	ck_assert_msg(rc == 0, "open %s (shards %d): %d %s", cdir, shards, rc,
		      dc_strerror(rc));
	ck_assert_ptr_nonnull(c);
	return c;
}

/* A value whose every byte can be verified: @hdr repeated over @len
 * bytes.  Headers end in '#' and start with the key's name and '|'. */
static void fill_value(char *buf, size_t len, const char *hdr)
{
	size_t hl = strlen(hdr);

	for (size_t i = 0; i < len; i++)
		buf[i] = hdr[i % hl];
}

static int value_ok(const void *data, size_t len, const char *prefix)
{
	const char *d = data;
	const char *end;
	size_t pl = strlen(prefix);
	size_t hl;

	if (!d || len < pl || memcmp(d, prefix, pl) != 0)
		return 0;
	end = memchr(d, '#', len);
	if (!end)
		return 0;
	hl = (size_t)(end - d) + 1;
	for (size_t i = hl; i < len; i++)
		if (d[i] != d[i % hl])
			return 0;
	return 1;
}

/* What the hammer tests store: short TEXT inline, or BIG BYTES in a
 * value file.  Checks type, length, file_backed and every byte. */
static int item_ok(const struct dc_item *it, const char *prefix)
{
	const struct dc_value *v = &it->value;

	if (v->type == DC_TYPE_TEXT)
		return !it->file_backed && it->size == v->len &&
		       value_ok(v->data, v->len, prefix);
	if (v->type == DC_TYPE_BYTES)
		return v->len == BIG && it->file_backed && it->size == BIG &&
		       value_ok(v->data, v->len, prefix);
	return 0;
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

static void assert_check_clean(dc_cache *c)
{
	struct warns w;
	uint64_t n = 99;
	int rc;

	memset(&w, 0, sizeof(w));
	rc = dc_cache_check(c, 0, DC_RETRY, on_warn, &w, &n);
	ck_assert_msg(rc == 0, "check: %d %s", rc, dc_strerror(rc));
	ck_assert_msg(n == 0 && w.n == 0,
		      "check: %" PRIu64 " warnings (%d callbacks), first %s", n,
		      w.n, w.first);
}

static uint64_t cache_len(dc_cache *c)
{
	uint64_t n = 0;
	int rc = dc_cache_len(c, &n);

	ck_assert_msg(rc == 0, "len: %s", dc_strerror(rc));
	return n;
}

static uint64_t iter_count(dc_cache *c)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	dc_iter *it = NULL;
	uint64_t n = 0;
	int rc;

	rc = dc_iter_open(c, 0, NULL, 0, &it);
	ck_assert_msg(rc == 0, "iter_open: %s", dc_strerror(rc));
	while ((rc = dc_iter_next(it, &buf, &item)) == 0)
		n++;
	ck_assert_msg(rc == DC_NOTFOUND, "iter_next: %s", dc_strerror(rc));
	dc_iter_close(it);
	dc_buf_release(&buf);
	return n;
}

/* The INT value of @key, or -1 if it is missing. */
static int64_t get_int(dc_cache *c, const char *key)
{
	struct dc_value k = dc_text(key);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	int rc;

	memset(&item, 0, sizeof(item));
	rc = dc_cache_get(c, &k, &buf, &item, DC_RETRY);
	dc_buf_release(&buf);
	if (rc == DC_NOTFOUND)
		return -1;
	ck_assert_msg(rc == 0, "get %s: %s", key, dc_strerror(rc));
	ck_assert_msg(item.value.type == DC_TYPE_INT, "get %s: type %d", key,
		      (int)item.value.type);
	return item.value.i;
}

/* get_int for worker threads, which must not call ck_assert: 0 and the
 * INT in *out, or an error (DC_TYPE for another type). */
static int get_int_rc(dc_cache *c, const char *key, int64_t *out)
{
	struct dc_value k = dc_text(key);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	int rc;

	memset(&item, 0, sizeof(item));
	rc = dc_cache_get(c, &k, &buf, &item, DC_RETRY);
	if (rc == 0 && item.value.type != DC_TYPE_INT)
		rc = DC_TYPE;
	if (rc == 0)
		*out = item.value.i;
	dc_buf_release(&buf);
	return rc;
}

/* 0 and the TEXT value of @key in @out, or DC_NOTFOUND. */
static int get_text(dc_cache *c, const char *key, char *out, size_t size)
{
	struct dc_value k = dc_text(key);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	int rc;

	memset(&item, 0, sizeof(item));
	rc = dc_cache_get(c, &k, &buf, &item, DC_RETRY);
	if (rc == 0) {
		ck_assert_int_eq(item.value.type, DC_TYPE_TEXT);
		snprintf(out, size, "%.*s", (int)item.value.len,
			 (const char *)item.value.data);
	}
	dc_buf_release(&buf);
	return rc;
}

static void set_text(dc_cache *c, const char *key, const char *val,
		     unsigned flags)
{
	struct dc_value k = dc_text(key), v = dc_text(val);
	int rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, flags);

	ck_assert_msg(rc == 0, "set %s: %s", key, dc_strerror(rc));
}

/* Does a queue work on this handle?  DiskCache's FanoutCache has no
 * push/pull, so a port may refuse them there (DC_INVAL); anything else
 * must be a working queue.  Leaves the queue empty. */
static int queue_supported(dc_cache *c)
{
	struct dc_value v = dc_text("probe");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	int rc;

	rc =
	    dc_cache_push(c, &v, "q", DC_NO_EXPIRE, NULL, DC_RETRY, NULL, NULL);
	if (rc == DC_INVAL) {
		fprintf(stderr,
			"NOTE: push on a %d-shard FanoutCache is DC_INVAL; "
			"queue checks skipped for it\n",
			dc_cache_shards(c));
		return 0;
	}
	ck_assert_msg(rc == 0, "probe push: %s", dc_strerror(rc));
	rc = dc_cache_pull(c, "q", &buf, &item, DC_RETRY);
	ck_assert_msg(rc == 0, "probe pull: %s", dc_strerror(rc));
	ck_assert_int_eq(item.value.type, DC_TYPE_TEXT);
	ck_assert_str_eq((const char *)item.value.data, "probe");
	dc_buf_release(&buf);
	return 1;
}

/* ------------------------------------------------------------------ */
/* 1, 2: eight threads hammering one handle                           */
/* ------------------------------------------------------------------ */

#define NTHREADS 8
#define NOPS     250
#define NKEYS    16
#define NCTR     4

struct worker {
	dc_cache *c;
	int id;
	unsigned seed;
	int fanout; /* unretried writes may time out (0.010 s shards) */
	int queue;  /* push/pull work on this handle */
	int nincr[NCTR];
	int64_t incr_res[NCTR][NOPS];
	int npushed, npulled;
	int pushed[NOPS];
	int pulled[NOPS];
	char err[256];
};

#define WFAIL(w, ...)                                                          \
	do {                                                                   \
		if (!(w)->err[0])                                              \
			snprintf((w)->err, sizeof((w)->err), __VA_ARGS__);     \
		goto out;                                                      \
	} while (0)

/* A write that was not retried: plain caches wait 60 s and must not time
 * out; FanoutCache shards wait 10 ms and may. */
static int write_rc_ok(const struct worker *w, int rc)
{
	return rc == 0 || (w->fanout && rc == DC_TIMEOUT);
}

static void *hammer(void *arg)
{
	struct worker *w = arg;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char *big = malloc(BIG);
	char small[256], hdr[64], key[16], pfx[16], pv[32];
	int64_t zero = 0;

	if (!big)
		WFAIL(w, "malloc");
	for (int s = 0; s < NOPS; s++) {
		int r = rand_r(&w->seed) % 100;
		int k = rand_r(&w->seed) % NKEYS;
		struct dc_value kv, v, res;
		int rc;

		snprintf(key, sizeof(key), "k%d", k);
		snprintf(pfx, sizeof(pfx), "k%d|", k);
		kv = dc_text(key);
		memset(&item, 0, sizeof(item));
		if (r < 20) {
			rc = dc_cache_get(w->c, &kv, &buf, &item, 0);
			if (rc == 0 && !item_ok(&item, pfx))
				WFAIL(
				    w, "get %s: wrong value (type %d len %zu)",
				    key, (int)item.value.type, item.value.len);
			if (rc != 0 && rc != DC_NOTFOUND)
				WFAIL(w, "get %s: %s", key, dc_strerror(rc));
		} else if (r < 45) {
			int add = r >= 35;

			snprintf(hdr, sizeof(hdr), "k%d|t%d|s%d#", k, w->id, s);
			if (rand_r(&w->seed) % 8 == 0) {
				fill_value(big, BIG, hdr);
				v = dc_bytes(big, BIG);
			} else {
				size_t len =
				    strlen(hdr) *
				    (1 + (size_t)(rand_r(&w->seed) % 3));

				fill_value(small, len, hdr);
				v = dc_textn(small, len);
			}
			if (add)
				rc = dc_cache_add(w->c, &kv, &v, DC_NO_EXPIRE,
						  NULL, 0);
			else
				rc = dc_cache_set(w->c, &kv, &v, DC_NO_EXPIRE,
						  NULL, 0);
			if (!write_rc_ok(w, rc) && !(add && rc == DC_EXISTS))
				WFAIL(w, "%s %s: %s", add ? "add" : "set", key,
				      dc_strerror(rc));
		} else if (r < 52) {
			rc = dc_cache_delete(w->c, &kv, 0);
			if (!write_rc_ok(w, rc) && rc != DC_NOTFOUND)
				WFAIL(w, "delete %s: %s", key, dc_strerror(rc));
		} else if (r < 60) {
			rc = dc_cache_pop(w->c, &kv, &buf, &item, 0);
			if (rc == 0 && !item_ok(&item, pfx))
				WFAIL(w, "pop %s: wrong value", key);
			if (rc != 0 && rc != DC_NOTFOUND)
				WFAIL(w, "pop %s: %s", key, dc_strerror(rc));
		} else if (r < 80 || !w->queue) {
			int ci = rand_r(&w->seed) % NCTR;

			snprintf(key, sizeof(key), "ctr%d", ci);
			kv = dc_text(key);
			memset(&res, 0, sizeof(res));
			rc = dc_cache_incr(w->c, &kv, 1, &zero, &res, DC_RETRY);
			if (rc != 0)
				WFAIL(w, "incr %s: %s", key, dc_strerror(rc));
			if (res.type != DC_TYPE_INT)
				WFAIL(w, "incr %s: result type %d", key,
				      (int)res.type);
			w->incr_res[ci][w->nincr[ci]++] = res.i;
		} else if (r < 90) {
			int id = w->id * NOPS + s;

			snprintf(pv, sizeof(pv), "P%d", id);
			v = dc_text(pv);
			rc = dc_cache_push(w->c, &v, "q", DC_NO_EXPIRE, NULL,
					   DC_RETRY, NULL, NULL);
			if (rc != 0)
				WFAIL(w, "push: %s", dc_strerror(rc));
			w->pushed[w->npushed++] = id;
		} else {
			int id = -1;

			rc = dc_cache_pull(w->c, "q", &buf, &item, DC_RETRY);
			if (rc == DC_NOTFOUND)
				continue;
			if (rc != 0)
				WFAIL(w, "pull: %s", dc_strerror(rc));
			if (item.value.type != DC_TYPE_TEXT ||
			    sscanf(item.value.data, "P%d", &id) != 1)
				WFAIL(w, "pull: unexpected value");
			if (item.key.type != DC_TYPE_TEXT ||
			    strncmp(item.key.data, "q-", 2) != 0)
				WFAIL(w, "pull: unexpected key");
			w->pulled[w->npulled++] = id;
		}
	}
out:
	free(big);
	dc_buf_release(&buf);
	return NULL;
}

/* Every incr result of one counter, from all threads, is exactly
 * 1..total: no increment lost, none seen twice. */
static void verify_counter(const char *what, const int64_t *res, int n,
			   int64_t final)
{
	char *seen = calloc((size_t)n + 1, 1);

	ck_assert_ptr_nonnull(seen);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(res[i] >= 1 && res[i] <= n,
			      "%s: result %" PRId64 " outside 1..%d", what,
			      res[i], n);
		ck_assert_msg(!seen[res[i]], "%s: result %" PRId64 " twice",
			      what, res[i]);
		seen[res[i]] = 1;
	}
	ck_assert_msg(final == (n ? n : -1),
		      "%s: final value %" PRId64 ", %d increments", what, final,
		      n);
	free(seen);
}

/* Pull what is left; then every pushed id must have been pulled exactly
 * once and nothing else pulled.  @pulled_cnt is indexed by id. */
static void drain_and_verify_queue(dc_cache *c, const char *pushed,
				   int *pulled_cnt, int nids)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	int rc, id, guard = 0;

	while ((rc = dc_cache_pull(c, "q", &buf, &item, DC_RETRY)) == 0) {
		ck_assert_int_eq(item.value.type, DC_TYPE_TEXT);
		ck_assert_int_eq(sscanf(item.value.data, "P%d", &id), 1);
		ck_assert(id >= 0 && id < nids);
		pulled_cnt[id]++;
		ck_assert_int_lt(guard++, nids + 1);
	}
	ck_assert_msg(rc == DC_NOTFOUND, "drain: %s", dc_strerror(rc));
	dc_buf_release(&buf);
	for (id = 0; id < nids; id++)
		ck_assert_msg(pulled_cnt[id] == (pushed[id] ? 1 : 0),
			      "queue item P%d pushed %d times, pulled %d times",
			      id, pushed[id], pulled_cnt[id]);
}

static void run_hammer(int shards)
{
	dc_cache *c = open_cache(shards, 0);
	struct worker *w = calloc(NTHREADS, sizeof(*w));
	pthread_t th[NTHREADS];
	int queue = queue_supported(c);
	int nids = NTHREADS * NOPS;
	char *pushed = calloc((size_t)nids, 1);
	int *pulled_cnt = calloc((size_t)nids, sizeof(int));
	uint64_t expect_len = 0;

	ck_assert(w && pushed && pulled_cnt);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].c = c;
		w[i].id = i;
		w[i].seed = 7919u * (unsigned)(i + 1);
		w[i].fanout = shards > 0;
		w[i].queue = queue;
		ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &w[i]),
				 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_msg(!w[i].err[0], "thread %d: %s", i, w[i].err);

	for (int ci = 0; ci < NCTR; ci++) {
		int64_t *all = malloc(sizeof(int64_t) * NTHREADS * NOPS);
		char name[16];
		int n = 0;

		ck_assert_ptr_nonnull(all);
		for (int i = 0; i < NTHREADS; i++)
			for (int j = 0; j < w[i].nincr[ci]; j++)
				all[n++] = w[i].incr_res[ci][j];
		snprintf(name, sizeof(name), "ctr%d", ci);
		verify_counter(name, all, n, get_int(c, name));
		expect_len += n > 0;
		free(all);
	}

	if (queue) {
		for (int i = 0; i < NTHREADS; i++) {
			for (int j = 0; j < w[i].npushed; j++)
				pushed[w[i].pushed[j]] = 1;
			for (int j = 0; j < w[i].npulled; j++)
				pulled_cnt[w[i].pulled[j]]++;
		}
		drain_and_verify_queue(c, pushed, pulled_cnt, nids);
	}

	for (int k = 0; k < NKEYS; k++) {
		char key[16], pfx[16];
		struct dc_value kv;
		struct dc_buf buf = DC_BUF_INIT;
		struct dc_item item;
		int rc;

		snprintf(key, sizeof(key), "k%d", k);
		snprintf(pfx, sizeof(pfx), "k%d|", k);
		kv = dc_text(key);
		rc = dc_cache_get(c, &kv, &buf, &item, 0);
		ck_assert_msg(rc == 0 || rc == DC_NOTFOUND, "get %s: %s", key,
			      dc_strerror(rc));
		if (rc == 0) {
			ck_assert_msg(item_ok(&item, pfx), "%s corrupted", key);
			expect_len++;
		}
		ck_assert_int_eq(dc_cache_contains(c, &kv), rc);
		dc_buf_release(&buf);
	}
	ck_assert_uint_eq(cache_len(c), expect_len);
	ck_assert_uint_eq(iter_count(c), expect_len);
	assert_check_clean(c);
	dc_cache_close(c);

	/* A fresh handle sees the same. */
	c = open_cache(0, 0);
	ck_assert_uint_eq(cache_len(c), expect_len);
	assert_check_clean(c);
	dc_cache_close(c);
	free(w);
	free(pushed);
	free(pulled_cnt);
}

START_TEST(test_eight_threads_on_one_plain_handle_lose_nothing)
{
	run_hammer(DC_SHARDS_PLAIN);
}
END_TEST

START_TEST(test_eight_threads_on_one_fanout_handle_lose_nothing)
{
	run_hammer(4);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 3: several processes on one directory                              */
/* ------------------------------------------------------------------ */

#define PROC_OPS 120

/* Runs in a forked child with its own handle.  Records every incr
 * result and every pulled id in files of the test directory.  Returns
 * the exit status: 0, or the number of the failing step. */
static int proc_worker(int idx, int shards, int queue, int start_fd)
{
	struct dc_value ctr = dc_text("ctr"), v, res;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_options o;
	dc_cache *c = NULL;
	char path[PATH_MAX], pv[32];
	FILE *fi = NULL, *fp = NULL;
	int64_t zero = 0;
	int rc, status = 0, id;
	char go;

	/* Wait until every sibling exists, so they really overlap. */
	if (read(start_fd, &go, 1) < 0) {
		status = 1;
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.shards = shards;
	rc = dc_cache_open(cdir, &o, &c);
	if (rc != 0) {
		fprintf(stderr, "child %d: open: %s\n", idx, dc_strerror(rc));
		status = 2;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/incr-%d", dir, idx);
	fi = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/pull-%d", dir, idx);
	fp = fopen(path, "w");
	if (!fi || !fp) {
		status = 3;
		goto out;
	}
	for (int j = 0; j < PROC_OPS; j++) {
		rc = dc_cache_incr(c, &ctr, 1, &zero, &res, DC_RETRY);
		if (rc != 0 || res.type != DC_TYPE_INT) {
			fprintf(stderr, "child %d: incr: %s\n", idx,
				dc_strerror(rc));
			status = 4;
			goto out;
		}
		fprintf(fi, "%" PRId64 "\n", res.i);
		if (!queue)
			continue;
		snprintf(pv, sizeof(pv), "P%d", idx * PROC_OPS + j);
		v = dc_text(pv);
		rc = dc_cache_push(c, &v, "q", DC_NO_EXPIRE, NULL, DC_RETRY,
				   NULL, NULL);
		if (rc != 0) {
			fprintf(stderr, "child %d: push: %s\n", idx,
				dc_strerror(rc));
			status = 5;
			goto out;
		}
		if (j % 2)
			continue;
		rc = dc_cache_pull(c, "q", &buf, &item, DC_RETRY);
		if (rc == DC_NOTFOUND)
			continue;
		if (rc != 0 || item.value.type != DC_TYPE_TEXT ||
		    sscanf(item.value.data, "P%d", &id) != 1) {
			fprintf(stderr, "child %d: pull: %s\n", idx,
				dc_strerror(rc));
			status = 6;
			goto out;
		}
		fprintf(fp, "%d\n", id);
	}
out:
	if (fi && fclose(fi) != 0)
		status = 7;
	if (fp && fclose(fp) != 0)
		status = 7;
	dc_cache_close(c);
	dc_buf_release(&buf);
	return status;
}

static void run_processes(int nproc, int shards)
{
	dc_cache *c = open_cache(shards, 0);
	int queue = queue_supported(c);
	int nids = nproc * PROC_OPS;
	char *pushed = calloc((size_t)nids, 1);
	int *pulled_cnt = calloc((size_t)nids, sizeof(int));
	int64_t *res = calloc((size_t)nids, sizeof(int64_t));
	pid_t pids[8];
	int start[2];
	int n = 0;

	ck_assert(pushed && pulled_cnt && res);
	ck_assert_int_le(nproc, 8);
	/* The parent's handle stays open (and used) throughout. */
	ck_assert_int_eq(get_int(c, "ctr"), -1);
	ck_assert_int_eq(pipe(start), 0);
	for (int i = 0; i < nproc; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			close(start[1]);
			_exit(proc_worker(i, shards, queue, start[0]));
		}
	}
	close(start[0]);
	close(start[1]); /* everybody starts now */
	for (int i = 0; i < nproc; i++) {
		int st = 0;

		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "child %d: status 0x%x", i, st);
	}

	for (int i = 0; i < nproc; i++) {
		char path[PATH_MAX];
		FILE *f;
		long long v;
		int id;

		snprintf(path, sizeof(path), "%s/incr-%d", dir, i);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		while (fscanf(f, "%lld", &v) == 1) {
			ck_assert_int_lt(n, nids);
			res[n++] = v;
		}
		fclose(f);
		snprintf(path, sizeof(path), "%s/pull-%d", dir, i);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		while (fscanf(f, "%d", &id) == 1) {
			ck_assert(id >= 0 && id < nids);
			pulled_cnt[id]++;
		}
		fclose(f);
	}
	ck_assert_int_eq(n, nids);
	verify_counter("ctr", res, n, get_int(c, "ctr"));
	if (queue) {
		memset(pushed, 1, (size_t)nids);
		drain_and_verify_queue(c, pushed, pulled_cnt, nids);
	}
	ck_assert_uint_eq(cache_len(c), 1);
	assert_check_clean(c);
	dc_cache_close(c);
	free(pushed);
	free(pulled_cnt);
	free(res);
}

START_TEST(test_processes_share_counter_and_queue_exactly)
{
	static const struct {
		int nproc, shards;
	} v[] = { { 2, DC_SHARDS_PLAIN }, { 4, DC_SHARDS_PLAIN }, { 4, 4 } };

	run_processes(v[_i].nproc, v[_i].shards);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 4: fork() with an inherited handle                                 */
/* ------------------------------------------------------------------ */

#define FORK_OPS 100

struct simple_thread {
	dc_cache *c;
	unsigned flags;
	int n;
	int rc;
};

static void *incr_thread(void *arg)
{
	struct simple_thread *t = arg;
	struct dc_value k = dc_text("ctr");
	int64_t zero = 0;

	for (int i = 0; i < t->n && t->rc == 0; i++)
		t->rc = dc_cache_incr(t->c, &k, 1, &zero, NULL, t->flags);
	return NULL;
}

/* The child's side: keep using the parent's handle, from this thread and
 * a new one, while the parent does the same. */
static int fork_child(dc_cache *c, unsigned wf, int close_it)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value k = dc_text("big"), ctr = dc_text("ctr"), v;
	struct simple_thread t = { c, wf, 20, 0 };
	pthread_t th;
	char key[32], val[32], got[64];
	int64_t zero = 0;
	int rc, status = 0;

	if (get_text(c, "a", got, sizeof(got)) != 0 ||
	    strcmp(got, "parent") != 0) {
		status = 10;
		goto out;
	}
	rc = dc_cache_get(c, &k, &buf, &item, 0);
	if (rc != 0 || !item_ok(&item, "big|")) {
		status = 11;
		goto out;
	}
	if (pthread_create(&th, NULL, incr_thread, &t) != 0) {
		status = 12;
		goto out;
	}
	for (int j = 0; j < FORK_OPS; j++) {
		struct dc_value kk;

		snprintf(key, sizeof(key), "c%d", j);
		snprintf(val, sizeof(val), "child%d", j);
		v = dc_text(val);
		kk = dc_text(key);
		if (dc_cache_set(c, &kk, &v, DC_NO_EXPIRE, NULL, wf) != 0 ||
		    dc_cache_incr(c, &ctr, 1, &zero, NULL, wf) != 0) {
			status = 13;
			break;
		}
	}
	pthread_join(th, NULL);
	if (t.rc != 0)
		status = 14;
	if (status == 0 && get_text(c, "c7", got, sizeof(got)) != 0)
		status = 15;
out:
	dc_buf_release(&buf);
	if (close_it)
		dc_cache_close(c);
	return status;
}

static void *touch_thread(void *arg)
{
	struct simple_thread *t = arg;
	struct dc_value k = dc_text("fromthread"), v = dc_text("x");

	t->rc = dc_cache_set(t->c, &k, &v, DC_NO_EXPIRE, NULL, t->flags);
	return NULL;
}

START_TEST(test_fork_child_keeps_using_inherited_handle)
{
	/* plain, child leaves the handle; plain, child closes it; fanout. */
	int shards = _i == 2 ? 4 : DC_SHARDS_PLAIN;
	unsigned wf = shards > 0 ? DC_RETRY : 0;
	dc_cache *c = open_cache(shards, 0);
	char *big = malloc(BIG);
	struct dc_value k = dc_text("big"), v, ctr = dc_text("ctr");
	struct simple_thread t = { c, wf, 0, 0 };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	char key[32], got[64];
	pthread_t th;
	int64_t zero = 0;
	pid_t pid;
	int st = 0;

	ck_assert_ptr_nonnull(big);
	set_text(c, "a", "parent", wf);
	fill_value(big, BIG, "big|#");
	v = dc_bytes(big, BIG);
	ck_assert_int_eq(dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, wf), 0);
	ck_assert_int_eq(dc_cache_incr(c, &ctr, 1, &zero, NULL, wf), 0);
	ck_assert_int_eq(dc_cache_get(c, &k, &buf, &item, 0), 0);
	/* A second thread, so the parent holds several connections. */
	ck_assert_int_eq(pthread_create(&th, NULL, touch_thread, &t), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.rc, 0);

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fork_child(c, wf, _i >= 1));

	/* The parent keeps writing while the child does. */
	for (int j = 0; j < FORK_OPS; j++) {
		snprintf(key, sizeof(key), "p%d", j);
		set_text(c, key, "parent", wf);
		ck_assert_int_eq(dc_cache_incr(c, &ctr, 1, &zero, NULL, wf), 0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status 0x%x (exit %d)", st,
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);

	/* The parent's handle still works and sees the child's writes. */
	ck_assert_int_eq(get_int(c, "ctr"), 1 + FORK_OPS + FORK_OPS + 20);
	for (int j = 0; j < FORK_OPS; j++) {
		char want[32];

		snprintf(key, sizeof(key), "c%d", j);
		snprintf(want, sizeof(want), "child%d", j);
		ck_assert_int_eq(get_text(c, key, got, sizeof(got)), 0);
		ck_assert_str_eq(got, want);
	}
	ck_assert_int_eq(dc_cache_get(c, &k, &buf, &item, 0), 0);
	ck_assert(item_ok(&item, "big|"));
	set_text(c, "after", "yes", wf);
	ck_assert_uint_eq(cache_len(c), 5 + 2 * FORK_OPS);
	assert_check_clean(c);
	dc_cache_close(c);

	c = open_cache(0, 0);
	ck_assert_int_eq(get_int(c, "ctr"), 1 + 2 * FORK_OPS + 20);
	ck_assert_int_eq(get_text(c, "after", got, sizeof(got)), 0);
	assert_check_clean(c);
	dc_cache_close(c);
	dc_buf_release(&buf);
	free(big);
}
END_TEST

/* The child of a parent that holds a write transaction: it is not part
 * of that transaction, sees only committed data, times out while the
 * parent holds the lock, and its writes survive the parent's rollback. */
static int tx_fork_child(dc_cache *c, int to_parent, int from_parent)
{
	struct dc_value k = dc_text("c"), v = dc_int(3);
	char got[64], go;
	int rc, status = 0;

	if (get_text(c, "a", got, sizeof(got)) != 0 || strcmp(got, "one")) {
		status = 20;
		goto out;
	}
	rc = get_text(c, "intx", got, sizeof(got));
	if (rc != DC_NOTFOUND) {
		fprintf(stderr, "child: parent's uncommitted key: %s\n",
			dc_strerror(rc));
		status = 21;
		goto out;
	}
	rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0);
	if (rc != DC_TIMEOUT) {
		fprintf(stderr, "child: set under parent's lock: %s\n",
			dc_strerror(rc));
		status = 22;
		goto out;
	}
	rc = dc_cache_commit(c);
	if (rc != DC_INVAL) {
		fprintf(stderr, "child: commit of parent's tx: %s\n",
			dc_strerror(rc));
		status = 23;
		goto out;
	}
	if (write(to_parent, "x", 1) != 1) {
		status = 24;
		goto out;
	}
	rc = dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, DC_RETRY);
	if (rc != 0) {
		fprintf(stderr, "child: retried set: %s\n", dc_strerror(rc));
		status = 25;
		goto out;
	}
	if (read(from_parent, &go, 1) != 1) /* the parent has rolled back */
		status = 26;
out:
	return status;
}

START_TEST(test_fork_while_parent_holds_transaction)
{
	dc_cache *c = open_cache(DC_SHARDS_PLAIN, 0.3);
	int up[2], down[2], st = 0;
	char got[64], x;
	pid_t pid;

	set_text(c, "a", "one", 0);
	ck_assert_int_eq(dc_cache_begin(c, 0), 0);
	set_text(c, "intx", "two", 0);
	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(tx_fork_child(c, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);
	/* Still inside our transaction while the child tries to write. */
	ck_assert_int_eq(get_text(c, "intx", got, sizeof(got)), 0);
	if (read(up[0], &x, 1) != 1) {
		waitpid(pid, &st, 0);
		ck_abort_msg("child gave up early: status 0x%x (exit %d)", st,
			     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	ck_assert_int_eq(dc_cache_rollback(c), 0);
	ck_assert_int_eq(write(down[1], "x", 1), 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status 0x%x (exit %d)", st,
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	close(up[0]);
	close(down[1]);

	ck_assert_int_eq(get_text(c, "intx", got, sizeof(got)), DC_NOTFOUND);
	ck_assert_int_eq(get_int(c, "c"), 3);
	ck_assert_int_eq(get_text(c, "a", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "one");
	/* And the parent can write again. */
	set_text(c, "later", "ok", 0);
	ck_assert_uint_eq(cache_len(c), 3);
	assert_check_clean(c);
	dc_cache_close(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 5: transactions from several threads                               */
/* ------------------------------------------------------------------ */

#define TX_THREADS 4
#define TX_ITERS   40

struct txw {
	dc_cache *c;
	const char *ka, *kb;
	int commits, nested;
	char err[256];
};

static void *tx_worker(void *arg)
{
	struct txw *w = arg;
	struct dc_value a = dc_text(w->ka), b = dc_text(w->kb);
	struct dc_value nc = dc_text("nested"), ra, rb;
	int64_t zero = 0, got = 0;
	int rc;

	for (int i = 0; i < TX_ITERS; i++) {
		int nest = i % 3 == 0;

		rc = dc_cache_begin(w->c, DC_RETRY);
		if (rc != 0)
			WFAIL(w, "begin: %s", dc_strerror(rc));
		if (dc_cache_incr(w->c, &a, 1, &zero, &ra, 0) != 0 ||
		    dc_cache_incr(w->c, &b, 1, &zero, &rb, 0) != 0)
			WFAIL(w, "incr in transaction failed");
		/* a and b move together; another thread's increment between
		 * ours would show as a difference. */
		if (ra.i != rb.i)
			WFAIL(w, "interleaved: a=%" PRId64 " b=%" PRId64, ra.i,
			      rb.i);
		if (get_int_rc(w->c, w->ka, &got) != 0 || got != ra.i)
			WFAIL(w, "own write not visible inside transaction");
		if (nest) {
			if (dc_cache_begin(w->c, DC_RETRY) != 0 ||
			    dc_cache_incr(w->c, &nc, 1, &zero, NULL, 0) != 0 ||
			    dc_cache_commit(w->c) != 0)
				WFAIL(w, "nested transaction failed");
		}
		if (i % 4 == 3) {
			rc = dc_cache_rollback(w->c);
			if (rc != 0)
				WFAIL(w, "rollback: %s", dc_strerror(rc));
		} else {
			rc = dc_cache_commit(w->c);
			if (rc != 0)
				WFAIL(w, "commit: %s", dc_strerror(rc));
			w->commits++;
			w->nested += nest;
		}
		/* Outside any transaction now. */
		rc = dc_cache_commit(w->c);
		if (rc != DC_INVAL)
			WFAIL(w, "commit without begin: %s", dc_strerror(rc));
	}
	return NULL;
out:
	dc_cache_rollback(w->c);
	return NULL;
}

START_TEST(test_thread_transactions_are_atomic_and_separate)
{
	int shards = _i ? 4 : DC_SHARDS_PLAIN;
	dc_cache *c = open_cache(shards, 0);
	struct txw w[TX_THREADS];
	pthread_t th[TX_THREADS];
	char kb[16];
	struct dc_value ka = dc_text("a");
	int commits = 0, nested = 0;

	/* On a FanoutCache put a and b on different shards, so atomicity
	 * spans shards. */
	snprintf(kb, sizeof(kb), "b");
	for (int j = 0; shards > 0 && j < 100; j++) {
		struct dc_value kv;

		snprintf(kb, sizeof(kb), "b%d", j);
		kv = dc_text(kb);
		if (dc_cache_shard_of(c, &kv) != dc_cache_shard_of(c, &ka))
			break;
	}
	memset(w, 0, sizeof(w));
	for (int i = 0; i < TX_THREADS; i++) {
		w[i].c = c;
		w[i].ka = "a";
		w[i].kb = kb;
		ck_assert_int_eq(pthread_create(&th[i], NULL, tx_worker, &w[i]),
				 0);
	}
	for (int i = 0; i < TX_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < TX_THREADS; i++) {
		ck_assert_msg(!w[i].err[0], "thread %d: %s", i, w[i].err);
		commits += w[i].commits;
		nested += w[i].nested;
	}
	ck_assert_int_eq(get_int(c, "a"), commits);
	ck_assert_int_eq(get_int(c, kb), commits);
	ck_assert_int_eq(get_int(c, "nested"), nested);
	ck_assert_uint_eq(cache_len(c), 3);
	assert_check_clean(c);
	dc_cache_close(c);
}
END_TEST

struct ab {
	dc_cache *c;
	sem_t a_ready, b_done;
	int rc_rollback, rc_commit, rc_get, rc_set, rc_begin;
};

static void *thread_b(void *arg)
{
	struct ab *s = arg;
	struct dc_value y = dc_text("y"), v = dc_text("B");
	char got[64];

	sem_wait(&s->a_ready);
	/* A holds a transaction on this same handle. */
	s->rc_rollback = dc_cache_rollback(s->c);
	s->rc_commit = dc_cache_commit(s->c);
	s->rc_get = get_text(s->c, "x", got, sizeof(got));
	s->rc_set = dc_cache_set(s->c, &y, &v, DC_NO_EXPIRE, NULL, 0);
	s->rc_begin = dc_cache_begin(s->c, 0);
	if (s->rc_begin == 0)
		dc_cache_rollback(s->c);
	sem_post(&s->b_done);
	return NULL;
}

START_TEST(test_other_thread_cannot_end_or_join_my_transaction)
{
	struct ab s;
	pthread_t th;
	char got[64];

	memset(&s, 0, sizeof(s));
	s.c = open_cache(DC_SHARDS_PLAIN, 0.2);
	sem_init(&s.a_ready, 0, 0);
	sem_init(&s.b_done, 0, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, thread_b, &s), 0);

	ck_assert_int_eq(dc_cache_begin(s.c, 0), 0);
	set_text(s.c, "x", "A", 0);
	sem_post(&s.a_ready);
	sem_wait(&s.b_done);
	pthread_join(th, NULL);
	/* Our transaction is intact after B's attempts. */
	ck_assert_int_eq(get_text(s.c, "x", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "A");
	ck_assert_int_eq(dc_cache_commit(s.c), 0);

	ck_assert_msg(s.rc_rollback == DC_INVAL, "B rollback: %s",
		      dc_strerror(s.rc_rollback));
	ck_assert_msg(s.rc_commit == DC_INVAL, "B commit: %s",
		      dc_strerror(s.rc_commit));
	ck_assert_msg(s.rc_get == DC_NOTFOUND, "B saw uncommitted x: %s",
		      dc_strerror(s.rc_get));
	ck_assert_msg(s.rc_set == DC_TIMEOUT, "B set under A's lock: %s",
		      dc_strerror(s.rc_set));
	ck_assert_msg(s.rc_begin == DC_TIMEOUT, "B begin under A's lock: %s",
		      dc_strerror(s.rc_begin));
	ck_assert_int_eq(get_text(s.c, "x", got, sizeof(got)), 0);
	ck_assert_int_eq(get_text(s.c, "y", got, sizeof(got)), DC_NOTFOUND);
	assert_check_clean(s.c);
	dc_cache_close(s.c);
	sem_destroy(&s.a_ready);
	sem_destroy(&s.b_done);
}
END_TEST

START_TEST(test_rollback_and_close_discard_value_files)
{
	dc_cache *c = open_cache(DC_SHARDS_PLAIN, 0);
	char *big = malloc(BIG);
	struct dc_value k1 = dc_text("big1"), k2 = dc_text("big2"), v;
	char got[64];

	ck_assert_ptr_nonnull(big);
	fill_value(big, BIG, "big|#");
	v = dc_bytes(big, BIG);
	/* Flat. */
	ck_assert_int_eq(dc_cache_begin(c, 0), 0);
	ck_assert_int_eq(dc_cache_set(c, &k1, &v, DC_NO_EXPIRE, NULL, 0), 0);
	set_text(c, "small", "s", 0);
	ck_assert_int_eq(dc_cache_rollback(c), 0);
	/* Nested: the inner commit only counts. */
	ck_assert_int_eq(dc_cache_begin(c, 0), 0);
	ck_assert_int_eq(dc_cache_begin(c, 0), 0);
	ck_assert_int_eq(dc_cache_set(c, &k2, &v, DC_NO_EXPIRE, NULL, 0), 0);
	ck_assert_int_eq(dc_cache_commit(c), 0);
	ck_assert_int_eq(dc_cache_rollback(c), 0);
	ck_assert_int_eq(dc_cache_rollback(c), DC_INVAL);
	ck_assert_int_eq(dc_cache_contains(c, &k1), DC_NOTFOUND);
	ck_assert_int_eq(dc_cache_contains(c, &k2), DC_NOTFOUND);
	ck_assert_int_eq(get_text(c, "small", got, sizeof(got)), DC_NOTFOUND);
	ck_assert_int_eq(tu_count_files(cdir), 0);
	ck_assert_uint_eq(cache_len(c), 0);
	assert_check_clean(c);
	/* Close with a transaction open rolls it back. */
	ck_assert_int_eq(dc_cache_begin(c, 0), 0);
	ck_assert_int_eq(dc_cache_set(c, &k1, &v, DC_NO_EXPIRE, NULL, 0), 0);
	dc_cache_close(c);
	c = open_cache(0, 0.5);
	ck_assert_int_eq(dc_cache_contains(c, &k1), DC_NOTFOUND);
	set_text(c, "writable", "yes", 0); /* the lock was released */
	ck_assert_uint_eq(cache_len(c), 1);
	ck_assert_int_eq(tu_count_files(cdir), 0);
	assert_check_clean(c);
	dc_cache_close(c);
	free(big);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 6: readers next to a held write lock; timeouts and retry           */
/* ------------------------------------------------------------------ */

struct retry_set {
	dc_cache *c;
	volatile int done;
	int rc;
};

static void *retry_set_thread(void *arg)
{
	struct retry_set *r = arg;
	struct dc_value k = dc_text("late"), v = dc_text("finally");

	r->rc = dc_cache_set(r->c, &k, &v, DC_NO_EXPIRE, NULL, DC_RETRY);
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* With the database locked by another connection: reads work, every
 * unretried write reports DC_TIMEOUT (a FanoutCache pop reports a miss),
 * nothing changes. */
static void reader_side_while_locked(dc_cache *r, int fanout)
{
	struct dc_value k = dc_text("k"), kb = dc_text("big"), v = dc_int(1);
	struct dc_value ctr = dc_text("ctr");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	uint64_t count = 77;
	char got[64];
	double t0;
	int64_t zero = 0;
	int rc;

	ck_assert_int_eq(get_text(r, "k", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "value");
	ck_assert_int_eq(dc_cache_get(r, &kb, &buf, &item, 0), 0);
	ck_assert(item_ok(&item, "big|"));
	ck_assert_int_eq(dc_cache_contains(r, &k), 0);
	ck_assert_int_eq(get_text(r, "uncommitted", got, sizeof(got)),
			 DC_NOTFOUND);
	ck_assert_uint_eq(cache_len(r), 3);
	ck_assert_uint_eq(iter_count(r), 3);

	t0 = tu_mono();
	rc = dc_cache_set(r, &k, &v, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == DC_TIMEOUT, "set: %s", dc_strerror(rc));
	/* The busy timeout is honoured, and bounded (generously). */
	ck_assert_msg(tu_mono() - t0 >= 0.1 && tu_mono() - t0 < 30,
		      "set took %.3f s with a 0.2 s timeout", tu_mono() - t0);
	rc = dc_cache_add(r, &ctr, &v, DC_NO_EXPIRE, NULL, 0);
	ck_assert_msg(rc == DC_TIMEOUT, "add: %s", dc_strerror(rc));
	rc = dc_cache_delete(r, &k, 0);
	ck_assert_msg(rc == DC_TIMEOUT, "delete: %s", dc_strerror(rc));
	rc = dc_cache_incr(r, &ctr, 1, &zero, NULL, 0);
	ck_assert_msg(rc == DC_TIMEOUT, "incr: %s", dc_strerror(rc));
	rc = dc_cache_touch(r, &k, 100, 0);
	ck_assert_msg(rc == DC_TIMEOUT, "touch: %s", dc_strerror(rc));
	rc = dc_cache_pop(r, &k, &buf, &item, 0);
	ck_assert_msg(rc == (fanout ? DC_NOTFOUND : DC_TIMEOUT), "pop: %s",
		      dc_strerror(rc));
	if (!fanout) {
		rc = dc_cache_push(r, &v, NULL, DC_NO_EXPIRE, NULL, 0, NULL,
				   NULL);
		ck_assert_msg(rc == DC_TIMEOUT, "push: %s", dc_strerror(rc));
		rc = dc_cache_pull(r, NULL, &buf, &item, 0);
		ck_assert_msg(rc == DC_TIMEOUT, "pull: %s", dc_strerror(rc));
		rc = dc_cache_clear(r, 0, &count);
		ck_assert_msg(rc == DC_TIMEOUT, "clear: %s", dc_strerror(rc));
		ck_assert_uint_eq(count, 0);
		rc = dc_cache_begin(r, 0);
		ck_assert_msg(rc == DC_TIMEOUT, "begin: %s", dc_strerror(rc));
	}
	/* Nothing changed. */
	ck_assert_int_eq(get_text(r, "k", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "value");
	ck_assert_int_eq(get_int(r, "ctr"), 5);
	ck_assert_uint_eq(cache_len(r), 3);
	dc_buf_release(&buf);
}

static void seed_reader_cache(dc_cache *c, unsigned wf)
{
	char *big = malloc(BIG);
	struct dc_value kb = dc_text("big"), v, ctr = dc_text("ctr");
	int64_t five = 5;

	ck_assert_ptr_nonnull(big);
	set_text(c, "k", "value", wf);
	fill_value(big, BIG, "big|#");
	v = dc_bytes(big, BIG);
	ck_assert_int_eq(dc_cache_set(c, &kb, &v, DC_NO_EXPIRE, NULL, wf), 0);
	ck_assert_int_eq(dc_cache_incr(c, &ctr, 0, &five, NULL, wf), 0);
	free(big);
}

START_TEST(test_readers_work_while_another_connection_holds_lock)
{
	int shards = _i ? 2 : DC_SHARDS_PLAIN;
	unsigned wf = shards > 0 ? DC_RETRY : 0;
	dc_cache *r = open_cache(shards, 0.2);
	dc_cache *w = open_cache(shards, 0);
	struct retry_set rs = { r, 0, -1 };
	struct dc_value k = dc_text("k");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	pthread_t th;
	char got[64];
	int rc;

	seed_reader_cache(r, wf);
	ck_assert_int_eq(dc_cache_begin(w, DC_RETRY), 0);
	set_text(w, "uncommitted", "u", 0);
	reader_side_while_locked(r, shards > 0);

	/* A retried write waits for the lock and then succeeds. */
	ck_assert_int_eq(pthread_create(&th, NULL, retry_set_thread, &rs), 0);
	tu_sleep(0.4);
	ck_assert_msg(!__atomic_load_n(&rs.done, __ATOMIC_SEQ_CST),
		      "a retried set finished while the lock was held (%s)",
		      dc_strerror(rs.rc));
	ck_assert_int_eq(dc_cache_commit(w), 0);
	pthread_join(th, NULL);
	ck_assert_msg(rs.rc == 0, "retried set: %s", dc_strerror(rs.rc));
	ck_assert_int_eq(get_text(r, "late", got, sizeof(got)), 0);
	ck_assert_str_eq(got, "finally");
	ck_assert_int_eq(get_text(r, "uncommitted", got, sizeof(got)), 0);

	/* With statistics on, get needs the write lock: a plain Cache
	 * reports the timeout, a FanoutCache a miss (as Python). */
	ck_assert_int_eq(dc_cache_stats(r, 1, 0, NULL, NULL), 0);
	ck_assert_int_eq(dc_cache_begin(w, DC_RETRY), 0);
	rc = dc_cache_get(r, &k, &buf, &item, 0);
	ck_assert_msg(rc == (shards > 0 ? DC_NOTFOUND : DC_TIMEOUT),
		      "get with statistics under lock: %s", dc_strerror(rc));
	ck_assert_int_eq(dc_cache_rollback(w), 0);
	ck_assert_int_eq(dc_cache_get(r, &k, &buf, &item, 0), 0);
	ck_assert_int_eq(dc_cache_stats(r, 0, 0, NULL, NULL), 0);

	assert_check_clean(r);
	dc_cache_close(w);
	dc_cache_close(r);
	dc_buf_release(&buf);
}
END_TEST

/* The same with a foreign lock holder: Python DiskCache inside
 * transact(), in another process. */
static const char py_locker[] = "import sys, diskcache\n"
				"c = diskcache.Cache(sys.argv[1])\n"
				"with c.transact():\n"
				"    c.set('py', 1)\n"
				"    print('locked', flush=True)\n"
				"    sys.stdin.readline()\n"
				"c.close()\n";

static void read_line(int fd, char *out, size_t size)
{
	size_t n = 0;
	char ch;

	while (n + 1 < size && read(fd, &ch, 1) == 1 && ch != '\n')
		out[n++] = ch;
	out[n] = 0;
}

START_TEST(test_readers_work_while_python_holds_lock)
{
	dc_cache *r = open_cache(DC_SHARDS_PLAIN, 0.2);
	struct retry_set rs = { r, 0, -1 };
	int to_py[2], from_py[2], st = 0;
	char line[64];
	pthread_t th;
	pid_t pid;

	seed_reader_cache(r, 0);
	ck_assert_int_eq(pipe(to_py), 0);
	ck_assert_int_eq(pipe(from_py), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(to_py[0], 0);
		dup2(from_py[1], 1);
		close(to_py[1]);
		close(from_py[0]);
		execl("/usr/bin/python3", "python3", "-c", py_locker, cdir,
		      (char *)NULL);
		_exit(127);
	}
	close(to_py[0]);
	close(from_py[1]);
	read_line(from_py[0], line, sizeof(line));
	if (strcmp(line, "locked") != 0) {
		close(to_py[1]);
		waitpid(pid, &st, 0);
		ck_abort_msg("python did not take the lock (status 0x%x)", st);
	}
	reader_side_while_locked(r, 0);

	ck_assert_int_eq(pthread_create(&th, NULL, retry_set_thread, &rs), 0);
	tu_sleep(0.4);
	ck_assert(!__atomic_load_n(&rs.done, __ATOMIC_SEQ_CST));
	ck_assert_int_eq(write(to_py[1], "\n", 1), 1);
	pthread_join(th, NULL);
	ck_assert_msg(rs.rc == 0, "retried set: %s", dc_strerror(rs.rc));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "python status 0x%x", st);
	close(to_py[1]);
	close(from_py[0]);
	ck_assert_int_eq(get_int(r, "py"), 1);
	ck_assert_uint_eq(cache_len(r), 5);
	assert_check_clean(r);
	dc_cache_close(r);
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

Suite *concurrency_suite(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc;

	tc = new_tcase("threads", 240);
	tcase_add_test(tc, test_eight_threads_on_one_plain_handle_lose_nothing);
	tcase_add_test(tc,
		       test_eight_threads_on_one_fanout_handle_lose_nothing);
	suite_add_tcase(s, tc);

	tc = new_tcase("processes", 240);
	tcase_add_loop_test(tc, test_processes_share_counter_and_queue_exactly,
			    0, 3);
	suite_add_tcase(s, tc);

	tc = new_tcase("fork", 120);
	tcase_add_loop_test(tc, test_fork_child_keeps_using_inherited_handle, 0,
			    3);
	tcase_add_test(tc, test_fork_while_parent_holds_transaction);
	suite_add_tcase(s, tc);

	tc = new_tcase("transactions", 120);
	tcase_add_loop_test(
	    tc, test_thread_transactions_are_atomic_and_separate, 0, 2);
	tcase_add_test(tc, test_other_thread_cannot_end_or_join_my_transaction);
	tcase_add_test(tc, test_rollback_and_close_discard_value_files);
	suite_add_tcase(s, tc);

	tc = new_tcase("locked", 120);
	tcase_add_loop_test(
	    tc, test_readers_work_while_another_connection_holds_lock, 0, 2);
	tcase_add_test(tc, test_readers_work_while_python_holds_lock);
	suite_add_tcase(s, tc);
	return s;
}
