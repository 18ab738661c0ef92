/* coherence.c - the thread that tells the kernel what others changed
 * SPDX-License-Identifier: MIT
 *
 * The kernel caches names, attributes and pages of keys for a long time
 * (entry_timeout, attr_timeout, keep_cache).  Changes made through the
 * mount it sees itself; changes made by anyone else (Python, the dcache
 * command, another mount) or behind its back (.ctl actions, a type
 * change) this thread reports:
 *
 *   every opts.coherence seconds it reads dc_cache_changes(), a counter
 *   that moves with every commit to the cache by anyone.  When it moved,
 *   every inode the kernel knows is re-checked against what the kernel
 *   was last told about it (its fingerprint: presence, type, size, store
 *   and expire time, recorded by ops.c after each reply) and against the
 *   value version it stands for (inode.c), and for each difference the
 *   kernel is told:
 *     - a value changed:       the inode is detached (it stays, with its
 *                              old attributes, for its readers) and
 *                              notify_inval_entry: the name's next lookup
 *                              gets a new inode.  Never the new size on
 *                              the old inode: that would cut its readers
 *                              short.  (An inode open for writing takes
 *                              on the new value: notify_inval_inode.)
 *     - an inode took on a new version at an open nobody else had:
 *                              notify_inval_inode (attributes and pages)
 *     - only the expiry:       notify_inval_inode (attributes) and
 *                              notify_inval_entry (the entry's timeout)
 *     - gone, or now a directory (a file) where a file (directory) was:
 *                              notify_inval_entry
 *
 * So the coherence bound is opts.coherence plus the time of one scan.
 * Negative entries ("no such file") are not tracked: the kernel keeps
 * them for negative_timeout, which defaults to opts.coherence.
 *
 * Notifications are sent only from this thread, never from a request
 * handler: the kernel may hold the lock of the directory or the pages
 * concerned while it waits for a reply to a request, and a handler that
 * notified could wait for itself.  A reply that raced with a scan (its
 * cache read before the scan, its note after) marks its inode for a
 * re-check at the next tick (see dcfs_inode_note).
 */
#include "dcfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long dcfs_coh_sync and the stop wait for the thread. */
#define SYNC_WAIT_S 3
#define STOP_WAIT_S 3

struct dcfs_coh {
	struct dcfs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* to the thread: work or stop */
	pthread_cond_t done; /* from the thread: a scan finished */
	/* Protected by lock. */
	int stop;
	uint64_t requested; /* scans asked for by sync/kick/recheck */
	uint64_t finished;  /* the last request served by a finished scan */
	int want_full;      /* a request wants every inode checked */
	int running;        /* the thread is still inside its loop */
	struct dcfs_coh_stats stats; /* protected by lock */
	/* The thread's own. */
	uint64_t last; /* dc_cache_changes at the start of the last scan */
	int have_last;
	char conn[32]; /* the connection's number in /sys/fs/fuse/connections */
};

static struct timespec deadline(double seconds)
{
	struct timespec ts;
	double whole;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	whole = (double)(long)seconds;
	ts.tv_sec += (time_t)whole;
	ts.tv_nsec += (long)((seconds - whole) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* "a/b/c" -> parent "a/b" (new memory, NULL if out of memory) and name
 * "c" (within @path). */
static const char *split_path(const char *path, char **parent)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		*parent = strdup("");
		return path;
	}
	*parent = strndup(path, (size_t)(slash - path));
	return slash + 1;
}

/* A path outside .keys/: a text key that is its own path, or a directory
 * (which may turn into one another). */
static int is_plain(const char *path)
{
	return strncmp(path, DCFS_KEYS_DIR "/", sizeof(DCFS_KEYS_DIR)) != 0;
}

