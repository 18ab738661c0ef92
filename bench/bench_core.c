/* bench_core.c - get/set/delete latency of libdcache and of raw SQLite
 * SPDX-License-Identifier: MIT
 *
 * The workload has the shape of DiskCache's tests/benchmark_core.py: a
 * fixed-seed stream of operations, 90% get, 9% set, 1% delete, over short
 * byte keys "0" ... "<keys-1>" with short byte values, keys pre-populated.
 * bench/bench_diskcache.py runs the very same stream (the same PRNG, the
 * same seeds) on Python DiskCache and prints lines in the same format, so
 * bench/run.sh can put the three side by side.
 *
 * Backends:
 *   dcache  libdcache through dcache.h (plain Cache, or --shards N for a
 *           FanoutCache)
 *   sqlite  the floor: one SQLite connection with DiskCache's schema and
 *           pragmas and prepared statements doing only what a correct
 *           implementation must (SELECT for get; BEGIN IMMEDIATE, SELECT,
 *           INSERT or UPDATE, COMMIT for set; BEGIN IMMEDIATE, SELECT,
 *           DELETE, COMMIT for delete)
 *
 * With --procs N, N processes are forked after the keys are populated;
 * each opens its own handle on the directory, waits at a common start
 * line, runs its own stream (seed + process index) and writes its
 * latencies into shared memory; the parent merges them.
 *
 * Output, one line per operation kind and one total line, key=value:
 *   RESULT impl=... layout=... procs=... op=get n=... ok=... miss=... err=...
 *          median_ns=... p99_ns=... mean_ns=...
 *   RESULT impl=... op=all n=... wall_ns=... ops_per_s=... seq=...
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"

enum { OP_GET = 0, OP_SET = 1, OP_DEL = 2, NOPS = 3 };

static const char *const op_names[NOPS] = { "get", "set", "delete" };

/* Outcome of one operation. */
enum { RES_OK = 0, RES_MISS = 1, RES_ERR = 2 };

struct config {
	const char *impl;
	const char *dir;
	int shards; /* 0: plain Cache */
	int procs;
	long ops;
	long warmup;
	long keys;
	uint64_t seed;
};

/* What one process records: per operation its kind, outcome and latency;
 * plus its first start and last end on the monotonic clock, which all
 * processes share. */
struct proc_result {
	int64_t start_ns;
	int64_t end_ns;
	uint64_t seq; /* fingerprint of the operation stream */
	int failed;
};

struct op_record {
	uint32_t ns; /* saturates at UINT32_MAX (4.3 s) */
	uint8_t kind;
	uint8_t outcome;
};

/* ------------------------------------------------------------------ */
/* The operation stream (mirrored exactly in bench_diskcache.py)       */
/* ------------------------------------------------------------------ */

/* splitmix64: tiny, and trivial to reproduce bit for bit in Python. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct op {
	int kind;
	long key;
	int reps; /* value = decimal of the op number, repeated reps times */
};

/* Like benchmark_core: choice = random(), key = randrange(keys),
 * value = str(count).encode() * randrange(1, 100). */
static void next_op(uint64_t *state, long keys, struct op *op)
{
	double choice = (double)(rng_next(state) >> 11) * 0x1.0p-53;

	op->key = (long)(rng_next(state) % (uint64_t)keys);
	op->reps = 1 + (int)(rng_next(state) % 99);
	if (choice < 0.90)
		op->kind = OP_GET;
	else if (choice < 0.99)
		op->kind = OP_SET;
	else
		op->kind = OP_DEL;
}

