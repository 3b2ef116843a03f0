"""A drover coordinator's client API from Python: submit jobs, stream their
results, list jobs and workers. The Pool (drover._pool) is built on this."""
import os

import grpc

from drover.v1 import common_pb2, service_pb2, service_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:7340"
# Results of one chunk can be large (a chunk returns up to 256 MiB). Not
# grpc.experimental's SingleThreadedUnaryStream (no thread per results stream):
# with grpcio 1.51 each stream left before its end (imap left early, a failed
# task) then stays in memory, ~18 kB each, until the channel closes.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 512 << 20),
                    ("grpc.max_send_message_length", 512 << 20)]


class DroverError(Exception):
    """The coordinator could not be reached, or refused a request (the message says why)."""


def default_token_path(address):
    """Where a coordinator on loopback keeps the token it made for its user
    (as drover's CLI looks for it): $XDG_STATE_HOME or ~/.local/state, then
    drover/tokens/HOST:PORT, with localhost written 127.0.0.1."""
    host, _, port = address.rpartition(":")
    if host == "localhost":
        host = "127.0.0.1"
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "drover", "tokens", f"{host}:{port}")


def _find_token(address, token, token_file):
    if token:
        return token
    if token_file:
        with open(token_file) as f:
            text = f.read().strip()
        if not text:
            raise DroverError(f"the token file {token_file} is empty")
        return text
    if os.environ.get("DROVER_TOKEN"):
        return os.environ["DROVER_TOKEN"]
    try:
        with open(default_token_path(address)) as f:
            return f.read().strip()
    except OSError:
        return ""


def _error(rpc_error, what):
    code = rpc_error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return DroverError(f"{what}: cannot reach the coordinator ({rpc_error.details()})")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return DroverError(f"{what}: the coordinator refused the token ({rpc_error.details()}); give token= or "
                           "token_file=, or set DROVER_TOKEN")
    return DroverError(f"{what}: {rpc_error.details()}")


class Client:
    """A connection to a coordinator's client address ("HOST[:PORT]", port
    7340 by default, or "unix:PATH"). The token is `token`, else the file `token_file`, else
    $DROVER_TOKEN, else the one a coordinator on this machine keeps for its
    user. Thread-safe, as gRPC's channels are."""

    def __init__(self, address=DEFAULT_ADDRESS, *, token=None, token_file=None):
        if not address.startswith("unix:") and ":" not in address:
            address = f"{address}:7340"  # the coordinator's default client port, as drover's CLI has it
        self.address = address
        self._token = _find_token(address, token, token_file)
        self._metadata = [("authorization", f"Bearer {self._token}")] if self._token else []
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = service_pb2_grpc.DroverStub(self._channel)

    def close(self):
        self._channel.close()

    def submit(self, spec):
        """Submits a service_pb2.JobSpec; returns the job's id."""
        try:
            return self._stub.Submit(service_pb2.SubmitRequest(spec=spec), metadata=self._metadata).job_id
        except grpc.RpcError as e:
            raise _error(e, "submit") from None

    def results(self, job_id, ordered=True):
        """The job's results as they come: ChunkOutputs messages, in input
        order when `ordered`. Raises DroverError if the job is cancelled or
        the coordinator goes away before the last one."""
        call = self._stub.StreamResults(service_pb2.ResultsRequest(job_id=job_id, ordered=ordered),
                                        metadata=self._metadata)
        try:
            for batch in call:
                yield from batch.chunks
        except grpc.RpcError as e:
            raise _error(e, f"job {job_id}'s results") from None
        finally:
            call.cancel()

    def cancel(self, job_id):
        try:
            return self._stub.Cancel(service_pb2.JobRef(job_id=job_id), metadata=self._metadata)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION:  # already finished
                return None
            raise _error(e, f"cancel job {job_id}") from None

    def job(self, job_id):
        """The job's JobStatus."""
        try:
            return self._stub.GetJob(service_pb2.JobRef(job_id=job_id), metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e, f"job {job_id}") from None

    def jobs(self):
        """Every job the coordinator knows: JobStatus messages."""
        try:
            return list(self._stub.ListJobs(service_pb2.ListJobsRequest(), metadata=self._metadata).jobs)
        except grpc.RpcError as e:
            raise _error(e, "jobs") from None

    def workers(self):
        """The registered workers: WorkerInfo messages."""
        try:
            return list(self._stub.ListWorkers(service_pb2.ListWorkersRequest(), metadata=self._metadata).workers)
        except grpc.RpcError as e:
            raise _error(e, "workers") from None

    def shutdown(self, reason="drover Python package"):
        """Stops the coordinator and its workers."""
        try:
            self._stub.Shutdown(service_pb2.ShutdownRequest(reason=reason), metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e, "shutdown") from None

    def run(self, items, *, command=None, kernel=None, chunksize=0, retries=0):
        """Runs a command (a list: the program and its arguments, with {} for
        the item as `drover run` has it) or a kernel over `items` (str or
        bytes); yields (output bytes, error or None) per item, in order."""
        if (command is None) == (kernel is None):
            raise ValueError("give one of command= or kernel=")
        spec = service_pb2.JobSpec(chunk_size=chunksize, retries=retries, stream_results=True)
        spec.items.inline.items.extend(i.encode() if isinstance(i, str) else bytes(i) for i in items)
        if command is not None:
            spec.command.argv.extend(command)
            spec.command.cwd = os.getcwd()
        else:
            spec.kernel = kernel
        job_id = self.submit(spec)
        for chunk in self.results(job_id):
            yield from split_outputs(chunk)


def split_outputs(chunk):
    """A ChunkOutputs' items: (output bytes, error message or None), in order."""
    errors = {e.offset: e.message for e in chunk.errors}
    data = chunk.outputs
    sizes = chunk.output_sizes or [0] * chunk.item_count
    at = 0
    for offset, size in enumerate(sizes):
        yield data[at:at + size], errors.get(offset)
        at += size


__all__ = ["Client", "DroverError", "DEFAULT_ADDRESS", "default_token_path", "split_outputs", "common_pb2"]
