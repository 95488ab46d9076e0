"""ember_fn -- ember's Python SDK: runs a Python function as an ember instance.

Start it as

    python3 /opt/ember/ember_fn.py MODULE.FUNCTION

(Lambda's handler format: ``handler.handler`` is the function ``handler`` in ``handler.py``; the
module may be dotted, ``pkg.mod.fn``). MODULE is imported from the working directory (the bundles
use ``/var/task``), then from the usual ``sys.path``. Python 3.11, standard library only.

The function::

    def handler(event: bytes, context) -> bytes | str | object:
        ...

``event`` is the request body. The return value is the response: ``bytes``/``bytearray`` as they
are, ``str`` as UTF-8, anything else as its JSON (``None`` -> ``null``, a dict -> an object).
An exception becomes an ERROR ``{"errorType": type(e).__name__, "errorMessage": str(e)}`` and its
traceback goes to stderr. ``context`` carries ``request_id`` (also ``aws_request_id``),
``function_name``, ``function_version``, ``memory_limit_in_mb``, ``deadline_ms`` (CLOCK_REALTIME
ms since the epoch, 0 if none), ``deadline`` (the same in seconds, as ``time.time()``, or None),
``invoke_id`` (the frame id) and ``get_remaining_time_in_millis()`` (``sys.maxsize`` without a
deadline).

Importing the module is the function's init (what the host reports as init time): an exception
there (``ImportError``, ``SyntaxError``, one raised by the module, a missing or non-callable
function) is sent as INIT_ERROR with the exception's class name, and the process exits 1.

Two modes, chosen by the environment (sdk/PROTOCOL.md):

* instance (``EMBER_CHANNEL_FD`` set, as ember's function host starts it): import, READY, then
  invocations on the channel until the host closes it. Exit status 0 when the host closed the
  channel, 1 after INIT_ERROR, 2 on a protocol or channel error (message on stderr). The SDK takes
  the channel: it removes ``EMBER_CHANNEL_FD`` from ``os.environ`` and makes the descriptor
  non-inheritable, so subprocesses of the function neither get nor misread it.
* one-shot (``EMBER_CHANNEL_FD`` unset, e.g. ``runc run`` of the bundle): import, the body read
  from stdin to EOF, the response written to stdout; exit 0, or 1 if the import or the handler
  failed (the error JSON on stderr). ``request_id`` is ``"oneshot"``, ``function_name`` the
  handler string, no deadline.

``sys.stdout`` and ``sys.stderr`` are flushed before every answer, so what a handler printed
reaches the host before its response.

Zygote templates: a template (``EMBER_TEMPLATE=1`` in its environment) is an initialised
instance parked at the ready point (``Channel.wait_for_request``); each EMBER_FORK from the host
makes a new instance by forking it (``libember_zygote.so``, the C SDK's fork core, called through
ctypes between ``PyOS_BeforeFork`` and ``PyOS_AfterFork_Child``/``_Parent``, exactly as
``os.fork`` does). So ``os.register_at_fork(after_in_child=...)`` hooks run in every new instance:
state that must differ between instances (a seeded generator, generated ids, connections) is
re-made there (``random`` already re-seeds itself that way). The template must stay
single-threaded. The C SDK's equivalent is ``struct ember_fn.after_fork``.

Snapshots: the host may dump a template (EMBER_SNAPSHOT, sdk/PROTOCOL.md "Snapshots"); the fork
core answers it in C (``ember_snap_handle``) and blocks while the host reads the memory. A copy
restored from that dump resumes there as a new template: no fork happened, so
``os.register_at_fork`` hooks do not run; the SDK re-seeds ``random`` and runs the callables
registered with ``ember_fn.after_new_instance(fn)``, which run after every fork too. The dump
needs a single-threaded template: a handler module that starts a thread at import makes the
template refuse with EBUSY. The SDK itself starts no thread.
"""

