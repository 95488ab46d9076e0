"""examples/init-heavy-python -- a Python function whose init (the module import) is expensive:
it computes a table of TABLE_MB megabytes (default 256), the SHAKE-256 output stream of the seed
b"ember init-heavy", read as little-endian 64-bit entries (a couple of seconds on the development
VM). The handler reads entries: the payload lists entry indices (decimal, separated by blanks;
each taken modulo the table size), or is empty for one entry per 4 KiB page. Answer:
{"tableMb": M, "entries": K, "checksum": "<hex of the 64-bit wrapping sum of the entries>"}.

Started as `python3 /opt/ember/ember_fn.py handler.handler`."""

import hashlib
import os
import sys
import time

SEED = b"ember init-heavy"
ENTRY = 8
PAGE_ENTRIES = 4096 // ENTRY

_start = time.perf_counter()
TABLE_MB = int(os.environ.get("TABLE_MB", "256"))
if not 1 <= TABLE_MB <= 65536:
    raise ValueError(f"TABLE_MB={TABLE_MB} is not a size from 1 to 65536 MB")
TABLE = hashlib.shake_256(SEED).digest(TABLE_MB << 20)
N = len(TABLE) // ENTRY
print(f"init-heavy-python: built a {TABLE_MB} MB table in "
      f"{(time.perf_counter() - _start) * 1000:.0f} ms", file=sys.stderr)


class BadRequest(Exception):
    """The payload is not a list of entry indices (errorType "BadRequest", as in init-heavy-c)."""


def entry(i):
    i %= N
    return int.from_bytes(TABLE[i * ENTRY:(i + 1) * ENTRY], "little")


def handler(event, context):
    words = event.split()
    try:
        indices = [int(w) for w in words] if words else range(0, N, PAGE_ENTRIES)
    except ValueError:
        indices = [-1]
    if any(i < 0 for i in indices):
        raise BadRequest("payload: entry indices separated by blanks, or nothing")
    total = sum(entry(i) for i in indices) & 0xFFFFFFFFFFFFFFFF
    return {"tableMb": TABLE_MB, "entries": len(indices), "checksum": f"{total:016x}"}
