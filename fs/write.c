/* write.c - write handles: spool the new value, commit it atomically
 * SPDX-License-Identifier: MIT
 *
 * A write handle collects the file's new content privately and stores it
 * as the key's value in one step, so a reader sees the old value or the
 * new one, never a mix:
 *   - the old value is loaded lazily, at the first write, read or
 *     truncate that needs it (touch and O_TRUNC never load it);
 *   - content below the cache's disk_min_file_size stays in memory and
 *     is stored with dc_cache_set;
 *   - larger content goes to a temporary file made by dc_cache_mkstemp
 *     inside the cache directory, and dc_cache_set_file renames it into
 *     place: no copy;
 *   - the commit happens at the first FLUSH after a change (close(2)
 *     returns its error), else at RELEASE, or at fsync.
 * Values written through the mount are stored as bytes; an existing
 * key keeps its tag and remaining expiry, a new key gets default_expire.
 */
#include "dcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dcfs_wh {
	struct dcfs_fh fh;
	struct dcfs *fs;
	fuse_ino_t ino;
	int append;
	pthread_mutex_t lock;
	/* Everything below is protected by lock. */
	int loaded; /* the old value is in mem or fd (or was dropped) */
	int dirty;  /* changed since the last commit */
	int registered;
	char *mem; /* the content, while fd < 0 */
	size_t cap;
	uint64_t size; /* stored atomically: getattr reads it unlocked */
	int fd;        /* the content, or -1 */
	int priv;      /* fd is our temporary file at tmp (else a value file) */
	char tmp[4096];
};

int dcfs_copy_fd(int in, int out)
{
	char buf[65536];
	loff_t ipos = 0, opos = 0;
	ssize_t n, w;
	int err = 0;

	for (;;) {
		n = copy_file_range(in, &ipos, out, &opos, 1 << 30, 0);
		if (n == 0)
			goto out;
		if (n < 0)
			break;
	}
	if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
	    errno != EOPNOTSUPP) {
		err = errno;
		goto out;
	}
	/* Fall back to copying through memory, from where we stopped. */
	for (;;) {
		n = pread(in, buf, sizeof(buf), ipos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : 0;
			goto out;
		}
		ipos += n;
		for (w = 0; w < n;) {
			ssize_t k = pwrite(out, buf + w, (size_t)(n - w), opos);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				err = errno;
				goto out;
			}
			w += k;
			opos += k;
		}
	}
out:
	return err;
}

/* Content this long or longer goes to a temporary file. */
static uint64_t spool_limit(const struct dcfs_wh *wh)
{
	return __atomic_load_n(&wh->fs->spool_limit, __ATOMIC_RELAXED);
}

static void set_size(struct dcfs_wh *wh, uint64_t size)
{
	__atomic_store_n(&wh->size, size, __ATOMIC_RELAXED);
}

/* The content changed: from now on stat reports the handle's size. */
static void mark_dirty(struct dcfs_wh *wh)
{
	wh->dirty = 1;
	if (!wh->registered) {
		dcfs_inode_set_writer(wh->fs->itable, wh->ino, &wh->size);
		wh->registered = 1;
	}
}

static int new_temp(struct dcfs_wh *wh)
{
	int fd = dc_cache_mkstemp(wh->fs->cache, wh->tmp, sizeof(wh->tmp));

	/* A negative errno on failure, like the descriptor's sign. */
	if (fd < 0)
		return -dcfs_errno(fd);
	return fd;
}

/* Load the old value: a value file's descriptor, or the bytes. */
static int load(struct dcfs_wh *wh)
{
	struct dc_buf kbuf = DC_BUF_INIT, buf = DC_BUF_INIT;
	struct dcfs_node node = { 0 };
	char num[DCFS_NUM_MAX];
	struct dc_item item;
	struct dc_value key;
	const void *data;
	size_t len;
	int rc, err;

	if (wh->loaded)
		return 0;
	err = dcfs_inode_get(wh->fs->itable, wh->ino, &node);
	if (err)
		goto out;
	err = dcfs_path_key(node.path, &kbuf, &key);
	if (err)
		goto out;
	rc = dcfs_get_value(wh->fs, &key, &buf, &item, DC_FD);
	if (rc == DC_NOTFOUND) {
		/* Gone meanwhile: the write creates it anew. */
		err = 0;
		set_size(wh, 0);
		goto done;
	}
	err = dcfs_errno(rc);
	if (err)
		goto out;
	if (item.fd >= 0) {
		wh->fd = item.fd;
		wh->priv = 0;
		set_size(wh, item.size);
		goto done;
	}
	len = dcfs_value_render(&item.value, num, &data);
	wh->mem = malloc(len ? len : 1);
	if (!wh->mem) {
		err = ENOMEM;
		goto out;
	}
	memcpy(wh->mem, data, len);
	wh->cap = len;
	set_size(wh, len);
done:
	wh->loaded = 1;
out:
	dc_buf_release(&kbuf);
	dc_buf_release(&buf);
	dcfs_node_release(&node);
	return err;
}

/* Make fd our own temporary copy before changing it: the value file
 * belongs to the cache and other readers. */