import errno as errno_mod
import gc
import importlib
import json
import os
import struct
import sys
import time
import traceback

# The wire format (sdk/c/ember_proto.h).
MAGIC = 0x31424D45  # "EMB1" as little-endian bytes
VERSION = 1
MAX_PAYLOAD = 64 * 1024 * 1024
HEADER = struct.Struct("<IHHQQ")  # magic, version, type, id, len: 24 bytes
META_LEN = struct.Struct("<I")
READY, INVOKE, RESULT, ERROR, INIT_ERROR = 1, 2, 3, 4, 5
FORK, FORKED = 16, 17  # templates (sdk/c/ember_proto.h); the C core answers FORKED itself
SNAPSHOT, SNAPSHOT_STATE, SNAPSHOT_DONE = 18, 19, 20  # the C core answers them too
# struct ember_snap_state: error, threads, regs (72 bytes), fs/gs base, sigmask, rseq addr,
# rseq len and sig, 64 sigactions (32 bytes each), then maps_len, fds_len, exe_len, reserved
SNAP_STATE = struct.Struct("<iI72xQQQQII2048xIIII")
ZYGOTE_RESTORED = 2  # ember_zygote_serve: a restored copy resumed (ember_zygote.h)
CHANNEL_ENV = "EMBER_CHANNEL_FD"


class ProtocolError(Exception):
    """The host broke the protocol, or the channel failed: the instance exits 2."""


class HostGone(Exception):
    """The host closed the channel: the instance exits 0."""


class Context:
    """What the handler knows about its invocation (Lambda's context object, in part)."""

    def __init__(self, meta, invoke_id=0):
        self.invoke_id = invoke_id
        self.request_id = _str_or(meta.get("requestId"), "")
        self.aws_request_id = self.request_id
        self.function_name = _str_or(meta.get("function"), "")
        self.function_version = _int_or(meta.get("version"), 0)
        self.memory_limit_in_mb = _int_or(meta.get("memoryMb"), 0)
        self.deadline_ms = max(_int_or(meta.get("deadlineMs"), 0), 0)
        self.deadline = self.deadline_ms / 1000 if self.deadline_ms else None

    def get_remaining_time_in_millis(self):
        """Milliseconds until the host gives up (negative once passed); sys.maxsize without a
        deadline."""
        if not self.deadline_ms:
            return sys.maxsize
        return self.deadline_ms - time.time_ns() // 1_000_000

    def __repr__(self):
        return (f"Context(request_id={self.request_id!r}, function_name={self.function_name!r}, "
                f"memory_limit_in_mb={self.memory_limit_in_mb}, deadline_ms={self.deadline_ms})")


def _str_or(v, default):
    return v if isinstance(v, str) else default


def _int_or(v, default):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return default
    return int(v)


class ResponseTooLarge(Exception):
    """The handler returned more than a frame can carry (reported as Runtime.ResponseError, as
    the C SDK does)."""

    error_type = "Runtime.ResponseError"


def _error_json(exc):
    try:
        message = str(exc)
    except Exception:  # a __str__ that raises must not take the instance down
        message = "<unprintable %s>" % type(exc).__name__
    error_type = exc.error_type if isinstance(exc, ResponseTooLarge) else type(exc).__name__
    return _json({"errorType": error_type, "errorMessage": message})


def _json(value):
    """Compact JSON, as the C SDK writes it (non-ASCII escaped: always valid UTF-8)."""
    return json.dumps(value, separators=(",", ":")).encode()


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # closed or broken by the function: its problem, not the answer's


def _encode(result):
    """The handler's return value as the response body."""
    if isinstance(result, (bytes, bytearray, memoryview)):
        data = bytes(result)
    elif isinstance(result, str):
        data = result.encode("utf-8")
    else:
        data = _json(result)
    if len(data) > MAX_PAYLOAD:
        raise ResponseTooLarge(
            f"response of {len(data)} bytes is over the {MAX_PAYLOAD} byte limit")
    return data


