/* shard.h - one plain DiskCache Cache: connections, schema, settings, ops
 * SPDX-License-Identifier: MIT
 *
 * A shard is what Python calls a Cache: one directory with one cache.db.
 * The public layer (fanout.c) owns one shard for a plain Cache and N for
 * a FanoutCache and routes every call to them.
 */
#ifndef DC_SHARD_H
#define DC_SHARD_H

#include "disk.h"
#include "internal.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

enum dc_policy {
	DC_POLICY_NONE = 0,
	DC_POLICY_LRS = 1, /* least-recently-stored */
	DC_POLICY_LRU = 2, /* least-recently-used */
	DC_POLICY_LFU = 3, /* least-frequently-used */
};

const char *dc_policy_name(enum dc_policy p);
int dc_policy_parse(const char *s, size_t len, enum dc_policy *p);

/* ------------------------------------------------------------------ */
/* Statements (schema.c)                                              */
/* ------------------------------------------------------------------ */

enum dc_stmt_id {
	DC_ST_BEGIN,
	DC_ST_COMMIT,
	DC_ST_ROLLBACK,
	DC_ST_SAVEPOINT,
	DC_ST_RELEASE,
	DC_ST_ROLLBACK_TO,
	DC_ST_GET,
	DC_ST_CONTAINS,
	DC_ST_SELECT_KEY,
	DC_ST_INSERT,
	DC_ST_UPDATE,
	DC_ST_DELETE_ROWID,
	DC_ST_TOUCH,
	DC_ST_HIT,
	DC_ST_MISS,
	DC_ST_ACCESS_LRU,
	DC_ST_ACCESS_LFU,
	DC_ST_CULL_EXP_SELECT,
	DC_ST_CULL_LRS_SELECT,
	DC_ST_CULL_LRU_SELECT,
	DC_ST_CULL_LFU_SELECT,
	DC_ST_PAGE_COUNT,
	DC_ST_SETTING_GET,
	DC_ST_SETTING_UPDATE,
	DC_ST_INCR_SELECT,
	DC_ST_INCR_UPDATE,
	DC_ST_INCR_UPDATE_LRU,
	DC_ST_INCR_UPDATE_LFU,
	DC_ST_PUSH_BACK,
	DC_ST_PUSH_FRONT,
	DC_ST_PULL_FRONT,
	DC_ST_PULL_BACK,
	DC_ST_PEEKITEM_LAST,
	DC_ST_PEEKITEM_FIRST,
	DC_ST_CLEAR_SELECT,
	DC_ST_EVICT_SELECT,
	DC_ST_EXPIRE_SELECT,
	DC_ST_MAX_ROWID,
	DC_ST_ITER_ASC,
	DC_ST_ITER_DESC,
	DC_ST_KEYS_FIRST_ASC,
	DC_ST_KEYS_FIRST_DESC,
	DC_ST_KEYS_NEXT_ASC,
	DC_ST_KEYS_NEXT_DESC,
	DC_ST_COUNT_KEYS,
	DC_ST_SUM_SIZE,
	DC_ST_CHECK_FILES,
	DC_ST_CHECK_FIX_SIZE,
	DC_ST_DELETE_ROWID_FILE,
	DC_ST_UPDATE_KEEP_EXPIRE,
	DC_ST_UPDATE_KEEP_TAG,
	DC_ST_UPDATE_KEEP_BOTH,
	DC_ST_SET_TAG,
	DC_ST_SET_TAG_EXPIRE,
	DC_ST_RENAME,
	DC_ST_INSERT_ROW,
	DC_ST_DELETE_SELECT,
	DC_ST_SIZE,
	DC_ST_COUNT
};

/* Column layout shared by GET, PULL_*, PEEKITEM_* (see schema.c). */
enum {
	DC_COL_ROWID = 0,
	DC_COL_EXPIRE,
	DC_COL_TAG,
	DC_COL_MODE,
	DC_COL_FILENAME,
	DC_COL_VALUE,
	DC_COL_STORE,
	DC_COL_ACCESS,
	DC_COL_COUNT,
	DC_COL_SIZE,
	DC_COL_KEY,
	DC_COL_RAW,
};

