"""drover.Pool against a real local cluster (drover-coordinator and
drover-worker processes from DROVER_BIN_DIR): every Pool method, exceptions
with their remote tracebacks, interpreters that crash, arguments that cannot
be pickled, a streamed generator, cancel by leaving the iterator, and Python
calls beside a kernel job. Run by ctest (Python.Pool) with pytest."""
import itertools
import os
import signal
import threading
import time

import pytest

from drover import Client, Pool, RemoteTraceback, TaskError
from drover._client import split_outputs


def square(x):
    return x * x


def fails_on_zero(x):
    if x == 0:
        raise ValueError(f"no zero here (got {x})")
    return 10 // x


def crash(how):
    if how == "exit":
        os._exit(3)
    if how == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    return how


def slow(x):
    time.sleep(0.3)
    return x


@pytest.fixture(scope="module")
def pool():
    with Pool(local=2) as pool:
        yield pool


def test_map_starmap_imap_and_apply_as_multiprocessing_has_them(pool):
    assert pool.map(square, range(100)) == [x * x for x in range(100)]
    assert pool.map(square, range(100), chunksize=1) == [x * x for x in range(100)]
    assert pool.starmap(pow, [(2, 3), (3, 2), (10, 0)]) == [8, 9, 1]
    assert list(pool.imap(square, range(10))) == [x * x for x in range(10)]
    assert sorted(pool.imap_unordered(square, range(10))) == [x * x for x in range(10)]
    assert pool.apply(divmod, (17, 5)) == (3, 2)
    assert pool.apply_async(sorted, ([3, 1, 2],), {"reverse": True}).get(timeout=30) == [3, 2, 1]
    # A closure and a lambda travel too (cloudpickle), with what they capture.
    offset = 7
    assert pool.map(lambda x: x + offset, [1, 2]) == [8, 9]


def test_async_results_and_their_callbacks(pool):
    got = []
    result = pool.map_async(square, range(5), callback=got.append)
    assert result.get(timeout=30) == [0, 1, 4, 9, 16]
    assert result.ready() and result.successful()
    assert got == [[0, 1, 4, 9, 16]]
    errors = []
    failing = pool.starmap_async(divmod, [(1, 0)], error_callback=errors.append)
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=30)
    assert not failing.successful()
    assert isinstance(errors[0], ZeroDivisionError)


def test_an_exception_comes_back_as_itself_with_the_remote_traceback(pool):
    with pytest.raises(ValueError, match="no zero here") as raised:
        pool.map(fails_on_zero, [1, 2, 0, 5])
    cause = raised.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fails_on_zero" in str(cause) and "raise ValueError" in str(cause)


@pytest.mark.parametrize("how,reason", [("exit", "exited with status 3"), ("segfault", "killed by signal 11")])
def test_an_interpreter_that_dies_fails_its_task_and_a_fresh_one_takes_the_next(pool, how, reason):
    with pytest.raises(TaskError, match=reason):
        pool.apply(crash, (how,))
    assert pool.map(square, range(20)) == [x * x for x in range(20)]
    assert len(pool.workers()) == 1  # the worker never went down


def test_an_argument_that_cannot_be_pickled_is_refused_before_submitting(pool):
    jobs_before = len(pool.jobs())
    with pytest.raises(TypeError, match="cannot be pickled"):
        pool.map(square, [1, threading.Lock()])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pool.apply(square, (threading.Lock(),))
    assert len(pool.jobs()) == jobs_before


def test_imap_reads_a_generator_as_it_goes(pool):
    taken = itertools.count()  # endless: it cannot be read whole
    seen = []
    for value in pool.imap(square, (next(taken) for _ in itertools.count())):
        seen.append(value)
        if len(seen) == 5:
            break
    assert seen == [0, 1, 4, 9, 16]
    assert next(taken) < 100_000  # two batches at most were read


def test_leaving_the_iterator_cancels_what_is_left(pool):
    results = pool.imap(slow, range(200))
    assert next(results) == 0
    results.close()
    job = max(pool.jobs(), key=lambda j: j.job_id)
    deadline = time.monotonic() + 30
    while job.state not in (5,) and time.monotonic() < deadline:  # JOB_STATE_CANCELLED
        time.sleep(0.05)
        job = pool.client.job(job.job_id)
    assert job.state == 5, job
    assert job.done_items < 200