static uint64_t seq_mix(uint64_t h, const struct op *op)
{
	uint64_t x = ((uint64_t)op->kind << 40) ^ ((uint64_t)op->key << 8) ^
		     (uint64_t)op->reps;

	/* FNV-1a over the three fields packed in one word. */
	for (int i = 0; i < 8; i++) {
		h ^= (x >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Backends                                                           */
/* ------------------------------------------------------------------ */

struct backend {
	/* create: make the directory's schema (parent, before forking). */
	int (*open)(struct backend *b, const struct config *cfg, int create);
	int (*get)(struct backend *b, const void *k, size_t klen);
	int (*set)(struct backend *b, const void *k, size_t klen, const void *v,
		   size_t vlen);
	int (*del)(struct backend *b, const void *k, size_t klen);
	void (*close)(struct backend *b);

	/* dcache */
	dc_cache *cache;
	struct dc_buf buf;

	/* sqlite */
	sqlite3 *db;
	sqlite3_stmt *st_get, *st_sel, *st_ins, *st_upd, *st_seldel, *st_del;
	sqlite3_stmt *st_begin, *st_commit, *st_rollback;
	char *vbuf; /* where a get copies the value, as a library would */
	size_t vcap;
};

static int dcache_open(struct backend *b, const struct config *cfg, int create)
{
	struct dc_options opts;
	int rc;

	(void)create;
	memset(&opts, 0, sizeof(opts));
	opts.shards = cfg->shards > 0 ? cfg->shards : DC_SHARDS_PLAIN;
	dc_buf_init(&b->buf);
	rc = dc_cache_open(cfg->dir, &opts, &b->cache);
	if (rc != 0)
		fprintf(stderr, "bench_core: dc_cache_open %s: %s\n", cfg->dir,
			dc_strerror(rc));
	return rc;
}

static int dcache_outcome(int rc)
{
	int out = RES_ERR;

	if (rc == 0)
		out = RES_OK;
	else if (rc == DC_NOTFOUND)
		out = RES_MISS;
	return out;
}

static int dcache_get(struct backend *b, const void *k, size_t klen)
{
	struct dc_value key = dc_bytes(k, klen);
	struct dc_item item;
	int rc = dc_cache_get(b->cache, &key, &b->buf, &item, 0);

	return dcache_outcome(rc);
}

static int dcache_set(struct backend *b, const void *k, size_t klen,
		      const void *v, size_t vlen)
{
	struct dc_value key = dc_bytes(k, klen);
	struct dc_value val = dc_bytes(v, vlen);
	int rc = dc_cache_set(b->cache, &key, &val, DC_NO_EXPIRE, NULL, 0);

	return rc == 0 ? RES_OK : RES_ERR;
}

static int dcache_del(struct backend *b, const void *k, size_t klen)
{
	struct dc_value key = dc_bytes(k, klen);
	int rc = dc_cache_delete(b->cache, &key, 0);

	return dcache_outcome(rc);
}

static void dcache_close(struct backend *b)
{
	dc_cache_close(b->cache);
	b->cache = NULL;
	dc_buf_release(&b->buf);
}

/* The schema exactly as DiskCache 5.4.0 issues it (spec section 2), after
 * the pragmas so that auto_vacuum takes effect on the empty file. */
static const char sql_schema[] =
    "PRAGMA auto_vacuum = 1;"
    "PRAGMA journal_mode = wal;"
    "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, "
    "value);"
    "INSERT OR REPLACE INTO Settings VALUES ('statistics', 0);"
    "INSERT OR REPLACE INTO Settings VALUES ('tag_index', 0);"
    "INSERT OR REPLACE INTO Settings VALUES ('eviction_policy', "
    "'least-recently-stored');"
    "INSERT OR REPLACE INTO Settings VALUES ('size_limit', 1073741824);"
    "INSERT OR REPLACE INTO Settings VALUES ('cull_limit', 10);"
    "INSERT OR REPLACE INTO Settings VALUES ('sqlite_auto_vacuum', 1);"
    "INSERT OR REPLACE INTO Settings VALUES ('sqlite_cache_size', 8192);"
    "INSERT OR REPLACE INTO Settings VALUES ('sqlite_journal_mode', "
    "'wal');"
    "INSERT OR REPLACE INTO Settings VALUES ('sqlite_mmap_size', "
    "67108864);"
    "INSERT OR REPLACE INTO Settings VALUES ('sqlite_synchronous', 1);"
    "INSERT OR REPLACE INTO Settings VALUES ('disk_min_file_size', "
    "32768);"
    "INSERT OR REPLACE INTO Settings VALUES ('disk_pickle_protocol', 5);"
    "INSERT OR IGNORE INTO Settings VALUES ('count', 0);"
    "INSERT OR IGNORE INTO Settings VALUES ('size', 0);"
    "INSERT OR IGNORE INTO Settings VALUES ('hits', 0);"
    "INSERT OR IGNORE INTO Settings VALUES ('misses', 0);"
    "CREATE TABLE IF NOT EXISTS Cache ( rowid INTEGER PRIMARY KEY, key "
    "BLOB, raw INTEGER, store_time REAL, expire_time REAL, access_time "
    "REAL, access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT "
    "0, mode INTEGER DEFAULT 0, filename TEXT, value BLOB);"
    "CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw);"
    "CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time);"
    "CREATE INDEX IF NOT EXISTS Cache_store_time ON Cache (store_time);"
    "CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON "
    "Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + 1 WHERE "
    "key = \"count\"; END;"
    "CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON "
    "Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value - 1 WHERE "
    "key = \"count\"; END;"
    "CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON "
    "Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + "
    "NEW.size WHERE key = \"size\"; END;"
    "CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON "
    "Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + "
    "NEW.size - OLD.size WHERE key = \"size\"; END;"
    "CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON "
    "Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value - "
    "OLD.size WHERE key = \"size\"; END;";

/* Per-connection pragmas, as DiskCache applies them on every connection. */
static const char sql_conn[] = "PRAGMA cache_size = 8192;"
			       "PRAGMA mmap_size = 67108864;"
			       "PRAGMA synchronous = 1;";

static int sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				    NULL);

	if (rc != SQLITE_OK)
		fprintf(stderr, "bench_core: prepare %s: %s\n", sql,
			sqlite3_errmsg(db));
	return rc;
}

static double unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sqlite_open(struct backend *b, const struct config *cfg, int create)
{
	char path[4096];
	char *err = NULL;
	int ret = -1;
	int rc;

	snprintf(path, sizeof(path), "%s/cache.db", cfg->dir);
	rc = sqlite3_open(path, &b->db);
	if (rc != SQLITE_OK)
		goto fail;
	/* DiskCache's default Cache timeout: 60 s. */
	sqlite3_busy_timeout(b->db, 60000);
	rc = sqlite3_exec(b->db, sql_conn, NULL, NULL, &err);
	if (rc == SQLITE_OK && create)
		rc = sqlite3_exec(b->db, sql_schema, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sql_prepare(b->db,
			 "SELECT rowid, expire_time, tag, mode, filename, "
			 "value FROM Cache WHERE key = ? AND raw = ? AND "
			 "(expire_time IS NULL OR expire_time > ?)",
			 &b->st_get);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db,
				 "SELECT rowid, filename FROM Cache WHERE key "
				 "= ? AND raw = ?",
				 &b->st_sel);
	if (rc == SQLITE_OK)
		rc = sql_prepare(
		    b->db,
		    "INSERT INTO Cache( key, raw, store_time, "
		    "expire_time, access_time, access_count, tag, size, "
		    "mode, filename, value) VALUES (?, ?, ?, ?, ?, ?, ?, "
		    "?, ?, ?, ?)",
		    &b->st_ins);
	if (rc == SQLITE_OK)
		rc =
		    sql_prepare(b->db,
				"UPDATE Cache SET store_time = ?, expire_time "
				"= ?, access_time = ?, access_count = ?, tag = "
				"?, size = ?, mode = ?, filename = ?, value = "
				"? WHERE rowid = ?",
				&b->st_upd);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db,
				 "SELECT rowid, filename FROM Cache WHERE key "
				 "= ? AND raw = ? AND (expire_time IS NULL OR "
				 "expire_time > ?)",
				 &b->st_seldel);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db, "DELETE FROM Cache WHERE rowid = ?",
				 &b->st_del);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db, "BEGIN IMMEDIATE", &b->st_begin);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db, "COMMIT", &b->st_commit);
	if (rc == SQLITE_OK)
		rc = sql_prepare(b->db, "ROLLBACK", &b->st_rollback);
	if (rc != SQLITE_OK)
		goto fail;
	ret = 0;
