# test_schema.py - (d) a directory created by C is the one Python creates
# SPDX-License-Identifier: MIT

import os
import unittest

import diskcache

from dcutil import (DC_LAYOUT, InteropCase, db_rows, decode, run1, same,
                    spec, sqlite_cli)

SETTINGS_SQL = 'SELECT key, typeof(value), value FROM Settings ORDER BY key'
PRAGMAS = ('journal_mode', 'auto_vacuum', 'page_size')


def files_below(top):
    """Relative paths of files, without SQLite's -wal/-shm companions."""
    out = []
    for root, dirs, files in os.walk(top):
        for f in files:
            if f.endswith(('-wal', '-shm')):
                continue
            out.append(os.path.relpath(os.path.join(root, f), top))
    return sorted(out)


class SameFormat(InteropCase):

    def assert_same_db(self, c_db, py_db, what):
        self.assertEqual(sqlite_cli(c_db, '.schema'),
                         sqlite_cli(py_db, '.schema'), what + ': .schema')
        c_set, py_set = db_rows(c_db, SETTINGS_SQL), db_rows(py_db,
                                                            SETTINGS_SQL)
        self.assertTrue(same(c_set, py_set),
                        '%s: Settings\nC:  %r\nPy: %r' % (what, c_set,
                                                         py_set))
        for p in PRAGMAS:
            self.assertEqual(db_rows(c_db, 'PRAGMA ' + p),
                             db_rows(py_db, 'PRAGMA ' + p), what + ': ' + p)

    def test_plain_cache_created_by_c(self):
        py, c = self.path('py'), self.path('c')
        diskcache.Cache(py).close()
        self.ok(run1(c, 'len', opts=('--shards', 'plain')))
        self.assert_same_db(os.path.join(c, 'cache.db'),
                            os.path.join(py, 'cache.db'), 'plain')
        self.assertEqual(files_below(c), files_below(py))
        # The reference values themselves (spec Appendix A).
        rows = dict((k, (t, v)) for k, t, v in db_rows(
            os.path.join(c, 'cache.db'), SETTINGS_SQL))
        self.assertEqual(rows['size_limit'], ('integer', 1073741824))
        self.assertEqual(rows['eviction_policy'],
                         ('text', 'least-recently-stored'))
        self.assertEqual(rows['sqlite_journal_mode'], ('text', 'wal'))
        self.assertEqual(db_rows(os.path.join(c, 'cache.db'),
                                 'PRAGMA journal_mode'), [('wal',)])
        self.assertEqual(db_rows(os.path.join(c, 'cache.db'),
                                 'PRAGMA auto_vacuum'), [(1,)])

    def test_fanout_created_by_c(self):
        py, c = self.path('py'), self.path('c')
        diskcache.FanoutCache(py, shards=8).close()
        self.ok(run1(c, 'len', opts=('--shards', '8')))
        self.assertEqual(sorted(os.listdir(c)), sorted(os.listdir(py)))
        self.assertEqual(files_below(c), files_below(py))
        for s in range(8):
            name = '%03d' % s
            self.assert_same_db(os.path.join(c, name, 'cache.db'),
                                os.path.join(py, name, 'cache.db'), name)
            (t, v), = db_rows(os.path.join(c, name, 'cache.db'),
                              "SELECT typeof(value), value FROM Settings"
                              " WHERE key = 'size_limit'")
            self.assertEqual(t, 'real')
            self.assertTrue(same(v, 134217728.0))

    def test_opening_does_not_rewrite_settings(self):
        """Each side opening the other's directory keeps every Settings
        row (name, value and storage class) as it was."""
        for shards in ('plain', '8'):
            py = self.path('py' + shards)
            if shards == 'plain':
                diskcache.Cache(py).close()
                dbs = [os.path.join(py, 'cache.db')]
            else:
                diskcache.FanoutCache(py, shards=8).close()
                dbs = [os.path.join(py, '%03d' % s, 'cache.db')
                       for s in range(8)]
            before = [db_rows(db, SETTINGS_SQL) for db in dbs]
            self.ok(run1(py, 'len', opts=('--shards', shards)))
            after = [db_rows(db, SETTINGS_SQL) for db in dbs]
            self.assertTrue(same(before, after), shards)
        c = self.path('c')
        self.ok(run1(c, 'len', opts=('--shards', 'plain')))
        before = db_rows(os.path.join(c, 'cache.db'), SETTINGS_SQL)
        with diskcache.Cache(c) as cache:
            self.assertEqual(cache.size_limit, 2**30)
            self.assertEqual(cache.disk_min_file_size, 2**15)
            self.assertEqual(cache.disk_pickle_protocol, 5)
            self.assertEqual(cache.sqlite_mmap_size, 2**26)
        self.assertTrue(same(db_rows(os.path.join(c, 'cache.db'),
                                     SETTINGS_SQL), before))

    def test_unknown_settings_survive_c(self):
        """DjangoCache-style extra settings stay as Python wrote them."""
        py = self.path('py')
        diskcache.Cache(py, disk=diskcache.JSONDisk, MAX_ENTRIES=300,
                        CULL_FREQUENCY=0.5, disk_compress_level=6).close()
        db = os.path.join(py, 'cache.db')
        before = db_rows(db, SETTINGS_SQL)
        self.ok(run1(py, 'len'))
        self.assertTrue(same(db_rows(db, SETTINGS_SQL), before))
        with diskcache.Cache(py, disk=diskcache.JSONDisk) as cache:
            self.assertEqual(cache.reset('MAX_ENTRIES'), 300)

    def test_layout_detection(self):
        """C finds the shard count of a Python FanoutCache (with its
        sub-collection directories) and refuses a different one."""
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=4) as fc:
            fc.cache('sessions')['a'] = 1
            fc.deque('jobs/high').append(2)
            fc.index('users')['u'] = 3
            fc['k'] = 'v'
        r = self.ok(run1(d, 'shards'))
        self.assertEqual(r['shards'], 4)
        r = run1(d, 'shards', opts=('--shards', '8'))
        self.assertEqual(r['rc'], DC_LAYOUT, r)
        r = run1(d, 'shards', opts=('--shards', 'plain'))
        self.assertEqual(r['rc'], DC_LAYOUT, r)
        r = self.ok(run1(d, 'get', spec('k')))
        self.assertEqual(decode(r['value']), 'v')
        p = self.path('plain')
        diskcache.Cache(p).close()
        self.assertEqual(self.ok(run1(p, 'shards'))['shards'], 0)
        r = run1(p, 'shards', opts=('--shards', '8'))
        self.assertEqual(r['rc'], DC_LAYOUT, r)

    def test_c_settings_at_open_match_python(self):
        """Settings passed at open are stored as Python stores them."""
        py, c = self.path('py'), self.path('c')
        diskcache.Cache(py, size_limit=12345, cull_limit=3,
                        eviction_policy='least-recently-used',
                        tag_index=True, statistics=1).close()
        self.ok(run1(c, 'len', opts=(
            '--shards', 'plain', '--setting', 'size_limit=int:12345',
            '--setting', 'cull_limit=int:3', '--setting',
            'eviction_policy=str:least-recently-used',
            '--setting', 'tag_index=int:1', '--setting', 'statistics=int:1')))
        self.assert_same_db(os.path.join(c, 'cache.db'),
                            os.path.join(py, 'cache.db'), 'settings')

    def test_sub_collections_share_paths(self):
        d = self.path('fan')
        drv = self.driver(d, '--shards', '8')
        self.ok(drv.cmd('sub', 'deque', 'jobs/high'))
        for v in ('a', 'b', 'c'):
            self.ok(drv.cmd('push', spec(v)))
        self.ok(drv.cmd('sub', 'index', 'users'))
        for k, v in (('x', 1), ('y', 2)):
            self.ok(drv.cmd('set', spec(k), spec(v)))
        self.ok(drv.cmd('sub', 'cache', 'sessions'))
        self.ok(drv.cmd('set', spec('s1'), spec(b'S' * 40000)))
        self.ok(drv.cmd('unsub'))
        for sub in ('deque/jobs/high', 'index/users', 'cache/sessions'):
            self.assertTrue(os.path.exists(os.path.join(d, sub,
                                                        'cache.db')), sub)
        with diskcache.FanoutCache(d, shards=8) as fc:
            dq = fc.deque('jobs/high')
            self.assertEqual(list(dq), ['a', 'b', 'c'])
            self.assertEqual(dq.popleft(), 'a')
            dq.append('d')
            idx = fc.index('users')
            self.assertEqual(list(idx.items()), [('x', 1), ('y', 2)])
            idx['z'] = 3
            self.assertEqual(fc.cache('sessions')['s1'], b'S' * 40000)
            r = self.ok(drv.cmd('sub', 'deque', 'jobs/high'))
            r = self.ok(drv.cmd('pull', 'back'))
            self.assertEqual(decode(r['value']), 'd')
            self.ok(drv.cmd('sub', 'index', 'users'))
            r = self.ok(drv.cmd('dump'))
            self.assertEqual([decode(i['key']) for i in r['items']],
                             ['x', 'y', 'z'])
            self.assertEqual(list(dq), ['b', 'c'])
            for sub in (dq.directory, idx.directory):
                with diskcache.Cache(sub) as cache:
                    self.assertEqual(cache.check(), [])
        drv.close()


if __name__ == '__main__':
    unittest.main()
