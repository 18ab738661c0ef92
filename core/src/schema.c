/* schema.c - DiskCache's tables, indexes, triggers and our statements
 * SPDX-License-Identifier: MIT
 *
 * The DDL is byte for byte what Python DiskCache 5.4.0 issues, so that
 * `sqlite3 cache.db .schema` is identical whoever created the database.
 * The triggers keep DiskCache's double-quoted literals ("count"): they
 * rely on SQLite's DQS behaviour, which we therefore never disable.
 */
#include "shard.h"

#include <string.h>

static const char *const ddl_settings =
    "CREATE TABLE IF NOT EXISTS Settings ( key TEXT NOT NULL UNIQUE, "
    "value)";

static const char *const ddl_cache[] = {
	"CREATE TABLE IF NOT EXISTS Cache ( rowid INTEGER PRIMARY KEY, key "
	"BLOB, raw INTEGER, store_time REAL, expire_time REAL, access_time "
	"REAL, access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT "
	"0, mode INTEGER DEFAULT 0, filename TEXT, value BLOB)",
	"CREATE UNIQUE INDEX IF NOT EXISTS Cache_key_raw ON Cache(key, raw)",
	/* The release (non-partial) form, as every 5.x release creates. */
	"CREATE INDEX IF NOT EXISTS Cache_expire_time ON Cache (expire_time)",
};

static const char *const ddl_policy[] = {
	[DC_POLICY_NONE] = NULL,
	[DC_POLICY_LRS] = "CREATE INDEX IF NOT EXISTS Cache_store_time ON "
			  "Cache (store_time)",
	[DC_POLICY_LRU] = "CREATE INDEX IF NOT EXISTS Cache_access_time ON "
			  "Cache (access_time)",
	[DC_POLICY_LFU] = "CREATE INDEX IF NOT EXISTS Cache_access_count ON "
			  "Cache (access_count)",
};

static const char *const ddl_triggers[] = {
	"CREATE TRIGGER IF NOT EXISTS Settings_count_insert AFTER INSERT ON "
	"Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + 1 WHERE "
	"key = \"count\"; END",
	"CREATE TRIGGER IF NOT EXISTS Settings_count_delete AFTER DELETE ON "
	"Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value - 1 WHERE "
	"key = \"count\"; END",
	"CREATE TRIGGER IF NOT EXISTS Settings_size_insert AFTER INSERT ON "
	"Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + "
	"NEW.size WHERE key = \"size\"; END",
	"CREATE TRIGGER IF NOT EXISTS Settings_size_update AFTER UPDATE ON "
	"Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value + "
	"NEW.size - OLD.size WHERE key = \"size\"; END",
	"CREATE TRIGGER IF NOT EXISTS Settings_size_delete AFTER DELETE ON "
	"Cache FOR EACH ROW BEGIN UPDATE Settings SET value = value - "
	"OLD.size WHERE key = \"size\"; END",
};

static const char *const ddl_tag_create =
    "CREATE INDEX IF NOT EXISTS Cache_tag_rowid ON Cache(tag, rowid)";
static const char *const ddl_tag_drop = "DROP INDEX IF EXISTS Cache_tag_rowid";

static const char *const policy_names[] = {
	[DC_POLICY_NONE] = "none",
	[DC_POLICY_LRS] = "least-recently-stored",
	[DC_POLICY_LRU] = "least-recently-used",
	[DC_POLICY_LFU] = "least-frequently-used",
};

const char *dc_policy_name(enum dc_policy p)
{
	if ((unsigned)p >= DC_ARRAY_SIZE(policy_names))
		return "none";
	return policy_names[p];
}

int dc_policy_parse(const char *s, size_t len, enum dc_policy *p)
{
	for (size_t i = 0; i < DC_ARRAY_SIZE(policy_names); i++) {
		if (strlen(policy_names[i]) == len &&
		    memcmp(policy_names[i], s, len) == 0) {
			*p = (enum dc_policy)i;
			return 0;
		}
	}
	return DC_INVAL;
}

int dc_schema_create_settings(sqlite3 *db, const struct dc_logger *lg)
{
	return dc_exec_retry(db, lg, ddl_settings);
}

int dc_schema_create_cache(sqlite3 *db, const struct dc_logger *lg,
			   enum dc_policy policy)
{
	int rc = 0;

