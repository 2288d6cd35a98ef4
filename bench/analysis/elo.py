"""Elo ratings (Bradley-Terry over per-split battles) and the pairwise win-rate matrix.

A battle: two entries on the same split of the same dataset; the one with the better test score wins,
equal scores are a tie (half a win each). The battles are built from `bench.analysis.stats.split_scores`,
so the rules are the leaderboard's: an entry that failed on a split loses to every entry that
finished it (two failed entries tie); a record that was not run (skipped or unavailable) takes no
part, it never loses; a dataset where nothing finished is left out.

Bradley-Terry: P(i beats j) = sigmoid(b_i - b_j), fit by weighted logistic regression
(scikit-learn) on the aggregated battles. Elo points = 1000 + 400 / ln(10) * (b_i - b_anchor): the
anchor entry (default: the random forest with default settings, as TabArena does, Erickson et al.
2025) sits at 1000, and 400 Elo points mean 10:1 odds. Confidence intervals: percentile bootstrap
over datasets (resampled with replacement, refit each time), as TabArena's task-level bootstrap.

Two weightings of the battles (EloWeighting), named in every table and plot that shows Elo:
  dataset   (the default) every dataset's battles share a total weight of 1 however many splits and
            entries it has, counted as BATTLES_PER_DATASET battles in the likelihood against a weak
            Gaussian prior on b (L2, C = PRIOR_C) that keeps ratings finite and moderate when an entry
            wins or loses every battle.
  tabarena  TabArena's: each battle weighs 1 / (the dataset's number of splits), so every pair of
            entries carries weight 1 per dataset, and the fit is almost without a prior
            (LogisticRegression(C=1e6, fit_intercept=False, max_iter=1000) on features +-ln(10),
            Elo = 400 * coefficient), so ratings are comparable with TabArena's leaderboard. Source:
            github.com/autogluon/tabarena, packages/bencheval/src/bencheval/elo_utils.py,
            `EloHelper.convert_results_to_battles` (weight = 1 / n_splits(task)) and
            `EloHelper.compute_mle_elo` with `_aggregate_battles_for_mle` (read at commit 84093d6).
            One difference: where an entry wins (or loses) every battle TabArena falls back to
            iterative Elo; here the tiny prior keeps the fit, so such ratings are very large but finite.
"""

from __future__ import annotations

import difflib
import math

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from bench.analysis.options import EloWeighting
from bench.analysis.stats import split_scores
from bench.vocabulary import CROSS_MODEL, Status, Variant

ELO_BASE = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)
PRIOR_C = 10.0
# Each dataset's battles (shares summing to 1) count as this many battles in the likelihood, so the
# prior weighs as much as a few battles, whatever the number of splits or entries.
BATTLES_PER_DATASET = 100.0
TABARENA_C = 1e6  # bencheval elo_utils.py: LogisticRegression(..., C=1e6)
ANCHOR_PREFERENCE = ("random_forest/default", "linear/default", "dummy/default")


def dataset_battles(frame: pd.DataFrame, entries: list[str] | None = None,
                    weighting: EloWeighting = EloWeighting.DATASET) -> tuple[list[str], dict[str, np.ndarray]]:
    """Per dataset a matrix W[i, j] = weighted wins of entry i over entry j (ties: half to each):
    normalized so that every dataset's battles sum to 1 (dataset weighting), or each battle weighing
    1 / the dataset's number of splits (TabArena weighting)."""
    weighting = EloWeighting.parse(weighting)
    rows = split_scores(frame)
    entries = entries or sorted(rows.entry.unique())
    index = {e: i for i, e in enumerate(entries)}
    out = {}
    for dataset, d in rows.groupby("dataset"):
        if not (d.state == Status.OK).any():
            continue  # no scale, as in the leaderboard
        wins = np.zeros((len(entries), len(entries)))
        n_splits = d.split.nunique()
        for _, s in d.groupby("split"):
            ids = np.array([index[e] for e in s.entry])
            vals = s.signed.to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):  # -inf - -inf: two failures, a tie below
                diff = vals[:, None] - vals[None, :]
            same = (diff == 0) | (np.isinf(vals[:, None]) & np.isinf(vals[None, :]))
            outcome = np.where(same, 0.5, (diff > 0).astype(float))
            np.fill_diagonal(outcome, 0.0)
            wins[np.ix_(ids, ids)] += outcome
        total = wins.sum()
        if total > 0:
            out[dataset] = wins / n_splits if weighting is EloWeighting.TABARENA else wins / total
    return entries, out


