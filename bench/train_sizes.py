"""Learning curves over training-set size: the sizes (`bench run --train-sizes 0.1,0.25,0.5,1.0`) and the
nested, stratified subsamples of a split's learning data they select.

A size is a fraction in (0, 1] of a split's learning data, or a whole number of rows > 1 (of its training
and validation parts together, shared between them in proportion). Only the outer learning data is
subsampled: the split's training part and its validation part, each by the same fraction; the test part
is the same for every size. With inner folds (budget.inner_folds > 1) the folds are cut from the
subsampled training + validation rows (bench.tuning.crossfit), so the size applies there too.

Nested: each part's rows are put in one seeded order (bench.seeding.train_size_seed: from the protocol's
seed and the split, never from the size) and a size takes a prefix of it, so every smaller subset lies
inside every larger one, and every model of a split sees the same rows. Stratified (classification): the
order puts one row of every class first, then interleaves the classes, the i-th row of class c at the
evenly spaced position (i + 1/2) / n_c, so a prefix keeps each class's share within about a row and holds
every class once it has as many rows as there are classes.

A size too small for the protocol makes `skipped` records with the reason (too_small): more rows asked
for than the split has, fewer than MIN_TRAIN_ROWS rows for each model to fit on (with inner folds: K-1 of K
folds of the training + validation rows), a class of the training part with fewer than MIN_CLASS_ROWS
rows, an empty validation part (holdout), or fewer rows than the inner folds need.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.seeding import train_size_seed
from bench.splits import Split, fold_sizes, load_frozen, save_frozen, split_hash

OPTION = "--train-sizes"
MIN_TRAIN_ROWS = 10  # fewer training rows: no model's fit or validation score means anything
MIN_CLASS_ROWS = 2  # per class of the split's training part (or all its rows of that class, when fewer)


@dataclass(frozen=True)
class TrainSize:
    """One training-set size: `value` is a fraction in (0, 1], or with rows=True a number of rows > 1."""

    value: float
    rows: bool = False

    @property
    def label(self) -> str:
        """The size as records, job ids and leaderboards name it: "0.25", "1", or a row count "500"."""
        return str(int(self.value)) if self.rows else f"{self.value:.12g}"

    @property
    def suffix(self) -> str:
        """What a job id's split part gains: r0f0-size0.25, r0f0-rows500."""
        return f"-rows{self.label}" if self.rows else f"-size{self.label}"

    @property
    def full(self) -> bool:
        return not self.rows and self.value == 1.0

    @property
    def order(self) -> tuple[bool, float]:
        """Sort key: fractions by value, then row counts by value."""
        return self.rows, self.value

    @classmethod
    def parse(cls, given, option: str = OPTION) -> TrainSize:
        """A size from text ("0.25", "1", "500") or a number (a float is a fraction, an int > 1 a row count)."""
        if isinstance(given, TrainSize):
            return given
        text = str(given).strip()
        wrong = (f"{option}: {text!r} is neither a fraction in (0, 1] nor a whole number of rows > 1 "
                 f"(e.g. {OPTION} 0.1,0.25,0.5,1.0 or {OPTION} 100,1000)")
        if isinstance(given, bool):
            raise BenchError(wrong)
        if isinstance(given, int) or re.fullmatch(r"\d+", text):
            count = int(text)
            if count == 1:
                return cls(1.0)
            if count < 1:
                raise BenchError(wrong)
            return cls(float(count), rows=True)
        try:
            value = float(text)
        except ValueError:
            raise BenchError(wrong) from None
        if not (math.isfinite(value) and 0 < value <= 1):
            raise BenchError(wrong)
        return cls(value)


def parse_train_sizes(given: str | Sequence, option: str = OPTION) -> list[TrainSize]:
    """The sizes of `--train-sizes` (comma-separated text or a sequence), smallest first; each once, and
    either all fractions or all row counts (which of the two is larger depends on the dataset)."""
    items = given.split(",") if isinstance(given, str) else list(given)
    if not items or any(str(i).strip() == "" for i in items):
        raise BenchError(f"{option}: an empty size in {given!r}; give comma-separated fractions in (0, 1] or "
                         f"row counts > 1")
    sizes = [TrainSize.parse(i, option) for i in items]
    labels = [s.label for s in sizes]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise BenchError(f"{option}: {', '.join(twice)} given more than once in {given!r}")
    if len({s.rows for s in sizes}) > 1:
        raise BenchError(f"{option}: {given!r} mixes fractions and row counts; give one kind")
    return sorted(sizes, key=lambda s: s.order)


def nested_order(y: np.ndarray, classification: bool, rng: np.random.Generator) -> np.ndarray:
    """Positions 0..n-1 of a part's rows in the order sizes take them (see the module doc)."""
    tiebreak = rng.random(len(y))
    if not classification:
        return np.argsort(tiebreak, kind="stable")
    key = np.empty(len(y))
    for c in np.unique(y):
        where = np.flatnonzero(y == c)
        where = where[rng.permutation(len(where))]
        key[where] = (np.arange(len(where)) + 0.5) / len(where)
        key[where[0]] = -1.0  # one row of every class first
    return np.lexsort((tiebreak, key))


