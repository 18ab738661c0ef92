/* iter.c - iteration over keys in insertion order or key order
 * SPDX-License-Identifier: MIT
 *
 * Insertion order is DiskCache's __iter__/__reversed__: MAX(rowid) is
 * read when a shard is reached and rows above it are never returned.
 * Key order is iterkeys(): keyset pagination on Cache_key_raw.  Pages of
 * 100 rows are read with a pooled connection and no transaction; the
 * iterator holds nothing between pages.
 */
#include "fanout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 100

struct row {
	int64_t rowid;
	int raw;
	struct dc_value key, tag;
	struct dc_value val; /* type, and the number of INT / FLOAT */
	size_t key_off, tag_off;
	double expire, store, access;
	int64_t count, size;
	int has_file;
};

struct dc_iter {
	dc_cache *cache;
	unsigned flags;
	char *prefix; /* owned copy, or NULL */
	size_t plen;
	char *succ; /* smallest string greater than every prefixed one */
	size_t slen;
	int shard;   /* current shard */
	int started; /* the current shard's iteration has begun */
	/* insertion order */
	int64_t bound, pos;
	/* key order: the last key returned by the database */
	int first;
	struct dc_value last;
	int64_t lastraw;
	struct dc_buf lastbuf;
	/* the current page */
	struct row rows[PAGE];
	int nrows, cur;
	int shard_done;
	int pagesize; /* rows to read next; 0: start afresh */
	struct dc_buf page;
	struct dc_buf keybuf; /* DC_VALUES: the current key's data */
};

static int copy_in(struct dc_buf *b, const struct dc_value *v, size_t *off)
{
	int rc;

	if (v->type != DC_TYPE_TEXT && v->type != DC_TYPE_BYTES &&
	    v->type != DC_TYPE_PICKLE)
		return 0;
	rc = dc_buf_reserve(b, b->len + v->len + 1);
	if (rc)
		return rc;
	if (v->len)
		memcpy(b->data + b->len, v->data, v->len);
	b->data[b->len + v->len] = '\0';
	*off = b->len;
	b->len += v->len + 1;
	return 0;
}

static bool has_prefix(const struct dc_iter *it, const struct dc_value *k)
{
	return k->type == DC_TYPE_TEXT && k->len >= it->plen &&
	       memcmp(k->data, it->prefix, it->plen) == 0;
}

int dc_iter_open(dc_cache *cache, unsigned flags, const void *prefix,
		 size_t prefix_len, dc_iter **out)
{
	struct dc_iter *it;

	if (out)
		*out = NULL;
	if (!cache || !out || (prefix_len && !prefix))
		return DC_INVAL;
	if (prefix && memchr(prefix, '\0', prefix_len))
		return DC_INVAL;
	if (prefix && !dc_utf8_check(prefix, prefix_len, NULL))
		return DC_INVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return ENOMEM;
	it->cache = cache;
	it->flags = flags;
	it->first = 1;
	if (prefix) {
		/* An empty prefix still means "text keys only". */
		it->prefix = malloc(prefix_len + 1);
		it->succ = malloc(prefix_len + 1);
		if (!it->prefix || !it->succ) {
			dc_iter_close(it);
			return ENOMEM;
		}
		memcpy(it->prefix, prefix, prefix_len);
		it->prefix[prefix_len] = '\0';
		it->plen = prefix_len;
		/* Increment the last byte that can be incremented. */
		memcpy(it->succ, prefix, prefix_len);
		it->slen = prefix_len;
		while (it->slen > 0 &&
		       (unsigned char)it->succ[it->slen - 1] == 0xff)
			it->slen--;
		if (it->slen > 0)
			it->succ[it->slen - 1]++;
	}
	if (flags & DC_REVERSE)
		it->shard = cache->n - 1;
	*out = it;
	return 0;
}

void dc_iter_close(dc_iter *it)
{
	if (!it)
		return;
	free(it->prefix);
	free(it->succ);
	dc_buf_release(&it->lastbuf);
	dc_buf_release(&it->page);
	dc_buf_release(&it->keybuf);
	free(it);
}

