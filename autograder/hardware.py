"""What this machine offers the workers: the one place that decides whether a GPU is visible.

The grader chooses the `gpu` training profile when a GPU is visible, and the sandbox then leaves the GPU's device
files reachable and limits memory by cgroup instead of RLIMIT_AS (which breaks CUDA's address-space reservations).
Both ask this module, so they never disagree. What a worker's backend really used is another matter: the worker
asks its backend (`backend_device`) and reports a `UsedDevice`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

HIDDEN = ("", "-1", "none", "NoDevFiles")  # CUDA_VISIBLE_DEVICES values that hide every GPU


def gpu_device_paths() -> list[str]:
    """The device files a GPU process opens (NVIDIA's, and AMD's kfd/dri)."""
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return sorted(f"/dev/{n}" for n in names if n.startswith("nvidia") or n in ("kfd", "dri"))


def gpu_visible(env: Mapping[str, str] | None = None) -> bool:
    """Whether a process started with `env` (default: this one's) can use a GPU: a GPU's device files exist and
    CUDA_VISIBLE_DEVICES does not hide them."""
    env = os.environ if env is None else env
    if env.get("CUDA_VISIBLE_DEVICES", None) in HIDDEN:
        return False
    paths = gpu_device_paths()
    return "/dev/kfd" in paths or any(p.startswith("/dev/nvidia") and p[len("/dev/nvidia") :].isdigit() for p in paths)


def gpu_name() -> str:
    """The first GPU's model name as the driver reports it ("NVIDIA H100 80GB HBM3"), or "a GPU"."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return "a GPU"


@dataclass(frozen=True)
class UsedDevice:
    """The device a worker's Keras backend really computes on, as the backend itself says in the worker: `kind`
    "gpu" or "cpu" (or "unknown" when the backend could not say), `name` what it calls the device."""

    kind: str
    name: str = ""

    def describe(self) -> str:
        """What results.json's `extra_data.environment.device` records: "gpu (cuda:0 NVIDIA H100 80GB HBM3)", "cpu"."""
        return f"{self.kind} ({self.name})" if self.name and self.kind != "cpu" else self.kind

    def to_event(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}

    @classmethod
    def from_event(cls, value: object) -> UsedDevice | None:
        """The device a worker's event names, or None when the event is not one (it crossed a trust line)."""
        if not isinstance(value, dict):
            return None
        kind, name = value.get("kind"), value.get("name", "")
        if kind not in ("gpu", "cpu", "unknown") or not isinstance(name, str):
            return None
        return cls(kind, "".join(c for c in name if c.isprintable())[:200])


def backend_device(backend: str) -> UsedDevice:
    """Ask `backend` (imported here: call it in the worker, never in the grader) which device it computes on: JAX's
    first device, TensorFlow's logical GPUs, PyTorch's CUDA. A backend that fails to answer is "unknown"."""
    try:
        if backend == "jax":
            import jax

            device = jax.devices()[0]
            kind = "gpu" if device.platform in ("gpu", "cuda", "rocm") else "cpu"
            return UsedDevice(kind, f"{device.platform}:{device.id} {getattr(device, 'device_kind', '')}".strip())
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return UsedDevice("gpu", gpus[0].name) if gpus else UsedDevice("cpu")
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return UsedDevice("gpu", f"cuda:0 {torch.cuda.get_device_name(0)}")
            return UsedDevice("cpu")
        return UsedDevice("unknown", f"no device query for backend {backend!r}")
    except Exception as err:  # noqa: BLE001 - a backend that cannot say is reported, never a crash of the worker
        return UsedDevice("unknown", f"{type(err).__name__}: {err}")