fail:
	if (ret != 0)
		fprintf(stderr, "bench_core: sqlite %s: %s\n", path,
			err ? err
			    : (b->db ? sqlite3_errmsg(b->db) : "open failed"));
	sqlite3_free(err);
	return ret;
}

/* Runs a statement without results (BEGIN, COMMIT, DELETE, ...). */
static int sql_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int sqlite_get(struct backend *b, const void *k, size_t klen)
{
	sqlite3_stmt *st = b->st_get;
	int ret = RES_MISS;
	int rc;

	sqlite3_bind_blob(st, 1, k, (int)klen, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, 1);
	sqlite3_bind_double(st, 3, unix_now());
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* Copy the value out, as a library returning it must. */
		const void *p = sqlite3_column_blob(st, 5);
		size_t n = (size_t)sqlite3_column_bytes(st, 5);

		if (n + 1 > b->vcap) {
			char *nb = realloc(b->vbuf, n + 1);

			if (!nb) {
				ret = RES_ERR;
				goto out;
			}
			b->vbuf = nb;
			b->vcap = n + 1;
		}
		if (n)
			memcpy(b->vbuf, p, n);
		b->vbuf[n] = '\0';
		ret = RES_OK;
	} else if (rc != SQLITE_DONE) {
		ret = RES_ERR;
	}