def load_handler(spec):
    """Import MODULE and return its FUNCTION (this is the function's init)."""
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError(f"handler {spec!r} is not MODULE.FUNCTION")
    module = importlib.import_module(module_name)
    handler = getattr(module, func_name, None)
    if handler is None:
        raise AttributeError(f"module {module_name!r} has no function {func_name!r}")
    if not callable(handler):
        raise TypeError(f"{spec} is not callable")
    return handler


def invoke(handler, event, context):
    """Call the handler; returns (frame type, payload). stdout/stderr are flushed on return."""
    try:
        frame_type, payload = RESULT, _encode(handler(event, context))
    except Exception as exc:
        traceback.print_exc()
        frame_type, payload = ERROR, _error_json(exc)
    _flush()
    return frame_type, payload


class Channel:
    """The instance's end of the host's socket: whole frames in and out."""

    def __init__(self, fd):
        self.fd = fd

    def _read_exact(self, n, what):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = os.readv(self.fd, [view[got:]])  # EINTR is retried by Python (PEP 475)
            except ConnectionResetError:
                k = 0
            except OSError as exc:
                raise ProtocolError(f"read the channel (fd {self.fd}): {exc.strerror}") from None
            if k == 0:
                if got == 0 and what == "header":
                    raise HostGone()
                raise ProtocolError(f"the channel ended inside a frame {what} ({got} of {n} bytes)")
            got += k
        return buf

    def send(self, frame_type, frame_id, payload=b""):
        data = [HEADER.pack(MAGIC, VERSION, frame_type, frame_id, len(payload)), payload]
        try:
            while data:
                n = os.writev(self.fd, data)
                # drop what was written: a 6 MB frame may take several writes
                while data and n >= len(data[0]):
                    n -= len(data[0])
                    data.pop(0)
                if data and n:
                    data[0] = memoryview(data[0])[n:]
        except (BrokenPipeError, ConnectionResetError):
            raise HostGone() from None
        except OSError as exc:
            raise ProtocolError(f"write the channel (fd {self.fd}): {exc.strerror}") from None

    def wait_for_request(self):
        """THE READY POINT. Between invocations the instance is here and nowhere else: blocked
        in one read of the channel, stdout/stderr flushed, the last answer sent. The host
        freezes the instance's cgroup here, and a template forks new instances from here, so
        the SDK starts no thread and keeps no state that a fork would have to re-establish
        besides the channel.

        Returns (type, id, payload) of the next INVOKE, or (FORK, id, length) of a FORK whose
        payload (and descriptors) the fork core reads itself, or (SNAPSHOT, id, length)."""
        header = self._read_exact(HEADER.size, "header")
        magic, version, frame_type, frame_id, length = HEADER.unpack(header)
        if magic != MAGIC:
            raise ProtocolError(f"bad frame magic {magic:#010x}")
        if version != VERSION:
            raise ProtocolError(f"unsupported protocol version {version}")
        if length > MAX_PAYLOAD:
            raise ProtocolError(f"frame of {length} bytes is over the {MAX_PAYLOAD} byte limit")
        if frame_type in (FORK, SNAPSHOT):
            return frame_type, frame_id, length
        if frame_type != INVOKE:
            raise ProtocolError(f"unexpected frame type {frame_type} from the host")
        return INVOKE, frame_id, self._read_exact(length, "payload")


_after_new_instance = []


def after_new_instance(fn):
    """Register fn() to run in every new instance made from a template's memory, forked or
    restored from its snapshot, before its READY: re-make there what must differ between
    instances (``os.register_at_fork`` hooks run after forks only). Returns fn, so it can be a
    decorator. An exception fails the instance (INIT_ERROR)."""
    _after_new_instance.append(fn)
    return fn


