"""A handler whose answers show whether its instance was re-seeded: a number from ``random``
and how many times the SDK's after_new_instance hooks ran in this instance's memory
(tests/sdk/test_snap_sdk.c restores one template's memory twice and expects two different
numbers)."""

import os
import random

import ember_fn

HOOKS = 0


@ember_fn.after_new_instance
def _new_instance():
    global HOOKS
    HOOKS += 1


def handler(event, context):
    return {"random": random.getrandbits(64), "hooks": HOOKS, "pid": os.getpid()}
