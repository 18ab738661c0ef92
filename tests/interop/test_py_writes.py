# test_py_writes.py - (a) Python DiskCache writes, libdcache reads
# SPDX-License-Identifier: MIT

import io
import os
import time
import unittest

import diskcache

from dcutil import (DC_NOTFOUND, WARN_EMPTY_DIR, WARN_FILE_MISSING,
                    InteropCase, Pickled, c_key, c_value, db_rows, decode,
                    dtime, key_pickle, py_warning_kinds, run1, spec)

# (key, value, set() keyword arguments).  Thresholds: disk_min_file_size
# is 32768; str counts code points, bytes and pickles count bytes.
VALUES = [
    ('int', 42, {}),
    ('neg_int', -7, {}),
    ('zero', 0, {}),
    ('int_max', 2**63 - 1, {}),
    ('int_min', -2**63, {}),
    ('float', 3.5, {}),
    ('float_neg', -0.1, {}),
    ('float_tiny', 5e-324, {}),
    ('float_max', 1.7976931348623157e308, {}),
    ('float_negzero', -0.0, {}),
    ('float_inf', float('inf'), {}),
    ('str_small', 'héllo', {}),
    ('str_empty', '', {}),
    ('str_nul', 'a\x00b', {}),
    ('str_4byte', '\U0001f600 ok', {}),
    ('str_inline_codepoints', 'é' * 20000, {}),  # 40000 bytes, inline
    ('str_inline_edge', 'x' * 32767, {}),
    ('str_file', 'x' * 40000, {}),
    ('str_file_edge', 'x' * 32768, {}),
    ('str_file_utf8', '€' * 32768, {}),
    ('bytes_small', b'\x00\x01abc', {}),
    ('bytes_empty', b'', {}),
    ('bytes_inline_edge', b'b' * 32767, {}),
    ('bytes_file_edge', b'y' * 32768, {}),
    ('bytes_large', bytes(range(256)) * 200, {}),
    ('reader', io.BytesIO(b'z' * 10), {'read': True}),
    ('none', None, {}),
    ('true', True, {}),
    ('false', False, {}),
    ('tuple', (1, 'a'), {}),
    ('big_int', 2**70, {}),
    ('list', [1.5, 'x', None], {}),
    ('pickle_file', ('p' * 40000,), {}),
    ('exp_tag_str', 'v1', {'expire': 3600, 'tag': 't1'}),
    ('tag_int', 1, {'tag': 7}),
    ('tag_int_min', 2, {'tag': -2**63}),
    ('tag_float', 3, {'tag': 2.5}),
    ('tag_bytes', 4, {'tag': b'\x00\xfftag'}),
    ('tag_str_utf8', 5, {'tag': 'tâg'}),
    ('file_exp_tag', b'f' * 40000, {'expire': 7200.5, 'tag': 'big'}),
    ('text_file_exp', 'q' * 40000, {'expire': 10, 'tag': 1.25}),
    ('pickle_exp_tag', (1, 2), {'expire': 100, 'tag': b'pk'}),
]

# Keys of every kind; non-native ones are stored pickled (raw = 0).
KEYS = [7, -1, 0, 2**63 - 1, -2**63, 2**70, -2**63 - 1, 1.25, -0.5,
        'héllo', '', b'bkey', b'', ('a', 1), True, None, (), 'k' * 1000,
        b'\xff' * 300, 'nul\x00key', b'nul\x00key']


def written(value):
    """The value Python will read back for what was written."""
    if isinstance(value, io.BytesIO):
        return value.getvalue()
    return value


