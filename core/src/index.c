/* index.c - Python DiskCache's Index on top of the public cache layer
 * SPDX-License-Identifier: MIT
 *
 * An Index is an ordinary plain Cache (eviction_policy "none") read in
 * insertion order; every operation maps onto one dc_cache_* call with
 * DC_RETRY, as Python's Index passes retry=True.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "collection.h"
#include "dcache.h"

struct dc_index {
	dc_cache *cache;
};

static int index_new(dc_cache *parent, const char *dir,
		     const struct dc_options *opts, dc_index **out)
{
	dc_index *idx = NULL;
	int ret;

	if (out)
		*out = NULL;
	if (!out)
		return DC_INVAL;
	idx = calloc(1, sizeof(*idx));
	if (!idx) {
		ret = ENOMEM;
		goto out;
	}
	ret = dc_coll_open(parent, DC_SUB_INDEX, dir, opts, &idx->cache);
	if (ret)
		goto out;
	*out = idx;
	idx = NULL;
out:
	free(idx);
	return ret;
}

int dc_index_open(const char *dir, const struct dc_options *opts,
		  dc_index **out)
{
	return index_new(NULL, dir, opts, out);
}

int dc_index_open_sub(dc_cache *parent, const char *name,
		      const struct dc_options *opts, dc_index **out)
{
	if (!parent) {
		if (out)
			*out = NULL;
		return DC_INVAL;
	}
	return index_new(parent, name, opts, out);
}

void dc_index_close(dc_index *idx)
{
	if (!idx)
		return;
	dc_cache_close(idx->cache);
	free(idx);
}

dc_cache *dc_index_cache(dc_index *idx)
{
	return idx ? idx->cache : NULL;
}

int dc_index_get(dc_index *idx, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item)
{
	if (!idx || !key || !buf || !item)
		return DC_INVAL;
	return dc_cache_get(idx->cache, key, buf, item, DC_RETRY);
}

int dc_index_set(dc_index *idx, const struct dc_value *key,
		 const struct dc_value *value)
{
	if (!idx || !key || !value)
		return DC_INVAL;
	return dc_cache_set(idx->cache, key, value, DC_NO_EXPIRE, NULL,
			    DC_RETRY);
}

int dc_index_delete(dc_index *idx, const struct dc_value *key)
{
	if (!idx || !key)
		return DC_INVAL;
	return dc_cache_delete(idx->cache, key, DC_RETRY);
}

int dc_index_setdefault(dc_index *idx, const struct dc_value *key,
			const struct dc_value *dflt, struct dc_buf *buf,
			struct dc_item *item)
{
	int ret;

	if (!idx || !key || !dflt || !buf || !item)
		return DC_INVAL;
	/* Python's loop: read; if missing, add (which loses to a racing
	 * writer without harm) and read again. */
	for (;;) {
		ret = dc_cache_get(idx->cache, key, buf, item, DC_RETRY);
		if (ret != DC_NOTFOUND)
			break;
		ret = dc_cache_add(idx->cache, key, dflt, DC_NO_EXPIRE, NULL,
				   DC_RETRY);
		if (ret && ret != DC_EXISTS)
			break;
	}
	return ret;
}

int dc_index_pop(dc_index *idx, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item)
{
	if (!idx || !key || !buf || !item)
		return DC_INVAL;
	return dc_cache_pop(idx->cache, key, buf, item, DC_RETRY);
}

int dc_index_popitem(dc_index *idx, unsigned flags, struct dc_buf *buf,
		     struct dc_item *item)
{
	int ret;

	if (!idx || !buf || !item || (flags & ~(unsigned)DC_FIRST))
		return DC_INVAL;
	ret = dc_cache_begin(idx->cache, DC_RETRY);
	if (ret)
		return ret;
	/* peekitem then delete in one transaction: no other writer can take
	 * the same item between them. */
	ret = dc_cache_peekitem(idx->cache, buf, item, flags | DC_RETRY);
	if (ret) {
		/* Nothing taken (an empty index is the usual case): commit,
		 * which inside the caller's own transaction only ends our
		 * level instead of rolling back the caller's work. */
		dc_cache_commit(idx->cache);
		return ret;
	}
	ret = dc_cache_delete(idx->cache, &item->key, DC_RETRY);
	if (ret) {
		dc_cache_rollback(idx->cache);
		return ret;
	}
	return dc_cache_commit(idx->cache);
}

