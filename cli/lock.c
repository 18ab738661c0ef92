/* lock.c - dcache lock and unlock: Python DiskCache's Lock for shell scripts
 * SPDX-License-Identifier: MIT
 *
 * "dcache lock KEY" takes the lock and exits, "dcache unlock KEY" drops
 * it; "dcache lock KEY -- COMMAND" holds it while COMMAND runs, as
 * flock(1) does.  The lock is dc_lock_acquire()'s, so a Python
 * Lock(cache, KEY) and dcache exclude each other.  Unlike an flock, such
 * a lock does not vanish with its holder: the command form therefore
 * keeps the signals that would kill dcache from doing so before it has
 * released the lock, and --expire bounds what a SIGKILL leaves behind.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* KEY [-- COMMAND [ARG...]], --expire, --tag, --wait/--nowait. */
int cli_parse_lock(struct cli *cli)
{
	int ret = cli_parse_key(cli);

	if (ret)
		goto out;
	ret = cli_parse_tag_opt(cli);
	if (ret)
		goto out;
	if (cli->wait_set && cli->nowait) {
		ret = cli_usage(cli, "--wait and --nowait exclude each other");
		goto out;
	}
	if (cli->nowait)
		cli->wait = DC_WAIT_NONE;
	/* the library takes 0 as "never"; a lock that is born expired
	 * would exclude nobody */
	if (!isnan(cli->expire) && !(cli->expire > 0)) {
		ret = cli_usage(cli, "--expire: a lock's expiry must be more "
				     "than 0 (or none)");
		goto out;
	}
	/* COMMAND starts after the "--" that follows KEY: "lock K -- C"
	 * or, for a KEY that looks like an option, "lock -- -K -- C" */
	cli->run = NULL;
	if (cli->dashdash == 1 && cli->nargs > 1)
		cli->run = cli->args + 1;
	else if (cli->dashdash == 0 && cli->nargs > 2 &&
		 !strcmp(cli->args[1], "--"))
		cli->run = cli->args + 2;
	else if (cli->dashdash == 1 || (cli->dashdash == 0 && cli->nargs == 2 &&
					!strcmp(cli->args[1], "--")))
		ret = cli_usage(cli, "missing COMMAND after '--'");
	else if (cli->nargs > 1)
		ret = cli_usage(cli, "too many operands (a COMMAND comes "
				     "after '--')");
out:
	return ret;
}

static void recipe_init(struct cli *cli, struct dc_recipe *r)
{
	memset(r, 0, sizeof(*r));
	r->cache = cli->cache;
	r->key = cli->key;
	r->expire = cli->expire; /* NaN: never */
	r->tag = cli->tagp;
}

static int held_elsewhere(struct cli *cli)
{
	if (!cli->quiet)
		fprintf(stderr, "dcache: lock: %s: held by another process\n",
			cli_str(&cli->key));
	return cli->conflict_code;
}

/* ------------------------------------------------------------------ */
/* lock KEY -- COMMAND                                                */
/* ------------------------------------------------------------------ */

/* The signals that end dcache: while the lock is held they are caught,
 * so that it is released first.  SIGINT and SIGQUIT reach COMMAND from
 * the terminal by themselves; SIGTERM and SIGHUP are sent to one
 * process, and so are passed on. */
static const int lock_signals[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP };
#define NSIGNALS (sizeof(lock_signals) / sizeof(lock_signals[0]))

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t child_pid;

static void on_signal(int sig)
{
	got_signal = sig;
	if (child_pid > 0 && (sig == SIGTERM || sig == SIGHUP))
		kill((pid_t)child_pid, sig);
}

struct sigsave {
	struct sigaction old[NSIGNALS];
	int caught[NSIGNALS];
};

/* Catch the signals that are not ignored: a job started in the
 * background of a script ignores SIGINT and SIGQUIT, and so keeps
 * ignoring them, and so does COMMAND. */
static void catch_signals(struct sigsave *s)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NSIGNALS; i++) {
		s->caught[i] = 0;
		if (sigaction(lock_signals[i], NULL, &s->old[i]) != 0 ||
		    s->old[i].sa_handler == SIG_IGN)
			continue;
		s->caught[i] = sigaction(lock_signals[i], &sa, NULL) == 0;
	}
}

