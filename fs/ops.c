/* ops.c - the FUSE low-level callbacks (dcfs_lookup, dcfs_open, ...)
 * SPDX-License-Identifier: MIT
 *
 * "What happens when I cat a key":
 *   dcfs_lookup  -> dcfs_resolve (tree.c) decides the name is a key and
 *                   reads its metadata; the reply carries the exact size
 *                   and timeouts capped at the key's remaining lifetime
 *   dcfs_open    -> dcfs_read_open (read.c) fetches the value once: a
 *                   value file's descriptor, or the bytes
 *   dcfs_read    -> spliced from that descriptor, or copied from memory
 *   dcfs_release -> the descriptor is closed
 * Writes go through write.c, control files through ctl.c, extended
 * attributes through xattr.c.  Every callback replies exactly once.
 */
#include "dcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

double dcfs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct dcfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct dcfs_fh *fh_of(const struct fuse_file_info *fi)
{
	return fi ? (struct dcfs_fh *)(uintptr_t)fi->fh : NULL;
}

/* Take a reference on an open handle for the length of a reply. */
static struct dcfs_fh *fh_hold(const struct fuse_file_info *fi)
{
	struct dcfs_fh *fh = (struct dcfs_fh *)(uintptr_t)fi->fh;

	__atomic_add_fetch(&fh->refs, 1, __ATOMIC_ACQ_REL);
	return fh;
}

/* Every open handle, so that the ones the kernel never released (the
 * session ended with files open: SIGTERM) are closed, and their writes
 * committed, at the end.  One filesystem per process. */
static pthread_mutex_t fh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dcfs_fh *fh_list;

static void fh_register(struct dcfs_fh *fh)
{
	pthread_mutex_lock(&fh_lock);
	fh->prev = NULL;
	fh->next = fh_list;
	if (fh_list)
		fh_list->prev = fh;
	fh_list = fh;
	fh->listed = 1;
	pthread_mutex_unlock(&fh_lock);
}

static void fh_unregister(struct dcfs_fh *fh)
{
	pthread_mutex_lock(&fh_lock);
	if (fh->listed) {
		if (fh->prev)
			fh->prev->next = fh->next;
		else
			fh_list = fh->next;
		if (fh->next)
			fh->next->prev = fh->prev;
		fh->listed = 0;
	}
	pthread_mutex_unlock(&fh_lock);
}

