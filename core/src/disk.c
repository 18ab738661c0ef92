/* disk.c - DiskCache's Disk: key/value encoding, hashing and value files
 * SPDX-License-Identifier: MIT
 *
 * Value files are only ever touched through descriptors relative to the
 * cache directory, without following symlinks, so that a hostile
 * database cannot make us read, write or unlink anything outside it.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* UTF-8 and adler32                                                  */
/* ------------------------------------------------------------------ */

bool dc_utf8_check(const void *s, size_t len, size_t *ncp)
{
	const unsigned char *p = s, *end = p + len;
	size_t n = 0;

	while (p < end) {
		unsigned c = *p;

		/* Fast path for ASCII runs. */
		if (c < 0x80) {
			p++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (end - p < 2 || (p[1] & 0xc0) != 0x80)
				return false;
			p += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			unsigned lo = 0x80, hi = 0xbf;

			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
			if (end - p < 3 || p[1] < lo || p[1] > hi ||
			    (p[2] & 0xc0) != 0x80)
				return false;
			p += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			unsigned lo = 0x80, hi = 0xbf;

			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
			if (end - p < 4 || p[1] < lo || p[1] > hi ||
			    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
				return false;
			p += 4;
		} else {
			return false;
		}
		n++;
	}
	if (ncp)
		*ncp = n;
	return true;
}

uint32_t dc_adler32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t a = 1, b = 0;

	while (len > 0) {
		/* 5552 is the most bytes before b can overflow 32 bits. */
		size_t n = len < 5552 ? len : 5552;

		len -= n;
		while (n--) {
			a += *p++;
			b += a;
		}
		a %= 65521;
		b %= 65521;
	}
	return (b << 16) | a;
}

/* ------------------------------------------------------------------ */
/* Keys, tags and values                                              */
/* ------------------------------------------------------------------ */

/* SQLite binds a NULL pointer as NULL; empty strings need a real one. */
static const char empty[1] = "";

int dc_disk_put_key(const struct dc_value *key, struct dc_dbkey *out)
{
	if (!key)
		return DC_INVAL;
	memset(out, 0, sizeof(*out));
	out->raw = 1;
	switch (key->type) {
	case DC_TYPE_INT:
		out->type = SQLITE_INTEGER;
		out->i = key->i;
		return 0;
	case DC_TYPE_FLOAT:
		/* NaN would be stored as NULL: a key nobody can find. */
		if (isnan(key->f))
			return DC_INVAL;
		out->type = SQLITE_FLOAT;
		out->f = key->f;
		return 0;
	case DC_TYPE_TEXT:
		if (key->len && !key->data)
			return DC_INVAL;
		if (key->len > INT_MAX ||
		    !dc_utf8_check(key->data, key->len, NULL))
			return DC_INVAL;
		out->type = SQLITE_TEXT;
		break;
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		if ((key->len && !key->data) || key->len > INT_MAX)
			return DC_INVAL;
		out->type = SQLITE_BLOB;
		out->raw = key->type == DC_TYPE_BYTES;
		break;
	default:
		return DC_INVAL;
	}
	out->p = key->len ? key->data : empty;
	out->len = key->len;
	return 0;
}

int dc_disk_bind_key(sqlite3_stmt *st, int ikey, int iraw,
		     const struct dc_dbkey *k)
{
	int rc;

	switch (k->type) {
	case SQLITE_INTEGER:
		rc = sqlite3_bind_int64(st, ikey, k->i);
		break;
	case SQLITE_FLOAT:
		rc = sqlite3_bind_double(st, ikey, k->f);
		break;
	case SQLITE_TEXT:
		rc = sqlite3_bind_text(st, ikey, k->p, (int)k->len,
				       SQLITE_STATIC);
		break;
	default:
		rc = sqlite3_bind_blob(st, ikey, k->p, (int)k->len,
				       SQLITE_STATIC);
		break;
	}
	if (rc == SQLITE_OK && iraw)
		rc = sqlite3_bind_int(st, iraw, k->raw);
	return rc;
}

