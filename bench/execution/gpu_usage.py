"""What the GPUs have room for and how busy they were: `--jobs-per-gpu auto` and utilization samples.

Everything comes from `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, so the parent
process never imports torch or initializes CUDA (a CUDA context in the parent would take memory on
every device and break forked children).

`--jobs-per-gpu auto` (local executor): workers per GPU = how many jobs of the measured size fit in
the device's free memory, at most one per CPU core left for GPU workers, at least 1:

    per GPU: max(1, min(floor(HEADROOM * free / footprint), (cores - cpu workers) // gpus))

footprint = CUDA_CONTEXT_BYTES (what a process's CUDA context and library workspaces take outside
torch's allocator) + the largest per-job peak already measured for the planned GPU models: the
`cuda_peak_bytes` (torch.cuda.max_memory_allocated during the fit) that GPU records of this run folder
carry in fit_info, from earlier or resumed runs. A planned GPU model with no measurement yet counts
with DEFAULT_JOB_BYTES, a conservative estimate for the default networks at batch <= 1024 and for the
GPU GBDTs on datasets of up to a few 100k rows. Without nvidia-smi (or when it fails) auto means 1.
The CPU cap exists because a GPU worker is launch-bound: it needs a core of its own to feed the device.

Utilization: while GPU workers run, the parent samples `utilization.gpu,memory.used` of its GPUs every
SAMPLE_SECONDS (environment: BENCH_GPU_SAMPLE_SECONDS) and appends them to <run>/gpu-utilization.csv
(time, elapsed_s, gpu, utilization_pct, memory_used_mib); `bench report` plots it when present.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Self

from bench import settings
from bench.safe_files import UnsafePathError, open_in_place

MIB = 2**20
GIB = 2**30
DEFAULT_JOB_BYTES = 4 * GIB
CUDA_CONTEXT_BYTES = 600 * MIB
HEADROOM = 0.9  # share of the free memory handed out: allocator fragmentation, evaluation peaks
SAMPLE_SECONDS = 5.0
SAMPLE_FILE = "gpu-utilization.csv"
SAMPLE_COLUMNS = ("time", "elapsed_s", "gpu", "utilization_pct", "memory_used_mib")


def query(fields: list[str], timeout: float = 20) -> list[dict[str, str]] | None:
    """One row per GPU with the requested nvidia-smi fields (strings), or None when nvidia-smi is
    missing or fails. Lines that do not have one value per field are left out."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    rows = []
    for line in done.stdout.splitlines():
        values = [v.strip() for v in line.split(",")]
        if len(values) == len(fields) and values[0]:
            rows.append(dict(zip(fields, values)))
    return rows


