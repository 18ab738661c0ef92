/* coll.c - the deque and index command groups of the dcache tool
 * SPDX-License-Identifier: MIT
 *
 * "dcache deque CMD" and "dcache index CMD" work on Python DiskCache's
 * Deque(directory=DIR) and Index(DIR), or with --sub NAME on
 * FanoutCache(DIR).deque(NAME) and .index(NAME).  main() opens cli->deque
 * or cli->index after the parse step.  Keys are typed by --key-type and
 * values by --type, exactly as for set; a value from stdin is read by the
 * parse step too (these values are held in memory anyway), so that bad
 * input of any kind leaves the directory alone.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ------------------------------------------------------------------ */
/* Operands                                                           */
/* ------------------------------------------------------------------ */

/* The whole of stdin as one VALUE (numbers may have blanks around). */
static int stdin_value(struct cli *cli, struct dc_value *v)
{
	int more = 0;

	cli->has_value = 0;
	return cli_read_value(cli, &cli->in, 0, v, &more);
}

/* The VALUE operand at @argi into cli->value: absent or "-" reads stdin. */
static int value_at(struct cli *cli, int argi)
{
	int ret = cli_parse_value(cli, argi);

	if (ret == 0 && !cli->has_value)
		ret = stdin_value(cli, &cli->value);
	return ret;
}

/* An INDEX or a step count operand into cli->delta. */
static int int_at(struct cli *cli, int argi, const char *what)
{
	int ret = 0;

	if (cli_parse_i64(cli->args[argi], &cli->delta))
		ret = cli_usage(cli, "%s is not an integer: '%.40s'", what,
				cli->args[argi]);
	return ret;
}

/* VALUE... of append and appendleft; "-" (once) or none reads stdin. */
static int parse_values(struct cli *cli)
{
	int i, from_stdin = cli->nargs ? -1 : 0, ret = 0;

	cli->nvalues = cli->nargs ? cli->nargs : 1;
	cli->values = calloc((size_t)cli->nvalues, sizeof(*cli->values));
	if (!cli->values) {
		ret = cli_fail(cli, ENOMEM, NULL);
		goto out;
	}
	for (i = 0; i < cli->nargs; i++) {
		if (strcmp(cli->args[i], "-") == 0) {
			if (from_stdin >= 0) {
				ret = cli_usage(cli, "'-' (stdin) given twice");
				goto out;
			}
			from_stdin = i;
			continue;
		}
		ret = cli_typed_arg(cli, "VALUE", "--type", cli->args[i],
				    strlen(cli->args[i]), cli->type,
				    &cli->values[i]);
		if (ret)
			goto out;
	}
	if (from_stdin >= 0)
		ret = stdin_value(cli, &cli->values[from_stdin]);
out:
	return ret;
}

static int parse_index(struct cli *cli)
{
	return int_at(cli, 0, "INDEX");
}

/* INDEX [VALUE|-] of deque set. */
static int parse_index_value(struct cli *cli)
{
	int ret = int_at(cli, 0, "INDEX");

	if (ret == 0)
		ret = value_at(cli, 1);
	return ret;
}

static int parse_value0(struct cli *cli)
{
	return value_at(cli, 0);
}

/* [N] of rotate: 1 by default, as Python's rotate(). */
static int parse_rotate(struct cli *cli)
{
	cli->delta = 1;
	return cli->nargs ? int_at(cli, 0, "N") : 0;
}

