"""examples/probe-python -- a Python function that reports what its instance sees (the tests of
zygote templates use it). The payload is a command:

  rand          {"random": 128 bits of the `random` module, "urandom": 16 bytes of os.urandom}
                (hex), drawn first, then a 0.3 s wait: two instances forked from one template
                must differ
  pid           {"pid": its pid, "initPid": the pid that ran the import, "procs": the pids in /proc}
  tmp           {"tmp": the names in /tmp}
  shm NAME      create /dev/shm/NAME, then {"shm": the names in /dev/shm}
  write NAME    create /tmp/NAME, then as tmp
  sleep MS      sleep, then {"slept": MS}

Started as `python3 /opt/ember/ember_fn.py handler.handler`."""

import json
import os
import random
import time

INIT_PID = os.getpid()
# state the init leaves behind: a forked instance inherits it, and `random` re-seeds itself
# after the fork (os.register_at_fork), so it is not a shared sequence
_ = random.getrandbits(64)


def _procs():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


def _write_and_list(directory, arg):
    name = arg[0] if arg else os.urandom(8).hex()
    with open(os.path.join(directory, os.path.basename(name)), "w") as f:
        f.write("x")
    time.sleep(0.3)
    return {"tmp" if directory == "/tmp" else "shm": sorted(os.listdir(directory))}


def handler(event, context):
    words = (event or b"").decode().split()
    cmd, arg = (words[0], words[1:]) if words else ("", [])
    if cmd == "rand":
        out = {"random": f"{random.getrandbits(128):032x}", "urandom": os.urandom(16).hex()}
        time.sleep(0.3)
    elif cmd == "pid":
        out = {"pid": os.getpid(), "initPid": INIT_PID, "procs": _procs()}
    elif cmd in ("write", "shm"):
        out = _write_and_list("/tmp" if cmd == "write" else "/dev/shm", arg)
    elif cmd == "tmp":
        out = {"tmp": sorted(os.listdir("/tmp"))}
    elif cmd == "sleep" and arg:
        time.sleep(int(arg[0]) / 1000)
        out = {"slept": int(arg[0])}
    else:
        raise ValueError(f"unknown command {cmd!r} (rand, pid, tmp, write NAME, shm NAME, sleep MS)")
    return json.dumps(out)