def _number(text: str) -> float | None:
    """nvidia-smi numbers: '81050', '81050 MiB', '35 %'; '[N/A]', '[Not Supported]' are None."""
    try:
        value = float(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None
    return value if value is not None and math.isfinite(value) else None


def match(rows: list[dict[str, str]], gpu: str) -> dict[str, str] | None:
    """The row of a device id as CUDA_VISIBLE_DEVICES names it: an index or a UUID."""
    return next((r for r in rows if gpu in (r.get("index"), r.get("uuid"))), None)


def free_memory(gpus: list[str]) -> dict[str, int | None]:
    """Free bytes per device id (None where nvidia-smi could not tell)."""
    rows = query(["index", "uuid", "memory.free"]) or []
    out = {}
    for gpu in gpus:
        row = match(rows, gpu)
        mib = _number(row["memory.free"]) if row else None
        out[gpu] = int(mib * MIB) if mib is not None else None
    return out


def measured_footprints(records) -> dict[str, int]:
    """Largest cuda_peak_bytes per model over GPU records (fit_info, and each seed's fit_info)."""
    out: dict[str, int] = {}
    for r in records:
        if r.get("device") != "cuda":
            continue
        infos = [r.get("fit_info") or {}] + [s.get("fit_info") or {} for s in r.get("test_by_seed") or []
                                               if isinstance(s, dict)]
        peaks = [peak for i in infos if isinstance(peak := i.get("cuda_peak_bytes"), (int, float))]
        if peaks:
            out[r["model"]] = max(out.get(r["model"], 0), int(max(peaks)))
    return out


@dataclass
class Footprint:
    bytes: int
    source: str  # for the note: what it is made of


def job_footprint(gpu_models: list[str], measured: dict[str, int]) -> Footprint:
    """Per-job GPU memory to plan with: the largest of the planned GPU models (module docstring)."""
    parts = {m: measured.get(m) for m in gpu_models}
    peak = max([p if p is not None else DEFAULT_JOB_BYTES for p in parts.values()], default=DEFAULT_JOB_BYTES)
    known = sorted(m for m, p in parts.items() if p is not None)
    unknown = sorted(m for m, p in parts.items() if p is None)
    source = "; ".join(filter(None, [
        f"measured peak of {', '.join(known)}" if known else "",
        f"default estimate {DEFAULT_JOB_BYTES / GIB:.0f} GiB for {', '.join(unknown)} (not measured yet)"
        if unknown else ""]))
    return Footprint(peak + CUDA_CONTEXT_BYTES, f"{source}; + {CUDA_CONTEXT_BYTES / MIB:.0f} MiB CUDA context")


def auto_jobs_per_gpu(gpus: list[str], free: dict[str, int | None], footprint: Footprint, cores: int,
                      cpu_workers: int) -> tuple[dict[str, int], str]:
    """Workers per device id and a note saying how they were chosen."""
    per_core = max(1, (cores - cpu_workers) // max(1, len(gpus)))
    counts, parts = {}, []
    for gpu in gpus:
        free_bytes = free.get(gpu)
        if free_bytes is None:
            counts[gpu] = 1
            parts.append(f"GPU {gpu}: 1 (free memory unknown)")
            continue
        fits = math.floor(HEADROOM * free_bytes / footprint.bytes)
        counts[gpu] = max(1, min(fits, per_core))
        parts.append(f"GPU {gpu}: {counts[gpu]} ({free_bytes / GIB:.1f} GiB free x {HEADROOM} / "
                     f"{footprint.bytes / GIB:.2f} GiB per job = {fits}; CPU cap {per_core})")
    return counts, (f"--jobs-per-gpu auto: {'; '.join(parts)}. Per-job footprint: {footprint.source}.")


class GpuSampler:
    """Background thread of the parent: utilization and memory of `gpus`, appended to `path`."""

    def __init__(self, path: Path, gpus: list[str], interval: float | None = None):
        self.path, self.gpus = Path(path), list(gpus)
        self.interval = interval if interval is not None else float(settings.GPU_SAMPLE_SECONDS.value()
                                                                                 or SAMPLE_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-gpu-sampler", daemon=True)
        self._began = time.monotonic()
        self.samples = 0

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()  # one last point, so that even a short sweep has a start and an end

    def _run(self) -> None:
        self.sample()
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        rows = query(["index", "uuid", "utilization.gpu", "memory.used"], timeout=max(5.0, self.interval))
        if not rows:
            return  # no nvidia-smi, or it failed this time: a gap in the curve, never a failed sweep
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        elapsed = round(time.monotonic() - self._began, 2)
        lines = []
        for gpu in self.gpus:
            row = match(rows, gpu)
            if row:
                lines.append([stamp, elapsed, gpu, _number(row["utilization.gpu"]), _number(row["memory.used"])])
        if not lines:
            return
        new = not self.path.exists()
        try:  # in the run folder, never through a link (bench.safe_files)
            fd = open_in_place(self.path, self.path.parent, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            with os.fdopen(fd, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(SAMPLE_COLUMNS)
                writer.writerows([["" if v is None else v for v in line] for line in lines])
        except (OSError, UnsafePathError):
            return
        self.samples += 1
