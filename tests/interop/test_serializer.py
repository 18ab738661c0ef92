# test_serializer.py - dc_serializer_zlib against a Python Disk subclass
# SPDX-License-Identifier: MIT
#
# ZlibDisk below is the Python side of dc_serializer_zlib(level) (the same
# class docs/serializers.md shows): on one directory, what C writes
# through the serializer Python reads through ZlibDisk and the other way
# round, while plain Python (no subclass) sees the zlib bytes themselves.
# The C side is the driver tests/interop/dcser.c.

import io
import json
import os
import subprocess
import zlib

import diskcache

from dcutil import (DRIVER, SANITIZER_MARKS, TIMEOUT, InteropCase, Pickled,
                    c_value, db_rows, decode, spec, value_pickle)

DCSER = os.path.join(os.path.dirname(DRIVER), 'dcser')
DC_CORRUPT = -30806


class ZlibDisk(diskcache.Disk):
    """Bytes values stored zlib-compressed, as dc_serializer_zlib(level).

    Use Cache(directory, disk=ZlibDisk); every reader of the directory
    needs it (in C any level's dc_serializer_zlib reads any other's data).
    For another level subclass it: class ZlibDisk9(ZlibDisk):
    compress_level = 9.  (Not disk_compress_level=9: a disk_* setting is
    stored in the database and handed to every later opener's Disk, and a
    plain Disk rejects the unknown keyword.)"""

    compress_level = -1  # zlib's default, as dc_serializer_zlib(-1)

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        # read=True (a file object) is stored as it is, as set_fd in C.
        if not read and type(value) is bytes:
            value = zlib.compress(value, self.compress_level)
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        data = super().fetch(mode, filename, value, read)
        # With read=True a value file comes back as an open file: the
        # stored bytes, as a DC_FD descriptor in C.
        if type(data) is bytes:
            data = zlib.decompress(data)
        return data


def zlib_disk(level):
    """ZlibDisk at another level: a subclass, as the docs suggest."""
    return type('ZlibDisk%d' % level, (ZlibDisk,), {'compress_level': level})