int dc_index_len(dc_index *idx, uint64_t *count)
{
	if (!idx || !count)
		return DC_INVAL;
	return dc_cache_len(idx->cache, count);
}

int dc_index_clear(dc_index *idx)
{
	if (!idx)
		return DC_INVAL;
	return dc_cache_clear(idx->cache, DC_RETRY, NULL);
}

/* Are @a and @b equal as Python's == says (dc_coll_cmp)? */
static bool same(const struct dc_value *a, const struct dc_value *b)
{
	int c;

	return dc_coll_cmp(a, b, &c) == 0 && c == 0;
}

/* Python's Index.__eq__: lengths first; then against an ordered mapping
 * the items pairwise in order, against any other each key's value. */
int dc_index_equal(dc_index *idx, const struct dc_value *keys,
		   const struct dc_value *values, size_t n, int ordered,
		   int *equal)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	dc_iter *it = NULL;
	uint64_t len;
	bool eq;
	size_t i;
	int ret;

	if (!idx || !equal || (n && (!keys || !values)))
		return DC_INVAL;
	*equal = 0;
	ret = dc_cache_len(idx->cache, &len);
	if (ret || len != n)
		goto out;
	eq = true;
	if (ordered) {
		ret = dc_index_iter_open(idx, 0, &it);
		for (i = 0; !ret && eq && i < n; i++) {
			ret = dc_iter_next(it, &buf, &item);
			if (!ret)
				eq = same(&item.key, &keys[i]) &&
				     same(&item.value, &values[i]);
		}
	} else {
		for (i = 0; !ret && eq && i < n; i++) {
			ret = dc_index_get(idx, &keys[i], &buf, &item);
			if (!ret)
				eq = same(&item.value, &values[i]);
		}
	}
	/* A key missing (or gone mid-walk, as zip() stops short): unequal. */
	if (ret == DC_NOTFOUND) {
		ret = 0;
		eq = false;
	}
	if (!ret)
		*equal = eq;
out:
	dc_iter_close(it);
	dc_buf_release(&buf);
	return ret;
}

int dc_index_iter_open(dc_index *idx, unsigned flags, dc_iter **out)
{
	if (out)
		*out = NULL;
	if (!idx || (flags & ~DC_REVERSE))
		return DC_INVAL;
	return dc_iter_open(idx->cache, DC_VALUES | flags, NULL, 0, out);
}

int dc_index_peekitem(dc_index *idx, unsigned flags, struct dc_buf *buf,
		      struct dc_item *item)
{
	if (!idx || !buf || !item || (flags & ~(unsigned)DC_FIRST))
		return DC_INVAL;
	return dc_cache_peekitem(idx->cache, buf, item, flags | DC_RETRY);
}

/* The queue functions take a side and nothing else (Python's Index has
 * no expire, tag or read arguments); DC_RETRY is implied and tolerated. */
#define QUEUE_FLAGS ((unsigned)(DC_FRONT | DC_BACK | DC_RETRY))

int dc_index_push(dc_index *idx, const struct dc_value *value,
		  const char *prefix, unsigned flags, struct dc_buf *buf,
		  struct dc_value *key)
{
	if (!idx || !value || (flags & ~QUEUE_FLAGS))
		return DC_INVAL;
	return dc_cache_push(idx->cache, value, prefix, DC_NO_EXPIRE, NULL,
			     flags | DC_RETRY, buf, key);
}

int dc_index_pull(dc_index *idx, const char *prefix, unsigned flags,
		  struct dc_buf *buf, struct dc_item *item)
{
	if (!idx || !buf || !item || (flags & ~QUEUE_FLAGS))
		return DC_INVAL;
	return dc_cache_pull(idx->cache, prefix, buf, item, flags | DC_RETRY);
}

int dc_index_peek(dc_index *idx, const char *prefix, unsigned flags,
		  struct dc_buf *buf, struct dc_item *item)
{
	if (!idx || !buf || !item || (flags & ~QUEUE_FLAGS))
		return DC_INVAL;
	return dc_cache_peek(idx->cache, prefix, buf, item, flags | DC_RETRY);
}
