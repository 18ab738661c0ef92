/* ctl.c - the .ctl/ control files: stats, settings, actions
 * SPDX-License-Identifier: MIT
 *
 *   .ctl/stats            read-only "name value" lines
 *   .ctl/settings/NAME    read the setting; write a new value to change it
 *   .ctl/cull, expire, clear, check, evict, incr, decr
 *                         act when written (never when read or opened);
 *                         reading returns the last result
 * Control files are direct_io: their size is 0 and every read asks us.
 * A write is one command and returns its byte count, or EINVAL for
 * nonsense (the cache is left untouched).
 */
#include "dcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum action {
	ACT_CULL,
	ACT_EXPIRE,
	ACT_CLEAR,
	ACT_CHECK,
	ACT_EVICT,
	ACT_INCR,
	ACT_DECR,
	ACT_COUNT,
};

/* The files of .ctl/ besides settings/: stats, then the actions in enum
 * order. */
static const char *const ctl_names[] = {
	"stats", "cull", "expire", "clear", "check",
	"evict", "incr", "decr",   NULL,
};

struct dcfs_ctl {
	pthread_mutex_t lock;
	char *
	    last[ACT_COUNT]; /* last result of each action; protected by lock */
};

/* A growable text buffer. */
struct text {
	char *s;
	size_t len;
	size_t cap;
	int err;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *p;
	int n;