static int bind_keyval(sqlite3_stmt *st, int idx, const struct dc_value *v)
{
	switch (v->type) {
	case DC_TYPE_INT:
		return sqlite3_bind_int64(st, idx, v->i);
	case DC_TYPE_FLOAT:
		return sqlite3_bind_double(st, idx, v->f);
	case DC_TYPE_TEXT:
		return sqlite3_bind_text(st, idx, v->data ? v->data : "",
					 (int)v->len, SQLITE_STATIC);
	default:
		return sqlite3_bind_blob(st, idx, v->data ? v->data : "",
					 (int)v->len, SQLITE_STATIC);
	}
}

static int set_last(struct dc_iter *it, const struct dc_value *k, int64_t raw)
{
	int rc = 0;

	it->last = *k;
	it->lastraw = raw;
	if (k->type == DC_TYPE_TEXT || k->type == DC_TYPE_BYTES ||
	    k->type == DC_TYPE_PICKLE) {
		rc = dc_buf_reserve(&it->lastbuf, k->len + 1);
		if (rc)
			return rc;
		if (k->len)
			memcpy(it->lastbuf.data, k->data, k->len);
		it->lastbuf.data[k->len] = '\0';
		it->last.data = it->lastbuf.data;
	}
	return 0;
}

/* The stored type of a row's value, as dc_cache_get(DC_NOVALUE) reports
 * it: from the mode, and for inline values the column's storage class. */
static void row_value(sqlite3_stmt *st, struct dc_value *v)
{
	memset(v, 0, sizeof(*v));
	switch (sqlite3_column_int(st, DC_ICOL_MODE)) {
	case DC_MODE_RAW:
		dc_disk_column(st, DC_ICOL_VTYPE, v);
		v->data = NULL;
		v->len = 0;
		break;
	case DC_MODE_BINARY:
		v->type = DC_TYPE_BYTES;
		break;
	case DC_MODE_TEXT:
		v->type = DC_TYPE_TEXT;
		break;
	case DC_MODE_PICKLE:
		v->type = DC_TYPE_PICKLE;
		break;
	default: /* unknown mode: dc_cache_get reports DC_CORRUPT */
		v->type = DC_TYPE_NONE;
		break;
	}
}

/* Read the next page of the current shard into it->rows. */
static int fetch(struct dc_iter *it)
{
	struct dc_shard *s = it->cache->shards[it->shard];
	int reverse = (it->flags & DC_REVERSE) != 0;
	int sorted = (it->flags & DC_SORTED) != 0;
	struct dc_conn *c;
	sqlite3_stmt *st = NULL;
	struct dc_value k;
	enum dc_stmt_id id;
	int rc, r, n = 0;

	it->nrows = it->cur = 0;
	it->page.len = 0;
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	if (!sorted && !it->started) {
		st = dc_stmt(c, DC_ST_MAX_ROWID, &rc);
		if (!st)
			goto out;
		r = sqlite3_step(st);
		if (r != SQLITE_ROW) {
			rc = dc_sqlerr(c, r, "SELECT MAX(rowid)");
			sqlite3_reset(st);
			goto out;
		}
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			it->shard_done = 1;
		} else {
			it->bound = sqlite3_column_int64(st, 0) + 1;
			it->pos = reverse ? it->bound : 0;
		}
		sqlite3_reset(st);
		it->started = 1;
		if (it->shard_done)
			goto out;
	}
	if (!sorted) {
		id = reverse ? DC_ST_ITER_DESC : DC_ST_ITER_ASC;
		st = dc_stmt(c, id, &rc);
		if (!st)
			goto out;
		sqlite3_bind_int64(st, 1, reverse ? 0 : it->pos);
		sqlite3_bind_int64(st, 2, reverse ? it->pos : it->bound);
	} else if (it->first && !it->prefix) {
		id = reverse ? DC_ST_KEYS_FIRST_DESC : DC_ST_KEYS_FIRST_ASC;
		st = dc_stmt(c, id, &rc);
		if (!st)
			goto out;
	} else {
		if (it->first) {
			/* Start at the prefix (or just below its successor
			 * when going backwards; raw -1 sorts before all). */
			if (reverse && it->slen == 0)
				k = dc_bytes("", 0); /* above all text */
			else if (reverse)
				k = dc_textn(it->succ, it->slen);
			else
				k = dc_textn(it->prefix, it->plen);
			rc = set_last(it, &k, -1);
			if (rc)
				goto out;
		}
		id = reverse ? DC_ST_KEYS_NEXT_DESC : DC_ST_KEYS_NEXT_ASC;
		st = dc_stmt(c, id, &rc);
		if (!st)
			goto out;
		bind_keyval(st, 1, &it->last);
		sqlite3_bind_int64(st, 2, it->lastraw);
	}
	/* A prefix (a directory) often holds a key or two, and one probe
	 * needs one row: start with a small page and grow it, rather than
	 * decode PAGE rows past the range. */
	if (it->pagesize <= 0)
		it->pagesize = it->prefix ? 2 : PAGE;
	sqlite3_bind_int(st, 3, it->pagesize);
	it->pagesize = it->pagesize * 4 < PAGE ? it->pagesize * 4 : PAGE;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct row *w = &it->rows[n];

		w->rowid = sqlite3_column_int64(st, DC_ICOL_ROWID);
		w->raw = sqlite3_column_int(st, DC_ICOL_RAW);
		dc_disk_column_key(st, DC_ICOL_KEY, w->raw, &w->key);
		dc_disk_column(st, DC_ICOL_TAG, &w->tag);
		w->expire =
		    sqlite3_column_type(st, DC_ICOL_EXPIRE) == SQLITE_NULL
			? NAN
			: sqlite3_column_double(st, DC_ICOL_EXPIRE);
		w->store = sqlite3_column_double(st, DC_ICOL_STORE);
		w->access = sqlite3_column_double(st, DC_ICOL_ACCESS);
		w->count = sqlite3_column_int64(st, DC_ICOL_COUNT);
		w->size = sqlite3_column_int64(st, DC_ICOL_SIZE);
		w->has_file = sqlite3_column_int(st, DC_ICOL_HASFILE);
		row_value(st, &w->val);
		rc = copy_in(&it->page, &w->key, &w->key_off);
		if (!rc)
			rc = copy_in(&it->page, &w->tag, &w->tag_off);
		if (rc)
			break;
		n++;
		if (!sorted)
			it->pos = w->rowid;
	}
	if (!rc && r != SQLITE_DONE && r != SQLITE_ROW)
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	sqlite3_reset(st);
	if (rc)
		goto out;
	it->first = 0;
	if (n == 0)
		it->shard_done = 1;
	if (sorted && n > 0) {
		struct row *w = &it->rows[n - 1];

		k = w->key;
		if (k.type == DC_TYPE_TEXT || k.type == DC_TYPE_BYTES ||
		    k.type == DC_TYPE_PICKLE)
			k.data = it->page.data + w->key_off;
		rc = set_last(it, &k, w->raw);
	}
	it->nrows = n;