/* Column layout of ITER_* and KEYS_* pages. */
enum {
	DC_ICOL_ROWID = 0,
	DC_ICOL_KEY,
	DC_ICOL_RAW,
	DC_ICOL_EXPIRE,
	DC_ICOL_TAG,
	DC_ICOL_SIZE,
	DC_ICOL_HASFILE,
	DC_ICOL_STORE,
	DC_ICOL_ACCESS,
	DC_ICOL_COUNT,
	DC_ICOL_MODE,
	DC_ICOL_VTYPE, /* number, '' for text, x'' for blob, NULL */
};

const char *dc_stmt_sql(enum dc_stmt_id id);

/* ------------------------------------------------------------------ */
/* Connections (conn.c)                                               */
/* ------------------------------------------------------------------ */

struct dc_shard;

struct dc_conn {
	struct dc_shard *shard;
	sqlite3 *db;
	sqlite3_stmt *st[DC_ST_COUNT];
	int depth;  /* transaction nesting, 0 when none is open */
	int pinned; /* held by dc_cache_begin for one thread */
	unsigned pragma_gen;
	int64_t tc_begin; /* sqlite3_total_changes64() at the outermost BEGIN */
	struct dc_strlist garbage; /* files to unlink after the commit */
	struct dc_strlist created; /* files to remove on rollback */
	struct dc_conn *next;      /* free list; protected by shard->lock */
	struct dc_conn *all_next;  /* every conn; protected by shard->lock */
};

/* An operation's transaction scope: BEGIN IMMEDIATE at the outermost
 * level, a SAVEPOINT inside a caller's transaction so that a failing
 * operation changes nothing there either. */
struct dc_tx {
	struct dc_conn *c;
	int savepoint;
	size_t gmark, cmark;
};

int dc_conn_get(struct dc_shard *s, struct dc_conn **out);
void dc_conn_put(struct dc_conn *c);

/* dc_stmt - the cached prepared statement @id of @c, prepared on first
 * use (SQLITE_PREPARE_PERSISTENT).  The caller binds every parameter and
 * resets it after use.  Returns NULL after logging on failure (*rc
 * set). */
sqlite3_stmt *dc_stmt(struct dc_conn *c, enum dc_stmt_id id, int *rc);

/* dc_sqlerr - map a SQLite result code to a library code, logging it. */
int dc_sqlerr(struct dc_conn *c, int rc, const char *what);
int dc_sqlerr_db(sqlite3 *db, const struct dc_logger *lg, int rc,
		 const char *what);

int dc_tx_begin(struct dc_conn *c, unsigned flags, struct dc_tx *tx);
/* End the scope: commit when @ok, roll back otherwise.  Returns @rc, or
 * the commit's error. */
int dc_tx_end(struct dc_tx *tx, int ok, int rc);

/* Schedule @name for unlinking after the outermost commit. */
int dc_tx_garbage(struct dc_conn *c, const char *name, size_t len);
/* Record a value file written for this transaction (removed on
 * rollback). */
int dc_tx_created(struct dc_conn *c, const char *name);

int dc_conn_user_begin(struct dc_shard *s, unsigned flags);
int dc_conn_user_commit(struct dc_shard *s);
int dc_conn_user_rollback(struct dc_shard *s);

/* Run one statement that returns no rows, retrying "database is locked"
 * for 60 seconds as DiskCache's _sql_retry does. */
int dc_exec_retry(sqlite3 *db, const struct dc_logger *lg, const char *sql);
int dc_step_retry(sqlite3_stmt *st);

/* Open a new connection to @s (busy timeout, DQS on, pragmas). */
int dc_conn_open(struct dc_shard *s, int create, struct dc_conn **out);
void dc_conn_free(struct dc_conn *c);

