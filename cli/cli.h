/* cli.h - internal declarations shared by the dcache command-line tool
 * SPDX-License-Identifier: MIT
 *
 * The CLI uses only the public dcache.h and libc.  dcache.c parses the
 * command line and dispatches, cmd.c implements the cache commands and
 * the helpers they share with coll.c (the deque and index command groups)
 * and lock.c (lock, unlock), util.c holds the strict parsers, the output
 * helpers and stdin handling.
 */
#ifndef DCACHE_CLI_H
#define DCACHE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dcache.h"

/* Exit codes: stable, documented in docs/cli.md. */
enum {
	EXIT_OK = 0,
	EXIT_NOTFOUND = 1, /* a negative answer: miss, empty, exists ... */
	EXIT_USAGE = 2,    /* bad invocation or input (also DC_INVAL) */
	EXIT_BUSY = 3,     /* DC_TIMEOUT: the database stayed locked */
	EXIT_ERROR = 4,    /* anything else: corrupt data, I/O, SQLite */
};

/* A growable byte buffer owned by the CLI. */
struct cbuf {
	char *data;
	size_t len;
	size_t cap;
};

/* Everything the command line asked for. */
struct cli {
	const char *prog_dir; /* -d, or NULL for the default */
	int shards;           /* --shards; 0 = detect */
	double timeout;       /* --timeout; 0 = library default */
	enum dc_type key_type;
	enum dc_type type;
	enum dc_type tag_type;
	int type_set;   /* --type was given */
	unsigned flags; /* DC_RETRY */
	int verbose;
	int quiet;

	/* command options */
	double expire; /* DC_NO_EXPIRE unless --expire */
	const char *tag;
	const char *prefix;
	int front, back, first;
	int sorted, reverse, alive;
	int null_sep, long_fmt;
	int meta, meta_stderr, raw;
	int fix;
	int enable, disable, reset;
	int64_t dflt;
	int no_default;
	const char *sub;   /* --sub NAME: FanoutCache.deque(NAME)/index(NAME) */
	int64_t maxlen;    /* --maxlen, or DC_DEQUE_UNBOUNDED */
	double wait;       /* --wait, --nowait; DC_WAIT_FOREVER by default */
	int wait_set;      /* --wait given */
	int nowait;        /* --nowait given */
	int conflict_code; /* -E: exit status of a lock held elsewhere */

	/* the command and its operands */
	const struct cli_cmd *group; /* deque or index, or NULL */
	const struct cli_cmd *cmd;   /* the command, or the group's one */
	char **args;
	int nargs;
	int dashdash; /* operands before the first "--", or -1 */

	/* the operands in the library's types, set by the command's parse
	 * step before the cache is opened: bad input has no side effects */
	struct dc_value key;
	struct dc_value tagv;        /* --tag, or evict's TAG */
	const struct dc_value *tagp; /* &tagv, or NULL for no tag */
	struct dc_value value;
	int has_value; /* VALUE was an operand (else it comes from stdin) */
	int64_t delta; /* DELTA of incr, INDEX and N of deque commands */
	struct dc_value *values; /* VALUE... of deque append */
	int nvalues;
	char **run;     /* lock's COMMAND [ARG...], NULL-terminated */
	struct cbuf in; /* a value read from stdin by a parse step */

	dc_cache *cache; /* CLI_OPEN_CACHE, or --sub's FanoutCache */
	dc_deque *deque; /* CLI_OPEN_DEQUE */
	dc_index *index; /* CLI_OPEN_INDEX */
	char dir[4096];
	char lastlog[512]; /* last library log message, for error lines */
};

struct cli_cmd {
	const char *name;
	int (*run)(struct cli *cli);
	/* converts the operands into struct cli before the cache is
	 * opened; NULL if there is nothing to convert */
	int (*parse)(struct cli *cli);
	int min_args;
	int max_args;
	unsigned opts;       /* CO_* options the command accepts */
	int needs_cache;     /* CLI_OPEN_*: what to open after parse() */
	const char *usage;   /* "KEY [VALUE]" */
	const char *summary; /* one line for the command list */
	const char *help;    /* the rest of "dcache help CMD" */
	/* A group (deque, index): its first operand names one of these
	 * commands, which then runs; NULL for an ordinary command. */
	const struct cli_cmd *subs;
};

/* What main() opens between a command's parse() and run(). */
enum {
	CLI_OPEN_NONE = 0,
	CLI_OPEN_CACHE = 1, /* cli->cache: -d DIR as it is */
	CLI_OPEN_DEQUE = 2, /* cli->deque: DIR, or DIR/deque/NAME (--sub) */
	CLI_OPEN_INDEX = 3, /* cli->index: DIR, or DIR/index/NAME (--sub) */
};

/* Command options, as a bit per option (global options are always
 * accepted and have no bit). */
enum {
	CO_EXPIRE = 1u << 0,
	CO_TAG = 1u << 1,
	CO_PREFIX = 1u << 2,
	CO_FRONT = 1u << 3,
	CO_BACK = 1u << 4,
	CO_SORTED = 1u << 5,
	CO_REVERSE = 1u << 6,
	CO_ALIVE = 1u << 7,
	CO_NULL = 1u << 8,
	CO_LONG = 1u << 9,
	CO_META = 1u << 10, /* -m, -M, -r */
	CO_FIX = 1u << 11,
	CO_STATS = 1u << 12,   /* --enable, --disable, --reset */
	CO_DEFAULT = 1u << 13, /* --default, --no-default */
	CO_FIRST = 1u << 14,
	CO_SUB = 1u << 15,
	CO_MAXLEN = 1u << 16,
	CO_WAIT = 1u << 17, /* --wait, --nowait */
	CO_CONFLICT = 1u << 18,
};

