/* xattr.c - the user.dcache.* extended attributes of keys
 * SPDX-License-Identifier: MIT
 *
 *   expire_time   absolute Unix seconds; write to set, remove to clear
 *   expire        seconds left; write seconds (or 1h, 30m, none) = touch
 *   tag           read, write, remove (the value is not rewritten)
 *   type          str, int, float, bytes, pickle; write to convert
 *   store_time, access_time, access_count, key   read-only
 *
 * Errors follow the mergerfs convention: an unknown name is ENODATA, a
 * malformed value EINVAL, writing a read-only name EPERM (removing one
 * is a no-op: rsync -X removes every name its source lacks).  Names outside
 * user.dcache. are answered from memory, before any cache access: the
 * kernel asks for security.capability before every write(2).
 */
#include "dcfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define NS     "user.dcache."
#define NS_LEN (sizeof(NS) - 1)

enum attr {
	A_EXPIRE_TIME,
	A_EXPIRE,
	A_TAG,
	A_STORE_TIME,
	A_ACCESS_TIME,
	A_ACCESS_COUNT,
	A_KEY,
	A_TYPE,
	A_COUNT,
};

static const char *const attr_names[A_COUNT] = {
	"expire_time", "expire",       "tag", "store_time",
	"access_time", "access_count", "key", "type",
};

/* The attribute index of @name, or -1 (not ours or unknown). */
static int attr_of(const char *name)
{
	int i;

	if (strncmp(name, NS, NS_LEN) != 0)
		return -1;
	for (i = 0; i < A_COUNT; i++)
		if (strcmp(name + NS_LEN, attr_names[i]) == 0)
			return i;
	return -1;
}

/* Everything an xattr call needs about the key behind an inode. */
struct target {
	struct dcfs_node node;
	struct dc_buf kbuf;
	struct dc_buf buf;
	struct dc_value key;
	struct dc_item item;
};

static void target_release(struct target *t)
{
	dcfs_node_release(&t->node);
	dc_buf_release(&t->kbuf);
	dc_buf_release(&t->buf);
}

/* Find the key of @ino and its metadata (expiry, tag, times, type).
 * Returns 0, ENODATA (not a key: directories and control files have no
 * attributes), ENOENT, or an errno. */
static int target_get(struct dcfs *fs, fuse_ino_t ino, struct target *t)
{
	int rc, err;

	memset(t, 0, sizeof(*t));
	err = dcfs_inode_get(fs->itable, ino, &t->node);
	if (err)
		goto out;
	if (t->node.kind != DCFS_FILE) {
		err = ENODATA;
		goto out;
	}
	err = dcfs_path_key(t->node.path, &t->kbuf, &t->key);
	if (err) {
		err = ENOENT;
		goto out;
	}
	/* The stored type comes with the metadata. */
	rc = dc_cache_get(fs->cache, &t->key, &t->buf, &t->item, DC_NOVALUE);
	err = dcfs_errno(rc);
out:
	return err;
}

