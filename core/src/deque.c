/* deque.c - Python DiskCache's Deque on top of the public cache layer
 * SPDX-License-Identifier: MIT
 *
 * Everything here goes through dcache.h: the items are the integer queue
 * keys of dc_cache_push(), ordering walks the keys in sort order, and the
 * multi-step operations (append with maxlen, reverse) are transactions.
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collection.h"
#include "dcache.h"

/* The cache a deque and its copies share; closed with the last of them. */
struct deque_cache {
	dc_cache *cache;
	atomic_int refs;
};

struct dc_deque {
	dc_cache *cache; /* shared->cache */
	struct deque_cache *shared;
	int64_t maxlen; /* DC_DEQUE_UNBOUNDED or >= 0; this handle only */
};

/* The first queue key Python uses: below it are the front's keys. */
#define QUEUE_START 500000000000000LL

int dc_coll_open(dc_cache *parent, enum dc_sub kind, const char *dir,
		 const struct dc_options *opts, dc_cache **out)
{
	struct dc_options o;
	struct dc_setting *sets = NULL;
	int ret;

	if (out)
		*out = NULL;
	if (!dir || !out)
		return DC_INVAL;
	if (opts)
		o = *opts;
	else
		memset(&o, 0, sizeof(o));
	if (o.shards != 0 && o.shards != DC_SHARDS_PLAIN)
		return DC_INVAL;
	if (o.nsettings && !o.settings)
		return DC_INVAL;
	if (parent) {
		/* dc_cache_open_sub adds eviction_policy "none" itself. */
		ret = dc_cache_open_sub(parent, kind, dir, &o, out);
		goto out;
	}
	sets = calloc(o.nsettings + 1, sizeof(*sets));
	if (!sets) {
		ret = ENOMEM;
		goto out;
	}
	/* First, so that an explicit setting of the caller wins. */
	sets[0].name = "eviction_policy";
	sets[0].value = dc_text("none");
	for (size_t i = 0; i < o.nsettings; i++)
		sets[i + 1] = o.settings[i];
	o.settings = sets;
	o.nsettings++;
	o.shards = DC_SHARDS_PLAIN;
	ret = dc_cache_open(dir, &o, out);
out:
	free(sets);
	return ret;
}

static int deque_new(dc_cache *parent, const char *dir,
		     const struct dc_options *opts, dc_deque **out)
{
	dc_deque *d = NULL;
	int ret;

	if (out)
		*out = NULL;
	if (!out)
		return DC_INVAL;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->shared = calloc(1, sizeof(*d->shared)))) {
		ret = ENOMEM;
		goto out;
	}
	d->maxlen = DC_DEQUE_UNBOUNDED;
	atomic_init(&d->shared->refs, 1);
	ret = dc_coll_open(parent, DC_SUB_DEQUE, dir, opts, &d->shared->cache);
	if (ret)
		goto out;
	d->cache = d->shared->cache;
	*out = d;
	d = NULL;
out:
	if (d)
		free(d->shared);
	free(d);
	return ret;
}

int dc_deque_open(const char *dir, const struct dc_options *opts,
		  dc_deque **out)
{
	return deque_new(NULL, dir, opts, out);
}

int dc_deque_open_sub(dc_cache *parent, const char *name,
		      const struct dc_options *opts, dc_deque **out)
{
	if (!parent) {
		if (out)
			*out = NULL;
		return DC_INVAL;
	}
	return deque_new(parent, name, opts, out);
}

void dc_deque_close(dc_deque *d)
{
	if (!d)
		return;
	if (atomic_fetch_sub(&d->shared->refs, 1) == 1) {
		dc_cache_close(d->shared->cache);
		free(d->shared);
	}
	free(d);
}

int dc_deque_iter_open(dc_deque *d, unsigned flags, dc_iter **out)
{
	if (out)
		*out = NULL;
	if (!d || (flags & ~DC_REVERSE))
		return DC_INVAL;
	/* Python's iter(deque): iterkeys() order, each value read. */
	return dc_iter_open(d->cache, DC_SORTED | DC_VALUES | flags, NULL, 0,
			    out);
}

/* Python's copy() opens a second Cache on the directory.  Sharing the
 * open cache instead gives the copy exactly the options of the original
 * (timeout, log, serializer -- also those a sub-deque inherited from its
 * FanoutCache, which the directory alone does not tell) at no cost. */
int dc_deque_copy(dc_deque *d, dc_deque **out)
{
	dc_deque *c;

	if (out)
		*out = NULL;
	if (!d || !out)
		return DC_INVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->cache = d->cache;
	c->shared = d->shared;
	c->maxlen = d->maxlen;
	atomic_fetch_add(&d->shared->refs, 1);
	*out = c;
	return 0;
}

