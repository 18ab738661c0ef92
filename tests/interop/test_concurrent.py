# test_concurrent.py - (c) Python and libdcache on one directory at once
# SPDX-License-Identifier: MIT
#
# A long-lived Python cache object and a long-lived dcinterop process in
# script mode share a directory; operations are interleaved, and some run
# truly concurrently (the driver works while Python loops).

import os
import time
import unittest

import diskcache

from dcutil import (DC_EXISTS, DC_NOTFOUND, DC_TIMEOUT, WARN_FILE_MISSING,
                    InteropCase, c_key, db_rows, decode, dtime, same, spec)

SHARD_KEYS = (
    [0, 1, 7, 8, -1, -2, -7, -8, 255, -255, 2**31, 2**32, 2**32 - 1,
     2**32 - 2, -2**32, 4294967295 * 3, 2**63 - 1, -2**63, -2**63 + 1,
     123456789012345, -987654321098765] +
    [1.0, 0.5, -0.5, 0.1, 1.5, 2.5, -0.0, 1e300, -1e-300, 5e-324,
     float('inf'), float('-inf'), 3.141592653589793, 500000000000000.5] +
    ['', 'a', 'b', 'abc', 'héllo', '€uro', '\U0001f600', 'x' * 100,
     'key-%d' % 123, 'jobs-500000000000000', 'nul\x00key'] +
    [b'', b'a', b'abc', b'\x00' * 5, b'\xff' * 64, bytes(range(256))] +
    [('a', 1), None, True, False, 2**64, -2**63 - 1, (), ('t', 'u', 3)])

N_INCR = 1000


