# test_coll_stress.py - C and Python processes working one Deque / Index
# SPDX-License-Identifier: MIT
#
# Several C processes ($BUILD/dccoll, tests/interop/dccoll.c) and several
# Python processes (this file run as a script, with Debian's DiskCache)
# use one Deque, one Index queue, or FanoutCache sub-collections at the
# same time: each appends (pushes) its own items at both ends and pops
# (pulls) from both ends.  Afterwards the rest is drained, and every item
# must have come out exactly once -- none lost, none duplicated -- and
# both sides' check() must be clean.
#
# usage as a worker (internal):
#   test_coll_stress.py worker deque|index DIR ID N START [SHARDS NAME]

import json
import os
import subprocess
import sys
import time
import warnings

import diskcache

from dcutil import SANITIZER_MARKS, TIMEOUT, InteropCase

BIG_PAD = 40000


def item(wid, i):
    """Item i of worker wid, as dccoll.c builds it."""
    name = '%s:%d' % (wid, i)
    return name + '|' + '.' * BIG_PAD if i % 8 == 3 else name


def item_name(value):
    if not isinstance(value, str):
        return 'BAD:type %s' % type(value).__name__
    name, bar, pad = value.partition('|')
    if bar and pad != '.' * BIG_PAD:
        return 'BAD:padding of %s' % name
    return name


def open_coll(kind, directory, shards, name):
    """(collection, closer) for a worker: a Deque or Index on DIR, or
    FanoutCache(DIR, shards).deque(name) / .index(name)."""
    if name:
        fc = diskcache.FanoutCache(directory, shards=shards)
        coll = fc.deque(name) if kind == 'deque' else fc.index(name)
        return coll, lambda: (coll.cache.close(), fc.close())
    if kind == 'deque':
        coll = diskcache.Deque(directory=directory)
    else:
        coll = diskcache.Index(directory)
    return coll, coll.cache.close


def worker(kind, directory, wid, n, start, shards=0, name=None):
    coll, close = open_coll(kind, directory, shards, name)
    open('%s.ready.%s' % (start, wid), 'w').close()
    deadline = time.time() + 120
    while not os.path.exists(start):
        if time.time() > deadline:
            raise SystemExit('start file never appeared')
        time.sleep(0.001)
    popped, empty = [], 0
    for i in range(n):
        value = item(wid, i)
        front = i % 2 == 1
        if kind == 'deque':
            if front:
                coll.appendleft(value)
            else:
                coll.append(value)
        else:
            coll.push(value, prefix='jobs', side='front' if front else 'back')
        if i % 3 == 2:
            continue
        back = front  # the other end: items pass from worker to worker
        if kind == 'deque':
            try:
                value = coll.pop() if back else coll.popleft()
            except IndexError:
                empty += 1
                continue
        else:
            key, value = coll.pull(prefix='jobs',
                                   side='back' if back else 'front')
            if key is None:
                empty += 1
                continue
        popped.append(item_name(value))
    close()
    print(json.dumps({'rc': 0, 'popped': popped, 'empty': empty}))


