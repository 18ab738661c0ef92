/* memo.c - DiskCache's memoize and memoize_stampede over any dc_cache
 * SPDX-License-Identifier: MIT
 *
 * A memoized call is looked up under the key Python's args_to_key()
 * builds, pickled and optimized exactly as Python's Disk.put() does, so a
 * C caller and a Python function memoized under the same name share
 * results.  Plain memoize stores the result as a cache value; the
 * stampede variant stores the pickled pair (result, seconds it took) and,
 * as expiry nears, lets one caller recompute it on a background thread
 * (memoize_stampede in recipes.py, with "XFetch" early expiration).
 *
 * Everything goes through dcache.h, so a plain Cache, a FanoutCache and
 * an Index's cache behave alike; fanout.h is only for the logger.
 */
#include "fanout.h"
#include "internal.h"
#include "pickle.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* A background recomputation: a copy of the call, owned by the job. */
struct memo_job {
	struct memo_job *next;
	dc_memo *memo;
	pthread_t tid;
	int done; /* protected by memo->lock */
	struct dc_value *args;
	size_t nargs;
	struct dc_kwarg *kwargs;
	size_t nkwargs;
	char *key; /* the pickled key */
	size_t keylen;
	char *blob; /* the copied strings */
};

struct dc_memo {
	dc_cache *cache;
	char *name;
	double expire; /* DC_NO_EXPIRE, or seconds */
	int store;     /* 0: expire < 0, results are never stored */
	struct dc_value tag;
	int has_tag;
	char *tagdata;
	unsigned flags;
	double beta;
	dc_memo_fn fn;
	void *arg;
	int proto;
	pthread_mutex_t lock;
	struct memo_job *jobs; /* protected by lock */
};

/* ------------------------------------------------------------------ */
/* Keys                                                               */
/* ------------------------------------------------------------------ */

static int to_py(const struct dc_value *v, struct dc_py *o)
{
	memset(o, 0, sizeof(*o));
	switch (v->type) {
	case DC_TYPE_NONE:
		o->kind = DC_PY_NONE;
		return 0;
	case DC_TYPE_INT:
		o->kind = DC_PY_INT;
		o->i = v->i;
		return 0;
	case DC_TYPE_FLOAT:
		o->kind = DC_PY_FLOAT;
		o->f = v->f;
		return 0;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
		if (v->len && !v->data)
			return DC_INVAL;
		o->kind = v->type == DC_TYPE_TEXT ? DC_PY_STR : DC_PY_BYTES;
		o->data = v->data;
		o->len = v->len;
		return 0;
	default:
		return DC_INVAL;
	}
}

static void py_type_of(const struct dc_py *v, struct dc_py *t)
{
	static const char *const names[] = {
		[DC_PY_NONE] = "NoneType", [DC_PY_INT] = "int",
		[DC_PY_FLOAT] = "float",   [DC_PY_STR] = "str",
		[DC_PY_BYTES] = "bytes",
	};

	memset(t, 0, sizeof(*t));
	t->kind = DC_PY_TYPE;
	t->data = names[v->kind];
	t->len = strlen(t->data);
}

/* Sort kwarg indexes by name (Python sorts the items, names first);
 * strcmp's byte order of UTF-8 is Python's code point order. */
static int kw_cmp_r(const void *a, const void *b, void *arg)
{
	const struct dc_kwarg *kw = arg;

	return strcmp(kw[*(const size_t *)a].name, kw[*(const size_t *)b].name);
}

/* The items of args_to_key(): (name, *args, None, k1, v1, ..., types).
 * @wrap: build the 1-tuple (key,) instead, the stampede's claim key.
 * Appends the optimized pickle to @out. */
