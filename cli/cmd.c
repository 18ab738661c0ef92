/* cmd.c - the commands of the dcache tool, one function per command
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------------ */
/* Operands                                                           */
/* ------------------------------------------------------------------ */

/* A typed key, value or tag from a string of the command line or of
 * stdin.  Returns 0, or EXIT_USAGE with the message printed. */
int cli_typed_arg(struct cli *cli, const char *what, const char *opt,
		  const char *s, size_t len, enum dc_type t, struct dc_value *v)
{
	int64_t i;
	double d;
	int ret = 0;

	switch (t) {
	case DC_TYPE_INT:
		if (strlen(s) != len || cli_parse_i64(s, &i))
			ret = cli_usage(cli, "%s is not an integer: '%.40s'",
					what, s);
		else
			*v = dc_int(i);
		break;
	case DC_TYPE_FLOAT:
		if (strlen(s) != len || cli_parse_double(s, &d))
			ret = cli_usage(cli, "%s is not a number: '%.40s'",
					what, s);
		else
			*v = dc_float(d);
		break;
	case DC_TYPE_TEXT:
		/* DiskCache stores str as SQLite TEXT, which Python
		 * decodes strictly: refuse what it could not read back */
		if (!cli_utf8_valid(s, len))
			ret = cli_usage(cli,
					"%s is not valid UTF-8 (use %s bytes)",
					what, opt);
		else
			*v = dc_textn(s, len);
		break;
	case DC_TYPE_PICKLE:
		*v = dc_pickle(s, len);
		break;
	default:
		*v = dc_bytes(s, len);
		break;
	}
	return ret;
}

/* Parse steps: each converts its command's operands into struct cli,
 * before main() opens the cache. */

/* KEY, the first operand. */
int cli_parse_key(struct cli *cli)
{
	return cli_typed_arg(cli, "KEY", "--key-type", cli->args[0],
			     strlen(cli->args[0]), cli->key_type, &cli->key);
}

/* --tag into cli->tagp, which stays NULL without it. */
int cli_parse_tag_opt(struct cli *cli)
{
	int ret = 0;

	cli->tagp = NULL;
	if (cli->tag) {
		ret =
		    cli_typed_arg(cli, "TAG", "--tag-type", cli->tag,
				  strlen(cli->tag), cli->tag_type, &cli->tagv);
		if (ret == 0)
			cli->tagp = &cli->tagv;
	}
	return ret;
}

static int is_number_type(enum dc_type t)
{
	return t == DC_TYPE_INT || t == DC_TYPE_FLOAT;
}

/* The VALUE operand at @argi into cli->value, unless it is absent or
 * "-": then the value comes from stdin, read by cli_read_value() once the
 * cache is open (a large one is streamed into the cache). */
int cli_parse_value(struct cli *cli, int argi)
{
	const char *s;
	int ret = 0;

	cli->has_value = 0;
	if (argi < cli->nargs && strcmp(cli->args[argi], "-") != 0) {
		s = cli->args[argi];
		ret = cli_typed_arg(cli, "VALUE", "--type", s, strlen(s),
				    cli->type, &cli->value);
		cli->has_value = ret == 0;
	}
	return ret;
}

/* The VALUE: the parsed operand, or stdin.  Text and bytes from stdin
 * are taken exactly; a number may be surrounded by blanks (echo 5 |
 * dcache set -t int n).  With @limit, reading stops at that many bytes
 * and *more says that stdin has more. */
int cli_read_value(struct cli *cli, struct cbuf *in, size_t limit,
		   struct dc_value *v, int *more)
{
	const char *s;
	size_t len;
	int eof = 0, err, num = is_number_type(cli->type), ret = 0;

	*more = 0;
	if (cli->has_value) {
		*v = cli->value;
		goto out;
	}
	err = cli_read_fd(STDIN_FILENO, in, num ? 0 : limit, &eof);
	if (err) {
		ret = cli_fail(cli, err, "reading standard input");
		goto out;
	}
	if (!eof) {
		*more = 1;
		goto out;
	}
	if (cbuf_reserve(in, 1)) {
		ret = cli_fail(cli, ENOMEM, NULL);
		goto out;
	}
	in->data[in->len] = '\0';
	s = in->data;
	len = in->len;
	while (num && len > 0 && strchr(" \t\r\n", s[len - 1]))
		in->data[--len] = '\0';
	while (num && len > 0 && strchr(" \t\r\n", *s)) {
		s++;
		len--;
	}
	ret = cli_typed_arg(cli, "VALUE", "--type", s, len, cli->type, v);
out:
	return ret;
}

/* A miss is an answer, not a failure: a short message (none with -q). */
int cli_not_found(struct cli *cli, const char *fmt, const char *arg)
{
	if (!cli->quiet) {
		fprintf(stderr, "dcache: %s: ", cli_cmd_name(cli));
		fprintf(stderr, fmt, arg);
		fputc('\n', stderr);
	}
	return EXIT_NOTFOUND;
}

/* Python's FanoutCache has no queue or peekitem, and neither has ours:
 * the library answers DC_INVAL, which deserves a clearer word. */
static int queue_fail(struct cli *cli, int err)
{
	if (err == DC_INVAL && dc_cache_shards(cli->cache) > 0) {
		fprintf(stderr,
			"dcache: %s: a FanoutCache has no queue (as in "
			"DiskCache): use a plain Cache directory\n",
			cli_cmd_name(cli));
		return EXIT_USAGE;
	}
	return cli_fail(cli, err, NULL);
}