out:
	sqlite3_reset(st);
	return ret;
}

static int sqlite_set(struct backend *b, const void *k, size_t klen,
		      const void *v, size_t vlen)
{
	double now = unix_now();
	sqlite3_stmt *st;
	int64_t rowid = 0;
	int ret = RES_ERR;
	int found = 0;
	int rc;

	if (sql_step_done(b->st_begin) != 0)
		goto out;
	sqlite3_bind_blob(b->st_sel, 1, k, (int)klen, SQLITE_STATIC);
	sqlite3_bind_int(b->st_sel, 2, 1);
	rc = sqlite3_step(b->st_sel);
	if (rc == SQLITE_ROW) {
		found = 1;
		rowid = sqlite3_column_int64(b->st_sel, 0);
		/* Column 1, the old filename, is what a real implementation
		 * would schedule for unlinking; inline values have none. */
	}
	sqlite3_reset(b->st_sel);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (found) {
		st = b->st_upd;
		sqlite3_bind_double(st, 1, now);
		sqlite3_bind_null(st, 2);
		sqlite3_bind_double(st, 3, now);
		sqlite3_bind_int(st, 4, 0);
		sqlite3_bind_null(st, 5);
		sqlite3_bind_int(st, 6, 0);
		sqlite3_bind_int(st, 7, 1);
		sqlite3_bind_null(st, 8);
		sqlite3_bind_blob(st, 9, v, (int)vlen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, rowid);
	} else {
		st = b->st_ins;
		sqlite3_bind_blob(st, 1, k, (int)klen, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, 1);
		sqlite3_bind_double(st, 3, now);
		sqlite3_bind_null(st, 4);
		sqlite3_bind_double(st, 5, now);
		sqlite3_bind_int(st, 6, 0);
		sqlite3_bind_null(st, 7);
		sqlite3_bind_int(st, 8, 0);
		sqlite3_bind_int(st, 9, 1);
		sqlite3_bind_null(st, 10);
		sqlite3_bind_blob(st, 11, v, (int)vlen, SQLITE_STATIC);
	}
	rc = sql_step_done(st);
	if (rc != 0)
		goto fail;
	if (sql_step_done(b->st_commit) != 0)
		goto fail;
	ret = RES_OK;
	goto out;
fail:
	sql_step_done(b->st_rollback);
out:
	return ret;
}