/* The state now of the inode in @s, as a fingerprint. */
static void current_fp(struct dcfs *fs, const struct dcfs_snap *s,
		       struct dcfs_fp *fp)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;

	memset(fp, 0, sizeof(*fp));
	fp->known = 1;
	fp->expire_time = DC_NO_EXPIRE;
	if (s->kind == DCFS_DIR) {
		fp->present = dcfs_dir_exists(fs, s->path);
		goto out;
	}
	if (dcfs_key_item(fs, s->path, &item, &buf) != 0)
		goto out; /* gone (or unreadable: ask again) */
	/* A plain path that now is a directory (keys were set below it)
	 * no longer names the key: the directory wins. */
	if (is_plain(s->path) && dcfs_dir_exists(fs, s->path))
		goto out;
	dcfs_fp_of_item(fp, &item);
out:
	dc_buf_release(&buf);
}

/* Tell the kernel about one inode whose state moved from @old to @now. */
static void invalidate(struct dcfs *fs, const struct dcfs_snap *s,
		       const struct dcfs_fp *old, const struct dcfs_fp *now)
{
	struct fuse_session *se = fs->se;
	char *parent = NULL;
	const char *name;
	fuse_ino_t pino;
	int rc, entry;

	if (s->kind == DCFS_FILE && now->present) {
		/* Attributes always; pages only if the value changed. */
		rc = fuse_lowlevel_notify_inval_inode(
		    se, s->ino, dcfs_fp_same_value(old, now) ? -1 : 0, 0);
		if (rc && rc != -ENOENT)
			dcfs_log(FUSE_LOG_DEBUG, "inval_inode %s: %s", s->path,
				 strerror(-rc));
	}
	/* The name: when it went (or came back), or when its timeout,
	 * capped at the key's lifetime, may now be too long. */
	entry = old->present != now->present || !dcfs_fp_same_expire(old, now);
	if (!entry)
		return;
	name = split_path(s->path, &parent);
	if (!parent)
		return;
	pino = dcfs_inode_peek(fs->itable, parent);
	if (pino) {
		rc = fuse_lowlevel_notify_inval_entry(se, pino, name,
						      strlen(name));
		if (rc && rc != -ENOENT)
			dcfs_log(FUSE_LOG_DEBUG, "inval_entry %s: %s", s->path,
				 strerror(-rc));
	}
	free(parent);
}

/* The key at @s's path has a value other than the one inode @s stands
 * for: detach the inode (its readers keep it, with its old size and
 * pages) and drop the name, so that the next lookup gets a new inode.
 * Returns 1 if done; 0 if the inode is open for writing and took on the
 * new version instead (the caller invalidates it as before). */
static int new_version(struct dcfs *fs, const struct dcfs_snap *s,
		       const struct dcfs_fp *now)
{
	char *parent = NULL;
	const char *name;
	fuse_ino_t pino;
	int rc;

	if (!dcfs_inode_retire(fs->itable, s->ino)) {
		dcfs_inode_adopt(fs->itable, s->ino, now);
		return 0;
	}
	name = split_path(s->path, &parent);
	if (!parent)
		return 1;
	pino = dcfs_inode_peek(fs->itable, parent);
	if (pino) {
		rc = fuse_lowlevel_notify_inval_entry(fs->se, pino, name,
						      strlen(name));
		if (rc && rc != -ENOENT)
			dcfs_log(FUSE_LOG_DEBUG, "inval_entry %s: %s", s->path,
				 strerror(-rc));
	}
	free(parent);
	return 1;
}

/* What one pass over the cache found about each plain-path inode. */
struct seen {
	struct dcfs_fp fp; /* the key at the path, if live (fp.present) */
	int below;         /* a live key lies below the path */
};

/* An open-addressing index of the plain paths of a snapshot. */
struct pindex {
	size_t *slot; /* snapshot index + 1; 0: empty */
	size_t mask;
};

static size_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	while (len--)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

static int pindex_build(struct pindex *x, const struct dcfs_snap *v, size_t n)
{
	size_t size = 16, i, b;

	while (size < 2 * n)
		size *= 2;
	x->slot = calloc(size, sizeof(*x->slot));
	if (!x->slot)
		return ENOMEM;
	x->mask = size - 1;
	for (i = 0; i < n; i++) {
		if (!is_plain(v[i].path))
			continue;
		b = hash_bytes(v[i].path, strlen(v[i].path)) & x->mask;
		while (x->slot[b])
			b = (b + 1) & x->mask;
		x->slot[b] = i + 1;
	}
	return 0;
}

