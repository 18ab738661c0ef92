/* inode.c - the inode table: inode numbers <-> paths, lookup counts
 * SPDX-License-Identifier: MIT
 *
 * An inode is a path and a kind, nothing more: no file descriptor is held
 * per inode (only open handles hold descriptors), so a million known keys
 * cost a million small structs and no descriptors.  Inode numbers are
 * never reused during a mount.  The kernel holds a lookup count on each
 * inode it was told about; the inode is freed when FORGET brings it to
 * zero.  An inode whose name went away (unlink, rename over it, a change
 * of kind) is "detached": it no longer answers to a path but stays valid
 * by number until forgotten.
 *
 * A key's inode stands for one version of its value (its type, size and
 * store time: the fingerprint's value part).  When the value at a path
 * changes, the path gets a new inode and the old one is detached: it
 * keeps answering with the old attributes, so a reader that opened the
 * old value keeps its size and pages, and the kernel meets the new
 * value under a new inode (after a dentry invalidation or a fresh
 * lookup).  An inode with an open write handle is the exception: it
 * takes on the new version (the writer's own commits make them).
 */
#include "dcfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct inode {
	fuse_ino_t ino;
	enum dcfs_kind kind;
	char *path;
	uint64_t nlookup;
	int attached;
	/* The size of an uncommitted write handle, or NULL. */
	const uint64_t *writer_size;
	/* The version of the value this inode stands for (DCFS_FILE). */
	struct dcfs_fp ver;
	int readers; /* open read handles */
	int writers; /* open write handles */
	/* What the kernel was last told (see coherence.c). */
	struct dcfs_fp fp;
	uint64_t fp_seq;
	int recheck; /* a note raced with a scan */
	struct inode *ino_next;
	struct inode *path_next;
};

struct dcfs_itable {
	pthread_mutex_t lock;
	/* Everything below is protected by lock. */
	struct inode **by_ino;
	struct inode **by_path;
	size_t nbuckets; /* a power of two */
	size_t count;
	fuse_ino_t next_ino;
	struct inode root;
	uint64_t epoch;  /* read without the lock too (atomically) */
	size_t rechecks; /* inodes with recheck set */
};

static void mark_recheck(struct dcfs_itable *t, struct inode *in);

static size_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

static size_t ino_hash(fuse_ino_t ino)
{
	return (size_t)(ino * 11400714819323198485ULL >> 16);
}

static void link_ino(struct dcfs_itable *t, struct inode *in)
{
	size_t b = ino_hash(in->ino) & (t->nbuckets - 1);

	in->ino_next = t->by_ino[b];
	t->by_ino[b] = in;
}

static void link_path(struct dcfs_itable *t, struct inode *in)
{
	size_t b = path_hash(in->path) & (t->nbuckets - 1);

	in->path_next = t->by_path[b];
	t->by_path[b] = in;
	in->attached = 1;
}

static void unlink_path(struct dcfs_itable *t, struct inode *in)
{
	struct inode **pp;

	if (!in->attached)
		return;
	pp = &t->by_path[path_hash(in->path) & (t->nbuckets - 1)];
	while (*pp && *pp != in)
		pp = &(*pp)->path_next;
	if (*pp)
		*pp = in->path_next;
	in->path_next = NULL;
	in->attached = 0;
}

static void unlink_ino(struct dcfs_itable *t, struct inode *in)
{
	struct inode **pp = &t->by_ino[ino_hash(in->ino) & (t->nbuckets - 1)];

	while (*pp && *pp != in)
		pp = &(*pp)->ino_next;
	if (*pp)
		*pp = in->ino_next;
}

static struct inode *find_ino(struct dcfs_itable *t, fuse_ino_t ino)
{
	struct inode *in;

	if (ino == FUSE_ROOT_ID)
		return &t->root;
	in = t->by_ino[ino_hash(ino) & (t->nbuckets - 1)];
	while (in && in->ino != ino)
		in = in->ino_next;
	return in;
}

static struct inode *find_path(struct dcfs_itable *t, const char *path)
{
	struct inode *in;

	if (!*path)
		return &t->root;
	in = t->by_path[path_hash(path) & (t->nbuckets - 1)];
	while (in && strcmp(in->path, path) != 0)
		in = in->path_next;
	return in;
}

static int grow(struct dcfs_itable *t)
{
	struct inode **old_ino = t->by_ino, **old_path = t->by_path;
	struct inode *in, *next;
	size_t i, oldn = t->nbuckets, n = oldn * 2;

	t->by_ino = calloc(n, sizeof(*t->by_ino));
	t->by_path = calloc(n, sizeof(*t->by_path));
	if (!t->by_ino || !t->by_path) {
		free(t->by_ino);
		free(t->by_path);
		t->by_ino = old_ino;
		t->by_path = old_path;
		return ENOMEM;
	}
	t->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		for (in = old_ino[i]; in; in = next) {
			next = in->ino_next;
			link_ino(t, in);
		}
		for (in = old_path[i]; in; in = next) {
			next = in->path_next;
			link_path(t, in);
		}
	}
	free(old_ino);
	free(old_path);
	return 0;
}

