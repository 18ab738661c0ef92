/* shard.c - one plain DiskCache Cache: the operations of spec section 6
 * SPDX-License-Identifier: MIT
 *
 * Every operation follows Python DiskCache 5.4.0 statement for statement
 * where it matters: the same comparisons (strict < or >), the write-time
 * cull inside the writer's transaction, value files written before the
 * transaction and unlinked only after the commit, and readers that treat
 * a vanished value file as a miss.
 */
#include "shard.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH 100

/* ------------------------------------------------------------------ */
/* Open and close                                                     */
/* ------------------------------------------------------------------ */

/* mkdir -p with @mode for every directory we create. */
int dc_mkdir_p(const char *dir, unsigned mode)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return len ? ENAMETOOLONG : ENOENT;
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];

		path[i] = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			int e = errno;
			struct stat st;

			/* A component we may not create but which exists. */
			if (!(e == EACCES && stat(path, &st) == 0 &&
			      S_ISDIR(st.st_mode)))
				return e;
		}
		path[i] = c;
	}
	return 0;
}

int dc_shard_open(const char *dir, const struct dc_shard_opts *o,
		  struct dc_shard **out)
{
	struct dc_shard *s;
	struct dc_conn *c = NULL;
	size_t n;
	int rc;

	*out = NULL;
	dc_fork_register();
	s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->poll_lock, NULL);
	atomic_store(&s->fork_gen, dc_fork_generation());
	s->log = o->log;
	s->disk.dirfd = -1;
	s->disk.log = &s->log;
	s->disk.dir_mode = o->dir_mode;
	s->disk.file_mode = o->dir_mode & 0666;
	s->timeout_ms = (int)ceil(o->timeout * 1000.0);
	if (s->timeout_ms < 0)
		s->timeout_ms = 0;
	s->dir = strdup(dir);
	n = strlen(dir) + sizeof("/cache.db");
	s->dbpath = malloc(n);
	if (!s->dir || !s->dbpath) {
		rc = ENOMEM;
		goto fail;
	}
	snprintf(s->dbpath, n, "%s/cache.db", dir);
	dc_shard_register(s);
	rc = dc_mkdir_p(dir, o->dir_mode);
	if (rc) {
		dc_log(&s->log, DC_LOG_ERROR,
		       "cache directory \"%s\" does not exist and could not "
		       "be created: %s",
		       dir, dc_strerror(rc));
		goto fail;
	}
	s->disk.dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->disk.dirfd < 0) {
		rc = errno;
		goto fail;
	}
	rc = dc_conn_open(s, 1, &c);
	if (rc)
		goto fail;
	rc = dc_settings_open(s, c->db, o->settings, o->nsettings);
	if (rc)
		goto fail;
	c->pragma_gen = atomic_load(&s->pragma_gen);
	c->all_next = NULL;
	s->all = c;
	s->free = c;
	*out = s;
	return 0;
fail:
	dc_conn_free(c);
	dc_shard_close(s);
	return rc;
}

void dc_shard_close(struct dc_shard *s)
{
	struct dc_conn *c, *next;

	if (!s)
		return;
	dc_shard_unregister(s);
	/* In a forked child, first sort out the inherited connections. */
	if (atomic_load(&s->fork_gen) != dc_fork_generation())
		dc_shard_after_fork(s);
	for (c = s->all; c; c = next) {
		next = c->all_next;
		dc_conn_free(c);
	}
	dc_shard_poll_close(s);
	pthread_mutex_destroy(&s->poll_lock);
	if (s->disk.dirfd >= 0)
		close(s->disk.dirfd);
	pthread_mutex_destroy(&s->lock);
	free(s->pins);
	free(s->dir);
	free(s->dbpath);
	free(s);
}

/* ------------------------------------------------------------------ */
/* Reading rows into the caller's item and buffer                     */
/* ------------------------------------------------------------------ */

struct out {
	struct dc_buf *buf;
	unsigned flags;
	int64_t rowid;
	int mode;
	int file; /* the value lives in a value file */
	char fname[DC_PATH_MAX];
	size_t fnlen;
	struct dc_value key, tag, val;
	size_t key_off, tag_off, val_off;
	double expire, store, access;
	int64_t count, size;
	int fd;
};

static double col_time(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NAN;
	return sqlite3_column_double(st, col);
}

static bool has_data(const struct dc_value *v)
{
	return v->type == DC_TYPE_TEXT || v->type == DC_TYPE_BYTES ||
	       v->type == DC_TYPE_PICKLE;
}

/* Append @v's data to the buffer, remembering its offset. */
static int put_data(struct out *o, const struct dc_value *v, size_t *off)
{
	struct dc_buf *buf = o->buf;
	int rc;

	if (!has_data(v))
		return 0;
	if (!buf)
		return DC_INVAL;
	rc = dc_buf_reserve(buf, buf->len + v->len + 1);
	if (rc)
		return rc;
	if (v->len)
		memcpy(buf->data + buf->len, v->data, v->len);
	buf->data[buf->len + v->len] = '\0';
	*off = buf->len;
	buf->len += v->len + 1;
	return 0;
}

static void out_init(struct out *o, struct dc_buf *buf, unsigned flags)
{
	o->buf = buf;
	o->flags = flags;
	o->file = 0;
	o->fnlen = 0;
	o->fd = -1;
	o->key.type = DC_TYPE_NONE;
	o->tag.type = DC_TYPE_NONE;
	o->val.type = DC_TYPE_NONE;
	if (buf)
		buf->len = 0;
}

/* Copy a row of the DC_COL_* layout while the statement is positioned on
 * it: key (if @keycol >= 0), tag, inline value, and the file name. */
static int out_capture(sqlite3_stmt *st, int keycol, struct out *o)
{
	struct dc_value col;
	int novalue = o->flags & DC_NOVALUE;
	int rc;

	o->rowid = sqlite3_column_int64(st, DC_COL_ROWID);
	o->expire = col_time(st, DC_COL_EXPIRE);
	o->store = col_time(st, DC_COL_STORE);
	o->access = col_time(st, DC_COL_ACCESS);
	o->count = sqlite3_column_int64(st, DC_COL_COUNT);
	o->size = sqlite3_column_int64(st, DC_COL_SIZE);
	o->mode = sqlite3_column_int(st, DC_COL_MODE);
	if (keycol >= 0) {
		dc_disk_column_key(st, keycol,
				   sqlite3_column_int(st, keycol + 1), &o->key);
		rc = put_data(o, &o->key, &o->key_off);
		if (rc)
			return rc;
	}
	dc_disk_column(st, DC_COL_TAG, &o->tag);
	if (o->tag.type == DC_TYPE_PICKLE)
		o->tag.type = DC_TYPE_BYTES;
	if (!o->buf && novalue && has_data(&o->tag))
		o->tag.type = DC_TYPE_NONE;
	rc = put_data(o, &o->tag, &o->tag_off);
	if (rc)
		return rc;

	dc_disk_column(st, DC_COL_VALUE, &col);
	switch (o->mode) {
	case DC_MODE_RAW:
		o->val = col;
		o->size = has_data(&col) ? (int64_t)col.len : 0;
		break;
	case DC_MODE_PICKLE:
		if (col.type != DC_TYPE_NONE) {
			o->val = col;
			o->val.type = DC_TYPE_PICKLE;
			o->size = (int64_t)col.len;
			break;
		}
		/* A pickle in a file. */
		__attribute__((fallthrough));
	case DC_MODE_BINARY:
	case DC_MODE_TEXT:
		if (sqlite3_column_type(st, DC_COL_FILENAME) != SQLITE_TEXT)
			return DC_CORRUPT;
		o->fnlen = (size_t)sqlite3_column_bytes(st, DC_COL_FILENAME);
		if (o->fnlen >= sizeof(o->fname))
			return DC_UNSAFE;
		memcpy(o->fname, sqlite3_column_text(st, DC_COL_FILENAME),
		       o->fnlen);
		o->fname[o->fnlen] = '\0';
		o->file = 1;
		o->val.type = o->mode == DC_MODE_TEXT     ? DC_TYPE_TEXT
			      : o->mode == DC_MODE_BINARY ? DC_TYPE_BYTES
							  : DC_TYPE_PICKLE;
		o->val.data = NULL;
		o->val.len = (size_t)(o->size > 0 ? o->size : 0);
		return 0;
	default:
		return DC_CORRUPT;
	}
	/* Metadata only: the type and a number are in the row anyway;
	 * data is not copied (out_finish() leaves value.data NULL). */
	if (novalue)
		return 0;
	return put_data(o, &o->val, &o->val_off);
}

