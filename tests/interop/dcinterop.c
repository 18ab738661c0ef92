/* dcinterop.c - command driver letting Python interop tests run libdcache
 * SPDX-License-Identifier: MIT
 *
 * usage: dcinterop DIR [--shards N|plain] [--timeout SECS]
 *                  [--setting NAME=SPEC]... COMMAND ARGS...
 *        dcinterop DIR [options] script      (commands from stdin)
 *
 * Every command prints exactly one line of JSON: {"rc":N, ...}.  rc is
 * the library's return code (0, a negative DC_* code or a positive errno);
 * -1 means the driver itself rejected the command (usage).  In script
 * mode each line of stdin is one command and each answer is flushed at
 * once, so a test can interleave the driver with Python on one directory.
 *
 * A SPEC names a key, value or tag exactly (no escaping problems):
 *   int:N  float:F (strtod: decimal or C99 hex)  str:TEXT  strx:HEX
 *   strrep:N:HEX (HEX repeated N times)  bytes:HEX  bytesrep:N:HEX
 *   pickle:HEX  picklerep:N:HEX  none
 * Values come back as {"type":"int","int":N}, {"type":"float","float":
 * "<%a>"}, {"type":"str"|"bytes"|"pickle","hex":"..."} or null; doubles
 * (times) as "%a" strings or null for NaN, so Python compares them
 * bit-exactly with float.fromhex().
 *
 * Commands (options are name=value or bare words after the arguments):
 *   set KEY VALUE [expire=S] [tag=SPEC] [add] [retry]   add KEY VALUE ...
 *   setfd KEY VALUE [offset=N] ...   (VALUE via a temporary file + set_fd)
 *   setfile KEY VALUE ...            (dc_cache_mkstemp + dc_cache_set_file)
 *   get KEY [fd] [novalue] [retry]   pop KEY [fd]   contains KEY
 *   touch KEY [expire=S]   delete KEY
 *   incr KEY DELTA [default=N|nodefault] [retry]   decr ...
 *   push VALUE [prefix=P] [front] [expire=S] [tag=SPEC]
 *   pull|peek [prefix=P] [back] [fd]   peekitem [first]
 *   push-many N [prefix=P] [front] [tag=SPEC]   (values str "c-<i>")
 *   pull-n N [prefix=P] [back] [timeout=S]   (N=0: until empty)
 *   clear | expire [now=T] | evict TAG | cull   -> count
 *   len | volume | stats [enable=0|1] [reset] | check [fix]
 *   setting-get NAME | setting-set NAME SPEC | settings
 *   shard-of KEY | hash KEY | shards | version
 *   dump [reverse] [sorted] [alive] [values] [prefix=P]
 *   begin | commit | rollback | reopen | sub cache|deque|index NAME | unsub
 *   deque-append VALUE [front]   deque-pop [front]   deque-pop-all [front]
 *   deque-dump   deque-rotate N   deque-reverse     (DIR as a dc_deque)
 *   index-set KEY VALUE   index-popitem [first]   index-items [reverse]
 *                                                   (DIR as a dc_index)
 *   repeat N COMMAND...   sleep S   echo WORD   quit
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"
#include "drvutil.h"

#define RC_USAGE (-1)
#define MAX_ARGS 64

/* ------------------------------------------------------------------ */
/* Output buffer                                                      */
/* ------------------------------------------------------------------ */

struct sb {
	char *p;
	size_t len;
	size_t cap;
};

static void sb_reserve(struct sb *sb, size_t more)
{
	size_t cap = sb->cap ? sb->cap : 256;
	char *p;

	if (sb->len + more + 1 <= sb->cap)
		return;
	while (cap < sb->len + more + 1)
		cap *= 2;
	p = realloc(sb->p, cap);
	if (!p)
		drv_die("out of memory");
	sb->p = p;
	sb->cap = cap;
}

static void sb_add(struct sb *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
}

