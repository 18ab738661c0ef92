/* dcache.c - the dcache command-line tool: options, dispatch, errors
 * SPDX-License-Identifier: MIT
 *
 * Usage: dcache [-d DIR] [--shards N] COMMAND [OPTIONS] [ARGS]
 * The commands live in cmd.c; docs/cli.md is the manual.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum opt_id {
	O_DIR,
	O_SHARDS,
	O_TIMEOUT,
	O_KEYTYPE,
	O_TYPE,
	O_TAGTYPE,
	O_RETRY,
	O_VERBOSE,
	O_QUIET,
	O_HELP,
	O_VERSION,
	O_EXPIRE,
	O_TAG,
	O_PREFIX,
	O_FRONT,
	O_BACK,
	O_FIRST,
	O_SORTED,
	O_REVERSE,
	O_ALIVE,
	O_NULL,
	O_LONG,
	O_META,
	O_META_STDERR,
	O_RAW,
	O_FIX,
	O_ENABLE,
	O_DISABLE,
	O_RESET,
	O_DEFAULT,
	O_NO_DEFAULT,
	O_SUB,
	O_MAXLEN,
	O_WAIT,
	O_NOWAIT,
	O_CONFLICT,
};

struct opt {
	const char *lng;
	char shrt;
	int has_arg;
	unsigned co; /* 0: a global option, accepted everywhere */
	enum opt_id id;
};

