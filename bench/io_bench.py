"""I/O benchmark: N gRPC calls to drover-echo with a fixed server-side latency,
made by drover workers (1 and 2) and by Python's grpc.aio with asyncio.gather
in the same run, at several concurrencies. Prints wall time, its ratio to the
ideal (calls x latency / calls in flight), and CPU time per call: of the
drover workers, and of the Python process.

Both sides take the same JSON items and produce the same JSON results
(Python converts with google.protobuf.json_format, drover with protobuf's
C++ JSON mapping).

usage: /usr/bin/python3 bench/io_bench.py [--calls 10000] [--latency-ms 20] [--repeat 3]
Installs Debian's python3-grpcio and python3-protobuf if missing (needs root or sudo).
"""
import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_lib import BIN, ROOT, Cluster, free_port, wait_for_port


def ensure_python_grpc():
    try:
        importlib.import_module("grpc")
        importlib.import_module("google.protobuf")
    except ImportError:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run(sudo + ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq",
                               "python3-grpcio", "python3-protobuf"], check=True, stdout=subprocess.DEVNULL)
        importlib.invalidate_caches()


def run_drover(cluster, target, items_file, concurrency):
    cpu_before = cluster.worker_cpu()
    start = time.perf_counter()
    done = subprocess.run(cluster.drover("run", "--grpc", target, "--method", "/drover.echo.v1.Echo/Say",
                                         "--proto-set", f"{ROOT}/build/share/echo.pb", "--each-line", items_file,
                                         "--concurrency", str(concurrency)),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"drover run failed: {done.stderr.decode()[-2000:]}")
    return wall, cluster.worker_cpu() - cpu_before


PYTHON_PEER = r'''
import asyncio, json, resource, sys, time
import grpc
from google.protobuf import json_format
import echo_pb2

async def main(target, items, concurrency):
    async with grpc.aio.insecure_channel(target) as channel:
        say = channel.unary_unary("/drover.echo.v1.Echo/Say",
                                  request_serializer=echo_pb2.EchoRequest.SerializeToString,
                                  response_deserializer=echo_pb2.EchoReply.FromString)
        gate = asyncio.Semaphore(concurrency)
        async def call(item):
            async with gate:
                reply = await say(json_format.Parse(item, echo_pb2.EchoRequest()))
                return json_format.MessageToJson(reply, indent=None)
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        results = await asyncio.gather(*(call(item) for item in items))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    assert len(results) == len(items)
    print(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

items = open(sys.argv[2]).read().splitlines()
asyncio.run(main(sys.argv[1], items, int(sys.argv[3])))
'''


def run_python(stub_dir, target, items_file, concurrency):
    done = subprocess.run([sys.executable, "-c", PYTHON_PEER, target, items_file, str(concurrency)],
                          cwd=stub_dir, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"python peer failed: {done.stderr[-2000:]}")
    wall, cpu = map(float, done.stdout.split())
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    args = parser.parse_args()
    if not os.access(f"{BIN}/drover-echo", os.X_OK):
        sys.exit("build first: scripts/build")
    ensure_python_grpc()

    work = tempfile.mkdtemp(prefix="drover-io-bench-")
    subprocess.run(["protoc", f"-I{ROOT}/tools/echo", f"--python_out={work}", f"{ROOT}/tools/echo/echo.proto"],
                   check=True)
    items_file = os.path.join(work, "items.jsonl")
    with open(items_file, "w") as f:
        for i in range(args.calls):
            f.write(json.dumps({"message": f"m{i}", "latencyMs": args.latency_ms}) + "\n")
    echo_port = free_port()
    echo = subprocess.Popen([f"{BIN}/drover-echo", "--listen", f"127.0.0.1:{echo_port}"], stderr=subprocess.DEVNULL)
    wait_for_port(echo_port)
    target = f"127.0.0.1:{echo_port}"
    clusters = {1: Cluster(1), 2: Cluster(2)}
    try:
        print(f"{args.calls} calls, {args.latency_ms} ms server latency; wall time (ratio to ideal), "
              f"CPU per call; medians of {args.repeat}")
        print(f"{'concurrency':>11} {'runner':<20} {'in flight':>9} {'ideal':>7} {'wall':>7} {'/ideal':>7} "
              f"{'CPU us/call':>11} {'python/drover CPU':>17}")
        for concurrency in args.concurrency:
            rows = {}
            for _ in range(args.repeat):
                for workers, cluster in clusters.items():
                    rows.setdefault(f"drover, {workers} worker(s)", []).append(
                        (concurrency * workers, run_drover(cluster, target, items_file, concurrency)))
                rows.setdefault("python grpc.aio", []).append(
                    (concurrency, run_python(work, target, items_file, concurrency)))
            python_cpu = statistics.median(r[1][1] for r in rows["python grpc.aio"])
            for name, runs in rows.items():
                in_flight = runs[0][0]
                ideal = args.calls * args.latency_ms / 1000 / in_flight
                wall = statistics.median(r[1][0] for r in runs)
                cpu = statistics.median(r[1][1] for r in runs)
                ratio = "" if name.startswith("python") else f"{python_cpu / cpu:>16.1f}x"
                print(f"{concurrency:>11} {name:<20} {in_flight:>9} {ideal:>6.2f}s {wall:>6.2f}s {wall / ideal:>6.2f}x "
                      f"{cpu / args.calls * 1e6:>11.1f} {ratio:>17}")
        print("(drover: `drover run` wall time, whole job incl. submit; CPU = drover-worker processes. "
              f"python: gather() wall time and the process's CPU during it. {os.cpu_count()} cores, server on the same machine)")
    finally:
        for cluster in clusters.values():
            cluster.close()
        echo.terminate()
        echo.wait()


if __name__ == "__main__":
    main()