def become_new_instance(channel, how):
    """In a new instance made from a template's memory (how: "forked" or "restored"): re-seed
    ``random`` after a restore (no fork happened, so its at-fork re-seed did not run; not
    imported: nothing to re-seed, an import seeds it then), run the after_new_instance hooks,
    then READY with {how: true}."""
    random = sys.modules.get("random")
    if how == "restored" and random is not None:
        random.seed()
    for fn in _after_new_instance:
        try:
            fn()
        except Exception as exc:
            traceback.print_exc()
            _flush()
            channel.send(INIT_ERROR, 0, _json({"errorType": "Function.AfterForkFailed",
                                               "errorMessage": f"{how}: {exc}"}))
            os._exit(1)
    _flush()
    channel.send(READY, 0, _json({"sdk": "python", "pid": os.getpid(), how: True}))


def refuse_snapshot(channel, frame_id, why):
    """Answer a SNAPSHOT this process cannot take part in (no fork core, which holds the
    snapshot handler): SNAPSHOT_STATE with ENOSYS and why; the host waits for nothing more."""
    msg = why.encode()[:400]
    threads = len(os.listdir("/proc/self/task"))
    state = SNAP_STATE.pack(errno_mod.ENOSYS, threads, 0, 0, 0, 0, 0, 0, len(msg), 0, 0, 0)
    channel.send(SNAPSHOT_STATE, frame_id, state + msg)


def refuse_fork(channel, frame_id, length, why):
    """Answer a FORK this process cannot do (no fork core): take its payload and descriptors off
    the channel (closing them), then FORKED with ENOSYS and why. The instance carries on."""
    import errno
    import socket
    sock = socket.socket(fileno=os.dup(channel.fd))
    try:
        got = 0
        while got < length:
            data, anc, _, _ = sock.recvmsg(length - got, socket.CMSG_SPACE(4 * 4))
            for level, kind, fds in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    for i in range(0, len(fds) - len(fds) % 4, 4):
                        os.close(int.from_bytes(fds[i:i + 4], sys.byteorder))
            if not data:
                raise HostGone()
            got += len(data)
    finally:
        sock.close()
    channel.send(FORKED, frame_id, struct.pack("<i", errno.ENOSYS) + why.encode()[:400])