/* Read (or open, with DC_FD) the value file of a captured row.  Errors
 * are errnos (the file vanished: a miss), DC_UNSAFE or ENOMEM. */
static int out_file(struct dc_shard *s, struct out *o)
{
	struct stat st;
	size_t len;
	int fd, rc;

	if (!o->file || (o->flags & DC_NOVALUE))
		return 0;
	rc = dc_disk_open(&s->disk, o->fname, o->fnlen, &fd);
	if (rc)
		return rc;
	if (fstat(fd, &st) < 0) {
		rc = errno;
		close(fd);
		return rc;
	}
	/* Value files never change: another size means damage. */
	if (!S_ISREG(st.st_mode) || st.st_size != o->size) {
		close(fd);
		dc_log(&s->log, DC_LOG_WARNING,
		       "%s/%s: value file has %lld bytes, expected %lld",
		       s->dir, o->fname, (long long)st.st_size,
		       (long long)o->size);
		return DC_CORRUPT;
	}
	if (o->flags & DC_FD) {
		/* The type stays: it says how to read the descriptor. */
		o->fd = fd;
		o->size = st.st_size;
		o->val.len = 0;
		return 0;
	}
	if (!o->buf) {
		close(fd);
		return DC_INVAL;
	}
	rc = dc_disk_read_fd(fd, o->buf, o->buf->len, &len);
	close(fd);
	if (rc)
		return rc;
	o->val_off = o->buf->len;
	o->val.len = len;
	o->size = (int64_t)len;
	o->buf->len += len + 1;
	return 0;
}

static void out_finish(struct out *o, struct dc_item *item, int want_key)
{
	char *base = o->buf ? o->buf->data : NULL;

	if (has_data(&o->key))
		o->key.data = base + o->key_off;
	if (has_data(&o->tag))
		o->tag.data = base + o->tag_off;
	/* Data was copied unless only metadata was asked for or a
	 * descriptor stands for it: then the type alone is reported. */
	if (has_data(&o->val) && ((o->flags & DC_NOVALUE) || o->fd >= 0)) {
		o->val.data = NULL;
		o->val.len = 0;
	} else if (has_data(&o->val)) {
		o->val.data = base + o->val_off;
	}
	if (want_key)
		item->key = o->key;
	item->value = o->val;
	item->tag = o->tag;
	item->expire_time = o->expire;
	item->store_time = o->store;
	item->access_time = o->access;
	item->access_count = o->count;
	item->size = (uint64_t)(o->size > 0 ? o->size : 0);
	item->file_backed = o->file;
	item->fd = o->fd;
}

static void item_clear_fd(struct dc_item *item)
{
	if (item)
		item->fd = -1;
}

/* An I/O error on a value file means "key missing" (spec 4.4). */
static bool file_miss(int rc)
{
	return rc > 0 && rc != ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Small statement helpers                                            */
/* ------------------------------------------------------------------ */

static int step_nodata(struct dc_conn *c, sqlite3_stmt *st, const char *what)
{
	int r = sqlite3_step(st);

	sqlite3_reset(st);
	if (r == SQLITE_DONE || r == SQLITE_ROW)
		return 0;
	return dc_sqlerr(c, r, what);
}

static int delete_rowid(struct dc_conn *c, int64_t rowid)
{
	sqlite3_stmt *st;
	int rc = 0;

	st = dc_stmt(c, DC_ST_DELETE_ROWID, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, rowid);
	return step_nodata(c, st, "DELETE FROM Cache");
}

static int bind_expire(sqlite3_stmt *st, int idx, double expire_time)
{
	if (isnan(expire_time))
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_double(st, idx, expire_time);
}

/* Step a one-row, one-column statement and read the number. */
static int one_int(struct dc_conn *c, enum dc_stmt_id id, int64_t *v)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, id, &rc);
	if (!st)
		return rc;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return r == SQLITE_ROW ? 0 : dc_sqlerr(c, r, "volume");
}

int dc_shard_volume_conn(struct dc_conn *c, double *bytes)
{
	int64_t pages = 0, size = 0;
	int rc;

	rc = one_int(c, DC_ST_PAGE_COUNT, &pages);
	if (!rc)
		rc = one_int(c, DC_ST_SIZE, &size);
	if (!rc)
		*bytes =
		    (double)pages * (double)c->shard->page_size + (double)size;
	return rc;
}

/* Select up to @limit (rowid, filename) rows with @st (already bound),
 * schedule their files and delete them.  @lastcol, if >= 0, receives
 * the value of that column in the last row (rowid or expire_time). */
static int select_delete(struct dc_conn *c, sqlite3_stmt *st, int *n,
			 int lastcol, double *last)
{
	int64_t ids[BATCH];
	int k = 0, r, rc = 0;

	while (k < BATCH && (r = sqlite3_step(st)) == SQLITE_ROW) {
		ids[k++] = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) == SQLITE_TEXT) {
			rc = dc_tx_garbage(
			    c, (const char *)sqlite3_column_text(st, 1),
			    (size_t)sqlite3_column_bytes(st, 1));
			if (rc)
				break;
		}
		if (lastcol >= 0 && last)
			*last = sqlite3_column_double(st, lastcol);
	}
	if (!rc && k < BATCH && r != SQLITE_DONE)
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	sqlite3_reset(st);
	for (int i = 0; i < k && !rc; i++)
		rc = delete_rowid(c, ids[i]);
	*n = k;
	return rc;
}

