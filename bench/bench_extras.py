#!/usr/bin/python3
# bench_extras.py - latency of Deque, Index, memoize, recipes, zlib in Python
# SPDX-License-Identifier: MIT
#
# The Python side of bench/bench_extras.c: the same blocks in the same
# order, with the same keys and values, on fresh directories below DIR,
# printing RESULT lines in the same format (impl=diskcache).  Run it with
# Debian's /usr/bin/python3, which has python3-diskcache.
#
# usage: bench_extras.py DIR [--ops N] [--warmup N] [--keys N] [--only OP]

import argparse
import math
import os
import sys
import time
import zlib

import diskcache

RES_OK, RES_MISS, RES_ERR = 0, 1, 2
BIG_LEN = 4096
MISS_BASE = 1000000

clock = time.clock_gettime_ns
MONO = time.CLOCK_MONOTONIC


class ZlibDisk(diskcache.Disk):
    """Bytes values stored zlib-compressed: dc_serializer_zlib(-1).

    The class of docs/serializers.md, as a user would copy it."""

    compress_level = -1

    def store(self, value, read, key=diskcache.core.UNKNOWN):
        if not read and type(value) is bytes:
            value = zlib.compress(value, self.compress_level)
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        data = super().fetch(mode, filename, value, read)
        if type(data) is bytes:
            data = zlib.decompress(data)
        return data