static void sb_puts(struct sb *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

static void sb_printf(struct sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		drv_die("vsnprintf failed");
	sb_reserve(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

static void sb_reset(struct sb *sb)
{
	sb->len = 0;
	if (sb->p)
		sb->p[0] = '\0';
}

static void sb_free(struct sb *sb)
{
	free(sb->p);
	sb->p = NULL;
	sb->len = 0;
	sb->cap = 0;
}

static void sb_hex(struct sb *sb, const void *data, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = data;
	size_t i;

	sb_reserve(sb, 2 * n);
	for (i = 0; i < n; i++) {
		sb->p[sb->len++] = digits[b[i] >> 4];
		sb->p[sb->len++] = digits[b[i] & 15];
	}
	sb->p[sb->len] = '\0';
}

/* A JSON string; bytes outside printable ASCII become \u00XX so the line
 * is always valid JSON (messages are for humans, exactness not needed). */
static void sb_jstr(struct sb *sb, const char *s)
{
	const unsigned char *c;

	sb_puts(sb, "\"");
	for (c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			sb_printf(sb, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f)
			sb_printf(sb, "\\u%04x", *c);
		else
			sb_add(sb, (const char *)c, 1);
	}
	sb_puts(sb, "\"");
}

static void sb_double(struct sb *sb, double d)
{
	if (isnan(d))
		sb_puts(sb, "null");
	else
		sb_printf(sb, "\"%a\"", d);
}

static void sb_value(struct sb *sb, const struct dc_value *v)
{
	const char *name = dc_type_name(v->type);

	switch (v->type) {
	case DC_TYPE_NONE:
		sb_puts(sb, "null");
		break;
	case DC_TYPE_INT:
		sb_printf(sb, "{\"type\":\"int\",\"int\":%" PRId64 "}", v->i);
		break;
	case DC_TYPE_FLOAT:
		sb_printf(sb, "{\"type\":\"float\",\"float\":");
		sb_double(sb, v->f);
		sb_puts(sb, "}");
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		sb_printf(sb, "{\"type\":\"%s\",\"hex\":\"", name ? name : "?");
		sb_hex(sb, v->data, v->len);
		sb_puts(sb, "\"}");
		break;
	default:
		sb_printf(sb, "{\"type\":\"unknown-%d\"}", (int)v->type);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Command arguments                                                  */
/* ------------------------------------------------------------------ */

struct args {
	const char *pos[MAX_ARGS];
	int npos;
	unsigned flags;
	double expire;
	struct drv_spec tag;
	int has_tag;
	const char *prefix;
	int64_t dflt;
	int nodefault;
	double now;
	double timeout;
	int64_t offset;
	int enable;
	int reset;
	int fix;
	int values;
	const char *bad; /* first option that did not parse */
};

static const struct {
	const char *word;
	unsigned flag;
} flag_words[] = {
	{ "retry", DC_RETRY },     { "fd", DC_FD },
	{ "novalue", DC_NOVALUE }, { "add", DC_ADD },
	{ "reverse", DC_REVERSE }, { "sorted", DC_SORTED },
	{ "alive", DC_ALIVE },     { "front", DC_FRONT },
	{ "back", DC_BACK },       { "first", DC_FIRST },
};

static int opt_value(const char *tok, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(tok, name, n) || tok[n] != '=')
		return 0;
	*val = tok + n + 1;
	return 1;
}

static int parse_option(struct args *a, const char *tok)
{
	const char *v;
	size_t i;
	int ok = 1;

	for (i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]); i++) {
		if (!strcmp(tok, flag_words[i].word)) {
			a->flags |= flag_words[i].flag;
			return 1;
		}
	}
	if (!strcmp(tok, "nodefault"))
		a->nodefault = 1;
	else if (!strcmp(tok, "reset"))
		a->reset = 1;
	else if (!strcmp(tok, "fix"))
		a->fix = 1;
	else if (!strcmp(tok, "values"))
		a->values = 1;
	else if (opt_value(tok, "expire", &v))
		ok = !drv_parse_double(v, &a->expire);
	else if (opt_value(tok, "now", &v))
		ok = !drv_parse_double(v, &a->now);
	else if (opt_value(tok, "timeout", &v))
		ok = !drv_parse_double(v, &a->timeout);
	else if (opt_value(tok, "default", &v))
		ok = !drv_parse_i64(v, &a->dflt);
	else if (opt_value(tok, "offset", &v))
		ok = !drv_parse_i64(v, &a->offset);
	else if (opt_value(tok, "enable", &v))
		a->enable = atoi(v);
	else if (opt_value(tok, "prefix", &v))
		a->prefix = v;
	else if (opt_value(tok, "tag", &v)) {
		drv_spec_free(&a->tag);
		ok = !drv_spec_parse(v, &a->tag);
		a->has_tag = ok && a->tag.v.type != DC_TYPE_NONE;
	} else
		return 0;
	if (!ok && !a->bad)
		a->bad = tok;
	return 1;
}

static void args_parse(struct args *a, int argc, char **argv)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->expire = DC_NO_EXPIRE;
	a->enable = 1;
	for (i = 0; i < argc; i++) {
		if (parse_option(a, argv[i]))
			continue;
		if (a->npos < MAX_ARGS)
			a->pos[a->npos++] = argv[i];
		else if (!a->bad)
			a->bad = argv[i];
	}
}

static void args_free(struct args *a)
{
	drv_spec_free(&a->tag);
}

static const struct dc_value *args_tag(const struct args *a)
{
	return a->has_tag ? &a->tag.v : NULL;
}

/* ------------------------------------------------------------------ */
/* Driver state                                                       */
/* ------------------------------------------------------------------ */

struct ctx {
	const char *dir;
	struct dc_options opts;
	struct dc_setting settings[32];
	struct drv_spec setting_specs[32];
	dc_cache *root;
	dc_cache *sub; /* current sub-collection, or NULL */
	dc_deque *dq;  /* deque-* commands: DIR as a Deque, opened lazily */
	dc_index *ix;  /* index-* commands: DIR as an Index, opened lazily */
	int quit;
};

static dc_cache *cur(struct ctx *c)
{
	return c->sub ? c->sub : c->root;
}

static void log_cb(void *arg, enum dc_log_level level, const char *msg)
{
	(void)arg;
	fprintf(stderr, "dcinterop: log %d: %s\n", (int)level, msg);
}

static int ctx_open(struct ctx *c)
{
	return dc_cache_open(c->dir, &c->opts, &c->root);
}

static void ctx_close(struct ctx *c)
{
	dc_deque_close(c->dq);
	c->dq = NULL;
	dc_index_close(c->ix);
	c->ix = NULL;
	dc_cache_close(c->sub);
	c->sub = NULL;
	dc_cache_close(c->root);
	c->root = NULL;
}

static void item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
	it->expire_time = DC_NO_EXPIRE;
}

/* Append a read item's fields.  A returned descriptor is read to its end
 * (so the test sees what a DC_FD reader sees) and closed. */
