/* tree.c - the namespace: what a path is, directory listings, mkdir'd dirs
 * SPDX-License-Identifier: MIT
 *
 * The tree is computed, not stored: a directory exists while a live key
 * lies below it or while it is a mkdir'd ("explicit") directory, which
 * is kept in memory until rmdir or unmount.  A key "a" beside keys
 * "a/..." is shadowed: "a" is the directory, and the key is reachable as
 * .keys/str/a.
 */
#include "dcfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Explicit (mkdir'd) directories                                     */
/* ------------------------------------------------------------------ */

struct dcfs_xdirs {
	pthread_mutex_t lock;
	char **v; /* sorted by strcmp; protected by lock */
	size_t n;
	size_t cap;
};

int dcfs_xdirs_new(struct dcfs_xdirs **out)
{
	struct dcfs_xdirs *x = calloc(1, sizeof(*x));

	if (!x)
		return ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	*out = x;
	return 0;
}

void dcfs_xdirs_free(struct dcfs_xdirs *x)
{
	size_t i;

	if (!x)
		return;
	for (i = 0; i < x->n; i++)
		free(x->v[i]);
	free(x->v);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

/* The index of the first entry >= @s.  Caller holds the lock. */
static size_t xd_lower(const struct dcfs_xdirs *x, const char *s)
{
	size_t lo = 0, hi = x->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(x->v[mid], s) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int xd_contains(struct dcfs *fs, const char *path)
{
	struct dcfs_xdirs *x = fs->xdirs;
	size_t i;
	int found;

	pthread_mutex_lock(&x->lock);
	i = xd_lower(x, path);
	found = i < x->n && strcmp(x->v[i], path) == 0;
	pthread_mutex_unlock(&x->lock);
	return found;
}

/* Does an explicit directory lie strictly below @dir? */
static int xd_has_below(struct dcfs *fs, const char *dir)
{
	struct dcfs_xdirs *x = fs->xdirs;
	size_t i, dlen = strlen(dir);
	int found;

	pthread_mutex_lock(&x->lock);
	if (!dlen) {
		found = x->n > 0;
	} else {
		i = xd_lower(x, dir);
		if (i < x->n && strcmp(x->v[i], dir) == 0)
			i++;
		found = i < x->n && strncmp(x->v[i], dir, dlen) == 0 &&
			x->v[i][dlen] == '/';
		/* "dir-x" sorts between "dir" and "dir/..." */
		while (!found && i < x->n && strncmp(x->v[i], dir, dlen) == 0) {
			found = x->v[i][dlen] == '/';
			i++;
		}
	}
	pthread_mutex_unlock(&x->lock);
	return found;
}

int dcfs_xdir_add(struct dcfs *fs, const char *path)
{
	struct dcfs_xdirs *x = fs->xdirs;
	char *copy, **v;
	size_t i;
	int err = 0;

	pthread_mutex_lock(&x->lock);
	i = xd_lower(x, path);
	if (i < x->n && strcmp(x->v[i], path) == 0)
		goto out;
	if (x->n == x->cap) {
		v = realloc(x->v, (x->cap ? x->cap * 2 : 16) * sizeof(*v));
		if (!v) {
			err = ENOMEM;
			goto out;
		}
		x->v = v;
		x->cap = x->cap ? x->cap * 2 : 16;
	}
	copy = strdup(path);
	if (!copy) {
		err = ENOMEM;
		goto out;
	}
	memmove(x->v + i + 1, x->v + i, (x->n - i) * sizeof(*x->v));
	x->v[i] = copy;
	x->n++;
out:
	pthread_mutex_unlock(&x->lock);
	return err;
}

void dcfs_xdir_remove(struct dcfs *fs, const char *path)
{
	struct dcfs_xdirs *x = fs->xdirs;
	size_t i;

	pthread_mutex_lock(&x->lock);
	i = xd_lower(x, path);
	if (i < x->n && strcmp(x->v[i], path) == 0) {
		free(x->v[i]);
		memmove(x->v + i, x->v + i + 1, (x->n - i - 1) * sizeof(*x->v));
		x->n--;
	}
	pthread_mutex_unlock(&x->lock);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int dcfs_xdir_move(struct dcfs *fs, const char *from, const char *to)
{
	struct dcfs_xdirs *x = fs->xdirs;
	size_t i, flen = strlen(from), tlen = strlen(to), rest;
	int err = 0;
	char *np;

	pthread_mutex_lock(&x->lock);
	for (i = 0; i < x->n; i++) {
		if (strncmp(x->v[i], from, flen) != 0 ||
		    (x->v[i][flen] != '\0' && x->v[i][flen] != '/'))
			continue;
		rest = strlen(x->v[i] + flen) + 1;
		np = malloc(tlen + rest);
		if (!np) {
			err = ENOMEM;
			continue;
		}
		memcpy(np, to, tlen);
		memcpy(np + tlen, x->v[i] + flen, rest);
		free(x->v[i]);
		x->v[i] = np;
	}
	if (x->n > 1)
		qsort(x->v, x->n, sizeof(*x->v), cmp_str);
	pthread_mutex_unlock(&x->lock);
	return err;
}

/* ------------------------------------------------------------------ */
/* Keys below a directory                                             */
/* ------------------------------------------------------------------ */

/* "dir/" for a directory path, "" for the root; in new memory. */
static char *dir_prefix(const char *dir, size_t *len)
{
	size_t dlen = strlen(dir);
	char *p = malloc(dlen + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, dlen);
	if (dlen)
		p[dlen++] = '/';
	p[dlen] = '\0';
	*len = dlen;
	return p;
}

/* Sets *found if a live key that is a valid path lies below @dir. */
static int keys_below(struct dcfs *fs, const char *dir, int *found)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	dc_iter *it = NULL;
	size_t plen;
	char *prefix;
	int rc, err;

	*found = 0;
	prefix = dir_prefix(dir, &plen);
	if (!prefix)
		return ENOMEM;
	rc = dc_iter_open(fs->cache, DC_SORTED | DC_ALIVE, prefix, plen, &it);
	while (rc == 0 && !*found) {
		rc = dc_iter_next(it, &buf, &item);
		if (rc == 0 && item.key.type == DC_TYPE_TEXT &&
		    dcfs_key_is_path(item.key.data, item.key.len))
			*found = 1;
	}
	err = rc == DC_NOTFOUND ? 0 : dcfs_errno(rc);
	dc_iter_close(it);
	dc_buf_release(&buf);
	free(prefix);
	return err;
}

int dcfs_dir_has_children(struct dcfs *fs, const char *path)
{
	int found = 0;

	if (xd_has_below(fs, path))
		return 1;
	keys_below(fs, path, &found);
	return found;
}

int dcfs_xdir_exists(struct dcfs *fs, const char *path)
{
	return xd_contains(fs, path) || xd_has_below(fs, path);
}

int dcfs_dir_exists(struct dcfs *fs, const char *path)
{
	return !*path || xd_contains(fs, path) ||
	       dcfs_dir_has_children(fs, path);
}

/* ------------------------------------------------------------------ */
/* Keys                                                               */
/* ------------------------------------------------------------------ */

int dcfs_get_value(struct dcfs *fs, const struct dc_value *key,
		   struct dc_buf *buf, struct dc_item *item, unsigned flags)
{
	int rc, tries = 0;

	/* A writer that replaces the key deletes the old value file after
	 * its commit: a get that read the old row may then find its file
	 * gone and report a miss (Python's get does the same).  The key
	 * is there all along: read it again. */
	do
		rc = dc_cache_get(fs->cache, key, buf, item, flags);
	while (rc == DC_NOTFOUND && ++tries < 10 &&
	       dc_cache_contains(fs->cache, key) == 0);
	return rc;
}

void dcfs_item_sized(struct dc_item *item)
{
	char num[DCFS_NUM_MAX];
	const void *data;

	if (item->value.type == DC_TYPE_INT ||
	    item->value.type == DC_TYPE_FLOAT)
		item->size = dcfs_value_render(&item->value, num, &data);
}

int dcfs_key_item(struct dcfs *fs, const char *path, struct dc_item *item,
		  struct dc_buf *buf)
{
	struct dc_buf kbuf = DC_BUF_INIT;
	struct dc_value key;
	int rc, err;

	err = dcfs_path_key(path, &kbuf, &key);
	if (err) {
		err = ENOENT;
		goto out;
	}
	/* Metadata only: no hit counted, no access time written; the
	 * stored type and a number's value come with it. */
	rc = dc_cache_get(fs->cache, &key, buf, item, DC_NOVALUE);
	err = dcfs_errno(rc);
	if (err)
		goto out;
	dcfs_item_sized(item);
out:
	dc_buf_release(&kbuf);
	return err;
}

int dcfs_resolve(struct dcfs *fs, const struct dcfs_node *parent,
		 const char *name, char **path, enum dcfs_kind *kind,
		 struct dc_item *item, struct dc_buf *buf)
{
	size_t len = strlen(name);
	struct dc_item tmp_item;
	struct dc_buf tmp_buf = DC_BUF_INIT;
	char *child = NULL;
	int err = ENOENT, found;

	if (!item) {
		item = &tmp_item;
		buf = &tmp_buf;
	}
	if (len > 255) {
		err = ENAMETOOLONG;
		goto out;
	}
	if (!dcfs_name_valid(name, len))
		goto out;
	child = dcfs_path_join(parent->path, name);
	if (!child) {
		err = ENOMEM;
		goto out;
	}
	switch (parent->kind) {
	case DCFS_ROOT:
		if (strcmp(name, DCFS_KEYS_DIR) == 0) {
			*kind = DCFS_KEYS;
			err = 0;
			break;
		}
		if (strcmp(name, DCFS_CTL_DIR) == 0) {
			*kind = DCFS_CTL;
			err = 0;
			break;
		}
		/* fall through */
	case DCFS_DIR:
		/* The directory wins over a key of the same name. */
		if (xd_contains(fs, child)) {
			*kind = DCFS_DIR;
			err = 0;
			break;
		}
		err = keys_below(fs, child, &found);
		if (err)
			break;
		if (found) {
			*kind = DCFS_DIR;
			break;
		}
		err = dcfs_key_item(fs, child, item, buf);
		*kind = DCFS_FILE;
		break;
	case DCFS_KEYS:
		if (dcfs_type_from_dir(name) != DC_TYPE_NONE) {
			*kind = DCFS_KEYS_TYPE;
			err = 0;
		}
		break;
	case DCFS_KEYS_TYPE:
		err = dcfs_key_item(fs, child, item, buf);
		*kind = DCFS_FILE;
		break;
	case DCFS_CTL:
		if (strcmp(name, "settings") == 0) {
			*kind = DCFS_CTL_SETTINGS;
			err = 0;
		} else if (dcfs_ctl_exists(0, name)) {
			*kind = DCFS_CTL_FILE;
			err = 0;
		}
		break;
	case DCFS_CTL_SETTINGS:
		if (dcfs_ctl_exists(1, name)) {
			*kind = DCFS_CTL_SETTING;
			err = 0;
		}
		break;
	default:
		err = ENOTDIR;
		break;
	}
out:
	if (err)
		free(child);
	else
		*path = child;
	dc_buf_release(&tmp_buf);
	return err;
}

/* ------------------------------------------------------------------ */
/* Listings                                                           */
/* ------------------------------------------------------------------ */

static int dir_add(struct dcfs_dir *dir, const char *name, size_t len,
		   enum dcfs_kind kind)
{
	struct dcfs_dirent *e;

	if (dir->n == dir->cap) {
		size_t cap = dir->cap ? dir->cap * 2 : 64;

		e = realloc(dir->ents, cap * sizeof(*e));
		if (!e)
			return ENOMEM;
		dir->ents = e;
		dir->cap = cap;
	}
	e = &dir->ents[dir->n];
	e->name = strndup(name, len);
	if (!e->name)
		return ENOMEM;
	e->kind = kind;
	dir->n++;
	return 0;
}

void dcfs_dir_release(struct dcfs_dir *dir)
{
	size_t i;

	if (!dir)
		return;
	for (i = 0; i < dir->n; i++)
		free(dir->ents[i].name);
	free(dir->ents);
	free(dir->path);
	dir->ents = NULL;
	dir->path = NULL;
	dir->n = dir->cap = 0;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct dcfs_dirent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* Directories first among equal names: they win. */
	if (!c)
		c = (y->kind == DCFS_DIR) - (x->kind == DCFS_DIR);
	return c;
}

/* Sort entries from @from on and drop duplicate names (the first, a
 * directory if there is one, stays). */
static void sort_unique(struct dcfs_dir *dir, size_t from)
{
	size_t i, out = from;

	if (dir->n - from < 2)
		return;
	qsort(dir->ents + from, dir->n - from, sizeof(*dir->ents), cmp_ent);
	for (i = from; i < dir->n; i++) {
		if (out > from &&
		    strcmp(dir->ents[out - 1].name, dir->ents[i].name) == 0) {
			free(dir->ents[i].name);
			continue;
		}
		dir->ents[out++] = dir->ents[i];
	}
	dir->n = out;
}

/* The children of ROOT or a DIR: the next component of every live key
 * that is a path below it, and explicit directories. */
static int list_tree(struct dcfs *fs, const char *path, struct dcfs_dir *dir)
{
	struct dcfs_xdirs *x = fs->xdirs;
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	dc_iter *it = NULL;
	size_t plen, first = dir->n, i, clen;
	char *prefix, *seek = NULL;
	const char *k, *slash;
	int rc = 0, err = 0;

	prefix = dir_prefix(path, &plen);
	if (!prefix)
		return ENOMEM;
	rc = dc_iter_open(fs->cache, DC_SORTED | DC_ALIVE, prefix, plen, &it);
	while (rc == 0 && !err) {
		rc = dc_iter_next(it, &buf, &item);
		if (rc)
			break;
		k = item.key.data;
		if (item.key.type != DC_TYPE_TEXT ||
		    !dcfs_key_is_path(k, item.key.len))
			continue;
		k += plen;
		slash = memchr(k, '/', item.key.len - plen);
		clen = slash ? (size_t)(slash - k) : item.key.len - plen;
		err = dir_add(dir, k, clen, slash ? DCFS_DIR : DCFS_FILE);
		if (err || !slash)
			continue;
		/* Skip the rest of this sub-directory: every key below
		 * "p/c/" sorts before "p/c/\xff" (0xFF never occurs in
		 * UTF-8). */
		free(seek);
		seek = malloc(plen + clen + 3);
		if (!seek) {
			err = ENOMEM;
			break;
		}
		memcpy(seek, prefix, plen);
		memcpy(seek + plen, k, clen);
		seek[plen + clen] = '/';
		seek[plen + clen + 1] = '\xff';
		dc_iter_seek(it, seek, plen + clen + 2);
	}
	if (!err && rc != DC_NOTFOUND)
		err = dcfs_errno(rc);
	dc_iter_close(it);
	dc_buf_release(&buf);
	free(seek);

	pthread_mutex_lock(&x->lock);
	for (i = xd_lower(x, prefix); !err && i < x->n; i++) {
		if (strncmp(x->v[i], prefix, plen) != 0)
			break;
		k = x->v[i] + plen;
		slash = strchr(k, '/');
		clen = slash ? (size_t)(slash - k) : strlen(k);
		err = dir_add(dir, k, clen, DCFS_DIR);
	}
	pthread_mutex_unlock(&x->lock);
	free(prefix);
	if (!err)
		sort_unique(dir, first);
	return err;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is the path key @k (in the sorted array @v) shadowed by a directory? */
static int is_shadowed(struct dcfs *fs, char **v, size_t n, const char *k)
{
	size_t lo = 0, hi = n, mid, klen = strlen(k);

	if (xd_contains(fs, k))
		return 1;
	/* Find the first entry > k; "k-x" may sort before "k/...", so walk
	 * while entries still start with k. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid], k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && strncmp(v[lo], k, klen) == 0; lo++)
		if (v[lo][klen] == '/')
			return 1;
	return 0;
}

/* .keys/<type>: every live key of that type, except text keys that are
 * reachable as paths and not shadowed. */
static int list_keys(struct dcfs *fs, enum dc_type type, struct dcfs_dir *dir)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	dc_iter *it = NULL;
	char name[256], **paths = NULL, **np;
	size_t npaths = 0, cap = 0, i, first = dir->n;
	int rc, n, err = 0;

	if (type == DC_TYPE_TEXT)
		rc = dc_iter_open(fs->cache, DC_SORTED | DC_ALIVE, "", 0, &it);
	else
		rc = dc_iter_open(fs->cache, DC_ALIVE, NULL, 0, &it);
	while (rc == 0 && !err) {
		rc = dc_iter_next(it, &buf, &item);
		if (rc)
			break;
		if (item.key.type != type)
			continue;
		if (type == DC_TYPE_TEXT &&
		    dcfs_key_is_path(item.key.data, item.key.len)) {
			if (npaths == cap) {
				cap = cap ? cap * 2 : 256;
				np = realloc(paths, cap * sizeof(*paths));
				if (!np) {
					err = ENOMEM;
					break;
				}
				paths = np;
			}
			paths[npaths] = strndup(item.key.data, item.key.len);
			if (!paths[npaths]) {
				err = ENOMEM;
				break;
			}
			npaths++;
			continue;
		}
		n = dcfs_key_escape(&item.key, name);
		if (n < 0) {
			/* Not reachable yet: see docs/fs.md, "Limits". */
			dcfs_log(FUSE_LOG_DEBUG, "a %s key's name is too long",
				 dcfs_type_dir(type));
			continue;
		}
		err = dir_add(dir, name, (size_t)n, DCFS_FILE);
	}
	if (!err && rc != DC_NOTFOUND)
		err = dcfs_errno(rc);
	dc_iter_close(it);
	dc_buf_release(&buf);

	if (npaths)
		qsort(paths, npaths, sizeof(*paths), cmp_strp);
	for (i = 0; i < npaths; i++) {
		if (!err && is_shadowed(fs, paths, npaths, paths[i])) {
			struct dc_value k = dc_text(paths[i]);

			n = dcfs_key_escape(&k, name);
			if (n >= 0)
				err = dir_add(dir, name, (size_t)n, DCFS_FILE);
		}
	}
	for (i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	if (!err)
		sort_unique(dir, first);
	return err;
}

int dcfs_dir_list(struct dcfs *fs, const struct dcfs_node *node,
		  struct dcfs_dir *dir)
{
	const char *const *names;
	const char *slash;
	int err, t;

	err = dir_add(dir, ".", 1, DCFS_DIR);
	if (!err)
		err = dir_add(dir, "..", 2, DCFS_DIR);
	if (err)
		goto out;
	switch (node->kind) {
	case DCFS_ROOT:
	case DCFS_DIR:
		/* .keys and .ctl are not listed in the root (so that find,
		 * cp -r and tar see each key once); they are always there
		 * by name. */
		err = list_tree(fs, node->path, dir);
		break;
	case DCFS_KEYS:
		for (t = DC_TYPE_INT; !err && t <= DC_TYPE_PICKLE; t++) {
			const char *d = dcfs_type_dir((enum dc_type)t);

			err = dir_add(dir, d, strlen(d), DCFS_KEYS_TYPE);
		}
		break;
	case DCFS_KEYS_TYPE:
		slash = strrchr(node->path, '/');
		err = list_keys(fs, dcfs_type_from_dir(slash ? slash + 1 : ""),
				dir);
		break;
	case DCFS_CTL:
		err = dir_add(dir, "settings", 8, DCFS_CTL_SETTINGS);
		for (names = dcfs_ctl_names(); !err && *names; names++)
			err =
			    dir_add(dir, *names, strlen(*names), DCFS_CTL_FILE);
		break;
	case DCFS_CTL_SETTINGS:
		for (names = dc_cache_setting_names(); !err && *names; names++)
			err = dir_add(dir, *names, strlen(*names),
				      DCFS_CTL_SETTING);
		break;
	default:
		err = ENOTDIR;
		break;
	}
out:
	if (err)
		dcfs_dir_release(dir);
	return err;
}

/* ------------------------------------------------------------------ */
/* Rewriting and renaming keys                                        */
/* ------------------------------------------------------------------ */

static int same_key(const struct dc_value *a, const struct dc_value *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case DC_TYPE_INT:
		return a->i == b->i;
	case DC_TYPE_FLOAT:
		return a->f == b->f;
	default:
		return a->len == b->len &&
		       memcmp(a->data, b->data, a->len) == 0;
	}
}

/* Parse rendered bytes as a value of type @type (data is borrowed). */
static int convert(const void *data, size_t len, enum dc_type type,
		   struct dc_value *out)
{
	size_t tlen = dcfs_trim(data, len);
	int err = 0;

	switch (type) {
	case DC_TYPE_INT:
		*out = dc_int(0);
		err = dcfs_parse_int64(data, tlen, &out->i) ? EINVAL : 0;
		break;
	case DC_TYPE_FLOAT:
		*out = dc_float(0);
		err = dcfs_parse_double(data, tlen, &out->f) ? EINVAL : 0;
		break;
	case DC_TYPE_TEXT:
		if (!dcfs_utf8_valid(data, len))
			err = EINVAL;
		*out = dc_textn(data, len);
		break;
	case DC_TYPE_BYTES:
		*out = dc_bytes(data, len);
		break;
	default:
		err = EINVAL;
		break;
	}
	return err;
}

int dcfs_convert_key(struct dcfs *fs, const struct dc_value *key,
		     enum dc_type type)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value value;
	char num[DCFS_NUM_MAX];
	const void *data;
	size_t len;
	int rc, err, began = 0;

	rc = dc_cache_begin(fs->cache, DC_RETRY);
	err = dcfs_errno(rc);
	if (err)
		goto out;
	began = 1;
	/* The whole value: it is parsed (or checked as UTF-8) anyway. */
	rc = dcfs_get_value(fs, key, &buf, &item, 0);
	err = dcfs_errno(rc);
	if (err)
		goto out;
	value = item.value;
	if (type != value.type) {
		len = dcfs_value_render(&value, num, &data);
		err = convert(data, len, type, &value);
		if (err)
			goto out;
	}
	rc = dc_cache_set(fs->cache, key, &value, DC_NO_EXPIRE,
			  item.tag.type == DC_TYPE_NONE ? NULL : &item.tag,
			  DC_RETRY);
	/* The expiry exactly as it was (set() takes seconds from now). */
	if (rc == 0 && !isnan(item.expire_time))
		rc = dc_cache_set_meta(fs->cache, key, DC_META_EXPIRE_TIME,
				       NULL, item.expire_time, DC_RETRY);
	err = dcfs_errno(rc);
out:
	if (began) {
		if (err)
			dc_cache_rollback(fs->cache);
		else
			err = dcfs_errno(dc_cache_commit(fs->cache));
	}
	dc_buf_release(&buf);
	return err;
}

static int rename_file(struct dcfs *fs, const char *from, const char *to,
		       int noreplace)
{
	struct dc_buf fbuf = DC_BUF_INIT, tbuf = DC_BUF_INIT;
	struct dc_value fkey, tkey;
	int err;

	err = dcfs_path_key(from, &fbuf, &fkey);
	if (err) {
		err = ENOENT;
		goto out;
	}
	err = dcfs_path_key(to, &tbuf, &tkey);
	if (err)
		goto out;
	/* Two names of one key (a/b and .keys/str/a%2Fb): nothing to do,
	 * as rename(2) of two links to one file. */
	if (same_key(&fkey, &tkey))
		goto out;
	/* The entry keeps its value (file), type, tag and times; nothing
	 * is copied.  DC_ADD makes RENAME_NOREPLACE atomic. */
	err = dcfs_errno(dc_cache_rename(fs->cache, &fkey, &tkey,
					 DC_RETRY | (noreplace ? DC_ADD : 0)));
out:
	dc_buf_release(&fbuf);
	dc_buf_release(&tbuf);
	return err;
}

/* Every key below directory @from moves below @to, in one transaction. */
static int rename_dir(struct dcfs *fs, const char *from, const char *to)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item item;
	struct dc_value fkey, tkey;
	dc_iter *it = NULL;
	char **keys = NULL, **nk, *prefix, *np;
	size_t nkeys = 0, cap = 0, plen, tlen = strlen(to), i;
	int rc, err = 0, began = 0;

	prefix = dir_prefix(from, &plen);
	if (!prefix)
		return ENOMEM;
	/* Collect first: iterating while moving would meet moved keys. */
	rc = dc_iter_open(fs->cache, DC_SORTED | DC_ALIVE, prefix, plen, &it);
	while (rc == 0 && !err) {
		rc = dc_iter_next(it, &buf, &item);
		if (rc || item.key.type != DC_TYPE_TEXT ||
		    !dcfs_key_is_path(item.key.data, item.key.len))
			continue;
		if (nkeys == cap) {
			cap = cap ? cap * 2 : 64;
			nk = realloc(keys, cap * sizeof(*keys));
			if (!nk) {
				err = ENOMEM;
				break;
			}
			keys = nk;
		}
		keys[nkeys] = strndup(item.key.data, item.key.len);
		if (!keys[nkeys])
			err = ENOMEM;
		else
			nkeys++;
	}
	if (!err && rc != DC_NOTFOUND)
		err = dcfs_errno(rc);
	dc_iter_close(it);
	dc_buf_release(&buf);
	if (err || !nkeys)
		goto out;
	err = dcfs_errno(dc_cache_begin(fs->cache, DC_RETRY));
	began = !err;
	for (i = 0; !err && i < nkeys; i++) {
		size_t rest = strlen(keys[i] + plen) + 1;

		np = malloc(tlen + 1 + rest);
		if (!np) {
			err = ENOMEM;
			break;
		}
		memcpy(np, to, tlen);
		np[tlen] = '/';
		memcpy(np + tlen + 1, keys[i] + plen, rest);
		fkey = dc_text(keys[i]);
		tkey = dc_text(np);
		rc = dc_cache_rename(fs->cache, &fkey, &tkey, DC_RETRY);
		/* One that expired since it was listed is simply gone. */
		err = rc == DC_NOTFOUND ? 0 : dcfs_errno(rc);
		free(np);
	}
	if (began) {
		if (err)
			dc_cache_rollback(fs->cache);
		else
			err = dcfs_errno(dc_cache_commit(fs->cache));
	}
out:
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(prefix);
	return err;
}

int dcfs_tree_rename(struct dcfs *fs, enum dcfs_kind kind, const char *from,
		     const char *to, int noreplace)
{
	struct dc_value key;
	int err;

	if (kind == DCFS_FILE) {
		if (dcfs_dir_exists(fs, to)) {
			err = EISDIR;
			goto out;
		}
		err = rename_file(fs, from, to, noreplace);
		goto out;
	}
	/* A directory: the target must be a path, not an existing key, and
	 * empty if it is a directory. */
	if (!dcfs_key_is_path(to, strlen(to))) {
		err = EINVAL;
		goto out;
	}
	key = dc_text(to);
	if (dc_cache_contains(fs->cache, &key) == 0) {
		err = noreplace ? EEXIST : ENOTDIR;
		goto out;
	}
	if (dcfs_dir_has_children(fs, to)) {
		err = noreplace ? EEXIST : ENOTEMPTY;
		goto out;
	}
	if (noreplace && xd_contains(fs, to)) {
		err = EEXIST;
		goto out;
	}
	err = rename_dir(fs, from, to);
	if (!err) {
		dcfs_xdir_remove(fs, to);
		err = dcfs_xdir_move(fs, from, to);
		/* An implied directory stays a directory even when it held
		 * only explicit (empty) directories or nothing. */
		if (!err && !dcfs_dir_has_children(fs, to))
			err = dcfs_xdir_add(fs, to);
	}
out:
	return err;
}
