/* check_pickle.c - the internal pickle codec against CPython's bytes
 * SPDX-License-Identifier: MIT
 *
 * Fixtures are pickle.dumps(obj, protocol=P) and pickletools.optimize()
 * of it as /usr/bin/python3 (CPython 3.11) wrote them; the exhaustive
 * randomized comparison is tests/interop/test_pickle.py.
 */
#include "../core/src/pickle.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *pickle_suite(void);

#define ARRAY_N(a) (sizeof(a) / sizeof((a)[0]))

#define S(s)                                                                   \
	{                                                                      \
		.kind = DC_PY_STR, .data = (s), .len = sizeof(s) - 1           \
	}
#define B(s)                                                                   \
	{                                                                      \
		.kind = DC_PY_BYTES, .data = (s), .len = sizeof(s) - 1         \
	}
#define I(v)                                                                   \
	{                                                                      \
		.kind = DC_PY_INT, .i = (v)                                    \
	}
#define F(v)                                                                   \
	{                                                                      \
		.kind = DC_PY_FLOAT, .f = (v)                                  \
	}
#define T(s)                                                                   \
	{                                                                      \
		.kind = DC_PY_TYPE, .data = (s), .len = sizeof(s) - 1          \
	}
#define NONE                                                                   \
	{                                                                      \
		.kind = DC_PY_NONE                                             \
	}
#define BOOL(v)                                                                \
	{                                                                      \
		.kind = DC_PY_BOOL, .i = (v)                                   \
	}

static const struct dc_py none_obj[] = { NONE };
static const struct dc_py a1[] = { S("a"), I(1) };
static const struct dc_py typed_key[] = { S("f"),   I(1),     NONE,
					  T("int"), T("int"), T("str") };
static const struct dc_py ints[] = {
	I(255),
	I(256),
	I(65535),
	I(65536),
	I(-1),
	I(2147483647),
	I(2147483648),
	I(-2147483648LL),
	I(-2147483649LL),
	I(INT64_MAX),
	I(INT64_MIN),
	I(-128),
	I(-129),
};
static const struct dc_py singletons[] = {
	B(""),         B(""),         S("a"), S("a"),
	S("\xc3\xa9"), S("\xc3\xa9"), B("x"), B("x"),
};
static const struct dc_py nonetype[] = { T("NoneType"), T("NoneType"),
					 T("type") };
static const struct dc_py inner[] = { S("x"), F(1.5), NONE };
static const struct dc_py mid[] = {
	{ .kind = DC_PY_TUPLE, .items = inner, .len = 3 },
};
static const struct dc_py nested[] = {
	{ .kind = DC_PY_TUPLE, .items = mid, .len = 1 },
};
static const struct dc_py strs[] = { S("ab"), S("ab"), B("cd"), B("cd") };
static const struct dc_py bools[] = { BOOL(1), BOOL(0), F(0.0), F(-2.5) };

static const struct {
	const struct dc_py *items;
	size_t n;
	int tuple;
} objs[] = {
	{ none_obj, 1, 0 },
	{ a1, ARRAY_N(a1), 1 },
	{ typed_key, ARRAY_N(typed_key), 1 },
	{ ints, ARRAY_N(ints), 1 },
	{ singletons, ARRAY_N(singletons), 1 },
	{ nonetype, ARRAY_N(nonetype), 1 },
	{ nested, 1, 1 },
	{ strs, ARRAY_N(strs), 1 },
	{ bools, ARRAY_N(bools), 1 },
};