extern const struct cli_cmd cli_cmds[];
extern const struct cli_cmd cli_deque_cmds[]; /* coll.c */
extern const struct cli_cmd cli_index_cmds[]; /* coll.c */

/* dcache.c */
int cli_fail(struct cli *cli, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cli_usage(struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cli_exit_code(int err);
/* "get", or "deque append" for a command of a group. */
const char *cli_cmd_name(const struct cli *cli);
/* The key or value in its one-line escaped form, in a static buffer
 * (truncated with "..." if long). */
const char *cli_str(const struct dc_value *v);
/* The command list (both NULL), a command's help, a group's help (@cmd
 * NULL) or the help of one of a group's commands. */
void cli_print_help(const struct cli_cmd *group, const struct cli_cmd *cmd,
		    FILE *f);

/* util.c: parsing.  Each returns 0 or -1 (nothing printed). */
int cli_parse_i64(const char *s, int64_t *out);
int cli_parse_double(const char *s, double *out);
int cli_parse_duration(const char *s, double *out);
int cli_utf8_valid(const void *p, size_t len);

/* Streaming UTF-8 validation: state 0 at start; feed chunks; valid at
 * the end only if the state is back to 0. */
struct utf8_state {
	int need;         /* continuation bytes still expected */
	unsigned char lo; /* allowed range of the next byte */
	unsigned char hi;
	int bad;
};
void cli_utf8_feed(struct utf8_state *st, const void *p, size_t len);

/* util.c: buffers and input. */
int cbuf_reserve(struct cbuf *b, size_t extra);
int cbuf_append(struct cbuf *b, const void *p, size_t len);
void cbuf_release(struct cbuf *b);
/* Read @fd into @b until EOF or until b->len >= @limit (0: no limit).
 * Returns 0 and sets *eof, or an errno. */
int cli_read_fd(int fd, struct cbuf *b, size_t limit, int *eof);
int cli_write_all(int fd, const void *p, size_t len);

/* util.c: output. */
void cli_format_double(double d, char *out, size_t size);
/* Print text/bytes escaped so that it stays on one line: \\ \n \t \r,
 * other control bytes and invalid UTF-8 as \xNN. */
void cli_print_escaped(FILE *f, const void *p, size_t len);
/* Print a key, tag or number value in the one-line escaped form. */
void cli_print_value_line(FILE *f, const struct dc_value *v);

/* Writes a value to stdout: raw bytes, or a terminal-friendly form. */
struct out_stream {
	FILE *f;
	int tty;               /* escape control bytes, end with a newline */
	unsigned char pend[4]; /* incomplete UTF-8 sequence (tty) */
	size_t npend;
	int last_nl;
	int any;
};
void out_init(struct out_stream *o, FILE *f, int tty);
void out_write(struct out_stream *o, const void *p, size_t len);
void out_finish(struct out_stream *o);

/* cmd.c: operands and output shared by the commands. */

/* A typed key, value or tag from a string of the command line or of
 * stdin (@what names it in messages, @opt is the option setting its
 * type).  Returns 0, or EXIT_USAGE with the message printed. */
int cli_typed_arg(struct cli *cli, const char *what, const char *opt,
		  const char *s, size_t len, enum dc_type t,
		  struct dc_value *v);
/* KEY, the first operand, into cli->key (--key-type). */
int cli_parse_key(struct cli *cli);
/* --tag into cli->tagp, which stays NULL without it. */
int cli_parse_tag_opt(struct cli *cli);
/* The VALUE operand at @argi into cli->value; absent or "-": stdin. */
int cli_parse_value(struct cli *cli, int argi);
/* --front and --back of pull and peek, which exclude each other. */
int cli_parse_ends(struct cli *cli);
/* The VALUE: the parsed operand, or stdin into @in (see cmd.c). */
int cli_read_value(struct cli *cli, struct cbuf *in, size_t limit,
		   struct dc_value *v, int *more);
/* A negative answer: a short message (none with -q), EXIT_NOTFOUND. */
int cli_not_found(struct cli *cli, const char *fmt, const char *arg);
void cli_item_init(struct dc_item *it);
/* A value on stdout as get prints it (-m, -M, -r apply); closes it->fd. */
int cli_print_item(struct cli *cli, const struct dc_value *key,
		   struct dc_item *it);
/* A key or value's exact bytes (numbers in decimal), for -z output. */
void cli_print_raw(const struct dc_value *v);
void cli_print_u64(uint64_t n);

/* lock.c */
int cli_parse_lock(struct cli *cli);
int cli_cmd_lock(struct cli *cli);
int cli_cmd_unlock(struct cli *cli);

/* Help texts shared by cmd.c and coll.c. */
#define H_OUT                                                                  \
	"The value is written exactly as stored (text, bytes or pickle\n"      \
	"bytes; numbers in decimal) with no newline added, streamed from\n"    \
	"its value file if it has one.  On a terminal a newline is added\n"    \
	"and control bytes and invalid UTF-8 show as \\xNN (see -r).\n"

#define H_META                                                                 \
	"  -m, --meta         print the metadata, as 'name value' lines,\n"    \
	"                     instead of the value\n"                          \
	"  -M, --meta-stderr  print the value, and the metadata on stderr\n"   \
	"  -r, --raw          exact bytes even on a terminal\n"

#endif /* DCACHE_CLI_H */
