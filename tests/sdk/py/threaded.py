"""A handler module that starts a thread at import (its init): a template of it has two threads
and must refuse a snapshot with EBUSY (tests/sdk/test_snap_sdk.c)."""

import threading

_stop = threading.Event()
_thread = threading.Thread(target=_stop.wait, name="import-time-worker", daemon=True)
_thread.start()


def handler(event, context):
    return event
