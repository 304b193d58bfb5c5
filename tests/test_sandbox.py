"""The sandbox against real hostile children (tiny `python -c` programs, no TensorFlow).

Each fence's test is skipped, with the reason, where that fence is not available on the machine; as root on
Linux they all run. Every test also checks that no cgroup and no mount of the sandbox is left behind."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

import autograder.sandbox as sb
import autograder.sandbox.cgroups as sb_cgroups
import autograder.sandbox.gpu as sb_gpu
import autograder.sandbox.probe as probe
import autograder.sandbox.run as sb_run
from autograder.sandbox import Limits, ProcessOutcome, describe_fences, fences, run_limited
from autograder.sandbox.gpu import FenceSet

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")

PY = sys.executable
FAST = Limits(wall_s=10, cpu_s=10, memory_mb=512, max_pids=32, file_size_mb=16, output_kb=16)


def need(name: str) -> None:
    if not fences().get(name):
        pytest.skip(f"fence {name!r} is not available here: {describe_fences()}")


def run(code: str, cwd: Path, limits: Limits = FAST, **kw) -> ProcessOutcome:
    return run_limited(
        [PY, "-c", textwrap.dedent(code)], cwd=cwd, env=kw.pop("env", {"PATH": "/usr/bin:/bin"}), limits=limits, **kw
    )


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def leftover_cgroups() -> list[str]:
    parents, _ = sb_cgroups._cgroup_parents()
    prefix = f"{sb.CGROUP_PREFIX}{os.getpid()}-"
    return [
        str(p / name) for p in set(parents.values()) if p.is_dir() for name in os.listdir(p) if name.startswith(prefix)
    ]


def mounts() -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return sorted(line.split(" - ")[0].split(None, 4)[4] for line in fh)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    fences()
    before = mounts()
    yield
    assert leftover_cgroups() == []
    assert mounts() == before


@pytest.fixture
def outside_tmp():
    """A directory outside /tmp (inside the sandbox /tmp is a fresh tmpfs, which would hide anything there
    and make hiding tests pass for the wrong reason)."""
    base = Path("/var/tmp")
    if not (base.is_dir() and os.access(base, os.W_OK)):
        pytest.skip("needs a writable /var/tmp")
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch(outside_tmp):
    path = outside_tmp / "scratch"
    path.mkdir()
    return path


# ---------------------------------------------------------------------------------------------- ordinary children


def test_output_and_exit_code_come_back(scratch):
    out = run(
        """
        import sys
        print("hello out"); print("hello err", file=sys.stderr)
        open("result.txt", "w").write("42")
        sys.exit(3)
        """,
        scratch,
    )
    assert (out.returncode, out.signal, out.timed_out, out.reason) == (3, None, False, None)
    assert "hello out" in out.output_tail and "hello err" in out.output_tail
    assert (scratch / "result.txt").read_text() == "42"
    assert 0 < out.wall_s < 60  # a generous bound: a loaded machine starts Python slowly


def test_scratch_under_tmp_is_bound_in(tmp_path):
    out = run("import os; open('x', 'w').write('1'); print(os.getcwd())", tmp_path)
    assert out.returncode == 0, out
    assert out.output_tail.strip() == str(tmp_path.resolve())
    assert (tmp_path / "x").read_text() == "1"


def test_python_under_tmp_keeps_every_fence(tmp_path):
    """A virtual environment under /tmp (a checkout there, say): the private /tmp would cover the interpreter, so
    the sandbox binds it back read-only instead of losing its namespaces."""
    import json
    import subprocess

    if not os.path.realpath(tmp_path).startswith("/tmp/"):
        pytest.skip("pytest's temporary folder is not under /tmp here")
    venv = tmp_path / "venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=120)
    (tmp_path / "scratch").mkdir()
    script = textwrap.dedent("""
        import json, sys
        from autograder import sandbox
        limits = sandbox.Limits(wall_s=20, cpu_s=20, memory_mb=512, max_pids=32, file_size_mb=16, output_kb=16)
        child = "import sys; print(sys.prefix); open(sys.prefix + '/written', 'w')"
        out = sandbox.run_limited([sys.executable, "-c", child], cwd=sys.argv[1], env={"PATH": "/usr/bin:/bin"},
                                  limits=limits)
        print(json.dumps({"fences": sandbox.fences(), "returncode": out.returncode, "tail": out.output_tail}))
    """)
    root = Path(sb.__file__).resolve().parents[2]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(tmp_path / "scratch")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.splitlines()[-1])
    assert got["fences"] == fences()  # the same fences as from a Python outside /tmp
    assert got["returncode"] == 1 and str(venv) in got["tail"], got  # Python ran, from the venv under /tmp
    if fences().get("read_only_root"):
        assert "Read-only file system" in got["tail"] and not (venv / "written").exists()


def test_environment_is_exactly_what_was_given_and_changes_do_not_leak(scratch):
    os.environ["SANDBOX_TEST_SECRET"] = "grader-only"
    try:
        code = """
            import json, os
            print(json.dumps(dict(os.environ)))
            os.environ["LEAK"] = "1"
            os.putenv("LEAK2", "1")
            """
        env = {"ONLY": "this", "LC_ALL": "C.UTF-8"}  # LC_ALL: else Python adds LC_CTYPE itself (PEP 538)
        first = run(code, scratch, env=env)
        second = run(code, scratch, env=env)
    finally:
        del os.environ["SANDBOX_TEST_SECRET"]
    assert first.output_tail.strip() == second.output_tail.strip() == '{"ONLY": "this", "LC_ALL": "C.UTF-8"}'
    assert "LEAK" not in os.environ and "LEAK2" not in os.environ


def test_stdin_data_is_the_childs_stdin(scratch):
    out = run(
        "import sys; data = sys.stdin.buffer.read(); print(len(data), data[:5])", scratch, stdin_data=b"hello" * 100_000
    )
    assert out.output_tail.strip() == "500000 b'hello'"
    assert run("import sys; print(repr(sys.stdin.read()))", scratch).output_tail.strip() == "''"


def test_missing_command_is_an_exit_status_not_an_exception(scratch):
    out = run_limited(["/no/such/program"], cwd=scratch, env={}, limits=FAST)
    assert out.returncode == 127 and "cannot run" in out.output_tail


def test_two_runs_at_once(scratch):
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(run(f"print({i})", scratch))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.output_tail.strip() for r in results) == ["0", "1", "2"]


# ------------------------------------------------------------------------------------------------------- time


def test_infinite_loop_is_killed_at_the_wall_clock_limit(scratch):
    out = run("while True: pass", scratch, Limits(wall_s=1.5))
    assert out.timed_out and out.returncode is None
    assert 1.5 <= out.wall_s < 1.5 + 30  # killed, not run on: the margin is for a loaded machine
    assert "1.5 s time limit" in out.reason


def test_sleeping_children_and_a_detached_grandchild_die_at_the_timeout(scratch):
    marker = f"sandbox-marker-{uuid.uuid4().hex}"
    out = run(
        f"""
        import os, subprocess, time
        subprocess.Popen(["sleep", "300"], start_new_session=True)       # escapes the process group
        subprocess.Popen(["sh", "-c", "sleep 301; : {marker}"])
        if os.fork() == 0:
            os.setsid(); time.sleep(302); os._exit(0)
        print("started", flush=True)
        time.sleep(303)  # {marker}
        """,
        scratch,
        Limits(wall_s=2),
    )
    assert out.timed_out and "started" in out.output_tail
    assert out.wall_s < 60  # not the children's 303 s: they died at the timeout
    time.sleep(0.2)
    assert processes_with(marker) == []


def test_cpu_limit(scratch):
    out = run("while True: pass", scratch, Limits(wall_s=20, cpu_s=1))
    assert not out.timed_out
    assert out.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert out.reason == "it used more than 1 s of CPU"


# ----------------------------------------------------------------------------------------------------- memory

MEMORY_BOMB = """
    try:
        bytearray(60 << 30)                       # 60 GB at once
    except MemoryError:
        print("60 GB refused", flush=True)
    chunks = []
    while True:
        chunks.append(bytearray(100 << 20))       # then 100 MB at a time
    """


def test_memory_bomb_stops_with_a_memory_reason(scratch):
    out = run(MEMORY_BOMB, scratch, Limits(wall_s=20, memory_mb=384))
    assert not out.timed_out
    assert "60 GB refused" in out.output_tail
    assert out.reason == "it ran out of memory (limit 384 MB) or crashed"


def test_memory_bomb_without_the_address_space_limit_hits_the_cgroup(scratch, monkeypatch):
    """With a GPU visible there is no RLIMIT_AS (it breaks CUDA): the memory cgroup alone must stop the bomb."""
    need("cgroup_memory")
    monkeypatch.setattr(probe, "_FORCE_GPU_FENCES", True)
    out = run(MEMORY_BOMB, scratch, Limits(wall_s=20, memory_mb=384))
    assert not out.timed_out
    assert out.signal == signal.SIGKILL
    assert out.reason == "it ran out of memory (limit 384 MB) or crashed"


def test_crash_names_the_signal(scratch):
    out = run("import ctypes; ctypes.string_at(0)", scratch)
    assert out.returncode is None and out.signal == signal.SIGSEGV
    assert "SIGSEGV" in out.reason


# ---------------------------------------------------------------------------------------------------- processes


def test_fork_bomb_ends_and_leaves_nothing(scratch):
    need("cgroup_pids")
    marker = f"sandbox-marker-{uuid.uuid4().hex}"
    started = time.monotonic()
    out = run(
        f"""
        import os, time
        while True:          # {marker}
            try:
                os.fork()
            except OSError:
                time.sleep(0.01)
        """,
        scratch,
        Limits(wall_s=3, max_pids=32),
    )
    assert out.timed_out and out.wall_s < 60  # a generous bound for a loaded machine
    assert time.monotonic() - started < 90
    time.sleep(0.2)
    assert processes_with(marker) == []
    # the machine is fine: new processes start, and the next run works
    assert run("print('alive')", scratch).output_tail.strip() == "alive"


def test_fork_bomb_is_stopped_at_the_pid_limit(scratch):
    need("cgroup_pids")
    out = run(
        """
        import os, time
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError as err:
            print("forks", n, err.errno, flush=True)
        """,
        scratch,
        Limits(wall_s=10, max_pids=20),
    )
    assert out.returncode == 0, out
    forks, err = out.output_tail.split()[1:]
    assert int(err) == errno.EAGAIN
    assert 10 <= int(forks) < 20  # the main process is one of the 20
    assert not out.timed_out  # its children, asleep for 30 s, died with it (pid namespace or cgroup kill)


def test_cgroup_exists_during_the_run_and_is_removed_after(scratch):
    need("cgroup_pids")
    out = run("print(open('/proc/self/cgroup').read())", scratch)
    names = {line.rsplit("/", 1)[-1] for line in out.output_tail.splitlines() if sb.CGROUP_PREFIX in line}
    assert len(names) == 1, out.output_tail
    parents, _ = sb_cgroups._cgroup_parents()
    name = names.pop()
    assert all(not (p / name).exists() for p in parents.values())


# ------------------------------------------------------------------------------------------------------ output


def test_printing_a_gigabyte_keeps_only_the_tail(scratch):
    free_before = shutil.disk_usage(scratch).free
    out = run(
        """
        import sys
        line = b"x" * (1 << 20) + b"\\n"
        for _ in range(1024):
            sys.stdout.buffer.write(line)
        print("THE END")
        """,
        scratch,
        Limits(wall_s=40, output_kb=16),
    )
    assert out.returncode == 0, out.reason
    assert len(out.output_tail.encode()) <= 16 * 1024
    assert out.output_tail.endswith("THE END\n")
    assert free_before - shutil.disk_usage(scratch).free < 100 << 20


# ------------------------------------------------------------------------------------------------------- files


def test_huge_file_stops_at_the_file_size_limit(scratch):
    out = run(
        """
        f = open("big", "wb")
        for _ in range(2048):
            f.write(bytes(1 << 20))               # 2 GB
        """,
        scratch,
        Limits(wall_s=20, file_size_mb=8),
    )
    assert out.returncode != 0
    assert "File too large" in out.output_tail
    assert out.reason == "it tried to write a file larger than the 8 MB limit"
    assert (scratch / "big").stat().st_size <= 8 << 20


def test_huge_file_from_a_program_that_does_not_ignore_sigxfsz(scratch):
    if not shutil.which("dd"):
        pytest.skip("needs dd")
    out = run_limited(
        ["dd", "if=/dev/zero", "of=big", "bs=1M", "count=2048"],
        cwd=scratch,
        env={"PATH": "/usr/bin:/bin"},
        limits=Limits(wall_s=20, file_size_mb=4),
    )
    assert out.signal == signal.SIGXFSZ
    assert out.reason == "it tried to write a file larger than the 4 MB limit"
    assert (scratch / "big").stat().st_size <= 4 << 20


def test_writes_outside_the_scratch_directory_fail(scratch, outside_tmp):
    """Tries to plant files where a later grading would read them. The names and contents are inert (no .py, no
    sitecustomize), and anything that does get through is removed, so a broken fence cannot poison the venv."""
    need("read_only_root")
    other = outside_tmp / "other"
    other.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    name = f"sandbox-test-{uuid.uuid4().hex}.txt"
    targets = [other / name, site / name, Path("/") / name, Path(PY).parent / name]
    private = Path("/tmp") / name
    existing = next(p for p in sorted(site.iterdir()) if p.is_file())
    before = existing.read_bytes()
    try:
        out = run(
            f"""
            import os
            for path in {[str(t) for t in targets]!r}:
                try:
                    open(path, "w").write("inert")
                    print("WROTE", path)
                except OSError as err:
                    print("refused", err.errno)
            try:
                open({str(existing)!r}, "r+b").close()       # opened only, never written
                print("OPENED FOR WRITING")
            except OSError as err:
                print("refused", err.errno)
            open({str(private)!r}, "w").write("ok")   # its own /tmp works
            open("mine", "w").write("ok")             # and so does its scratch directory
            """,
            scratch,
        )
        assert "WROTE" not in out.output_tail and "OPENED" not in out.output_tail
        assert out.output_tail.count(f"refused {errno.EROFS}") == 5, out.output_tail
        assert out.returncode == 0, out.output_tail
        assert not any(t.exists() for t in targets)
        assert existing.read_bytes() == before
        assert (scratch / "mine").exists() and not private.exists()
    finally:
        for target in [*targets, private]:
            target.unlink(missing_ok=True)


def test_writable_paths_are_writable(scratch, outside_tmp):
    need("read_only_root")
    out_dir = outside_tmp / "out"
    out_dir.mkdir()
    out = run(f"open({str(out_dir / 'r.json')!r}, 'w').write('{{}}')", scratch, writable=[out_dir])
    assert out.returncode == 0, out.output_tail
    assert (out_dir / "r.json").read_text() == "{}"


def test_hidden_paths_appear_empty(scratch, outside_tmp):
    need("mount_namespace")
    course = outside_tmp / "course"
    (course / "reference_weights").mkdir(parents=True)
    (course / "reference_weights" / "model.weights.h5").write_text("SECRET WEIGHTS")
    (course / "solutions").mkdir()
    (course / "solutions" / "answer.py").write_text("SECRET ANSWER")
    (course / "key.txt").write_text("SECRET KEY")
    (course / "public.txt").write_text("public")
    out = run(
        f"""
        import os
        course = {str(course)!r}
        print("weights", os.listdir(course + "/reference_weights"))
        try:
            print(open(course + "/reference_weights/model.weights.h5").read())
        except OSError as err:
            print("weights file:", err.errno)
        print("solutions", os.listdir(course + "/solutions"))
        print("key", repr(open(course + "/key.txt").read()))
        print("public", open(course + "/public.txt").read())
        """,
        scratch,
        hide=[course / "reference_weights", course / "solutions", course / "key.txt", course / "does-not-exist"],
    )
    assert out.returncode == 0, out.output_tail
    assert "SECRET" not in out.output_tail
    assert "weights []" in out.output_tail and "solutions []" in out.output_tail
    assert f"weights file: {errno.ENOENT}" in out.output_tail
    assert "key ''" in out.output_tail and "public public" in out.output_tail


def test_scratch_inside_a_hidden_directory(outside_tmp):
    """The grader hides the whole submissions tree; the worker's own scratch directory inside it stays usable."""
    need("mount_namespace")
    submitted = outside_tmp / "submitted"
    (submitted / "bob").mkdir(parents=True)
    (submitted / "bob" / "answer.py").write_text("BOB'S ANSWER")
    mine = submitted / "alice" / "scratch"
    mine.mkdir(parents=True)
    out = run(
        f"""
        import os
        print(sorted(os.listdir({str(submitted)!r})))
        open("note", "w").write("ok")
        """,
        mine,
        hide=[submitted],
    )
    assert out.returncode == 0, out.output_tail
    assert "bob" not in out.output_tail and "alice" in out.output_tail
    assert (mine / "note").read_text() == "ok"


