"""drover.Pool: multiprocessing.Pool's interface, with the calls run by a
drover cluster's workers (each slot keeps a Python interpreter; functions and
arguments travel pickled by cloudpickle)."""
import itertools
import os
import pickle
import site
import sys
import sysconfig
import threading

import cloudpickle

from drover._client import Client, DroverError, split_outputs
from drover._local import LocalCluster
from drover.v1 import common_pb2, service_pb2

# Items (tasks) per job: a long or endless input goes as a series of jobs,
# the next submitted while the results of the one before are read, so it is
# never held whole in memory.
BATCH_ITEMS = 10_000
BATCH_BYTES = 32 << 20


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a task on a worker: the
    __cause__ of the exception re-raised here."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return self.text


class TaskError(Exception):
    """A task failed without a Python exception to show for it (its
    interpreter died, it timed out, or the worker could not run it)."""


_BY_VALUE = set()  # names of the modules cloudpickle sends by value


def _installed_roots():
    roots = set(sysconfig.get_paths().values()) | set(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots if r)


def _pickle_module_by_value(func):
    """A function from the user's own module (a file outside the installed
    packages: a script's neighbour, a test) travels with its module's code,
    as one from __main__ does: the workers need not have the file."""
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    if module is None or path is None or module.__name__ in ("__main__", "drover"):
        return
    if module.__name__.startswith("drover."):
        return
    if not os.path.realpath(path).startswith(_installed_roots()):
        cloudpickle.register_pickle_by_value(module)
        _BY_VALUE.add(module.__name__)


def _dumps(value):
    """`value` pickled for the workers: by pickle (fast) when that pickle names
    nothing the workers may lack (__main__, a module that travels by value),
    else by cloudpickle."""
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if b"__main__" not in data and not any(name.encode() in data for name in _BY_VALUE):
            return data
    except Exception:
        pass
    try:
        return cloudpickle.dumps(value)
    except Exception as error:
        raise TypeError(f"an argument cannot be pickled for the workers: {error}") from error


def _raise_failure(output, message):
    if output:
        try:
            error = cloudpickle.loads(output)
        except Exception:  # e.g. the exception's class is not importable here
            error = TaskError(message)
        if isinstance(error, BaseException):
            error.__cause__ = RemoteTraceback(message)
            raise error
    raise TaskError(message)


def _each_result(tasks):
    """The results of the tasks, one at a time; closing it closes `tasks`
    (which cancels the jobs still running)."""
    try:
        for task_results in tasks:
            yield from task_results
    finally:
        tasks.close()


class AsyncResult:
    """What apply_async and map_async return, as multiprocessing's."""

    def __init__(self, run, callback=None, error_callback=None, single=False):
        self._done = threading.Event()
        self._value = None
        self._error = None

        def target():
            try:
                values = list(run())
                self._value = values[0] if single else values
                if callback is not None:
                    callback(self._value)
            except BaseException as error:  # handed to get()
                self._error = error
                if error_callback is not None:
                    error_callback(error)
            finally:
                self._done.set()

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def ready(self):
        return self._done.is_set()

    def successful(self):
        if not self.ready():
            raise ValueError("the result is not ready")
        return self._error is None

    def wait(self, timeout=None):
        self._done.wait(timeout)

    def get(self, timeout=None):
        if not self._done.wait(timeout):
            raise TimeoutError("the result is not ready")
        if self._error is not None:
            raise self._error
        return self._value


