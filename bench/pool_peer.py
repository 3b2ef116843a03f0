"""The peer of bench/core_bench.py: the same workloads through Python's
multiprocessing.Pool, run as one whole process (start-up included).

usage: pool_peer.py noop N CHUNKSIZE WORKERS
       pool_peer.py primes START END STEP WORKERS
"""
import multiprocessing
import sys


def noop(_):
    return None


def count_primes(bounds):
    a, b = bounds
    count = 0
    for n in range(a, b):
        if n < 2:
            continue
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        prime = True
        while d * d <= n:
            if n % d == 0:
                prime = False
                break
            d += 2
        count += prime
    return count


def main():
    kind = sys.argv[1]
    if kind == "noop":
        n, chunk, workers = map(int, sys.argv[2:5])
        with multiprocessing.Pool(workers) as pool:
            results = pool.map(noop, range(n), chunksize=chunk)
        assert len(results) == n
    elif kind == "primes":
        start, end, step, workers = map(int, sys.argv[2:6])
        items = [(a, min(a + step, end)) for a in range(start, end, step)]
        with multiprocessing.Pool(workers) as pool:
            print(sum(pool.map(count_primes, items, chunksize=1)))
    else:
        sys.exit("unknown workload " + kind)


if __name__ == "__main__":
    main()
