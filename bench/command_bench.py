"""Command-task benchmark: many short programs through `drover run --local -j 2`
next to GNU Parallel (`parallel -j2`) and `xargs -P2` in the same run, as
commands per second (whole runs, start-up included) and ratios.

usage: /usr/bin/python3 bench/command_bench.py [--repeat 3]
Installs Debian's `parallel` if it is missing (needs root or sudo).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DROVER = os.path.join(ROOT, "build", "bin", "drover")

from bench_lib import ensure_parallel  # noqa: E402


def timed(argv, stdin=b""):
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.decode()[-2000:]}")
    return took


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.access(DROVER, os.X_OK):
        sys.exit("build first: scripts/build")
    ensure_parallel()

    # (name, runs, command for drover and xargs, the same for GNU Parallel, which goes through a shell)
    workloads = [("true", 2000, ["true"], ["true"]),
                 ("sh -c 'sleep 0.01'", 500, ["sh", "-c", "sleep 0.01"], ["sh", "-c", "'sleep 0.01'"])]
    print(f"{'workload':<28} {'drover':>10} {'parallel -j2':>13} {'xargs -P2':>10} {'drover/parallel':>16} {'drover/xargs':>13}")
    for name, n, command, shell_command in workloads:
        items = "".join(f"{i}\n" for i in range(n)).encode()
        runs = {"drover": [], "parallel": [], "xargs": []}
        for _ in range(args.repeat):
            runs["drover"].append(timed([DROVER, "run", "--local", "-j", "2", "--range", f"0:{n}", "--"] + command))
            runs["parallel"].append(timed(["parallel", "-j2"] + shell_command, items))
            runs["xargs"].append(timed(["xargs", "-P2", "-n1"] + command, items))
        rate = {k: n / statistics.median(v) for k, v in runs.items()}
        print(f"{name + f' x{n}':<28} {rate['drover']:>8.0f}/s {rate['parallel']:>11.0f}/s {rate['xargs']:>8.0f}/s"
              f" {rate['drover'] / rate['parallel']:>15.1f}x {rate['drover'] / rate['xargs']:>12.1f}x")
    print(f"(commands per second, medians of {args.repeat} whole runs; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
