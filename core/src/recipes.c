/* recipes.c - DiskCache's recipes: Lock, RLock, BoundedSemaphore, Averager,
 * throttle and barrier, storing what Python's recipes.py stores
 * SPDX-License-Identifier: MIT
 *
 * Everything goes through dcache.h, as Python's recipes go through the
 * Cache API: a Lock is add()/delete() of a pickled None, the others read
 * and rewrite one value inside dc_cache_begin(DC_RETRY) (Python's
 * transact(retry=True), which on a FanoutCache locks every shard).  The
 * tuples Python pickles -- RLock (owner, count), Averager (total, count),
 * throttle (time, tally) -- go through the pickle codec so both sides
 * write the same bytes and read each other's.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"
#include "internal.h"
#include "pickle.h"

/* Python's spin: sleep this long between tries. */
#define SPIN_SECONDS 0.001

/* "PID-TID" fits: two decimal numbers of at most 20 digits. */
#define OWNER_MAX 48

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep @s seconds, resuming after signals as Python's time.sleep does. */
static void sleep_seconds(double s)
{
	struct timespec ts, rem;

	if (!(s > 0))
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
		ts = rem;
}

/* A deadline for the spin of an acquire: forever, or @wait seconds. */
struct waiter {
	int forever;
	double deadline; /* mono_now() time */
};

static int waiter_init(struct waiter *w, double wait)
{
	w->forever = 0;
	w->deadline = 0;
	if (wait == DC_WAIT_FOREVER || (isinf(wait) && wait > 0)) {
		w->forever = 1;
		return 0;
	}
	if (isnan(wait) || wait < 0)
		return DC_INVAL;
	w->deadline = mono_now() + wait;
	return 0;
}

/* After a failed try: sleep before the next one (0), or DC_EXISTS once
 * the deadline has passed. */
static int waiter_next(const struct waiter *w)
{
	double left;

	if (w->forever) {
		sleep_seconds(SPIN_SECONDS);
		return 0;
	}
	left = w->deadline - mono_now();
	if (left <= 0)
		return DC_EXISTS;
	sleep_seconds(left < SPIN_SECONDS ? left : SPIN_SECONDS);
	return 0;
}

/* Check the recipe and turn its expire into dc_cache_set's: Python's
 * expire=None is our 0 or NaN (and +inf, which never comes either). */
static int recipe_check(const struct dc_recipe *r, double *expire)
{
	if (!r || !r->cache)
		return DC_INVAL;
	switch (r->key.type) {
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT:
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
		break;
	default:
		return DC_INVAL;
	}
	if (isnan(r->expire) || r->expire == 0 ||
	    (isinf(r->expire) && r->expire > 0))
		*expire = DC_NO_EXPIRE;
	else if (r->expire < 0)
		return DC_INVAL;
	else
		*expire = r->expire;
	return 0;
}

/* The cache's disk_pickle_protocol, which Python's Disk pickles with. */
static int pickle_protocol(dc_cache *c, int *proto)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;
	int ret;

	*proto = 5;
	ret = dc_cache_setting_get(c, "disk_pickle_protocol", &buf, &v);
	if (ret == DC_NOTFOUND) {
		/* Every DiskCache opener writes it; 5 is its default. */
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	if (v.type != DC_TYPE_INT || v.i < 0 || v.i > 5) {
		ret = DC_CORRUPT;
		goto out;
	}
	*proto = (int)v.i;
out:
	dc_buf_release(&buf);
	return ret;
}

/* pickle.dumps(None, protocol): PROTO (from protocol 2 on), NONE, STOP. */
static size_t pickle_none(int proto, unsigned char out[4])
{
	size_t n = 0;

	if (proto >= 2) {
		out[n++] = 0x80;
		out[n++] = (unsigned char)proto;
	}
	out[n++] = 'N';
	out[n++] = '.';
	return n;
}

/* Store the pickled tuple @items[2] under the recipe's key. */
static int set_pair(const struct dc_recipe *r, int proto,
		    const struct dc_py items[2], double expire,
		    const struct dc_value *tag, struct dc_buf *out)
{
	struct dc_value v;
	int ret;

	out->len = 0;
	ret = dc_pickle_dumps(items, 2, 1, proto, 0, out);
	if (ret)
		return ret;
	v = dc_pickle(out->data, out->len);
	return dc_cache_set(r->cache, &r->key, &v, expire, tag, DC_RETRY);
}