/* The snapshot indices whose path is @s (@len bytes): each in turn via
 * *pos (start at 0); SIZE_MAX at the end.  A path may be known twice (a
 * detached inode and its successor were both snapshotted). */
static size_t pindex_next(const struct pindex *x, const struct dcfs_snap *v,
			  const char *s, size_t len, size_t *pos)
{
	size_t b, k;

	if (*pos == 0)
		*pos = (hash_bytes(s, len) & x->mask) + 1;
	for (b = *pos - 1; (k = x->slot[b]) != 0; b = (b + 1) & x->mask) {
		*pos = ((b + 1) & x->mask) + 1;
		if (strncmp(v[k - 1].path, s, len) == 0 &&
		    v[k - 1].path[len] == '\0')
			return k - 1;
	}
	return SIZE_MAX;
}

/* The state now of every plain-path inode of @v, from one pass over the
 * cache's live text keys (about 2 us a key) instead of two lookups per
 * inode (about 8 us): what a large scan uses. */
static int pass_over_cache(struct dcfs *fs, const struct dcfs_snap *v, size_t n,
			   struct seen *seen)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct pindex x = { 0 };
	struct dc_item item;
	dc_iter *it = NULL;
	const char *k;
	size_t len, i, pos, p;
	int rc, err;

	err = pindex_build(&x, v, n);
	if (err)
		return err;
	rc = dc_iter_open(fs->cache, DC_ALIVE, "", 0, &it);
	while (rc == 0) {
		rc = dc_iter_next(it, &buf, &item);
		if (rc)
			break;
		k = item.key.data;
		len = item.key.len;
		if (!dcfs_key_is_path(k, len))
			continue;
		pos = 0;
		while ((i = pindex_next(&x, v, k, len, &pos)) != SIZE_MAX) {
			dcfs_item_sized(&item);
			dcfs_fp_of_item(&seen[i].fp, &item);
		}
		/* Every directory above the key exists. */
		for (p = 0; p < len; p++) {
			if (k[p] != '/')
				continue;
			pos = 0;
			while ((i = pindex_next(&x, v, k, p, &pos)) != SIZE_MAX)
				seen[i].below = 1;
		}
	}
	dc_iter_close(it);
	dc_buf_release(&buf);
	free(x.slot);
	return rc == DC_NOTFOUND ? 0 : dcfs_errno(rc);
}

/* The state of plain-path inode @s from what the pass saw. */
static void fp_from_pass(struct dcfs *fs, const struct dcfs_snap *s,
			 const struct seen *seen, struct dcfs_fp *fp)
{
	int dir = seen->below || dcfs_xdir_exists(fs, s->path);

	memset(fp, 0, sizeof(*fp));
	fp->known = 1;
	fp->expire_time = DC_NO_EXPIRE;
	if (s->kind == DCFS_DIR)
		fp->present = dir;
	else if (!dir && seen->fp.present)
		*fp = seen->fp;
}

/* One scan: every known inode (@all) or those marked for a re-check.
 * Returns how long it took, in seconds. */