static void fh_put(struct dcfs_fh *fh)
{
	struct dcfs_dir *dir;

	if (__atomic_sub_fetch(&fh->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	fh_unregister(fh);
	switch (fh->kind) {
	case DCFS_FH_READ:
		dcfs_read_close(fh);
		break;
	case DCFS_FH_WRITE:
		dcfs_write_close(fh);
		break;
	case DCFS_FH_CTL:
		dcfs_ctl_close(fh);
		break;
	case DCFS_FH_DIR:
		dir = (struct dcfs_dir *)fh;
		dcfs_dir_release(dir);
		free(dir);
		break;
	}
}

static struct timespec ts_of(double t)
{
	struct timespec ts;

	if (!(t > 0))
		t = 0;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return ts;
}

/* A kernel cache timeout never outlives the key. */
static double cap_ttl(double timeout, const struct dc_item *item)
{
	double left;

	if (!item || isnan(item->expire_time))
		return timeout;
	left = item->expire_time - dcfs_now();
	if (left < 0)
		left = 0;
	return left < timeout ? left : timeout;
}

static mode_t perm(const struct dcfs *fs, mode_t mode)
{
	mode &= ~fs->opts.umask;
	if (fs->opts.ro)
		mode &= ~(mode_t)0222;
	return mode;
}

/* Attributes of @kind at @path; @item for keys (NULL otherwise). */
static void fill_attr(struct dcfs *fs, fuse_ino_t ino, enum dcfs_kind kind,
		      const char *path, const struct dc_item *item,
		      struct stat *st)
{
	const char *base = strrchr(path, '/');
	uint64_t size;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = fs->opts.uid;
	st->st_gid = fs->opts.gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mount_time;
	if (dcfs_kind_is_dir(kind)) {
		st->st_mode = S_IFDIR | perm(fs, 0777);
		st->st_nlink = 2;
		return;
	}
	st->st_nlink = 1;
	if (kind != DCFS_FILE) {
		/* Control files: size 0, read through direct_io. */
		st->st_mode =
		    S_IFREG | (dcfs_ctl_mode(kind, base ? base + 1 : path) &
			       ~fs->opts.umask);
		return;
	}
	st->st_mode = S_IFREG | perm(fs, 0666);
	size = item->size;
	if (dcfs_inode_writer_size(fs->itable, ino, &size))
		st->st_mtim = ts_of(dcfs_now());
	else
		st->st_mtim = ts_of(item->store_time);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_ctim = st->st_mtim;
	st->st_atim = ts_of(item->access_time);
}

/* Attributes and attribute timeout of an inode, and in @fp what they
 * tell the kernel (fp->known 0: nothing to note). */
static int stat_node(struct dcfs *fs, const struct dcfs_node *node,
		     struct stat *st, double *timeout, struct dcfs_fp *fp)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dcfs_fp cur;
	uint64_t size;
	int err = 0, writing;

	*timeout = fs->opts.attr_timeout;
	fp->known = 0;
	if (node->kind != DCFS_FILE) {
		fill_attr(fs, node->ino, node->kind, node->path, NULL, st);
		if (node->kind == DCFS_DIR)
			dcfs_fp_of_item(fp, NULL);
		goto out;
	}
	err = dcfs_key_item(fs, node->path, &item, &buf);
	writing = dcfs_inode_writer_size(fs->itable, node->ino, &size);
	if (!err)
		dcfs_fp_of_item(&cur, &item);
	if (err == ENOENT && writing) {
		/* Deleted meanwhile but still being written here. */
		memset(&item, 0, sizeof(item));
		item.expire_time = DC_NO_EXPIRE;
		err = 0;
	} else if (node->ver.known && !writing &&
		   (err == ENOENT ||
		    (!err && !dcfs_fp_same_value(&node->ver, &cur)))) {
		/* The inode stands for an older value (its readers keep
		 * reading it): its attributes, never the new value's. */
		memset(&item, 0, sizeof(item));
		item.value.type = node->ver.type;
		item.size = node->ver.size;
		item.store_time = node->ver.store_time;
		item.access_time = node->ver.store_time;
		item.expire_time = DC_NO_EXPIRE;
		err = 0;
	}
	if (err)
		goto out;
	fill_attr(fs, node->ino, node->kind, node->path, &item, st);
	*timeout = cap_ttl(*timeout, &item);
	dcfs_fp_of_item(fp, &item);
out:
	dc_buf_release(&buf);
	return err;
}

/* After a reply that told the kernel @fp about @ino. */
static void note(struct dcfs *fs, fuse_ino_t ino, const struct dcfs_fp *fp,
		 uint64_t epoch)
{
	if (fp->known)
		dcfs_inode_note(fs->itable, ino, fp, epoch);
}

/* Reply to a lookup-like request with the inode of (@path, @kind);
 * @epoch was read before @item. */
static void reply_entry(fuse_req_t req, struct dcfs *fs, const char *path,
			enum dcfs_kind kind, const struct dc_item *item,
			uint64_t epoch)
{
	struct fuse_entry_param e;
	struct dcfs_fp fp = { 0 };
	fuse_ino_t ino;

	memset(&e, 0, sizeof(e));
	if (kind == DCFS_FILE || kind == DCFS_DIR)
		dcfs_fp_of_item(&fp, item);
	ino = dcfs_inode_ref(fs->itable, path, kind,
			     kind == DCFS_FILE ? &fp : NULL, 0);
	if (!ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.ino = ino;
	fill_attr(fs, ino, kind, path, item, &e.attr);
	e.attr_timeout = cap_ttl(fs->opts.attr_timeout, item);
	e.entry_timeout = cap_ttl(fs->opts.entry_timeout, item);
	if (fuse_reply_entry(req, &e) != 0)
		dcfs_inode_forget(fs->itable, ino, 1);
	else
		note(fs, ino, &fp, epoch);
}

static void dcfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Value files go to the kernel by splice. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* open(O_TRUNC) arrives as one request, not open + setattr. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* A changed mtime (store_time) drops stale cached pages. */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* Write-through: every write reaches a write handle in order. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* The session is over (unmounted, or a signal ended the loop; no request
 * runs any more).  Files still open get no RELEASE: close them here, so
 * that what was written to them is stored. */
static void dcfs_destroy(void *userdata)
{
	struct dcfs_fh *fh;
	int n = 0;

	(void)userdata;
	pthread_mutex_lock(&fh_lock);
	while ((fh = fh_list) != NULL) {
		pthread_mutex_unlock(&fh_lock);
		fh_unregister(fh);
		fh->refs = 1;
		fh_put(fh);
		n++;
		pthread_mutex_lock(&fh_lock);
	}
	pthread_mutex_unlock(&fh_lock);
	if (n)
		dcfs_log(FUSE_LOG_NOTICE, "closed %d file(s) left open", n);
}

static void dcfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dcfs *fs = fs_of(req);
	struct dc_buf buf = DC_BUF_INIT;
	struct fuse_entry_param e;
	struct dcfs_node pnode;
	struct dc_item item;
	enum dcfs_kind kind;
	char *path = NULL;
	uint64_t epoch = dcfs_inode_epoch(fs->itable);
	int err;

	err = dcfs_inode_get(fs->itable, parent, &pnode);
	if (err)
		goto out;
	err = dcfs_resolve(fs, &pnode, name, &path, &kind, &item, &buf);
	if (err == ENOENT) {
		/* A negative entry: the kernel remembers "no such name". */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->opts.negative_timeout;
		fuse_reply_entry(req, &e);
		err = 0;
		goto done;
	}
	if (err)
		goto out;
	reply_entry(req, fs, path, kind, kind == DCFS_FILE ? &item : NULL,
		    epoch);
	goto done;
out:
	fuse_reply_err(req, err);
done:
	free(path);
	dc_buf_release(&buf);
	dcfs_node_release(&pnode);
}

static void dcfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	dcfs_inode_forget(fs_of(req)->itable, ino, nlookup);
	fuse_reply_none(req);
}

