/* pickle.h - Python pickles of flat tuples, byte for byte as CPython 3.11
 * writes them (the memoize keys and the recipes' stored tuples)
 * SPDX-License-Identifier: MIT
 *
 * DiskCache stores a key that is not str/bytes/int/float, and a value that
 * is not one of those either, as a pickle: memoize keys are tuples, RLock
 * stores (owner, count), Averager (total, count), throttle (time, tally),
 * memoize_stampede (result, seconds).  To address or share them with
 * Python, the C side must write exactly the bytes Python writes:
 *   values: pickle.dumps(obj, protocol=P)            (the C _pickle module)
 *   keys:   pickletools.optimize(pickle.dumps(obj, protocol=P))
 * and read them back.  Only what those uses need is supported: None,
 * bool, int64, float, str, bytes, builtin types (typed memoize), and a
 * tuple of them (nested tuples for writing only); every protocol, 0 to
 * 5, for writing and for reading. */
#ifndef DC_PICKLE_H
#define DC_PICKLE_H

#include "dcache.h"

enum dc_py_kind {
	DC_PY_NONE = 0,
	DC_PY_BOOL = 1,  /* i: 0 or 1 */
	DC_PY_INT = 2,   /* i */
	DC_PY_FLOAT = 3, /* f */
	DC_PY_STR = 4,   /* data, len: UTF-8 */
	DC_PY_BYTES = 5, /* data, len */
	/* A builtin type object: data, len = its name in module builtins
	 * ("int", "float", "str", "bytes", "bool", "NoneType"), as typed
	 * memoize keys hold type(arg). */
	DC_PY_TYPE = 6,
	/* dc_pickle_dumps only: a nested tuple of @len items at @items. */
	DC_PY_TUPLE = 7,
};

/* One Python object.  As an input, data is borrowed for the call; as an
 * output of dc_unpickle_tuple it points into the pickle bytes. */
struct dc_py {
	enum dc_py_kind kind;
	int64_t i;
	double f;
	const char *data;
	size_t len;
	const struct dc_py *items; /* DC_PY_TUPLE */
};

/* dc_pickle_dumps - append to @out (from out->len on; out->len grows)
 * the pickle of @items: the tuple of @n items (@tuple 1), or the single
 * object items[0] (@tuple 0, @n 1).  @optimize 1 gives
 * pickletools.optimize()'s output (keys), 0 pickle.dumps()'s (values).
 * Objects are shared (written once, then fetched from the memo) as
 * CPython shares them: a builtin type and the module name "builtins" of
 * type globals; the empty str and bytes, str of one code point below 256
 * and bytes of length 1 (CPython's singletons).  Other equal str or bytes
 * items are written twice, as Python does for two distinct objects.
 * Type names "ellipsis" and "NotImplementedType" are not supported.
 * Below protocol 3 bytes are pickled as CPython does, as the call
 * _codecs.encode(<the bytes as a Latin-1 str>, 'latin1') (b'': bytes()),
 * and type globals get their Python 2 names (__builtin__.long for int);
 * protocol 0 writes ints, floats (repr()) and memo ids in decimal and
 * str raw-unicode-escaped.
 * Returns 0, DC_INVAL (protocol not 0 to 5, a bad item, invalid UTF-8, a
 * non-ASCII type name below protocol 3), ENOMEM.  On error out->len is
 * restored. */
int dc_pickle_dumps(const struct dc_py *items, size_t n, int tuple,
		    int protocol, int optimize, struct dc_buf *out);

/* dc_unpickle - parse a pickle (any protocol 0-5) of a flat tuple of the
 * kinds above (@items receives up to @max items, *n their number), or of
 * one such object (*n 1, *is_tuple 0).  Memo references (GET) are
 * resolved, and so are the reduces CPython writes for bytes below
 * protocol 3.  Integers outside int64 are DC_TYPE, and so is a str with a
 * lone surrogate (not UTF-8) or a Python 2 STRING with escapes.
 * Item data points into the pickle, to static strings ("NoneType", ""),
 * or -- for what had to be decoded: protocol 0's raw-unicode-escaped
 * str, bytes from Latin-1 -- into @text, whose contents are replaced
 * (the caller releases it once done with the items).
 * Returns 0, DC_TYPE (a well-formed pickle of something else: a list, a
 * nested tuple, another class), DC_CORRUPT (truncated or malformed),
 * DC_INVAL (more than @max items, no @text), ENOMEM. */
int dc_unpickle(const void *data, size_t len, struct dc_py *items, size_t max,
		size_t *n, int *is_tuple, struct dc_buf *text);

/* dc_pickle_protocol - the protocol Python's Disk pickles with on
 * @cache: its disk_pickle_protocol setting as read at open (or by the
 * last dc_cache_setting_get/set of it), as Python's Disk keeps it, where a
 * negative value means pickle.HIGHEST_PROTOCOL, 5 (as in pickle.dumps).
 * A FanoutCache uses shard 0's.  Returns 0, or DC_INVAL (above 5 or not
 * an integer: Python's pickle.dumps raises ValueError or TypeError, so
 * nothing can be pickled on that cache). */
int dc_pickle_protocol(dc_cache *cache, int *proto);

#endif /* DC_PICKLE_H */
