#!/usr/bin/env python3
"""Integration: a real Prometheus server scrapes the coordinator's --metrics.

Starts drover-coordinator (with a client token and --metrics), one
drover-worker, and Debian's `prometheus` with a scrape config that gives the
token as the HTTP Basic password. Checks that a scrape without the token is
refused, that Prometheus sees the target up, and, through Prometheus' HTTP API,
that the tasks-done counter rises from 0 to the job's size while a job runs,
with the worker's slots beside it. Exit 77 (skipped) when prometheus is not
installed (scripts/install-deps installs it).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BIN = os.environ.get("DROVER_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
PROMETHEUS = shutil.which("prometheus")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, condition, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def get(url, password=None):
    request = urllib.request.Request(url)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"scraper:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (urllib.error.URLError, ConnectionError):
        return None, ""


def main():
    if PROMETHEUS is None:
        print("SKIP: prometheus is not installed (scripts/install-deps)")
        return 77
    work = tempfile.mkdtemp(prefix="drover-metrics-test-")
    processes = []
    try:
        token_file = os.path.join(work, "token")
        with open(token_file, "w") as f:
            f.write("metrics-test-token-0123456789")
        os.chmod(token_file, 0o600)
        client_port, metrics_port, prometheus_port = free_port(), free_port(), free_port()
        coordinator_log = open(os.path.join(work, "coordinator.log"), "w")
        processes.append(subprocess.Popen(
            [f"{BIN}/drover-coordinator", "--listen-workers", "tcp://127.0.0.1:0",
             "--listen-clients", f"127.0.0.1:{client_port}", "--token-file", token_file,
             "--metrics", f"127.0.0.1:{metrics_port}", "--ready-fd", "1"],
            stdout=subprocess.PIPE, stderr=coordinator_log, text=True))
        ready = processes[0].stdout.readline()
        assert ready.startswith("workers="), f"coordinator did not start: {open(coordinator_log.name).read()}"
        worker_endpoint = ready.split()[0].split("=", 1)[1]
        root = ["--allow-root"] if os.geteuid() == 0 else []
        processes.append(subprocess.Popen([f"{BIN}/drover-worker", "--coordinator", worker_endpoint,
                                           "--slots", "2", "--name", "metrics-test-worker", *root],
                                          stderr=subprocess.DEVNULL))
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        status, _ = get(metrics_url)
        assert status == 401, f"a scrape without the token was answered {status}, not 401"
        status, _ = get(metrics_url, "wrong-token")
        assert status == 401, f"a scrape with a wrong token was answered {status}, not 401"
        status, text = get(metrics_url, "metrics-test-token-0123456789")
        assert status == 200 and "drover_tasks_done_total 0" in text, f"{status}: {text[:500]}"

        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: drover
    basic_auth:
      username: scraper
      password_file: {token_file}
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
        processes.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={work}/prometheus.yml", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stderr=open(os.path.join(work, "prometheus.log"), "w")))
        api = f"http://127.0.0.1:{prometheus_port}/api/v1/query?query="

        def query(expression):
            status, text = get(api + urllib.parse.quote(expression))
            if status != 200:
                return None
            result = json.loads(text)["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        wait_for("prometheus to scrape the coordinator", lambda: query('up{job="drover"}') == 1)
        wait_for("the worker in the metrics", lambda: query('drover_worker_slots{name="metrics-test-worker"}') == 2)
        wait_for("a first tasks-done sample", lambda: query("drover_tasks_done_total") is not None)
        assert query("drover_tasks_done_total") == 0, "tasks done before any job"

        # 40 tasks of 250 ms on 2 slots: about 5 s, so scrapes each second see the counter on its way.
        drover = [f"{BIN}/drover", "--coordinator", f"127.0.0.1:{client_port}", "--token-file", token_file]
        submitted = subprocess.run(drover + ["submit", "--kernel", "sleep_ms", "--chunk", "1"] + ["250"] * 40,
                                   capture_output=True, text=True)
        assert submitted.returncode == 0, submitted.stderr
        job = submitted.stdout.split()[0]
        seen = set()

        def reached_40():
            value = query("drover_tasks_done_total")
            seen.add(value)
            return value == 40

        wait_for("the tasks-done counter to reach 40", reached_40)
        assert any(v is not None and 0 < v < 40 for v in seen), f"no sample on the way up: {seen}"
        assert subprocess.run(drover + ["wait", "--quiet", job]).returncode == 0
        wait_for("the succeeded job in the metrics", lambda: query('drover_jobs{state="succeeded"}') == 1)
        assert query("drover_tasks_failed_total") == 0
        assert query("drover_chunk_run_seconds_count") == 40, query("drover_chunk_run_seconds_count")
        seen.discard(None)
        print(f"PASS (tasks done seen rising through {sorted(seen)})")
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
