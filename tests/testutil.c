/* testutil.c - fixtures shared by the Check suites
 * SPDX-License-Identifier: MIT
 */
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every directory tu_mkdtemp() makes is also written to a log that the
 * runner process reads at exit: a test process killed by a timeout or a
 * sanitizer never runs its own cleanup, so the runner does it. */
static pid_t track_runner;
static char *track_log;

static const char *tmp_root(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

static void track_cleanup(void)
{
	char line[4096];
	struct stat st;
	FILE *f;

	if (!track_log || getpid() != track_runner)
		return;
	f = fopen(track_log, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (line[0] && lstat(line, &st) == 0)
				tu_rmtree(line);
		}
		fclose(f);
	}
	unlink(track_log);
	free(track_log);
	track_log = NULL;
}

void tu_track_dirs(void)
{
	if (track_log)
		return;
	track_runner = getpid();
	if (asprintf(&track_log, "%s/dcache-test-%d.log", tmp_root(),
		     (int)track_runner) < 0) {
		track_log = NULL;
		return;
	}
	atexit(track_cleanup);
}

char *tu_mkdtemp(void)
{
	char *path;
	FILE *f;

	ck_assert(asprintf(&path, "%s/dcache-test-XXXXXX", tmp_root()) > 0);
	ck_assert_ptr_nonnull(mkdtemp(path));
	if (track_log) {
		f = fopen(track_log, "a");
		if (f) {
			fprintf(f, "%s\n", path);
			fclose(f);
		}
	}
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void tu_rmtree(const char *path)
{
	if (!path)
		return;
	/* Make everything writable first: tests chmod directories. */
	tu_run("chmod -R u+rwx '%s' 2>/dev/null", path);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tu_rmdtemp(char **dir)
{
	tu_rmtree(*dir);
	free(*dir);
	*dir = NULL;
}

const char *tu_path(const char *dir, const char *rel)
{
	static __thread char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s/%s", dir, rel);
	return buf;
}

static __thread int counted;

static int count_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	if (flag == FTW_F && strncmp(path + ftw->base, "cache.db", 8) != 0)
		counted++;
	return 0;
}

int tu_count_files(const char *dir)
{
	counted = 0;
	nftw(dir, count_one, 16, FTW_PHYS);
	return counted;
}

int tu_run(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	rc = system(cmd);
	free(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}

/* A foreign writer: the sqlite3 shell holding BEGIN IMMEDIATE, as another
 * process (Python, say) would. */
void tu_lock_db(struct tu_lock *l, const char *db)
{
	static const char cmd[] = "BEGIN IMMEDIATE;\nSELECT 'lock' || 'ed';\n";
	int in[2], out[2];
	char got[256];
	size_t len = 0;

	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	l->pid = fork();
	ck_assert_int_ge(l->pid, 0);
	if (l->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execlp("sqlite3", "sqlite3", "-batch", db, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	l->to = in[1];
	l->from = out[0];
	ck_assert_int_eq(write(l->to, cmd, sizeof(cmd) - 1),
			 (ssize_t)(sizeof(cmd) - 1));
	/* Wait for the SELECT's output: the lock is held from then on. */
	while (len < sizeof(got) - 1) {
		struct pollfd pfd = { l->from, POLLIN, 0 };
		ssize_t n;

		ck_assert_msg(poll(&pfd, 1, 20000) == 1, "sqlite3 is silent");
		n = read(l->from, got + len, sizeof(got) - 1 - len);
		ck_assert_int_gt(n, 0);
		len += (size_t)n;
		got[len] = '\0';
		if (strstr(got, "locked"))
			break;
	}
	ck_assert_msg(strstr(got, "locked") && !strstr(got, "rror"),
		      "sqlite3 could not lock %s: %s", db, got);
}

void tu_unlock_db(struct tu_lock *l)
{
	static const char cmd[] = "ROLLBACK;\n.quit\n";
	int status;

	ck_assert_int_eq(write(l->to, cmd, sizeof(cmd) - 1),
			 (ssize_t)(sizeof(cmd) - 1));
	close(l->to);
	ck_assert_int_eq(waitpid(l->pid, &status, 0), l->pid);
	close(l->from);
	l->pid = -1;
}

static void count_warning(void *arg, enum dc_warning kind, const char *msg)
{
	struct tu_warnings *w = arg;

	if (w->total == 0)
		snprintf(w->first, sizeof(w->first), "%d: %s", (int)kind,
			 msg ? msg : "(null)");
	w->total++;
	if ((int)kind >= 0 && (int)kind < 16)
		w->kind[kind]++;
}

uint64_t tu_check(dc_cache *c, int fix, struct tu_warnings *w)
{
	struct tu_warnings local;
	uint64_t n = UINT64_MAX;

	if (!w)
		w = &local;
	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(dc_cache_check(c, fix, 0, count_warning, w, &n), 0);
	ck_assert_uint_eq(n, w->total);
	return n;
}

void tu_item_init(struct dc_item *it)
{
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

char *tu_hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	char *s = malloc(2 * n + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	s[2 * n] = 0;
	return s;
}

static double clock_seconds(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double tu_wall(void)
{
	return clock_seconds(CLOCK_REALTIME);
}

double tu_mono(void)
{
	return clock_seconds(CLOCK_MONOTONIC);
}

void tu_sleep(double secs)
{
	struct timespec ts;

	if (!(secs > 0))
		return;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void tu_run_threads(int n, void *(*fn)(void *), void *args, size_t size)
{
	pthread_t *th = calloc((size_t)n, sizeof(*th));

	ck_assert_ptr_nonnull(th);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(
		    pthread_create(&th[i], NULL, fn, (char *)args + i * size),
		    0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	free(th);
}

TCase *tu_tcase(Suite *s, const char *name, void (*setup)(void),
		void (*teardown)(void), double timeout)
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

void tu_set_pickle_protocol(dc_cache *cache, const char *dir, const char *sql)
{
	struct dc_buf b = DC_BUF_INIT;
	struct dc_value v;

	ck_assert_int_eq(
	    tu_run("sqlite3 '%s/cache.db' \"UPDATE Settings SET value = %s "
		   "WHERE key = 'disk_pickle_protocol'\"",
		   dir, sql),
	    0);
	ck_assert_int_eq(
	    dc_cache_setting_get(cache, "disk_pickle_protocol", &b, &v), 0);
	dc_buf_release(&b);
}

char *tu_filled(size_t n, int c)
{
	char *p = malloc(n + 1);

	ck_assert_ptr_nonnull(p);
	memset(p, c, n);
	p[n] = '\0';
	return p;
}