static const struct opt opts[] = {
	{ "dir", 'd', 1, 0, O_DIR },
	{ "shards", 0, 1, 0, O_SHARDS },
	{ "timeout", 0, 1, 0, O_TIMEOUT },
	{ "key-type", 'k', 1, 0, O_KEYTYPE },
	{ "type", 't', 1, 0, O_TYPE },
	{ "tag-type", 0, 1, 0, O_TAGTYPE },
	{ "retry", 0, 0, 0, O_RETRY },
	{ "verbose", 'v', 0, 0, O_VERBOSE },
	{ "quiet", 'q', 0, 0, O_QUIET },
	{ "help", 'h', 0, 0, O_HELP },
	{ "version", 0, 0, 0, O_VERSION },
	{ "expire", 'e', 1, CO_EXPIRE, O_EXPIRE },
	{ "tag", 0, 1, CO_TAG, O_TAG },
	{ "prefix", 'p', 1, CO_PREFIX, O_PREFIX },
	{ "front", 0, 0, CO_FRONT, O_FRONT },
	{ "back", 0, 0, CO_BACK, O_BACK },
	{ "first", 0, 0, CO_FIRST, O_FIRST },
	{ "sorted", 's', 0, CO_SORTED, O_SORTED },
	{ "reverse", 0, 0, CO_REVERSE, O_REVERSE },
	{ "alive", 'a', 0, CO_ALIVE, O_ALIVE },
	{ "null", 'z', 0, CO_NULL, O_NULL },
	{ "long", 'l', 0, CO_LONG, O_LONG },
	{ "meta", 'm', 0, CO_META, O_META },
	{ "meta-stderr", 'M', 0, CO_META, O_META_STDERR },
	{ "raw", 'r', 0, CO_META, O_RAW },
	{ "fix", 0, 0, CO_FIX, O_FIX },
	{ "enable", 0, 0, CO_STATS, O_ENABLE },
	{ "disable", 0, 0, CO_STATS, O_DISABLE },
	{ "reset", 0, 0, CO_STATS, O_RESET },
	{ "default", 0, 1, CO_DEFAULT, O_DEFAULT },
	{ "no-default", 0, 0, CO_DEFAULT, O_NO_DEFAULT },
	{ "sub", 0, 1, CO_SUB, O_SUB },
	{ "maxlen", 0, 1, CO_MAXLEN, O_MAXLEN },
	{ "wait", 'w', 1, CO_WAIT, O_WAIT },
	{ "nowait", 'n', 0, CO_WAIT, O_NOWAIT },
	{ "conflict-exit-code", 'E', 1, CO_CONFLICT, O_CONFLICT },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char main_help[] =
    "Usage: dcache [OPTIONS] COMMAND [COMMAND OPTIONS] [ARGS]\n"
    "\n"
    "Read and write a Python DiskCache 5.x directory (a Cache or a\n"
    "FanoutCache) from the shell.\n"
    "\n"
    "Commands:\n"
    "%s"
    "\n"
    "Global options (before or after the command):\n"
    "  -d, --dir DIR      the cache directory; default $DCACHE_DIR, else\n"
    "                     $XDG_CACHE_HOME/dcache, else ~/.cache/dcache\n"
    "      --shards N     a FanoutCache of N shards (default: detect an\n"
    "                     existing layout; a new directory is a Cache)\n"
    "      --timeout SEC  SQLite busy timeout (default 60, FanoutCache "
    "0.010)\n"
    "      --retry        retry a locked database instead of exit 3\n"
    "  -k, --key-type T   type of KEY: str (default), bytes, int, float\n"
    "  -t, --type T       type of VALUE: str (default), bytes, int, float,\n"
    "                     pickle (raw pickle bytes)\n"
    "      --tag-type T   type of --tag and TAG: str (default), bytes, int,\n"
    "                     float\n"
    "  -q, --quiet        no message for a miss (the exit status stays 1)\n"
    "  -v, --verbose      show the library's log messages on stderr\n"
    "  -h, --help         this help; 'dcache help COMMAND' for a command\n"
    "      --version      the versions of dcache, libdcache and SQLite\n"
    "\n"
    "Exit status: 0 success, 1 not found (miss, empty queue, key exists,\n"
    "lock held elsewhere or not held, check found problems), 2 usage\n"
    "error or invalid input, 3 database busy (timeout), 4 any other\n"
    "error.\n";

/* With @group, @cmd is one of its commands (or NULL: the group's help
 * itself); a group's help ends with the list of its commands. */
void cli_print_help(const struct cli_cmd *group, const struct cli_cmd *cmd,
		    FILE *f)
{
	const struct cli_cmd *c;
	size_t cap = 0;
	char *list = NULL;
	FILE *m;

	if (group && (!cmd || cmd == group)) {
		cmd = group;
		group = NULL;
	}
	if (cmd) {
		fprintf(f, "Usage: dcache %s%s%s%s%s\n\n%c%s.\n%s",
			group ? group->name : "", group ? " " : "", cmd->name,
			*cmd->usage ? " " : "", cmd->usage,
			toupper((unsigned char)cmd->summary[0]),
			cmd->summary + 1, cmd->help);
		if (cmd->subs) {
			fputs("\nCommands:\n", f);
			for (c = cmd->subs; c->name; c++)
				fprintf(f, "  %-11s %s\n", c->name, c->summary);
			fprintf(f,
				"\n'dcache help %s COMMAND' for a command's "
				"help.\n",
				cmd->name);
		}
		goto out;
	}
	m = open_memstream(&list, &cap);
	if (!m)
		goto out;
	for (c = cli_cmds; c->name; c++)
		fprintf(m, "  %-10s %s\n", c->name, c->summary);
	fclose(m);
	fprintf(f, main_help, list ? list : "");
	free(list);
out:
	return;
}

int cli_exit_code(int err)
{
	switch (err) {
	case 0:
		return EXIT_OK;
	case DC_NOTFOUND:
	case DC_EXISTS:
	case DC_NOTHELD:
		return EXIT_NOTFOUND;
	case DC_INVAL:
		return EXIT_USAGE;
	case DC_TIMEOUT:
	case EBUSY:
		return EXIT_BUSY;
	default:
		return EXIT_ERROR;
	}
}

const char *cli_cmd_name(const struct cli *cli)
{
	static char name[64];
	const char *ret = cli->cmd ? cli->cmd->name : NULL;

	if (cli->cmd && cli->group && cli->group != cli->cmd) {
		snprintf(name, sizeof(name), "%s %s", cli->group->name,
			 cli->cmd->name);
		ret = name;
	}
	return ret;
}

/* One line: "dcache: CMD: CONTEXT: library message (last log line)". */
int cli_fail(struct cli *cli, int err, const char *fmt, ...)
{
	va_list ap;
	int code = cli_exit_code(err);

	if (cli->quiet && code == EXIT_NOTFOUND)
		goto out;
	fputs("dcache: ", stderr);
	if (cli_cmd_name(cli))
		fprintf(stderr, "%s: ", cli_cmd_name(cli));
	if (fmt && *fmt) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputs(": ", stderr);
	}
	fputs(dc_strerror(err), stderr);
	/* SQLite's own text reaches us only through the log callback */
	if (cli->lastlog[0] && code != EXIT_NOTFOUND)
		fprintf(stderr, " (%s)", cli->lastlog);
	fputc('\n', stderr);
out:
	return code;
}

