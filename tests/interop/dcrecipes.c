/* dcrecipes.c - command driver for the recipe interop tests with Python
 * SPDX-License-Identifier: MIT
 *
 * usage: dcrecipes DIR [--shards N|plain] [--expire S] [--tag TEXT]
 *                  [--start-at T] COMMAND ARGS...
 *        dcrecipes DIR [options] script      (commands from stdin)
 *   --start-at T: sleep until Unix time T before the command, so that
 *   processes started one by one run their loops at the same time.
 *
 * Every command prints one line of JSON, {"rc":N, ...}: N is the
 * library's return code (0, a negative DC_* code or an errno); -1 means
 * the driver rejected the command.  In script mode each stdin line is a
 * command and each answer is flushed at once, so one thread of one
 * process -- one RLock owner -- can hold a lock across commands while
 * Python works on the same directory.  Keys are text; WAIT is seconds or
 * "forever"; --expire and --tag apply to every recipe.
 *
 * Commands:
 *   owner                        -> "owner": this thread's "PID-TID"
 *   lock-acquire KEY WAIT | lock-release KEY | lock-locked KEY
 *   rlock-acquire KEY WAIT | rlock-release KEY
 *   sem-acquire KEY VALUE WAIT | sem-release KEY VALUE
 *   avg-add KEY V... | avg-get KEY | avg-pop KEY   -> "avg": "%a"
 *   throttle-init KEY COUNT SECONDS | throttle-wait KEY COUNT SECONDS
 *   throttle-run KEY COUNT SECONDS DURATION        -> "calls"
 *   counter KIND KEY N           -> "violations", "first", "last"
 *       N read-modify-writes of the int key "counter" under KIND (with
 *       2 ms between them, outside the lock): lock,
 *       rlock (taken twice), sem (value 1), or barrier-lock,
 *       barrier-rlock, barrier-sem.  A violation is an incr of the key
 *       "inside" that did not give 1.
 *   sem-hold KEY VALUE N MS      -> "violations", "max"
 *       N times: acquire, incr "inside" (over VALUE is a violation), hold
 *       MS milliseconds, decr, release.
 *   stored KEY                   -> "type", "hex" of the raw stored value
 *   sleep S | quit
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcache.h"
#include "drvutil.h"

#define RC_USAGE (-1)
#define MAX_ARGS 64

struct ctx {
	dc_cache *cache;
	double expire;
	struct dc_value tag;
	int has_tag;
	double start_at;
};

/* A number, or "forever" (DC_WAIT_FOREVER) for a WAIT; 0 or RC_USAGE. */
static int parse_double(const char *s, double *d)
{
	if (!strcmp(s, "forever")) {
		*d = DC_WAIT_FOREVER;
		return 0;
	}
	return drv_parse_double(s, d) ? RC_USAGE : 0;
}

static int parse_int(const char *s, int64_t *i)
{
	return drv_parse_i64(s, i) ? RC_USAGE : 0;
}

static struct dc_recipe recipe(const struct ctx *c, const char *key)
{
	struct dc_recipe r;

	memset(&r, 0, sizeof(r));
	r.cache = c->cache;
	r.key = dc_text(key);
	r.expire = c->expire;
	r.tag = c->has_tag ? &c->tag : NULL;
	return r;
}

/* ------------------------------------------------------------------ */
/* Critical sections                                                  */
/* ------------------------------------------------------------------ */

static int incr(dc_cache *cache, const char *key, int64_t delta, int64_t *out)
{
	struct dc_value k = dc_text(key), res;
	int64_t zero = 0;
	int rc;

	rc = dc_cache_incr(cache, &k, delta, &zero, &res, DC_RETRY);
	if (!rc)
		*out = res.i;
	return rc;
}

/* The body both languages run: mark "inside", read "counter", pause,
 * write it back plus one, unmark. */
struct body {
	dc_cache *cache;
	int violations;
	double first, last; /* wall times of the first and last body */
};