	for (size_t i = 0; i < DC_ARRAY_SIZE(ddl_cache) && !rc; i++)
		rc = dc_exec_retry(db, lg, ddl_cache[i]);
	if (!rc && (unsigned)policy < DC_ARRAY_SIZE(ddl_policy) &&
	    ddl_policy[policy])
		rc = dc_exec_retry(db, lg, ddl_policy[policy]);
	for (size_t i = 0; i < DC_ARRAY_SIZE(ddl_triggers) && !rc; i++)
		rc = dc_exec_retry(db, lg, ddl_triggers[i]);
	return rc;
}

int dc_schema_tag_index(sqlite3 *db, const struct dc_logger *lg, int on)
{
	return dc_exec_retry(db, lg, on ? ddl_tag_create : ddl_tag_drop);
}

/* ------------------------------------------------------------------ */
/* Prepared statements                                                */
/* ------------------------------------------------------------------ */

/* The GET/PULL/PEEKITEM column layout (DC_COL_*). */
#define ROWCOLS                                                                \
	"rowid, expire_time, tag, mode, filename, value, store_time, "         \
	"access_time, access_count, size"

/* The iteration column layout (DC_ICOL_*).  The last column tells the
 * inline value's storage class, with the number itself for INTEGER and
 * REAL, without reading text or blob data (typeof() does not load it). */
#define ITERCOLS                                                               \
	"rowid, key, raw, expire_time, tag, CASE WHEN filename IS NOT NULL "   \
	"THEN size WHEN typeof(value) = 'blob' THEN length(value) WHEN "       \
	"typeof(value) = 'text' THEN length(CAST(value AS BLOB)) ELSE 0 END, " \
	"filename IS NOT NULL, store_time, access_time, access_count, mode, "  \
	"CASE typeof(value) WHEN 'integer' THEN value WHEN 'real' THEN value " \
	"WHEN 'text' THEN '' WHEN 'blob' THEN x'' END"

