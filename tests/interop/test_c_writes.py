# test_c_writes.py - (b) libdcache writes, Python DiskCache reads
# SPDX-License-Identifier: MIT
#
# Most cases are differential: the same operations go to a C-written
# directory (through dcinterop) and a Python-written twin directory; the
# resulting rows must be identical in everything the format fixes, and
# Python must read the C directory back exactly.

import io
import os
import shutil
import subprocess
import time
import unittest

import diskcache

from dcutil import (DC_NOTFOUND, DC_OVERFLOW, DC_TYPE, InteropCase,
                    c_key, c_value, cache_rows, db_rows, decode, dtime,
                    run1, same, spec, value_pickle, warnings_text)

# (key, value, set() keyword arguments) written with dc_cache_set.
SETS = [
    ('int', 42, {}),
    ('neg_int', -7, {}),
    ('int_max', 2**63 - 1, {}),
    ('int_min', -2**63, {}),
    ('float', 3.5, {}),
    ('float_neg', -0.1, {}),
    ('float_tiny', 5e-324, {}),
    ('float_ninf', float('-inf'), {}),
    ('cnt_float', 1.5, {}),
    ('str_small', 'héllo', {}),
    ('str_empty', '', {}),
    ('str_nul', 'a\x00b', {}),
    ('str_4byte', '\U0001f600', {}),
    ('str_inline_codepoints', 'é' * 20000, {}),
    ('str_inline_edge', 'x' * 32767, {}),
    ('str_file', 'x' * 40000, {}),
    ('str_file_edge', 'x' * 32768, {}),
    ('str_file_utf8', '€' * 32768, {}),
    ('bytes_small', b'\x00\x01abc', {}),
    ('bytes_empty', b'', {}),
    ('bytes_inline_edge', b'b' * 32767, {}),
    ('bytes_file_edge', b'y' * 32768, {}),
    ('bytes_large', bytes(range(256)) * 200, {}),
    ('none', None, {}),
    ('true', True, {}),
    ('tuple', (1, 'a'), {}),
    ('big_int', 2**70, {}),
    ('pickle_file', ('p' * 40000,), {}),
    ('exp_tag_str', 'v1', {'expire': 3600, 'tag': 't1'}),
    ('tag_int', 1, {'tag': 7}),
    ('tag_int_min', 2, {'tag': -2**63}),
    ('tag_float', 3, {'tag': 2.5}),
    ('tag_bytes', 4, {'tag': b'\x00\xfftag'}),
    ('file_exp_tag', b'f' * 40000, {'expire': 7200.5, 'tag': 'big'}),
    ('text_file_exp', 'q' * 40000, {'expire': 10, 'tag': 1.25}),
    ('pickle_exp_tag', (1, 2), {'expire': 100, 'tag': b'pk'}),
    (7, 'int key', {}),
    (-1, 'negative key', {}),
    (2**63 - 1, 'max key', {}),
    (1.25, 'float key', {}),
    (b'bkey', 'bytes key', {}),
    ('', 'empty key', {}),
    (('a', 1), 'tuple key', {}),
    (True, 'bool key', {}),
    (None, 'none key', {}),
    (2**70, 'big int key', {}),
    ('overwrite', b'o' * 40000, {}),
    ('overwrite', 'now small', {'tag': 'second'}),
]

# (key, file content, offset the library must start reading at, kwargs)
# written with dc_cache_set_fd; Python's twin is set(read=True).
FDS = [
    ('fd_small', b'hello', 0, {}),
    ('fd_offset', b'HEADERdata', 6, {}),
    ('fd_large', bytes(range(256)) * 150, 0, {'expire': 60, 'tag': 'fd'}),
    ('fd_empty', b'', 0, {}),
]

# (key, value, kwargs) written with dc_cache_mkstemp + dc_cache_set_file:
# always file-backed, so there is no Python twin; Python must read them.
FILES = [
    ('sf_bytes', b'\x01' * 40000, {}),
    ('sf_bytes_small', b'tiny', {'expire': 500, 'tag': 5}),
    ('sf_text', 'é' * 10, {}),
    ('sf_text_large', 'y' * 50000, {}),
    ('sf_pickle', {'a': 1}, {'tag': 'pk'}),
]

# (command, key, delta, default or None for "no default")
INCRS = [
    ('incr', 'cnt', 1, 0),
    ('incr', 'cnt', 5, 0),
    ('decr', 'cnt', 2, 0),
    ('incr', 'cnt_def', 1, 10),
    ('decr', 'cnt_neg', 3, 0),
    ('incr', 'cnt_float', 2, 0),
    ('incr', 'int_max', 1, 0),          # overflow: nothing changes
    ('incr', 'str_small', 1, 0),        # not a number
    ('incr', 'missing', 1, None),       # no default: not found
    ('decr', 'int_min', 1, 0),          # overflow downwards
]

