/* testutil.c - fixtures shared by the Check suites
 * SPDX-License-Identifier: MIT
 */
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdtemp(void)
{
	const char *tmp = getenv("TMPDIR");
	char *path;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	ck_assert(asprintf(&path, "%s/dcache-test-XXXXXX", tmp) > 0);
	ck_assert_ptr_nonnull(mkdtemp(path));
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