class CollStress(InteropCase):
    """Concurrent C and Python workers; exact accounting of items."""

    N = 200         # items per worker
    WORKERS = 2     # C workers and as many Python workers, per collection

    def dccoll(self):
        return os.path.join(os.path.dirname(os.environ['DCINTEROP']),
                            'dccoll')

    def c_args(self, kind, directory, shards, sub):
        args = [self.dccoll(), directory]
        if sub:
            args += ['--shards', str(shards), '--sub', sub[0], sub[1]]
        elif kind == 'index':
            args.append('--index')
        return args

    def c_run(self, kind, directory, *cmd, shards=0, sub=None):
        proc = subprocess.run(self.c_args(kind, directory, shards, sub) +
                              list(cmd), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=TIMEOUT)
        return self.result('dccoll %s' % ' '.join(cmd), proc.returncode,
                           proc.stdout, proc.stderr)

    def result(self, what, rc, out, err):
        err = err.decode('utf-8', 'replace')
        self.assertFalse(any(m in err for m in SANITIZER_MARKS),
                         '%s: sanitizer report:\n%s' % (what, err))
        self.assertEqual(rc, 0, '%s: exit %d: %s' % (what, rc, err))
        lines = out.decode('utf-8').strip().splitlines()
        self.assertTrue(lines, '%s printed nothing: %s' % (what, err))
        r = json.loads(lines[-1])
        self.assertEqual(r.get('rc'), 0, '%s: %r %s' % (what, r, err))
        return r

    def spawn(self, kind, directory, start, shards=0, sub=None):
        """Start WORKERS C and WORKERS Python workers on one collection;
        returns [(worker id, Popen)]."""
        procs = []
        for w in range(self.WORKERS):
            wid = 'c%s%d' % (kind[0], w)
            args = self.c_args(kind, directory, shards, sub) + [
                kind + '-worker', wid, str(self.N), start]
            procs.append((wid, self.popen(args)))
            wid = 'p%s%d' % (kind[0], w)
            args = [sys.executable, os.path.abspath(__file__), 'worker',
                    kind, directory, wid, str(self.N), start]
            if sub:
                args += [str(shards), sub[1]]
            procs.append((wid, self.popen(args)))
        return procs

    def go(self, start, procs):
        """Let the workers run once all have opened the collection."""
        deadline = time.time() + TIMEOUT
        for wid, proc in procs:
            while not os.path.exists('%s.ready.%s' % (start, wid)):
                if proc.poll() is not None:
                    self.fail('worker %s exited: %r' %
                              (wid, proc.communicate()))
                self.assertLess(time.time(), deadline, 'worker %s' % wid)
                time.sleep(0.005)
        open(start, 'w').close()

    def popen(self, args):
        proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(self.reap, proc)
        return proc

    @staticmethod
    def reap(proc):
        # Only a process a failing test left behind is still running.
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def collect(self, procs):
        """(worker id, item name) for every item the workers popped,
        after all have exited successfully."""
        popped = []
        for wid, proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            r = self.result('worker ' + wid, proc.returncode, out, err)
            popped += [(wid, name) for name in r['popped']]
        return popped

    def expected(self, procs):
        return sorted(item(wid, i).partition('|')[0]
                      for wid, _ in procs for i in range(self.N))

    def verify(self, procs, popped, drained, what):
        everything = [name for _, name in popped] + drained
        bad = [p for p in everything if p.startswith('BAD')]
        self.assertEqual(bad, [], what)
        dup = sorted({p for p in everything if everything.count(p) > 1})
        self.assertEqual(dup, [], '%s: popped more than once' % what)
        want = self.expected(procs)
        lost = sorted(set(want) - set(everything))
        self.assertEqual(lost, [], '%s: never popped' % what)
        self.assertEqual(sorted(everything), want, what)
        # The workers really shared the queue: they popped a good part
        # of it, and some items went from one language to the other.
        self.assertGreater(len(popped), len(want) // 3, what)
        crossed = [(wid, name) for wid, name in popped
                   if wid[0] != name[0]]
        self.assertTrue(crossed, '%s: no item crossed languages' % what)

    def py_check_clean(self, cache):
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always')
            cache.check()
        self.assertEqual([str(w.message) for w in ws], [])

    def run_one(self, kind, directory, start, shards=0, sub=None):
        """Start the workers on one collection (they wait for @start)."""
        # Create the collection first (eviction_policy none), so that the
        # workers' opens do not race to create the database.
        self.assertEqual(self.c_run(kind, directory, 'len', shards=shards,
                                    sub=sub)['len'], 0)
        return self.spawn(kind, directory, start, shards, sub)

    def finish(self, kind, directory, procs, shards=0, sub=None):
        popped = self.collect(procs)
        # Drain half from C (front), the rest from Python.
        drained = []
        coll, close = open_coll(kind, directory, shards,
                                sub[1] if sub else None)
        try:
            total = len(coll)
            for _ in range(total // 2):
                if kind == 'deque':
                    drained.append(item_name(coll.pop()))
                else:
                    key, value = coll.pull(prefix='jobs', side='back')
                    self.assertIsNotNone(key)
                    drained.append(item_name(value))
            r = self.c_run(kind, directory, 'drain', shards=shards,
                           sub=sub)
            drained += r['popped']
            self.assertEqual(len(coll), 0)
            self.py_check_clean(coll.cache)
        finally:
            close()
        r = self.c_run(kind, directory, 'check', shards=shards, sub=sub)
        self.assertEqual(r['warnings'], 0)
        self.verify(procs, popped, drained, kind)

    def test_deque_c_and_python_processes(self):
        d = self.path('dq')
        start = self.path('start')
        procs = self.run_one('deque', d, start)
        self.go(start, procs)
        self.finish('deque', d, procs)

    def test_index_queue_c_and_python_processes(self):
        d = self.path('ix')
        start = self.path('start')
        procs = self.run_one('index', d, start)
        self.go(start, procs)
        self.finish('index', d, procs)

    def test_fanout_sub_collections_both_sides(self):
        # FanoutCache(D, shards=4).deque('jobs/high') and .index('names')
        # worked at the same time from both languages.
        d = self.path('fan')
        with diskcache.FanoutCache(d, shards=4) as fc:
            fc['marker'] = 1  # the FanoutCache itself stays usable
        dsub, isub = ('deque', 'jobs/high'), ('index', 'names')
        start = self.path('start')
        procs_d = self.run_one('deque', d, start, 4, dsub)
        procs_i = self.run_one('index', d, start, 4, isub)
        self.go(start, procs_d + procs_i)
        self.finish('deque', d, procs_d, 4, dsub)
        self.finish('index', d, procs_i, 4, isub)
        self.assertTrue(os.path.exists(
            self.path('fan', 'deque', 'jobs', 'high', 'cache.db')))
        self.assertTrue(os.path.exists(
            self.path('fan', 'index', 'names', 'cache.db')))
        with diskcache.FanoutCache(d, shards=4) as fc:
            self.assertEqual(fc['marker'], 1)


if __name__ == '__main__':
    if len(sys.argv) >= 7 and sys.argv[1] == 'worker':
        a = sys.argv[2:]
        worker(a[0], a[1], a[2], int(a[3]), a[4],
               int(a[5]) if len(a) > 5 else 0, a[6] if len(a) > 6 else None)
    else:
        sys.exit('usage: test_coll_stress.py worker KIND DIR ID N START '
                 '[SHARDS NAME]')
