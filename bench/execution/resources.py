"""What the machine offers a sweep: CPU worker slots, GPU worker slots, and what a slot's process uses.

A slot is one long-lived worker process. CPU slots come from `--jobs`; GPU slots are the visible GPUs
times `--jobs-per-gpu` (with `auto`: what fits each device, bench.execution.gpu_usage). Each GPU worker
sees exactly one device (CUDA_VISIBLE_DEVICES is set before the process imports anything), so `cuda`
inside a job always means "my GPU" and two workers never fight over one device unless asked to
(`--jobs-per-gpu 2`). CPU workers see no GPU at all, so a library that
probes for CUDA on its own cannot land on a device another worker owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from bench import settings
from bench.errors import BenchError


@dataclass(frozen=True)
class Slot:
    index: int
    gpu: str | None = None  # device id as CUDA_VISIBLE_DEVICES names it; None for a CPU slot

    @property
    def kind(self) -> str:
        return "cpu" if self.gpu is None else "cuda"

    @property
    def name(self) -> str:
        return f"cpu{self.index}" if self.gpu is None else f"gpu{self.gpu}.{self.index}"

    def environment(self, threads: int) -> dict[str, str]:
        """Environment a worker on this slot starts with: the sweep's settings and thread caps
        (worker_environment), and its one GPU (or none)."""
        return {**worker_environment(threads), "CUDA_VISIBLE_DEVICES": self.gpu if self.gpu is not None else ""}


def worker_environment(threads: int) -> dict[str, str]:
    """What every executor sets in a worker's environment before it imports any library: the
    environment settings of this (the driver's) process (bench.settings.forwarded: a Ray task on
    another node would otherwise see that node's environment) and thread caps for native libraries."""
    value = str(max(1, threads))
    caps = {k: value for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
    return {**settings.forwarded(), **caps}


def plan_slots(cpu_workers: int, gpus: list[str], jobs_per_gpu: int | dict[str, int] = 1) -> list[Slot]:
    """`jobs_per_gpu`: workers on every GPU, or per device id (what --jobs-per-gpu auto decides,
    bench.execution.gpu_usage)."""
    slots = [Slot(i) for i in range(cpu_workers)]
    for gpu in gpus:
        count = jobs_per_gpu.get(gpu, 1) if isinstance(jobs_per_gpu, dict) else jobs_per_gpu
        slots += [Slot(len(slots), gpu) for _ in range(max(1, count))]
    return slots


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def detect_gpus() -> int:
    """Number of NVIDIA GPUs on the machine, without importing torch in the parent process."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def visible_gpus(requested: str = "auto") -> list[str]:
    """Device ids the sweep may use.

    `requested`: "auto" (every GPU this process may see: CUDA_VISIBLE_DEVICES when set, else all that
    nvidia-smi lists), "none", or a comma-separated list of ids ("0,2").
    """
    text = (requested or "auto").strip().lower()
    if text in ("none", "no", "off", ""):
        return []
    if text != "auto":
        ids = [g.strip() for g in text.split(",") if g.strip()]
        if not all(g.isdigit() for g in ids):
            raise BenchError(f"--gpus takes 'auto', 'none' or device ids like '0,1'; got {requested!r}")
        return ids
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:  # the parent was already restricted: share out only those devices
        return [g.strip() for g in inherited.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(detect_gpus())]


class MemoryWatch:
    """Resident memory of a worker process and all its children (data loaders, native helpers).

    RLIMIT_AS is not used: CUDA and torch reserve huge virtual address ranges and break under it, and
    address space is not what runs a machine out of memory anyway.
    """

    def __init__(self, pid: int):
        import psutil

        self._psutil = psutil
        self.process = psutil.Process(pid)
        self.peak = 0

    def sample(self) -> int:
        total = 0
        try:
            procs = [self.process, *self.process.children(recursive=True)]
        except self._psutil.Error:
            return self.peak
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except self._psutil.Error:
                continue  # exited between listing and reading
        self.peak = max(self.peak, total)
        return total


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB"
