"""Handlers the Python SDK's tests (tests/sdk/test_python_sdk.c) run through
sdk/python/ember_fn.py."""

import os
import sys

INIT_PID = os.getpid()  # import = init: runs once per instance
CALLS = 0


class NotFound(Exception):
    pass


def echo(event, context):
    return event


def text(event, context):
    return "h\u00e9llo " + event.decode()


def as_dict(event, context):
    return {"n": 1, "list": [1, "two", None, True], "body": event.decode()}


def none(event, context):
    return None


def context(event, context):
    return {
        "type": type(event).__name__,
        "request_id": context.request_id,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "deadline_ms": context.deadline_ms,
        "deadline": context.deadline,
        "invoke_id": context.invoke_id,
        "remaining": context.get_remaining_time_in_millis(),
    }


def fail(event, context):
    raise NotFound("no such key: " + event.decode())


def keyerror(event, context):
    return {}["k"]


def log(event, context):
    print(event.decode())
    print(event.decode(), file=sys.stderr)
    return "logged"


def unserialisable(event, context):
    return object()


def env(event, context):
    return os.environ.get(event.decode())


def channel_inheritable(event, context):
    return os.get_inheritable(3)


def exit(event, context):
    sys.exit(int(event))


def state(event, context):
    global CALLS
    CALLS += 1
    return {"init_pid": INIT_PID, "pid": os.getpid(), "calls": CALLS}


not_callable = 42
