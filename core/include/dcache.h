/* dcache.h - libdcache: a disk cache directory-compatible with Python DiskCache
 * SPDX-License-Identifier: MIT
 *
 * This header is the whole contract of libdcache.  Anything not declared
 * here is private.
 *
 * A cache directory written by libdcache is a Python DiskCache 5.x
 * directory: a plain Cache (cache.db at the top, value files in ab/cd/...)
 * or a FanoutCache (shards 000/, 001/, ... each a plain Cache).  Python
 * DiskCache and libdcache may open one directory at the same time and see
 * each other's data.
 *
 * Conventions
 *  - Functions return int: 0 on success, a negative DC_* code for library
 *    conditions, or a positive errno passed through from the OS.
 *    dc_strerror() describes both.  A cache miss (DC_NOTFOUND) is a
 *    result, not a failure: it is never logged.
 *  - Pointers passed in are borrowed for the duration of the call; what
 *    the library keeps, it copies.  Results are written into caller-owned
 *    storage (struct dc_buf, struct dc_item) so that a hot loop allocates
 *    nothing once its buffer has grown.
 *  - Threads: a dc_cache handle may be used by any number of threads at
 *    once, except where a function says otherwise.  Several handles and
 *    several processes may open one directory.  After fork() the child may
 *    keep using a handle it inherited: it opens fresh SQLite connections.
 *    Inherited connections that were idle (or held by the forking
 *    thread's transaction) are closed in the child, as Python DiskCache
 *    does, which never affects the parent's locks or data; ones in use by
 *    other threads are abandoned.  A transaction open at fork() belongs
 *    to the parent: in the child it is gone.
 *  - The library never prints and never aborts; messages go to the log
 *    callback given in struct dc_options.
 */
#ifndef DCACHE_H
#define DCACHE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DC_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Errors                                                             */
/* ------------------------------------------------------------------ */

enum {
	DC_OK = 0,
	/* Key missing or expired, queue empty, cache empty, iterator done. */
	DC_NOTFOUND = -30800,
	/* The database stayed locked for the handle's timeout (Python's
	 * Timeout).  Only the start of a write transaction reports it. */
	DC_TIMEOUT = -30801,
	/* A bad argument: malformed key, invalid UTF-8 in a text value,
	 * unknown setting value, wrong flag combination. */
	DC_INVAL = -30802,
	/* add(): the key exists and is alive.  Also an adopted file that
	 * already is a value file. */
	DC_EXISTS = -30803,
	/* incr()/decr(): the result does not fit in int64; nothing changed. */
	DC_OVERFLOW = -30804,
	/* The stored value's type does not allow the operation (incr of a
	 * text value, for example). */
	DC_TYPE = -30805,
	/* The database or the directory is malformed: unexpected schema, a
	 * row that cannot be decoded, a value file of the wrong size. */
	DC_CORRUPT = -30806,
	/* A filename column points outside the cache directory (absolute,
	 * "..", or through a symlink).  The file is never opened. */
	DC_UNSAFE = -30807,
	/* The directory's layout does not match what was asked for (for
	 * example a shard count that differs from the existing shards). */
	DC_LAYOUT = -30808,
	/* Any other SQLite error; the log callback receives SQLite's text. */
	DC_SQLITE = -30809,
	/* Releasing an RLock or a BoundedSemaphore the caller does not hold
	 * (Python's "cannot release un-acquired lock/semaphore"). */
	DC_NOTHELD = -30810,
};

/* dc_strerror - describe a return code of this library.
 * @err: a DC_* code, or a positive errno.
 * Returns a static string; never NULL.  Any thread. */
const char *dc_strerror(int err);

/* dc_version - the library version, DC_VERSION, and SQLite's.
 * Returns a static string such as "libdcache 0.1.0 (SQLite 3.40.1)". */
const char *dc_version(void);

/* ------------------------------------------------------------------ */
/* Values, keys and tags                                              */
/* ------------------------------------------------------------------ */

/* The native types, stored exactly as Python DiskCache stores them:
 *   INT    int64          RAW INTEGER column
 *   FLOAT  double         RAW REAL column (a NaN value reads back as NONE)
 *   TEXT   UTF-8 text     RAW TEXT column, or a MODE_TEXT value file when
 *                         it has disk_min_file_size code points or more
 *   BYTES  byte string    RAW BLOB column, or a MODE_BINARY value file
 *   PICKLE pickle bytes   MODE_PICKLE (inline or file); written by Python
 *                         for every other type and never interpreted here
 * NONE means "no value": a NULL tag, a NULL column. */
enum dc_type {
	DC_TYPE_NONE = 0,
	DC_TYPE_INT = 1,
	DC_TYPE_FLOAT = 2,
	DC_TYPE_TEXT = 3,
	DC_TYPE_BYTES = 4,
	DC_TYPE_PICKLE = 5,
};

/* dc_type_name - "none", "int", "float", "str", "bytes" or "pickle"
 * (DiskCache's Python names), or NULL for an unknown value. */
const char *dc_type_name(enum dc_type type);

/* dc_type_parse - the inverse of dc_type_name; also accepts "text".
 * Returns 0 and sets *type, or DC_INVAL. */
int dc_type_parse(const char *name, enum dc_type *type);

/* A key, a value or a tag.  As an input its data is borrowed for the
 * call.  As an output its data points into the dc_buf given with it and
 * stays valid until that buffer is next used or released.
 * Text need not be NUL-terminated (len counts bytes); output text and
 * bytes are always followed by a NUL byte that len does not count. */
struct dc_value {
	enum dc_type type;
	int64_t i;        /* DC_TYPE_INT */
	double f;         /* DC_TYPE_FLOAT */
	const void *data; /* DC_TYPE_TEXT, DC_TYPE_BYTES, DC_TYPE_PICKLE */
	size_t len;
};

static inline struct dc_value dc_int(int64_t i)
{
	struct dc_value v = { DC_TYPE_INT, i, 0.0, NULL, 0 };
	return v;
}

static inline struct dc_value dc_float(double f)
{
	struct dc_value v = { DC_TYPE_FLOAT, 0, f, NULL, 0 };
	return v;
}

/* dc_text - a text value from a NUL-terminated UTF-8 string. */
static inline struct dc_value dc_text(const char *s)
{
	struct dc_value v = { DC_TYPE_TEXT, 0, 0.0, s, strlen(s) };
	return v;
}

static inline struct dc_value dc_textn(const char *s, size_t len)
{
	struct dc_value v = { DC_TYPE_TEXT, 0, 0.0, s, len };
	return v;
}

static inline struct dc_value dc_bytes(const void *p, size_t len)
{
	struct dc_value v = { DC_TYPE_BYTES, 0, 0.0, p, len };
	return v;
}

static inline struct dc_value dc_pickle(const void *p, size_t len)
{
	struct dc_value v = { DC_TYPE_PICKLE, 0, 0.0, p, len };
	return v;
}

/* A caller-owned, growable buffer that results are written into.
 * Initialise with dc_buf_init() (or DC_BUF_INIT), reuse it across calls,
 * free it with dc_buf_release().  The library grows it with realloc. */
struct dc_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define DC_BUF_INIT                                                            \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

void dc_buf_init(struct dc_buf *buf);
/* dc_buf_release - free the buffer's memory and re-initialise it.
 * Accepts NULL. */
void dc_buf_release(struct dc_buf *buf);

/* "No expiry": pass as @expire to writes; reported as expire_time.
 * (NaN is what SQLite turns into NULL, exactly as Python's expire=None.) */
#define DC_NO_EXPIRE ((double)NAN)

/* What a read reports about a key.  Filled by dc_cache_get, _pop, _pull,
 * _peek, _peekitem and dc_iter_next.  Strings point into the dc_buf passed
 * with the call. */
