# test_pickle.py - the C pickle codec (core/src/pickle.c) against CPython
# SPDX-License-Identifier: MIT
#
# $BUILD/dcpickle (tests/interop/dcpickle.c) pickles objects described by a
# text spec; every answer must equal, byte for byte, what CPython's
# pickle.dumps(obj, protocol=P) and pickletools.optimize(...) give for the
# same object, on many random and boundary cases (string lengths around
# 255/256 and the 64 KiB frame limit, ints at opcode edges, types, shared
# singleton strings), at every protocol from 0 (text) to 5.  Unpickling is
# checked the other way: pickles CPython writes with protocols 0-5 (C and
# pure-Python picklers) read back equal.

import builtins
import os
import pickle
import pickletools
import random
import struct
import subprocess
import unittest

DRIVER = os.path.join(
    os.path.dirname(os.environ.get('DCINTEROP') or
                    os.path.join(os.environ.get('BUILD', 'build'), 'x')),
    'dcpickle')

SANITIZER_MARKS = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:')

TYPES = [int, float, str, bytes, bool, type(None), tuple, list, dict,
         complex, type]

INT_EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31,
             2**32, 2**39, 2**47 - 1, 2**47, 2**55, 2**63 - 1, -1, -2,
             -127, -128, -129, -255, -256, -32768, -32769, -65536,
             -2**31, -2**31 - 1, -2**39, -2**47, -2**55, -2**63 + 1,
             -2**63]

STR_LENS = [0, 1, 2, 254, 255, 256, 257, 65525, 65530, 65531, 65535,
            65536, 65537, 70000]


def fresh_str(s):
    """A str object distinct from every other (as C never shares), except
    where CPython itself returns a singleton (empty, one code point below
    256): decoding returns those singletons, as for most str a program
    computes."""
    return s.encode('utf-8').decode('utf-8')


def fresh_bytes(b):
    """Likewise: bytes.fromhex returns the empty and 1-byte singletons."""
    return bytes.fromhex(b.hex())


def fresh(o):
    """An equal object sharing nothing that CPython would not share."""
    if type(o) is str:
        return fresh_str(o)
    if type(o) is bytes:
        return fresh_bytes(o)
    if type(o) is tuple:
        return tuple(fresh(x) for x in o)
    return o


def spec(o):
    if o is None:
        return 'n'
    if o is True:
        return 't'
    if o is False:
        return 'f'
    if type(o) is int:
        return 'i:%d' % o
    if type(o) is float:
        return 'd:' + struct.pack('>d', o).hex()
    if type(o) is str:
        return 's:' + o.encode('utf-8').hex()
    if type(o) is bytes:
        return 'b:' + o.hex()
    if type(o) is type:
        return 'y:' + o.__name__
    if type(o) is tuple:
        return ' '.join(['('] + [spec(x) for x in o] + [')'])
    raise TypeError(o)


def rand_str(rng, n):
    kind = rng.random()
    if kind < 0.5:
        return fresh_str(''.join(rng.choice('abcxyz') for _ in range(n))
                         if n < 300 else 'q' * n)
    if kind < 0.8:
        # Protocol 0 escapes the backslash, NUL, LF, CR and ^Z too.
        alphabet = 'aé€\U0001f600\\\n\r\x1a\x00\xff'
        s = ''.join(rng.choice(alphabet) for _ in range(min(n, 300)))
        return fresh_str(s)
    return fresh_str(chr(rng.randrange(0x80, 0x100)) if n else '')


