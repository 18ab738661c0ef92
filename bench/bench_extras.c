/* bench_extras.c - latency of Deque, Index, memoize, recipes, zlib in C
 * SPDX-License-Identifier: MIT
 *
 * The issue-5 half of `make bench`: each operation is run in a block of
 * warm-up calls (not recorded) and measured calls, one process, on fresh
 * directories below DIR.  bench/bench_extras.py runs the same blocks, in
 * the same order and with the same keys and values, on Python DiskCache,
 * and prints lines in the same format, so bench/run.sh can put the two
 * side by side.
 *
 * A block that times two calls (deque append then popleft, lock and
 * semaphore acquire then release) reads the clock three times and reports
 * each call and the pair.  The value checks of a call (the right bytes
 * came back, a memo hit did not compute) happen after the clock is read.
 *
 * Output, one line per operation, key=value:
 *   RESULT impl=libdcache suite=extras op=... n=... ok=... miss=... err=...
 *          median_ns=... p99_ns=... mean_ns=...
 * "miss" counts calls that returned without the expected result (an
 * empty deque, a memo hit that computed, a miss that did not).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dcache.h"

/* Outcome of one call. */
enum { RES_OK = 0, RES_MISS = 1, RES_ERR = 2 };

/* The 4 KiB compressible value of the serializer blocks (built below,
 * byte for byte as bench_extras.py builds it). */
#define BIG_LEN 4096

/* First argument of the memo-miss block: far above the hit block's. */
#define MISS_BASE 1000000

struct config {
	const char *dir;
	long ops;
	long warmup;
	long keys;
	const char *only; /* run only the block of this name (profiling) */
};

/* What the blocks use; each block touches only its own handles. */
struct ctx {
	const struct config *cfg;
	dc_deque *deque;
	dc_index *index;
	dc_cache *memo_cache;
	dc_cache *recipes;
	dc_cache *zcache; /* with dc_serializer_zlib(-1) */
	dc_cache *rawcache;
	dc_memo *memo;
	long computed; /* calls of the memoized function */
	struct dc_recipe lock, sem, avg;
	struct dc_buf buf;
	struct dc_item item;
	char key[24];
	size_t klen;
	char val[24 * 10];
	size_t vlen;
	char big[BIG_LEN + 1];
};

/* One iteration of a block: sets t[0] before the first timed call, t[1]
 * after it and, for a two-call block, t[2] after the second; returns the
 * outcome. */
typedef int (*step_fn)(struct ctx *c, long i, int64_t t[3]);

