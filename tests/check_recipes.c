/* check_recipes.c - Lock, RLock, BoundedSemaphore, Averager, throttle and
 * barrier: Python DiskCache's recipe behaviours (spec §9, §13.5)
 * SPDX-License-Identifier: MIT
 *
 * Driven through dcache.h only; each test gets a fresh directory.  The
 * stored values are compared byte for byte with what Python's
 * pickle.dumps writes (hand-encoded here, independent of the library's
 * codec).  The stress tests make lost updates likely without the lock (a
 * read, a pause, a write) and count holders in shared memory.
 */
#include "dcache.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Suite *recipes_suite(void);

#define FOREVER DC_WAIT_FOREVER

static char *root;
static dc_cache *cache;

/* open_dir's protocol for "leave the default (5)". */
#define PROTO_DEFAULT 99

static dc_cache *open_dir(const char *dir, int shards, int protocol)
{
	struct dc_setting set = { "disk_pickle_protocol", dc_int(protocol) };
	struct dc_options o;
	dc_cache *c = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.shards = shards;
	if (protocol != PROTO_DEFAULT) {
		o.settings = &set;
		o.nsettings = 1;
	}
	rc = dc_cache_open(dir, &o, &c);
	ck_assert_msg(rc == 0, "open %s: %s", dir, dc_strerror(rc));
	return c;
}

static void setup(void)
{
	root = tu_mkdtemp();
	cache = open_dir(root, DC_SHARDS_PLAIN, PROTO_DEFAULT);
}

static void setup_fanout(void)
{
	root = tu_mkdtemp();
	cache = open_dir(root, 3, PROTO_DEFAULT);
}

static void teardown(void)
{
	dc_cache_close(cache);
	cache = NULL;
	tu_rmdtemp(&root);
}

static struct dc_recipe recipe(dc_cache *c, const char *key)
{
	struct dc_recipe r;

	memset(&r, 0, sizeof(r));
	r.cache = c;
	r.key = dc_text(key);
	return r;
}

/* An atomic's value, for readable assertion messages. */
static int ld(atomic_int *p)
{
	return atomic_load(p);
}

/* The stored value of @key, which must exist, into @buf/@it. */
static void stored(dc_cache *c, const char *key, struct dc_buf *buf,
		   struct dc_item *it)
{
	struct dc_value k = dc_text(key);
	int rc;

	tu_item_init(it);
	rc = dc_cache_get(c, &k, buf, it, 0);
	ck_assert_msg(rc == 0, "get %s: %s", key, dc_strerror(rc));
}

static void assert_stored_pickle(dc_cache *c, const char *key,
				 const unsigned char *want, size_t len)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	char hex[512] = "";

	stored(c, key, &buf, &it);
	ck_assert_int_eq(it.value.type, DC_TYPE_PICKLE);
	for (size_t i = 0; i < it.value.len && 2 * i + 3 < sizeof(hex); i++)
		snprintf(hex + 2 * i, 3, "%02x",
			 ((const unsigned char *)it.value.data)[i]);
	ck_assert_msg(it.value.len == len &&
			  memcmp(it.value.data, want, len) == 0,
		      "stored pickle %s differs", hex);
	dc_buf_release(&buf);
}

static void put(dc_cache *c, const char *key, struct dc_value v)
{
	struct dc_value k = dc_text(key);

	ck_assert_int_eq(dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, 0), 0);
}

/* pickle.dumps((first, n), protocol=5) for a str or float first item
 * and 0 <= n < 256, as CPython writes it: PROTO 5, FRAME, the item,
 * MEMOIZE after a str, BININT1 n, TUPLE2, MEMOIZE, STOP. */
static size_t pk_frame(unsigned char *out, size_t body)
{
	out[0] = 0x80;
	out[1] = 5;
	out[2] = 0x95;
	for (int i = 0; i < 8; i++)
		out[3 + i] = (unsigned char)(body >> (8 * i));
	return 11;
}

/* The end from BININT1 n on, written at @p. */
static size_t pk_int_end(unsigned char *out, size_t p, int n)
{
	out[p++] = 'K';
	out[p++] = (unsigned char)n;
	out[p++] = 0x86;
	out[p++] = 0x94;
	out[p++] = '.';
	return p;
}

static size_t pk_str_int(unsigned char *out, const char *s, int n)
{
	size_t len = strlen(s), p;

	p = pk_frame(out, len + 8);
	out[p++] = 0x8c;
	out[p++] = (unsigned char)len;
	memcpy(out + p, s, len);
	p += len;
	out[p++] = 0x94;
	return pk_int_end(out, p, n);
}

static size_t pk_float_int(unsigned char *out, double f, int n)
{
	uint64_t bits;
	size_t p;

	memcpy(&bits, &f, sizeof(bits));
	p = pk_frame(out, 14);
	out[p++] = 'G';
	for (int i = 7; i >= 0; i--)
		out[p++] = (unsigned char)(bits >> (8 * i));
	return pk_int_end(out, p, n);
}

static const char *my_owner(void)
{
	static __thread char buf[64];

	snprintf(buf, sizeof(buf), "%ld-%lu", (long)getpid(),
		 (unsigned long)pthread_self());
	return buf;
}

/* ------------------------------------------------------------------ */
/* Averager                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_averager_numbers)
{
	struct dc_recipe r = recipe(cache, "avg");
	double avg;

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(dc_averager_add(&r, i), 0);
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 4.5);
	ck_assert_int_eq(dc_averager_pop(&r, &avg), 0);
	ck_assert(avg == 4.5);
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_NOTFOUND);
	ck_assert_int_eq(dc_averager_pop(&r, &avg), DC_NOTFOUND);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(dc_averager_add(&r, i), 0);
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 9.5);
	ck_assert_int_eq(dc_averager_pop(&r, &avg), 0);

	/* The doctest: 0.080, 0.120 -> 0.1; 0.160 -> pop 0.12; then None. */
	ck_assert_int_eq(dc_averager_add(&r, 0.080), 0);
	ck_assert_int_eq(dc_averager_add(&r, 0.120), 0);
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 0.1);
	ck_assert_int_eq(dc_averager_add(&r, 0.160), 0);
	ck_assert_int_eq(dc_averager_pop(&r, &avg), 0);
	ck_assert(avg == 0.12);
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_NOTFOUND);
}
END_TEST

START_TEST(test_averager_stores_python_tuple)
{
	struct dc_recipe r = recipe(cache, "avg");
	unsigned char want[64];
	/* pickle.dumps((0.08, 1), protocol=5) from Python. */
	static const unsigned char py[] = { 0x80, 0x05, 0x95, 0x0e, 0x00,
					    0x00, 0x00, 0x00, 0x00, 0x00,
					    0x00, 0x47, 0x3f, 0xb4, 0x7a,
					    0xe1, 0x47, 0xae, 0x14, 0x7b,
					    0x4b, 0x01, 0x86, 0x94, 0x2e };

	ck_assert_int_eq(dc_averager_add(&r, 0.08), 0);
	assert_stored_pickle(cache, "avg", py, sizeof(py));
	ck_assert_int_eq(dc_averager_add(&r, 0.5), 0);
	assert_stored_pickle(cache, "avg", want, pk_float_int(want, 0.58, 2));
}
END_TEST

START_TEST(test_averager_reads_int_total)
{
	struct dc_recipe r = recipe(cache, "avg");
	/* pickle.dumps((7, 2), protocol=5): a Python caller adding ints to
	 * an int total. */
	static const unsigned char py[] = {
		0x80, 0x05, 0x95, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x4b, 0x07, 0x4b, 0x02, 0x86, 0x94, 0x2e
	};
	double avg;

	put(cache, "avg", dc_pickle(py, sizeof(py)));
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 3.5);
	ck_assert_int_eq(dc_averager_add(&r, 2), 0);
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 3.0);
}
END_TEST

