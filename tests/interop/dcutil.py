# dcutil.py - helpers shared by the libdcache <-> Python DiskCache interop tests
# SPDX-License-Identifier: MIT
#
# The C side is driven through $BUILD/dcinterop (tests/interop/dcinterop.c),
# either one command per process (run1) or as a long-lived process reading
# commands from stdin (Driver), so that C and Python can work on one
# directory at the same time.  Values cross the boundary as "specs"
# (int:N, float:<hex float>, strx:<hex>, bytes:<hex>, pickle:<hex>, and
# *rep:N:<hex> for long repetitive data) and come back as JSON with hex
# payloads and "%a" doubles, so every comparison is exact.

import json
import os
import pickle
import pickletools
import queue
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import threading
import unittest


DRIVER = os.environ.get('DCINTEROP') or os.path.join(
    os.environ.get('BUILD', 'build'), 'dcinterop')

# Exit codes and messages that mean a sanitizer caught something.
SANITIZER_MARKS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:',
                   'UndefinedBehaviorSanitizer')

TIMEOUT = 120  # seconds any single driver interaction may take

DC_NOTFOUND = -30800
DC_TIMEOUT = -30801
DC_INVAL = -30802
DC_EXISTS = -30803
DC_OVERFLOW = -30804
DC_TYPE = -30805
DC_LAYOUT = -30808

WARN_FILE_SIZE = 2
WARN_FILE_MISSING = 3
WARN_UNKNOWN_FILE = 4
WARN_EMPTY_DIR = 5


def py_warning_kinds(ws):
    """Python check() warnings as libdcache's enum dc_warning kinds."""
    kinds = []
    for w in ws:
        msg, cat = str(w.message), w.category.__name__
        if cat == 'EmptyDirWarning':
            kinds.append(WARN_EMPTY_DIR)
        elif cat == 'UnknownFileWarning':
            kinds.append(WARN_UNKNOWN_FILE)
        elif msg.startswith('file not found'):
            kinds.append(WARN_FILE_MISSING)
        elif msg.startswith('wrong file size'):
            kinds.append(WARN_FILE_SIZE)
        else:
            kinds.append('%s: %s' % (cat, msg))
    return sorted(kinds, key=str)


def warnings_text(ws):
    """Python check() warnings, readable in a failure message."""
    return ['%s: %s' % (w.category.__name__, w.message) for w in ws]


class Pickled:
    """A value or key the C side sees as opaque pickle bytes."""

    def __init__(self, data):
        self.data = bytes(data)

    def __eq__(self, other):
        return isinstance(other, Pickled) and other.data == self.data

    def __hash__(self):
        return hash(('Pickled', self.data))

    def __repr__(self):
        return 'Pickled(%s)' % self.data.hex()


def key_pickle(obj, protocol=pickle.HIGHEST_PROTOCOL):
    """The bytes DiskCache stores for a non-native key (raw = 0)."""
    return pickletools.optimize(pickle.dumps(obj, protocol=protocol))


def value_pickle(obj, protocol=pickle.HIGHEST_PROTOCOL):
    """The bytes DiskCache stores for a non-native value (MODE_PICKLE)."""
    return pickle.dumps(obj, protocol=protocol)


def is_native(obj):
    t = type(obj)
    if t is int:
        return -2**63 <= obj <= 2**63 - 1
    return t in (float, str, bytes)


def c_key(obj):
    """What the C side reports for a Python key."""
    return obj if is_native(obj) else Pickled(key_pickle(obj))


def c_value(obj):
    """What the C side reports for a Python value."""
    return obj if is_native(obj) else Pickled(value_pickle(obj))