void cli_item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Printing values and metadata                                       */
/* ------------------------------------------------------------------ */

static const char *tname(enum dc_type t)
{
	const char *n = dc_type_name(t);

	return n ? n : "unknown";
}

static void print_time(FILE *f, const char *name, double t)
{
	if (isnan(t))
		fprintf(f, "%s none\n", name);
	else
		fprintf(f, "%s %.6f\n", name, t);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "name value" lines; see docs/cli.md for the list. */
static void print_meta(FILE *f, const struct dc_value *key,
		       const struct dc_item *it)
{
	fputs("key ", f);
	cli_print_value_line(f, key);
	fprintf(f, "\nkey_type %s\n", tname(key->type));
	/* with DC_NOVALUE or a descriptor the type is not reported */
	if (it->value.type != DC_TYPE_NONE)
		fprintf(f, "type %s\n", tname(it->value.type));
	fprintf(f, "size %" PRIu64 "\n", it->size);
	fprintf(f, "file_backed %d\n", it->file_backed ? 1 : 0);
	print_time(f, "expire_time", it->expire_time);
	if (isnan(it->expire_time))
		fputs("ttl none\n", f);
	else
		fprintf(f, "ttl %.3f\n", it->expire_time - now());
	if (it->tag.type != DC_TYPE_NONE) {
		fputs("tag ", f);
		cli_print_value_line(f, &it->tag);
		fprintf(f, "\ntag_type %s\n", tname(it->tag.type));
	}
	print_time(f, "store_time", it->store_time);
	print_time(f, "access_time", it->access_time);
	fprintf(f, "access_count %" PRId64 "\n", it->access_count);
}

/* The value on stdout: exact bytes, streamed from the value file when
 * there is one, so that "dcache get k > f" copies any size in O(1)
 * memory. */
int cli_print_item(struct cli *cli, const struct dc_value *key,
		   struct dc_item *it)
{
	static char chunk[65536];
	struct out_stream o;
	char num[64];
	ssize_t n;
	int ret = 0;

	if (cli->meta) {
		print_meta(stdout, key, it);
		goto out;
	}
	if (cli->meta_stderr)
		print_meta(stderr, key, it);
	out_init(&o, stdout, !cli->raw && isatty(STDOUT_FILENO));
	if (it->fd >= 0) {
		for (;;) {
			n = read(it->fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret =
				    cli_fail(cli, errno, "reading value file");
				break;
			}
			/* stdout failed: main() reports it */
			if (n == 0 || ferror(stdout))
				break;
			out_write(&o, chunk, (size_t)n);
		}
	} else {
		switch (it->value.type) {
		case DC_TYPE_INT:
			snprintf(num, sizeof(num), "%" PRId64, it->value.i);
			out_write(&o, num, strlen(num));
			break;
		case DC_TYPE_FLOAT:
			cli_format_double(it->value.f, num, sizeof(num));
			out_write(&o, num, strlen(num));
			break;
		case DC_TYPE_TEXT:
		case DC_TYPE_BYTES:
		case DC_TYPE_PICKLE:
			out_write(&o, it->value.data, it->value.len);
			break;
		default:
			/* a NaN float reads back as no value, like Python */
			out_write(&o, "None", 4);
			break;
		}
	}
	out_finish(&o);
out:
	if (it->fd >= 0)
		close(it->fd);
	it->fd = -1;
	return ret;
}

void cli_print_u64(uint64_t n)
{
	printf("%" PRIu64 "\n", n);
}

/* ------------------------------------------------------------------ */
/* Reading                                                            */
/* ------------------------------------------------------------------ */

static int cmd_get(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	const struct dc_value *key = &cli->key;
	struct dc_item it;
	unsigned flags;
	int err, ret;

	cli_item_init(&it);
	/* -m inspects: no hit or miss is counted, no access recorded */
	flags = cli->flags | (cli->meta ? DC_NOVALUE : DC_FD);
	err = dc_cache_get(cli->cache, key, &buf, &it, flags);
	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, "%s: key not found", cli_str(key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(key));
	else
		ret = cli_print_item(cli, key, &it);
	dc_buf_release(&buf);
	return ret;
}

static int cmd_contains(struct cli *cli)
{
	int err, ret = 0;

	err = dc_cache_contains(cli->cache, &cli->key);
	if (err == DC_NOTFOUND)
		ret = EXIT_NOTFOUND;
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
	return ret;
}

static int cmd_pop(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	const struct dc_value *key = &cli->key;
	struct dc_item it;
	int err, ret;

	cli_item_init(&it);
	err = dc_cache_pop(cli->cache, key, &buf, &it, cli->flags | DC_FD);
	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, "%s: key not found", cli_str(key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(key));
	else
		ret = cli_print_item(cli, key, &it);
	dc_buf_release(&buf);
	return ret;
}

/* pull and peek: --front and --back exclude each other. */
int cli_parse_ends(struct cli *cli)
{
	int ret = 0;

	if (cli->front && cli->back)
		ret = cli_usage(cli, "--front and --back exclude each other");
	return ret;
}

static int queue_op(struct cli *cli, int pull)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	unsigned flags = cli->flags | DC_FD;
	int err, ret = 0;

	cli_item_init(&it);
	if (cli->back)
		flags |= DC_BACK;
	if (cli->front)
		flags |= DC_FRONT;
	if (pull)
		err = dc_cache_pull(cli->cache, cli->prefix, &buf, &it, flags);
	else
		err = dc_cache_peek(cli->cache, cli->prefix, &buf, &it, flags);
	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, "queue%s is empty",
				    cli->prefix ? " with this prefix" : "");
	else if (err)
		ret = queue_fail(cli, err);
	else
		ret = cli_print_item(cli, &it.key, &it);
	dc_buf_release(&buf);
	return ret;
}