static void out_item(struct sb *ex, struct dc_item *it, int with_key)
{
	if (with_key) {
		sb_puts(ex, ",\"key\":");
		sb_value(ex, &it->key);
	}
	if (it->fd >= 0) {
		struct sb data = { 0 };
		char chunk[65536];
		ssize_t n;

		while ((n = read(it->fd, chunk, sizeof(chunk))) > 0)
			sb_add(&data, chunk, (size_t)n);
		sb_puts(ex, ",\"from_fd\":1,\"fd_read_error\":");
		sb_puts(ex, n < 0 ? "1" : "0");
		sb_puts(ex, ",\"value\":{\"type\":\"bytes\",\"hex\":\"");
		sb_hex(ex, data.p ? data.p : "", data.len);
		sb_puts(ex, "\"}");
		sb_free(&data);
		close(it->fd);
		it->fd = -1;
	} else {
		sb_puts(ex, ",\"value\":");
		sb_value(ex, &it->value);
	}
	sb_puts(ex, ",\"expire_time\":");
	sb_double(ex, it->expire_time);
	sb_puts(ex, ",\"tag\":");
	sb_value(ex, &it->tag);
	sb_puts(ex, ",\"store_time\":");
	sb_double(ex, it->store_time);
	sb_puts(ex, ",\"access_time\":");
	sb_double(ex, it->access_time);
	sb_printf(ex,
		  ",\"access_count\":%" PRId64 ",\"size\":%" PRIu64
		  ",\"file_backed\":%d",
		  it->access_count, it->size, it->file_backed);
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

typedef int (*cmd_fn)(struct ctx *c, struct args *a, struct sb *ex);

/* Parse positional argument @i as a spec; reports a usage error. */
static int pos_spec(struct args *a, int i, struct drv_spec *s, struct sb *ex)
{
	if (i >= a->npos) {
		sb_printf(ex, ",\"usage\":\"missing argument %d\"", i + 1);
		return RC_USAGE;
	}
	if (drv_spec_parse(a->pos[i], s)) {
		sb_puts(ex, ",\"usage\":");
		sb_jstr(ex, a->pos[i]);
		return RC_USAGE;
	}
	return 0;
}

static int cmd_set(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 }, v = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = pos_spec(a, 1, &v, ex);
	if (!ret)
		ret = dc_cache_set(cur(c), &k.v, &v.v, a->expire, args_tag(a),
				   a->flags);
	drv_spec_free(&k);
	drv_spec_free(&v);
	return ret;
}

static int cmd_add(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 }, v = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = pos_spec(a, 1, &v, ex);
	if (!ret)
		ret = dc_cache_add(cur(c), &k.v, &v.v, a->expire, args_tag(a),
				   a->flags);
	drv_spec_free(&k);
	drv_spec_free(&v);
	return ret;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static const void *spec_data(const struct drv_spec *s, size_t *len)
{
	*len = s->v.len;
	return s->v.data ? s->v.data : "";
}

static int cmd_setfd(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 }, v = { 0 };
	FILE *tmp = NULL;
	const void *data;
	size_t len;
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = pos_spec(a, 1, &v, ex);
	if (ret)
		goto out;
	tmp = tmpfile();
	if (!tmp) {
		ret = errno;
		goto out;
	}
	data = spec_data(&v, &len);
	ret = write_all(fileno(tmp), data, len);
	if (ret)
		goto out;
	/* The library must read from the descriptor's current offset. */
	if (lseek(fileno(tmp), (off_t)a->offset, SEEK_SET) < 0) {
		ret = errno;
		goto out;
	}
	ret = dc_cache_set_fd(cur(c), &k.v, fileno(tmp), a->expire, args_tag(a),
			      a->flags);
out:
	if (tmp)
		fclose(tmp);
	drv_spec_free(&k);
	drv_spec_free(&v);
	return ret;
}

static int cmd_setfile(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 }, v = { 0 };
	char path[4096];
	const void *data;
	size_t len;
	int fd = -1, ret;

	path[0] = '\0';
	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = pos_spec(a, 1, &v, ex);
	if (ret)
		goto out;
	fd = dc_cache_mkstemp(cur(c), path, sizeof(path));
	if (fd < 0) {
		/* Negative DC_* codes pass as they are; errno came negated. */
		ret = fd > -30000 ? -fd : fd;
		fd = -1;
		goto out;
	}
	sb_puts(ex, ",\"tmp\":");
	sb_jstr(ex, path);
	data = spec_data(&v, &len);
	ret = write_all(fd, data, len);
	close(fd);
	fd = -1;
	if (ret)
		goto out;
	ret = dc_cache_set_file(cur(c), &k.v, path, v.v.type, a->expire,
				args_tag(a), a->flags);
	/* Adopted means renamed away; a failure must leave the file. */
	sb_printf(ex, ",\"tmp_exists\":%d", access(path, F_OK) == 0);
	if (ret && access(path, F_OK) == 0)
		unlink(path);
out:
	if (fd >= 0)
		close(fd);
	drv_spec_free(&k);
	drv_spec_free(&v);
	return ret;
}

static int cmd_get(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct drv_spec k = { 0 };
	int ret;

	item_init(&it);
	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_cache_get(cur(c), &k.v, &buf, &it, a->flags);
	if (!ret)
		out_item(ex, &it, 0);
	if (it.fd >= 0)
		close(it.fd);
	dc_buf_release(&buf);
	drv_spec_free(&k);
	return ret;
}

static int cmd_pop(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct drv_spec k = { 0 };
	int ret;

	item_init(&it);
	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_cache_pop(cur(c), &k.v, &buf, &it, a->flags);
	if (!ret)
		out_item(ex, &it, 0);
	if (it.fd >= 0)
		close(it.fd);
	dc_buf_release(&buf);
	drv_spec_free(&k);
	return ret;
}

static int cmd_contains(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_cache_contains(cur(c), &k.v);
	drv_spec_free(&k);
	return ret;
}