/* In the order of objs[], protocol 4 then 5. */
static const struct {
	const char *name;
	int proto;
	const char *dumps, *optimized;
} fixtures[] = {
	{ "none", 4, "80044e2e", "80044e2e" },
	{ "none", 5, "80054e2e", "80054e2e" },
	{ "a1", 4, "80049509000000000000008c0161944b0186942e",
	  "80049507000000000000008c01614b01862e" },
	{ "a1", 5, "80059509000000000000008c0161944b0186942e",
	  "80059507000000000000008c01614b01862e" },
	{ "typed_key", 4,
	  "8004952a00000000000000288c0166944b014e8c086275696c74696e73948c03696e"
	  "74949394680368018c0373747294939474942e",
	  "8004952500000000000000288c01664b014e8c086275696c74696e73948c03696e74"
	  "9394680168008c0373747293742e" },
	{ "typed_key", 5,
	  "8005952a00000000000000288c0166944b014e8c086275696c74696e73948c03696e"
	  "74949394680368018c0373747294939474942e",
	  "8005952500000000000000288c01664b014e8c086275696c74696e73948c03696e74"
	  "9394680168008c0373747293742e" },
	{ "ints", 4,
	  "8004954c00000000000000284bff4d00014dffff4a000001004affffffff4affffff"
	  "7f8a0500000080004a000000808a05ffffff7fff8a08ffffffffffffff7f8a080000"
	  "0000000000804a80ffffff4a7fffffff74942e",
	  "8004954b00000000000000284bff4d00014dffff4a000001004affffffff4affffff"
	  "7f8a0500000080004a000000808a05ffffff7fff8a08ffffffffffffff7f8a080000"
	  "0000000000804a80ffffff4a7fffffff742e" },
	{ "ints", 5,
	  "8005954c00000000000000284bff4d00014dffff4a000001004affffffff4affffff"
	  "7f8a0500000080004a000000808a05ffffff7fff8a08ffffffffffffff7f8a080000"
	  "0000000000804a80ffffff4a7fffffff74942e",
	  "8005954b00000000000000284bff4d00014dffff4a000001004affffffff4affffff"
	  "7f8a0500000080004a000000808a05ffffff7fff8a08ffffffffffffff7f8a080000"
	  "0000000000804a80ffffff4a7fffffff742e" },
	{ "singletons", 4,
	  "8004951c000000000000002843009468008c01619468018c02c3a994680243017894"
	  "680374942e",
	  "8004951b000000000000002843009468008c01619468018c02c3a994680243017894"
	  "6803742e" },
	{ "singletons", 5,
	  "8005951c000000000000002843009468008c01619468018c02c3a994680243017894"
	  "680374942e",
	  "8005951b000000000000002843009468008c01619468018c02c3a994680243017894"
	  "6803742e" },
	{ "nonetype", 4,
	  "80049520000000000000008c086275696c74696e73948c04747970659493944e8594"
	  "52946804680287942e",
	  "8004951c000000000000008c086275696c74696e738c047479706593944e85529468"
	  "016800872e" },
	{ "nonetype", 5,
	  "80059520000000000000008c086275696c74696e73948c04747970659493944e8594"
	  "52946804680287942e",
	  "8005951c000000000000008c086275696c74696e738c047479706593944e85529468"
	  "016800872e" },
	{ "nested", 4,
	  "80049515000000000000008c017894473ff80000000000004e8794859485942e",
	  "80049511000000000000008c0178473ff80000000000004e8785852e" },
	{ "nested", 5,
	  "80059515000000000000008c017894473ff80000000000004e8794859485942e",
	  "80059511000000000000008c0178473ff80000000000004e8785852e" },
	{ "strs", 4,
	  "8004951800000000000000288c026162948c02616294430263649443026364947494"
	  "2e",
	  "8004951300000000000000288c0261628c0261624302636443026364742e" },
	{ "strs", 5,
	  "8005951800000000000000288c026162948c02616294430263649443026364947494"
	  "2e",
	  "8005951300000000000000288c0261628c0261624302636443026364742e" },
	{ "bools", 4,
	  "800495180000000000000028888947000000000000000047c0040000000000007494"
	  "2e",
	  "800495170000000000000028888947000000000000000047c004000000000000742"
	  "e" },
	{ "bools", 5,
	  "800595180000000000000028888947000000000000000047c0040000000000007494"
	  "2e",
	  "800595170000000000000028888947000000000000000047c004000000000000742"
	  "e" },
};