static int cmd_pull(struct cli *cli)
{
	return queue_op(cli, 1);
}

static int cmd_peek(struct cli *cli)
{
	return queue_op(cli, 0);
}

static int cmd_peekitem(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	unsigned flags = cli->flags | DC_FD;
	int err, ret = 0;

	cli_item_init(&it);
	if (cli->first)
		flags |= DC_FIRST;
	err = dc_cache_peekitem(cli->cache, &buf, &it, flags);
	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, "cache is empty%s", "");
	else if (err)
		ret = queue_fail(cli, err);
	else
		ret = cli_print_item(cli, &it.key, &it);
	dc_buf_release(&buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

/* DiskCache's threshold between inline and file-backed values. */
static size_t min_file_size(struct cli *cli)
{
	struct dc_buf b = DC_BUF_INIT;
	struct dc_value v;
	size_t t = 32768;

	if (dc_cache_setting_get(cli->cache, "disk_min_file_size", &b, &v) ==
	    0) {
		if (v.type == DC_TYPE_INT && v.i >= 0 &&
		    (uint64_t)v.i < SIZE_MAX / 8)
			t = (size_t)v.i;
		else if (v.type == DC_TYPE_FLOAT && v.f >= 0 && v.f < 1e15)
			t = (size_t)v.f;
	}
	dc_buf_release(&b);
	return t;
}

/* stdin longer than the inline limit: stream it into a temporary file
 * of the cache and adopt that file, so a large value is never held in
 * memory.  @in holds what was already read. */
static int set_big(struct cli *cli, const struct dc_value *key, struct cbuf *in,
		   const struct dc_value *tag, unsigned flags)
{
	struct utf8_state st = { 0, 0x80, 0xBF, 0 };
	char path[4096];
	int fd, err = 0, eof = 0, ret = 0;

	fd = dc_cache_mkstemp(cli->cache, path, sizeof(path));
	if (fd < 0) {
		/* a DC_* code, or a negated errno */
		ret = cli_fail(cli, fd >= -4095 ? -fd : fd,
			       "creating a temporary file");
		goto out;
	}
	for (;;) {
		if (cli->type == DC_TYPE_TEXT)
			cli_utf8_feed(&st, in->data, in->len);
		err = cli_write_all(fd, in->data, in->len);
		if (err) {
			ret = cli_fail(cli, err, "writing %s", path);
			goto fail;
		}
		in->len = 0;
		if (eof)
			break;
		err = cli_read_fd(STDIN_FILENO, in, 1 << 20, &eof);
		if (err) {
			ret = cli_fail(cli, err, "reading standard input");
			goto fail;
		}
	}
	if (cli->type == DC_TYPE_TEXT && (st.bad || st.need)) {
		ret = cli_usage(cli, "VALUE is not valid UTF-8 (use --type "
				     "bytes)");
		goto fail;
	}
	err = close(fd) ? errno : 0;
	fd = -1;
	if (err) {
		ret = cli_fail(cli, err, "writing %s", path);
		goto fail;
	}
	err = dc_cache_set_file(cli->cache, key, path, cli->type, cli->expire,
				tag, flags);
	if (err == DC_EXISTS)
		ret = cli_not_found(cli, "%s: key exists", cli_str(key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(key));
	if (err)
		goto fail;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlink(path);
out:
	return ret;
}

/* KEY, --tag and the VALUE operand of set and add. */
static int parse_set(struct cli *cli)
{
	int ret = cli_parse_key(cli);

	if (ret == 0)
		ret = cli_parse_tag_opt(cli);
	if (ret == 0)
		ret = cli_parse_value(cli, 1);
	return ret;
}

static int set_common(struct cli *cli, unsigned add)
{
	const struct dc_value *key = &cli->key, *tagp = cli->tagp;
	struct dc_value value;
	struct cbuf in = { NULL, 0, 0 };
	size_t limit = 0;
	int err, more = 0, ret;

	if (!cli->has_value && !is_number_type(cli->type)) {
		/* 4 bytes per code point at most: past 4x the threshold a
		 * text value surely goes to a file as well */
		limit = min_file_size(cli);
		limit = limit > SIZE_MAX / 8 ? SIZE_MAX / 2 : limit * 4;
		if (limit < 65536)
			limit = 65536;
	}
	ret = cli_read_value(cli, &in, limit, &value, &more);
	if (ret)
		goto out;
	if (more) {
		ret = set_big(cli, key, &in, tagp, cli->flags | add);
		goto out;
	}
	err = dc_cache_set(cli->cache, key, &value, cli->expire, tagp,
			   cli->flags | add);
	if (err == DC_EXISTS)
		ret = cli_not_found(cli, "%s: key exists", cli_str(key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(key));
out:
	cbuf_release(&in);
	return ret;
}

static int cmd_set(struct cli *cli)
{
	return set_common(cli, 0);
}

static int cmd_add(struct cli *cli)
{
	return set_common(cli, DC_ADD);
}

static int cmd_delete(struct cli *cli)
{
	int err, ret = 0;

	err = dc_cache_delete(cli->cache, &cli->key, cli->flags);
	if (err == DC_NOTFOUND)
		ret =
		    cli_not_found(cli, "%s: key not found", cli_str(&cli->key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
	return ret;
}

static int cmd_touch(struct cli *cli)
{
	int err, ret = 0;

	err = dc_cache_touch(cli->cache, &cli->key, cli->expire, cli->flags);
	if (err == DC_NOTFOUND)
		ret =
		    cli_not_found(cli, "%s: key not found", cli_str(&cli->key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
	return ret;
}

/* KEY and DELTA (default 1) of incr and decr. */
static int parse_incr(struct cli *cli)
{
	int ret = cli_parse_key(cli);

	cli->delta = 1;
	if (ret == 0 && cli->nargs > 1 &&
	    cli_parse_i64(cli->args[1], &cli->delta))
		ret = cli_usage(cli, "DELTA is not an integer: '%s'",
				cli->args[1]);
	return ret;
}

static int incr_common(struct cli *cli, int decr)
{
	const struct dc_value *key = &cli->key;
	struct dc_value result;
	const int64_t *dflt = cli->no_default ? NULL : &cli->dflt;
	int err, ret = 0;

	if (decr)
		err = dc_cache_decr(cli->cache, key, cli->delta, dflt, &result,
				    cli->flags);
	else
		err = dc_cache_incr(cli->cache, key, cli->delta, dflt, &result,
				    cli->flags);
	if (err == DC_NOTFOUND) {
		ret = cli_not_found(cli, "%s: key not found", cli_str(key));
	} else if (err) {
		ret = cli_fail(cli, err, "%s", cli_str(key));
	} else {
		cli_print_value_line(stdout, &result);
		putchar('\n');
	}
	return ret;
}

static int cmd_incr(struct cli *cli)
{
	return incr_common(cli, 0);
}

static int cmd_decr(struct cli *cli)
{
	return incr_common(cli, 1);
}

/* --tag and the VALUE operand of push. */
static int parse_push(struct cli *cli)
{
	int ret = cli_parse_tag_opt(cli);

	if (ret == 0)
		ret = cli_parse_value(cli, 0);
	return ret;
}

static int cmd_push(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value value, key;
	struct cbuf in = { NULL, 0, 0 };
	unsigned flags = cli->flags;
	int err, more, ret;

	if (cli->front)
		flags |= DC_FRONT;
	ret = cli_read_value(cli, &in, 0, &value, &more);
	if (ret)
		goto out;
	err = dc_cache_push(cli->cache, &value, cli->prefix, cli->expire,
			    cli->tagp, flags, &buf, &key);
	if (err) {
		ret = queue_fail(cli, err);
		goto out;
	}
	cli_print_value_line(stdout, &key);
	putchar('\n');
out:
	cbuf_release(&in);
	dc_buf_release(&buf);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Listing and sizes                                                  */
/* ------------------------------------------------------------------ */

void cli_print_raw(const struct dc_value *k)
{
	char num[64];

	switch (k->type) {
	case DC_TYPE_INT:
		printf("%" PRId64, k->i);
		break;
	case DC_TYPE_FLOAT:
		cli_format_double(k->f, num, sizeof(num));
		fputs(num, stdout);
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		fwrite(k->data, 1, k->len, stdout);
		break;
	default:
		break;
	}
}

static int cmd_list(struct cli *cli)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	dc_iter *iter = NULL;
	unsigned flags = 0;
	int err, ret = 0;

	if (cli->sorted)
		flags |= DC_SORTED;
	if (cli->reverse)
		flags |= DC_REVERSE;
	if (cli->alive)
		flags |= DC_ALIVE;
	err = dc_iter_open(cli->cache, flags, cli->prefix,
			   cli->prefix ? strlen(cli->prefix) : 0, &iter);
	if (err) {
		ret = cli_fail(cli, err, NULL);
		goto out;
	}
	for (;;) {
		cli_item_init(&it);
		err = dc_iter_next(iter, &buf, &it);
		if (err)
			break;
		if (cli->long_fmt) {
			printf("%s\t%" PRIu64 "\t", tname(it.key.type),
			       it.size);
			if (isnan(it.expire_time))
				fputs("none\t", stdout);
			else
				printf("%.6f\t", it.expire_time);
		}
		if (cli->null_sep) {
			cli_print_raw(&it.key);
			putchar('\0');
		} else {
			cli_print_value_line(stdout, &it.key);
			putchar('\n');
		}
	}
	if (err != DC_NOTFOUND)
		ret = cli_fail(cli, err, NULL);
out:
	dc_iter_close(iter);
	dc_buf_release(&buf);
	return ret;
}

static int cmd_len(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_len(cli->cache, &n);

	if (err)
		return cli_fail(cli, err, NULL);
	cli_print_u64(n);
	return EXIT_OK;
}

static int cmd_volume(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_volume(cli->cache, &n);

	if (err)
		return cli_fail(cli, err, NULL);
	cli_print_u64(n);
	return EXIT_OK;
}

static int setting_flag(struct cli *cli, const char *name, int *on)
{
	struct dc_buf b = DC_BUF_INIT;
	struct dc_value v;
	int err = dc_cache_setting_get(cli->cache, name, &b, &v);

	*on = 0;
	if (err == 0 && v.type == DC_TYPE_INT)
		*on = v.i != 0;
	else if (err == 0 && v.type == DC_TYPE_FLOAT)
		*on = v.f != 0;
	dc_buf_release(&b);
	return err == DC_NOTFOUND ? 0 : err;
}

/* --enable and --disable exclude each other. */
static int parse_stats(struct cli *cli)
{
	int ret = 0;

	if (cli->enable && cli->disable)
		ret = cli_usage(cli, "--enable and --disable exclude each "
				     "other");
	return ret;
}

static int cmd_stats(struct cli *cli)
{
	uint64_t hits = 0, misses = 0, count = 0, volume = 0;
	int err, on, ret = 0;

	/* dc_cache_stats always sets the switch: keep it as it is unless
	 * asked */
	err = setting_flag(cli, "statistics", &on);
	if (err)
		goto fail;
	if (cli->enable)
		on = 1;
	if (cli->disable)
		on = 0;
	err = dc_cache_stats(cli->cache, on, cli->reset, &hits, &misses);
	if (err == 0)
		err = dc_cache_len(cli->cache, &count);
	if (err == 0)
		err = dc_cache_volume(cli->cache, &volume);
	if (err)
		goto fail;
	printf("hits %" PRIu64 "\nmisses %" PRIu64 "\nstatistics %d\n"
	       "count %" PRIu64 "\nvolume %" PRIu64 "\n",
	       hits, misses, on, count, volume);
	goto out;
fail:
	ret = cli_fail(cli, err, NULL);
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* Bulk removal                                                       */
/* ------------------------------------------------------------------ */

static int print_count(struct cli *cli, int err, uint64_t n)
{
	if (err)
		return cli_fail(cli, err,
				"%" PRIu64 " removed before the error", n);
	cli_print_u64(n);
	return EXIT_OK;
}

static int cmd_expire(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_expire(cli->cache, 0, cli->flags, &n);

	return print_count(cli, err, n);
}

static int cmd_cull(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_cull(cli->cache, cli->flags, &n);

	return print_count(cli, err, n);
}

static int cmd_clear(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_clear(cli->cache, cli->flags, &n);

	return print_count(cli, err, n);
}

/* TAG, the operand of evict. */
static int parse_evict(struct cli *cli)
{
	int ret =
	    cli_typed_arg(cli, "TAG", "--tag-type", cli->args[0],
			  strlen(cli->args[0]), cli->tag_type, &cli->tagv);

	cli->tagp = ret == 0 ? &cli->tagv : NULL;
	return ret;
}

static int cmd_evict(struct cli *cli)
{
	uint64_t n = 0;
	int err = dc_cache_evict(cli->cache, cli->tagp, cli->flags, &n);

	return print_count(cli, err, n);
}

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

struct check_ctx {
	const char *prefix;
};

static const char *warn_name(enum dc_warning kind)
{
	switch (kind) {
	case DC_WARN_INTEGRITY:
		return "integrity";
	case DC_WARN_FILE_SIZE:
		return "file-size";
	case DC_WARN_FILE_MISSING:
		return "file-missing";
	case DC_WARN_UNKNOWN_FILE:
		return "unknown-file";
	case DC_WARN_EMPTY_DIR:
		return "empty-dir";
	case DC_WARN_COUNT:
		return "count";
	case DC_WARN_SIZE:
		return "size";
	case DC_WARN_UNSAFE_PATH:
		return "unsafe-path";
	}
	return "warning";
}

static void warn_cb(void *arg, enum dc_warning kind, const char *message)
{
	struct check_ctx *ctx = arg;

	printf("%s%s: %s\n", ctx->prefix, warn_name(kind), message);
}

static int cmd_check(struct cli *cli)
{
	struct check_ctx ctx = { "" };
	uint64_t n = 0;
	int err, pass, ret = 0;

	err =
	    dc_cache_check(cli->cache, cli->fix, cli->flags, warn_cb, &ctx, &n);
	/* a repair can uncover more (removing a stray file empties its
	 * directory, whose parent DiskCache's walk has already passed):
	 * repair again a few times, then report what is left */
	for (pass = 0; err == 0 && cli->fix && n > 0 && pass < 3; pass++)
		err = dc_cache_check(cli->cache, 1, cli->flags, warn_cb, &ctx,
				     &n);
	if (err == 0 && cli->fix && n > 0) {
		ctx.prefix = "remaining ";
		err = dc_cache_check(cli->cache, 0, cli->flags, warn_cb, &ctx,
				     &n);
	}
	if (err) {
		ret = cli_fail(cli, err, NULL);
	} else if (n > 0) {
		if (!cli->quiet)
			fprintf(stderr,
				"dcache: check: %" PRIu64 " problem%s%s\n", n,
				n == 1 ? "" : "s",
				cli->fix ? " remain" : " (--fix repairs)");
		ret = EXIT_NOTFOUND;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* settings                                                           */
/* ------------------------------------------------------------------ */

/* A setting's VALUE is read as int, float, bytes or else str. */
static enum dc_type setting_type(enum dc_type t)
{
	if (t != DC_TYPE_INT && t != DC_TYPE_FLOAT && t != DC_TYPE_BYTES)
		t = DC_TYPE_TEXT;
	return t;
}

/* VALUE of settings NAME VALUE.  Without --type it takes the type the
 * setting has in the database, known only once the cache is open; but a
 * setting DiskCache defines is a number, or text for these two, so a
 * VALUE that is neither is refused before the cache is created. */
static int parse_settings(struct cli *cli)
{
	const char *const *names;
	const char *name, *s;
	struct dc_value v;
	double d;
	int known = 0, ret = 0;

	cli->has_value = 0;
	if (cli->nargs < 2)
		goto out;
	name = cli->args[0];
	s = cli->args[1];
	if (cli->type_set) {
		ret = cli_typed_arg(cli, "VALUE", "--type", s, strlen(s),
				    setting_type(cli->type), &cli->value);
		cli->has_value = ret == 0;
		goto out;
	}
	for (names = dc_cache_setting_names(); *names; names++)
		known |= !strcmp(*names, name);
	if (!known)
		goto out;
	if (!strcmp(name, "eviction_policy") ||
	    !strcmp(name, "sqlite_journal_mode"))
		ret = cli_typed_arg(cli, "VALUE", "--type", s, strlen(s),
				    DC_TYPE_TEXT, &v);
	else if (cli_parse_double(s, &d))
		ret = cli_usage(cli, "VALUE is not a number: '%.40s'", s);
out:
	return ret;
}

static int cmd_settings(struct cli *cli)
{
	const char *const *names;
	struct dc_buf b = DC_BUF_INIT;
	struct dc_value v, nv;
	int err = 0, ret = 0;

	if (cli->nargs == 0) {
		for (names = dc_cache_setting_names(); *names; names++) {
			err = dc_cache_setting_get(cli->cache, *names, &b, &v);
			if (err == DC_NOTFOUND)
				continue;
			if (err)
				break;
			printf("%s=", *names);
			cli_print_value_line(stdout, &v);
			putchar('\n');
		}
		if (err && err != DC_NOTFOUND)
			ret = cli_fail(cli, err, "%s", *names);
		goto out;
	}
	err = dc_cache_setting_get(cli->cache, cli->args[0], &b, &v);
	if (err == DC_NOTFOUND) {
		ret = cli_not_found(cli, "%s: no such setting", cli->args[0]);
		goto out;
	}
	if (err) {
		ret = cli_fail(cli, err, "%s", cli->args[0]);
		goto out;
	}
	if (cli->nargs == 1) {
		cli_print_value_line(stdout, &v);
		putchar('\n');
		goto out;
	}
	/* the new value keeps the stored type unless --type said (then
	 * parse_settings() converted it) */
	if (cli->has_value) {
		nv = cli->value;
	} else {
		ret = cli_typed_arg(cli, "VALUE", "--type", cli->args[1],
				    strlen(cli->args[1]), setting_type(v.type),
				    &nv);
		if (ret)
			goto out;
	}
	err = dc_cache_setting_set(cli->cache, cli->args[0], &nv);
	if (err == DC_NOTFOUND)
		ret = cli_not_found(cli, "%s: no such setting", cli->args[0]);
	else if (err == DC_INVAL)
		ret = cli_usage(cli, "%s: invalid value '%s'", cli->args[0],
				cli->args[1]);
	else if (err)
		ret = cli_fail(cli, err, "%s", cli->args[0]);
out:
	dc_buf_release(&b);
	return ret;
}

static int cmd_help(struct cli *cli)
{
	const struct cli_cmd *c = NULL, *group = NULL;
	int ret = EXIT_OK;

	if (cli->nargs > 0) {
		for (c = cli_cmds; c->name; c++)
			if (!strcmp(c->name, cli->args[0]))
				break;
		if (!c->name) {
			ret = cli_usage(cli, "unknown command '%s'",
					cli->args[0]);
			goto out;
		}
	}
	if (cli->nargs > 1) {
		if (!c->subs) {
			ret = cli_usage(cli, "'%s' has no commands",
					cli->args[0]);
			goto out;
		}
		group = c;
		for (c = group->subs; c->name; c++)
			if (!strcmp(c->name, cli->args[1]))
				break;
		if (!c->name) {
			ret = cli_usage(cli, "unknown command '%s %s'",
					cli->args[0], cli->args[1]);
			goto out;
		}
	}
	cli_print_help(group, c, stdout);
out:
	return ret;
}

/* ------------------------------------------------------------------ */
/* The command table                                                  */
/* ------------------------------------------------------------------ */

#define H_SETOPTS                                                              \
	"  -e, --expire DUR   expire after DUR: seconds, or with a suffix\n"   \
	"                     s, m, h, d (1.5h); 'none' for never\n"           \
	"      --tag TAG      tag the key (type: --tag-type)\n"                \
	"  -t, --type T       type of VALUE: str (default), bytes, int,\n"     \
	"                     float, pickle\n"

const struct cli_cmd cli_cmds[] = {
	{ "get", cmd_get, cli_parse_key, 1, 1, CO_META, 1, "[-m|-M] [-r] KEY",
	  "print the value of KEY",
	  H_OUT "A missing or expired key exits with 1.\n\n" H_META
		"With -m the value is not read and no hit or miss is "
		"counted.\n",
	  NULL },
	{ "set", cmd_set, parse_set, 1, 2, CO_EXPIRE | CO_TAG, 1,
	  "[-e DUR] [--tag TAG] KEY [VALUE|-]", "store VALUE under KEY",
	  "Without VALUE, or with '-', the value is read from stdin (exact\n"
	  "bytes; a large value is streamed into a value file).  A number\n"
	  "read from stdin may have blanks around it.\n\n" H_SETOPTS,
	  NULL },
	{ "add", cmd_add, parse_set, 1, 2, CO_EXPIRE | CO_TAG, 1,
	  "[-e DUR] [--tag TAG] KEY [VALUE|-]",
	  "store VALUE only if KEY is missing",
	  "As set, but exits with 1 and changes nothing if KEY exists and\n"
	  "is alive.\n\n" H_SETOPTS,
	  NULL },
	{ "delete", cmd_delete, cli_parse_key, 1, 1, 0, 1, "KEY", "remove KEY",
	  "Exits with 1 if KEY is missing or expired.\n", NULL },
	{ "contains", cmd_contains, cli_parse_key, 1, 1, 0, 1, "KEY",
	  "exit 0 if KEY is alive, else 1",
	  "Prints nothing; counts no hit or miss.\n", NULL },
	{ "touch", cmd_touch, cli_parse_key, 1, 1, CO_EXPIRE, 1, "[-e DUR] KEY",
	  "change the expiry of KEY",
	  "Without --expire the key never expires.  Exits with 1 if KEY is\n"
	  "missing or expired.\n\n"
	  "  -e, --expire DUR   expire DUR from now (seconds or s/m/h/d)\n",
	  NULL },
	{ "incr", cmd_incr, parse_incr, 1, 2, CO_DEFAULT, 1,
	  "[--default N|--no-default] KEY [DELTA]",
	  "add DELTA (default 1) to an integer",
	  "Prints the new value.  A missing key counts as --default (0),\n"
	  "as in DiskCache; with --no-default it exits with 1.  A value\n"
	  "that is not a number, or an overflow, exits with 4.\n\n"
	  "      --default N    value assumed for a missing key (0)\n"
	  "      --no-default   a missing key is an error (exit 1)\n",
	  NULL },
	{ "decr", cmd_decr, parse_incr, 1, 2, CO_DEFAULT, 1,
	  "[--default N|--no-default] KEY [DELTA]",
	  "subtract DELTA (default 1) from an integer",
	  "As incr with -DELTA.\n\n"
	  "      --default N    value assumed for a missing key (0)\n"
	  "      --no-default   a missing key is an error (exit 1)\n",
	  NULL },
	{ "pop", cmd_pop, cli_parse_key, 1, 1, CO_META, 1, "[-m|-M] [-r] KEY",
	  "print the value of KEY and remove it",
	  H_OUT "A missing key exits with 1.\n\n" H_META, NULL },
	{ "push", cmd_push, parse_push, 0, 1,
	  CO_PREFIX | CO_FRONT | CO_EXPIRE | CO_TAG, 1,
	  "[-p P] [--front] [-e DUR] [--tag TAG] [VALUE|-]",
	  "append VALUE to a queue and print its key",
	  "Queue keys are integers from 500000000000000, or with a prefix P\n"
	  "texts P-500000000000000 ...  Without VALUE, or with '-', the\n"
	  "value is read from stdin.\n\n"
	  "  -p, --prefix P     the queue of text keys P-NNN...\n"
	  "      --front        push at the front instead of the "
	  "back\n" H_SETOPTS,
	  NULL },
	{ "pull", cmd_pull, cli_parse_ends, 0, 0,
	  CO_PREFIX | CO_FRONT | CO_BACK | CO_META, 1,
	  "[-p P] [--back] [-m|-M] [-r]",
	  "print the first item of a queue and remove it",
	  H_OUT "An empty queue exits with 1.  The key is in the metadata.\n\n"
		"  -p, --prefix P     the queue of text keys P-NNN...\n"
		"      --back         take the last item instead\n" H_META,
	  NULL },
	{ "peek", cmd_peek, cli_parse_ends, 0, 0,
	  CO_PREFIX | CO_FRONT | CO_BACK | CO_META, 1,
	  "[-p P] [--back] [-m|-M] [-r]", "print the first item of a queue",
	  H_OUT "An empty queue exits with 1.\n\n"
		"  -p, --prefix P     the queue of text keys P-NNN...\n"
		"      --back         the last item instead\n" H_META,
	  NULL },
	{ "peekitem", cmd_peekitem, NULL, 0, 0, CO_FIRST | CO_META, 1,
	  "[--first] [-m|-M] [-r]", "print the last stored item",
	  H_OUT "An empty cache exits with 1.\n\n"
		"      --first        the first stored item instead\n" H_META,
	  NULL },
	{ "list", cmd_list, NULL, 0, 0,
	  CO_SORTED | CO_REVERSE | CO_PREFIX | CO_ALIVE | CO_NULL | CO_LONG, 1,
	  "[-s] [--reverse] [-p P] [-a] [-l] [-z]", "print the keys",
	  "In insertion order, expired keys included (as DiskCache's\n"
	  "iterator).  One key a line: \\ newline, tab, CR, control bytes\n"
	  "and invalid UTF-8 escaped as \\\\ \\n \\t \\r \\xNN.\n\n"
	  "  -s, --sorted       in key order (numbers, text, bytes)\n"
	  "      --reverse      newest (or largest) first\n"
	  "  -p, --prefix P     only text keys starting with P\n"
	  "  -a, --alive        skip expired keys\n"
	  "  -l, --long         prefix TYPE<tab>SIZE<tab>EXPIRE_TIME<tab>\n"
	  "  -z, --null         raw keys, each ended by a NUL byte\n",
	  NULL },
	{ "stats", cmd_stats, parse_stats, 0, 0, CO_STATS, 1,
	  "[--enable|--disable] [--reset]", "print hits, misses, count, volume",
	  "Prints 'name value' lines: hits, misses (before a reset),\n"
	  "statistics (1 if counting, after the change), count, volume.\n\n"
	  "      --enable       start counting hits and misses\n"
	  "      --disable      stop counting\n"
	  "      --reset        set hits and misses to 0\n",
	  NULL },
	{ "volume", cmd_volume, NULL, 0, 0, 0, 1, "",
	  "print the size of the cache in bytes",
	  "Database pages plus value-file bytes.\n", NULL },
	{ "len", cmd_len, NULL, 0, 0, 0, 1, "", "print the number of keys",
	  "Expired keys not yet removed are counted.\n", NULL },
	{ "expire", cmd_expire, NULL, 0, 0, 0, 1, "", "remove expired keys",
	  "Prints how many keys were removed.\n", NULL },
	{ "evict", cmd_evict, parse_evict, 1, 1, 0, 1, "TAG",
	  "remove the keys tagged TAG",
	  "Prints how many keys were removed.  TAG's type: --tag-type.\n",
	  NULL },
	{ "cull", cmd_cull, NULL, 0, 0, 0, 1, "",
	  "remove expired keys, then evict down to size_limit",
	  "Prints how many keys were removed (0 with eviction_policy "
	  "none).\n",
	  NULL },
	{ "clear", cmd_clear, NULL, 0, 0, 0, 1, "", "remove every key",
	  "Prints how many keys were removed.\n", NULL },
	{ "check", cmd_check, NULL, 0, 0, CO_FIX, 1, "[--fix]",
	  "check the database and the value files",
	  "Prints one 'kind: message' line per problem and exits with 1 if\n"
	  "there are any.  With --fix it repairs and prints what it found,\n"
	  "repeating while a repair uncovers more (up to 4 passes); then\n"
	  "problems left are printed as 'remaining kind: message' and exit\n"
	  "with 1.\n\n"
	  "      --fix          repair\n",
	  NULL },
	{ "settings", cmd_settings, parse_settings, 0, 2, 0, 1,
	  "[NAME [VALUE]]", "print or change settings",
	  "Without NAME: every setting as name=value.  With NAME: its\n"
	  "value.  With VALUE: change it (for every shard), keeping the\n"
	  "stored type unless --type is given.  An unknown NAME exits\n"
	  "with 1, a bad VALUE with 2.\n",
	  NULL },
	{ "deque", NULL, NULL, 0, 0, CO_SUB, CLI_OPEN_DEQUE,
	  "[--sub NAME] COMMAND [ARGS]",
	  "a persistent double-ended queue (Python's Deque)",
	  "The deque is DIR itself, a plain Cache as Python's\n"
	  "Deque(directory=DIR) keeps it, or with --sub NAME the deque\n"
	  "FanoutCache(DIR).deque(NAME) keeps in DIR/deque/NAME.  VALUEs are\n"
	  "typed by --type as for set; '-' or no VALUE reads stdin.\n\n"
	  "      --sub NAME     FanoutCache(DIR).deque(NAME); a new DIR gets\n"
	  "                     --shards or 8 shards, as Python's default\n",
	  cli_deque_cmds },
	{ "index", NULL, NULL, 0, 0, CO_SUB, CLI_OPEN_INDEX,
	  "[--sub NAME] COMMAND [ARGS]",
	  "a persistent ordered mapping (Python's Index)",
	  "The index is DIR itself, a plain Cache as Python's Index(DIR)\n"
	  "keeps it, or with --sub NAME the index "
	  "FanoutCache(DIR).index(NAME)\n"
	  "keeps in DIR/index/NAME.  KEYs are typed by --key-type and VALUEs\n"
	  "by --type as for set; '-' or no VALUE reads stdin.\n\n"
	  "      --sub NAME     FanoutCache(DIR).index(NAME); a new DIR gets\n"
	  "                     --shards or 8 shards, as Python's default\n",
	  cli_index_cmds },
	{ "lock", cli_cmd_lock, cli_parse_lock, 1, INT_MAX,
	  CO_EXPIRE | CO_TAG | CO_WAIT | CO_CONFLICT, CLI_OPEN_CACHE,
	  "[-e DUR] [-w DUR|-n] [-E N] [--tag TAG] KEY [-- COMMAND [ARG...]]",
	  "take a lock shared with Python's diskcache.Lock",
	  "Adds KEY with the value None, as Python's Lock(cache, KEY)\n"
	  "does, waiting while another process (dcache or Python) holds it.\n"
	  "Exits with 0 once taken; 'dcache unlock KEY' releases it.  With\n"
	  "COMMAND: takes the lock, runs COMMAND, releases the lock and\n"
	  "exits with COMMAND's status (128+N if killed by signal N, 126 or\n"
	  "127 if it cannot be run); SIGTERM and SIGHUP are passed on to it.\n"
	  "A lock still held elsewhere after the wait exits with 1 (or -E).\n"
	  "Use --expire so that a lock whose holder died is freed in time.\n\n"
	  "  -e, --expire DUR   the lock expires after DUR (default: never)\n"
	  "  -w, --wait DUR     give up after DUR (default: wait forever)\n"
	  "  -n, --nowait       try once\n"
	  "  -E, --conflict-exit-code N\n"
	  "                     exit with N when the lock is held elsewhere\n"
	  "      --tag TAG      tag the lock's key (type: --tag-type)\n",
	  NULL },
	{ "unlock", cli_cmd_unlock, cli_parse_key, 1, 1, 0, CLI_OPEN_CACHE,
	  "KEY", "release a lock taken by lock (or by Python's Lock)",
	  "Deletes KEY, as Python's Lock.release does: any process may\n"
	  "release a lock.  Exits with 1 if it was not held.\n",
	  NULL },
	{ "help", cmd_help, NULL, 0, 2, 0, 0, "[COMMAND [SUBCOMMAND]]",
	  "show help",
	  "Without COMMAND, the list of commands and global options.\n", NULL },
	{ NULL, NULL, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL },
};
