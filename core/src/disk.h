/* disk.h - DiskCache's Disk: key/value encoding and value files (private)
 * SPDX-License-Identifier: MIT
 *
 * This layer knows how DiskCache turns keys and values into columns and
 * value files, and how to touch those files without ever leaving the
 * cache directory.  It knows nothing about transactions.
 */
#ifndef DC_DISK_H
#define DC_DISK_H

#include "internal.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

/* Values of the Cache.mode column. */
enum {
	DC_MODE_NONE = 0,
	DC_MODE_RAW = 1,
	DC_MODE_BINARY = 2,
	DC_MODE_TEXT = 3,
	DC_MODE_PICKLE = 4,
};

/* "ab/cd/" + 28 hex + ".val" + NUL */
#define DC_FNAME_LEN  38
#define DC_FNAME_SIZE 40

/* Longest filename column we accept. */
#define DC_PATH_MAX 4096

/* A key as stored in the Cache table: the (key, raw) pair. */
struct dc_dbkey {
	int type; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB */
	int raw;
	int64_t i;
	double f;
	const void *p;
	size_t len;
};

/* dc_disk_put_key - DiskCache's Disk.put(): validate @key and describe
 * its columns.  Pointers borrow @key's data.  Returns 0 or DC_INVAL. */
int dc_disk_put_key(const struct dc_value *key, struct dc_dbkey *out);

/* Bind (key, raw) to parameters @ikey and @iraw (@iraw 0: no raw). */
int dc_disk_bind_key(sqlite3_stmt *st, int ikey, int iraw,
		     const struct dc_dbkey *k);

/* Bind a tag (NULL or type NONE binds NULL).  Returns SQLite's code. */
int dc_disk_bind_tag(sqlite3_stmt *st, int idx, const struct dc_value *tag);

/* dc_disk_check_tag - DC_INVAL unless @tag is NULL, NONE, INT, FLOAT,
 * TEXT (valid UTF-8) or BYTES. */
int dc_disk_check_tag(const struct dc_value *tag);

/* A column as a dc_value (INTEGER, REAL, TEXT, BLOB as BYTES, NULL as
 * NONE); data points into the statement until it is stepped or reset. */
void dc_disk_column(sqlite3_stmt *st, int col, struct dc_value *out);

/* The key at column @col given its raw flag: raw 0 is PICKLE. */
void dc_disk_column_key(sqlite3_stmt *st, int col, int raw,
			struct dc_value *out);

/* How a value is stored (DiskCache's Disk.store()). */
struct dc_store {
	int mode;
	int64_t size;               /* bytes in the file, 0 when inline */
	int has_file;               /* a value file was written */
	char name[DC_FNAME_SIZE];   /* its relative name */
	const struct dc_value *inl; /* the inline value, if !has_file */
};

/* Parameters of value files: where and with which modes. */
struct dc_disk {
	int dirfd; /* O_PATH descriptor of the cache (shard) directory */
	unsigned file_mode;
	unsigned dir_mode;
	const struct dc_logger *log;
};

/* dc_disk_check_value - DC_INVAL unless @v is a storable value. */
int dc_disk_check_value(const struct dc_value *v);

/* dc_disk_store - decide inline vs file and write the file if needed.
 * The file is complete when this returns.  Returns 0, DC_INVAL, or an
 * errno (nothing is left behind on error). */
int dc_disk_store(const struct dc_disk *d, const struct dc_value *v,
		  int64_t min_file_size, struct dc_store *out);

/* dc_disk_store_fd - copy @fd from its offset to EOF into a new value
 * file (mode BINARY).  Returns 0 or an errno. */
int dc_disk_store_fd(const struct dc_disk *d, int fd, struct dc_store *out);

/* Bind the inline value of @s (or NULL for a file) to @idx. */
int dc_disk_bind_store(sqlite3_stmt *st, int idx, const struct dc_store *s);

/* dc_disk_new_name - 16 random bytes as ab/cd/<28 hex>.val. */
int dc_disk_new_name(char name[DC_FNAME_SIZE]);

/* dc_disk_make_dirs - create the ab/ and ab/cd/ directories of @name
 * without following symlinks.  Returns 0 or an errno. */
int dc_disk_make_dirs(const struct dc_disk *d, const char *name);

/* dc_disk_path_ok - is a filename column safe to use: relative, no NUL,
 * no empty, "." or ".." component, not a database file. */
bool dc_disk_path_ok(const char *name, size_t len);

/* dc_disk_safe_open - open @rel below @dirfd without following any
 * symlink and without leaving the directory.  Returns a descriptor or a
 * negated errno. */
int dc_disk_safe_open(int dirfd, const char *rel, int flags, mode_t mode);

/* dc_disk_open - open a value file read-only.  @name is a column value
 * of @len bytes.  Returns 0 and *fd, DC_UNSAFE, or an errno. */
int dc_disk_open(const struct dc_disk *d, const char *name, size_t len,
		 int *fd);

/* dc_disk_read_fd - read the whole of @fd into @buf at @off; NUL
 * terminated; *len receives the byte count.  Returns 0 or an errno. */
int dc_disk_read_fd(int fd, struct dc_buf *buf, size_t off, size_t *len);

/* dc_disk_remove - unlink a value file and its now empty parent
 * directories (never the cache directory).  Errors are ignored; unsafe
 * names are logged and left alone. */
void dc_disk_remove(const struct dc_disk *d, const char *name, size_t len);

/* dc_disk_link - give the value file @name (a column value of @len bytes)
 * of cache directory @from a second, new name in @to's layout (a hard
 * link: same inode, no copy), written to @newname.  Both names stay; the
 * caller unlinks the old one once the move is committed.  Symlinks are
 * never followed, and a link that would not be the same file as the one
 * found at @name is removed again (DC_UNSAFE).
 * Returns 0, DC_UNSAFE, ENOENT (the file vanished), or an errno (EXDEV,
 * EPERM, EMLINK, ENOSPC ... where hard links are impossible). */
int dc_disk_link(const struct dc_disk *from, const char *name, size_t len,
		 const struct dc_disk *to, char newname[DC_FNAME_SIZE]);

#endif /* DC_DISK_H */
