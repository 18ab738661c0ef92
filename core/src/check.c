/* check.c - DiskCache's check(): database, value files and metadata
 * SPDX-License-Identifier: MIT
 *
 * Follows Cache.check() of DiskCache 5.4.0 (integrity_check, VACUUM on
 * fix, value file sizes, unknown files, empty directories, count and
 * size metadata), with three deliberate differences:
 *  - a filename column that leaves the cache directory (absolute, "..",
 *    or through a symlink) is reported as DC_WARN_UNSAFE_PATH and, with
 *    fix, its row is deleted; the file it names is never touched;
 *  - directories holding their own cache.db (sub-caches) are skipped;
 *  - cache.db-tmp-* files (dc_cache_mkstemp) are reported only when
 *    older than a day.  Python skips them: their name contains
 *    "cache.db".
 */
#include "fanout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STALE_SECONDS (24 * 3600)
#define MAX_DEPTH     64

struct checker {
	const char *dir;
	int fix;
	dc_warn_fn warn;
	void *arg;
	uint64_t n;
	char **names; /* referenced value files, sorted */
	size_t nnames, cap;
};

static void DC_PRINTF(3, 4)
    warnf(struct checker *k, enum dc_warning kind, const char *fmt, ...)
{
	char msg[DC_PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	k->n++;
	if (k->warn)
		k->warn(k->arg, kind, msg);
}

static int add_name(struct checker *k, const char *name)
{
	char **p;

	if (k->nnames == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;

		p = realloc(k->names, cap * sizeof(*p));
		if (!p)
			return ENOMEM;
		k->names = p;
		k->cap = cap;
	}
	k->names[k->nnames] = strdup(name);
	if (!k->names[k->nnames])
		return ENOMEM;
	k->nnames++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool referenced(const struct checker *k, const char *rel)
{
	return k->nnames &&
	       bsearch(&rel, k->names, k->nnames, sizeof(char *), cmp_str);
}

/* ------------------------------------------------------------------ */
/* Temporary files                                                    */
/* ------------------------------------------------------------------ */

/* A dc_cache_mkstemp() file at the top of @fd: skipped while it may be
 * in use, reported (and with fix removed) once it is a day old. */
static void check_tmp(struct checker *k, int fd, const char *name,
		      const struct stat *st)
{
	if (strncmp(name, DC_TMP_PREFIX, sizeof(DC_TMP_PREFIX) - 1) != 0 ||
	    S_ISDIR(st->st_mode) || time(NULL) - st->st_mtime < STALE_SECONDS)
		return;
	warnf(k, DC_WARN_UNKNOWN_FILE, "unknown file: %s/%s", k->dir, name);
	if (k->fix)
		unlinkat(fd, name, 0);
}

static void scan_tmp(struct checker *k, int dirfd)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			check_tmp(k, fd, de->d_name, &st);
	closedir(d);
}

int dc_tmpdir_check(const struct dc_cache *cache, int fix, dc_warn_fn warn,
		    void *arg, uint64_t *nwarn)
{
	struct checker k = { 0 };

	k.dir = cache->dir;
	k.fix = fix;
	k.warn = warn;
	k.arg = arg;
	scan_tmp(&k, cache->dirfd);
	*nwarn = k.n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The directory walk                                                 */
/* ------------------------------------------------------------------ */

/* Walk @fd (the directory @rel, "" at the top).  Returns the number of
 * entries left in it, so the caller can tell an empty directory. */
static long walk(struct checker *k, int fd, const char *rel, int depth)
{
	char path[DC_PATH_MAX], db[NAME_MAX + 16];
	struct dirent *de;
	struct stat st;
	long left = 0, sub;
	DIR *d;
	int cfd, n;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		left++;
		n = snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "",
			     name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			/* Another cache (a sub-cache) is not ours. */
			snprintf(db, sizeof(db), "%s/cache.db", name);
			if (faccessat(fd, db, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				continue;
			if (depth >= MAX_DEPTH)
				continue;
			cfd = openat(fd, name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
			if (cfd < 0)
				continue;
			sub = walk(k, cfd, path, depth + 1);
			if (sub == 0) {
				warnf(k, DC_WARN_EMPTY_DIR,
				      "empty directory: %s/%s", k->dir, path);
				if (k->fix &&
				    unlinkat(fd, name, AT_REMOVEDIR) == 0)
					left--;
			}
			continue;
		}
		/* cache.db, cache.db-wal, cache.db-shm, as Python. */
		if (strstr(path, "cache.db")) {
			if (depth == 0)
				check_tmp(k, fd, name, &st);
			continue;
		}
		if (referenced(k, path))
			continue;
		warnf(k, DC_WARN_UNKNOWN_FILE, "unknown file: %s/%s", k->dir,
		      path);
		if (k->fix && unlinkat(fd, name, 0) == 0)
			left--;
	}
	closedir(d);
	return left;
}

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

struct frow {
	int64_t rowid, size;
	char *name;
};

static int integrity(struct checker *k, struct dc_conn *c)
{
	sqlite3_stmt *st = NULL;
	const char *msg;
	char **msgs = NULL;
	size_t nmsgs = 0;
	int rc, ok = 0;

	rc = sqlite3_prepare_v2(c->db, "PRAGMA integrity_check", -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		char **p = realloc(msgs, (nmsgs + 1) * sizeof(*p));

		if (!p) {
			rc = SQLITE_NOMEM;
			break;
		}
		msgs = p;
		msg = (const char *)sqlite3_column_text(st, 0);
		msgs[nmsgs] = strdup(msg ? msg : "");
		if (!msgs[nmsgs]) {
			rc = SQLITE_NOMEM;
			break;
		}
		nmsgs++;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE || rc == SQLITE_OK) {
		rc = 0;
		ok = nmsgs == 1 && strcmp(msgs[0], "ok") == 0;
		for (size_t i = 0; i < nmsgs && !ok; i++)
			warnf(k, DC_WARN_INTEGRITY, "%s", msgs[i]);
	} else if ((rc & 0xff) == SQLITE_CORRUPT ||
		   (rc & 0xff) == SQLITE_NOTADB) {
		warnf(k, DC_WARN_INTEGRITY, "%s", sqlite3_errmsg(c->db));
		rc = 0;
	} else {
		rc = dc_sqlerr(c, rc, "PRAGMA integrity_check");
	}
	for (size_t i = 0; i < nmsgs; i++)
		free(msgs[i]);
	free(msgs);
	if (!rc && k->fix && c->depth == 0)
		rc = dc_exec_retry(c->db, &c->shard->log, "VACUUM");
	return rc;
}

static int collect_files(struct dc_conn *c, struct frow **out, size_t *nout)
{
	struct frow *rows = NULL, *p;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, DC_ST_CHECK_FILES, &rc);
	if (!st)
		return rc;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);

		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			p = realloc(rows, cap * sizeof(*p));
			if (!p) {
				rc = ENOMEM;
				break;
			}
			rows = p;
		}
		rows[n].rowid = sqlite3_column_int64(st, 0);
		rows[n].size = sqlite3_column_int64(st, 1);
		/* Keep embedded NULs visible to the safety check. */
		rows[n].name = malloc(len + 2);
		if (!rows[n].name) {
			rc = ENOMEM;
			break;
		}
		memcpy(rows[n].name, name ? name : "", len);
		rows[n].name[len] = '\0';
		rows[n].name[len + 1] = '\0';
		if (memchr(rows[n].name, '\0', len))
			rows[n].name[0] = '\0';
		n++;
	}
	if (!rc && r != SQLITE_DONE)
		rc = dc_sqlerr(c, r, "SELECT FROM Cache");
	sqlite3_reset(st);
	*out = rows;
	*nout = n;
	return rc;
}