struct dc_item {
	struct dc_value key; /* pull, peek, peekitem, iteration only */
	/* The value.  With DC_NOVALUE, with DC_FD for a file-backed value,
	 * and in iteration without DC_VALUES, only what the row itself
	 * holds is reported:
	 * value.type is the stored type (INT, FLOAT, TEXT, BYTES, PICKLE),
	 * value.i / value.f hold the number of an INT / FLOAT, and value.data
	 * is NULL with value.len 0 for TEXT, BYTES and PICKLE (size has the
	 * length).  So the type is known without reading the value. */
	struct dc_value value;
	struct dc_value tag; /* type NONE: no tag */
	double expire_time;  /* absolute Unix time; NaN (isnan) if none */
	double store_time;
	double access_time;
	int64_t access_count;
	/* Length of the value in bytes: the file's length for file-backed
	 * values, the length of text/bytes/pickle data, 0 for int/float. */
	uint64_t size;
	int file_backed; /* 1 if the value lives in a value file */
	/* With DC_FD and a file-backed value: a read-only descriptor of the
	 * value file (O_CLOEXEC), owned by the caller, who closes it.  It
	 * keeps reading the same bytes if the key is replaced or deleted.
	 * Otherwise -1. */
	int fd;
};

/* ------------------------------------------------------------------ */
/* Opening                                                            */
/* ------------------------------------------------------------------ */

typedef struct dc_cache dc_cache;

enum dc_log_level {
	DC_LOG_ERROR = 3,
	DC_LOG_WARNING = 4,
	DC_LOG_INFO = 6,
	DC_LOG_DEBUG = 7,
};

/* A log callback.  Called from whatever thread hit the condition; it must
 * be thread-safe.  @msg is borrowed for the call. */
typedef void (*dc_log_fn)(void *arg, enum dc_log_level level, const char *msg);

/* A setting passed at open: overrides what the database holds and is
 * written back for every later opener, as DiskCache does. */
struct dc_setting {
	const char *name; /* e.g. "size_limit", "eviction_policy" */
	struct dc_value value;
};

struct dc_serializer;

/* How to open.  Zero-initialise, then set what you need; a NULL
 * struct dc_options means all defaults. */
struct dc_options {
	/* 0: detect.  An existing directory is opened as it is: cache.db
	 *    at the top is a plain Cache; shard directories 000/ ... make a
	 *    FanoutCache of that many shards.  A new or empty directory
	 *    becomes a plain Cache.
	 * 1 or more: a FanoutCache of exactly this many shards; an existing
	 *    directory with another layout fails with DC_LAYOUT.
	 * DC_SHARDS_PLAIN: a plain Cache; an existing FanoutCache fails with
	 *    DC_LAYOUT. */
	int shards;
	/* Busy timeout in seconds; 0 means DiskCache's default (60 for a
	 * plain Cache, 0.010 for FanoutCache shards). */
	double timeout;
	/* Mode of directories the library creates; 0 means 0700.  Value
	 * files are created with the same mode less the execute bits. */
	unsigned dir_mode;
	/* Settings to apply at open (see the settings section). */
	const struct dc_setting *settings;
	size_t nsettings;
	dc_log_fn log;
	void *log_arg;
	/* A value serializer (DiskCache's custom Disk), or NULL for none.
	 * Borrowed for the life of the handle (and of the handles it opens
	 * with dc_cache_open_sub, dc_deque_open_sub, dc_index_open_sub,
	 * which inherit it unless their own options name one). */
	const struct dc_serializer *serializer;
};

#define DC_SHARDS_PLAIN (-1)

/* dc_cache_open - open or create a cache directory.
 * @dir: path of the directory (borrowed; created with its parents if
 *       missing).
 * @opts: options, or NULL for defaults (borrowed).
 * @out: receives the handle, to be closed with dc_cache_close().
 * Returns 0, DC_LAYOUT, DC_INVAL (bad setting name or value), DC_CORRUPT
 * (not a DiskCache database), DC_TIMEOUT, DC_SQLITE, or an errno (EACCES,
 * ENOTDIR, ENOSPC ...).  On error *out is NULL. */
int dc_cache_open(const char *dir, const struct dc_options *opts,
		  dc_cache **out);

/* dc_cache_close - close every connection of the handle and free it.
 * Accepts NULL.  No other thread may be using the handle.  An open
 * transaction is rolled back. */
void dc_cache_close(dc_cache *cache);

/* FanoutCache sub-collections, each an independent plain Cache below the
 * FanoutCache directory, at exactly the paths Python uses. */
enum dc_sub {
	DC_SUB_CACHE = 0, /* DIR/cache/NAME (timeout 60 s) */
	DC_SUB_DEQUE = 1, /* DIR/deque/NAME (eviction_policy "none") */
	DC_SUB_INDEX = 2, /* DIR/index/NAME (eviction_policy "none") */
};

/* dc_cache_open_sub - open FanoutCache.cache(name), .deque(name) or
 * .index(name).
 * @parent: an open handle (plain or fanout; the path is relative to its
 *          directory).
 * @name: '/'-separated name; each part becomes a directory.  Empty parts,
 *        "." and ".." are DC_INVAL.
 * @opts: as for dc_cache_open; shards must be 0 or DC_SHARDS_PLAIN.
 * @out: receives an independent handle, closed with dc_cache_close(). */
int dc_cache_open_sub(dc_cache *parent, enum dc_sub kind, const char *name,
		      const struct dc_options *opts, dc_cache **out);

/* dc_cache_directory - the directory as given to open (borrowed; lives
 * as long as the handle). */
const char *dc_cache_directory(const dc_cache *cache);

/* dc_cache_shards - the number of shards, or 0 for a plain Cache. */
int dc_cache_shards(const dc_cache *cache);

/* dc_cache_shard_of - the shard a key belongs to (DiskCache's
 * Disk.hash(key) % shards), or 0 for a plain Cache; negative DC_INVAL for
 * a malformed key. */
int dc_cache_shard_of(const dc_cache *cache, const struct dc_value *key);

/* dc_key_hash - DiskCache's Disk.hash() of a key: adler32 of text, bytes,
 * pickle bytes and big-endian doubles, floor-modulo 0xFFFFFFFF of
 * integers.  Returns 0 and sets *hash, or DC_INVAL. */
int dc_key_hash(const struct dc_value *key, uint32_t *hash);

/* ------------------------------------------------------------------ */
/* Flags                                                              */
/* ------------------------------------------------------------------ */

enum dc_flags {
	/* Retry the write transaction until the database is free instead of
	 * returning DC_TIMEOUT (DiskCache's retry=True). */
	DC_RETRY = 1 << 0,
	/* get/pop/pull/peek/peekitem: return a file-backed value as an open
	 * descriptor in item->fd instead of reading it (DiskCache's
	 * read=True).  Inline values are returned as usual. */
	DC_FD = 1 << 1,
	/* get and iteration: report metadata only; get neither counts a hit
	 * or miss nor updates access time or count. */
	DC_NOVALUE = 1 << 2,
	/* set, set_fd, set_file: behave as add (DC_EXISTS if alive). */
	DC_ADD = 1 << 3,
	/* iteration: newest first. */
	DC_REVERSE = 1 << 4,
	/* iteration: in key sort order (iterkeys) instead of insertion
	 * order. */
	DC_SORTED = 1 << 5,
	/* iteration: skip expired keys (DiskCache's iterators include
	 * them). */
	DC_ALIVE = 1 << 6,
	/* push/pull/peek: work at the front instead of the default end
	 * (push defaults to the back, pull and peek to the front). */
	DC_FRONT = 1 << 7,
	DC_BACK = 1 << 8,
	/* peekitem: the first item instead of the last. */
	DC_FIRST = 1 << 9,
	/* iteration: also read each key's value, as dc_cache_get does
	 * (statistics and access time included), skipping keys that were
	 * removed or expired meanwhile. */
	DC_VALUES = 1 << 10,
};

/* ------------------------------------------------------------------ */
/* Reading                                                            */
/* ------------------------------------------------------------------ */

/* dc_cache_get - read a live key (DiskCache's get).
 * @key: the key; keys compare as SQLite does, so int 1 and float 1.0 are
 *       one key (in a plain Cache; a FanoutCache may place them apart).
 * @buf: receives text/bytes/pickle data and the tag (may be NULL with
 *       DC_NOVALUE when the tag is not wanted).
 * @item: receives the value and its metadata (item->key untouched).
 * @flags: DC_FD, DC_NOVALUE, DC_RETRY.
 * With statistics on, or an eviction policy that tracks access, a hit or
 * miss is recorded in a write transaction (so DC_TIMEOUT is possible on a
 * plain Cache; a FanoutCache reports a timeout as a miss, as Python does).
 * A value file that vanished or cannot be read counts as a miss; one
 * whose length differs from the row's size is DC_CORRUPT.
 * Returns 0, DC_NOTFOUND, DC_INVAL, DC_TIMEOUT, DC_CORRUPT, DC_UNSAFE,
 * ENOMEM, DC_SQLITE. */