dc_cache *dc_deque_cache(dc_deque *d)
{
	return d ? d->cache : NULL;
}

int64_t dc_deque_maxlen(const dc_deque *d)
{
	return d ? d->maxlen : DC_DEQUE_UNBOUNDED;
}

static void item_reset(struct dc_item *item)
{
	memset(item, 0, sizeof(*item));
	item->fd = -1;
	item->expire_time = NAN;
}

/* Remove items from @flags' end until at most maxlen remain.  Called
 * inside a transaction. */
static int trim(dc_deque *d, unsigned flags)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	uint64_t n;
	int ret = 0;

	if (d->maxlen < 0)
		goto out;
	for (;;) {
		ret = dc_cache_len(d->cache, &n);
		if (ret || n <= (uint64_t)d->maxlen)
			break;
		item_reset(&item);
		ret = dc_cache_pull(d->cache, NULL, &buf, &item,
				    flags | DC_RETRY);
		if (ret == DC_NOTFOUND) {
			ret = 0;
			break;
		}
		if (ret)
			break;
	}
out:
	dc_buf_release(&buf);
	return ret;
}

/* Finish a transaction begun here.  On success, or when nothing was
 * changed (@changed 0), commit: inside the caller's own dc_cache_begin()
 * that only ends our level, so a miss or a rejected value never throws
 * away the caller's work.  A failure after a change rolls back the whole
 * transaction of the thread, as dc_cache_rollback() does. */
static int txn_end(dc_cache *c, int ret, int changed)
{
	int cret;

	if (ret && changed) {
		dc_cache_rollback(c);
		return ret;
	}
	cret = dc_cache_commit(c);
	return ret ? ret : cret;
}

int dc_deque_set_maxlen(dc_deque *d, int64_t maxlen)
{
	int ret;

	if (!d || maxlen < DC_DEQUE_UNBOUNDED)
		return DC_INVAL;
	d->maxlen = maxlen;
	ret = dc_cache_begin(d->cache, DC_RETRY);
	if (ret)
		return ret;
	return txn_end(d->cache, trim(d, DC_FRONT), 1);
}

/* Push each of @values[@n] at @side, trimming from the other end after
 * each as Python's append does, all in one transaction.  A push that
 * fails stores nothing, so a failure at the first value leaves the
 * caller's own transaction alone (txn_end). */
static int add(dc_deque *d, const struct dc_value *values, size_t n,
	       unsigned side)
{
	unsigned other = side == DC_BACK ? DC_FRONT : DC_BACK;
	int changed = 0;
	int ret;

	if (!d || (n && !values))
		return DC_INVAL;
	if (!n)
		return 0;
	ret = dc_cache_begin(d->cache, DC_RETRY);
	if (ret)
		return ret;
	for (size_t i = 0; i < n && !ret; i++) {
		ret = dc_cache_push(d->cache, &values[i], NULL, DC_NO_EXPIRE,
				    NULL, side | DC_RETRY, NULL, NULL);
		if (ret)
			break;
		changed = 1;
		ret = trim(d, other);
	}
	return txn_end(d->cache, ret, changed);
}

int dc_deque_append(dc_deque *d, const struct dc_value *value)
{
	return value ? add(d, value, 1, DC_BACK) : DC_INVAL;
}

int dc_deque_appendleft(dc_deque *d, const struct dc_value *value)
{
	return value ? add(d, value, 1, DC_FRONT) : DC_INVAL;
}

int dc_deque_extend(dc_deque *d, const struct dc_value *values, size_t n)
{
	return add(d, values, n, DC_BACK);
}

int dc_deque_extendleft(dc_deque *d, const struct dc_value *values, size_t n)
{
	return add(d, values, n, DC_FRONT);
}

static int take(dc_deque *d, int peek, unsigned side, struct dc_buf *buf,
		struct dc_item *item)
{
	if (!d || !buf || !item)
		return DC_INVAL;
	if (peek)
		return dc_cache_peek(d->cache, NULL, buf, item,
				     side | DC_RETRY);
	return dc_cache_pull(d->cache, NULL, buf, item, side | DC_RETRY);
}

int dc_deque_pop(dc_deque *d, struct dc_buf *buf, struct dc_item *item)
{
	return take(d, 0, DC_BACK, buf, item);
}

int dc_deque_popleft(dc_deque *d, struct dc_buf *buf, struct dc_item *item)
{
	return take(d, 0, DC_FRONT, buf, item);
}