# (value, prefix, side, kwargs) for push.
PUSHES = [
    ('a', None, 'back', {}),
    ('b', None, 'back', {}),
    ('z', None, 'front', {}),
    ('p', 'jobs', 'back', {}),
    ('q', 'jobs', 'back', {}),
    (b'x' * 40000, None, 'back', {}),
    ('tagged', 'jobs', 'front', {'expire': 30, 'tag': 'job'}),
]


def opts(kw):
    out = []
    if kw.get('expire') is not None:
        out.append('expire=' + float(kw['expire']).hex())
    if kw.get('tag') is not None:
        out.append('tag=' + spec(kw['tag']))
    return out


def py_incr(cache, cmd, key, delta, default):
    """Python's result for an incr/decr, as (rc, value)."""
    fn = cache.incr if cmd == 'incr' else cache.decr
    try:
        return 0, fn(key, delta, default=default)
    except OverflowError:
        return DC_OVERFLOW, None
    except TypeError:
        return DC_TYPE, None
    except KeyError:
        return DC_NOTFOUND, None


class CWritesPythonReads(InteropCase):

    def c_populate(self, directory):
        """Write everything through one driver; returns its answers."""
        drv = self.driver(directory)
        out = {'set': [], 'fd': [], 'file': [], 'incr': [], 'push': []}
        for key, value, kw in SETS:
            out['set'].append(self.ok(drv.cmd(
                'set', spec(c_key(key)), spec(c_value(value)),
                *opts(kw)), key))
        for key, data, offset, kw in FDS:
            out['fd'].append(self.ok(drv.cmd(
                'setfd', spec(key), spec(data), 'offset=%d' % offset,
                *opts(kw)), key))
        for cmd, key, delta, default in INCRS:
            dflt = 'nodefault' if default is None else 'default=%d' % default
            out['incr'].append(drv.cmd(cmd, spec(key), delta, dflt))
        for value, prefix, side, kw in PUSHES:
            extra = ['prefix=' + prefix] if prefix else []
            out['push'].append(self.ok(drv.cmd(
                'push', spec(c_value(value)), side, *extra, *opts(kw))))
        for key, value, kw in FILES:
            r = self.ok(drv.cmd('setfile', spec(key), spec(c_value(value)),
                                *opts(kw)), key)
            self.assertEqual(r['tmp_exists'], 0, key)
            out['file'].append(r)
        out['get'] = {}
        for key in self.all_keys():
            out['get'][c_key(key)] = self.ok(drv.cmd('get',
                                                     spec(c_key(key))), key)
        drv.close()
        return out

    def all_keys(self):
        keys = []
        for key, _, _ in SETS:
            if key not in keys:
                keys.append(key)
        keys += [k for k, _, _, _ in FDS] + [k for k, _, _ in FILES]
        keys += ['cnt', 'cnt_def', 'cnt_neg']
        return keys

    def py_populate(self, directory):
        out = {'incr': [], 'push': []}
        with diskcache.Cache(directory) as cache:
            for key, value, kw in SETS:
                cache.set(key, value, **kw)
            for key, data, offset, kw in FDS:
                cache.set(key, io.BytesIO(data[offset:]), read=True, **kw)
            for cmd, key, delta, default in INCRS:
                out['incr'].append(py_incr(cache, cmd, key, delta, default))
            for value, prefix, side, kw in PUSHES:
                out['push'].append(cache.push(value, prefix=prefix,
                                              side=side, **kw))
        return out

    def expected(self):
        """key -> value Python must read from the C directory."""
        exp = {}
        for key, value, kw in SETS:
            exp[key] = (value, kw.get('tag'))
        for key, data, offset, kw in FDS:
            exp[key] = (data[offset:], kw.get('tag'))
        for key, value, kw in FILES:
            exp[key] = (value, kw.get('tag'))
        exp['cnt'] = (4, None)
        exp['cnt_def'] = (11, None)
        exp['cnt_neg'] = (-3, None)
        exp['cnt_float'] = (3.5, None)
        return exp

    def test_differential_rows(self):
        cdir, pdir = self.path('c'), self.path('py')
        cout = self.c_populate(cdir)
        pout = self.py_populate(pdir)
        # incr/decr: same results and same refusals.
        for (cmd, key, delta, default), r, (prc, pval) in zip(
                INCRS, cout['incr'], pout['incr']):
            what = '%s %r %d' % (cmd, key, delta)
            self.assertEqual(r['rc'], prc, what + ': %r' % r)
            if prc == 0:
                self.assertSame(decode(r['value']), pval, what)
        # push: the same keys.
        self.assertTrue(same([decode(r['key']) for r in cout['push']],
                             pout['push']), cout['push'])
        # The integer queue shares its key range with the numeric keys 7
        # and 1.25 set before (spec trap 7): back goes on from 7, front
        # from 1.25 and yields a float key.
        self.assertTrue(same(pout['push'], [
            8, 9, 0.25, 'jobs-500000000000000', 'jobs-500000000000001', 10,
            'jobs-499999999999999']), pout['push'])
        # Rows: identical except the set_file ones only C has (last).
        crows = cache_rows(cdir)
        prows = cache_rows(pdir)
        self.assertEqual(len(crows), len(prows) + len(FILES))
        for c, p in zip(crows, prows):
            self.assertTrue(same(c, p), '\nC:  %r\nPy: %r' % (c, p))
        for (key, value, kw), row in zip(FILES, crows[len(prows):]):
            mode = {bytes: 2, str: 3}.get(type(value), 4)
            self.assertEqual(row[0], key)
            self.assertEqual(row[7], mode, key)   # mode
            self.assertEqual(row[8], 0, key)      # filename not NULL
            self.assertEqual(row[6], len(c_bytes(value)), key)  # size
        # expire_time = store_time + expire, to the bit, as Python
        # computes it (one clock reading for both columns).
        expiring = [(k, kw['expire']) for k, _, kw in SETS
                    if 'expire' in kw]
        expiring += [(k, kw['expire']) for k, _, _, kw in FDS
                     if 'expire' in kw]
        for d in (pdir, cdir):
            for key, expire in expiring:
                (st, et), = db_rows(os.path.join(d, 'cache.db'),
                                    'SELECT store_time, expire_time FROM'
                                    ' Cache WHERE key = ?', (key,))
                self.assertTrue(same(st + expire, et),
                                '%s %r: %r + %r != %r' % (d, key, st,
                                                         expire, et))
        # Settings count/size as the triggers keep them.
        for d in (cdir, pdir):
            cnt, size = [v for (v,) in db_rows(
                os.path.join(d, 'cache.db'),
                'SELECT value FROM Settings WHERE key IN (\'count\','
                ' \'size\') ORDER BY key')]
            (n, s), = db_rows(os.path.join(d, 'cache.db'),
                              'SELECT COUNT(*), TOTAL(size) FROM Cache')
            self.assertEqual((cnt, size), (n, s), d)

    def test_python_reads_c_directory(self):
        cdir = self.path('c')
        cout = self.c_populate(cdir)
        now = time.time()
        with diskcache.Cache(cdir) as cache:
            for key, (value, tag) in self.expected().items():
                got = cache.get(key, default=KeyError, expire_time=True,
                                tag=True)
                self.assertIsNot(got[0], KeyError, key)
                v, exp, t = got
                self.assertTrue(same(v, value), '%r: %r' % (key, v))
                self.assertTrue(same(t, tag), '%r: tag %r' % (key, t))
                c = cout['get'][c_key(key)]
                self.assertTrue(same(exp, dtime(c['expire_time'])), key)
                self.assertTrue(same(t, decode(c['tag'])), key)
            # Expiry: now + expire at write time.
            _, exp = cache.get('exp_tag_str', expire_time=True)
            self.assertLess(abs(exp - (now + 3600)), 60)
            _, exp = cache.get('file_exp_tag', expire_time=True)
            self.assertLess(abs(exp - (now + 7200.5)), 60)
            # Pickled keys written by C are Python's keys.
            self.assertEqual(cache[('a', 1)], 'tuple key')
            self.assertEqual(cache[True], 'bool key')
            self.assertEqual(cache[None], 'none key')
            self.assertEqual(cache[2**70], 'big int key')
            self.assertEqual(cache[7], 'int key')
            self.assertEqual(cache[b'bkey'], 'bytes key')
            # incr continues from what C stored.
            self.assertEqual(cache.incr('cnt', 10), 14)
            # The queue C built: Python pulls in key order.
            self.assertTrue(same(cache.pull(), (0.25, 'z')))
            self.assertEqual(cache.pull(side='back'), (10, b'x' * 40000))
            self.assertEqual(cache.pull(prefix='jobs'),
                             ('jobs-499999999999999', 'tagged'))
            self.assertEqual(cache.pull(prefix='jobs'),
                             ('jobs-500000000000000', 'p'))
            self.assertEqual(warnings_text(cache.check()), [])
        r = run1(cdir, 'get', spec('cnt'))
        self.assertEqual(decode(self.ok(r)['value']), 14)
        r = run1(cdir, 'check')
        self.assertEqual(self.ok(r)['warnings'], [])

    def test_python_check_detects_damage_in_c_directory(self):
        """Negative control for the clean checks above."""
        cdir = self.path('c')
        drv = self.driver(cdir)
        self.ok(drv.cmd('set', spec('big'), spec(b'B' * 40000)))
        drv.close()
        (name,), = db_rows(os.path.join(cdir, 'cache.db'),
                           'SELECT filename FROM Cache')
        with open(os.path.join(cdir, name), 'ab') as f:
            f.write(b'!')
        with diskcache.Cache(cdir) as cache:
            self.assertEqual(len(cache.check()), 1)

    def test_copy_of_c_directory(self):
        cdir, copy = self.path('c'), self.path('copy')
        drv = self.driver(cdir)
        data = {'small': 'abc', 'big': b'B' * 40000, 'text': 't' * 40000,
                -7: 1.5, b'k': -3}
        for k, v in data.items():
            self.ok(drv.cmd('set', spec(k), spec(v)))
        r = self.ok(drv.cmd('push', spec(b'Q' * 50000)))
        qkey = decode(r['key'])
        drv.close()
        subprocess.run(['cp', '-a', cdir, copy], check=True)
        shutil.rmtree(cdir)  # nothing may point back at the original
        with diskcache.Cache(copy) as cache:
            for k, v in data.items():
                self.assertTrue(same(cache[k], v), k)
            self.assertEqual(cache.check(), [])
            self.assertEqual(cache.pull(), (qkey, b'Q' * 50000))
            self.assertEqual(cache.check(), [])
        r = run1(copy, 'dump', 'values')
        got = {decode(i['key']): decode(i['get_value'])
               for i in self.ok(r)['items']}
        self.assertEqual(got[b'k'], -3)
        r = run1(copy, 'check')
        self.assertEqual(self.ok(r)['warnings'], [])

    def test_large_values_both_ways(self):
        """Values beyond Python's 4 MiB read chunk, both directions."""
        big_c = bytes(range(256)) * (5 * 4096 + 3)  # 5 MiB + 768
        big_py = os.urandom(5 * 2**20 + 11)
        drv = self.driver(self.tmp)
        self.ok(drv.cmd('set', spec('c_bytes'), spec(big_c)))
        self.ok(drv.cmd('setfd', spec('c_fd'), spec(big_c)))
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(cache['c_bytes'], big_c)
            self.assertEqual(cache['c_fd'], big_c)
            with cache.read('c_fd') as f:
                self.assertEqual(f.read(), big_c)
            cache['py'] = big_py
            self.assertEqual(cache.check(), [])
        r = self.ok(drv.cmd('get', spec('py')))
        self.assertEqual(r['size'], len(big_py))
        self.assertTrue(decode(r['value']) == big_py)
        r = self.ok(drv.cmd('get', spec('py'), 'fd'))
        self.assertTrue(decode(r['value']) == big_py)
        drv.close()

    def test_fanout_written_by_c(self):
        cdir = self.path('fan')
        keys = ([i for i in range(-20, 20)] + [2**63 - 1, -2**63] +
                [i / 4 + 0.125 for i in range(-8, 8)] + [1e300, -0.0] +
                ['key%d' % i for i in range(20)] + ['', 'héllo'] +
                [b'b%d' % i for i in range(10)] + [b''] +
                [('t', 1), None, True])
        drv = self.driver(cdir, '--shards', '8')
        self.assertEqual(self.ok(drv.cmd('shards'))['shards'], 8)
        for i, k in enumerate(keys):
            v = (b'%d' % i) * 40000 if i % 10 == 0 else 'v%d' % i
            self.ok(drv.cmd('set', spec(c_key(k)), spec(v), 'retry'), k)
        drv.close()
        with diskcache.FanoutCache(cdir, shards=8) as fc:
            self.assertEqual(len(fc), len(keys))
            for i, k in enumerate(keys):
                v = (b'%d' % i) * 40000 if i % 10 == 0 else 'v%d' % i
                self.assertEqual(fc.get(k, retry=True), v, k)
                shard = fc._hash(k) % 8
                rows = db_rows(os.path.join(cdir, '%03d' % shard,
                                            'cache.db'),
                               'SELECT COUNT(*) FROM Cache WHERE key = ?'
                               ' AND raw = ?',
                               fc._shards[0].disk.put(k))
                self.assertEqual(rows, [(1,)], k)
            self.assertEqual(fc.check(), [])


def c_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    return value_pickle(value)


if __name__ == '__main__':
    unittest.main()
