/* dccoll.c - worker driver for the Deque/Index multi-process interop tests
 * SPDX-License-Identifier: MIT
 *
 * usage: dccoll DIR [--shards N] [--sub deque|index NAME] COMMAND ARGS...
 *
 * DIR is a Deque or Index directory, or with --sub the FanoutCache root
 * (opened with --shards N) whose sub-collection deque/NAME or index/NAME
 * is used (FanoutCache.deque(NAME) / .index(NAME)).
 *
 * Commands (each prints exactly one JSON line, {"rc":N, ...}):
 *   deque-worker ID N START   create START.ready.ID, wait for the file
 *                             START to exist, then N
 *                             rounds of: append item i at the back (even
 *                             i) or front (odd i), then unless i % 3 == 2
 *                             pop from the other end (front for even i,
 *                             back for odd).  Reports "popped" (names) and
 *                             "empty" (pops that found nothing).
 *   index-worker ID N START   the same with dc_index_push/dc_index_pull
 *                             on the queue prefix "jobs".
 *   drain                     pop everything left from the front (deque,
 *                             or the index's "jobs" queue with --sub
 *                             index or --index).
 *   len                       the number of items ("len").
 *   check                     dc_cache_check's warning count ("warnings").
 *   extend [left] ITEM...     dc_deque_extend (extendleft) of text items.
 *   compare ITEM...           dc_deque_compare with text items ("cmp").
 *   equal|equal-ordered K V ...  dc_index_equal with text pairs ("equal").
 *   push ITEM [front] [prefix=P]   dc_index_push ("key").
 *   pull|peek [back] [prefix=P]    dc_index_pull / _peek ("key", "value").
 *   peekitem [first]          dc_index_peekitem ("key", "value").
 * (ITEM is text; "key" is a JSON number or string.)
 *
 * Item i of worker ID is the text "ID:i"; every eighth (i % 8 == 3) is
 * "ID:i|" followed by 40000 dots, which goes to a value file.  Items read
 * back are reported by name ("ID:i"); a malformed one as "BAD:...".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcache.h"
#include "drvutil.h"

#define BIG_PAD 40000

struct coll {
	dc_cache *parent; /* the FanoutCache with --sub, else NULL */
	dc_deque *dq;
	dc_index *ix;
};

/* A growable string for the JSON line. */
struct out {
	char *p;
	size_t len, cap;
	int oom;
};

static void out_add(struct out *o, const char *s, size_t n)
{
	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		char *p;

		while (cap < o->len + n + 1)
			cap *= 2;
		p = realloc(o->p, cap);
		if (!p) {
			o->oom = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/* Append a JSON string of @s[@n]: item names are printable ASCII, and
 * anything else is replaced by '?' (it is reported as BAD anyway). */
static void out_json(struct out *o, const char *s, size_t n)
{
	out_add(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			c = '?';
		out_add(o, &c, 1);
	}
	out_add(o, "\"", 1);
}

/* The item's name, or a BAD marker, appended to @o as a JSON string. */
static void out_item(struct out *o, const struct dc_value *v)
{
	const char *s = v->data, *bar;
	char bad[64];

	if (v->type != DC_TYPE_TEXT) {
		snprintf(bad, sizeof(bad), "BAD:type %d", (int)v->type);
		out_json(o, bad, strlen(bad));
		return;
	}
	bar = memchr(s, '|', v->len);
	if (!bar) {
		out_json(o, s, v->len > 40 ? 40 : v->len);
		return;
	}
	if (v->len - (size_t)(bar - s) - 1 != BIG_PAD ||
	    strspn(bar + 1, ".") != BIG_PAD) {
		snprintf(bad, sizeof(bad), "BAD:padding of %.20s",
			 s); /* NUL-terminated: dc_value output */
		out_json(o, bad, strlen(bad));
		return;
	}
	out_json(o, s, (size_t)(bar - s));
}

static int wait_for(const char *path)
{
	for (int i = 0; i < 120000; i++) {
		if (!access(path, F_OK))
			return 0;
		drv_sleep(0.001);
	}
	return ETIMEDOUT;
}

/* Tell the test this worker has opened the collection: create the file
 * START.ready.ID. */
static int ready(const char *start, const char *id)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s.ready.%s", start, id) >=
	    sizeof(path))
		return ENAMETOOLONG;
	f = fopen(path, "w");
	if (!f)
		return errno;
	return fclose(f) ? errno : 0;
}

/* Item @i of worker @id, built in @buf (BIG_PAD + 64 bytes). */
static struct dc_value make_item(char *buf, const char *id, int i)
{
	int n = snprintf(buf, 64, "%s:%d", id, i);

	if (i % 8 == 3) {
		buf[n++] = '|';
		memset(buf + n, '.', BIG_PAD);
		n += BIG_PAD;
	}
	return dc_textn(buf, (size_t)n);
}

