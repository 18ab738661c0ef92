# test_deque_index.py - dc_deque / dc_index against Python's Deque / Index
# SPDX-License-Identifier: MIT
#
# Python DiskCache's Deque(directory=D) and Index(D) and the driver's
# deque-* / index-* commands (a dc_deque / dc_index on D) share one
# directory: what one side writes the other reads, in the same order, and
# two processes popping one deque at once never take the same item.
# ExtrasInterop drives $BUILD/dccoll (tests/interop/dccoll.c) for the
# functions dcinterop has no command for: extend/extendleft, compare,
# and the Index queue (push/pull/peek/peekitem).

import collections
import json
import os
import subprocess

import diskcache

from dcutil import (DC_NOTFOUND, SANITIZER_MARKS, TIMEOUT, InteropCase,
                    c_key, c_value, cache_rows, decode, run1, spec)

ITEMS = [0, -7, 2**40, 1.5, 'a', 'héllo', b'\x00\xff', 'x' * 40000,
         b'y' * 40000, ('tuple', 1)]


def values(resp):
    return [decode(v) for v in resp['values']]


class DequeInterop(InteropCase):

    def test_python_appends_c_pops(self):
        d = self.path('dq')
        dq = diskcache.Deque(directory=d)
        for v in ITEMS:
            dq.append(v)
        dq.appendleft('front')
        want = [c_value(v) for v in ['front'] + ITEMS]
        self.assertEqual(values(self.ok(run1(d, 'deque-dump'))), want)
        drv = self.driver(d)
        r = self.ok(drv.cmd('deque-pop'))
        self.assertEqual(decode(r['value']), want[-1])
        self.assertEqual(decode(r['key']), 500000000000000 + len(ITEMS) - 1)
        r = self.ok(drv.cmd('deque-pop', 'front'))
        self.assertEqual(decode(r['value']), 'front')
        r = self.ok(drv.cmd('deque-pop-all', 'front'))
        self.assertEqual(values(r), want[1:-1])
        self.assertEqual(drv.cmd('deque-pop')['rc'], DC_NOTFOUND)
        drv.close()
        self.assertEqual(len(dq), 0)
        # Both agree the cache is Python's Deque: eviction policy none.
        self.assertEqual(dq.directory, d)
        self.assertEqual(dq._cache.eviction_policy, 'none')

    def test_c_appends_python_pops(self):
        d = self.path('dq')
        drv = self.driver(d)
        for v in ITEMS:
            self.ok(drv.cmd('deque-append', spec(c_value(v))))
        self.ok(drv.cmd('deque-append', spec('front'), 'front'))
        drv.close()
        dq = diskcache.Deque(directory=d)
        self.assertEqual(dq._cache.eviction_policy, 'none')
        got = [c_value(v) for v in dq]
        self.assertEqual(got, [c_value(v) for v in ['front'] + ITEMS])
        self.assertEqual(dq.pop(), ITEMS[-1])
        self.assertEqual(dq.popleft(), 'front')
        rest = []
        while True:
            try:
                rest.append(dq.popleft())
            except IndexError:
                break
        self.assertEqual(rest, ITEMS[:-1])

    def test_rotate_reverse_seen_by_python(self):
        d = self.path('dq')
        dq = diskcache.Deque('abcde', directory=d)
        self.ok(run1(d, 'deque-rotate', '3'))
        self.assertEqual(''.join(dq), 'cdeab')
        self.ok(run1(d, 'deque-rotate', '-3'))
        self.assertEqual(''.join(dq), 'abcde')
        self.ok(run1(d, 'deque-reverse'))
        self.assertEqual(''.join(dq), 'edcba')
        # Python keeps appending at both ends of the renamed keys.
        dq.append('X')
        dq.appendleft('Y')
        self.assertEqual(''.join(dq), 'YedcbaX')
        self.assertEqual(values(self.ok(run1(d, 'deque-dump'))),
                         list('YedcbaX'))
        dq.reverse()  # Python's own reverse, read back by C
        self.assertEqual(values(self.ok(run1(d, 'deque-dump'))),
                         list('XabcdeY'))

    def test_concurrent_popleft(self):
        d = self.path('dq')
        n = 200
        dq = diskcache.Deque(range(n), directory=d)
        drv = self.driver(d)
        drv.send('deque-pop-all', 'front')
        mine = []
        while True:
            try:
                mine.append(dq.popleft())
            except IndexError:
                break
        r = self.ok(drv.recv())
        theirs = values(r)
        drv.close()
        self.assertEqual(len(mine) + len(theirs), n,
                         (len(mine), len(theirs)))
        self.assertEqual(sorted(mine + theirs), list(range(n)))
        # Each side took items in front-to-back order.
        self.assertEqual(mine, sorted(mine))
        self.assertEqual(theirs, sorted(theirs))
        self.assertEqual(len(dq), 0)