/* A stored value as Python's 2-tuple; anything else is DC_CORRUPT (in
 * Python the tuple unpacking would fail).  @items point into @v. */
static int get_pair(const struct dc_value *v, struct dc_py items[2])
{
	size_t n = 0;
	int is_tuple = 0;
	int ret;

	if (v->type != DC_TYPE_PICKLE)
		return DC_CORRUPT;
	ret = dc_unpickle(v->data, v->len, items, 2, &n, &is_tuple);
	if (ret > 0)
		return ret; /* ENOMEM */
	if (ret || !is_tuple || n != 2)
		return DC_CORRUPT;
	return 0;
}

/* A Python number as a double (int or float, as Python's arithmetic
 * accepts either); DC_CORRUPT for anything else. */
static int py_number(const struct dc_py *p, double *d)
{
	if (p->kind == DC_PY_FLOAT)
		*d = p->f;
	else if (p->kind == DC_PY_INT)
		*d = (double)p->i;
	else
		return DC_CORRUPT;
	return 0;
}

static void item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

/* End a transaction begun here.  Commit even after an error: the only
 * write of a recipe is its last step and a failed write changes nothing,
 * so committing just ends our level -- inside a caller's own
 * dc_cache_begin() that keeps the caller's work, as Python's nested
 * transact() lets an exception pass without rolling back. */
static int txn_end(dc_cache *c, int ret)
{
	int cret = dc_cache_commit(c);

	return ret ? ret : cret;
}

/* ------------------------------------------------------------------ */
/* Lock                                                               */
/* ------------------------------------------------------------------ */

int dc_lock_acquire(const struct dc_recipe *r, double wait)
{
	unsigned char none[4];
	struct waiter w;
	struct dc_value v;
	double expire;
	int proto, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = waiter_init(&w, wait);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	v = dc_pickle(none, pickle_none(proto, none));
	for (;;) {
		ret = dc_cache_add(r->cache, &r->key, &v, expire, r->tag,
				   DC_RETRY);
		if (ret != DC_EXISTS)
			break;
		ret = waiter_next(&w);
		if (ret)
			break;
	}
out:
	return ret;
}

int dc_lock_release(const struct dc_recipe *r)
{
	double expire;
	int ret;

	ret = recipe_check(r, &expire);
	if (ret)
		goto out;
	/* Python's release ignores a missing key; we say so. */
	ret = dc_cache_delete(r->cache, &r->key, DC_RETRY);
	if (ret == DC_NOTFOUND)
		ret = DC_NOTHELD;
out:
	return ret;
}

int dc_lock_locked(const struct dc_recipe *r)
{
	double expire;
	int ret;

	ret = recipe_check(r, &expire);
	if (ret)
		return ret;
	return dc_cache_contains(r->cache, &r->key);
}

/* ------------------------------------------------------------------ */
/* RLock                                                              */
/* ------------------------------------------------------------------ */

/* Python's '{}-{}'.format(os.getpid(), threading.get_ident()); on Linux
 * get_ident() is pthread_self() as an unsigned long.  getpid() is asked
 * each time, so a forked child is another owner. */
static size_t rlock_owner(char *buf, size_t size)
{
	int n = snprintf(buf, size, "%ld-%lu", (long)getpid(),
			 (unsigned long)pthread_self());

	return n > 0 ? (size_t)n : 0;
}

/* The stored (owner, count), or (None, 0) for a missing key.  @owner
 * points into @buf, NULL for None. */
struct rlock_state {
	const char *owner;
	size_t owner_len;
	int64_t count;
};

static int rlock_read(const struct dc_recipe *r, struct dc_buf *buf,
		      struct rlock_state *st)
{
	struct dc_item it;
	struct dc_py items[2];
	int ret;

	st->owner = NULL;
	st->owner_len = 0;
	st->count = 0;
	item_init(&it);
	ret = dc_cache_get(r->cache, &r->key, buf, &it, DC_RETRY);
	if (ret == DC_NOTFOUND)
		return 0;
	if (ret)
		return ret;
	ret = get_pair(&it.value, items);
	if (ret)
		return ret;
	if (items[0].kind == DC_PY_STR) {
		st->owner = items[0].data;
		st->owner_len = items[0].len;
	} else if (items[0].kind != DC_PY_NONE) {
		return DC_CORRUPT;
	}
	if (items[1].kind != DC_PY_INT)
		return DC_CORRUPT;
	st->count = items[1].i;
	return 0;
}