/* KEY [VALUE|-] of index set and setdefault. */
static int parse_key_value(struct cli *cli)
{
	int ret = cli_parse_key(cli);

	if (ret == 0)
		ret = value_at(cli, 1);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

/* One key or value of a listing: escaped on one line, or with -z its
 * exact bytes and a NUL.  @sep ends it in the escaped form. */
static void list_value(struct cli *cli, const struct dc_value *v, int sep)
{
	if (cli->null_sep) {
		cli_print_raw(v);
		putchar('\0');
	} else {
		cli_print_value_line(stdout, v);
		putchar(sep);
	}
}

/* Walk the keys of @c (@flags: DC_SORTED for a deque's order,
 * DC_REVERSE) and print keys, values or both (@what: 'k', 'v', 'i'),
 * skipping keys removed meanwhile, as Python's iterators do. */
static int list_items(struct cli *cli, dc_cache *c, unsigned flags, int what)
{
	struct dc_buf kbuf = DC_BUF_INIT, vbuf = DC_BUF_INIT;
	struct dc_item k, v;
	dc_iter *it = NULL;
	int err, ret = 0;

	err = dc_iter_open(c, flags, NULL, 0, &it);
	while (err == 0) {
		cli_item_init(&k);
		err = dc_iter_next(it, &kbuf, &k);
		if (err)
			break;
		if (what == 'k') {
			list_value(cli, &k.key, '\n');
			continue;
		}
		cli_item_init(&v);
		err = dc_cache_get(c, &k.key, &vbuf, &v, DC_RETRY);
		if (err == DC_NOTFOUND) {
			err = 0;
			continue;
		}
		if (err)
			break;
		if (what == 'i')
			list_value(cli, &k.key, '\t');
		list_value(cli, &v.value, '\n');
	}
	if (err != DC_NOTFOUND)
		ret = cli_fail(cli, err, NULL);
	dc_iter_close(it);
	dc_buf_release(&kbuf);
	dc_buf_release(&vbuf);
	return ret;
}

/* The exit status of a command that prints nothing of its own. */
static int done(struct cli *cli, int err, const char *arg)
{
	int ret = EXIT_OK;

	if (err && *arg)
		ret = cli_fail(cli, err, "%s", arg);
	else if (err)
		ret = cli_fail(cli, err, NULL);
	return ret;
}

/* As done(), printing the number @n on success (len, count). */
static int done_count(struct cli *cli, int err, uint64_t n)
{
	if (err == 0)
		cli_print_u64(n);
	return done(cli, err, "");
}

/* As done(), with DC_NOTFOUND a negative answer told by @fmt. */
static int done_or_miss(struct cli *cli, int err, const char *fmt,
			const char *arg)
{
	int ret;

	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, fmt, arg);
	else
		ret = done(cli, err, arg);
	return ret;
}

/* A command's read of one item (the item as cli_item_init() leaves it). */
struct reply {
	struct dc_buf buf;
	struct dc_item it;
};

#define REPLY_INIT                                                             \
	{                                                                      \
		DC_BUF_INIT,                                                   \
		{                                                              \
			.fd = -1                                               \
		}                                                              \
	}

/* Print the item read into @r as get prints it, under @key (NULL: the
 * key read), or else the error @err as done_or_miss(); release @r. */
