"""The GPU fence set: what the sandbox opens for CUDA when a worker gets a GPU, and the switches that
`autograder doctor --bisect` turns one at a time. docs/threat-model.md says why each opening is safe."""

from __future__ import annotations

from dataclasses import dataclass

# XLA and the CUDA runtime start thread pools sized to the machine: 64 aborted with SIGABRT on 16 cores, 512 did not.
GPU_MAX_PIDS = 512

# In the GPU set /proc is writable (the driver names its threads in /proc/self/task/<tid>/comm during cuInit);
# these stay read-only, as container runtimes keep them (runc's readonlyPaths), plus the driver's own entries.
PROC_READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", "/proc/driver")
# and these are covered, as runc's maskedPaths are (an empty read-only tmpfs, or /dev/null for a file)
PROC_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
)
# What the NVIDIA driver reads under /sys during cuInit (the read-only root leaves /sys readable; doctor checks it).
DRIVER_SYS_PATHS = ("/sys/module/nvidia", "/sys/module/nvidia_uvm", "/sys/bus/pci/devices")

# Fences that `doctor --bisect` lifts one at a time from the GPU set: name -> what lifting it leaves out.
LIFTS = {
    "network_namespace": "the empty network namespace",
    "pid_namespace": "the private pid namespace (and with it the sandbox's own /proc)",
    "ipc_namespace": "the private IPC namespace",
    "user_namespace": "the user namespace (a non-root grader's)",
    "mount_namespace": "the whole private mount view",
    "read_only_root": "the read-only remount of the machine",
    "private_dev": "the minimal /dev (the machine's /dev instead)",
    "hidden_run": "/run and the unix sockets covered",
    "proc_read_only_parts": "/proc/sys, /proc/driver and the others kept read-only or covered",
    "rlimits": "the rlimits (CPU, file size, core dumps)",
    "cgroup_memory": "the memory cgroup",
    "cgroup_pids": "the pids cgroup",
    "caps_dropped": "dropping every capability and no_new_privs",
}
# Openings of the GPU set that `doctor --bisect` closes again one at a time: name -> what closing it puts back.
CLOSES = {
    "proc_writable": "a read-only /proc, as on the CPU",
    "address_space": "an address-space limit (RLIMIT_AS)",
    "driver_sys": "the driver's /sys paths covered",
    "uvm_tools": "no /dev/nvidia-uvm-tools",
    "gpu_pids": "the CPU set's max_pids",
}


@dataclass(frozen=True)
class FenceSet:
    """Which fences a run gets: the CPU set, or the GPU set (`gpu`), less the fences named in `lifted` (LIFTS) and
    with the openings named in `closed` (CLOSES) shut again. Only doctor's bisection lifts or closes anything."""

    gpu: bool = False
    lifted: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted((set(self.lifted) - set(LIFTS)) | (set(self.closed) - set(CLOSES)))
        if unknown:
            raise ValueError(f"unknown fence switches: {', '.join(unknown)}")

    def lifts(self, name: str) -> bool:
        return name in self.lifted

    def opens(self, name: str) -> bool:
        """Whether the GPU set's opening `name` (CLOSES) is open in this run."""
        return self.gpu and name not in self.closed