static int put(struct coll *c, const struct dc_value *v, int front)
{
	if (c->dq)
		return front ? dc_deque_appendleft(c->dq, v)
			     : dc_deque_append(c->dq, v);
	return dc_index_push(c->ix, v, "jobs", front ? DC_FRONT : DC_BACK, NULL,
			     NULL);
}

static int take(struct coll *c, int back, struct dc_buf *buf,
		struct dc_item *it)
{
	drv_item_init(it);
	if (c->dq)
		return back ? dc_deque_pop(c->dq, buf, it)
			    : dc_deque_popleft(c->dq, buf, it);
	return dc_index_pull(c->ix, "jobs", back ? DC_BACK : DC_FRONT, buf, it);
}

static int cmd_worker(struct coll *c, char **argv, int argc, struct out *o)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char *item = NULL;
	long n, empty = 0, popped = 0;
	int ret;

	if (argc != 3 || (n = strtol(argv[1], NULL, 10)) < 0)
		return -1;
	item = malloc(BIG_PAD + 64);
	if (!item)
		return ENOMEM;
	ret = ready(argv[2], argv[0]);
	if (!ret)
		ret = wait_for(argv[2]);
	out_str(o, ",\"popped\":[");
	for (long i = 0; !ret && i < n; i++) {
		struct dc_value v = make_item(item, argv[0], (int)i);

		ret = put(c, &v, (int)(i % 2));
		if (ret || i % 3 == 2)
			continue;
		/* From the other end: items pass between the workers. */
		ret = take(c, (int)(i % 2), &buf, &it);
		if (ret == DC_NOTFOUND) {
			empty++;
			ret = 0;
			continue;
		}
		if (ret)
			break;
		if (popped++)
			out_str(o, ",");
		out_item(o, &it.value);
	}
	out_str(o, "]");
	snprintf(item, 64, ",\"empty\":%ld", empty);
	out_str(o, item);
	dc_buf_release(&buf);
	free(item);
	return ret;
}

static int cmd_drain(struct coll *c, struct out *o)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	int ret, first = 1;

	out_str(o, ",\"popped\":[");
	while (!(ret = take(c, 0, &buf, &it))) {
		if (!first)
			out_str(o, ",");
		first = 0;
		out_item(o, &it.value);
	}
	out_str(o, "]");
	dc_buf_release(&buf);
	return ret == DC_NOTFOUND ? 0 : ret;
}

static void out_key(struct out *o, const struct dc_value *k)
{
	char num[32];

	out_str(o, ",\"key\":");
	if (k->type == DC_TYPE_INT) {
		snprintf(num, sizeof(num), "%" PRId64, k->i);
		out_str(o, num);
	} else if (k->type == DC_TYPE_TEXT) {
		out_json(o, k->data, k->len);
	} else {
		out_str(o, "null");
	}
}

/* Bare words among @argv: flags set in *flags, "prefix=P" in *prefix;
 * the rest are items, gathered into @items (returns their count). */
static size_t parse_args(char **argv, int argc, unsigned *flags,
			 const char **prefix, struct dc_value *items)
{
	size_t n = 0;

	*flags = 0;
	*prefix = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "front") || !strcmp(argv[i], "left"))
			*flags |= DC_FRONT;
		else if (!strcmp(argv[i], "back"))
			*flags |= DC_BACK;
		else if (!strcmp(argv[i], "first"))
			*flags |= DC_FIRST;
		else if (!strncmp(argv[i], "prefix=", 7))
			*prefix = argv[i] + 7;
		else
			items[n++] = dc_text(argv[i]);
	}
	return n;
}

/* extend, compare, equal, push, pull, peek, peekitem. */
static int cmd_api(struct coll *c, const char *cmd, char **argv, int argc,
		   struct out *o)
{
	struct dc_value *items = calloc((size_t)argc + 1, sizeof(*items));
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value key;
	const char *prefix;
	unsigned flags;
	size_t n;
	int cmp = 0, ret = -1;

