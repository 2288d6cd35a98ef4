"""Our numbers against a published table, cell by cell: mean ± std over seeds, difference, z, verdict.

For one cell (dataset x model x variant) ours are the cell's metric of every model seed of every ok
record of that dataset, model and variant (`test_by_seed`, bench.tuning.variants; one split for a fixed
train/val/test split, every fold's seeds otherwise), their mean and their std with the table's ddof
(the source's estimator, e.g. numpy's np.std for TALENT).

    diff    ours - published (in the metric's units; for RMSE lower is better)
    sigma   the combined spread sqrt(std_ours² + std_published²), at least the cell's floor: half a unit
            of the last printed digit, and for accuracy one test row (1 / n_test), so that deterministic
            cells (both stds 0) are judged at the resolution the numbers have
    z       diff / sigma
    verdict agrees when |z| <= 2; otherwise better or worse by the metric's direction; missing when we
            have no ok record (the reason is in `status`)
    same digits  ours rounded to the source's printed digits equals the published mean

`budget` says, per row, where our run was smaller than the source's: seeds, tuning trials (requested or
completed), the neural epoch cap, trials a clock cut, a tuned record that holds only the defaults. A tuned
cell with no tuned record of ours (a run with --trials 1) is compared with our default record, and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.published.table import Cell, PublishedTable
from bench.records.schema import clock_cut
from bench.vocabulary import TUNING_VARIANTS, Status, Variant

Z_LIMIT = 2.0
VERDICTS = ("agrees", "better", "worse", "missing")
EPOCH_PARAMS = ("max_epochs", "n_epochs")  # how the neural adapters name their epoch cap


@dataclass
class Row:
    cell: Cell
    source: str
    ours_mean: float | None = None
    ours_std: float | None = None
    ours_seeds: int = 0
    diff: float | None = None
    sigma: float | None = None
    z: float | None = None
    verdict: str = "missing"
    same_digits: bool | None = None
    budget: list[str] = field(default_factory=list)
    status: str = ""
    records: list[str] = field(default_factory=list)

    def as_dict(self, decimals: int) -> dict:
        c = self.cell
        return {"dataset": c.dataset, "model": c.model, "source_model": c.source_model, "variant": c.variant,
                "metric": c.metric, "higher_is_better": c.higher_is_better, "published_mean": c.mean,
                "published_std": c.std, "published_seeds": c.protocol.seeds,
                "published_trials": c.protocol.trials if c.variant in TUNING_VARIANTS else None,
                "ours_mean": self.ours_mean, "ours_std": self.ours_std, "ours_seeds": self.ours_seeds,
                "diff": self.diff, "sigma": self.sigma, "z": self.z, "verdict": self.verdict,
                "same_digits": self.same_digits, "budget": "; ".join(self.budget), "status": self.status,
                "decimals": decimals, "source": self.source, "note": c.note, "records": " ".join(self.records)}


def compare(table: PublishedTable, records: list[dict], models: list[str] | None = None,
            record_path=None) -> list[Row]:
    """One Row per cell of the table (of `models` when given), in the table's order. `record_path(record)`
    names a record's file for the `records` column."""
    by_key: dict[tuple, list[dict]] = {}
    for r in records:
        by_key.setdefault((r.get("dataset"), r.get("model"), r.get("variant")), []).append(r)
    rows = []
    for cell in table.cells:
        if models is not None and cell.model not in models:
            continue
        found = by_key.get((cell.dataset, cell.model, cell.variant), [])
        untuned = not found and cell.variant in TUNING_VARIANTS
        if untuned:  # a run with --trials 1 (or a model with nothing to tune): its defaults stand in, said so
            found = by_key.get((cell.dataset, cell.model, Variant.DEFAULT), [])
        row = judge(table, cell, sorted(found, key=lambda r: (r.get("split") or {}).get("index", 0)), record_path)
        if untuned and found:
            row.budget.insert(0, f"our defaults (not tuned; the source tuned {cell.protocol.trials} trials)")
        rows.append(row)
    return rows


def judge(table: PublishedTable, cell: Cell, records: list[dict], record_path=None) -> Row:
    row = Row(cell, table.source_of(cell))
    row.records = [str(record_path(r)) for r in records] if record_path else []
    ok = [r for r in records if r.get("status") == Status.OK]
    if not ok:
        row.status = _why_missing(records)
        return row
    values = [s[cell.metric] for r in ok for s in r.get("test_by_seed") or [] if "error" not in s and cell.metric in s]
    if not values:
        row.status = f"ok, but the records hold no '{cell.metric}' per seed"
        return row
    row.status = Status.OK if len(ok) == len(records) else f"{len(ok)} of {len(records)} records ok"
    row.ours_mean = float(np.mean(values))
    row.ours_std = float(np.std(values, ddof=table.std_ddof)) if len(values) > table.std_ddof else 0.0
    row.ours_seeds = len(values)
    row.diff = row.ours_mean - cell.mean
    floor = 0.5 * 10.0 ** -table.decimals
    n_test = min((r.get("n_test") or 0) for r in ok)
    if cell.metric == "accuracy" and n_test:
        floor = max(floor, 1.0 / n_test)
    row.sigma = max(math.hypot(row.ours_std, cell.std), floor)
    row.z = row.diff / row.sigma
    if abs(row.z) <= Z_LIMIT * (1 + 1e-9):  # a difference of exactly 2 floors (e.g. two test rows) agrees
        row.verdict = "agrees"
    else:
        row.verdict = "better" if (row.diff > 0) == cell.higher_is_better else "worse"
    row.same_digits = round(row.ours_mean, table.decimals) == round(cell.mean, table.decimals)
    row.budget = budget_shortfalls(cell, ok, len(values))
    return row


def budget_shortfalls(cell: Cell, ok: list[dict], n_values: int) -> list[str]:
    """Where our run was smaller than the source's protocol, in words (empty: not smaller)."""
    out = []
    seeds = n_values // max(1, len(ok))
    if seeds < cell.protocol.seeds:
        out.append(f"{seeds} of {cell.protocol.seeds} seeds")
    tuned = all(r.get("variant") in TUNING_VARIANTS for r in ok)  # (not our defaults standing in)
    if cell.variant in TUNING_VARIANTS and cell.protocol.trials and tuned:
        completed = min((r.get("trial_counts") or {}).get("completed", 0) for r in ok)
        requested = [(r.get("budget") or {}).get("trials") for r in ok]
        if completed < cell.protocol.trials or any(t is not None and t < cell.protocol.trials for t in requested):
            out.append(f"{completed} of {cell.protocol.trials} trials")
        if any(r.get("only_defaults") for r in ok):
            out.append("only the defaults trial finished")
    caps = [int(v) for r in ok for k in EPOCH_PARAMS if isinstance(v := (r.get("params") or {}).get(k), (int, float))]
    if cell.protocol.max_epochs and caps and min(caps) < cell.protocol.max_epochs:
        out.append(f"epoch cap {min(caps)} < {cell.protocol.max_epochs}")
    cut = sum(clock_cut(r) or 0 for r in ok)
    if cut:
        out.append(f"{cut} trial(s) cut by a clock")
    return out


def _why_missing(records: list[dict]) -> str:
    if not records:
        return "no record (not run)"
    r = records[0]
    reason = (r.get("error") or {}).get("message") or r.get("reason") or ""
    return f"{r.get('status')}: {reason.strip().splitlines()[0] if reason.strip() else 'no reason recorded'}"


def counts(rows: list[Row]) -> dict[str, int]:
    return {v: sum(r.verdict == v for r in rows) for v in VERDICTS if any(r.verdict == v for r in rows)}
