"""The article's multiprocessing example on drover: sum(i*i for i in range(10**7))
four times, on a private local cluster of four slots (give a coordinator's
address instead of local=4 to run it on a cluster).

    build/venv/bin/python examples/python_pool.py
"""
import os

from drover import Pool

# A build tree's programs, when run from the repository without an installed drover.
os.environ.setdefault("DROVER_BIN_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "bin"))


def cpu_bound(n):
    return sum(i * i for i in range(n))


if __name__ == "__main__":
    with Pool(local=4) as pool:
        print(pool.map(cpu_bound, [10**7] * 4))
