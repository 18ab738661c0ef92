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
};

/* check.c: report (and with @fix remove) stale temporary files. */
int dc_tmpdir_check(const struct dc_cache *cache, int fix, dc_warn_fn warn,
		    void *arg, uint64_t *nwarn);

#endif /* DC_FANOUT_H */
