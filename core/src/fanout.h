/* fanout.h - the public handle: a plain Cache or a FanoutCache (private)
 * SPDX-License-Identifier: MIT
 */
#ifndef DC_FANOUT_H
#define DC_FANOUT_H

#include "shard.h"

/* Name prefix of dc_cache_mkstemp() files, created at the top of the
 * cache directory (the FanoutCache root for a FanoutCache).  Python's
 * check() skips every path containing "cache.db", so it never reports
 * them, and no directory is left behind to look empty. */
#define DC_TMP_PREFIX "cache.db-tmp-"

struct dc_cache {
	char *dir;    /* as given to open */
	char *absdir; /* realpath, for dc_cache_mkstemp */
	int nshards;  /* 0 for a plain Cache */
	int n;        /* entries in shards[] (1 for a plain Cache) */
	struct dc_shard **shards;
	struct dc_logger log;
	int dirfd; /* O_PATH descriptor of dir */
	unsigned dir_mode;
	const struct dc_serializer *ser; /* borrowed; NULL: none */
};

/* check.c: report (and with @fix remove) stale temporary files. */
int dc_tmpdir_check(const struct dc_cache *cache, int fix, dc_warn_fn warn,
		    void *arg, uint64_t *nwarn);

/* serializer.c: run the handle's serializer.  dc_ser_store gives the
 * value to store in *out (data in @scratch, in *in, or the serializer's).
 * dc_ser_fetch replaces item->value, read with @flags into @buf, by the
 * fetched value, also in @buf; item->tag and, with @own_key, item->key
 * keep pointing at their data in @buf. */
int dc_ser_store(const struct dc_serializer *ser, const struct dc_value *in,
		 struct dc_buf *scratch, struct dc_value *out);
int dc_ser_fetch(const struct dc_serializer *ser, struct dc_buf *buf,
		 struct dc_item *item, unsigned flags, bool own_key);

#endif /* DC_FANOUT_H */
