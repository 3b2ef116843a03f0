"""Scheduling benchmark: does every slot work while work waits, and do chunk
sizes need no tuning? The same work runs through Python's multiprocessing.Pool,
GNU Parallel and xargs in the same run; figures are medians.

Rows:
  heavy     k tasks of 1 s on k one-slot workers (k = 2, 4, 8): makespan / ideal (1 s)
  skewed    200 heavy-tailed task times (fixed seed) on 4 slots: makespan / max(total/4, longest)
  slow      20 x 200 ms on 2 workers right after a 10^6-task no-op job: makespan / 2 s
  auto      --range 0:10^7 --kernel noop --reduce count with no --chunk, against the best
            hand-picked --chunk and Pool.map's default chunksize
  chunk 1   10^6 no-op tasks with --chunk 1 against Pool.map(chunksize=1)
  queue     100 one-task jobs submitted at once: do they start in submission order, and
            how long does `drover jobs` take meanwhile
  many      10^6 no-op chunk-1 tasks through one coordinator with 10, 1,000 and 10,000
            connected workers played by tools/load_workers (one process, real ZeroMQ)

drover runs against a running cluster (coordinator + workers started once), so its
figures are job makespans; `--local` start-up is ~70 ms more.

usage: /usr/bin/python3 bench/sched_bench.py [--repeat 3] [--quick]
Installs GNU Parallel if missing. Needs build/bin (scripts/build).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_lib import BIN, PYTHON, Cluster, ensure_parallel, median, timed  # noqa: E402

POOL_SLEEP = r'''
import multiprocessing, sys, time
def work(ms):
    time.sleep(ms / 1000)
if __name__ == "__main__":
    ms = [int(x) for x in sys.argv[2:]]
    with multiprocessing.Pool(int(sys.argv[1])) as pool:
        pool.map(work, ms)
'''

POOL_NOOP = r'''
import multiprocessing, sys
def noop(_):
    return None
if __name__ == "__main__":
    n, chunk = int(sys.argv[1]), sys.argv[2]
    with multiprocessing.Pool(2) as pool:
        if chunk == "default":
            out = pool.map(noop, range(n))
        else:
            out = pool.map(noop, range(n), chunksize=int(chunk))
    assert len(out) == n
'''


def skewed_times(count=200, seed=7):
    """Heavy-tailed task times in ms (Pareto, alpha 1.2), 10 ms to 3 s."""
    rng = random.Random(seed)
    return [min(3000, int(10 * rng.paretovariate(1.2))) for _ in range(count)]


def row(rows, name, ideal, results):
    """results: [(runner, seconds)]; prints each as seconds and ratio to ideal."""
    rows.append((name, ideal, results))


def heavy_rows(rows, repeat, ks):
    for k in ks:
        ms = ["1000"] * k
        with Cluster(k) as cluster:
            kernel = median(lambda: timed(cluster.drover("run", "--kernel", "sleep_ms", *ms))[0], repeat)
            command = median(lambda: timed(cluster.drover("run", ":::", *(["1"] * k), "--", "sleep"))[0], repeat)
        pool = median(lambda: timed([PYTHON, "-c", POOL_SLEEP, str(k)] + ms)[0], repeat)
        par = median(lambda: timed(["parallel", f"-j{k}", "sleep", ":::"] + ["1"] * k)[0], repeat)
        xargs = median(lambda: timed(["xargs", f"-P{k}", "-n1", "sleep"], input=("1\n" * k).encode())[0], repeat)
        row(rows, f"{k} x 1 s on {k} slots", 1.0,
            [("drover sleep_ms", kernel), ("drover ::: 1.. -- sleep", command), ("Pool.map", pool),
             (f"parallel -j{k}", par), (f"xargs -P{k}", xargs)])


def skewed_row(rows, repeat):
    times = skewed_times()
    ideal = max(sum(times) / 4 / 1000, max(times) / 1000)
    items = [str(t) for t in times]
    with Cluster(4) as cluster:
        drover = median(lambda: timed(cluster.drover("run", "--kernel", "sleep_ms", *items))[0], repeat)
    pool = median(lambda: timed([PYTHON, "-c", POOL_SLEEP, "4"] + items)[0], repeat)
    secs = "\n".join(f"{t / 1000:.3f}" for t in times) + "\n"
    xargs = median(lambda: timed(["xargs", "-P4", "-n1", "sleep"], input=secs.encode())[0], repeat)
    row(rows, f"200 skewed ({sum(times) / 1000:.1f} s total, longest {max(times) / 1000:.2f} s) on 4",
        ideal, [("drover sleep_ms", drover), ("Pool.map default", pool), ("xargs -P4", xargs)])


def slow_after_fast_row(rows, repeat):
    results = []
    with Cluster(2) as cluster:
        def once():
            timed(cluster.drover("run", "--kernel", "noop", "--range", "0:1000000", "--chunk", "1"))
            return timed(cluster.drover("run", "--kernel", "sleep_ms", *(["200"] * 20)))[0]
        results.append(("drover", median(once, repeat)))
    row(rows, "20 x 200 ms on 2 after a fast job", 2.0, results)


def auto_rows(rows, repeat, n):
    with Cluster(2) as cluster:
        run = lambda chunk: median(lambda: timed(cluster.drover(
            "run", "--kernel", "noop", "--reduce", "count", "--range", f"0:{n}", *chunk))[0], repeat)
        auto = run([])
        picked = {c: run(["--chunk", str(c)]) for c in (1000, 10_000, 100_000, 1_000_000)}
    pool = median(lambda: timed([PYTHON, "-c", POOL_NOOP, str(n), "default"])[0], repeat)
    best = min(picked, key=picked.get)
    rows.append((f"noop {n:,} items, no --chunk", None,
                 [("drover auto", auto), (f"best --chunk ({best:,})", picked[best]), ("Pool.map default", pool)]))
    return auto, picked[best], pool


def chunk1_row(rows, repeat, n):
    """Items per second; Pool runs a fifth of the items (its rate is steady, and 10^6 take it ~50 s)."""
    with Cluster(2) as cluster:
        drover = median(lambda: timed(cluster.drover("run", "--kernel", "noop", "--range", f"0:{n}", "--chunk", "1"),
                                      )[0], repeat)
    pool = median(lambda: timed([PYTHON, "-c", POOL_NOOP, str(n // 5), "1"])[0], repeat) * 5
    rows.append((f"noop {n:,} items, --chunk 1 (Pool: {n // 5:,}, time x5)", None,
                 [("drover", drover), ("Pool.map chunksize=1", pool)]))
    return drover, pool


def queue_row(rows, jobs=100):
    with Cluster(2) as cluster:
        # Hold both slots so that every job queues, then submit them all.
        blocker = subprocess.Popen(cluster.drover("run", "--kernel", "sleep_ms", "1500", "1500"),
                                   stdout=subprocess.DEVNULL)
        time.sleep(0.3)  # let the blocker's chunks reach the workers (a bench, not a test)
        ids = []
        for i in range(jobs):
            out = timed(cluster.drover("submit", "--kernel", "sleep_ms", "--name", f"q{i}", "20"))[1]
            ids.append(int(out.split()[0]))
        list_times = [timed(cluster.drover("jobs"))[0] for _ in range(5)]
        blocker.wait()
        for job in ids:
            subprocess.run(cluster.drover("wait", str(job)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
        listed = json.loads("[" + ",".join(timed(cluster.drover("--json", "jobs"))[1].decode().split("\n")[:-1]) + "]")
        finished = {int(j["jobId"]): int(j.get("finishedUnixMs", 0)) for j in listed if int(j["jobId"]) in ids}
        order = [i for i, _ in sorted(finished.items(), key=lambda kv: kv[1])]
        # Two workers: jobs finish in pairs, so allow a swap within one position.
        in_order = all(abs(order.index(i) - ids.index(i)) <= 1 for i in ids)
    rows.append((f"{jobs} jobs queued at once", None,
                 [("`drover jobs` median", sorted(list_times)[2]),
                  ("finish order = submit order" if in_order else "OUT OF ORDER", 0.0)]))


def cpu_seconds(pid):
    """User + system CPU time of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def many_workers_row(rows, repeat, counts, n=1_000_000):
    # Rounds alternate between the worker counts (a fresh cluster each time), so
    # a slow spell of the machine falls on every count alike, not on one.
    times = {count: [] for count in counts}
    cpu = {count: [] for count in counts}  # the coordinator's CPU seconds per run
    for _ in range(repeat):
        for count in counts:
            with Cluster(0) as cluster:
                tool = subprocess.Popen([f"{BIN}/drover-load-workers", "--coordinator",
                                         f"tcp://127.0.0.1:{cluster.worker_port}", "--workers", str(count)],
                                        stderr=subprocess.DEVNULL)
                try:
                    deadline = time.time() + 120
                    while time.time() < deadline:
                        listed = subprocess.run(cluster.drover("workers"), capture_output=True, text=True).stdout
                        if len(listed.strip().splitlines()) > count * 0.99:
                            break
                        time.sleep(0.5)
                    cpu_before = cpu_seconds(cluster.coordinator.pid)
                    times[count].append(timed(cluster.drover(
                        "run", "--kernel", "noop", "--range", f"0:{n}", "--chunk", "1"))[0])
                    cpu[count].append(cpu_seconds(cluster.coordinator.pid) - cpu_before)
                finally:
                    tool.terminate()
                    tool.wait()
    figures = {count: sorted(ts)[len(ts) // 2] for count, ts in times.items()}
    cpu_figures = {count: sorted(cs)[len(cs) // 2] for count, cs in cpu.items()}
    base = figures[counts[0]]
    rows.append((f"noop {n:,} chunk-1 tasks, many workers", None,
                 [(f"{c:,} workers {n / t / 1000:,.0f}k/s ({base / t:.0%} of {counts[0]}; coordinator CPU "
                   f"{cpu_figures[c]:.2f}s, {cpu_figures[counts[0]] / cpu_figures[c]:.0%})", t)
                  for c, t in figures.items()]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median is shown)")
    parser.add_argument("--quick", action="store_true", help="fewer and smaller rows (a smoke run)")
    parser.add_argument("--only", help="comma-separated row kinds: heavy,skewed,slow,auto,chunk1,queue,many")
    args = parser.parse_args()
    if not os.access(f"{BIN}/drover", os.X_OK):
        sys.exit("build first: scripts/build")
    ensure_parallel()
    only = set(args.only.split(",")) if args.only else {"heavy", "skewed", "slow", "auto", "chunk1", "queue", "many"}
    rows = []
    summary = []
    if "heavy" in only:
        heavy_rows(rows, args.repeat, (2,) if args.quick else (2, 4, 8))
    if "skewed" in only:
        skewed_row(rows, args.repeat)
    if "slow" in only:
        slow_after_fast_row(rows, args.repeat)
    if "auto" in only:
        auto, best, pool = auto_rows(rows, args.repeat, 1_000_000 if args.quick else 10_000_000)
        summary.append(f"auto / best hand-picked: {auto / best:.2f}x the time (target <= 1.25); "
                       f"items/s vs Pool.map default: {pool / auto:.1f}x (target >= 2)")
    if "chunk1" in only:
        drover, pool = chunk1_row(rows, args.repeat, 100_000 if args.quick else 1_000_000)
        summary.append(f"chunk 1: drover {pool / drover:.1f}x Pool.map(chunksize=1)'s items/s (target >= 10)")
    if "queue" in only:
        queue_row(rows)
    if "many" in only:
        many_workers_row(rows, args.repeat, (10, 1000) if args.quick else (10, 1000, 10000))

    for name, ideal, results in rows:
        cells = []
        for runner, seconds in results:
            if seconds == 0.0:
                cells.append(runner)
            elif ideal:
                cells.append(f"{runner} {seconds:.2f}s ({seconds / ideal:.2f}x)")
            else:
                cells.append(f"{runner} {seconds:.3f}s")
        head = f"{name}" + (f" [ideal {ideal:.2f}s]" if ideal else "")
        print(f"{head}\n    " + "  |  ".join(cells))
    for line in summary:
        print(line)
    print(f"(medians of {args.repeat}; {os.cpu_count()} cores; drover against a running cluster)")


if __name__ == "__main__":
    main()