int dcfs_itable_new(struct dcfs_itable **out)
{
	struct dcfs_itable *t = calloc(1, sizeof(*t));
	int err = ENOMEM;

	if (!t)
		goto out;
	t->nbuckets = 1024;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_path = calloc(t->nbuckets, sizeof(*t->by_path));
	t->root.path = strdup("");
	if (!t->by_ino || !t->by_path || !t->root.path)
		goto out;
	t->root.ino = FUSE_ROOT_ID;
	t->root.kind = DCFS_ROOT;
	t->root.attached = 1;
	t->next_ino = FUSE_ROOT_ID + 1;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	t = NULL;
	err = 0;
out:
	if (t) {
		free(t->by_ino);
		free(t->by_path);
		free(t->root.path);
		free(t);
	}
	return err;
}

void dcfs_itable_free(struct dcfs_itable *t)
{
	struct inode *in, *next;
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		for (in = t->by_ino[i]; in; in = next) {
			next = in->ino_next;
			free(in->path);
			free(in);
		}
	}
	free(t->by_ino);
	free(t->by_path);
	free(t->root.path);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void dcfs_node_release(struct dcfs_node *node)
{
	if (!node)
		return;
	free(node->path);
	node->path = NULL;
}

int dcfs_inode_get(struct dcfs_itable *t, fuse_ino_t ino,
		   struct dcfs_node *node)
{
	struct inode *in;
	int err = ENOENT;

	node->path = NULL;
	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (!in)
		goto out;
	node->path = strdup(in->path);
	if (!node->path) {
		err = ENOMEM;
		goto out;
	}
	node->ino = ino;
	node->kind = in->kind;
	node->attached = in->attached;
	node->ver = in->ver;
	err = 0;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

fuse_ino_t dcfs_inode_ref(struct dcfs_itable *t, const char *path,
			  enum dcfs_kind kind, const struct dcfs_fp *ver,
			  int for_write)
{
	struct inode *in;
	fuse_ino_t ino = 0;
	int reuse;

	pthread_mutex_lock(&t->lock);
	in = find_path(t, path);
	reuse = in && in->kind == kind;
	if (reuse && ver && ver->known && in->ver.known &&
	    !dcfs_fp_same_value(&in->ver, ver)) {
		/* Another value: another inode, unless a writer holds
		 * this one (its size is the writer's anyway). */
		if (in->writers)
			in->ver = *ver;
		else
			reuse = 0;
	}
	/* A writer never shares an inode with readers: the kernel would
	 * truncate their pages at O_TRUNC. */
	if (reuse && for_write && in->readers)
		reuse = 0;
	if (reuse) {
		if (ver && !in->ver.known)
			in->ver = *ver;
		in->nlookup++;
		ino = in->ino;
		goto out;
	}
	if (in && in != &t->root)
		unlink_path(t, in);
	if (t->count >= t->nbuckets && grow(t))
		goto out;
	in = calloc(1, sizeof(*in));
	if (!in)
		goto out;
	in->path = strdup(path);
	if (!in->path) {
		free(in);
		goto out;
	}
	in->ino = t->next_ino++;
	in->kind = kind;
	in->nlookup = 1;
	if (ver)
		in->ver = *ver;
	link_ino(t, in);
	link_path(t, in);
	t->count++;
	ino = in->ino;
out:
	pthread_mutex_unlock(&t->lock);
	return ino;
}

fuse_ino_t dcfs_inode_peek(struct dcfs_itable *t, const char *path)
{
	struct inode *in;
	fuse_ino_t ino;

	pthread_mutex_lock(&t->lock);
	in = find_path(t, path);
	ino = in ? in->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

void dcfs_inode_forget(struct dcfs_itable *t, fuse_ino_t ino, uint64_t n)
{
	struct inode *in;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (!in)
		goto out;
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	if (in->nlookup)
		goto out;
	unlink_path(t, in);
	unlink_ino(t, in);
	if (in->recheck)
		t->rechecks--;
	t->count--;
	free(in->path);
	free(in);
out:
	pthread_mutex_unlock(&t->lock);
}

void dcfs_inode_detach(struct dcfs_itable *t, const char *path)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_path(t, path);
	if (in && in != &t->root)
		unlink_path(t, in);
	pthread_mutex_unlock(&t->lock);
}

/* Is @path equal to @dir or below it? */
static int path_within(const char *path, const char *dir, size_t dlen)
{
	return strncmp(path, dir, dlen) == 0 &&
	       (path[dlen] == '\0' || path[dlen] == '/');
}

int dcfs_inode_move(struct dcfs_itable *t, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to), i, n = 0, k;
	struct inode *in, **moving = NULL;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	/* Collect first: re-linking while walking the buckets could visit
	 * an inode twice. */
	for (i = 0; i < t->nbuckets; i++) {
		for (in = t->by_path[i]; in; in = in->path_next) {
			if (in == &t->root)
				continue;
			if (path_within(in->path, to, tlen) ||
			    path_within(in->path, from, flen))
				n++;
		}
	}
	moving = calloc(n ? n : 1, sizeof(*moving));
	if (!moving) {
		err = ENOMEM;
		goto out;
	}
	n = 0;
	for (i = 0; i < t->nbuckets; i++)
		for (in = t->by_path[i]; in; in = in->path_next)
			if (in != &t->root &&
			    (path_within(in->path, to, tlen) ||
			     path_within(in->path, from, flen)))
				moving[n++] = in;
	for (k = 0; k < n; k++)
		unlink_path(t, moving[k]);
	for (k = 0; k < n; k++) {
		size_t rest;
		char *np;

		in = moving[k];
		/* What was at the target is gone; what was at the source
		 * moves (a path under both cannot happen: no rename into
		 * oneself reaches us). */
		if (!path_within(in->path, from, flen))
			continue;
		rest = strlen(in->path + flen) + 1;
		np = malloc(tlen + rest);
		if (!np) {
			err = ENOMEM;
			continue;
		}
		memcpy(np, to, tlen);
		memcpy(np + tlen, in->path + flen, rest);
		free(in->path);
		in->path = np;
		link_path(t, in);
	}
out:
	pthread_mutex_unlock(&t->lock);
	free(moving);
	return err;
}

