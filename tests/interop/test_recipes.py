# test_recipes.py - libdcache's recipes against Python DiskCache's recipes
# SPDX-License-Identifier: MIT
#
# Python's Lock, RLock, BoundedSemaphore, Averager, throttle and barrier
# and the C driver's (tests/interop/dcrecipes.c) work on one cache
# directory and one key: they exclude each other, read each other's state,
# and store byte-identical values for the same inputs.  Concurrent tests
# run C and Python processes at once, each doing read-modify-writes of one
# counter key under the recipe; the count must come out exact.

import glob
import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import time

import diskcache
from diskcache import Averager, BoundedSemaphore, Lock, RLock, throttle

from dcutil import (DC_EXISTS, DC_INVAL, DC_NOTFOUND, DRIVER, TIMEOUT,
                    InteropCase, _sanitizer_report, db_rows)

RECIPES = os.path.join(os.path.dirname(DRIVER), 'dcrecipes')
PYTHON = sys.executable  # the runner is /usr/bin/python3
DC_NOTHELD = -30810

# A Python worker: the same critical sections as the driver's "counter"
# and "sem-hold" commands.
WORKER = r'''
import json, sys, time
import diskcache
from diskcache import BoundedSemaphore, Lock, RLock, barrier
directory, shards, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cmd, args = sys.argv[4], sys.argv[5:]
if shards:
    cache = diskcache.FanoutCache(directory, shards=shards)
else:
    cache = diskcache.Cache(directory)
violations = 0
peak = 0
first = last = 0.0
time.sleep(max(0.0, start_at - time.time()))

def body():
    global violations, first, last
    first = first or time.time()
    if cache.incr('inside', 1, retry=True) != 1:
        violations += 1
    value = cache.get('counter', 0, retry=True)
    time.sleep(0.0005)
    cache.set('counter', value + 1, retry=True)
    cache.incr('inside', -1, retry=True)
    last = time.time()

if cmd == 'counter':
    kind, key, n = args[0], args[1], int(args[2])
    for _ in range(n):
        if kind == 'lock':
            with Lock(cache, key):
                body()
        elif kind == 'rlock':
            lock = RLock(cache, key)
            with lock:
                with lock:
                    body()
        elif kind == 'sem':
            with BoundedSemaphore(cache, key, value=1):
                body()
        else:
            factory = {'barrier-lock': Lock, 'barrier-rlock': RLock,
                       'barrier-sem': BoundedSemaphore}[kind]
            barrier(cache, factory, name=key)(body)()
        time.sleep(0.002)  # outside the lock, as the C driver does
elif cmd == 'sem-hold':
    key, value, n, ms = args[0], int(args[1]), int(args[2]), int(args[3])
    sem = BoundedSemaphore(cache, key, value=value)
    for _ in range(n):
        with sem:
            inside = cache.incr('inside', 1, retry=True)
            if inside > value:
                violations += 1
            peak = max(peak, inside)
            time.sleep(ms / 1000)
            cache.incr('inside', -1, retry=True)
cache.close()
print(json.dumps({'rc': 0, 'violations': violations, 'max': peak,
                  'first': first, 'last': last}))
'''


def check_stderr(err, who):
    if _sanitizer_report(err):
        raise AssertionError('sanitizer report from %s:\n%s' % (who, err))


