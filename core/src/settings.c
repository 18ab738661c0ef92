/* settings.c - DiskCache's Settings table: defaults, merge, reset, pragmas
 * SPDX-License-Identifier: MIT
 *
 * Effective settings = defaults < what the database holds < what the
 * opener passes; every one is written back with INSERT OR REPLACE, as
 * Python does, and the hot ones are cached in the shard.  Unknown keys
 * are preserved.  Values are read type-tolerantly: size_limit is REAL in
 * FanoutCache shards.
 */
#include "shard.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* The settings DiskCache defines                                     */
/* ------------------------------------------------------------------ */

struct known {
	const char *name;
	enum dc_type type; /* of the default */
	int64_t i;
	const char *s;
};

static const struct known defaults[] = {
	{ "statistics", DC_TYPE_INT, 0, NULL },
	{ "tag_index", DC_TYPE_INT, 0, NULL },
	{ "eviction_policy", DC_TYPE_TEXT, 0, "least-recently-stored" },
	{ "size_limit", DC_TYPE_INT, 1073741824, NULL },
	{ "cull_limit", DC_TYPE_INT, 10, NULL },
	{ "sqlite_auto_vacuum", DC_TYPE_INT, 1, NULL },
	{ "sqlite_cache_size", DC_TYPE_INT, 8192, NULL },
	{ "sqlite_journal_mode", DC_TYPE_TEXT, 0, "wal" },
	{ "sqlite_mmap_size", DC_TYPE_INT, 67108864, NULL },
	{ "sqlite_synchronous", DC_TYPE_INT, 1, NULL },
	{ "disk_min_file_size", DC_TYPE_INT, 32768, NULL },
	{ "disk_pickle_protocol", DC_TYPE_INT, 5, NULL },
};

static const char *const metadata[] = { "count", "size", "hits", "misses" };

static const char *const setting_names[] = {
	"statistics",
	"tag_index",
	"eviction_policy",
	"size_limit",
	"cull_limit",
	"sqlite_auto_vacuum",
	"sqlite_cache_size",
	"sqlite_journal_mode",
	"sqlite_mmap_size",
	"sqlite_synchronous",
	"disk_min_file_size",
	"disk_pickle_protocol",
	NULL,
};

const char *const *dc_cache_setting_names(void)
{
	return setting_names;
}

static bool is_metadata(const char *name)
{
	for (size_t i = 0; i < DC_ARRAY_SIZE(metadata); i++)
		if (strcmp(name, metadata[i]) == 0)
			return true;
	return false;
}

static bool is_number(const struct dc_value *v)
{
	return v->type == DC_TYPE_INT ||
	       (v->type == DC_TYPE_FLOAT && isfinite(v->f));
}

static double num_of(const struct dc_value *v)
{
	switch (v->type) {
	case DC_TYPE_INT:
		return (double)v->i;
	case DC_TYPE_FLOAT:
		return v->f;
	case DC_TYPE_TEXT: {
		char tmp[64];
		size_t n = v->len < sizeof(tmp) - 1 ? v->len : sizeof(tmp) - 1;

		memcpy(tmp, v->data, n);
		tmp[n] = '\0';
		return strtod(tmp, NULL);
	}
	default:
		return 0.0;
	}
}

static int64_t int_of(const struct dc_value *v)
{
	double d;

	if (v->type == DC_TYPE_INT)
		return v->i;
	d = num_of(v);
	if (!(d > -9.2e18 && d < 9.2e18))
		return d > 0 ? INT64_MAX : (d < 0 ? INT64_MIN : 0);
	return (int64_t)d;
}

static bool truthy(const struct dc_value *v)
{
	switch (v->type) {
	case DC_TYPE_INT:
		return v->i != 0;
	case DC_TYPE_FLOAT:
		return v->f != 0.0;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		return v->len > 0;
	default:
		return false;
	}
}