static void restore_signals(const struct sigsave *s)
{
	size_t i;

	for (i = 0; i < NSIGNALS; i++)
		if (s->caught[i])
			sigaction(lock_signals[i], &s->old[i], NULL);
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dc_lock_acquire() in slices of at most 0.1 s, so that a signal ends
 * the wait (the library's spin resumes its sleeps after one). */
static int acquire(struct cli *cli, const struct dc_recipe *r)
{
	int forever = cli->wait < 0;
	double deadline = mono_now() + (forever ? 0 : cli->wait);
	double slice;
	int err;

	for (;;) {
		slice = forever ? 0.1 : deadline - mono_now();
		if (slice > 0.1)
			slice = 0.1;
		if (slice < 0)
			slice = 0;
		err = dc_lock_acquire(r, slice);
		if (err != DC_EXISTS || got_signal)
			break;
		if (!forever && mono_now() >= deadline)
			break;
	}
	return err;
}

/* Run COMMAND and wait for it.  Returns its exit status as a shell
 * reports it (*exited 0 if a signal killed it), or -1 with *err set when
 * it could not be started. */
static int run_command(struct cli *cli, const struct sigsave *s, int *err,
		       int *exited)
{
	sigset_t block, old;
	pid_t pid;
	size_t i;
	int status, ret = -1;

	sigemptyset(&block);
	for (i = 0; i < NSIGNALS; i++)
		sigaddset(&block, lock_signals[i]);
	fflush(NULL);
	/* no handler may run in the child before exec: it would signal
	 * child_pid, still 0 there, which kill() takes as the group */
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid == 0) {
		restore_signals(s);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(cli->run[0], cli->run);
		fprintf(stderr, "dcache: lock: %s: %s\n", cli->run[0],
			strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (pid < 0)
		*err = errno;
	else
		child_pid = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		goto out;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			*err = errno;
			goto out;
		}
	}
	child_pid = 0;
	*exited = WIFEXITED(status);
	if (WIFEXITED(status))
		ret = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		ret = 128 + WTERMSIG(status);
	else
		ret = EXIT_ERROR;
out:
	return ret;
}

static int lock_and_run(struct cli *cli, const struct dc_recipe *r)
{
	struct sigsave s;
	int err, rerr, status = -1, exited = 0, ret;

	catch_signals(&s);
	err = acquire(cli, r);
	if (err == DC_EXISTS) {
		ret = got_signal ? EXIT_ERROR : held_elsewhere(cli);
		goto out;
	}
	if (err) {
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
		goto out;
	}
	/* held from here on: whatever happens, release before exiting */
	if (!got_signal)
		status = run_command(cli, &s, &err, &exited);
	if (err)
		cli_fail(cli, err, "cannot run %s", cli->run[0]);
	rerr = dc_lock_release(r);
	if (rerr == DC_NOTHELD && status >= 0) {
		/* it expired while COMMAND ran: someone else may have had it
		 * meanwhile, which the caller should know */
		fprintf(stderr,
			"dcache: lock: %s: the lock expired before %s "
			"ended\n",
			cli_str(&cli->key), cli->run[0]);
		rerr = 0;
	}
	if (rerr && rerr != DC_NOTHELD)
		cli_fail(cli, rerr, "%s: releasing", cli_str(&cli->key));
	if (status < 0 || (rerr && status == 0))
		ret = EXIT_ERROR;
	else
		ret = status;
out:
	restore_signals(&s);
	/* a signal that ended the wait, or COMMAND, ends dcache too (as it
	 * would have without the handler, now that nothing is held), so
	 * that a calling shell sees it and stops as well */
	if (got_signal && !exited) {
		fflush(NULL);
		raise(got_signal);
	}
	return ret;
}

int cli_cmd_lock(struct cli *cli)
{
	struct dc_recipe r;
	int err, ret = 0;

	recipe_init(cli, &r);
	if (cli->run) {
		ret = lock_and_run(cli, &r);
		goto out;
	}
	err = dc_lock_acquire(&r, cli->wait);
	if (err == DC_EXISTS)
		ret = held_elsewhere(cli);
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
out:
	return ret;
}

int cli_cmd_unlock(struct cli *cli)
{
	struct dc_recipe r;
	int err, ret = 0;

	recipe_init(cli, &r);
	err = dc_lock_release(&r);
	if (err == DC_NOTHELD)
		ret = cli_not_found(cli, "%s: not locked", cli_str(&cli->key));
	else if (err)
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
	return ret;
}