class PythonWritesCReads(InteropCase):

    def populate(self, cache):
        for key, value, kw in VALUES:
            if isinstance(value, io.BytesIO):
                value.seek(0)
            self.assertTrue(cache.set(key, value, **kw))
        for i, key in enumerate(KEYS):
            cache[key] = 'key %d' % i

    def expected_size(self, key, value, filename):
        if filename is not None:
            return os.path.getsize(os.path.join(self.tmp, filename))
        cv = c_value(value)
        if isinstance(cv, Pickled):
            return len(cv.data)
        if isinstance(cv, str):
            return len(cv.encode('utf-8'))
        if isinstance(cv, bytes):
            return len(cv)
        return 0

    def test_values_and_metadata(self):
        with diskcache.Cache(self.tmp) as cache:
            self.populate(cache)
            expect = {}
            for key, value, kw in VALUES:
                v, exp, tag = cache.get(key, expire_time=True, tag=True)
                self.assertEqual(v, written(value), key)
                expect[key] = (v, exp, tag)
        meta = {k: (st, at, ac, fn) for k, st, at, ac, fn in db_rows(
            os.path.join(self.tmp, 'cache.db'),
            'SELECT key, store_time, access_time, access_count, filename'
            ' FROM Cache WHERE raw = 1 AND typeof(key) = \'text\'')}

        drv = self.driver(self.tmp)
        for key, value, kw in VALUES:
            r = self.ok(drv.cmd('get', spec(key)), key)
            v, exp, tag = expect[key]
            st, at, ac, filename = meta[key]
            cv = c_value(v)
            self.assertSame(decode(r['value']), cv, key)
            self.assertEqual(r['value']['type'],
                             {int: 'int', float: 'float', str: 'str',
                              bytes: 'bytes', Pickled: 'pickle'}[type(cv)],
                             key)
            self.assertSame(dtime(r['expire_time']), exp, key)
            self.assertSame(decode(r['tag']), tag, key)
            self.assertEqual(r['file_backed'], int(filename is not None),
                             key)
            self.assertEqual(r['size'],
                             self.expected_size(key, v, filename), key)
            self.assertSame(dtime(r['store_time']), st, key)
            self.assertSame(dtime(r['access_time']), at, key)
            self.assertEqual(r['access_count'], ac, key)
        drv.close()

    def test_threshold_placement(self):
        """The premise of the file-backed cases: Python put these in
        files (or not), so C's file_backed is checked against reality."""
        with diskcache.Cache(self.tmp) as cache:
            self.populate(cache)
        rows = dict(db_rows(os.path.join(self.tmp, 'cache.db'),
                           'SELECT key, filename IS NOT NULL FROM Cache'
                           ' WHERE raw = 1 AND typeof(key) = \'text\''))
        self.assertEqual(rows['str_inline_codepoints'], 0)
        self.assertEqual(rows['str_inline_edge'], 0)
        self.assertEqual(rows['str_file'], 1)
        self.assertEqual(rows['str_file_edge'], 1)
        self.assertEqual(rows['str_file_utf8'], 1)
        self.assertEqual(rows['bytes_inline_edge'], 0)
        self.assertEqual(rows['bytes_file_edge'], 1)
        self.assertEqual(rows['reader'], 1)
        self.assertEqual(rows['pickle_file'], 1)
        r = run1(self.tmp, 'dump')
        self.ok(r)
        fb = {decode(i['key']): i['file_backed'] for i in r['items']}
        for key, flag in rows.items():
            self.assertEqual(fb[key], flag, key)

    def test_keys_listed_and_found(self):
        with diskcache.Cache(self.tmp) as cache:
            self.populate(cache)
            order = list(cache)
            sorted_order = list(cache.iterkeys())
            values = {c_key(k): cache[k] for k in order}
        drv = self.driver(self.tmp)
        r = self.ok(drv.cmd('dump', 'values'))
        got = [decode(i['key']) for i in r['items']]
        self.assertEqual(got, [c_key(k) for k in order])
        for i in r['items']:
            k = decode(i['key'])
            self.assertEqual(i['get_rc'], 0, k)
            self.assertSame(decode(i['get_value']), c_value(values[k]), k)
        # Pickled keys: type pickle, the exact optimized pickle bytes.
        types = {decode(i['key']): i['key']['type'] for i in r['items']}
        for k in KEYS:
            ck = c_key(k)
            if isinstance(ck, Pickled):
                self.assertEqual(types[ck], 'pickle', k)
                self.assertEqual(ck.data, key_pickle(k))
            r1 = self.ok(drv.cmd('get', spec(ck)), k)
            self.assertEqual(decode(r1['value']), values[ck], k)
        r = self.ok(drv.cmd('dump', 'reverse'))
        self.assertEqual([decode(i['key']) for i in r['items']],
                         [c_key(k) for k in reversed(order)])
        r = self.ok(drv.cmd('dump', 'sorted'))
        self.assertEqual([decode(i['key']) for i in r['items']],
                         [c_key(k) for k in sorted_order])
        drv.close()

    def test_check_clean_then_detects_missing_file(self):
        with diskcache.Cache(self.tmp) as cache:
            self.populate(cache)
            self.assertEqual(cache.check(), [])
        r = run1(self.tmp, 'check')
        self.ok(r)
        self.assertEqual(r['warnings'], [])
        self.assertEqual(r['nwarnings'], 0)
        # A check that cannot fail proves nothing: remove one value file.
        (name,), = db_rows(os.path.join(self.tmp, 'cache.db'),
                           'SELECT filename FROM Cache WHERE key = ?',
                           ('str_file',))
        os.unlink(os.path.join(self.tmp, name))
        r = run1(self.tmp, 'check')
        self.ok(r)
        kinds = sorted((w['kind'] for w in r['warnings']), key=str)
        # The file is missing and its ab/cd directory is now empty:
        # both checks must say so, in the same terms.
        self.assertEqual(kinds, [WARN_FILE_MISSING, WARN_EMPTY_DIR])
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(py_warning_kinds(cache.check()), kinds)
        r = run1(self.tmp, 'get', spec('str_file'))
        self.assertEqual(r['rc'], DC_NOTFOUND, r)
        self.ok(run1(self.tmp, 'check', 'fix'))
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(cache.check(), [])
            self.assertNotIn('str_file', cache)

    def test_expired_key_invisible_but_listed(self):
        with diskcache.Cache(self.tmp) as cache:
            cache.set('gone', 'x', expire=0.05)
            cache.set('stays', 'y')
        time.sleep(0.1)
        drv = self.driver(self.tmp)
        self.assertEqual(drv.cmd('get', spec('gone'))['rc'], DC_NOTFOUND)
        self.assertEqual(drv.cmd('contains', spec('gone'))['rc'],
                         DC_NOTFOUND)
        self.ok(drv.cmd('contains', spec('stays')))
        r = self.ok(drv.cmd('dump'))
        self.assertEqual([decode(i['key']) for i in r['items']],
                         ['gone', 'stays'])
        r = self.ok(drv.cmd('dump', 'alive'))
        self.assertEqual([decode(i['key']) for i in r['items']], ['stays'])
        r = self.ok(drv.cmd('expire'))
        self.assertEqual(r['count'], 1)
        drv.close()
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(list(cache), ['stays'])

    def test_read_as_fd(self):
        data = bytes(range(256)) * 160
        with diskcache.Cache(self.tmp) as cache:
            cache.set('big', data)
            cache.set('small', b'abc')
        drv = self.driver(self.tmp)
        r = self.ok(drv.cmd('get', spec('big'), 'fd'))
        self.assertEqual(r.get('from_fd'), 1, r)
        self.assertEqual(decode(r['value']), data)
        r = self.ok(drv.cmd('get', spec('small'), 'fd'))
        self.assertNotIn('from_fd', r)
        self.assertEqual(decode(r['value']), b'abc')
        drv.close()

    def test_int_and_float_key_are_one_key(self):
        with diskcache.Cache(self.tmp) as cache:
            cache[1] = 'one'
            cache[1.0] = 'one float'
            self.assertEqual(len(cache), 1)
        r = run1(self.tmp, 'get', spec(1))
        self.assertEqual(decode(self.ok(r)['value']), 'one float')
        r = run1(self.tmp, 'get', spec(1.0))
        self.assertEqual(decode(self.ok(r)['value']), 'one float')
        r = run1(self.tmp, 'dump')
        self.assertSame(decode(r['items'][0]['key']), 1)


if __name__ == '__main__':
    unittest.main()