	if (!items)
		return ENOMEM;
	n = parse_args(argv, argc, &flags, &prefix, items);
	drv_item_init(&it);
	if (!strcmp(cmd, "extend") && c->dq) {
		ret = flags & DC_FRONT ? dc_deque_extendleft(c->dq, items, n)
				       : dc_deque_extend(c->dq, items, n);
	} else if (!strcmp(cmd, "compare") && c->dq) {
		ret = dc_deque_compare(c->dq, items, n, &cmp);
		if (!ret) {
			char num[32];

			snprintf(num, sizeof(num), ",\"cmp\":%d", cmp);
			out_str(o, num);
		}
	} else if (!strncmp(cmd, "equal", 5) && c->ix && n % 2 == 0) {
		struct dc_value *keys = calloc(n / 2 + 1, sizeof(*keys));
		struct dc_value *vals = calloc(n / 2 + 1, sizeof(*vals));
		int eq = 0;

		/* Pairs K V ...: the keys and the values apart. */
		for (size_t i = 0; keys && vals && i < n / 2; i++) {
			keys[i] = items[2 * i];
			vals[i] = items[2 * i + 1];
		}
		ret = keys && vals
			  ? dc_index_equal(c->ix, keys, vals, n / 2,
					   !strcmp(cmd, "equal-ordered"), &eq)
			  : ENOMEM;
		free(keys);
		free(vals);
		if (!ret) {
			char num[32];

			snprintf(num, sizeof(num), ",\"equal\":%d", eq);
			out_str(o, num);
		}
	} else if (!strcmp(cmd, "push") && c->ix && n == 1) {
		ret =
		    dc_index_push(c->ix, &items[0], prefix, flags, &buf, &key);
		if (!ret)
			out_key(o, &key);
	} else if (!strcmp(cmd, "pull") && c->ix) {
		ret = dc_index_pull(c->ix, prefix, flags, &buf, &it);
	} else if (!strcmp(cmd, "peek") && c->ix) {
		ret = dc_index_peek(c->ix, prefix, flags, &buf, &it);
	} else if (!strcmp(cmd, "peekitem") && c->ix) {
		ret = dc_index_peekitem(c->ix, flags, &buf, &it);
	}
	if (!ret && (!strcmp(cmd, "pull") || !strcmp(cmd, "peek") ||
		     !strcmp(cmd, "peekitem"))) {
		out_key(o, &it.key);
		out_str(o, ",\"value\":");
		out_item(o, &it.value);
	}
	dc_buf_release(&buf);
	free(items);
	return ret;
}

static dc_cache *coll_cache(struct coll *c)
{
	return c->dq ? dc_deque_cache(c->dq) : dc_index_cache(c->ix);
}

static int usage(void)
{
	fprintf(stderr, "usage: dccoll DIR [--shards N] [--sub deque|index "
			"NAME] [--index] COMMAND ARGS...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct dc_options opts = { 0 };
	struct coll c = { 0 };
	struct out o = { 0 };
	const char *dir, *sub = NULL, *name = NULL;
	char num[64];
	int argi = 2, index = 0, ret;

	if (argc < 3)
		return usage();
	dir = argv[1];
	while (argi < argc && !strncmp(argv[argi], "--", 2)) {
		if (!strcmp(argv[argi], "--shards") && argi + 1 < argc) {
			opts.shards = atoi(argv[argi + 1]);
			argi += 2;
		} else if (!strcmp(argv[argi], "--sub") && argi + 2 < argc) {
			sub = argv[argi + 1];
			name = argv[argi + 2];
			argi += 3;
		} else if (!strcmp(argv[argi], "--index")) {
			index = 1;
			argi++;
		} else {
			return usage();
		}
	}
	if (argi >= argc)
		return usage();
	if (sub && !strcmp(sub, "index"))
		index = 1;
	else if (sub && strcmp(sub, "deque"))
		return usage();
	if (!strcmp(argv[argi], "index-worker") ||
	    !strcmp(argv[argi], "push") || !strcmp(argv[argi], "pull") ||
	    !strcmp(argv[argi], "peek") || !strcmp(argv[argi], "peekitem"))
		index = 1;

	if (sub) {
		ret = dc_cache_open(dir, &opts, &c.parent);
		if (!ret)
			ret = index ? dc_index_open_sub(c.parent, name, NULL,
							&c.ix)
				    : dc_deque_open_sub(c.parent, name, NULL,
							&c.dq);
	} else {
		ret = index ? dc_index_open(dir, NULL, &c.ix)
			    : dc_deque_open(dir, NULL, &c.dq);
	}
	if (ret)
		goto out;

	if (!strcmp(argv[argi], "deque-worker") && !index) {
		ret = cmd_worker(&c, argv + argi + 1, argc - argi - 1, &o);
	} else if (!strcmp(argv[argi], "index-worker")) {
		ret = cmd_worker(&c, argv + argi + 1, argc - argi - 1, &o);
	} else if (!strcmp(argv[argi], "drain")) {
		ret = cmd_drain(&c, &o);
	} else if (!strcmp(argv[argi], "len")) {
		uint64_t n = 0;

		ret = index ? dc_index_len(c.ix, &n) : dc_deque_len(c.dq, &n);
		snprintf(num, sizeof(num), ",\"len\":%" PRIu64, n);
		out_str(&o, num);
	} else if (!strcmp(argv[argi], "check")) {
		uint64_t n = 0;

		ret = dc_cache_check(coll_cache(&c), 0, 0, NULL, NULL, &n);
		snprintf(num, sizeof(num), ",\"warnings\":%" PRIu64, n);
		out_str(&o, num);
	} else {
		ret = cmd_api(&c, argv[argi], argv + argi + 1, argc - argi - 1,
			      &o);
	}
out:
	if (o.oom)
		ret = ENOMEM;
	printf("{\"rc\":%d%s}\n", ret, o.p ? o.p : "");
	free(o.p);
	dc_deque_close(c.dq);
	dc_index_close(c.ix);
	dc_cache_close(c.parent);
	return ret == -1 ? 2 : 0;
}