static int body_run(void *p)
{
	struct body *b = p;
	struct dc_value k = dc_text("counter"), v;
	struct dc_item it;
	int64_t n = 0, in;
	int rc;

	if (!b->first)
		b->first = drv_wall();
	rc = incr(b->cache, "inside", 1, &in);
	if (rc)
		return rc;
	if (in != 1)
		b->violations++;
	drv_item_init(&it);
	rc = dc_cache_get(b->cache, &k, NULL, &it, DC_NOVALUE | DC_RETRY);
	if (rc == 0 && it.value.type == DC_TYPE_INT)
		n = it.value.i;
	else if (rc != DC_NOTFOUND)
		return rc ? rc : DC_TYPE;
	usleep(500);
	v = dc_int(n + 1);
	rc = dc_cache_set(b->cache, &k, &v, DC_NO_EXPIRE, NULL, DC_RETRY);
	if (!rc)
		rc = incr(b->cache, "inside", -1, &in);
	b->last = drv_wall();
	return rc;
}

static int counter(const struct ctx *c, const char *kind, const char *key,
		   int64_t n, struct body *out)
{
	struct dc_recipe r = recipe(c, key);
	struct body b = { c->cache, 0, 0, 0 };
	int rc = 0;

	for (int64_t i = 0; i < n && !rc; i++) {
		if (!strcmp(kind, "lock")) {
			rc = dc_lock_acquire(&r, DC_WAIT_FOREVER);
			if (!rc)
				rc = body_run(&b);
			if (!rc)
				rc = dc_lock_release(&r);
		} else if (!strcmp(kind, "rlock")) {
			rc = dc_rlock_acquire(&r, DC_WAIT_FOREVER);
			if (!rc)
				rc = dc_rlock_acquire(&r, DC_WAIT_FOREVER);
			if (!rc)
				rc = body_run(&b);
			if (!rc)
				rc = dc_rlock_release(&r);
			if (!rc)
				rc = dc_rlock_release(&r);
		} else if (!strcmp(kind, "sem")) {
			rc = dc_semaphore_acquire(&r, 1, DC_WAIT_FOREVER);
			if (!rc)
				rc = body_run(&b);
			if (!rc)
				rc = dc_semaphore_release(&r, 1);
		} else if (!strcmp(kind, "barrier-lock")) {
			rc = dc_barrier(&r, DC_BARRIER_LOCK, body_run, &b);
		} else if (!strcmp(kind, "barrier-rlock")) {
			rc = dc_barrier(&r, DC_BARRIER_RLOCK, body_run, &b);
		} else if (!strcmp(kind, "barrier-sem")) {
			rc = dc_barrier(&r, DC_BARRIER_SEMAPHORE, body_run, &b);
		} else {
			rc = RC_USAGE;
		}
		/* Outside the lock, give the spinning others their turn:
		 * the releaser would otherwise take it again at once. */
		usleep(2000);
	}
	*out = b;
	return rc;
}