/* The write-time cull (spec 6.13), inside the writer's transaction. */
static int cull_write(struct dc_conn *c, double now)
{
	static const enum dc_stmt_id policy_st[] = {
		[DC_POLICY_LRS] = DC_ST_CULL_LRS_SELECT,
		[DC_POLICY_LRU] = DC_ST_CULL_LRU_SELECT,
		[DC_POLICY_LFU] = DC_ST_CULL_LFU_SELECT,
	};
	struct dc_shard *s = c->shard;
	int64_t limit =
	    atomic_load_explicit(&s->cull_limit, memory_order_relaxed);
	int policy = atomic_load_explicit(&s->policy, memory_order_relaxed);
	sqlite3_stmt *st;
	double vol;
	int n, rc = 0;

	if (limit == 0)
		return 0;
	if (limit < 0) /* SQLite's LIMIT -1: no limit */
		limit = INT64_MAX;
	do {
		st = dc_stmt(c, DC_ST_CULL_EXP_SELECT, &rc);
		if (!st)
			return rc;
		sqlite3_bind_double(st, 1, now);
		sqlite3_bind_int64(st, 2, limit < BATCH ? limit : BATCH);
		rc = select_delete(c, st, &n, -1, NULL);
		if (rc)
			return rc;
		limit -= n;
	} while (n == BATCH && limit > 0);
	if (limit == 0 || policy == DC_POLICY_NONE)
		return 0;
	rc = dc_shard_volume_conn(c, &vol);
	if (rc)
		return rc;
	if (vol < atomic_load_explicit(&s->size_limit, memory_order_relaxed))
		return 0;
	do {
		st = dc_stmt(c, policy_st[policy], &rc);
		if (!st)
			return rc;
		sqlite3_bind_int64(st, 1, limit < BATCH ? limit : BATCH);
		rc = select_delete(c, st, &n, -1, NULL);
		if (rc)
			return rc;
		limit -= n;
	} while (n == BATCH && limit > 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* get, contains                                                      */
/* ------------------------------------------------------------------ */

int dc_shard_get(struct dc_shard *s, const struct dc_dbkey *k,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags)
{
	int stats = atomic_load_explicit(&s->statistics, memory_order_relaxed);
	int policy = atomic_load_explicit(&s->policy, memory_order_relaxed);
	int slow = !(flags & DC_NOVALUE) && (stats || policy == DC_POLICY_LRU ||
					     policy == DC_POLICY_LFU);
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st, *up;
	struct out o;
	int rc, r;

	item_clear_fd(item);
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	if (slow) {
		rc = dc_tx_begin(c, flags, &tx);
		if (rc)
			goto out_put;
	}
	st = dc_stmt(c, DC_ST_GET, &rc);
	if (!st)
		goto out;
	dc_disk_bind_key(st, 1, 2, k);
	sqlite3_bind_double(st, 3, dc_now());
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		out_init(&o, buf, flags);
		rc = out_capture(st, -1, &o);
		if (!rc)
			rc = out_file(s, &o);
		if (file_miss(rc))
			rc = DC_NOTFOUND;
		if (!rc)
			out_finish(&o, item, 0);
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (!slow)
		goto out_put;
	if (rc == 0 || rc == DC_NOTFOUND) {
		if (stats) {
			up = dc_stmt(c, rc ? DC_ST_MISS : DC_ST_HIT, &r);
			r = up ? step_nodata(c, up, "UPDATE Settings") : r;
			if (r)
				rc = r;
		}
	}
	if (rc == 0 && policy != DC_POLICY_NONE && policy != DC_POLICY_LRS) {
		if (policy == DC_POLICY_LRU) {
			up = dc_stmt(c, DC_ST_ACCESS_LRU, &rc);
			if (up) {
				sqlite3_bind_double(up, 1, dc_now());
				sqlite3_bind_int64(up, 2, o.rowid);
			}
		} else {
			up = dc_stmt(c, DC_ST_ACCESS_LFU, &rc);
			if (up)
				sqlite3_bind_int64(up, 1, o.rowid);
		}
		if (up)
			rc = step_nodata(c, up, "UPDATE Cache");
	}
out:
	if (slow)
		rc = dc_tx_end(&tx, rc == 0 || rc == DC_NOTFOUND, rc);
out_put:
	dc_conn_put(c);
	if (rc && item && item->fd >= 0) {
		close(item->fd);
		item->fd = -1;
	}
	return rc;
}

int dc_shard_contains(struct dc_shard *s, const struct dc_dbkey *k)
{
	struct dc_conn *c;
	sqlite3_stmt *st;
	int rc, r;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	st = dc_stmt(c, DC_ST_CONTAINS, &rc);
	if (st) {
		dc_disk_bind_key(st, 1, 2, k);
		sqlite3_bind_double(st, 3, dc_now());
		r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			rc = 0;
		else if (r == SQLITE_DONE)
			rc = DC_NOTFOUND;
		else
			rc = dc_sqlerr(c, r, "SELECT FROM Cache");
		sqlite3_reset(st);
	}
	dc_conn_put(c);
	return rc;
}

/* ------------------------------------------------------------------ */
/* set, add, set_fd, set_file                                         */
/* ------------------------------------------------------------------ */

static int row_insert(struct dc_conn *c, const struct dc_dbkey *k, double now,
		      double expire_time, const struct dc_value *tag,
		      const struct dc_store *sto)
{
	sqlite3_stmt *st;
	int rc = 0;

	st = dc_stmt(c, DC_ST_INSERT, &rc);
	if (!st)
		return rc;
	dc_disk_bind_key(st, 1, 2, k);
	sqlite3_bind_double(st, 3, now);
	bind_expire(st, 4, expire_time);
	dc_disk_bind_tag(st, 5, tag);
	sqlite3_bind_int64(st, 6, sto->size);
	sqlite3_bind_int(st, 7, sto->mode);
	if (sto->has_file)
		sqlite3_bind_text(st, 8, sto->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
	dc_disk_bind_store(st, 9, sto);
	return step_nodata(c, st, "INSERT INTO Cache");
}

/* Columns an overwrite may leave out of its SET list (see row_update). */
enum { KEEP_EXPIRE = 1, KEEP_TAG = 2 };

/* Is column @col (a tag) what binding @tag would store?  Types must
 * match exactly: the column has no affinity, so 1 and 1.0 differ. */
static bool tag_same(sqlite3_stmt *st, int col, const struct dc_value *tag)
{
	int t = sqlite3_column_type(st, col);
	double f;

	if (!tag || tag->type == DC_TYPE_NONE ||
	    (tag->type == DC_TYPE_FLOAT && isnan(tag->f)))
		return t == SQLITE_NULL;
	switch (tag->type) {
	case DC_TYPE_INT:
		return t == SQLITE_INTEGER &&
		       sqlite3_column_int64(st, col) == tag->i;
	case DC_TYPE_FLOAT:
		f = sqlite3_column_double(st, col);
		return t == SQLITE_FLOAT && memcmp(&f, &tag->f, sizeof(f)) == 0;
	case DC_TYPE_TEXT:
		return t == SQLITE_TEXT &&
		       (size_t)sqlite3_column_bytes(st, col) == tag->len &&
		       (tag->len == 0 || memcmp(sqlite3_column_text(st, col),
						tag->data, tag->len) == 0);
	case DC_TYPE_BYTES:
		return t == SQLITE_BLOB &&
		       (size_t)sqlite3_column_bytes(st, col) == tag->len &&
		       (tag->len == 0 || memcmp(sqlite3_column_blob(st, col),
						tag->data, tag->len) == 0);
	default:
		return false;
	}
}

/* What an overwrite of the row SELECT_KEY @st is positioned on may leave
 * out: an expire_time that stays NULL (or equal), a tag that stays. */
static unsigned keep_columns(sqlite3_stmt *st, double expire_time,
			     const struct dc_value *tag)
{
	unsigned keep = 0;

	if (sqlite3_column_type(st, 2) == SQLITE_NULL
		? isnan(expire_time)
		: sqlite3_column_double(st, 2) == expire_time)
		keep |= KEEP_EXPIRE;
	if (tag_same(st, 3, tag))
		keep |= KEEP_TAG;
	return keep;
}

/* Overwrite row @rowid.  Leaving unchanged expire_time / tag columns out
 * of the SET list (@keep) stores the same row as Python's full UPDATE,
 * but SQLite then skips their indexes: one WAL frame fewer per set. */
static int row_update(struct dc_conn *c, int64_t rowid, double now,
		      double expire_time, const struct dc_value *tag,
		      const struct dc_store *sto, unsigned keep)
{
	static const enum dc_stmt_id ids[] = {
		[0] = DC_ST_UPDATE,
		[KEEP_EXPIRE] = DC_ST_UPDATE_KEEP_EXPIRE,
		[KEEP_TAG] = DC_ST_UPDATE_KEEP_TAG,
		[KEEP_EXPIRE | KEEP_TAG] = DC_ST_UPDATE_KEEP_BOTH,
	};
	sqlite3_stmt *st;
	int rc = 0;

	st = dc_stmt(c, ids[keep & 3], &rc);
	if (!st)
		return rc;
	sqlite3_bind_double(st, 1, now);
	bind_expire(st, 2, expire_time);
	dc_disk_bind_tag(st, 3, tag);
	sqlite3_bind_int64(st, 4, sto->size);
	sqlite3_bind_int(st, 5, sto->mode);
	if (sto->has_file)
		sqlite3_bind_text(st, 6, sto->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	dc_disk_bind_store(st, 7, sto);
	sqlite3_bind_int64(st, 8, rowid);
	return step_nodata(c, st, "UPDATE Cache");
}

/* Adopt the file at @path as a value file: rename it into the ab/cd
 * layout (never replacing anything).  Returns 0 or an errno. */
static int adopt_file(struct dc_shard *s, const char *path, enum dc_type type,
		      struct dc_store *sto)
{
	struct stat st;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return DC_INVAL;
	sto->mode = type == DC_TYPE_TEXT     ? DC_MODE_TEXT
		    : type == DC_TYPE_PICKLE ? DC_MODE_PICKLE
					     : DC_MODE_BINARY;
	sto->size = st.st_size;
	sto->inl = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		rc = dc_disk_new_name(sto->name);
		if (rc)
			return rc;
		rc = dc_disk_make_dirs(&s->disk, sto->name);
		if (rc)
			continue;
		if (renameat2(AT_FDCWD, path, s->disk.dirfd, sto->name,
			      RENAME_NOREPLACE) == 0) {
			sto->has_file = 1;
			return 0;
		}
		rc = errno;
		/* Remove the directories made for nothing (the name is
		 * not ours unless it was free). */
		if (rc != EEXIST)
			dc_disk_remove(&s->disk, sto->name, strlen(sto->name));
		if (rc != ENOENT && rc != EEXIST)
			break;
		/* The source itself vanished: give up at once. */
		if (rc == ENOENT && access(path, F_OK) < 0)
			break;
	}
	return rc;
}

static void unadopt_file(struct dc_shard *s, const char *path,
			 struct dc_store *sto)
{
	if (renameat2(s->disk.dirfd, sto->name, AT_FDCWD, path,
		      RENAME_NOREPLACE) < 0)
		dc_log(&s->log, DC_LOG_ERROR,
		       "cannot move %s/%s back to %s: %s", s->dir, sto->name,
		       path, strerror(errno));
	else /* the file is gone; this removes the new ab/cd dirs */
		dc_disk_remove(&s->disk, sto->name, strlen(sto->name));
}

int dc_shard_set(struct dc_shard *s, const struct dc_dbkey *k,
		 const struct dc_value *value, int fd, const char *path,
		 enum dc_type ftype, double expire, const struct dc_value *tag,
		 unsigned flags)
{
	double now = dc_now();
	double expire_time = isnan(expire) ? NAN : now + expire;
	struct dc_store sto;
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t rowid = 0;
	unsigned keep = 0;
	int rc, r, found = 0;

	rc = dc_disk_check_tag(tag);
	if (rc)
		return rc;
	if (path)
		rc = adopt_file(s, path, ftype, &sto);
	else if (fd >= 0)
		rc = dc_disk_store_fd(&s->disk, fd, &sto);
	else
		rc = dc_disk_store(&s->disk, value,
				   atomic_load_explicit(&s->min_file_size,
							memory_order_relaxed),
				   &sto);
	if (rc)
		return rc;
	rc = dc_conn_get(s, &c);
	if (rc)
		goto out_file;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	if (sto.has_file && !path) {
		rc = dc_tx_created(c, sto.name);
		if (rc) {
			dc_disk_remove(&s->disk, sto.name, strlen(sto.name));
			sto.has_file = 0;
			goto out_tx;
		}
	}
	st = dc_stmt(c, DC_ST_SELECT_KEY, &rc);
	if (!st)
		goto out_tx;
	dc_disk_bind_key(st, 1, 2, k);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		found = 1;
		rowid = sqlite3_column_int64(st, 0);
		keep = keep_columns(st, expire_time, tag);
		if ((flags & DC_ADD) &&
		    (sqlite3_column_type(st, 2) == SQLITE_NULL ||
		     sqlite3_column_double(st, 2) > now))
			rc = DC_EXISTS;
		else if (sqlite3_column_type(st, 1) == SQLITE_TEXT)
			rc = dc_tx_garbage(
			    c, (const char *)sqlite3_column_text(st, 1),
			    (size_t)sqlite3_column_bytes(st, 1));
	} else if (r != SQLITE_DONE) {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (rc)
		goto out_tx;
	if (found)
		rc = row_update(c, rowid, now, expire_time, tag, &sto, keep);
	else
		rc = row_insert(c, k, now, expire_time, tag, &sto);
	if (!rc)
		rc = cull_write(c, now);
out_tx:
	rc = dc_tx_end(&tx, rc == 0, rc);
	if (rc == 0 && path && c->depth > 0)
		dc_tx_created(c, sto.name);
	if (rc == 0 || !path)
		sto.has_file = 0; /* committed, or removed by the rollback */
out_put:
	dc_conn_put(c);
out_file:
	if (sto.has_file) {
		if (path)
			unadopt_file(s, path, &sto);
		else
			dc_disk_remove(&s->disk, sto.name, strlen(sto.name));
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* touch, delete, incr                                                */
/* ------------------------------------------------------------------ */

int dc_shard_touch(struct dc_shard *s, const struct dc_dbkey *k, double expire,
		   unsigned flags)
{
	double now = dc_now();
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t rowid = 0;
	int rc, r;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	st = dc_stmt(c, DC_ST_SELECT_KEY, &rc);
	if (!st)
		goto out;
	dc_disk_bind_key(st, 1, 2, k);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		rowid = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 2) != SQLITE_NULL &&
		    !(sqlite3_column_double(st, 2) > now))
			rc = DC_NOTFOUND;
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (rc)
		goto out;
	st = dc_stmt(c, DC_ST_TOUCH, &rc);
	if (!st)
		goto out;
	bind_expire(st, 1, isnan(expire) ? NAN : now + expire);
	sqlite3_bind_int64(st, 2, rowid);
	rc = step_nodata(c, st, "UPDATE Cache");
out:
	rc = dc_tx_end(&tx, rc == 0 || rc == DC_NOTFOUND, rc);
out_put:
	dc_conn_put(c);
	return rc;
}

int dc_shard_delete(struct dc_shard *s, const struct dc_dbkey *k,
		    unsigned flags)
{
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t rowid = 0;
	int rc, r;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	st = dc_stmt(c, DC_ST_DELETE_SELECT, &rc);
	if (!st)
		goto out;
	dc_disk_bind_key(st, 1, 2, k);
	sqlite3_bind_double(st, 3, dc_now());
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		rowid = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) == SQLITE_TEXT)
			rc = dc_tx_garbage(
			    c, (const char *)sqlite3_column_text(st, 1),
			    (size_t)sqlite3_column_bytes(st, 1));
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (!rc)
		rc = delete_rowid(c, rowid);
out:
	rc = dc_tx_end(&tx, rc == 0 || rc == DC_NOTFOUND, rc);
out_put:
	dc_conn_put(c);
	return rc;
}

int dc_shard_incr(struct dc_shard *s, const struct dc_dbkey *k, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags)
{
	static const enum dc_stmt_id upd[] = {
		[DC_POLICY_NONE] = DC_ST_INCR_UPDATE,
		[DC_POLICY_LRS] = DC_ST_INCR_UPDATE,
		[DC_POLICY_LRU] = DC_ST_INCR_UPDATE_LRU,
		[DC_POLICY_LFU] = DC_ST_INCR_UPDATE_LFU,
	};
	double now = dc_now();
	struct dc_value v = dc_int(0);
	struct dc_store sto;
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t rowid = 0;
	int rc, r, state = 0; /* 0 missing, 1 expired, 2 alive */

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	st = dc_stmt(c, DC_ST_INCR_SELECT, &rc);
	if (!st)
		goto out;
	dc_disk_bind_key(st, 1, 2, k);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		rowid = sqlite3_column_int64(st, 0);
		/* Strict <: an expire_time equal to now is alive here. */
		if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
		    sqlite3_column_double(st, 1) < now) {
			state = 1;
			if (sqlite3_column_type(st, 2) == SQLITE_TEXT && dflt)
				rc = dc_tx_garbage(
				    c, (const char *)sqlite3_column_text(st, 2),
				    (size_t)sqlite3_column_bytes(st, 2));
		} else {
			state = 2;
			switch (sqlite3_column_type(st, 3)) {
			case SQLITE_INTEGER:
				if (__builtin_add_overflow(
					sqlite3_column_int64(st, 3), delta,
					&v.i))
					rc = DC_OVERFLOW;
				break;
			case SQLITE_FLOAT:
				v = dc_float(sqlite3_column_double(st, 3) +
					     (double)delta);
				break;
			default:
				rc = DC_TYPE;
				break;
			}
		}
	} else if (r != SQLITE_DONE) {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (rc)
		goto out;
	if (state < 2) {
		if (!dflt) {
			rc = DC_NOTFOUND;
			goto out;
		}
		if (__builtin_add_overflow(*dflt, delta, &v.i)) {
			rc = DC_OVERFLOW;
			goto out;
		}
		memset(&sto, 0, sizeof(sto));
		sto.mode = DC_MODE_RAW;
		sto.inl = &v;
		if (state == 0)
			rc = row_insert(c, k, now, NAN, NULL, &sto);
		else
			rc = row_update(c, rowid, now, NAN, NULL, &sto, 0);
		if (!rc)
			rc = cull_write(c, now);
		goto out;
	}
	st = dc_stmt(c, upd[atomic_load(&s->policy) & 3], &rc);
	if (!st)
		goto out;
	sqlite3_bind_double(st, 1, now);
	if (v.type == DC_TYPE_FLOAT)
		sqlite3_bind_double(st, 2, v.f);
	else
		sqlite3_bind_int64(st, 2, v.i);
	sqlite3_bind_int64(st, 3, rowid);
	rc = step_nodata(c, st, "UPDATE Cache");
out:
	rc = dc_tx_end(&tx, rc == 0, rc);
	if (rc == 0 && result)
		*result = v;
out_put:
	dc_conn_put(c);
	return rc;
}

