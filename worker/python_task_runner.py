# The interpreter side of a worker's Python calls (compiled into drover-worker,
# run as `python3 -c`; see worker/python_interpreter.h). Frames, both ways:
# a kind byte, a 4-byte little-endian length, the payload.
#   worker -> here, on fd 0:  F <the function, cloudpickled>
#                             B <u32 count>{<u32 n><n bytes: an item>}: items, answered in order
#   an item: a pickled (kwargs, star, [value, ...]): calls function(value, **kwargs), or with star
#   function(*value, **kwargs), made in turn (the first to raise fails the item)
#   here -> worker, on fd 3:  R <the list of return values, pickled>
#                             E <u32 n><n bytes: "Type: message\n" + traceback><the exception, cloudpickled>
# The process ends when fd 0 closes (the worker stopped). The user's prints go
# to the worker's stderr; stdin reads /dev/null.
import os
import pickle
import struct
import sys
import traceback

import cloudpickle

requests = os.fdopen(os.dup(0), "rb", buffering=1 << 16)  # a frame in one read, mostly
replies = os.dup(3)
os.close(3)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
sys.stdout = sys.stderr


def read_exact(count):
    data = requests.read(count)  # all of it, unless the stream ends
    if len(data) < count:
        sys.exit(0)  # the worker is gone
    return data


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


def call(arguments):
    if function_error is not None:
        send(b"E", function_error)
        return
    try:
        kwargs, star, calls = pickle.loads(arguments)
        if star:
            value = [function(*args, **kwargs) for args in calls]
        elif kwargs:
            value = [function(arg, **kwargs) for arg in calls]
        else:
            value = list(map(function, calls))
    except BaseException as error:  # SystemExit and KeyboardInterrupt too: the task failed
        send(b"E", failure(error))
        return
    try:
        result = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a lambda, a local class...: cloudpickle takes them (more slowly)
        try:
            result = cloudpickle.dumps(value)
        except BaseException as error:
            send(b"E", failure(error))
            return
    send(b"R", result)


while True:
    kind = read_exact(1)
    (length,) = struct.unpack("<I", read_exact(4))
    payload = read_exact(length)
    if kind == b"F":
        try:
            function, function_error = cloudpickle.loads(payload), None
        except BaseException as error:  # said with each call
            function, function_error = None, failure(error)
    elif kind == b"B":
        (count,) = struct.unpack_from("<I", payload, 0)
        at = 4
        for _ in range(count):
            (size,) = struct.unpack_from("<I", payload, at)
            call(payload[at + 4:at + 4 + size])
            at += 4 + size