static void dcfs_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		dcfs_inode_forget(fs_of(req)->itable, forgets[i].ino,
				  forgets[i].nlookup);
	fuse_reply_none(req);
}

static void dcfs_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_node node;
	struct dcfs_fp fp;
	struct stat st;
	double timeout;
	uint64_t epoch = dcfs_inode_epoch(fs->itable);
	int err;

	(void)fi;
	err = dcfs_inode_get(fs->itable, ino, &node);
	if (!err)
		err = stat_node(fs, &node, &st, &timeout, &fp);
	if (err)
		fuse_reply_err(req, err);
	else if (fuse_reply_attr(req, &st, timeout) == 0)
		note(fs, ino, &fp, epoch);
	dcfs_node_release(&node);
}

/* truncate(2): never on an inode readers hold (ESTALE makes the VFS
 * look the name up again, for a new one; see dcfs_inode_writable). */
static int truncate_ino(struct dcfs *fs, fuse_ino_t ino, uint64_t size)
{
	int err = dcfs_inode_writable(fs->itable, ino);

	if (!err)
		err = dcfs_truncate_path(fs, ino, size);
	return err;
}

static void dcfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int valid, struct fuse_file_info *fi)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_fh *fh = fh_of(fi);
	struct dcfs_node node;
	struct dcfs_fp fp;
	struct stat st;
	double timeout;
	uint64_t epoch = dcfs_inode_epoch(fs->itable);
	int err;

	err = dcfs_inode_get(fs->itable, ino, &node);
	if (err)
		goto out;
	/* Modes, owners and times are accepted and ignored (modes follow
	 * umask, mtime is the store time), so cp -a and tar carry on. */
	if ((valid & FUSE_SET_ATTR_SIZE) && node.kind == DCFS_FILE) {
		if (fs->opts.ro)
			err = EROFS;
		else if (fh && fh->kind == DCFS_FH_WRITE)
			err = dcfs_write_truncate(fh, (uint64_t)attr->st_size);
		else
			err = truncate_ino(fs, ino, (uint64_t)attr->st_size);
		/* The inode now stands for the truncated value. */
		dcfs_node_release(&node);
		if (!err)
			err = dcfs_inode_get(fs->itable, ino, &node);
	}
	if (!err)
		err = stat_node(fs, &node, &st, &timeout, &fp);