static void reply_value(fuse_req_t req, const void *data, size_t len,
			size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

void dcfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   size_t size)
{
	struct dcfs *fs = fuse_req_userdata(req);
	char num[DCFS_NUM_MAX];
	struct target t;
	struct dc_value v;
	const void *data;
	size_t len;
	int a = attr_of(name), err;

	if (a < 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	err = target_get(fs, ino, &t);
	if (err)
		goto out;
	switch (a) {
	case A_EXPIRE_TIME:
	case A_EXPIRE:
		if (isnan(t.item.expire_time)) {
			err = ENODATA;
			goto out;
		}
		v = dc_float(a == A_EXPIRE ? t.item.expire_time - dcfs_now()
					   : t.item.expire_time);
		break;
	case A_TAG:
		if (t.item.tag.type == DC_TYPE_NONE) {
			err = ENODATA;
			goto out;
		}
		v = t.item.tag;
		break;
	case A_STORE_TIME:
		v = dc_float(t.item.store_time);
		break;
	case A_ACCESS_TIME:
		v = dc_float(t.item.access_time);
		break;
	case A_ACCESS_COUNT:
		v = dc_int(t.item.access_count);
		break;
	case A_KEY:
		v = t.key;
		break;
	default:
		data = dc_type_name(t.item.value.type);
		if (!data)
			data = "none";
		v = dc_text(data);
		break;
	}
	len = dcfs_value_render(&v, num, &data);
	reply_value(req, data, len, size);
out:
	if (err)
		fuse_reply_err(req, err);
	target_release(&t);
}

static int set_tag(struct dcfs *fs, struct target *t, const char *value,
		   size_t size, int flags)
{
	struct dc_value tag;

	if ((flags & XATTR_CREATE) && t->item.tag.type != DC_TYPE_NONE)
		return EEXIST;
	if ((flags & XATTR_REPLACE) && t->item.tag.type == DC_TYPE_NONE)
		return ENODATA;
	/* Text when it is text, as Python would most likely have set it. */
	if (dcfs_utf8_valid(value, size) && !memchr(value, '\0', size))
		tag = dc_textn(value, size);
	else
		tag = dc_bytes(value, size);
	return dcfs_errno(dc_cache_set_meta(fs->cache, &t->key, DC_META_TAG,
					    &tag, 0, DC_RETRY));
}

static int set_type(struct dcfs *fs, struct target *t, const char *value,
		    size_t size)
{
	char name[16];
	enum dc_type type;

	size = dcfs_trim(value, size);
	if (size == 0 || size >= sizeof(name))
		return EINVAL;
	memcpy(name, value, size);
	name[size] = '\0';
	if (dc_type_parse(name, &type) != 0 || type == DC_TYPE_PICKLE ||
	    type == DC_TYPE_NONE)
		return EINVAL;
	if (type == t->item.value.type)
		return 0;
	return dcfs_convert_key(fs, &t->key, type);
}

void dcfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		   const char *value, size_t size, int flags)
{
	struct dcfs *fs = fuse_req_userdata(req);
	char text[64];
	struct target t;
	double when;
	size_t len;
	int a = attr_of(name), err;

	memset(&t, 0, sizeof(t));
	if (strncmp(name, NS, NS_LEN) != 0) {
		/* cp -a, rsync -X and tar treat this as "not supported
		 * here" and carry on quietly. */
		err = EOPNOTSUPP;
		goto out;
	}
	if (a < 0) {
		err = ENODATA;
		goto out;
	}
	if (fs->opts.ro) {
		err = EROFS;
		goto out;
	}
	err = target_get(fs, ino, &t);
	if (err) {
		if (err == ENODATA)
			err = EPERM;
		goto out;
	}
	len = dcfs_trim(value, size);
	switch (a) {
	case A_EXPIRE_TIME:
	case A_EXPIRE:
		if (len == 0 || len >= sizeof(text) || memchr(value, 0, len)) {
			err = EINVAL;
			break;
		}
		memcpy(text, value, len);
		text[len] = '\0';
		if (a == A_EXPIRE_TIME) {
			/* Absolute: stored as given, not via "now". */
			err = dcfs_parse_double(text, len, &when);
			if (!err && !isfinite(when))
				err = EINVAL;
			if (!err)
				err = dcfs_errno(dc_cache_set_meta(
				    fs->cache, &t.key, DC_META_EXPIRE_TIME,
				    NULL, when, DC_RETRY));
			break;
		}
		err = dcfs_parse_duration(text, &when);
		if (err) {
			err = EINVAL;
			break;
		}
		err = dcfs_errno(
		    dc_cache_touch(fs->cache, &t.key, when, DC_RETRY));
		break;
	case A_TAG:
		err = set_tag(fs, &t, value, size, flags);
		break;
	case A_TYPE:
		err = set_type(fs, &t, value, size);
		break;
	default:
		err = EPERM;
		break;
	}
out:
	if (err == EINVAL)
		dcfs_log(FUSE_LOG_INFO, "setxattr %s: malformed value", name);
	/* A new type changes the size and bytes, a new expiry the
	 * timeouts: invalidate every name of the key (it may also be
	 * open under .keys/) before replying.  A tag is not cached. */
	if (!err && a != A_TAG)
		dcfs_coh_sync(fs);
	fuse_reply_err(req, err);
	target_release(&t);
}

void dcfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct dcfs *fs = fuse_req_userdata(req);
	char list[256];
	struct target t;
	size_t len = 0, n;
	int i, err;

	err = target_get(fs, ino, &t);
	if (err == ENODATA) {
		err = 0; /* directories and control files: no names */
		goto reply;
	}
	if (err)
		goto out;
	for (i = 0; i < A_COUNT; i++) {
		if ((i == A_EXPIRE_TIME || i == A_EXPIRE) &&
		    isnan(t.item.expire_time))
			continue;
		if (i == A_TAG && t.item.tag.type == DC_TYPE_NONE)
			continue;
		n = NS_LEN + strlen(attr_names[i]) + 1;
		memcpy(list + len, NS, NS_LEN);
		memcpy(list + len + NS_LEN, attr_names[i], n - NS_LEN);
		len += n;
	}
reply:
	reply_value(req, list, len, size);
out:
	if (err)
		fuse_reply_err(req, err);
	target_release(&t);
}

void dcfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct dcfs *fs = fuse_req_userdata(req);
	struct target t;
	int a = attr_of(name), err;

	memset(&t, 0, sizeof(t));
	if (a < 0) {
		err = ENODATA;
		goto out;
	}
	if (fs->opts.ro) {
		err = EROFS;
		goto out;
	}
	err = target_get(fs, ino, &t);
	if (err) {
		if (err == ENODATA)
			err = EPERM;
		goto out;
	}
	switch (a) {
	case A_EXPIRE_TIME:
	case A_EXPIRE:
		if (isnan(t.item.expire_time))
			err = ENODATA;
		else
			err = dcfs_errno(dc_cache_set_meta(
			    fs->cache, &t.key, DC_META_EXPIRE_TIME, NULL,
			    DC_NO_EXPIRE, DC_RETRY));
		break;
	case A_TAG:
		if (t.item.tag.type == DC_TYPE_NONE)
			err = ENODATA;
		else
			err = dcfs_errno(dc_cache_set_meta(
			    fs->cache, &t.key, DC_META_TAG, NULL, 0, DC_RETRY));
		break;
	default:
		/* A computed attribute (store_time, key, ...) cannot go;
		 * removing it is accepted and changes nothing, so that
		 * rsync -X, which removes every name its source lacks,
		 * carries on quietly. */
		err = 0;
		break;
	}
out:
	if (!err && (a == A_EXPIRE_TIME || a == A_EXPIRE))
		dcfs_coh_sync(fs); /* the entry's timeout may be too long */
	fuse_reply_err(req, err);
	target_release(&t);
}