int dc_deque_peek(dc_deque *d, struct dc_buf *buf, struct dc_item *item)
{
	return take(d, 1, DC_BACK, buf, item);
}

int dc_deque_peekleft(dc_deque *d, struct dc_buf *buf, struct dc_item *item)
{
	return take(d, 1, DC_FRONT, buf, item);
}

int dc_deque_len(dc_deque *d, uint64_t *count)
{
	if (!d || !count)
		return DC_INVAL;
	return dc_cache_len(d->cache, count);
}

int dc_deque_clear(dc_deque *d)
{
	if (!d)
		return DC_INVAL;
	return dc_cache_clear(d->cache, DC_RETRY, NULL);
}

enum index_op { OP_GET, OP_SET, OP_DELETE };

/* Python's Deque._index: walk the keys in sort order (from the back for
 * a negative index) to the index-th one and apply @op; a key that
 * vanished meanwhile is skipped and the next one taken instead. */
static int at_index(dc_deque *d, int64_t index, enum index_op op,
		    const struct dc_value *value, struct dc_buf *buf,
		    struct dc_item *item)
{
	struct dc_buf kbuf = DC_BUF_INIT;
	struct dc_item k;
	dc_iter *it = NULL;
	uint64_t len;
	uint64_t skip;
	int ret;

	if (!d)
		return DC_INVAL;
	ret = dc_cache_len(d->cache, &len);
	if (ret)
		goto out;
	skip = index >= 0 ? (uint64_t)index : (uint64_t)(-(index + 1));
	if (skip >= len) {
		ret = DC_NOTFOUND;
		goto out;
	}
	ret = dc_iter_open(d->cache, DC_SORTED | (index < 0 ? DC_REVERSE : 0),
			   NULL, 0, &it);
	if (ret)
		goto out;
	for (;;) {
		item_reset(&k);
		ret = dc_iter_next(it, &kbuf, &k);
		if (ret)
			break; /* DC_NOTFOUND: ran off the end */
		if (skip) {
			skip--;
			continue;
		}
		if (op == OP_GET) {
			ret =
			    dc_cache_get(d->cache, &k.key, buf, item, DC_RETRY);
			if (!ret)
				item->key = k.key;
		} else if (op == OP_SET) {
			ret = dc_cache_set(d->cache, &k.key, value,
					   DC_NO_EXPIRE, NULL, DC_RETRY);
		} else {
			ret = dc_cache_delete(d->cache, &k.key, DC_RETRY);
		}
		if (ret != DC_NOTFOUND)
			break;
	}
out:
	dc_iter_close(it);
	/* item->key may point into kbuf; only INT/FLOAT keys (the deque's
	 * own) survive its release. */
	if (op == OP_GET && !ret && item->key.data) {
		item->key.data = NULL;
		item->key.len = 0;
	}
	dc_buf_release(&kbuf);
	return ret;
}

int dc_deque_get(dc_deque *d, int64_t index, struct dc_buf *buf,
		 struct dc_item *item)
{
	if (!buf || !item)
		return DC_INVAL;
	return at_index(d, index, OP_GET, NULL, buf, item);
}

int dc_deque_set(dc_deque *d, int64_t index, const struct dc_value *value)
{
	if (!value)
		return DC_INVAL;
	return at_index(d, index, OP_SET, value, NULL, NULL);
}

int dc_deque_delete(dc_deque *d, int64_t index)
{
	return at_index(d, index, OP_DELETE, NULL, NULL, NULL);
}

int dc_deque_rotate(dc_deque *d, int64_t n)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	uint64_t len, steps;
	int right = n >= 0;
	int ret;

	if (!d)
		return DC_INVAL;
	ret = dc_deque_len(d, &len);
	if (ret || !len)
		goto out;
	steps = right ? (uint64_t)n : (uint64_t)0 - (uint64_t)n;
	steps %= len;
	while (steps--) {
		item_reset(&item);
		ret = right ? dc_deque_pop(d, &buf, &item)
			    : dc_deque_popleft(d, &buf, &item);
		if (ret == DC_NOTFOUND) {
			/* Emptied by someone else: stop quietly, as Python. */
			ret = 0;
			break;
		}
		if (ret)
			break;
		ret = right ? dc_deque_appendleft(d, &item.value)
			    : dc_deque_append(d, &item.value);
		if (ret)
			break;
	}
out:
	dc_buf_release(&buf);
	return ret;
}

/* An owned copy of a key read by an iterator. */
static int key_copy(struct dc_value *dst, const struct dc_value *src)
{
	void *p;

	*dst = *src;
	if (!src->data)
		return 0;
	p = malloc(src->len + 1);
	if (!p)
		return ENOMEM;
	memcpy(p, src->data, src->len);
	dst->data = p;
	return 0;
}

