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

static void item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

/* Python objects for the stored tuples. */
static struct dc_py py_int(int64_t i)
{
	struct dc_py p = { .kind = DC_PY_INT, .i = i };

	return p;
}

static struct dc_py py_float(double f)
{
	struct dc_py p = { .kind = DC_PY_FLOAT, .f = f };

	return p;
}

static struct dc_py py_str(const char *s, size_t len)
{
	struct dc_py p = { .kind = DC_PY_STR, .data = s, .len = len };

	return p;
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

/* What one recipe call works with: the checked recipe, its expire and
 * pickle protocol, the inputs of its steps and what they report.  Each
 * recipe uses only its own fields. */
struct op {
	const struct dc_recipe *r;
	double expire;
	int proto;
	struct waiter w;
	struct dc_value none; /* Lock: the pickled None, in none_buf */
	unsigned char none_buf[4];
	char me[OWNER_MAX]; /* RLock: this thread's owner name */
	size_t me_len;
	int64_t value; /* BoundedSemaphore's size, throttle's count */
	double num;    /* Averager's value, throttle's rate */
	int taken;     /* an acquire step got it */
	double delay;  /* throttle: seconds before the next pass */
};

/* What op_start does besides checking the recipe. */
enum {
	OP_WAIT = 1 << 0,  /* start the waiter for @wait */
	OP_PROTO = 1 << 1, /* read the pickle protocol */
};

/* Start a recipe call on @r: DC_INVAL for a bad recipe or when @invalid
 * (the caller's own argument checks); then, as @flags ask, the waiter
 * and the pickle protocol, in that order (the deadline starts first). */
static int op_start(struct op *op, const struct dc_recipe *r, int invalid,
		    unsigned int flags, double wait)
{
	int ret;

	memset(op, 0, sizeof(*op));
	op->r = r;
	ret = recipe_check(r, &op->expire);
	if (!ret && invalid)
		ret = DC_INVAL;
	if (!ret && (flags & OP_WAIT))
		ret = waiter_init(&op->w, wait);
	if (!ret && (flags & OP_PROTO))
		ret = dc_pickle_protocol(r->cache, &op->proto);
	return ret;
}

/* Python's "with cache.transact(retry=True)" around one @step. */
static int op_txn(struct op *op, int (*step)(struct op *op))
{
	int ret;

	ret = dc_cache_begin(op->r->cache, DC_RETRY);
	if (ret)
		return ret;
	return txn_end(op->r->cache, step(op));
}

/* How op_spin runs each try. */
enum { ALONE = 0, IN_TXN = 1 };

/* Python's acquire loop: @step until it sets op->taken, fails, or the
 * waiter's deadline passes (DC_EXISTS), each try in its own transaction
 * when @txn is IN_TXN. */
static int op_spin(struct op *op, int (*step)(struct op *op), int txn)
{
	int ret;

	for (;;) {
		ret = txn == IN_TXN ? op_txn(op, step) : step(op);
		if (ret || op->taken)
			break;
		ret = waiter_next(&op->w);
		if (ret)
			break;
	}
	return ret;
}

/* Store the pickled tuple (@a, @b) under the recipe's key. */
static int set_pair(const struct op *op, struct dc_py a, struct dc_py b,
		    const struct dc_value *tag)
{
	struct dc_buf out = DC_BUF_INIT;
	struct dc_py items[2] = { a, b };
	struct dc_value v;
	int ret;

	ret = dc_pickle_dumps(items, 2, 1, op->proto, 0, &out);
	if (ret)
		goto out;
	v = dc_pickle(out.data, out.len);
	ret = dc_cache_set(op->r->cache, &op->r->key, &v, op->expire, tag,
			   DC_RETRY);
out:
	dc_buf_release(&out);
	return ret;
}

/* The stored value as Python's 2-tuple, read (@pop: and deleted) into
 * @buf; @items point into it or into @text (what protocol 0 needed
 * decoded).  DC_NOTFOUND for a missing key; anything but a pickled pair
 * is DC_CORRUPT (in Python the tuple unpacking would fail). */
static int read_pair(const struct op *op, int pop, struct dc_buf *buf,
		     struct dc_buf *text, struct dc_py items[2])
{
	dc_cache *c = op->r->cache;
	struct dc_item it;
	size_t n = 0;
	int is_tuple = 0;
	int ret;

