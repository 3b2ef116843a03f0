"""Python benchmark: drover.Pool(local=2) against multiprocessing.Pool(2), the
same work in the same run (medians of --repeat):

- the article's CPU job: cpu_bound(10**7) x 4 (sum of squares);
- 100,000 calls of a trivial function, with chunksize 1 and with each pool's
  default (multiprocessing: len/(4 x processes); drover: its automatic sizing).

Wall time counts from the call to its result (the pools are started before;
drover's start, a coordinator and a worker, is printed apart). Both pools are up
together and each piece of work runs on one, then the other, so that the
machine's slow spells fall on both.

usage: build/venv/bin/python bench/python_bench.py [--repeat 5] [--calls 100000]
(scripts/build installs the package into build/venv).
"""
import argparse
import multiprocessing
import os
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DROVER_BIN_DIR", os.path.join(ROOT, "build", "bin"))

from drover import Pool  # noqa: E402


def cpu_bound(n):
    return sum(i * i for i in range(n))


def trivial(x):
    return x + 1


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    work = [
        ("cpu_bound(10**7) x 4", lambda p: p.map(cpu_bound, [10**7] * 4), [cpu_bound(10**7)] * 4, None),
        (f"{args.calls:,} trivial calls, chunksize 1", lambda p: p.map(trivial, range(args.calls), chunksize=1),
         list(range(1, args.calls + 1)), args.calls),
        (f"{args.calls:,} trivial calls, default chunks", lambda p: p.map(trivial, range(args.calls)),
         list(range(1, args.calls + 1)), args.calls),
    ]
    rows = {name: {"multiprocessing.Pool(2)": [], "drover.Pool(local=2)": []} for name, *_ in work}
    starts = []
    for _ in range(args.repeat):
        # Both pools up at once, each piece of work run by one then the other:
        # a slow spell of the machine falls on both runners, not on one.
        start, drover_pool = timed(lambda: Pool(local=2))
        starts.append(start)
        with multiprocessing.Pool(2) as mp_pool, drover_pool:
            mp_pool.map(trivial, range(10))  # the processes are up
            drover_pool.map(trivial, range(10))  # the interpreters are up
            for name, run, expected, _ in work:
                for runner, pool in (("multiprocessing.Pool(2)", mp_pool), ("drover.Pool(local=2)", drover_pool)):
                    wall, result = timed(lambda: run(pool))
                    assert result == expected
                    rows[name][runner].append(wall)
    print(f"drover.Pool(local=2) against multiprocessing.Pool(2), medians of {args.repeat}, "
          f"{os.cpu_count()} cores")
    print(f"{'work':<40} {'runner':<26} {'wall s':>8} {'vs Pool':>8} {'calls/s':>10}")
    for name, _, _, calls in work:
        base = statistics.median(rows[name]["multiprocessing.Pool(2)"])
        for runner, walls in rows[name].items():
            wall = statistics.median(walls)
            rate = f"{calls / wall:>10,.0f}" if calls else f"{'':>10}"
            print(f"{name:<40} {runner:<26} {wall:>8.3f} {wall / base:>7.2f}x {rate}")
    print(f"(drover's local cluster started in {statistics.median(starts):.2f} s, not counted above)")


if __name__ == "__main__":
    main()