/* ------------------------------------------------------------------ */
/* pop                                                                */
/* ------------------------------------------------------------------ */

int dc_shard_pop(struct dc_shard *s, const struct dc_dbkey *k,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags)
{
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	struct out o;
	int rc, r;

	item_clear_fd(item);
	flags &= ~DC_NOVALUE;
	out_init(&o, buf, flags);
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	st = dc_stmt(c, DC_ST_GET, &rc);
	if (!st)
		goto out;
	dc_disk_bind_key(st, 1, 2, k);
	sqlite3_bind_double(st, 3, dc_now());
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		rc = out_capture(st, -1, &o);
	else if (r == SQLITE_DONE)
		rc = DC_NOTFOUND;
	else
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	sqlite3_reset(st);
	if (!rc)
		rc = delete_rowid(c, o.rowid);
out:
	rc = dc_tx_end(&tx, rc == 0 || rc == DC_NOTFOUND, rc);
out_put:
	dc_conn_put(c);
	if (rc)
		return rc;
	/* After the commit: read the file, then unlink it (spec 6.6). */
	rc = out_file(s, &o);
	if (o.file)
		dc_disk_remove(&s->disk, o.fname, o.fnlen);
	if (file_miss(rc))
		return DC_NOTFOUND;
	if (rc)
		return rc;
	out_finish(&o, item, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* push, pull, peek, peekitem                                         */
/* ------------------------------------------------------------------ */

#define QUEUE_START 500000000000000LL
#define QUEUE_MAX   999999999999999LL
#define PREFIX_MAX  1024

struct qrange {
	char lo[PREFIX_MAX + 20];
	char hi[PREFIX_MAX + 20];
	const char *prefix;
};

static int qrange_init(struct qrange *q, const char *prefix)
{
	size_t n;

	q->prefix = prefix;
	if (!prefix)
		return 0;
	n = strlen(prefix);
	if (n > PREFIX_MAX || !dc_utf8_check(prefix, n, NULL))
		return DC_INVAL;
	snprintf(q->lo, sizeof(q->lo), "%s-000000000000000", prefix);
	snprintf(q->hi, sizeof(q->hi), "%s-999999999999999", prefix);
	return 0;
}

static void qrange_bind(const struct qrange *q, sqlite3_stmt *st)
{
	if (!q->prefix) {
		sqlite3_bind_int64(st, 1, 0);
		sqlite3_bind_int64(st, 2, QUEUE_MAX);
	} else {
		sqlite3_bind_text(st, 1, q->lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, q->hi, -1, SQLITE_STATIC);
	}
}

/* Python's int(key[key.rfind('-') + 1:]). */
static int parse_queue_num(const char *s, size_t len, int64_t *out)
{
	const char *p = s + len;
	int64_t v = 0;
	int neg = 0;

	while (p > s && p[-1] != '-')
		p--;
	if (p == s + len)
		return DC_CORRUPT;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	if (p == s + len)
		return DC_CORRUPT;
	for (; p < s + len; p++) {
		if (*p < '0' || *p > '9')
			return DC_CORRUPT;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, *p - '0', &v))
			return DC_OVERFLOW;
	}
	*out = neg ? -v : v;
	return 0;
}