int dc_deque_reverse(dc_deque *d)
{
	struct dc_buf kbuf = DC_BUF_INIT;
	struct dc_item k;
	struct dc_value *keys = NULL, *tmp;
	size_t n = 0, cap = 0;
	dc_iter *it = NULL;
	int64_t base = QUEUE_START;
	int renamed = 0;
	int ret;

	if (!d)
		return DC_INVAL;
	ret = dc_cache_begin(d->cache, DC_RETRY);
	if (ret)
		return ret;
	ret = dc_iter_open(d->cache, DC_SORTED, NULL, 0, &it);
	while (!ret) {
		item_reset(&k);
		ret = dc_iter_next(it, &kbuf, &k);
		if (ret)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			tmp = realloc(keys, cap * sizeof(*keys));
			if (!tmp) {
				ret = ENOMEM;
				break;
			}
			keys = tmp;
		}
		ret = key_copy(&keys[n], &k.key);
		if (!ret)
			n++;
	}
	if (ret == DC_NOTFOUND)
		ret = 0;
	if (ret || n < 2)
		goto out;
	/* Numbers sort first: the smallest key is keys[0]. */
	if (keys[0].type == DC_TYPE_INT)
		base = keys[0].i;
	else if (keys[0].type == DC_TYPE_FLOAT)
		base = (int64_t)floor(keys[0].f);
	/* Queue keys must stay above 0 (§6.10's search range). */
	if (base <= (int64_t)n) {
		ret = DC_OVERFLOW;
		goto out;
	}
	/* The i-th key from the front becomes base-1-i: the back item gets
	 * the smallest key, so the order is reversed; the rows (and their
	 * value files) are renamed, never copied. */
	for (size_t i = 0; i < n && !ret; i++) {
		struct dc_value nk = dc_int(base - 1 - (int64_t)i);

		ret = dc_cache_rename(d->cache, &keys[i], &nk, DC_RETRY);
		if (!ret)
			renamed = 1;
		else if (ret == DC_NOTFOUND) /* expired: leave it behind */
			ret = 0;
	}
out:
	dc_iter_close(it);
	for (size_t i = 0; i < n; i++)
		free((void *)keys[i].data);
	free(keys);
	dc_buf_release(&kbuf);
	return txn_end(d->cache, ret, renamed);
}

/* The next item of the walk @it that is still there: its key in @k (in
 * @kbuf), its value read into @v (in @vbuf).  The value is always read,
 * never judged from the iterator's metadata: with a serializer the
 * stored type and size are not the caller's.  Items that vanished or
 * expired meanwhile are skipped, as in Python.  Returns 0, DC_NOTFOUND
 * (the walk ended), or an error. */
static int next_live(dc_deque *d, dc_iter *it, struct dc_buf *kbuf,
		     struct dc_item *k, struct dc_buf *vbuf, struct dc_item *v)
{
	int ret;

	do {
		item_reset(k);
		ret = dc_iter_next(it, kbuf, k);
		if (ret)
			break;
		item_reset(v);
		ret = dc_cache_get(d->cache, &k->key, vbuf, v, DC_RETRY);
	} while (ret == DC_NOTFOUND);
	return ret;
}

/* Equality of remove() and count(): the same type, and the same number
 * or the same bytes. */
static int same_value(const struct dc_value *a, const struct dc_value *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case DC_TYPE_NONE:
		return 1;
	case DC_TYPE_INT:
		return a->i == b->i;
	case DC_TYPE_FLOAT:
		return a->f == b->f;
	default:
		return a->len == b->len &&
		       (!a->len || !memcmp(a->data, b->data, a->len));
	}
}

/* Walk the items from the front comparing them with @value; with
 * @remove delete the first equal one, else count them. */
static int scan(dc_deque *d, const struct dc_value *value, int remove,
		uint64_t *count)
{
	struct dc_buf kbuf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item k, v;
	dc_iter *it = NULL;
	uint64_t found = 0;
	int ret;

	if (!d || !value || (!remove && !count))
		return DC_INVAL;
	ret = dc_iter_open(d->cache, DC_SORTED, NULL, 0, &it);
	while (!ret) {
		ret = next_live(d, it, &kbuf, &k, &vbuf, &v);
		if (ret)
			break;
		if (!same_value(&v.value, value))
			continue;
		if (!remove) {
			found++;
			continue;
		}
		ret = dc_cache_delete(d->cache, &k.key, DC_RETRY);
		if (ret == DC_NOTFOUND) {
			ret = 0; /* someone else took it: look further */
			continue;
		}
		if (!ret)
			found = 1;
		break;
	}
	if (ret == DC_NOTFOUND)
		ret = remove && !found ? DC_NOTFOUND : 0;
	if (count)
		*count = found;
	dc_iter_close(it);
	dc_buf_release(&kbuf);
	dc_buf_release(&vbuf);
	return ret;
}