static int cmd_touch(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_cache_touch(cur(c), &k.v, a->expire, a->flags);
	drv_spec_free(&k);
	return ret;
}

static int cmd_delete(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_cache_delete(cur(c), &k.v, a->flags);
	drv_spec_free(&k);
	return ret;
}

static int incr_common(struct ctx *c, struct args *a, struct sb *ex, int decr)
{
	struct dc_value result = { 0 };
	struct drv_spec k = { 0 };
	int64_t delta;
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (ret)
		goto out;
	if (a->npos < 2 || drv_parse_i64(a->pos[1], &delta)) {
		sb_puts(ex, ",\"usage\":\"DELTA\"");
		ret = RC_USAGE;
		goto out;
	}
	if (decr)
		ret = dc_cache_decr(cur(c), &k.v, delta,
				    a->nodefault ? NULL : &a->dflt, &result,
				    a->flags);
	else
		ret = dc_cache_incr(cur(c), &k.v, delta,
				    a->nodefault ? NULL : &a->dflt, &result,
				    a->flags);
	if (!ret) {
		sb_puts(ex, ",\"value\":");
		sb_value(ex, &result);
	}
out:
	drv_spec_free(&k);
	return ret;
}

static int cmd_incr(struct ctx *c, struct args *a, struct sb *ex)
{
	return incr_common(c, a, ex, 0);
}

static int cmd_decr(struct ctx *c, struct args *a, struct sb *ex)
{
	return incr_common(c, a, ex, 1);
}

static int cmd_push(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key = { 0 };
	struct drv_spec v = { 0 };
	int ret;

	ret = pos_spec(a, 0, &v, ex);
	if (!ret)
		ret = dc_cache_push(cur(c), &v.v, a->prefix, a->expire,
				    args_tag(a), a->flags, &buf, &key);
	if (!ret) {
		sb_puts(ex, ",\"key\":");
		sb_value(ex, &key);
	}
	dc_buf_release(&buf);
	drv_spec_free(&v);
	return ret;
}

static int cmd_pull(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret;

	item_init(&it);
	ret = dc_cache_pull(cur(c), a->prefix, &buf, &it, a->flags);
	if (!ret)
		out_item(ex, &it, 1);
	if (it.fd >= 0)
		close(it.fd);
	dc_buf_release(&buf);
	return ret;
}

static int cmd_peek(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret;

	item_init(&it);
	ret = dc_cache_peek(cur(c), a->prefix, &buf, &it, a->flags);
	if (!ret)
		out_item(ex, &it, 1);
	if (it.fd >= 0)
		close(it.fd);
	dc_buf_release(&buf);
	return ret;
}

static int cmd_peekitem(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret;

	item_init(&it);
	ret = dc_cache_peekitem(cur(c), &buf, &it, a->flags);
	if (!ret)
		out_item(ex, &it, 1);
	if (it.fd >= 0)
		close(it.fd);
	dc_buf_release(&buf);
	return ret;
}

static int parse_count(struct args *a, int i, int64_t *n, struct sb *ex)
{
	if (i >= a->npos || drv_parse_i64(a->pos[i], n) || *n < 0) {
		sb_puts(ex, ",\"usage\":\"COUNT\"");
		return RC_USAGE;
	}
	return 0;
}

static int cmd_push_many(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key, val;
	char text[64];
	int64_t n, i;
	int ret;

	ret = parse_count(a, 0, &n, ex);
	if (ret)
		goto out;
	sb_puts(ex, ",\"keys\":[");
	for (i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "c-%" PRId64, i);
		val = dc_text(text);
		ret = dc_cache_push(cur(c), &val, a->prefix, a->expire,
				    args_tag(a), a->flags, &buf, &key);
		if (ret)
			break;
		if (i)
			sb_puts(ex, ",");
		sb_value(ex, &key);
	}
	sb_puts(ex, "]");
out:
	dc_buf_release(&buf);
	return ret;
}

/* Pull N items (0: until the queue is empty), waiting on an empty queue
 * until @timeout seconds passed without progress. */
static int cmd_pull_n(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int64_t n, got = 0;
	double last;
	int ret;

	ret = parse_count(a, 0, &n, ex);
	if (ret)
		goto out;
	last = drv_mono();
	sb_puts(ex, ",\"items\":[");
	while (!n || got < n) {
		item_init(&it);
		ret = dc_cache_pull(cur(c), a->prefix, &buf, &it, a->flags);
		if (ret == DC_NOTFOUND && n && drv_mono() - last < a->timeout) {
			drv_sleep(0.001);
			continue;
		}
		if (ret == DC_NOTFOUND && !n) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		last = drv_mono();
		sb_puts(ex, got ? ",{\"key\":" : "{\"key\":");
		sb_value(ex, &it.key);
		sb_puts(ex, ",\"value\":");
		sb_value(ex, &it.value);
		sb_puts(ex, "}");
		got++;
	}
	sb_printf(ex, "],\"got\":%" PRId64, got);
out:
	dc_buf_release(&buf);
	return ret;
}

static void out_count(struct sb *ex, uint64_t n)
{
	sb_printf(ex, ",\"count\":%" PRIu64, n);
}

static int cmd_clear(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t n = 0;
	int ret = dc_cache_clear(cur(c), a->flags, &n);

	out_count(ex, n);
	return ret;
}

static int cmd_expire(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t n = 0;
	int ret = dc_cache_expire(cur(c), a->now, a->flags, &n);

	out_count(ex, n);
	return ret;
}

static int cmd_evict(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec t = { 0 };
	uint64_t n = 0;
	int ret;

	ret = pos_spec(a, 0, &t, ex);
	if (!ret) {
		ret = dc_cache_evict(cur(c), &t.v, a->flags, &n);
		out_count(ex, n);
	}
	drv_spec_free(&t);
	return ret;
}