def crun(directory, *args, opts=()):
    """One driver command in its own process; returns its JSON."""
    proc = subprocess.run([RECIPES, directory, *opts, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=TIMEOUT)
    err = proc.stderr.decode('utf-8', 'replace')
    check_stderr(err, 'dcrecipes')
    out = proc.stdout.decode('utf-8').strip().splitlines()
    if proc.returncode != 0 or not out:
        raise AssertionError('dcrecipes %r: exit %d, %s' %
                             (args, proc.returncode, err))
    return json.loads(out[-1])


class Proc:
    """A C driver or Python worker process started now, judged later."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)

    def result(self):
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError('%r did not finish' % self.argv)
        err = err.decode('utf-8', 'replace')
        check_stderr(err, self.argv[0])
        lines = out.decode('utf-8').strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            raise AssertionError('%r: exit %d, %s' %
                                 (self.argv, self.proc.returncode, err))
        return json.loads(lines[-1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


class Script:
    """A long-lived driver in script mode: one thread, one RLock owner."""

    def __init__(self, directory, *opts):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([RECIPES, directory, *opts, 'script'],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def cmd(self, *tokens):
        line = ' '.join(str(t) for t in tokens) + '\n'
        self.proc.stdin.write(line.encode('utf-8'))
        self.proc.stdin.flush()
        try:
            got = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError('dcrecipes did not answer %r' % (tokens,))
        if got is None:
            raise AssertionError('dcrecipes exited')
        return json.loads(got)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            rc = self.proc.wait(timeout=TIMEOUT)
        else:
            rc = self.proc.returncode
        self.err.seek(0)
        err = self.err.read().decode('utf-8', 'replace')
        self.err.close()
        check_stderr(err, 'dcrecipes')
        if rc != 0:
            raise AssertionError('dcrecipes exit %d: %s' % (rc, err))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def stored_row(directory, key):
    """(raw, mode, value, expire_time, tag, store_time) of a key, from
    whichever cache.db holds it (plain or a FanoutCache shard)."""
    dbs = [os.path.join(directory, 'cache.db')] + sorted(
        glob.glob(os.path.join(directory, '[0-9][0-9][0-9]', 'cache.db')))
    for db in dbs:
        if not os.path.exists(db):
            continue
        rows = db_rows(db, 'SELECT raw, mode, value, expire_time, tag,'
                       ' store_time FROM Cache WHERE key = ?', (key,))
        if rows:
            return rows[0]
    return None


def comparable(row):
    """The parts of a row fixed by the format (not the times)."""
    raw, mode, value, expire_time, tag, _ = row
    return raw, mode, value, expire_time is None, tag


def background(fn):
    """Run fn in a daemon thread (a Python acquire that may block)."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


class RecipeCase(InteropCase):

    def setUp(self):
        super().setUp()
        self.procs = []
        self.scripts = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
        for s in self.scripts:
            s.kill()
        super().tearDown()

    def open(self, d, shards=0):
        cache = (diskcache.FanoutCache(d, shards=shards) if shards
                 else diskcache.Cache(d))
        self.addCleanup(cache.close)
        return cache

    def c_proc(self, d, *args, start_at=0.0):
        p = Proc([RECIPES, d, '--start-at', repr(start_at), *args])
        self.procs.append(p)
        return p

    def py_proc(self, d, shards, *args, start_at=0.0):
        p = Proc([PYTHON, '-c', WORKER, d, str(shards), repr(start_at),
                  *args])
        self.procs.append(p)
        return p

    def script(self, d, *opts):
        s = Script(d, *opts)
        self.scripts.append(s)
        return s

    def rc(self, resp, want, what=''):
        self.assertEqual(resp.get('rc'), want, '%s: %r' % (what, resp))
        return resp

    # -- mutual exclusion, C and Python processes at once ---------------

    def exclusion(self, shards, c_kinds, py_kinds, n):
        d = self.path('c')
        cache = self.open(d, shards)
        cache.set('counter', 0)
        # Every process starts its loop at the same moment (Python's
        # start-up takes a while), so C and Python contend for real.
        start = time.time() + 1.5
        procs = [self.c_proc(d, 'counter', k, 'key', str(n),
                             start_at=start) for k in c_kinds]
        procs += [self.py_proc(d, shards, 'counter', k, 'key', str(n),
                               start_at=start) for k in py_kinds]
        results = []
        for p in procs:
            r = p.result()
            self.assertEqual(r['rc'], 0, '%r: %r' % (p.argv[-4:], r))
            self.assertEqual(r['violations'], 0, p.argv[-4:])
            results.append(r)
        self.assertEqual(cache.get('counter'),
                         n * (len(c_kinds) + len(py_kinds)))
        self.assertEqual(cache.get('inside'), 0)
        # The loops overlapped in time: every one started before any
        # finished.
        self.assertLess(max(r['first'] for r in results),
                        min(r['last'] for r in results), results)
        return cache

    def test_lock_c_and_python_exclude_each_other(self):
        cache = self.exclusion(0, ['lock', 'lock'], ['lock', 'lock'], 30)
        self.assertFalse(Lock(cache, 'key').locked())

    def test_lock_exclusion_on_fanout(self):
        cache = self.exclusion(4, ['lock', 'barrier-lock'],
                               ['lock', 'barrier-lock'], 20)
        self.assertFalse(Lock(cache, 'key').locked())

    def test_rlock_exclusion(self):
        cache = self.exclusion(0, ['rlock', 'barrier-rlock'],
                               ['rlock', 'barrier-rlock'], 20)
        self.assertEqual(cache.get('key')[1], 0)

    def test_semaphore_exclusion(self):
        cache = self.exclusion(0, ['sem', 'barrier-sem'],
                               ['sem', 'barrier-sem'], 20)
        self.assertEqual(cache.get('key'), 1)

    def test_semaphore_concurrent_holders(self):
        for shards in (0, 3):
            with self.subTest(shards=shards):
                d = self.path('s%d' % shards)
                cache = self.open(d, shards)
                start = time.time() + 1.5
                procs = [self.c_proc(d, 'sem-hold', 'sem', '2', '12', '4',
                                     start_at=start) for _ in range(2)]
                procs += [self.py_proc(d, shards, 'sem-hold', 'sem', '2',
                                       '12', '4', start_at=start)
                          for _ in range(2)]
                for p in procs:
                    r = p.result()
                    self.assertEqual(r['rc'], 0, r)
                    self.assertEqual(r['violations'], 0)
                    self.assertLessEqual(r['max'], 2)
                self.assertEqual(cache.get('sem'), 2)
                self.assertEqual(cache.get('inside'), 0)

    # -- Lock -------------------------------------------------------------

    def test_lock_state_shared(self):
        d = self.path('c')
        cache = self.open(d)
        self.rc(crun(d, 'lock-acquire', 'a', 'forever'), 0)
        self.assertTrue(Lock(cache, 'a').locked())
        Lock(cache, 'b').acquire()
        # Same row as Python's: pickled None, protocol 5, no expiry/tag.
        self.assertEqual(comparable(stored_row(d, 'a')),
                         comparable(stored_row(d, 'b')))
        self.assertEqual(stored_row(d, 'a')[2], b'\x80\x05N.')
        self.rc(crun(d, 'lock-locked', 'b'), 0)
        self.rc(crun(d, 'lock-acquire', 'b', '0.1'), DC_EXISTS)

        # A Python acquirer waits for the C holder.
        got = threading.Event()
        t = background(lambda: (Lock(cache, 'a').acquire(), got.set()))
        self.assertFalse(got.wait(0.3))
        self.rc(crun(d, 'lock-release', 'a'), 0)
        self.assertTrue(got.wait(TIMEOUT))
        t.join(TIMEOUT)
        # ... and a C acquirer for the Python holder.
        drv = self.script(d)
        self.rc(drv.cmd('lock-acquire', 'a', '0'), DC_EXISTS)
        Lock(cache, 'a').release()
        self.rc(drv.cmd('lock-acquire', 'a', '0'), 0)
        self.assertTrue(Lock(cache, 'a').locked())
        self.rc(drv.cmd('lock-release', 'a'), 0)
        self.rc(drv.cmd('lock-release', 'a'), DC_NOTHELD)
        self.rc(drv.cmd('lock-locked', 'a'), DC_NOTFOUND)
        drv.close()

    def test_lock_expire_and_tag_shared(self):
        d = self.path('c')
        cache = self.open(d)
        self.rc(crun(d, 'lock-acquire', 'a', 'forever',
                     opts=('--expire', '0.5', '--tag', 'job')), 0)
        Lock(cache, 'b', expire=0.5, tag='job').acquire()
        ra, rb = stored_row(d, 'a'), stored_row(d, 'b')
        self.assertEqual(comparable(ra), comparable(rb))
        self.assertEqual(ra[4], 'job')
        self.assertAlmostEqual(ra[3] - ra[5], 0.5, places=3)
        # Held by C, the lock expires for Python -- not before.
        Lock(cache, 'a').acquire()
        self.assertGreaterEqual(time.time(), ra[3])
        # And a Python lock with expiry expires for C.
        t0 = time.monotonic()
        self.rc(crun(d, 'lock-acquire', 'b', '10'), 0)
        self.assertLess(time.monotonic() - t0, 10)

    # -- RLock ------------------------------------------------------------

    def test_rlock_state_shared(self):
        d = self.path('c')
        cache = self.open(d)
        drv = self.script(d)
        owner = self.rc(drv.cmd('owner'), 0)['owner']
        self.rc(drv.cmd('rlock-acquire', 'k', 'forever'), 0)
        self.rc(drv.cmd('rlock-acquire', 'k', 'forever'), 0)
        self.assertEqual(cache.get('k'), (owner, 2))
        self.assertEqual(stored_row(d, 'k')[2],
                         pickle.dumps((owner, 2), protocol=5))
        with self.assertRaises(AssertionError):
            RLock(cache, 'k').release()

        # A Python thread waits until the C owner has released twice.
        got, done = threading.Event(), threading.Event()
        me = []

        def py_owner():
            lock = RLock(cache, 'k')
            lock.acquire()
            me.append('%d-%d' % (os.getpid(), threading.get_ident()))
            got.set()
            done.wait(TIMEOUT)
            lock.release()

        t = background(py_owner)
        self.rc(drv.cmd('rlock-release', 'k'), 0)
        self.assertFalse(got.wait(0.3))
        self.assertEqual(cache.get('k'), (owner, 1))
        self.rc(drv.cmd('rlock-release', 'k'), 0)
        self.assertTrue(got.wait(TIMEOUT))
        self.assertEqual(cache.get('k'), (me[0], 1))
        self.rc(drv.cmd('rlock-acquire', 'k', '0.2'), DC_EXISTS)
        self.rc(drv.cmd('rlock-release', 'k'), DC_NOTHELD)
        done.set()
        t.join(TIMEOUT)
        self.assertEqual(cache.get('k'), (me[0], 0))
        # Count 0: free for C, whoever released last.
        self.rc(drv.cmd('rlock-acquire', 'k', '0'), 0)
        self.assertEqual(stored_row(d, 'k')[2],
                         pickle.dumps((owner, 1), protocol=5))
        self.rc(drv.cmd('rlock-release', 'k'), 0)
        self.rc(drv.cmd('rlock-release', 'k'), DC_NOTHELD)
        drv.close()

    # -- Averager ---------------------------------------------------------

    def test_averager_shared(self):
        for shards in (0, 3):
            with self.subTest(shards=shards):
                d = self.path('a%d' % shards)
                cache = self.open(d, shards)
                self.rc(crun(d, 'avg-add', 'c', '0.080', '0.120'), 0)
                py = Averager(cache, 'p')
                py.add(0.080)
                py.add(0.120)
                # The same tuple, the same bytes.
                self.assertEqual(comparable(stored_row(d, 'c')),
                                 comparable(stored_row(d, 'p')))
                self.assertEqual(stored_row(d, 'c')[2],
                                 pickle.dumps((0.2, 2), protocol=5))
                self.assertEqual(Averager(cache, 'c').get(), 0.1)
                Averager(cache, 'c').add(0.160)
                r = self.rc(crun(d, 'avg-pop', 'c'), 0)
                self.assertEqual(float.fromhex(r['avg']), 0.12)
                self.assertIsNone(Averager(cache, 'c').get())
                self.rc(crun(d, 'avg-get', 'c'), DC_NOTFOUND)
                # Python adding ints; C reads and continues.
                ints = Averager(cache, 'i')
                for v in range(10):
                    ints.add(v)
                r = self.rc(crun(d, 'avg-get', 'i'), 0)
                self.assertEqual(float.fromhex(r['avg']), 4.5)
                self.rc(crun(d, 'avg-add', 'i', '10'), 0)
                self.assertEqual(cache.get('i'), (55.0, 11))
                self.assertEqual(ints.pop(), 5.0)

    # -- BoundedSemaphore -------------------------------------------------

    def test_semaphore_state_shared(self):
        d = self.path('c')
        cache = self.open(d)
        self.rc(crun(d, 'sem-acquire', 's', '3', 'forever'), 0)
        self.rc(crun(d, 'sem-acquire', 's', '3', 'forever'), 0)
        py = BoundedSemaphore(cache, 'p', value=3)
        py.acquire()
        py.acquire()
        self.assertEqual(cache.get('s'), 1)
        self.assertEqual(comparable(stored_row(d, 's')),
                         comparable(stored_row(d, 'p')))
        shared = BoundedSemaphore(cache, 's', value=3)
        shared.acquire()
        self.assertEqual(cache.get('s'), 0)
        self.rc(crun(d, 'sem-acquire', 's', '3', '0.1'), DC_EXISTS)
        shared.release()
        self.rc(crun(d, 'sem-acquire', 's', '3', '0'), 0)
        self.assertEqual(cache.get('s'), 0)
        for _ in range(3):
            self.rc(crun(d, 'sem-release', 's', '3'), 0)
        self.assertEqual(cache.get('s'), 3)
        with self.assertRaises(AssertionError):
            shared.release()
        self.rc(crun(d, 'sem-release', 's', '3'), DC_NOTHELD)

    # -- every pickle protocol ---------------------------------------------

    def test_every_protocol_both_ways(self):
        # A cache Python created with disk_pickle_protocol=P: negative
        # means pickle.HIGHEST_PROTOCOL (5); 0 and 1 are text and MARK
        # ... TUPLE pickles.  C writes Python's bytes and reads Python's
        # state, and Python reads C's.
        for proto in (-1, 0, 1, 2, 3, 4, 5):
            with self.subTest(proto=proto):
                eff = 5 if proto < 0 else proto
                d = self.path('p%d' % (proto + 1))
                cache = diskcache.Cache(d, disk_pickle_protocol=proto)
                self.addCleanup(cache.close)
                self.assertEqual(cache.disk_pickle_protocol, proto)

                # Averager: the same bytes; each continues the other's.
                self.rc(crun(d, 'avg-add', 'c', '0.080', '0.120'), 0)
                py = Averager(cache, 'p')
                py.add(0.080)
                py.add(0.120)
                self.assertEqual(stored_row(d, 'c')[2],
                                 pickle.dumps((0.2, 2), protocol=eff))
                self.assertEqual(comparable(stored_row(d, 'c')),
                                 comparable(stored_row(d, 'p')))
                Averager(cache, 'c').add(0.160)
                r = self.rc(crun(d, 'avg-get', 'c'), 0)
                self.assertEqual(float.fromhex(r['avg']), 0.12)
                self.rc(crun(d, 'avg-add', 'p', '0.160'), 0)
                self.assertEqual(py.pop(), 0.12)

                # Lock: Python's pickled None; held across languages.
                self.rc(crun(d, 'lock-acquire', 'l', '0'), 0)
                self.assertEqual(stored_row(d, 'l')[2],
                                 pickle.dumps(None, protocol=eff))
                self.assertTrue(Lock(cache, 'l').locked())
                Lock(cache, 'l').release()
                Lock(cache, 'l').acquire()
                self.rc(crun(d, 'lock-acquire', 'l', '0.1'), DC_EXISTS)
                Lock(cache, 'l').release()

                self.rlock_both_ways(cache, d, eff)

                # throttle: C's state is Python's tuple, and each side
                # continues from the other's.
                self.rc(crun(d, 'throttle-init', 't', '100', '1'), 0)
                last, tally = cache.get('t')
                self.assertEqual((type(last), tally), (float, 100))
                self.assertEqual(stored_row(d, 't')[2],
                                 pickle.dumps((last, 100), protocol=eff))
                calls = []
                fn = throttle(cache, 100, 1, name='t')(
                    lambda: calls.append(1))
                fn()
                fn()
                self.rc(crun(d, 'throttle-wait', 't', '100', '1'), 0)
                state = cache.get('t')
                self.assertEqual(type(state[1]), float)
                self.assertEqual(stored_row(d, 't')[2],
                                 pickle.dumps(state, protocol=eff))
                fn()
                self.assertEqual(len(calls), 3)

    def rlock_both_ways(self, cache, d, eff):
        """A Python RLock held: C waits (DC_EXISTS); C's held: Python
        waits; C's stored (owner, count) is Python's pickle."""
        drv = self.script(d)
        owner = self.rc(drv.cmd('owner'), 0)['owner']
        lock = RLock(cache, 'r')
        lock.acquire()
        lock.acquire()
        self.rc(drv.cmd('rlock-acquire', 'r', '0.2'), DC_EXISTS)
        self.rc(drv.cmd('rlock-release', 'r'), DC_NOTHELD)
        lock.release()
        self.rc(drv.cmd('rlock-acquire', 'r', '0'), DC_EXISTS)
        lock.release()
        self.rc(drv.cmd('rlock-acquire', 'r', '0'), 0)
        self.rc(drv.cmd('rlock-acquire', 'r', '0'), 0)
        self.assertEqual(cache.get('r'), (owner, 2))
        self.assertEqual(stored_row(d, 'r')[2],
                         pickle.dumps((owner, 2), protocol=eff))
        got = threading.Event()
        t = background(lambda: (RLock(cache, 'r').acquire(), got.set()))
        self.rc(drv.cmd('rlock-release', 'r'), 0)
        self.assertFalse(got.wait(0.3))
        self.rc(drv.cmd('rlock-release', 'r'), 0)
        self.assertTrue(got.wait(TIMEOUT))
        t.join(TIMEOUT)
        drv.close()

    def test_protocol_above_5_is_inval(self):
        # Python's pickle refuses a protocol above 5 (ValueError), so
        # nothing that pickles works there, in either language; the
        # semaphore (a plain int) and reading an Averager still do.
        d = self.path('c')
        cache = diskcache.Cache(d, disk_pickle_protocol=6)
        self.addCleanup(cache.close)
        with self.assertRaises(ValueError):
            Lock(cache, 'l').acquire()
        self.rc(crun(d, 'lock-acquire', 'l', '0'), DC_INVAL)
        self.rc(crun(d, 'rlock-acquire', 'r', '0'), DC_INVAL)
        self.rc(crun(d, 'avg-add', 'a', '1'), DC_INVAL)
        self.rc(crun(d, 'throttle-init', 't', '1', '1'), DC_INVAL)
        self.rc(crun(d, 'avg-get', 'a'), DC_NOTFOUND)
        self.rc(crun(d, 'sem-acquire', 's', '1', '0'), 0)
        self.rc(crun(d, 'sem-acquire', 's', '1', '0'), DC_EXISTS)
        BoundedSemaphore(cache, 's', value=1).release()

    # -- throttle ---------------------------------------------------------

    def test_throttle_state_shared(self):
        d = self.path('c')
        cache = self.open(d)
        before = time.time()
        self.rc(crun(d, 'throttle-init', 'k', '2', '1'), 0)
        last, tally = cache.get('k')
        self.assertIs(type(last), float)
        self.assertIs(type(tally), int)
        self.assertEqual(tally, 2)
        self.assertTrue(before - 1 <= last <= time.time() + 1)
        self.assertEqual(stored_row(d, 'k')[2],
                         pickle.dumps((last, 2), protocol=5))
        # A full tally: C stores (now, count - 1) as an int ...
        self.rc(crun(d, 'throttle-wait', 'k', '2', '1'), 0)
        state = cache.get('k')
        self.assertEqual(state[1], 1)
        self.assertIs(type(state[1]), int)
        self.assertEqual(stored_row(d, 'k')[2],
                         pickle.dumps(state, protocol=5))
        # ... then (now, tally - 1) as a float, like Python's wrapper.
        self.rc(crun(d, 'throttle-wait', 'k', '2', '1'), 0)
        state = cache.get('k')
        self.assertIs(type(state[1]), float)
        self.assertEqual(stored_row(d, 'k')[2],
                         pickle.dumps(state, protocol=5))

        # Python's decorator resets the key; C continues from its state.
        calls = []
        fn = throttle(cache, 2, 1, name='p')(lambda: calls.append(1))
        fn()
        self.rc(crun(d, 'throttle-wait', 'p', '2', '1'), 0)
        self.assertLess(cache.get('p')[1], 1)
        self.rc(crun(d, 'throttle-init', 'p', '2', '1'), 0)
        fn()
        self.assertEqual(cache.get('p')[1], 1)

    def test_throttle_shared_rate(self):
        d = self.path('c')
        cache = self.open(d)
        calls = []
        fn = throttle(cache, 5, 1, name='r')(lambda: calls.append(1))
        c = self.c_proc(d, 'throttle-run', 'r', '5', '1', '1.5')
        start = time.monotonic()
        while time.monotonic() - start <= 1.5:
            fn()
        r = c.result()
        self.assertEqual(r['rc'], 0, r)
        total = r['calls'] + len(calls)
        # 5 at once plus 5 per second for 1.5 s, shared by both sides.
        self.assertTrue(9 <= total <= 16, '%d + %d calls' %
                        (r['calls'], len(calls)))
        self.assertGreater(r['calls'], 0)
        self.assertGreater(len(calls), 0)