void dcfs_inode_set_writer(struct dcfs_itable *t, fuse_ino_t ino,
			   const uint64_t *size)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in)
		in->writer_size = size;
	pthread_mutex_unlock(&t->lock);
}

void dcfs_inode_clear_writer(struct dcfs_itable *t, fuse_ino_t ino,
			     const uint64_t *size)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in->writer_size == size)
		in->writer_size = NULL;
	pthread_mutex_unlock(&t->lock);
}

int dcfs_inode_writer_size(struct dcfs_itable *t, fuse_ino_t ino,
			   uint64_t *size)
{
	struct inode *in;
	int found = 0;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in->writer_size) {
		*size = __atomic_load_n(in->writer_size, __ATOMIC_RELAXED);
		found = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

int dcfs_inode_open_read(struct dcfs_itable *t, fuse_ino_t ino,
			 const struct dcfs_fp *cur, int *same)
{
	struct inode *in;
	int err = 0;

	*same = 0;
	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (!in || in == &t->root) {
		err = ENOENT;
		goto out;
	}
	if (!in->ver.known || dcfs_fp_same_value(&in->ver, cur)) {
		in->ver = *cur;
		*same = 1;
	} else if (in->attached && in->readers == 0) {
		/* Nobody reads the old version here: the inode takes the
		 * new one; its attributes are invalidated by the next
		 * re-check. */
		in->ver = *cur;
		mark_recheck(t, in);
	} else {
		/* Readers of the old version keep this inode: the opener
		 * looks the name up again (the VFS retries an open that
		 * fails with ESTALE) and gets a new one. */
		unlink_path(t, in);
		err = ESTALE;
		goto out;
	}
	in->readers++;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

void dcfs_inode_close_read(struct dcfs_itable *t, fuse_ino_t ino)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in->readers > 0)
		in->readers--;
	pthread_mutex_unlock(&t->lock);
}

int dcfs_inode_writable(struct dcfs_itable *t, fuse_ino_t ino)
{
	struct inode *in;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (!in) {
		err = ENOENT;
	} else if (in != &t->root && (!in->attached || in->readers)) {
		/* As in dcfs_inode_open_read: a new inode for the writer. */
		unlink_path(t, in);
		err = ESTALE;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

void dcfs_inode_writers(struct dcfs_itable *t, fuse_ino_t ino, int delta)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in != &t->root && in->writers + delta >= 0)
		in->writers += delta;
	pthread_mutex_unlock(&t->lock);
}

void dcfs_inode_adopt(struct dcfs_itable *t, fuse_ino_t ino,
		      const struct dcfs_fp *ver)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in != &t->root)
		in->ver = *ver;
	pthread_mutex_unlock(&t->lock);
}