int dc_shard_push(struct dc_shard *s, const struct dc_value *value,
		  const char *prefix, double expire, const struct dc_value *tag,
		  unsigned flags, struct dc_buf *buf, struct dc_value *key)
{
	double now = dc_now();
	double expire_time = isnan(expire) ? NAN : now + expire;
	int front = (flags & DC_FRONT) != 0;
	char text[PREFIX_MAX + 40];
	struct dc_value nk = dc_int(QUEUE_START);
	struct dc_dbkey dk;
	struct dc_store sto;
	struct qrange q;
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t num = QUEUE_START;
	int rc, r;

	if ((flags & DC_FRONT) && (flags & DC_BACK))
		return DC_INVAL;
	rc = qrange_init(&q, prefix);
	if (!rc)
		rc = dc_disk_check_tag(tag);
	if (rc)
		return rc;
	rc = dc_disk_store(
	    &s->disk, value,
	    atomic_load_explicit(&s->min_file_size, memory_order_relaxed),
	    &sto);
	if (rc)
		return rc;
	rc = dc_conn_get(s, &c);
	if (rc)
		goto out_file;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	if (sto.has_file) {
		rc = dc_tx_created(c, sto.name);
		if (rc) {
			dc_disk_remove(&s->disk, sto.name, strlen(sto.name));
			goto out_tx;
		}
	}
	sto.has_file = sto.has_file ? 2 : 0; /* owned by the transaction */
	st = dc_stmt(c, front ? DC_ST_PUSH_FRONT : DC_ST_PUSH_BACK, &rc);
	if (!st)
		goto out_tx;
	qrange_bind(&q, st);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		switch (sqlite3_column_type(st, 0)) {
		case SQLITE_INTEGER:
			num = sqlite3_column_int64(st, 0) + (front ? -1 : 1);
			nk = dc_int(num);
			break;
		case SQLITE_FLOAT:
			/* A float key in the integer range: Python adds 1. */
			nk = dc_float(sqlite3_column_double(st, 0) +
				      (front ? -1.0 : 1.0));
			break;
		default:
			rc = parse_queue_num(
			    (const char *)sqlite3_column_text(st, 0),
			    (size_t)sqlite3_column_bytes(st, 0), &num);
			num += front ? -1 : 1;
			break;
		}
	} else if (r != SQLITE_DONE) {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	if (rc)
		goto out_tx;
	if (prefix) {
		snprintf(text, sizeof(text), "%s-%015" PRId64, prefix, num);
		nk = dc_text(text);
	}
	dc_disk_put_key(&nk, &dk);
	rc = row_insert(c, &dk, now, expire_time, tag, &sto);
	if (!rc)
		rc = cull_write(c, now);
out_tx:
	rc = dc_tx_end(&tx, rc == 0, rc);
	if (sto.has_file == 2)
		sto.has_file = 0;
out_put:
	dc_conn_put(c);
out_file:
	if (sto.has_file)
		dc_disk_remove(&s->disk, sto.name, strlen(sto.name));
	if (rc == 0 && key) {
		if (nk.type == DC_TYPE_TEXT) {
			if (!buf)
				return 0;
			rc = dc_buf_reserve(buf, nk.len + 1);
			if (rc)
				return rc;
			memcpy(buf->data, nk.data, nk.len + 1);
			buf->len = nk.len;
			nk.data = buf->data;
		}
		*key = nk;
	}
	return rc;
}