static int sqlite_del(struct backend *b, const void *k, size_t klen)
{
	int64_t rowid = 0;
	int ret = RES_ERR;
	int found = 0;
	int rc;

	if (sql_step_done(b->st_begin) != 0)
		goto out;
	sqlite3_bind_blob(b->st_seldel, 1, k, (int)klen, SQLITE_STATIC);
	sqlite3_bind_int(b->st_seldel, 2, 1);
	sqlite3_bind_double(b->st_seldel, 3, unix_now());
	rc = sqlite3_step(b->st_seldel);
	if (rc == SQLITE_ROW) {
		found = 1;
		rowid = sqlite3_column_int64(b->st_seldel, 0);
	}
	sqlite3_reset(b->st_seldel);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	if (found) {
		sqlite3_bind_int64(b->st_del, 1, rowid);
		if (sql_step_done(b->st_del) != 0)
			goto fail;
	}
	if (sql_step_done(b->st_commit) != 0)
		goto fail;
	ret = found ? RES_OK : RES_MISS;
	goto out;
fail:
	sql_step_done(b->st_rollback);
out:
	return ret;
}

static void sqlite_close(struct backend *b)
{
	sqlite3_stmt **sts[] = { &b->st_get,   &b->st_sel,    &b->st_ins,
				 &b->st_upd,   &b->st_seldel, &b->st_del,
				 &b->st_begin, &b->st_commit, &b->st_rollback };

	for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
		sqlite3_finalize(*sts[i]);
		*sts[i] = NULL;
	}
	sqlite3_close(b->db);
	b->db = NULL;
	free(b->vbuf);
	b->vbuf = NULL;
	b->vcap = 0;
}