def make_big():
    """The 4 KiB value of bench_extras.c's make_big()."""
    rows = b''.join(b'<tr><td>%d</td><td>row %d</td></tr>\n' % (i, i * i)
                    for i in range(BIG_LEN // 16))
    return rows[:BIG_LEN]


def key_of(i, keys):
    return str(i * 7919 % keys).encode()


def val_of(n):
    return str(n).encode() * 10


def blocks(cfg):
    """Opens everything, fills what the read blocks read, and returns the
    blocks as (op, first, second, step) in bench_extras.c's order, plus
    the handles to close.  A step returns (t0, t1, t2, outcome)."""
    d = cfg.dir
    keys = cfg.keys
    deque = diskcache.Deque(directory=os.path.join(d, 'deque'))
    index = diskcache.Index(os.path.join(d, 'index'))
    memo_cache = diskcache.Cache(os.path.join(d, 'memo'))
    recipes = diskcache.Cache(os.path.join(d, 'recipes'))
    zcache = diskcache.Cache(os.path.join(d, 'zlib'), disk=ZlibDisk)
    rawcache = diskcache.Cache(os.path.join(d, 'raw4k'))
    computed = [0]

    @memo_cache.memoize(name='bench.double')
    def double(x):
        computed[0] += 1
        return x * 2

    lock = diskcache.Lock(recipes, 'lock')
    sem = diskcache.BoundedSemaphore(recipes, 'sem', value=1)
    avg = diskcache.Averager(recipes, 'avg')
    big = make_big()

    with deque.transact():
        for i in range(keys):
            deque.append(val_of(i))
    for i in range(keys):
        index[str(i).encode()] = val_of(i)
    for i in range(keys):
        double(i)
    for cache in (zcache, rawcache):
        with cache.transact():
            for i in range(keys):
                cache.set(str(i).encode(), big)

    def step_deque(i):
        v = val_of(i)
        t0 = clock(MONO)
        deque.append(v)
        t1 = clock(MONO)
        try:
            r = deque.popleft()
        except IndexError:
            r = None
        t2 = clock(MONO)
        return t0, t1, t2, (RES_MISS if r is None else
                            RES_OK if type(r) is bytes else RES_ERR)

    def step_index_set(i):
        k, v = key_of(i, keys), val_of(i)
        t0 = clock(MONO)
        index[k] = v
        t1 = clock(MONO)
        return t0, t1, 0, RES_OK

    def step_index_get(i):
        k = key_of(i, keys)
        t0 = clock(MONO)
        try:
            r = index[k]
        except KeyError:
            r = None
        t1 = clock(MONO)
        return t0, t1, 0, (RES_MISS if r is None else
                            RES_OK if type(r) is bytes else RES_ERR)

    def memo_step(x, want_computed):
        before = computed[0]
        t0 = clock(MONO)
        r = double(x)
        t1 = clock(MONO)
        if r != x * 2:
            return t0, t1, 0, RES_ERR
        return t0, t1, 0, (RES_OK if (computed[0] != before) == want_computed
                           else RES_MISS)

    def step_memo_hit(i):
        return memo_step(i * 7919 % keys, False)

    def step_memo_miss(i):
        return memo_step(MISS_BASE + i, True)

    def step_lock(i):
        t0 = clock(MONO)
        lock.acquire()
        t1 = clock(MONO)
        lock.release()
        t2 = clock(MONO)
        return t0, t1, t2, RES_OK

    def step_sem(i):
        t0 = clock(MONO)
        sem.acquire()
        t1 = clock(MONO)
        sem.release()
        t2 = clock(MONO)
        return t0, t1, t2, RES_OK

    def step_avg(i):
        v = float(i)
        t0 = clock(MONO)
        avg.add(v)
        t1 = clock(MONO)
        return t0, t1, 0, RES_OK

    def big_set(cache):
        def step(i):
            k = key_of(i, keys)
            t0 = clock(MONO)
            r = cache.set(k, big)
            t1 = clock(MONO)
            return t0, t1, 0, RES_OK if r else RES_ERR
        return step

    def big_get(cache):
        def step(i):
            k = key_of(i, keys)
            t0 = clock(MONO)
            r = cache.get(k)
            t1 = clock(MONO)
            return t0, t1, 0, (RES_MISS if r is None else
                                RES_OK if len(r) == BIG_LEN else RES_ERR)
        return step

    return [
        ('deque_pair', 'deque_append', 'deque_popleft', step_deque),
        ('index_set', None, None, step_index_set),
        ('index_get', None, None, step_index_get),
        ('memo_hit', None, None, step_memo_hit),
        ('memo_miss', None, None, step_memo_miss),
        ('lock_pair', 'lock_acquire', 'lock_release', step_lock),
        ('sem_pair', 'sem_acquire', 'sem_release', step_sem),
        ('avg_add', None, None, step_avg),
        ('zlib_set', None, None, big_set(zcache)),
        ('zlib_get', None, None, big_get(zcache)),
        ('raw4k_set', None, None, big_set(rawcache)),
        ('raw4k_get', None, None, big_get(rawcache)),
    ], (deque, index, memo_cache, recipes, zcache, rawcache)


def percentile(v, p):
    """Nearest rank, the same rule as bench_extras.c."""
    if not v:
        return 0
    rank = max(1, math.ceil(p * len(v)))
    return v[rank - 1]


def report(op, lat, cnt):
    n = len(lat)
    lat = sorted(lat)
    print('RESULT impl=diskcache suite=extras op=%s n=%d ok=%d miss=%d '
          'err=%d median_ns=%d p99_ns=%d mean_ns=%.0f'
          % (op, n, cnt[RES_OK], cnt[RES_MISS], cnt[RES_ERR],
             percentile(lat, 0.5), percentile(lat, 0.99),
             sum(lat) / n if n else 0.0))


def run_block(cfg, op, first, second, step):
    cnt = [0, 0, 0]
    lat = ([], [], [])
    for i in range(cfg.warmup + cfg.ops):
        t0, t1, t2, out = step(i)
        if i < cfg.warmup:
            continue
        cnt[out] += 1
        lat[0].append(t1 - t0)
        if second:
            lat[1].append(t2 - t1)
            lat[2].append(t2 - t0)
    if second:
        report(first, lat[0], cnt)
        report(second, lat[1], cnt)
        report(op, lat[2], cnt)
    else:
        report(op, lat[0], cnt)
    sys.stdout.flush()
    return cnt[RES_ERR] == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('dir')
    ap.add_argument('--ops', type=int, default=1000)
    ap.add_argument('--warmup', type=int, default=200)
    ap.add_argument('--keys', type=int, default=1000)
    ap.add_argument('--only', help='run only this block (profiling)')
    cfg = ap.parse_args()

    todo, handles = blocks(cfg)
    ok = True
    for op, first, second, step in todo:
        if cfg.only and op != cfg.only:
            continue
        if not run_block(cfg, op, first, second, step):
            print('bench_extras.py: %s: calls failed' % op, file=sys.stderr)
            ok = False
    for h in handles:
        getattr(h, 'cache', h).close()  # a Deque or Index: its Cache
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