static int sem_hold(const struct ctx *c, const char *key, int64_t value,
		    int64_t n, int64_t ms, int *violations, int64_t *max)
{
	struct dc_recipe r = recipe(c, key);
	int64_t in, dummy;
	int rc = 0;

	*violations = 0;
	*max = 0;
	for (int64_t i = 0; i < n && !rc; i++) {
		rc = dc_semaphore_acquire(&r, value, DC_WAIT_FOREVER);
		if (rc)
			break;
		rc = incr(c->cache, "inside", 1, &in);
		if (!rc) {
			if (in > value)
				(*violations)++;
			if (in > *max)
				*max = in;
			usleep((useconds_t)(ms * 1000));
			rc = incr(c->cache, "inside", -1, &dummy);
		}
		if (!rc)
			rc = dc_semaphore_release(&r, value);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

static int stored(const struct ctx *c, const char *key)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value k = dc_text(key);
	struct dc_item it;
	int rc;

	drv_item_init(&it);
	rc = dc_cache_get(c->cache, &k, &buf, &it, 0);
	printf("{\"rc\":%d", rc);
	if (!rc) {
		printf(",\"type\":\"%s\"", dc_type_name(it.value.type));
		if (it.value.type == DC_TYPE_INT) {
			printf(",\"int\":%" PRId64, it.value.i);
		} else if (it.value.type == DC_TYPE_FLOAT) {
			printf(",\"float\":\"%a\"", it.value.f);
		} else {
			drv_print_hex(",\"hex\":\"", it.value.data,
				      it.value.len);
			printf("\"");
		}
	}
	printf("}\n");
	dc_buf_release(&buf);
	return rc;
}

/* Run one command; prints its JSON line.  Returns 1 for quit. */
static int command(struct ctx *c, int argc, char **argv)
{
	const char *cmd = argc ? argv[0] : "";
	const char *key = argc > 1 ? argv[1] : NULL;
	struct dc_recipe r;
	double d = 0, d2 = 0, avg = 0;
	int64_t i1 = 0, i2 = 0, i3 = 0, max = 0;
	int rc = RC_USAGE, viol = 0;
	char extra[128] = "";

	if (key)
		r = recipe(c, key);
	if (!strcmp(cmd, "quit")) {
		return 1;
	} else if (!strcmp(cmd, "owner") && argc == 1) {
		snprintf(extra, sizeof(extra), ",\"owner\":\"%ld-%lu\"",
			 (long)getpid(), (unsigned long)pthread_self());
		rc = 0;
	} else if (!strcmp(cmd, "sleep") && argc == 2) {
		rc = parse_double(argv[1], &d);
		if (!rc)
			drv_sleep(d);
	} else if (!strcmp(cmd, "lock-acquire") && argc == 3) {
		rc = parse_double(argv[2], &d);
		if (!rc)
			rc = dc_lock_acquire(&r, d);
	} else if (!strcmp(cmd, "lock-release") && argc == 2) {
		rc = dc_lock_release(&r);
	} else if (!strcmp(cmd, "lock-locked") && argc == 2) {
		rc = dc_lock_locked(&r);
	} else if (!strcmp(cmd, "rlock-acquire") && argc == 3) {
		rc = parse_double(argv[2], &d);
		if (!rc)
			rc = dc_rlock_acquire(&r, d);
	} else if (!strcmp(cmd, "rlock-release") && argc == 2) {
		rc = dc_rlock_release(&r);
	} else if (!strcmp(cmd, "sem-acquire") && argc == 4) {
		rc = parse_int(argv[2], &i1);
		if (!rc)
			rc = parse_double(argv[3], &d);
		if (!rc)
			rc = dc_semaphore_acquire(&r, i1, d);
	} else if (!strcmp(cmd, "sem-release") && argc == 3) {
		rc = parse_int(argv[2], &i1);
		if (!rc)
			rc = dc_semaphore_release(&r, i1);
	} else if (!strcmp(cmd, "avg-add") && argc >= 3) {
		rc = 0;
		for (int i = 2; i < argc && !rc; i++) {
			rc = parse_double(argv[i], &d);
			if (!rc)
				rc = dc_averager_add(&r, d);
		}
	} else if ((!strcmp(cmd, "avg-get") || !strcmp(cmd, "avg-pop")) &&
		   argc == 2) {
		rc = cmd[4] == 'g' ? dc_averager_get(&r, &avg)
				   : dc_averager_pop(&r, &avg);
		if (!rc)
			snprintf(extra, sizeof(extra), ",\"avg\":\"%a\"", avg);
	} else if ((!strcmp(cmd, "throttle-init") ||
		    !strcmp(cmd, "throttle-wait")) &&
		   argc == 4) {
		rc = parse_int(argv[2], &i1);
		if (!rc)
			rc = parse_double(argv[3], &d);
		if (!rc)
			rc = cmd[9] == 'i' ? dc_throttle_init(&r, i1, d)
					   : dc_throttle_wait(&r, i1, d);
	} else if (!strcmp(cmd, "throttle-run") && argc == 5) {
		double start;
		int64_t calls = 0;

		rc = parse_int(argv[2], &i1);
		if (!rc)
			rc = parse_double(argv[3], &d);
		if (!rc)
			rc = parse_double(argv[4], &d2);
		start = drv_mono();
		while (!rc && drv_mono() - start <= d2) {
			rc = dc_throttle_wait(&r, i1, d);
			if (!rc)
				calls++;
		}
		snprintf(extra, sizeof(extra), ",\"calls\":%" PRId64, calls);
	} else if (!strcmp(cmd, "counter") && argc == 4) {
		struct body b = { NULL, 0, 0, 0 };

		rc = parse_int(argv[3], &i1);
		if (!rc)
			rc = counter(c, argv[1], argv[2], i1, &b);
		snprintf(extra, sizeof(extra),
			 ",\"violations\":%d,\"first\":%.6f,\"last\":%.6f",
			 b.violations, b.first, b.last);
	} else if (!strcmp(cmd, "sem-hold") && argc == 5) {
		rc = parse_int(argv[2], &i1);
		if (!rc)
			rc = parse_int(argv[3], &i2);
		if (!rc)
			rc = parse_int(argv[4], &i3);
		if (!rc)
			rc = sem_hold(c, key, i1, i2, i3, &viol, &max);
		snprintf(extra, sizeof(extra),
			 ",\"violations\":%d,\"max\":%" PRId64, viol, max);
	} else if (!strcmp(cmd, "stored") && argc == 2) {
		stored(c, key);
		fflush(stdout);
		return 0;
	}
	printf("{\"rc\":%d%s}\n", rc, extra);
	fflush(stdout);
	return 0;
}

static int split(char *line, char **argv)
{
	int argc = 0;

	for (char *tok = strtok(line, " \t\r\n"); tok && argc < MAX_ARGS;
	     tok = strtok(NULL, " \t\r\n"))
		argv[argc++] = tok;
	return argc;
}

static void run_script(struct ctx *c)
{
	char *line = NULL;
	size_t cap = 0;
	char *argv[MAX_ARGS];
	int argc;

	while (getline(&line, &cap, stdin) > 0) {
		argc = split(line, argv);
		if (!argc)
			continue;
		if (command(c, argc, argv))
			break;
	}
	free(line);
}

int main(int argc, char **argv)
{
	struct dc_options o;
	struct ctx c;
	int argi = 2, rc;

	if (argc < 3) {
		fprintf(
		    stderr,
		    "usage: dcrecipes DIR [--shards N|plain] [--expire S] "
		    "[--tag TEXT] [--start-at T] COMMAND ARGS... | script\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	while (argi + 1 < argc && !strncmp(argv[argi], "--", 2)) {
		const char *opt = argv[argi], *val = argv[argi + 1];

		if (!strcmp(opt, "--shards"))
			o.shards =
			    strcmp(val, "plain") ? atoi(val) : DC_SHARDS_PLAIN;
		else if (!strcmp(opt, "--start-at"))
			c.start_at = strtod(val, NULL);
		else if (!strcmp(opt, "--expire"))
			c.expire = strtod(val, NULL);
		else if (!strcmp(opt, "--tag")) {
			c.tag = dc_text(val);
			c.has_tag = 1;
		} else {
			fprintf(stderr, "dcrecipes: unknown option %s\n", opt);
			return 2;
		}
		argi += 2;
	}
	if (argi >= argc) {
		fprintf(stderr, "dcrecipes: no command\n");
		return 2;
	}
	rc = dc_cache_open(argv[1], &o, &c.cache);
	if (rc) {
		printf("{\"rc\":%d}\n", rc);
		return 1;
	}
	if (c.start_at > drv_wall())
		drv_sleep(c.start_at - drv_wall());
	if (!strcmp(argv[argi], "script") && argi + 1 == argc)
		run_script(&c);
	else
		command(&c, argc - argi, argv + argi);
	dc_cache_close(c.cache);
	return 0;
}
