"""What bent an entry's budget, and what it cost: the columns that make truncation visible.

Per entry (model x variant), from the record columns `ResultStore.frame()` exposes:
  only_defaults  tuned records (ok) whose only finished trial is the defaults trial: the tuned
                 variant there IS the default one, so "tuned" means less than the budget promised
  clock_cut      trials a clock cut short, over the entry's records (bench.records.schema.clock_cut):
                 the tuning clock (--tune-seconds) or the job's time limit (--time-limit, which alone
                 can cut a defaults trial); such a trial still produced a model, from fewer rounds
  cpu_seconds    median per split of the process CPU seconds the variant cost (default: the defaults
  gpu_seconds    trial and its refits; tuned: the whole tuning and its refits), and of the seconds a
                 GPU was held: with them an equal-compute view sits next to the equal-trials one
only_defaults belongs to tuning, so it is empty (NaN) for default entries; both counts are empty for
entries whose records predate the fields (unknown is not zero). Ensemble entries (schema.TUNING_VARIANTS)
count like tuned ones: a per-model ensemble is selected from the same trials, so an ensemble of only
the defaults trial is flagged the same way; the cross-model ensemble sums its member jobs' clock cuts.

A cross-model ensemble (`ensemble_all`) selects over the trials of the models whose predictions it
could read; a model left out (it failed or was skipped on that split, or its predictions file was
missing or unreadable: the record's `ensemble.left_out`) shrank its pool. `ensemble_notes` names
them for the leaderboard notes and the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from bench.vocabulary import NOT_RUN, TUNING_VARIANTS, Status, Variant

COLUMNS = ["model", "variant", "only_defaults", "clock_cut", "cpu_seconds", "gpu_seconds"]


def _known_sum(values: pd.Series) -> float:
    """Sum of the values that were recorded; NaN when none was (an old record is not a zero)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return float(numbers.sum()) if numbers.notna().any() else np.nan


def _count_true(frame: pd.DataFrame, column: str) -> float:
    """How many records have the flag set; NaN when no record says either way."""
    flags = frame[column].dropna() if column in frame else pd.Series(dtype=object)
    return float(sum(bool(v) for v in flags)) if len(flags) else np.nan


def _median(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return np.nan
    return float(pd.to_numeric(frame[column], errors="coerce").median())


def entry_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, variant) of the frame with the columns above."""
    rows = []
    for (model, variant), g in frame.groupby(["model", "variant"], sort=True):
        ok = g[g.status == Status.OK]
        tuned = variant in TUNING_VARIANTS
        ran = g[~g.status.isin(NOT_RUN)]
        rows.append({
            "model": model, "variant": variant,
            "only_defaults": _count_true(ok, "only_defaults") if tuned else np.nan,
            "clock_cut": _known_sum(ran.clock_cut) if "clock_cut" in ran else np.nan,
            "cpu_seconds": _median(ok, "cpu_seconds"), "gpu_seconds": _median(ok, "gpu_seconds"),
        })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("only_defaults", "clock_cut"):
        out[column] = out[column].astype("Int64")  # counts; <NA> = not applicable or not recorded
    return out


def budget_warnings(frame: pd.DataFrame) -> list[str]:
    """One line per entry whose declared budget was bent (empty: every budget held, as far as the
    records say)."""
    lines = []
    table = entry_budget(frame)
    ok_counts = frame[frame.status == Status.OK].groupby(["model", "variant"]).size()
    for row in table.itertuples():
        parts = []
        if pd.notna(row.only_defaults) and row.only_defaults > 0:
            parts.append(f"{row.only_defaults} of {ok_counts.get((row.model, row.variant), 0)} {row.variant} records "
                         f"hold only the defaults trial")
        if pd.notna(row.clock_cut) and row.clock_cut > 0:
            by = "the job's time limit" if row.variant == Variant.DEFAULT else "the tuning clock or the time limit"
            parts.append(f"{row.clock_cut} trial{'s' if row.clock_cut != 1 else ''} cut by {by}")
        if parts:
            lines.append(f"{row.model}/{row.variant}: " + "; ".join(parts))
    return lines


def ensemble_notes(records: list[dict], shown: int = 4) -> list[str]:
    """One line per (ensemble entry, model left out of it): on how many of the entry's records, where
    (dataset/split, the first `shown`), and why (each reason with its count)."""
    totals: Counter = Counter()
    gaps: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in records:
        left_out = (r.get("ensemble") or {}).get("left_out")
        if not isinstance(left_out, dict):
            continue
        entry = f"{r.get('model')}/{r.get('variant')}"
        totals[entry] += 1
        where = f"{r.get('dataset')}/{(r.get('split') or {}).get('index')}"
        for model, why in left_out.items():
            gaps[(entry, model)].append((where, str(why)))
    lines = []
    for (entry, model), found in sorted(gaps.items()):
        places = sorted(w for w, _ in found)
        more = f" and {len(places) - shown} more" if len(places) > shown else ""
        counts = sorted(Counter(why for _, why in found).items())
        reasons = "; ".join(f"{why} ({n}x)" if n > 1 else why for why, n in counts)
        lines.append(f"{entry}: {model} left out of {len(found)} of {totals[entry]} records "
                     f"({', '.join(places[:shown])}{more}): {reasons}")
    return lines