static int fix_row(struct dc_conn *c, enum dc_stmt_id id, int64_t a,
		   int64_t rowid)
{
	sqlite3_stmt *st;
	int rc = 0, r;

	st = dc_stmt(c, id, &rc);
	if (!st)
		return rc;
	if (id == DC_ST_CHECK_FIX_SIZE) {
		sqlite3_bind_int64(st, 1, a);
		sqlite3_bind_int64(st, 2, rowid);
	} else {
		sqlite3_bind_int64(st, 1, rowid);
	}
	r = sqlite3_step(st);
	sqlite3_reset(st);
	return r == SQLITE_DONE ? 0 : dc_sqlerr(c, r, "check fix");
}

static int check_files(struct checker *k, struct dc_conn *c)
{
	struct dc_shard *s = c->shard;
	struct frow *rows = NULL;
	struct stat st;
	size_t n = 0;
	int rc, fd;

	rc = collect_files(c, &rows, &n);
	for (size_t i = 0; i < n && !rc; i++) {
		const char *name = rows[i].name;

		if (!dc_disk_path_ok(name, strlen(name))) {
			warnf(k, DC_WARN_UNSAFE_PATH, "unsafe path: %s", name);
			if (k->fix)
				rc = fix_row(c, DC_ST_DELETE_ROWID, 0,
					     rows[i].rowid);
			continue;
		}
		fd = dc_disk_safe_open(s->disk.dirfd, name, O_PATH, 0);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
			close(fd);
			fd = -ELOOP;
		}
		if (fd == -ELOOP || fd == -EXDEV) {
			warnf(k, DC_WARN_UNSAFE_PATH, "unsafe path: %s/%s",
			      k->dir, name);
			if (k->fix)
				rc = fix_row(c, DC_ST_DELETE_ROWID, 0,
					     rows[i].rowid);
			continue;
		}
		rc = add_name(k, name);
		if (rc)
			break;
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			close(fd);
			if (st.st_size != rows[i].size) {
				warnf(k, DC_WARN_FILE_SIZE,
				      "wrong file size: %s/%s, %lld != %lld",
				      k->dir, name, (long long)st.st_size,
				      (long long)rows[i].size);
				if (k->fix)
					rc = fix_row(c, DC_ST_CHECK_FIX_SIZE,
						     st.st_size, rows[i].rowid);
			}
			continue;
		}
		if (fd >= 0)
			close(fd);
		warnf(k, DC_WARN_FILE_MISSING, "file not found: %s/%s", k->dir,
		      name);
		if (k->fix)
			rc = fix_row(c, DC_ST_DELETE_ROWID, 0, rows[i].rowid);
	}
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
	return rc;
}