static int reply_end(struct cli *cli, struct reply *r, int err,
		     const struct dc_value *key, const char *miss,
		     const char *arg)
{
	int ret;

	if (err)
		ret = done_or_miss(cli, err, miss, arg);
	else
		ret = cli_print_item(cli, key ? key : &r->it.key, &r->it);
	dc_buf_release(&r->buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* deque                                                              */
/* ------------------------------------------------------------------ */

/* End a command's transaction: commit, or roll back after an error. */
static int txn_end(dc_cache *c, int err)
{
	if (err)
		dc_cache_rollback(c);
	else
		err = dc_cache_commit(c);
	return err;
}

/* All VALUEs in one transaction: a reader sees all or none of them.
 * --maxlen first trims the deque from the front (as setting Python's
 * Deque.maxlen does); then each append drops from the other end. */
static int deque_add(struct cli *cli, int left)
{
	dc_cache *c = dc_deque_cache(cli->deque);
	int err, i;

	err = dc_cache_begin(c, DC_RETRY);
	if (err)
		goto out;
	if (cli->maxlen != DC_DEQUE_UNBOUNDED)
		err = dc_deque_set_maxlen(cli->deque, cli->maxlen);
	for (i = 0; err == 0 && i < cli->nvalues; i++)
		err = left ? dc_deque_appendleft(cli->deque, &cli->values[i])
			   : dc_deque_append(cli->deque, &cli->values[i]);
	err = txn_end(c, err);
out:
	return done(cli, err, "");
}

static int cmd_append(struct cli *cli)
{
	return deque_add(cli, 0);
}

static int cmd_appendleft(struct cli *cli)
{
	return deque_add(cli, 1);
}

typedef int (*take_fn)(dc_deque *d, struct dc_buf *buf, struct dc_item *item);

static int deque_take(struct cli *cli, take_fn fn)
{
	struct reply r = REPLY_INIT;
	int err = fn(cli->deque, &r.buf, &r.it);

	return reply_end(cli, &r, err, NULL, "deque is empty%s", "");
}

static int cmd_pop(struct cli *cli)
{
	return deque_take(cli, dc_deque_pop);
}

static int cmd_popleft(struct cli *cli)
{
	return deque_take(cli, dc_deque_popleft);
}

static int cmd_peek(struct cli *cli)
{
	return deque_take(cli, dc_deque_peek);
}

static int cmd_peekleft(struct cli *cli)
{
	return deque_take(cli, dc_deque_peekleft);
}

static int cmd_deque_len(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_deque_len(cli->deque, &n);

	return done_count(cli, err, n);
}

static int cmd_deque_list(struct cli *cli)
{
	return list_items(cli, dc_deque_cache(cli->deque),
			  DC_SORTED | (cli->reverse ? DC_REVERSE : 0), 'v');
}

static int cmd_deque_get(struct cli *cli)
{
	struct reply r = REPLY_INIT;
	int err = dc_deque_get(cli->deque, cli->delta, &r.buf, &r.it);

	return reply_end(cli, &r, err, NULL, "%s: index out of range",
			 cli->args[0]);
}

static int cmd_deque_set(struct cli *cli)
{
	int err = dc_deque_set(cli->deque, cli->delta, &cli->value);

	return done_or_miss(cli, err, "%s: index out of range", cli->args[0]);
}

static int cmd_deque_del(struct cli *cli)
{
	int err = dc_deque_delete(cli->deque, cli->delta);

	return done_or_miss(cli, err, "%s: index out of range", cli->args[0]);
}

static int cmd_remove(struct cli *cli)
{
	int err = dc_deque_remove(cli->deque, &cli->value);

	return done_or_miss(cli, err, "%s: not in the deque",
			    cli_str(&cli->value));
}

static int cmd_count(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_deque_count(cli->deque, &cli->value, &n);

	return done_count(cli, err, n);
}

/* Python rotates step by step; one transaction here, so that no other
 * process sees the deque half rotated. */
static int cmd_rotate(struct cli *cli)
{
	dc_cache *c = dc_deque_cache(cli->deque);
	int err;

	err = dc_cache_begin(c, DC_RETRY);
	if (err)
		goto out;
	err = dc_deque_rotate(cli->deque, cli->delta);
	err = txn_end(c, err);
out:
	return done(cli, err, "");
}

static int cmd_reverse(struct cli *cli)
{
	return done(cli, dc_deque_reverse(cli->deque), "");
}

static int cmd_deque_clear(struct cli *cli)
{
	return done(cli, dc_deque_clear(cli->deque), "");
}

/* ------------------------------------------------------------------ */
/* index                                                              */
/* ------------------------------------------------------------------ */

/* The end of a read by KEY: a missing KEY is a miss. */
static int key_reply_end(struct cli *cli, struct reply *r, int err)
{
	return reply_end(cli, r, err, &cli->key, "%s: key not found",
			 cli_str(&cli->key));
}

static int cmd_index_get(struct cli *cli)
{
	struct reply r = REPLY_INIT;
	int err = dc_index_get(cli->index, &cli->key, &r.buf, &r.it);

	return key_reply_end(cli, &r, err);
}

static int cmd_index_set(struct cli *cli)
{
	int err = dc_index_set(cli->index, &cli->key, &cli->value);

	return done(cli, err, cli_str(&cli->key));
}

static int cmd_index_del(struct cli *cli)
{
	int err = dc_index_delete(cli->index, &cli->key);

	return done_or_miss(cli, err, "%s: key not found", cli_str(&cli->key));
}

static int cmd_index_contains(struct cli *cli)
{
	int err = dc_cache_contains(dc_index_cache(cli->index), &cli->key);
	int ret = EXIT_NOTFOUND;

	/* a plain answer, as the contains command gives: no message */
	if (err != DC_NOTFOUND)
		ret = done(cli, err, cli_str(&cli->key));
	return ret;
}

static int cmd_index_pop(struct cli *cli)
{
	struct reply r = REPLY_INIT;
	int err = dc_index_pop(cli->index, &cli->key, &r.buf, &r.it);

	return key_reply_end(cli, &r, err);
}

/* popitem and peekitem: the value, with the key in the metadata. */
static int index_item(struct cli *cli, int pop)
{
	struct reply r = REPLY_INIT;
	unsigned flags = cli->first ? DC_FIRST : 0;
	int err;

	if (pop)
		err = dc_index_popitem(cli->index, flags, &r.buf, &r.it);
	else
		err = dc_cache_peekitem(dc_index_cache(cli->index), &r.buf,
					&r.it, flags | DC_RETRY);
	return reply_end(cli, &r, err, NULL, "index is empty%s", "");
}

static int cmd_popitem(struct cli *cli)
{
	return index_item(cli, 1);
}

static int cmd_peekitem(struct cli *cli)
{
	return index_item(cli, 0);
}

static int cmd_setdefault(struct cli *cli)
{
	struct reply r = REPLY_INIT;
	int err = dc_index_setdefault(cli->index, &cli->key, &cli->value,
				      &r.buf, &r.it);

	return key_reply_end(cli, &r, err);
}

/* keys, values and items, in insertion order. */
static int index_list(struct cli *cli, int what)
{
	return list_items(cli, dc_index_cache(cli->index),
			  cli->reverse ? DC_REVERSE : 0, what);
}

static int cmd_keys(struct cli *cli)
{
	return index_list(cli, 'k');
}

static int cmd_values(struct cli *cli)
{
	return index_list(cli, 'v');
}

static int cmd_items(struct cli *cli)
{
	return index_list(cli, 'i');
}

static int cmd_index_len(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_index_len(cli->index, &n);

	return done_count(cli, err, n);
}

static int cmd_index_clear(struct cli *cli)
{
	return done(cli, dc_index_clear(cli->index), "");
}

/* The queue functions of the index's cache, retrying while it is locked
 * (Python's Index.push/pull/peek). */
static int cmd_index_push(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	unsigned flags = DC_RETRY | (cli->front ? DC_FRONT : 0);
	int err;

	err = dc_cache_push(dc_index_cache(cli->index), &cli->value,
			    cli->prefix, DC_NO_EXPIRE, NULL, flags, &buf, &key);
	if (err == 0) {
		cli_print_value_line(stdout, &key);
		putchar('\n');
	}
	dc_buf_release(&buf);
	return done(cli, err, "");
}

static int index_queue(struct cli *cli, int pull)
{
	struct reply r = REPLY_INIT;
	dc_cache *c = dc_index_cache(cli->index);
	unsigned flags = DC_RETRY | (cli->back ? DC_BACK : 0);
	int err;

	if (pull)
		err = dc_cache_pull(c, cli->prefix, &r.buf, &r.it, flags);
	else
		err = dc_cache_peek(c, cli->prefix, &r.buf, &r.it, flags);
	return reply_end(cli, &r, err, NULL, "queue%s is empty",
			 cli->prefix ? " with this prefix" : "");
}

static int cmd_index_pull(struct cli *cli)
{
	return index_queue(cli, 1);
}

static int cmd_index_peek(struct cli *cli)
{
	return index_queue(cli, 0);
}

/* ------------------------------------------------------------------ */
/* The command tables                                                 */
/* ------------------------------------------------------------------ */

#define H_VALUE                                                                \
	"The value is written exactly as stored (text, bytes or pickle\n"      \
	"bytes; numbers in decimal) with no newline added; on a terminal\n"    \
	"a newline is added and control bytes and invalid UTF-8 show as\n"     \
	"\\xNN (see -r).\n"

#define H_LIST                                                                 \
	"One a line, escaped as list escapes keys (\\\\ \\n \\t \\r \\xNN;\n"  \
	"numbers in decimal).\n\n"                                             \
	"      --reverse      from the back\n"                                 \
	"  -z, --null         exact bytes, each ended by a NUL byte\n"

#define H_QUEUE "  -p, --prefix P     the queue of text keys P-NNN...\n"

#define DQ CLI_OPEN_DEQUE
#define IX CLI_OPEN_INDEX

const struct cli_cmd cli_deque_cmds[] = {
	{ "append", cmd_append, parse_values, 0, INT_MAX, CO_MAXLEN, DQ,
	  "[--maxlen N] [VALUE...|-]", "add VALUEs at the back",
	  "All VALUEs are added in one transaction.  Without VALUE, or\n"
	  "with '-' in their place, the value is read from stdin.\n\n"
	  "      --maxlen N     trim to N items from the front first, then\n"
	  "                     keep at most N (Python's maxlen)\n",
	  NULL },
	{ "appendleft", cmd_appendleft, parse_values, 0, INT_MAX, CO_MAXLEN, DQ,
	  "[--maxlen N] [VALUE...|-]", "add VALUEs at the front",
	  "Each VALUE in turn goes first, so the last one ends up at the\n"
	  "front (Python's extendleft).  As append otherwise; with --maxlen\n"
	  "items beyond N leave from the back.\n\n"
	  "      --maxlen N     trim to N items from the front first, then\n"
	  "                     keep at most N\n",
	  NULL },
	{ "pop", cmd_pop, NULL, 0, 0, CO_META, DQ, "[-m|-M] [-r]",
	  "print the back item and remove it",
	  H_VALUE "An empty deque exits with 1.\n\n" H_META, NULL },
	{ "popleft", cmd_popleft, NULL, 0, 0, CO_META, DQ, "[-m|-M] [-r]",
	  "print the front item and remove it",
	  H_VALUE "An empty deque exits with 1.\n\n" H_META, NULL },
	{ "peek", cmd_peek, NULL, 0, 0, CO_META, DQ, "[-m|-M] [-r]",
	  "print the back item",
	  H_VALUE "An empty deque exits with 1.\n\n" H_META, NULL },
	{ "peekleft", cmd_peekleft, NULL, 0, 0, CO_META, DQ, "[-m|-M] [-r]",
	  "print the front item",
	  H_VALUE "An empty deque exits with 1.\n\n" H_META, NULL },
	{ "len", cmd_deque_len, NULL, 0, 0, 0, DQ, "",
	  "print the number of items", "", NULL },
	{ "list", cmd_deque_list, NULL, 0, 0, CO_REVERSE | CO_NULL, DQ,
	  "[--reverse] [-z]", "print the items, front to back", H_LIST, NULL },
	{ "get", cmd_deque_get, parse_index, 1, 1, CO_META, DQ,
	  "[-m|-M] [-r] INDEX", "print the item at INDEX",
	  "INDEX 0 is the front, -1 the back.  " H_VALUE
	  "An INDEX out of range exits with 1.\n\n" H_META,
	  NULL },
	{ "set", cmd_deque_set, parse_index_value, 1, 2, 0, DQ,
	  "INDEX [VALUE|-]", "replace the item at INDEX",
	  "INDEX 0 is the front, -1 the back.  An INDEX out of range exits\n"
	  "with 1.\n",
	  NULL },
	{ "del", cmd_deque_del, parse_index, 1, 1, 0, DQ, "INDEX",
	  "remove the item at INDEX",
	  "INDEX 0 is the front, -1 the back.  An INDEX out of range exits\n"
	  "with 1.\n",
	  NULL },
	{ "remove", cmd_remove, parse_value0, 0, 1, 0, DQ, "[VALUE|-]",
	  "remove the first item equal to VALUE",
	  "Equal means the same type and bytes (an int and a float are not\n"
	  "equal).  Exits with 1 if there is none.\n",
	  NULL },
	{ "count", cmd_count, parse_value0, 0, 1, 0, DQ, "[VALUE|-]",
	  "print the number of items equal to VALUE", "Equal as for remove.\n",
	  NULL },
	{ "rotate", cmd_rotate, parse_rotate, 0, 1, 0, DQ, "[N]",
	  "rotate N steps to the right (default 1)",
	  "N > 0 moves the back item to the front N times, N < 0 the\n"
	  "front item to the back; in one transaction.\n",
	  NULL },
	{ "reverse", cmd_reverse, NULL, 0, 0, 0, DQ, "",
	  "reverse the items in place", "In one transaction.\n", NULL },
	{ "clear", cmd_deque_clear, NULL, 0, 0, 0, DQ, "", "remove every item",
	  "", NULL },
	{ NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};

const struct cli_cmd cli_index_cmds[] = {
	{ "get", cmd_index_get, cli_parse_key, 1, 1, CO_META, IX,
	  "[-m|-M] [-r] KEY", "print the value of KEY",
	  H_VALUE "A missing KEY exits with 1.\n\n" H_META, NULL },
	{ "set", cmd_index_set, parse_key_value, 1, 2, 0, IX, "KEY [VALUE|-]",
	  "store VALUE under KEY",
	  "A new KEY goes last; an existing one keeps its place.\n", NULL },
	{ "del", cmd_index_del, cli_parse_key, 1, 1, 0, IX, "KEY", "remove KEY",
	  "A missing KEY exits with 1.\n", NULL },
	{ "contains", cmd_index_contains, cli_parse_key, 1, 1, 0, IX, "KEY",
	  "exit 0 if KEY is present, else 1", "Prints nothing.\n", NULL },
	{ "pop", cmd_index_pop, cli_parse_key, 1, 1, CO_META, IX,
	  "[-m|-M] [-r] KEY", "print the value of KEY and remove it",
	  H_VALUE "A missing KEY exits with 1.\n\n" H_META, NULL },
	{ "popitem", cmd_popitem, NULL, 0, 0, CO_FIRST | CO_META, IX,
	  "[--first] [-m|-M] [-r]",
	  "print the last inserted item's value and remove it",
	  H_VALUE
	  "The key is in the metadata (-M prints it on stderr).  An\n"
	  "empty index exits with 1.\n\n"
	  "      --first        the first inserted item instead\n" H_META,
	  NULL },
	{ "peekitem", cmd_peekitem, NULL, 0, 0, CO_FIRST | CO_META, IX,
	  "[--first] [-m|-M] [-r]", "print the last inserted item's value",
	  H_VALUE
	  "The key is in the metadata.  An empty index exits with "
	  "1.\n\n"
	  "      --first        the first inserted item instead\n" H_META,
	  NULL },
	{ "setdefault", cmd_setdefault, parse_key_value, 1, 2, CO_META, IX,
	  "KEY [VALUE|-]", "store VALUE unless KEY exists; print KEY's value",
	  H_VALUE "\n" H_META, NULL },
	{ "keys", cmd_keys, NULL, 0, 0, CO_REVERSE | CO_NULL, IX,
	  "[--reverse] [-z]", "print the keys in insertion order", H_LIST,
	  NULL },
	{ "values", cmd_values, NULL, 0, 0, CO_REVERSE | CO_NULL, IX,
	  "[--reverse] [-z]", "print the values in insertion order", H_LIST,
	  NULL },
	{ "items", cmd_items, NULL, 0, 0, CO_REVERSE | CO_NULL, IX,
	  "[--reverse] [-z]", "print KEY<tab>VALUE lines in insertion order",
	  "With -z: KEY, NUL, VALUE, NUL for each item.\n" H_LIST, NULL },
	{ "len", cmd_index_len, NULL, 0, 0, 0, IX, "",
	  "print the number of items", "", NULL },
	{ "clear", cmd_index_clear, NULL, 0, 0, 0, IX, "", "remove every item",
	  "", NULL },
	{ "push", cmd_index_push, parse_value0, 0, 1, CO_PREFIX | CO_FRONT, IX,
	  "[-p P] [--front] [VALUE|-]", "add VALUE to a queue; print its key",
	  "Queue keys are integers from 500000000000000, or with a prefix P\n"
	  "texts P-500000000000000 ... (Python's Index.push).\n\n" H_QUEUE
	  "      --front        push at the front instead of the back\n",
	  NULL },
	{ "pull", cmd_index_pull, cli_parse_ends, 0, 0,
	  CO_PREFIX | CO_FRONT | CO_BACK | CO_META, IX,
	  "[-p P] [--back] [-m|-M] [-r]",
	  "print the first item of a queue and remove it",
	  H_VALUE "An empty queue exits with 1.\n\n" H_QUEUE
		  "      --back         take the last item instead\n" H_META,
	  NULL },
	{ "peek", cmd_index_peek, cli_parse_ends, 0, 0,
	  CO_PREFIX | CO_FRONT | CO_BACK | CO_META, IX,
	  "[-p P] [--back] [-m|-M] [-r]", "print the first item of a queue",
	  H_VALUE "An empty queue exits with 1.\n\n" H_QUEUE
		  "      --back         the last item instead\n" H_META,
	  NULL },
	{ NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
