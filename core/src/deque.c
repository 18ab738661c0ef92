/* deque.c - Python DiskCache's Deque on top of the public cache layer
 * SPDX-License-Identifier: MIT
 *
 * Everything here goes through dcache.h: the items are the integer queue
 * keys of dc_cache_push(), ordering walks the keys in sort order, and the
 * multi-step operations (append with maxlen, reverse) are transactions.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "collection.h"
#include "dcache.h"

struct dc_deque {
	dc_cache *cache;
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
	if (!d) {
		ret = ENOMEM;
		goto out;
	}
	d->maxlen = DC_DEQUE_UNBOUNDED;
	ret = dc_coll_open(parent, DC_SUB_DEQUE, dir, opts, &d->cache);
	if (ret)
		goto out;
	*out = d;
	d = NULL;
out:
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
	dc_cache_close(d->cache);
	free(d);
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

/* push at @side, then trim from the other end, in one transaction. */
static int add(dc_deque *d, const struct dc_value *value, unsigned side,
	       unsigned other)
{
	int ret;

	if (!d || !value)
		return DC_INVAL;
	ret = dc_cache_begin(d->cache, DC_RETRY);
	if (ret)
		return ret;
	ret = dc_cache_push(d->cache, value, NULL, DC_NO_EXPIRE, NULL,
			    side | DC_RETRY, NULL, NULL);
	if (ret)
		return txn_end(d->cache, ret, 0);
	return txn_end(d->cache, trim(d, other), 1);
}

int dc_deque_append(dc_deque *d, const struct dc_value *value)
{
	return add(d, value, DC_BACK, DC_FRONT);
}

int dc_deque_appendleft(dc_deque *d, const struct dc_value *value)
{
	return add(d, value, DC_FRONT, DC_BACK);
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

/* Compare the item the iterator reported at @k with @value: type and
 * number, or size and then the bytes read with dc_cache_get.  1 equal,
 * 0 not (or vanished), or a negative error. */
static int equal_at(dc_deque *d, const struct dc_item *k,
		    const struct dc_value *value, struct dc_buf *buf)
{
	struct dc_item v;
	int ret;

	if (k->value.type != value->type)
		return 0;
	if (value->type == DC_TYPE_INT)
		return k->value.i == value->i;
	if (value->type == DC_TYPE_FLOAT)
		return k->value.f == value->f;
	if (k->size != value->len)
		return 0;
	item_reset(&v);
	ret = dc_cache_get(d->cache, &k->key, buf, &v, DC_RETRY);
	if (ret == DC_NOTFOUND)
		return 0;
	if (ret)
		return ret < 0 ? ret : -ret;
	return v.value.type == value->type && v.value.len == value->len &&
	       (!value->len || !memcmp(v.value.data, value->data, value->len));
}

/* Walk the items from the front comparing them with @value; with
 * @remove delete the first equal one, else count them. */
static int scan(dc_deque *d, const struct dc_value *value, int remove,
		uint64_t *count)
{
	struct dc_buf kbuf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item k;
	dc_iter *it = NULL;
	uint64_t found = 0;
	int ret, eq;

	if (!d || !value || (!remove && !count))
		return DC_INVAL;
	ret = dc_iter_open(d->cache, DC_SORTED, NULL, 0, &it);
	while (!ret) {
		item_reset(&k);
		ret = dc_iter_next(it, &kbuf, &k);
		if (ret)
			break;
		eq = equal_at(d, &k, value, &vbuf);
		if (eq < 0) {
			/* A negated errno back to positive; DC_* stays. */
			ret = eq > -1000 ? -eq : eq;
			break;
		}
		if (!eq)
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
