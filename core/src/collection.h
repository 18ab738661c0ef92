/* collection.h - shared helpers of the Deque and Index layers (private)
 * SPDX-License-Identifier: MIT
 */
#ifndef DC_COLLECTION_H
#define DC_COLLECTION_H

#include "dcache.h"

/* dc_coll_open - open @dir (or, with @parent, its sub-collection @kind
 * NAME = @dir) as a plain Cache with eviction_policy "none" prepended to
 * the caller's settings, as Python's Deque and Index do. */
int dc_coll_open(dc_cache *parent, enum dc_sub kind, const char *dir,
		 const struct dc_options *opts, dc_cache **out);

#endif /* DC_COLLECTION_H */