int dcfs_inode_retire(struct dcfs_itable *t, fuse_ino_t ino)
{
	struct inode *in;
	int done = 1;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in != &t->root) {
		if (in->writers)
			done = 0;
		else
			unlink_path(t, in);
	}
	pthread_mutex_unlock(&t->lock);
	return done;
}

/* ------------------------------------------------------------------ */
/* Fingerprints for the coherence thread                              */
/* ------------------------------------------------------------------ */

void dcfs_fp_of_item(struct dcfs_fp *fp, const struct dc_item *item)
{
	memset(fp, 0, sizeof(*fp));
	fp->known = 1;
	fp->present = 1;
	fp->expire_time = DC_NO_EXPIRE;
	if (!item)
		return;
	fp->type = item->value.type;
	fp->size = item->size;
	fp->store_time = item->store_time;
	fp->expire_time = item->expire_time;
}

int dcfs_fp_same_value(const struct dcfs_fp *a, const struct dcfs_fp *b)
{
	return a->present == b->present && a->type == b->type &&
	       a->size == b->size && a->store_time == b->store_time;
}

int dcfs_fp_same_expire(const struct dcfs_fp *a, const struct dcfs_fp *b)
{
	if (isnan(a->expire_time) || isnan(b->expire_time))
		return isnan(a->expire_time) && isnan(b->expire_time);
	return a->expire_time == b->expire_time;
}

uint64_t dcfs_inode_epoch(struct dcfs_itable *t)
{
	return __atomic_load_n(&t->epoch, __ATOMIC_ACQUIRE);
}

static void mark_recheck(struct dcfs_itable *t, struct inode *in)
{
	if (!in->recheck) {
		in->recheck = 1;
		t->rechecks++;
	}
}

void dcfs_inode_note(struct dcfs_itable *t, fuse_ino_t ino,
		     const struct dcfs_fp *fp, uint64_t epoch)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in != &t->root) {
		in->fp = *fp;
		in->fp_seq++;
		/* A scan that started after this reply's cache read may have
		 * looked at the inode before this note: look again. */
		if (epoch != t->epoch)
			mark_recheck(t, in);
	}
	pthread_mutex_unlock(&t->lock);
}

static int snap_wanted(const struct inode *in, int all)
{
	if (in == NULL || !in->attached || !in->fp.known)
		return 0;
	if (in->kind != DCFS_FILE && in->kind != DCFS_DIR)
		return 0;
	return all || in->recheck;
}

int dcfs_inode_snapshot(struct dcfs_itable *t, int all, struct dcfs_snap **out,
			size_t *n)
{
	struct dcfs_snap *v = NULL;
	struct inode *in;
	size_t i, k = 0, cap;
	int err = 0;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&t->lock);
	__atomic_add_fetch(&t->epoch, 1, __ATOMIC_ACQ_REL);
	cap = all ? t->count : t->rechecks;
	if (cap == 0)
		goto out;
	v = calloc(cap, sizeof(*v));
	if (!v) {
		err = ENOMEM;
		goto out;
	}
	for (i = 0; i < t->nbuckets && k < cap; i++) {
		for (in = t->by_ino[i]; in && k < cap; in = in->ino_next) {
			if (in->recheck) {
				in->recheck = 0;
				t->rechecks--;
			} else if (!all) {
				continue;
			}
			if (!snap_wanted(in, 1))
				continue;
			v[k].path = strdup(in->path);
			if (!v[k].path) {
				err = ENOMEM;
				goto out;
			}
			v[k].ino = in->ino;
			v[k].kind = in->kind;
			v[k].fp = in->fp;
			v[k].ver = in->ver;
			v[k].seq = in->fp_seq;
			k++;
		}
	}
out:
	pthread_mutex_unlock(&t->lock);
	if (err) {
		dcfs_snap_free(v, k);
		return err;
	}
	*out = v;
	*n = k;
	return 0;
}

void dcfs_snap_free(struct dcfs_snap *v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int dcfs_inode_mark(struct dcfs_itable *t, fuse_ino_t ino)
{
	struct inode *in;
	int ok;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	ok = in != &t->root && snap_wanted(in, 1);
	if (ok)
		mark_recheck(t, in);
	pthread_mutex_unlock(&t->lock);
	return ok;
}

size_t dcfs_inode_rechecks(struct dcfs_itable *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->rechecks;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void dcfs_inode_set_fp(struct dcfs_itable *t, fuse_ino_t ino, uint64_t seq,
		       const struct dcfs_fp *fp)
{
	struct inode *in;

	pthread_mutex_lock(&t->lock);
	in = find_ino(t, ino);
	if (in && in != &t->root && in->fp_seq == seq)
		in->fp = *fp;
	pthread_mutex_unlock(&t->lock);
}

size_t dcfs_inode_count(struct dcfs_itable *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