static double scan(struct dcfs_coh *c, int all)
{
	struct dcfs *fs = c->fs;
	struct dcfs_snap *v = NULL;
	struct seen *seen = NULL;
	struct dcfs_fp now;
	uint64_t keys = 0;
	size_t n = 0, i, changed = 0, plain = 0;
	double t0 = dcfs_now();

	if (dcfs_inode_snapshot(fs->itable, all, &v, &n) != 0) {
		dcfs_log(FUSE_LOG_ERR, "coherence: out of memory");
		return 0;
	}
	/* Many known paths compared with the number of keys: one pass over
	 * the cache is cheaper than looking each of them up. */
	for (i = 0; i < n; i++)
		plain += is_plain(v[i].path);
	if (plain >= 64 && dc_cache_len(fs->cache, &keys) == 0 &&
	    plain * 4 >= keys) {
		seen = calloc(n, sizeof(*seen));
		if (seen && pass_over_cache(fs, v, n, seen) != 0) {
			free(seen);
			seen = NULL;
		}
	}
	for (i = 0; i < n; i++) {
		if (seen && is_plain(v[i].path))
			fp_from_pass(fs, &v[i], &seen[i], &now);
		else
			current_fp(fs, &v[i], &now);
		if (v[i].kind == DCFS_FILE && now.present && v[i].ver.known &&
		    !dcfs_fp_same_value(&v[i].ver, &now)) {
			changed++;
			if (new_version(fs, &v[i], &now))
				continue;
		} else if (dcfs_fp_same_value(&v[i].fp, &now) &&
			   dcfs_fp_same_expire(&v[i].fp, &now)) {
			continue;
		} else {
			changed++;
		}
		invalidate(fs, &v[i], &v[i].fp, &now);
		dcfs_inode_set_fp(fs->itable, v[i].ino, v[i].seq, &now);
	}
	pthread_mutex_lock(&c->lock);
	if (all) {
		c->stats.full_scans++;
		c->stats.one_pass_scans += seen != NULL;
		c->stats.last_full_ms = (dcfs_now() - t0) * 1e3;
		c->stats.last_full_inodes = n;
	} else {
		c->stats.partial_scans++;
	}
	c->stats.invalidated += changed;
	pthread_mutex_unlock(&c->lock);
	dcfs_log(
	    FUSE_LOG_DEBUG,
	    "coherence: %s%s scan: %zu of %zu inodes invalidated in %.1f ms",
	    all ? "full" : "partial", seen ? " one-pass" : "", changed, n,
	    (dcfs_now() - t0) * 1e3);
	free(seen);
	dcfs_snap_free(v, n);
	return dcfs_now() - t0;
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *coh_main(void *arg)
{
	struct dcfs_coh *c = arg;
	struct dcfs *fs = c->fs;
	struct timespec tick, now;
	uint64_t counter, serving;
	double took = 0;
	int rc, all, stop, full, ticked;

	tick = deadline(fs->opts.coherence);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->stop && c->requested == c->finished)
			if (pthread_cond_timedwait(&c->wake, &c->lock, &tick) ==
			    ETIMEDOUT)
				break;
		stop = c->stop;
		serving = c->requested;
		full = c->want_full;
		c->want_full = 0;
		pthread_mutex_unlock(&c->lock);
		if (stop)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ticked = !before(&now, &tick);
		/* At most a fifth of a CPU for scans: with very many known
		 * inodes the ticks (and so the bound) stretch to five times
		 * the duration of a full scan. */
		if (ticked)
			tick = deadline(fs->opts.coherence > 5 * took
					    ? fs->opts.coherence
					    : 5 * took);

		all = 0;
		if (ticked || full) {
			/* Read the counter before looking at anything: a
			 * commit after this read moves it again. */
			rc = dc_cache_changes(fs->cache, &counter);
			all = full || rc != 0 || !c->have_last ||
			      counter != c->last;
			if (rc == 0 && all) {
				c->last = counter;
				c->have_last = 1;
			}
		}
		/* Otherwise only the inodes marked for a re-check (a
		 * targeted request, or a reply that raced with a scan). */
		if (all)
			took = scan(c, 1);
		else if (dcfs_inode_rechecks(fs->itable))
			scan(c, 0);

		pthread_mutex_lock(&c->lock);
		c->finished = serving;
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_lock(&c->lock);
	c->running = 0;
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The FUSE connection number of the mount at @mnt (the minor number of
 * its device in /proc/self/mountinfo), found without asking the
 * filesystem, which may not answer yet. */
static void find_conn(const char *mnt, char *out, size_t size)
{
	unsigned major, minor;
	char line[4200], point[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	out[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* "36 35 0:52 / /mnt ..." */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor,
			   point) != 3)
			continue;
		unescape(point);
		if (major == 0 && strcmp(point, mnt) == 0)
			snprintf(out, size, "%u", minor);
	}
	fclose(f);
}

