"""`autograder doctor`: which fences the sandbox sets up on this machine, whether a GPU is visible, and, with one,
whether a sandboxed worker's Keras backend really computes on it (a tiny probe: import the backend, list its devices,
one small matmul). `--bisect` runs the probe with each fence lifted in turn and names the ones whose lifting makes
CUDA work (or, when it works, the GPU set's openings it needs). docs/gpu.md says how to read the report."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .hardware import UsedDevice, gpu_device_paths, gpu_name, gpu_visible
from .sandbox import Limits, describe_fences, fences
from .sandbox.gpu import CLOSES, DRIVER_SYS_PATHS, GPU_MAX_PIDS, LIFTS, FenceSet

PROBE_LIMITS = Limits(wall_s=180, cpu_s=180, memory_mb=16384, max_pids=64, file_size_mb=16, output_kb=64)

# The probe run in the sandbox: the backend's own device answer, then one matmul and the device it ran on.
PROBE_CODE = r"""
import json, os, sys
from autograder.hardware import backend_device
backend = os.environ.get("KERAS_BACKEND", "tensorflow")
report = {"device": backend_device(backend).to_event()}
try:
    if backend == "jax":
        import jax.numpy as jnp
        y = jnp.ones((256, 256)) @ jnp.ones((256, 256))
        y.block_until_ready()
        report["matmul_on"] = str(next(iter(y.devices())))
    elif backend == "tensorflow":
        import tensorflow as tf
        report["matmul_on"] = tf.matmul(tf.ones((256, 256)), tf.ones((256, 256))).device
    elif backend == "torch":
        import torch
        where = "cuda" if torch.cuda.is_available() else "cpu"
        report["matmul_on"] = str((torch.ones(256, 256, device=where) @ torch.ones(256, 256, device=where)).device)
except Exception as err:
    report["error"] = "%s: %s" % (type(err).__name__, err)
print("DOCTOR " + json.dumps(report), flush=True)
"""


@dataclass(frozen=True)
class ProbeResult:
    """What one run of the probe found: the backend's device, where the matmul ran, or why it failed."""

    device: UsedDevice | None = None
    matmul_on: str | None = None
    error: str | None = None

    @property
    def on_gpu(self) -> bool:
        """The backend said GPU and the matmul ran (on the device the backend chose)."""
        return self.device is not None and self.device.kind == "gpu" and self.matmul_on is not None

    def describe(self) -> str:
        if self.device is None:
            return f"the probe failed: {self.error or 'no report'}"
        text = f"the backend's device is {self.device.describe()}"
        if self.matmul_on is not None:
            text += f", and its matmul ran on {self.matmul_on}"
        if self.error:
            text += f" ({self.error})"
        return text


Probe = Callable[[FenceSet], ProbeResult]


@dataclass(frozen=True)
class Bisection:
    """`baseline`: the probe with the whole GPU fence set. When CUDA fails there, `helps` names the fences whose
    lifting alone makes it work (`all_lifted`: the probe with every one lifted, when none alone did). When CUDA
    works, `needed` names the GPU set's openings whose closing alone stops it."""

    baseline: ProbeResult
    helps: list[str]
    needed: list[str]
    all_lifted: ProbeResult | None = None


def bisect(probe: Probe, *, lifts: Sequence[str], closes: Sequence[str]) -> Bisection:
    """Run `probe` with the GPU fence set, then with each of `lifts` lifted in turn (when CUDA fails) or each of
    `closes` closed in turn (when it works). Pure but for the probe, which tests replace."""
    baseline = probe(FenceSet(gpu=True))
    if baseline.on_gpu:
        needed = [name for name in closes if not probe(FenceSet(gpu=True, closed=frozenset({name}))).on_gpu]
        return Bisection(baseline, [], needed)
    helps = [name for name in lifts if probe(FenceSet(gpu=True, lifted=frozenset({name}))).on_gpu]
    everything = None if helps else probe(FenceSet(gpu=True, lifted=frozenset(lifts)))
    return Bisection(baseline, helps, [], everything)


def describe_bisection(result: Bisection) -> list[str]:
    lines = [f"With the whole GPU fence set, {result.baseline.describe()}."]
    if result.baseline.on_gpu:
        if result.needed:
            lines.append(
                "CUDA works in the sandbox. It needs these openings of the GPU fence set (closing one alone stops "
                "it): " + "; ".join(f"{name} ({CLOSES[name]})" for name in result.needed) + "."
            )
        else:
            lines.append("CUDA works in the sandbox, and still does with each opening of the GPU fence set closed.")
        return lines
    if result.helps:
        lines.append(
            "CUDA works once one of these fences is lifted, so each of them alone stops it: "
            + "; ".join(f"{name} ({LIFTS[name]})" for name in result.helps)
            + "."
        )
    elif result.all_lifted is not None and result.all_lifted.on_gpu:
        lines.append("No fence alone stops CUDA, but with all of them lifted it works: two or more do, together.")
    else:
        lines.append(
            "CUDA fails even with every fence lifted"
            + (f" ({result.all_lifted.describe()})" if result.all_lifted else "")
            + ": the sandbox is not the cause. Check the GPU build of the backend and the driver outside it."
        )
    return lines