static int cmd_cull(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t n = 0;
	int ret = dc_cache_cull(cur(c), a->flags, &n);

	out_count(ex, n);
	return ret;
}

static int cmd_len(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t n = 0;
	int ret = dc_cache_len(cur(c), &n);

	(void)a;
	out_count(ex, n);
	return ret;
}

static int cmd_volume(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t n = 0;
	int ret = dc_cache_volume(cur(c), &n);

	(void)a;
	sb_printf(ex, ",\"bytes\":%" PRIu64, n);
	return ret;
}

static int cmd_stats(struct ctx *c, struct args *a, struct sb *ex)
{
	uint64_t hits = 0, misses = 0;
	int ret = dc_cache_stats(cur(c), a->enable, a->reset, &hits, &misses);

	sb_printf(ex, ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64, hits,
		  misses);
	return ret;
}

struct warn_acc {
	struct sb *sb;
	int n;
};

static void warn_cb(void *arg, enum dc_warning kind, const char *message)
{
	struct warn_acc *w = arg;

	sb_printf(w->sb, "%s{\"kind\":%d,\"msg\":", w->n ? "," : "", (int)kind);
	sb_jstr(w->sb, message ? message : "");
	sb_puts(w->sb, "}");
	w->n++;
}

static int cmd_check(struct ctx *c, struct args *a, struct sb *ex)
{
	struct warn_acc w = { ex, 0 };
	uint64_t n = 0;
	int ret;

	sb_puts(ex, ",\"warnings\":[");
	ret = dc_cache_check(cur(c), a->fix, a->flags, warn_cb, &w, &n);
	sb_printf(ex, "],\"nwarnings\":%" PRIu64, n);
	return ret;
}

static int cmd_setting_get(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v = { 0 };
	int ret;

	if (a->npos < 1) {
		sb_puts(ex, ",\"usage\":\"NAME\"");
		return RC_USAGE;
	}
	ret = dc_cache_setting_get(cur(c), a->pos[0], &buf, &v);
	if (!ret) {
		sb_puts(ex, ",\"value\":");
		sb_value(ex, &v);
	}
	dc_buf_release(&buf);
	return ret;
}

static int cmd_setting_set(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec v = { 0 };
	int ret;

	if (a->npos < 1) {
		sb_puts(ex, ",\"usage\":\"NAME SPEC\"");
		return RC_USAGE;
	}
	ret = pos_spec(a, 1, &v, ex);
	if (!ret)
		ret = dc_cache_setting_set(cur(c), a->pos[0], &v.v);
	drv_spec_free(&v);
	return ret;
}

static int cmd_settings(struct ctx *c, struct args *a, struct sb *ex)
{
	static const char *const meta[] = { "count", "size", "hits", "misses",
					    NULL };
	const char *const *names[2] = { dc_cache_setting_names(), meta };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value v;
	int ret = 0, first = 1, r, i, j;

	(void)a;
	sb_puts(ex, ",\"settings\":{");
	for (i = 0; i < 2; i++) {
		for (j = 0; names[i] && names[i][j]; j++) {
			memset(&v, 0, sizeof(v));
			r = dc_cache_setting_get(cur(c), names[i][j], &buf, &v);
			sb_puts(ex, first ? "" : ",");
			first = 0;
			sb_jstr(ex, names[i][j]);
			sb_puts(ex, ":");
			if (r == 0)
				sb_value(ex, &v);
			else
				sb_printf(ex, "{\"rc\":%d}", r);
			if (r && r != DC_NOTFOUND && !ret)
				ret = r;
		}
	}
	sb_puts(ex, "}");
	dc_buf_release(&buf);
	return ret;
}

static int cmd_shard_of(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 };
	int ret;

	ret = pos_spec(a, 0, &k, ex);
	if (!ret) {
		ret = dc_cache_shard_of(cur(c), &k.v);
		if (ret >= 0) {
			sb_printf(ex, ",\"shard\":%d", ret);
			ret = 0;
		}
	}
	drv_spec_free(&k);
	return ret;
}

static int cmd_hash(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 };
	uint32_t h = 0;
	int ret;

	(void)c;
	ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = dc_key_hash(&k.v, &h);
	if (!ret)
		sb_printf(ex, ",\"hash\":%" PRIu32, h);
	drv_spec_free(&k);
	return ret;
}

static int cmd_shards(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	sb_printf(ex, ",\"shards\":%d", dc_cache_shards(cur(c)));
	return 0;
}

static int cmd_version(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)c;
	(void)a;
	sb_puts(ex, ",\"version\":");
	sb_jstr(ex, dc_version());
	return 0;
}