int dc_cache_get(dc_cache *cache, const struct dc_value *key,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags);

/* dc_cache_contains - 0 if the key is alive, else DC_NOTFOUND (or an
 * error).  No transaction, no statistics. */
int dc_cache_contains(dc_cache *cache, const struct dc_value *key);

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

/* dc_cache_set - store a value (DiskCache's set; with DC_ADD, add).
 * @value: DC_TYPE_INT, _FLOAT, _TEXT (valid UTF-8), _BYTES or _PICKLE.
 *         Text of disk_min_file_size code points or more, and bytes or
 *         pickle of that many bytes, go to a value file; the rest inline.
 * @expire: seconds from now until the key expires, or DC_NO_EXPIRE.
 *          0 or less gives an already-expired key.
 * @tag: NULL or a tag of type INT, FLOAT, TEXT or BYTES.
 * @flags: DC_RETRY, DC_ADD.
 * The value file, if any, is written completely before the row is
 * committed; a reader never sees a half-written value.  The write-time
 * cull (cull_limit, size_limit) runs in the same transaction.
 * Returns 0, DC_EXISTS (DC_ADD only), DC_INVAL, DC_TIMEOUT, ENOSPC or
 * another errno, DC_SQLITE.  On any error nothing changed. */
int dc_cache_set(dc_cache *cache, const struct dc_value *key,
		 const struct dc_value *value, double expire,
		 const struct dc_value *tag, unsigned flags);

/* dc_cache_add - dc_cache_set with DC_ADD: 0 if stored, DC_EXISTS if the
 * key is alive (its value unchanged). */
int dc_cache_add(dc_cache *cache, const struct dc_value *key,
		 const struct dc_value *value, double expire,
		 const struct dc_value *tag, unsigned flags);

/* dc_cache_set_fd - store the bytes read from @fd up to end of file as a
 * file-backed DC_TYPE_BYTES value, whatever their length (DiskCache's
 * set(read=True)).  @fd is borrowed and read from its current offset.
 * Returns as dc_cache_set, plus read errors as errno. */
int dc_cache_set_fd(dc_cache *cache, const struct dc_value *key, int fd,
		    double expire, const struct dc_value *tag, unsigned flags);

/* dc_cache_mkstemp - create an empty temporary file inside the cache
 * directory, to be filled by the caller and then adopted with
 * dc_cache_set_file() without copying.
 * @path: receives the file's absolute path, NUL-terminated.
 * @size: size of @path; 4096 is always enough.
 * The file is DIR/cache.db-tmp-<16 hex digits> (DIR being the FanoutCache
 * root for a FanoutCache): Python's check() ignores names containing
 * "cache.db", and so does dc_cache_check() until the file is a day old.
 * Returns an open read-write descriptor (O_CLOEXEC), owned by the caller,
 * or a negative DC_* code / negated errno.  A temporary file that is
 * never adopted must be unlinked by the caller; check(fix) removes stale
 * ones. */
int dc_cache_mkstemp(dc_cache *cache, char *path, size_t size);

/* dc_cache_set_file - make the file at @path the value of @key, by
 * renaming it into the value-file layout and committing the row in one
 * transaction.  The file must be a regular file on the cache directory's
 * filesystem (dc_cache_mkstemp makes one); it is never copied.
 * @type: DC_TYPE_BYTES, DC_TYPE_TEXT (must be valid UTF-8; not checked
 *        beyond the type) or DC_TYPE_PICKLE.
 * On success the file belongs to the cache.  On failure it is left at
 * @path, unchanged, for the caller to retry or unlink.
 * Returns as dc_cache_set, plus EXDEV if @path is on another filesystem. */
int dc_cache_set_file(dc_cache *cache, const struct dc_value *key,
		      const char *path, enum dc_type type, double expire,
		      const struct dc_value *tag, unsigned flags);

/* dc_cache_touch - set a live key's expiry to @expire seconds from now
 * (or DC_NO_EXPIRE).  Returns 0, DC_NOTFOUND, DC_TIMEOUT, ... */
int dc_cache_touch(dc_cache *cache, const struct dc_value *key, double expire,
		   unsigned flags);

/* What dc_cache_set_meta changes (a bit set). */
enum dc_meta {
	DC_META_TAG = 1 << 0,         /* the tag */
	DC_META_EXPIRE_TIME = 1 << 1, /* the absolute expire_time */
};

/* dc_cache_set_meta - change a live key's tag and/or expire_time without
 * touching its value, value file, store/access time or access count.
 * @what: DC_META_TAG, DC_META_EXPIRE_TIME or both; no other bits, not 0.
 * @tag: with DC_META_TAG, the new tag (NULL or type NONE: no tag;
 *       otherwise INT, FLOAT, TEXT or BYTES as for dc_cache_set).
 *       Ignored without DC_META_TAG.
 * @expire_time: with DC_META_EXPIRE_TIME, the absolute Unix time at
 *       which the key expires (a time in the past expires it at once), or
 *       DC_NO_EXPIRE.  Unlike dc_cache_touch it is not relative to now.
 *       Ignored without DC_META_EXPIRE_TIME.
 * @flags: DC_RETRY.
 * Returns 0, DC_NOTFOUND (missing or expired), DC_INVAL (bad key, tag,
 * @what, or an infinite @expire_time), DC_TIMEOUT, DC_SQLITE. */
int dc_cache_set_meta(dc_cache *cache, const struct dc_value *key,
		      unsigned what, const struct dc_value *tag,
		      double expire_time, unsigned flags);

/* dc_cache_rename - give a live key's entry the name @newkey, keeping its
 * value (and value file), type, expire_time, tag, store and access time
 * and access count, in one transaction.  The value is never copied.
 * A live or expired entry at @newkey is replaced and its value file
 * removed after the commit.  With DC_ADD a live @newkey is left alone and
 * DC_EXISTS returned (an expired one is still replaced, as dc_cache_add
 * does).  Renaming a key onto itself (or onto a key SQLite compares
 * equal, such as int 1 and float 1.0 in a plain Cache) stores @newkey's
 * form and changes nothing else; with DC_ADD it is DC_EXISTS.  Neither
 * statistics nor the write-time cull run.
 * Within a plain Cache or one FanoutCache shard the row is updated in
 * place: it keeps its rowid, so its place in insertion order (iteration,
 * peekitem) stays, and its value file stays where it is.
 * When @newkey belongs to another FanoutCache shard, both shards are
 * locked (in index order, so two renames never deadlock), the row is
 * inserted into the target shard (a new rowid: it is the newest there)
 * and deleted from the source.  Its value file gets a second name in the
 * target shard's layout (a hard link: same inode, same filesystem, no
 * copy) before the commits; the old name is unlinked after them, the new
 * one if anything fails.  The target shard commits first, so a crash (or
 * a failing second commit) between the two commits leaves the entry
 * under both names, each readable with its file -- never under neither;
 * a crash after them leaves at most an unreferenced file, which
 * check(fix) removes.  Inside dc_cache_begin() the shards commit in index
 * order at dc_cache_commit() instead, which is not atomic across shards.
 * A filesystem without hard links gives its errno (EPERM, ENOTSUP, ...)
 * and nothing changes.
 * @flags: DC_RETRY, DC_ADD.
 * Returns 0, DC_NOTFOUND (@key missing or expired, or its value file
 * vanished), DC_EXISTS (DC_ADD), DC_INVAL (malformed key), DC_UNSAFE (the
 * entry's filename points outside the cache), DC_TIMEOUT, an errno from
 * linking the file, DC_SQLITE.  On any error nothing changed (except as
 * said for a failing second commit). */
int dc_cache_rename(dc_cache *cache, const struct dc_value *key,
		    const struct dc_value *newkey, unsigned flags);