out:
	if (err)
		fuse_reply_err(req, err);
	else if (fuse_reply_attr(req, &st, timeout) == 0)
		note(fs, ino, &fp, epoch);
	dcfs_node_release(&node);
}

static void dcfs_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_node node;
	struct dcfs_dir *dir = NULL;
	int err;

	err = dcfs_inode_get(fs->itable, ino, &node);
	if (err)
		goto out;
	if (!dcfs_kind_is_dir(node.kind)) {
		err = ENOTDIR;
		goto out;
	}
	dir = calloc(1, sizeof(*dir));
	if (!dir) {
		err = ENOMEM;
		goto out;
	}
	dir->fh.kind = DCFS_FH_DIR;
	dir->fh.refs = 1;
	dir->path = strdup(node.path);
	if (!dir->path) {
		err = ENOMEM;
		goto out;
	}
	/* The listing is taken once, so offsets stay stable while a
	 * program walks it. */
	err = dcfs_dir_list(fs, &node, dir);
	if (err)
		goto out;
	fi->fh = (uintptr_t)dir;
	fh_register(&dir->fh);
	dir = NULL;
out:
	free(dir);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
	dcfs_node_release(&node);
}

/* d_ino for an entry without an inode: it only has to be non-zero (glibc
 * skips entries with d_ino 0); stat gives the real one.  Far above the
 * inode numbers we hand out. */
static ino_t pseudo_ino(size_t i)
{
	return (ino_t)(1ULL << 62) + (ino_t)i;
}

static int is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Attributes of listing entry @i for READDIRPLUS, with a lookup count
 * taken on its inode; e->ino stays 0 for "." and ".." and for an entry
 * that vanished since opendir (the kernel then treats it as plain). */
static void dir_entry(struct dcfs *fs, const struct dcfs_dir *dir, size_t i,
		      struct fuse_entry_param *e, struct dcfs_fp *fp)
{
	struct dc_buf buf = DC_BUF_INIT;
	const struct dcfs_dirent *ent = &dir->ents[i];
	struct dc_item item, *itemp = NULL;
	char *path = NULL;

	memset(e, 0, sizeof(*e));
	fp->known = 0;
	e->attr.st_ino = pseudo_ino(i);
	e->attr.st_mode = dcfs_kind_is_dir(ent->kind) ? S_IFDIR : S_IFREG;
	if (is_dot(ent->name))
		goto out;
	path = dcfs_path_join(dir->path, ent->name);
	if (!path)
		goto out;
	if (ent->kind == DCFS_FILE) {
		if (dcfs_key_item(fs, path, &item, &buf))
			goto out;
		itemp = &item;
	}
	if (ent->kind == DCFS_FILE || ent->kind == DCFS_DIR)
		dcfs_fp_of_item(fp, itemp);
	e->ino = dcfs_inode_ref(fs->itable, path, ent->kind,
				ent->kind == DCFS_FILE ? fp : NULL, 0);
	if (!e->ino) {
		fp->known = 0;
		goto out;
	}
	fill_attr(fs, e->ino, ent->kind, path, itemp, &e->attr);
	e->attr_timeout = cap_ttl(fs->opts.attr_timeout, itemp);
	e->entry_timeout = cap_ttl(fs->opts.entry_timeout, itemp);
out:
	free(path);
	dc_buf_release(&buf);
}

