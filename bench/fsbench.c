/* fsbench.c - timing loops for bench/fs.sh: dcachefs vs a plain directory
 * SPDX-License-Identifier: MIT
 *
 *   fsbench seqread FILE [BUFSIZE]  read FILE from start to end
 *   fsbench readfiles LIST          open, read to EOF, close each path
 *                                   listed (one a line) in LIST
 *   fsbench writefiles LIST DIR     create DIR/<basename> from each path
 *                                   in LIST (open, read, create, write,
 *                                   close: what cp does per file)
 *   fsbench hot FILE SECONDS        open, read to EOF, close FILE over and
 *                                   over for SECONDS (a web server with
 *                                   no open-file cache)
 *
 * Each prints one line "RESULT op=... n=... bytes=... ns=..." (n files or
 * rounds, ns the wall time of the timed loop).  Paths are read before
 * the clock starts.  Only system calls are timed (nothing of libdcache
 * is used), so one binary times a mount and a plain directory alike.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Read @fd to its end; returns the byte count or -1 (errno set). */
static long long drain(int fd, char *buf, size_t size)
{
	long long total = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return total;
		total += n;
	}
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The lines of @path, NUL-terminated in one allocation. */
static char **read_list(const char *path, size_t *count)
{
	FILE *f = fopen(path, "re");
	char **v = NULL, **nv, *line = NULL;
	size_t n = 0, cap = 0, lcap = 0;
	ssize_t len;

	if (!f)
		return NULL;
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n] = strdup(line);
		if (!v[n])
			break;
		n++;
	}
	free(line);
	fclose(f);
	*count = n;
	return v;
}

static int seqread(const char *file, size_t bufsize)
{
	char *buf = malloc(bufsize);
	long long bytes;
	uint64_t t0, t1;
	int fd, rc = 1;

	if (!buf)
		return 1;
	t0 = now_ns();
	fd = open(file, O_RDONLY);
	if (fd < 0) {
		perror(file);
		goto out;
	}
	bytes = drain(fd, buf, bufsize);
	close(fd);
	t1 = now_ns();
	if (bytes < 0) {
		perror(file);
		goto out;
	}
	printf("RESULT op=seqread n=1 bytes=%lld ns=%llu\n", bytes,
	       (unsigned long long)(t1 - t0));
	rc = 0;
out:
	free(buf);
	return rc;
}

static int readfiles(const char *list)
{
	static char buf[65536];
	size_t n = 0, i;
	char **paths = read_list(list, &n);
	long long bytes = 0, b;
	uint64_t t0, t1;
	int fd, rc = 1;

	if (!paths || n == 0) {
		fprintf(stderr, "fsbench: empty list %s\n", list);
		goto out;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		fd = open(paths[i], O_RDONLY);
		if (fd < 0) {
			perror(paths[i]);
			goto out;
		}
		b = drain(fd, buf, sizeof(buf));
		close(fd);
		if (b < 0) {
			perror(paths[i]);
			goto out;
		}
		bytes += b;
	}
	t1 = now_ns();
	printf("RESULT op=readfiles n=%zu bytes=%lld ns=%llu\n", n, bytes,
	       (unsigned long long)(t1 - t0));
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

static int writefiles(const char *list, const char *dir)
{
	static char buf[65536];
	size_t n = 0, i;
	char **paths = read_list(list, &n), dst[4096];
	const char *base;
	long long bytes = 0;
	uint64_t t0, t1;
	ssize_t len;
	int in, out, rc = 1;

	if (!paths || n == 0) {
		fprintf(stderr, "fsbench: empty list %s\n", list);
		goto done;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		base = strrchr(paths[i], '/');
		base = base ? base + 1 : paths[i];
		snprintf(dst, sizeof(dst), "%s/%s", dir, base);
		in = open(paths[i], O_RDONLY);
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0) {
			perror(in < 0 ? paths[i] : dst);
			goto done;
		}
		while ((len = read(in, buf, sizeof(buf))) > 0) {
			if (write_all(out, buf, (size_t)len) < 0)
				break;
			bytes += len;
		}
		close(in);
		if (len != 0 || close(out) < 0) {
			perror(dst);
			goto done;
		}
	}
	t1 = now_ns();
	printf("RESULT op=writefiles n=%zu bytes=%lld ns=%llu\n", n, bytes,
	       (unsigned long long)(t1 - t0));
	rc = 0;
done:
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return rc;
}

static int hot(const char *file, double seconds)
{
	static char buf[65536];
	uint64_t t0, t1, end;
	long long bytes = 0, b, n = 0;
	int fd;

	t0 = now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	do {
		/* 64 rounds between clock reads. */
		for (int k = 0; k < 64; k++) {
			fd = open(file, O_RDONLY);
			if (fd < 0) {
				perror(file);
				return 1;
			}
			b = drain(fd, buf, sizeof(buf));
			close(fd);
			if (b < 0) {
				perror(file);
				return 1;
			}
			bytes += b;
			n++;
		}
		t1 = now_ns();
	} while (t1 < end);
	printf("RESULT op=hot n=%lld bytes=%lld ns=%llu\n", n, bytes,
	       (unsigned long long)(t1 - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "seqread") == 0)
		return seqread(argv[2], argc > 3 ? (size_t)atol(argv[3])
						 : (size_t)1 << 20);
	if (argc == 3 && strcmp(argv[1], "readfiles") == 0)
		return readfiles(argv[2]);
	if (argc == 4 && strcmp(argv[1], "writefiles") == 0)
		return writefiles(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "hot") == 0)
		return hot(argv[2], atof(argv[3]));
	fprintf(stderr, "usage: fsbench seqread FILE [BUFSIZE] | readfiles "
			"LIST | writefiles LIST DIR | hot FILE SECONDS\n");
	return 2;
}
