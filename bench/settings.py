"""Every setting the harness reads from the environment, in one list: name, meaning, default.

This is a ground-floor module (it imports nothing of the harness), so that every stage, adapters
included, reads its environment settings from here and nowhere else. The executors forward the
settings that are set in the driver's environment to their workers (`forwarded`): local worker
processes and Ray tasks on any node then run with the sweep's settings, not with whatever each
node's environment happens to hold (a plug-in adapter module named in BENCH_ADAPTER_MODULES is
imported on a remote node too; it must be importable there, e.g. installed or on its PYTHONPATH).

Variables of other packages that the harness only passes through (HF_HOME, XDG_CACHE_HOME,
TABPFN_MODEL_CACHE_DIR: where a library keeps its own cache on each machine) are not settings of the
sweep and are not listed or forwarded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FALSE_WORDS = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    meaning: str
    default: str  # what applies when the variable is unset (in words)

    def value(self) -> str:
        """The variable's value with surrounding whitespace removed ('' when unset)."""
        return os.environ.get(self.name, "").strip()

    def on(self) -> bool:
        """For switches: set to anything but empty, 0, false, no or off."""
        return self.value().lower() not in FALSE_WORDS

    def items(self) -> list[str]:
        """For lists: the os.pathsep-separated items (':' on Linux), empty ones left out."""
        return [item for item in self.value().split(os.pathsep) if item]


CACHE_DIR = Setting("BENCH_CACHE_DIR", "folder of the cache of materialized datasets, frozen splits and OpenML "
                    "suite task lists", "~/.cache/tabular-bench")
SUITES_PATH = Setting("BENCH_SUITES_PATH", "folders (os.pathsep-separated) searched for named suites before "
                      "./suites and the built-in ones", "none")
OFFLINE20_DIR = Setting("BENCH_OFFLINE20_DIR", "the offline-20 data folder (read by suites/offline-20.toml as "
                        "${BENCH_OFFLINE20_DIR:-...})", "../shared/data/suites/offline-20, relative to the "
                        "working directory")
TALENT_DIR = Setting("BENCH_TALENT_DIR", "the folder of TALENT's example datasets with their fixed splits (read by "
                     "suites/talent.toml as ${BENCH_TALENT_DIR:-...})", "../shared/data/published/talent, relative "
                     "to the working directory")
ADAPTER_MODULES = Setting("BENCH_ADAPTER_MODULES", "extra modules (os.pathsep-separated) imported for the models "
                          "they register, in the driver and in every worker", "none")
FAST_PATH = Setting("BENCH_FAST_PATH", "the torch training loop of every fit: off, eager, graph or compile "
                    "(overrides each model's fast_path parameter)", "each model's fast_path (auto)")
GPU_SAMPLE_SECONDS = Setting("BENCH_GPU_SAMPLE_SECONDS", "seconds between GPU utilization samples while GPU "
                             "workers run (gpu-utilization.csv)", "5")
TABPFN_WEIGHTS = Setting("BENCH_TABPFN_WEIGHTS", "TabPFN v2 checkpoint file, or a folder holding them",
                         "tabpfn's cache folder (~/.cache/tabpfn)")
TABICL_WEIGHTS = Setting("BENCH_TABICL_WEIGHTS", "TabICL checkpoint file, or a folder holding them",
                         "the Hugging Face cache (~/.cache/huggingface/hub)")
TABDPT_WEIGHTS = Setting("BENCH_TABDPT_WEIGHTS", "TabDPT checkpoint file, or a folder holding it",
                         "the Hugging Face cache (~/.cache/huggingface/hub)")
ALLOW_CPU_LARGE_DATASET = Setting("BENCH_ALLOW_CPU_LARGE_DATASET", "switch: TabICL and TabDPT on CPU take more "
                                  "than 1,000 training rows", "off")
TABPFN_ALLOW_CPU_LARGE_DATASET = Setting("TABPFN_ALLOW_CPU_LARGE_DATASET", "switch (tabpfn's own): TabPFN on CPU "
                                         "takes more than 1,000 training rows", "off")
OPENML_CACHE_DIR = Setting("OPENML_CACHE_DIR", "the openml package's cache folder", "openml's own (~/.cache/openml)")

SETTINGS: tuple[Setting, ...] = (
    CACHE_DIR, SUITES_PATH, OFFLINE20_DIR, TALENT_DIR, ADAPTER_MODULES, FAST_PATH, GPU_SAMPLE_SECONDS, TABPFN_WEIGHTS,
    TABICL_WEIGHTS, TABDPT_WEIGHTS, ALLOW_CPU_LARGE_DATASET, TABPFN_ALLOW_CPU_LARGE_DATASET, OPENML_CACHE_DIR,
)


def forwarded() -> dict[str, str]:
    """The settings set in this process's environment, for a worker's environment (both executors)."""
    return {s.name: os.environ[s.name] for s in SETTINGS if s.name in os.environ}
