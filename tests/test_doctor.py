"""`autograder doctor`, its bisection (with fake probes), the worker's device report, and the rule that a grading
with the gpu profile whose worker computed on the CPU is a grader fault, not scores."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SOLUTION, copy_course, without_quality

from autograder.cli import cli
from autograder.config import load_course
from autograder.doctor import (
    Bisection,
    ProbeResult,
    applicable_lifts,
    bisect,
    describe_bisection,
    parse_probe_output,
    report,
    sandbox_probe,
)
from autograder.grading import Grader
from autograder.grading.scoring import device_fault
from autograder.hardware import UsedDevice, gpu_visible
from autograder.items import ANSWER, STUDENT, Cell, ItemId, Plan
from autograder.results import GPU_NOT_USED
from autograder.runner import EventLog, PlanRun, run_plan
from autograder.sandbox import Limits
from autograder.sandbox.gpu import CLOSES, LIFTS, FenceSet

ON_GPU = ProbeResult(UsedDevice("gpu", "cuda:0 Fake GPU"), "cuda:0")
ON_CPU = ProbeResult(UsedDevice("cpu"), "TFRT_CPU_0")


def fake_probe(works):
    """A probe for which CUDA works when `works(fence_set)`; it records every fence set it was asked about."""
    calls: list[FenceSet] = []

    def probe(fence_set: FenceSet) -> ProbeResult:
        calls.append(fence_set)
        return ON_GPU if works(fence_set) else ON_CPU

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


# ------------------------------------------------------------------------------------------------ the bisection


def test_bisect_names_each_fence_whose_lifting_alone_makes_cuda_work():
    probe = fake_probe(lambda fs: bool({"caps_dropped", "private_dev"} & fs.lifted))
    result = bisect(probe, lifts=list(LIFTS), closes=list(CLOSES))
    assert result.helps == ["private_dev", "caps_dropped"]  # in LIFTS' order
    assert not result.baseline.on_gpu and result.needed == [] and result.all_lifted is None
    assert probe.calls[0] == FenceSet(gpu=True)
    assert [fs.lifted for fs in probe.calls[1:]] == [frozenset({name}) for name in LIFTS]
    text = " ".join(describe_bisection(result))
    assert "private_dev" in text and "caps_dropped" in text and "network_namespace" not in text


def test_bisect_when_cuda_works_names_the_openings_it_needs():
    """The suspect of issue 23: with the GPU set CUDA works, and closing the writable /proc alone stops it."""
    probe = fake_probe(lambda fs: "proc_writable" not in fs.closed)
    result = bisect(probe, lifts=list(LIFTS), closes=list(CLOSES))
    assert result.baseline.on_gpu and result.needed == ["proc_writable"] and result.helps == []
    assert all(not fs.lifted for fs in probe.calls)  # nothing is lifted when nothing needs to be
    assert "proc_writable" in " ".join(describe_bisection(result))


def test_bisect_when_only_several_fences_together_stop_cuda():
    probe = fake_probe(lambda fs: {"read_only_root", "private_dev"} <= fs.lifted)
    result = bisect(probe, lifts=["read_only_root", "private_dev", "rlimits"], closes=[])
    assert result.helps == [] and result.all_lifted is not None and result.all_lifted.on_gpu
    assert "two or more" in " ".join(describe_bisection(result))


def test_bisect_when_the_sandbox_is_not_the_cause():
    result = bisect(fake_probe(lambda fs: False), lifts=["rlimits", "caps_dropped"], closes=["proc_writable"])
    assert result.helps == [] and result.all_lifted == ON_CPU
    assert "not the cause" in " ".join(describe_bisection(result))


def test_a_probe_that_failed_is_not_on_a_gpu():
    assert not ProbeResult(UsedDevice("gpu", "cuda:0"), None, "XlaRuntimeError: boom").on_gpu
    assert not ProbeResult(error="killed").on_gpu
    text = " ".join(describe_bisection(Bisection(ProbeResult(error="it was killed by signal 6"), [], [])))
    assert "signal 6" in text


def test_probe_output_is_read_from_its_last_report_line():
    line = "DOCTOR " + json.dumps({"device": {"kind": "gpu", "name": "cuda:0 H100"}, "matmul_on": "cuda:0"})
    assert parse_probe_output("noise\n" + line + "\n").on_gpu
    failed = parse_probe_output("Traceback...\nImportError: no jax\n", "it exited with status 1")
    assert failed.device is None and "no jax" in (failed.error or "") and "status 1" in (failed.error or "")
    assert parse_probe_output('DOCTOR {"device": "gpu"}').device is None  # not a device event


def test_only_fences_set_up_here_are_lifted():
    active = {name: False for name in LIFTS} | {"rlimits": True, "cgroup_pids": True}
    assert applicable_lifts(active, user_namespace=False) == ["rlimits", "cgroup_pids"]
    assert "user_namespace" in applicable_lifts(active, user_namespace=True)


def test_fence_switches_have_known_names():
    with pytest.raises(ValueError, match="nonsense"):
        FenceSet(gpu=True, lifted=frozenset({"nonsense"}))


# ------------------------------------------------------------------------------------------------ the report


def test_doctor_without_a_gpu_says_so_in_one_line_and_never_probes():
    lines: list[str] = []

    def no_probe(fence_set):
        raise AssertionError("no probe without a GPU")

    assert report(backend="jax", bisecting=False, echo=lines.append, gpu=False, probe=no_probe) == 0
    assert sum("no GPU" in line for line in lines) == 1
    assert lines[0].startswith("Sandbox fences active here")
    lines.clear()
    assert report(backend="jax", bisecting=True, echo=lines.append, gpu=False, probe=no_probe) == 0
    assert "Nothing to bisect" in lines[-1]


def test_doctor_with_a_gpu_says_which_device_the_backend_really_used():
    lines: list[str] = []
    assert report(backend="jax", bisecting=False, echo=lines.append, gpu=True, probe=fake_probe(lambda fs: False)) == 0
    text = "\n".join(lines)
    assert "GPU: visible" in text and "TFRT_CPU_0" in text and "does NOT reach the GPU" in text
    lines.clear()
    report(backend="jax", bisecting=False, echo=lines.append, gpu=True, probe=fake_probe(lambda fs: True))
    assert "really computes on the GPU" in "\n".join(lines) and "cuda:0" in "\n".join(lines)
    lines.clear()
    works = fake_probe(lambda fs: "caps_dropped" in fs.lifted)
    report(backend="jax", bisecting=True, echo=lines.append, gpu=True, probe=works)
    assert "caps_dropped" in lines[-1]


@pytest.mark.skipif(sys.platform != "linux" or gpu_visible(), reason="checks the report of a machine without a GPU")
def test_the_doctor_command_on_this_machine():
    for args in (["doctor"], ["doctor", "--bisect"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "fence" in result.output and "no GPU" in result.output


@pytest.mark.skipif(sys.platform != "linux" or gpu_visible(), reason="the real probe on a machine without a GPU")
def test_the_real_probe_runs_in_the_sandbox_and_finds_the_cpu():
    pytest.importorskip("jax")
    result = sandbox_probe("jax")(FenceSet(gpu=True))
    assert result.device is not None and result.device.kind == "cpu" and result.matmul_on, result
    assert not result.on_gpu


# ------------------------------------------------------------------------------- the device the worker really used


def test_the_device_is_believed_only_before_the_first_item(tmp_path):
    events = tmp_path / "events.jsonl"
    lines = [
        {"device": {"kind": "cpu", "name": ""}},
        {"start": "student/answer/a"},
        {"device": {"kind": "gpu", "name": "forged"}},
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    log = EventLog(events, {"student/answer/a": 5.0})
    log.poll()
    assert log.device == UsedDevice("cpu")
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps({"start": "student/answer/a"}) + "\n" + json.dumps({"device": lines[2]["device"]}))
    log = EventLog(forged, {"student/answer/a": 5.0})
    log.poll()
    assert log.device is None
    assert UsedDevice.from_event({"kind": "tpu!", "name": "x"}) is None
    assert UsedDevice.from_event({"kind": "gpu", "name": "a\nb" + "x" * 500}).name == "ab" + "x" * 198


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's fences are Linux-only")
def test_a_worker_reports_the_device_its_backend_uses_before_any_cell(tmp_path):
    pytest.importorskip("jax")
    plan = Plan(seed=0, item_timeout_s=60, backend="jax", cells=[Cell(ItemId(STUDENT, ANSWER, "a"), "x = 1")])
    run = run_plan(plan, workdir=tmp_path, limits=Limits(wall_s=120, cpu_s=120, memory_mb=4096), hide=[])
    assert run.outcomes[ItemId(STUDENT, ANSWER, "a")].ok, run.output_tail
    assert run.device is not None and run.device.kind == ("gpu" if gpu_visible() else "cpu"), run.device


def test_a_gpu_profile_on_the_cpu_is_a_grader_fault_naming_the_cause():
    assert device_fault("cpu", "jax", UsedDevice("cpu")) is None
    assert device_fault("gpu", "jax", UsedDevice("gpu", "cuda:0")) is None
    assert device_fault("gpu", "jax", None) is None  # no worker got as far as saying: its death is reported instead
    fault = device_fault("gpu", "jax", UsedDevice("cpu"))
    assert fault is not None and fault.kind == GPU_NOT_USED and fault.grader_fault
    assert "gpu profile" in fault.message and "jax" in fault.message and "computed on cpu" in fault.message
    unknown = device_fault("gpu", "tensorflow", UsedDevice("unknown", "ImportError: no tensorflow"))
    assert unknown is not None and "no tensorflow" in unknown.message


@pytest.fixture(scope="module")
def gpu_course(tmp_path_factory):
    """A copy of the course whose autoencoder has gpu thresholds (the cpu ones, copied: no score is judged here)."""
    root = copy_course(tmp_path_factory.mktemp("gpu-course"))
    path = root / "reference_weights" / "autoencoder" / "thresholds.json"
    data = json.loads(path.read_text())
    data["profiles"]["gpu"] = data["profiles"]["cpu"]
    path.write_text(json.dumps(data))
    if (root / "reference_weights" / "autoencoder" / "cpu").is_dir():
        shutil.copytree(root / "reference_weights" / "autoencoder" / "cpu", root / "reference_weights/autoencoder/gpu")
    return load_course(root)


class CpuRunner:
    """Workers that ran every item and said their backend computed on the CPU."""

    def run_plan(self, plan, *, workdir: Path, limits, hide, files=None, standby=None) -> PlanRun:
        from autograder.runner import Outcome

        return PlanRun({item: Outcome(True) for item in plan.timeouts()}, [], [], "", device=UsedDevice("cpu"))

    def standby(self, workdir, **settings):
        return None


def test_a_gpu_profile_grading_whose_worker_said_cpu_gives_no_scores(gpu_course):
    grader = Grader.create(gpu_course, "autoencoder", profile="gpu", runner=CpuRunner())
    result = grader.grade(SOLUTION, student="ada")
    assert result.checks == [] and [f.kind for f in result.findings] == [GPU_NOT_USED]
    assert result.environment is not None and result.environment["device"] == "cpu"
    data = result.to_dict()
    assert data["score"] == 0 and "computed on cpu" in data["output"]


@pytest.mark.skipif(sys.platform != "linux" or gpu_visible(), reason="forces the gpu profile on a machine without one")
def test_forcing_the_gpu_profile_on_this_cpu_machine_is_a_grader_fault(gpu_course):
    """A real worker (the value checks only, to stay quick): it reports the CPU, and nothing is scored."""
    grader = without_quality(Grader.create(gpu_course, "autoencoder", profile="gpu"))
    result = grader.grade(SOLUTION, student="ada")
    assert [f.kind for f in result.findings] == [GPU_NOT_USED], result.findings
    assert result.checks == [] and result.environment is not None and result.environment["device"] == "cpu"
    assert grader.backend in result.findings[0].message