/* dc_cache_delete - delete a live key.  An expired key is left in place
 * and reported DC_NOTFOUND, as in DiskCache.  Returns 0, DC_NOTFOUND,
 * DC_TIMEOUT, ... */
int dc_cache_delete(dc_cache *cache, const struct dc_value *key,
		    unsigned flags);

/* dc_cache_incr - add @delta to an INT (or FLOAT) value atomically.
 * @dflt: value assumed for a missing or expired key, or NULL for none
 *        (then such a key is DC_NOTFOUND).
 * @result: receives the new value (INT, or FLOAT if the stored value
 *          was a float); may be NULL.
 * Returns 0, DC_NOTFOUND, DC_OVERFLOW (nothing changed), DC_TYPE (the
 * value is not a number), DC_TIMEOUT, ... */
int dc_cache_incr(dc_cache *cache, const struct dc_value *key, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags);

/* dc_cache_decr - dc_cache_incr with -@delta (DC_OVERFLOW for INT64_MIN). */
int dc_cache_decr(dc_cache *cache, const struct dc_value *key, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags);

/* dc_cache_pop - remove a live key and return its value (DiskCache's pop).
 * @buf, @item: as dc_cache_get.  A value file is unlinked after the row
 * is deleted; with DC_FD the descriptor still reads it.
 * Returns 0, DC_NOTFOUND, DC_TIMEOUT (a FanoutCache reports a miss), ... */
int dc_cache_pop(dc_cache *cache, const struct dc_value *key,
		 struct dc_buf *buf, struct dc_item *item, unsigned flags);

/* ------------------------------------------------------------------ */
/* Queue (DiskCache's push, pull, peek) and peekitem                  */
/* ------------------------------------------------------------------ */

/* Python's FanoutCache has no push/pull/peek/peekitem: on a FanoutCache
 * handle these return DC_INVAL (use a plain Cache, or a sub-collection
 * from dc_cache_open_sub()). */

/* dc_cache_push - store @value under the next queue key.
 * @prefix: NULL for integer keys starting at 500000000000000, or a text
 *          prefix P for keys "P-500000000000000" ...
 * @flags: DC_BACK (default) or DC_FRONT, DC_RETRY.
 * @buf, @key: receive the new key (an INT, a FLOAT if a float key was at
 *             the end, or TEXT); both may be NULL.
 * Returns 0, DC_INVAL, DC_TIMEOUT, ... */
int dc_cache_push(dc_cache *cache, const struct dc_value *value,
		  const char *prefix, double expire, const struct dc_value *tag,
		  unsigned flags, struct dc_buf *buf, struct dc_value *key);

/* dc_cache_pull - remove and return the item at the front (default) or
 * with DC_BACK the back of the queue.  Expired items met on the way are
 * deleted.  item->key receives the key.
 * Returns 0, DC_NOTFOUND (empty), DC_TIMEOUT, ... */
int dc_cache_pull(dc_cache *cache, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags);

/* dc_cache_peek - as dc_cache_pull, but the live item stays. */
int dc_cache_peek(dc_cache *cache, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags);

/* dc_cache_peekitem - the last inserted item (DC_FIRST: the first),
 * deleting expired ones met on the way.  Returns 0, DC_NOTFOUND (empty),
 * DC_TIMEOUT, ... */
int dc_cache_peekitem(dc_cache *cache, struct dc_buf *buf, struct dc_item *item,
		      unsigned flags);

/* ------------------------------------------------------------------ */
/* Bulk removal, eviction, size                                       */
/* ------------------------------------------------------------------ */

/* Each removes in batches of 100 rows, each batch its own transaction,
 * and stores the number of rows removed in *count (may be NULL) -- also
 * on DC_TIMEOUT, where it is the count removed before the timeout (a
 * FanoutCache retries and never reports DC_TIMEOUT here). */

/* dc_cache_clear - remove every key. */
int dc_cache_clear(dc_cache *cache, unsigned flags, uint64_t *count);

/* dc_cache_expire - remove keys whose expire_time lies before @now
 * (0: the current time). */
int dc_cache_expire(dc_cache *cache, double now, unsigned flags,
		    uint64_t *count);

/* dc_cache_evict - remove every key with this tag. */
int dc_cache_evict(dc_cache *cache, const struct dc_value *tag, unsigned flags,
		   uint64_t *count);

/* dc_cache_cull - expire, then evict by the eviction policy until the
 * volume is at most size_limit (nothing for policy "none", whose count is
 * reported as 0, as in DiskCache). */
int dc_cache_cull(dc_cache *cache, unsigned flags, uint64_t *count);

/* dc_cache_len - number of rows, expired ones included (DiskCache's
 * len()). */
int dc_cache_len(dc_cache *cache, uint64_t *count);

/* dc_cache_volume - database pages plus value-file bytes, in bytes. */
int dc_cache_volume(dc_cache *cache, uint64_t *bytes);

/* dc_cache_changes - a number that changes whenever a write is
 * committed to the cache by any connection: this handle, another handle,
 * another process, Python DiskCache.  Compare it with an earlier value to
 * learn whether anything may have changed.  It never stays still across a
 * commit that changed a row; it may also move when nothing a reader sees
 * did (a hit counted by statistics, settings rewritten by an opener).
 * Reads and operations that change nothing (a miss, DC_EXISTS) leave it
 * alone.  It is the sum over shards of SQLite's data_version, read on a
 * connection the handle opens for this purpose at the first call (one per
 * shard), plus the number of row-changing transactions this handle
 * committed.  No transaction, no lock, no write; any thread.
 * Returns 0 and sets *counter, DC_INVAL, or an error opening or reading
 * the database (DC_SQLITE, DC_TIMEOUT, an errno). */
int dc_cache_changes(dc_cache *cache, uint64_t *counter);

/* dc_cache_stats - read hits and misses (before any reset), then if
 * @reset zero them, then turn statistics on (@enable 1) or off (0).
 * @hits, @misses may be NULL. */
int dc_cache_stats(dc_cache *cache, int enable, int reset, uint64_t *hits,
		   uint64_t *misses);

/* ------------------------------------------------------------------ */
/* Consistency check                                                  */
/* ------------------------------------------------------------------ */

enum dc_warning {
	DC_WARN_INTEGRITY = 1,    /* PRAGMA integrity_check reported this */
	DC_WARN_FILE_SIZE = 2,    /* a value file's size differs from size */
	DC_WARN_FILE_MISSING = 3, /* a row's value file does not exist */
	DC_WARN_UNKNOWN_FILE = 4, /* a file no row refers to */
	DC_WARN_EMPTY_DIR = 5,    /* an empty directory */
	DC_WARN_COUNT = 6,        /* Settings count differs from the rows */
	DC_WARN_SIZE = 7,         /* Settings size differs from the files */
	DC_WARN_UNSAFE_PATH = 8,  /* a filename points outside the cache */
};

/* A check callback: one call per warning.  @message is borrowed. */
typedef void (*dc_warn_fn)(void *arg, enum dc_warning kind,
			   const char *message);

/* dc_cache_check - verify the database and the value files (DiskCache's
 * check); with @fix, repair: VACUUM, fix sizes, drop rows whose file is
 * missing or unsafe, delete unknown files and empty directories, rewrite
 * count and size.  Files outside the cache directory are never touched.
 * @warn: called once per warning (may be NULL).
 * @nwarnings: receives the number of warnings (may be NULL).
 * Returns 0 (even with warnings), DC_TIMEOUT, ... */
int dc_cache_check(dc_cache *cache, int fix, unsigned flags, dc_warn_fn warn,
		   void *arg, uint64_t *nwarnings);

/* ------------------------------------------------------------------ */
/* Iteration                                                          */
/* ------------------------------------------------------------------ */

typedef struct dc_iter dc_iter;

/* dc_iter_open - iterate over keys.
 * @flags: DC_REVERSE, DC_SORTED (key order: numbers, then text, then
 *         bytes and pickles, as SQLite sorts them), DC_ALIVE, DC_VALUES
 *         (with DC_FD).
 * @prefix, @prefix_len: if @prefix is not NULL, only TEXT keys starting
 *         with these bytes.
 * Insertion-order iteration does not return keys inserted after the
 * iterator was opened.  A FanoutCache iterates shard by shard (sorted
 * order is per shard).  Pages of 100 keys are read without holding a
 * transaction.  The iterator belongs to one thread at a time.
 * Returns 0 and sets *out, or an error. */
