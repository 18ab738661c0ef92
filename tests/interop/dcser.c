/* dcser.c - interop driver: libdcache with a serializer, for test_serializer.py
 * SPDX-License-Identifier: MIT
 *
 * usage: dcser DIR LEVEL[:SHARDS] COMMAND ARGS...
 *
 * Opens DIR with dc_serializer_zlib(LEVEL) ("raw": no serializer; SHARDS
 * as struct dc_options.shards, default 0: detect) and runs one command,
 * printing one line of JSON {..., "rc":N} (rc as the library returns it,
 * -1 for a usage error).  Keys, values and tags are SPECs as for
 * dcinterop (drvutil.h: int:N  float:F  strx:HEX  bytes:HEX ...  none);
 * values come back as
 * {"type":"int","int":N}, {"type":"float","float":"<%a>"} or
 * {"type":"str"|"bytes"|"pickle","hex":"..."}.
 *
 * Commands:
 *   set KEY VALUE [TAG]   get KEY   getfd KEY   pop KEY
 *   push VALUE   pull   peekitem
 *   deque-append VALUE   deque-popleft      (DIR as a dc_deque)
 *   index-set KEY VALUE   index-get KEY      (DIR as a dc_index)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcache.h"
#include "drvutil.h"

#define RC_USAGE (-1)

static void print_value(const char *name, const struct dc_value *v)
{
	static const char *const names[] = { "none", "int",   "float",
					     "str",  "bytes", "pickle" };

	printf(",\"%s\":", name);
	switch (v->type) {
	case DC_TYPE_INT:
		printf("{\"type\":\"int\",\"int\":%" PRId64 "}", v->i);
		break;
	case DC_TYPE_FLOAT:
		printf("{\"type\":\"float\",\"float\":\"%a\"}", v->f);
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		printf("{\"type\":\"%s\",\"hex\":\"", names[v->type]);
		drv_print_hex(NULL, v->data, v->len);
		printf("\"}");
		break;
	default:
		printf("null");
	}
}

/* Read the descriptor of a DC_FD result to its end and print it. */
static int print_fd(int fd)
{
	char chunk[65536];
	ssize_t n;

	printf(",\"fd\":\"");
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		drv_print_hex(NULL, chunk, (size_t)n);
	printf("\"");
	return n < 0 ? errno : 0;
}

struct run {
	const struct dc_options *o;
	const char *dir;
	const char *cmd;
	struct drv_spec a[3];
	int nargs;
};

static int run_deque(struct run *r, struct dc_buf *buf, struct dc_item *it)
{
	dc_deque *d = NULL;
	int rc;

	rc = dc_deque_open(r->dir, r->o, &d);
	if (rc)
		return rc;
	if (strcmp(r->cmd, "deque-append") == 0 && r->nargs == 1) {
		rc = dc_deque_append(d, &r->a[0].v);
	} else if (strcmp(r->cmd, "deque-popleft") == 0 && r->nargs == 0) {
		rc = dc_deque_popleft(d, buf, it);
		if (!rc)
			print_value("value", &it->value);
	} else {
		rc = RC_USAGE;
	}
	dc_deque_close(d);
	return rc;
}

static int run_index(struct run *r, struct dc_buf *buf, struct dc_item *it)
{
	dc_index *x = NULL;
	int rc;

	rc = dc_index_open(r->dir, r->o, &x);
	if (rc)
		return rc;
	if (strcmp(r->cmd, "index-set") == 0 && r->nargs == 2) {
		rc = dc_index_set(x, &r->a[0].v, &r->a[1].v);
	} else if (strcmp(r->cmd, "index-get") == 0 && r->nargs == 1) {
		rc = dc_index_get(x, &r->a[0].v, buf, it);
		if (!rc)
			print_value("value", &it->value);
	} else {
		rc = RC_USAGE;
	}
	dc_index_close(x);
	return rc;
}

static int run_cache(struct run *r, struct dc_buf *buf, struct dc_item *it)
{
	const char *cmd = r->cmd;
	struct dc_value key;
	dc_cache *c = NULL;
	int rc, n = r->nargs;

	rc = dc_cache_open(r->dir, r->o, &c);
	if (rc)
		return rc;
	if (strcmp(cmd, "set") == 0 && (n == 2 || n == 3)) {
		rc = dc_cache_set(c, &r->a[0].v, &r->a[1].v, DC_NO_EXPIRE,
				  n == 3 ? &r->a[2].v : NULL, 0);
	} else if ((strcmp(cmd, "get") == 0 || strcmp(cmd, "getfd") == 0 ||
		    strcmp(cmd, "pop") == 0) &&
		   n == 1) {
		unsigned flags = cmd[3] == 'f' ? DC_FD : 0;

		if (cmd[0] == 'p')
			rc = dc_cache_pop(c, &r->a[0].v, buf, it, flags);
		else
			rc = dc_cache_get(c, &r->a[0].v, buf, it, flags);
		if (!rc && it->fd >= 0) {
			rc = print_fd(it->fd);
			close(it->fd);
		} else if (!rc) {
			print_value("value", &it->value);
			print_value("tag", &it->tag);
		}
	} else if (strcmp(cmd, "push") == 0 && n == 1) {
		rc = dc_cache_push(c, &r->a[0].v, NULL, DC_NO_EXPIRE, NULL, 0,
				   buf, &key);
		if (!rc)
			print_value("key", &key);
	} else if ((strcmp(cmd, "pull") == 0 || strcmp(cmd, "peekitem") == 0) &&
		   n == 0) {
		if (cmd[1] == 'u')
			rc = dc_cache_pull(c, NULL, buf, it, 0);
		else
			rc = dc_cache_peekitem(c, buf, it, 0);
		if (!rc) {
			print_value("key", &it->key);
			print_value("value", &it->value);
			print_value("tag", &it->tag);
		}
	} else {
		rc = RC_USAGE;
	}
	dc_cache_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_options o;
	struct dc_item it;
	struct run r;
	char *end;
	long level;
	int rc = RC_USAGE;

	memset(&r, 0, sizeof(r));
	memset(&o, 0, sizeof(o));
	drv_item_init(&it);
	/* A first member, so that each result can start with a comma. */
	printf("{\"driver\":\"dcser\"");
	if (argc < 4 || argc > 7)
		goto out;
	r.o = &o;
	r.dir = argv[1];
	r.cmd = argv[3];
	if (strncmp(argv[2], "raw", 3) == 0) {
		end = argv[2] + 3;
	} else {
		level = strtol(argv[2], &end, 10);
		o.serializer = dc_serializer_zlib((int)level);
		if (!o.serializer)
			goto out;
	}
	if (*end == ':')
		o.shards = (int)strtol(end + 1, &end, 10);
	if (*end)
		goto out;
	for (int i = 4; i < argc; i++) {
		if (drv_spec_parse(argv[i], &r.a[r.nargs]))
			goto out;
		r.nargs++;
	}
	if (strncmp(r.cmd, "deque-", 6) == 0)
		rc = run_deque(&r, &buf, &it);
	else if (strncmp(r.cmd, "index-", 6) == 0)
		rc = run_index(&r, &buf, &it);
	else
		rc = run_cache(&r, &buf, &it);
out:
	printf(",\"rc\":%d}\n", rc);
	for (int i = 0; i < r.nargs; i++)
		drv_spec_free(&r.a[i]);
	dc_buf_release(&buf);
	return rc == RC_USAGE ? 2 : 0;
}