int dc_disk_check_tag(const struct dc_value *tag)
{
	if (!tag)
		return 0;
	switch (tag->type) {
	case DC_TYPE_NONE:
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT:
		return 0;
	case DC_TYPE_TEXT:
		if ((tag->len && !tag->data) || tag->len > INT_MAX)
			return DC_INVAL;
		return dc_utf8_check(tag->data, tag->len, NULL) ? 0 : DC_INVAL;
	case DC_TYPE_BYTES:
		if ((tag->len && !tag->data) || tag->len > INT_MAX)
			return DC_INVAL;
		return 0;
	default:
		return DC_INVAL;
	}
}

int dc_disk_bind_tag(sqlite3_stmt *st, int idx, const struct dc_value *tag)
{
	if (!tag)
		return sqlite3_bind_null(st, idx);
	switch (tag->type) {
	case DC_TYPE_INT:
		return sqlite3_bind_int64(st, idx, tag->i);
	case DC_TYPE_FLOAT:
		return sqlite3_bind_double(st, idx, tag->f);
	case DC_TYPE_TEXT:
		return sqlite3_bind_text(st, idx, tag->len ? tag->data : empty,
					 (int)tag->len, SQLITE_STATIC);
	case DC_TYPE_BYTES:
		return sqlite3_bind_blob(st, idx, tag->len ? tag->data : empty,
					 (int)tag->len, SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, idx);
	}
}

void dc_disk_column(sqlite3_stmt *st, int col, struct dc_value *out)
{
	memset(out, 0, sizeof(*out));
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		out->type = DC_TYPE_INT;
		out->i = sqlite3_column_int64(st, col);
		break;
	case SQLITE_FLOAT:
		out->type = DC_TYPE_FLOAT;
		out->f = sqlite3_column_double(st, col);
		break;
	case SQLITE_TEXT:
		out->type = DC_TYPE_TEXT;
		out->data = sqlite3_column_text(st, col);
		out->len = (size_t)sqlite3_column_bytes(st, col);
		break;
	case SQLITE_BLOB:
		out->type = DC_TYPE_BYTES;
		out->data = sqlite3_column_blob(st, col);
		out->len = (size_t)sqlite3_column_bytes(st, col);
		if (!out->data)
			out->data = empty;
		break;
	default:
		out->type = DC_TYPE_NONE;
		break;
	}
}

void dc_disk_column_key(sqlite3_stmt *st, int col, int raw,
			struct dc_value *out)
{
	dc_disk_column(st, col, out);
	/* raw = 0 marks a pickled key; surface its bytes as such. */
	if (!raw && (out->type == DC_TYPE_BYTES || out->type == DC_TYPE_TEXT))
		out->type = DC_TYPE_PICKLE;
}

int dc_key_hash(const struct dc_value *key, uint32_t *hash)
{
	const int64_t m = 4294967295LL; /* 0xFFFFFFFF, not 2**32 */
	struct dc_dbkey k;
	unsigned char be[8];
	uint64_t bits;
	int64_t r;
	int rc;

	if (!hash)
		return DC_INVAL;
	rc = dc_disk_put_key(key, &k);
	if (rc)
		return rc;
	switch (k.type) {
	case SQLITE_INTEGER:
		/* Python's floor modulo. */
		r = k.i % m;
		if (r < 0)
			r += m;
		*hash = (uint32_t)r;
		break;
	case SQLITE_FLOAT:
		memcpy(&bits, &k.f, sizeof(bits));
		for (int i = 0; i < 8; i++)
			be[i] = (unsigned char)(bits >> (56 - 8 * i));
		*hash = dc_adler32(be, sizeof(be));
		break;
	default:
		*hash = dc_adler32(k.p, k.len);
		break;
	}
	return 0;
}