	if (t->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	need = t->len + (size_t)n + 1;
	if (need > t->cap) {
		size_t cap = t->cap ? t->cap : 256;

		while (cap < need)
			cap *= 2;
		p = realloc(t->s, cap);
		if (!p) {
			t->err = ENOMEM;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

struct dcfs_ch {
	struct dcfs_fh fh;
	struct dcfs *fs;
	enum dcfs_kind kind;
	int action;    /* enum action, or -1 */
	char name[64]; /* the setting's name */
	pthread_mutex_t lock;
	struct text text; /* what a read returns; protected by lock */
};

int dcfs_ctl_new(struct dcfs_ctl **out)
{
	struct dcfs_ctl *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void dcfs_ctl_free(struct dcfs_ctl *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < ACT_COUNT; i++)
		free(c->last[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *const *dcfs_ctl_names(void)
{
	return ctl_names;
}

static int action_of(const char *name)
{
	int i;

	for (i = 1; ctl_names[i]; i++)
		if (strcmp(ctl_names[i], name) == 0)
			return i - 1;
	return -1;
}

int dcfs_ctl_exists(int settings, const char *name)
{
	const char *const *n;

	n = settings ? dc_cache_setting_names() : ctl_names;
	for (; *n; n++)
		if (strcmp(*n, name) == 0)
			return 1;
	return 0;
}

mode_t dcfs_ctl_mode(enum dcfs_kind kind, const char *name)
{
	if (kind == DCFS_CTL_FILE && strcmp(name, "stats") == 0)
		return 0444;
	return 0644;
}

static void add_value(struct text *t, const struct dc_value *v)
{
	char num[DCFS_NUM_MAX];
	const void *data;
	size_t len = dcfs_value_render(v, num, &data);

	text_add(t, "%.*s", (int)len, (const char *)data);
}

static int render_setting(struct dcfs *fs, const char *name, struct text *t)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;
	int rc;

	rc = dc_cache_setting_get(fs->cache, name, &buf, &v);
	if (rc == 0) {
		add_value(t, &v);
		text_add(t, "\n");
	}
	dc_buf_release(&buf);
	return dcfs_errno(rc);
}

static int render_stats(struct dcfs *fs, struct text *t)
{
	struct dc_buf buf = DC_BUF_INIT;
	const char *const *n;
	uint64_t hits = 0, misses = 0, count = 0, volume = 0;
	struct dcfs_coh_stats coh;
	struct dc_value v;
	int enabled = 0, rc;

	/* dc_cache_stats also (re)sets statistics: pass the current
	 * setting so reading stats changes nothing. */
	if (dc_cache_setting_get(fs->cache, "statistics", &buf, &v) == 0 &&
	    v.type == DC_TYPE_INT)
		enabled = v.i != 0;
	rc = dc_cache_stats(fs->cache, enabled, 0, &hits, &misses);
	if (!rc)
		rc = dc_cache_len(fs->cache, &count);
	if (!rc)
		rc = dc_cache_volume(fs->cache, &volume);
	if (rc)
		goto out;
	text_add(t, "hits %llu\n", (unsigned long long)hits);
	text_add(t, "misses %llu\n", (unsigned long long)misses);
	text_add(t, "count %llu\n", (unsigned long long)count);
	text_add(t, "volume %llu\n", (unsigned long long)volume);
	text_add(t, "shards %d\n", dc_cache_shards(fs->cache));
	for (n = dc_cache_setting_names(); *n; n++) {
		if (dc_cache_setting_get(fs->cache, *n, &buf, &v) != 0)
			continue;
		text_add(t, "%s ", *n);
		add_value(t, &v);
		text_add(t, "\n");
	}
	text_add(t, "directory %s\n", dc_cache_directory(fs->cache));
	/* The coherence thread (absent with -o strict). */
	if (dcfs_coh_stats(fs, &coh)) {
		text_add(t, "coherence_interval %g\n", fs->opts.coherence);
		text_add(t, "coherence_full_scans %llu\n",
			 (unsigned long long)coh.full_scans);
		text_add(t, "coherence_one_pass_scans %llu\n",
			 (unsigned long long)coh.one_pass_scans);
		text_add(t, "coherence_partial_scans %llu\n",
			 (unsigned long long)coh.partial_scans);
		text_add(t, "coherence_invalidated %llu\n",
			 (unsigned long long)coh.invalidated);
		text_add(t, "coherence_last_scan_ms %.1f\n", coh.last_full_ms);
		text_add(t, "coherence_last_scan_inodes %zu\n",
			 coh.last_full_inodes);
	}
	text_add(t, "known_inodes %zu\n", dcfs_inode_count(fs->itable));
out:
	dc_buf_release(&buf);
	return dcfs_errno(rc);
}

int dcfs_ctl_open(struct dcfs *fs, const struct dcfs_node *node, int flags,
		  struct dcfs_fh **out)
{
	struct dcfs_ctl *c = fs->ctl;
	const char *name = strrchr(node->path, '/');
	struct dcfs_ch *ch;
	int err = 0;

	name = name ? name + 1 : node->path;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return ENOMEM;
	ch->fh.kind = DCFS_FH_CTL;
	ch->fh.refs = 1;
	pthread_mutex_init(&ch->lock, NULL);
	ch->fs = fs;
	ch->kind = node->kind;
	ch->action = -1;
	snprintf(ch->name, sizeof(ch->name), "%s", name);
	if (node->kind == DCFS_CTL_SETTING) {
		err = render_setting(fs, name, &ch->text);
	} else if (strcmp(name, "stats") == 0) {
		if ((flags & O_ACCMODE) != O_RDONLY)
			err = EACCES;
		else
			err = render_stats(fs, &ch->text);
	} else {
		ch->action = action_of(name);
		pthread_mutex_lock(&c->lock);
		if (ch->action >= 0 && c->last[ch->action])
			text_add(&ch->text, "%s", c->last[ch->action]);
		pthread_mutex_unlock(&c->lock);
	}
	if (!err)
		err = ch->text.err;
	if (err) {
		dcfs_ctl_close(&ch->fh);
		return err;
	}
	*out = &ch->fh;
	return 0;
}

void dcfs_ctl_reply_read(fuse_req_t req, struct dcfs_fh *fh, size_t size,
			 off_t off)
{
	struct dcfs_ch *ch = (struct dcfs_ch *)fh;

	pthread_mutex_lock(&ch->lock);
	dcfs_reply_mem(req, ch->text.s, ch->text.len, size, off);
	pthread_mutex_unlock(&ch->lock);
}

static void add_warning(void *arg, enum dc_warning kind, const char *message)
{
	(void)kind;
	text_add(arg, "%s\n", message);
}

/* Is the trimmed command one of the no-argument spellings? */
static int is_plain(const char *cmd, size_t len, const char *name)
{
	return len == 0 || (len == 1 && cmd[0] == '1') ||
	       (len == strlen(name) && memcmp(cmd, name, len) == 0);
}

/* incr/decr: "KEY [DELTA]"; the last word is the delta if it is an
 * integer and there is a word before it. */
static int run_incr(struct dcfs *fs, int decr, const char *cmd, size_t len,
		    struct text *t)
{
	struct dc_value key, result;
	const char *sp = NULL;
	int64_t delta = 1, zero = 0;
	size_t klen = len, i;
	char *k;
	int rc, err;

	for (i = len; i > 0; i--) {
		if (cmd[i - 1] == ' ') {
			sp = cmd + i - 1;
			break;
		}
	}
	if (sp && sp > cmd &&
	    dcfs_parse_int64(sp + 1, (size_t)(cmd + len - sp - 1), &delta) == 0)
		klen = (size_t)(sp - cmd);
	if (klen == 0 || memchr(cmd, '\0', klen) || !dcfs_utf8_valid(cmd, klen))
		return EINVAL;
	k = strndup(cmd, klen);
	if (!k)
		return ENOMEM;
	key = dc_textn(k, klen);
	if (decr)
		rc = dc_cache_decr(fs->cache, &key, delta, &zero, &result,
				   DC_RETRY);
	else
		rc = dc_cache_incr(fs->cache, &key, delta, &zero, &result,
				   DC_RETRY);
	err = dcfs_errno(rc);
	if (!err) {
		add_value(t, &result);
		text_add(t, "\n");
	}
	free(k);
	return err;
}

static int run_action(struct dcfs *fs, int action, const char *cmd, size_t len,
		      struct text *t)
{
	struct dc_value tag;
	uint64_t count = 0, nwarn = 0;
	int rc = 0, err = 0;

	switch (action) {
	case ACT_CULL:
		if (!is_plain(cmd, len, "cull"))
			return EINVAL;
		rc = dc_cache_cull(fs->cache, DC_RETRY, &count);
		break;
	case ACT_EXPIRE:
		if (!is_plain(cmd, len, "expire"))
			return EINVAL;
		rc = dc_cache_expire(fs->cache, 0, DC_RETRY, &count);
		break;
	case ACT_CLEAR:
		/* Guarded: only the word itself clears the cache. */
		if (len != 5 || memcmp(cmd, "clear", 5) != 0)
			return EINVAL;
		rc = dc_cache_clear(fs->cache, DC_RETRY, &count);
		break;
	case ACT_CHECK:
		if (is_plain(cmd, len, "check"))
			rc = dc_cache_check(fs->cache, 0, DC_RETRY, add_warning,
					    t, &nwarn);
		else if (len == 3 && memcmp(cmd, "fix", 3) == 0)
			rc = dc_cache_check(fs->cache, 1, DC_RETRY, add_warning,
					    t, &nwarn);
		else
			return EINVAL;
		if (!rc)
			text_add(t, "warnings %llu\n",
				 (unsigned long long)nwarn);
		return dcfs_errno(rc);
	case ACT_EVICT:
		if (len == 0 || memchr(cmd, '\0', len) ||
		    !dcfs_utf8_valid(cmd, len))
			return EINVAL;
		tag = dc_textn(cmd, len);
		rc = dc_cache_evict(fs->cache, &tag, DC_RETRY, &count);
		break;
	case ACT_INCR:
	case ACT_DECR:
		return run_incr(fs, action == ACT_DECR, cmd, len, t);
	default:
		return EINVAL;
	}
	err = dcfs_errno(rc);
	if (!err)
		text_add(t, "removed %llu\n", (unsigned long long)count);
	return err;
}

ssize_t dcfs_ctl_write(struct dcfs_fh *fh, const char *data, size_t size)
{
	struct dcfs_ch *ch = (struct dcfs_ch *)fh;
	struct dcfs *fs = ch->fs;
	struct dcfs_ctl *c = fs->ctl;
	struct text result = { 0 };
	struct dc_value v;
	size_t len = dcfs_trim(data, size);
	int rc, err;

	if (ch->kind == DCFS_CTL_SETTING) {
		err = dcfs_parse_setting(ch->name, data, size, &v);
		if (err)
			goto out;
		rc = dc_cache_setting_set(fs->cache, ch->name, &v);
		/* DC_NOTFOUND: DiskCache only updates settings it has. */
		err = rc == DC_NOTFOUND ? EINVAL : dcfs_errno(rc);
		if (!err && strcmp(ch->name, "disk_min_file_size") == 0 &&
		    v.i >= 0)
			__atomic_store_n(&fs->spool_limit, (uint64_t)v.i,
					 __ATOMIC_RELAXED);
		if (!err)
			err = render_setting(fs, ch->name, &result);
	} else if (ch->action >= 0) {
		err = run_action(fs, ch->action, data, len, &result);
		/* Keys changed behind the kernel's back: have its caches
		 * invalidated before this write returns (another thread
		 * sends the notifications; see coherence.c). */
		if (!err)
			dcfs_coh_sync(fs);
		if (!err && !result.err) {
			pthread_mutex_lock(&c->lock);
			free(c->last[ch->action]);
			c->last[ch->action] =
			    result.s ? strdup(result.s) : NULL;
			pthread_mutex_unlock(&c->lock);
		}
	} else {
		err = EACCES;
	}
	if (!err)
		err = result.err;
	if (err)
		goto out;
	/* A later read of this handle shows the result. */
	pthread_mutex_lock(&ch->lock);
	free(ch->text.s);
	ch->text = result;
	pthread_mutex_unlock(&ch->lock);
	result.s = NULL;
out:
	if (err)
		dcfs_log(FUSE_LOG_INFO, ".ctl/%s: rejected write: %s", ch->name,
			 strerror(err));
	free(result.s);
	return err ? -(ssize_t)err : (ssize_t)size;
}

void dcfs_ctl_close(struct dcfs_fh *fh)
{
	struct dcfs_ch *ch = (struct dcfs_ch *)fh;

	if (!ch)
		return;
	free(ch->text.s);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}