static const char *const stmt_sql[DC_ST_COUNT] = {
	[DC_ST_BEGIN] = "BEGIN IMMEDIATE",
	[DC_ST_COMMIT] = "COMMIT",
	[DC_ST_ROLLBACK] = "ROLLBACK",
	[DC_ST_SAVEPOINT] = "SAVEPOINT dc_op",
	[DC_ST_RELEASE] = "RELEASE dc_op",
	[DC_ST_ROLLBACK_TO] = "ROLLBACK TO dc_op",
	[DC_ST_GET] = "SELECT " ROWCOLS " FROM Cache WHERE key = ?1 AND "
		      "raw = ?2 AND (expire_time IS NULL OR expire_time > ?3)",
	[DC_ST_CONTAINS] = "SELECT rowid FROM Cache WHERE key = ?1 AND raw = "
			   "?2 AND (expire_time IS NULL OR expire_time > ?3)",
	[DC_ST_SELECT_KEY] = "SELECT rowid, filename, expire_time, tag FROM "
			     "Cache WHERE key = ?1 AND raw = ?2",
	[DC_ST_INSERT] = "INSERT INTO Cache( key, raw, store_time, "
			 "expire_time, access_time, access_count, tag, size, "
			 "mode, filename, value) VALUES (?1, ?2, ?3, ?4, ?3, "
			 "0, ?5, ?6, ?7, ?8, ?9)",
	[DC_ST_UPDATE] = "UPDATE Cache SET store_time = ?1, expire_time = ?2, "
			 "access_time = ?1, access_count = 0, tag = ?3, size = "
			 "?4, mode = ?5, filename = ?6, value = ?7 WHERE rowid "
			 "= ?8",
	[DC_ST_DELETE_ROWID] = "DELETE FROM Cache WHERE rowid = ?1",
	[DC_ST_TOUCH] = "UPDATE Cache SET expire_time = ?1 WHERE rowid = ?2",
	[DC_ST_HIT] = "UPDATE Settings SET value = value + 1 WHERE key = "
		      "'hits'",
	[DC_ST_MISS] = "UPDATE Settings SET value = value + 1 WHERE key = "
		       "'misses'",
	[DC_ST_ACCESS_LRU] = "UPDATE Cache SET access_time = ?1 WHERE rowid "
			     "= ?2",
	[DC_ST_ACCESS_LFU] = "UPDATE Cache SET access_count = access_count + "
			     "1 WHERE rowid = ?1",
	[DC_ST_CULL_EXP_SELECT] = "SELECT rowid, filename FROM Cache WHERE "
				  "expire_time IS NOT NULL AND expire_time < "
				  "?1 ORDER BY expire_time LIMIT ?2",
	[DC_ST_CULL_LRS_SELECT] = "SELECT rowid, filename FROM Cache ORDER BY "
				  "store_time LIMIT ?1",
	[DC_ST_CULL_LRU_SELECT] = "SELECT rowid, filename FROM Cache ORDER BY "
				  "access_time LIMIT ?1",
	[DC_ST_CULL_LFU_SELECT] = "SELECT rowid, filename FROM Cache ORDER BY "
				  "access_count LIMIT ?1",
	/* volume().  A PRAGMA is compiled afresh at every step whatever
	 * we do (SQLite marks it run-once; pragma_page_count() even
	 * prepares one inside each scan): the bare PRAGMA plus a prepared
	 * Settings lookup is the cheapest exact form (callgrind: 13 k
	 * instructions per set instead of 15.8 k). */
	[DC_ST_PAGE_COUNT] = "PRAGMA page_count",
	[DC_ST_SIZE] = "SELECT value FROM Settings WHERE key = 'size'",
	[DC_ST_SETTING_GET] = "SELECT value FROM Settings WHERE key = ?1",
	[DC_ST_SETTING_UPDATE] = "UPDATE Settings SET value = ?1 WHERE key = "
				 "?2",
	[DC_ST_INCR_SELECT] = "SELECT rowid, expire_time, filename, value "
			      "FROM Cache WHERE key = ?1 AND raw = ?2",
	[DC_ST_INCR_UPDATE] = "UPDATE Cache SET store_time = ?1, value = ?2 "
			      "WHERE rowid = ?3",
	[DC_ST_INCR_UPDATE_LRU] = "UPDATE Cache SET store_time = ?1, value = "
				  "?2, access_time = ?1 WHERE rowid = ?3",
	[DC_ST_INCR_UPDATE_LFU] = "UPDATE Cache SET store_time = ?1, value = "
				  "?2, access_count = access_count + 1 WHERE "
				  "rowid = ?3",
	[DC_ST_PUSH_BACK] = "SELECT key FROM Cache WHERE ?1 < key AND key < "
			    "?2 AND raw = 1 ORDER BY key DESC LIMIT 1",
	[DC_ST_PUSH_FRONT] = "SELECT key FROM Cache WHERE ?1 < key AND key < "
			     "?2 AND raw = 1 ORDER BY key ASC LIMIT 1",
	[DC_ST_PULL_FRONT] = "SELECT " ROWCOLS ", key, raw FROM Cache WHERE "
			     "?1 < key AND key < ?2 AND raw = 1 ORDER BY key "
			     "ASC LIMIT 1",
	[DC_ST_PULL_BACK] = "SELECT " ROWCOLS ", key, raw FROM Cache WHERE ?1 "
			    "< key AND key < ?2 AND raw = 1 ORDER BY key DESC "
			    "LIMIT 1",
	[DC_ST_PEEKITEM_LAST] = "SELECT " ROWCOLS ", key, raw FROM Cache "
				"ORDER BY rowid DESC LIMIT 1",
	[DC_ST_PEEKITEM_FIRST] = "SELECT " ROWCOLS ", key, raw FROM Cache "
				 "ORDER BY rowid ASC LIMIT 1",
	[DC_ST_CLEAR_SELECT] = "SELECT rowid, filename FROM Cache WHERE rowid "
			       "> ?1 ORDER BY rowid LIMIT ?2",
	[DC_ST_EVICT_SELECT] = "SELECT rowid, filename FROM Cache WHERE tag = "
			       "?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
	[DC_ST_EXPIRE_SELECT] = "SELECT rowid, filename, expire_time FROM "
				"Cache WHERE ?1 < expire_time AND expire_time "
				"< ?2 ORDER BY expire_time LIMIT ?3",
	[DC_ST_MAX_ROWID] = "SELECT MAX(rowid) FROM Cache",
	[DC_ST_ITER_ASC] = "SELECT " ITERCOLS " FROM Cache WHERE ?1 < rowid "
			   "AND rowid < ?2 ORDER BY rowid ASC LIMIT ?3",
	[DC_ST_ITER_DESC] = "SELECT " ITERCOLS " FROM Cache WHERE ?1 < rowid "
			    "AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3",
	[DC_ST_KEYS_FIRST_ASC] = "SELECT " ITERCOLS " FROM Cache WHERE key IS "
				 "NOT NULL ORDER BY key ASC, raw ASC LIMIT ?3",
	[DC_ST_KEYS_FIRST_DESC] = "SELECT " ITERCOLS " FROM Cache WHERE key "
				  "IS NOT NULL ORDER BY key DESC, raw DESC "
				  "LIMIT ?3",
	/* DiskCache writes "key = ? AND raw > ? OR key > ?"; this
	 * equivalent form lets SQLite walk Cache_key_raw without sorting. */
	[DC_ST_KEYS_NEXT_ASC] = "SELECT " ITERCOLS " FROM Cache WHERE key >= "
				"?1 AND (key > ?1 OR raw > ?2) ORDER BY key "
				"ASC, raw ASC LIMIT ?3",
	[DC_ST_KEYS_NEXT_DESC] = "SELECT " ITERCOLS " FROM Cache WHERE key <= "
				 "?1 AND (key < ?1 OR raw < ?2) ORDER BY key "
				 "DESC, raw DESC LIMIT ?3",
	[DC_ST_COUNT_KEYS] = "SELECT COUNT(key) FROM Cache",
	[DC_ST_SUM_SIZE] = "SELECT COALESCE(SUM(size), 0) FROM Cache",
	[DC_ST_CHECK_FILES] = "SELECT rowid, size, filename FROM Cache WHERE "
			      "filename IS NOT NULL",
	[DC_ST_CHECK_FIX_SIZE] = "UPDATE Cache SET size = ?1 WHERE rowid = ?2",
	[DC_ST_DELETE_ROWID_FILE] = "DELETE FROM Cache WHERE rowid = ?1 AND "
				    "filename = ?2",
	/* DC_ST_UPDATE without a column whose value stays: SQLite then
	 * leaves that column's index (Cache_expire_time, Cache_tag_rowid)
	 * alone, one page write fewer.  The row is the same as DC_ST_UPDATE
	 * would make it; the parameter numbers are the same too. */
	[DC_ST_UPDATE_KEEP_EXPIRE] = "UPDATE Cache SET store_time = ?1, "
				     "access_time = ?1, access_count = 0, "
				     "tag = ?3, size = ?4, mode = ?5, filename "
				     "= ?6, value = ?7 WHERE rowid = ?8",
	[DC_ST_UPDATE_KEEP_TAG] = "UPDATE Cache SET store_time = ?1, "
				  "expire_time = ?2, access_time = ?1, "
				  "access_count = 0, size = ?4, mode = ?5, "
				  "filename = ?6, value = ?7 WHERE rowid = ?8",
	[DC_ST_UPDATE_KEEP_BOTH] = "UPDATE Cache SET store_time = ?1, "
				   "access_time = ?1, access_count = 0, size "
				   "= ?4, mode = ?5, filename = ?6, value = "
				   "?7 WHERE rowid = ?8",
	[DC_ST_SET_TAG] = "UPDATE Cache SET tag = ?1 WHERE rowid = ?3",
	[DC_ST_SET_TAG_EXPIRE] = "UPDATE Cache SET tag = ?1, expire_time = ?2 "
				 "WHERE rowid = ?3",
	[DC_ST_RENAME] = "UPDATE Cache SET key = ?1, raw = ?2 WHERE rowid = "
			 "?3",
	/* A row moved from another shard, every column given. */
	[DC_ST_INSERT_ROW] = "INSERT INTO Cache( key, raw, store_time, "
			     "expire_time, access_time, access_count, tag, "
			     "size, mode, filename, value) VALUES (?1, ?2, ?3, "
			     "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	/* delete: only what it needs (spec 6.7), so that a large inline
	 * value's overflow pages are not read for nothing.  (DELETE ...
	 * RETURNING filename was measured: 33 % more instructions.) */
	[DC_ST_DELETE_SELECT] = "SELECT rowid, filename FROM Cache WHERE key = "
				"?1 AND raw = ?2 AND (expire_time IS NULL OR "
				"expire_time > ?3)",
};

const char *dc_stmt_sql(enum dc_stmt_id id)
{
	if ((unsigned)id >= DC_ST_COUNT)
		return NULL;
	return stmt_sql[id];
}