struct block {
	const char *op;     /* the one call, or the pair */
	const char *first;  /* two-call blocks: the first call's name */
	const char *second; /* and the second's; NULL for one call */
	step_fn step;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The key of iteration @i: keys are visited in a fixed scattered order
 * (7919 is prime, so all are visited), the same in Python. */
static void set_key(struct ctx *c, long i)
{
	long k = (long)(((uint64_t)i * 7919u) % (uint64_t)c->cfg->keys);

	c->klen = (size_t)snprintf(c->key, sizeof(c->key), "%ld", k);
}

/* str(n).encode() * reps, as in bench_core.c. */
static void set_val(struct ctx *c, long n, int reps)
{
	char num[24];
	int len = snprintf(num, sizeof(num), "%ld", n);

	c->vlen = 0;
	for (int r = 0; r < reps && c->vlen + (size_t)len <= sizeof(c->val);
	     r++) {
		memcpy(c->val + c->vlen, num, (size_t)len);
		c->vlen += (size_t)len;
	}
}

/* An HTML-ish table cut at 4096 bytes: compresses about 4:1, like text. */
static void make_big(char *big)
{
	size_t len = 0;

	for (long i = 0; len < BIG_LEN; i++) {
		char row[64];
		int n = snprintf(row, sizeof(row),
				 "<tr><td>%ld</td><td>row %ld</td></tr>\n", i,
				 i * i);
		size_t take =
		    BIG_LEN - len < (size_t)n ? BIG_LEN - len : (size_t)n;

		memcpy(big + len, row, take);
		len += take;
	}
	big[BIG_LEN] = '\0';
}

static int check_bytes(const struct ctx *c, int rc, size_t want)
{
	int out = RES_ERR;

	if (rc == DC_NOTFOUND)
		out = RES_MISS;
	else if (rc == 0 && c->item.value.type == DC_TYPE_BYTES &&
		 (want == 0 || c->item.value.len == want))
		out = RES_OK;
	return out;
}

/* ------------------------------------------------------------------ */
/* The blocks                                                         */
/* ------------------------------------------------------------------ */

static int step_deque(struct ctx *c, long i, int64_t t[3])
{
	struct dc_value v;
	int rc1, rc2, out;

	set_val(c, i, 10);
	v = dc_bytes(c->val, c->vlen);
	t[0] = now_ns();
	rc1 = dc_deque_append(c->deque, &v);
	t[1] = now_ns();
	rc2 = dc_deque_popleft(c->deque, &c->buf, &c->item);
	t[2] = now_ns();
	out = check_bytes(c, rc2, 0);
	return rc1 != 0 ? RES_ERR : out;
}

static int step_index_set(struct ctx *c, long i, int64_t t[3])
{
	struct dc_value k, v;
	int rc;

	set_key(c, i);
	set_val(c, i, 10);
	k = dc_bytes(c->key, c->klen);
	v = dc_bytes(c->val, c->vlen);
	t[0] = now_ns();
	rc = dc_index_set(c->index, &k, &v);
	t[1] = now_ns();
	return rc == 0 ? RES_OK : RES_ERR;
}

static int step_index_get(struct ctx *c, long i, int64_t t[3])
{
	struct dc_value k;
	int rc;

	set_key(c, i);
	k = dc_bytes(c->key, c->klen);
	t[0] = now_ns();
	rc = dc_index_get(c->index, &k, &c->buf, &c->item);
	t[1] = now_ns();
	return check_bytes(c, rc, 0);
}

/* The memoized function: doubles an int, and counts its calls. */
static int memo_double(void *arg, const struct dc_value *args, size_t nargs,
		       const struct dc_kwarg *kwargs, size_t nkwargs,
		       struct dc_buf *buf, struct dc_value *result)
{
	struct ctx *c = arg;

