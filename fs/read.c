/* read.c - read handles: a value file's descriptor (splice) or the bytes
 * SPDX-License-Identifier: MIT
 *
 * The value is fetched once, at open(): a file-backed value as a
 * descriptor of its value file (which keeps reading the same bytes even
 * if the key is replaced or deleted meanwhile), an inline value as its
 * rendered bytes.  Reads of a value file are answered with
 * fuse_reply_data on a descriptor buffer, so libfuse splices the pages
 * to the kernel without copying them through this process.  A read
 * handle counts as a reader of its inode (see dcfs_inode_open_read): an
 * inode stands for one version of the value, so the handle's bytes and
 * the inode's size always agree.
 */
#include "dcfs.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

struct dcfs_rh {
	struct dcfs_fh fh;
	struct dcfs *fs;
	fuse_ino_t ino;    /* counted as a reader of it, or 0 */
	int fd;            /* the value file, or -1 */
	struct dc_buf buf; /* owns the bytes of an inline value */
	const char *data;  /* the rendered inline value */
	size_t len;
	char num[DCFS_NUM_MAX];
};

int dcfs_read_open(struct dcfs *fs, const struct dcfs_node *node,
		   struct dcfs_fh **out, int *same)
{
	struct dc_buf kbuf = DC_BUF_INIT;
	struct dcfs_rh *rh;
	struct dcfs_fp ver;
	struct dc_item item;
	struct dc_value key;
	const void *data;
	int rc, err;

	rh = calloc(1, sizeof(*rh));
	if (!rh)
		return ENOMEM;
	rh->fh.kind = DCFS_FH_READ;
	rh->fh.refs = 1;
	rh->fs = fs;
	rh->fd = -1;
	err = dcfs_path_key(node->path, &kbuf, &key);
	if (err) {
		err = ENOENT;
		goto out;
	}
	rc = dcfs_get_value(fs, &key, &rh->buf, &item, DC_FD);
	err = dcfs_errno(rc);
	if (err)
		goto out;
	if (item.fd >= 0) {
		rh->fd = item.fd;
	} else {
		rh->len = dcfs_value_render(&item.value, rh->num, &data);
		rh->data = data;
	}
	dcfs_item_sized(&item);
	dcfs_fp_of_item(&ver, &item);
	if (item.fd < 0)
		ver.size = rh->len;
	err = dcfs_inode_open_read(fs->itable, node->ino, &ver, same);
	if (err)
		goto out;
	rh->ino = node->ino;
	*out = &rh->fh;
	rh = NULL;
out:
	dc_buf_release(&kbuf);
	if (rh)
		dcfs_read_close(&rh->fh);
	return err;
}

/* Reply to READ from @fd at @off: libfuse splices when it can. */
void dcfs_reply_fd(fuse_req_t req, int fd, size_t size, off_t off)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* Reply to READ from memory. */
void dcfs_reply_mem(fuse_req_t req, const char *data, size_t len, size_t size,
		    off_t off)
{
	if (off < 0 || (uint64_t)off >= len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	fuse_reply_buf(req, data + off, size);
}

void dcfs_read_reply(fuse_req_t req, struct dcfs_fh *fh, size_t size, off_t off)
{
	struct dcfs_rh *rh = (struct dcfs_rh *)fh;

	if (rh->fd >= 0)
		dcfs_reply_fd(req, rh->fd, size, off);
	else
		dcfs_reply_mem(req, rh->data, rh->len, size, off);
}

void dcfs_read_close(struct dcfs_fh *fh)
{
	struct dcfs_rh *rh = (struct dcfs_rh *)fh;

	if (!rh)
		return;
	if (rh->ino)
		dcfs_inode_close_read(rh->fs->itable, rh->ino);
	if (rh->fd >= 0)
		close(rh->fd);
	dc_buf_release(&rh->buf);
	free(rh);
}