START_TEST(test_reads_older_protocols)
{
	/* pickle.dumps((1.5, 2), protocol=2) and (("o", 1), protocol=3):
	 * no frame, BINPUT memo opcodes, BINUNICODE. */
	static const unsigned char avg2[] = { 0x80, 0x02, 0x47, 0x3f, 0xf8,
					      0x00, 0x00, 0x00, 0x00, 0x00,
					      0x00, 0x4b, 0x02, 0x86, 0x71,
					      0x00, 0x2e };
	static const unsigned char rl3[] = { 0x80, 0x03, 0x58, 0x01, 0x00, 0x00,
					     0x00, 0x6f, 0x71, 0x00, 0x4b, 0x01,
					     0x86, 0x71, 0x01, 0x2e };
	struct dc_recipe a = recipe(cache, "avg");
	struct dc_recipe r = recipe(cache, "rlock");
	double avg;

	put(cache, "avg", dc_pickle(avg2, sizeof(avg2)));
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 0.75);
	put(cache, "rlock", dc_pickle(rl3, sizeof(rl3)));
	ck_assert_int_eq(dc_rlock_acquire(&r, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
}
END_TEST

/* A cache with a serializer: the recipes' values pass through it, as
 * Python's recipes go through a custom Disk, and still work. */
START_TEST(test_with_serializer)
{
	char *dir = tu_mkdtemp();
	struct dc_options o;
	dc_cache *c = NULL;
	struct dc_recipe l, rl, s, a, t;
	double avg;

	memset(&o, 0, sizeof(o));
	o.serializer = dc_serializer_zlib(6);
	ck_assert_ptr_nonnull(o.serializer);
	ck_assert_int_eq(dc_cache_open(dir, &o, &c), 0);
	l = recipe(c, "lock");
	rl = recipe(c, "rlock");
	s = recipe(c, "sem");
	a = recipe(c, "avg");
	t = recipe(c, "thr");
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_lock_release(&l), 0);
	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), DC_NOTHELD);
	ck_assert_int_eq(dc_semaphore_acquire(&s, 1, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_semaphore_acquire(&s, 1, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_semaphore_release(&s, 1), 0);
	ck_assert_int_eq(dc_averager_add(&a, 1), 0);
	ck_assert_int_eq(dc_averager_add(&a, 2), 0);
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 1.5);
	ck_assert_int_eq(dc_throttle_init(&t, 3, 1), 0);
	ck_assert_int_eq(dc_throttle_wait(&t, 3, 1), 0);
	dc_cache_close(c);
	tu_rmdtemp(&dir);
}
END_TEST

/* Values a recipe's key may hold instead of its own: none may crash. */
static const unsigned char garbage_pickles[][24] = {
	{ 0x80, 0x05, 0x95 },             /* truncated frame */
	{ 0x80, 0x05, 0x4b, 0x01, 0x2e }, /* an int, not a tuple */
	{ 'x', 'y', 'z' },                /* not a pickle at all */
	{ 0x80, 0x05, 0x4b, 0x01, 0x4b, 0x02, 0x4b, 0x03, 0x87, 0x2e },
	{ 0x80, 0x05, 0x5d, 0x94, 0x2e }, /* an empty list */
	{ 0x80, 0x05, 0x8c, 0x01, 'a', 0x4b, 0x01, 0x86, 0x2e }, /* (a, 1) */
};
static const size_t garbage_len[] = { 3, 5, 3, 10, 5, 9 };

START_TEST(test_averager_wrong_stored_types)
{
	struct dc_recipe r = recipe(cache, "avg");
	unsigned char pk[64];
	double avg;

	put(cache, "avg", dc_int(5));
	ck_assert_int_eq(dc_averager_add(&r, 1), DC_CORRUPT);
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_CORRUPT);
	put(cache, "avg", dc_text("(1.0, 2)"));
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_CORRUPT);
	for (size_t i = 0; i < sizeof(garbage_len) / sizeof(garbage_len[0]);
	     i++) {
		put(cache, "avg",
		    dc_pickle(garbage_pickles[i], garbage_len[i]));
		ck_assert_int_eq(dc_averager_add(&r, 1), DC_CORRUPT);
		ck_assert_int_eq(dc_averager_get(&r, &avg), DC_CORRUPT);
	}
	/* A string total: Python's += fails. */
	put(cache, "avg", dc_pickle(pk, pk_str_int(pk, "ab", 1)));
	ck_assert_int_eq(dc_averager_add(&r, 1), DC_CORRUPT);
	/* pop removes the key even when it then cannot decode it. */
	ck_assert_int_eq(dc_averager_pop(&r, &avg), DC_CORRUPT);
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_NOTFOUND);
}
END_TEST

START_TEST(test_averager_expire_and_tag)
{
	struct dc_recipe r = recipe(cache, "avg");
	struct dc_value tag = dc_text("stats");
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	double avg;

	r.expire = 0.3;
	r.tag = &tag;
	ck_assert_int_eq(dc_averager_add(&r, 1), 0);
	stored(cache, "avg", &buf, &it);
	ck_assert_int_eq(it.tag.type, DC_TYPE_TEXT);
	ck_assert_mem_eq(it.tag.data, "stats", 5);
	ck_assert(it.expire_time > it.store_time + 0.2);
	ck_assert(it.expire_time < it.store_time + 0.4);
	tu_sleep(0.4);
	ck_assert_int_eq(dc_averager_get(&r, &avg), DC_NOTFOUND);
	/* An expired state is Python's default (0.0, 0). */
	ck_assert_int_eq(dc_averager_add(&r, 3), 0);
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 3);
	/* 0 and NaN are "never". */
	r.expire = 0;
	ck_assert_int_eq(dc_averager_add(&r, 3), 0);
	stored(cache, "avg", &buf, &it);
	ck_assert(isnan(it.expire_time));
	r.expire = NAN;
	ck_assert_int_eq(dc_averager_add(&r, 3), 0);
	stored(cache, "avg", &buf, &it);
	ck_assert(isnan(it.expire_time));
	dc_buf_release(&buf);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lock                                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_lock_stores_pickled_none)
{
	static const unsigned char none5[] = { 0x80, 0x05, 0x4e, 0x2e };
	struct dc_recipe r = recipe(cache, "lock");

	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);
	ck_assert_int_eq(dc_lock_acquire(&r, FOREVER), 0);
	ck_assert_int_eq(dc_lock_locked(&r), 0);
	assert_stored_pickle(cache, "lock", none5, 4);
	/* Not reentrant. */
	ck_assert_int_eq(dc_lock_acquire(&r, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_lock_release(&r), 0);
	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);
	ck_assert_int_eq(dc_lock_release(&r), DC_NOTHELD);
	ck_assert_int_eq(dc_lock_acquire(&r, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_lock_release(&r), 0);
}
END_TEST