static int rlock_is(const struct rlock_state *st, const char *me, size_t len)
{
	return st->owner && st->owner_len == len &&
	       memcmp(st->owner, me, len) == 0;
}

/* One try of RLock.acquire, in its own transaction: *taken says whether
 * the count was raised. */
static int rlock_try(const struct dc_recipe *r, int proto, double expire,
		     const char *me, size_t len, int *taken)
{
	struct dc_buf in = DC_BUF_INIT, out = DC_BUF_INIT;
	struct rlock_state st;
	struct dc_py items[2];
	int ret;

	*taken = 0;
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		goto out;
	ret = rlock_read(r, &in, &st);
	if (ret)
		goto end;
	if (!rlock_is(&st, me, len) && st.count != 0)
		goto end;
	if (st.count == INT64_MAX) {
		ret = DC_OVERFLOW;
		goto end;
	}
	memset(items, 0, sizeof(items));
	items[0].kind = DC_PY_STR;
	items[0].data = me;
	items[0].len = len;
	items[1].kind = DC_PY_INT;
	items[1].i = st.count + 1;
	ret = set_pair(r, proto, items, expire, r->tag, &out);
	if (!ret)
		*taken = 1;
end:
	ret = txn_end(r->cache, ret);
	if (ret)
		*taken = 0;
out:
	dc_buf_release(&in);
	dc_buf_release(&out);
	return ret;
}

int dc_rlock_acquire(const struct dc_recipe *r, double wait)
{
	char me[OWNER_MAX];
	struct waiter w;
	double expire;
	size_t len;
	int proto, taken, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = waiter_init(&w, wait);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	len = rlock_owner(me, sizeof(me));
	for (;;) {
		ret = rlock_try(r, proto, expire, me, len, &taken);
		if (ret || taken)
			break;
		ret = waiter_next(&w);
		if (ret)
			break;
	}
out:
	return ret;
}

int dc_rlock_release(const struct dc_recipe *r)
{
	struct dc_buf in = DC_BUF_INIT, out = DC_BUF_INIT;
	char me[OWNER_MAX];
	struct rlock_state st;
	struct dc_py items[2];
	double expire;
	size_t len;
	int proto, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	len = rlock_owner(me, sizeof(me));
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		goto out;
	ret = rlock_read(r, &in, &st);
	if (ret)
		goto end;
	/* Python's assert: "cannot release un-acquired lock". */
	if (!rlock_is(&st, me, len) || st.count <= 0) {
		ret = DC_NOTHELD;
		goto end;
	}
	/* As Python, the key stays with count 0: it is never deleted. */
	memset(items, 0, sizeof(items));
	items[0].kind = DC_PY_STR;
	items[0].data = me;
	items[0].len = len;
	items[1].kind = DC_PY_INT;
	items[1].i = st.count - 1;
	ret = set_pair(r, proto, items, expire, r->tag, &out);
end:
	ret = txn_end(r->cache, ret);
out:
	dc_buf_release(&in);
	dc_buf_release(&out);
	return ret;
}

/* ------------------------------------------------------------------ */
/* BoundedSemaphore                                                   */
/* ------------------------------------------------------------------ */

/* The free slots: the stored INT, or @value for a missing key. */
static int sem_read(const struct dc_recipe *r, int64_t value, int64_t *slots)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret;

	item_init(&it);
	ret = dc_cache_get(r->cache, &r->key, &buf, &it, DC_RETRY);
	if (ret == DC_NOTFOUND) {
		*slots = value;
		ret = 0;
	} else if (!ret) {
		if (it.value.type == DC_TYPE_INT)
			*slots = it.value.i;
		else
			ret = DC_TYPE;
	}
	dc_buf_release(&buf);
	return ret;
}

static int sem_try(const struct dc_recipe *r, int64_t value, double expire,
		   int *taken)
{
	struct dc_value v;
	int64_t slots;
	int ret;

	*taken = 0;
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		return ret;
	ret = sem_read(r, value, &slots);
	if (ret || slots <= 0)
		goto end;
	v = dc_int(slots - 1);
	ret = dc_cache_set(r->cache, &r->key, &v, expire, r->tag, DC_RETRY);
	if (!ret)
		*taken = 1;
end:
	ret = txn_end(r->cache, ret);
	if (ret)
		*taken = 0;
	return ret;
}