static int backend_init(struct backend *b, const char *impl)
{
	int ret = 0;

	memset(b, 0, sizeof(*b));
	if (strcmp(impl, "dcache") == 0) {
		b->open = dcache_open;
		b->get = dcache_get;
		b->set = dcache_set;
		b->del = dcache_del;
		b->close = dcache_close;
	} else if (strcmp(impl, "sqlite") == 0) {
		b->open = sqlite_open;
		b->get = sqlite_get;
		b->set = sqlite_set;
		b->del = sqlite_del;
		b->close = sqlite_close;
	} else {
		ret = -1;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Running                                                            */
/* ------------------------------------------------------------------ */

static size_t make_value(char *buf, size_t cap, long count, int reps)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%ld", count);
	size_t len = 0;

	for (int i = 0; i < reps && len + (size_t)n <= cap; i++) {
		memcpy(buf + len, num, (size_t)n);
		len += (size_t)n;
	}
	return len;
}

static int populate(struct backend *b, const struct config *cfg)
{
	char key[24], val[24 * 10];
	int ret = 0;

	for (long i = 0; i < cfg->keys && ret == 0; i++) {
		int klen = snprintf(key, sizeof(key), "%ld", i);
		size_t vlen = make_value(val, sizeof(val), i, 10);

		if (b->set(b, key, (size_t)klen, val, vlen) != RES_OK) {
			fprintf(stderr, "bench_core: populate failed\n");
			ret = -1;
		}
	}
	return ret;
}

/* One process's share: open a handle, wait for the start signal, run the
 * warm-up (not recorded) and the measured operations. */
static int run_proc(const struct config *cfg, int idx, int start_fd,
		    struct proc_result *res, struct op_record *rec)
{
	uint64_t state = cfg->seed + (uint64_t)idx;
	uint64_t seq = 0xcbf29ce484222325ULL;
	struct backend b;
	char key[24], val[24 * 100];
	int ret = -1;

	backend_init(&b, cfg->impl);
	if (b.open(&b, cfg, 0) != 0)
		goto out;
	if (start_fd >= 0) {
		char c;

		/* Blocks until the parent closes the write end. */
		if (read(start_fd, &c, 1) < 0)
			goto out;
	}
	for (long i = 0; i < cfg->warmup + cfg->ops; i++) {
		struct op op;
		int klen, outcome;
		size_t vlen = 0;
		int64_t t0, t1;

		next_op(&state, cfg->keys, &op);
		klen = snprintf(key, sizeof(key), "%ld", op.key);
		if (op.kind == OP_SET)
			vlen = make_value(val, sizeof(val), i, op.reps);
		if (i == cfg->warmup)
			res->start_ns = now_ns();
		t0 = now_ns();
		switch (op.kind) {
		case OP_GET:
			outcome = b.get(&b, key, (size_t)klen);
			break;
		case OP_SET:
			outcome = b.set(&b, key, (size_t)klen, val, vlen);
			break;
		default:
			outcome = b.del(&b, key, (size_t)klen);
			break;
		}
		t1 = now_ns();
		if (i >= cfg->warmup) {
			struct op_record *r = &rec[i - cfg->warmup];
			int64_t d = t1 - t0;

			r->ns =
			    d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
			r->kind = (uint8_t)op.kind;
			r->outcome = (uint8_t)outcome;
			seq = seq_mix(seq, &op);
		}
	}
	res->end_ns = now_ns();
	res->seq = seq;
	ret = 0;
out:
	/* Every close accepts a half-opened backend. */
	b.close(&b);
	res->failed = ret != 0;
	return ret;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array: the smallest value with at
 * least p of the samples at or below it (same rule in the Python side). */
static uint32_t percentile(const uint32_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p * (double)n);

	if (n == 0)
		return 0;
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

static const char *layout_name(const struct config *cfg, char *buf, size_t size)
{
	if (cfg->shards > 0)
		snprintf(buf, size, "fanout%d", cfg->shards);
	else
		snprintf(buf, size, "plain");
	return buf;
}

static int report(const struct config *cfg, const struct proc_result *res,
		  const struct op_record *rec)
{
	const char *impl =
	    strcmp(cfg->impl, "dcache") == 0 ? "libdcache" : "sqlite";
	size_t total = (size_t)cfg->ops * (size_t)cfg->procs;
	uint32_t *lat = malloc(total * sizeof(*lat));
	int64_t start = INT64_MAX, end = INT64_MIN;
	char layout[32];
	int ret = -1;

	if (!lat)
		goto out;
	layout_name(cfg, layout, sizeof(layout));
	for (int k = 0; k < NOPS; k++) {
		size_t n = 0, cnt[3] = { 0, 0, 0 };
		double sum = 0;

		for (size_t i = 0; i < total; i++) {
			if (rec[i].kind != k)
				continue;
			lat[n++] = rec[i].ns;
			sum += rec[i].ns;
			cnt[rec[i].outcome]++;
		}
		qsort(lat, n, sizeof(*lat), cmp_u32);
		printf("RESULT impl=%s layout=%s procs=%d op=%s n=%zu ok=%zu "
		       "miss=%zu err=%zu median_ns=%" PRIu32 " p99_ns=%" PRIu32
		       " mean_ns=%.0f\n",
		       impl, layout, cfg->procs, op_names[k], n, cnt[RES_OK],
		       cnt[RES_MISS], cnt[RES_ERR], percentile(lat, n, 0.5),
		       percentile(lat, n, 0.99), n ? sum / (double)n : 0.0);
	}
	for (int p = 0; p < cfg->procs; p++) {
		if (res[p].start_ns < start)
			start = res[p].start_ns;
		if (res[p].end_ns > end)
			end = res[p].end_ns;
	}
	printf("RESULT impl=%s layout=%s procs=%d op=all n=%zu wall_ns=%" PRId64
	       " ops_per_s=%.0f seq=%016" PRIx64 "\n",
	       impl, layout, cfg->procs, total, end - start,
	       (double)total * 1e9 / (double)(end - start), res[0].seq);
	ret = 0;
out:
	free(lat);
	return ret;
}

static int run(const struct config *cfg)
{
	size_t total = (size_t)cfg->ops * (size_t)cfg->procs;
	size_t shm_size = (size_t)cfg->procs * sizeof(struct proc_result) +
			  total * sizeof(struct op_record);
	struct proc_result *res;
	struct op_record *rec;
	struct backend b;
	pid_t *pids = NULL;
	int pipefd[2] = { -1, -1 };
	int ret = -1, started = 0;
	void *shm;

	shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("bench_core: mmap");
		shm = NULL;
		goto out;
	}
	res = shm;
	rec = (struct op_record *)(res + cfg->procs);

	/* Create the directory and pre-populate every key, then let go of
	 * the handle so that each measured process opens its own. */
	backend_init(&b, cfg->impl);
	if (b.open(&b, cfg, 1) != 0 || populate(&b, cfg) != 0) {
		b.close(&b);
		goto out;
	}
	b.close(&b);

	if (cfg->procs == 1) {
		/* In-process, so perf and callgrind need no child tracing. */
		if (run_proc(cfg, 0, -1, res, rec) != 0)
			goto out;
		ret = report(cfg, res, rec);
		goto out;
	}

	pids = calloc((size_t)cfg->procs, sizeof(*pids));
	if (!pids || pipe(pipefd) != 0)
		goto out;
	for (int p = 0; p < cfg->procs; p++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("bench_core: fork");
			goto out;
		}
		if (pid == 0) {
			close(pipefd[1]);
			_exit(run_proc(cfg, p, pipefd[0], &res[p],
				       &rec[(size_t)p * (size_t)cfg->ops]) == 0
				  ? 0
				  : 1);
		}
		pids[p] = pid;
		started++;
	}
	/* Give every child time to open its handle, then start them all. */
	usleep(200000);
	close(pipefd[1]);
	pipefd[1] = -1;
	ret = 0;
	for (int p = 0; p < started; p++) {
		int status;

		if (waitpid(pids[p], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0 || res[p].failed) {
			fprintf(stderr, "bench_core: process %d failed\n", p);
			ret = -1;
		}
	}
	started = 0;
	if (ret == 0)
		ret = report(cfg, res, rec);
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	/* Only on a failed fork loop: stop the children we started. */
	for (int p = 0; p < started; p++) {
		kill(pids[p], SIGTERM);
		waitpid(pids[p], NULL, 0);
	}
	free(pids);
	if (shm)
		munmap(shm, shm_size);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_core version\n"
		"       bench_core dcache|sqlite DIR [--shards N] [--procs N] "
		"[--ops N] [--warmup N] [--keys N] [--seed N]\n");
}