START_TEST(test_lock_follows_pickle_protocol)
{
	static const unsigned char none4[] = { 0x80, 0x04, 0x4e, 0x2e };
	/* pickle.dumps((5.0, 10), protocol=4) from Python. */
	static const unsigned char avg4[] = { 0x80, 0x04, 0x95, 0x0e, 0x00,
					      0x00, 0x00, 0x00, 0x00, 0x00,
					      0x00, 0x47, 0x40, 0x14, 0x00,
					      0x00, 0x00, 0x00, 0x00, 0x00,
					      0x4b, 0x0a, 0x86, 0x94, 0x2e };
	char *dir = tu_mkdtemp();
	dc_cache *c = open_dir(dir, DC_SHARDS_PLAIN, 4);
	struct dc_recipe r = recipe(c, "lock");
	struct dc_recipe a = recipe(c, "avg");
	double avg;

	ck_assert_int_eq(dc_lock_acquire(&r, FOREVER), 0);
	assert_stored_pickle(c, "lock", none4, 4);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(dc_averager_add(&a, 0.5), 0);
	assert_stored_pickle(c, "avg", avg4, sizeof(avg4));
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 0.5);
	dc_cache_close(c);
	tu_rmdtemp(&dir);
}
END_TEST

/* pickle.dumps(None, protocol=P) and pickle.dumps((1.0, 2), P) for P
 * from 0 to 5, and what Python's RLock and Averager store there:
 * pickle.dumps(('o', 1), P) and pickle.dumps((0.5, 2), P). */
static const char *const py_none[] = { "4e2e",     "4e2e",     "80024e2e",
				       "80034e2e", "80044e2e", "80054e2e" };
static const char *const py_avg[] = {
	"2846312e300a49320a7470300a2e",
	"28473ff00000000000004b027471002e",
	"8002473ff00000000000004b028671002e",
	"8003473ff00000000000004b028671002e",
	"8004950e00000000000000473ff00000000000004b0286942e",
	"8005950e00000000000000473ff00000000000004b0286942e",
};
static const char *const py_rlock_o[] = {
	"28566f0a70300a49310a7470310a2e",
	"2858010000006f71004b017471012e",
	"800258010000006f71004b018671012e",
	"800358010000006f71004b018671012e",
	"80049509000000000000008c016f944b0186942e",
	"80059509000000000000008c016f944b0186942e",
};
static const char *const py_avg_half[] = {
	"2846302e350a49320a7470300a2e",
	"28473fe00000000000004b027471002e",
	"8002473fe00000000000004b028671002e",
	"8003473fe00000000000004b028671002e",
	"8004950e00000000000000473fe00000000000004b0286942e",
	"8005950e00000000000000473fe00000000000004b0286942e",
};

static size_t unhex(const char *h, unsigned char *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
	return n;
}

/* pickle.dumps((owner, 1), protocol=@proto) of an ASCII owner, as the
 * C pickler writes it at each protocol. */
static size_t pk_owner1(unsigned char *out, int proto, const char *owner)
{
	size_t len = strlen(owner), p = 0;

	if (proto == 0)
		return (size_t)snprintf((char *)out, 128,
					"(V%s\np0\nI1\ntp1\n.", owner);
	if (proto >= 4) {
		p = pk_str_int(out, owner, 1);
		out[1] = (unsigned char)proto;
		return p;
	}
	if (proto >= 2) {
		out[p++] = 0x80;
		out[p++] = (unsigned char)proto;
	} else {
		out[p++] = '(';
	}
	out[p++] = 'X';
	for (int i = 0; i < 4; i++)
		out[p++] = (unsigned char)(len >> (8 * i));
	memcpy(out + p, owner, len);
	p += len;
	memcpy(out + p, "q\0K\x01", 4);
	p += 4;
	out[p++] = proto >= 2 ? 0x86 : 't';
	memcpy(out + p, "q\x01.", 3);
	return p + 3;
}

/* Every protocol Python may have created the cache with: the recipes
 * write what Python writes there, byte for byte, and read what Python
 * wrote (protocols 0 and 1 are text and MARK ... TUPLE). */
START_TEST(test_recipes_at_every_protocol)
{
	int proto = _i;
	char *dir = tu_mkdtemp();
	dc_cache *c = open_dir(dir, DC_SHARDS_PLAIN, proto);
	struct dc_recipe l = recipe(c, "lock"), a = recipe(c, "avg");
	struct dc_recipe rl = recipe(c, "rlock"), t = recipe(c, "thr");
	struct dc_recipe pr = recipe(c, "py-rlock"), pa = recipe(c, "py-avg");
	unsigned char want[128];
	double avg;

	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), 0);
	assert_stored_pickle(c, "lock", want, unhex(py_none[proto], want));
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_lock_release(&l), 0);

	ck_assert_int_eq(dc_averager_add(&a, 0.5), 0);
	ck_assert_int_eq(dc_averager_add(&a, 0.5), 0);
	assert_stored_pickle(c, "avg", want, unhex(py_avg[proto], want));
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 0.5);

	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), 0);
	assert_stored_pickle(c, "rlock", want,
			     pk_owner1(want, proto, my_owner()));
	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), DC_NOTHELD);

	/* (time, count), then (time, count - 1), then a float tally. */
	ck_assert_int_eq(dc_throttle_init(&t, 100, 1), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_throttle_wait(&t, 100, 1), 0);

	/* Python's RLock held by owner "o": C waits; Python's average. */
	put(c, "py-rlock", dc_pickle(want, unhex(py_rlock_o[proto], want)));
	ck_assert_int_eq(dc_rlock_acquire(&pr, DC_WAIT_NONE), DC_EXISTS);
	ck_assert_int_eq(dc_rlock_release(&pr), DC_NOTHELD);
	put(c, "py-avg", dc_pickle(want, unhex(py_avg_half[proto], want)));
	ck_assert_int_eq(dc_averager_get(&pa, &avg), 0);
	ck_assert(avg == 0.25);
	dc_cache_close(c);
	tu_rmdtemp(&dir);
}
END_TEST

/* Python's pickle takes a negative protocol as HIGHEST_PROTOCOL (5) and
 * raises ValueError above 5: the recipes that pickle are DC_INVAL then,
 * the others (a semaphore's int, reading an average) still work. */
START_TEST(test_protocol_negative_and_too_high)
{
	static const unsigned char none5[] = { 0x80, 0x05, 0x4e, 0x2e };
	struct dc_recipe l = recipe(cache, "lock"), a = recipe(cache, "avg");
	struct dc_recipe rl = recipe(cache, "rlock"), t = recipe(cache, "t");
	struct dc_recipe s = recipe(cache, "sem");
	unsigned char want[128];
	double avg;

	tu_set_pickle_protocol(cache, root, "-1");
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), 0);
	assert_stored_pickle(cache, "lock", none5, sizeof(none5));
	ck_assert_int_eq(dc_averager_add(&a, 0.5), 0);
	ck_assert_int_eq(dc_averager_add(&a, 0.5), 0);
	assert_stored_pickle(cache, "avg", want, unhex(py_avg[5], want));
	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), 0);
	assert_stored_pickle(cache, "rlock", want,
			     pk_owner1(want, 5, my_owner()));
	tu_set_pickle_protocol(cache, root, "-2");
	ck_assert_int_eq(dc_rlock_release(&rl), 0);

	tu_set_pickle_protocol(cache, root, "6");
	ck_assert_int_eq(dc_lock_release(&l), 0);
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), DC_INVAL);
	ck_assert_int_eq(dc_averager_add(&a, 1), DC_INVAL);
	ck_assert_int_eq(dc_rlock_acquire(&rl, DC_WAIT_NONE), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(&t, 1, 1), DC_INVAL);
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 0.5);
	ck_assert_int_eq(dc_semaphore_acquire(&s, 1, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_semaphore_release(&s, 1), 0);
	tu_set_pickle_protocol(cache, root, "'5'");
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), DC_INVAL);
}
END_TEST