static int make_private(struct dcfs_wh *wh)
{
	int fd, err;

	if (wh->fd < 0 || wh->priv)
		return 0;
	fd = new_temp(wh);
	if (fd < 0)
		return -fd;
	err = dcfs_copy_fd(wh->fd, fd);
	if (err) {
		close(fd);
		unlink(wh->tmp);
		return err;
	}
	close(wh->fd);
	wh->fd = fd;
	wh->priv = 1;
	return 0;
}

/* Move the in-memory content to a temporary file. */
static int spill(struct dcfs_wh *wh)
{
	size_t done = 0;
	ssize_t n;
	int fd, err = 0;

	fd = new_temp(wh);
	if (fd < 0)
		return -fd;
	while (done < wh->size) {
		n = pwrite(fd, wh->mem + done, wh->size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			close(fd);
			unlink(wh->tmp);
			return err;
		}
		done += (size_t)n;
	}
	free(wh->mem);
	wh->mem = NULL;
	wh->cap = 0;
	wh->fd = fd;
	wh->priv = 1;
	return 0;
}

/* Grow the memory spool to @size bytes, zero-filling any gap. */
static int mem_resize(struct dcfs_wh *wh, size_t size)
{
	size_t cap = wh->cap ? wh->cap : 4096;
	char *p;

	if (size > wh->cap) {
		while (cap < size)
			cap *= 2;
		p = realloc(wh->mem, cap);
		if (!p)
			return ENOMEM;
		wh->mem = p;
		wh->cap = cap;
	}
	if (size > wh->size)
		memset(wh->mem + wh->size, 0, size - wh->size);
	set_size(wh, size);
	return 0;
}

int dcfs_write_open(struct dcfs *fs, fuse_ino_t ino, int flags, int fresh,
		    struct dcfs_fh **out)
{
	struct dcfs_wh *wh = calloc(1, sizeof(*wh));
	int err = 0;

	if (!wh)
		return ENOMEM;
	wh->fh.kind = DCFS_FH_WRITE;
	wh->fh.refs = 1;
	wh->fs = fs;
	wh->ino = ino;
	dcfs_inode_writers(fs->itable, ino, 1);
	wh->fd = -1;
	wh->loaded = fresh;
	wh->append = !!(flags & O_APPEND);
	pthread_mutex_init(&wh->lock, NULL);
	if ((flags & O_TRUNC) && !fresh)
		err = dcfs_write_truncate(&wh->fh, 0);
	if (err) {
		dcfs_write_close(&wh->fh);
		return err;
	}
	*out = &wh->fh;
	return 0;
}

ssize_t dcfs_write_data(struct dcfs_fh *fh, const char *data, size_t size,
			off_t off)
{
	struct dcfs_wh *wh = (struct dcfs_wh *)fh;
	uint64_t end;
	ssize_t ret;
	size_t done = 0;
	int err;

	pthread_mutex_lock(&wh->lock);
	err = load(wh);
	if (err)
		goto out;
	/* Without the writeback cache the kernel passes the offset it
	 * believes is the end; ours is authoritative. */
	if (wh->append)
		off = (off_t)wh->size;
	end = (uint64_t)off + size;
	if (wh->fd < 0 && end > spool_limit(wh))
		err = spill(wh);
	else if (wh->fd >= 0)
		err = make_private(wh);
	if (err)
		goto out;
	if (wh->fd >= 0) {
		while (done < size) {
			ret = pwrite(wh->fd, data + done, size - done,
				     off + (off_t)done);
			if (ret < 0 && errno == EINTR)
				continue;
			if (ret < 0) {
				err = errno;
				goto out;
			}
			done += (size_t)ret;
		}
		if (end > wh->size)
			set_size(wh, end);
	} else {
		if (end > wh->size)
			err = mem_resize(wh, (size_t)end);
		if (err)
			goto out;
		memcpy(wh->mem + off, data, size);
	}
	mark_dirty(wh);
out:
	pthread_mutex_unlock(&wh->lock);
	return err ? -(ssize_t)err : (ssize_t)size;
}

int dcfs_write_truncate(struct dcfs_fh *fh, uint64_t size)
{
	struct dcfs_wh *wh = (struct dcfs_wh *)fh;
	int err = 0;

	pthread_mutex_lock(&wh->lock);
	if (size == 0) {
		/* Nothing of the old value survives: do not load it. */
		if (wh->fd >= 0 && wh->priv) {
			if (ftruncate(wh->fd, 0) < 0)
				err = errno;
		} else if (wh->fd >= 0) {
			close(wh->fd);
			wh->fd = -1;
		}
		wh->loaded = 1;
		set_size(wh, 0);
		goto done;
	}
	err = load(wh);
	if (err)
		goto out;
	if (wh->fd < 0 && size > spool_limit(wh))
		err = spill(wh);
	else if (wh->fd >= 0)
		err = make_private(wh);
	if (err)
		goto out;
	if (wh->fd >= 0) {
		if (ftruncate(wh->fd, (off_t)size) < 0) {
			err = errno;
			goto out;
		}
		set_size(wh, size);
	} else if (size > wh->size) {
		err = mem_resize(wh, (size_t)size);
	} else {
		set_size(wh, size);
	}
done:
	if (!err)
		mark_dirty(wh);
out:
	pthread_mutex_unlock(&wh->lock);
	return err;
}

