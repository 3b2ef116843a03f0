"""HTTP benchmark: 10,000 GETs against a real nginx on loopback (Debian's, from a
generated config: 10,000 files of 10 KB, and two endpoints that answer after
20 ms through its echo module: /latency answers "ok" in chunked encoding, as the
echo module writes it (headers, the chunk and the last chunk: up to three TCP
segments), /latency-one a small file with a Content-Length, in one write, as a
typical API server answers), made in the same run by:

- Python aiohttp, asyncio.gather with a semaphore at 256 (one session);
- Python requests.get(url, timeout=5) in a ThreadPoolExecutor(256), as the
  article has it (no session: a connection per request);
- `drover run --http` with 1 worker at --concurrency 256 and 2 workers at 128
  (256 in flight in all, as the others; results to /dev/null, the client
  printing every status line as it would for a user).

Prints the median wall time of --repeat runs, its ratio to aiohttp's, and CPU
per request: the Python process's, or drover's coordinator + workers + client
together (and its workers alone, as bench/io_bench.py counts). On the 20 ms
endpoint it also prints the ratio to the ideal (requests x 20 ms / 256 in
flight). nginx runs one process on the same
machine, so it takes a core of its own from the runners.

usage: /usr/bin/python3 bench/http_bench.py [--requests 10000] [--repeat 3]
Needs nginx, libnginx-mod-http-echo, python3-aiohttp and python3-requests
(scripts/install-deps).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench_lib import BIN, Cluster, cpu_seconds, free_port, wait_for_port

CONCURRENCY = 256
LATENCY_MS = 20
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"

AIOHTTP_PEER = r'''
import asyncio, resource, sys, time
import aiohttp

async def main(urls, concurrency):
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def get(url):
            async with gate:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        return response.status
                except Exception as error:
                    return repr(error)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        statuses = await asyncio.gather(*(get(url) for url in urls))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    bad = [s for s in statuses if s != 200]
    assert not bad, bad[:3]
    print(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

asyncio.run(main(open(sys.argv[1]).read().split(), int(sys.argv[2])))
'''

REQUESTS_PEER = r'''
import resource, sys, time
from concurrent.futures import ThreadPoolExecutor
import requests

def get(url):
    try:
        return requests.get(url, timeout=5).status_code
    except Exception as error:
        return repr(error)

urls = open(sys.argv[1]).read().split()
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
with ThreadPoolExecutor(int(sys.argv[2])) as pool:
    statuses = list(pool.map(get, urls))
wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
bad = [s for s in statuses if s != 200]
assert not bad, bad[:3]
print(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
'''


class Nginx:
    """nginx on a free loopback port serving `files` files of 10 KB and /latency."""

    def __init__(self, work, files):
        self.dir = os.path.join(work, "nginx")
        os.makedirs(os.path.join(self.dir, "www", "f"))
        os.makedirs(os.path.join(self.dir, "tmp"))
        body = os.urandom(10 * 1024)
        with open(os.path.join(self.dir, "www", "ok.txt"), "w") as f:
            f.write("ok\n")
        for i in range(files):
            with open(os.path.join(self.dir, "www", "f", f"{i}.bin"), "wb") as f:
                f.write(body)
        self.port = free_port()
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""load_module {ECHO_MODULE};
daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log; worker_rlimit_nofile 10000;
events {{ worker_connections 8000; }}
http {{
  access_log off; keepalive_requests 100000; default_type application/octet-stream;
  client_body_temp_path {d}/tmp/b; proxy_temp_path {d}/tmp/p; fastcgi_temp_path {d}/tmp/f;
  uwsgi_temp_path {d}/tmp/u; scgi_temp_path {d}/tmp/s;
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    root {d}/www;
    location = /latency {{ echo_sleep {LATENCY_MS / 1000}; echo ok; }}
    location = /latency-one {{ echo_sleep {LATENCY_MS / 1000}; echo_exec /ok.txt; }}
    location = /stub {{ stub_status; }}
  }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"],
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.process.terminate()
        self.process.wait()


def run_python(peer, urls_file):
    """(wall s, CPU s of the process, None)."""
    done = subprocess.run([sys.executable, "-c", peer, urls_file, str(CONCURRENCY)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"python peer failed: {done.stderr[-2000:]}")
    wall, cpu = map(float, done.stdout.split())
    return wall, cpu, None


def run_drover(cluster, urls_file, concurrency):
    """(wall s, CPU s of the coordinator + workers + client, CPU s of the workers)."""
    workers_before = cluster.worker_cpu()
    coordinator_before = cpu_seconds(cluster.coordinator.pid)
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cluster.drover("run", "--http", "--each-line", urls_file, "--concurrency", str(concurrency),
                                         "--timeout", "5s"),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"drover run failed: {done.stderr.decode()[-2000:]}")
    client = client_after.ru_utime + client_after.ru_stime - client_before.ru_utime - client_before.ru_stime
    workers = cluster.worker_cpu() - workers_before
    return wall, workers + cpu_seconds(cluster.coordinator.pid) - coordinator_before + client, workers


def table(title, urls_file, requests, repeat, ideal=None):
    rows = {}
    for _ in range(repeat):
        rows.setdefault("python aiohttp, gather", []).append(run_python(AIOHTTP_PEER, urls_file))
        rows.setdefault("python requests, 256 threads", []).append(run_python(REQUESTS_PEER, urls_file))
        # The same 256 in flight in all: 1 worker x 256, 2 workers x 128.
        for workers in (1, 2):
            with Cluster(workers) as cluster:
                rows.setdefault(f"drover --http, {workers} x {CONCURRENCY // workers}", []).append(
                    run_drover(cluster, urls_file, CONCURRENCY // workers))
    print(f"{title}: {requests} GETs, {CONCURRENCY} in flight; medians of {repeat}")
    print("CPU per request: the Python process; drover's coordinator + workers + client (all), and its workers "
          "alone")
    header = f"{'runner':<30} {'wall s':>7} {'vs aiohttp':>10} {'CPU us/req':>10} {'vs aiohttp':>10} {'workers':>8}"
    print(header + (f" {'vs ideal':>9}" if ideal else ""))
    base_wall = statistics.median(r[0] for r in rows["python aiohttp, gather"])
    base_cpu = statistics.median(r[1] for r in rows["python aiohttp, gather"])
    for name, runs in rows.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        workers = f"{statistics.median(r[2] for r in runs) / requests * 1e6:>8.0f}" if runs[0][2] is not None else \
            f"{'-':>8}"
        line = (f"{name:<30} {wall:>7.2f} {wall / base_wall:>9.2f}x {cpu / requests * 1e6:>10.0f} "
                f"{cpu / base_cpu:>9.2f}x {workers}")
        print(line + (f" {wall / ideal:>8.2f}x" if ideal else ""))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.access(f"{BIN}/drover", os.X_OK):
        sys.exit("build first: scripts/build")
    if not shutil.which("nginx") or not os.path.exists(ECHO_MODULE):
        sys.exit("needs nginx and libnginx-mod-http-echo: scripts/install-deps")
    work = tempfile.mkdtemp(prefix="drover-http-bench-")
    nginx = Nginx(work, args.requests)
    try:
        files = os.path.join(work, "files.txt")
        with open(files, "w") as f:
            f.writelines(nginx.url(f"/f/{i}.bin") + "\n" for i in range(args.requests))
        waits = os.path.join(work, "latency.txt")
        with open(waits, "w") as f:
            f.writelines(nginx.url(f"/latency?{i}") + "\n" for i in range(args.requests))
        waits_one = os.path.join(work, "latency-one.txt")
        with open(waits_one, "w") as f:
            f.writelines(nginx.url(f"/latency-one?{i}") + "\n" for i in range(args.requests))
        print(f"({os.cpu_count()} cores; nginx, the runners and drover's processes share them)\n")
        table("Static files of 10 KB", files, args.requests, args.repeat)
        ideal = args.requests * LATENCY_MS / 1000 / CONCURRENCY
        table(f"An endpoint that answers after {LATENCY_MS} ms, chunked", waits, args.requests, args.repeat,
              ideal=ideal)
        table(f"An endpoint that answers after {LATENCY_MS} ms, in one write", waits_one, args.requests,
              args.repeat, ideal=ideal)
    finally:
        nginx.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
