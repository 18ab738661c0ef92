/* fanout.c - the public dc_cache_* API: plain Cache and FanoutCache
 * SPDX-License-Identifier: MIT
 *
 * A handle owns one shard (a plain Cache) or N shards (a FanoutCache,
 * directories 000/ 001/ ...).  Keys are routed with DiskCache's
 * Disk.hash() % N, and FanoutCache's special cases are applied here: get
 * and pop report a timeout as a miss, bulk removers retry until done and
 * add up, and size_limit is divided among the shards.
 */
#include "fanout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SIZE_LIMIT 1073741824.0

/* ------------------------------------------------------------------ */
/* Open and close                                                     */
/* ------------------------------------------------------------------ */

static bool exists_at(int dirfd, const char *name, bool want_dir)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return want_dir ? S_ISDIR(st.st_mode) : true;
}

/* Count consecutive shard directories 000, 001, ... of @dir. */
static int count_shards(int dirfd)
{
	char name[16];
	int n = 0;

	for (;;) {
		snprintf(name, sizeof(name), "%03d", n);
		if (!exists_at(dirfd, name, true))
			return n;
		n++;
	}
}

/* Count the shards of a FanoutCache that may be being created right now.
 * Creators make every shard directory first and then the databases in
 * order (Python makes one shard after the other), so the count is taken
 * once the last directory holds its cache.db; a creator that died leaves
 * us waiting at most a few seconds. */
static int count_shards_stable(int dirfd)
{
	struct timespec ms = { 0, 1000000 };
	double deadline = dc_now() + 5.0;
	char db[32];
	int n;

	for (;;) {
		n = count_shards(dirfd);
		if (n == 0)
			return 0;
		snprintf(db, sizeof(db), "%03d/cache.db", n - 1);
		if (exists_at(dirfd, db, false) || dc_now() > deadline)
			return n;
		nanosleep(&ms, NULL);
	}
}

static int check_options(const struct dc_options *o, const struct dc_logger *lg)
{
	if (o->shards < DC_SHARDS_PLAIN || o->shards > 100000)
		return DC_INVAL;
	if (isnan(o->timeout) || o->timeout < 0 || o->timeout > 1e6)
		return DC_INVAL;
	if (o->dir_mode & ~07777u)
		return DC_INVAL;
	if (o->nsettings && !o->settings)
		return DC_INVAL;
	for (size_t i = 0; i < o->nsettings; i++) {
		if (dc_setting_check(o->settings[i].name,
				     &o->settings[i].value)) {
			dc_log(lg, DC_LOG_ERROR, "bad value for setting %s",
			       o->settings[i].name ? o->settings[i].name
						   : "(null)");
			return DC_INVAL;
		}
	}
	return 0;
}

static int open_fanout_shards(struct dc_cache *c, const char *dir,
			      const struct dc_options *o)
{
	struct dc_setting *sets = NULL;
	struct dc_shard_opts so;
	double limit = DEFAULT_SIZE_LIMIT;
	size_t n = 0, plen = strlen(dir) + 8;
	char *path = NULL;
	int rc = 0;

	sets = calloc(o->nsettings + 1, sizeof(*sets));
	path = malloc(plen);
	c->shards = calloc((size_t)c->nshards, sizeof(*c->shards));
	if (!sets || !path || !c->shards) {
		rc = ENOMEM;
		goto out;
	}
	/* FanoutCache passes size_limit / shards (a float) to every shard
	 * on every open, whatever the shards held before. */
	for (size_t i = 0; i < o->nsettings; i++) {
		if (strcmp(o->settings[i].name, "size_limit") == 0) {
			const struct dc_value *v = &o->settings[i].value;

			limit = v->type == DC_TYPE_INT ? (double)v->i : v->f;
			continue;
		}
		sets[n++] = o->settings[i];
	}
	sets[n].name = "size_limit";
	sets[n].value = dc_float(limit / c->nshards);
	n++;
	memset(&so, 0, sizeof(so));
	so.timeout = o->timeout > 0 ? o->timeout : 0.010;
	so.dir_mode = o->dir_mode ? o->dir_mode : 0700;
	so.settings = sets;
	so.nsettings = n;
	so.log = c->log;
	/* Every shard directory first, so that a concurrent opener sees
	 * the whole layout at once (see count_shards_stable()). */
	for (int i = 0; i < c->nshards; i++) {
		snprintf(path, plen, "%s/%03d", dir, i);
		rc = dc_mkdir_p(path, so.dir_mode);
		if (rc)
			goto out;
	}
	for (int i = 0; i < c->nshards; i++) {
		snprintf(path, plen, "%s/%03d", dir, i);
		rc = dc_shard_open(path, &so, &c->shards[i]);
		if (rc)
			goto out;
		c->n = i + 1;
	}
out:
	free(sets);
	free(path);
	return rc;
}