def sandbox_probe(backend: str) -> Probe:
    """The real probe: PROBE_CODE in the sandbox, with the worker's environment and the given fence set."""
    from .launch import WORKER_FLAGS, worker_env, worker_kit
    from .sandbox import run_limited

    def probe(fence_set: FenceSet) -> ProbeResult:
        with tempfile.TemporaryDirectory(prefix="autograder-doctor-") as scratch:
            out = run_limited(
                [sys.executable, *WORKER_FLAGS, "-c", PROBE_CODE],
                cwd=Path(scratch),
                env=worker_env(Path(scratch), backend),
                limits=PROBE_LIMITS,
                readable=worker_kit(),
                fence_set=fence_set,
            )
        return parse_probe_output(out.output_tail, out.reason)

    return probe


def parse_probe_output(tail: str, reason: str | None = None) -> ProbeResult:
    for line in reversed(tail.splitlines()):
        if line.startswith("DOCTOR "):
            try:
                report = json.loads(line[len("DOCTOR ") :])
            except ValueError:
                break
            matmul = report.get("matmul_on")
            return ProbeResult(
                UsedDevice.from_event(report.get("device")),
                matmul if isinstance(matmul, str) else None,
                report.get("error") if isinstance(report.get("error"), str) else None,
            )
    last = " | ".join(line.strip() for line in tail.strip().splitlines()[-3:])
    return ProbeResult(error=(reason + ": " if reason else "") + (last or "no output"))


def applicable_lifts(active: dict[str, bool], user_namespace: bool) -> list[str]:
    """The fences worth lifting here: those that are set up at all."""
    sets_up = {
        "network_namespace": active.get("network_namespace", False),
        "pid_namespace": active.get("pid_namespace", False),
        "ipc_namespace": active.get("mount_namespace", False),
        "user_namespace": user_namespace,
        "mount_namespace": active.get("mount_namespace", False),
        "read_only_root": active.get("read_only_root", False),
        "private_dev": active.get("mount_namespace", False),
        "hidden_run": active.get("mount_namespace", False),
        "proc_read_only_parts": active.get("pid_namespace", False),
        "rlimits": active.get("rlimits", False),
        "cgroup_memory": active.get("cgroup_memory", False),
        "cgroup_pids": active.get("cgroup_pids", False),
        "caps_dropped": active.get("caps_dropped", False),
    }
    return [name for name in LIFTS if sets_up.get(name)]


def report(
    *,
    backend: str,
    bisecting: bool,
    echo: Callable[[str], None],
    gpu: bool | None = None,
    probe: Probe | None = None,
) -> int:
    """Write the doctor's report through `echo`; the exit status (0: the report was made, whatever it says).
    `gpu`: whether a GPU is visible (default: this machine's answer); `probe`: the sandboxed probe (tests pass a
    fake)."""
    from .sandbox import probe as sandbox_probe_state

    active = fences()
    on = [name for name, ok in active.items() if ok]
    off = [name for name, ok in active.items() if not ok]
    echo(f"Sandbox fences active here: {', '.join(on) or 'none'}" + (f"; missing: {', '.join(off)}." if off else "."))
    gpu = gpu_visible() if gpu is None else gpu
    if not gpu:
        echo(
            "GPU: no GPU is visible here (no NVIDIA or AMD device file under /dev, or CUDA_VISIBLE_DEVICES hides "
            "them): workers run on the CPU with the CPU fence set."
        )
        echo(describe_fences())
        if bisecting:
            echo("Nothing to bisect without a GPU.")
        return 0
    echo(f"GPU: visible: {gpu_name()} ({', '.join(gpu_device_paths()) or 'device files'}).")
    echo(describe_fences())
    echo(
        "Workers get the GPU fence set: every GPU device file bound, a /proc in which they may name their own "
        f"threads (its /proc/sys, /proc/driver and the like read-only), at least {GPU_MAX_PIDS} processes and threads, "
        "and no address-space limit."
    )
    present = [p for p in DRIVER_SYS_PATHS if Path(p).exists()]
    echo(f"The driver's /sys paths here: {', '.join(present) or 'none found'} (left readable in the sandbox).")
    probe = probe or sandbox_probe(backend)
    if not bisecting:
        result = probe(FenceSet(gpu=True))
        echo(f"Probe in the sandbox ({backend}): {result.describe()}.")
        if result.on_gpu:
            echo(f"The workers' backend ({backend}) really computes on the GPU.")
        else:
            echo(
                f"The workers' backend ({backend}) does NOT reach the GPU in the sandbox: gradings with the gpu "
                "profile end as grader faults. Run `autograder doctor --bisect` to find the fence that stops it."
            )
        return 0
    user_ns = bool((sandbox_probe_state._plan_cache or {}).get("ns", {}).get("user"))
    for line in describe_bisection(bisect(probe, lifts=applicable_lifts(active, user_ns), closes=list(CLOSES))):
        echo(line)
    return 0