void dcfs_write_reply_read(fuse_req_t req, struct dcfs_fh *fh, size_t size,
			   off_t off)
{
	struct dcfs_wh *wh = (struct dcfs_wh *)fh;
	int err;

	pthread_mutex_lock(&wh->lock);
	err = load(wh);
	if (err)
		fuse_reply_err(req, err);
	else if (wh->fd >= 0)
		dcfs_reply_fd(req, wh->fd, size, off);
	else
		dcfs_reply_mem(req, wh->mem, wh->size, size, off);
	pthread_mutex_unlock(&wh->lock);
}

/* Caller holds wh->lock. */
static int commit_locked(struct dcfs_wh *wh)
{
	struct dc_buf kbuf = DC_BUF_INIT, mbuf = DC_BUF_INIT;
	struct dcfs *fs = wh->fs;
	struct dcfs_node node = { 0 };
	const struct dc_value *tag = NULL;
	struct dc_item meta;
	struct dc_value key, value;
	struct dcfs_fp ver;
	double expire;
	int rc, err;

	if (!wh->dirty)
		return 0;
	err = dcfs_inode_get(fs->itable, wh->ino, &node);
	if (err)
		goto out;
	if (!node.attached) {
		/* Unlinked (or replaced) while open: the content dies with
		 * the handle, as on any POSIX filesystem. */
		wh->dirty = 0;
		goto out;
	}
	err = dcfs_path_key(node.path, &kbuf, &key);
	if (err)
		goto out;
	rc = dc_cache_get(fs->cache, &key, &mbuf, &meta, DC_NOVALUE);
	if (rc == 0) {
		expire = isnan(meta.expire_time)
			     ? DC_NO_EXPIRE
			     : meta.expire_time - dcfs_now();
		if (meta.tag.type != DC_TYPE_NONE)
			tag = &meta.tag;
	} else {
		expire = fs->opts.default_expire;
	}
	if (wh->fd >= 0 && !wh->priv) {
		err = make_private(wh);
		if (err)
			goto out;
	}
	if (wh->fd < 0) {
		value = dc_bytes(wh->mem ? wh->mem : "", wh->size);
		rc = dc_cache_set(fs->cache, &key, &value, expire, tag,
				  DC_RETRY);
		err = dcfs_errno(rc);
	} else {
		rc = dc_cache_set_file(fs->cache, &key, wh->tmp, DC_TYPE_BYTES,
				       expire, tag, DC_RETRY);
		err = dcfs_errno(rc);
		/* The file is the value now; fd still reads it, and a later
		 * write copies it first. */
		if (!err)
			wh->priv = 0;
	}
	if (!err) {
		wh->dirty = 0;
		/* The writer's inode stands for the value it stored. */
		if (dcfs_key_item(fs, node.path, &meta, &mbuf) == 0) {
			dcfs_fp_of_item(&ver, &meta);
			dcfs_inode_adopt(fs->itable, wh->ino, &ver);
		}
		/* The key's other name (.keys/str/...) did not see it. */
		dcfs_coh_changed(fs, node.path, 1);
	} else {
		dcfs_log(FUSE_LOG_ERR, "storing %s: %s", node.path,
			 dc_strerror(rc));
	}
out:
	dc_buf_release(&kbuf);
	dc_buf_release(&mbuf);
	dcfs_node_release(&node);
	return err;
}

int dcfs_write_commit(struct dcfs_fh *fh)
{
	struct dcfs_wh *wh = (struct dcfs_wh *)fh;
	int err;

	pthread_mutex_lock(&wh->lock);
	err = commit_locked(wh);
	pthread_mutex_unlock(&wh->lock);
	return err;
}

void dcfs_write_close(struct dcfs_fh *fh)
{
	struct dcfs_wh *wh = (struct dcfs_wh *)fh;

	if (!wh)
		return;
	pthread_mutex_lock(&wh->lock);
	commit_locked(wh);
	if (wh->registered)
		dcfs_inode_clear_writer(wh->fs->itable, wh->ino, &wh->size);
	dcfs_inode_writers(wh->fs->itable, wh->ino, -1);
	if (wh->fd >= 0)
		close(wh->fd);
	if (wh->priv)
		unlink(wh->tmp);
	free(wh->mem);
	pthread_mutex_unlock(&wh->lock);
	pthread_mutex_destroy(&wh->lock);
	free(wh);
}

int dcfs_truncate_path(struct dcfs *fs, fuse_ino_t ino, uint64_t size)
{
	struct dcfs_fh *fh = NULL;
	int err;

	err = dcfs_write_open(fs, ino, 0, 0, &fh);
	if (!err)
		err = dcfs_write_truncate(fh, size);
	if (!err)
		err = dcfs_write_commit(fh);
	dcfs_write_close(fh);
	return err;
}