class SameDirectoryAtOnce(InteropCase):

    def test_fanout_shard_agreement(self):
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=8) as fc:
            drv = self.driver(d, '--shards', '8')
            self.assertEqual(self.ok(drv.cmd('shards'))['shards'], 8)
            for i, k in enumerate(SHARD_KEYS):
                ks = spec(c_key(k))
                r = self.ok(drv.cmd('hash', ks), k)
                self.assertEqual(r['hash'], fc._hash(k), k)
                r = self.ok(drv.cmd('shard-of', ks), k)
                self.assertEqual(r['shard'], fc._hash(k) % 8, k)
                # Interleave writers: each key written by one side and
                # read at once by the other, both handles open.
                if i % 2:
                    self.ok(drv.cmd('set', ks, spec('c%d' % i), 'retry'), k)
                    self.assertEqual(fc.get(k, retry=True), 'c%d' % i, k)
                else:
                    self.assertTrue(fc.set(k, 'py%d' % i, retry=True))
                    r = self.ok(drv.cmd('get', ks), k)
                    self.assertEqual(decode(r['value']), 'py%d' % i, k)
            # The row is in the shard both computed, and only there.
            disk = fc._shards[0].disk
            for i, k in enumerate(SHARD_KEYS):
                shard = fc._hash(k) % 8
                dbkey, raw = disk.put(k)
                where = [s for s in range(8) if db_rows(
                    os.path.join(d, '%03d' % s, 'cache.db'),
                    'SELECT rowid FROM Cache WHERE key = ? AND raw = ?'
                    ' AND typeof(key) = typeof(?)', (dbkey, raw, dbkey))]
                self.assertEqual(where, [shard], k)
            # int 1 and float 1.0 are one key in a Cache but lie in
            # different shards of a FanoutCache (spec 5.3).
            self.assertNotEqual(fc._hash(1) % 8, fc._hash(1.0) % 8)
            r = self.ok(drv.cmd('get', spec(1.0)))
            self.assertEqual(decode(r['value']), fc.get(1.0))
            self.assertEqual(self.ok(drv.cmd('len'))['count'], len(fc))
            drv.close()
            self.assertEqual(fc.check(), [])

    def incr_race(self, py_cache, drv, key, py_kw, base=0):
        """C and Python increment one key at the same time, in rounds
        until the totals each side saw show that they interleaved (each
        side otherwise runs so fast that it may finish first).  Returns
        the expected final value."""
        total = base
        for _ in range(5):
            drv.send('repeat', N_INCR, 'incr', spec(key), 1, 'retry')
            seen = [py_cache.incr(key, **py_kw) for _ in range(N_INCR)]
            r = drv.recv()
            self.ok(r, 'C incr loop')
            self.assertEqual(r['fails'], 0, r)
            total += 2 * N_INCR
            # Each side saw strictly increasing, distinct totals, and one
            # of them saw the final total.
            self.assertEqual(seen, sorted(set(seen)))
            self.assertIn(total, seen + [decode(r['last']['value'])])
            if any(b != a + 1 for a, b in zip(seen, seen[1:])):
                return total
        self.fail('C and Python never interleaved in 5 rounds')

    def test_concurrent_incr_fanout(self):
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=8) as fc:
            drv = self.driver(d, '--shards', '8')
            total = self.incr_race(fc, drv, 'counter', {'retry': True})
            self.assertEqual(fc.get('counter', retry=True), total)
            r = self.ok(drv.cmd('get', spec('counter')))
            self.assertEqual(decode(r['value']), total)
            drv.close()

    def test_concurrent_incr_plain(self):
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            cache[5] = 1000
            total = self.incr_race(cache, drv, 5, {}, base=1000)
            self.assertEqual(cache[5], total)
            r = self.ok(drv.cmd('get', spec(5)))
            self.assertEqual(decode(r['value']), total)
            drv.close()

    def py_pull_until(self, cache, n, prefix=None, limit=60):
        """Pull n items, waiting while the queue is empty."""
        got, deadline = [], time.monotonic() + limit
        while len(got) < n and time.monotonic() < deadline:
            k, v = cache.pull(prefix=prefix)
            if k is None:
                time.sleep(0.001)
            else:
                got.append((k, v))
        return got

    def test_c_pushes_python_pulls(self):
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            for prefix in (None, 'jobs'):
                extra = ['prefix=' + prefix] if prefix else []
                drv.send('push-many', 200, 'retry', *extra)
                got = self.py_pull_until(cache, 200, prefix)
                r = self.ok(drv.recv())
                keys = [decode(k) for k in r['keys']]
                self.assertEqual(len(keys), 200)
                # One producer at the back, one consumer at the front:
                # FIFO, nothing lost, nothing twice.
                self.assertEqual([k for k, _ in got], keys)
                self.assertEqual([v for _, v in got],
                                 ['c-%d' % i for i in range(200)])
                self.assertEqual(len(cache), 0)
            drv.close()
            self.assertEqual(cache.check(), [])

    def test_python_pushes_c_pulls(self):
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            for prefix in (None, 'jobs'):
                extra = ['prefix=' + prefix] if prefix else []
                drv.send('pull-n', 200, 'timeout=60', 'retry', *extra)
                keys = [cache.push('py-%d' % i, prefix=prefix)
                        for i in range(200)]
                r = self.ok(drv.recv())
                items = [(decode(i['key']), decode(i['value']))
                         for i in r['items']]
                self.assertEqual([k for k, _ in items], keys)
                self.assertEqual([v for _, v in items],
                                 ['py-%d' % i for i in range(200)])
                self.assertEqual(len(cache), 0)
            r = self.ok(drv.cmd('check'))
            self.assertEqual(r['warnings'], [])
            drv.close()

    def both_push_then_both_pull(self, cache, drv, n):
        """One round; returns how many items each consumer got."""
        # Phase 1: both produce at once (keys are chosen inside the
        # write transaction, so none may collide).
        drv.send('push-many', n, 'retry')
        py_keys = {cache.push('py-%d' % i): 'py-%d' % i for i in range(n)}
        c_keys = {decode(k): 'c-%d' % i for i, k in
                  enumerate(self.ok(drv.recv())['keys'])}
        self.assertEqual(len(py_keys), n)
        self.assertEqual(len(c_keys), n)
        self.assertFalse(set(py_keys) & set(c_keys))
        self.assertEqual(len(cache), 2 * n)
        pushed = dict(py_keys)
        pushed.update(c_keys)
        # Phase 2: both consume at once until the queue is empty.  Python
        # pauses briefly between pulls: SQLite's busy handler sleeps, so
        # a consumer that never lets go of the lock can starve the other.
        drv.send('pull-n', 0, 'retry')
        py_got = []
        while True:
            k, v = cache.pull()
            if k is None:
                break
            py_got.append((k, v))
            time.sleep(0.0002)
        r = self.ok(drv.recv())
        c_got = [(decode(i['key']), decode(i['value'])) for i in r['items']]
        got = py_got + c_got
        self.assertEqual(len(got), 2 * n, 'lost or duplicated')
        self.assertEqual(dict(got), pushed)
        self.assertEqual(len(cache), 0)
        return len(py_got), len(c_got)

    def test_both_push_then_both_pull(self):
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            # Rounds until both consumers really competed for the queue.
            for _ in range(5):
                py_n, c_n = self.both_push_then_both_pull(cache, drv, 300)
                if py_n and c_n:
                    break
            else:
                self.fail('one consumer always took everything')
            drv.close()
            self.assertEqual(cache.check(), [])

    def test_settings_seen_after_reload(self):
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            cache.reset('cull_limit', 3)
            r = self.ok(drv.cmd('setting-get', 'cull_limit'))
            self.assertSame(decode(r['value']), 3)
            cache.reset('size_limit', 2**20)
            r = self.ok(drv.cmd('setting-get', 'size_limit'))
            self.assertSame(decode(r['value']), 2**20)
            self.ok(drv.cmd('setting-set', 'eviction_policy',
                            spec('least-recently-used')))
            self.assertEqual(cache.reset('eviction_policy'),
                             'least-recently-used')
            self.ok(drv.cmd('setting-set', 'eviction_policy',
                            spec('least-recently-stored')))
            # Statistics switched on by C; Python counts after reload,
            # C reads Python's counts, and the other way round.
            self.ok(drv.cmd('setting-set', 'statistics', spec(1)))
            self.assertEqual(cache.reset('statistics'), 1)
            cache.set('a', 1)
            self.assertEqual(cache.get('a'), 1)
            self.assertIsNone(cache.get('zz'))
            r = self.ok(drv.cmd('stats'))
            self.assertEqual((r['hits'], r['misses']), (1, 1))
            self.ok(drv.cmd('get', spec('a')))
            self.assertEqual(drv.cmd('get', spec('nope'))['rc'],
                             DC_NOTFOUND)
            self.assertEqual(cache.stats(), (2, 2))
            r = self.ok(drv.cmd('stats', 'enable=0', 'reset'))
            self.assertEqual((r['hits'], r['misses']), (2, 2))
            self.assertEqual(cache.reset('statistics'), 0)
            self.assertEqual(cache.stats(enable=False), (0, 0))
            # A setting passed at open overwrites the database for all.
            drv.close()
            drv = self.driver(self.tmp, '--setting', 'cull_limit=int:5')
            self.ok(drv.cmd('len'))
            self.assertEqual(cache.reset('cull_limit'), 5)
            drv.close()
            # Settings C wrote all keep their type for Python.
            self.assertEqual(cache.reset('size_limit'), 2**20)
            self.assertEqual(cache.check(), [])

    def test_settings_fanout(self):
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=8) as fc:
            drv = self.driver(d, '--shards', '8')
            fc.reset('cull_limit', 4)
            r = self.ok(drv.cmd('setting-get', 'cull_limit'))
            self.assertSame(decode(r['value']), 4)
            r = self.ok(drv.cmd('setting-get', 'size_limit'))
            self.assertSame(decode(r['value']), 134217728.0)
            self.ok(drv.cmd('setting-set', 'tag_index', spec(1)))
            for s in range(8):
                self.assertEqual(fc._shards[s].reset('tag_index'), 1, s)
                names = [n for (n,) in db_rows(
                    os.path.join(d, '%03d' % s, 'cache.db'),
                    "SELECT name FROM sqlite_master WHERE type = 'index'")]
                self.assertIn('Cache_tag_rowid', names)
            self.ok(drv.cmd('setting-set', 'cull_limit', spec(6)))
            for s in range(8):
                self.assertEqual(fc._shards[s].reset('cull_limit'), 6, s)
            drv.close()
            self.assertEqual(fc.check(), [])

    def test_evict_expire_clear_cross(self):
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=8) as fc:
            drv = self.driver(d, '--shards', '8')
            # Python writes, C evicts.
            for i in range(24):
                big = i % 6 == 0
                fc.set('red%d' % i, b'R' * 40000 if big else i, tag='red',
                       retry=True)
                fc.set('blue%d' % i, b'U' * 40000 if big else i,
                       tag='blue', retry=True)
            r = self.ok(drv.cmd('evict', spec('red')))
            self.assertEqual(r['count'], 24)
            self.assertEqual(len(fc), 24)
            self.assertFalse(any('red%d' % i in fc for i in range(24)))
            self.assertEqual(fc.check(), [])
            # C writes expiring keys, Python expires them.
            for i in range(16):
                v = spec(b'E' * 40000) if i % 4 == 0 else spec(i)
                self.ok(drv.cmd('set', spec('exp%d' % i), v, 'expire=0.3',
                                'retry'))
            self.assertEqual(len(fc), 40)
            time.sleep(0.5)
            self.assertEqual(fc.expire(), 16)
            self.assertEqual(self.ok(drv.cmd('len'))['count'], 24)
            # Python clears, C sees nothing.
            self.assertEqual(fc.clear(), 24)
            self.assertEqual(self.ok(drv.cmd('len'))['count'], 0)
            self.assertEqual(self.ok(drv.cmd('dump'))['items'], [])
            # C writes, Python evicts; C expires Python's; C clears.
            for i in range(10):
                v = spec(b'G' * 40000) if i % 3 == 0 else spec('g%d' % i)
                self.ok(drv.cmd('set', spec(i), v, 'tag=' + spec('green'),
                                'retry'))
            self.assertEqual(fc.evict('green'), 10)
            self.assertEqual(self.ok(drv.cmd('dump'))['items'], [])
            for i in range(12):
                fc.set(('t', i), b'T' * 40000 if i % 4 == 0 else i,
                       expire=0.3 if i % 2 else None, retry=True)
            time.sleep(0.5)
            r = self.ok(drv.cmd('expire'))
            self.assertEqual(r['count'], 6)
            self.assertEqual(len(fc), 6)
            self.assertEqual(sorted(k[1] for k in fc), [0, 2, 4, 6, 8, 10])
            r = self.ok(drv.cmd('clear'))
            self.assertEqual(r['count'], 6)
            self.assertEqual(len(fc), 0)
            self.assertEqual(fc.check(), [])
            self.assertEqual(self.ok(drv.cmd('check'))['warnings'], [])
            drv.close()

    def test_mixed_operations(self):
        """add/touch/delete/pop/get across the two, both open."""
        with diskcache.Cache(self.tmp) as cache:
            drv = self.driver(self.tmp)
            cache.set('p', b'P' * 40000, tag='t')
            r = drv.cmd('add', spec('p'), spec(1))
            self.assertEqual(r['rc'], DC_EXISTS, r)
            self.ok(drv.cmd('add', spec('c'), spec('from c'),
                            'expire=100'))
            self.assertFalse(cache.add('c', 'from py'))
            self.assertEqual(cache['c'], 'from c')
            # touch from C is seen by Python, exactly.
            self.ok(drv.cmd('touch', spec('p'), 'expire=50'))
            _, exp = cache.get('p', expire_time=True)
            r = self.ok(drv.cmd('get', spec('p'), 'novalue'))
            self.assertTrue(same(dtime(r['expire_time']), exp))
            self.assertTrue(cache.touch('c'))   # no expiry any more
            r = self.ok(drv.cmd('get', spec('c')))
            self.assertIsNone(r['expire_time'])
            # pop from C takes Python's file-backed value and its file.
            r = self.ok(drv.cmd('pop', spec('p')))
            self.assertEqual(decode(r['value']), b'P' * 40000)
            self.assertEqual(decode(r['tag']), 't')
            self.assertNotIn('p', cache)
            self.assertEqual(cache.check(), [])
            # delete from Python, C misses; delete from C, Python misses.
            self.assertTrue(cache.delete('c'))
            self.assertEqual(drv.cmd('get', spec('c'))['rc'], DC_NOTFOUND)
            self.assertEqual(drv.cmd('delete', spec('c'))['rc'],
                             DC_NOTFOUND)
            cache['d'] = 4
            self.ok(drv.cmd('delete', spec('d')))
            self.assertNotIn('d', cache)
            # Python pops what C wrote to a file.
            self.ok(drv.cmd('set', spec('f'), spec('F' * 40000)))
            self.assertEqual(cache.pop('f'), 'F' * 40000)
            self.assertEqual(self.ok(drv.cmd('check'))['warnings'], [])
            # peekitem from C sees Python's last insertion.
            cache['last'] = 'L'
            r = self.ok(drv.cmd('peekitem'))
            self.assertEqual((decode(r['key']), decode(r['value'])),
                             ('last', 'L'))
            drv.close()

    def test_write_locks_are_shared(self):
        """A write transaction held by one side makes the other side's
        writes time out, while reads go on (WAL)."""
        cache = diskcache.Cache(self.tmp, timeout=0.1)
        self.addCleanup(cache.close)
        cache['k'] = 1
        drv = self.driver(self.tmp, '--timeout', '0.1')
        self.ok(drv.cmd('begin'))
        self.ok(drv.cmd('set', spec('k'), spec(2)))
        with self.assertRaises(diskcache.Timeout):
            cache.set('x', 1)
        self.assertEqual(cache['k'], 1)     # C has not committed
        self.ok(drv.cmd('commit'))
        self.assertEqual(cache['k'], 2)
        self.assertTrue(cache.set('x', 1))
        with cache.transact():
            cache['k'] = 3
            r = drv.cmd('set', spec('y'), spec(1))
            self.assertEqual(r['rc'], DC_TIMEOUT, r)
            r = self.ok(drv.cmd('get', spec('k')))
            self.assertEqual(decode(r['value']), 2)
        r = self.ok(drv.cmd('get', spec('k')))
        self.assertEqual(decode(r['value']), 3)
        self.ok(drv.cmd('set', spec('y'), spec(1)))
        # A rolled-back C write leaves nothing behind, not even a file.
        self.ok(drv.cmd('begin'))
        self.ok(drv.cmd('set', spec('z'), spec(b'Z' * 40000)))
        self.ok(drv.cmd('rollback'))
        self.assertNotIn('z', cache)
        self.assertEqual(cache.check(), [])
        drv.close()

    def test_fanout_lock_held_by_c(self):
        """dc_cache_begin on a FanoutCache locks every shard: Python's
        FanoutCache writes time out (False), reads go on."""
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=8) as fc:
            fc['k'] = 1
            drv = self.driver(d, '--shards', '8')
            self.ok(drv.cmd('begin', 'retry'))
            self.ok(drv.cmd('set', spec('k'), spec(2)))
            for key in ('k', 'a', 'b', 'c', 7, 8.5):
                self.assertFalse(fc.set(key, 0))
            self.assertEqual(fc.get('k'), 1)
            self.ok(drv.cmd('commit'))
            self.assertEqual(fc.get('k'), 2)
            self.assertTrue(fc.set('a', 0))
            drv.close()

    def test_access_hooks_match(self):
        """With LRU/LFU, a C get updates the row as a Python get does
        (spec 6.4 slow path)."""
        for policy, column in (('least-recently-used', 'access_time'),
                               ('least-frequently-used', 'access_count')):
            d = self.path(policy)
            with diskcache.Cache(d, eviction_policy=policy) as cache:
                cache['c'] = 'x'
                cache['p'] = 'x'
                drv = self.driver(d)
                db = os.path.join(d, 'cache.db')
                sql = 'SELECT %s FROM Cache WHERE key = ?' % column
                before = db_rows(db, sql, ('c',))[0][0]
                for _ in range(3):
                    self.ok(drv.cmd('get', spec('c')))
                    cache.get('p')
                c_after = db_rows(db, sql, ('c',))[0][0]
                p_after = db_rows(db, sql, ('p',))[0][0]
                if column == 'access_count':
                    self.assertEqual((before, c_after, p_after), (0, 3, 3))
                else:
                    self.assertGreater(c_after, before)
                # DC_NOVALUE reads leave the row alone.
                self.ok(drv.cmd('get', spec('c'), 'novalue'))
                self.assertEqual(db_rows(db, sql, ('c',))[0][0], c_after)
                drv.close()

    def test_python_540_peek_deletes_file(self):
        """Spec 11: a 5.4.0 peek of a file-backed item unlinks its file;
        C must then treat the item as missing."""
        drv = self.driver(self.tmp)
        k1 = decode(self.ok(drv.cmd('push', spec(b'B' * 40000)))['key'])
        k2 = decode(self.ok(drv.cmd('push', spec('small')))['key'])
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(cache.peek(), (k1, b'B' * 40000))
        (name,), = db_rows(os.path.join(self.tmp, 'cache.db'),
                           'SELECT filename FROM Cache WHERE key = ?', (k1,))
        # The premise: Python 5.4.0 really removed the file.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, name)))
        r = self.ok(drv.cmd('check'))
        self.assertEqual([w['kind'] for w in r['warnings']],
                         [WARN_FILE_MISSING])
        self.assertEqual(drv.cmd('get', spec(k1))['rc'], DC_NOTFOUND)
        # peek may skip the broken item or report the queue empty, but
        # must answer (Python 5.4.0 itself spins forever here).
        r = drv.cmd('peek', timeout=20)
        self.assertIn(r['rc'], (0, DC_NOTFOUND), r)
        if r['rc'] == 0:
            self.assertEqual((decode(r['key']), decode(r['value'])),
                             (k2, 'small'))
        # pull drops the broken item and returns the next one, as
        # Python's pull does.
        r = self.ok(drv.cmd('pull'))
        self.assertEqual((decode(r['key']), decode(r['value'])),
                         (k2, 'small'))
        self.assertEqual(drv.cmd('pull')['rc'], DC_NOTFOUND)
        drv.close()
        with diskcache.Cache(self.tmp) as cache:
            self.assertEqual(len(cache), 0)
            self.assertEqual(cache.check(), [])


if __name__ == '__main__':
    unittest.main()