/* READDIR and READDIRPLUS from the listing taken at opendir. */
static void do_readdir(fuse_req_t req, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_dir *dir = (struct dcfs_dir *)fh_of(fi);
	struct fuse_entry_param e;
	uint64_t epoch = dcfs_inode_epoch(fs->itable);
	struct dcfs_fp *fps = NULL;
	fuse_ino_t *inos = NULL;
	size_t pos = 0, n, nfp = 0, k;
	char *buf;
	off_t i;

	buf = malloc(size);
	/* Entries take at least 32 bytes: room for every entry's note. */
	if (plus) {
		fps = malloc((size / 32 + 1) * sizeof(*fps));
		inos = malloc((size / 32 + 1) * sizeof(*inos));
	}
	if (!buf || (plus && (!fps || !inos))) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	for (i = off; i >= 0 && (size_t)i < dir->n; i++) {
		if (plus) {
			dir_entry(fs, dir, (size_t)i, &e, &fps[nfp]);
			n = fuse_add_direntry_plus(req, buf + pos, size - pos,
						   dir->ents[i].name, &e,
						   i + 1);
		} else {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = pseudo_ino((size_t)i);
			e.attr.st_mode = dcfs_kind_is_dir(dir->ents[i].kind)
					     ? S_IFDIR
					     : S_IFREG;
			n = fuse_add_direntry(req, buf + pos, size - pos,
					      dir->ents[i].name, &e.attr,
					      i + 1);
		}
		if (n > size - pos) {
			/* Not sent: the kernel holds no lookup for it. */
			if (plus && e.ino)
				dcfs_inode_forget(fs->itable, e.ino, 1);
			break;
		}
		pos += n;
		if (plus && e.ino && fps[nfp].known)
			inos[nfp++] = e.ino;
	}
	if (fuse_reply_buf(req, buf, pos) == 0)
		for (k = 0; k < nfp; k++)
			note(fs, inos[k], &fps[k], epoch);
out:
	free(buf);
	free(fps);
	free(inos);
}

static void dcfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 0);
}

static void dcfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 1);
}

static void dcfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	(void)ino;
	fh_put(fh_of(fi));
	fuse_reply_err(req, 0);
}

/* The path a new name inside @parent would have, checked for what can be
 * created there.  Returns 0 and *path, or an errno. */
static int new_path(struct dcfs *fs, const struct dcfs_node *parent,
		    const char *name, int is_dir, char **path)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	size_t len = strlen(name);
	char *p = NULL;
	int err = 0;

	(void)fs;
	if (len > 255)
		return ENAMETOOLONG;
	if (!dcfs_name_valid(name, len))
		return EINVAL;
	p = dcfs_path_join(parent->path, name);
	if (!p)
		return ENOMEM;
	switch (parent->kind) {
	case DCFS_ROOT:
	case DCFS_DIR:
		if (!dcfs_key_is_path(p, strlen(p)))
			err = EEXIST; /* .keys or .ctl at the root */
		break;
	case DCFS_KEYS_TYPE:
		if (is_dir)
			err = EPERM;
		else if (dcfs_path_key(p, &buf, &key))
			err = EINVAL; /* not the name of any key */
		break;
	default:
		err = EPERM;
		break;
	}
	dc_buf_release(&buf);
	if (err)
		free(p);
	else
		*path = p;
	return err;
}

static void dcfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_node pnode;
	struct dc_value key;
	char *path = NULL;
	int err;

	(void)mode;
	err = dcfs_inode_get(fs->itable, parent, &pnode);
	if (!err)
		err = new_path(fs, &pnode, name, 1, &path);
	if (err)
		goto out;
	key = dc_text(path);
	if (dc_cache_contains(fs->cache, &key) == 0 ||
	    dcfs_dir_exists(fs, path)) {
		err = EEXIST;
		goto out;
	}
	err = dcfs_xdir_add(fs, path);
	if (!err)
		reply_entry(req, fs, path, DCFS_DIR, NULL,
			    dcfs_inode_epoch(fs->itable));
out:
	if (err)
		fuse_reply_err(req, err);
	free(path);
	dcfs_node_release(&pnode);
}

