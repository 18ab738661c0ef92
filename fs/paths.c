/* paths.c - key <-> path mapping and the frozen escaping of .keys/ names
 * SPDX-License-Identifier: MIT
 *
 * A text key whose '/'-separated parts are all valid names is its own
 * path.  Every key, whatever its type, also has a name inside
 * .keys/<type>/, and that escaping is frozen (docs/fs.md "Escaping"):
 * changing it would rename every file a user ever scripted against.
 *
 *   int     decimal, as Python's str(): 42, -7
 *   float   Python's repr(): 2.5, 1e+16, -inf
 *   str, bytes, pickle
 *           the key's bytes; a byte is kept as is when it is printable
 *           ASCII (0x21..0x7E) other than '%' and '/', and is not a '.'
 *           starting the name; every other byte becomes %XX (upper-case
 *           hex).  The empty key is the name "%".
 *
 * Only the canonical spelling is accepted back, so every name names at
 * most one key and every key has exactly one name.
 */
#include "dcfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_dirs[] = {
	[DC_TYPE_INT] = "int",       [DC_TYPE_FLOAT] = "float",
	[DC_TYPE_TEXT] = "str",      [DC_TYPE_BYTES] = "bytes",
	[DC_TYPE_PICKLE] = "pickle",
};

int dcfs_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	if (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))
		return 0;
	return !memchr(name, '/', len) && !memchr(name, '\0', len);
}

static int is_reserved(const char *name, size_t len)
{
	return (len == sizeof(DCFS_KEYS_DIR) - 1 &&
		memcmp(name, DCFS_KEYS_DIR, len) == 0) ||
	       (len == sizeof(DCFS_CTL_DIR) - 1 &&
		memcmp(name, DCFS_CTL_DIR, len) == 0);
}

int dcfs_key_is_path(const char *key, size_t len)
{
	const char *p = key, *end = key + len, *slash;
	int first = 1;

	if (len == 0)
		return 0;
	for (;;) {
		slash = memchr(p, '/', (size_t)(end - p));
		if (!slash)
			slash = end;
		if (!dcfs_name_valid(p, (size_t)(slash - p)))
			return 0;
		if (first && is_reserved(p, (size_t)(slash - p)))
			return 0;
		first = 0;
		if (slash == end)
			return 1;
		p = slash + 1;
	}
}

const char *dcfs_type_dir(enum dc_type type)
{
	if (type <= DC_TYPE_NONE || type > DC_TYPE_PICKLE)
		return NULL;
	return type_dirs[type];
}

enum dc_type dcfs_type_from_dir(const char *name)
{
	int t;

	for (t = DC_TYPE_INT; t <= DC_TYPE_PICKLE; t++)
		if (strcmp(name, type_dirs[t]) == 0)
			return (enum dc_type)t;
	return DC_TYPE_NONE;
}

static int byte_is_kept(unsigned char c, size_t pos)
{
	if (c < 0x21 || c > 0x7e || c == '%' || c == '/')
		return 0;
	return !(c == '.' && pos == 0);
}

int dcfs_key_escape(const struct dc_value *key, char out[256])
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = key->data;
	size_t i, n = 0;
	int rc;

	switch (key->type) {
	case DC_TYPE_INT:
	case DC_TYPE_FLOAT: {
		const void *data;
		char num[DCFS_NUM_MAX];

		n = dcfs_value_render(key, num, &data);
		memcpy(out, data, n + 1);
		rc = (int)n;
		goto out;
	}
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		break;
	default:
		rc = -EINVAL;
		goto out;
	}
	if (key->len == 0) {
		out[n++] = '%';
	} else {
		for (i = 0; i < key->len; i++) {
			if (n + 3 > 255) {
				rc = -ENAMETOOLONG;
				goto out;
			}
			if (byte_is_kept(p[i], i)) {
				out[n++] = (char)p[i];
			} else {
				out[n++] = '%';
				out[n++] = hex[p[i] >> 4];
				out[n++] = hex[p[i] & 15];
			}
		}
	}
	out[n] = '\0';
	rc = (int)n;
out:
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* lower case is not canonical */
}