def dcser(directory, level, *args):
    """Run one dcser command; returns its JSON answer."""
    proc = subprocess.run([DCSER, directory, str(level), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=TIMEOUT)
    err = proc.stderr.decode('utf-8', 'replace')
    if any(m in err for m in SANITIZER_MARKS) or proc.returncode:
        raise AssertionError('dcser exit %d:\n%s' % (proc.returncode, err))
    return json.loads(proc.stdout.decode('utf-8').strip().splitlines()[-1])


def incompressible(n, seed=1):
    """n deterministic bytes that zlib cannot shrink."""
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out += x.to_bytes(8, 'little')
    return bytes(out[:n])


# Values cross to the driver as hex on its command line (at most 128 KiB
# an argument): long ones repeat a unit of at most 8 bytes, or stay small.
TEXT = b'abcdefgh' * 11000  # 88000 bytes
VALUES = [
    b'',
    b'\x00\xffshort bytes',
    TEXT,                     # compresses to an inline blob
    incompressible(40000),    # still a value file when compressed
    'a str stays text',
    'long text ' * 5000,      # a TEXT value file, unchanged
    12345678901234,
    -2.5,
    ('a', 'tuple'),           # pickled, unchanged
]


class SerializerInterop(InteropCase):

    def zcache(self, d, level=6, **kw):
        c = diskcache.Cache(d, disk=zlib_disk(level), **kw)
        self.addCleanup(c.close)
        return c

    def plain(self, d, **kw):
        c = diskcache.Cache(d, **kw)
        self.addCleanup(c.close)
        return c

    def test_c_writes_python_zlibdisk_reads(self):
        d = self.path('c')
        for i, v in enumerate(VALUES):
            self.ok(dcser(d, 6, 'set', spec(i), spec(c_value(v)),
                          spec('tag%d' % i)), v)
        zc = self.zcache(d, 6)
        for i, v in enumerate(VALUES):
            got, tag = zc.get(i, tag=True)
            self.assertSame(got, v, 'key %d' % i)
            self.assertEqual(tag, 'tag%d' % i)
        # Without the subclass Python sees the stored bytes: exactly
        # zlib.compress(data, 6); other types as they were.
        pc = self.plain(d)
        for i, v in enumerate(VALUES):
            want = zlib.compress(v, 6) if type(v) is bytes else v
            self.assertSame(pc[i], want, 'key %d' % i)
        # The 40000 incompressible bytes are a value file in both views.
        rows = dict(self.rows(d))
        self.assertEqual(rows[3][0], 2)     # MODE_BINARY
        self.assertEqual(rows[3][1], len(zlib.compress(VALUES[3], 6)))
        self.assertEqual(rows[2][0], 1)     # MODE_RAW, compressed inline

    def rows(self, d):
        return [(k, (m, s)) for k, m, s in db_rows(
            os.path.join(d, 'cache.db'), 'SELECT key, mode, size FROM Cache')]

    def test_python_writes_c_reads(self):
        d = self.path('p')
        zc = self.zcache(d, 9)
        for i, v in enumerate(VALUES):
            zc.set(i, v, tag='t')
        for i, v in enumerate(VALUES):
            # Any level reads any other's data.
            for level in (9, 1, -1):
                r = self.ok(dcser(d, level, 'get', spec(i)))
                self.assertSame(decode(r['value']), c_value(v),
                                'key %d level %d' % (i, level))
                self.assertEqual(decode(r['tag']), 't')
            r = self.ok(dcser(d, 'raw', 'get', spec(i)))
            want = zlib.compress(v, 9) if type(v) is bytes else c_value(v)
            self.assertSame(decode(r['value']), want)

    def test_same_bytes_both_sides(self):
        d = self.path('s')
        for level in range(-1, 10):
            self.zcache(d, level).set('py%d' % level, TEXT)
            self.ok(dcser(d, level, 'set', spec('c%d' % level), spec(TEXT)))
        # Level 0 stores blocks whose lengths follow Python's output
        # buffer (32 KiB, 64 KiB, 256 KiB, 1 MiB ...): 400000 bytes
        # cross three of its boundaries.
        big = b'01234567' * 50000
        for level in (0, 1):
            self.zcache(d, level).set('pybig%d' % level, big)
            self.ok(dcser(d, level, 'set', spec('cbig%d' % level), spec(big)))
        pc = self.plain(d)
        for level in range(-1, 10):
            self.assertEqual(pc['py%d' % level], pc['c%d' % level])
            self.assertEqual(pc['c%d' % level], zlib.compress(TEXT, level))
        for level in (0, 1):
            self.assertEqual(pc['cbig%d' % level], zlib.compress(big, level))
            self.assertEqual(pc['pybig%d' % level], pc['cbig%d' % level])

    def test_queue_both_ways(self):
        d = self.path('q')
        zc = self.zcache(d, 6)
        r = self.ok(dcser(d, 6, 'push', spec(TEXT)))
        self.assertEqual(decode(r['key']), 500000000000000)
        zc.push(b'from python')
        key, value = zc.peekitem()
        self.assertEqual(value, b'from python')
        r = self.ok(dcser(d, 6, 'peekitem'))
        self.assertEqual(decode(r['value']), b'from python')
        self.assertEqual(decode(r['key']), key)
        self.assertEqual(zc.pull(), (500000000000000, TEXT))
        r = self.ok(dcser(d, 6, 'pull'))
        self.assertEqual(decode(r['value']), b'from python')
        self.assertEqual(len(zc), 0)

    def test_deque_and_index(self):
        d = self.path('dq')
        dq = diskcache.Deque.fromcache(
            self.zcache(d, 6, eviction_policy='none'))
        dq.append(TEXT)
        self.ok(dcser(d, 6, 'deque-append', spec(b'c side')))
        self.assertEqual(list(dq), [TEXT, b'c side'])
        r = self.ok(dcser(d, 6, 'deque-popleft'))
        self.assertEqual(decode(r['value']), TEXT)
        self.assertEqual(dq.popleft(), b'c side')

        i = self.path('ix')
        ix = diskcache.Index.fromcache(
            self.zcache(i, 6, eviction_policy='none'))
        ix['py'] = TEXT
        self.ok(dcser(i, 6, 'index-set', spec('c'), spec(b'cc' * 500)))
        self.assertEqual(ix['c'], b'cc' * 500)
        r = self.ok(dcser(i, 6, 'index-get', spec('py')))
        self.assertEqual(decode(r['value']), TEXT)
        self.assertEqual(list(ix.keys()), ['py', 'c'])

    def test_fanout(self):
        d = self.path('fan')
        fc = diskcache.FanoutCache(d, shards=4, disk=zlib_disk(1))
        self.addCleanup(fc.close)
        for i in range(12):
            fc.set('k%d' % i, TEXT[:1000 * (i + 1)])
        for i in range(12, 24):
            self.ok(dcser(d, '1:4', 'set', spec('k%d' % i),
                          spec(TEXT[:1000 * (i + 1)])))
        for i in range(24):
            self.assertEqual(fc['k%d' % i], TEXT[:1000 * (i + 1)])
            r = self.ok(dcser(d, '1:4', 'get', spec('k%d' % i)))
            self.assertEqual(decode(r['value']), TEXT[:1000 * (i + 1)])

    def test_garbage_refused_by_both(self):
        d = self.path('g')
        self.plain(d).set('k', b'not zlib data')
        self.assertEqual(dcser(d, 6, 'get', spec('k'))['rc'], DC_CORRUPT)
        with self.assertRaises(zlib.error):
            self.zcache(d).get('k')
        # A pop that cannot decode still removes the item, on both sides.
        self.assertEqual(dcser(d, 6, 'pop', spec('k'))['rc'], DC_CORRUPT)
        self.assertNotIn('k', self.plain(d))

    def test_read_true_and_fd_are_stored_bytes(self):
        d = self.path('fd')
        data = incompressible(50000, 7)
        self.ok(dcser(d, 6, 'set', spec('f'), spec(data)))
        zc = self.zcache(d)
        with zc.get('f', read=True) as f:
            self.assertEqual(f.read(), zlib.compress(data, 6))
        r = self.ok(dcser(d, 6, 'getfd', spec('f')))
        self.assertEqual(bytes.fromhex(r['fd']), zlib.compress(data, 6))
        # Python's set(read=True) stores the file's bytes unchanged, as
        # dc_cache_set_fd does; the serializer cannot read them back.
        zc.set('r', io.BytesIO(b'raw file bytes'), read=True)
        self.assertEqual(self.plain(d)['r'], b'raw file bytes')
        self.assertEqual(dcser(d, 6, 'get', spec('r'))['rc'], DC_CORRUPT)

    def test_pickles_pass_unchanged(self):
        d = self.path('pk')
        zc = self.zcache(d)
        zc['t'] = ('a', 1, None)
        r = self.ok(dcser(d, 6, 'get', spec('t')))
        self.assertEqual(decode(r['value']),
                         Pickled(value_pickle(('a', 1, None))))
