/* dcpickle.c - drive the pickle codec from a text spec, for test_pickle.py
 * SPDX-License-Identifier: MIT
 *
 * Reads one request per line on stdin and writes one answer line each:
 *   D <proto> <optimize 0|1> <obj>   ->  hex of dc_pickle_dumps, or ERR <rc>
 *   U <hex>                          ->  <obj> from dc_unpickle, or ERR <rc>
 * An <obj> is one token: n (None), t / f (bool), i:<decimal>,
 * d:<16 hex digits, the double big-endian>, s:<hex of UTF-8>,
 * b:<hex>, y:<type name>, or a tuple ( <obj> ... ) whose parentheses
 * are separate tokens.  D takes the tuple or single object as written.
 * This file includes the library's private pickle.h on purpose: the
 * codec is internal and this driver exists to test it.
 */
#include "../../core/src/pickle.h"
#include "drvutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXITEMS 4096

/* Parsed objects live in one pool; tuples point at runs of it. */
struct pool {
	struct dc_py *v;
	size_t n, cap;
	char **bufs;
	size_t nbufs;
};

/* Decoded @s, kept in the pool until the line is done; NULL for bad
 * hex. */
static char *unhex(struct pool *p, const char *s, size_t *len)
{
	char *b;

	if (drv_unhex(s, 1, &b, len))
		return NULL;
	p->bufs = realloc(p->bufs, (p->nbufs + 1) * sizeof(*p->bufs));
	if (!p->bufs)
		drv_die("out of memory");
	p->bufs[p->nbufs++] = b;
	return b;
}

static int parse_tuple(struct pool *p, char **save, struct dc_py *out);

/* One object from token @tok (a tuple reads on to its ")"). */
static int parse_token(struct pool *p, char *tok, char **save, struct dc_py *o)
{
	memset(o, 0, sizeof(*o));
	if (strcmp(tok, "(") == 0)
		return parse_tuple(p, save, o);
	if (strcmp(tok, "n") == 0) {
		o->kind = DC_PY_NONE;
	} else if (strcmp(tok, "t") == 0 || strcmp(tok, "f") == 0) {
		o->kind = DC_PY_BOOL;
		o->i = tok[0] == 't';
	} else if (strncmp(tok, "i:", 2) == 0) {
		o->kind = DC_PY_INT;
		o->i = strtoll(tok + 2, NULL, 10);
	} else if (strncmp(tok, "d:", 2) == 0) {
		uint64_t u = strtoull(tok + 2, NULL, 16);

		o->kind = DC_PY_FLOAT;
		memcpy(&o->f, &u, 8);
	} else if (strncmp(tok, "s:", 2) == 0 || strncmp(tok, "b:", 2) == 0) {
		o->kind = tok[0] == 's' ? DC_PY_STR : DC_PY_BYTES;
		o->data = unhex(p, tok + 2, &o->len);
		if (!o->data)
			return -1;
	} else if (strncmp(tok, "y:", 2) == 0) {
		o->kind = DC_PY_TYPE;
		o->data = tok + 2;
		o->len = strlen(tok + 2);
	} else {
		return -1;
	}
	return 0;
}

/* Parse tokens up to ")" into a fresh run of the pool. */
static int parse_tuple(struct pool *p, char **save, struct dc_py *out)
{
	struct dc_py *tmp = calloc(MAXITEMS, sizeof(*tmp));
	size_t n = 0;
	char *tok;
	int rc = -1;

	if (!tmp)
		exit(2);
	for (;;) {
		tok = strtok_r(NULL, " \n", save);
		if (!tok || n == MAXITEMS)
			goto out;
		if (strcmp(tok, ")") == 0)
			break;
		if (parse_token(p, tok, save, &tmp[n++]))
			goto out;
	}
	if (p->n + n > p->cap)
		goto out;
	memcpy(p->v + p->n, tmp, n * sizeof(*tmp));
	memset(out, 0, sizeof(*out));
	out->kind = DC_PY_TUPLE;
	out->items = p->v + p->n;
	out->len = n;
	p->n += n;
	rc = 0;
out:
	free(tmp);
	return rc;
}