def fit_bradley_terry(wins: np.ndarray, weighting: EloWeighting = EloWeighting.DATASET) -> np.ndarray:
    """Strengths b (natural-log odds scale, mean 0) from an aggregated win matrix."""
    k = len(wins)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k) if wins[i, j] + wins[j, i] > 0]
    if not pairs:
        return np.zeros(k)
    tabarena = weighting is EloWeighting.TABARENA
    unit = math.log(10.0) if tabarena else 1.0  # TabArena's features are +-ln(10): coefficients in log10 odds
    X = np.zeros((2 * len(pairs), k))
    y = np.tile([1, 0], len(pairs))
    weight = np.empty(2 * len(pairs))
    for n, (i, j) in enumerate(pairs):
        X[2 * n, i], X[2 * n, j] = unit, -unit
        X[2 * n + 1] = X[2 * n]
        weight[2 * n], weight[2 * n + 1] = wins[i, j], wins[j, i]
    model = LogisticRegression(C=TABARENA_C if tabarena else PRIOR_C, fit_intercept=False, max_iter=1000)
    model.fit(X, y, sample_weight=weight if tabarena else weight * BATTLES_PER_DATASET)
    b = model.coef_.ravel() * unit
    return b - b.mean()


def choose_anchor(entries: list[str], anchor: str | None = None) -> str:
    """The entry fixed at Elo 1000: `anchor` (--elo-anchor) when given, which must be an entry of the run
    (the ValueError names it, suggests the closest entries and lists them all); else the first of
    ANCHOR_PREFERENCE present (random_forest/default whenever it ran), else the first default entry that
    is not the cross-model ensemble, else the first entry. `anchor_note` says which and why."""
    if anchor is not None:
        if anchor not in entries:
            close = difflib.get_close_matches(anchor, entries, n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"--elo-anchor {anchor!r} is not an entry of this run{hint} "
                             f"(entries: {', '.join(entries)})")
        return anchor
    fallback = [e for e in entries if e.endswith(f"/{Variant.DEFAULT}") and not e.startswith(f"{CROSS_MODEL}/")]
    return next((a for a in ANCHOR_PREFERENCE if a in entries), (fallback or entries)[0])


def anchor_note(anchor: str | None, chosen: bool = False) -> str:
    """What every Elo table and plot says about its anchor: which entry sits at 1000, and why that one."""
    if anchor is None:
        return "no Elo (no dataset where an entry finished)"
    if chosen:
        return f"Elo anchor: {anchor} = 1000 (chosen with --elo-anchor)"
    if anchor == ANCHOR_PREFERENCE[0]:
        return f"Elo anchor: {anchor} = 1000"
    return (f"Elo anchor: {anchor} = 1000 ({ANCHOR_PREFERENCE[0]} is not in this run; "
            f"--elo-anchor picks another entry)")


# Why the two orders can differ, said next to every Elo table (report, README).
ELO_VS_SCORE = ("Elo and the normalized-score table can order entries differently: Elo counts only who beat whom "
                "on each split (a narrow win counts as much as a wide one), while the normalized score averages by "
                "how much, so an entry that is a close second everywhere can rank high by score and low by Elo, and "
                "one that often wins narrowly but sometimes fails badly the other way round.")


def elo_table(frame: pd.DataFrame, anchor: str | None = None, n_boot: int = 200, level: float = 0.95,
              seed: int = 0, weighting: EloWeighting = EloWeighting.DATASET) -> pd.DataFrame:
    """Per entry: Elo, bootstrap CI, the anchor used and its note (columns entry, elo, elo_ci_low, elo_ci_high,
    anchor, anchor_note)."""
    weighting = EloWeighting.parse(weighting)
    entries, per_dataset = dataset_battles(frame, weighting=weighting)
    if not per_dataset:
        return pd.DataFrame(columns=["entry", "elo", "elo_ci_low", "elo_ci_high", "anchor", "anchor_note"])
    anchor_entry = choose_anchor(entries, anchor)
    a = entries.index(anchor_entry)
    stacked = np.stack(list(per_dataset.values()))

    def elo(wins):
        b = fit_bradley_terry(wins, weighting)
        return ELO_BASE + ELO_SCALE * (b - b[a])

    point = elo(stacked.sum(axis=0))
    rng = np.random.default_rng(seed)
    boot = np.array([elo(stacked[rng.integers(0, len(stacked), len(stacked))].sum(axis=0))
                     for _ in range(n_boot)])
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    table = pd.DataFrame({"entry": entries, "elo": point, "elo_ci_low": np.quantile(boot, lo, axis=0),
                          "elo_ci_high": np.quantile(boot, hi, axis=0), "anchor": anchor_entry,
                          "anchor_note": anchor_note(anchor_entry, chosen=anchor is not None)})
    return table.sort_values("elo", ascending=False, ignore_index=True)


def win_rate_matrix(frame: pd.DataFrame, weighting: EloWeighting = EloWeighting.DATASET) -> pd.DataFrame:
    """rows beat columns: the weighted share of battles won (ties half), weighted as the Elo fit;
    NaN on the diagonal and for pairs that never met."""
    entries, per_dataset = dataset_battles(frame, weighting=weighting)
    if not per_dataset:
        return pd.DataFrame()
    wins = np.sum(list(per_dataset.values()), axis=0)
    met = wins + wins.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(met > 0, wins / met, np.nan)
    np.fill_diagonal(rate, np.nan)
    return pd.DataFrame(rate, index=entries, columns=entries)