def rand_obj(rng, big=False):
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.14:
        return rng.random() < 0.5
    if r < 0.34:
        if rng.random() < 0.5:
            return rng.choice(INT_EDGES)
        return rng.randrange(-2**63, 2**63) >> rng.randrange(64)
    if r < 0.44:
        return rng.choice([0.0, -0.0, 1.5, 1e300, float('inf'),
                           rng.uniform(-1e6, 1e6)])
    if r < 0.66:
        n = rng.choice(STR_LENS) if big else rng.randrange(0, 8)
        return rand_str(rng, n)
    if r < 0.84:
        n = rng.choice(STR_LENS) if big else rng.randrange(0, 4)
        return fresh_bytes(bytes(rng.randrange(256) for _ in range(min(
            n, 64))) * (n // 64 + 1))[:n] if n > 64 else fresh_bytes(
            bytes(rng.randrange(256) for _ in range(n)))
    return rng.choice(TYPES)


class Driver:
    def __init__(self):
        self.p = subprocess.Popen([DRIVER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def ask(self, line):
        self.p.stdin.write(line + '\n')
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=60)
        err = self.p.stderr.read()
        self.p.stderr.close()
        self.p.stdout.close()
        return rc, err


class PickleInterop(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(DRIVER, os.X_OK):
            raise unittest.SkipTest(DRIVER + ' is not built')

    def setUp(self):
        self.drv = Driver()

    def tearDown(self):
        rc, err = self.drv.close()
        self.assertEqual(rc, 0, err)
        for m in SANITIZER_MARKS:
            self.assertNotIn(m, err)

    def check_dumps(self, obj):
        for proto in range(6):
            want = pickle.dumps(obj, protocol=proto)
            got = self.drv.ask('D %d 0 %s' % (proto, spec(obj)))
            self.assertEqual(got, want.hex(),
                             'dumps %r' % (repr(obj)[:200],))
            want = pickletools.optimize(want)
            got = self.drv.ask('D %d 1 %s' % (proto, spec(obj)))
            self.assertEqual(got, want.hex(),
                             'optimize %r' % (repr(obj)[:200],))

    def test_fixed_cases(self):
        cases = [(), (None,), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4),
                 None, True, False, 0, -1, 1.5, 'a', '', b'', b'x',
                 int, type(None), str,
                 ('f', 1, None, int, int, str),
                 ('f', None, 'a', 4, 'b', 3),
                 ('a', 'a', b'x', b'x', '', '', b'', b'', 'é', 'é'),
                 (type(None), type(None), type, type(None)),
                 (('x', 1, None, int),),
                 ((), ((1,), 'y')),
                 tuple(range(300)),
                 tuple(str(i) for i in range(300)),
                 tuple([int, float, str] * 100)]
        cases += [(i,) for i in INT_EDGES] + INT_EDGES
        for n in STR_LENS:
            cases += [('q' * n,), ('q' * n, 1), (1, 'q' * n, int),
                      (b'\x01' * n, b'\x02' * n), ('€' * (n // 3),),
                      ('k', 'q' * n, 'r' * (65536 - n % 7), int)]
        for c in cases:
            self.check_dumps(fresh(c))

    def test_frame_boundaries(self):
        # Frames close at the first save() once they hold 64 KiB, and
        # the optimizer's framer closes them before the next opcode:
        # walk the total length across the boundary in small steps.
        for n in range(65490, 65545, 3):
            for tail in [(1,), (int,), ('ab',), (b'c', 2), (None, 'x')]:
                self.check_dumps(('s' * n,) + tail)
                self.check_dumps(('m', 't' * (n - 40), 'u' * 30) + tail)

    def test_random(self):
        rng = random.Random(int(os.environ.get('PICKLE_SEED', '5')))
        for i in range(1500):
            big = i % 10 == 0
            n = rng.choice([0, 1, 2, 3, 4, 5, 8, 20])
            items = tuple(rand_obj(rng, big) for _ in range(n))
            if rng.random() < 0.1 and items:
                items = items + (fresh(items[:rng.randrange(len(items) + 1)]),)
            self.check_dumps(items)
            if n == 1:
                self.check_dumps(items[0])

    def unpickle(self, data):
        return self.drv.ask('U ' + data.hex())

    def test_unpickle_protocols(self):
        rng = random.Random(7)
        for i in range(400):
            n = rng.choice([0, 1, 2, 3, 4, 7])
            items = tuple(rand_obj(rng, i % 20 == 0) for _ in range(n))
            items = tuple(x for x in items if x not in (tuple, list, dict,
                                                         complex))
            for proto in range(6):
                for dumps in (pickle.dumps, pickle._dumps):
                    data = dumps(items, protocol=proto)
                    self.assertEqual(self.unpickle(data), spec(items),
                                     (proto, dumps, items))
                    data = pickletools.optimize(data)
                    self.assertEqual(self.unpickle(data), spec(items))
            if len(items) == 1:
                for proto in (0, 1, 5):
                    data = pickle.dumps(items[0], protocol=proto)
                    self.assertEqual(self.unpickle(data), spec(items[0]))

    def test_float_repr_protocol0(self):
        # Protocol 0 writes repr(float): the shortest digits that read
        # back, which near a power of two is not always the correctly
        # rounded shortest %e -- every power of two, and random floats.
        rng = random.Random(11)
        floats = [2.0 ** k for k in range(-1074, 1024)]
        floats += [-(2.0 ** k) for k in range(-1074, 1024, 13)]
        floats += [struct.unpack('<d', struct.pack(
            '<Q', rng.getrandbits(64)))[0] for _ in range(3000)]
        floats += [rng.random() * 10.0 ** rng.randrange(-30, 30)
                   for _ in range(1000)]
        floats += [0.0, -0.0, float('inf'), float('-inf'), float('nan'),
                   1e16, 1e-5, 1e-4, 9007199254740993.0, 5e-324]
        for f in floats:
            want = pickle.dumps(f, protocol=0)
            got = self.drv.ask('D 0 0 ' + spec(f))
            self.assertEqual(bytes.fromhex(got), want, f.hex())
            if f == f:  # NaN's payload is not kept
                self.assertEqual(self.unpickle(want), spec(f))

    def test_types_old_protocols(self):
        # Globals below protocol 3 take their Python 2 names
        # (__builtin__.long, exceptions.OSError, itertools.imap).
        types = [t for t in vars(builtins).values()
                 if isinstance(t, type) and t.__module__ == 'builtins']
        self.assertGreater(len(types), 80)
        for t in types:
            self.check_dumps((t, t, 'x'))

    def test_unpickle_rejects(self):
        DC_TYPE, DC_CORRUPT = -30805, -30806
        for obj in [[1], {'a': 1}, ((1,),), (1, (2,)), 2**64, -2**63 - 1,
                    (1, [2]), complex(1, 2), range(3),
                    pickle.Pickler]:
            got = self.unpickle(pickle.dumps(obj, protocol=5))
            self.assertEqual(got, 'ERR %d' % DC_TYPE, obj)
        good = pickle.dumps(('abc', 1), protocol=5)
        for cut in range(len(good)):
            got = self.unpickle(good[:cut])
            self.assertEqual(got, 'ERR %d' % DC_CORRUPT, cut)
        self.assertEqual(self.unpickle(good + b'.'), 'ERR %d' % DC_CORRUPT)
        self.assertEqual(self.unpickle(b'\x80\x05\xff.'),
                         'ERR %d' % DC_CORRUPT)


if __name__ == '__main__':
    unittest.main()
