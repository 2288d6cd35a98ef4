"""What the in-context models TabPFN, TabICL and TabDPT share: weights found on local disk only, never
downloaded (LocalWeights); a CPU bound on the training rows (InContextCapabilities); the matrix they read.

Weights. The packages download their checkpoint from the Hugging Face Hub when they are given no path.
Benchmark machines often have no internet, and a download must never hang a sweep, so the adapters only
ever hand the package a checkpoint file that exists, found in this order:
  1. the model's variable (BENCH_TABPFN_WEIGHTS, BENCH_TABICL_WEIGHTS, BENCH_TABDPT_WEIGHTS): a checkpoint
     file, or a folder holding one (the package's default file name first, then any file matching the
     model's pattern);
  2. TabPFN: tabpfn's own cache folder (a PackageCache, bench.adapters.models.tabpfn); the others: the
     Hugging Face cache, where a connected machine's earlier download of the package's default file
     lies: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
     ~/.cache/huggingface/hub, then models--OWNER--NAME/snapshots/REVISION/FILE (huggingface_hub's cache
     layout, huggingface_hub/constants.py; looked up here without importing huggingface_hub, so that
     `bench models list` stays light).
TabICL and TabDPT load with HF_HUB_OFFLINE=1 (`offline_hub`), so no code path of theirs can reach the network
(tabpfn downloads only when the path it is given is missing).
Without a file, jobs become "unavailable" records saying where we looked; a file that does not load
becomes a "failed" record naming the file.

CPU bound. TabPFN refuses more than 1,000 training rows on CPU (tabpfn's own cpu_sample_limit); TabICL and
TabDPT set no such bound, but are transformers of the same kind whose cost grows with the square of the
context. Measured on one busy core with random checkpoints (TabICL at its package's default architecture,
27.5M parameters; TabDPT at an assumed 12 layers of width 512, 32M parameters, since its size comes with the
checkpoint, which was not available), fitting and predicting 250 rows with 8 ensemble members took about
25 s (TabICL) and 12 s (TabDPT) from 1,000 training rows, 65 s and 40 s from 2,000.
They take the same 1,000-row CPU bound as TabPFN, so that on a CPU-only run the three in-context models
are compared on the same datasets; BENCH_ALLOW_CPU_LARGE_DATASET=1 lifts it (TABPFN_ALLOW_CPU_LARGE_DATASET,
tabpfn's own switch, lifts TabPFN's).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Generic, Mapping

import numpy as np
import pandas as pd

from bench import settings
from bench.adapters.framework.contract import Adapter, Capabilities, ParamsT, TrivialFitFallback, missing_extra
from bench.adapters.space import Param
from bench.preprocessing import TreeFramePreprocessor
from bench.settings import Setting
from bench.vocabulary import TrialEnd

ALLOW_CPU_ENV = settings.ALLOW_CPU_LARGE_DATASET.name
CPU_ROWS = 1_000  # the same bound as TabPFN's (see the module docstring)
KINDS = ("classifier", "regressor")


def checkpoint_kind(task_type: str) -> str:
    return "regressor" if task_type == "regression" else "classifier"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it (without importing it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var, "").strip():
            return Path(os.environ[var].strip()).expanduser()
    if os.environ.get("HF_HOME", "").strip():
        return Path(os.environ["HF_HOME"].strip()).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


@dataclass(frozen=True)
class PackageCache:
    """A package's own flat cache folder (TabPFN's), searched instead of the Hugging Face cache when the
    model's variable is not set."""

    label: str  # "tabpfn's cache": for messages
    folder: Callable[[], Path]