static const struct {
	int is_bytes;
	char ch;
	size_t n;
	int64_t tail; /* -1: a 1-tuple */
	size_t len;
	const char *head, *end;
	size_t olen;
	const char *ohead, *oend;
} big[] = {
	{ 0, 's', 65530, 1, 65561,
	  "800595000001000000000058faff00007373737373737373",
	  "737373737373737373949505000000000000004b0186942e", 65550,
	  "800595010001000000000058faff00007373737373737373",
	  "73737373737373737373737373737373737373734b01862e" },
	{ 0, 's', 65536, 1, 65558,
	  "800558000001007373737373737373737373737373737373",
	  "737373737373737373950600000000000000944b0186942e", 65556,
	  "800558000001007373737373737373737373737373737373",
	  "73737373737373737373739504000000000000004b01862e" },
	{ 1, 'b', 65536, -1, 65556,
	  "800542000001006262626262626262626262626262626262",
	  "62626262626262626262629504000000000000009485942e", 65545,
	  "800542000001006262626262626262626262626262626262",
	  "62626262626262626262626262626262626262626262852e" },
	{ 0, 'x', 256, -1, 276,
	  "800595090100000000000058000100007878787878787878",
	  "78787878787878787878787878787878787878789485942e", 274,
	  "800595070100000000000058000100007878787878787878",
	  "78787878787878787878787878787878787878787878852e" },
	{ 0, 'x', 255, -1, 272,
	  "80059505010000000000008cff7878787878787878787878",
	  "78787878787878787878787878787878787878789485942e", 270,
	  "80059503010000000000008cff7878787878787878787878",
	  "78787878787878787878787878787878787878787878852e" },
	{ 0, 'y', 65529, 7, 65551,
	  "800595040001000000000058f9ff00007979797979797979",
	  "797979797979797979797979797979797979944b0786942e", 65549,
	  "800595000001000000000058f9ff00007979797979797979",
	  "79797979797979797979797979797979797979794b07862e" },
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

static void prefill(struct dc_buf *b)
{
	b->data = malloc(4);
	ck_assert_ptr_nonnull(b->data);
	memcpy(b->data, "pre", 4);
	b->len = 3;
	b->cap = 4;
}

static void assert_dumps(const struct dc_py *items, size_t n, int tuple,
			 int proto, int opt, const char *want)
{
	struct dc_buf b = DC_BUF_INIT;
	char *got;

	/* Appends after what the buffer holds. */
	prefill(&b);
	ck_assert_int_eq(dc_pickle_dumps(items, n, tuple, proto, opt, &b), 0);
	ck_assert_uint_ge(b.len, 3);
	ck_assert_mem_eq(b.data, "pre", 3);
	got = tu_hex(b.data + 3, b.len - 3);
	ck_assert_str_eq(got, want);
	free(got);
	dc_buf_release(&b);
}

START_TEST(test_dumps_matches_cpython)
{
	for (size_t i = 0; i < ARRAY_N(fixtures); i++) {
		size_t o = i / 2;

		ck_assert_int_eq(fixtures[i].proto, 4 + (int)(i % 2));
		ck_assert_uint_lt(o, ARRAY_N(objs));
		assert_dumps(objs[o].items, objs[o].n, objs[o].tuple,
			     fixtures[i].proto, 0, fixtures[i].dumps);
		assert_dumps(objs[o].items, objs[o].n, objs[o].tuple,
			     fixtures[i].proto, 1, fixtures[i].optimized);
	}
}
END_TEST

/* Long str and bytes: BINUNICODE past 255 bytes, the frame closing at
 * 64 KiB, and payloads of 64 KiB written outside any frame. */
START_TEST(test_dumps_long_and_frames)
{
	for (size_t i = 0; i < ARRAY_N(big); i++) {
		char *s = malloc(big[i].n);
		struct dc_py items[2] = { { 0 } };
		struct dc_buf b = DC_BUF_INIT;
		size_t n = big[i].tail < 0 ? 1 : 2;

		ck_assert_ptr_nonnull(s);
		memset(s, big[i].ch, big[i].n);
		items[0].kind = big[i].is_bytes ? DC_PY_BYTES : DC_PY_STR;
		items[0].data = s;
		items[0].len = big[i].n;
		items[1].kind = DC_PY_INT;
		items[1].i = big[i].tail;
		for (int opt = 0; opt <= 1; opt++) {
			char *h;

			b.len = 0;
			ck_assert_int_eq(
			    dc_pickle_dumps(items, n, 1, 5, opt, &b), 0);
			ck_assert_uint_eq(b.len,
					  opt ? big[i].olen : big[i].len);
			h = tu_hex(b.data, 24);
			ck_assert_str_eq(h, opt ? big[i].ohead : big[i].head);
			free(h);
			h = tu_hex(b.data + b.len - 24, 24);
			ck_assert_str_eq(h, opt ? big[i].oend : big[i].end);
			free(h);
		}
		dc_buf_release(&b);
		free(s);
	}
}
END_TEST

START_TEST(test_dumps_rejects)
{
	struct dc_buf b = DC_BUF_INIT;
	struct dc_py bad_utf8 = { .kind = DC_PY_STR, .data = "\xff", .len = 1 };
	struct dc_py surrogate = { .kind = DC_PY_STR,
				   .data = "\xed\xa0\x80",
				   .len = 3 };
	struct dc_py ellipsis = { .kind = DC_PY_TYPE,
				  .data = "ellipsis",
				  .len = 8 };
	struct dc_py bad_kind = { .kind = (enum dc_py_kind)42 };
	struct dc_py one = { .kind = DC_PY_INT, .i = 1 };

	prefill(&b);
	ck_assert_int_eq(dc_pickle_dumps(&one, 1, 1, 2, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&one, 1, 1, 6, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&one, 2, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&bad_utf8, 1, 1, 5, 1, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&surrogate, 1, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&ellipsis, 1, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&bad_kind, 1, 1, 5, 0, &b), DC_INVAL);
	/* Nothing was left behind. */
	ck_assert_uint_eq(b.len, 3);
	dc_buf_release(&b);
}
END_TEST

/* Every fixture reads back as what was pickled. */
START_TEST(test_unpickle_round_trip)
{
	unsigned char data[512];
	struct dc_py got[16];

	for (size_t i = 0; i < ARRAY_N(fixtures); i++) {
		const struct dc_py *want = objs[i / 2].items;
		size_t len, n, k;
		int is_tuple;

		if (want == nested)
			continue;
		for (int opt = 0; opt <= 1; opt++) {
			len = unhex(opt ? fixtures[i].optimized
					: fixtures[i].dumps,
				    data);
			ck_assert_int_eq(
			    dc_unpickle(data, len, got, 16, &n, &is_tuple), 0);
			ck_assert_int_eq(is_tuple, objs[i / 2].tuple);
			ck_assert_uint_eq(n, objs[i / 2].n);
			for (k = 0; k < n; k++) {
				ck_assert_int_eq(got[k].kind, want[k].kind);
				ck_assert_int_eq(got[k].i, want[k].i);
				ck_assert(got[k].f == want[k].f);
				ck_assert_uint_eq(got[k].len, want[k].len);
				if (want[k].len)
					ck_assert_mem_eq(got[k].data,
							 want[k].data,
							 want[k].len);
			}
		}
	}
}
END_TEST

/* Protocols 2 and 3 as CPython writes them (C and pure-Python
 * picklers): GLOBAL with Python 2 names, BINPUT, LONG1. */
START_TEST(test_unpickle_old_protocols)
{
	static const char *const p2 =
	    "8002284b015802000000c3a971008a060000000000014afbffffff473ff80"
	    "000000000004e88635f5f6275696c74696e5f5f0a6c6f6e670a7101635f5f"
	    "6275696c74696e5f5f0a747970650a71024e8571035271047471052e";
	static const char *const p3 =
	    "8003284b015802000000c3a971008a06000000000001636275696c74696e7"
	    "30a7374720a7101636275696c74696e730a747970650a71024e8571035271"
	    "047471052e";
	unsigned char data[256];
	struct dc_py got[16];
	size_t len, n;
	int is_tuple;

	len = unhex(p2, data);
	ck_assert_int_eq(dc_unpickle(data, len, got, 16, &n, &is_tuple), 0);
	ck_assert_uint_eq(n, 9);
	ck_assert_int_eq(got[0].kind, DC_PY_INT);
	ck_assert_int_eq(got[1].kind, DC_PY_STR);
	ck_assert_mem_eq(got[1].data, "\xc3\xa9", 2);
	ck_assert_int_eq(got[2].i, 1099511627776LL);
	ck_assert_int_eq(got[3].i, -5);
	ck_assert(got[4].f == 1.5);
	ck_assert_int_eq(got[5].kind, DC_PY_NONE);
	ck_assert_int_eq(got[6].kind, DC_PY_BOOL);
	ck_assert_int_eq(got[6].i, 1);
	ck_assert_int_eq(got[7].kind, DC_PY_TYPE);
	ck_assert_uint_eq(got[7].len, 3);
	ck_assert_mem_eq(got[7].data, "int", 3); /* __builtin__.long */
	ck_assert_int_eq(got[8].kind, DC_PY_TYPE);
	ck_assert_str_eq(got[8].data, "NoneType");
	len = unhex(p3, data);
	ck_assert_int_eq(dc_unpickle(data, len, got, 16, &n, &is_tuple), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(got[3].data, "str", 3);
	ck_assert_int_eq(dc_unpickle(data, len, got, 4, &n, &is_tuple),
			 DC_INVAL);
}
END_TEST

START_TEST(test_unpickle_rejects)
{
	/* [1], {'a': 1}, ((1,),), 2**64, (1, [2]) at protocol 5 */
	static const char *const other[] = {
		"80059506000000000000005d944b01612e",
		"8005950a000000000000007d948c0161944b01732e",
		"80059507000000000000004b01859485942e",
		"8005950c000000000000008a090000000000000000012e",
		"8005950a000000000000004b015d944b026186942e",
	};
	unsigned char data[256];
	struct dc_py got[4];
	size_t len, n;
	int is_tuple;

	for (size_t i = 0; i < ARRAY_N(other); i++) {
		len = unhex(other[i], data);
		ck_assert_int_eq(dc_unpickle(data, len, got, 4, &n, &is_tuple),
				 DC_TYPE);
	}
	/* Every truncation of ('abc', 1) is corrupt, and so is junk. */
	len = unhex("8005950b000000000000008c03616263944b0186942e", data);
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_eq(dc_unpickle(data, cut, got, 4, &n, &is_tuple),
				 DC_CORRUPT);
	data[len] = '.';
	ck_assert_int_eq(dc_unpickle(data, len + 1, got, 4, &n, &is_tuple),
			 DC_CORRUPT);
	ck_assert_int_eq(dc_unpickle("\x80\x05\xff.", 4, got, 4, &n, &is_tuple),
			 DC_CORRUPT);
	/* A fetch of a memo slot never stored. */
	ck_assert_int_eq(
	    dc_unpickle("\x80\x05h\x03.", 5, got, 4, &n, &is_tuple),
	    DC_CORRUPT);
}
END_TEST

Suite *pickle_suite(void)
{
	Suite *s = suite_create("pickle");
	TCase *tc = tu_tcase(s, "core", NULL, NULL, 60);

	tcase_add_test(tc, test_dumps_matches_cpython);
	tcase_add_test(tc, test_dumps_long_and_frames);
	tcase_add_test(tc, test_dumps_rejects);
	tcase_add_test(tc, test_unpickle_round_trip);
	tcase_add_test(tc, test_unpickle_old_protocols);
	tcase_add_test(tc, test_unpickle_rejects);
	return s;
}
