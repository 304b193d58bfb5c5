"""The fork server ("zygote"): one process per backend and side of a batch that has imported Python, NumPy and Keras
with its backend, has run no operation, and forks one child per worker run instead of letting each run start a new
interpreter and import Keras again (~2 s of CPU each with TensorFlow).

Started by the grader (forkserver.py) as `python -s -P -m autograder.sandbox.zygote SOCK_FD` with the environment a
worker gets, in an empty folder of its own. It holds the kit's code and nothing of a submission: no plan, no file
of a run, no result. It talks to the grader over a SOCK_SEQPACKET socketpair only the grader holds the other end
of (no path on disk a child could connect to); each message is a marshalled dict:

    server -> grader   {"ready": pid, "threads": n, "shared": [...]}  once, after the imports
    grader -> server   {"run": spec} with three descriptors (SCM_RIGHTS): stdin, output, status pipe
    server -> grader   {"pid": pid} (the child's, as the grader sees it) or {"error": text}
    grader -> server   {"reap": pid}, once the grader has killed what the run left
    server -> grader   {"status": wait status}
    end of file        the grader is gone or done: the server exits, its children die with it (PDEATHSIG)

The server keeps each child unreaped until the grader asks, so the child's pid (and process group) cannot be taken
by another process while the grader may still signal it. Each child is a fresh fork of the clean server and runs
the same fences as the helper's H, A and B (helper.py); only B differs: it runs the worker in its own memory
(inprocess.py) where the helper execs a new interpreter.
"""

from __future__ import annotations

import array
import fcntl
import marshal
import os
import socket
import sys
from collections.abc import Sequence

from . import helper
from .inprocess import run_worker

MAX_MESSAGE = 1 << 20
STATUS_FD = 3  # where a child keeps its status pipe (0, 1 and 2 are the run's stdin, stdout and stderr)
# Code only, never data: what a worker imports before its first item (worker.py, `wait_for_plan`).
PRELOAD = ("keras", "autograder.checks", "autograder.owntime", "autograder.plain", "autograder.hardware")


def send(sock: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    data = marshal.dumps(message)
    if len(data) > MAX_MESSAGE:
        raise OSError(f"fork server message too large ({len(data)} bytes)")
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], ancillary)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message and the descriptors that came with it; (None, []) at the end of the stream. A truncated or
    unreadable message is an OSError (its descriptors are closed)."""
    space = socket.CMSG_SPACE(max_fds * array.array("i").itemsize) if max_fds else 0
    data, ancdata, flags, _ = sock.recvmsg(MAX_MESSAGE, space)
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
            fds += list(got)
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise OSError("fork server message truncated")
        if not data:
            return None, fds
        message = marshal.loads(data)
        if not isinstance(message, dict):
            raise OSError("fork server message is not a dict")
        return message, fds
    except (OSError, ValueError, EOFError, TypeError):
        for fd in fds:
            os.close(fd)
        raise OSError("unreadable fork server message") from None


def shared_writable_mappings() -> list[str]:
    """Memory the server shares with its children for writing (MAP_SHARED, writable): a child could leave
    something there for the next one. There must be none."""
    found = []
    with open("/proc/self/maps") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) >= 2 and fields[1][1] == "w" and fields[1][3] == "s":
                found.append(line.strip())
    return found


def serve(sock: socket.socket, import_env: dict[str, str]) -> None:
    """Answer the grader's requests until it closes its end. `import_env`: the variables the imports set, which a
    new worker would have set in its own environment by the time its first line runs."""
    children: set[int] = set()
    while True:
        try:
            message, fds = receive(sock, max_fds=3)
        except OSError as err:
            send(sock, {"error": str(err)})
            continue
        if message is None:
            return
        try:
            send(sock, _answer(sock, message, fds, children, import_env))
        finally:
            for fd in fds:  # the child has its own copies; the server keeps none of a run's descriptors
                os.close(fd)


def _answer(sock: socket.socket, message: dict, fds: list[int], children: set[int], import_env: dict) -> dict:
    if "run" in message and len(fds) == 3 and isinstance(message["run"], dict):
        try:
            pid = _fork_child(sock, dict(message["run"], import_env=import_env), fds)
        except OSError as err:
            return {"error": f"fork: {err}"}
        children.add(pid)
        return {"pid": pid}
    if message.get("reap") in children:
        pid = message["reap"]
        _, status = os.waitpid(pid, 0)
        children.discard(pid)
        return {"status": status}
    return {"error": "unknown request"}


def _fork_child(sock: socket.socket, spec: dict, fds: list[int]) -> int:
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here may come out twice
        stream.flush()
    server = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    # The child: nothing here may return into the server's loop.
    try:
        spec = dict(spec, parent=server)
        sock.detach()  # its descriptor is closed below, by number; the object must not close that number again
        _take_descriptors(fds)
        st = helper._Status(STATUS_FD, spec["strict"])
    except BaseException:  # noqa: BLE001 - no status pipe to say it on: the grader sees a run with no report
        os._exit(helper.SETUP_FAILED)
    try:
        os.chdir(spec["cwd"])  # as the helper's H is started in it, and so that A holds no folder of the server
        helper._enter(spec, st, run_worker)
    except BaseException as err:  # noqa: BLE001
        st.fail(f"fork server child: {type(err).__name__}: {err}")
    os._exit(helper.SETUP_FAILED)


def _take_descriptors(fds: list[int]) -> None:
    """Make the run's stdin, output and status pipe this child's 0, 1+2 and STATUS_FD, in a session of its own
    (the grader kills its process group), and close every other descriptor: the server's socket above all."""
    os.setsid()
    # copies above STATUS_FD first, whatever numbers the descriptors came with
    stdin, out, status = (fcntl.fcntl(fd, fcntl.F_DUPFD, STATUS_FD + 1) for fd in fds)
    os.dup2(stdin, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.dup2(status, STATUS_FD, inheritable=False)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > STATUS_FD:
            try:
                os.close(fd)
            except OSError:
                pass


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[1]))
    sock.set_inheritable(False)
    before = dict(os.environ)
    for name in PRELOAD:
        __import__(name)
    import_env = {k: v for k, v in os.environ.items() if k not in before}  # TF2_BEHAVIOR, HDF5_PLUGIN_PATH...
    shared = shared_writable_mappings()
    send(sock, {"ready": os.getpid(), "threads": len(os.listdir("/proc/self/task")), "shared": shared})
    if shared:
        return  # the grader refuses such a server; it exits
    serve(sock, import_env)


if __name__ == "__main__":
    main(sys.argv)