out:
	dc_conn_put(c);
	return rc;
}

static void next_shard(struct dc_iter *it)
{
	it->shard += (it->flags & DC_REVERSE) ? -1 : 1;
	it->started = 0;
	it->shard_done = 0;
	it->first = 1;
	it->nrows = it->cur = 0;
}

static int next_key(dc_iter *it, struct dc_buf *buf, struct dc_item *item)
{
	struct row *w;
	double now = 0;
	size_t koff, toff;
	int rc;

	if (!it || !buf || !item)
		return DC_INVAL;
	for (;;) {
		if (it->shard < 0 || it->shard >= it->cache->n)
			return DC_NOTFOUND;
		if (it->cur >= it->nrows) {
			if (it->shard_done) {
				next_shard(it);
				continue;
			}
			rc = fetch(it);
			if (rc)
				return rc;
			continue;
		}
		w = &it->rows[it->cur++];
		if (w->key.type == DC_TYPE_TEXT ||
		    w->key.type == DC_TYPE_BYTES ||
		    w->key.type == DC_TYPE_PICKLE)
			w->key.data = it->page.data + w->key_off;
		if (w->tag.type == DC_TYPE_TEXT || w->tag.type == DC_TYPE_BYTES)
			w->tag.data = it->page.data + w->tag_off;
		if (it->prefix && !has_prefix(it, &w->key)) {
			/* In key order the prefixed keys are contiguous. */
			if (it->flags & DC_SORTED) {
				it->shard_done = 1;
				it->nrows = it->cur = 0;
			}
			continue;
		}
		if (it->flags & DC_ALIVE) {
			if (now == 0)
				now = dc_now();
			if (!isnan(w->expire) && !(w->expire > now))
				continue;
		}
		break;
	}
	buf->len = 0;
	memset(item, 0, sizeof(*item));
	item->key = w->key;
	item->tag = w->tag;
	koff = toff = 0;
	rc = copy_in(buf, &w->key, &koff);
	if (!rc)
		rc = copy_in(buf, &w->tag, &toff);
	if (rc)
		return rc;
	if (w->key.type >= DC_TYPE_TEXT)
		item->key.data = buf->data + koff;
	if (w->tag.type >= DC_TYPE_TEXT)
		item->tag.data = buf->data + toff;
	item->value = w->val;
	item->expire_time = w->expire;
	item->store_time = w->store;
	item->access_time = w->access;
	item->access_count = w->count;
	item->size = (uint64_t)(w->size > 0 ? w->size : 0);
	item->file_backed = w->has_file;
	item->fd = -1;
	return 0;
}