/* Select the end row of the queue or of the table (peekitem). */
static int end_row(struct dc_conn *c, enum dc_stmt_id id,
		   const struct qrange *q, struct out *o, int *expired)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, id, &rc);
	if (!st)
		return rc;
	if (q)
		qrange_bind(q, st);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		if (o->buf)
			o->buf->len = 0;
		o->file = 0;
		o->key.type = o->tag.type = o->val.type = DC_TYPE_NONE;
		rc = out_capture(st, DC_COL_KEY, o);
		*expired = !isnan(o->expire) && o->expire < dc_now();
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	return rc;
}

/* Delete a row whose value file cannot be read even though it is alive
 * (for example after a 5.4.0 Python peek unlinked it): peek would
 * otherwise retry forever. */
static int drop_broken(struct dc_conn *c, struct out *o, unsigned flags)
{
	struct dc_tx tx;
	sqlite3_stmt *st;
	int rc;

	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		return rc;
	st = dc_stmt(c, DC_ST_DELETE_ROWID_FILE, &rc);
	if (st) {
		sqlite3_bind_int64(st, 1, o->rowid);
		sqlite3_bind_text(st, 2, o->fname, (int)o->fnlen,
				  SQLITE_STATIC);
		rc = step_nodata(c, st, "DELETE FROM Cache");
		if (!rc && sqlite3_changes(c->db) > 0)
			dc_log(&c->shard->log, DC_LOG_WARNING,
			       "%s: dropped row %lld: value file %s unreadable",
			       c->shard->dir, (long long)o->rowid, o->fname);
	}
	return dc_tx_end(&tx, rc == 0, rc);
}

/* pull (@peek 0), peek (@peek 1) and peekitem (@peek 2). */
static int queue_op(struct dc_shard *s, const struct qrange *q,
		    enum dc_stmt_id id, struct dc_buf *buf,
		    struct dc_item *item, unsigned flags, int peek)
{
	struct dc_conn *c;
	struct dc_tx tx;
	struct out o;
	int64_t failed_rowid = -1;
	int rc, expired = 0;

	item_clear_fd(item);
	flags &= ~DC_NOVALUE;
	out_init(&o, buf, flags);
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	for (;;) {
		rc = dc_tx_begin(c, flags, &tx);
		if (rc)
			break;
		rc = end_row(c, id, q, &o, &expired);
		if (!rc && (peek == 0 || expired)) {
			rc = delete_rowid(c, o.rowid);
			if (!rc && expired && o.file)
				rc = dc_tx_garbage(c, o.fname, o.fnlen);
		}
		rc = dc_tx_end(&tx, rc == 0 || rc == DC_NOTFOUND, rc);
		if (rc)
			break;
		if (expired)
			continue;
		rc = out_file(s, &o);
		if (peek == 0 && o.file)
			dc_disk_remove(&s->disk, o.fname, o.fnlen);
		if (!file_miss(rc))
			break;
		if (peek) {
			if (o.rowid == failed_rowid) {
				rc = drop_broken(c, &o, flags);
				if (rc)
					break;
			}
			failed_rowid = o.rowid;
		}
	}
	dc_conn_put(c);
	if (rc)
		return rc;
	out_finish(&o, item, 1);
	return 0;
}

int dc_shard_pull(struct dc_shard *s, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags, int peek)
{
	struct qrange q;
	int back = (flags & DC_BACK) != 0;
	int rc;

	if ((flags & DC_FRONT) && (flags & DC_BACK))
		return DC_INVAL;
	rc = qrange_init(&q, prefix);
	if (rc)
		return rc;
	return queue_op(s, &q, back ? DC_ST_PULL_BACK : DC_ST_PULL_FRONT, buf,
			item, flags, peek);
}

int dc_shard_peekitem(struct dc_shard *s, struct dc_buf *buf,
		      struct dc_item *item, unsigned flags)
{
	return queue_op(s, NULL,
			(flags & DC_FIRST) ? DC_ST_PEEKITEM_FIRST
					   : DC_ST_PEEKITEM_LAST,
			buf, item, flags, 2);
}

/* ------------------------------------------------------------------ */
/* Bulk removal: clear, evict, expire, cull                           */
/* ------------------------------------------------------------------ */

enum bulk { BULK_CLEAR, BULK_EVICT, BULK_EXPIRE };

static int bulk_remove(struct dc_shard *s, enum bulk kind,
		       const struct dc_value *tag, double now, unsigned flags,
		       uint64_t *count)
{
	static const enum dc_stmt_id ids[] = {
		[BULK_CLEAR] = DC_ST_CLEAR_SELECT,
		[BULK_EVICT] = DC_ST_EVICT_SELECT,
		[BULK_EXPIRE] = DC_ST_EXPIRE_SELECT,
	};
	double last = 0.0;
	uint64_t total = 0;
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int rc, n;

	rc = dc_conn_get(s, &c);
	if (rc)
		goto out;
	for (;;) {
		rc = dc_tx_begin(c, flags, &tx);
		if (rc)
			break;
		st = dc_stmt(c, ids[kind], &rc);
		n = 0;
		if (st) {
			switch (kind) {
			case BULK_CLEAR:
				sqlite3_bind_int64(st, 1, (int64_t)last);
				sqlite3_bind_int(st, 2, BATCH);
				break;
			case BULK_EVICT:
				dc_disk_bind_tag(st, 1, tag);
				sqlite3_bind_int64(st, 2, (int64_t)last);
				sqlite3_bind_int(st, 3, BATCH);
				break;
			case BULK_EXPIRE:
				sqlite3_bind_double(st, 1, last);
				sqlite3_bind_double(st, 2, now);
				sqlite3_bind_int(st, 3, BATCH);
				break;
			}
			rc = select_delete(c, st, &n,
					   kind == BULK_EXPIRE ? 2 : 0, &last);
		}
		rc = dc_tx_end(&tx, rc == 0, rc);
		if (rc)
			break;
		total += (uint64_t)n;
		if (n == 0)
			break;
	}
	dc_conn_put(c);
out:
	if (count)
		*count = total;
	return rc;
}