int cli_usage(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fputs("dcache: ", stderr);
	if (cli_cmd_name(cli))
		fprintf(stderr, "%s: ", cli_cmd_name(cli));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cli_cmd_name(cli))
		fprintf(stderr, " (see 'dcache help %s')\n", cli_cmd_name(cli));
	else
		fputs(" (see 'dcache --help')\n", stderr);
	return EXIT_USAGE;
}

const char *cli_str(const struct dc_value *v)
{
	static char buf[256];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	buf[0] = '\0';
	if (f) {
		/* fmemopen truncates silently; mark the cut */
		cli_print_value_line(f, v);
		if (ftell(f) >= (long)sizeof(buf) - 1)
			memcpy(buf + sizeof(buf) - 4, "...", 3);
		fclose(f);
	}
	buf[sizeof(buf) - 1] = '\0';
	return buf;
}

static const struct cli_cmd *find_cmd(const struct cli_cmd *table,
				      const char *name)
{
	const struct cli_cmd *c;

	for (c = table; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static int parse_type(const char *s, int allow_pickle, enum dc_type *t)
{
	int ret = 0;

	if (!strcmp(s, "str") || !strcmp(s, "text"))
		*t = DC_TYPE_TEXT;
	else if (!strcmp(s, "bytes"))
		*t = DC_TYPE_BYTES;
	else if (!strcmp(s, "int"))
		*t = DC_TYPE_INT;
	else if (!strcmp(s, "float"))
		*t = DC_TYPE_FLOAT;
	else if (allow_pickle && !strcmp(s, "pickle"))
		*t = DC_TYPE_PICKLE;
	else
		ret = -1;
	return ret;
}

/* What dc_cache_open_sub() accepts, checked before anything is opened
 * (a FanoutCache would be created first): each '/'-separated part of
 * the name becomes a directory below DIR/deque or DIR/index. */
static int sub_name_ok(const char *name)
{
	const char *p = name;
	size_t n;
	int ok = *name && strlen(name) <= 1024;

	while (ok) {
		n = strcspn(p, "/");
		ok = n > 0 && !(n == 1 && p[0] == '.') &&
		     !(n == 2 && p[0] == '.' && p[1] == '.');
		if (!p[n])
			break;
		p += n + 1;
	}
	return ok;
}

/* The integer value of option @o, from @lo to @hi; otherwise a usage
 * error saying it is not @what. */
static int int_opt(struct cli *cli, const struct opt *o, const char *val,
		   int64_t lo, int64_t hi, const char *what, int64_t *n)
{
	if (cli_parse_i64(val, n) || *n < lo || *n > hi)
		return cli_usage(cli, "--%s: not %s: '%s'", o->lng, what, val);
	return 0;
}

/* The value of a duration option (no "none", not negative). */
static int duration_opt(struct cli *cli, const struct opt *o, const char *val,
			double *d)
{
	if (cli_parse_duration(val, d) || isnan(*d) || *d < 0)
		return cli_usage(cli, "--%s: not a duration: '%s'", o->lng,
				 val);
	return 0;
}

static int apply_opt(struct cli *cli, const struct opt *o, const char *val,
		     int *help, int *version)
{
	int64_t n;
	double d;
	int ret = 0;

	switch (o->id) {
	case O_DIR:
		if (!*val)
			ret = cli_usage(cli, "--dir: empty directory name");
		cli->prog_dir = val;
		break;
	case O_SHARDS:
		ret =
		    int_opt(cli, o, val, 0, 9999, "a shard count (0-9999)", &n);
		if (!ret)
			cli->shards = (int)n;
		break;
	case O_TIMEOUT:
		ret = duration_opt(cli, o, val, &d);
		if (!ret)
			cli->timeout = d;
		break;
	case O_KEYTYPE:
		if (parse_type(val, 0, &cli->key_type))
			ret = cli_usage(cli, "--key-type: unknown type '%s'",
					val);
		break;
	case O_TYPE:
		if (parse_type(val, 1, &cli->type))
			ret = cli_usage(cli, "--type: unknown type '%s'", val);
		cli->type_set = 1;
		break;
	case O_TAGTYPE:
		if (parse_type(val, 0, &cli->tag_type))
			ret = cli_usage(cli, "--tag-type: unknown type '%s'",
					val);
		break;
	case O_RETRY:
		cli->flags |= DC_RETRY;
		break;
	case O_VERBOSE:
		cli->verbose = 1;
		break;
	case O_QUIET:
		cli->quiet = 1;
		break;
	case O_HELP:
		*help = 1;
		break;
	case O_VERSION:
		*version = 1;
		break;
	case O_EXPIRE:
		if (cli_parse_duration(val, &cli->expire))
			ret = cli_usage(cli,
					"--expire: not a duration "
					"(SECONDS[s|m|h|d] or none): '%s'",
					val);
		break;
	case O_TAG:
		cli->tag = val;
		break;
	case O_PREFIX:
		cli->prefix = val;
		break;
	case O_FRONT:
		cli->front = 1;
		break;
	case O_BACK:
		cli->back = 1;
		break;
	case O_FIRST:
		cli->first = 1;
		break;
	case O_SORTED:
		cli->sorted = 1;
		break;
	case O_REVERSE:
		cli->reverse = 1;
		break;
	case O_ALIVE:
		cli->alive = 1;
		break;
	case O_NULL:
		cli->null_sep = 1;
		break;
	case O_LONG:
		cli->long_fmt = 1;
		break;
	case O_META:
		cli->meta = 1;
		break;
	case O_META_STDERR:
		cli->meta_stderr = 1;
		break;
	case O_RAW:
		cli->raw = 1;
		break;
	case O_FIX:
		cli->fix = 1;
		break;
	case O_ENABLE:
		cli->enable = 1;
		break;
	case O_DISABLE:
		cli->disable = 1;
		break;
	case O_RESET:
		cli->reset = 1;
		break;
	case O_DEFAULT:
		ret = int_opt(cli, o, val, INT64_MIN, INT64_MAX, "an integer",
			      &cli->dflt);
		cli->no_default = 0;
		break;
	case O_NO_DEFAULT:
		cli->no_default = 1;
		break;
	case O_SUB:
		if (!sub_name_ok(val))
			ret = cli_usage(cli,
					"--sub: not a name ('/'-separated "
					"parts, none empty, '.' or '..'): '%s'",
					val);
		cli->sub = val;
		break;
	case O_MAXLEN:
		ret = int_opt(cli, o, val, 0, INT64_MAX, "a length (0 or more)",
			      &n);
		if (!ret)
			cli->maxlen = n;
		break;
	case O_WAIT:
		ret = duration_opt(cli, o, val, &d);
		if (!ret)
			cli->wait = d;
		cli->wait_set = 1;
		break;
	case O_NOWAIT:
		cli->nowait = 1;
		break;
	case O_CONFLICT:
		ret =
		    int_opt(cli, o, val, 0, 255, "an exit status (0-255)", &n);
		if (!ret)
			cli->conflict_code = (int)n;
		break;
	}
	return ret;
}

static int check_opt(struct cli *cli, const struct opt *o, const char *spelled)
{
	unsigned co = cli->cmd ? cli->cmd->opts : 0;

	/* a group's options apply to each of its commands too */
	if (cli->group)
		co |= cli->group->opts;
	if (o->co == 0 || (co & o->co))
		return 0;
	if (!cli->cmd)
		return cli_usage(cli, "%s: give this option after the command",
				 spelled);
	return cli_usage(cli, "option %s does not apply to this command",
			 spelled);
}

/* "-5" and "-.5" are operands (incr k -5), not options. */
static int is_negnum(const char *a)
{
	return a[0] == '-' && (isdigit((unsigned char)a[1]) ||
			       (a[1] == '.' && isdigit((unsigned char)a[2])));
}

/* Global options before the command; after it, the command's options and
 * the global ones mixed with operands; "--" ends the options. */
static int parse_args(struct cli *cli, int argc, char **argv, int *help,
		      int *version)
{
	const struct opt *o;
	char spelled[64];
	int i, only_operands = 0, ret = 0;
	size_t k;

	for (i = 1; i < argc && ret == 0; i++) {
		char *a = argv[i];
		const char *val = NULL;

		if (only_operands || a[0] != '-' || a[1] == '\0' ||
		    (cli->cmd && is_negnum(a))) {
			if (!cli->cmd) {
				cli->cmd = find_cmd(cli_cmds, a);
				if (!cli->cmd)
					ret = cli_usage(
					    cli, "unknown command '%s'", a);
				else if (cli->cmd->subs)
					cli->group = cli->cmd;
				continue;
			}
			if (cli->cmd->subs) {
				/* a group's first operand is its command */
				cli->cmd = find_cmd(cli->group->subs, a);
				if (!cli->cmd) {
					cli->cmd = cli->group;
					ret = cli_usage(
					    cli, "unknown command '%s'", a);
				}
				continue;
			}
			cli->args[cli->nargs++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_operands = 1;
			cli->dashdash = cli->nargs;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			o = NULL;
			for (k = 0; k < NOPTS; k++)
				if (strlen(opts[k].lng) == n &&
				    !strncmp(opts[k].lng, a + 2, n))
					o = &opts[k];
			snprintf(spelled, sizeof(spelled), "--%.*s", (int)n,
				 a + 2);
			if (!o) {
				ret = cli_usage(cli, "unknown option '%s'",
						spelled);
				break;
			}
			ret = check_opt(cli, o, spelled);
			if (ret)
				break;
			if (o->has_arg && eq) {
				val = eq + 1;
			} else if (o->has_arg) {
				if (i + 1 >= argc) {
					ret = cli_usage(cli, "%s needs a value",
							spelled);
					break;
				}
				val = argv[++i];
			} else if (eq) {
				ret = cli_usage(cli, "%s takes no value",
						spelled);
				break;
			}
			ret = apply_opt(cli, o, val, help, version);
			continue;
		}
		/* a cluster of short options: -mr, -dDIR, -d DIR */
		for (a++; *a && ret == 0; a++) {
			o = NULL;
			for (k = 0; k < NOPTS; k++)
				if (opts[k].shrt == *a)
					o = &opts[k];
			snprintf(spelled, sizeof(spelled), "-%c", *a);
			if (!o) {
				ret = cli_usage(cli, "unknown option '%s'",
						spelled);
				break;
			}
			ret = check_opt(cli, o, spelled);
			if (ret)
				break;
			if (!o->has_arg) {
				ret = apply_opt(cli, o, NULL, help, version);
				continue;
			}
			if (a[1]) {
				val = a + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				ret =
				    cli_usage(cli, "%s needs a value", spelled);
				break;
			}
			ret = apply_opt(cli, o, val, help, version);
			break;
		}
	}
	return ret;
}

static int resolve_dir(struct cli *cli)
{
	const char *env;
	int n = -1, ret = 0;

	if (cli->prog_dir) {
		n = snprintf(cli->dir, sizeof(cli->dir), "%s", cli->prog_dir);
	} else if ((env = getenv("DCACHE_DIR")) && *env) {
		n = snprintf(cli->dir, sizeof(cli->dir), "%s", env);
	} else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/') {
		/* the XDG spec says to ignore a relative XDG_CACHE_HOME */
		n = snprintf(cli->dir, sizeof(cli->dir), "%s/dcache", env);
	} else if ((env = getenv("HOME")) && *env) {
		n = snprintf(cli->dir, sizeof(cli->dir), "%s/.cache/dcache",
			     env);
	} else {
		ret = cli_usage(cli, "no cache directory: use -d DIR or set "
				     "DCACHE_DIR");
		goto out;
	}
	if (n < 0 || (size_t)n >= sizeof(cli->dir))
		ret = cli_usage(cli, "cache directory name too long");
out:
	return ret;
}

static void log_cb(void *arg, enum dc_log_level level, const char *msg)
{
	struct cli *cli = arg;

	if (level <= DC_LOG_WARNING)
		snprintf(cli->lastlog, sizeof(cli->lastlog), "%s", msg);
	if (cli->verbose)
		fprintf(stderr, "dcache: log: %s: %s\n",
			level <= DC_LOG_ERROR     ? "error"
			: level <= DC_LOG_WARNING ? "warning"
			: level <= DC_LOG_INFO    ? "info"
						  : "debug",
			msg);
}

/* A FanoutCache for --sub: as it is if DIR holds a cache, else a new one
 * of --shards or DiskCache's default 8 shards, as Python's
 * FanoutCache(DIR).deque(NAME) would create. */
static int sub_parent_shards(const struct cli *cli)
{
	char path[sizeof(cli->dir) + 16];
	int shards = cli->shards;

	if (shards == 0) {
		snprintf(path, sizeof(path), "%s/cache.db", cli->dir);
		if (access(path, F_OK) != 0) {
			snprintf(path, sizeof(path), "%s/000", cli->dir);
			if (access(path, F_OK) != 0)
				shards = 8;
		}
	}
	return shards;
}

static int open_cache(struct cli *cli)
{
	static const char *const what[] = { "", "", "deque", "index" };
	struct dc_options o;
	int err = 0, kind = cli->cmd->needs_cache, ret = 0;
	int sub = kind != CLI_OPEN_CACHE && cli->sub;

	memset(&o, 0, sizeof(o));
	o.shards = sub ? sub_parent_shards(cli) : cli->shards;
	o.timeout = cli->timeout;
	o.log = log_cb;
	o.log_arg = cli;
	if (kind == CLI_OPEN_CACHE || sub)
		err = dc_cache_open(cli->dir, &o, &cli->cache);
	if (err) {
		ret = cli_fail(cli, err, "cannot open %s", cli->dir);
		goto out;
	}
	/* the collection itself is always a plain Cache */
	o.shards = 0;
	if (kind == CLI_OPEN_DEQUE && sub)
		err = dc_deque_open_sub(cli->cache, cli->sub, &o, &cli->deque);
	else if (kind == CLI_OPEN_DEQUE)
		err = dc_deque_open(cli->dir, &o, &cli->deque);
	else if (kind == CLI_OPEN_INDEX && sub)
		err = dc_index_open_sub(cli->cache, cli->sub, &o, &cli->index);
	else if (kind == CLI_OPEN_INDEX)
		err = dc_index_open(cli->dir, &o, &cli->index);
	if (err == DC_INVAL && sub) {
		ret = cli_usage(cli, "--sub: not a valid name: '%s'", cli->sub);
	} else if (err == DC_LAYOUT && !sub) {
		fprintf(stderr,
			"dcache: %s: %s is a FanoutCache: use --sub NAME for "
			"its %s NAME\n",
			cli_cmd_name(cli), cli->dir, what[kind]);
		ret = EXIT_USAGE;
	} else if (err && sub) {
		ret = cli_fail(cli, err, "cannot open %s/%s/%s", cli->dir,
			       what[kind], cli->sub);
	} else if (err) {
		ret = cli_fail(cli, err, "cannot open %s", cli->dir);
	}
out:
	/* only errors of the command itself are worth quoting from now on */
	cli->lastlog[0] = '\0';
	return ret;
}

int main(int argc, char **argv)
{
	static struct cli cli;
	int help = 0, version = 0, ret;

	cli.key_type = DC_TYPE_TEXT;
	cli.type = DC_TYPE_TEXT;
	cli.tag_type = DC_TYPE_TEXT;
	cli.expire = DC_NO_EXPIRE;
	cli.maxlen = DC_DEQUE_UNBOUNDED;
	cli.wait = DC_WAIT_FOREVER;
	cli.conflict_code = EXIT_NOTFOUND;
	cli.dashdash = -1;
	cli.args = calloc((size_t)argc + 1, sizeof(*cli.args));
	if (!cli.args) {
		ret = cli_fail(&cli, ENOMEM, NULL);
		goto out;
	}
	ret = parse_args(&cli, argc, argv, &help, &version);
	if (ret)
		goto out;
	if (version) {
		printf("dcache %s\n%s\n", DC_VERSION, dc_version());
		goto flush;
	}
	if (help) {
		cli_print_help(cli.group, cli.cmd, stdout);
		goto flush;
	}
	if (!cli.cmd) {
		ret = cli_usage(&cli, "missing command");
		goto out;
	}
	if (cli.cmd->subs) {
		ret = cli_usage(&cli, "missing %s command", cli.cmd->name);
		goto out;
	}
	if (cli.nargs < cli.cmd->min_args) {
		ret = cli_usage(&cli, "missing operand");
		goto out;
	}
	if (cli.nargs > cli.cmd->max_args) {
		ret = cli_usage(&cli, "too many operands");
		goto out;
	}
	/* every operand is checked before the cache (maybe a new directory)
	 * is opened */
	if (cli.cmd->parse) {
		ret = cli.cmd->parse(&cli);
		if (ret)
			goto out;
	}
	if (cli.shards && !cli.sub &&
	    (cli.cmd->needs_cache == CLI_OPEN_DEQUE ||
	     cli.cmd->needs_cache == CLI_OPEN_INDEX)) {
		ret = cli_usage(&cli,
				"--shards: a %s is a plain Cache (--shards "
				"applies to the FanoutCache of --sub)",
				cli.group->name);
		goto out;
	}
	if (cli.cmd->needs_cache) {
		ret = resolve_dir(&cli);
		if (ret == 0)
			ret = open_cache(&cli);
		if (ret)
			goto out;
	}
	ret = cli.cmd->run(&cli);
flush:
	/* a full disk or a closed pipe must not pass as success */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int e = errno ? errno : EIO;

		fputs("dcache: ", stderr);
		if (cli.cmd)
			fprintf(stderr, "%s: ", cli.cmd->name);
		fprintf(stderr, "write error: %s\n", strerror(e));
		if (ret == 0)
			ret = EXIT_ERROR;
	}
out:
	dc_deque_close(cli.deque);
	dc_index_close(cli.index);
	dc_cache_close(cli.cache);
	cbuf_release(&cli.in);
	free(cli.values);
	free(cli.args);
	return ret;
}
