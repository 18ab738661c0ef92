/* serializer.c - custom value serialization (DiskCache's Disk subclasses)
 * SPDX-License-Identifier: MIT
 *
 * The public layer (fanout.c) passes the values of set/add/push through
 * the handle's store() and those of get/pop/pull/peek/peekitem through
 * fetch().  The glue here keeps the contract of struct dc_item: the
 * fetched value, the tag and the key all end up in the caller's buffer.
 * Beside it lives the ready-made zlib serializer, byte-compatible with
 * Python's zlib.compress/zlib.decompress.
 */
#include "fanout.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* Glue used by the public layer                                      */
/* ------------------------------------------------------------------ */

static bool has_data(const struct dc_value *v)
{
	return v->type == DC_TYPE_TEXT || v->type == DC_TYPE_BYTES ||
	       v->type == DC_TYPE_PICKLE;
}

int dc_ser_store(const struct dc_serializer *ser, const struct dc_value *in,
		 struct dc_buf *scratch, struct dc_value *out)
{
	/* Starting from the caller's value makes "leave it alone" the
	 * default for a store() that returns 0 without writing *out. */
	*out = *in;
	if (!ser->store)
		return 0;
	return ser->store(ser->arg, in, scratch, out);
}

/* Does [p, p + len) lie inside [base, base + size)?  Compared as
 * integers: the pointers may belong to unrelated objects. */
static bool inside(const void *p, size_t len, const void *base, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

	return base && p && a >= b && a - b <= size && len <= size - (a - b);
}

/* Append @v's data (and a NUL) to @buf at *pos and point @v at it.  The
 * caller reserved the room. */
static void move_data(struct dc_buf *buf, size_t *pos, struct dc_value *v)
{
	if (v->len)
		memcpy(buf->data + *pos, v->data, v->len);
	buf->data[*pos + v->len] = '\0';
	v->data = buf->data + *pos;
	*pos += v->len + 1;
}

/* The fetched value @out does not lie in the raw value: gather it, the
 * tag and (@key not NULL) the key into @tmp -- the value stays where it
 * is when fetch() wrote it into @tmp -- and make @tmp the caller's
 * buffer.  The caller's old memory, which the tag and key pointed into,
 * goes back in @tmp, to be released by the caller. */
static int rebuild(struct dc_buf *buf, struct dc_buf *tmp, struct dc_value *out,
		   struct dc_value *key, struct dc_value *tag)
{
	bool adopt = inside(out->data, out->len, tmp->data, tmp->cap);
	size_t off = 0, pos, need, extra[2] = { 0, 0 };
	struct dc_buf swap;
	int rc;

	if (adopt)
		off = (size_t)((uintptr_t)out->data - (uintptr_t)tmp->data);
	if (key)
		extra[0] = key->len;
	if (tag)
		extra[1] = tag->len;
	/* Lengths of data held in memory cannot add up to SIZE_MAX, but
	 * a serializer may report anything. */
	need = off;
	if (out->len > SIZE_MAX - 3 - need)
		return DC_INVAL;
	need += out->len + 3;
	for (int i = 0; i < 2; i++) {
		if (extra[i] > SIZE_MAX - need)
			return DC_INVAL;
		need += extra[i];
	}
	rc = dc_buf_reserve(tmp, need);
	if (rc)
		return rc;
	if (!adopt && out->len)
		memcpy(tmp->data, out->data, out->len);
	tmp->data[off + out->len] = '\0';
	out->data = tmp->data + off;
	pos = off + out->len + 1;
	if (key)
		move_data(tmp, &pos, key);
	if (tag)
		move_data(tmp, &pos, tag);
	tmp->len = pos;
	swap = *buf;
	*buf = *tmp;
	*tmp = swap;
	return 0;
}

int dc_ser_fetch(const struct dc_serializer *ser, struct dc_buf *buf,
		 struct dc_item *item, unsigned flags, bool own_key)
{
	struct dc_buf tmp = DC_BUF_INIT;
	struct dc_value in, out;
	int rc = 0;