def _bin(kind, data):
    n = len(data)
    if n >= 256:
        for unit in range(1, 9):
            if n % unit == 0 and data == data[:unit] * (n // unit):
                return '%srep:%d:%s' % (kind, n // unit, data[:unit].hex())
    return '%s:%s' % ('strx' if kind == 'str' else kind, data.hex())


def spec(obj):
    """The driver's spelling of a key, value or tag (None: no tag)."""
    if obj is None:
        return 'none'
    if isinstance(obj, Pickled):
        return _bin('pickle', obj.data)
    t = type(obj)
    if t is int and is_native(obj):
        return 'int:%d' % obj
    if t is float:
        return 'float:' + obj.hex()
    if t is str:
        return _bin('str', obj.encode('utf-8'))
    if t is bytes:
        return _bin('bytes', obj)
    # Anything else goes over as DiskCache would store it as a key.
    return _bin('pickle', key_pickle(obj))


def decode(v):
    """A driver JSON value back to Python (pickles stay Pickled)."""
    if v is None:
        return None
    t = v['type']
    if t == 'int':
        return v['int']
    if t == 'float':
        return float('nan') if v['float'] is None else \
            float.fromhex(v['float'])
    data = bytes.fromhex(v['hex'])
    if t == 'str':
        return data.decode('utf-8')
    if t == 'bytes':
        return data
    if t == 'pickle':
        return Pickled(data)
    raise ValueError('unknown type %r' % t)


def dtime(s):
    """A driver double ("%a" string or null)."""
    return None if s is None else float.fromhex(s)


def same(a, b):
    """Exact equality: same type, floats bit for bit."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return struct.pack('<d', a) == struct.pack('<d', b)
    if type(a) in (tuple, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def _sanitizer_report(text):
    return any(m in text for m in SANITIZER_MARKS)


def run1(directory, *args, opts=()):
    """Run one driver command in its own process; returns the JSON."""
    proc = subprocess.run([DRIVER, directory, *opts, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=TIMEOUT)
    err = proc.stderr.decode('utf-8', 'replace')
    if _sanitizer_report(err):
        raise AssertionError('sanitizer report from dcinterop:\n' + err)
    out = proc.stdout.decode('utf-8').strip().splitlines()
    if not out:
        raise AssertionError('dcinterop printed nothing (exit %d): %s' %
                             (proc.returncode, err))
    return json.loads(out[-1])


class Driver:
    """A long-lived dcinterop process in script mode."""

    def __init__(self, directory, *opts):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [DRIVER, directory, *opts, 'script'], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.closed = False
        # The driver opens the cache before it reads its first command;
        # wait for that, so that the test's next step cannot race with
        # the open (which rewrites every setting, as Python's does).
        r = self.cmd('echo', 'ready')
        if r.get('rc') != 0:
            self.kill()
            raise AssertionError('dcinterop could not open %s: %r' %
                                 (directory, r))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, *tokens):
        line = ' '.join(str(t) for t in tokens) + '\n'
        self.proc.stdin.write(line.encode('utf-8'))
        self.proc.stdin.flush()

    def recv(self, timeout=TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError('dcinterop did not answer in %ss' % timeout)
        if line is None:
            raise AssertionError('dcinterop exited: %s' % self.errors())
        return json.loads(line)

    def cmd(self, *tokens, timeout=TIMEOUT):
        self.send(*tokens)
        return self.recv(timeout)

    def errors(self):
        self.stderr.seek(0)
        return self.stderr.read().decode('utf-8', 'replace')

    def close(self):
        """Stop the driver; fails on a non-zero exit or sanitizer report."""
        if self.closed:
            return
        self.closed = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError('dcinterop did not exit')
        finally:
            self.reader.join(timeout=5)
        err = self.errors()
        self.stderr.close()
        if _sanitizer_report(err) or rc != 0:
            raise AssertionError('dcinterop exit %d:\n%s' % (rc, err))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.closed = True


def db_rows(path, sql, args=()):
    """Run a query against a cache.db with Python's sqlite3 module."""
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def cache_rows(directory):
    """Cache rows of a plain cache directory in a comparable form: what
    the format fixes (types, raw, mode, size, inline value, presence of
    expiry/tag/filename), not what differs per run (times, file names)."""
    return db_rows(
        os.path.join(directory, 'cache.db'),
        'SELECT key, typeof(key), raw, expire_time IS NULL, tag,'
        ' typeof(tag), size, mode, filename IS NULL, value, typeof(value),'
        ' access_count FROM Cache ORDER BY rowid')


def sqlite_cli(dbpath, *args):
    proc = subprocess.run(['sqlite3', dbpath, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT,
                          check=True)
    return proc.stdout.decode('utf-8')


class InteropCase(unittest.TestCase):
    """Each test gets a fresh temporary directory, removed afterwards,
    and every driver it starts is stopped (and checked) at the end."""

    maxDiff = 4000

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='dcinterop-')
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.drivers = []

    def tearDown(self):
        # Drivers left open by a failing test are killed, not judged.
        for d in self.drivers:
            d.kill()

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def driver(self, directory, *opts):
        d = Driver(directory, *opts)
        self.drivers.append(d)
        return d

    def ok(self, resp, what=''):
        self.assertEqual(resp.get('rc'), 0, '%s: %r' % (what, resp))
        return resp

    def assertSame(self, a, b, msg=None):
        if not same(a, b):
            self.fail('%s%r is not exactly %r' %
                      (msg + ': ' if msg else '', a, b))