int dc_cache_open(const char *dir, const struct dc_options *opts,
		  dc_cache **out)
{
	static const struct dc_options defaults;
	const struct dc_options *o = opts ? opts : &defaults;
	struct dc_shard_opts so;
	struct dc_cache *c = NULL;
	int rc, has_db, found, fd;

	if (out)
		*out = NULL;
	if (!dir || !*dir || !out)
		return DC_INVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->dirfd = -1;
	c->log.fn = o->log;
	c->log.arg = o->log_arg;
	c->dir_mode = o->dir_mode ? o->dir_mode : 0700;
	c->ser = o->serializer;
	rc = check_options(o, &c->log);
	if (rc)
		goto fail;
	c->dir = strdup(dir);
	if (!c->dir) {
		rc = ENOMEM;
		goto fail;
	}

	/* Layout: cache.db at the top is a plain Cache; 000/ ... shards. */
	has_db = 0;
	found = 0;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		has_db = exists_at(fd, "cache.db", false);
		found = has_db ? count_shards(fd) : count_shards_stable(fd);
		close(fd);
	} else if (errno != ENOENT) {
		rc = errno;
		dc_log(&c->log, DC_LOG_ERROR, "cannot open %s: %s", dir,
		       dc_strerror(rc));
		goto fail;
	}
	if (o->shards > 0) {
		if (has_db || (found && found != o->shards)) {
			dc_log(&c->log, DC_LOG_ERROR,
			       "%s: asked for a FanoutCache of %d shards but "
			       "the directory holds %s%d",
			       dir, o->shards,
			       has_db ? "a plain Cache and shards: " : "",
			       found);
			rc = DC_LAYOUT;
			goto fail;
		}
		c->nshards = o->shards;
	} else if (o->shards == DC_SHARDS_PLAIN) {
		if (!has_db && found) {
			dc_log(&c->log, DC_LOG_ERROR,
			       "%s: asked for a plain Cache (0 shards) but the "
			       "directory is a FanoutCache of %d shards",
			       dir, found);
			rc = DC_LAYOUT;
			goto fail;
		}
	} else if (!has_db) {
		c->nshards = found;
	}

	if (c->nshards > 0) {
		rc = open_fanout_shards(c, dir, o);
	} else {
		c->shards = calloc(1, sizeof(*c->shards));
		if (!c->shards) {
			rc = ENOMEM;
			goto fail;
		}
		memset(&so, 0, sizeof(so));
		so.timeout = o->timeout > 0 ? o->timeout : 60.0;
		so.dir_mode = c->dir_mode;
		so.settings = o->settings;
		so.nsettings = o->nsettings;
		so.log = c->log;
		rc = dc_shard_open(dir, &so, &c->shards[0]);
		if (!rc)
			c->n = 1;
	}
	if (rc)
		goto fail;
	c->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	c->absdir = realpath(dir, NULL);
	if (c->dirfd < 0 || !c->absdir) {
		rc = errno ? errno : ENOMEM;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	dc_cache_close(c);
	return rc;
}

void dc_cache_close(dc_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->n; i++)
		dc_shard_close(c->shards[i]);
	free(c->shards);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->dir);
	free(c->absdir);
	free(c);
}