	item_init(&it);
	if (pop)
		ret = dc_cache_pop(c, &op->r->key, buf, &it, DC_RETRY);
	else
		ret = dc_cache_get(c, &op->r->key, buf, &it, DC_RETRY);
	if (ret)
		return ret;
	if (it.value.type != DC_TYPE_PICKLE)
		return DC_CORRUPT;
	ret = dc_unpickle(it.value.data, it.value.len, items, 2, &n, &is_tuple,
			  text);
	if (ret > 0)
		return ret; /* ENOMEM */
	if (ret || !is_tuple || n != 2)
		return DC_CORRUPT;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Lock                                                               */
/* ------------------------------------------------------------------ */

static int lock_try(struct op *op)
{
	int ret;

	ret = dc_cache_add(op->r->cache, &op->r->key, &op->none, op->expire,
			   op->r->tag, DC_RETRY);
	op->taken = ret == 0;
	return ret == DC_EXISTS ? 0 : ret;
}

int dc_lock_acquire(const struct dc_recipe *r, double wait)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, 0, OP_WAIT | OP_PROTO, wait);
	if (ret)
		goto out;
	op.none = dc_pickle(op.none_buf, pickle_none(op.proto, op.none_buf));
	ret = op_spin(&op, lock_try, ALONE);
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
	return ret ? ret : dc_cache_contains(r->cache, &r->key);
}

/* ------------------------------------------------------------------ */
/* RLock                                                              */
/* ------------------------------------------------------------------ */

/* Python's '{}-{}'.format(os.getpid(), threading.get_ident()); on Linux
 * get_ident() is pthread_self() as an unsigned long.  getpid() is asked
 * each time, so a forked child is another owner. */
static void rlock_owner(struct op *op)
{
	int n = snprintf(op->me, sizeof(op->me), "%ld-%lu", (long)getpid(),
			 (unsigned long)pthread_self());

	op->me_len = n > 0 ? (size_t)n : 0;
}

/* The stored (owner, count), or (None, 0) for a missing key, and whether
 * the owner is this thread. */
static int rlock_read(const struct op *op, int *mine, int64_t *count)
{
	struct dc_buf buf = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py items[2];
	int ret;

	*mine = 0;
	*count = 0;
	ret = read_pair(op, 0, &buf, &text, items);
	if (ret == DC_NOTFOUND) {
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	if (items[0].kind == DC_PY_STR)
		*mine = items[0].len == op->me_len &&
			memcmp(items[0].data, op->me, op->me_len) == 0;
	else if (items[0].kind != DC_PY_NONE)
		ret = DC_CORRUPT;
	if (!ret && items[1].kind != DC_PY_INT)
		ret = DC_CORRUPT;
	if (!ret)
		*count = items[1].i;
out:
	dc_buf_release(&buf);
	dc_buf_release(&text);
	return ret;
}

/* Store (this thread, @count). */
static int rlock_write(const struct op *op, int64_t count)
{
	return set_pair(op, py_str(op->me, op->me_len), py_int(count),
			op->r->tag);
}

/* One try of RLock.acquire: op->taken says whether the count was raised. */
static int rlock_up(struct op *op)
{
	int64_t count;
	int mine, ret;

	ret = rlock_read(op, &mine, &count);
	if (ret || (!mine && count != 0))
		return ret;
	if (count == INT64_MAX)
		return DC_OVERFLOW;
	ret = rlock_write(op, count + 1);
	op->taken = ret == 0;
	return ret;
}

static int rlock_down(struct op *op)
{
	int64_t count;
	int mine, ret;

	ret = rlock_read(op, &mine, &count);
	if (ret)
		return ret;
	/* Python's assert: "cannot release un-acquired lock". */
	if (!mine || count <= 0)
		return DC_NOTHELD;
	/* As Python, the key stays with count 0: it is never deleted. */
	return rlock_write(op, count - 1);
}

int dc_rlock_acquire(const struct dc_recipe *r, double wait)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, 0, OP_WAIT | OP_PROTO, wait);
	if (ret)
		goto out;
	rlock_owner(&op);
	ret = op_spin(&op, rlock_up, IN_TXN);
out:
	return ret;
}

int dc_rlock_release(const struct dc_recipe *r)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, 0, OP_PROTO, 0);
	if (ret)
		goto out;
	rlock_owner(&op);
	ret = op_txn(&op, rlock_down);
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* BoundedSemaphore                                                   */
/* ------------------------------------------------------------------ */

/* The free slots: the stored INT, or op->value for a missing key. */
static int sem_read(const struct op *op, int64_t *slots)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret;

	item_init(&it);
	ret = dc_cache_get(op->r->cache, &op->r->key, &buf, &it, DC_RETRY);
	if (ret == DC_NOTFOUND) {
		*slots = op->value;
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

static int sem_write(const struct op *op, int64_t slots)
{
	struct dc_value v = dc_int(slots);

	return dc_cache_set(op->r->cache, &op->r->key, &v, op->expire,
			    op->r->tag, DC_RETRY);
}

/* One try of acquire: op->taken says whether a slot was taken. */
static int sem_take(struct op *op)
{
	int64_t slots;
	int ret;

	ret = sem_read(op, &slots);
	if (ret || slots <= 0)
		return ret;
	ret = sem_write(op, slots - 1);
	op->taken = ret == 0;
	return ret;
}

static int sem_give(struct op *op)
{
	int64_t slots;
	int ret;

	ret = sem_read(op, &slots);
	if (ret)
		return ret;
	/* Python's assert: "cannot release un-acquired semaphore". */
	if (!(op->value > slots))
		return DC_NOTHELD;
	return sem_write(op, slots + 1);
}

int dc_semaphore_acquire(const struct dc_recipe *r, int64_t value, double wait)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, value < 0, OP_WAIT, wait);
	if (ret)
		goto out;
	op.value = value;
	ret = op_spin(&op, sem_take, IN_TXN);