class IndexInterop(InteropCase):

    def test_same_items_same_order(self):
        d = self.path('ix')
        idx = diskcache.Index(d, [('a', 0), ('b', 1), ('c', 2)])
        idx[7] = 'seven'
        idx[b'k'] = ('t', 1)
        drv = self.driver(d)
        self.ok(drv.cmd('index-set', spec('d'), spec(3)))
        self.ok(drv.cmd('index-set', spec('e'), spec(4)))
        # Overwriting from C keeps the key's place.
        self.ok(drv.cmd('index-set', spec('a'), spec('A')))
        r = self.ok(drv.cmd('index-items'))
        c_items = [(decode(k), decode(v)) for k, v in r['items']]
        py_items = [(c_key(k), c_value(v)) for k, v in idx.items()]
        self.assertEqual(c_items, py_items)
        self.assertEqual([k for k, _ in py_items],
                         ['a', 'b', 'c', 7, b'k', 'd', 'e'])
        r = self.ok(drv.cmd('index-items', 'reverse'))
        self.assertEqual([(decode(k), decode(v)) for k, v in r['items']],
                         py_items[::-1])
        # popitem: last, last, first -- as Python's would.
        r = self.ok(drv.cmd('index-popitem'))
        self.assertEqual((decode(r['key']), decode(r['value'])), ('e', 4))
        r = self.ok(drv.cmd('index-popitem'))
        self.assertEqual((decode(r['key']), decode(r['value'])), ('d', 3))
        r = self.ok(drv.cmd('index-popitem', 'first'))
        self.assertEqual((decode(r['key']), decode(r['value'])), ('a', 'A'))
        self.assertEqual(list(idx), ['b', 'c', 7, b'k'])
        self.assertEqual(idx.popitem(), (b'k', ('t', 1)))
        self.assertEqual(idx.popitem(last=False), ('b', 1))
        r = self.ok(drv.cmd('index-items'))
        self.assertEqual([(decode(k), decode(v)) for k, v in r['items']],
                         [('c', 2), (7, 'seven')])
        drv.close()
        idx.clear()
        self.assertEqual(run1(d, 'index-popitem')['rc'], DC_NOTFOUND)


class SubCollectionInterop(InteropCase):

    def test_fanout_deque_and_index_paths(self):
        # FanoutCache.deque(name) / .index(name) live at DIR/deque/NAME and
        # DIR/index/NAME, plain caches a dc_deque / dc_index opens.
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=4) as fc:
            dq = fc.deque('jobs/today')
            dq.extend(['a', 'b', 'c'])
            idx = fc.index('names')
            idx['x'] = 1
            idx['y'] = 2
            qdir = self.path('fan', 'deque', 'jobs', 'today')
            self.assertEqual(values(self.ok(run1(qdir, 'deque-dump'))),
                             ['a', 'b', 'c'])
            self.ok(run1(qdir, 'deque-append', spec('d')))
            self.assertEqual(list(dq), ['a', 'b', 'c', 'd'])
            r = self.ok(run1(self.path('fan', 'index', 'names'),
                             'index-popitem', 'first'))
            self.assertEqual((decode(r['key']), decode(r['value'])),
                             ('x', 1))
            self.assertEqual(list(idx.items()), [('y', 2)])


