"""What this machine offers the workers: the one place that decides whether a GPU is visible.

The grader chooses the `gpu` training profile when a GPU is visible, and the sandbox then leaves the GPU's device
files reachable and limits memory by cgroup instead of RLIMIT_AS (which breaks CUDA's address-space reservations).
Both ask this module, so they never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
