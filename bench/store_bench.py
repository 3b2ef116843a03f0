"""Why the coordinator's --state-dir is an append-only journal: the same
durable-write pattern (results of ~700 bytes, made durable in group commits)
through an append-only checksummed file with fdatasync, and through SQLite in
WAL mode (synchronous=FULL, one transaction per commit group), in one run.
Both are driven from Python here, so interpreter costs are alike; what differs
is the store. Also measures replay (reading everything back).

usage: /usr/bin/python3 bench/store_bench.py [--records 20000] [--group 100] [--dir /tmp]
"""
import argparse
import os
import sqlite3
import statistics
import struct
import tempfile
import time
import zlib


def journal_write(path, payloads, group):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    start = time.perf_counter()
    buffer = []
    for i, payload in enumerate(payloads, 1):
        buffer.append(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
        if i % group == 0:
            os.write(fd, b"".join(buffer))
            os.fdatasync(fd)
            buffer.clear()
    if buffer:
        os.write(fd, b"".join(buffer))
        os.fdatasync(fd)
    took = time.perf_counter() - start
    os.close(fd)
    return took


def journal_read(path):
    start = time.perf_counter()
    with open(path, "rb") as f:
        data = f.read()
    at, count = 0, 0
    while at < len(data):
        length, crc = struct.unpack_from("<II", data, at)
        payload = data[at + 8: at + 8 + length]
        assert zlib.crc32(payload) == crc
        at += 8 + length
        count += 1
    return time.perf_counter() - start, count


def sqlite_write(path, payloads, group):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE done (job INTEGER, chunk INTEGER, outputs BLOB, PRIMARY KEY (job, chunk))")
    start = time.perf_counter()
    for i in range(0, len(payloads), group):
        db.execute("BEGIN")
        db.executemany("INSERT INTO done VALUES (1, ?, ?)",
                       ((i + k, p) for k, p in enumerate(payloads[i:i + group])))
        db.execute("COMMIT")
    took = time.perf_counter() - start
    db.close()
    return took


def sqlite_read(path):
    start = time.perf_counter()
    db = sqlite3.connect(path)
    count = sum(1 for _ in db.execute("SELECT job, chunk, outputs FROM done ORDER BY job, chunk"))
    db.close()
    return time.perf_counter() - start, count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--group", type=int, default=100, help="records per durable commit")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    payloads = [os.urandom(700) for _ in range(args.records)]
    rows = {"journal": [], "sqlite": [], "journal read": [], "sqlite read": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            rows["journal"].append(journal_write(os.path.join(d, "journal"), payloads, args.group))
            rows["journal read"].append(journal_read(os.path.join(d, "journal"))[0])
            rows["sqlite"].append(sqlite_write(os.path.join(d, "state.db"), payloads, args.group))
            rows["sqlite read"].append(sqlite_read(os.path.join(d, "state.db"))[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    n = args.records
    print(f"{n:,} records of 700 bytes, durable every {args.group} (medians of {args.repeat})")
    print(f"{'store':<34} {'write':>12} {'replay':>12}")
    print(f"{'append-only journal + fdatasync':<34} {n / med['journal']:>10,.0f}/s {n / med['journal read']:>10,.0f}/s")
    print(f"{'SQLite WAL, synchronous=FULL':<34} {n / med['sqlite']:>10,.0f}/s {n / med['sqlite read']:>10,.0f}/s")
    print(f"journal/SQLite: write {med['sqlite'] / med['journal']:.1f}x, replay {med['sqlite read'] / med['journal read']:.1f}x")


if __name__ == "__main__":
    main()
