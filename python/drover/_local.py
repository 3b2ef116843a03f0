"""A private drover cluster on this machine for Pool(local=N): a coordinator
and one worker with N slots, as `drover run --local` starts them, on sockets
in a private directory (0700) with a fresh token. Stopped with the pool."""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

from drover._client import DroverError


def find_program(name):
    """drover's program `name`: in $DROVER_BIN_DIR, else on PATH."""
    directory = os.environ.get("DROVER_BIN_DIR")
    if directory:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    path = shutil.which(name)
    if path is None:
        raise DroverError(f"{name} is not on PATH (install drover, or set DROVER_BIN_DIR to its programs' directory)")
    return path


class LocalCluster:
    def __init__(self, slots, start_timeout=30):
        if not isinstance(slots, int) or slots < 1:
            raise ValueError("local=N wants a number of slots, at least 1")
        self.dir = tempfile.mkdtemp(prefix="drover-python-")
        os.chmod(self.dir, 0o700)
        self.token = secrets.token_hex(16)
        token_file = os.path.join(self.dir, "token")
        with open(os.open(token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.token)
        self.address = f"unix:{self.dir}/client"
        self._processes = []
        try:
            ready_read, ready_write = os.pipe()
            with open(os.path.join(self.dir, "coordinator.log"), "w") as log:
                coordinator = subprocess.Popen(
                    [find_program("drover-coordinator"), "--listen-workers", f"ipc://{self.dir}/workers",
                     "--listen-clients", self.address, "--token-file", token_file, "--ready-fd", str(ready_write)],
                    stdout=log, stderr=log, pass_fds=[ready_write])
            self._processes.append(coordinator)
            os.close(ready_write)
            with os.fdopen(ready_read) as ready:
                line = ready.readline()
            fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
            if "workers" not in fields:
                raise DroverError(f"the local coordinator did not start: see {self.dir}/coordinator.log")
            # The workers' interpreter is this one: cloudpickle wants the same Python on both ends.
            argv = [find_program("drover-worker"), "--coordinator", fields["workers"], "--slots", str(slots),
                    "--name", "local-1", "--python", sys.executable]
            if os.geteuid() == 0:
                argv.append("--allow-root")  # whoever runs this as root already is
            with open(os.path.join(self.dir, "worker.log"), "w") as log:
                self._processes.append(subprocess.Popen(argv, stdout=log, stderr=log))
            self._wait_for_worker(start_timeout)
        except BaseException:
            self.stop(keep_logs=True)
            raise

    def _wait_for_worker(self, timeout):
        from drover._client import Client
        client = Client(self.address, token=self.token)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if client.workers():
                        return
                except DroverError:
                    pass
                if any(p.poll() is not None for p in self._processes):
                    break
                time.sleep(0.02)
            raise DroverError(f"the local worker did not join: see {self.dir}/worker.log")
        finally:
            client.close()

    def stop(self, keep_logs=False):
        # The coordinator tells its worker to exit, then stops: no waiting for
        # a drain. SIGTERM (then SIGKILL) for whatever is left.
        if self._processes and self._processes[0].poll() is None:
            from drover._client import Client
            client = Client(self.address, token=self.token)
            try:
                client.shutdown("the Python pool is done")
            except DroverError:
                pass
            finally:
                client.close()
            for process in self._processes:
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)