def part_counts(size: TrainSize, n_train: int, n_val: int) -> tuple[int, int]:
    """(training rows, validation rows) a size takes of a split's parts: the same fraction of each (a row
    count shared in proportion), rounded half up so that a larger size never takes fewer."""
    if size.rows:
        take = min(int(size.value), n_train + n_val)
        k_train = math.floor(take * n_train / max(1, n_train + n_val) + 0.5)
        return k_train, take - k_train
    return math.floor(size.value * n_train + 0.5), math.floor(size.value * n_val + 0.5)


def learning_share(size: TrainSize | str | None, n_learning: float) -> float:
    """The share of a split's `n_learning` training + validation rows a size takes (1 for the whole split):
    what `bench plan` scales a job's rows by, for planned and for measured jobs alike (bench.analysis.costs)."""
    if size is None or size == "":
        return 1.0
    size = TrainSize.parse(size)
    if not size.rows:
        return size.value
    return min(1.0, size.value / max(1.0, n_learning))


def subsample(split: Split, y: np.ndarray, classification: bool, size: TrainSize, seed: int) -> Split:
    """The split with its training and validation parts cut to `size` (the test part unchanged); `y` the
    dataset's targets, `seed` the protocol's (the order depends on the split, never on the size)."""
    if size.full:
        return split
    rng = np.random.default_rng(train_size_seed(seed, split.repeat, split.fold))
    k_train, k_val = part_counts(size, len(split.train), len(split.val))
    parts = []
    for rows, k in ((split.train, k_train), (split.val, k_val)):
        order = nested_order(y[rows], classification, rng)
        parts.append(np.sort(rows[order[:k]]).astype(np.int64))
    train, val = parts
    return Split(split.repeat, split.fold, train, val, split.test, split_hash(train, val, split.test), split.origin)


def too_small(full: Split, sub: Split, y: np.ndarray, classification: bool, size: TrainSize,
              inner_folds: int = 1) -> str | None:
    """Why `sub` (`full` cut to `size`) is too small for the protocol, or None."""
    at = f"train size {size.label} on split {full.label}"
    learning = len(full.train) + len(full.val)
    if size.rows and size.value > learning:
        return f"{at}: asks for {int(size.value)} rows, the split has {learning} training + validation rows"
    learning_sub = len(sub.train) + len(sub.val)
    fit_rows, _ = fold_sizes(len(sub.train), len(sub.val), inner_folds)  # the rows each model is fit on
    if fit_rows < MIN_TRAIN_ROWS:
        folds = f" (inner {inner_folds}-fold)" if inner_folds > 1 else ""
        return f"{at}: {fit_rows} rows each model is fit on{folds}, fewer than {MIN_TRAIN_ROWS}"
    if inner_folds <= 1 and not len(sub.val):
        return f"{at}: no validation row"
    if inner_folds > 1 and learning_sub < 2 * inner_folds:
        return (f"{at}: {learning_sub} training + validation rows, fewer than inner_folds = {inner_folds} needs "
                f"({2 * inner_folds})")
    if classification:
        classes, counts = np.unique(y[full.train], return_counts=True)
        have = dict(zip(*np.unique(y[sub.train], return_counts=True)))
        for c, n in zip(classes, counts):
            if have.get(c, 0) < min(MIN_CLASS_ROWS, n):
                return (f"{at}: {have.get(c, 0)} training rows of class {c}, fewer than {MIN_CLASS_ROWS} "
                        f"per class")
    return None


@dataclass(frozen=True)
class SizedSplits:
    """One size's splits of a dataset, the file they are frozen in, and per split why it is too small."""

    size: TrainSize
    splits: list[Split]
    file: Path
    reasons: list[str | None]


def cut(splits: list[Split], y: np.ndarray, classification: bool, size: TrainSize, seed: int,
        inner_folds: int = 1) -> tuple[list[Split], list[str | None]]:
    """Every split cut to `size`, and per split why it is too small (None: it is not; the whole split never
    is). Nothing is written: sized_splits freezes them for a sweep, `bench plan` only counts their rows."""
    if size.full:
        return splits, [None] * len(splits)
    subs = [subsample(s, y, classification, size, seed) for s in splits]
    return subs, [too_small(f, s, y, classification, size, inner_folds) for f, s in zip(splits, subs)]


def sized_splits(splits: list[Split], split_file: Path, y: np.ndarray, classification: bool, size: TrainSize,
                 seed: int, inner_folds: int = 1, root: Path | None = None) -> SizedSplits:
    """Every split cut to `size` (`cut`), frozen beside the full splits' file (<its name>-size0.25.npz: written
    when missing, damaged or different; the full size uses the full splits' own file)."""
    subs, reasons = cut(splits, y, classification, size, seed, inner_folds)
    if size.full:
        return SizedSplits(size, splits, split_file, reasons)
    path = split_file.with_name(f"{split_file.stem}{size.suffix}.npz")
    frozen = load_frozen(path)
    if frozen is None or [s.hash for s in frozen] != [s.hash for s in subs]:
        save_frozen(path, subs, root)
    return SizedSplits(size, subs, path, reasons)
