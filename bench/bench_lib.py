"""Helpers the benchmarks share: free ports, a drover cluster on loopback,
timing of whole commands, medians.
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DROVER_BIN_DIR", os.path.join(ROOT, "build", "bin"))
PYTHON = "/usr/bin/python3"


def ensure_parallel():
    """Installs Debian's GNU Parallel if it is missing (needs root or sudo)."""
    if shutil.which("parallel"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "parallel"],
                   check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv, **kwargs):
    """Runs argv to completion (exits on failure); returns (wall seconds, stdout bytes)."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, **kwargs)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, argv))[:300]}\n{done.stderr.decode()[-2000:]}")
    return took, done.stdout


def median(fn, repeat):
    """The median of `repeat` calls of fn() (each returning seconds)."""
    return statistics.median(fn() for _ in range(repeat))


class Cluster:
    """A coordinator and `workers` drover-worker processes (`slots` each) on loopback."""

    def __init__(self, workers, slots=1, coordinator_flags=(), coordinator_log=None):
        """`coordinator_log`: a file for the coordinator's log (default: discarded)."""
        self.worker_port, self.client_port = free_port(), free_port()
        log = open(coordinator_log, "w") if coordinator_log else subprocess.DEVNULL
        self.procs = [subprocess.Popen([f"{BIN}/drover-coordinator", "--listen-workers",
                                        f"tcp://127.0.0.1:{self.worker_port}", "--listen-clients",
                                        f"127.0.0.1:{self.client_port}", *coordinator_flags],
                                       stderr=log)]
        self.coordinator = self.procs[0]
        wait_for_port(self.client_port)
        self.workers = []
        self.add_workers(workers, slots)

    def add_workers(self, count, slots=1):
        root = ["--allow-root"] if os.geteuid() == 0 else []
        added = [subprocess.Popen([f"{BIN}/drover-worker", "--coordinator", f"tcp://127.0.0.1:{self.worker_port}",
                                   "--slots", str(slots)] + root, stderr=subprocess.DEVNULL) for _ in range(count)]
        self.workers += added
        self.procs += added
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(self.drover("workers"), capture_output=True, text=True).stdout
            if len(out.strip().splitlines()) >= len(self.workers) + 1:  # header + one line each
                return
            time.sleep(0.1)
        sys.exit("workers did not register")

    def drover(self, *args):
        return [f"{BIN}/drover", "--coordinator", f"127.0.0.1:{self.client_port}"] + list(args)

    def worker_cpu(self):
        return sum(cpu_seconds(w.pid) for w in self.workers)

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
