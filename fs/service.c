/* service.c - running as a service: log destinations, SIGHUP, sd_notify
 * SPDX-License-Identifier: MIT
 *
 * Logs go to stderr in the foreground (the journal, under systemd), to
 * syslog in the background, or to the file of -o log=FILE in either case.
 * SIGHUP reopens that file (for logrotate) instead of unmounting.
 *
 * sd_notify is a single datagram to $NOTIFY_SOCKET, so it is done here in
 * a few lines rather than by linking libsystemd.
 */
#include "dcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum dcfs_log_dest log_dest = DCFS_LOG_STDERR;
/* Set once before any signal handler is installed, then only read. */
static const char *log_path;

/* "2025-01-31T12:00:00Z " from a time_t, with no library call, because
 * the SIGHUP handler uses it too and must stay async-signal-safe.
 * (Howard Hinnant's days-to-civil algorithm.)  @out has 22 bytes. */
static void utc_stamp(time_t t, char out[22])
{
	long long days = (long long)t / 86400, secs = (long long)t % 86400;
	long long era, doe, yoe, y, doy, mp, d, m;
	long long f[6];
	char *p = out;
	int i, w;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	f[0] = y + (m <= 2);
	f[1] = m;
	f[2] = d;
	f[3] = secs / 3600;
	f[4] = secs / 60 % 60;
	f[5] = secs % 60;
	for (i = 0; i < 6; i++) {
		w = i == 0 ? 4 : 2;
		for (int k = w - 1; k >= 0; k--) {
			p[k] = (char)('0' + f[i] % 10);
			f[i] /= 10;
		}
		p += w;
		*p++ = "--T::Z"[i];
	}
	*p++ = ' ';
	*p = '\0';
}

/* Opens the log file onto stderr.  Async-signal-safe. */
static int reopen_log(void)
{
	int fd, err = 0;

	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return errno;
	if (fd != STDERR_FILENO) {
		if (dup2(fd, STDERR_FILENO) < 0)
			err = errno;
		close(fd);
	}
	return err;
}

static void hup_handler(int sig)
{
	static const char msg[] = "dcachefs: SIGHUP: log file reopened\n";
	int saved = errno;
	char stamp[22];
	ssize_t r;

	(void)sig;
	if (log_dest == DCFS_LOG_FILE && reopen_log() == 0) {
		utc_stamp(time(NULL), stamp);
		/* A failed write has nowhere to be reported. */
		r = write(STDERR_FILENO, stamp, strlen(stamp));
		if (r >= 0)
			r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)r;
	}
	errno = saved;
}

static void logger(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char msg[1200], stamp[22];
	const char *text = msg;
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	switch (log_dest) {
	case DCFS_LOG_SYSLOG:
		/* The ident already says dcachefs; the newline is syslog's. */
		if (strncmp(text, "dcachefs: ", 10) == 0)
			text += 10;
		n = strlen(text);
		if (n && text[n - 1] == '\n')
			n--;
		syslog((int)level, "%.*s", (int)n, text);
		break;
	case DCFS_LOG_FILE:
		utc_stamp(time(NULL), stamp);
		fprintf(stderr, "%s%s", stamp, text);
		break;
	default:
		fputs(text, stderr);
		break;
	}
}

int dcfs_log_open(enum dcfs_log_dest dest, const char *path)
{
	int err = 0;

	if (dest == DCFS_LOG_FILE) {
		log_path = path;
		err = reopen_log();
		if (err)
			goto out;
	} else if (dest == DCFS_LOG_SYSLOG) {
		openlog("dcachefs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
	log_dest = dest;
	fuse_set_log_func(logger);
out:
	return err;
}

int dcfs_hup_reopens_log(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hup_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGHUP, &sa, NULL) < 0 ? errno : 0;
}

int dcfs_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	size_t plen;
	int fd = -1, err = 0;

	if (!path || !*path)
		goto out; /* not started by systemd: nothing to tell */
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) {
		err = EINVAL;
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, len) < 0)
		err = errno;
out:
	if (fd >= 0)
		close(fd);
	if (err)
		dcfs_log(FUSE_LOG_WARNING, "sd_notify %s: %s", state,
			 strerror(err));
	return err;
}