struct waiter_arg {
	struct dc_recipe r;
	int kind; /* 0 lock, 1 rlock, 2 semaphore(3) */
	double wait;
	atomic_int done;
	int rc;
	int release_rc;
	double elapsed;
};

static void *waiter_thread(void *p)
{
	struct waiter_arg *a = p;
	double t0 = tu_mono();

	if (a->kind == 0)
		a->rc = dc_lock_acquire(&a->r, a->wait);
	else if (a->kind == 1)
		a->rc = dc_rlock_acquire(&a->r, a->wait);
	else
		a->rc = dc_semaphore_acquire(&a->r, 3, a->wait);
	a->elapsed = tu_mono() - t0;
	atomic_store(&a->done, 1);
	if (a->rc == 0) {
		if (a->kind == 0)
			a->release_rc = dc_lock_release(&a->r);
		else if (a->kind == 1)
			a->release_rc = dc_rlock_release(&a->r);
		else
			a->release_rc = dc_semaphore_release(&a->r, 3);
	}
	return NULL;
}

static void start_waiter(pthread_t *t, struct waiter_arg *a,
			 const struct dc_recipe *r, int kind, double wait)
{
	memset(a, 0, sizeof(*a));
	a->r = *r;
	a->kind = kind;
	a->wait = wait;
	a->rc = 1;
	ck_assert_int_eq(pthread_create(t, NULL, waiter_thread, a), 0);
}

START_TEST(test_lock_blocks_second_thread)
{
	struct dc_recipe r = recipe(cache, "lock");
	struct waiter_arg a;
	pthread_t t;

	ck_assert_int_eq(dc_lock_acquire(&r, FOREVER), 0);
	start_waiter(&t, &a, &r, 0, FOREVER);
	tu_sleep(0.15);
	ck_assert_int_eq(ld(&a.done), 0);
	ck_assert_int_eq(dc_lock_locked(&r), 0);
	ck_assert_int_eq(dc_lock_release(&r), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(a.release_rc, 0);
	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);
}
END_TEST

START_TEST(test_wait_timeouts)
{
	struct dc_recipe l = recipe(cache, "lock");
	struct dc_recipe rl = recipe(cache, "rlock");
	struct dc_recipe s = recipe(cache, "sem");
	struct waiter_arg a;
	pthread_t t;
	double t0;

	ck_assert_int_eq(dc_lock_acquire(&l, FOREVER), 0);
	t0 = tu_mono();
	ck_assert_int_eq(dc_lock_acquire(&l, 0.2), DC_EXISTS);
	ck_assert(tu_mono() - t0 >= 0.19);
	ck_assert(tu_mono() - t0 < 10);
	t0 = tu_mono();
	ck_assert_int_eq(dc_lock_acquire(&l, DC_WAIT_NONE), DC_EXISTS);
	ck_assert(tu_mono() - t0 < 5);

	/* The RLock's owner is a thread: another thread times out. */
	ck_assert_int_eq(dc_rlock_acquire(&rl, FOREVER), 0);
	start_waiter(&t, &a, &rl, 1, 0.2);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, DC_EXISTS);
	ck_assert(a.elapsed >= 0.19);
	start_waiter(&t, &a, &rl, 1, DC_WAIT_NONE);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, DC_EXISTS);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_semaphore_acquire(&s, 3, FOREVER), 0);
	t0 = tu_mono();
	ck_assert_int_eq(dc_semaphore_acquire(&s, 3, 0.2), DC_EXISTS);
	ck_assert(tu_mono() - t0 >= 0.19);
	ck_assert_int_eq(dc_semaphore_acquire(&s, 3, DC_WAIT_NONE), DC_EXISTS);
	/* A timed wait that ends in time. */
	start_waiter(&t, &a, &s, 2, 5.0);
	tu_sleep(0.1);
	ck_assert_int_eq(dc_semaphore_release(&s, 3), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(a.release_rc, 0);
}
END_TEST

START_TEST(test_lock_expire)
{
	struct dc_recipe r = recipe(cache, "lock");
	struct dc_value tag = dc_int(7);
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	double t0;

	r.expire = 0.3;
	r.tag = &tag;
	ck_assert_int_eq(dc_lock_acquire(&r, FOREVER), 0);
	stored(cache, "lock", &buf, &it);
	ck_assert_int_eq(it.tag.type, DC_TYPE_INT);
	ck_assert_int_eq(it.tag.i, 7);
	ck_assert(!isnan(it.expire_time));
	ck_assert_int_eq(dc_lock_locked(&r), 0);
	/* A held lock expires: the next acquirer takes it, not before. */
	t0 = tu_mono();
	ck_assert_int_eq(dc_lock_acquire(&r, 10.0), 0);
	ck_assert(tu_wall() >= it.expire_time);
	ck_assert(tu_mono() - t0 < 10);
	tu_sleep(0.4);
	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);
	ck_assert_int_eq(dc_lock_release(&r), DC_NOTHELD);
	dc_buf_release(&buf);
}
END_TEST

START_TEST(test_lock_other_keys)
{
	static const unsigned char blob[] = { 0, 1, 2 };
	struct dc_recipe r = recipe(cache, "x");

	r.key = dc_int(42);
	ck_assert_int_eq(dc_lock_acquire(&r, DC_WAIT_NONE), 0);
	r.key = dc_float(42.0); /* SQLite: the same key */
	ck_assert_int_eq(dc_lock_locked(&r), 0);
	ck_assert_int_eq(dc_lock_release(&r), 0);
	r.key = dc_bytes(blob, sizeof(blob));
	ck_assert_int_eq(dc_rlock_acquire(&r, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_rlock_release(&r), 0);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 1, DC_WAIT_NONE), DC_TYPE);
	/* A lock on a key holding anything alive is held. */
	ck_assert_int_eq(dc_lock_acquire(&r, DC_WAIT_NONE), DC_EXISTS);
}
END_TEST

/* ------------------------------------------------------------------ */
/* RLock                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_rlock_nesting_and_stored_tuple)
{
	struct dc_recipe r = recipe(cache, "rlock");
	unsigned char want[128];

	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(dc_rlock_acquire(&r, DC_WAIT_NONE), 0);
		assert_stored_pickle(cache, "rlock", want,
				     pk_str_int(want, my_owner(), i));
	}
	for (int i = 2; i >= 0; i--) {
		ck_assert_int_eq(dc_rlock_release(&r), 0);
		/* The key stays, with count 0 at the end. */
		assert_stored_pickle(cache, "rlock", want,
				     pk_str_int(want, my_owner(), i));
	}
	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
	assert_stored_pickle(cache, "rlock", want,
			     pk_str_int(want, my_owner(), 0));
}
END_TEST

START_TEST(test_rlock_other_thread_waits)
{
	struct dc_recipe r = recipe(cache, "rlock");
	unsigned char want[128];
	struct waiter_arg a;
	pthread_t t;

	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), 0);
	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), 0);
	start_waiter(&t, &a, &r, 1, FOREVER);
	tu_sleep(0.1);
	ck_assert_int_eq(ld(&a.done), 0);
	ck_assert_int_eq(dc_rlock_release(&r), 0);
	tu_sleep(0.1);
	ck_assert_int_eq(ld(&a.done), 0);
	ck_assert_int_eq(dc_rlock_release(&r), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(a.release_rc, 0);
	/* The last owner was the other thread; we may take it again. */
	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
	ck_assert_int_eq(dc_rlock_acquire(&r, DC_WAIT_NONE), 0);
	assert_stored_pickle(cache, "rlock", want,
			     pk_str_int(want, my_owner(), 1));
}
END_TEST