int dc_deque_remove(dc_deque *d, const struct dc_value *value)
{
	return scan(d, value, 1, NULL);
}

int dc_deque_count(dc_deque *d, const struct dc_value *value, uint64_t *count)
{
	return scan(d, value, 0, count);
}

/* Python's ordering of two numbers, exact for int against float (as
 * Python compares them, without rounding the int to a double).  NaN
 * cannot be ordered: DC_TYPE. */
static int num_cmp(const struct dc_value *a, const struct dc_value *b, int *cmp)
{
	double f, t;
	int64_t i;
	int sign = 1;

	if (a->type == DC_TYPE_INT && b->type == DC_TYPE_INT) {
		*cmp = (a->i > b->i) - (a->i < b->i);
		return 0;
	}
	if (a->type == DC_TYPE_FLOAT && b->type == DC_TYPE_FLOAT) {
		if (isnan(a->f) || isnan(b->f))
			return DC_TYPE;
		*cmp = (a->f > b->f) - (a->f < b->f);
		return 0;
	}
	/* One int, one float: compare i with f, then flip if swapped. */
	if (a->type == DC_TYPE_INT) {
		i = a->i;
		f = b->f;
	} else {
		i = b->i;
		f = a->f;
		sign = -1;
	}
	if (isnan(f))
		return DC_TYPE;
	if (f >= 9223372036854775808.0) { /* 2^63: above every int64 */
		*cmp = -sign;
		return 0;
	}
	if (f < -9223372036854775808.0) {
		*cmp = sign;
		return 0;
	}
	t = trunc(f); /* now exactly representable as an int64 */
	if (i != (int64_t)t)
		*cmp = i > (int64_t)t ? sign : -sign;
	else if (f != t) /* equal integer parts: the fraction decides */
		*cmp = f > t ? -sign : sign;
	else
		*cmp = 0;
	return 0;
}

/* Python's comparison of two items: numbers by value, text with text
 * (UTF-8 bytewise order is code point order) and bytes with bytes
 * bytewise; anything else is equal only when of the same type with the
 * same bytes (pickles) or both None, and otherwise cannot be ordered. */
int dc_coll_cmp(const struct dc_value *a, const struct dc_value *b, int *cmp)
{
	int na = a->type == DC_TYPE_INT || a->type == DC_TYPE_FLOAT;
	int nb = b->type == DC_TYPE_INT || b->type == DC_TYPE_FLOAT;
	size_t n;
	int c;

	if (na && nb)
		return num_cmp(a, b, cmp);
	if (a->type != b->type || na || nb)
		return DC_TYPE;
	if (a->type == DC_TYPE_NONE) {
		*cmp = 0;
		return 0;
	}
	n = a->len < b->len ? a->len : b->len;
	c = n ? memcmp(a->data, b->data, n) : 0;
	if (!c)
		c = (a->len > b->len) - (a->len < b->len);
	if (a->type == DC_TYPE_PICKLE && c)
		return DC_TYPE;
	*cmp = (c > 0) - (c < 0);
	return 0;
}

/* Python's _make_compare: zip the items (skipping vanished ones) with
 * @values; the first unequal pair decides, else the lengths do, the
 * deque's being len() as read before the walk. */
int dc_deque_compare(dc_deque *d, const struct dc_value *values, size_t n,
		     int *cmp)
{
	struct dc_buf kbuf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item k, v;
	dc_iter *it = NULL;
	uint64_t len;
	size_t i = 0;
	int c = 0;
	int ret;

	if (!d || !cmp || (n && !values))
		return DC_INVAL;
	ret = dc_cache_len(d->cache, &len);
	if (!ret)
		ret = dc_iter_open(d->cache, DC_SORTED, NULL, 0, &it);
	while (!ret && i < n) {
		ret = next_live(d, it, &kbuf, &k, &vbuf, &v);
		if (!ret)
			ret = dc_coll_cmp(&v.value, &values[i++], &c);
		if (ret || c)
			break;
	}
	if (ret == DC_NOTFOUND) /* the walk ended */
		ret = 0;
	if (!ret && !c)
		c = (len > n) - (len < n);
	if (!ret)
		*cmp = c;
	dc_iter_close(it);
	dc_buf_release(&kbuf);
	dc_buf_release(&vbuf);
	return ret;
}