static int build_key(const dc_memo *m, const struct dc_value *args,
		     size_t nargs, const struct dc_kwarg *kwargs,
		     size_t nkwargs, int wrap, struct dc_buf *out)
{
	int typed = !!(m->flags & DC_MEMO_TYPED);
	size_t n = 2 + nargs + 2 * nkwargs, i, k = 0;
	struct dc_py *it = NULL, outer;
	size_t *order = NULL;
	int rc;

	if ((nargs && !args) || (nkwargs && !kwargs))
		return DC_INVAL;
	if (nargs > SIZE_MAX / 8 || nkwargs > SIZE_MAX / 8)
		return DC_INVAL;
	if (typed)
		n += nargs + nkwargs;
	it = calloc(n, sizeof(*it));
	order = calloc(nkwargs ? nkwargs : 1, sizeof(*order));
	if (!it || !order) {
		rc = ENOMEM;
		goto out;
	}
	it[k].kind = DC_PY_STR;
	it[k].data = m->name;
	it[k++].len = strlen(m->name);
	for (i = 0; i < nargs; i++) {
		rc = to_py(&args[i], &it[k++]);
		if (rc)
			goto out;
	}
	it[k++].kind = DC_PY_NONE;
	for (i = 0; i < nkwargs; i++) {
		if (!kwargs[i].name ||
		    !dc_utf8_check(kwargs[i].name, strlen(kwargs[i].name),
				   NULL)) {
			rc = DC_INVAL;
			goto out;
		}
		order[i] = i;
	}
	qsort_r(order, nkwargs, sizeof(*order), kw_cmp_r, (void *)kwargs);
	for (i = 0; i < nkwargs; i++) {
		const struct dc_kwarg *kw = &kwargs[order[i]];

		/* Python's kwargs are a dict: one value per name. */
		if (i && !strcmp(kw->name, kwargs[order[i - 1]].name)) {
			rc = DC_INVAL;
			goto out;
		}
		it[k].kind = DC_PY_STR;
		it[k].data = kw->name;
		it[k++].len = strlen(kw->name);
		rc = to_py(&kw->value, &it[k++]);
		if (rc)
			goto out;
	}
	if (typed) {
		for (i = 0; i < nargs; i++)
			py_type_of(&it[1 + i], &it[k++]);
		for (i = 0; i < nkwargs; i++)
			py_type_of(&it[2 + nargs + 2 * i + 1], &it[k++]);
	}
	if (wrap) {
		memset(&outer, 0, sizeof(outer));
		outer.kind = DC_PY_TUPLE;
		outer.items = it;
		outer.len = k;
		rc = dc_pickle_dumps(&outer, 1, 1, m->proto, 1, out);
	} else {
		rc = dc_pickle_dumps(it, k, 1, m->proto, 1, out);
	}
out:
	free(order);
	free(it);
	return rc;
}

int dc_memo_key(const dc_memo *memo, const struct dc_value *args, size_t nargs,
		const struct dc_kwarg *kwargs, size_t nkwargs,
		struct dc_buf *buf, struct dc_value *key)
{
	int rc;

