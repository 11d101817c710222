#!/usr/bin/python3
"""A reader of the mount for the takeover and crash tests (run as its own
process, so that it holds its descriptors, cwd and mappings the way an
application does).

    takeover_reader.py KIND MOUNTED_PATH SOURCE_PATH STOP_FILE [SEED]

KIND: stream (reads the file start to end in 1 MiB chunks, again and
again), random (random preads on one descriptor opened at start; both
drop the range from the page cache first, so the daemon answers), cwd
(chdir into MOUNTED_PATH, a version dir; relative listdir, stat and reads
of every file, compared with SOURCE_PATH, a directory), mmap (maps the
file once and reads random slices). Every byte is compared with the
source. It runs until STOP_FILE exists, then prints one JSON object:
ops, failures (errno names), wrong (byte mismatches), inode changes, and
slow: [t_start, seconds] of every operation slower than 20 ms
(time.monotonic(), comparable across processes), so the test can name
the stall each event caused.
"""
import errno
import json
import mmap
import os
import random
import sys
import time

CHUNK = 1 << 20
SLOW = 0.02


def main():
    kind, path, src, stop = sys.argv[1:5]
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    rng = random.Random(seed)
    res = {"kind": kind, "ops": 0, "failures": [], "wrong": 0,
           "ino_changes": 0, "slow": []}
    if kind == "cwd":
        os.chdir(path)
        names = sorted(os.listdir(src))
        inos = {n: os.stat(n).st_ino for n in names}
        want = {n: open(os.path.join(src, n), "rb").read() for n in names
                if os.path.isfile(os.path.join(src, n))}
        dot = os.stat(".").st_ino
    elif kind == "mmap":
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        sfd = os.open(src, os.O_RDONLY)
    else:
        fd = os.open(path, os.O_RDONLY)
        size = os.fstat(fd).st_size
        sfd = os.open(src, os.O_RDONLY)
    off = 0
    print("ready", flush=True)
    while not os.path.exists(stop):
        t0 = time.monotonic()
        try:
            if kind == "stream":
                # past the page cache: the daemon answers every read
                os.posix_fadvise(fd, off, CHUNK, os.POSIX_FADV_DONTNEED)
                got = os.pread(fd, CHUNK, off)
                ok = got == os.pread(sfd, CHUNK, off)
                off = off + len(got) if off + len(got) < size else 0
            elif kind == "random":
                o = rng.randrange(size)
                n = rng.randint(1, 256 << 10)
                os.posix_fadvise(fd, o, n, os.POSIX_FADV_DONTNEED)
                ok = os.pread(fd, n, o) == os.pread(sfd, n, o)
            elif kind == "mmap":
                o = rng.randrange(size)
                n = rng.randint(1, 256 << 10)
                ok = mm[o:o + n] == os.pread(sfd, n, o)
            else:
                ok = sorted(os.listdir(".")) == names
                if os.stat(".").st_ino != dot:
                    res["ino_changes"] += 1
                for n in names:
                    if os.stat(n).st_ino != inos[n]:
                        res["ino_changes"] += 1
                    if n not in want:
                        continue
                    with open(n, "rb") as f:
                        ok = ok and f.read() == want[n]
            if not ok:
                res["wrong"] += 1
        except OSError as e:
            res["failures"].append(errno.errorcode.get(e.errno, str(e)))
            if len(res["failures"]) > 50:
                break
        dt = time.monotonic() - t0
        if dt > SLOW:
            res["slow"].append([t0, dt])
        res["ops"] += 1
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