/* Resolve @name in @parent for removal or renaming. */
static int resolve_child(struct dcfs *fs, fuse_ino_t parent, const char *name,
			 char **path, enum dcfs_kind *kind)
{
	struct dcfs_node pnode;
	int err;

	err = dcfs_inode_get(fs->itable, parent, &pnode);
	if (!err)
		err = dcfs_resolve(fs, &pnode, name, path, kind, NULL, NULL);
	dcfs_node_release(&pnode);
	return err;
}

static void dcfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dcfs *fs = fs_of(req);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_value key;
	enum dcfs_kind kind;
	char *path = NULL;
	int err;

	err = resolve_child(fs, parent, name, &path, &kind);
	if (err)
		goto out;
	if (kind != DCFS_FILE) {
		err = dcfs_kind_is_dir(kind) ? EISDIR : EPERM;
		goto out;
	}
	err = dcfs_path_key(path, &buf, &key);
	if (!err)
		err = dcfs_errno(dc_cache_delete(fs->cache, &key, DC_RETRY));
	if (!err) {
		dcfs_inode_detach(fs->itable, path);
		/* Not waited for: the kernel holds the directory. */
		dcfs_coh_changed(fs, path, 0);
	}
out:
	fuse_reply_err(req, err);
	dc_buf_release(&buf);
	free(path);
}

static void dcfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dcfs *fs = fs_of(req);
	enum dcfs_kind kind;
	char *path = NULL;
	int err;

	err = resolve_child(fs, parent, name, &path, &kind);
	if (err == ENOENT) {
		/* An implied directory vanished with its last key: what
		 * rmdir asked for is already true. */
		err = 0;
		goto out;
	}
	if (err)
		goto out;
	if (kind != DCFS_DIR) {
		err = dcfs_kind_is_dir(kind) ? EPERM : ENOTDIR;
		goto out;
	}
	if (dcfs_dir_has_children(fs, path)) {
		err = ENOTEMPTY;
		goto out;
	}
	dcfs_xdir_remove(fs, path);
	dcfs_inode_detach(fs->itable, path);
out:
	fuse_reply_err(req, err);
	free(path);
}

static void dcfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_node npnode = { 0 };
	enum dcfs_kind kind;
	char *from = NULL, *to = NULL;
	int err;

	if (flags & ~RENAME_NOREPLACE) {
		err = EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
		goto out;
	}
	err = resolve_child(fs, parent, name, &from, &kind);
	if (!err)
		err = dcfs_inode_get(fs->itable, newparent, &npnode);
	if (!err)
		err = new_path(fs, &npnode, newname, kind != DCFS_FILE, &to);
	if (err)
		goto out;
	if (kind != DCFS_FILE && kind != DCFS_DIR) {
		err = EPERM;
		goto out;
	}
	err =
	    dcfs_tree_rename(fs, kind, from, to, !!(flags & RENAME_NOREPLACE));
	if (!err)
		err = dcfs_inode_move(fs->itable, from, to);
	if (!err && kind == DCFS_FILE) {
		/* Other names of both keys; keys below a renamed directory
		 * are left to the next tick. */
		dcfs_coh_changed(fs, from, 0);
		dcfs_coh_changed(fs, to, 0);
	}
out:
	fuse_reply_err(req, err);
	free(from);
	free(to);
	dcfs_node_release(&npnode);
}