	if (!memo || !buf || !key)
		return DC_INVAL;
	buf->len = 0;
	rc = build_key(memo, args, nargs, kwargs, nkwargs, 0, buf);
	if (rc)
		return rc;
	*key = dc_pickle(buf->data, buf->len);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Setup                                                              */
/* ------------------------------------------------------------------ */

int dc_memo_new(dc_cache *cache, const struct dc_memo_opts *opts, dc_memo_fn fn,
		void *arg, dc_memo **out)
{
	dc_memo *m = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (!cache || !opts || !fn || !out || !opts->name ||
	    !dc_utf8_check(opts->name, strlen(opts->name), NULL) ||
	    (opts->flags & ~(unsigned)(DC_MEMO_TYPED | DC_MEMO_STAMPEDE)) ||
	    isnan(opts->beta) || isinf(opts->beta)) {
		rc = DC_INVAL;
		goto out;
	}
	if ((opts->flags & DC_MEMO_STAMPEDE) &&
	    !(opts->expire > 0 && !isinf(opts->expire))) {
		rc = DC_INVAL;
		goto out;
	}
	if (opts->tag && opts->tag->type != DC_TYPE_NONE &&
	    opts->tag->type != DC_TYPE_INT &&
	    opts->tag->type != DC_TYPE_FLOAT &&
	    opts->tag->type != DC_TYPE_TEXT &&
	    opts->tag->type != DC_TYPE_BYTES) {
		rc = DC_INVAL;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = ENOMEM;
		goto out;
	}
	m->cache = cache;
	m->fn = fn;
	m->arg = arg;
	m->flags = opts->flags;
	m->beta = opts->beta == 0 ? 1.0 : opts->beta;
	m->store = !(opts->expire < 0);
	m->expire = (isnan(opts->expire) || opts->expire == 0) ? DC_NO_EXPIRE
							       : opts->expire;
	m->name = strdup(opts->name);
	if (!m->name) {
		rc = ENOMEM;
		goto out;
	}
	if (opts->tag && opts->tag->type != DC_TYPE_NONE) {
		m->tag = *opts->tag;
		m->has_tag = 1;
		if (m->tag.type == DC_TYPE_TEXT ||
		    m->tag.type == DC_TYPE_BYTES) {
			if (m->tag.len && !m->tag.data) {
				rc = DC_INVAL;
				goto out;
			}
			m->tagdata = malloc(m->tag.len + 1);
			if (!m->tagdata) {
				rc = ENOMEM;
				goto out;
			}
			if (m->tag.len)
				memcpy(m->tagdata, m->tag.data, m->tag.len);
			m->tagdata[m->tag.len] = '\0';
			m->tag.data = m->tagdata;
		}
	}
	/* Keys are pickled with the cache's protocol, as Python's Disk
	 * does; a FanoutCache reports shard 0's, which all shards share. */
	rc = dc_pickle_protocol(cache, &m->proto);
	if (rc)
		goto out;
	rc = pthread_mutex_init(&m->lock, NULL);
	if (rc)
		goto out;
	*out = m;
	m = NULL;
out:
	if (m) {
		free(m->name);
		free(m->tagdata);
		free(m);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Results                                                            */
/* ------------------------------------------------------------------ */

static int result_ok(const dc_memo *m, const struct dc_value *r)
{
	switch (r->type) {
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT:
		return 1;
	case DC_TYPE_TEXT:
		return (r->data || !r->len) &&
		       dc_utf8_check(r->data, r->len, NULL);
	case DC_TYPE_BYTES:
		return r->data || !r->len;
	case DC_TYPE_PICKLE:
		return !(m->flags & DC_MEMO_STAMPEDE) && r->data && r->len;
	case DC_TYPE_NONE:
		return !!(m->flags & DC_MEMO_STAMPEDE);
	}
	return 0;
}

/* Make @buf hold @value's data, NUL, then @tag's data, NUL, and point
 * item->value and item->tag there.  @value's data may already be in
 * @buf (anywhere) or elsewhere. */
static int place(struct dc_buf *buf, const struct dc_value *value,
		 const struct dc_value *tag, struct dc_item *item)
{
	struct dc_value v = *value, t = { 0 };
	size_t vlen = 0, tlen = 0, toff;
	int has_vdata, has_tdata;
	char *copy = NULL;
	int rc = 0;

	if (tag)
		t = *tag;
	has_vdata = v.type == DC_TYPE_TEXT || v.type == DC_TYPE_BYTES ||
		    v.type == DC_TYPE_PICKLE;
	has_tdata = t.type == DC_TYPE_TEXT || t.type == DC_TYPE_BYTES;
	if (has_vdata)
		vlen = v.len;
	if (has_tdata)
		tlen = t.len;
	/* The value may overlap the destination: keep a copy first. */
	if (has_vdata && vlen) {
		copy = malloc(vlen);
		if (!copy)
			return ENOMEM;
		memcpy(copy, v.data, vlen);
	}
	toff = vlen + 1;
	rc = dc_buf_reserve(buf, toff + tlen + 1);
	if (rc)
		goto out;
	if (vlen)
		memcpy(buf->data, copy, vlen);
	buf->data[vlen] = '\0';
	if (tlen)
		memcpy(buf->data + toff, t.data, tlen);
	buf->data[toff + tlen] = '\0';
	buf->len = toff + tlen + 1;
	item->value = v;
	if (has_vdata)
		item->value.data = buf->data;
	item->tag = t;
	if (has_tdata)
		item->tag.data = buf->data + toff;
out:
	free(copy);
	return rc;
}

static void init_item(struct dc_item *item)
{
	memset(item, 0, sizeof(*item));
	item->expire_time = NAN;
	item->store_time = NAN;
	item->access_time = NAN;
	item->fd = -1;
}

/* Fill @item for a result just computed (and stored when @stored). */
static int fresh_item(const dc_memo *m, struct dc_buf *buf,
		      const struct dc_value *result, int stored,
		      struct dc_item *item)
{
	double now = dc_now();
	int rc;

	init_item(item);
	rc = place(buf, result, stored && m->has_tag ? &m->tag : NULL, item);
	if (rc)
		return rc;
	if (stored) {
		item->store_time = now;
		item->access_time = now;
		if (!isnan(m->expire))
			item->expire_time = now + m->expire;
	}
	if (result->type == DC_TYPE_TEXT || result->type == DC_TYPE_BYTES ||
	    result->type == DC_TYPE_PICKLE)
		item->size = result->len;
	return 0;
}

/* Stampede: the pickled pair (result, delta) as Python's set() of a
 * tuple value writes it (not optimized). */
static int pair_pickle(const dc_memo *m, const struct dc_value *result,
		       double delta, struct dc_buf *out)
{
	struct dc_py pair[2];
	int rc;

	rc = to_py(result, &pair[0]);
	if (rc)
		return rc;
	memset(&pair[1], 0, sizeof(pair[1]));
	pair[1].kind = DC_PY_FLOAT;
	pair[1].f = delta;
	out->len = 0;
	return dc_pickle_dumps(pair, 2, 1, m->proto, 0, out);
}

/* A stored pair read back: the result and delta (its data in @v's or in
 * @text). */
static int pair_parse(const struct dc_value *v, struct dc_value *result,
		      double *delta, struct dc_buf *text)
{
	struct dc_py it[2];
	size_t n;
	int is_tuple, rc;

	if (v->type != DC_TYPE_PICKLE)
		return DC_TYPE;
	rc = dc_unpickle(v->data, v->len, it, 2, &n, &is_tuple, text);
	if (rc == DC_INVAL)
		return DC_TYPE;
	if (rc)
		return rc;
	if (!is_tuple || n != 2)
		return DC_TYPE;
	if (it[1].kind == DC_PY_FLOAT)
		*delta = it[1].f;
	else if (it[1].kind == DC_PY_INT || it[1].kind == DC_PY_BOOL)
		*delta = (double)it[1].i;
	else
		return DC_TYPE;
	memset(result, 0, sizeof(*result));
	switch (it[0].kind) {
	case DC_PY_NONE:
		result->type = DC_TYPE_NONE;
		break;
	case DC_PY_BOOL: /* Python's bool is an int */
	case DC_PY_INT:
		*result = dc_int(it[0].i);
		break;
	case DC_PY_FLOAT:
		*result = dc_float(it[0].f);
		break;
	case DC_PY_STR:
		*result = dc_textn(it[0].data, it[0].len);
		break;
	case DC_PY_BYTES:
		*result = dc_bytes(it[0].data, it[0].len);
		break;
	default:
		return DC_TYPE;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Randomness for the early-recompute draw                            */
/* ------------------------------------------------------------------ */

static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

/* Uniform in [0, 1), as Python's random.random(). */
static double uniform(void)
{
	uint64_t z;

	if (!rng_seeded) {
		if (getrandom(&rng_state, sizeof(rng_state), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(rng_state))
			rng_state = (uint64_t)(dc_now() * 1e9) ^
				    (uint64_t)(uintptr_t)&rng_state;
		rng_seeded = 1;
	}
	/* splitmix64 */
	z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

/* ------------------------------------------------------------------ */
/* Background recomputation                                           */
/* ------------------------------------------------------------------ */

static void job_free(struct memo_job *j)
{
	if (!j)
		return;
	free(j->args);
	free(j->kwargs);
	free(j->key);
	free(j->blob);
	free(j);
}

/* A deep copy of the call, so the caller may return at once. */
static struct memo_job *job_new(dc_memo *m, const struct dc_value *args,
				size_t nargs, const struct dc_kwarg *kwargs,
				size_t nkwargs, const void *key, size_t keylen)
{
	struct memo_job *j = calloc(1, sizeof(*j));
	size_t total = 0, off = 0, i;

	if (!j)
		return NULL;
	j->memo = m;
	for (i = 0; i < nargs; i++)
		if (args[i].type == DC_TYPE_TEXT ||
		    args[i].type == DC_TYPE_BYTES)
			total += args[i].len + 1;
	for (i = 0; i < nkwargs; i++) {
		total += strlen(kwargs[i].name) + 1;
		if (kwargs[i].value.type == DC_TYPE_TEXT ||
		    kwargs[i].value.type == DC_TYPE_BYTES)
			total += kwargs[i].value.len + 1;
	}
	j->blob = malloc(total + 1);
	j->args = calloc(nargs + 1, sizeof(*j->args));
	j->kwargs = calloc(nkwargs + 1, sizeof(*j->kwargs));
	j->key = malloc(keylen);
	if (!j->blob || !j->args || !j->kwargs || !j->key) {
		job_free(j);
		return NULL;
	}
	memcpy(j->key, key, keylen);
	j->keylen = keylen;

/* Copy @len bytes of @src into the blob, NUL-terminated. */
#define BLOB_COPY(dst, src, len)                                               \
	do {                                                                   \
		if (len)                                                       \
			memcpy(j->blob + off, (src), (len));                   \
		j->blob[off + (len)] = '\0';                                   \
		(dst) = j->blob + off;                                         \
		off += (len) + 1;                                              \
	} while (0)

	for (i = 0; i < nargs; i++) {
		j->args[i] = args[i];
		if (args[i].type == DC_TYPE_TEXT ||
		    args[i].type == DC_TYPE_BYTES)
			BLOB_COPY(j->args[i].data, args[i].data, args[i].len);
	}
	j->nargs = nargs;
	for (i = 0; i < nkwargs; i++) {
		size_t nl = strlen(kwargs[i].name);
		const struct dc_value *v = &kwargs[i].value;

		BLOB_COPY(j->kwargs[i].name, kwargs[i].name, nl);
		j->kwargs[i].value = *v;
		if (v->type == DC_TYPE_TEXT || v->type == DC_TYPE_BYTES)
			BLOB_COPY(j->kwargs[i].value.data, v->data, v->len);
	}
#undef BLOB_COPY
	j->nkwargs = nkwargs;
	return j;
}

/* Compute, time and store the pair: the miss path and the background
 * recomputation share it.  @buf receives the result's data. */
static int compute_pair(dc_memo *m, const struct dc_value *key,
			const struct dc_value *args, size_t nargs,
			const struct dc_kwarg *kwargs, size_t nkwargs,
			struct dc_buf *buf, struct dc_value *result,
			int *stored)
{
	struct dc_buf pb = DC_BUF_INIT;
	struct dc_value pv;
	double t0, delta;
	int rc;

	*stored = 0;
	memset(result, 0, sizeof(*result));
	t0 = dc_now();
	rc = m->fn(m->arg, args, nargs, kwargs, nkwargs, buf, result);
	delta = dc_now() - t0;
	if (rc)
		goto out;
	if (!result_ok(m, result)) {
		rc = DC_INVAL;
		goto out;
	}
	rc = pair_pickle(m, result, delta, &pb);
	if (rc)
		goto out;
	pv = dc_pickle(pb.data, pb.len);
	rc = dc_cache_set(m->cache, key, &pv, m->expire,
			  m->has_tag ? &m->tag : NULL, DC_RETRY);
	if (rc) {
		dc_log(&m->cache->log, DC_LOG_WARNING,
		       "memoize %s: storing a result failed: %s", m->name,
		       dc_strerror(rc));
		rc = 0;
	} else {
		*stored = 1;
	}
out:
	dc_buf_release(&pb);
	return rc;
}

static void *job_run(void *p)
{
	struct memo_job *j = p;
	dc_memo *m = j->memo;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key = dc_pickle(j->key, j->keylen), result;
	int stored, rc;

	rc = compute_pair(m, &key, j->args, j->nargs, j->kwargs, j->nkwargs,
			  &buf, &result, &stored);
	if (rc)
		dc_log(&m->cache->log, DC_LOG_WARNING,
		       "memoize %s: early recomputation failed: %s", m->name,
		       dc_strerror(rc));
	dc_buf_release(&buf);
	pthread_mutex_lock(&m->lock);
	j->done = 1;
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* Join and free finished jobs; with @all, wait for every job. */
static void reap(dc_memo *m, int all)
{
	struct memo_job **pp, *j, *finished = NULL;

	pthread_mutex_lock(&m->lock);
	pp = &m->jobs;
	while ((j = *pp)) {
		if (all || j->done) {
			*pp = j->next;
			j->next = finished;
			finished = j;
		} else {
			pp = &j->next;
		}
	}
	pthread_mutex_unlock(&m->lock);
	while ((j = finished)) {
		finished = j->next;
		pthread_join(j->tid, NULL);
		job_free(j);
	}
}

static void start_job(dc_memo *m, const struct dc_value *args, size_t nargs,
		      const struct dc_kwarg *kwargs, size_t nkwargs,
		      const struct dc_value *key)
{
	struct memo_job *j;
	int rc;

	reap(m, 0);
	j = job_new(m, args, nargs, kwargs, nkwargs, key->data, key->len);
	if (!j) {
		rc = ENOMEM;
		goto fail;
	}
	/* Linked in before it starts, so that it is joined even if it
	 * finishes first. */
	pthread_mutex_lock(&m->lock);
	rc = pthread_create(&j->tid, NULL, job_run, j);
	if (!rc) {
		j->next = m->jobs;
		m->jobs = j;
	}
	pthread_mutex_unlock(&m->lock);
	if (!rc)
		return;
	job_free(j);
fail:
	/* The claim expires after delta seconds; someone retries then. */
	dc_log(&m->cache->log, DC_LOG_WARNING,
	       "memoize %s: cannot start a recomputation: %s", m->name,
	       dc_strerror(rc));
}

/* A stampede hit: decide whether to recompute early and maybe claim it.
 * Python: recompute when -delta * beta * log(U) >= ttl. */
static void maybe_recompute(dc_memo *m, const struct dc_value *args,
			    size_t nargs, const struct dc_kwarg *kwargs,
			    size_t nkwargs, const struct dc_value *key,
			    double expire_time, double delta)
{
	struct dc_buf cb = DC_BUF_INIT, nb = DC_BUF_INIT;
	struct dc_py none = { .kind = DC_PY_NONE };
	struct dc_value claim, nonev;
	double ttl;
	int rc;

	if (isnan(expire_time))
		return;
	ttl = expire_time - dc_now();
	if (-delta * m->beta * log(uniform()) < ttl)
		return;
	/* Python claims key + (ENOVAL,), which C cannot pickle; (key,) is
	 * a tuple whose only item is a tuple, which no memoize key (its
	 * first item is the name, a str) can equal. */
	rc = build_key(m, args, nargs, kwargs, nkwargs, 1, &cb);
	if (!rc)
		rc = dc_pickle_dumps(&none, 1, 0, m->proto, 0, &nb);
	if (rc)
		goto out;
	claim = dc_pickle(cb.data, cb.len);
	nonev = dc_pickle(nb.data, nb.len);
	rc = dc_cache_add(m->cache, &claim, &nonev, delta, NULL, DC_RETRY);
	if (rc == 0)
		start_job(m, args, nargs, kwargs, nkwargs, key);
	else if (rc != DC_EXISTS)
		dc_log(&m->cache->log, DC_LOG_WARNING,
		       "memoize %s: claiming a recomputation failed: %s",
		       m->name, dc_strerror(rc));
out:
	dc_buf_release(&cb);
	dc_buf_release(&nb);
}

/* ------------------------------------------------------------------ */
/* Calls                                                              */
/* ------------------------------------------------------------------ */

static int call_plain(dc_memo *m, const struct dc_value *key,
		      const struct dc_value *args, size_t nargs,
		      const struct dc_kwarg *kwargs, size_t nkwargs,
		      struct dc_buf *buf, struct dc_item *item)
{
	struct dc_value result = { 0 };
	int rc, stored = 0;

	init_item(item);
	rc = dc_cache_get(m->cache, key, buf, item, DC_RETRY);
	if (rc != DC_NOTFOUND)
		return rc;
	rc = m->fn(m->arg, args, nargs, kwargs, nkwargs, buf, &result);
	if (rc)
		return rc;
	if (!result_ok(m, &result))
		return DC_INVAL;
	if (m->store) {
		rc = dc_cache_set(m->cache, key, &result, m->expire,
				  m->has_tag ? &m->tag : NULL, DC_RETRY);
		if (rc)
			dc_log(&m->cache->log, DC_LOG_WARNING,
			       "memoize %s: storing a result failed: %s",
			       m->name, dc_strerror(rc));
		stored = !rc;
	}
	return fresh_item(m, buf, &result, stored, item);
}

static int call_stampede(dc_memo *m, const struct dc_value *key,
			 const struct dc_value *args, size_t nargs,
			 const struct dc_kwarg *kwargs, size_t nkwargs,
			 struct dc_buf *buf, struct dc_item *item)
{
	struct dc_buf vb = DC_BUF_INIT, tb = DC_BUF_INIT;
	struct dc_item got;
	struct dc_value result;
	double delta;
	int rc, stored;

	init_item(&got);
	rc = dc_cache_get(m->cache, key, &vb, &got, DC_RETRY);
	if (rc == 0) {
		rc = pair_parse(&got.value, &result, &delta, &tb);
		if (rc)
			goto out;
		maybe_recompute(m, args, nargs, kwargs, nkwargs, key,
				got.expire_time, delta);
		/* The result and tag move from vb to the caller's buf. */
		*item = got;
		rc = place(buf, &result, &got.tag, item);
		if (!rc && (result.type == DC_TYPE_TEXT ||
			    result.type == DC_TYPE_BYTES))
			item->size = result.len;
		else if (!rc)
			item->size = 0;
		goto out;
	}
	if (rc != DC_NOTFOUND)
		goto out;
	rc = compute_pair(m, key, args, nargs, kwargs, nkwargs, buf, &result,
			  &stored);
	if (!rc)
		rc = fresh_item(m, buf, &result, stored, item);
out:
	dc_buf_release(&vb);
	dc_buf_release(&tb);
	return rc;
}

int dc_memo_call(dc_memo *memo, const struct dc_value *args, size_t nargs,
		 const struct dc_kwarg *kwargs, size_t nkwargs,
		 struct dc_buf *buf, struct dc_item *item)
{
	struct dc_buf kb = DC_BUF_INIT;
	struct dc_value key;
	int rc;

	if (!memo || !buf || !item)
		return DC_INVAL;
	rc = build_key(memo, args, nargs, kwargs, nkwargs, 0, &kb);
	if (rc)
		goto out;
	key = dc_pickle(kb.data, kb.len);
	if (memo->flags & DC_MEMO_STAMPEDE)
		rc = call_stampede(memo, &key, args, nargs, kwargs, nkwargs,
				   buf, item);
	else
		rc = call_plain(memo, &key, args, nargs, kwargs, nkwargs, buf,
				item);
out:
	dc_buf_release(&kb);
	return rc;
}

void dc_memo_free(dc_memo *memo)
{
	if (!memo)
		return;
	reap(memo, 1);
	pthread_mutex_destroy(&memo->lock);
	free(memo->name);
	free(memo->tagdata);
	free(memo);
}