def dccoll(*args):
    """Run $BUILD/dccoll (tests/interop/dccoll.c) once; returns the JSON."""
    path = os.path.join(os.path.dirname(os.environ['DCINTEROP']), 'dccoll')
    proc = subprocess.run([path, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT)
    err = proc.stderr.decode('utf-8', 'replace')
    if any(m in err for m in SANITIZER_MARKS) or proc.returncode:
        raise AssertionError('dccoll %r: exit %d\n%s' %
                             (args, proc.returncode, err))
    return json.loads(proc.stdout.decode('utf-8').strip().splitlines()[-1])


class ExtrasInterop(InteropCase):
    """dc_deque_extend/extendleft/compare and dc_index_push/pull/peek/
    peekitem against Python's on the same directories."""

    def test_extend_rows_match_python(self):
        # The same calls in both languages leave identical rows.
        a, b = self.path('py'), self.path('c')
        dq = diskcache.Deque(directory=a)
        dq.extend('abc')
        dq.extendleft('xyz')
        dq.extend(['big' * 20000])
        self.ok(dccoll(b, 'extend', 'a', 'b', 'c'))
        self.ok(dccoll(b, 'extend', 'left', 'x', 'y', 'z'))
        self.ok(dccoll(b, 'extend', 'big' * 20000))
        self.assertEqual(cache_rows(b), cache_rows(a))
        self.assertEqual(list(diskcache.Deque(directory=b)),
                         list('zyxabc') + ['big' * 20000])

    def test_compare_agrees_with_python(self):
        d = self.path('dq')
        seqs = [[], ['a'], list('abc'), list('abd'), list('abb'),
                list('ab'), list('abcd'), ['b'], ['a', 'bb'], ['a', 'é'],
                ['A', 'b', 'c']]
        for content in ([], list('abc'), ['a', 'b']):
            dq = diskcache.Deque(content, directory=d)
            for seq in seqs:
                want = (dq > seq) - (dq < seq)
                self.assertEqual(want, 0 if dq == seq else want)
                r = self.ok(dccoll(d, 'compare', *seq))
                self.assertEqual(r['cmp'], want, (content, seq))
            dq.clear()

    def test_index_equal_agrees_with_python(self):
        # Index == OrderedDict is order-sensitive, == dict is not.
        d = self.path('eq')
        idx = diskcache.Index(d, [('a', '1'), ('b', '2'), ('c', '3')])
        cases = [[], [('a', '1'), ('b', '2'), ('c', '3')],
                 [('c', '3'), ('b', '2'), ('a', '1')],
                 [('a', '1'), ('b', '2')], [('a', '1'), ('b', '2'),
                                            ('c', '4')],
                 [('a', '1'), ('b', '2'), ('x', '3')]]
        for pairs in cases:
            flat = [x for pair in pairs for x in pair]
            for cmd, other in (('equal', dict(pairs)),
                               ('equal-ordered',
                                collections.OrderedDict(pairs))):
                r = self.ok(dccoll(d, '--index', cmd, *flat))
                self.assertEqual(r['equal'], int(idx == other),
                                 (cmd, pairs))

    def test_index_queue_interleaved(self):
        d = self.path('ix')
        idx = diskcache.Index(d)
        self.assertEqual(idx.push('apples'), 500000000000000)
        self.assertEqual(self.ok(dccoll(d, 'push', 'beans'))['key'],
                         500000000000001)
        self.assertEqual(idx.push('cherries', side='front'),
                         499999999999999)
        self.assertEqual(self.ok(dccoll(d, 'push', 'dates', 'front'))['key'],
                         499999999999998)
        self.assertEqual(self.ok(dccoll(d, 'push', 'eggs',
                                        'prefix=fruit'))['key'],
                         'fruit-500000000000000')
        self.assertEqual(idx.push('figs', prefix='fruit'),
                         'fruit-500000000000001')
        # peekitem: insertion order, whoever inserted.
        r = self.ok(dccoll(d, 'peekitem'))
        self.assertEqual((r['key'], r['value']),
                         ('fruit-500000000000001', 'figs'))
        r = self.ok(dccoll(d, 'peekitem', 'first'))
        self.assertEqual((r['key'], r['value']), (500000000000000, 'apples'))
        self.assertEqual(idx.peekitem(last=False), (500000000000000, 'apples'))
        # peek and pull from both languages, both ends.
        r = self.ok(dccoll(d, 'peek'))
        self.assertEqual((r['key'], r['value']), (499999999999998, 'dates'))
        r = self.ok(dccoll(d, 'pull'))
        self.assertEqual((r['key'], r['value']), (499999999999998, 'dates'))
        self.assertEqual(idx.pull(), (499999999999999, 'cherries'))
        r = self.ok(dccoll(d, 'pull', 'back'))
        self.assertEqual((r['key'], r['value']), (500000000000001, 'beans'))
        self.assertEqual(idx.pull(prefix='fruit', side='back'),
                         ('fruit-500000000000001', 'figs'))
        r = self.ok(dccoll(d, 'pull', 'prefix=fruit'))
        self.assertEqual((r['key'], r['value']),
                         ('fruit-500000000000000', 'eggs'))
        self.assertEqual(dccoll(d, 'pull', 'prefix=fruit')['rc'],
                         DC_NOTFOUND)
        self.assertEqual(idx.pull(prefix='fruit'), (None, None))
        self.assertEqual(list(idx.items()), [(500000000000000, 'apples')])