static void dcfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dcfs *fs = fs_of(req);
	struct dcfs_fh *fh = NULL;
	struct dcfs_node node;
	int err, same;

	err = dcfs_inode_get(fs->itable, ino, &node);
	if (err)
		goto out;
	switch (node.kind) {
	case DCFS_FILE:
		if ((fi->flags & O_ACCMODE) == O_RDONLY) {
			err = dcfs_read_open(fs, &node, &fh, &same);
			/* An inode stands for one version of the value, so
			 * its cached pages are kept; unless it just took on
			 * a new version (no reader had it open), whose
			 * attributes the coherence thread now invalidates.
			 * Nothing to write back: no FLUSH on close. */
			if (!err) {
				fi->keep_cache = same && !fs->opts.strict;
				if (!same)
					dcfs_coh_recheck(fs, ino);
			}
			fi->noflush = 1;
		} else if (fs->opts.ro) {
			err = EROFS;
		} else {
			/* Never on an inode readers hold: ESTALE makes
			 * the VFS look the name up again, for a new one. */
			err = dcfs_inode_writable(fs->itable, ino);
			if (!err)
				err =
				    dcfs_write_open(fs, ino, fi->flags, 0, &fh);
		}
		break;
	case DCFS_CTL_FILE:
	case DCFS_CTL_SETTING:
		err = dcfs_ctl_open(fs, &node, fi->flags, &fh);
		fi->direct_io = 1;
		break;
	default:
		err = EISDIR;
		break;
	}
	if (err)
		goto out;
	fi->fh = (uintptr_t)fh;
	fh_register(fh);
	/* If the opener went away (interrupted), no RELEASE will come. */
	if (fuse_reply_open(req, fi) != 0)
		fh_put(fh);
	dcfs_node_release(&node);
	return;
out:
	fuse_reply_err(req, err);
	dcfs_node_release(&node);
}

static void dcfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	struct dcfs *fs = fs_of(req);
	struct dc_buf kbuf = DC_BUF_INIT, buf = DC_BUF_INIT;
	struct fuse_entry_param e;
	struct dcfs_fh *fh = NULL;
	struct dcfs_node pnode;
	struct dc_value key, empty = dc_bytes("", 0);
	struct dc_item item;
	char *path = NULL;
	fuse_ino_t ino = 0;
	struct dcfs_fp fp;
	uint64_t epoch = dcfs_inode_epoch(fs->itable);
	int rc, err, fresh;

	(void)mode;
	err = dcfs_inode_get(fs->itable, parent, &pnode);
	if (!err)
		err = new_path(fs, &pnode, name, 0, &path);
	if (err)
		goto out;
	if (fs->opts.ro) {
		err = EROFS;
		goto out;
	}
	if (dcfs_dir_exists(fs, path)) {
		err = EISDIR;
		goto out;
	}
	err = dcfs_path_key(path, &kbuf, &key);
	if (err)
		goto out;
	/* The key exists from create on (touch, O_EXCL lock files), as an
	 * empty value; the content comes at the first flush.  O_EXCL is
	 * DiskCache's add(): only one creator wins. */
	rc = dc_cache_add(fs->cache, &key, &empty, fs->opts.default_expire,
			  NULL, DC_RETRY);
	if (rc == DC_EXISTS && (fi->flags & O_EXCL)) {
		err = EEXIST;
		goto out;
	}
	fresh = rc == 0;
	if (rc != DC_EXISTS && (err = dcfs_errno(rc)))
		goto out;
	err = dcfs_key_item(fs, path, &item, &buf);
	if (err)
		goto out;
	dcfs_fp_of_item(&fp, &item);
	ino = dcfs_inode_ref(fs->itable, path, DCFS_FILE, &fp, 1);
	if (!ino) {
		err = ENOMEM;
		goto out;
	}
	err = dcfs_write_open(fs, ino, fi->flags, fresh, &fh);
	if (err) {
		dcfs_inode_forget(fs->itable, ino, 1);
		goto out;
	}
	memset(&e, 0, sizeof(e));
	e.ino = ino;
	fill_attr(fs, ino, DCFS_FILE, path, &item, &e.attr);
	e.attr_timeout = cap_ttl(fs->opts.attr_timeout, &item);
	e.entry_timeout = cap_ttl(fs->opts.entry_timeout, &item);
	fi->fh = (uintptr_t)fh;
	fh_register(fh);
	if (fuse_reply_create(req, &e, fi) != 0) {
		fh_put(fh);
		dcfs_inode_forget(fs->itable, ino, 1);
	} else {
		note(fs, ino, &fp, epoch);
	}
out:
	if (err)
		fuse_reply_err(req, err);
	free(path);
	dc_buf_release(&kbuf);
	dc_buf_release(&buf);
	dcfs_node_release(&pnode);
}