static void *release_thread(void *p)
{
	struct dc_recipe *r = p;

	return (void *)(intptr_t)dc_rlock_release(r);
}

START_TEST(test_rlock_release_by_other_is_notheld)
{
	struct dc_recipe r = recipe(cache, "rlock");
	unsigned char want[128];
	pthread_t t;
	void *res;
	pid_t pid;
	int status;

	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, release_thread, &r), 0);
	pthread_join(t, &res);
	ck_assert_int_eq((int)(intptr_t)res, DC_NOTHELD);
	/* A forked child is another process, hence another owner. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int a = dc_rlock_acquire(&r, DC_WAIT_NONE);
		int b = dc_rlock_release(&r);

		_exit(a == DC_EXISTS && b == DC_NOTHELD ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_stored_pickle(cache, "rlock", want,
			     pk_str_int(want, my_owner(), 1));
}
END_TEST

START_TEST(test_rlock_wrong_stored_types)
{
	struct dc_recipe r = recipe(cache, "rlock");
	/* pickle.dumps(('me', 1.5), 5) and (1, 2). */
	static const unsigned char float_count[] = {
		0x80, 0x05, 0x95, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x8c, 0x02, 'm',  'e',  0x94, 0x47, 0x3f, 0xf8, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x86, 0x94, 0x2e
	};
	static const unsigned char int_owner[] = { 0x80, 0x05, 0x95, 0x07, 0x00,
						   0x00, 0x00, 0x00, 0x00, 0x00,
						   0x00, 0x4b, 0x01, 0x4b, 0x02,
						   0x86, 0x94, 0x2e };
	/* ('me', 0): someone else's, fully released -- ours to take. */
	unsigned char free_other[64];
	size_t n = pk_str_int(free_other, "me", 0);

	put(cache, "rlock", dc_int(1));
	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), DC_CORRUPT);
	ck_assert_int_eq(dc_rlock_release(&r), DC_CORRUPT);
	put(cache, "rlock", dc_pickle(float_count, sizeof(float_count)));
	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), DC_CORRUPT);
	put(cache, "rlock", dc_pickle(int_owner, sizeof(int_owner)));
	ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), DC_CORRUPT);
	/* All but the last, ('a', 1), which is a valid RLock held by 'a'. */
	for (size_t i = 0; i < 5; i++) {
		put(cache, "rlock",
		    dc_pickle(garbage_pickles[i], garbage_len[i]));
		ck_assert_int_eq(dc_rlock_acquire(&r, FOREVER), DC_CORRUPT);
		ck_assert_int_eq(dc_rlock_release(&r), DC_CORRUPT);
	}
	put(cache, "rlock", dc_pickle(garbage_pickles[5], garbage_len[5]));
	ck_assert_int_eq(dc_rlock_acquire(&r, 0.05), DC_EXISTS);
	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
	put(cache, "rlock", dc_pickle(free_other, n));
	ck_assert_int_eq(dc_rlock_release(&r), DC_NOTHELD);
	ck_assert_int_eq(dc_rlock_acquire(&r, DC_WAIT_NONE), 0);
	ck_assert_int_eq(dc_rlock_release(&r), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* BoundedSemaphore                                                   */
/* ------------------------------------------------------------------ */

static int64_t stored_int(dc_cache *c, const char *key)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;

	stored(c, key, &buf, &it);
	ck_assert_int_eq(it.value.type, DC_TYPE_INT);
	dc_buf_release(&buf);
	return it.value.i;
}

START_TEST(test_semaphore_bounded_three)
{
	struct dc_recipe r = recipe(cache, "sem");
	struct waiter_arg a;
	pthread_t t;

	ck_assert_int_eq(dc_semaphore_release(&r, 3), DC_NOTHELD);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), 0);
	ck_assert_int_eq(stored_int(cache, "sem"), 2);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), 0);
	/* "with semaphore:" held, then a fourth acquirer waits. */
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), 0);
	ck_assert_int_eq(stored_int(cache, "sem"), 0);
	start_waiter(&t, &a, &r, 2, FOREVER);
	tu_sleep(0.15);
	ck_assert_int_eq(ld(&a.done), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(a.release_rc, 0);
	ck_assert_int_eq(stored_int(cache, "sem"), 1);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), 0);
	ck_assert_int_eq(stored_int(cache, "sem"), 3);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), DC_NOTHELD);
	ck_assert_int_eq(stored_int(cache, "sem"), 3);
}
END_TEST

START_TEST(test_semaphore_doctest_value_two)
{
	struct dc_recipe r = recipe(cache, "max-cons");

	ck_assert_int_eq(dc_semaphore_acquire(&r, 2, FOREVER), 0);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 2, FOREVER), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 2), 0);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 2, FOREVER), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 2), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 2), 0);
	ck_assert_int_eq(dc_semaphore_release(&r, 2), DC_NOTHELD);
	/* Value 0: never acquired, as Python's spins forever. */
	r = recipe(cache, "zero");
	ck_assert_int_eq(dc_semaphore_acquire(&r, 0, 0.05), DC_EXISTS);
	ck_assert_int_eq(dc_semaphore_release(&r, 0), DC_NOTHELD);
}
END_TEST

START_TEST(test_semaphore_wrong_stored_types)
{
	struct dc_recipe r = recipe(cache, "sem");
	static const unsigned char none5[] = { 0x80, 0x05, 0x4e, 0x2e };

	put(cache, "sem", dc_float(1.0));
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), DC_TYPE);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), DC_TYPE);
	put(cache, "sem", dc_text("3"));
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), DC_TYPE);
	put(cache, "sem", dc_pickle(none5, 4));
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), DC_TYPE);
	ck_assert_int_eq(dc_semaphore_release(&r, 3), DC_TYPE);
	/* A stored count above the bound is not ours to raise. */
	put(cache, "sem", dc_int(5));
	ck_assert_int_eq(dc_semaphore_release(&r, 3), DC_NOTHELD);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 3, FOREVER), 0);
	ck_assert_int_eq(stored_int(cache, "sem"), 4);
}
END_TEST

/* ------------------------------------------------------------------ */
/* throttle                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_throttle_two_per_second)
{
	struct dc_recipe r = recipe(cache, "throttled");
	double start;
	int count = 0;

	ck_assert_int_eq(dc_throttle_init(&r, 2, 1), 0);
	start = tu_mono();
	while (tu_mono() - start <= 2) {
		ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), 0);
		count++;
	}
	/* Python's doctest: 6 or 7 depending on load; be generous. */
	ck_assert_msg(count >= 5 && count <= 8, "%d calls", count);
}
END_TEST

/* The stored throttle state (time, tally) of "thr": a float time, then
 * the tally as a one-byte int of value @tally (@op 'K') or as a float
 * (@op 'G'), with a tag of type @tag. */
static void assert_throttle_state(int op, int tally, enum dc_type tag)
{
	struct dc_buf buf = DC_BUF_INIT;
	struct dc_item it;
	const unsigned char *p;

	stored(cache, "thr", &buf, &it);
	ck_assert_int_eq(it.value.type, DC_TYPE_PICKLE);
	ck_assert_uint_eq(it.value.len, op == 'K' ? 25 : 32);
	p = it.value.data;
	ck_assert_int_eq(p[11], 'G');
	ck_assert_int_eq(p[20], op);
	if (op == 'K')
		ck_assert_int_eq(p[21], tally);
	ck_assert_int_eq(it.tag.type, tag);
	dc_buf_release(&buf);
}