def _rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_streams_left_early_leave_nothing_behind_in_the_client(pool):
    # (grpc's SingleThreadedUnaryStream kept ~18 kB per abandoned stream.)
    def leave_early(times):
        for _ in range(times):
            results = pool.imap(square, range(100))
            assert next(results) == 0
            results.close()

    leave_early(50)  # what the first ones allocate for good
    before = _rss_kib()
    leave_early(300)
    assert _rss_kib() - before < 2048, "the client grew by more than 2 MiB over 300 streams left early"


def test_a_python_call_and_a_kernel_job_run_side_by_side(pool):
    python = pool.apply_async(slow, ("python",))
    kernel = pool.run([f"0:{n}" for n in range(1000, 1010)], kernel="count_primes")
    assert len(kernel) == 10 and all(kernel)
    assert python.get(timeout=30) == "python"
    assert pool.run(["a", "b"], command=["echo", "item={}"]) == [b"item=a\n", b"item=b\n"]
    with pytest.raises(TaskError, match="exit status 1"):
        pool.run(["x"], command=["false"])


def test_a_client_elsewhere_with_the_token_sees_the_same_cluster(pool):
    cluster = pool._cluster
    other = Pool(cluster.address, token=cluster.token)
    try:
        assert other.map(square, [3]) == [9]
        assert [w.worker_id for w in other.workers()] == ["local-1"]
    finally:
        other.close()
    wrong = Client(cluster.address, token="not-the-token")
    with pytest.raises(Exception, match="refused the token"):
        wrong.jobs()
    wrong.close()


def test_close_join_and_terminate():
    pool = Pool(local=1)
    result = pool.map_async(square, range(3))
    pool.close()
    with pytest.raises(ValueError, match="closed"):
        pool.apply_async(square, (1,))
    pool.join()
    assert result.get(timeout=1) == [0, 1, 4]
    pool.terminate()


def test_python_jobs_go_only_to_workers_that_offer_python(tmp_path):
    """A worker started with --python none never gets a Python job; with no
    worker offering Python connected, a Python job is refused at submit."""
    import subprocess
    import sys

    import cloudpickle

    from drover import DroverError
    from drover._local import find_program
    from drover.v1 import common_pb2, service_pb2

    os.chmod(tmp_path, 0o700)
    token = "test-token"
    (tmp_path / "token").write_text(token)
    address = f"unix:{tmp_path}/client"
    ready_read, ready_write = os.pipe()
    coordinator = subprocess.Popen(
        [find_program("drover-coordinator"), "--listen-workers", f"ipc://{tmp_path}/workers", "--listen-clients",
         address, "--token-file", str(tmp_path / "token"), "--ready-fd", str(ready_write)],
        pass_fds=[ready_write], stderr=subprocess.DEVNULL)
    os.close(ready_write)
    with os.fdopen(ready_read) as ready:
        workers_endpoint = dict(f.split("=", 1) for f in ready.readline().split())["workers"]
    root = ["--allow-root"] if os.geteuid() == 0 else []

    def worker(name, python):
        return subprocess.Popen([find_program("drover-worker"), "--coordinator", workers_endpoint, "--slots", "1",
                                 "--name", name, "--python", python] + root, stderr=subprocess.DEVNULL)

    def wait_for(count):
        deadline = time.monotonic() + 30
        while len(client.workers()) < count:
            assert time.monotonic() < deadline, "workers did not join"
            time.sleep(0.02)

    def spec(items):
        job = service_pb2.JobSpec(python=common_pb2.PythonSpec(function=cloudpickle.dumps(square)),
                                  stream_results=True)
        job.items.inline.items.extend(cloudpickle.dumps(({}, False, [x])) for x in items)
        return job

    processes = [coordinator, worker("no-python", "none")]
    client = Client(address, token=token)
    try:
        wait_for(1)
        with pytest.raises(DroverError, match="no connected worker runs Python calls"):
            client.submit(spec([1]))
        processes.append(worker("python", sys.executable))
        wait_for(2)
        job_id = client.submit(spec(range(50)))
        chunks = list(client.results(job_id))
        assert {chunk.worker for chunk in chunks} == {"python"}
        values = [v for chunk in chunks for output, _ in split_outputs(chunk) for v in cloudpickle.loads(output)]
        assert values == [x * x for x in range(50)]
    finally:
        client.close()
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
