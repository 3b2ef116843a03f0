# The interpreter side of a worker's Python calls (compiled into drover-worker,
# run as `python3 -c`; see worker/python_interpreter.h). Frames, both ways:
# a kind byte, a 4-byte little-endian length, the payload.
#   worker -> here, on fd 0:  F <the function, cloudpickled> | C <(args, kwargs), pickled>
#   here -> worker, on fd 3:  R <the return value, cloudpickled>
#                             E <u32 n><n bytes: "Type: message\n" + traceback><the exception, cloudpickled>
# The process ends when fd 0 closes (the worker stopped). The user's prints go
# to the worker's stderr; stdin reads /dev/null.
import os
import struct
import sys
import traceback

import cloudpickle

requests = os.dup(0)
replies = os.dup(3)
os.close(3)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
sys.stdout = sys.stderr


def read_exact(count):
    chunks = []
    while count:
        data = os.read(requests, min(count, 1 << 20))
        if not data:
            sys.exit(0)  # the worker is gone
        chunks.append(data)
        count -= len(data)
    return b"".join(chunks)


def send(kind, payload):
    data = kind + struct.pack("<I", len(payload)) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(replies, view):]


def failure(error):
    # The traceback from the user's code down (this loop's own frame left out).
    frames = error.__traceback__.tb_next if error.__traceback__ is not None else None
    text = "".join(traceback.format_exception(type(error), error, frames))
    try:
        pickled = cloudpickle.dumps(error)
    except Exception:  # an exception that cannot be pickled comes back as its text
        pickled = cloudpickle.dumps(RuntimeError(text))
    message = text.encode("utf-8", "replace")
    return struct.pack("<I", len(message)) + message + pickled


function = None
function_error = None
while True:
    kind = read_exact(1)
    (length,) = struct.unpack("<I", read_exact(4))
    payload = read_exact(length)
    if kind == b"F":
        try:
            function, function_error = cloudpickle.loads(payload), None
        except BaseException as error:  # say it with each call
            function, function_error = None, failure(error)
        continue
    if function_error is not None:
        send(b"E", function_error)
        continue
    try:
        args, kwargs = cloudpickle.loads(payload)
        result = cloudpickle.dumps(function(*args, **kwargs))
    except BaseException as error:  # SystemExit and KeyboardInterrupt too: the task failed
        send(b"E", failure(error))
        continue
    send(b"R", result)