START_TEST(test_throttle_stores_python_tuples)
{
	struct dc_recipe r = recipe(cache, "thr");
	struct dc_value tag = dc_text("t");

	r.tag = &tag;
	ck_assert_int_eq(dc_throttle_init(&r, 2, 1), 0);
	/* (now: float, 2: int) with the tag. */
	assert_throttle_state('K', 2, DC_TYPE_TEXT);
	/* A full tally: stores (now, count - 1) as an int, without a tag
	 * (Python's wrapper passes expire only). */
	ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), 0);
	assert_throttle_state('K', 1, DC_TYPE_NONE);
	/* Then a fractional tally: (now, tally - 1) as a float. */
	ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), 0);
	assert_throttle_state('G', 0, DC_TYPE_NONE);
}
END_TEST

START_TEST(test_throttle_errors)
{
	struct dc_recipe r = recipe(cache, "thr");

	ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), DC_NOTFOUND);
	ck_assert_int_eq(dc_throttle_init(&r, 0, 1), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(&r, 2, 0), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(&r, 2, -1), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(&r, 2, NAN), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(&r, 2, INFINITY), DC_INVAL);
	ck_assert_int_eq(dc_throttle_wait(&r, -1, 1), DC_INVAL);
	put(cache, "thr", dc_int(3));
	ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), DC_CORRUPT);
	for (size_t i = 0; i < sizeof(garbage_len) / sizeof(garbage_len[0]);
	     i++) {
		put(cache, "thr",
		    dc_pickle(garbage_pickles[i], garbage_len[i]));
		ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), DC_CORRUPT);
	}
	ck_assert_int_eq(dc_throttle_init(&r, 2, 1), 0);
	ck_assert_int_eq(dc_throttle_wait(&r, 2, 1), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* barrier                                                            */
/* ------------------------------------------------------------------ */

struct shared {
	atomic_int inside;
	atomic_int max_inside;
	atomic_int violations;
	atomic_int errors;
	atomic_int calls;
	atomic_int first_error;
};

static void note_error(struct shared *sh, int rc)
{
	int zero = 0;

	atomic_fetch_add(&sh->errors, 1);
	atomic_compare_exchange_strong(&sh->first_error, &zero, rc);
}

static void enter(struct shared *sh, int limit)
{
	int n = atomic_fetch_add(&sh->inside, 1) + 1;
	int m = ld(&sh->max_inside);

	while (n > m && !atomic_compare_exchange_weak(&sh->max_inside, &m, n))
		;
	if (n > limit)
		atomic_fetch_add(&sh->violations, 1);
}

static void leave(struct shared *sh)
{
	atomic_fetch_sub(&sh->inside, 1);
}

static struct shared *shared_new(void)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	return sh;
}

static void shared_free(struct shared *sh)
{
	munmap(sh, sizeof(*sh));
}

static int barrier_body(void *p)
{
	struct shared *sh = p;

	enter(sh, 1);
	tu_sleep(0.02);
	atomic_fetch_add(&sh->calls, 1);
	leave(sh);
	return 0;
}

struct barrier_arg {
	struct dc_recipe r;
	enum dc_barrier_kind kind;
	struct shared *sh;
};

static void *barrier_thread(void *p)
{
	struct barrier_arg *a = p;

	for (int i = 0; i < 3; i++) {
		int rc = dc_barrier(&a->r, a->kind, barrier_body, a->sh);

		if (rc)
			note_error(a->sh, rc);
	}
	return NULL;
}

static int return_42(void *p)
{
	(void)p;
	return 42;
}