int dc_iter_seek(dc_iter *it, const void *text, size_t len)
{
	struct dc_value k;
	int reverse, c;
	size_t n;

	/* Any bytes: only a bound, compared with memcmp() by SQLite's
	 * BINARY collation, never stored or returned. */
	if (!it || !(it->flags & DC_SORTED) || (len && !text))
		return DC_INVAL;
	if (it->shard < 0 || it->shard >= it->cache->n)
		return 0;
	reverse = (it->flags & DC_REVERSE) != 0;
	k = dc_textn(text, len);
	/* Never seek out of the prefix range. */
	if (it->prefix) {
		const char *b = reverse ? it->succ : it->prefix;
		size_t bl = reverse ? it->slen : it->plen;

		n = len < bl ? len : bl;
		c = memcmp(text, b, n);
		if (c == 0)
			c = len < bl ? -1 : (len > bl ? 1 : 0);
		if ((!reverse && c < 0) || (reverse && c >= 0 && bl > 0)) {
			it->first = 1;
			it->shard_done = 0;
			it->nrows = it->cur = 0;
			return 0;
		}
	}
	/* Strictly beyond @text: raw sorts after (or before) any stored
	 * raw flag. */
	if (set_last(it, &k, reverse ? INT64_MIN : INT64_MAX))
		return ENOMEM;
	it->pagesize = 0; /* a jump: small pages again */
	it->first = 0;
	it->shard_done = 0;
	it->nrows = it->cur = 0;
	return 0;
}

/* Where @p points into @buf, its offset (to re-point it after @buf
 * moves), else -1. */
static ptrdiff_t buf_off(const struct dc_buf *buf, const void *p)
{
	const char *c = p;

	if (!c || !buf->data || c < buf->data || c > buf->data + buf->cap)
		return -1;
	return c - buf->data;
}

/* Append the key's data to @buf after what dc_cache_get wrote there,
 * keeping item->value and item->tag pointing at theirs. */
static int keep_key(struct dc_buf *buf, struct dc_item *item,
		    const struct dc_value *key)
{
	ptrdiff_t voff = buf_off(buf, item->value.data);
	ptrdiff_t toff = buf_off(buf, item->tag.data);
	size_t koff = 0;
	int rc;

	rc = copy_in(buf, key, &koff);
	if (rc)
		return rc;
	if (voff >= 0)
		item->value.data = buf->data + voff;
	if (toff >= 0)
		item->tag.data = buf->data + toff;
	item->key = *key;
	if (key->type >= DC_TYPE_TEXT)
		item->key.data = buf->data + koff;
	return 0;
}

int dc_iter_next(dc_iter *it, struct dc_buf *buf, struct dc_item *item)
{
	struct dc_item k;
	int rc;

	if (!it || !buf || !item)
		return DC_INVAL;
	if (!(it->flags & DC_VALUES))
		return next_key(it, buf, item);
	/* The key is read into the iterator's buffer, the value and tag
	 * into the caller's as dc_cache_get writes them; then the key joins
	 * them there, so all three outlive the iterator. */
	for (;;) {
		rc = next_key(it, &it->keybuf, &k);
		if (rc)
			return rc;
		if (k.key.type == DC_TYPE_NONE)
			continue; /* a NaN key, stored as NULL */
		rc = dc_cache_get(it->cache, &k.key, buf, item,
				  DC_RETRY | (it->flags & DC_FD));
		if (rc != DC_NOTFOUND)
			break;
	}
	if (!rc) {
		rc = keep_key(buf, item, &k.key);
		if (rc && item->fd >= 0) {
			close(
			    item->fd); /* not returned: the caller's no more */
			item->fd = -1;
		}
		return rc;
	}
	item->key = k.key; /* which key failed: valid until the next call */
	return rc;
}