int dc_iter_open(dc_cache *cache, unsigned flags, const void *prefix,
		 size_t prefix_len, dc_iter **out);

/* dc_iter_next - the next key, in item->key.  The metadata (expire_time,
 * tag, size, file_backed, times) is filled too, and item->value as with
 * DC_NOVALUE: the stored type, the number of an INT or FLOAT, no data
 * (use dc_cache_get for that).
 * @buf: receives the key's and the tag's data.
 * With DC_VALUES (and DC_FD) at open, item is filled as dc_cache_get
 * fills it, value included, the key's data in @buf too; keys that vanish
 * meanwhile (and NULL keys: Python's float('nan')) are skipped.  If
 * reading a value fails, the error is returned with item->key set, and
 * the next call goes on with the next key.
 * Returns 0, DC_NOTFOUND at the end, or an error. */
int dc_iter_next(dc_iter *it, struct dc_buf *buf, struct dc_item *item);

/* dc_iter_seek - DC_SORTED only: continue with the first text key
 * strictly greater than @text (with DC_REVERSE: strictly less), used to
 * skip a whole "directory".  It never leaves the iterator's prefix range.
 * @text is compared bytewise, as SQLite compares text, and need not be
 * valid UTF-8: "dir/\xff" skips every key below "dir/" (no UTF-8 text
 * contains the byte 0xff).
 * On a FanoutCache it applies to the current shard only.
 * Returns 0 or DC_INVAL (not DC_SORTED, or NULL @text with a length). */
int dc_iter_seek(dc_iter *it, const void *text, size_t len);

/* dc_iter_close - free the iterator.  Accepts NULL. */
void dc_iter_close(dc_iter *it);

/* ------------------------------------------------------------------ */
/* Transactions                                                       */
/* ------------------------------------------------------------------ */

/* dc_cache_begin - start a write transaction (BEGIN IMMEDIATE) for the
 * calling thread; every call on this handle from this thread until the
 * matching commit or rollback is part of it.  Nestable: an inner begin
 * only counts.  On a FanoutCache every shard is locked, in order.
 * @flags: DC_RETRY (required on a FanoutCache, as in DiskCache).
 * Returns 0, DC_TIMEOUT, DC_INVAL, ... */
int dc_cache_begin(dc_cache *cache, unsigned flags);

/* dc_cache_commit - end the innermost begin; the outermost commits and
 * then unlinks value files that became garbage.  Returns 0, DC_INVAL (no
 * transaction), DC_SQLITE (rolled back), ... */
int dc_cache_commit(dc_cache *cache);

/* dc_cache_rollback - abandon the whole transaction of this thread,
 * whatever its depth; value files written within it are removed.
 * Returns 0 or DC_INVAL (no transaction). */
int dc_cache_rollback(dc_cache *cache);

/* ------------------------------------------------------------------ */
/* Settings                                                           */
/* ------------------------------------------------------------------ */

/* The settings of DiskCache 5.x, with their defaults:
 *   statistics 0, tag_index 0, eviction_policy "least-recently-stored"
 *   (or "none", "least-recently-used", "least-frequently-used"),
 *   size_limit 1073741824 (a FanoutCache divides it among its shards),
 *   cull_limit 10, sqlite_auto_vacuum 1, sqlite_cache_size 8192,
 *   sqlite_journal_mode "wal", sqlite_mmap_size 67108864,
 *   sqlite_synchronous 1, disk_min_file_size 32768,
 *   disk_pickle_protocol 5.
 * Unknown names are kept (DiskCache's Django backend stores its own). */

/* dc_cache_setting_get - reload a setting from the database (DiskCache's
 * reset(name)) and return it.  Also reads "count", "size", "hits" and
 * "misses".  On a FanoutCache, shard 0's.
 * Returns 0, DC_NOTFOUND (no such row), ... */
int dc_cache_setting_get(dc_cache *cache, const char *name, struct dc_buf *buf,
			 struct dc_value *value);

/* dc_cache_setting_set - change a setting for this handle and in the
 * database (DiskCache's reset(name, value)); sqlite_* settings run their
 * PRAGMA, tag_index creates or drops the index.  On a FanoutCache every
 * shard gets the same value.
 * Returns 0, DC_INVAL (a known setting with a bad value), DC_NOTFOUND (no
 * such row: DiskCache updates only existing settings), ... */
int dc_cache_setting_set(dc_cache *cache, const char *name,
			 const struct dc_value *value);

/* dc_cache_setting_names - the names of all settings DiskCache defines,
 * NULL-terminated, static. */
const char *const *dc_cache_setting_names(void);

/* ------------------------------------------------------------------ */
/* Custom serialization (DiskCache's Disk subclasses)                 */
/* ------------------------------------------------------------------ */

/* A serializer transforms values on their way into the database and
 * back, as a Python Disk subclass overriding store() and fetch() does
 * (DiskCache's JSONDisk, for example, stores zlib-compressed JSON).  It is
 * installed per handle with struct dc_options.serializer and applies to
 * the values of dc_cache_set/add/get/pop/push/pull/peek/peekitem and of
 * the Deque and Index functions.  Keys, tags and incr/decr are not
 * transformed; dc_cache_set_fd, dc_cache_set_file and values returned as
 * descriptors (DC_FD) or with DC_NOVALUE bypass it (raw bytes, like
 * Python's read=True).
 *
 * Iteration, DC_NOVALUE reads, item->size and item->file_backed describe
 * the stored value.  A sub-collection handle (dc_cache_open_sub and the
 * Deque/Index _open_sub functions) inherits its parent's serializer
 * unless its options name another; to read one without, open its
 * directory with dc_cache_open().  No serializer costs nothing.
 *
 * Nothing in the database records a serializer: every reader of the
 * directory, Python included, must use a matching one (for Python, a Disk
 * subclass; docs/serializers.md has the one matching dc_serializer_zlib).
 *
 * @store: called with the caller's value (not validated: it may be of
 *         any type, NONE included); writes the value to store into *out,
 *         which starts as a copy of *in and whose data may point into
 *         @buf (an empty scratch buffer owned by the library, released
 *         after the write), into *in's data, or at memory of @arg.
 *         Return 0 or an error code, which the write returns without
 *         storing anything.  The result is validated as a value passed
 *         without a serializer would be (DC_INVAL).
 * @fetch: the inverse, called with the stored value (data valid for the
 *         call); writes the caller's value into *out (which starts as a
 *         copy of *in; data in @buf, an empty buffer owned by the
 *         library, in *in's data, or at memory of @arg).  The library
 *         moves it into the caller's buffer, NUL-terminated, keeping the
 *         tag and key valid.  An error code is returned by the read (use
 *         DC_CORRUPT for data that cannot be decoded); for pop and pull
 *         the item is removed all the same, as in Python.
 * Either may be NULL: that direction passes values unchanged.
 * Both are called from whatever thread uses the handle, possibly from
 * several at once. */
struct dc_serializer {
	int (*store)(void *arg, const struct dc_value *in, struct dc_buf *buf,
		     struct dc_value *out);
	int (*fetch)(void *arg, const struct dc_value *in, struct dc_buf *buf,
		     struct dc_value *out);
	void *arg;
};

/* dc_serializer_zlib - a ready-made serializer that stores DC_TYPE_BYTES
 * values zlib-compressed (RFC 1950, as Python's zlib.compress) at @level
 * (0-9, or -1 for zlib's default) and decompresses them when read.  Other
 * types pass unchanged.  Stored bytes that are not a complete zlib stream
 * read as DC_CORRUPT (bytes after a complete stream are ignored, as
 * Python's zlib.decompress does); a value that inflates beyond memory is
 * ENOMEM.  Returns a static serializer, or NULL for a bad @level. */
const struct dc_serializer *dc_serializer_zlib(int level);

/* ------------------------------------------------------------------ */
/* Deque and Index                                                    */
/* ------------------------------------------------------------------ */

