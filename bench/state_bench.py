#!/usr/bin/env python3
"""A coordinator that runs for months: memory and disk follow live state.

Prints one table:
  - coordinator RSS while a kept `--kernel noop` job runs N tasks (sampled), and
    the rate its results are read back in order (`drover results`);
  - RSS and journal size after 1,000 jobs submitted, run and forgotten, against
    the start;
  - restart time with a large journal of live jobs (listed items small enough
    to go in one Submit, so in the journal), then after they are forgotten (the
    journal compacted). Larger listed items are streamed to disk, not journaled.
The peer is the same job with its results held in RAM, as before the result
store: ~236 B/task with --chunk 1 (measured in issue 13).

usage: bench/state_bench.py [--tasks N] [--jobs N] [--history-jobs N]
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time

from bench_lib import BIN, Cluster, free_port, wait_for_port


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def kept_noop(tasks, state, chunk="auto"):
    with Cluster(2, 1, coordinator_flags=("--no-auth", "--state-dir", state)) as c:
        pid = c.coordinator.pid
        start = rss_kb(pid)
        peak = [start]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.time()
        job = run(c.drover("submit", "--kernel", "noop", "--chunk", chunk, "--range", f"0:{tasks}")).stdout.strip()
        run(c.drover("wait", "-q", job))
        run_s = time.time() - t0
        done.set()
        sampler.join()
        t0 = time.time()
        out = subprocess.run(c.drover("results", job), check=True, stdout=subprocess.PIPE).stdout
        read_s = time.time() - t0
        assert out.count(b"\n") == tasks, (out.count(b"\n"), tasks)
        results_mb = sum(os.path.getsize(os.path.join(state, "results", f))
                         for f in os.listdir(os.path.join(state, "results"))) / 1e6
        return start, peak[0], run_s, read_s, results_mb


def forget_many(jobs, state):
    with Cluster(2, 1, coordinator_flags=("--no-auth", "--state-dir", state)) as c:
        pid = c.coordinator.pid
        journal = os.path.join(state, "journal")
        start_rss, start_journal = rss_kb(pid), os.path.getsize(journal)
        ids = []
        for _ in range(jobs):
            ids.append(run(c.drover("submit", "--kernel", "echo", "--range", "0:100")).stdout.strip())
        for job in ids:
            run(c.drover("wait", "-q", job))
        full_rss, full_journal = rss_kb(pid), os.path.getsize(journal)
        run(c.drover("forget", *ids))
        return start_rss, full_rss, rss_kb(pid), start_journal, full_journal, os.path.getsize(journal)


def restart_seconds(state):
    port = free_port()
    t0 = time.time()
    proc = subprocess.Popen([f"{BIN}/drover-coordinator", "--no-auth", "--state-dir", state, "--listen-clients",
                             f"127.0.0.1:{port}", "--listen-workers", "tcp://127.0.0.1:0"],
                            stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout=600)
    elapsed = time.time() - t0
    return proc, port, elapsed


def history(jobs, state, items=90_000):
    lines = "".join(f"item-{i:07d}\n" for i in range(items))
    with Cluster(0, coordinator_flags=("--no-auth", "--state-dir", state)) as c:
        ids = [run(c.drover("submit", "--kernel", "echo", "--each-line", "-"), input=lines).stdout.strip()
               for _ in range(jobs)]
        for job in ids:
            run(c.drover("cancel", job))
    journal = os.path.join(state, "journal")
    live_mb = os.path.getsize(journal) / 1e6
    proc, port, before_s = restart_seconds(state)
    drover = [f"{BIN}/drover", "--coordinator", f"127.0.0.1:{port}"]
    run(drover + ["forget", *ids])
    proc.kill()
    proc.wait()
    compacted_kb = os.path.getsize(journal) / 1e3
    proc, port, after_s = restart_seconds(state)
    proc.kill()
    proc.wait()
    return live_mb, before_s, compacted_kb, after_s


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--history-jobs", type=int, default=300)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as state:
        start, peak, run_s, read_s, results_mb = kept_noop(args.tasks, state)
        rows.append((f"kept noop job, {args.tasks:,} tasks: coordinator RSS",
                     f"{start/1e3:.0f} MB -> peak {peak/1e3:.0f} MB ({results_mb:.0f} MB on disk)", ""))
        rows.append(("  run / read back in order", f"{run_s:.1f} s / {read_s:.2f} s",
                     f"{args.tasks / read_s / 1e6:.1f} M results/s"))
    with tempfile.TemporaryDirectory() as state:
        tasks = args.tasks // 10
        start, peak, run_s, read_s, results_mb = kept_noop(tasks, state, chunk="1")
        rows.append((f"  same with --chunk 1, {tasks:,} tasks", f"{start/1e3:.0f} MB -> peak {peak/1e3:.0f} MB "
                     f"({(peak - start) * 1e3 / tasks:.0f} B/task)", "before: ~236 B/task"))
    with tempfile.TemporaryDirectory() as state:
        s_rss, f_rss, e_rss, s_j, f_j, e_j = forget_many(args.jobs, state)
        rows.append((f"{args.jobs} jobs run, then forgotten: RSS", f"{s_rss/1e3:.0f} -> {f_rss/1e3:.0f} -> "
                     f"{e_rss/1e3:.0f} MB", ""))
        rows.append(("  journal", f"{s_j/1e3:.0f} -> {f_j/1e3:.0f} -> {e_j/1e3:.0f} kB", ""))
    with tempfile.TemporaryDirectory() as state:
        live_mb, before_s, compacted_kb, after_s = history(args.history_jobs, state)
        rows.append((f"restart, journal of {args.history_jobs} live jobs of 90,000 listed items ({live_mb:.0f} MB)",
                     f"{before_s:.2f} s", ""))
        rows.append((f"  after they are forgotten (journal {compacted_kb:.0f} kB)", f"{after_s:.2f} s",
                     f"{before_s / after_s:.0f}x faster"))
    width = max(len(r[0]) for r in rows)
    for label, figure, note in rows:
        print(f"{label:<{width}}  {figure:<40} {note}")


if __name__ == "__main__":
    main()
