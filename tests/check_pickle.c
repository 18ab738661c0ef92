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
#include <locale.h>
#include <math.h>
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

/* In the order of objs[], protocols 0, 1 and 2: text opcodes, BINPUT,
 * Python 2 globals, bytes as _codecs.encode(str, 'latin1'). */
static const struct {
	const char *name;
	int proto;
	const char *dumps, *optimized;
} old_fixtures[] = {
	{ "none", 0, "4e2e", "4e2e" },
	{ "none", 1, "4e2e", "4e2e" },
	{ "none", 2, "80024e2e", "80024e2e" },
	{ "a1", 0, "2856610a70300a49310a7470310a2e", "2856610a49310a742e" },
	{ "a1", 1, "2858010000006171004b017471012e", "285801000000614b01742e" },
	{ "a1", 2, "800258010000006171004b018671012e",
	  "80025801000000614b01862e" },
	{ "typed_key", 0,
	  "2856660a70300a49310a4e635f5f6275696c74696e5f5f0a6c6f6e670a70310a67"
	  "310a635f5f6275696c74696e5f5f0a756e69636f64650a70320a7470330a2e",
	  "2856660a49310a4e635f5f6275696c74696e5f5f0a6c6f6e670a70300a67300a63"
	  "5f5f6275696c74696e5f5f0a756e69636f64650a742e" },
	{ "typed_key", 1,
	  "2858010000006671004b014e635f5f6275696c74696e5f5f0a6c6f6e670a710168"
	  "01635f5f6275696c74696e5f5f0a756e69636f64650a71027471032e",
	  "285801000000664b014e635f5f6275696c74696e5f5f0a6c6f6e670a7100680063"
	  "5f5f6275696c74696e5f5f0a756e69636f64650a742e" },
	{ "typed_key", 2,
	  "80022858010000006671004b014e635f5f6275696c74696e5f5f0a6c6f6e670a71"
	  "016801635f5f6275696c74696e5f5f0a756e69636f64650a71027471032e",
	  "8002285801000000664b014e635f5f6275696c74696e5f5f0a6c6f6e670a710068"
	  "00635f5f6275696c74696e5f5f0a756e69636f64650a742e" },
	{ "ints", 0,
	  "28493235350a493235360a4936353533350a4936353533360a492d310a49323134"
	  "373438333634370a4c323134373438333634384c0a492d32313437343833363438"
	  "0a4c2d323134373438333634394c0a4c3932323333373230333638353437373538"
	  "30374c0a4c2d393232333337323033363835343737353830384c0a492d3132380a"
	  "492d3132390a7470300a2e",
	  "28493235350a493235360a4936353533350a4936353533360a492d310a49323134"
	  "373438333634370a4c323134373438333634384c0a492d32313437343833363438"
	  "0a4c2d323134373438333634394c0a4c3932323333373230333638353437373538"
	  "30374c0a4c2d393232333337323033363835343737353830384c0a492d3132380a"
	  "492d3132390a742e" },
	{ "ints", 1,
	  "284bff4d00014dffff4a000001004affffffff4affffff7f4c3231343734383336"
	  "34384c0a4a000000804c2d323134373438333634394c0a4c393232333337323033"
	  "363835343737353830374c0a4c2d39323233333732303336383534373735383038"
	  "4c0a4a80ffffff4a7fffffff7471002e",
	  "284bff4d00014dffff4a000001004affffffff4affffff7f4c3231343734383336"
	  "34384c0a4a000000804c2d323134373438333634394c0a4c393232333337323033"
	  "363835343737353830374c0a4c2d39323233333732303336383534373735383038"
	  "4c0a4a80ffffff4a7fffffff742e" },
	{ "ints", 2,
	  "8002284bff4d00014dffff4a000001004affffffff4affffff7f8a050000008000"
	  "4a000000808a05ffffff7fff8a08ffffffffffffff7f8a0800000000000000804a"
	  "80ffffff4a7fffffff7471002e",
	  "8002284bff4d00014dffff4a000001004affffffff4affffff7f8a050000008000"
	  "4a000000808a05ffffff7fff8a08ffffffffffffff7f8a0800000000000000804a"
	  "80ffffff4a7fffffff742e" },
	{ "singletons", 0,
	  "28635f5f6275696c74696e5f5f0a62797465730a70300a28745270310a67310a56"
	  "610a70320a67320a56e90a70330a67330a635f636f646563730a656e636f64650a"
	  "70340a2856780a70350a566c6174696e310a70360a7470370a5270380a67380a74"
	  "70390a2e",
	  "28635f5f6275696c74696e5f5f0a62797465730a28745270300a67300a56610a70"
	  "310a67310a56e90a70320a67320a635f636f646563730a656e636f64650a285678"
	  "0a566c6174696e310a745270330a67330a742e" },
	{ "singletons", 1,
	  "28635f5f6275696c74696e5f5f0a62797465730a71002952710168015801000000"
	  "61710268025802000000c3a971036803635f636f646563730a656e636f64650a71"
	  "0428580100000078710558060000006c6174696e31710674710752710868087471"
	  "092e",
	  "28635f5f6275696c74696e5f5f0a62797465730a29527100680058010000006171"
	  "0168015802000000c3a971026802635f636f646563730a656e636f64650a285801"
	  "0000007858060000006c6174696e31745271036803742e" },
	{ "singletons", 2,
	  "800228635f5f6275696c74696e5f5f0a62797465730a7100295271016801580100"
	  "000061710268025802000000c3a971036803635f636f646563730a656e636f6465"
	  "0a7104580100000078710558060000006c6174696e317106867107527108680874"
	  "71092e",
	  "800228635f5f6275696c74696e5f5f0a62797465730a2952710068005801000000"
	  "61710168015802000000c3a971026802635f636f646563730a656e636f64650a58"
	  "010000007858060000006c6174696e31865271036803742e" },
	{ "nonetype", 0,
	  "28635f5f6275696c74696e5f5f0a747970650a70300a284e7470310a5270320a67"
	  "320a67300a7470330a2e",
	  "28635f5f6275696c74696e5f5f0a747970650a70300a284e745270310a67310a67"
	  "300a742e" },
	{ "nonetype", 1,
	  "28635f5f6275696c74696e5f5f0a747970650a7100284e74710152710268026800"
	  "7471032e",
	  "28635f5f6275696c74696e5f5f0a747970650a7100284e7452710168016800742"
	  "e" },
	{ "nonetype", 2,
	  "8002635f5f6275696c74696e5f5f0a747970650a71004e85710152710268026800"
	  "8771032e",
	  "8002635f5f6275696c74696e5f5f0a747970650a71004e8552710168016800872"
	  "e" },
	{ "nested", 0,
	  "28282856780a70300a46312e350a4e7470310a7470320a7470330a2e",
	  "28282856780a46312e350a4e7474742e" },
	{ "nested", 1,
	  "2828285801000000787100473ff80000000000004e7471017471027471032e",
	  "282828580100000078473ff80000000000004e7474742e" },
	{ "nested", 2,
	  "80025801000000787100473ff80000000000004e8771018571028571032e",
	  "8002580100000078473ff80000000000004e8785852e" },
	{ "strs", 0,
	  "285661620a70300a5661620a70310a635f636f646563730a656e636f64650a7032"
	  "0a285663640a70330a566c6174696e310a70340a7470350a5270360a67320a2856"
	  "63640a70370a67340a7470380a5270390a747031300a2e",
	  "285661620a5661620a635f636f646563730a656e636f64650a70300a285663640a"
	  "566c6174696e310a70310a745267300a285663640a67310a7452742e" },
	{ "strs", 1,
	  "28580200000061627100580200000061627101635f636f646563730a656e636f64"
	  "650a71022858020000006364710358060000006c6174696e317104747105527106"
	  "680228580200000063647107680474710852710974710a2e",
	  "285802000000616258020000006162635f636f646563730a656e636f64650a7100"
	  "285802000000636458060000006c6174696e317101745268002858020000006364"
	  "68017452742e" },
	{ "strs", 2,
	  "800228580200000061627100580200000061627101635f636f646563730a656e63"
	  "6f64650a710258020000006364710358060000006c6174696e3171048671055271"
	  "066802580200000063647107680486710852710974710a2e",
	  "8002285802000000616258020000006162635f636f646563730a656e636f64650a"
	  "71005802000000636458060000006c6174696e3171018652680058020000006364"
	  "68018652742e" },
	{ "bools", 0, "284930310a4930300a46302e300a462d322e350a7470300a2e",
	  "284930310a4930300a46302e300a462d322e350a742e" },
	{ "bools", 1,
	  "284930310a4930300a47000000000000000047c0040000000000007471002e",
	  "284930310a4930300a47000000000000000047c004000000000000742e" },
	{ "bools", 2, "800228888947000000000000000047c0040000000000007471002e",
	  "800228888947000000000000000047c004000000000000742e" },
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

/* Protocols 0 to 2 write other opcodes for every kind: INT/LONG/FLOAT
 * text, UNICODE, PUT/GET (0), BINPUT, MARK ... TUPLE (0 and 1),
 * __builtin__ globals with Python 2 names, bytes as a reduce. */
START_TEST(test_dumps_old_protocols_match_cpython)
{
	for (size_t i = 0; i < ARRAY_N(old_fixtures); i++) {
		size_t o = i / 3;

		ck_assert_int_eq(old_fixtures[i].proto, (int)(i % 3));
		ck_assert_uint_lt(o, ARRAY_N(objs));
		assert_dumps(objs[o].items, objs[o].n, objs[o].tuple,
			     old_fixtures[i].proto, 0, old_fixtures[i].dumps);
		assert_dumps(objs[o].items, objs[o].n, objs[o].tuple,
			     old_fixtures[i].proto, 1,
			     old_fixtures[i].optimized);
	}
}
END_TEST

/* Protocol 0 floats are repr(): the shortest digits that read back,
 * fixed or scientific as Python chooses (pickle.dumps(f, 0)[1:-2]). */
static const struct {
	double f;
	const char *repr;
} reprs[] = {
	{ 0.1, "0.1" },
	{ 1e16, "1e+16" },
	{ 1234567890123456.0, "1234567890123456.0" },
	{ 123456789012345678.0, "1.2345678901234568e+17" },
	{ 1e-5, "1e-05" },
	{ 0.0001, "0.0001" },
	{ 0.00012345, "0.00012345" },
	{ 5e-324, "5e-324" },
	{ 0x1p-1017, "7.120236347223045e-307" }, /* a power of two */
	{ 0x1p-296, "7.854549544476363e-90" },
	{ 1.7976931348623157e308, "1.7976931348623157e+308" },
	{ 100.0, "100.0" },
	{ -2.5, "-2.5" },
	{ 0.0, "0.0" },
	{ -0.0, "-0.0" },
	{ 1.0 / 3, "0.3333333333333333" },
	{ 2.0 / 3, "0.6666666666666666" },
	{ 1e22, "1e+22" },
	{ 9007199254740993.0, "9007199254740992.0" },
	{ INFINITY, "inf" },
	{ -INFINITY, "-inf" },
	{ NAN, "nan" },
};

START_TEST(test_dumps_float_repr_protocol0)
{
	struct dc_buf b = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py got;
	size_t n;
	int is_tuple;

	for (size_t i = 0; i < ARRAY_N(reprs); i++) {
		struct dc_py f = F(reprs[i].f);
		size_t rl = strlen(reprs[i].repr);

		b.len = 0;
		ck_assert_int_eq(dc_pickle_dumps(&f, 1, 0, 0, 0, &b), 0);
		ck_assert_uint_eq(b.len, rl + 3);
		ck_assert_msg(b.data[0] == 'F' &&
				  memcmp(b.data + 1, reprs[i].repr, rl) == 0 &&
				  memcmp(b.data + 1 + rl, "\n.", 2) == 0,
			      "%s: %.*s", reprs[i].repr, (int)b.len, b.data);
		ck_assert_int_eq(
		    dc_unpickle(b.data, b.len, &got, 1, &n, &is_tuple, &text),
		    0);
		ck_assert_int_eq(got.kind, DC_PY_FLOAT);
		if (isnan(reprs[i].f))
			ck_assert(isnan(got.f));
		else
			ck_assert(memcmp(&got.f, &reprs[i].f, 8) == 0);
	}
	dc_buf_release(&b);
	dc_buf_release(&text);
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
	ck_assert_int_eq(dc_pickle_dumps(&one, 1, 1, -1, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&one, 1, 1, 6, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&one, 2, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&bad_utf8, 1, 1, 5, 1, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&surrogate, 1, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&ellipsis, 1, 0, 5, 0, &b), DC_INVAL);
	ck_assert_int_eq(dc_pickle_dumps(&bad_kind, 1, 1, 5, 0, &b), DC_INVAL);
	/* Python 2 globals are ASCII (Python: UnicodeEncodeError). */
	{
		struct dc_py t = T("\xc3\xa9");

		ck_assert_int_eq(dc_pickle_dumps(&t, 1, 0, 3, 0, &b), 0);
		b.len = 3;
		ck_assert_int_eq(dc_pickle_dumps(&t, 1, 0, 2, 0, &b), DC_INVAL);
	}
	/* Nothing was left behind. */
	ck_assert_uint_eq(b.len, 3);
	dc_buf_release(&b);
}
END_TEST

/* The pickle @hex reads back as objs[@o]. */
static void assert_reads(const char *hex, size_t o, struct dc_buf *text)
{
	const struct dc_py *want = objs[o].items;
	unsigned char data[512];
	struct dc_py got[16];
	size_t len, n;
	int is_tuple;

	ck_assert_uint_lt(strlen(hex) / 2, sizeof(data));
	len = unhex(hex, data);
	ck_assert_int_eq(dc_unpickle(data, len, got, 16, &n, &is_tuple, text),
			 0);
	ck_assert_int_eq(is_tuple, objs[o].tuple);
	ck_assert_uint_eq(n, objs[o].n);
	for (size_t k = 0; k < n; k++) {
		ck_assert_int_eq(got[k].kind, want[k].kind);
		ck_assert_int_eq(got[k].i, want[k].i);
		ck_assert(got[k].f == want[k].f);
		ck_assert_uint_eq(got[k].len, want[k].len);
		if (want[k].len)
			ck_assert_mem_eq(got[k].data, want[k].data,
					 want[k].len);
	}
}

/* Every fixture, of every protocol, reads back as what was pickled. */
START_TEST(test_unpickle_round_trip)
{
	struct dc_buf text = DC_BUF_INIT;

	for (size_t i = 0; i < ARRAY_N(fixtures); i++) {
		if (objs[i / 2].items == nested)
			continue;
		assert_reads(fixtures[i].dumps, i / 2, &text);
		assert_reads(fixtures[i].optimized, i / 2, &text);
	}
	for (size_t i = 0; i < ARRAY_N(old_fixtures); i++) {
		if (objs[i / 3].items == nested)
			continue;
		assert_reads(old_fixtures[i].dumps, i / 3, &text);
		assert_reads(old_fixtures[i].optimized, i / 3, &text);
	}
	dc_buf_release(&text);
}
END_TEST

/* Protocol 0 by hand, as pickle.loads() reads it: INT's bools and
 * strtol base 0, LONG, FLOAT, raw-unicode-escape (\u, \U, a backslash
 * before anything else kept), PUT/GET in decimal, Python 2 strings, and
 * bytes rebuilt from _codecs.encode and bytes(). */
START_TEST(test_unpickle_text_opcodes)
{
	static const char p0[] =
	    "(I01\nI00\nI-7\nI010\nI 1\nL123456789012L\nL-5\nF-0.25\n"
	    "Va\\u20ac\\U0001f600\\\\x\xe9\\q\np0\ng0\nN"
	    "S'abc'\nU\x03xyz"
	    "c__builtin__\nbytes\np1\n(tRp2\n"
	    "c_codecs\nencode\np3\n(V\xe9"
	    "a\np4\nVlatin1\np5\ntp6\nRp7\n"
	    "g7\nc_codecs\nencode\n(Vab\nVlatin1\ntRt.";
	static const char str[] =
	    "a\xe2\x82\xac\xf0\x9f\x98\x80\\\\x\xc3\xa9\\q";
	struct dc_buf text = DC_BUF_INIT;
	struct dc_py got[32];
	size_t n;
	int is_tuple;

	ck_assert_int_eq(
	    dc_unpickle(p0, sizeof(p0) - 1, got, 32, &n, &is_tuple, &text), 0);
	ck_assert_int_eq(is_tuple, 1);
	ck_assert_uint_eq(n, 17);
	ck_assert_int_eq(got[0].kind, DC_PY_BOOL);
	ck_assert_int_eq(got[0].i, 1);
	ck_assert_int_eq(got[1].kind, DC_PY_BOOL);
	ck_assert_int_eq(got[1].i, 0);
	ck_assert_int_eq(got[2].kind, DC_PY_INT);
	ck_assert_int_eq(got[2].i, -7);
	ck_assert_int_eq(got[3].i, 8);
	ck_assert_int_eq(got[4].kind, DC_PY_BOOL); /* " 1": 2 characters */
	ck_assert_int_eq(got[5].kind, DC_PY_INT);
	ck_assert_int_eq(got[5].i, 123456789012LL);
	ck_assert_int_eq(got[6].i, -5);
	ck_assert_int_eq(got[7].kind, DC_PY_FLOAT);
	ck_assert(got[7].f == -0.25);
	for (int k = 8; k <= 9; k++) {
		ck_assert_int_eq(got[k].kind, DC_PY_STR);
		ck_assert_uint_eq(got[k].len, sizeof(str) - 1);
		ck_assert_mem_eq(got[k].data, str, sizeof(str) - 1);
	}
	ck_assert_int_eq(got[10].kind, DC_PY_NONE);
	ck_assert_int_eq(got[11].kind, DC_PY_STR);
	ck_assert_mem_eq(got[11].data, "abc", 3);
	ck_assert_mem_eq(got[12].data, "xyz", 3);
	ck_assert_int_eq(got[13].kind, DC_PY_BYTES);
	ck_assert_uint_eq(got[13].len, 0);
	for (int k = 14; k <= 15; k++) {
		ck_assert_int_eq(got[k].kind, DC_PY_BYTES);
		ck_assert_uint_eq(got[k].len, 2);
		ck_assert_mem_eq(got[k].data,
				 "\xe9"
				 "a",
				 2);
	}
	ck_assert_int_eq(got[16].kind, DC_PY_BYTES);
	ck_assert_mem_eq(got[16].data, "ab", 2);
	dc_buf_release(&text);
}
END_TEST

/* What pickle.loads() refuses is DC_CORRUPT; what it builds but a dc_py
 * cannot hold is DC_TYPE. */
START_TEST(test_unpickle_text_rejects)
{
	static const struct {
		const char *p;
		int rc;
	} cases[] = {
		{ "I\n.", DC_CORRUPT },
		{ "Ix\n.", DC_CORRUPT },
		{ "I99999999999999999999\n.", DC_TYPE },
		{ "L99999999999999999999L\n.", DC_TYPE },
		{ "F1e999\n.", DC_CORRUPT },
		{ "Fabc\n.", DC_CORRUPT },
		{ "F\n.", DC_CORRUPT },
		{ "V\\u12\n.", DC_CORRUPT },
		{ "V\\U00110000\n.", DC_CORRUPT },
		{ "V\\ud800\n.", DC_TYPE }, /* a lone surrogate */
		{ "Vab", DC_CORRUPT },
		{ "g0\n.", DC_CORRUPT },
		{ "p0\n.", DC_CORRUPT },
		{ "(I1\nI2\np-1\nt.", DC_CORRUPT },
		{ "S'a\\nb'\n.", DC_TYPE },
		{ "Sabc\n.", DC_CORRUPT },
		{ "T\x02\0\0\0\xc3\xa9.", DC_CORRUPT },
		{ "c_codecs\nencode\n(Vx\nVutf8\ntR.", DC_TYPE },
		{ "c_codecs\nencode\n(V\\u0100\nVlatin1\ntR.", DC_CORRUPT },
		{ "c_codecs\nencode\n.", DC_TYPE },
		{ "(c_codecs\nencode\nt.", DC_TYPE },
		{ "(I1\n.", DC_CORRUPT },
	};
	struct dc_buf text = DC_BUF_INIT;
	struct dc_py got[4];
	size_t n;
	int is_tuple;

	for (size_t i = 0; i < ARRAY_N(cases); i++) {
		size_t len = strlen(cases[i].p);

		if (cases[i].p[0] == 'T')
			len = 8; /* holds NULs */
		ck_assert_msg(dc_unpickle(cases[i].p, len, got, 4, &n,
					  &is_tuple, &text) == cases[i].rc,
			      "case %zu: %s", i, cases[i].p);
	}
	ck_assert_int_eq(dc_unpickle("N.", 2, got, 4, &n, &is_tuple, NULL),
			 DC_INVAL);
	dc_buf_release(&text);
}
END_TEST

/* Protocol 0's numbers are C-locale text in any locale: a program in a
 * locale with a decimal comma writes and reads the same bytes. */
START_TEST(test_protocol0_ignores_locale)
{
	char *dir = tu_mkdtemp();
	struct dc_buf b = DC_BUF_INIT, text = DC_BUF_INIT;
	struct dc_py f = F(2.5), got;
	char num[8];
	size_t n;
	int is_tuple;

	if (tu_run("localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 2>/dev/null",
		   dir) != 0 ||
	    setenv("LOCPATH", dir, 1) != 0 ||
	    !setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
		fprintf(stderr, "SKIP test_protocol0_ignores_locale: no "
				"de_DE locale could be built\n");
		tu_rmdtemp(&dir);
		return;
	}
	snprintf(num, sizeof(num), "%.1f", 2.5);
	ck_assert_str_eq(num, "2,5"); /* the locale took */
	b.len = 0;
	ck_assert_int_eq(dc_pickle_dumps(&f, 1, 0, 0, 0, &b), 0);
	ck_assert_uint_eq(b.len, 6);
	ck_assert_mem_eq(b.data, "F2.5\n.", 6);
	ck_assert_int_eq(
	    dc_unpickle("F0.125\n.", 8, &got, 1, &n, &is_tuple, &text), 0);
	ck_assert(got.f == 0.125);
	setlocale(LC_NUMERIC, "C");
	dc_buf_release(&b);
	dc_buf_release(&text);
	tu_rmdtemp(&dir);
}
END_TEST

/* Protocols 2 and 3 as CPython writes them (C and pure-Python
 * picklers): GLOBAL with Python 2 names, BINPUT, LONG1. */
START_TEST(test_unpickle_old_protocols)
{
	struct dc_buf text = DC_BUF_INIT;
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
	ck_assert_int_eq(dc_unpickle(data, len, got, 16, &n, &is_tuple, &text),
			 0);
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
	ck_assert_int_eq(dc_unpickle(data, len, got, 16, &n, &is_tuple, &text),
			 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(got[3].data, "str", 3);
	ck_assert_int_eq(dc_unpickle(data, len, got, 4, &n, &is_tuple, &text),
			 DC_INVAL);
	dc_buf_release(&text);
}
END_TEST

START_TEST(test_unpickle_rejects)
{
	struct dc_buf text = DC_BUF_INIT;
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
		ck_assert_int_eq(
		    dc_unpickle(data, len, got, 4, &n, &is_tuple, &text),
		    DC_TYPE);
	}
	/* Every truncation of ('abc', 1) is corrupt, and so is junk. */
	len = unhex("8005950b000000000000008c03616263944b0186942e", data);
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_int_eq(
		    dc_unpickle(data, cut, got, 4, &n, &is_tuple, &text),
		    DC_CORRUPT);
	data[len] = '.';
	ck_assert_int_eq(
	    dc_unpickle(data, len + 1, got, 4, &n, &is_tuple, &text),
	    DC_CORRUPT);
	ck_assert_int_eq(
	    dc_unpickle("\x80\x05\xff.", 4, got, 4, &n, &is_tuple, &text),
	    DC_CORRUPT);
	/* A fetch of a memo slot never stored. */
	ck_assert_int_eq(
	    dc_unpickle("\x80\x05h\x03.", 5, got, 4, &n, &is_tuple, &text),
	    DC_CORRUPT);
	dc_buf_release(&text);
}
END_TEST

Suite *pickle_suite(void)
{
	Suite *s = suite_create("pickle");
	TCase *tc = tu_tcase(s, "core", NULL, NULL, 60);

	tcase_add_test(tc, test_dumps_matches_cpython);
	tcase_add_test(tc, test_dumps_old_protocols_match_cpython);
	tcase_add_test(tc, test_dumps_float_repr_protocol0);
	tcase_add_test(tc, test_dumps_long_and_frames);
	tcase_add_test(tc, test_dumps_rejects);
	tcase_add_test(tc, test_unpickle_round_trip);
	tcase_add_test(tc, test_unpickle_old_protocols);
	tcase_add_test(tc, test_unpickle_rejects);
	tcase_add_test(tc, test_unpickle_text_opcodes);
	tcase_add_test(tc, test_unpickle_text_rejects);
	tcase_add_test(tc, test_protocol0_ignores_locale);
	return s;
}