# ------------------------------------------------------------------------------------------------------ network


def test_no_network_not_even_loopback(scratch):
    need("network_namespace")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        out = run(
            f"""
            import socket
            for address in [("127.0.0.1", {port}), ("10.0.0.1", 80), ("1.1.1.1", 53)]:
                try:
                    socket.create_connection(address, timeout=2)
                    print("CONNECTED", address)
                except OSError as err:
                    print("refused", address, err.errno)
            print([name for _, name in socket.if_nameindex()])
            """,
            scratch,
        )
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    assert "CONNECTED" not in out.output_tail and out.output_tail.count("refused") == 3
    assert "['lo']" in out.output_tail


def test_unix_sockets_on_disk_are_unreachable(scratch, outside_tmp):
    need("mount_namespace")
    path = outside_tmp / "service.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.5)
    try:
        out = run(
            f"""
            import socket
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect({str(path)!r})
                print("CONNECTED")
            except OSError as err:
                print("refused", err.errno)
            """,
            scratch,
        )
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    assert "CONNECTED" not in out.output_tail and "refused" in out.output_tail


# ------------------------------------------------------------------------------------------- the fences hold


def test_root_inside_cannot_undo_the_fences(scratch, outside_tmp):
    need("caps_dropped")
    need("mount_namespace")
    hidden = outside_tmp / "hidden"
    hidden.mkdir()
    (hidden / "secret").write_text("SECRET")
    out = run(
        f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print("caps", [int(status[k], 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")],
              "nnp", status["NoNewPrivs"].strip())
        def attempt(what, result):
            print(what, "FAILED" if result == 0 else "refused", ctypes.get_errno())
        attempt("umount", libc.umount2({str(hidden)!r}.encode(), 2))
        attempt("remount", libc.mount(None, b"/", None, 32 | 4096, None))      # MS_REMOUNT | MS_BIND, rw
        attempt("mount", libc.mount(b"none", b".", b"tmpfs", 0, None))          # over its own scratch dir
        attempt("netns", libc.unshare(0x40000000))                             # needs CAP_SYS_ADMIN
        # with a nested user namespace it has capabilities again, but the mounts are locked
        if libc.unshare(0x10000000 | 0x00020000) == 0:
            attempt("nested umount", libc.umount2({str(hidden)!r}.encode(), 2))
            attempt("nested remount", libc.mount(None, b"/", None, 32 | 4096, None))
        print(os.listdir({str(hidden)!r}))
        """,
        scratch,
        hide=[hidden],
    )
    if os.path.ismount(scratch):  # only when the fences failed: do not leave the mount behind
        os.system(f"umount -l {scratch}")
    tail = out.output_tail
    assert "caps [0, 0, 0, 0] nnp 1" in tail, tail
    assert "FAILED" not in tail and tail.count("refused") >= 4, tail
    assert "SECRET" not in tail and "[]" in tail


def test_only_harmless_devices_and_private_proc(scratch):
    need("mount_namespace")
    need("pid_namespace")
    out = run(
        f"""
        import os
        print("dev", sorted(os.listdir("/dev")))
        print("procs", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        try:
            os.kill({os.getpid()}, 0)
            print("GRADER VISIBLE")
        except ProcessLookupError:
            print("grader invisible")
        for path in ["/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/sys/kernel/mm/transparent_hugepage/enabled"]:
            try:
                fd = os.open(path, os.O_WRONLY)          # opened only, never written
                os.close(fd)
                print("WRITABLE", path)
            except OSError as err:
                print("refused", err.errno)
        """,
        scratch,
    )
    tail = out.output_tail
    assert out.returncode == 0, tail
    dev_line = next(line for line in tail.splitlines() if line.startswith("dev"))
    assert "'null'" in dev_line and "vda" not in dev_line and "sda" not in dev_line and "kmsg" not in dev_line
    procs = eval(next(line for line in tail.splitlines() if line.startswith("procs"))[6:])
    assert len(procs) <= 3
    assert "grader invisible" in tail and "WRITABLE" not in tail


PROC_SCAN = r"""
import json, os, threading
def openable(path):
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # opened only, never written
        return True
    except OSError:
        return False
def attempt(path, data):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as err:
        return err.errno
    try:
        os.write(fd, data)
        return "wrote"
    except OSError as err:
        return err.errno
    finally:
        os.close(fd)
found = []
for top in ("/proc", "/proc/%d" % os.getpid()):
    for root, dirs, files in os.walk(top):
        if root == "/proc":
            dirs[:] = [d for d in dirs if not d.isdigit()]
        # links (fd/0, cwd, exe...) lead out of /proc: what they open is not a /proc file
        paths = [os.path.join(root, f) for f in files]
        found += [p for p in paths if not os.path.islink(p) and openable(p)]
tid = threading.get_native_id()
comm = "/proc/self/task/%d/comm" % tid
print(json.dumps({
    "writable": sorted(found),
    "comm": attempt(comm, b"sandbox-thread"),
    "name": open(comm).read().strip(),
    "oom_lower": attempt("/proc/self/oom_score_adj", b"-1000"),
}))
"""
PROTECTED = ("/proc/sys/", "/proc/sysrq-trigger", "/proc/irq/", "/proc/bus/", "/proc/fs/", "/proc/driver/")


def proc_scan(scratch: Path, gpu: bool) -> dict:
    import json

    need("mount_namespace")
    need("pid_namespace")
    out = run_limited(
        [PY, "-c", PROC_SCAN],
        cwd=scratch,
        env={"PATH": "/usr/bin:/bin"},
        limits=Limits(wall_s=60, cpu_s=60, memory_mb=512),
        fence_set=FenceSet(gpu=gpu),
    )
    assert out.returncode == 0, out.output_tail
    return json.loads(out.output_tail.strip().splitlines()[-1])


def test_gpu_fence_set_lets_the_driver_name_its_threads_and_keeps_proc_sys_read_only(scratch):
    """The NVIDIA driver writes /proc/self/task/<tid>/comm during cuInit, and fails with error 304 where it cannot:
    the GPU set's /proc allows that, but /proc/sys, sysrq-trigger, irq, bus, fs and driver stay read-only."""
    got = proc_scan(scratch, gpu=True)
    assert got["comm"] == "wrote" and got["name"] == "sandbox-thread", got
    assert any(p.endswith("/comm") for p in got["writable"]), got["writable"]
    assert [p for p in got["writable"] if p.startswith(PROTECTED)] == []
    assert got["oom_lower"] == errno.EACCES  # still no capabilities: a worker cannot protect itself from the OOM killer


def test_cpu_fence_set_keeps_all_of_proc_read_only(scratch):
    got = proc_scan(scratch, gpu=False)
    assert got["writable"] == [] and got["comm"] == errno.EROFS and got["name"] != "sandbox-thread", got


def test_gpu_fence_set_binds_every_nvidia_device_and_raises_max_pids(scratch, monkeypatch):
    """Without a GPU here, stand-in device files show that every NVIDIA node the machine has is bound in the GPU set
    (and none in the CPU set), and that the GPU set's worker gets room for XLA's and CUDA's threads."""
    need("mount_namespace")
    names = ["nvidiactl", "nvidia0", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
    fake = {f"/dev/{n}": "/dev/null" for n in names}
    monkeypatch.setattr(sb_run, "gpu_device_paths", lambda: sorted(fake))
    spec_seen = []
    real_run = sb_run._run

    def spy(spec, limits, *args, **kwargs):
        spec_seen.append((spec, limits))
        spec = dict(spec, gpu_devices=[])  # the stand-ins are not there to bind: check the spec, run without them
        return real_run(spec, limits, *args, **kwargs)

    monkeypatch.setattr(sb_run, "_run", spy)
    assert run("pass", scratch, fence_set=FenceSet(gpu=True)).returncode == 0
    assert run("pass", scratch, fence_set=FenceSet(gpu=False)).returncode == 0
    (gpu_spec, gpu_limits), (cpu_spec, cpu_limits) = spec_seen
    assert gpu_spec["gpu_devices"] == sorted(fake) and cpu_spec["gpu_devices"] == []
    assert gpu_limits.max_pids >= sb_gpu.GPU_MAX_PIDS and cpu_limits.max_pids == FAST.max_pids
    assert not any(r[0] == resource.RLIMIT_AS for r in gpu_spec["rlimits"])
    assert any(r[0] == resource.RLIMIT_AS for r in cpu_spec["rlimits"])


@pytest.mark.parametrize(
    "fence_set",
    [FenceSet(gpu=True, lifted=frozenset({name})) for name in sb_gpu.LIFTS]
    + [FenceSet(gpu=True, closed=frozenset({name})) for name in sb_gpu.CLOSES],
    ids=[f"lift-{name}" for name in sb_gpu.LIFTS] + [f"close-{name}" for name in sb_gpu.CLOSES],
)
def test_every_switch_of_the_doctors_bisection_still_runs_the_child(scratch, fence_set):
    """`autograder doctor --bisect` runs its probe with one fence lifted or one opening closed: each variant must set
    up cleanly (and leave no mount or cgroup behind, as every test here checks)."""
    out = run("import os; print('ran', os.getpid())", scratch, fence_set=fence_set)
    assert out.returncode == 0 and "ran" in out.output_tail, (out.reason, out.output_tail)


def test_fences_and_their_description():
    active = fences()
    assert set(sb.FENCE_NAMES) <= set(active) and active["rlimits"] is True
    text = describe_fences()
    assert "wall-clock limit" in text
    for name, is_active in active.items():  # each missing fence is named, with what it means
        if name in sb.FENCE_NAMES:
            assert (probe._FENCE_TEXT[name][1] in text) != is_active, name
    assert ("MISSING" in text) == (not all(active.values()))


# ----------------------------------------------------------------------------------- where fences are missing


def test_without_any_namespace_or_cgroup_the_basics_still_hold(scratch, monkeypatch):
    """What a machine without namespaces and cgroups gets: rlimits, the wall clock, the process-group kill."""
    monkeypatch.setattr(probe, "_plan_cache", {"ns": {}, "mounts": False, "newproc": False})
    marker = f"sandbox-marker-{uuid.uuid4().hex}"
    out = run(
        f"""
        import subprocess, time
        subprocess.Popen(["sh", "-c", "sleep 300; : {marker}"])
        print("hello", flush=True)
        time.sleep(300)
        """,
        scratch,
        Limits(wall_s=1.5),
    )
    assert out.timed_out and "hello" in out.output_tail and out.wall_s < 60  # not the 300 s sleep
    time.sleep(0.2)
    assert processes_with(marker) == []
    out = run("bytearray(1 << 30)", scratch, Limits(memory_mb=256))
    assert out.reason == "it ran out of memory (limit 256 MB) or crashed"


def test_the_unprivileged_path_through_a_user_namespace(scratch, outside_tmp, monkeypatch):
    """As root, run the code path a non-root grader takes (a user namespace first), and check its fences."""
    if os.geteuid() != 0:
        pytest.skip("as non-root this path is the default one, tested by the other tests")
    monkeypatch.setattr(probe, "_FORCE_USER_NAMESPACE", True)
    monkeypatch.setattr(probe, "_fence_cache", None)
    monkeypatch.setattr(probe, "_plan_cache", None)
    monkeypatch.setattr(probe, "_fence_notes", {})
    active = fences()
    if not (probe._plan_cache or {}).get("ns", {}).get("user"):
        pytest.skip(f"user namespaces are not available here: {describe_fences()}")
    assert active["mount_namespace"] and active["read_only_root"] and active["caps_dropped"]
    hidden = outside_tmp / "hidden"
    hidden.mkdir()
    (hidden / "secret").write_text("SECRET")
    poison = Path("/") / f"sandbox-test-{uuid.uuid4().hex}.txt"
    try:
        out = run(
            f"""
            import os
            print(os.listdir({str(hidden)!r}))
            try:
                open({str(poison)!r}, "w")
            except OSError as err:
                print("refused", err.errno)
            open("mine", "w").write("ok")
            """,
            scratch,
            hide=[hidden],
        )
    finally:
        poison.unlink(missing_ok=True)
    assert out.returncode == 0, out.output_tail
    assert "[]" in out.output_tail and f"refused {errno.EROFS}" in out.output_tail
    assert (scratch / "mine").exists()