int dc_disk_check_value(const struct dc_value *v)
{
	if (!v)
		return DC_INVAL;
	switch (v->type) {
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT:
		return 0;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		if (v->len && !v->data)
			return DC_INVAL;
		return 0;
	default:
		return DC_INVAL;
	}
}

int dc_disk_bind_store(sqlite3_stmt *st, int idx, const struct dc_store *s)
{
	const struct dc_value *v = s->inl;

	if (s->has_file || !v)
		return sqlite3_bind_null(st, idx);
	switch (v->type) {
	case DC_TYPE_INT:
		return sqlite3_bind_int64(st, idx, v->i);
	case DC_TYPE_FLOAT:
		/* SQLite stores NaN as NULL, as Python does. */
		return sqlite3_bind_double(st, idx, v->f);
	case DC_TYPE_TEXT:
		return sqlite3_bind_text(st, idx, v->len ? v->data : empty,
					 (int)v->len, SQLITE_STATIC);
	default:
		return sqlite3_bind_blob64(st, idx, v->len ? v->data : empty,
					   v->len, SQLITE_STATIC);
	}
}

/* ------------------------------------------------------------------ */
/* Paths                                                              */
/* ------------------------------------------------------------------ */

bool dc_disk_path_ok(const char *name, size_t len)
{
	size_t i, start;

	if (!name || len == 0 || len >= DC_PATH_MAX || name[0] == '/')
		return false;
	if (memchr(name, '\0', len))
		return false;
	/* Never a database file or our temporary directory. */
	if (len >= 8 && memcmp(name, "cache.db", 8) == 0)
		return false;
	start = 0;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '/')
			continue;
		size_t n = i - start;

		if (n == 0)
			return false;
		if (n == 1 && name[start] == '.')
			return false;
		if (n == 2 && name[start] == '.' && name[start + 1] == '.')
			return false;
		start = i + 1;
	}
	return true;
}

static atomic_int no_openat2;

/* Walk @rel one component at a time with O_NOFOLLOW: the fallback when
 * the kernel has no openat2(). */
static int walk_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	char comp[NAME_MAX + 1];
	const char *p = rel, *slash;
	int cur = dirfd, next, fd;

	while ((slash = strchr(p, '/')) != NULL) {
		size_t n = (size_t)(slash - p);

		if (n == 0 || n > NAME_MAX) {
			fd = -EINVAL;
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		next = openat(cur, comp,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			fd = errno == ENOTDIR ? -ELOOP : -errno;
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = next;
		p = slash + 1;
	}
	fd = openat(cur, p, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		fd = -errno;
out:
	if (cur != dirfd)
		close(cur);
	return fd;
}

int dc_disk_safe_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how;
	long fd;

	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
		how.mode = (flags & O_CREAT) ? mode : 0;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			      RESOLVE_NO_MAGICLINKS;
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS && errno != EPERM && errno != E2BIG)
			return -errno;
		atomic_store_explicit(&no_openat2, 1, memory_order_relaxed);
	}
	return walk_open(dirfd, rel, flags, mode);
}

/* ------------------------------------------------------------------ */
/* Value files                                                        */
/* ------------------------------------------------------------------ */

int dc_disk_new_name(char name[DC_FNAME_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	char h[32];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(rnd)) {
		n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		got += (size_t)n;
	}
	for (int i = 0; i < 16; i++) {
		h[2 * i] = hex[rnd[i] >> 4];
		h[2 * i + 1] = hex[rnd[i] & 15];
	}
	memcpy(name, h, 2);
	name[2] = '/';
	memcpy(name + 3, h + 2, 2);
	name[5] = '/';
	memcpy(name + 6, h + 4, 28);
	memcpy(name + 34, ".val", 5);
	return 0;
}