static int cmd_dump(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item it, vit;
	dc_iter *iter = NULL;
	const char *prefix = a->prefix;
	int ret, n = 0;

	ret = dc_iter_open(cur(c), a->flags, prefix,
			   prefix ? strlen(prefix) : 0, &iter);
	if (ret)
		goto out;
	sb_puts(ex, ",\"items\":[");
	for (;;) {
		item_init(&it);
		ret = dc_iter_next(iter, &buf, &it);
		if (ret == DC_NOTFOUND) {
			ret = 0;
			break;
		}
		if (ret)
			break;
		sb_puts(ex, n++ ? ",{\"rc\":0" : "{\"rc\":0");
		out_item(ex, &it, 1);
		if (a->values) {
			item_init(&vit);
			ret = dc_cache_get(cur(c), &it.key, &vbuf, &vit, 0);
			sb_printf(ex, ",\"get_rc\":%d,\"get_value\":", ret);
			if (!ret)
				sb_value(ex, &vit.value);
			else
				sb_puts(ex, "null");
			ret = 0;
		}
		sb_puts(ex, "}");
	}
	sb_puts(ex, "]");
out:
	dc_iter_close(iter);
	dc_buf_release(&buf);
	dc_buf_release(&vbuf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Deque and Index (DIR itself, opened as Python's Deque / Index)     */
/* ------------------------------------------------------------------ */

static int want_deque(struct ctx *c)
{
	if (c->dq)
		return 0;
	return dc_deque_open(c->dir, NULL, &c->dq);
}

static int want_index(struct ctx *c)
{
	if (c->ix)
		return 0;
	return dc_index_open(c->dir, NULL, &c->ix);
}

/* deque-append VALUE [front] */
static int cmd_deque_append(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec v = { 0 };
	int ret = want_deque(c);

	if (!ret)
		ret = pos_spec(a, 0, &v, ex);
	if (!ret)
		ret = (a->flags & DC_FRONT) ? dc_deque_appendleft(c->dq, &v.v)
					    : dc_deque_append(c->dq, &v.v);
	drv_spec_free(&v);
	return ret;
}

/* deque-pop [front] [peek]: pop (or popleft with front). */
static int cmd_deque_pop(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret = want_deque(c);

	item_init(&it);
	if (!ret)
		ret = (a->flags & DC_FRONT) ? dc_deque_popleft(c->dq, &buf, &it)
					    : dc_deque_pop(c->dq, &buf, &it);
	if (!ret)
		out_item(ex, &it, 1);
	dc_buf_release(&buf);
	return ret;
}

/* deque-pop-all [front]: pop until empty; the values in pop order. */
static int cmd_deque_pop_all(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int64_t got = 0;
	int ret = want_deque(c);

	sb_puts(ex, ",\"values\":[");
	while (!ret) {
		item_init(&it);
		ret = (a->flags & DC_FRONT) ? dc_deque_popleft(c->dq, &buf, &it)
					    : dc_deque_pop(c->dq, &buf, &it);
		if (ret)
			break;
		if (got++)
			sb_puts(ex, ",");
		sb_value(ex, &it.value);
	}
	if (ret == DC_NOTFOUND)
		ret = 0;
	sb_printf(ex, "],\"got\":%" PRId64, got);
	dc_buf_release(&buf);
	return ret;
}

/* deque-dump: the values front to back, read with dc_deque_get. */
static int cmd_deque_dump(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	uint64_t n = 0;
	int ret = want_deque(c);

	(void)a;
	if (!ret)
		ret = dc_deque_len(c->dq, &n);
	sb_puts(ex, ",\"values\":[");
	for (uint64_t i = 0; !ret && i < n; i++) {
		item_init(&it);
		ret = dc_deque_get(c->dq, (int64_t)i, &buf, &it);
		if (ret)
			break;
		if (i)
			sb_puts(ex, ",");
		sb_value(ex, &it.value);
	}
	sb_puts(ex, "]");
	dc_buf_release(&buf);
	return ret;
}

/* deque-rotate N | deque-reverse */
static int cmd_deque_rotate(struct ctx *c, struct args *a, struct sb *ex)
{
	int64_t n;
	int ret = want_deque(c);

	if (ret)
		return ret;
	if (a->npos < 1 || drv_parse_i64(a->pos[0], &n)) {
		sb_puts(ex, ",\"usage\":\"N\"");
		return RC_USAGE;
	}
	return dc_deque_rotate(c->dq, n);
}

static int cmd_deque_reverse(struct ctx *c, struct args *a, struct sb *ex)
{
	int ret = want_deque(c);

	(void)a;
	(void)ex;
	return ret ? ret : dc_deque_reverse(c->dq);
}

/* index-set KEY VALUE */
static int cmd_index_set(struct ctx *c, struct args *a, struct sb *ex)
{
	struct drv_spec k = { 0 }, v = { 0 };
	int ret = want_index(c);

	if (!ret)
		ret = pos_spec(a, 0, &k, ex);
	if (!ret)
		ret = pos_spec(a, 1, &v, ex);
	if (!ret)
		ret = dc_index_set(c->ix, &k.v, &v.v);
	drv_spec_free(&k);
	drv_spec_free(&v);
	return ret;
}

/* index-popitem [first] */
static int cmd_index_popitem(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret = want_index(c);

	item_init(&it);
	if (!ret)
		ret = dc_index_popitem(c->ix, a->flags & DC_FIRST, &buf, &it);
	if (!ret)
		out_item(ex, &it, 1);
	dc_buf_release(&buf);
	return ret;
}

/* index-items [reverse]: [key, value] pairs in insertion order. */
static int cmd_index_items(struct ctx *c, struct args *a, struct sb *ex)
{
	struct dc_buf kbuf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item k, v;
	dc_iter *it = NULL;
	int first = 1;
	int ret = want_index(c);

	if (!ret)
		ret = dc_iter_open(dc_index_cache(c->ix), a->flags & DC_REVERSE,
				   NULL, 0, &it);
	sb_puts(ex, ",\"items\":[");
	while (!ret) {
		item_init(&k);
		ret = dc_iter_next(it, &kbuf, &k);
		if (ret)
			break;
		item_init(&v);
		ret = dc_index_get(c->ix, &k.key, &vbuf, &v);
		if (ret == DC_NOTFOUND) {
			ret = 0;
			continue;
		}
		if (ret)
			break;
		sb_puts(ex, first ? "[" : ",[");
		first = 0;
		sb_value(ex, &k.key);
		sb_puts(ex, ",");
		sb_value(ex, &v.value);
		sb_puts(ex, "]");
	}
	if (ret == DC_NOTFOUND)
		ret = 0;
	sb_puts(ex, "]");
	dc_iter_close(it);
	dc_buf_release(&kbuf);
	dc_buf_release(&vbuf);
	return ret;
}

static int cmd_begin(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)ex;
	return dc_cache_begin(cur(c), a->flags);
}

static int cmd_commit(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	(void)ex;
	return dc_cache_commit(cur(c));
}

static int cmd_rollback(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	(void)ex;
	return dc_cache_rollback(cur(c));
}

static int cmd_reopen(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	(void)ex;
	ctx_close(c);
	return ctx_open(c);
}

static int cmd_sub(struct ctx *c, struct args *a, struct sb *ex)
{
	enum dc_sub kind;
	dc_cache *sub = NULL;
	int ret;

	if (a->npos < 2) {
		sb_puts(ex, ",\"usage\":\"KIND NAME\"");
		return RC_USAGE;
	}
	if (!strcmp(a->pos[0], "cache")) {
		kind = DC_SUB_CACHE;
	} else if (!strcmp(a->pos[0], "deque")) {
		kind = DC_SUB_DEQUE;
	} else if (!strcmp(a->pos[0], "index")) {
		kind = DC_SUB_INDEX;
	} else {
		sb_puts(ex, ",\"usage\":\"KIND\"");
		return RC_USAGE;
	}
	ret = dc_cache_open_sub(c->root, kind, a->pos[1], NULL, &sub);
	if (!ret) {
		dc_cache_close(c->sub);
		c->sub = sub;
	}
	return ret;
}

static int cmd_unsub(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	(void)ex;
	dc_cache_close(c->sub);
	c->sub = NULL;
	return 0;
}

static int cmd_sleep(struct ctx *c, struct args *a, struct sb *ex)
{
	double s;

	(void)c;
	if (a->npos < 1 || drv_parse_double(a->pos[0], &s)) {
		sb_puts(ex, ",\"usage\":\"SECONDS\"");
		return RC_USAGE;
	}
	drv_sleep(s);
	return 0;
}

static int cmd_echo(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)c;
	sb_puts(ex, ",\"echo\":");
	sb_jstr(ex, a->npos ? a->pos[0] : "");
	return 0;
}

static int cmd_quit(struct ctx *c, struct args *a, struct sb *ex)
{
	(void)a;
	(void)ex;
	c->quit = 1;
	return 0;
}

static const struct {
	const char *name;
	cmd_fn fn;
	int needs_cache;
} commands[] = {
	{ "set", cmd_set, 1 },
	{ "add", cmd_add, 1 },
	{ "setfd", cmd_setfd, 1 },
	{ "setfile", cmd_setfile, 1 },
	{ "get", cmd_get, 1 },
	{ "pop", cmd_pop, 1 },
	{ "contains", cmd_contains, 1 },
	{ "touch", cmd_touch, 1 },
	{ "delete", cmd_delete, 1 },
	{ "incr", cmd_incr, 1 },
	{ "decr", cmd_decr, 1 },
	{ "push", cmd_push, 1 },
	{ "pull", cmd_pull, 1 },
	{ "peek", cmd_peek, 1 },
	{ "peekitem", cmd_peekitem, 1 },
	{ "push-many", cmd_push_many, 1 },
	{ "pull-n", cmd_pull_n, 1 },
	{ "clear", cmd_clear, 1 },
	{ "expire", cmd_expire, 1 },
	{ "evict", cmd_evict, 1 },
	{ "cull", cmd_cull, 1 },
	{ "len", cmd_len, 1 },
	{ "volume", cmd_volume, 1 },
	{ "stats", cmd_stats, 1 },
	{ "check", cmd_check, 1 },
	{ "setting-get", cmd_setting_get, 1 },
	{ "setting-set", cmd_setting_set, 1 },
	{ "settings", cmd_settings, 1 },
	{ "shard-of", cmd_shard_of, 1 },
	{ "hash", cmd_hash, 0 },
	{ "shards", cmd_shards, 1 },
	{ "version", cmd_version, 0 },
	{ "dump", cmd_dump, 1 },
	{ "begin", cmd_begin, 1 },
	{ "commit", cmd_commit, 1 },
	{ "rollback", cmd_rollback, 1 },
	{ "reopen", cmd_reopen, 0 },
	{ "sub", cmd_sub, 1 },
	{ "deque-append", cmd_deque_append, 0 },
	{ "deque-pop", cmd_deque_pop, 0 },
	{ "deque-pop-all", cmd_deque_pop_all, 0 },
	{ "deque-dump", cmd_deque_dump, 0 },
	{ "deque-rotate", cmd_deque_rotate, 0 },
	{ "deque-reverse", cmd_deque_reverse, 0 },
	{ "index-set", cmd_index_set, 0 },
	{ "index-popitem", cmd_index_popitem, 0 },
	{ "index-items", cmd_index_items, 0 },
	{ "unsub", cmd_unsub, 0 },
	{ "sleep", cmd_sleep, 0 },
	{ "echo", cmd_echo, 0 },
	{ "quit", cmd_quit, 0 },
};

/* Run one command; its fields (each starting with ',') go to @ex. */
static int run_one(struct ctx *c, int argc, char **argv, struct sb *ex)
{
	struct args a;
	size_t i;
	int ret = RC_USAGE;

	if (argc < 1) {
		sb_puts(ex, ",\"usage\":\"no command\"");
		return RC_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[0], commands[i].name))
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		sb_puts(ex, ",\"usage\":\"unknown command ");
		sb_hex(ex, argv[0], strlen(argv[0]));
		sb_puts(ex, "\"");
		return RC_USAGE;
	}
	if (commands[i].needs_cache && !cur(c)) {
		sb_puts(ex, ",\"usage\":\"cache is not open\"");
		return RC_USAGE;
	}
	args_parse(&a, argc - 1, argv + 1);
	if (a.bad) {
		sb_puts(ex, ",\"usage\":");
		sb_jstr(ex, a.bad);
	} else {
		ret = commands[i].fn(c, &a, ex);
	}
	args_free(&a);
	return ret;
}