class Pool:
    """Runs calls on a drover cluster as multiprocessing.Pool runs them on
    local processes.

        with Pool("coordinator:7340") as pool:   # or Pool(local=4)
            print(pool.map(cpu_bound, [10**7] * 4))

    `address`: a coordinator's client address; `local=N`: a private cluster
    on this machine with N slots (one worker), gone when the pool is. Tokens
    as Client takes them. Exceptions raised in a task come back as the same
    exception type, with the remote traceback as their __cause__. A task
    whose interpreter dies raises TaskError.
    """

    def __init__(self, address=None, *, local=None, token=None, token_file=None, retries=0, timeout=None):
        if local is not None and address is not None:
            raise ValueError("give an address or local=N, not both")
        self._cluster = None
        if address is None and local is None:
            raise ValueError("give the coordinator's address, or local=N for a private cluster of N slots")
        if local is not None:
            self._cluster = LocalCluster(slots=local)
            address, token, token_file = self._cluster.address, self._cluster.token, None
        self._client = Client(address, token=token, token_file=token_file)
        self._retries = retries
        self._timeout_ms = int(timeout * 1000) if timeout else 0
        self._python_slots = None
        self._lock = threading.Lock()
        self._running_jobs = set()
        self._results = []
        self._closed = False
        self._terminated = False

    # -- multiprocessing.Pool's interface --

    def map(self, func, iterable, chunksize=None, *, progress=None):
        """[func(x) for x in iterable], run on the cluster; raises the first
        failure. `chunksize`: calls sent as one task (default: as
        multiprocessing.Pool, four tasks per slot); drover sizes the chunks of
        tasks itself. `progress(done)` is called as results come."""
        values = iterable if hasattr(iterable, "__len__") else list(iterable)  # as multiprocessing: no copy
        return self._run(func, values, chunksize, ordered=True, progress=progress, as_list=True)

    def starmap(self, func, iterable, chunksize=None, *, progress=None):
        """[func(*args) for args in iterable]."""
        return self._run(func, [tuple(a) for a in iterable], chunksize, ordered=True, progress=progress,
                         star=True, as_list=True)

    def imap(self, func, iterable, chunksize=None):
        """func(x) for each x, in order, as they come; the input is read as
        the calls go, never whole. Leaving the loop cancels what is left."""
        return self._run(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func, iterable, chunksize=None):
        """As imap, in the order the calls finish."""
        return self._run(func, iterable, chunksize, ordered=False)

    def apply(self, func, args=(), kwds=None):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds=None, callback=None, error_callback=None):
        self._check_open()
        kwargs = dict(kwds or {})
        run = lambda: self._run(func, [tuple(args)], None, ordered=True, kwargs=kwargs, star=True)  # noqa: E731
        return self._track(AsyncResult(run, callback, error_callback, single=True))

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        self._check_open()
        items = list(iterable)
        return self._track(AsyncResult(lambda: self._run(func, items, chunksize, ordered=True), callback,
                                       error_callback))

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        self._check_open()
        items = [tuple(args) for args in iterable]
        return self._track(AsyncResult(lambda: self._run(func, items, chunksize, ordered=True, star=True),
                                       callback, error_callback))

    def close(self):
        """No more tasks may be given; join() then waits for those given."""
        self._closed = True

    def join(self):
        if not self._closed and not self._terminated:
            raise ValueError("close() or terminate() the pool before join()")
        for result in list(self._results):
            result.wait()
        if self._cluster is not None:
            self._stop_cluster()

    def terminate(self):
        """Cancels every job still running and, for local=N, stops the cluster."""
        self._closed = self._terminated = True
        with self._lock:
            jobs = list(self._running_jobs)
        for job_id in jobs:
            try:
                self._client.cancel(job_id)
            except DroverError:
                pass
        self._stop_cluster()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.terminate()

    # -- drover's own --

    @property
    def client(self):
        """The Client behind the pool (jobs(), workers(), run(), cancel())."""
        return self._client

    def run(self, items, *, command=None, kernel=None, chunksize=0, retries=0):
        """Runs a command (["sha256sum", "{}"]) or a kernel over `items`;
        returns their outputs (bytes), in order; raises TaskError for the
        first failed one."""
        outputs = []
        for output, error in self._client.run(items, command=command, kernel=kernel, chunksize=chunksize,
                                              retries=retries):
            if error is not None:
                raise TaskError(error)
            outputs.append(output)
        return outputs

    def jobs(self):
        return self._client.jobs()

    def workers(self):
        return self._client.workers()

    # -- internals --

    def _check_open(self):
        if self._closed:
            raise ValueError("the pool is closed")

    def _track(self, result):
        self._results.append(result)
        return result

    def _stop_cluster(self):
        if self._cluster is not None:
            self._client.close()
            self._cluster.stop()
            self._cluster = None

    def _spec(self, function, items):
        spec = service_pb2.JobSpec(python=common_pb2.PythonSpec(function=function), stream_results=True,
                                   retries=self._retries, kernel_timeout_ms=self._timeout_ms)
        spec.items.inline.items.extend(items)
        return spec

    def _slots(self):
        """Slots of the workers that run Python calls (at least 1)."""
        if self._python_slots is None:
            self._python_slots = max(1, sum(w.slots for w in self._client.workers()))
        return self._python_slots

    def _group_size(self, iterable, chunksize):
        """Calls per item: `chunksize`, else as multiprocessing.Pool picks it
        (four items per slot for an input with a length; 1 without one)."""
        if chunksize is not None:
            if chunksize < 1:
                raise ValueError("chunksize must be at least 1")
            return chunksize
        try:
            count = len(iterable)
        except TypeError:
            return 1
        return max(1, -(-count // (4 * self._slots())))

    def _batches(self, values, kwargs, star, group):
        """Items of `group` calls each (a pickled (kwargs, star, [value, ...]):
        func(value) each, or func(*value) when `star`), in lists of at most
        BATCH_ITEMS items and about BATCH_BYTES; an argument that cannot be
        pickled raises here, before its batch is submitted."""
        iterator = iter(values)
        while True:
            batch, size = [], 0
            while len(batch) < BATCH_ITEMS and size < BATCH_BYTES:
                calls = list(itertools.islice(iterator, group))
                if not calls:
                    break
                item = _dumps((kwargs, star, calls))
                batch.append(item)
                size += len(item)
            if not batch:
                return
            yield batch

    def _run(self, func, values, chunksize, ordered, kwargs=None, progress=None, star=False, as_list=False):
        """func's results: an iterator, or a list when `as_list` (made a task's
        results at a time, not a call's)."""
        tasks = self._run_tasks(func, values, chunksize, ordered, kwargs, progress, star)
        if as_list:
            results = []
            for task_results in tasks:
                results.extend(task_results)
            return results
        return _each_result(tasks)

    def _run_tasks(self, func, values, chunksize, ordered, kwargs, progress, star):
        """Yields the list of func's results of each task; each batch of the
        input is a job, the next submitted before the results of the one
        before are read."""
        self._check_open()
        _pickle_module_by_value(func)
        try:
            function = cloudpickle.dumps(func)
        except Exception as error:
            raise TypeError(f"the function cannot be pickled for the workers: {error}") from error
        done = 0
        pending = []  # submitted job ids, oldest first
        batches = self._batches(values, kwargs or {}, star, self._group_size(values, chunksize))
        try:
            for batch in itertools.chain(batches, [None]):
                if batch is not None:
                    job_id = self._client.submit(self._spec(function, batch))
                    with self._lock:
                        self._running_jobs.add(job_id)
                    pending.append(job_id)
                    if len(pending) < 2:
                        continue  # one job ahead of the one being read
                while pending and (batch is None or len(pending) >= 2):
                    job_id = pending[0]
                    for chunk in self._client.results(job_id, ordered=ordered):
                        for output, error in split_outputs(chunk):
                            if error is not None:
                                _raise_failure(output, error)
                            values = cloudpickle.loads(output)
                            yield values
                            done += len(values)
                            if progress is not None:
                                progress(done)
                    pending.pop(0)
                    with self._lock:
                        self._running_jobs.discard(job_id)
        finally:  # an error, or the caller left the loop: what is left is cancelled
            for job_id in pending:
                try:
                    self._client.cancel(job_id)
                except DroverError:
                    pass
                with self._lock:
                    self._running_jobs.discard(job_id)
