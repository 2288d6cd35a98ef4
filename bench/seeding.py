"""Every seed the harness derives, from one function.

A sweep has one base seed (`bench run --seed`, a suite protocol's `seed`). Everything else that needs
randomness (a job's model seed, the refit seeds of `--seeds N`, the inner validation split of each
outer fold, the nested training subsets of --train-sizes, inner cross-validation folds, the tuning
sampler's draw for each trial) gets its own seed from `derive_seed(base, *keys)`: numpy's SeedSequence
mixes the base and the keys into a well-spread 31-bit value, so neighbouring keys (split 0 and split 1,
refit 1 and refit 2) never give correlated streams, and the same keys always give the same seed on
every machine.
"""

from __future__ import annotations

import hashlib

import numpy as np

MAX_SEED = 2**31  # what every library takes (torch, XGBoost, LightGBM, CatBoost, numpy, Optuna)


def derive_seed(base: int, *keys: int | str) -> int:
    """A seed in [0, 2**31) for `base` and a path of keys, e.g. derive_seed(0, "model", 3)."""
    words = [int(base) % 2**32]
    for key in keys:
        if isinstance(key, str):  # names (purposes) become a stable 32-bit word
            words.append(int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "little"))
        else:
            words.append(int(key) % 2**32)
    return int(np.random.SeedSequence(words).generate_state(1)[0] % MAX_SEED)


def job_seed(base: int, split_index: int) -> int:
    """The model seed of every job on one split (tuning sampler, model initialization)."""
    return derive_seed(base, "job", split_index)


def refit_seeds(seed: int, n: int) -> list[int]:
    """The job's seed first (the tuning seed), then n-1 more for `--seeds N` refits."""
    return [seed, *(derive_seed(seed, "refit", i) for i in range(1, n))]


def validation_seed(base: int, repeat: int, fold: int) -> int:
    """The inner train/validation split of one outer fold."""
    return derive_seed(base, "validation", repeat, fold)


def train_size_seed(base: int, repeat: int, fold: int) -> int:
    """The order a split's learning rows are taken in by `--train-sizes` (bench.train_sizes): one order
    for every size of the split, so the subsets are nested."""
    return derive_seed(base, "train-size", repeat, fold)


def calibration_seed(base: int, index: int) -> int:
    """The base seed of `bench plan --calibrate`'s run on its index-th dataset: each dataset draws its own
    sampled configurations (a sweep's draws are shared by every dataset of a split)."""
    return derive_seed(base, "calibration", index)


def trial_sampler_seed(seed: int, trial_number: int, tuner: str = "") -> int:
    """The seed of the tuning sampler's draw for one trial (bench.tuning.samplers.make_sampler): a
    function of the job seed, the trial's number and the tuner's name only, so that a study resumed
    after a kill draws for trial n exactly what an uninterrupted run drew for it (the sampler's
    history, the study's finished trials, being the same), and two tuners of a shared study never
    draw alike."""
    return derive_seed(seed, "sampler", trial_number, tuner)