int dcfs_coh_start(struct dcfs *fs, struct fuse_session *se, const char *mnt)
{
	struct dcfs_coh *c;
	int err;

	fs->se = se;
	if (!(fs->opts.coherence > 0))
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->fs = fs;
	pthread_mutex_init(&c->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->wake, &ca);
		pthread_cond_init(&c->done, &ca);
		pthread_condattr_destroy(&ca);
	}
	find_conn(mnt, c->conn, sizeof(c->conn));
	c->running = 1;
	err = pthread_create(&c->thread, NULL, coh_main, c);
	if (err) {
		pthread_cond_destroy(&c->wake);
		pthread_cond_destroy(&c->done);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return err;
	}
	fs->coh = c;
	return 0;
}

/* Abort the FUSE connection: every request waiting in the kernel fails,
 * which releases any kernel lock a notification is blocked on. */
static void abort_conn(const struct dcfs_coh *c)
{
	char path[96];
	FILE *f;

	if (!c->conn[0])
		return;
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%s/abort",
		 c->conn);
	f = fopen(path, "we");
	if (!f)
		return;
	fputs("1", f);
	fclose(f);
}

void dcfs_coh_stop(struct dcfs *fs)
{
	struct dcfs_coh *c = fs->coh;
	struct timespec until;
	int late = 0;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->wake);
	/* A notification can block on a kernel lock held by a request
	 * that no worker will answer any more (the loop has ended). */
	until = deadline(STOP_WAIT_S);
	while (c->running && !late)
		late = pthread_cond_timedwait(&c->done, &c->lock, &until) ==
		       ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	if (late) {
		dcfs_log(FUSE_LOG_WARNING,
			 "coherence thread blocked in the kernel: aborting "
			 "the connection");
		abort_conn(c);
	}
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
	fs->coh = NULL;
}

static void request(struct dcfs *fs, int full, int wait)
{
	struct dcfs_coh *c = fs->coh;
	struct timespec until;
	uint64_t want;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	want = ++c->requested;
	if (full)
		c->want_full = 1;
	pthread_cond_signal(&c->wake);
	until = deadline(SYNC_WAIT_S);
	while (wait && c->running && c->finished < want)
		if (pthread_cond_timedwait(&c->done, &c->lock, &until) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&c->lock);
}

void dcfs_coh_sync(struct dcfs *fs)
{
	request(fs, 1, 1);
}

void dcfs_coh_kick(struct dcfs *fs)
{
	request(fs, 1, 0);
}

/* The other name of the key at @path, if the kernel knows it: the plain
 * path of a .keys/str name, or the .keys/str name of a plain path. */
static fuse_ino_t alias_of(struct dcfs *fs, const char *path)
{
	static const char prefix[] = DCFS_KEYS_DIR "/str/";
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	char name[256], other[sizeof(prefix) + 256];
	fuse_ino_t ino = 0;

	if (strncmp(path, DCFS_KEYS_DIR "/", sizeof(DCFS_KEYS_DIR)) == 0) {
		if (strncmp(path, prefix, sizeof(prefix) - 1) != 0 ||
		    dcfs_path_key(path, &buf, &key) != 0 ||
		    !dcfs_key_is_path(key.data, key.len) ||
		    key.len >= sizeof(other))
			goto out;
		memcpy(other, key.data, key.len);
		other[key.len] = '\0';
	} else {
		key = dc_text(path);
		if (dcfs_key_escape(&key, name) < 0)
			goto out;
		snprintf(other, sizeof(other), "%s%s", prefix, name);
	}
	ino = dcfs_inode_peek(fs->itable, other);
out:
	dc_buf_release(&buf);
	return ino;
}

void dcfs_coh_changed(struct dcfs *fs, const char *path, int wait)
{
	fuse_ino_t ino;

	if (!fs->coh)
		return;
	ino = alias_of(fs, path);
	if (ino && dcfs_inode_mark(fs->itable, ino))
		request(fs, 0, wait);
}

void dcfs_coh_recheck(struct dcfs *fs, fuse_ino_t ino)
{
	if (fs->coh && dcfs_inode_mark(fs->itable, ino))
		request(fs, 0, 0);
}

int dcfs_coh_stats(struct dcfs *fs, struct dcfs_coh_stats *out)
{
	struct dcfs_coh *c = fs->coh;

	memset(out, 0, sizeof(*out));
	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
	return 1;
}