static bool ident_ok(const void *p, size_t len, size_t max, bool lower_only)
{
	const char *s = p;

	if (len == 0 || len >= max)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || c == '_')
			continue;
		if (!lower_only && ((c >= 'A' && c <= 'Z') ||
				    (c >= '0' && c <= '9') || c == '-'))
			continue;
		return false;
	}
	return true;
}

static bool text_in(const struct dc_value *v, const char *const *set)
{
	for (; *set; set++)
		if (strlen(*set) == v->len &&
		    strncasecmp(*set, v->data, v->len) == 0)
			return true;
	return false;
}

int dc_pragma_make(const char *name, const struct dc_value *v,
		   struct dc_pragma *out)
{
	const char *p = name + 7; /* after "sqlite_" */

	if (strncmp(name, "sqlite_", 7) != 0 ||
	    !ident_ok(p, strlen(p), sizeof(out->name), true))
		return DC_INVAL;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", p);
	switch (v->type) {
	case DC_TYPE_INT:
		out->numeric = 1;
		out->num = (double)v->i;
		snprintf(out->value, sizeof(out->value), "%lld",
			 (long long)v->i);
		return 0;
	case DC_TYPE_FLOAT:
		if (!isfinite(v->f))
			return DC_INVAL;
		out->numeric = 1;
		out->num = v->f;
		snprintf(out->value, sizeof(out->value), "%.17g", v->f);
		return 0;
	case DC_TYPE_TEXT:
		/* Interpolated into SQL text: identifiers only. */
		if (!ident_ok(v->data, v->len, sizeof(out->value), false))
			return DC_INVAL;
		memcpy(out->value, v->data, v->len);
		out->value[v->len] = '\0';
		return 0;
	default:
		return DC_INVAL;
	}
}

int dc_setting_check(const char *name, const struct dc_value *v)
{
	static const char *const journal[] = { "delete", "truncate", "persist",
					       "memory", "wal",      "off",
					       NULL };
	static const char *const sync[] = { "off", "normal", "full", "extra",
					    NULL };
	static const char *const vacuum[] = { "none", "full", "incremental",
					      NULL };
	struct dc_pragma p;
	enum dc_policy pol;

	if (!name || !*name || !v)
		return DC_INVAL;
	if (v->type == DC_TYPE_TEXT &&
	    ((v->len && !v->data) || !dc_utf8_check(v->data, v->len, NULL)))
		return DC_INVAL;
	if ((v->type == DC_TYPE_BYTES || v->type == DC_TYPE_PICKLE) && v->len &&
	    !v->data)
		return DC_INVAL;
	if ((unsigned)v->type > DC_TYPE_PICKLE)
		return DC_INVAL;
	if (strcmp(name, "statistics") == 0 || strcmp(name, "tag_index") == 0)
		return v->type == DC_TYPE_INT ? 0 : DC_INVAL;
	if (strcmp(name, "eviction_policy") == 0) {
		if (v->type != DC_TYPE_TEXT)
			return DC_INVAL;
		return dc_policy_parse(v->data, v->len, &pol);
	}
	if (strcmp(name, "size_limit") == 0 || is_metadata(name))
		return is_number(v) ? 0 : DC_INVAL;
	if (strcmp(name, "cull_limit") == 0)
		return v->type == DC_TYPE_INT && v->i >= 0 ? 0 : DC_INVAL;
	if (strcmp(name, "disk_min_file_size") == 0)
		return v->type == DC_TYPE_INT && v->i >= 0 ? 0 : DC_INVAL;
	/* Negative means pickle.HIGHEST_PROTOCOL (5), as in Python. */
	if (strcmp(name, "disk_pickle_protocol") == 0)
		return v->type == DC_TYPE_INT && v->i <= 5 ? 0 : DC_INVAL;
	if (strcmp(name, "sqlite_journal_mode") == 0)
		return v->type == DC_TYPE_TEXT && text_in(v, journal)
			   ? 0
			   : DC_INVAL;
	if (strcmp(name, "sqlite_synchronous") == 0) {
		if (v->type == DC_TYPE_INT)
			return v->i >= 0 && v->i <= 3 ? 0 : DC_INVAL;
		return v->type == DC_TYPE_TEXT && text_in(v, sync) ? 0
								   : DC_INVAL;
	}
	if (strcmp(name, "sqlite_auto_vacuum") == 0) {
		if (v->type == DC_TYPE_INT)
			return v->i >= 0 && v->i <= 2 ? 0 : DC_INVAL;
		return v->type == DC_TYPE_TEXT && text_in(v, vacuum) ? 0
								     : DC_INVAL;
	}
	if (strncmp(name, "sqlite_", 7) == 0)
		return dc_pragma_make(name, v, &p);
	return 0;
}