int dc_shard_clear(struct dc_shard *s, unsigned flags, uint64_t *count)
{
	return bulk_remove(s, BULK_CLEAR, NULL, 0.0, flags, count);
}

int dc_shard_expire(struct dc_shard *s, double now, unsigned flags,
		    uint64_t *count)
{
	if (!(now > 0.0)) /* Python's `now or time.time()` */
		now = dc_now();
	return bulk_remove(s, BULK_EXPIRE, NULL, now, flags, count);
}

int dc_shard_evict(struct dc_shard *s, const struct dc_value *tag,
		   unsigned flags, uint64_t *count)
{
	int rc = dc_disk_check_tag(tag);

	if (rc)
		return rc;
	if (!tag || tag->type == DC_TYPE_NONE) {
		/* "tag = NULL" matches nothing in SQL. */
		if (count)
			*count = 0;
		return 0;
	}
	return bulk_remove(s, BULK_EVICT, tag, 0.0, flags, count);
}

int dc_shard_cull(struct dc_shard *s, unsigned flags, uint64_t *count)
{
	static const enum dc_stmt_id policy_st[] = {
		[DC_POLICY_LRS] = DC_ST_CULL_LRS_SELECT,
		[DC_POLICY_LRU] = DC_ST_CULL_LRU_SELECT,
		[DC_POLICY_LFU] = DC_ST_CULL_LFU_SELECT,
	};
	double now = dc_now(), vol;
	int policy = atomic_load(&s->policy);
	uint64_t total = 0;
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int rc, n;

	rc = dc_shard_expire(s, now, flags, &total);
	if (rc)
		goto out;
	if (policy == DC_POLICY_NONE) {
		total = 0; /* DiskCache returns 0 here, even after expiring */
		goto out;
	}
	rc = dc_conn_get(s, &c);
	if (rc)
		goto out;
	for (;;) {
		rc = dc_shard_volume_conn(c, &vol);
		if (rc || !(vol > atomic_load(&s->size_limit)))
			break;
		rc = dc_tx_begin(c, flags, &tx);
		if (rc)
			break;
		st = dc_stmt(c, policy_st[policy], &rc);
		n = 0;
		if (st) {
			sqlite3_bind_int(st, 1, 10);
			rc = select_delete(c, st, &n, -1, NULL);
		}
		rc = dc_tx_end(&tx, rc == 0, rc);
		if (rc || n == 0)
			break;
		total += (uint64_t)n;
	}
	dc_conn_put(c);
out:
	if (count)
		*count = total;
	return rc;
}

/* ------------------------------------------------------------------ */
/* len, volume, stats                                                 */
/* ------------------------------------------------------------------ */

int dc_shard_len(struct dc_shard *s, uint64_t *count)
{
	struct dc_conn *c;
	int64_t n = 0;
	int rc;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_shard_setting_num(c, "count", NULL, &n);
	dc_conn_put(c);
	if (!rc && count)
		*count = n > 0 ? (uint64_t)n : 0;
	return rc;
}

int dc_shard_volume(struct dc_shard *s, uint64_t *bytes)
{
	struct dc_conn *c;
	double v = 0;
	int rc;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_shard_volume_conn(c, &v);
	dc_conn_put(c);
	if (!rc && bytes)
		*bytes = v > 0 ? (uint64_t)v : 0;
	return rc;
}

int dc_shard_stats(struct dc_shard *s, int enable, int reset, uint64_t *hits,
		   uint64_t *misses)
{
	struct dc_value zero = dc_int(0), en = dc_int(enable ? 1 : 0);
	struct dc_conn *c;
	int64_t h = 0, m = 0;
	int rc;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_shard_setting_num(c, "hits", NULL, &h);
	if (!rc)
		rc = dc_shard_setting_num(c, "misses", NULL, &m);
	dc_conn_put(c);
	if (rc)
		return rc;
	if (reset) {
		rc = dc_shard_setting_set(s, "hits", &zero);
		if (!rc)
			rc = dc_shard_setting_set(s, "misses", &zero);
		if (rc)
			return rc;
	}
	rc = dc_shard_setting_set(s, "statistics", &en);
	if (rc)
		return rc;
	if (hits)
		*hits = h > 0 ? (uint64_t)h : 0;
	if (misses)
		*misses = m > 0 ? (uint64_t)m : 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* set_meta, rename                                                   */
/* ------------------------------------------------------------------ */

/* Find @k's row with SELECT_KEY.  *rowid receives it; *alive whether it
 * has not expired (DiskCache's "expire_time IS NULL OR expire_time >
 * now"); @fname (may be NULL) the filename column, scheduled by the
 * caller.  Returns 0, DC_NOTFOUND (no row), or an error.  The statement
 * is reset on return, so @fname is copied into @garbage when asked. */
static int find_row(struct dc_conn *c, const struct dc_dbkey *k, double now,
		    int64_t *rowid, int *alive, int schedule_file)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, DC_ST_SELECT_KEY, &rc);
	if (!st)
		return rc;
	dc_disk_bind_key(st, 1, 2, k);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		*rowid = sqlite3_column_int64(st, 0);
		*alive = sqlite3_column_type(st, 2) == SQLITE_NULL ||
			 sqlite3_column_double(st, 2) > now;
		if (schedule_file && sqlite3_column_type(st, 1) == SQLITE_TEXT)
			rc = dc_tx_garbage(
			    c, (const char *)sqlite3_column_text(st, 1),
			    (size_t)sqlite3_column_bytes(st, 1));
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	}
	sqlite3_reset(st);
	return rc;
}

int dc_shard_set_meta(struct dc_shard *s, const struct dc_dbkey *k,
		      unsigned what, const struct dc_value *tag,
		      double expire_time, unsigned flags)
{
	double now = dc_now();
	struct dc_conn *c;
	struct dc_tx tx;
	sqlite3_stmt *st;
	int64_t rowid = 0;
	int rc, alive = 0;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	rc = find_row(c, k, now, &rowid, &alive, 0);
	if (!rc && !alive)
		rc = DC_NOTFOUND;
	if (rc)
		goto out;
	/* Only the columns asked for are in the SET list, so an unchanged
	 * column's index is not rewritten. */
	switch (what & (DC_META_TAG | DC_META_EXPIRE_TIME)) {
	case DC_META_TAG:
		st = dc_stmt(c, DC_ST_SET_TAG, &rc);
		break;
	case DC_META_EXPIRE_TIME:
		st = dc_stmt(c, DC_ST_TOUCH, &rc);
		break;
	default:
		st = dc_stmt(c, DC_ST_SET_TAG_EXPIRE, &rc);
		break;
	}
	if (!st)
		goto out;
	if (what == DC_META_EXPIRE_TIME) {
		bind_expire(st, 1, expire_time);
		sqlite3_bind_int64(st, 2, rowid);
	} else {
		dc_disk_bind_tag(st, 1, tag);
		if (what & DC_META_EXPIRE_TIME)
			bind_expire(st, 2, expire_time);
		sqlite3_bind_int64(st, 3, rowid);
	}
	rc = step_nodata(c, st, "UPDATE Cache");
out:
	rc = dc_tx_end(&tx, rc == 0, rc);
out_put:
	dc_conn_put(c);
	return rc;
}

/* Give @rowid the key @nk (the row keeps everything else, its rowid
 * included). */
static int rename_row(struct dc_conn *c, int64_t rowid,
		      const struct dc_dbkey *nk)
{
	sqlite3_stmt *st;
	int rc = 0;

	st = dc_stmt(c, DC_ST_RENAME, &rc);
	if (!st)
		return rc;
	dc_disk_bind_key(st, 1, 2, nk);
	sqlite3_bind_int64(st, 3, rowid);
	return step_nodata(c, st, "UPDATE Cache");
}