/* ------------------------------------------------------------------ */
/* Schema (schema.c)                                                  */
/* ------------------------------------------------------------------ */

int dc_schema_create_settings(sqlite3 *db, const struct dc_logger *lg);
int dc_schema_create_cache(sqlite3 *db, const struct dc_logger *lg,
			   enum dc_policy policy);
int dc_schema_tag_index(sqlite3 *db, const struct dc_logger *lg, int on);

/* ------------------------------------------------------------------ */
/* Settings (settings.c)                                              */
/* ------------------------------------------------------------------ */

#define DC_MAX_PRAGMAS 16

struct dc_pragma {
	char name[32]; /* without the sqlite_ prefix */
	char value[64];
	int numeric;
	double num;
};

/* dc_setting_check - DC_INVAL if @name/@value is unacceptable. */
int dc_setting_check(const char *name, const struct dc_value *value);

/* Load, merge, write back (open steps 1-3 of spec 2.6). */
int dc_settings_open(struct dc_shard *s, sqlite3 *db,
		     const struct dc_setting *extra, size_t nextra);

int dc_pragma_apply(sqlite3 *db, const struct dc_logger *lg,
		    const struct dc_pragma *p);
int dc_pragma_make(const char *name, const struct dc_value *v,
		   struct dc_pragma *out);

int dc_shard_setting_get(struct dc_shard *s, const char *name,
			 struct dc_buf *buf, struct dc_value *value);
int dc_shard_setting_set(struct dc_shard *s, const char *name,
			 const struct dc_value *value);
/* A Settings value as a number (INTEGER or REAL; others fail). */
int dc_shard_setting_num(struct dc_conn *c, const char *name, double *v,
			 int64_t *i);

/* ------------------------------------------------------------------ */
/* The shard                                                          */
/* ------------------------------------------------------------------ */

struct dc_pin {
	pthread_t tid;
	struct dc_conn *conn;
};

struct dc_shard {
	char *dir;
	char *dbpath;
	struct dc_logger log;
	struct dc_disk disk; /* dirfd and file modes */
	int timeout_ms;

	/* Cached settings, as DiskCache caches them per handle. */
	_Atomic int statistics;
	_Atomic int tag_index;
	_Atomic int policy;
	_Atomic int64_t cull_limit;
	_Atomic int64_t min_file_size;
	/* disk_pickle_protocol resolved as pickle.dumps() takes it (a
	 * negative value is 5), or -1 if pickle.dumps() would refuse it. */
	_Atomic int pickle_protocol;
	_Atomic double size_limit;
	int64_t page_size;

	pthread_mutex_t lock;
	struct dc_conn *free;   /* protected by lock */
	struct dc_conn *all;    /* protected by lock */
	struct dc_pin *pins;    /* protected by lock */
	size_t npins, cap_pins; /* protected by lock */
	atomic_int npinned;     /* npins, readable without the lock */
	atomic_uint fork_gen;   /* set under the registry lock */
	struct dc_shard *reg_next, *reg_prev; /* the fork registry */
	atomic_uint pragma_gen;
	struct dc_pragma pragmas[DC_MAX_PRAGMAS]; /* protected by lock */
	int npragmas;                             /* protected by lock */

	/* dc_cache_changes(): a connection of its own, used for nothing
	 * but PRAGMA data_version, which moves when any other connection
	 * commits -- this handle's pooled ones included. */
	pthread_mutex_t poll_lock;
	sqlite3 *poll_db;      /* protected by poll_lock */
	sqlite3_stmt *poll_st; /* protected by poll_lock */
	unsigned poll_gen;     /* fork generation of poll_db; poll_lock */
	uint64_t poll_base;    /* added to data_version; poll_lock */
	uint64_t poll_last;    /* last value returned; poll_lock */
	/* Outermost commits by this handle that changed rows. */
	atomic_uint_fast64_t commits;
};