class Zygote:
    """The template's fork, through the C SDK's fork core (sdk/c/ember_zygote.h)."""

    def __init__(self):
        import ctypes  # only templates pay for it
        self._ctypes = ctypes
        # next to this file in a bundle; EMBER_ZYGOTE_LIB names another (the SDK's tests)
        path = os.environ.get("EMBER_ZYGOTE_LIB") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "libember_zygote.so")
        self._lib = ctypes.PyDLL(path)  # PyDLL: the GIL stays held across the fork, as os.fork
        self._lib.ember_zygote_fork.argtypes = [ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64,
                                                ctypes.c_char_p, ctypes.c_size_t]
        self._lib.ember_zygote_fork.restype = ctypes.c_int
        self._lib.ember_zygote_serve.argtypes = [
            ctypes.c_int, ctypes.POINTER(ctypes.c_uint16), ctypes.POINTER(ctypes.c_uint64),
            ctypes.POINTER(ctypes.c_uint64), ctypes.c_char_p, ctypes.c_size_t]
        self._lib.ember_zygote_serve.restype = ctypes.c_int
        self._lib.ember_snap_handle.argtypes = [ctypes.c_int, ctypes.c_uint64, ctypes.c_char_p,
                                                ctypes.c_size_t]
        self._lib.ember_snap_handle.restype = ctypes.c_int
        self._lib.ember_zygote_prepare.argtypes = []
        self._lib.ember_zygote_prepare.restype = ctypes.c_longlong
        self._why = ctypes.create_string_buffer(256)

    def prepare(self):
        """Before READY: collapse the heap into huge pages, so each fork copies less page table
        (ember_zygote.h). Returns the bytes in huge pages."""
        return self._lib.ember_zygote_prepare()

    def serve(self, channel):
        """A template's ready point: FORK and SNAPSHOT frames are served in C
        (ember_zygote_serve), so the template runs no Python per fork and holds still while it
        is dumped. Returns None in a new instance (after the at-fork hooks ran), "restored" in
        a copy restored from a snapshot taken in there, or (type, id, length) of another frame,
        whose payload is still unread.
        The template is single-threaded, so skipping PyOS_BeforeFork (the import lock, before
        hooks) in it is safe; the child runs PyOS_AfterFork_Child as os.fork's does."""
        c = self._ctypes
        t, i, n = c.c_uint16(), c.c_uint64(), c.c_uint64()
        r = self._lib.ember_zygote_serve(channel.fd, c.byref(t), c.byref(i), c.byref(n),
                                         self._why, 256)
        if r == 0:
            c.pythonapi.PyOS_AfterFork_Child()  # at-fork hooks: random re-seeds itself, ...
            os.set_inheritable(channel.fd, False)
            os.environ.pop("EMBER_TEMPLATE", None)
            return None
        if r == 1:
            return t.value, i.value, n.value
        if r == ZYGOTE_RESTORED:
            return "restored"
        if r == -errno_mod.EPIPE:
            raise HostGone()
        raise ProtocolError(self._why.value.decode(errors="replace") or os.strerror(-r))

    def snapshot(self, channel, frame_id, length):
        """A SNAPSHOT outside serve (an instance that is not a template): the C handler
        answers it and blocks until the host is done. True in a restored copy."""
        if length:
            raise ProtocolError(f"SNAPSHOT {frame_id} has a {length} byte payload (none expected)")
        r = self._lib.ember_snap_handle(channel.fd, frame_id, self._why, 256)
        if r == 1:
            return True
        if r == -errno_mod.EPIPE:
            raise HostGone()
        if r < 0:
            raise ProtocolError(self._why.value.decode(errors="replace") or os.strerror(-r))
        if self._why.value:
            print(f"ember_fn: snapshot refused: {self._why.value.decode(errors='replace')}",
                  file=sys.stderr, flush=True)
        return False

    def fork(self, channel, frame_id, length):
        """0 in the new instance, the child's pid in the template (or -errno if the fork
        failed: the host was told). Raises HostGone if the channel broke."""
        api = self._ctypes.pythonapi
        api.PyOS_BeforeFork()
        pid = self._lib.ember_zygote_fork(channel.fd, frame_id, length, self._why, 256)
        if pid == 0:
            api.PyOS_AfterFork_Child()  # at-fork hooks: random re-seeds itself, ...
            os.set_inheritable(channel.fd, False)
            os.environ.pop("EMBER_TEMPLATE", None)
            return 0
        api.PyOS_AfterFork_Parent()
        if pid < 0 and not self._why.value:
            raise HostGone()
        if pid < 0:
            print(f"ember_fn: zygote fork failed: {self._why.value.decode(errors='replace')}",
                  file=sys.stderr, flush=True)
        return pid


def parse_invoke(frame_id, payload):
    """An INVOKE payload -> (event bytes, Context)."""
    if len(payload) < META_LEN.size:
        raise ProtocolError(f"INVOKE payload of {len(payload)} bytes has no metadata length")
    (meta_len,) = META_LEN.unpack_from(payload)
    if meta_len > len(payload) - META_LEN.size:
        raise ProtocolError(
            f"INVOKE metadata length {meta_len} exceeds the {len(payload)} byte frame")
    end = META_LEN.size + meta_len
    try:
        meta = json.loads(bytes(payload[META_LEN.size:end]))
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        raise ProtocolError(f"INVOKE {frame_id}: metadata is not a JSON object")
    return bytes(memoryview(payload)[end:]), Context(meta, frame_id)


def _init(spec):
    """Import the handler. Returns (handler, None) or (None, error JSON)."""
    try:
        return load_handler(spec), None
    except BaseException as exc:  # SystemExit at import is an init failure too
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        return None, _error_json(exc)
    finally:
        _flush()