/* Python DiskCache's Deque and Index on a plain Cache directory opened
 * with eviction_policy "none" (exactly what Deque(directory=D) and
 * Index(D) write, and what FanoutCache.deque(name) / .index(name) use
 * below DIR/deque/NAME and DIR/index/NAME).  Python and C may use one
 * directory at the same time.
 *
 * A deque keeps its items under the integer queue keys of
 * dc_cache_push() (starting at 500000000000000; the back has the larger
 * keys).  An index is an ordinary cache in insertion (rowid) order.
 * Neither uses expiry or tags.  Every write retries while the database is
 * locked (Python's retry=True), so DC_TIMEOUT is not returned by them.
 *
 * Functions that take a transaction of their own (append with maxlen,
 * set_maxlen, reverse, popitem) nest inside a dc_cache_begin() of the
 * caller on the underlying cache: a miss or a rejected argument leaves
 * the caller's transaction alone, while a failure after a change rolls
 * back the whole transaction of the thread, as dc_cache_rollback().
 *
 * Threads: a handle may be used by any number of threads at once, as a
 * dc_cache, except dc_deque_set_maxlen() and the close functions.
 * Results go into the caller's struct dc_buf / struct dc_item as with
 * dc_cache_get(): item->value holds the value (item->key the key where
 * said), its data valid until @buf is next used.
 *
 * Value equality (dc_deque_remove, dc_deque_count) compares the type and
 * then the number (INT, FLOAT) or the bytes (TEXT, BYTES, PICKLE): int 1
 * and float 1.0 differ, and pickled values are equal only when their
 * pickle bytes are (Python compares the unpickled objects). */

typedef struct dc_deque dc_deque;
typedef struct dc_index dc_index;

/* No maxlen: the deque is unbounded (Python's maxlen=None). */
#define DC_DEQUE_UNBOUNDED (-1)

/* dc_deque_open - open or create the deque in directory @dir.
 * @opts: as for dc_cache_open (NULL: defaults); shards must be 0 or
 *        DC_SHARDS_PLAIN.  eviction_policy "none" is always applied.
 * @out: receives the handle, closed with dc_deque_close().  The deque is
 *       unbounded until dc_deque_set_maxlen().
 * Returns as dc_cache_open(); DC_LAYOUT if @dir is a FanoutCache. */
int dc_deque_open(const char *dir, const struct dc_options *opts,
		  dc_deque **out);

/* dc_deque_open_sub - FanoutCache.deque(name): the deque in
 * DIR/deque/NAME of @parent's directory.  @name as for
 * dc_cache_open_sub(). */
int dc_deque_open_sub(dc_cache *parent, const char *name,
		      const struct dc_options *opts, dc_deque **out);

/* dc_deque_close - close the deque and its cache.  Accepts NULL. */
void dc_deque_close(dc_deque *d);

/* dc_deque_cache - the underlying cache, borrowed for the life of @d:
 * use it for transactions (dc_cache_begin/commit, which make a series of
 * deque calls atomic) and iteration (DC_SORTED gives deque order). */
dc_cache *dc_deque_cache(dc_deque *d);

/* dc_deque_set_maxlen - bound the deque to @maxlen items
 * (DC_DEQUE_UNBOUNDED: no bound), held in this handle only (Python does
 * not store it either).  Items beyond it are removed from the front, in
 * one transaction.  Returns 0, DC_INVAL (@maxlen below -1), ... */
int dc_deque_set_maxlen(dc_deque *d, int64_t maxlen);

/* dc_deque_maxlen - the bound, or DC_DEQUE_UNBOUNDED. */
int64_t dc_deque_maxlen(const dc_deque *d);

/* dc_deque_append - add @value at the back; if the deque then holds more
 * than maxlen items, remove one from the front, in the same transaction.
 * dc_deque_appendleft adds at the front and removes from the back.
 * Returns 0, DC_INVAL (bad value), ENOSPC, DC_SQLITE, ... */
int dc_deque_append(dc_deque *d, const struct dc_value *value);
int dc_deque_appendleft(dc_deque *d, const struct dc_value *value);

/* dc_deque_pop - remove and return the back item (dc_deque_popleft: the
 * front one); item->key is its queue key.  Two processes popping one
 * deque never get the same item.  Returns 0, DC_NOTFOUND (empty), ... */
int dc_deque_pop(dc_deque *d, struct dc_buf *buf, struct dc_item *item);
int dc_deque_popleft(dc_deque *d, struct dc_buf *buf, struct dc_item *item);

/* dc_deque_peek - return the back item without removing it
 * (dc_deque_peekleft: the front one).  Returns 0, DC_NOTFOUND (empty),
 * ... */
int dc_deque_peek(dc_deque *d, struct dc_buf *buf, struct dc_item *item);
int dc_deque_peekleft(dc_deque *d, struct dc_buf *buf, struct dc_item *item);

/* dc_deque_len - the number of items.  Returns 0 and sets *count, ... */
int dc_deque_len(dc_deque *d, uint64_t *count);

/* dc_deque_get - the item at @index: 0 is the front, -1 the back.
 * item->value is the value and item->key its queue key (an INT).
 * Items removed by someone else meanwhile are skipped, as in Python.
 * Returns 0, DC_NOTFOUND (out of range), ... */
int dc_deque_get(dc_deque *d, int64_t index, struct dc_buf *buf,
		 struct dc_item *item);

/* dc_deque_set - replace the value at @index (keeping its place).
 * Returns 0, DC_NOTFOUND (out of range), DC_INVAL, ... */
int dc_deque_set(dc_deque *d, int64_t index, const struct dc_value *value);

/* dc_deque_delete - remove the item at @index.
 * Returns 0, DC_NOTFOUND (out of range), ... */
int dc_deque_delete(dc_deque *d, int64_t index);

/* dc_deque_clear - remove every item. */
int dc_deque_clear(dc_deque *d);

/* dc_deque_rotate - rotate @n steps to the right (n > 0: the back item
 * moves to the front, n times) or -@n to the left; @n is taken modulo the
 * length.  An empty deque is left alone.  Each step is a pop and an
 * append, as in Python (not one transaction: wrap it in dc_cache_begin()
 * on dc_deque_cache() for that).  Returns 0, ... */
int dc_deque_rotate(dc_deque *d, int64_t n);

/* dc_deque_reverse - reverse the items in place, in one transaction.
 * Values are not copied: each item's row gets a new, smaller queue key
 * (Python instead rewrites the items at keys from 500000000000000).
 * Returns 0, DC_OVERFLOW (no room left below the smallest key; nothing
 * changed), ENOMEM, ... */
int dc_deque_reverse(dc_deque *d);

/* dc_deque_remove - remove the first item (from the front) equal to
 * @value.  Returns 0, DC_NOTFOUND (none), ... */
int dc_deque_remove(dc_deque *d, const struct dc_value *value);

/* dc_deque_count - the number of items equal to @value, in *count. */
int dc_deque_count(dc_deque *d, const struct dc_value *value, uint64_t *count);

/* dc_deque_extend - append @n values in order, in one transaction (with
 * maxlen, items beyond it leave from the front as with dc_deque_append).
 * dc_deque_extendleft appends each at the front in turn, so the last
 * value ends up first, as in Python.  Returns 0, DC_INVAL (a bad value:
 * nothing stored), ... */
int dc_deque_extend(dc_deque *d, const struct dc_value *values, size_t n);
int dc_deque_extendleft(dc_deque *d, const struct dc_value *values, size_t n);

/* dc_deque_compare - compare the deque with the sequence @values[@n] as
 * Python compares sequences: item by item, the first difference decides,
 * then the shorter one is smaller.  Items compare by value (int 1 equals
 * float 1.0; text with text and bytes with bytes bytewise); a text and a
 * number are unequal, and ordering them is DC_TYPE, as Python's
 * TypeError.  Pickles are equal when their bytes are and cannot be
 * ordered.  *cmp receives -1, 0 or 1.
 * Returns 0, DC_TYPE (only when unequal items cannot be ordered), ... */
int dc_deque_compare(dc_deque *d, const struct dc_value *values, size_t n,
		     int *cmp);

