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

/* Written by on_signal() only; dcache has no other thread here, so the
 * handler runs on the thread it interrupts. */
static volatile sig_atomic_t got_signal;    /* the latest one */
static volatile sig_atomic_t got[NSIGNALS]; /* each one that came */
static volatile sig_atomic_t child_pid;     /* COMMAND, unreaped, or 0 */

static void on_signal(int sig)
{
	int saved = errno;
	pid_t pid = (pid_t)child_pid;
	size_t i;

	for (i = 0; i < NSIGNALS; i++)
		if (lock_signals[i] == sig)
			got[i] = 1;
	got_signal = sig;
	if (pid > 0 && (sig == SIGTERM || sig == SIGHUP))
		kill(pid, sig);
	errno = saved;
}

static int received(int sig)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < NSIGNALS; i++)
		if (lock_signals[i] == sig)
			ret = got[i];
	return ret;
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

/* Wait for COMMAND to end and reap it, with its wait status in *wstatus.
 *
 * on_signal() may kill(child_pid) at any moment.  Once a PID is reaped
 * the kernel may give it to a new process, so child_pid must be 0
 * before the reap, not after it: waitid(WNOWAIT) waits for the end but
 * leaves COMMAND a zombie, whose PID nobody else can have; child_pid is
 * cleared (a handler then sees either COMMAND's PID, and signals a
 * zombie, which is harmless, or 0); only then waitpid() frees the PID. */
static int wait_command(pid_t pid, int *wstatus)
{
	siginfo_t info;
	int err = 0;

	while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0) {
		if (errno != EINTR) {
			err = errno;
			break;
		}
	}
	child_pid = 0;
	while (!err && waitpid(pid, wstatus, 0) < 0) {
		if (errno != EINTR)
			err = errno;
	}
	return err;
}

/* Run COMMAND and wait for it.  Returns 1 with its wait status in
 * *wstatus; 0 if a signal came first (COMMAND is not started); or -1,
 * with the message printed, if it could not be started or waited for. */
static int run_command(struct cli *cli, const struct sigsave *s, int *wstatus)
{
	struct sigaction dfl, chld;
	sigset_t block, old;
	pid_t pid = -1;
	size_t i;
	int err, ret = -1;

	sigemptyset(&block);
	for (i = 0; i < NSIGNALS; i++)
		sigaddset(&block, lock_signals[i]);
	/* An ignored SIGCHLD (ours by inheritance) would have the kernel
	 * reap COMMAND as it ends: no zombie to hold its PID for
	 * wait_command(), and no status.  So it is the default until
	 * COMMAND is reaped; COMMAND itself gets what dcache was given. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &chld);
	fflush(NULL);
	/* Blocked from the check of got_signal until child_pid is set: a
	 * SIGTERM that comes after the check is then handled once there is
	 * a COMMAND to pass it to, not lost.  And no handler may run in
	 * the child before exec: it would signal child_pid, still 0 there,
	 * which kill() takes as the whole process group. */
	sigprocmask(SIG_BLOCK, &block, &old);
	if (got_signal) {
		ret = 0;
		goto unblock;
	}
	pid = fork();
	if (pid == 0) {
		restore_signals(s);
		sigaction(SIGCHLD, &chld, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(cli->run[0], cli->run);
		fprintf(stderr, "dcache: lock: %s: %s\n", cli->run[0],
			strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (pid < 0) {
		cli_fail(cli, errno, "cannot run %s", cli->run[0]);
		goto unblock;
	}
	child_pid = pid;
unblock:
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid > 0) {
		err = wait_command(pid, wstatus);
		if (err)
			cli_fail(cli, err, "waiting for %s", cli->run[0]);
		else
			ret = 1;
	}
	sigaction(SIGCHLD, &chld, NULL);
	return ret;
}

/* COMMAND's wait status as a shell reports it. */
static int shell_status(int wstatus)
{
	int ret = EXIT_ERROR;

	if (WIFEXITED(wstatus))
		ret = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		ret = 128 + WTERMSIG(wstatus);
	return ret;
}

static int lock_and_run(struct cli *cli, const struct dc_recipe *r)
{
	struct sigsave s;
	int err, rerr, ran, wstatus = 0, die = 0, ret;

	catch_signals(&s);
	err = acquire(cli, r);
	if (err == DC_EXISTS) {
		ret = got_signal ? EXIT_ERROR : held_elsewhere(cli);
		die = got_signal;
		goto out;
	}
	if (err) {
		ret = cli_fail(cli, err, "%s", cli_str(&cli->key));
		die = got_signal;
		goto out;
	}
	/* held from here on: whatever happens, release before exiting */
	ran = run_command(cli, &s, &wstatus);
	rerr = dc_lock_release(r);
	if (rerr == DC_NOTHELD && ran == 1) {
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
	ret = ran == 1 ? shell_status(wstatus) : EXIT_ERROR;
	if (rerr && ret == 0)
		ret = EXIT_ERROR;
	/* Once COMMAND has run, dcache ends as a shell does when a signal
	 * comes while it waits for a command: it dies of the signal only if
	 * COMMAND died of it too, and otherwise exits with COMMAND's status,
	 * as COMMAND caught the signal and chose how to end.  If COMMAND did
	 * not run, the signal ends dcache. */
	if (ran == 1)
		die = WIFSIGNALED(wstatus) && received(WTERMSIG(wstatus))
			  ? WTERMSIG(wstatus)
			  : 0;
	else
		die = got_signal;
out:
	restore_signals(&s);
	/* die of it (as dcache would have without the handler, now that
	 * nothing is held), so that a calling shell sees the signal and
	 * stops as well */
	if (die) {
		fflush(NULL);
		raise(die);
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