out:
	return ret;
}

int dc_semaphore_release(const struct dc_recipe *r, int64_t value)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, value < 0, 0, 0);
	if (ret)
		goto out;
	op.value = value;
	ret = op_txn(&op, sem_give);
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* Averager                                                           */
/* ------------------------------------------------------------------ */

/* (total, count) from the stored pair: total an int or a float, count an
 * int, as Python's arithmetic on them requires. */
static int avg_decode(const struct dc_py items[2], double *total,
		      int64_t *count)
{
	int ret;

	ret = py_number(&items[0], total);
	if (ret)
		return ret;
	if (items[1].kind != DC_PY_INT)
		return DC_CORRUPT;
	*count = items[1].i;
	return 0;
}

static int avg_add(struct op *op)
{
	struct dc_buf buf = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py items[2];
	double total = 0.0;
	int64_t count = 0;
	int ret;

	ret = read_pair(op, 0, &buf, &text, items);
	if (ret == DC_NOTFOUND)
		ret = 0; /* Python's default (0.0, 0) */
	else if (!ret)
		ret = avg_decode(items, &total, &count);
	if (ret)
		goto out;
	if (count == INT64_MAX) {
		ret = DC_OVERFLOW;
		goto out;
	}
	ret = set_pair(op, py_float(total + op->num), py_int(count + 1),
		       op->r->tag);
out:
	dc_buf_release(&buf);
	dc_buf_release(&text);
	return ret;
}

int dc_averager_add(const struct dc_recipe *r, double value)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, 0, OP_PROTO, 0);
	if (ret)
		goto out;
	op.num = value;
	ret = op_txn(&op, avg_add);
out:
	return ret;
}

/* get (@pop 0) or pop (@pop 1) the average. */
static int avg_fetch(const struct dc_recipe *r, double *avg, int pop)
{
	struct dc_buf buf = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py items[2];
	struct op op;
	double total;
	int64_t count;
	int ret;

	ret = op_start(&op, r, !avg, 0, 0);
	if (ret)
		goto out;
	ret = read_pair(&op, pop, &buf, &text, items);
	if (ret)
		goto out;
	ret = avg_decode(items, &total, &count);
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
	dc_buf_release(&text);
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

static int throttle_bad(int64_t count, double seconds)
{
	/* Python divides by seconds and, for a call, by count / seconds. */
	return count < 1 || !(seconds > 0) || isinf(seconds);
}

int dc_throttle_init(const struct dc_recipe *r, int64_t count, double seconds)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, throttle_bad(count, seconds), OP_PROTO, 0);
	if (ret)
		goto out;
	ret = set_pair(&op, py_float(dc_now()), py_int(count), r->tag);
out:
	return ret;
}

/* One pass of Python's wrapper loop: take a call (op->delay 0) or say
 * how long to sleep before the next pass.  op->value is the count,
 * op->num the rate. */
static int throttle_pass(struct op *op)
{
	struct dc_buf buf = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py items[2];
	double last, tally, now;
	int ret;

	op->delay = 0;
	ret = read_pair(op, 0, &buf, &text, items);
	if (!ret)
		ret = py_number(&items[0], &last);
	if (!ret)
		ret = py_number(&items[1], &tally);
	if (ret)
		goto out;
	now = dc_now();
	tally += (now - last) * op->num;
	/* Python's stores here pass expire but no tag. */
	if (tally > (double)op->value)
		ret = set_pair(op, py_float(now), py_int(op->value - 1), NULL);
	else if (tally >= 1)
		ret = set_pair(op, py_float(now), py_float(tally - 1), NULL);
	else
		op->delay = (1 - tally) / op->num;
out:
	dc_buf_release(&buf);
	dc_buf_release(&text);
	return ret;
}

int dc_throttle_wait(const struct dc_recipe *r, int64_t count, double seconds)
{
	struct op op;
	int ret;

	ret = op_start(&op, r, throttle_bad(count, seconds), OP_PROTO, 0);
	if (ret)
		goto out;
	op.value = count;
	op.num = (double)count / seconds;
	for (;;) {
		ret = op_txn(&op, throttle_pass);
		if (ret || op.delay == 0)
			break;
		sleep_seconds(op.delay);
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