/* dc_deque_iter_open - walk the deque's values front to back (@flags
 * DC_REVERSE: back to front), Python's iter(deque) / reversed(deque):
 * dc_iter_next gives each item as dc_deque_get does (item->key its queue
 * key), skipping items removed meanwhile; dc_iter_close ends it.  Items
 * added at either end after the walk passed there are not seen.
 * Returns 0, DC_INVAL, ENOMEM. */
int dc_deque_iter_open(dc_deque *d, unsigned flags, dc_iter **out);

/* dc_deque_copy - a second handle on the same directory with the same
 * maxlen (Python's copy()).  It shares @d's open cache, and with it the
 * options @d was opened with (dc_deque_cache() returns the same cache, so
 * a transaction begun through one includes the other's calls from that
 * thread); maxlen is each handle's own.  Either may be closed first.
 * Returns 0, DC_INVAL, ENOMEM. */
int dc_deque_copy(dc_deque *d, dc_deque **out);

/* dc_index_open - open or create the index in directory @dir, as
 * dc_deque_open().  Close with dc_index_close(). */
int dc_index_open(const char *dir, const struct dc_options *opts,
		  dc_index **out);

/* dc_index_open_sub - FanoutCache.index(name): DIR/index/NAME. */
int dc_index_open_sub(dc_cache *parent, const char *name,
		      const struct dc_options *opts, dc_index **out);

/* dc_index_close - close the index and its cache.  Accepts NULL. */
void dc_index_close(dc_index *idx);

/* dc_index_cache - the underlying cache, borrowed for the life of @idx:
 * iterate it (insertion order; DC_REVERSE), push/pull on it, make
 * several calls one transaction. */
dc_cache *dc_index_cache(dc_index *idx);

/* dc_index_get - the value of @key in item->value.
 * Returns 0, DC_NOTFOUND, DC_INVAL (malformed key), ... */
int dc_index_get(dc_index *idx, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item);

/* dc_index_set - store @value under @key.  A new key goes last in
 * insertion order; an existing key keeps its place.
 * Returns 0, DC_INVAL, ENOSPC, ... */
int dc_index_set(dc_index *idx, const struct dc_value *key,
		 const struct dc_value *value);

/* dc_index_delete - remove @key.  Returns 0, DC_NOTFOUND, ... */
int dc_index_delete(dc_index *idx, const struct dc_value *key);

/* dc_index_setdefault - the value of @key; if missing, @dflt is stored
 * first (atomically: of two racing callers one value wins and both get
 * it).  Returns 0, DC_INVAL, ... */
int dc_index_setdefault(dc_index *idx, const struct dc_value *key,
			const struct dc_value *dflt, struct dc_buf *buf,
			struct dc_item *item);

/* dc_index_pop - remove @key and return its value.
 * Returns 0, DC_NOTFOUND, ... */
int dc_index_pop(dc_index *idx, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item);

/* dc_index_popitem - remove and return the last inserted item (@flags
 * DC_FIRST: the first), item->key and item->value, in one transaction.
 * Returns 0, DC_NOTFOUND (empty), DC_INVAL (other flags), ... */
int dc_index_popitem(dc_index *idx, unsigned flags, struct dc_buf *buf,
		     struct dc_item *item);

/* dc_index_len - the number of items, in *count. */
int dc_index_len(dc_index *idx, uint64_t *count);

/* dc_index_clear - remove every item. */
int dc_index_clear(dc_index *idx);

/* dc_index_iter_open - walk the index's items in insertion order (@flags
 * DC_REVERSE: newest first), key and value each, Python's
 * index.items(); keys removed meanwhile are skipped, keys inserted after
 * the walk began are not seen.  Read with dc_iter_next, end with
 * dc_iter_close.  Returns 0, DC_INVAL, ENOMEM. */
int dc_index_iter_open(dc_index *idx, unsigned flags, dc_iter **out);

/* dc_index_equal - Python's index == mapping for the @n pairs
 * @keys[i]: @values[i] (distinct keys): the same length, and each key's
 * value equal (items compare as in dc_deque_compare: int 1 equals float
 * 1.0).  With @ordered (comparing with an OrderedDict or another Index)
 * the pairs must also come in the index's insertion order.  *equal
 * receives 1 or 0.  Returns 0, DC_INVAL, or an error reading. */
int dc_index_equal(dc_index *idx, const struct dc_value *keys,
		   const struct dc_value *values, size_t n, int ordered,
		   int *equal);

/* dc_index_peekitem - the last inserted item (@flags DC_FIRST: the
 * first) without removing it.  Returns 0, DC_NOTFOUND (empty), ... */
int dc_index_peekitem(dc_index *idx, unsigned flags, struct dc_buf *buf,
		      struct dc_item *item);

/* dc_index_push, dc_index_pull, dc_index_peek - the queue functions of
 * the underlying cache (dc_cache_push ...; Python's Index.push/pull/peek),
 * always retrying while the database is locked.  @flags: DC_FRONT,
 * DC_BACK. */
int dc_index_push(dc_index *idx, const struct dc_value *value,
		  const char *prefix, unsigned flags, struct dc_buf *buf,
		  struct dc_value *key);
int dc_index_pull(dc_index *idx, const char *prefix, unsigned flags,
		  struct dc_buf *buf, struct dc_item *item);
int dc_index_peek(dc_index *idx, const char *prefix, unsigned flags,
		  struct dc_buf *buf, struct dc_item *item);

/* ------------------------------------------------------------------ */
/* Memoization (DiskCache's memoize and memoize_stampede)             */
/* ------------------------------------------------------------------ */

/* A memoized function caches its result under DiskCache's memoize key:
 * the pickled tuple (name, *args, None, *sorted kwargs flattened[, types])
 * of spec section 7.3, byte for byte what Python's cache.memoize builds
 * (optimized pickle, raw 0).  A C caller and a Python function memoized
 * with the same name and called with equal int, float, str, bytes or None
 * arguments therefore share one cache entry.  (Python pickles a string
 * that appears twice in one call as the same object only when it *is*
 * the same object; this library shares only what CPython always shares
 * -- empty and one-character strings, empty and one-byte bytes -- so a
 * Python call passing one longer string object twice has a different
 * key.  docs/memoize.md has the details.)
 *
 * Arguments are struct dc_value of type INT, FLOAT, TEXT, BYTES or NONE
 * (None).  Results may be INT, FLOAT, TEXT, BYTES or PICKLE for plain
 * memoize, and INT, FLOAT, TEXT, BYTES or NONE with DC_MEMO_STAMPEDE (its
 * stored value is Python's pickled (result, seconds) pair; a Python bool
 * result reads as INT, any other type as DC_TYPE). */

/* A keyword argument: sorted by name in the key, as Python does. */
struct dc_kwarg {
	const char *name; /* UTF-8, NUL-terminated */
	struct dc_value value;
};

/* The memoized function.  It receives the call's arguments and writes
 * its result into *result: its data may be in @buf (owned by the
 * library; grow it with realloc, as any struct dc_buf) or in memory the
 * function keeps valid until the call returns.  Return 0, or an error
 * code: dc_memo_call() returns it and nothing is cached.
 * With DC_MEMO_STAMPEDE it may also run on a background thread of the
 * dc_memo, concurrently with other calls. */
typedef int (*dc_memo_fn)(void *arg, const struct dc_value *args, size_t nargs,
			  const struct dc_kwarg *kwargs, size_t nkwargs,
			  struct dc_buf *buf, struct dc_value *result);

enum dc_memo_flags {
	/* Python's typed=True: type(arg) of each argument joins the key, so
	 * f(3) and f(3.0) are cached apart. */
	DC_MEMO_TYPED = 1 << 0,
	/* memoize_stampede: results are recomputed early, in the
	 * background, with probability rising as expiry nears (below). */
	DC_MEMO_STAMPEDE = 1 << 1,
};

