/* testutil.h - fixtures shared by the Check suites
 * SPDX-License-Identifier: MIT
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include "dcache.h"

#include <check.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

/* tu_mkdtemp - a fresh, empty temporary directory (under $TMPDIR or /tmp).
 * Returns a malloc'd path; aborts the test on failure. */
char *tu_mkdtemp(void);

/* tu_track_dirs - from now on, remember every tu_mkdtemp() directory and
 * remove the survivors when this (the runner) process exits.  Called once
 * by the runner before the suites fork their tests. */
void tu_track_dirs(void);

/* tu_rmtree - remove a directory tree; ignores errors.  Accepts NULL. */
void tu_rmtree(const char *path);

/* tu_rmdtemp - remove and free a tu_mkdtemp() directory, and clear the
 * pointer (a fixture's teardown).  Accepts a NULL *@dir. */
void tu_rmdtemp(char **dir);

/* tu_path - "dir/rel" in a static per-thread buffer. */
const char *tu_path(const char *dir, const char *rel);

/* tu_count_files - regular files below @dir, recursively, whose name does
 * not start with "cache.db". */
int tu_count_files(const char *dir);

/* tu_filled - @n bytes of @c and a NUL, malloc'd (the caller frees). */
char *tu_filled(size_t n, int c);

/* tu_run - run a shell command, return its exit status (-1 on error). */
int tu_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A second process holding the write lock of a database: the sqlite3
 * shell in BEGIN IMMEDIATE.  tu_lock_db() returns once the lock is held;
 * tu_unlock_db() rolls back and reaps the shell. */
struct tu_lock {
	int pid;
	int to;   /* its stdin */
	int from; /* its stdout */
};

void tu_lock_db(struct tu_lock *l, const char *db);
void tu_unlock_db(struct tu_lock *l);

/* Warnings of dc_cache_check, counted by kind; first holds the first. */
struct tu_warnings {
	uint64_t total;
	int kind[16];
	char first[512];
};

/* tu_check - run dc_cache_check (with @fix), asserting it succeeds and
 * that its count matches the callbacks.  @w may be NULL.  Returns the
 * number of warnings. */
uint64_t tu_check(dc_cache *c, int fix, struct tu_warnings *w);

/* tu_tcase - a new test case @name of suite @s, with the checked fixture
 * @setup/@teardown (NULL: none) and a timeout of @timeout seconds. */
TCase *tu_tcase(Suite *s, const char *name, void (*setup)(void),
		void (*teardown)(void), double timeout);

/* tu_item_init - an item before a read: nothing in it, no descriptor. */
void tu_item_init(struct dc_item *it);

/* tu_hex - @n bytes as lowercase hex, malloc'd (the caller frees it). */
char *tu_hex(const void *p, size_t n);

/* tu_wall, tu_mono - seconds of the real-time and monotonic clocks. */
double tu_wall(void);
double tu_mono(void);

/* tu_sleep - sleep @secs seconds (none for 0 or less), resuming after
 * signals. */
void tu_sleep(double secs);

/* tu_set_pickle_protocol - write disk_pickle_protocol = @sql (an SQL
 * literal: -1, 6, '5' ...) into DIR/cache.db behind @cache's back, as
 * Python can, then reload it into @cache as Python's cache.reset(name)
 * would (a handle uses what it read at open). */
void tu_set_pickle_protocol(dc_cache *cache, const char *dir, const char *sql);

/* tu_run_threads - run @fn in @n threads, the i-th with the argument at
 * @args + i * @size (an array of @n elements of @size bytes; @size 0:
 * all share @args), and wait for all of them. */
void tu_run_threads(int n, void *(*fn)(void *), void *args, size_t size);

#define TU_ASSERT_CHECK_CLEAN(c)                                               \
	do {                                                                   \
		struct tu_warnings w_;                                         \
		uint64_t n_ = tu_check((c), 0, &w_);                           \
		ck_assert_msg(n_ == 0,                                         \
			      "check: %" PRIu64 " warnings, first %s", n_,     \
			      w_.first);                                       \
	} while (0)

#endif