/* Make room for @nk in @c's shard: nothing if it has no row; DC_EXISTS
 * if its row is alive and @flags has DC_ADD; otherwise delete the row
 * (its value file goes after the commit).  *same is set when @nk's row
 * is @rowid itself (a key SQLite compares equal to the old one). */
static int clear_target(struct dc_conn *c, const struct dc_dbkey *nk,
			double now, int64_t rowid, unsigned flags, int *same)
{
	int64_t trow = 0;
	int rc, alive = 0;

	*same = 0;
	rc = find_row(c, nk, now, &trow, &alive, 0);
	if (rc == DC_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (trow == rowid) {
		*same = 1;
		return (flags & DC_ADD) ? DC_EXISTS : 0;
	}
	if (alive && (flags & DC_ADD))
		return DC_EXISTS;
	/* Schedule the file now that we know the row goes. */
	rc = find_row(c, nk, now, &trow, &alive, 1);
	if (!rc)
		rc = delete_rowid(c, trow);
	return rc;
}

int dc_shard_rename(struct dc_shard *s, const struct dc_dbkey *k,
		    const struct dc_dbkey *nk, unsigned flags)
{
	double now = dc_now();
	struct dc_conn *c;
	struct dc_tx tx;
	int64_t rowid = 0;
	int rc, alive = 0, same = 0;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	rc = find_row(c, k, now, &rowid, &alive, 0);
	if (!rc && !alive)
		rc = DC_NOTFOUND;
	if (!rc)
		rc = clear_target(c, nk, now, rowid, flags, &same);
	/* An UPDATE in place keeps the rowid, hence the insertion order,
	 * and the value file: nothing is copied or moved. */
	if (!rc)
		rc = rename_row(c, rowid, nk);
	rc = dc_tx_end(&tx, rc == 0, rc);
out_put:
	dc_conn_put(c);
	return rc;
}

/* Begin transactions on @a then @b (shard index order, as every
 * multi-shard writer does, so that two movers never deadlock).  On
 * failure nothing is left open. */
static int begin_two(struct dc_conn *a, struct dc_tx *ta, struct dc_conn *b,
		     struct dc_tx *tb, unsigned flags)
{
	int rc;

	rc = dc_tx_begin(a, flags, ta);
	if (rc)
		return rc;
	rc = dc_tx_begin(b, flags, tb);
	if (rc)
		dc_tx_end(ta, 0, rc);
	return rc;
}

/* Insert the row @get (DC_ST_GET, positioned) into @t's shard under
 * @nk, with value file name @fname (or NULL): every column copied. */
static int insert_moved(struct dc_conn *t, sqlite3_stmt *get,
			const struct dc_dbkey *nk, const char *fname)
{
	static const int cols[] = {
		[3] = DC_COL_STORE, [4] = DC_COL_EXPIRE, [5] = DC_COL_ACCESS,
		[6] = DC_COL_COUNT, [7] = DC_COL_TAG,    [8] = DC_COL_SIZE,
		[9] = DC_COL_MODE,  [11] = DC_COL_VALUE,
	};
	sqlite3_stmt *st;
	int rc = 0;

	st = dc_stmt(t, DC_ST_INSERT_ROW, &rc);
	if (!st)
		return rc;
	dc_disk_bind_key(st, 1, 2, nk);
	for (int i = 3; i <= 11; i++) {
		if (i == 10)
			continue;
		/* sqlite3_bind_value copies: @get may move on. */
		rc = sqlite3_bind_value(st, i,
					sqlite3_column_value(get, cols[i]));
		if (rc != SQLITE_OK) {
			rc = dc_sqlerr(t, rc, "INSERT INTO Cache");
			sqlite3_clear_bindings(st);
			return rc ? rc : DC_SQLITE;
		}
	}
	if (fname)
		sqlite3_bind_text(st, 10, fname, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 10);
	rc = step_nodata(t, st, "INSERT INTO Cache");
	/* Do not keep a copy of a large value bound. */
	sqlite3_clear_bindings(st);
	return rc;
}

int dc_shard_move(struct dc_shard *from, struct dc_shard *to, int from_first,
		  const struct dc_dbkey *k, const struct dc_dbkey *nk,
		  unsigned flags)
{
	double now = dc_now();
	char fname[DC_PATH_MAX], newname[DC_FNAME_SIZE];
	struct dc_conn *cf = NULL, *ct = NULL;
	struct dc_tx tf, tt;
	sqlite3_stmt *get = NULL;
	int64_t rowid = 0;
	size_t fnlen = 0;
	int rc, r, file = 0, same = 0, linked = 0;

	rc = dc_conn_get(from, &cf);
	if (!rc)
		rc = dc_conn_get(to, &ct);
	if (rc)
		goto out_put;
	rc = from_first ? begin_two(cf, &tf, ct, &tt, flags)
			: begin_two(ct, &tt, cf, &tf, flags);
	if (rc)
		goto out_put;
	get = dc_stmt(cf, DC_ST_GET, &rc);
	if (!get)
		goto out;
	dc_disk_bind_key(get, 1, 2, k);
	sqlite3_bind_double(get, 3, now);
	r = sqlite3_step(get);
	if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
		goto out;
	} else if (r != SQLITE_ROW) {
		rc = dc_sqlerr(cf, r, "SELECT FROM Cache");
		goto out;
	}
	rowid = sqlite3_column_int64(get, DC_COL_ROWID);
	if (sqlite3_column_type(get, DC_COL_FILENAME) == SQLITE_TEXT) {
		fnlen = (size_t)sqlite3_column_bytes(get, DC_COL_FILENAME);
		if (fnlen >= sizeof(fname) ||
		    !dc_disk_path_ok(
			(const char *)sqlite3_column_text(get, DC_COL_FILENAME),
			fnlen)) {
			rc = DC_UNSAFE;
			goto out;
		}
		memcpy(fname, sqlite3_column_text(get, DC_COL_FILENAME), fnlen);
		fname[fnlen] = '\0';
		file = 1;
	}
	rc = clear_target(ct, nk, now, -1, flags, &same);
	if (rc)
		goto out;
	/* A hard link, not a rename: until both commits the file has both
	 * names, so every outcome (either rollback, a crash between the two
	 * commits) leaves each committed row with its file.  The old name
	 * is unlinked after the source commits, the new one on rollback. */
	if (file) {
		rc =
		    dc_disk_link(&from->disk, fname, fnlen, &to->disk, newname);
		if (rc == ENOENT)
			rc = DC_NOTFOUND; /* a vanished file is a miss */
		if (rc)
			goto out;
		linked = 1;
		rc = dc_tx_created(ct, newname);
		if (rc)
			goto out;
		linked = 0;
		rc = dc_tx_garbage(cf, fname, fnlen);
		if (rc)
			goto out;
	}
	rc = insert_moved(ct, get, nk, file ? newname : NULL);
	sqlite3_reset(get);
	get = NULL;
	if (!rc)
		rc = delete_rowid(cf, rowid);
out:
	if (get)
		sqlite3_reset(get);
	if (linked) /* not yet owned by the target's transaction */
		dc_disk_remove(&to->disk, newname, strlen(newname));
	/* The target first: should the source's commit then fail (or the
	 * process die in between), the entry exists under both names, each
	 * with its file, instead of under neither. */
	rc = dc_tx_end(&tt, rc == 0, rc);
	rc = dc_tx_end(&tf, rc == 0, rc);
out_put:
	dc_conn_put(ct);
	dc_conn_put(cf);
	return rc;
}
