/* dcmemo.c - drive dc_memo from the command line, for test_memo.py
 * SPDX-License-Identifier: MIT
 *
 * usage: dcmemo DIR NAME [options] (call|key) ARG...
 *   options: --typed, --stampede, --expire SECONDS, --tag TEXT,
 *            --shards N (open DIR as a FanoutCache of N shards),
 *            --index (open DIR as an Index), --result SPEC (what the
 *            memoized C function returns; default s:<hex "from-c">),
 *            --beta B, --sleep SECONDS (the function takes that long)
 *   ARG: n, i:<decimal>, d:<16 hex digits of the double, big-endian>,
 *        s:<hex of UTF-8>, b:<hex>, or k=<name>=<one of those> for a
 *        keyword argument.
 * call prints "called=<0|1> <result>" (result as a spec, or p:<hex> for
 * a pickle); key prints the hex of dc_memo_key.  Exit status 0, or 1
 * with "ERR <rc>".  "called" counts the calls of the function on the
 * calling thread only: a stampede's early recomputation runs on a
 * background thread, and whether it has started by the time the line is
 * printed is a race, not part of what the call did.
 */
#include "dcache.h"
#include "drvutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Data of parsed values, freed at the end. */
static void *allocs[200];
static size_t nallocs;

/* Parse a value spec; data is malloc'd and remembered in allocs. */
static int parse_value(const char *s, struct dc_value *v)
{
	memset(v, 0, sizeof(*v));
	if (strcmp(s, "n") == 0) {
		v->type = DC_TYPE_NONE;
	} else if (strncmp(s, "i:", 2) == 0) {
		*v = dc_int(strtoll(s + 2, NULL, 10));
	} else if (strncmp(s, "d:", 2) == 0) {
		unsigned long long u = strtoull(s + 2, NULL, 16);
		double d;

		memcpy(&d, &u, 8);
		*v = dc_float(d);
	} else if (strncmp(s, "s:", 2) == 0 || strncmp(s, "b:", 2) == 0) {
		char *p;
		size_t n;

		if (nallocs == sizeof(allocs) / sizeof(allocs[0]) ||
		    drv_unhex(s + 2, 1, &p, &n))
			return -1;
		allocs[nallocs++] = p;
		*v = s[0] == 's' ? dc_textn(p, n) : dc_bytes(p, n);
	} else {
		return -1;
	}
	return 0;
}

static void print_value(const struct dc_value *v)
{
	unsigned long long u;

	switch (v->type) {
	case DC_TYPE_NONE:
		printf("n");
		break;
	case DC_TYPE_INT:
		printf("i:%lld", (long long)v->i);
		break;
	case DC_TYPE_FLOAT:
		memcpy(&u, &v->f, 8);
		printf("d:%016llx", u);
		break;
	case DC_TYPE_TEXT:
		drv_print_hex("s:", v->data, v->len);
		break;
	case DC_TYPE_BYTES:
		drv_print_hex("b:", v->data, v->len);
		break;
	case DC_TYPE_PICKLE:
		drv_print_hex("p:", v->data, v->len);
		break;
	}
}

struct fn_arg {
	struct dc_value result;
	pthread_t caller; /* the thread that calls dc_memo_call */
	int called;       /* written by the caller's thread only */
	double sleep;
};

static int fn(void *arg, const struct dc_value *args, size_t nargs,
	      const struct dc_kwarg *kwargs, size_t nkwargs, struct dc_buf *buf,
	      struct dc_value *result)
{
	struct fn_arg *a = arg;

	(void)args;
	(void)nargs;
	(void)kwargs;
	(void)nkwargs;
	(void)buf;
	if (pthread_equal(pthread_self(), a->caller))
		a->called++;
	drv_sleep(a->sleep);
	*result = a->result;
	return 0;
}

int main(int argc, char **argv)
{
	struct dc_memo_opts o = { 0 };
	struct dc_options copts = { 0 };
	struct dc_value args[64], tag;
	struct dc_kwarg kwargs[64];
	size_t nargs = 0, nkwargs = 0;
	struct fn_arg fa = { 0 };
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	struct dc_value key;
	dc_cache *cache = NULL;
	dc_index *idx = NULL;
	dc_memo *m = NULL;
	const char *cmd = NULL;
	int use_index = 0, rc, i;

	if (argc < 4) {
		fprintf(stderr,
			"usage: dcmemo DIR NAME [options] call|key ARG...\n");
		return 2;
	}
	o.name = argv[2];
	fa.result = dc_text("from-c");
	fa.caller = pthread_self();
	copts.shards = DC_SHARDS_PLAIN;
	for (i = 3; i < argc && !cmd; i++) {
		if (strcmp(argv[i], "--typed") == 0) {
			o.flags |= DC_MEMO_TYPED;
		} else if (strcmp(argv[i], "--stampede") == 0) {
			o.flags |= DC_MEMO_STAMPEDE;
		} else if (strcmp(argv[i], "--expire") == 0 && i + 1 < argc) {
			o.expire = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--sleep") == 0 && i + 1 < argc) {
			fa.sleep = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--beta") == 0 && i + 1 < argc) {
			o.beta = strtod(argv[++i], NULL);
		} else if (strcmp(argv[i], "--tag") == 0 && i + 1 < argc) {
			tag = dc_text(argv[++i]);
			o.tag = &tag;
		} else if (strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
			copts.shards = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--index") == 0) {
			use_index = 1;
		} else if (strcmp(argv[i], "--result") == 0 && i + 1 < argc) {
			if (parse_value(argv[++i], &fa.result))
				return 2;
		} else if (strcmp(argv[i], "call") == 0 ||
			   strcmp(argv[i], "key") == 0) {
			cmd = argv[i];
		} else {
			fprintf(stderr, "dcmemo: bad option %s\n", argv[i]);
			return 2;
		}
	}
	if (!cmd)
		return 2;
	for (; i < argc; i++) {
		if (nargs == 64 || nkwargs == 64)
			return 2;
		if (strncmp(argv[i], "k=", 2) == 0) {
			char *name = argv[i] + 2, *eq = strchr(name, '=');

			if (!eq)
				return 2;
			*eq = 0;
			kwargs[nkwargs].name = name;
			if (parse_value(eq + 1, &kwargs[nkwargs++].value))
				return 2;
		} else if (parse_value(argv[i], &args[nargs++])) {
			return 2;
		}
	}
	if (use_index) {
		rc = dc_index_open(argv[1], NULL, &idx);
		if (!rc)
			cache = dc_index_cache(idx);
	} else {
		rc = dc_cache_open(argv[1], &copts, &cache);
	}
	if (!rc)
		rc = dc_memo_new(cache, &o, fn, &fa, &m);
	if (rc)
		goto out;
	if (strcmp(cmd, "key") == 0) {
		rc = dc_memo_key(m, args, nargs, kwargs, nkwargs, &buf, &key);
		if (!rc) {
			drv_print_hex(NULL, key.data, key.len);
			printf("\n");
		}
	} else {
		rc = dc_memo_call(m, args, nargs, kwargs, nkwargs, &buf, &it);
		if (!rc) {
			printf("called=%d ", fa.called);
			print_value(&it.value);
			printf("\n");
		}
	}
out:
	dc_memo_free(m);
	if (idx)
		dc_index_close(idx);
	else
		dc_cache_close(cache);
	dc_buf_release(&buf);
	for (size_t k = 0; k < nallocs; k++)
		free(allocs[k]);
	if (rc) {
		printf("ERR %d\n", rc);
		return 1;
	}
	return 0;
}