int dc_disk_make_dirs(const struct dc_disk *d, const char *name)
{
	char ab[3] = { name[0], name[1], '\0' };
	char cd[3] = { name[3], name[4], '\0' };
	int abfd, rc = 0;

	if (mkdirat(d->dirfd, ab, d->dir_mode) < 0 && errno != EEXIST)
		return errno;
	abfd =
	    openat(d->dirfd, ab, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (abfd < 0)
		return errno;
	if (mkdirat(abfd, cd, d->dir_mode) < 0 && errno != EEXIST)
		rc = errno;
	close(abfd);
	return rc;
}

/* Create a fresh value file: DiskCache tries 10 times, re-creating the
 * directories each time because a concurrent remover may delete them. */
static int new_file(const struct dc_disk *d, char name[DC_FNAME_SIZE], int *fdp)
{
	int rc = 0, fd = -1;

	for (int attempt = 1; attempt <= 10; attempt++) {
		/* A new name unless the last try only lacked directories. */
		if (rc != ENOENT) {
			rc = dc_disk_new_name(name);
			if (rc)
				break;
		}
		fd = dc_disk_safe_open(
		    d->dirfd, name, O_WRONLY | O_CREAT | O_EXCL, d->file_mode);
		if (fd >= 0) {
			rc = 0;
			break;
		}
		rc = -fd;
		if (rc == ENOENT) {
			int mrc = dc_disk_make_dirs(d, name);

			if (mrc && mrc != ENOENT) {
				rc = mrc;
				break;
			}
		}
	}
	if (rc) {
		dc_log(d->log, DC_LOG_ERROR, "cannot create a value file: %s",
		       dc_strerror(rc));
		return rc;
	}
	*fdp = fd;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (w == 0)
			return EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int finish_file(const struct dc_disk *d, int fd, char *name, int rc)
{
	if (close(fd) < 0 && !rc && errno != EINTR)
		rc = errno;
	if (rc) {
		dc_disk_remove(d, name, strlen(name));
		dc_log(d->log, DC_LOG_ERROR, "cannot write value file %s: %s",
		       name, dc_strerror(rc));
	}
	return rc;
}

int dc_disk_store(const struct dc_disk *d, const struct dc_value *v,
		  int64_t min_file_size, struct dc_store *out)
{
	size_t ncp;
	int fd, rc;

	rc = dc_disk_check_value(v);
	if (rc)
		return rc;
	out->size = 0;
	out->has_file = 0;
	out->name[0] = '\0';
	out->inl = v;
	switch (v->type) {
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT:
		out->mode = DC_MODE_RAW;
		return 0;
	case DC_TYPE_TEXT:
		if (!dc_utf8_check(v->data, v->len, &ncp))
			return DC_INVAL;
		/* The threshold counts code points, as Python's len(str). */
		if ((int64_t)ncp < min_file_size) {
			if (v->len > INT_MAX)
				return DC_INVAL;
			out->mode = DC_MODE_RAW;
			return 0;
		}
		out->mode = DC_MODE_TEXT;
		break;
	case DC_TYPE_BYTES:
		if ((int64_t)v->len < min_file_size) {
			if (v->len > INT_MAX)
				return DC_INVAL;
			out->mode = DC_MODE_RAW;
			return 0;
		}
		out->mode = DC_MODE_BINARY;
		break;
	default:
		if ((int64_t)v->len < min_file_size) {
			if (v->len > INT_MAX)
				return DC_INVAL;
			out->mode = DC_MODE_PICKLE;
			return 0;
		}
		out->mode = DC_MODE_PICKLE;
		break;
	}
	rc = new_file(d, out->name, &fd);
	if (rc)
		return rc;
	rc = write_all(fd, v->data, v->len);
	rc = finish_file(d, fd, out->name, rc);
	if (rc)
		return rc;
	out->has_file = 1;
	out->size = (int64_t)v->len;
	out->inl = NULL;
	return 0;
}

int dc_disk_store_fd(const struct dc_disk *d, int src, struct dc_store *out)
{
	const size_t chunk = 1u << 20;
	char *tmp = NULL;
	int64_t total = 0;
	ssize_t n;
	int fd, rc;

	out->mode = DC_MODE_BINARY;
	out->has_file = 0;
	out->inl = NULL;
	rc = new_file(d, out->name, &fd);
	if (rc)
		return rc;
	/* Try an in-kernel copy first; fall back to read/write for pipes
	 * and filesystems that refuse. */
	for (;;) {
		n = copy_file_range(src, NULL, fd, NULL, chunk, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (total == 0 &&
			    (errno == EXDEV || errno == EINVAL ||
			     errno == ENOSYS || errno == EOPNOTSUPP ||
			     errno == EBADF || errno == ESPIPE))
				break;
			rc = errno;
			goto out;
		}
		if (n == 0)
			goto out;
		total += n;
	}
	tmp = malloc(chunk);
	if (!tmp) {
		rc = ENOMEM;
		goto out;
	}
	for (;;) {
		n = read(src, tmp, chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = errno;
			goto out;
		}
		if (n == 0)
			break;
		rc = write_all(fd, tmp, (size_t)n);
		if (rc)
			goto out;
		total += n;
	}
out:
	free(tmp);
	rc = finish_file(d, fd, out->name, rc);
	if (rc)
		return rc;
	out->has_file = 1;
	out->size = total;
	return 0;
}

/* Copy a column value into a NUL-terminated path, refusing unsafe ones. */
static int column_path(const struct dc_disk *d, const char *name, size_t len,
		       char path[DC_PATH_MAX])
{
	if (!dc_disk_path_ok(name, len)) {
		dc_log(d->log, DC_LOG_WARNING,
		       "refusing unsafe value file name '%.*s'",
		       (int)(len > 200 ? 200 : len), name ? name : "");
		return DC_UNSAFE;
	}
	memcpy(path, name, len);
	path[len] = '\0';
	return 0;
}

int dc_disk_open(const struct dc_disk *d, const char *name, size_t len,
		 int *fdp)
{
	char path[DC_PATH_MAX];
	int fd, rc;

	rc = column_path(d, name, len, path);
	if (rc)
		return rc;
	fd = dc_disk_safe_open(d->dirfd, path, O_RDONLY, 0);
	if (fd < 0)
		return fd == -ELOOP || fd == -EXDEV ? DC_UNSAFE : -fd;
	*fdp = fd;
	return 0;
}

int dc_disk_read_fd(int fd, struct dc_buf *buf, size_t off, size_t *lenp)
{
	struct stat st;
	size_t len = 0, want;
	ssize_t n;
	int rc;

	if (fstat(fd, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EISDIR;
	want = (size_t)st.st_size;
	for (;;) {
		rc = dc_buf_reserve(buf, off + want + 1);
		if (rc)
			return rc;
		n = read(fd, buf->data + off + len, want - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/* A file that grew: keep reading in larger steps. */
		if (len == want)
			want += 4096;
	}
	buf->data[off + len] = '\0';
	*lenp = len;
	return 0;
}

void dc_disk_remove(const struct dc_disk *d, const char *name, size_t len)
{
	char path[DC_PATH_MAX];
	char *slash;
	int pfd;

	if (!name || column_path(d, name, len, path))
		return;
	/* Unlink relative to a safely opened parent, so that a symlinked
	 * directory component can never redirect the unlink. */
	for (int leaf = 1;; leaf = 0) {
		slash = strrchr(path, '/');
		if (!slash) {
			unlinkat(d->dirfd, path, leaf ? 0 : AT_REMOVEDIR);
			return;
		}
		*slash = '\0';
		pfd =
		    dc_disk_safe_open(d->dirfd, path, O_PATH | O_DIRECTORY, 0);
		if (pfd < 0)
			return;
		if (unlinkat(pfd, slash + 1, leaf ? 0 : AT_REMOVEDIR) < 0 &&
		    !leaf) {
			close(pfd);
			return;
		}
		close(pfd);
	}
}

/* Open the directory part of the relative path in @path (modified: the
 * last '/' becomes NUL) below @dirfd without following symlinks.  *leaf
 * points at the last component.  Returns a descriptor or a negated
 * errno; a name without '/' gets a duplicate of @dirfd. */
static int open_parent(int dirfd, char *path, const char **leaf)
{
	char *slash = strrchr(path, '/');
	int fd;

	if (!slash) {
		*leaf = path;
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		return fd < 0 ? -errno : fd;
	}
	*slash = '\0';
	*leaf = slash + 1;
	return dc_disk_safe_open(dirfd, path, O_PATH | O_DIRECTORY, 0);
}

static int unsafe_or_errno(int negerr)
{
	return negerr == -ELOOP || negerr == -EXDEV ? DC_UNSAFE : -negerr;
}

int dc_disk_link(const struct dc_disk *from, const char *name, size_t len,
		 const struct dc_disk *to, char newname[DC_FNAME_SIZE])
{
	char src[DC_PATH_MAX], dst[DC_FNAME_SIZE];
	const char *sleaf, *dleaf;
	struct stat a, b;
	int sfd = -1, dfd = -1, fd, rc, made = 0;

	rc = column_path(from, name, len, src);
	if (rc)
		return rc;
	/* The file itself, opened safely, is what must get the new name:
	 * its identity is compared with the link's afterwards, so that a
	 * symlink swapped in meanwhile can never link a foreign file. */
	fd = dc_disk_safe_open(from->dirfd, src, O_PATH, 0);
	if (fd < 0) {
		rc = unsafe_or_errno(fd);
		goto out;
	}
	rc = fstat(fd, &a) < 0 ? errno : S_ISREG(a.st_mode) ? 0 : DC_UNSAFE;
	close(fd);
	if (rc)
		goto out;
	sfd = open_parent(from->dirfd, src, &sleaf);
	if (sfd < 0) {
		rc = unsafe_or_errno(sfd);
		goto out;
	}
	/* As new_file(): a fresh name, directories re-created, since a
	 * concurrent remover may delete empty ones at any time. */
	for (int attempt = 0; attempt < 10; attempt++) {
		rc = dc_disk_new_name(newname);
		if (!rc)
			rc = dc_disk_make_dirs(to, newname);
		if (rc)
			break;
		made = 1;
		memcpy(dst, newname, DC_FNAME_SIZE);
		dfd = open_parent(to->dirfd, dst, &dleaf);
		if (dfd < 0) {
			rc = -dfd;
			dfd = -1;
			if (rc == ENOENT)
				continue;
			break;
		}
		if (linkat(sfd, sleaf, dfd, dleaf, 0) == 0) {
			rc = 0;
			break;
		}
		rc = errno;
		close(dfd);
		dfd = -1;
		if (rc != EEXIST && rc != ENOENT)
			break;
		/* ENOENT: our directory vanished, or the source did. */
		if (rc == ENOENT &&
		    faccessat(sfd, sleaf, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			break;
	}
	if (rc)
		goto out;
	if (fstatat(dfd, dleaf, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		unlinkat(dfd, dleaf, 0);
		rc = DC_UNSAFE;
	}
out:
	if (rc == DC_UNSAFE || (rc > 0 && rc != ENOENT))
		dc_log(from->log,
		       rc == DC_UNSAFE ? DC_LOG_WARNING : DC_LOG_ERROR,
		       "cannot link value file '%.*s' into another shard: %s",
		       (int)(len > 200 ? 200 : len), name ? name : "",
		       dc_strerror(rc));
	/* Remove directories made for nothing; an EEXIST name is not
	 * ours. */
	if (rc && made && rc != EEXIST)
		dc_disk_remove(to, newname, strlen(newname));
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