/* "repeat N CMD ...": run CMD N times; report the last result and how
 * many runs did not return 0. */
static int run_command(struct ctx *c, int argc, char **argv, struct sb *line)
{
	struct sb ex = { 0 };
	int64_t n = 0, i, fails = 0;
	int ret = 0;

	if (argc >= 1 && !strcmp(argv[0], "repeat")) {
		if (argc < 3 || drv_parse_i64(argv[1], &n) || n < 1) {
			ret = RC_USAGE;
			sb_puts(&ex, ",\"usage\":\"repeat N CMD\"");
		} else {
			for (i = 0; i < n; i++) {
				sb_reset(&ex);
				ret = run_one(c, argc - 2, argv + 2, &ex);
				if (ret)
					fails++;
			}
			/* Wrap the last result as a nested object. */
			sb_printf(line,
				  "{\"rc\":%d,\"n\":%" PRId64
				  ",\"fails\":%" PRId64 ",\"last\":{\"rc\":%d",
				  ret, n, fails, ret);
			if (ret)
				sb_printf(line, ",\"err\":\"%s\"",
					  ret == RC_USAGE ? "usage"
							  : dc_strerror(ret));
			sb_add(line, ex.p ? ex.p : "", ex.len);
			sb_puts(line, "}}");
			goto out;
		}
	} else {
		ret = run_one(c, argc, argv, &ex);
	}
	sb_printf(line, "{\"rc\":%d", ret);
	if (ret) {
		sb_puts(line, ",\"err\":");
		sb_jstr(line, ret == RC_USAGE ? "usage" : dc_strerror(ret));
	}
	sb_add(line, ex.p ? ex.p : "", ex.len);
	sb_puts(line, "}");
out:
	sb_free(&ex);
	return ret;
}

