"""drover from Python.

    from drover import Pool

    def cpu_bound(n):
        return sum(i * i for i in range(n))

    with Pool("coordinator:7340") as pool:   # or Pool(local=4): a private local cluster
        print(pool.map(cpu_bound, [10**7] * 4))

Pool mirrors multiprocessing.Pool (map, imap, imap_unordered, starmap,
apply_async, map_async, close, join, terminate); the calls run in Python
interpreters on the cluster's workers. Client speaks the coordinator's API
(jobs, workers, commands and kernels). See docs/PYTHON.md.
"""
from drover._client import Client, DroverError
from drover._pool import AsyncResult, Pool, RemoteTraceback, TaskError

__all__ = ["AsyncResult", "Client", "DroverError", "Pool", "RemoteTraceback", "TaskError"]