static bool name_ok(const char *name)
{
	const char *p = name, *slash;
	size_t n;

	if (!name || !*name || strlen(name) > 1024)
		return false;
	for (;;) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

int dc_cache_open_sub(dc_cache *parent, enum dc_sub kind, const char *name,
		      const struct dc_options *opts, dc_cache **out)
{
	static const char *const dirs[] = { "cache", "deque", "index" };
	struct dc_setting *sets = NULL;
	struct dc_options o;
	char *path = NULL;
	size_t n = 0, plen;
	int rc;

	if (out)
		*out = NULL;
	if (!parent || !out || (unsigned)kind > DC_SUB_INDEX || !name_ok(name))
		return DC_INVAL;
	if (opts)
		o = *opts;
	else
		memset(&o, 0, sizeof(o));
	if (o.shards != 0 && o.shards != DC_SHARDS_PLAIN)
		return DC_INVAL;
	if (o.nsettings && !o.settings)
		return DC_INVAL;
	o.shards = DC_SHARDS_PLAIN;
	if (!o.log) {
		o.log = parent->log.fn;
		o.log_arg = parent->log.arg;
	}
	if (!o.dir_mode)
		o.dir_mode = parent->dir_mode;
	if (!o.serializer)
		o.serializer = parent->ser;
	sets = calloc(o.nsettings + 1, sizeof(*sets));
	plen = strlen(parent->dir) + strlen(name) + 16;
	path = malloc(plen);
	if (!sets || !path) {
		rc = ENOMEM;
		goto out;
	}
	/* Deque and Index always pass eviction_policy='none' (HEAD). */
	if (kind != DC_SUB_CACHE) {
		sets[n].name = "eviction_policy";
		sets[n].value = dc_text("none");
		n++;
	}
	for (size_t i = 0; i < o.nsettings; i++)
		sets[n++] = o.settings[i];
	o.settings = sets;
	o.nsettings = n;
	snprintf(path, plen, "%s/%s/%s", parent->dir, dirs[kind], name);
	rc = dc_cache_open(path, &o, out);
out:
	free(sets);
	free(path);
	return rc;
}

const char *dc_cache_directory(const dc_cache *c)
{
	return c ? c->dir : NULL;
}

int dc_cache_shards(const dc_cache *c)
{
	return c ? c->nshards : 0;
}

/* ------------------------------------------------------------------ */
/* Routing                                                            */
/* ------------------------------------------------------------------ */

int dc_cache_shard_of(const dc_cache *c, const struct dc_value *key)
{
	uint32_t h;
	int rc;

	if (!c)
		return DC_INVAL;
	rc = dc_key_hash(key, &h);
	if (rc)
		return rc;
	if (c->nshards == 0)
		return 0;
	return (int)(h % (uint32_t)c->nshards);
}

/* Encode @key and pick its shard. */
static int route(dc_cache *c, const struct dc_value *key, struct dc_dbkey *k,
		 struct dc_shard **s)
{
	uint32_t h;
	int rc;

	if (!c)
		return DC_INVAL;
	rc = dc_disk_put_key(key, k);
	if (rc)
		return rc;
	if (c->nshards == 0) {
		*s = c->shards[0];
		return 0;
	}
	rc = dc_key_hash(key, &h);
	if (rc)
		return rc;
	*s = c->shards[h % (uint32_t)c->nshards];
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading and writing one key                                        */
/* ------------------------------------------------------------------ */

int dc_cache_get(dc_cache *c, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	if (!item)
		return DC_INVAL;
	item->fd = -1;
	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	if (!buf && !(flags & DC_NOVALUE))
		return DC_INVAL;
	rc = dc_shard_get(s, &k, buf, item, flags);
	/* FanoutCache.get returns the default on Timeout. */
	if (rc == DC_TIMEOUT && c->nshards > 0)
		rc = DC_NOTFOUND;
	if (!rc && c->ser)
		rc = dc_ser_fetch(c->ser, buf, item, flags, false);
	return rc;
}

int dc_cache_contains(dc_cache *c, const struct dc_value *key)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	return dc_shard_contains(s, &k);
}

static int check_expire(double expire)
{
	return isnan(expire) || isfinite(expire) ? 0 : DC_INVAL;
}

int dc_cache_set(dc_cache *c, const struct dc_value *key,
		 const struct dc_value *value, double expire,
		 const struct dc_value *tag, unsigned flags)
{
	struct dc_buf scratch = DC_BUF_INIT;
	struct dc_value stored;
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (!rc)
		rc = check_expire(expire);
	if (!rc && c->ser && value) {
		rc = dc_ser_store(c->ser, value, &scratch, &stored);
		value = &stored;
	}
	if (!rc)
		rc = dc_disk_check_value(value);
	if (!rc)
		rc = dc_shard_set(s, &k, value, -1, NULL, DC_TYPE_NONE, expire,
				  tag, flags);
	if (scratch.data) /* only a serializer uses it */
		dc_buf_release(&scratch);
	return rc;
}

int dc_cache_add(dc_cache *c, const struct dc_value *key,
		 const struct dc_value *value, double expire,
		 const struct dc_value *tag, unsigned flags)
{
	return dc_cache_set(c, key, value, expire, tag, flags | DC_ADD);
}

int dc_cache_set_fd(dc_cache *c, const struct dc_value *key, int fd,
		    double expire, const struct dc_value *tag, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	if (fd < 0)
		return DC_INVAL;
	rc = route(c, key, &k, &s);
	if (!rc)
		rc = check_expire(expire);
	if (rc)
		return rc;
	return dc_shard_set(s, &k, NULL, fd, NULL, DC_TYPE_BYTES, expire, tag,
			    flags);
}

int dc_cache_mkstemp(dc_cache *c, char *path, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const size_t plen = sizeof(DC_TMP_PREFIX) - 1;
	unsigned char rnd[8];
	char name[64];
	int fd, rc = 0, n;

	if (!c || !path || size == 0)
		return DC_INVAL;
	for (int attempt = 0; attempt < 10; attempt++) {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -EIO;
		memcpy(name, DC_TMP_PREFIX, plen);
		for (int i = 0; i < 8; i++) {
			name[plen + 2 * i] = hex[rnd[i] >> 4];
			name[plen + 2 * i + 1] = hex[rnd[i] & 15];
		}
		name[plen + 16] = '\0';
		fd = openat(c->dirfd, name,
			    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    c->dir_mode & 0666);
		if (fd >= 0) {
			n = snprintf(path, size, "%s/%s", c->absdir, name);
			if (n < 0 || (size_t)n >= size) {
				unlinkat(c->dirfd, name, 0);
				close(fd);
				return -ENAMETOOLONG;
			}
			return fd;
		}
		rc = errno;
		if (rc != EEXIST)
			break;
	}
	return -rc;
}

int dc_cache_set_file(dc_cache *c, const struct dc_value *key, const char *path,
		      enum dc_type type, double expire,
		      const struct dc_value *tag, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	struct stat st;
	char *real = NULL;
	size_t n;
	int rc;

	if (!path || (type != DC_TYPE_BYTES && type != DC_TYPE_TEXT &&
		      type != DC_TYPE_PICKLE))
		return DC_INVAL;
	rc = route(c, key, &k, &s);
	if (!rc)
		rc = check_expire(expire);
	if (rc)
		return rc;
	if (lstat(path, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return DC_INVAL;
	/* A file already inside the cache (other than our temporary
	 * directory) is a value file or someone else's: refuse it. */
	real = realpath(path, NULL);
	if (!real)
		return errno;
	n = strlen(c->absdir);
	if (strncmp(real, c->absdir, n) == 0 && real[n] == '/' &&
	    !(strncmp(real + n + 1, DC_TMP_PREFIX, sizeof(DC_TMP_PREFIX) - 1) ==
		  0 &&
	      !strchr(real + n + 1, '/'))) {
		free(real);
		return DC_EXISTS;
	}
	free(real);
	return dc_shard_set(s, &k, NULL, -1, path, type, expire, tag, flags);
}

int dc_cache_touch(dc_cache *c, const struct dc_value *key, double expire,
		   unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (!rc)
		rc = check_expire(expire);
	if (rc)
		return rc;
	return dc_shard_touch(s, &k, expire, flags);
}

int dc_cache_delete(dc_cache *c, const struct dc_value *key, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	return dc_shard_delete(s, &k, flags);
}

int dc_cache_incr(dc_cache *c, const struct dc_value *key, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	return dc_shard_incr(s, &k, delta, dflt, result, flags);
}

int dc_cache_decr(dc_cache *c, const struct dc_value *key, int64_t delta,
		  const int64_t *dflt, struct dc_value *result, unsigned flags)
{
	if (delta == INT64_MIN)
		return DC_OVERFLOW;
	return dc_cache_incr(c, key, -delta, dflt, result, flags);
}

int dc_cache_pop(dc_cache *c, const struct dc_value *key, struct dc_buf *buf,
		 struct dc_item *item, unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	if (!item)
		return DC_INVAL;
	item->fd = -1;
	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	if (!buf)
		return DC_INVAL;
	rc = dc_shard_pop(s, &k, buf, item, flags);
	if (rc == DC_TIMEOUT && c->nshards > 0)
		rc = DC_NOTFOUND;
	/* As in Python, the item is gone even if fetching it fails. */
	if (!rc && c->ser)
		rc = dc_ser_fetch(c->ser, buf, item, flags, false);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Queue: plain caches only (FanoutCache has no push/pull/peek)        */
/* ------------------------------------------------------------------ */

int dc_cache_push(dc_cache *c, const struct dc_value *value, const char *prefix,
		  double expire, const struct dc_value *tag, unsigned flags,
		  struct dc_buf *buf, struct dc_value *key)
{
	struct dc_buf scratch = DC_BUF_INIT;
	struct dc_value stored;
	int rc;

	if (!c || c->nshards > 0)
		return DC_INVAL;
	rc = check_expire(expire);
	if (!rc && c->ser && value) {
		rc = dc_ser_store(c->ser, value, &scratch, &stored);
		value = &stored;
	}
	if (!rc)
		rc = dc_disk_check_value(value);
	if (!rc)
		rc = dc_shard_push(c->shards[0], value, prefix, expire, tag,
				   flags, buf, key);
	if (scratch.data) /* only a serializer uses it */
		dc_buf_release(&scratch);
	return rc;
}

int dc_cache_pull(dc_cache *c, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags)
{
	int rc;

	if (!c || c->nshards > 0 || !buf || !item)
		return DC_INVAL;
	rc = dc_shard_pull(c->shards[0], prefix, buf, item, flags, 0);
	if (!rc && c->ser)
		rc = dc_ser_fetch(c->ser, buf, item, flags, true);
	return rc;
}

int dc_cache_peek(dc_cache *c, const char *prefix, struct dc_buf *buf,
		  struct dc_item *item, unsigned flags)
{
	int rc;

	if (!c || c->nshards > 0 || !buf || !item)
		return DC_INVAL;
	rc = dc_shard_pull(c->shards[0], prefix, buf, item, flags, 1);
	if (!rc && c->ser)
		rc = dc_ser_fetch(c->ser, buf, item, flags, true);
	return rc;
}

int dc_cache_peekitem(dc_cache *c, struct dc_buf *buf, struct dc_item *item,
		      unsigned flags)
{
	int rc;

	if (!c || c->nshards > 0 || !buf || !item)
		return DC_INVAL;
	rc = dc_shard_peekitem(c->shards[0], buf, item, flags);
	if (!rc && c->ser)
		rc = dc_ser_fetch(c->ser, buf, item, flags, true);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Bulk operations                                                    */
/* ------------------------------------------------------------------ */

enum bulk { B_CLEAR, B_EXPIRE, B_EVICT, B_CULL };

static int bulk_one(struct dc_shard *s, enum bulk op, double now,
		    const struct dc_value *tag, unsigned flags, uint64_t *n)
{
	switch (op) {
	case B_CLEAR:
		return dc_shard_clear(s, flags, n);
	case B_EXPIRE:
		return dc_shard_expire(s, now, flags, n);
	case B_EVICT:
		return dc_shard_evict(s, tag, flags, n);
	default:
		return dc_shard_cull(s, flags, n);
	}
}

static int bulk(dc_cache *c, enum bulk op, double now,
		const struct dc_value *tag, unsigned flags, uint64_t *count)
{
	uint64_t total = 0, n;
	int rc = 0;

	if (!c)
		return DC_INVAL;
	if (c->nshards == 0) {
		rc = bulk_one(c->shards[0], op, now, tag, flags, &n);
		total = n;
		goto out;
	}
	/* FanoutCache._remove: retry each shard after a timeout, adding
	 * up the partial counts; never report the timeout. */
	if (op == B_EXPIRE && !(now > 0))
		now = dc_now();
	for (int i = 0; i < c->nshards; i++) {
		for (;;) {
			n = 0;
			rc = bulk_one(c->shards[i], op, now, tag, flags, &n);
			total += n;
			if (rc != DC_TIMEOUT)
				break;
		}
		if (rc)
			break;
	}
out:
	if (count)
		*count = total;
	return rc;
}

int dc_cache_clear(dc_cache *c, unsigned flags, uint64_t *count)
{
	return bulk(c, B_CLEAR, 0, NULL, flags, count);
}

int dc_cache_expire(dc_cache *c, double now, unsigned flags, uint64_t *count)
{
	if (isnan(now))
		return DC_INVAL;
	return bulk(c, B_EXPIRE, now, NULL, flags, count);
}

int dc_cache_evict(dc_cache *c, const struct dc_value *tag, unsigned flags,
		   uint64_t *count)
{
	int rc = dc_disk_check_tag(tag);

	if (rc)
		return rc;
	return bulk(c, B_EVICT, 0, tag, flags, count);
}

int dc_cache_cull(dc_cache *c, unsigned flags, uint64_t *count)
{
	return bulk(c, B_CULL, 0, NULL, flags, count);
}

int dc_cache_len(dc_cache *c, uint64_t *count)
{
	uint64_t total = 0, n;
	int rc = 0;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n && !rc; i++) {
		rc = dc_shard_len(c->shards[i], &n);
		total += n;
	}
	if (!rc && count)
		*count = total;
	return rc;
}

int dc_cache_volume(dc_cache *c, uint64_t *bytes)
{
	uint64_t total = 0, n;
	int rc = 0;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n && !rc; i++) {
		rc = dc_shard_volume(c->shards[i], &n);
		total += n;
	}
	if (!rc && bytes)
		*bytes = total;
	return rc;
}

int dc_cache_stats(dc_cache *c, int enable, int reset, uint64_t *hits,
		   uint64_t *misses)
{
	uint64_t th = 0, tm = 0, h, m;
	int rc = 0;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n && !rc; i++) {
		h = m = 0;
		rc = dc_shard_stats(c->shards[i], enable, reset, &h, &m);
		th += h;
		tm += m;
	}
	if (rc)
		return rc;
	if (hits)
		*hits = th;
	if (misses)
		*misses = tm;
	return 0;
}

int dc_cache_check(dc_cache *c, int fix, unsigned flags, dc_warn_fn warn,
		   void *arg, uint64_t *nwarnings)
{
	uint64_t total = 0, n;
	int rc = 0;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n && !rc; i++) {
		n = 0;
		rc = dc_shard_check(c->shards[i], fix, flags, warn, arg, &n);
		total += n;
	}
	if (!rc && c->nshards > 0) {
		n = 0;
		rc = dc_tmpdir_check(c, fix, warn, arg, &n);
		total += n;
	}
	if (nwarnings)
		*nwarnings = total;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                       */
/* ------------------------------------------------------------------ */

int dc_cache_begin(dc_cache *c, unsigned flags)
{
	int rc = 0, i;

	if (!c)
		return DC_INVAL;
	if (c->nshards > 0 && !(flags & DC_RETRY))
		return DC_INVAL; /* "retry must be True in FanoutCache" */
	for (i = 0; i < c->n; i++) {
		rc = dc_conn_user_begin(c->shards[i], flags);
		if (rc)
			break;
	}
	if (rc)
		while (--i >= 0)
			dc_conn_user_rollback(c->shards[i]);
	return rc;
}

int dc_cache_commit(dc_cache *c)
{
	int rc = 0, r;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n; i++) {
		r = dc_conn_user_commit(c->shards[i]);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

int dc_cache_rollback(dc_cache *c)
{
	int rc = 0, r;

	if (!c)
		return DC_INVAL;
	for (int i = 0; i < c->n; i++) {
		r = dc_conn_user_rollback(c->shards[i]);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Settings                                                           */
/* ------------------------------------------------------------------ */

int dc_cache_setting_get(dc_cache *c, const char *name, struct dc_buf *buf,
			 struct dc_value *value)
{
	if (!c || !name || !value)
		return DC_INVAL;
	return dc_shard_setting_get(c->shards[0], name, buf, value);
}

int dc_cache_setting_set(dc_cache *c, const char *name,
			 const struct dc_value *value)
{
	int rc = 0;

	if (!c)
		return DC_INVAL;
	rc = dc_setting_check(name, value);
	if (rc)
		return rc;
	for (int i = 0; i < c->n; i++) {
		do
			rc = dc_shard_setting_set(c->shards[i], name, value);
		while (rc == DC_TIMEOUT && c->nshards > 0);
		if (rc)
			break;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Metadata, rename, change counter                                   */
/* ------------------------------------------------------------------ */

int dc_cache_set_meta(dc_cache *c, const struct dc_value *key, unsigned what,
		      const struct dc_value *tag, double expire_time,
		      unsigned flags)
{
	struct dc_shard *s;
	struct dc_dbkey k;
	int rc;

	rc = route(c, key, &k, &s);
	if (rc)
		return rc;
	if (what == 0 ||
	    (what & ~(unsigned)(DC_META_TAG | DC_META_EXPIRE_TIME)))
		return DC_INVAL;
	if (what & DC_META_TAG) {
		rc = dc_disk_check_tag(tag);
		if (rc)
			return rc;
	}
	if ((what & DC_META_EXPIRE_TIME) && check_expire(expire_time))
		return DC_INVAL;
	return dc_shard_set_meta(s, &k, what, tag, expire_time, flags);
}

int dc_cache_rename(dc_cache *c, const struct dc_value *key,
		    const struct dc_value *newkey, unsigned flags)
{
	struct dc_shard *s, *t;
	struct dc_dbkey k, nk;
	int rc;

	rc = route(c, key, &k, &s);
	if (!rc)
		rc = route(c, newkey, &nk, &t);
	if (rc)
		return rc;
	if (s == t)
		return dc_shard_rename(s, &k, &nk, flags);
	/* Shards are stored in index order: compare their positions. */
	for (int i = 0; i < c->n; i++) {
		if (c->shards[i] == s || c->shards[i] == t)
			return dc_shard_move(s, t, c->shards[i] == s, &k, &nk,
					     flags);
	}
	return DC_INVAL;
}

int dc_cache_changes(dc_cache *c, uint64_t *counter)
{
	uint64_t total = 0, n;
	int rc = 0;

	if (!c || !counter)
		return DC_INVAL;
	for (int i = 0; i < c->n && !rc; i++) {
		n = 0;
		rc = dc_shard_changes(c->shards[i], &n);
		total += n;
	}
	if (!rc)
		*counter = total;
	return rc;
}
