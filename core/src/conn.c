/* conn.c - SQLite connection pool, statement cache, transactions, fork
 * SPDX-License-Identifier: MIT
 *
 * Python DiskCache keeps one connection per thread.  We keep a pool per
 * shard instead: an operation borrows a connection, runs cached prepared
 * statements on it, and gives it back.  A caller's transaction
 * (dc_cache_begin) pins one connection to its thread until the end.
 *
 * After fork() the child must never use the parent's connections: a
 * pthread_atfork handler bumps a generation counter, and the first call
 * in the child closes the inherited idle ones (see close_inherited()),
 * parks those another thread was using on a global list (never touched
 * again), and opens new ones.
 */
#include "shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Fork                                                               */
/* ------------------------------------------------------------------ */

/* Every open shard, so that fork() finds their locks in a known state:
 * the prepare handler takes them all, the child re-initialises them. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dc_shard *reg_head; /* protected by reg_lock */
static atomic_uint fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
/* Connections a forked child inherited in use by another thread: they
 * stay reachable here and are never touched again. */
static struct dc_conn *orphans; /* protected by reg_lock */

static void atfork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
	for (struct dc_shard *s = reg_head; s; s = s->reg_next) {
		pthread_mutex_lock(&s->lock);
		pthread_mutex_lock(&s->poll_lock);
	}
}

static void atfork_parent(void)
{
	for (struct dc_shard *s = reg_head; s; s = s->reg_next) {
		pthread_mutex_unlock(&s->poll_lock);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&reg_lock);
}

static void atfork_child(void)
{
	for (struct dc_shard *s = reg_head; s; s = s->reg_next) {
		pthread_mutex_init(&s->lock, NULL);
		pthread_mutex_init(&s->poll_lock, NULL);
	}
	pthread_mutex_init(&reg_lock, NULL);
	atomic_fetch_add(&fork_gen, 1);
}

