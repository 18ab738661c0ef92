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

/* dc_coll_cmp - Python's comparison of two items (deque.c): numbers by
 * value (int against float exactly), text with text and bytes with bytes
 * in byte order, None equal to None, pickles equal only byte for byte.
 * Returns 0 and sets *cmp (-1, 0, 1), or DC_TYPE when Python could not
 * order them (then they are unequal). */
int dc_coll_cmp(const struct dc_value *a, const struct dc_value *b, int *cmp);

#endif /* DC_COLLECTION_H */
