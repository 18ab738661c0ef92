#!/usr/bin/python3
# bench_diskcache.py - get/set/delete latency of Python DiskCache
# SPDX-License-Identifier: MIT
#
# The Python third of `make bench`: the same operation stream as
# bench/bench_core.c (same splitmix64 PRNG, same seeds, same keys and
# values), run on diskcache.Cache or diskcache.FanoutCache, printing RESULT
# lines in the same format.  Run it with Debian's /usr/bin/python3, which
# has python3-diskcache.
#
# usage: bench_diskcache.py DIR [--shards N] [--procs N] [--ops N]
#                               [--warmup N] [--keys N] [--seed N]

import argparse
import math
import mmap
import os
import struct
import sys
import time

import diskcache

M64 = 0xFFFFFFFFFFFFFFFF
OP_GET, OP_SET, OP_DEL = 0, 1, 2
OP_NAMES = ('get', 'set', 'delete')
RES_OK, RES_MISS, RES_ERR = 0, 1, 2

# Shared-memory layout, per process: a header (start, end, seq, failed)
# then one record per operation: latency in ns (u32), kind, outcome.
HDR = struct.Struct('<qqQq')
REC = struct.Struct('<IBB')


class Rng:
    """splitmix64, bit for bit as in bench_core.c."""

    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def next_op(rng, keys):
    choice = (rng.next() >> 11) * (1.0 / 9007199254740992.0)
    key = rng.next() % keys
    reps = 1 + rng.next() % 99
    if choice < 0.90:
        kind = OP_GET
    elif choice < 0.99:
        kind = OP_SET
    else:
        kind = OP_DEL
    return kind, key, reps


def seq_mix(h, kind, key, reps):
    x = ((kind << 40) ^ (key << 8) ^ reps) & M64
    for i in range(8):
        h ^= (x >> (8 * i)) & 0xFF
        h = (h * 0x100000001B3) & M64
    return h


def open_cache(cfg):
    if cfg.shards > 0:
        return diskcache.FanoutCache(cfg.dir, shards=cfg.shards)
    return diskcache.Cache(cfg.dir)


def populate(cfg):
    cache = open_cache(cfg)
    for i in range(cfg.keys):
        if not cache.set(str(i).encode(), str(i).encode() * 10):
            sys.exit('bench_diskcache: populate failed')
    cache.close()


def run_proc(cfg, idx, start_fd, shm, base):
    """One process's share, recorded into shm at offset base."""
    rng = Rng(cfg.seed + idx)
    seq = 0xCBF29CE484222325
    clock = time.clock_gettime_ns
    mono = time.CLOCK_MONOTONIC
    cache = open_cache(cfg)
    get, set_, delete = cache.get, cache.set, cache.delete
    lat = []
    kinds = bytearray()
    outs = bytearray()
    if start_fd >= 0:
        os.read(start_fd, 1)  # returns at EOF: the parent's start signal
    start = 0
    total = cfg.warmup + cfg.ops
    for i in range(total):
        kind, k, reps = next_op(rng, cfg.keys)
        key = str(k).encode()
        if kind == OP_SET:
            value = str(i).encode() * reps
        if i == cfg.warmup:
            start = clock(mono)
        # The measured region holds only the call, as in bench_core.c.
        if kind == OP_GET:
            t0 = clock(mono)
            r = get(key)
            t1 = clock(mono)
            out = RES_MISS if r is None else RES_OK
        elif kind == OP_SET:
            t0 = clock(mono)
            r = set_(key, value)
            t1 = clock(mono)
            out = RES_OK if r else RES_ERR
        else:
            t0 = clock(mono)
            r = delete(key)
            t1 = clock(mono)
            out = RES_OK if r else RES_MISS
        if i >= cfg.warmup:
            lat.append(t1 - t0)
            kinds.append(kind)
            outs.append(out)
            seq = seq_mix(seq, kind, k, reps)
    end = clock(mono)
    cache.close()
    HDR.pack_into(shm, base, start, end, seq, 0)
    off = base + HDR.size
    for n, kind, out in zip(lat, kinds, outs):
        REC.pack_into(shm, off, min(n, 0xFFFFFFFF), kind, out)
        off += REC.size


def percentile(v, p):
    """Nearest rank, the same rule as bench_core.c."""
    if not v:
        return 0
    rank = max(1, math.ceil(p * len(v)))
    return v[rank - 1]


def report(cfg, shm):
    layout = 'fanout%d' % cfg.shards if cfg.shards > 0 else 'plain'
    per = HDR.size + REC.size * cfg.ops
    recs = []
    starts, ends, seqs = [], [], []
    for p in range(cfg.procs):
        base = p * per
        start, end, seq, failed = HDR.unpack_from(shm, base)
        if failed or end == 0:
            sys.exit('bench_diskcache: process %d failed' % p)
        starts.append(start)
        ends.append(end)
        seqs.append(seq)
        recs.extend(REC.iter_unpack(shm[base + HDR.size:base + per]))
    prefix = 'RESULT impl=diskcache layout=%s procs=%d' % (layout, cfg.procs)
    for k in range(3):
        lat = sorted(r[0] for r in recs if r[1] == k)
        cnt = [0, 0, 0]
        for r in recs:
            if r[1] == k:
                cnt[r[2]] += 1
        n = len(lat)
        print('%s op=%s n=%d ok=%d miss=%d err=%d median_ns=%d p99_ns=%d '
              'mean_ns=%.0f' % (prefix, OP_NAMES[k], n, cnt[0], cnt[1],
                                cnt[2], percentile(lat, 0.5),
                                percentile(lat, 0.99),
                                sum(lat) / n if n else 0.0))
    wall = max(ends) - min(starts)
    total = cfg.ops * cfg.procs
    print('%s op=all n=%d wall_ns=%d ops_per_s=%.0f seq=%016x' %
          (prefix, total, wall, total * 1e9 / wall, seqs[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('dir')
    ap.add_argument('--shards', type=int, default=0)
    ap.add_argument('--procs', type=int, default=1)
    ap.add_argument('--ops', type=int, default=100000)
    ap.add_argument('--warmup', type=int, default=1000)
    ap.add_argument('--keys', type=int, default=1000)
    ap.add_argument('--seed', type=int, default=42)
    cfg = ap.parse_args()

    per = HDR.size + REC.size * cfg.ops
    shm = mmap.mmap(-1, per * cfg.procs)  # MAP_SHARED: children write here
    populate(cfg)
    if cfg.procs == 1:
        run_proc(cfg, 0, -1, shm, 0)
        report(cfg, shm)
        return
    rfd, wfd = os.pipe()
    pids = []
    for p in range(cfg.procs):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(wfd)
                run_proc(cfg, p, rfd, shm, p * per)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    time.sleep(0.2)  # let every child open its cache, then start them all
    os.close(wfd)
    failed = False
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
    if failed:
        sys.exit('bench_diskcache: a process failed')
    report(cfg, shm)


if __name__ == '__main__':
    main()