	(void)kwargs;
	(void)nkwargs;
	(void)buf;
	if (nargs != 1 || args[0].type != DC_TYPE_INT)
		return DC_INVAL;
	c->computed++;
	*result = dc_int(args[0].i * 2);
	return 0;
}

static int memo_step(struct ctx *c, int64_t x, int want_computed, int64_t t[3])
{
	struct dc_value a = dc_int(x);
	long before = c->computed;
	int rc, out = RES_ERR;

	t[0] = now_ns();
	rc = dc_memo_call(c->memo, &a, 1, NULL, 0, &c->buf, &c->item);
	t[1] = now_ns();
	if (rc == 0 && c->item.value.type == DC_TYPE_INT &&
	    c->item.value.i == x * 2)
		out = (c->computed != before) == want_computed ? RES_OK
							       : RES_MISS;
	return out;
}

static int step_memo_hit(struct ctx *c, long i, int64_t t[3])
{
	return memo_step(
	    c, (int64_t)(((uint64_t)i * 7919u) % (uint64_t)c->cfg->keys), 0, t);
}

static int step_memo_miss(struct ctx *c, long i, int64_t t[3])
{
	return memo_step(c, MISS_BASE + (int64_t)i, 1, t);
}

static int step_lock(struct ctx *c, long i, int64_t t[3])
{
	int rc1, rc2;

	(void)i;
	t[0] = now_ns();
	rc1 = dc_lock_acquire(&c->lock, DC_WAIT_FOREVER);
	t[1] = now_ns();
	rc2 = dc_lock_release(&c->lock);
	t[2] = now_ns();
	return rc1 == 0 && rc2 == 0 ? RES_OK : RES_ERR;
}

static int step_sem(struct ctx *c, long i, int64_t t[3])
{
	int rc1, rc2;

	(void)i;
	t[0] = now_ns();
	rc1 = dc_semaphore_acquire(&c->sem, 1, DC_WAIT_FOREVER);
	t[1] = now_ns();
	rc2 = dc_semaphore_release(&c->sem, 1);
	t[2] = now_ns();
	return rc1 == 0 && rc2 == 0 ? RES_OK : RES_ERR;
}

static int step_avg(struct ctx *c, long i, int64_t t[3])
{
	int rc;

	t[0] = now_ns();
	rc = dc_averager_add(&c->avg, (double)i);
	t[1] = now_ns();
	return rc == 0 ? RES_OK : RES_ERR;
}

static int big_set(struct ctx *c, dc_cache *cache, long i, int64_t t[3])
{
	struct dc_value k, v = dc_bytes(c->big, BIG_LEN);
	int rc;

	set_key(c, i);
	k = dc_bytes(c->key, c->klen);
	t[0] = now_ns();
	rc = dc_cache_set(cache, &k, &v, DC_NO_EXPIRE, NULL, 0);
	t[1] = now_ns();
	return rc == 0 ? RES_OK : RES_ERR;
}

static int big_get(struct ctx *c, dc_cache *cache, long i, int64_t t[3])
{
	struct dc_value k;
	int rc;

	set_key(c, i);
	k = dc_bytes(c->key, c->klen);
	t[0] = now_ns();
	rc = dc_cache_get(cache, &k, &c->buf, &c->item, 0);
	t[1] = now_ns();
	return check_bytes(c, rc, BIG_LEN);
}

static int step_zlib_set(struct ctx *c, long i, int64_t t[3])
{
	return big_set(c, c->zcache, i, t);
}

static int step_zlib_get(struct ctx *c, long i, int64_t t[3])
{
	return big_get(c, c->zcache, i, t);
}

static int step_raw_set(struct ctx *c, long i, int64_t t[3])
{
	return big_set(c, c->rawcache, i, t);
}

static int step_raw_get(struct ctx *c, long i, int64_t t[3])
{
	return big_get(c, c->rawcache, i, t);
}

/* In this order in both programs. */
static const struct block blocks[] = {
	{ "deque_pair", "deque_append", "deque_popleft", step_deque },
	{ "index_set", NULL, NULL, step_index_set },
	{ "index_get", NULL, NULL, step_index_get },
	{ "memo_hit", NULL, NULL, step_memo_hit },
	{ "memo_miss", NULL, NULL, step_memo_miss },
	{ "lock_pair", "lock_acquire", "lock_release", step_lock },
	{ "sem_pair", "sem_acquire", "sem_release", step_sem },
	{ "avg_add", NULL, NULL, step_avg },
	{ "zlib_set", NULL, NULL, step_zlib_set },
	{ "zlib_get", NULL, NULL, step_zlib_get },
	{ "raw4k_set", NULL, NULL, step_raw_set },
	{ "raw4k_get", NULL, NULL, step_raw_get },
};

/* ------------------------------------------------------------------ */
/* Set-up, running, reporting                                         */
/* ------------------------------------------------------------------ */

static int open_sub(const char *dir, const char *name, char *path, size_t size)
{
	int n = snprintf(path, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? ENAMETOOLONG : 0;
}

/* Opens every handle and fills what the read blocks read: the deque and
 * the index with @keys items, the memo with f(0) ... f(keys-1), both 4 KiB
 * caches with every key (each in one transaction, as Python does). */
static int setup(struct ctx *c)
{
	const struct config *cfg = c->cfg;
	struct dc_options zopts = { 0 };
	struct dc_memo_opts mopts = { 0 };
	char path[4096];
	int ret;

	ret = open_sub(cfg->dir, "deque", path, sizeof(path));
	if (!ret)
		ret = dc_deque_open(path, NULL, &c->deque);
	if (!ret)
		ret = open_sub(cfg->dir, "index", path, sizeof(path));
	if (!ret)
		ret = dc_index_open(path, NULL, &c->index);
	if (!ret)
		ret = open_sub(cfg->dir, "memo", path, sizeof(path));
	if (!ret)
		ret = dc_cache_open(path, NULL, &c->memo_cache);
	if (!ret)
		ret = open_sub(cfg->dir, "recipes", path, sizeof(path));
	if (!ret)
		ret = dc_cache_open(path, NULL, &c->recipes);
	if (!ret)
		ret = open_sub(cfg->dir, "zlib", path, sizeof(path));
	zopts.serializer = dc_serializer_zlib(-1);
	if (!ret)
		ret = dc_cache_open(path, &zopts, &c->zcache);
	if (!ret)
		ret = open_sub(cfg->dir, "raw4k", path, sizeof(path));
	if (!ret)
		ret = dc_cache_open(path, NULL, &c->rawcache);
	mopts.name = "bench.double";
	if (!ret)
		ret = dc_memo_new(c->memo_cache, &mopts, memo_double, c,
				  &c->memo);
	if (ret)
		goto out;

	c->lock.cache = c->sem.cache = c->avg.cache = c->recipes;
	c->lock.key = dc_text("lock");
	c->sem.key = dc_text("sem");
	c->avg.key = dc_text("avg");
	make_big(c->big);

	ret = dc_cache_begin(dc_deque_cache(c->deque), DC_RETRY);
	for (long i = 0; i < cfg->keys && !ret; i++) {
		struct dc_value v;

		set_val(c, i, 10);
		v = dc_bytes(c->val, c->vlen);
		ret = dc_deque_append(c->deque, &v);
	}
	ret = ret ? ret : dc_cache_commit(dc_deque_cache(c->deque));
	for (long i = 0; i < cfg->keys && !ret; i++) {
		struct dc_value k, v;

		c->klen = (size_t)snprintf(c->key, sizeof(c->key), "%ld", i);
		set_val(c, i, 10);
		k = dc_bytes(c->key, c->klen);
		v = dc_bytes(c->val, c->vlen);
		ret = dc_index_set(c->index, &k, &v);
	}
	for (long i = 0; i < cfg->keys && !ret; i++) {
		struct dc_value a = dc_int(i);

		ret = dc_memo_call(c->memo, &a, 1, NULL, 0, &c->buf, &c->item);
	}
	for (int z = 0; z < 2 && !ret; z++) {
		dc_cache *cache = z ? c->rawcache : c->zcache;
		struct dc_value v = dc_bytes(c->big, BIG_LEN);

		ret = dc_cache_begin(cache, DC_RETRY);
		for (long i = 0; i < cfg->keys && !ret; i++) {
			struct dc_value k;

			c->klen =
			    (size_t)snprintf(c->key, sizeof(c->key), "%ld", i);
			k = dc_bytes(c->key, c->klen);
			ret =
			    dc_cache_set(cache, &k, &v, DC_NO_EXPIRE, NULL, 0);
		}
		ret = ret ? ret : dc_cache_commit(cache);
	}
out:
	if (ret)
		fprintf(stderr, "bench_extras: set-up: %s\n", dc_strerror(ret));
	return ret;
}

static void teardown(struct ctx *c)
{
	dc_memo_free(c->memo);
	dc_deque_close(c->deque);
	dc_index_close(c->index);
	dc_cache_close(c->memo_cache);
	dc_cache_close(c->recipes);
	dc_cache_close(c->zcache);
	dc_cache_close(c->rawcache);
	dc_buf_release(&c->buf);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank, the rule of bench_core.c and of the Python side. */
static uint32_t percentile(const uint32_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p * (double)n);

	if (n == 0)
		return 0;
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/* Prints one RESULT line; sorts @lat. */
static void report(const char *op, uint32_t *lat, size_t n, const size_t cnt[3])
{
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u32);
	printf("RESULT impl=libdcache suite=extras op=%s n=%zu ok=%zu "
	       "miss=%zu err=%zu median_ns=%" PRIu32 " p99_ns=%" PRIu32
	       " mean_ns=%.0f\n",
	       op, n, cnt[RES_OK], cnt[RES_MISS], cnt[RES_ERR],
	       percentile(lat, n, 0.5), percentile(lat, n, 0.99),
	       n ? sum / (double)n : 0.0);
}

static uint32_t clamp_ns(int64_t d)
{
	return d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)(d < 0 ? 0 : d);
}

/* Runs one block: warm-up, then the measured calls; reports them. */
static int run_block(struct ctx *c, const struct block *b, uint32_t *lat[3])
{
	const struct config *cfg = c->cfg;
	size_t cnt[3] = { 0, 0, 0 };
	size_t n = 0;

	for (long i = 0; i < cfg->warmup + cfg->ops; i++) {
		int64_t t[3] = { 0, 0, 0 };
		int out = b->step(c, i, t);

		if (i < cfg->warmup)
			continue;
		cnt[out]++;
		lat[0][n] = clamp_ns(t[1] - t[0]);
		if (b->second) {
			lat[1][n] = clamp_ns(t[2] - t[1]);
			lat[2][n] = clamp_ns(t[2] - t[0]);
		}
		n++;
	}
	if (b->second) {
		report(b->first, lat[0], n, cnt);
		report(b->second, lat[1], n, cnt);
		report(b->op, lat[2], n, cnt);
	} else {
		report(b->op, lat[0], n, cnt);
	}
	fflush(stdout);
	return cnt[RES_ERR] ? -1 : 0;
}

static int run(const struct config *cfg)
{
	struct ctx *c = calloc(1, sizeof(*c));
	uint32_t *lat[3] = { NULL, NULL, NULL };
	int ret = -1;

	if (!c)
		goto out;
	c->cfg = cfg;
	for (int s = 0; s < 3; s++) {
		lat[s] = calloc((size_t)cfg->ops, sizeof(*lat[s]));
		if (!lat[s])
			goto out;
	}
	if (setup(c) != 0)
		goto out;
	ret = 0;
	for (size_t k = 0; k < sizeof(blocks) / sizeof(blocks[0]); k++) {
		if (cfg->only && strcmp(cfg->only, blocks[k].op) != 0)
			continue;
		if (run_block(c, &blocks[k], lat) != 0) {
			fprintf(stderr, "bench_extras: %s: calls failed\n",
				blocks[k].op);
			ret = -1;
		}
	}
out:
	if (c)
		teardown(c);
	free(c);
	for (int s = 0; s < 3; s++)
		free(lat[s]);
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_extras DIR [--ops N] [--warmup N] "
			"[--keys N] [--only OP]\n");
}

/* Fills @cfg from the command line; -1 on a usage error. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
	int ret = -1;

	if (argc < 2 || argv[1][0] == '-')
		goto out;
	cfg->dir = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i];
		char *end;
		long long v;

		if (i + 1 >= argc)
			goto out;
		if (strcmp(opt, "--only") == 0) {
			cfg->only = argv[++i];
			continue;
		}
		errno = 0;
		v = strtoll(argv[++i], &end, 10);
		if (errno || *end || v < 0 || v > 100000000)
			goto out;
		if (strcmp(opt, "--ops") == 0 && v > 0)
			cfg->ops = (long)v;
		else if (strcmp(opt, "--warmup") == 0)
			cfg->warmup = (long)v;
		else if (strcmp(opt, "--keys") == 0 && v > 0)
			cfg->keys = (long)v;
		else
			goto out;
	}
	ret = 0;
out:
	return ret;
}

int main(int argc, char **argv)
{
	struct config cfg = { .ops = 1000, .warmup = 200, .keys = 1000 };
	int status = 2;

	if (parse_args(argc, argv, &cfg) != 0)
		usage();
	else
		status = run(&cfg) == 0 ? 0 : 1;
	return status;
}
