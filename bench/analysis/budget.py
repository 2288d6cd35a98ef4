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
  trials_done    trials the entry's jobs ran (every trial that started: completed, pruned, failed) and
  trials_declared  the trials the budget declared for them (--trials), summed over the records that say
                 both; a tuning entry whose records ran fewer than declared shows it here
  short_uncut    tuning records that ran fewer trials than declared while no trial was cut by a clock
                 (the tuning clock ran out between trials, or the study stopped early): bent, but silently
  still_improving  budget adequacy (`dataset_adequacy`): datasets where the entry's best validation value
  adequacy_datasets  was still improving at the end of its trials, of the datasets it could be judged on

The adequacy rule (Issue 22: would more budget change the answer?). Per tuning job (dataset x split x
model), with the trials in the order they ran: gain = how much the best validation value improved over
the last half of the trials (the best over all trials minus the best over the first ceil(n/2); >= 0, in
objective units, direction-aware). Per entry and dataset: the mean gain over the dataset's splits is
compared with the noise, the standard error across those splits of the final best validation value
(std with ddof 1 / sqrt(splits)): STILL IMPROVING when the mean gain exceeds it. With a single split there
is no noise estimate and any gain counts (the budget cannot be shown adequate). Jobs with fewer than 2
trials (only the defaults) are not judged: `only_defaults` flags them.
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

from bench.vocabulary import CROSS_MODEL, NOT_RUN, TUNING_VARIANTS, Status, Variant

COLUMNS = ["model", "variant", "only_defaults", "clock_cut", "trials_done", "trials_declared", "short_uncut",
           "still_improving", "adequacy_datasets", "cpu_seconds", "gpu_seconds"]
COUNTS = ["only_defaults", "clock_cut", "trials_done", "trials_declared", "short_uncut", "still_improving",
          "adequacy_datasets"]


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


def _declared(ran: pd.DataFrame) -> pd.DataFrame:
    """The records that say both how many trials ran and how many were declared."""
    if not {"trials_total", "trials_declared"} <= set(ran.columns):
        return ran.iloc[0:0]
    done, declared = (pd.to_numeric(ran[c], errors="coerce") for c in ("trials_total", "trials_declared"))
    return ran.assign(trials_total=done, trials_declared=declared)[done.notna() & declared.notna()]


def _short_uncut(ok: pd.DataFrame) -> float:
    """Tuning records that ran fewer trials than declared, with no trial cut by a clock."""
    known = _declared(ok)
    if known.empty or "clock_cut" not in known:
        return np.nan
    cut = pd.to_numeric(known.clock_cut, errors="coerce").fillna(0)
    return float(((known.trials_total < known.trials_declared) & (cut == 0)).sum())