/* Fills @cfg from the command line; -1 on a usage error. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
	struct backend probe;
	int ret = -1;

	if (argc < 3)
		goto out;
	cfg->impl = argv[1];
	cfg->dir = argv[2];
	if (backend_init(&probe, cfg->impl) != 0)
		goto out;
	for (int i = 3; i < argc; i++) {
		const char *opt = argv[i];
		char *end;
		long long v;

		if (i + 1 >= argc)
			goto out;
		errno = 0;
		v = strtoll(argv[++i], &end, 10);
		if (errno || *end || v < 0)
			goto out;
		if (strcmp(opt, "--shards") == 0)
			cfg->shards = (int)v;
		else if (strcmp(opt, "--procs") == 0 && v > 0)
			cfg->procs = (int)v;
		else if (strcmp(opt, "--ops") == 0 && v > 0)
			cfg->ops = (long)v;
		else if (strcmp(opt, "--warmup") == 0)
			cfg->warmup = (long)v;
		else if (strcmp(opt, "--keys") == 0 && v > 0)
			cfg->keys = (long)v;
		else if (strcmp(opt, "--seed") == 0)
			cfg->seed = (uint64_t)v;
		else
			goto out;
	}
	/* The floor is one plain database; sharding is not its business. */
	if (cfg->shards > 0 && strcmp(cfg->impl, "sqlite") == 0)
		goto out;
	ret = 0;
out:
	return ret;
}

int main(int argc, char **argv)
{
	struct config cfg = { .shards = 0,
			      .procs = 1,
			      .ops = 100000,
			      .warmup = 1000,
			      .keys = 1000,
			      .seed = 42 };
	int status = 2;

	if (argc == 2 && strcmp(argv[1], "version") == 0) {
		/* For the header of bench/run.sh's table. */
		printf("sqlite=%s libdcache=%s\n", sqlite3_libversion(),
		       dc_version());
		status = 0;
	} else if (parse_args(argc, argv, &cfg) != 0) {
		usage();
	} else {
		status = run(&cfg) == 0 ? 0 : 1;
	}
	return status;
}