int dc_semaphore_acquire(const struct dc_recipe *r, int64_t value, double wait)
{
	struct waiter w;
	double expire;
	int taken, ret;

	ret = recipe_check(r, &expire);
	if (!ret && value < 0)
		ret = DC_INVAL;
	if (!ret)
		ret = waiter_init(&w, wait);
	if (ret)
		goto out;
	for (;;) {
		ret = sem_try(r, value, expire, &taken);
		if (ret || taken)
			break;
		ret = waiter_next(&w);
		if (ret)
			break;
	}
out:
	return ret;
}

int dc_semaphore_release(const struct dc_recipe *r, int64_t value)
{
	struct dc_value v;
	double expire;
	int64_t slots;
	int ret;

	ret = recipe_check(r, &expire);
	if (!ret && value < 0)
		ret = DC_INVAL;
	if (ret)
		goto out;
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		goto out;
	ret = sem_read(r, value, &slots);
	if (ret)
		goto end;
	/* Python's assert: "cannot release un-acquired semaphore". */
	if (!(value > slots)) {
		ret = DC_NOTHELD;
		goto end;
	}
	v = dc_int(slots + 1);
	ret = dc_cache_set(r->cache, &r->key, &v, expire, r->tag, DC_RETRY);
end:
	ret = txn_end(r->cache, ret);
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* Averager                                                           */
/* ------------------------------------------------------------------ */

/* (total, count) from a stored value: total an int or a float, count an
 * int, as Python's arithmetic on them requires. */
static int avg_decode(const struct dc_value *v, double *total, int64_t *count)
{
	struct dc_py items[2];
	int ret;

	ret = get_pair(v, items);
	if (ret)
		return ret;
	ret = py_number(&items[0], total);
	if (ret)
		return ret;
	if (items[1].kind != DC_PY_INT)
		return DC_CORRUPT;
	*count = items[1].i;
	return 0;
}

int dc_averager_add(const struct dc_recipe *r, double value)
{
	struct dc_buf in = DC_BUF_INIT, out = DC_BUF_INIT;
	struct dc_py items[2];
	struct dc_item it;
	double expire, total = 0.0;
	int64_t count = 0;
	int proto, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		goto out;
	item_init(&it);
	ret = dc_cache_get(r->cache, &r->key, &in, &it, DC_RETRY);
	if (ret == DC_NOTFOUND)
		ret = 0; /* Python's default (0.0, 0) */
	else if (!ret)
		ret = avg_decode(&it.value, &total, &count);
	if (ret)
		goto end;
	if (count == INT64_MAX) {
		ret = DC_OVERFLOW;
		goto end;
	}
	memset(items, 0, sizeof(items));
	items[0].kind = DC_PY_FLOAT;
	items[0].f = total + value;
	items[1].kind = DC_PY_INT;
	items[1].i = count + 1;
	ret = set_pair(r, proto, items, expire, r->tag, &out);
end:
	ret = txn_end(r->cache, ret);
out:
	dc_buf_release(&in);
	dc_buf_release(&out);
	return ret;
}

/* get (@pop 0) or pop (@pop 1) the average. */
static int avg_fetch(const struct dc_recipe *r, double *avg, int pop)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	double expire, total;
	int64_t count;
	int ret;

	ret = recipe_check(r, &expire);
	if (!ret && !avg)
		ret = DC_INVAL;
	if (ret)
		goto out;
	item_init(&it);
	if (pop)
		ret = dc_cache_pop(r->cache, &r->key, &buf, &it, DC_RETRY);
	else
		ret = dc_cache_get(r->cache, &r->key, &buf, &it, DC_RETRY);
	if (ret)
		goto out;
	ret = avg_decode(&it.value, &total, &count);
	if (ret)
		goto out;
	/* Python returns None for a count of 0. */
	if (count == 0) {
		ret = DC_NOTFOUND;
		goto out;
	}
	*avg = total / (double)count;
out:
	dc_buf_release(&buf);
	return ret;
}

int dc_averager_get(const struct dc_recipe *r, double *avg)
{
	return avg_fetch(r, avg, 0);
}

int dc_averager_pop(const struct dc_recipe *r, double *avg)
{
	return avg_fetch(r, avg, 1);
}