/* Open options passed down by the public layer. */
struct dc_shard_opts {
	double timeout;
	unsigned dir_mode;
	const struct dc_setting *settings;
	size_t nsettings;
	struct dc_logger log;
};

int dc_mkdir_p(const char *dir, unsigned mode);
int dc_shard_open(const char *dir, const struct dc_shard_opts *o,
		  struct dc_shard **out);
void dc_shard_close(struct dc_shard *s);

/* Operations of spec section 6, one shard. */
int dc_shard_get(struct dc_shard *s, const struct dc_dbkey *k,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags);
int dc_shard_contains(struct dc_shard *s, const struct dc_dbkey *k);
int dc_shard_set(struct dc_shard *s, const struct dc_dbkey *k,
		 const struct dc_value *value, int fd, const char *path,
		 enum dc_type ftype, double expire, const struct dc_value *tag,
		 unsigned flags);
int dc_shard_touch(struct dc_shard *s, const struct dc_dbkey *k, double expire,
		   unsigned flags);
int dc_shard_delete(struct dc_shard *s, const struct dc_dbkey *k,
		    unsigned flags);
int dc_shard_set_meta(struct dc_shard *s, const struct dc_dbkey *k,
		      unsigned what, const struct dc_value *tag,
		      double expire_time, unsigned flags);
/* Rename within one shard: the row keeps its rowid. */
int dc_shard_rename(struct dc_shard *s, const struct dc_dbkey *k,
		    const struct dc_dbkey *nk, unsigned flags);
/* Move @k's row from shard @from to @nk in shard @to (a new rowid
 * there); @from_first: @from's index is the lower (lock order). */
int dc_shard_move(struct dc_shard *from, struct dc_shard *to, int from_first,
		  const struct dc_dbkey *k, const struct dc_dbkey *nk,
		  unsigned flags);
int dc_shard_incr(struct dc_shard *s, const struct dc_dbkey *k, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags);
int dc_shard_pop(struct dc_shard *s, const struct dc_dbkey *k,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags);
int dc_shard_push(struct dc_shard *s, const struct dc_value *value,
		  const char *prefix, double expire, const struct dc_value *tag,
		  unsigned flags, struct dc_buf *buf, struct dc_value *key);
int dc_shard_pull(struct dc_shard *s, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags, int peek);
int dc_shard_peekitem(struct dc_shard *s, struct dc_buf *buf,
		      struct dc_item *item, unsigned flags);
int dc_shard_clear(struct dc_shard *s, unsigned flags, uint64_t *count);
int dc_shard_expire(struct dc_shard *s, double now, unsigned flags,
		    uint64_t *count);
int dc_shard_evict(struct dc_shard *s, const struct dc_value *tag,
		   unsigned flags, uint64_t *count);
int dc_shard_cull(struct dc_shard *s, unsigned flags, uint64_t *count);
int dc_shard_len(struct dc_shard *s, uint64_t *count);
int dc_shard_volume(struct dc_shard *s, uint64_t *bytes);
int dc_shard_volume_conn(struct dc_conn *c, double *bytes);
int dc_shard_stats(struct dc_shard *s, int enable, int reset, uint64_t *hits,
		   uint64_t *misses);
/* dc_shard_changes - this shard's part of dc_cache_changes() (conn.c). */
int dc_shard_changes(struct dc_shard *s, uint64_t *counter);
/* Close the polling connection (at shard close). */
void dc_shard_poll_close(struct dc_shard *s);
int dc_shard_check(struct dc_shard *s, int fix, unsigned flags, dc_warn_fn warn,
		   void *arg, uint64_t *nwarn);
/* The generation counter bumped in a forked child (conn.c). */
unsigned dc_fork_generation(void);
void dc_fork_register(void);
void dc_shard_register(struct dc_shard *s);
void dc_shard_unregister(struct dc_shard *s);
void dc_shard_after_fork(struct dc_shard *s);

#endif /* DC_SHARD_H */