static int split(char *s, char **argv, int max)
{
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(s, " \t\r\n", &save); tok && n < max;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		argv[n++] = tok;
	return n;
}

static int run_script(struct ctx *c)
{
	struct sb line = { 0 };
	char *buf = NULL, *argv[MAX_ARGS + 4];
	size_t cap = 0;
	int argc, ret = 0;

	while (!c->quit && getline(&buf, &cap, stdin) >= 0) {
		argc = split(buf, argv, MAX_ARGS + 4);
		if (argc == 0 || argv[0][0] == '#')
			continue;
		sb_reset(&line);
		if (run_command(c, argc, argv, &line) == RC_USAGE)
			ret = 1;
		fputs(line.p, stdout);
		fputc('\n', stdout);
		fflush(stdout);
	}
	free(buf);
	sb_free(&line);
	return ret;
}

static void usage(void)
{
	fputs("usage: dcinterop DIR [--shards N|plain] [--timeout SECS] "
	      "[--setting NAME=SPEC]... COMMAND ARGS... | script\n",
	      stderr);
	exit(2);
}

static void parse_global(struct ctx *c, int *argi, int argc, char **argv)
{
	size_t ns = 0;
	int i = *argi;

	while (i < argc && !strncmp(argv[i], "--", 2)) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val)
			usage();
		if (!strcmp(opt, "--shards")) {
			c->opts.shards =
			    strcmp(val, "plain") ? atoi(val) : DC_SHARDS_PLAIN;
		} else if (!strcmp(opt, "--timeout")) {
			if (drv_parse_double(val, &c->opts.timeout))
				usage();
		} else if (!strcmp(opt, "--setting")) {
			char *eq = strchr(val, '=');

			if (!eq || ns >= 32)
				usage();
			*eq = '\0';
			if (drv_spec_parse(eq + 1, &c->setting_specs[ns]))
				usage();
			c->settings[ns].name = val;
			c->settings[ns].value = c->setting_specs[ns].v;
			ns++;
		} else {
			usage();
		}
		i += 2;
	}
	c->opts.settings = ns ? c->settings : NULL;
	c->opts.nsettings = ns;
	*argi = i;
}

int main(int argc, char **argv)
{
	struct ctx c;
	struct sb line = { 0 };
	int argi = 2, ret, status = 0;
	size_t i;

	if (argc < 3)
		usage();
	memset(&c, 0, sizeof(c));
	c.dir = argv[1];
	c.opts.log = log_cb;
	parse_global(&c, &argi, argc, argv);
	if (argi >= argc)
		usage();

	ret = ctx_open(&c);
	if (ret) {
		printf("{\"rc\":%d,\"err\":", ret);
		sb_jstr(&line, dc_strerror(ret));
		printf("%s,\"op\":\"open\"}\n", line.p);
		status = 1;
		goto out;
	}
	if (!strcmp(argv[argi], "script") && argi + 1 == argc) {
		status = run_script(&c);
	} else {
		ret = run_command(&c, argc - argi, argv + argi, &line);
		printf("%s\n", line.p);
		status = ret ? 1 : 0;
	}
out:
	fflush(stdout);
	ctx_close(&c);
	sb_free(&line);
	for (i = 0; i < c.opts.nsettings; i++)
		drv_spec_free(&c.setting_specs[i]);
	return status;
}