static int check_meta(struct checker *k, struct dc_conn *c, enum dc_stmt_id id,
		      const char *name, enum dc_warning w, const char *fmt)
{
	sqlite3_stmt *st;
	int64_t have = 0, want = 0;
	int rc = 0, r;

	rc = dc_shard_setting_num(c, name, NULL, &have);
	if (rc == DC_NOTFOUND)
		rc = 0;
	if (rc)
		return rc;
	st = dc_stmt(c, id, &rc);
	if (!st)
		return rc;
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		want = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (r != SQLITE_ROW)
		return dc_sqlerr(c, r, "check");
	if (have == want)
		return 0;
	warnf(k, w, fmt, (long long)have, (long long)want);
	if (!k->fix)
		return 0;
	st = dc_stmt(c, DC_ST_SETTING_UPDATE, &rc);
	if (!st)
		return rc;
	sqlite3_bind_int64(st, 1, want);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_reset(st);
	return r == SQLITE_DONE ? 0 : dc_sqlerr(c, r, "UPDATE Settings");
}

int dc_shard_check(struct dc_shard *s, int fix, unsigned flags, dc_warn_fn warn,
		   void *arg, uint64_t *nwarn)
{
	struct checker k = { 0 };
	struct dc_conn *c;
	struct dc_tx tx;
	int rc, fd;

	k.dir = s->dir;
	k.fix = fix;
	k.warn = warn;
	k.arg = arg;
	rc = dc_conn_get(s, &c);
	if (rc)
		goto out;
	rc = integrity(&k, c);
	if (rc)
		goto out_put;
	rc = dc_tx_begin(c, flags, &tx);
	if (rc)
		goto out_put;
	rc = check_files(&k, c);
	if (!rc) {
		if (k.nnames)
			qsort(k.names, k.nnames, sizeof(char *), cmp_str);
		fd = openat(s->disk.dirfd, ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			walk(&k, fd, "", 0);
		} else {
			rc = errno;
		}
	}
	if (!rc)
		rc = check_meta(&k, c, DC_ST_COUNT_KEYS, "count", DC_WARN_COUNT,
				"Settings.count != COUNT(Cache.key); %lld != "
				"%lld");
	if (!rc)
		rc = check_meta(&k, c, DC_ST_SUM_SIZE, "size", DC_WARN_SIZE,
				"Settings.size != SUM(Cache.size); %lld != "
				"%lld");
	rc = dc_tx_end(&tx, rc == 0, rc);
out_put:
	dc_conn_put(c);
out:
	for (size_t i = 0; i < k.nnames; i++)
		free(k.names[i]);
	free(k.names);
	if (nwarn)
		*nwarn = k.n;
	return rc;
}
