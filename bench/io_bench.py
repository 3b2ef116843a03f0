"""I/O benchmark: N gRPC calls to drover-echo with a fixed server-side latency,
made by drover workers (1 and 2) and by Python's grpc.aio with asyncio.gather
in the same run, at several concurrencies. Prints wall time, its ratio to the
ideal (calls x latency / calls in flight), and CPU time per call: of the
drover workers, and of the Python process.

Both sides take the same JSON items and produce the same JSON results
(Python converts with google.protobuf.json_format, drover with protobuf's
C++ JSON mapping).

Two more tables (--only latency,rate,memory picks which):
- rate: `--rate R` over 2 workers for 10 s of calls, as the server saw it
  (drover-echo's Stats: first to last call start, and the most calls started
  in any 100 ms), beside a Python grpc.aio loop that paces its calls itself;
- memory: 256 calls answered with 15 MB each at concurrency 128 (2 workers):
  peak and after-job resident memory of the coordinator and each worker, beside
  the Python process doing the same calls.

usage: /usr/bin/python3 bench/io_bench.py [--calls 10000] [--latency-ms 20] [--repeat 3] [--only latency,rate,memory]
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


PYTHON_RATE_PEER = r'''
import asyncio, sys, time
import grpc
import echo_pb2

async def main(target, calls, rate):
    async with grpc.aio.insecure_channel(target) as channel:
        say = channel.unary_unary("/drover.echo.v1.Echo/Say",
                                  request_serializer=echo_pb2.EchoRequest.SerializeToString,
                                  response_deserializer=echo_pb2.EchoReply.FromString)
        start = time.monotonic()
        tasks = []
        for i in range(calls):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(say(echo_pb2.EchoRequest(message=f"p{i}", latency_ms=5))))
        await asyncio.gather(*tasks)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
'''

PYTHON_MEMORY_PEER = r'''
import asyncio, resource, sys
import grpc
from google.protobuf import json_format
import echo_pb2

async def main(target, calls, payload, concurrency):
    options = [("grpc.max_receive_message_length", 16 << 20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        say = channel.unary_unary("/drover.echo.v1.Echo/Say",
                                  request_serializer=echo_pb2.EchoRequest.SerializeToString,
                                  response_deserializer=echo_pb2.EchoReply.FromString)
        gate = asyncio.Semaphore(concurrency)
        out = open("/dev/null", "w")
        async def call(i):
            async with gate:
                reply = await say(echo_pb2.EchoRequest(message=f"m{i}", payload_bytes=payload))
                out.write(json_format.MessageToJson(reply, indent=None) + "\n")
        await asyncio.gather(*(call(i) for i in range(calls)))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
'''


def echo_stats(cluster, target):
    """drover-echo's Stats (through a one-call drover job), with `windowMs` 100."""
    done = subprocess.run(cluster.drover("run", "--grpc", target, "--method", "/drover.echo.v1.Echo/Stats",
                                         "--proto-set", f"{ROOT}/build/share/echo.pb", ":::", '{"windowMs":100}'),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def start_echo():
    port = free_port()
    echo = subprocess.Popen([f"{BIN}/drover-echo", "--listen", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    wait_for_port(port)
    return echo, f"127.0.0.1:{port}"


def server_rate(stats):
    span = (int(stats["lastCallUs"]) - int(stats["firstCallUs"])) / 1e6
    return (int(stats["calls"]) - 1) / span, stats.get("maxCallsInWindow", 0)


def rate_table(work, repeat):
    print("--rate over 10 s of calls (5 ms server latency), as the server saw it: calls/s from first to last call "
          f"start (error), most calls started in any 100 ms; medians of {repeat}")
    print(f"{'asked':>7} {'runner':<26} {'measured':>9} {'error':>7} {'max/100ms':>9}")
    for rate in (50, 200, 1000):
        calls = rate * 10
        items = os.path.join(work, f"rate{rate}.jsonl")
        with open(items, "w") as f:
            for i in range(calls):
                f.write(json.dumps({"message": f"r{i}", "latencyMs": 5}) + "\n")
        rows = {}
        for _ in range(repeat):
            echo, target = start_echo()
            with Cluster(2) as cluster:
                subprocess.run(cluster.drover("run", "--grpc", target, "--method", "/drover.echo.v1.Echo/Say",
                                              "--proto-set", f"{ROOT}/build/share/echo.pb", "--each-line", items,
                                              "--rate", str(rate)), stdout=subprocess.DEVNULL, check=True)
                rows.setdefault("drover, 2 workers", []).append(server_rate(echo_stats(cluster, target)))
                echo.terminate()
                echo.wait()
                echo, target = start_echo()
                subprocess.run([sys.executable, "-c", PYTHON_RATE_PEER, target, str(calls), str(rate)], cwd=work,
                               check=True)
                rows.setdefault("python grpc.aio, paced loop", []).append(server_rate(echo_stats(cluster, target)))
            echo.terminate()
            echo.wait()
        for name, runs in rows.items():
            measured = statistics.median(r[0] for r in runs)
            burst = statistics.median(r[1] for r in runs)
            print(f"{rate:>7} {name:<26} {measured:>9.1f} {(measured - rate) / rate * 100:>+6.1f}% {burst:>9.0f}")
    print(f"(ideal most-in-100-ms: rate/10; the server on the same machine, {os.cpu_count()} cores)")


def status_mb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) // 1024
    return 0


def memory_table(work, calls=256, payload=15_000_000, concurrency=128):
    print(f"Memory: {calls} calls answered with {payload / 1e6:.0f} MB each, concurrency {concurrency}, 2 workers; "
          "resident MB (peak = VmHWM)")
    items = os.path.join(work, "large.jsonl")
    with open(items, "w") as f:
        for i in range(calls):
            f.write(json.dumps({"message": f"m{i}", "payloadBytes": payload}) + "\n")
    echo, target = start_echo()
    try:
        log = os.path.join(work, "coordinator.log")
        with Cluster(2, coordinator_log=log) as cluster:
            start = time.perf_counter()
            subprocess.run(cluster.drover("run", "--grpc", target, "--method", "/drover.echo.v1.Echo/Say",
                                          "--proto-set", f"{ROOT}/build/share/echo.pb", "--each-line", items,
                                          "--concurrency", str(concurrency)), stdout=subprocess.DEVNULL, check=True)
            wall = time.perf_counter() - start
            time.sleep(2)  # a heartbeat or two: the workers give memory back once idle
            print(f"{'process':<28} {'peak':>7} {'after':>7}")
            for name, proc in [("coordinator", cluster.coordinator)] + \
                    [(f"worker {i + 1}", w) for i, w in enumerate(cluster.workers)]:
                print(f"{name:<28} {status_mb(proc.pid, 'VmHWM'):>7} {status_mb(proc.pid, 'VmRSS'):>7}")
        done = subprocess.run([sys.executable, "-c", PYTHON_MEMORY_PEER, target, str(calls), str(payload),
                               str(concurrency)], cwd=work, capture_output=True, text=True, check=True)
        print(f"{'python grpc.aio (1 process)':<28} {int(done.stdout):>7} {'-':>7}")
        slow = [line for line in open(log) if "a loop turn took" in line]
        print(f"(drover: `drover run` {wall:.0f} s, results to /dev/null; coordinator loop turns over 250 ms: "
              f"{len(slow)} logged{', e.g. ' + slow[-1].split('took ')[1].split(' (')[0] if slow else ''})")
    finally:
        echo.terminate()
        echo.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--only", default="latency,rate,memory")
    args = parser.parse_args()
    tables = set(args.only.split(","))
    if not os.access(f"{BIN}/drover-echo", os.X_OK):
        sys.exit("build first: scripts/build")
    ensure_python_grpc()

    work = tempfile.mkdtemp(prefix="drover-io-bench-")
    subprocess.run(["protoc", f"-I{ROOT}/tools/echo", f"--python_out={work}", f"{ROOT}/tools/echo/echo.proto"],
                   check=True)
    if "rate" in tables:
        rate_table(work, args.repeat)
    if "memory" in tables:
        memory_table(work)
    if "latency" not in tables:
        return
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