def run_instance(fd, spec):
    channel = Channel(fd)
    try:
        handler, error = _init(spec)
        if error is not None:
            try:
                channel.send(INIT_ERROR, 0, error)
            except HostGone:
                pass  # the host went first; the init failed all the same
            return 1
        zygote = None
        if os.environ.get("EMBER_TEMPLATE") == "1":
            try:
                zygote = Zygote()  # loaded before READY: the first FORK does not pay for it
            except OSError as exc:
                print(f"ember_fn: template without a fork core: {exc}", file=sys.stderr,
                      flush=True)
        # What init built is long-lived: move it out of the collector's generations, so GC
        # passes neither walk it nor (in forked instances, later) write to its pages.
        gc.freeze()
        if zygote is not None:
            zygote.prepare()
        channel.send(READY, 0, _json({"sdk": "python", "pid": os.getpid()}))
        while True:
            if zygote is not None:
                # a template: FORKs are served in C until something else comes
                got = zygote.serve(channel)
                if got is None:
                    zygote = None
                    become_new_instance(channel, "forked")
                    continue
                if got == "restored":
                    become_new_instance(channel, "restored")  # and parks as a template
                    continue
                frame_type, frame_id, length = got
                if frame_type != INVOKE:
                    raise ProtocolError(f"unexpected frame type {frame_type} from the host")
                payload = channel._read_exact(length, "payload")
            else:
                frame_type, frame_id, payload = channel.wait_for_request()
            if frame_type == FORK:
                try:
                    if zygote is None:
                        zygote = Zygote()
                except OSError as exc:
                    refuse_fork(channel, frame_id, payload, f"no fork core: {exc}")
                    continue
                if zygote.fork(channel, frame_id, payload) == 0:
                    zygote = None
                    become_new_instance(channel, "forked")
                continue
            if frame_type == SNAPSHOT:
                try:
                    if zygote is None:
                        zygote = Zygote()
                except OSError as exc:
                    if payload:
                        raise ProtocolError(
                            f"SNAPSHOT {frame_id} has a {payload} byte payload (none expected)")
                    refuse_snapshot(channel, frame_id, f"no snapshot handler (fork core): {exc}")
                    continue
                if zygote.snapshot(channel, frame_id, payload):
                    become_new_instance(channel, "restored")
                continue
            event, context = parse_invoke(frame_id, payload)
            del payload
            frame_type, body = invoke(handler, event, context)
            del event
            channel.send(frame_type, frame_id, body)
    except HostGone:
        return 0
    except ProtocolError as exc:
        print(f"ember_fn: protocol error: {exc}", file=sys.stderr, flush=True)
        return 2


def run_once(spec):
    handler, error = _init(spec)
    if error is not None:
        print(error.decode(), file=sys.stderr, flush=True)
        return 1
    event = sys.stdin.buffer.read() if sys.stdin is not None else b""
    frame_type, body = invoke(handler, event, Context({"requestId": "oneshot", "function": spec}))
    if frame_type != RESULT:
        print(body.decode(), file=sys.stderr, flush=True)
        return 1
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 ember_fn.py MODULE.FUNCTION", file=sys.stderr)
        return 2
    # The function's modules live in the working directory (/var/task in the bundles).
    sys.path.insert(0, os.getcwd())
    fd_env = os.environ.pop(CHANNEL_ENV, None)
    if fd_env is None:
        return run_once(argv[0])
    try:
        fd = int(fd_env)
        os.set_inheritable(fd, False)
    except (ValueError, OSError):
        print(f"ember_fn: {CHANNEL_ENV}={fd_env} is not an open descriptor", file=sys.stderr)
        return 2
    return run_instance(fd, argv[0])


if __name__ == "__main__":
    # A handler that imports ember_fn gets this module, not a second copy of it.
    sys.modules.setdefault("ember_fn", sys.modules[__name__])
    sys.exit(main())