static void fork_register_once(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void dc_fork_register(void)
{
	pthread_once(&fork_once, fork_register_once);
}

unsigned dc_fork_generation(void)
{
	return atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

void dc_shard_register(struct dc_shard *s)
{
	pthread_mutex_lock(&reg_lock);
	s->reg_prev = NULL;
	s->reg_next = reg_head;
	if (reg_head)
		reg_head->reg_prev = s;
	reg_head = s;
	pthread_mutex_unlock(&reg_lock);
}

void dc_shard_unregister(struct dc_shard *s)
{
	pthread_mutex_lock(&reg_lock);
	if (s->reg_prev)
		s->reg_prev->reg_next = s->reg_next;
	else if (reg_head == s)
		reg_head = s->reg_next;
	if (s->reg_next)
		s->reg_next->reg_prev = s->reg_prev;
	s->reg_next = s->reg_prev = NULL;
	pthread_mutex_unlock(&reg_lock);
}

/* Close a connection inherited from the parent that no thread of ours
 * was using.  This is what Python DiskCache does after a fork, and it
 * matters: SQLite keeps per-process lock bookkeeping (inode and -shm
 * state) that would otherwise make the child's new connections believe
 * the parent's locks are still held by a connection of their own
 * process.  The parent's locks are fcntl locks, which the child never
 * held, so closing here cannot release them; its value files are the
 * parent's and are left alone. */
static void close_inherited(struct dc_conn *c)
{
	for (int i = 0; i < DC_ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close_v2(c->db);
	dc_strlist_free(&c->garbage);
	dc_strlist_free(&c->created);
	free(c);
}

void dc_shard_after_fork(struct dc_shard *s)
{
	struct dc_conn *c, *next, *f;
	pthread_t self = pthread_self();
	bool idle;

	pthread_mutex_lock(&reg_lock);
	if (atomic_load(&s->fork_gen) == dc_fork_generation())
		goto out;
	for (c = s->all; c; c = next) {
		next = c->all_next;
		idle = false;
		for (f = s->free; f && !idle; f = f->next)
			idle = f == c;
		for (size_t i = 0; i < s->npins && !idle; i++)
			idle = s->pins[i].conn == c &&
			       pthread_equal(s->pins[i].tid, self);
		if (idle) {
			close_inherited(c);
		} else {
			c->all_next = orphans;
			orphans = c;
		}
	}
	s->all = NULL;
	s->free = NULL;
	s->npins = 0;
	atomic_store(&s->npinned, 0);
	atomic_store(&s->fork_gen, dc_fork_generation());
out:
	pthread_mutex_unlock(&reg_lock);
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

int dc_sqlerr_db(sqlite3 *db, const struct dc_logger *lg, int rc,
		 const char *what)
{
	int sys = db ? sqlite3_system_errno(db) : 0;
	const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		dc_log(lg, DC_LOG_DEBUG, "%s: %s", what, msg);
		return DC_TIMEOUT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		dc_log(lg, DC_LOG_ERROR, "%s: %s", what, msg);
		return DC_CORRUPT;
	case SQLITE_FULL:
		dc_log(lg, DC_LOG_ERROR, "%s: %s", what, msg);
		return ENOSPC;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_IOERR:
		dc_log(lg, DC_LOG_ERROR, "%s: %s (errno %d)", what, msg, sys);
		if (sys == ENOSPC || sys == EDQUOT)
			return ENOSPC;
		return sys > 0 ? sys : EIO;
	case SQLITE_CANTOPEN:
		dc_log(lg, DC_LOG_ERROR, "%s: %s (errno %d)", what, msg, sys);
		return sys > 0 ? sys : EACCES;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		dc_log(lg, DC_LOG_ERROR, "%s: %s", what, msg);
		return EACCES;
	case SQLITE_READONLY:
		dc_log(lg, DC_LOG_ERROR, "%s: %s", what, msg);
		return EROFS;
	default:
		dc_log(lg, DC_LOG_ERROR, "%s: %s", what, msg);
		return DC_SQLITE;
	}
}

int dc_sqlerr(struct dc_conn *c, int rc, const char *what)
{
	return dc_sqlerr_db(c->db, &c->shard->log, rc, what);
}

/* ------------------------------------------------------------------ */
/* Retrying statements (DiskCache's _sql_retry)                       */
/* ------------------------------------------------------------------ */

static void sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

int dc_step_retry(sqlite3_stmt *st)
{
	double start = dc_now();
	int rc;

	for (;;) {
		rc = sqlite3_step(st);
		if ((rc & 0xff) != SQLITE_BUSY || dc_now() - start > 60.0)
			return rc;
		sqlite3_reset(st);
		sleep_1ms();
	}
}

int dc_exec_retry(sqlite3 *db, const struct dc_logger *lg, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto out;
	do
		rc = dc_step_retry(st);
	while (rc == SQLITE_ROW);
out:
	sqlite3_finalize(st);
	if (rc == SQLITE_OK || rc == SQLITE_DONE)
		return 0;
	return dc_sqlerr_db(db, lg, rc, sql);
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

/* Re-apply per-connection pragmas (cache_size, mmap_size, synchronous)
 * as DiskCache does for every new connection. */
static int conn_pragmas(struct dc_conn *c)
{
	struct dc_shard *s = c->shard;
	struct dc_pragma p[DC_MAX_PRAGMAS];
	unsigned gen;
	int n, rc = 0;

	pthread_mutex_lock(&s->lock);
	n = s->npragmas;
	memcpy(p, s->pragmas, sizeof(p[0]) * (size_t)n);
	gen = atomic_load(&s->pragma_gen);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < n && !rc; i++)
		rc = dc_pragma_apply(c->db, &s->log, &p[i]);
	if (!rc)
		c->pragma_gen = gen;
	return rc;
}

int dc_conn_open(struct dc_shard *s, int create, struct dc_conn **out)
{
	struct dc_conn *c;
	int flags, rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->shard = s;
	flags =
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(s->dbpath, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		rc = dc_sqlerr_db(c->db, &s->log, rc, s->dbpath);
		if (rc == 0)
			rc = DC_SQLITE;
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, s->timeout_ms);
	/* The triggers and DiskCache's own SQL need double-quoted string
	 * literals: make sure they stay enabled whatever the build. */
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 1, (int *)NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 1, (int *)NULL);
	if (!create) {
		rc = conn_pragmas(c);
		if (rc)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	sqlite3_close_v2(c->db);
	free(c);
	return rc;
}

void dc_conn_free(struct dc_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < DC_ST_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	/* An open transaction is rolled back by closing; its new value
	 * files go with it. */
	if (c->depth > 0)
		dc_strlist_foreach(&c->created, name)
		    dc_disk_remove(&c->shard->disk, name, strlen(name));
	sqlite3_close_v2(c->db);
	dc_strlist_free(&c->garbage);
	dc_strlist_free(&c->created);
	free(c);
}

static struct dc_conn *find_pin(struct dc_shard *s, size_t *idx)
{
	pthread_t self = pthread_self();

	for (size_t i = 0; i < s->npins; i++) {
		if (pthread_equal(s->pins[i].tid, self)) {
			if (idx)
				*idx = i;
			return s->pins[i].conn;
		}
	}
	return NULL;
}

int dc_conn_get(struct dc_shard *s, struct dc_conn **out)
{
	struct dc_conn *c = NULL;
	int rc;

	if (atomic_load_explicit(&s->fork_gen, memory_order_relaxed) !=
	    dc_fork_generation())
		dc_shard_after_fork(s);
	if (atomic_load_explicit(&s->npinned, memory_order_acquire) > 0) {
		pthread_mutex_lock(&s->lock);
		c = find_pin(s, NULL);
		pthread_mutex_unlock(&s->lock);
		if (c) {
			*out = c;
			return 0;
		}
	}
	pthread_mutex_lock(&s->lock);
	c = s->free;
	if (c)
		s->free = c->next;
	pthread_mutex_unlock(&s->lock);
	if (!c) {
		rc = dc_conn_open(s, 0, &c);
		if (rc)
			return rc;
		pthread_mutex_lock(&s->lock);
		c->all_next = s->all;
		s->all = c;
		pthread_mutex_unlock(&s->lock);
	} else if (c->pragma_gen !=
		   atomic_load_explicit(&s->pragma_gen, memory_order_relaxed)) {
		rc = conn_pragmas(c);
		if (rc) {
			dc_conn_put(c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

void dc_conn_put(struct dc_conn *c)
{
	struct dc_shard *s;

	if (!c || c->pinned)
		return;
	s = c->shard;
	pthread_mutex_lock(&s->lock);
	c->next = s->free;
	s->free = c;
	pthread_mutex_unlock(&s->lock);
}

sqlite3_stmt *dc_stmt(struct dc_conn *c, enum dc_stmt_id id, int *rc)
{
	sqlite3_stmt *st = c->st[id];
	int r;

	if (st)
		return st;
	r = sqlite3_prepare_v3(c->db, dc_stmt_sql(id), -1,
			       SQLITE_PREPARE_PERSISTENT, &st, NULL);
	if (r != SQLITE_OK) {
		sqlite3_finalize(st);
		*rc = dc_sqlerr(c, r, dc_stmt_sql(id));
		if (*rc == 0)
			*rc = DC_SQLITE;
		return NULL;
	}
	c->st[id] = st;
	return st;
}

/* Step a statement that returns no rows and reset it.  Returns a
 * library code (DC_TIMEOUT for a busy database). */
static int step_done(struct dc_conn *c, enum dc_stmt_id id)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, id, &rc);
	if (!st)
		return rc;
	r = sqlite3_step(st);
	sqlite3_reset(st);
	if (r == SQLITE_DONE || r == SQLITE_ROW)
		return 0;
	return dc_sqlerr(c, r, dc_stmt_sql(id));
}

/* ------------------------------------------------------------------ */
/* Transactions                                                       */
/* ------------------------------------------------------------------ */

int dc_tx_garbage(struct dc_conn *c, const char *name, size_t len)
{
	if (!name)
		return 0;
	return dc_strlist_add(&c->garbage, name, len);
}

int dc_tx_created(struct dc_conn *c, const char *name)
{
	return dc_strlist_add(&c->created, name, strlen(name));
}

int dc_tx_begin(struct dc_conn *c, unsigned flags, struct dc_tx *tx)
{
	int r;

	tx->c = c;
	if (c->depth > 0) {
		r = step_done(c, DC_ST_SAVEPOINT);
		if (r)
			return r;
		tx->savepoint = 1;
		tx->gmark = c->garbage.len;
		tx->cmark = c->created.len;
		c->depth++;
		return 0;
	}
	for (;;) {
		r = step_done(c, DC_ST_BEGIN);
		if (r == 0)
			break;
		if (r == DC_TIMEOUT && (flags & DC_RETRY))
			continue;
		return r;
	}
	c->depth = 1;
	c->tc_begin = sqlite3_total_changes64(c->db);
	tx->savepoint = 0;
	c->garbage.len = 0;
	c->created.len = 0;
	tx->gmark = 0;
	tx->cmark = 0;
	return 0;
}

static void remove_created(struct dc_conn *c, size_t from)
{
	for (const char *p = c->created.data + from;
	     c->created.data && p < c->created.data + c->created.len;
	     p += strlen(p) + 1)
		dc_disk_remove(&c->shard->disk, p, strlen(p));
}

int dc_tx_end(struct dc_tx *tx, int ok, int rc)
{
	struct dc_conn *c = tx->c;
	int r;

	if (tx->savepoint) {
		if (ok) {
			r = step_done(c, DC_ST_RELEASE);
			if (r) {
				rc = r;
				ok = 0;
			}
		}
		if (!ok) {
			step_done(c, DC_ST_ROLLBACK_TO);
			step_done(c, DC_ST_RELEASE);
			remove_created(c, tx->cmark);
			c->created.len = tx->cmark;
			c->garbage.len = tx->gmark;
		}
		c->depth--;
		return rc;
	}
	if (ok) {
		r = step_done(c, DC_ST_COMMIT);
		if (r) {
			rc = r;
			ok = 0;
		}
	}
	if (ok) {
		/* Counted for dc_cache_changes() only when rows changed: a
		 * miss (delete, touch) commits an empty transaction. */
		if (sqlite3_total_changes64(c->db) != c->tc_begin)
			atomic_fetch_add_explicit(&c->shard->commits, 1,
						  memory_order_relaxed);
		dc_strlist_foreach(&c->garbage, name)
		    dc_disk_remove(&c->shard->disk, name, strlen(name));
	} else {
		/* SQLite may already have rolled back (disk full); a
		 * failing ROLLBACK then is harmless. */
		if (!sqlite3_get_autocommit(c->db))
			step_done(c, DC_ST_ROLLBACK);
		remove_created(c, 0);
	}
	c->garbage.len = 0;
	c->created.len = 0;
	c->depth = 0;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Caller transactions (dc_cache_begin)                               */
/* ------------------------------------------------------------------ */

int dc_conn_user_begin(struct dc_shard *s, unsigned flags)
{
	struct dc_conn *c;
	struct dc_pin *pins;
	struct dc_tx tx;
	int rc;

	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	if (c->pinned) {
		c->depth++;
		return 0;
	}
	rc = dc_tx_begin(c, flags, &tx);
	if (rc) {
		dc_conn_put(c);
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	if (s->npins == s->cap_pins) {
		size_t cap = s->cap_pins ? s->cap_pins * 2 : 8;

		pins = realloc(s->pins, cap * sizeof(*pins));
		if (!pins) {
			pthread_mutex_unlock(&s->lock);
			dc_tx_end(&tx, 0, 0);
			dc_conn_put(c);
			return ENOMEM;
		}
		s->pins = pins;
		s->cap_pins = cap;
	}
	s->pins[s->npins].tid = pthread_self();
	s->pins[s->npins].conn = c;
	s->npins++;
	c->pinned = 1;
	atomic_store_explicit(&s->npinned, (int)s->npins, memory_order_release);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static struct dc_conn *unpin(struct dc_shard *s, int only_if_outer)
{
	struct dc_conn *c;
	size_t i;

	if (atomic_load_explicit(&s->fork_gen, memory_order_relaxed) !=
	    dc_fork_generation())
		dc_shard_after_fork(s);
	pthread_mutex_lock(&s->lock);
	c = find_pin(s, &i);
	if (c && (!only_if_outer || c->depth <= 1)) {
		s->pins[i] = s->pins[s->npins - 1];
		s->npins--;
		atomic_store_explicit(&s->npinned, (int)s->npins,
				      memory_order_release);
	}
	pthread_mutex_unlock(&s->lock);
	return c;
}

int dc_conn_user_commit(struct dc_shard *s)
{
	struct dc_conn *c;
	struct dc_tx tx = { 0 };
	int rc;

	c = unpin(s, 1);
	if (!c)
		return DC_INVAL;
	if (c->depth > 1) {
		c->depth--;
		return 0;
	}
	tx.c = c;
	rc = dc_tx_end(&tx, 1, 0);
	c->pinned = 0;
	dc_conn_put(c);
	return rc;
}

int dc_conn_user_rollback(struct dc_shard *s)
{
	struct dc_conn *c;
	struct dc_tx tx = { 0 };

	c = unpin(s, 0);
	if (!c)
		return DC_INVAL;
	tx.c = c;
	dc_tx_end(&tx, 0, 0);
	c->pinned = 0;
	dc_conn_put(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Change counter (dc_cache_changes)                                  */
/* ------------------------------------------------------------------ */

static void poll_close_locked(struct dc_shard *s)
{
	sqlite3_finalize(s->poll_st);
	sqlite3_close_v2(s->poll_db);
	s->poll_st = NULL;
	s->poll_db = NULL;
	/* A new connection's data_version starts afresh: continue above
	 * the last value handed out, so the counter never repeats one. */
	s->poll_base = s->poll_last + 1;
}

void dc_shard_poll_close(struct dc_shard *s)
{
	pthread_mutex_lock(&s->poll_lock);
	poll_close_locked(s);
	pthread_mutex_unlock(&s->poll_lock);
}

static int poll_open_locked(struct dc_shard *s)
{
	int rc;

	rc = sqlite3_open_v2(s->dbpath, &s->poll_db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
				 SQLITE_OPEN_EXRESCODE,
			     NULL);
	if (rc == SQLITE_OK) {
		/* Reading data_version starts a read transaction, which in
		 * WAL mode waits only for a WAL recovery: give it time even
		 * on a FanoutCache shard's 10 ms. */
		sqlite3_busy_timeout(
		    s->poll_db, s->timeout_ms > 5000 ? s->timeout_ms : 5000);
		rc = sqlite3_prepare_v3(s->poll_db, "PRAGMA data_version", -1,
					SQLITE_PREPARE_PERSISTENT, &s->poll_st,
					NULL);
	}
	if (rc != SQLITE_OK) {
		rc = dc_sqlerr_db(s->poll_db, &s->log, rc,
				  "PRAGMA data_version");
		poll_close_locked(s);
		return rc ? rc : DC_SQLITE;
	}
	s->poll_gen = dc_fork_generation();
	return 0;
}

int dc_shard_changes(struct dc_shard *s, uint64_t *counter)
{
	int64_t v = 0;
	int rc = 0, r;

	pthread_mutex_lock(&s->poll_lock);
	/* A connection inherited over fork() is closed, not used, as for
	 * the pool (see close_inherited()). */
	if (s->poll_db && s->poll_gen != dc_fork_generation())
		poll_close_locked(s);
	if (!s->poll_db)
		rc = poll_open_locked(s);
	if (rc)
		goto out;
	r = sqlite3_step(s->poll_st);
	if (r == SQLITE_ROW)
		v = sqlite3_column_int64(s->poll_st, 0);
	sqlite3_reset(s->poll_st);
	if (r != SQLITE_ROW) {
		rc =
		    dc_sqlerr_db(s->poll_db, &s->log, r, "PRAGMA data_version");
		if (!rc)
			rc = DC_SQLITE;
		goto out;
	}
	s->poll_last = s->poll_base + (uint64_t)v;
	*counter = s->poll_last +
		   atomic_load_explicit(&s->commits, memory_order_relaxed);
out:
	pthread_mutex_unlock(&s->poll_lock);
	return rc;
}