static int parse_one(struct pool *p, char **save, struct dc_py *out)
{
	char *tok = strtok_r(NULL, " \n", save);

	if (!tok)
		return -1;
	return parse_token(p, tok, save, out);
}

static void print_obj(const struct dc_py *o)
{
	uint64_t u;

	switch (o->kind) {
	case DC_PY_NONE:
		printf("n");
		break;
	case DC_PY_BOOL:
		printf("%s", o->i ? "t" : "f");
		break;
	case DC_PY_INT:
		printf("i:%lld", (long long)o->i);
		break;
	case DC_PY_FLOAT:
		memcpy(&u, &o->f, 8);
		printf("d:%016llx", (unsigned long long)u);
		break;
	case DC_PY_STR:
		drv_print_hex("s:", o->data, o->len);
		break;
	case DC_PY_BYTES:
		drv_print_hex("b:", o->data, o->len);
		break;
	case DC_PY_TYPE:
		printf("y:%.*s", (int)o->len, o->data);
		break;
	case DC_PY_TUPLE:
		printf("?");
		break;
	}
}

int main(void)
{
	static struct dc_py items[MAXITEMS];
	struct pool p = { 0 };
	char *line = NULL;
	size_t cap = 0;
	struct dc_buf out = DC_BUF_INIT, text = DC_BUF_INIT;

	p.cap = 1 << 16;
	p.v = calloc(p.cap, sizeof(*p.v));
	if (!p.v)
		return 2;
	while (getline(&line, &cap, stdin) > 0) {
		char *save = NULL;
		char *cmd = strtok_r(line, " \n", &save);
		int rc;

		if (!cmd)
			continue;
		p.n = 0;
		if (strcmp(cmd, "D") == 0) {
			int proto = atoi(strtok_r(NULL, " \n", &save));
			int opt = atoi(strtok_r(NULL, " \n", &save));
			struct dc_py o;

			if (parse_one(&p, &save, &o)) {
				printf("BADSPEC\n");
				continue;
			}
			out.len = 0;
			if (o.kind == DC_PY_TUPLE)
				rc = dc_pickle_dumps(o.items, o.len, 1, proto,
						     opt, &out);
			else
				rc =
				    dc_pickle_dumps(&o, 1, 0, proto, opt, &out);
			if (rc)
				printf("ERR %d\n", rc);
			else {
				drv_print_hex(NULL, out.data, out.len);
				printf("\n");
			}
		} else if (strcmp(cmd, "U") == 0) {
			char *h = strtok_r(NULL, " \n", &save);
			size_t len, n;
			int is_tuple;
			char *data;

			data = unhex(&p, h ? h : "", &len);
			if (!data) {
				printf("BADSPEC\n");
				fflush(stdout);
				continue;
			}
			rc = dc_unpickle(data, len, items, MAXITEMS, &n,
					 &is_tuple, &text);
			if (rc) {
				printf("ERR %d\n", rc);
			} else if (is_tuple) {
				printf("(");
				for (size_t i = 0; i < n; i++) {
					printf(" ");
					print_obj(&items[i]);
				}
				printf(" )\n");
			} else {
				print_obj(&items[0]);
				printf("\n");
			}
		} else {
			printf("BADSPEC\n");
		}
		fflush(stdout);
		for (size_t i = 0; i < p.nbufs; i++)
			free(p.bufs[i]);
		p.nbufs = 0;
	}
	for (size_t i = 0; i < p.nbufs; i++)
		free(p.bufs[i]);
	free(p.bufs);
	free(p.v);
	free(line);
	dc_buf_release(&out);
	dc_buf_release(&text);
	return 0;
}