/* ------------------------------------------------------------------ */
/* throttle                                                           */
/* ------------------------------------------------------------------ */

static int throttle_check(int64_t count, double seconds)
{
	/* Python divides by seconds and, for a call, by count / seconds. */
	if (count < 1 || !(seconds > 0) || isinf(seconds))
		return DC_INVAL;
	return 0;
}

int dc_throttle_init(const struct dc_recipe *r, int64_t count, double seconds)
{
	struct dc_buf out = DC_BUF_INIT;
	struct dc_py items[2];
	double expire;
	int proto, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = throttle_check(count, seconds);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	memset(items, 0, sizeof(items));
	items[0].kind = DC_PY_FLOAT;
	items[0].f = dc_now();
	items[1].kind = DC_PY_INT;
	items[1].i = count;
	ret = set_pair(r, proto, items, expire, r->tag, &out);
out:
	dc_buf_release(&out);
	return ret;
}

/* One pass of Python's wrapper loop: take a call (*delay 0) or say how
 * long to sleep before the next pass. */
static int throttle_try(const struct dc_recipe *r, int proto, double expire,
			int64_t count, double rate, double *delay)
{
	struct dc_buf in = DC_BUF_INIT, out = DC_BUF_INIT;
	struct dc_py items[2];
	struct dc_item it;
	double last, tally, now;
	int ret;

	*delay = 0;
	ret = dc_cache_begin(r->cache, DC_RETRY);
	if (ret)
		goto out;
	item_init(&it);
	ret = dc_cache_get(r->cache, &r->key, &in, &it, DC_RETRY);
	if (ret)
		goto end;
	ret = get_pair(&it.value, items);
	if (!ret)
		ret = py_number(&items[0], &last);
	if (!ret)
		ret = py_number(&items[1], &tally);
	if (ret)
		goto end;
	now = dc_now();
	tally += (now - last) * rate;
	memset(items, 0, sizeof(items));
	items[0].kind = DC_PY_FLOAT;
	items[0].f = now;
	/* Python's stores here pass expire but no tag. */
	if (tally > (double)count) {
		items[1].kind = DC_PY_INT;
		items[1].i = count - 1;
		ret = set_pair(r, proto, items, expire, NULL, &out);
	} else if (tally >= 1) {
		items[1].kind = DC_PY_FLOAT;
		items[1].f = tally - 1;
		ret = set_pair(r, proto, items, expire, NULL, &out);
	} else {
		*delay = (1 - tally) / rate;
	}
end:
	ret = txn_end(r->cache, ret);
out:
	dc_buf_release(&in);
	dc_buf_release(&out);
	return ret;
}

int dc_throttle_wait(const struct dc_recipe *r, int64_t count, double seconds)
{
	double expire, rate, delay;
	int proto, ret;

	ret = recipe_check(r, &expire);
	if (!ret)
		ret = throttle_check(count, seconds);
	if (!ret)
		ret = pickle_protocol(r->cache, &proto);
	if (ret)
		goto out;
	rate = (double)count / seconds;
	for (;;) {
		ret = throttle_try(r, proto, expire, count, rate, &delay);
		if (ret || delay == 0)
			break;
		sleep_seconds(delay);
	}
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* barrier                                                            */
/* ------------------------------------------------------------------ */

int dc_barrier(const struct dc_recipe *r, enum dc_barrier_kind kind,
	       int (*fn)(void *arg), void *arg)
{
	int ret, rel;

	if (!fn)
		return DC_INVAL;
	switch (kind) {
	case DC_BARRIER_LOCK:
		ret = dc_lock_acquire(r, DC_WAIT_FOREVER);
		break;
	case DC_BARRIER_RLOCK:
		ret = dc_rlock_acquire(r, DC_WAIT_FOREVER);
		break;
	case DC_BARRIER_SEMAPHORE:
		ret = dc_semaphore_acquire(r, 1, DC_WAIT_FOREVER);
		break;
	default:
		return DC_INVAL;
	}
	if (ret)
		return ret;
	ret = fn(arg);
	if (kind == DC_BARRIER_LOCK)
		rel = dc_lock_release(r);
	else if (kind == DC_BARRIER_RLOCK)
		rel = dc_rlock_release(r);
	else
		rel = dc_semaphore_release(r, 1);
	/* The function's own error is the more useful one to report. */
	return ret ? ret : rel;
}