	/* Metadata only, or a descriptor: the stored bytes are the
	 * caller's to interpret (Python's read=True). */
	if (!ser->fetch || (flags & DC_NOVALUE) || item->fd >= 0)
		goto out;
	in = item->value;
	out = in;
	rc = ser->fetch(ser->arg, &in, &tmp, &out);
	if (rc)
		goto out;
	if (out.type < DC_TYPE_NONE || out.type > DC_TYPE_PICKLE ||
	    (has_data(&out) && out.len && !out.data)) {
		rc = DC_INVAL;
		goto out;
	}
	if (!has_data(&out)) {
		out.data = NULL;
		out.len = 0;
	} else if (has_data(&in) &&
		   inside(out.data, out.len, in.data, in.len)) {
		/* A part of the raw value, which lies in @buf followed by
		 * its NUL: terminate it where it ends. */
		((char *)(uintptr_t)out.data)[out.len] = '\0';
	} else {
		rc =
		    rebuild(buf, &tmp, &out,
			    own_key && has_data(&item->key) ? &item->key : NULL,
			    has_data(&item->tag) ? &item->tag : NULL);
		if (rc)
			goto out;
	}
	item->value = out;
out:
	dc_buf_release(&tmp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* dc_serializer_zlib                                                 */
/* ------------------------------------------------------------------ */

/* Python's zlib.compress(data, level) is deflateInit(level) with 15
 * window bits, memory level 8 and the default strategy, as compress2().
 * At levels 1-9 that fixes the bytes; at level 0 the stored blocks end
 * wherever deflate ran out of output space, so to produce the same bytes
 * we hand out the output as CPython 3.11 (Debian bookworm's python3)
 * does: blocks of these sizes (BUFFER_BLOCK_SIZE in
 * pycore_blocks_output_buffer.h), the last one repeated, and the input
 * in pieces of at most UINT_MAX bytes (arrange_input_buffer). */
static const uInt py_blocks[] = {
	32u << 10, 64u << 10, 256u << 10, 1u << 20,   4u << 20,   8u << 20,
	16u << 20, 16u << 20, 32u << 20,  32u << 20,  32u << 20,  32u << 20,
	64u << 20, 64u << 20, 128u << 20, 128u << 20, 256u << 20,
};

/* A deflate stream kept per thread: deflateInit allocates about 256 KiB
 * of state that a fresh stream per value would fault in again every time
 * (measured: reuse halves the cost of compressing a 4 KiB value).
 * deflateReset gives exactly the output of a fresh stream.  The stream is
 * freed when its thread exits; the _Thread_local pointer keeps it
 * reachable (and visible to leak checkers) until then.  The key's
 * destructor lives in this library, which is therefore linked with
 * -z nodelete: dlclose() must not unmap it under a running thread. */
struct zstream {
	z_stream zs;
	int level;
};

static pthread_key_t zstream_key;
static pthread_once_t zstream_once = PTHREAD_ONCE_INIT;
static bool zstream_key_ok;
static _Thread_local struct zstream *zstream_mine;

static void zstream_free(void *p)
{
	struct zstream *z = p;

	deflateEnd(&z->zs);
	free(z);
	zstream_mine = NULL;
}

static void zstream_key_init(void)
{
	zstream_key_ok = pthread_key_create(&zstream_key, zstream_free) == 0;
}

/* This thread's stream at @level, reset, in *zs; or, when no stream can
 * be kept, @local initialised (then *kept is false: the caller ends it).
 * A z_stream cannot be copied once initialised (its state points back at
 * it), so a kept one is initialised where it lives. */
static int zstream_get(int level, z_stream *local, z_stream **zs, bool *kept)
{
	struct zstream *z = zstream_mine;
	int zrc;

	*kept = false;
	if (z && z->level == level && deflateReset(&z->zs) == Z_OK) {
		*zs = &z->zs;
		*kept = true;
		return 0;
	}
	pthread_once(&zstream_once, zstream_key_init);
	if (z) {
		/* Another level (or a failed reset): replace it. */
		pthread_setspecific(zstream_key, NULL);
		zstream_free(z);
		z = NULL;
	}
	if (zstream_key_ok)
		z = calloc(1, sizeof(*z));
	if (z && pthread_setspecific(zstream_key, z)) {
		free(z);
		z = NULL;
	}
	*zs = z ? &z->zs : local;
	memset(*zs, 0, sizeof(**zs));
	zrc = deflateInit(*zs, level);
	if (zrc != Z_OK) {
		if (z) {
			pthread_setspecific(zstream_key, NULL);
			free(z);
		}
		return zrc == Z_MEM_ERROR ? ENOMEM : DC_INVAL;
	}
	if (z) {
		z->level = level;
		zstream_mine = z;
		*kept = true;
	}
	return 0;
}

/* zlib.compress of @in into @buf; *done is the length written. */
static int deflate_all(const struct dc_value *in, int level, struct dc_buf *buf,
		       size_t *done)
{
	size_t left = in->len, nblocks = 0;
	int rc, zrc = Z_OK, flush;
	uInt block;
	z_stream local, *zsp;
	bool kept;

	rc = zstream_get(level, &local, &zsp, &kept);
	if (rc)
		return rc;
	/* deflateReset leaves the output pointers of the last value. */
	zsp->next_out = NULL;
	zsp->avail_out = 0;
	zsp->next_in = (Bytef *)(uintptr_t)(in->len ? in->data : "");
	do {
		zsp->avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
		left -= zsp->avail_in;
		flush = left ? Z_NO_FLUSH : Z_FINISH;
		do {
			if (zsp->avail_out == 0) {
				block =
				    py_blocks[nblocks < DC_ARRAY_SIZE(py_blocks)
						  ? nblocks
						  : DC_ARRAY_SIZE(py_blocks) -
							1];
				nblocks++;
				if (*done > SIZE_MAX - 1 - block) {
					rc = ENOMEM;
					goto out;
				}
				rc = dc_buf_reserve(buf, *done + block + 1);
				if (rc)
					goto out;
				zsp->next_out = (Bytef *)buf->data + *done;
				zsp->avail_out = block;
			}
			zrc = deflate(zsp, flush);
			*done = (size_t)((char *)zsp->next_out - buf->data);
			if (zrc == Z_STREAM_ERROR) {
				rc = DC_INVAL;
				goto out;
			}
		} while (zsp->avail_out == 0);
	} while (flush != Z_FINISH);
	if (zrc != Z_STREAM_END)
		rc = DC_INVAL;
out:
	if (!kept)
		deflateEnd(zsp);
	return rc;
}

/* Room for inflate's next step: double the buffer (keeping a byte for
 * the NUL), checking for overflow rather than trusting a stream's claim
 * of how big it will get.  A value that inflates beyond memory fails
 * with ENOMEM, as Python's zlib.decompress raises MemoryError. */
static int grow(struct dc_buf *buf, size_t done)
{
	size_t want;

	if (buf->cap - done > 1)
		return 0;
	if (buf->cap > SIZE_MAX / 2)
		return ENOMEM;
	want = buf->cap ? buf->cap * 2 : 256;
	return dc_buf_reserve(buf, want);
}

/* zlib.decompress of @in into @buf; *done is the length written. */
static int inflate_all(const struct dc_value *in, int level, struct dc_buf *buf,
		       size_t *done)
{
	const Bytef *next = in->data;
	size_t left = in->len, room, guess;
	z_stream zs;
	int rc = 0, zrc;

	(void)level;
	memset(&zs, 0, sizeof(zs));
	zrc = inflateInit(&zs);
	if (zrc != Z_OK)
		return zrc == Z_MEM_ERROR ? ENOMEM : DC_INVAL;
	/* A first guess of 4:1, then doubling: few reallocs for typical
	 * data, and a hostile stream can make us allocate only as we go. */
	guess = in->len < ((size_t)1 << 24) ? in->len * 4 : (size_t)1 << 26;
	rc = dc_buf_reserve(buf, guess < 256 ? 256 : guess);
	if (rc)
		goto out;
	for (;;) {
		rc = grow(buf, *done);
		if (rc)
			goto out;
		room = buf->cap - *done - 1;
		zs.next_out = (Bytef *)buf->data + *done;
		zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		if (zs.avail_in == 0 && left) {
			zs.next_in = (Bytef *)(uintptr_t)next;
			zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
			next += zs.avail_in;
			left -= zs.avail_in;
		}
		zrc = inflate(&zs, Z_NO_FLUSH);
		*done = (size_t)((char *)zs.next_out - buf->data);
		if (zrc == Z_STREAM_END)
			break; /* trailing bytes are ignored, as in Python */
		if (zrc == Z_OK)
			continue;
		if (zrc == Z_BUF_ERROR && zs.avail_out == 0)
			continue; /* only out of room: grow() */
		/* Z_BUF_ERROR with room left means the input ended early:
		 * Python's "incomplete or truncated stream". */
		rc = zrc == Z_MEM_ERROR ? ENOMEM : DC_CORRUPT;
		goto out;
	}
out:
	inflateEnd(&zs);
	return rc;
}

/* Both directions: a BYTES value goes through @code into @buf, followed
 * by a NUL; any other value passes through unchanged. */
static int zlib_code(int (*code)(const struct dc_value *in, int level,
				 struct dc_buf *buf, size_t *done),
		     int level, const struct dc_value *in, struct dc_buf *buf,
		     struct dc_value *out)
{
	size_t done = 0;
	int rc = 0;

	*out = *in;
	if (in->type != DC_TYPE_BYTES)
		goto out;
	if (in->len && !in->data) {
		rc = DC_INVAL;
		goto out;
	}
	rc = code(in, level, buf, &done);
	if (rc)
		goto out;
	buf->data[done] = '\0';
	buf->len = done + 1;
	*out = dc_bytes(buf->data, done);
out:
	return rc;
}

static int zlib_store(void *arg, const struct dc_value *in, struct dc_buf *buf,
		      struct dc_value *out)
{
	return zlib_code(deflate_all, *(const int *)arg, in, buf, out);
}

static int zlib_fetch(void *arg, const struct dc_value *in, struct dc_buf *buf,
		      struct dc_value *out)
{
	(void)arg;
	return zlib_code(inflate_all, 0, in, buf, out);
}

/* One static instance per level; arg points at the level. */
static int zlib_levels[] = { -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

#define ZLIB_SER(i)                                                            \
	{                                                                      \
		zlib_store, zlib_fetch, &zlib_levels[i]                        \
	}

static const struct dc_serializer zlib_sers[] = {
	ZLIB_SER(0), ZLIB_SER(1), ZLIB_SER(2),  ZLIB_SER(3),
	ZLIB_SER(4), ZLIB_SER(5), ZLIB_SER(6),  ZLIB_SER(7),
	ZLIB_SER(8), ZLIB_SER(9), ZLIB_SER(10),
};

const struct dc_serializer *dc_serializer_zlib(int level)
{
	if (level < -1 || level > 9)
		return NULL;
	return &zlib_sers[level + 1];
}