/* Update the shard's cached copy of a known setting. */
static int cache_setting(struct dc_shard *s, const char *name,
			 const struct dc_value *v)
{
	enum dc_policy pol;

	if (strcmp(name, "statistics") == 0)
		atomic_store(&s->statistics, truthy(v));
	else if (strcmp(name, "tag_index") == 0)
		atomic_store(&s->tag_index, truthy(v));
	else if (strcmp(name, "eviction_policy") == 0) {
		if (v->type != DC_TYPE_TEXT ||
		    dc_policy_parse(v->data, v->len, &pol)) {
			dc_log(&s->log, DC_LOG_ERROR,
			       "%s: unknown eviction_policy", s->dir);
			return DC_INVAL;
		}
		atomic_store(&s->policy, (int)pol);
	} else if (strcmp(name, "size_limit") == 0 ||
		   strcmp(name, "cull_limit") == 0 ||
		   strcmp(name, "disk_min_file_size") == 0) {
		struct dc_value d = *v;

		/* A hostile or damaged value: keep DiskCache's default
		 * rather than culling everything or nothing. */
		if (!is_number(v)) {
			dc_log(&s->log, DC_LOG_WARNING,
			       "%s: setting %s is not a number; using the "
			       "default",
			       s->dir, name);
			for (size_t i = 0; i < DC_ARRAY_SIZE(defaults); i++)
				if (strcmp(defaults[i].name, name) == 0)
					d = dc_int(defaults[i].i);
		}
		if (name[0] == 's')
			atomic_store(&s->size_limit, num_of(&d));
		else if (name[0] == 'c')
			atomic_store(&s->cull_limit, int_of(&d));
		else
			atomic_store(&s->min_file_size, int_of(&d));
	} else if (strcmp(name, "disk_pickle_protocol") == 0) {
		/* pickle.dumps(protocol=P): a negative P is
		 * HIGHEST_PROTOCOL, above it a ValueError, a non-integer a
		 * TypeError (kept as -1: the pickling recipes refuse it). */
		int p = -1;

		if (v->type == DC_TYPE_INT && v->i <= 5)
			p = v->i < 0 ? 5 : (int)v->i;
		atomic_store(&s->pickle_protocol, p);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pragmas                                                            */
/* ------------------------------------------------------------------ */

static void sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

/* DiskCache reads the pragma first and sets it only when it differs:
 * auto_vacuum and journal_mode are slow or ineffective otherwise. */
int dc_pragma_apply(sqlite3 *db, const struct dc_logger *lg,
		    const struct dc_pragma *p)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	double start = dc_now();
	int rc, differs;

	for (;;) {
		differs = 1;
		snprintf(sql, sizeof(sql), "PRAGMA %s", p->name);
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				int t = sqlite3_column_type(st, 0);

				if (p->numeric &&
				    (t == SQLITE_INTEGER || t == SQLITE_FLOAT))
					differs = sqlite3_column_double(
						      st, 0) != p->num;
				else if (!p->numeric && t == SQLITE_TEXT)
					differs =
					    strcmp(
						(const char *)
						    sqlite3_column_text(st, 0),
						p->value) != 0;
				rc = SQLITE_DONE;
			}
		}
		sqlite3_finalize(st);
		st = NULL;
		if (rc == SQLITE_DONE && differs) {
			snprintf(sql, sizeof(sql), "PRAGMA %s = %s", p->name,
				 p->value);
			rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
			if (rc == SQLITE_OK) {
				do
					rc = sqlite3_step(st);
				while (rc == SQLITE_ROW);
			}
			sqlite3_finalize(st);
			st = NULL;
		}
		if ((rc & 0xff) != SQLITE_BUSY || dc_now() - start > 60.0)
			break;
		sleep_1ms();
	}
	if (rc == SQLITE_DONE || rc == SQLITE_OK)
		return 0;
	return dc_sqlerr_db(db, lg, rc, sql);
}