static void dcfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct dcfs_fh *fh = fh_hold(fi);

	(void)ino;
	switch (fh->kind) {
	case DCFS_FH_READ:
		dcfs_read_reply(req, fh, size, off);
		break;
	case DCFS_FH_WRITE:
		dcfs_write_reply_read(req, fh, size, off);
		break;
	case DCFS_FH_CTL:
		dcfs_ctl_reply_read(req, fh, size, off);
		break;
	default:
		fuse_reply_err(req, EBADF);
		break;
	}
	fh_put(fh);
}

static void dcfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dcfs_fh *fh = fh_hold(fi);
	ssize_t n;

	(void)ino;
	if (fh->kind == DCFS_FH_WRITE)
		n = dcfs_write_data(fh, buf, size, off);
	else if (fh->kind == DCFS_FH_CTL)
		n = dcfs_ctl_write(fh, buf, size);
	else
		n = -EBADF;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
	fh_put(fh);
}

static void dcfs_flush(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dcfs_fh *fh = fh_hold(fi);

	(void)ino;
	/* close(2) returns this: the commit's error reaches the writer. */
	fuse_reply_err(req,
		       fh->kind == DCFS_FH_WRITE ? dcfs_write_commit(fh) : 0);
	fh_put(fh);
}

static void dcfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	struct dcfs_fh *fh = fh_hold(fi);

	(void)ino;
	(void)datasync;
	fuse_reply_err(req,
		       fh->kind == DCFS_FH_WRITE ? dcfs_write_commit(fh) : 0);
	fh_put(fh);
}

static void dcfs_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	(void)ino;
	/* A write handle commits here if no FLUSH did. */
	fh_put(fh_of(fi));
	fuse_reply_err(req, 0);
}

static void dcfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct dcfs *fs = fs_of(req);
	struct dc_buf buf = DC_BUF_INIT;
	struct statvfs sv;
	struct dc_value v;
	uint64_t limit = 0, volume = 0, count = 0, bs = 4096;
	int shards = dc_cache_shards(fs->cache);

	(void)ino;
	/* A FanoutCache stores each shard's share of size_limit (a float,
	 * as Python divides it). */
	if (dc_cache_setting_get(fs->cache, "size_limit", &buf, &v) == 0) {
		if (v.type == DC_TYPE_INT && v.i > 0)
			limit = (uint64_t)v.i;
		else if (v.type == DC_TYPE_FLOAT && v.f > 0 && v.f < 1e19)
			limit = (uint64_t)v.f;
		limit *= (uint64_t)(shards > 0 ? shards : 1);
	}
	dc_cache_volume(fs->cache, &volume);
	dc_cache_len(fs->cache, &count);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = bs;
	sv.f_frsize = bs;
	sv.f_blocks = limit / bs;
	sv.f_bfree = limit > volume ? (limit - volume) / bs : 0;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = count + 1000000;
	sv.f_ffree = 1000000;
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
	dc_buf_release(&buf);
}

const struct fuse_lowlevel_ops dcfs_ops = {
	.init = dcfs_init,
	.destroy = dcfs_destroy,
	.lookup = dcfs_lookup,
	.forget = dcfs_forget,
	.forget_multi = dcfs_forget_multi,
	.getattr = dcfs_getattr,
	.setattr = dcfs_setattr,
	.mkdir = dcfs_mkdir,
	.unlink = dcfs_unlink,
	.rmdir = dcfs_rmdir,
	.rename = dcfs_rename,
	.open = dcfs_open,
	.create = dcfs_create,
	.read = dcfs_read,
	.write = dcfs_write,
	.flush = dcfs_flush,
	.release = dcfs_release,
	.fsync = dcfs_fsync,
	.opendir = dcfs_opendir,
	.readdir = dcfs_readdir,
	.readdirplus = dcfs_readdirplus,
	.releasedir = dcfs_releasedir,
	.statfs = dcfs_statfs,
	.setxattr = dcfs_setxattr,
	.getxattr = dcfs_getxattr,
	.listxattr = dcfs_listxattr,
	.removexattr = dcfs_removexattr,
};