struct dc_memo_opts {
	/* The function's name in the key (Python's name=..., or
	 * "module.qualname" to meet an undecorated-name Python function).
	 * Required; copied. */
	const char *name;
	/* Seconds until a result expires; 0 (or NaN) for never.  A negative
	 * value means results are never stored (Python's expire <= 0).
	 * DC_MEMO_STAMPEDE requires a positive value. */
	double expire;
	/* The tag stored with results, or NULL.  Copied. */
	const struct dc_value *tag;
	/* DC_MEMO_TYPED, DC_MEMO_STAMPEDE. */
	unsigned flags;
	/* DC_MEMO_STAMPEDE: DiskCache's beta (0 means its default, 1).  A hit
	 * is recomputed early when -delta * beta * ln(U) >= ttl, U uniform in
	 * [0, 1), delta the seconds the last computation took and ttl the
	 * seconds left before expiry: one caller wins a short-lived claim
	 * (expiring after delta seconds) and recomputes on a background
	 * thread while every caller keeps getting the cached result.  The
	 * claim is the key (K,), K the memo key tuple: Python's claim holds
	 * a sentinel object C cannot pickle, so a C and a Python caller do
	 * not see each other's claims (each side may recompute once). */
	double beta;
};

typedef struct dc_memo dc_memo;

/* dc_memo_new - memoize @fn on @cache (a plain Cache, a FanoutCache, or
 * dc_index_cache() of an Index).  @opts and @arg are borrowed: @arg must
 * stay valid until dc_memo_free(), and @cache must outlive the memo.
 * Keys are pickled with the cache's disk_pickle_protocol, read here
 * (0 to 5; a negative one is 5, pickle.HIGHEST_PROTOCOL, as in Python).
 * Returns 0 and sets *out, DC_INVAL (no name, a bad tag, flags, or a
 * stampede without a positive expire; a disk_pickle_protocol above 5 or
 * not an integer, which Python's pickle refuses too), ENOMEM, or an
 * error reading the setting. */
int dc_memo_new(dc_cache *cache, const struct dc_memo_opts *opts, dc_memo_fn fn,
		void *arg, dc_memo **out);

/* dc_memo_call - the result of @fn for these arguments: the cached one,
 * or computed by calling @fn and then stored.  A cached result counts as
 * a hit whatever its value.
 * @item: receives the result in item->value (data in @buf) and its
 *        metadata as dc_cache_get reports it (for a fresh result: what
 *        was stored, or only item->value when nothing was).
 * Returns 0, DC_INVAL (a bad argument or result type), the error of @fn,
 * or an error reading or writing the cache (a failed store still returns
 * the computed result and 0, as Python does for a FanoutCache timeout:
 * the error is logged).
 * Any thread; many threads may call one dc_memo at once (two of them
 * missing together both compute, as in Python). */
int dc_memo_call(dc_memo *memo, const struct dc_value *args, size_t nargs,
		 const struct dc_kwarg *kwargs, size_t nkwargs,
		 struct dc_buf *buf, struct dc_item *item);

/* dc_memo_key - the cache key of a call (Python's __cache_key__), as a
 * DC_TYPE_PICKLE value in @buf: pass it to dc_cache_delete() to forget a
 * result.  Returns 0, DC_INVAL, ENOMEM. */
int dc_memo_key(const dc_memo *memo, const struct dc_value *args, size_t nargs,
		const struct dc_kwarg *kwargs, size_t nkwargs,
		struct dc_buf *buf, struct dc_value *key);

/* dc_memo_free - wait for background recomputations to finish, then free
 * the memo.  Accepts NULL.  No other thread may be calling it. */
void dc_memo_free(dc_memo *memo);

/* ------------------------------------------------------------------ */
/* Recipes: Lock, RLock, BoundedSemaphore, Averager, throttle, barrier */
/* ------------------------------------------------------------------ */

/* DiskCache's cross-process recipes, storing exactly what Python's store
 * under the same key, so C and Python processes share them: a Python
 * Lock(cache, 'k') and dc_lock_acquire() on "k" exclude each other.  They
 * work on a plain Cache or a FanoutCache and assume the key is never
 * evicted (use eviction_policy "none", or a key that is not culled).
 * Waiting is a spin with 1 ms sleeps, as in Python.  Values are pickled
 * with the cache's disk_pickle_protocol as Python's are (0 to 5, a
 * negative one meaning 5); above 5 every recipe that pickles is
 * DC_INVAL, as Python's raise ValueError.
 *
 * The key, the expiry and the tag of a recipe: */
struct dc_recipe {
	dc_cache *cache;
	struct dc_value key; /* INT, FLOAT, TEXT or BYTES */
	/* Seconds until the stored state expires (a lock held longer is
	 * released by expiry); 0 or NaN for never. */
	double expire;
	const struct dc_value *tag; /* NULL: no tag */
};

/* How long an acquire waits: */
#define DC_WAIT_FOREVER (-1.0) /* as Python's acquire() */
#define DC_WAIT_NONE    0.0    /* try once */

/* dc_lock_acquire - Python's Lock.acquire: add the key with the value
 * None (pickled), retrying every millisecond for up to @wait seconds.
 * Not reentrant: a second acquire by the holder waits too.
 * Returns 0 (taken), DC_EXISTS (held by someone else after @wait), ...
 * dc_lock_release - delete the key: 0, or DC_NOTHELD if it was not
 * held.  As in Python, any process may release it.
 * dc_lock_locked - 0 if held (the key is alive), DC_NOTFOUND if not. */
int dc_lock_acquire(const struct dc_recipe *r, double wait);
int dc_lock_release(const struct dc_recipe *r);
int dc_lock_locked(const struct dc_recipe *r);

/* dc_rlock_acquire - Python's RLock.acquire: reentrant, owned by this
 * thread of this process ("PID-THREAD", as Python names its owner; the
 * count is kept in the pickled tuple (owner, count)).
 * Returns 0, DC_EXISTS (owned by another after @wait), DC_CORRUPT (the
 * key holds something else), ...
 * dc_rlock_release - decrement the count: 0, DC_NOTHELD (not owned by
 * the caller, or count 0), ... */
int dc_rlock_acquire(const struct dc_recipe *r, double wait);
int dc_rlock_release(const struct dc_recipe *r);

/* dc_semaphore_acquire - Python's BoundedSemaphore(cache, key, value):
 * the key holds the number of free slots as an INT (missing = @value).
 * Returns 0, DC_EXISTS (no slot after @wait), DC_TYPE (not an INT), ...
 * dc_semaphore_release - give a slot back: 0, DC_NOTHELD (all @value
 * slots are already free), ... */
int dc_semaphore_acquire(const struct dc_recipe *r, int64_t value, double wait);
int dc_semaphore_release(const struct dc_recipe *r, int64_t value);

/* dc_averager_add - Python's Averager.add: add @value to the running
 * (total, count) pair, in one transaction.
 * dc_averager_get - total / count in *avg; DC_NOTFOUND when the count is
 * 0 or the key is missing (Python's None).
 * dc_averager_pop - as get, and delete the key. */
int dc_averager_add(const struct dc_recipe *r, double value);
int dc_averager_get(const struct dc_recipe *r, double *avg);
int dc_averager_pop(const struct dc_recipe *r, double *avg);

/* dc_throttle_init - Python's throttle(cache, count, seconds, name) at
 * decoration time: reset the key to (now, @count) so @count calls may
 * proceed at once.
 * dc_throttle_wait - block until a call is allowed (at most @count per
 * @seconds on average, shared by every process using the key), sleeping
 * as Python's wrapper does.  Returns 0, DC_NOTFOUND (never initialised),
 * DC_CORRUPT, ... */
int dc_throttle_init(const struct dc_recipe *r, int64_t count, double seconds);
int dc_throttle_wait(const struct dc_recipe *r, int64_t count, double seconds);

/* What a barrier holds while it runs the function. */
enum dc_barrier_kind {
	DC_BARRIER_LOCK = 0,
	DC_BARRIER_RLOCK = 1,
	DC_BARRIER_SEMAPHORE = 2, /* a BoundedSemaphore of value 1 */
};

/* dc_barrier - Python's barrier(cache, lock_factory, name): run
 * @fn(@arg) holding the lock of @kind on the key (waiting forever), and
 * release it afterwards.  Returns @fn's return value, or an error taking
 * or releasing the lock. */
int dc_barrier(const struct dc_recipe *r, enum dc_barrier_kind kind,
	       int (*fn)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* DCACHE_H */