/* Python's UTF-8 decoder: no overlong forms, no surrogates, at most
 * U+10FFFF.  A text key must decode in Python. */
int dcfs_utf8_valid(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + n >= len)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

static int buf_reserve(struct dc_buf *buf, size_t size)
{
	char *p;

	if (buf->cap >= size)
		return 0;
	p = realloc(buf->data, size);
	if (!p)
		return ENOMEM;
	buf->data = p;
	buf->cap = size;
	return 0;
}

static int unescape_bytes(const char *name, struct dc_buf *buf, size_t *len)
{
	size_t i, n = 0, nlen = strlen(name);
	int hi, lo, err;

	err = buf_reserve(buf, nlen + 1);
	if (err)
		goto out;
	if (strcmp(name, "%") == 0)
		goto done;
	for (i = 0; i < nlen; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c != '%') {
			if (!byte_is_kept(c, n))
				goto bad;
			buf->data[n++] = (char)c;
			continue;
		}
		if (i + 2 >= nlen)
			goto bad;
		hi = hexval(name[i + 1]);
		lo = hexval(name[i + 2]);
		if (hi < 0 || lo < 0)
			goto bad;
		c = (unsigned char)(hi << 4 | lo);
		/* %41 for "A" would be a second name of the same key. */
		if (byte_is_kept(c, n))
			goto bad;
		buf->data[n++] = (char)c;
		i += 2;
	}
done:
	buf->data[n] = '\0';
	buf->len = n;
	*len = n;
	goto out;
bad:
	err = EINVAL;
out:
	return err;
}

int dcfs_name_unescape(enum dc_type type, const char *name, struct dc_buf *buf,
		       struct dc_value *key)
{
	char canon[256];
	size_t len;
	int err;

	switch (type) {
	case DC_TYPE_INT:
		err = dcfs_parse_int64(name, strlen(name), &key->i);
		if (err)
			break;
		key->type = DC_TYPE_INT;
		break;
	case DC_TYPE_FLOAT:
		err = dcfs_parse_double(name, strlen(name), &key->f);
		if (err || isnan(key->f)) {
			err = EINVAL;
			break;
		}
		key->type = DC_TYPE_FLOAT;
		break;
	case DC_TYPE_TEXT:
	case DC_TYPE_BYTES:
	case DC_TYPE_PICKLE:
		err = unescape_bytes(name, buf, &len);
		if (err)
			goto out;
		if (type == DC_TYPE_TEXT && !dcfs_utf8_valid(buf->data, len)) {
			err = EINVAL;
			goto out;
		}
		key->type = type;
		key->data = buf->data;
		key->len = len;
		goto out;
	default:
		err = EINVAL;
		goto out;
	}
	/* Numbers: only the canonical spelling ("5", not "05" or "+5"). */
	if (!err && (dcfs_key_escape(key, canon) < 0 || strcmp(canon, name)))
		err = EINVAL;
out:
	return err;
}

int dcfs_path_key(const char *path, struct dc_buf *buf, struct dc_value *key)
{
	static const char keys_prefix[] = DCFS_KEYS_DIR "/";
	const char *rest, *slash;
	char dir[16];
	enum dc_type type;
	int err = EINVAL;

	if (strncmp(path, keys_prefix, sizeof(keys_prefix) - 1) != 0) {
		*key = dc_text(path);
		err = dcfs_key_is_path(path, key->len) ? 0 : EINVAL;
		goto out;
	}
	rest = path + sizeof(keys_prefix) - 1;
	slash = strchr(rest, '/');
	if (!slash || (size_t)(slash - rest) >= sizeof(dir) ||
	    strchr(slash + 1, '/'))
		goto out;
	memcpy(dir, rest, (size_t)(slash - rest));
	dir[slash - rest] = '\0';
	type = dcfs_type_from_dir(dir);
	if (type == DC_TYPE_NONE)
		goto out;
	err = dcfs_name_unescape(type, slash + 1, buf, key);
out:
	return err;
}

char *dcfs_path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p = malloc(dl + nl + 2);

	if (!p)
		return NULL;
	if (dl) {
		memcpy(p, dir, dl);
		p[dl++] = '/';
	}
	memcpy(p + dl, name, nl + 1);
	return p;
}
