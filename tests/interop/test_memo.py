# test_memo.py - dc_memo against Python DiskCache's memoize and
# memoize_stampede
# SPDX-License-Identifier: MIT
#
# $BUILD/dcmemo (tests/interop/dcmemo.c) runs one memoized C call (or
# prints its key) on a directory; Python's Cache/FanoutCache.memoize and
# diskcache.memoize_stampede use the same directory, name and arguments.
# Each side must find what the other stored, and dc_memo_key must be
# byte for byte what Python stores for wrapper.__cache_key__(...).

import os
import pickle
import random
import shutil
import struct
import subprocess
import tempfile
import unittest

import diskcache

DRIVER = os.path.join(
    os.path.dirname(os.environ.get('DCINTEROP') or
                    os.path.join(os.environ.get('BUILD', 'build'), 'x')),
    'dcmemo')

SANITIZER_MARKS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:')


def spec(v):
    if v is None:
        return 'n'
    if type(v) is int:
        return 'i:%d' % v
    if type(v) is float:
        return 'd:' + struct.pack('>d', v).hex()
    if type(v) is str:
        return 's:' + v.encode().hex()
    if type(v) is bytes:
        return 'b:' + v.hex()
    raise TypeError(v)


def fresh(v):
    """An equal object sharing nothing CPython would not share (see
    docs/memoize.md: Python shares str objects by identity)."""
    if type(v) is str:
        return v.encode().decode()
    if type(v) is bytes:
        return bytes.fromhex(v.hex())
    return v