def entry_budget(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, variant) of the frame with the columns above."""
    rows = []
    adequacy = dataset_adequacy(frame)
    for (model, variant), g in frame.groupby(["model", "variant"], sort=True):
        ok = g[g.status == Status.OK]
        tuned = variant in TUNING_VARIANTS and model != CROSS_MODEL  # the cross-model pools other jobs' trials
        ran = g[~g.status.isin(NOT_RUN)]
        known = _declared(ran) if tuned else ran.iloc[0:0]
        judged = adequacy[(adequacy.model == model) & (adequacy.variant == variant) & adequacy.improving.notna()]
        rows.append({
            "model": model, "variant": variant,
            "only_defaults": _count_true(ok, "only_defaults") if variant in TUNING_VARIANTS else np.nan,
            "clock_cut": _known_sum(ran.clock_cut) if "clock_cut" in ran else np.nan,
            "trials_done": known.trials_total.sum() if len(known) else np.nan,
            "trials_declared": known.trials_declared.sum() if len(known) else np.nan,
            "short_uncut": _short_uncut(ok) if tuned else np.nan,
            "still_improving": float(judged.improving.astype(bool).sum()) if len(judged) else np.nan,
            "adequacy_datasets": float(len(judged)) if len(judged) else np.nan,
            "cpu_seconds": _median(ok, "cpu_seconds"), "gpu_seconds": _median(ok, "gpu_seconds"),
        })
    out = pd.DataFrame(rows, columns=COLUMNS)
    for column in COUNTS:
        out[column] = out[column].astype("Int64")  # counts; <NA> = not applicable or not recorded
    return out


def last_half_gain(values, maximize: bool) -> tuple[float, float]:
    """(gain, final best) of one job's validation values in trial order (None: a trial without a value):
    gain = best over all trials - best over the first ceil(n/2), direction-aware (>= 0); NaN when fewer
    than 2 trials ran or none of the first half returned a value."""
    if values is None or len(values) < 2:
        return np.nan, np.nan
    signed = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    signed = signed if maximize else -signed
    first = signed[: (len(signed) + 1) // 2]
    if np.isnan(first).all():
        return np.nan, np.nan
    best = float(np.nanmax(signed))
    return best - float(np.nanmax(first)), best


ADEQUACY_COLUMNS = ["dataset", "model", "variant", "entry", "splits", "gain", "noise", "improving"]


def dataset_adequacy(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, tuning entry) with trials: splits judged, mean last-half gain, noise (standard error
    across splits of the final best validation value; NaN with one split) and improving (the rule in the
    module's docstring; <NA> when no job of it could be judged)."""
    if frame.empty or "trial_values" not in frame:
        return pd.DataFrame(columns=ADEQUACY_COLUMNS)
    ok = frame[(frame.status == Status.OK) & frame.variant.isin(TUNING_VARIANTS) & (frame.model != CROSS_MODEL)]
    rows = []
    for (dataset, model, variant), g in ok.groupby(["dataset", "model", "variant"], sort=True):
        judged = [last_half_gain(v, d == "maximize") for v, d in zip(g.trial_values, g.direction)]
        gains = np.array([j[0] for j in judged if not np.isnan(j[0])])
        finals = np.array([j[1] for j in judged if not np.isnan(j[0])])
        noise = float(np.std(finals, ddof=1) / np.sqrt(len(finals))) if len(finals) >= 2 else np.nan
        gain = float(gains.mean()) if len(gains) else np.nan
        improving = pd.NA if np.isnan(gain) else bool(gain > noise) if not np.isnan(noise) else bool(gain > 0)
        rows.append({"dataset": dataset, "model": model, "variant": variant, "entry": f"{model}/{variant}",
                     "splits": len(gains), "gain": gain, "noise": noise, "improving": improving})
    return pd.DataFrame(rows, columns=ADEQUACY_COLUMNS)


def _plural(n, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def budget_warnings(frame: pd.DataFrame) -> list[str]:
    """One line per entry whose declared budget was bent (empty: every budget held, as far as the
    records say); every count with its denominator."""
    lines = []
    table = entry_budget(frame)
    ran = frame[~frame.status.isin(NOT_RUN)]
    ok_counts = frame[frame.status == Status.OK].groupby(["model", "variant"]).size()
    for row in table.itertuples():
        parts = []
        if pd.notna(row.only_defaults) and row.only_defaults > 0:
            parts.append(f"{row.only_defaults} of {ok_counts.get((row.model, row.variant), 0)} {row.variant} records "
                         f"hold only the defaults trial")
        if pd.notna(row.clock_cut) and row.clock_cut > 0:
            parts.append(_cut_text(row, ran))
        if pd.notna(row.short_uncut) and row.short_uncut > 0:
            parts.append(f"{row.short_uncut} of {ok_counts.get((row.model, row.variant), 0)} records ran fewer "
                         f"trials than declared with no trial cut ({row.trials_done} of {row.trials_declared} "
                         f"trials ran in all)")
        if parts:
            lines.append(f"{row.model}/{row.variant}: " + "; ".join(parts))
    return lines


def _cut_text(row, ran: pd.DataFrame) -> str:
    """'k of n trials cut by ...': n the entry's trials (tuning) or its defaults trials (default)."""
    if row.variant == Variant.DEFAULT:
        mine = ran[(ran.model == row.model) & (ran.variant == row.variant)]
        total = int(pd.to_numeric(mine.clock_cut, errors="coerce").notna().sum())
        return f"{row.clock_cut} of {_plural(total, 'defaults trial')} cut by the job's time limit"
    of = f" of {_plural(row.trials_done, 'trial')}" if pd.notna(row.trials_done) else \
        f" {'trial' if row.clock_cut == 1 else 'trials'}"
    return f"{row.clock_cut}{of} cut by the tuning clock or the time limit"


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