@dataclass(frozen=True)
class LocalWeights:
    """Where one model's checkpoints may lie on this machine."""

    model: str  # "TabICL": for messages
    setting: Setting  # the variable naming a file or a folder (bench.settings)
    hf_repo: str  # "owner/name" on the Hugging Face Hub, for the cache and for messages
    files: dict[str, str]  # kind -> the package's default file name (one file may serve both kinds)
    patterns: dict[str, str] = field(default_factory=dict)  # kind -> glob for other versions in a folder
    preferred: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> names tried before files[kind]
    hf_repos: dict[str, str] = field(default_factory=dict)  # kind -> its repository where it is not hf_repo
    package_cache: PackageCache | None = None  # searched instead of the Hugging Face cache

    @property
    def env(self) -> str:
        return self.setting.name

    def configured(self) -> Path | None:
        value = self.setting.value()
        return Path(value).expanduser() if value else None

    def names(self, kind: str) -> tuple[str, ...]:
        """File names for `kind`, in the order they are used."""
        return (*self.preferred.get(kind, ()), self.files[kind])

    def find(self, kind: str) -> Path | None:
        """The checkpoint file to use for `kind` ("classifier" / "regressor"), or None."""
        place = self.configured()
        if place is None and self.package_cache is not None:
            place = self.package_cache.folder()
        if place is not None:
            if place.is_file():
                return place if self._serves(place.name, kind) else None
            return self._in_folder(place, kind) if place.is_dir() else None
        snapshots = hf_hub_cache() / ("models--" + self.hf_repo.replace("/", "--")) / "snapshots"
        if snapshots.is_dir():
            for revision in sorted(snapshots.iterdir()):
                for name in self.names(kind):
                    if (revision / name).is_file():
                        return revision / name
        return None

    def _serves(self, name: str, kind: str) -> bool:
        """A single file serves the kind its name says, or both kinds if it names neither."""
        other = "regressor" if kind == "classifier" else "classifier"
        return kind in name or other not in name

    def _in_folder(self, folder: Path, kind: str) -> Path | None:
        for name in self.names(kind):
            if (folder / name).is_file():
                return folder / name
        pattern = self.patterns.get(kind)
        matches = sorted(p for p in folder.glob(pattern) if p.is_file()) if pattern else []
        return matches[0] if matches else None

    def missing_message(self, kinds: list[str]) -> str:
        place = self.configured()
        if place is not None:
            where = f"{place} ({self.env})"
        elif self.package_cache is not None:
            where = f"{self.package_cache.folder()} ({self.package_cache.label}; {self.env} is not set)"
        else:
            where = f"the Hugging Face cache {hf_hub_cache()} ({self.env} is not set)"
        wanted = " and ".join(sorted({f"{self.files[k]} (huggingface.co/{self.hf_repos.get(k, self.hf_repo)})"
                                      for k in kinds}))
        return (f"no {self.model} {'/'.join(kinds)} weights: looked in {where}. They are not downloaded here; "
                f"copy {wanted} into a folder and set {self.env} to it (or to the file)")

    def unavailable_reason(self, task_type: str | None) -> str | None:
        """For Adapter.unavailable_reason: None when a checkpoint for the task type (any task type when None)
        is found, else where it was looked for."""
        kinds = [checkpoint_kind(task_type)] if task_type else list(KINDS)
        if any(self.find(kind) is not None for kind in kinds):
            return None
        return self.missing_message(kinds)


@dataclass(frozen=True)
class InContextCapabilities(Capabilities):
    max_cpu_rows: int | None = CPU_ROWS  # lifted by cpu_switch
    cpu_switch: Setting = settings.ALLOW_CPU_LARGE_DATASET
    cpu_bound: str = "the CPU bound of {rows} for in-context models"  # how refusals name the bound

    def refusal(self, task_type: str, n_rows: int, n_features: int, n_classes: int,
                device: str = "cpu") -> str | None:
        reason = super().refusal(task_type, n_rows, n_features, n_classes, device)
        if reason is None and device != "cuda" and self.max_cpu_rows is not None \
                and n_rows > self.max_cpu_rows and not self.cpu_switch.on():
            reason = (f"{n_rows} training rows exceed {self.cpu_bound.format(rows=self.max_cpu_rows)} "
                      f"(no GPU assigned; set {self.cpu_switch.name}=1 to run on CPU anyway, slowly)")
        return reason


class InContextAdapter(TrivialFitFallback, Adapter[ParamsT], Generic[ParamsT]):
    """An in-context model through its package (TabPFN, TabICL, TabDPT): nothing to tune (used as published)
    or stop early, the validation part unused (adding it to the context would give the model more labelled
    rows than the others learn from), the tree frame as input, weights from local files only."""

    family = "neural"
    search_space: ClassVar[Mapping[str, Param]] = {}
    package: ClassVar[str]  # the module its optional extra installs ("tabpfn"), looked up without importing it
    local_weights: ClassVar[LocalWeights]

    @classmethod
    def unavailable_reason(cls, task_type: str | None = None) -> str | None:
        return (missing_extra(cls.package, cls.extra or cls.package)
                or cls.local_weights.unavailable_reason(task_type))

    def make_preprocessor(self):
        return TreeFramePreprocessor()

    def checkpoint(self) -> Path:
        """The weights file for the task type (unavailable_reason found one before the job started)."""
        kind = checkpoint_kind(self.task.task_type)
        path = self.local_weights.find(kind)
        if path is None:  # gone since
            raise RuntimeError(self.local_weights.missing_message([kind]))
        return path

    def record_context(self, path: Path, n_rows: int) -> None:
        """ctx.record_end of an in-context fit: nothing iterates, so there is nothing a deadline could cut."""
        self.ctx.record_end(TrialEnd.CONVERGED, weights=str(path), n_context_rows=n_rows)


@contextmanager
def offline_hub():
    """HF_HUB_OFFLINE=1 while a package loads its weights: huggingface_hub reads the variable when it is
    first imported, and its constant is set too where it was imported already."""
    import sys

    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    old_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
        if constants is not None:
            constants.HF_HUB_OFFLINE = old_constant


def code_matrix(X: pd.DataFrame) -> np.ndarray:
    """float32 matrix: numerics as they are, categoricals as their integer codes, NaN for missing."""
    columns = []
    for c in X.columns:
        if isinstance(X[c].dtype, pd.CategoricalDtype):
            codes = X[c].cat.codes.to_numpy(dtype="float32")
            codes[codes < 0] = np.nan  # pandas codes missing as -1
            columns.append(codes)
        else:
            columns.append(X[c].to_numpy(dtype="float32"))
    return np.column_stack(columns).astype("float32") if columns else np.zeros((len(X), 0), "float32")


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes seen, labels as 0..k-1): models that read the label as a class index need no holes."""
    seen, codes = np.unique(np.asarray(y, dtype=int), return_inverse=True)
    return seen, codes.astype(int)