class MemoInterop(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(DRIVER, os.X_OK):
            raise unittest.SkipTest(DRIVER + ' is not built')

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='dcmemo-')
        self.dir = os.path.join(self.tmp, 'c')

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def c(self, name, *args, opts=(), kwargs=None):
        argv = [DRIVER, self.dir, name] + list(opts) + ['call']
        argv += [spec(a) for a in args]
        for k, v in sorted((kwargs or {}).items(), reverse=True):
            argv.append('k=%s=%s' % (k, spec(v)))
        return self.run_driver(argv)

    def c_key(self, name, *args, opts=(), kwargs=None):
        argv = [DRIVER, self.dir, name] + list(opts) + ['key']
        argv += [spec(a) for a in args]
        for k, v in (kwargs or {}).items():
            argv.append('k=%s=%s' % (k, spec(v)))
        return bytes.fromhex(self.run_driver(argv))

    def run_driver(self, argv):
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=120)
        for m in SANITIZER_MARKS:
            self.assertNotIn(m, p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout.strip()

    def py_memo(self, cache, name, result, calls, **kw):
        @cache.memoize(name=name, **kw)
        def f(*args, **kwargs):
            calls.append(args)
            return result
        return f

    # -- plain memoize ----------------------------------------------------

    def test_python_result_read_by_c(self):
        cache = diskcache.Cache(self.dir)
        results = ['py-result', 12345, -2**63, 2.5, b'\x00raw',
                   [1, 'list'], ('tuple', None), None, 'x' * 40000]
        for i, result in enumerate(results):
            calls = []
            f = self.py_memo(cache, 'x', result, calls)
            self.assertEqual(f(i, 'a', b'b', kw=1.5), result)
            out = self.c('x', i, 'a', b'b', kwargs={'kw': 1.5})
            if type(result) in (str, int, float, bytes):
                want = spec(result)
            else:
                want = 'p:' + pickle.dumps(result, protocol=5).hex()
            self.assertEqual(out, 'called=0 ' + want, result)
        cache.close()

    def test_c_result_read_by_python(self):
        for i, result in enumerate(['from-c', 7, 2**40, -0.25, b'\xff',
                                    'é' * 20000]):
            out = self.c('y', i, None, 'é', kwargs={'b': 2, 'a': b'1'},
                         opts=['--result', spec(result)])
            self.assertEqual(out, 'called=1 ' + spec(result))
            cache = diskcache.Cache(self.dir)
            calls = []
            f = self.py_memo(cache, 'y', 'python', calls)
            self.assertEqual(f(i, None, 'é', a=b'1', b=2), result)
            self.assertEqual(calls, [])
            cache.close()

    def test_typed_both_ways(self):
        cache = diskcache.Cache(self.dir)
        calls = []
        f = self.py_memo(cache, 't', 'py', calls, typed=True)
        f(3, k='v')
        # Typed keys tell 3 from 3.0; the C memo must agree.
        self.assertEqual(self.c('t', 3, kwargs={'k': 'v'},
                                opts=['--typed']), 'called=0 ' + spec('py'))
        self.assertEqual(self.c('t', 3.0, kwargs={'k': 'v'},
                                opts=['--typed']),
                         'called=1 ' + spec('from-c'))
        self.assertEqual(f(3.0, k='v'), 'from-c')
        self.assertEqual(len(calls), 1)
        # An untyped memo of the same name has other keys.
        self.assertEqual(self.c('t', 3, kwargs={'k': 'v'}),
                         'called=1 ' + spec('from-c'))
        cache.close()

    def test_expire_and_tag_as_python_stores(self):
        self.c('e', 1, opts=['--expire', '30', '--tag', 'grp'])
        cache = diskcache.Cache(self.dir)
        calls = []
        f = self.py_memo(cache, 'e', 'py', calls)
        key = f.__cache_key__(1)
        value, expire_time, tag = cache.get(key, expire_time=True, tag=True)
        self.assertEqual((value, tag), ('from-c', 'grp'))
        self.assertGreater(expire_time, 0)
        self.assertEqual(cache.evict('grp'), 1)
        cache.close()
        # expire < 0: never stored, on either side.
        self.c('neg', 1, opts=['--expire', '-1'])
        cache = diskcache.Cache(self.dir)
        self.assertEqual(len(cache), 0)
        cache.close()

    def test_fanout_both_ways(self):
        cache = diskcache.FanoutCache(self.dir, shards=4)
        calls = []
        f = self.py_memo(cache, 'fan', 'py', calls)
        for i in range(12):
            f(i, str(i))
        for i in range(12):
            self.assertEqual(self.c('fan', i, str(i),
                                    opts=['--shards', '4']),
                             'called=0 ' + spec('py'))
        for i in range(12, 24):
            self.assertEqual(self.c('fan', i, str(i),
                                    opts=['--shards', '4']),
                             'called=1 ' + spec('from-c'))
            self.assertEqual(f(i, str(i)), 'from-c')
        self.assertEqual(len(calls), 12)
        cache.close()

    def test_index_both_ways(self):
        index = diskcache.Index(self.dir)
        calls = []

        @index.memoize(name='idx')
        def f(x):
            calls.append(x)
            return x * 2

        f(21)
        self.assertEqual(self.c('idx', 21, opts=['--index']),
                         'called=0 ' + spec(42))
        self.c('idx', 5, opts=['--index', '--result', 'i:-1'])
        self.assertEqual(f(5), -1)
        self.assertEqual(calls, [21])

    # -- keys -------------------------------------------------------------

    def test_cache_key_bytes(self):
        cache = diskcache.Cache(self.dir)
        rng = random.Random(3)
        pool = [None, 0, 1, -1, 255, 256, 65536, 2**31, -2**31 - 1,
                2**63 - 1, -2**63, 0.0, -1.5, 1e300, '', 'a', 'é', 'ab',
                '€uro', 'x' * 300, b'', b'\x00', b'bytes', 'k', 'None']
        names = ['alpha', 'b', 'zeta', 'é', 'x_1']
        for typed in (False, True):
            calls = []
            f = self.py_memo(cache, 'mod.func', None, calls, typed=typed)
            for _ in range(60):
                args = [fresh(rng.choice(pool))
                        for _ in range(rng.randrange(5))]
                kwargs = {k: fresh(rng.choice(pool))
                          for k in rng.sample(names, rng.randrange(4))}
                want = cache._disk.put(f.__cache_key__(*args, **kwargs))[0]
                got = self.c_key('mod.func', *args, kwargs=kwargs,
                                 opts=['--typed'] if typed else [])
                self.assertEqual(got, bytes(want), (args, kwargs, typed))
        cache.close()

    # -- memoize_stampede -------------------------------------------------

    def py_stampede(self, cache, name, result, calls, expire=60):
        @diskcache.memoize_stampede(cache, expire=expire, name=name)
        def f(*args, **kwargs):
            calls.append(args)
            return result
        return f

    def test_stampede_python_to_c(self):
        cache = diskcache.Cache(self.dir)
        for i, result in enumerate(['py', 5, 1.25, b'b', None]):
            calls = []
            f = self.py_stampede(cache, 's', result, calls)
            self.assertEqual(f(i, k='w'), result)
            out = self.c('s', i, kwargs={'k': 'w'},
                         opts=['--stampede', '--expire', '60'])
            self.assertEqual(out, 'called=0 ' + spec(result))
        cache.close()

    def test_stampede_c_to_python(self):
        for i, result in enumerate(['c', -9, 0.5, b'\x01', None]):
            out = self.c('s2', i, opts=['--stampede', '--expire', '60',
                                        '--result', spec(result)])
            self.assertEqual(out, 'called=1 ' + spec(result))
            cache = diskcache.Cache(self.dir)
            calls = []
            f = self.py_stampede(cache, 's2', 'python', calls)
            self.assertEqual(f(i), result)
            self.assertEqual(calls, [])
            key = f.__cache_key__(i)
            pair = cache.get(key)
            self.assertEqual(type(pair), tuple)
            self.assertEqual(pair[0], result)
            self.assertEqual(type(pair[1]), float)
            cache.close()

    # -- every pickle protocol ---------------------------------------------

    def test_every_protocol_both_ways(self):
        # A cache Python created with disk_pickle_protocol=P (negative:
        # pickle.HIGHEST_PROTOCOL): C's keys are the bytes Python stores,
        # and results and stampede pairs go both ways.
        rng = random.Random(17)
        pool = [None, 0, -1, 2**31, -2**63, 0.1, -2.5e-300, '', 'a', 'é',
                'x\\y\nz', '€\U0001f600', b'', b'\x00', b'\xe9', b'a\xffb',
                'latin1']
        for proto in (-1, 0, 1, 2, 3, 4, 5):
            with self.subTest(proto=proto):
                eff = 5 if proto < 0 else proto
                self.dir = os.path.join(self.tmp, 'p%d' % (proto + 1))
                cache = diskcache.Cache(self.dir, disk_pickle_protocol=proto)
                for typed in (False, True):
                    calls = []
                    f = self.py_memo(cache, 'mod.f', None, calls,
                                     typed=typed)
                    for _ in range(15):
                        args = [fresh(rng.choice(pool))
                                for _ in range(rng.randrange(4))]
                        kwargs = {k: fresh(rng.choice(pool)) for k in
                                  rng.sample(['k', 'name', 'é'],
                                             rng.randrange(3))}
                        want = cache._disk.put(
                            f.__cache_key__(*args, **kwargs))[0]
                        got = self.c_key('mod.f', *args, kwargs=kwargs,
                                         opts=['--typed'] if typed else [])
                        self.assertEqual(got, bytes(want),
                                         (args, kwargs, typed))

                # Plain memoize: each finds what the other stored.
                calls = []
                f = self.py_memo(cache, 'm', ('tuple', b'\xe9', 1.5),
                                 calls)
                f(1, b'\xe9', 'é')
                self.assertEqual(
                    self.c('m', 1, b'\xe9', 'é'), 'called=0 p:' +
                    pickle.dumps(('tuple', b'\xe9', 1.5), eff).hex())
                self.assertEqual(self.c('m', 2, b'\xe9', 'é'),
                                 'called=1 ' + spec('from-c'))
                self.assertEqual(f(2, b'\xe9', 'é'), 'from-c')
                self.assertEqual(len(calls), 1)

                # Stampede pairs, text at protocol 0.
                results = ['é€\\\n\x00\U0001f600', b'\xe9\x00\\', b'',
                           0.1, -7, None]
                for i, result in enumerate(results):
                    calls = []
                    f = self.py_stampede(cache, 's', result, calls)
                    self.assertEqual(f(i), result)
                    self.assertEqual(
                        self.c('s', i, opts=['--stampede', '--expire',
                                             '60']),
                        'called=0 ' + spec(result))
                    out = self.c('s2', i, opts=[
                        '--stampede', '--expire', '60',
                        '--result', spec(result)])
                    self.assertEqual(out, 'called=1 ' + spec(result))
                    calls2 = []
                    f2 = self.py_stampede(cache, 's2', 'python', calls2)
                    self.assertEqual(f2(i), result)
                    pair = cache.get(f2.__cache_key__(i))
                    self.assertEqual(pair[0], result)
                    self.assertEqual(calls2, [])
                cache.close()

    def test_protocol_above_5_is_inval(self):
        cache = diskcache.Cache(self.dir, disk_pickle_protocol=6)
        cache.close()
        p = subprocess.run([DRIVER, self.dir, 'f', 'call', 'i:1'],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual((p.returncode, p.stdout.strip()),
                         (1, 'ERR -30802'))

    def test_stampede_early_recompute_claim_is_harmless(self):
        # The first run takes 1 s, so the claim of an early recomputation
        # lives 1 s.  beta huge: the next C hit recomputes in the
        # background (dc_memo_free waits for it) and leaves its claim
        # key, which Python sees only as one more (tuple) key.  called=0:
        # the driver counts calls on the calling thread only, so however
        # early the background thread runs, a hit never computes in the
        # caller; that the recomputation ran shows in Python's 'new'.
        self.c('s3', 1, opts=['--stampede', '--expire', '60', '--sleep',
                              '1'])
        out = self.c('s3', 1, opts=['--stampede', '--expire', '60',
                                    '--beta', '1e12', '--result', 's:6e6577'])
        self.assertEqual(out, 'called=0 ' + spec('from-c'))
        cache = diskcache.Cache(self.dir)
        keys = list(cache)
        calls = []
        f = self.py_stampede(cache, 's3', 'python', calls)
        self.assertEqual(f(1), 'new')
        self.assertEqual(calls, [])
        key = f.__cache_key__(1)
        self.assertCountEqual(keys, [key, (key,)])
        cache.close()

if __name__ == '__main__':
    unittest.main()