/* ------------------------------------------------------------------ */
/* Open: load, merge, write back                                      */
/* ------------------------------------------------------------------ */

struct entry {
	char *name;
	struct dc_value v; /* data owned */
};

struct entries {
	struct entry *e;
	size_t n, cap;
};

static void entries_free(struct entries *es)
{
	for (size_t i = 0; i < es->n; i++) {
		free(es->e[i].name);
		free((void *)es->e[i].v.data);
	}
	free(es->e);
}

static struct entry *entries_find(struct entries *es, const char *name)
{
	for (size_t i = 0; i < es->n; i++)
		if (strcmp(es->e[i].name, name) == 0)
			return &es->e[i];
	return NULL;
}

/* Set @name to a copy of @v, keeping its position if present. */
static int entries_put(struct entries *es, const char *name,
		       const struct dc_value *v)
{
	struct entry *e = entries_find(es, name);
	void *data = NULL;

	if (v->type == DC_TYPE_TEXT || v->type == DC_TYPE_BYTES ||
	    v->type == DC_TYPE_PICKLE) {
		data = malloc(v->len + 1);
		if (!data)
			return ENOMEM;
		if (v->len)
			memcpy(data, v->data, v->len);
		((char *)data)[v->len] = '\0';
	}
	if (!e) {
		if (es->n == es->cap) {
			size_t cap = es->cap ? es->cap * 2 : 32;
			struct entry *ne = realloc(es->e, cap * sizeof(*ne));

			if (!ne) {
				free(data);
				return ENOMEM;
			}
			es->e = ne;
			es->cap = cap;
		}
		e = &es->e[es->n];
		e->name = strdup(name);
		if (!e->name) {
			free(data);
			return ENOMEM;
		}
		es->n++;
	} else {
		free((void *)e->v.data);
	}
	e->v = *v;
	e->v.data = data;
	return 0;
}

static int bind_value(sqlite3_stmt *st, int idx, const struct dc_value *v)
{
	switch (v->type) {
	case DC_TYPE_INT:
		return sqlite3_bind_int64(st, idx, v->i);
	case DC_TYPE_FLOAT:
		return sqlite3_bind_double(st, idx, v->f);
	case DC_TYPE_TEXT:
		return sqlite3_bind_text(st, idx, v->data ? v->data : "",
					 (int)v->len, SQLITE_TRANSIENT);
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		return sqlite3_bind_blob(st, idx, v->data ? v->data : "",
					 (int)v->len, SQLITE_TRANSIENT);
	default:
		return sqlite3_bind_null(st, idx);
	}
}