START_TEST(test_barrier_serializes_two_threads)
{
	static const enum dc_barrier_kind kinds[] = { DC_BARRIER_LOCK,
						      DC_BARRIER_RLOCK,
						      DC_BARRIER_SEMAPHORE };
	static const char *keys[] = { "b-lock", "b-rlock", "b-sem" };

	for (int k = 0; k < 3; k++) {
		struct shared *sh = shared_new();
		struct barrier_arg a = { recipe(cache, keys[k]), kinds[k], sh };

		tu_run_threads(2, barrier_thread, &a, 0);
		ck_assert_int_eq(ld(&sh->errors), 0);
		ck_assert_int_eq(ld(&sh->violations), 0);
		ck_assert_int_eq(ld(&sh->max_inside), 1);
		ck_assert_int_eq(ld(&sh->calls), 6);
		/* The function's result comes back; the lock is released. */
		ck_assert_int_eq(dc_barrier(&a.r, kinds[k], return_42, NULL),
				 42);
		shared_free(sh);
	}
	ck_assert_int_eq(dc_lock_locked(&(struct dc_recipe){
			     cache, dc_text("b-lock"), 0, NULL }),
			 DC_NOTFOUND);
	ck_assert_int_eq(stored_int(cache, "b-sem"), 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Arguments                                                          */
/* ------------------------------------------------------------------ */

static int ok_fn(void *p)
{
	(void)p;
	return 0;
}

START_TEST(test_bad_arguments)
{
	struct dc_recipe r = recipe(cache, "k");
	struct dc_recipe bad;
	struct dc_value tag_pickle = dc_pickle("x", 1);
	double avg;

	ck_assert_int_eq(dc_lock_acquire(NULL, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_lock_release(NULL), DC_INVAL);
	ck_assert_int_eq(dc_lock_locked(NULL), DC_INVAL);
	ck_assert_int_eq(dc_rlock_acquire(NULL, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_rlock_release(NULL), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_acquire(NULL, 1, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_release(NULL, 1), DC_INVAL);
	ck_assert_int_eq(dc_averager_add(NULL, 1), DC_INVAL);
	ck_assert_int_eq(dc_averager_get(NULL, &avg), DC_INVAL);
	ck_assert_int_eq(dc_averager_pop(NULL, &avg), DC_INVAL);
	ck_assert_int_eq(dc_throttle_init(NULL, 1, 1), DC_INVAL);
	ck_assert_int_eq(dc_throttle_wait(NULL, 1, 1), DC_INVAL);
	ck_assert_int_eq(dc_barrier(NULL, DC_BARRIER_LOCK, ok_fn, NULL),
			 DC_INVAL);

	bad = r;
	bad.cache = NULL;
	ck_assert_int_eq(dc_lock_acquire(&bad, FOREVER), DC_INVAL);
	bad = r;
	bad.key.type = DC_TYPE_NONE;
	ck_assert_int_eq(dc_lock_acquire(&bad, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_averager_add(&bad, 1), DC_INVAL);
	bad.key = dc_pickle("\x80\x05N.", 4);
	ck_assert_int_eq(dc_rlock_acquire(&bad, FOREVER), DC_INVAL);
	bad.key = dc_textn("\xff", 1); /* not UTF-8 */
	ck_assert_int_eq(dc_lock_acquire(&bad, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_rlock_acquire(&bad, FOREVER), DC_INVAL);
	bad = r;
	bad.expire = -1;
	ck_assert_int_eq(dc_lock_acquire(&bad, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_acquire(&bad, 1, FOREVER), DC_INVAL);
	bad = r;
	bad.tag = &tag_pickle;
	ck_assert_int_eq(dc_lock_acquire(&bad, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_averager_add(&bad, 1), DC_INVAL);
	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);

	ck_assert_int_eq(dc_lock_acquire(&r, NAN), DC_INVAL);
	ck_assert_int_eq(dc_lock_acquire(&r, -2), DC_INVAL);
	ck_assert_int_eq(dc_rlock_acquire(&r, -0.5), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_acquire(&r, 1, NAN), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_acquire(&r, -1, FOREVER), DC_INVAL);
	ck_assert_int_eq(dc_semaphore_release(&r, -1), DC_INVAL);
	ck_assert_int_eq(dc_averager_get(&r, NULL), DC_INVAL);
	ck_assert_int_eq(dc_barrier(&r, DC_BARRIER_LOCK, NULL, NULL), DC_INVAL);
	ck_assert_int_eq(dc_barrier(&r, (enum dc_barrier_kind)9, ok_fn, NULL),
			 DC_INVAL);
	/* None of that stored anything. */
	ck_assert_int_eq(dc_lock_locked(&r), DC_NOTFOUND);
	/* +inf waits are forever, +inf expire is never. */
	r.expire = INFINITY;
	ck_assert_int_eq(dc_lock_acquire(&r, INFINITY), 0);
	ck_assert_int_eq(dc_lock_release(&r), 0);
}
END_TEST

/* Recipes inside the caller's own transaction: theirs is not lost when a
 * recipe fails, and everything commits together. */
START_TEST(test_inside_caller_transaction)
{
	struct dc_recipe a = recipe(cache, "avg");
	struct dc_recipe s = recipe(cache, "sem");
	struct dc_value k = dc_text("mine"), v = dc_int(1);
	double avg;

	ck_assert_int_eq(dc_cache_begin(cache, DC_RETRY), 0);
	ck_assert_int_eq(dc_cache_set(cache, &k, &v, DC_NO_EXPIRE, NULL, 0), 0);
	ck_assert_int_eq(dc_averager_add(&a, 1), 0);
	ck_assert_int_eq(dc_averager_add(&a, 2), 0);
	ck_assert_int_eq(dc_semaphore_release(&s, 1), DC_NOTHELD);
	ck_assert_int_eq(dc_cache_commit(cache), 0);
	ck_assert_int_eq(dc_cache_contains(cache, &k), 0);
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 1.5);
	/* A rollback of the caller's transaction takes the recipe's
	 * writes with it. */
	ck_assert_int_eq(dc_cache_begin(cache, DC_RETRY), 0);
	ck_assert_int_eq(dc_averager_add(&a, 100), 0);
	ck_assert_int_eq(dc_cache_rollback(cache), 0);
	ck_assert_int_eq(dc_averager_get(&a, &avg), 0);
	ck_assert(avg == 1.5);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Stress: threads and processes                                      */
/* ------------------------------------------------------------------ */

enum kind { K_LOCK, K_RLOCK, K_SEM, K_SEM2, K_AVG, K_THROTTLE };

struct job {
	const char *dir;
	dc_cache *cache; /* threads share it; processes open their own */
	enum kind kind;
	int iters;
	struct shared *sh;
};

static int mutex_enter(const struct dc_recipe *r, enum kind kind)
{
	int rc;

	switch (kind) {
	case K_LOCK:
		return dc_lock_acquire(r, FOREVER);
	case K_RLOCK:
		rc = dc_rlock_acquire(r, FOREVER);
		return rc ? rc : dc_rlock_acquire(r, FOREVER);
	case K_SEM:
		return dc_semaphore_acquire(r, 1, FOREVER);
	case K_SEM2:
		return dc_semaphore_acquire(r, 2, FOREVER);
	default:
		return DC_INVAL;
	}
}

static int mutex_leave(const struct dc_recipe *r, enum kind kind)
{
	int rc;

	switch (kind) {
	case K_LOCK:
		return dc_lock_release(r);
	case K_RLOCK:
		rc = dc_rlock_release(r);
		return rc ? rc : dc_rlock_release(r);
	case K_SEM:
		return dc_semaphore_release(r, 1);
	case K_SEM2:
		return dc_semaphore_release(r, 2);
	default:
		return DC_INVAL;
	}
}

/* Read-modify-write of "counter" with a pause in between: without the
 * lock, concurrent workers lose updates. */
static int bump_counter(dc_cache *c)
{
	struct dc_value k = dc_text("counter"), v;
	struct dc_item it;
	int64_t n = 0;
	int rc;

	tu_item_init(&it);
	rc = dc_cache_get(c, &k, NULL, &it, DC_NOVALUE);
	if (rc == 0 && it.value.type == DC_TYPE_INT)
		n = it.value.i;
	else if (rc != DC_NOTFOUND)
		return rc ? rc : DC_TYPE;
	usleep(300);
	v = dc_int(n + 1);
	return dc_cache_set(c, &k, &v, DC_NO_EXPIRE, NULL, DC_RETRY);
}

static void work(dc_cache *c, const struct job *j)
{
	struct dc_recipe r = recipe(c, "recipe");
	int rc = 0;

	if (j->kind == K_THROTTLE) {
		double start = tu_mono();

		while (tu_mono() - start <= 1.0) {
			rc = dc_throttle_wait(&r, 10, 1);
			if (rc)
				break;
			atomic_fetch_add(&j->sh->calls, 1);
		}
		goto out;
	}
	for (int i = 0; i < j->iters && !rc; i++) {
		if (j->kind == K_AVG) {
			rc = dc_averager_add(&r, i);
			continue;
		}
		rc = mutex_enter(&r, j->kind);
		if (rc)
			break;
		enter(j->sh, j->kind == K_SEM2 ? 2 : 1);
		if (j->kind == K_SEM2)
			usleep(1000);
		else
			rc = bump_counter(c);
		atomic_fetch_add(&j->sh->calls, 1);
		leave(j->sh);
		if (!rc)
			rc = mutex_leave(&r, j->kind);
	}
out:
	if (rc)
		note_error(j->sh, rc);
}

static void *work_thread(void *p)
{
	const struct job *j = p;

	work(j->cache, j);
	return NULL;
}

/* Run @n workers of @kind, as threads on one handle (@procs 0) or as
 * forked processes each with its own handle, and wait for them. */
static void run_workers(int n, int procs, enum kind kind, int iters,
			struct shared *sh)
{
	struct job j = { root, cache, kind, iters, sh };
	pthread_t t[8];
	pid_t pids[8];
	int status;

	ck_assert_int_le(n, 8);
	for (int i = 0; i < n; i++) {
		if (!procs) {
			ck_assert_int_eq(
			    pthread_create(&t[i], NULL, work_thread, &j), 0);
			continue;
		}
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			dc_cache *c = NULL;
			struct dc_options o;
			int rc;

			memset(&o, 0, sizeof(o));
			rc = dc_cache_open(root, &o, &c);
			if (rc)
				note_error(sh, rc);
			else
				work(c, &j);
			dc_cache_close(c);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!procs) {
			pthread_join(t[i], NULL);
			continue;
		}
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "worker status %#x", status);
	}
	ck_assert_msg(ld(&sh->errors) == 0, "%d errors, first %s",
		      ld(&sh->errors), dc_strerror(ld(&sh->first_error)));
}

static void stress_mutex(int procs, enum kind kind)
{
	const int n = 3, iters = 25;
	struct shared *sh = shared_new();
	struct dc_value k = dc_text("counter");
	struct dc_item it;

	run_workers(n, procs, kind, iters, sh);
	ck_assert_int_eq(ld(&sh->violations), 0);
	ck_assert_int_eq(ld(&sh->max_inside), 1);
	ck_assert_int_eq(ld(&sh->calls), n * iters);
	tu_item_init(&it);
	ck_assert_int_eq(dc_cache_get(cache, &k, NULL, &it, DC_NOVALUE), 0);
	ck_assert_int_eq(it.value.i, n * iters);
	shared_free(sh);
}

START_TEST(test_stress_lock_threads)
{
	stress_mutex(0, K_LOCK);
}
END_TEST

START_TEST(test_stress_lock_processes)
{
	stress_mutex(1, K_LOCK);
}
END_TEST

START_TEST(test_stress_rlock_threads)
{
	stress_mutex(0, K_RLOCK);
}
END_TEST

START_TEST(test_stress_rlock_processes)
{
	stress_mutex(1, K_RLOCK);
}
END_TEST

START_TEST(test_stress_semaphore_as_mutex)
{
	stress_mutex(_i, K_SEM);
}
END_TEST

START_TEST(test_stress_semaphore_two_holders)
{
	struct shared *sh = shared_new();
	struct dc_recipe r = recipe(cache, "recipe");

	run_workers(4, _i, K_SEM2, 15, sh);
	ck_assert_int_eq(ld(&sh->violations), 0);
	ck_assert_int_le(ld(&sh->max_inside), 2);
	ck_assert_int_eq(ld(&sh->calls), 60);
	/* Every slot came back. */
	ck_assert_int_eq(stored_int(cache, "recipe"), 2);
	ck_assert_int_eq(dc_semaphore_release(&r, 2), DC_NOTHELD);
	shared_free(sh);
}
END_TEST

START_TEST(test_stress_averager)
{
	struct shared *sh = shared_new();
	struct dc_recipe r = recipe(cache, "recipe");
	unsigned char want[64];
	double avg;

	/* 4 workers each add 0..29: total 4 * 435, count 120. */
	run_workers(4, _i, K_AVG, 30, sh);
	assert_stored_pickle(cache, "recipe", want,
			     pk_float_int(want, 4 * 435.0, 120));
	ck_assert_int_eq(dc_averager_get(&r, &avg), 0);
	ck_assert(avg == 14.5);
	shared_free(sh);
}
END_TEST

START_TEST(test_stress_throttle)
{
	struct shared *sh = shared_new();
	struct dc_recipe r = recipe(cache, "recipe");
	int calls;

	/* 10 per second shared by 3 workers for 1 s: the initial 10 plus
	 * about 10 more, whatever the number of workers. */
	ck_assert_int_eq(dc_throttle_init(&r, 10, 1), 0);
	run_workers(3, _i, K_THROTTLE, 0, sh);
	calls = ld(&sh->calls);
	ck_assert_msg(calls >= 15 && calls <= 26, "%d calls", calls);
	shared_free(sh);
}
END_TEST

/* ------------------------------------------------------------------ */
/* FanoutCache                                                        */
/* ------------------------------------------------------------------ */

START_TEST(test_fanout_recipes)
{
	static const unsigned char none5[] = { 0x80, 0x05, 0x4e, 0x2e };
	struct dc_recipe l = recipe(cache, "lock");
	struct dc_recipe rl = recipe(cache, "rlock");
	struct dc_recipe s = recipe(cache, "sem");
	struct dc_recipe a = recipe(cache, "avg");
	struct dc_recipe t = recipe(cache, "thr");
	unsigned char want[128];
	struct waiter_arg w;
	pthread_t th;
	double avg;

	ck_assert_int_eq(dc_cache_shards(cache), 3);
	ck_assert_int_eq(dc_lock_acquire(&l, FOREVER), 0);
	assert_stored_pickle(cache, "lock", none5, 4);
	ck_assert_int_eq(dc_lock_acquire(&l, 0.05), DC_EXISTS);
	ck_assert_int_eq(dc_lock_release(&l), 0);

	ck_assert_int_eq(dc_rlock_acquire(&rl, FOREVER), 0);
	ck_assert_int_eq(dc_rlock_acquire(&rl, FOREVER), 0);
	assert_stored_pickle(cache, "rlock", want,
			     pk_str_int(want, my_owner(), 2));
	start_waiter(&th, &w, &rl, 1, 0.1);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, DC_EXISTS);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), 0);
	ck_assert_int_eq(dc_rlock_release(&rl), DC_NOTHELD);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_semaphore_acquire(&s, 3, FOREVER), 0);
	ck_assert_int_eq(dc_semaphore_acquire(&s, 3, 0.05), DC_EXISTS);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dc_semaphore_release(&s, 3), 0);
	ck_assert_int_eq(dc_semaphore_release(&s, 3), DC_NOTHELD);

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(dc_averager_add(&a, i), 0);
	ck_assert_int_eq(dc_averager_pop(&a, &avg), 0);
	ck_assert(avg == 4.5);
	ck_assert_int_eq(dc_averager_get(&a, &avg), DC_NOTFOUND);

	ck_assert_int_eq(dc_throttle_init(&t, 5, 1), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(dc_throttle_wait(&t, 5, 1), 0);
}
END_TEST

Suite *recipes_suite(void)
{
	Suite *s = suite_create("recipes");
	TCase *tc = tu_tcase(s, "recipes", setup, teardown, 60);
	TCase *st = tu_tcase(s, "recipes-stress", setup, teardown, 120);
	TCase *fo = tu_tcase(s, "recipes-fanout", setup_fanout, teardown, 120);

	tcase_add_test(tc, test_averager_numbers);
	tcase_add_test(tc, test_averager_stores_python_tuple);
	tcase_add_test(tc, test_averager_reads_int_total);
	tcase_add_test(tc, test_averager_wrong_stored_types);
	tcase_add_test(tc, test_averager_expire_and_tag);
	tcase_add_test(tc, test_lock_stores_pickled_none);
	tcase_add_test(tc, test_lock_follows_pickle_protocol);
	tcase_add_loop_test(tc, test_recipes_at_every_protocol, 0, 6);
	tcase_add_test(tc, test_protocol_negative_and_too_high);
	tcase_add_test(tc, test_lock_blocks_second_thread);
	tcase_add_test(tc, test_wait_timeouts);
	tcase_add_test(tc, test_lock_expire);
	tcase_add_test(tc, test_lock_other_keys);
	tcase_add_test(tc, test_rlock_nesting_and_stored_tuple);
	tcase_add_test(tc, test_rlock_other_thread_waits);
	tcase_add_test(tc, test_rlock_release_by_other_is_notheld);
	tcase_add_test(tc, test_rlock_wrong_stored_types);
	tcase_add_test(tc, test_semaphore_bounded_three);
	tcase_add_test(tc, test_semaphore_doctest_value_two);
	tcase_add_test(tc, test_semaphore_wrong_stored_types);
	tcase_add_test(tc, test_throttle_two_per_second);
	tcase_add_test(tc, test_throttle_stores_python_tuples);
	tcase_add_test(tc, test_throttle_errors);
	tcase_add_test(tc, test_barrier_serializes_two_threads);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_inside_caller_transaction);
	tcase_add_test(tc, test_reads_older_protocols);
	tcase_add_test(tc, test_with_serializer);

	/* Loop index _i: 0 threads, 1 processes. */
	tcase_add_test(st, test_stress_lock_threads);
	tcase_add_test(st, test_stress_lock_processes);
	tcase_add_test(st, test_stress_rlock_threads);
	tcase_add_test(st, test_stress_rlock_processes);
	tcase_add_loop_test(st, test_stress_semaphore_as_mutex, 0, 2);
	tcase_add_loop_test(st, test_stress_semaphore_two_holders, 0, 2);
	tcase_add_loop_test(st, test_stress_averager, 0, 2);
	tcase_add_loop_test(st, test_stress_throttle, 0, 2);

	/* The same on a FanoutCache, whose transactions lock every shard. */
	tcase_add_test(fo, test_fanout_recipes);
	tcase_add_test(fo, test_stress_lock_threads);
	tcase_add_test(fo, test_stress_rlock_processes);
	tcase_add_loop_test(fo, test_stress_semaphore_two_holders, 0, 2);
	tcase_add_loop_test(fo, test_stress_averager, 0, 2);
	return s;
}
