"""drover's core benchmark: no-op task throughput and CPU-bound parallel
efficiency, through the whole path (`drover run --local`, start-up included),
next to the same workloads through Python's multiprocessing.Pool in the same run.

usage: /usr/bin/python3 bench/core_bench.py [--repeat 3] [--quick]
Prints a table of medians. Needs build/bin/drover (scripts/build).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DROVER = os.path.join(ROOT, "build", "bin", "drover")
PEER = os.path.join(ROOT, "bench", "pool_peer.py")
PYTHON = "/usr/bin/python3"


def timed(argv, expect_lines=None):
    """Runs argv to completion; returns wall seconds."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.decode()[-2000:]}")
    if expect_lines is not None:
        lines = done.stdout.count(b"\n")
        if lines != expect_lines:
            sys.exit(f"expected {expect_lines} lines, got {lines}: {' '.join(argv)}")
    return took, done.stdout


def median_time(argv, repeat, expect_lines=None):
    return statistics.median(timed(argv, expect_lines)[0] for _ in range(repeat))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median is shown)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    args = parser.parse_args()
    if not os.access(DROVER, os.X_OK):
        sys.exit("build first: scripts/build")
    scale = 10 if args.quick else 1

    rows = []
    # No-op tasks per second through the whole path.
    for chunk, n in ((1, 1_000_000 // scale), (1000, 50_000_000 // scale)):
        for workers in (1, 2):
            d = median_time([DROVER, "run", "--local", "-j", str(workers), "--kernel", "noop",
                             "--range", f"0:{n}", "--chunk", str(chunk)], args.repeat, expect_lines=n)
            p = median_time([PYTHON, PEER, "noop", str(n), str(chunk), str(workers)], args.repeat)
            rows.append((f"noop, {n:,} tasks, chunk {chunk}, {workers} worker(s)",
                         f"{n / d:,.0f}/s", f"{n / p:,.0f}/s", f"{p / d:.1f}x"))

    # CPU-bound: count_primes over [0, END) in items of STEP, serial (1 worker) vs 2 workers.
    end, step = 30_000_000 // scale, 100_000 // scale
    items = [f"{a}:{min(a + step, end)}" for a in range(0, end, step)]
    cmd = lambda w: [DROVER, "run", "--local", "-j", str(w), "--kernel", "count_primes",
                     "--reduce", "sum"] + items
    d1 = median_time(cmd(1), args.repeat)
    d2 = median_time(cmd(2), args.repeat)
    py_end = end // 20  # Python's trial division is far slower; a smaller range keeps the run short
    py_step = max(1, step // 20)
    p1 = median_time([PYTHON, PEER, "primes", "0", str(py_end), str(py_step), "1"], args.repeat)
    p2 = median_time([PYTHON, PEER, "primes", "0", str(py_end), str(py_step), "2"], args.repeat)
    rows.append((f"count_primes [0,{end:,}) 1 -> 2 workers: speedup (efficiency)",
                 f"{d1 / d2:.2f}x ({d1 / (2 * d2):.0%})", f"{p1 / p2:.2f}x ({p1 / (2 * p2):.0%})",
                 f"{d1:.2f}s -> {d2:.2f}s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'workload':<{width}}  {'drover':>18}  {'Python Pool':>18}  {'drover/Python':>16}")
    for name, d, p, ratio in rows:
        print(f"{name:<{width}}  {d:>18}  {p:>18}  {ratio:>16}")
    print(f"(medians of {args.repeat} runs; whole runs including start-up; {os.cpu_count()} cores;"
          f" Python on the CPU row ran [0,{py_end:,}) — compare efficiencies)")


if __name__ == "__main__":
    main()