/* Read the existing Settings table; a missing table is an empty one. */
static int load_db(sqlite3 *db, const struct dc_logger *lg, struct entries *es)
{
	sqlite3_stmt *st = NULL;
	struct dc_value v;
	double start = dc_now();
	int rc;

	for (;;) {
		rc = sqlite3_prepare_v2(db, "SELECT key, value FROM Settings",
					-1, &st, NULL);
		if ((rc & 0xff) != SQLITE_BUSY || dc_now() - start > 60.0)
			break;
		sleep_1ms();
	}
	if ((rc & 0xff) == SQLITE_ERROR) {
		/* "no such table: Settings": a new database. */
		rc = 0;
		goto out;
	}
	if (rc != SQLITE_OK)
		goto fail;
	while ((rc = dc_step_retry(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_TEXT)
			continue;
		dc_disk_column(st, 1, &v);
		rc = entries_put(es, (const char *)sqlite3_column_text(st, 0),
				 &v);
		if (rc)
			goto out;
	}
	if (rc == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
fail:
	rc = dc_sqlerr_db(db, lg, rc, "SELECT key, value FROM Settings");
out:
	sqlite3_finalize(st);
	return rc;
}

/* Collect the column names of @table ("" when it does not exist). */
static int table_columns(sqlite3 *db, const char *table, char *out, size_t size)
{
	char sql[64];
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int rc;

	out[0] = '\0';
	snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = dc_step_retry(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		int w = snprintf(out + n, size - n, "%s,", name ? name : "");

		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW || rc == SQLITE_OK
		   ? SQLITE_OK
		   : rc;
}

/* Refuse, before changing anything, a database that is not a DiskCache
 * one: tables present but no Settings, or tables of the wrong shape. */
static int check_foreign(sqlite3 *db, const struct dc_logger *lg,
			 const char *dir)
{
	static const char *const need[] = {
		"rowid,",       "key,",         "raw,",          "store_time,",
		"expire_time,", "access_time,", "access_count,", "tag,",
		"size,",        "mode,",        "filename,",     "value,",
	};
	char cols[1024];
	int rc, ntables = 0;
	sqlite3_stmt *st = NULL;

	rc = sqlite3_prepare_v2(db,
				"SELECT count(*) FROM sqlite_master WHERE "
				"type = 'table'",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = dc_step_retry(st);
		if (rc == SQLITE_ROW) {
			ntables = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return dc_sqlerr_db(db, lg, rc, "SELECT FROM sqlite_master");
	if (ntables == 0)
		return 0;
	rc = table_columns(db, "Settings", cols, sizeof(cols));
	if (rc != SQLITE_OK)
		return dc_sqlerr_db(db, lg, rc, "PRAGMA table_info");
	if (strcmp(cols, "key,value,") != 0)
		goto foreign;
	rc = table_columns(db, "Cache", cols, sizeof(cols));
	if (rc != SQLITE_OK)
		return dc_sqlerr_db(db, lg, rc, "PRAGMA table_info");
	if (cols[0] == '\0')
		return 0; /* Settings only: a half-created cache */
	for (size_t i = 0; i < DC_ARRAY_SIZE(need); i++) {
		const char *p = strstr(cols, need[i]);

		/* Whole names only: "key," must not match "xkey,". */
		while (p && p != cols && p[-1] != ',')
			p = strstr(p + 1, need[i]);
		if (!p)
			goto foreign;
	}
	return 0;
foreign:
	dc_log(lg, DC_LOG_ERROR, "%s/cache.db is not a DiskCache database",
	       dir);
	return DC_CORRUPT;
}

static int cmp_names(const void *a, const void *b)
{
	const struct entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

static int write_settings(sqlite3 *db, const struct dc_logger *lg,
			  struct entries *es)
{
	static const char *const ins =
	    "INSERT OR REPLACE INTO Settings VALUES (?, ?)";
	static const char *const ign =
	    "INSERT OR IGNORE INTO Settings VALUES (?, ?)";
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, ins, -1, &st, NULL);
	for (size_t i = 0; i < es->n && rc == SQLITE_OK; i++) {
		sqlite3_bind_text(st, 1, es->e[i].name, -1, SQLITE_STATIC);
		bind_value(st, 2, &es->e[i].v);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_OK)
		return dc_sqlerr_db(db, lg, rc, ins);
	rc = sqlite3_prepare_v2(db, ign, -1, &st, NULL);
	for (size_t i = 0; i < DC_ARRAY_SIZE(metadata) && rc == SQLITE_OK;
	     i++) {
		sqlite3_bind_text(st, 1, metadata[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, 0);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return dc_sqlerr_db(db, lg, rc, ign);
	return 0;
}

static bool same_value(const struct dc_value *a, const struct dc_value *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case DC_TYPE_INT:
		return a->i == b->i;
	case DC_TYPE_FLOAT:
		return memcmp(&a->f, &b->f, sizeof(a->f)) == 0;
	case DC_TYPE_NONE:
		return true;
	default:
		return a->len == b->len &&
		       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
	}
}

/* Would the open write anything?  Every effective setting already
 * stored as it is, the metadata rows present, every schema object of
 * the current policy and tag_index present (and the tag index absent
 * when off). */
static bool up_to_date(struct dc_shard *s, sqlite3 *db, struct entries *es,
		       struct entries *dbs)
{
	static const char *const objects[] = {
		"Settings",
		"Cache",
		"Cache_key_raw",
		"Cache_expire_time",
		"Settings_count_insert",
		"Settings_count_delete",
		"Settings_size_insert",
		"Settings_size_update",
		"Settings_size_delete",
	};
	static const char *const policy_index[] = {
		[DC_POLICY_NONE] = NULL,
		[DC_POLICY_LRS] = "Cache_store_time",
		[DC_POLICY_LRU] = "Cache_access_time",
		[DC_POLICY_LFU] = "Cache_access_count",
	};
	int tag_on = atomic_load(&s->tag_index);
	int policy = atomic_load(&s->policy);
	struct dc_value tag = dc_int(tag_on);
	sqlite3_stmt *st = NULL;
	struct entry *d;
	int found = 0, want = 0, tag_found = 0;
	bool ok = false;

	for (size_t i = 0; i < es->n; i++) {
		d = entries_find(dbs, es->e[i].name);
		if (!d)
			return false;
		if (strcmp(es->e[i].name, "tag_index") == 0 &&
		    !same_value(&d->v, &tag))
			return false;
		if (strcmp(es->e[i].name, "tag_index") != 0 &&
		    !same_value(&d->v, &es->e[i].v))
			return false;
	}
	for (size_t i = 0; i < DC_ARRAY_SIZE(metadata); i++)
		if (!entries_find(dbs, metadata[i]))
			return false;
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master", -1, &st,
			       NULL) != SQLITE_OK)
		goto out;
	want = (int)DC_ARRAY_SIZE(objects) + (policy_index[policy] ? 1 : 0);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (!name)
			continue;
		if (strcmp(name, "Cache_tag_rowid") == 0)
			tag_found = 1;
		for (size_t i = 0; i < DC_ARRAY_SIZE(objects); i++)
			if (strcmp(name, objects[i]) == 0)
				found++;
		if (policy_index[policy] &&
		    strcmp(name, policy_index[policy]) == 0)
			found++;
	}
	ok = found == want && tag_found == tag_on;
out:
	sqlite3_finalize(st);
	return ok;
}

static int read_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* The schema and settings writes, in one transaction so that a new
 * cache costs one commit (Python issues them one by one). */
static int init_tx(struct dc_shard *s, sqlite3 *db, struct entries *es)
{
	const struct dc_logger *lg = &s->log;
	int tag_on = atomic_load(&s->tag_index);
	char sql[80];
	int rc;

	rc = dc_exec_retry(db, lg, "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	rc = dc_schema_create_settings(db, lg);
	if (!rc)
		rc = write_settings(db, lg, es);
	if (!rc) {
		rc = read_int(db, "PRAGMA page_size", &s->page_size);
		rc = rc ? dc_sqlerr_db(db, lg, rc, "PRAGMA page_size") : 0;
	}
	if (!rc)
		rc = dc_schema_create_cache(db, lg, atomic_load(&s->policy));
	if (!rc)
		rc = dc_schema_tag_index(db, lg, tag_on);
	if (!rc) {
		/* create_tag_index()/drop_tag_index() write 1 or 0. */
		snprintf(sql, sizeof(sql),
			 "UPDATE Settings SET value = %d WHERE key = "
			 "'tag_index'",
			 tag_on);
		rc = dc_exec_retry(db, lg, sql);
	}
	if (!rc)
		rc = dc_exec_retry(db, lg, "COMMIT");
	if (rc && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int dc_settings_open(struct dc_shard *s, sqlite3 *db,
		     const struct dc_setting *extra, size_t nextra)
{
	struct entries es = { 0 }, dbs = { 0 };
	struct entry **sorted = NULL;
	struct dc_value v;
	double start;
	int rc;

	for (size_t i = 0; i < DC_ARRAY_SIZE(defaults); i++) {
		v = defaults[i].type == DC_TYPE_INT ? dc_int(defaults[i].i)
						    : dc_text(defaults[i].s);
		rc = entries_put(&es, defaults[i].name, &v);
		if (rc)
			goto out;
	}
	rc = check_foreign(db, &s->log, s->dir);
	if (rc)
		goto out;
	rc = load_db(db, &s->log, &dbs);
	if (rc)
		goto out;
	for (size_t i = 0; i < dbs.n; i++) {
		rc = entries_put(&es, dbs.e[i].name, &dbs.e[i].v);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < nextra; i++) {
		if (is_metadata(extra[i].name))
			continue;
		rc = entries_put(&es, extra[i].name, &extra[i].value);
		if (rc)
			goto out;
	}
	/* Metadata rows are not settings; they only get INSERT OR IGNORE. */
	for (size_t i = 0; i < es.n;) {
		if (is_metadata(es.e[i].name)) {
			free(es.e[i].name);
			free((void *)es.e[i].v.data);
			memmove(&es.e[i], &es.e[i + 1],
				(es.n - i - 1) * sizeof(es.e[0]));
			es.n--;
		} else {
			i++;
		}
	}
	for (size_t i = 0; i < es.n; i++) {
		rc = cache_setting(s, es.e[i].name, &es.e[i].v);
		if (rc)
			goto out;
	}

	/* Pragmas before any table exists, sorted by name (auto_vacuum
	 * only takes effect on an empty database). */
	sorted = calloc(es.n ? es.n : 1, sizeof(*sorted));
	if (!sorted) {
		rc = ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < es.n; i++)
		sorted[i] = &es.e[i];
	qsort(sorted, es.n, sizeof(*sorted), cmp_names);
	s->npragmas = 0;
	for (size_t i = 0; i < es.n; i++) {
		struct dc_pragma p;

		if (strncmp(sorted[i]->name, "sqlite_", 7) != 0)
			continue;
		if (dc_pragma_make(sorted[i]->name, &sorted[i]->v, &p)) {
			dc_log(&s->log, DC_LOG_WARNING,
			       "%s: ignoring setting %s: bad value", s->dir,
			       sorted[i]->name);
			continue;
		}
		rc = dc_pragma_apply(db, &s->log, &p);
		if (rc)
			goto out;
		if (s->npragmas < DC_MAX_PRAGMAS)
			s->pragmas[s->npragmas++] = p;
	}

	/* Nothing to write: open without taking the write lock (also works
	 * on a full disk or a read-only database). */
	if (up_to_date(s, db, &es, &dbs)) {
		rc = read_int(db, "PRAGMA page_size", &s->page_size);
		rc = rc ? dc_sqlerr_db(db, &s->log, rc, "PRAGMA page_size") : 0;
		goto out;
	}
	start = dc_now();
	do {
		rc = init_tx(s, db, &es);
	} while (rc == DC_TIMEOUT && dc_now() - start < 60.0);
out:
	free(sorted);
	entries_free(&es);
	entries_free(&dbs);
	return rc;
}

/* ------------------------------------------------------------------ */
/* reset(name) and reset(name, value)                                 */
/* ------------------------------------------------------------------ */

int dc_shard_setting_num(struct dc_conn *c, const char *name, double *d,
			 int64_t *i)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, DC_ST_SETTING_GET, &rc);
	if (!st)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = dc_step_retry(st);
	if (r == SQLITE_ROW) {
		if (d)
			*d = sqlite3_column_double(st, 0);
		if (i)
			*i = sqlite3_column_int64(st, 0);
	} else if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else {
		rc = dc_sqlerr(c, r, "SELECT value FROM Settings");
	}
	sqlite3_reset(st);
	return rc;
}

int dc_shard_setting_get(struct dc_shard *s, const char *name,
			 struct dc_buf *buf, struct dc_value *value)
{
	struct dc_conn *c;
	sqlite3_stmt *st;
	struct dc_value v;
	int rc, r;

	if (!name || !value)
		return DC_INVAL;
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	st = dc_stmt(c, DC_ST_SETTING_GET, &rc);
	if (!st)
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = dc_step_retry(st);
	if (r == SQLITE_DONE) {
		rc = DC_NOTFOUND;
	} else if (r != SQLITE_ROW) {
		rc = dc_sqlerr(c, r, "SELECT value FROM Settings");
	} else {
		dc_disk_column(st, 0, &v);
		cache_setting(s, name, &v);
		if (v.type == DC_TYPE_TEXT || v.type == DC_TYPE_BYTES) {
			if (!buf) {
				rc = DC_INVAL;
			} else {
				rc = dc_buf_reserve(buf, v.len + 1);
				if (!rc) {
					memcpy(buf->data, v.data, v.len);
					buf->data[v.len] = '\0';
					buf->len = v.len;
					v.data = buf->data;
				}
			}
		}
		if (!rc)
			*value = v;
	}
	sqlite3_reset(st);
out:
	dc_conn_put(c);
	return rc;
}

int dc_shard_setting_set(struct dc_shard *s, const char *name,
			 const struct dc_value *value)
{
	struct dc_value v;
	struct dc_pragma p;
	struct dc_conn *c;
	sqlite3_stmt *st;
	int rc, r;

	rc = dc_setting_check(name, value);
	if (rc)
		return rc;
	v = *value;
	rc = dc_conn_get(s, &c);
	if (rc)
		return rc;
	if (strcmp(name, "tag_index") == 0) {
		/* create_tag_index() / drop_tag_index() */
		v = dc_int(truthy(value));
		rc = dc_schema_tag_index(c->db, &s->log, (int)v.i);
		if (rc)
			goto out;
	}
	st = dc_stmt(c, DC_ST_SETTING_UPDATE, &rc);
	if (!st)
		goto out;
	bind_value(st, 1, &v);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	r = dc_step_retry(st);
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		rc = dc_sqlerr(c, r, "UPDATE Settings");
		goto out;
	}
	if (sqlite3_changes(c->db) == 0) {
		rc = DC_NOTFOUND;
		goto out;
	}
	if (strncmp(name, "sqlite_", 7) == 0 && !dc_pragma_make(name, &v, &p)) {
		rc = dc_pragma_apply(c->db, &s->log, &p);
		if (rc)
			goto out;
		pthread_mutex_lock(&s->lock);
		int i;

		for (i = 0; i < s->npragmas; i++)
			if (strcmp(s->pragmas[i].name, p.name) == 0)
				break;
		if (i < DC_MAX_PRAGMAS) {
			s->pragmas[i] = p;
			if (i == s->npragmas)
				s->npragmas++;
		}
		/* Other pooled connections re-apply on their next use. */
		atomic_fetch_add(&s->pragma_gen, 1);
		c->pragma_gen = atomic_load(&s->pragma_gen);
		pthread_mutex_unlock(&s->lock);
	}
	cache_setting(s, name, &v);
out:
	dc_conn_put(c);
	return rc;
}
