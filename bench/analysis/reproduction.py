"""How a reproduction of a published table is shown: the console, reproduce.md and `bench report`.

`bench reproduce` (bench.workflows.reproduce) writes <run>/reproduce.csv, one row per published cell
(bench.published.compare.Row.as_dict); this module turns that frame into table rows, and `bench report`
adds them as its section "Reproduction of published results" when the file is there.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

FILE = "reproduce.csv"
HEADER = ["dataset", "model", "variant", "metric", "published", "ours", "diff", "z", "verdict", "same digits",
          "our budget vs the source's"]
NOTE = ("ours and published: mean ± std over seeds (published: the source's seeds; ours: --seeds). z = diff / "
        "max(sqrt(std_ours² + std_published²), floor); the floor is half a unit of the last printed digit and, for "
        "accuracy, one test row. agrees: |z| <= 2; better / worse by the metric's direction (RMSE: lower is better); "
        "missing: no ok record of ours. 'same digits': ours rounded to the printed digits equals the published "
        "mean. The budget column names where our run was smaller than the source's (trials, seeds, epoch cap).")


def read(run_dir: Path) -> pd.DataFrame | None:
    """<run>/reproduce.csv, or None when the run has none (or it is unreadable)."""
    try:
        frame = pd.read_csv(Path(run_dir) / FILE, keep_default_na=False, na_values=[""])
    except (OSError, ValueError):
        return None
    return frame if len(frame) and {"dataset", "model", "verdict"} <= set(frame.columns) else None


def rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """HEADER and one row of plain text per cell."""
    out = []
    for r in frame.itertuples(index=False):
        d = int(r.decimals)
        arrow = "↑" if _truthy(r.higher_is_better) else "↓"
        same = "" if _missing(r.same_digits) else ("yes" if _truthy(r.same_digits) else "no")
        out.append([str(r.dataset), str(r.model), str(r.variant), f"{r.metric} {arrow}",
                    _pm(r.published_mean, r.published_std, d), _pm(r.ours_mean, r.ours_std, d),
                    _num(r.diff, d, sign=True), _num(r.z, 2, sign=True),
                    str(r.verdict) + ("" if _missing(r.status) or str(r.status) == "ok" or r.verdict != "missing"
                                      else f" ({r.status})"),
                    same, "" if _missing(r.budget) else str(r.budget)])
    return HEADER, out


def markdown(frame: pd.DataFrame, title: str) -> str:
    header, body = rows(frame)
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
    sources = sorted(set(frame.source.dropna().astype(str)))
    notes = [f"- {r.dataset}/{r.model}: {r.note}" for r in frame.itertuples(index=False) if not _missing(r.note)]
    return "\n".join(lines + ["", NOTE, "", "Sources: " + "; ".join(sources), *([""] + notes if notes else [])]) + "\n"


@dataclass
class Section:
    header: list[str]
    rows: list[list[str]]  # plain text (Markdown)
    note: str

    @property
    def html_rows(self) -> list[list[str]]:
        return [[html.escape(c) for c in r] for r in self.rows]


def section(run_dir: Path) -> Section | None:
    """The report's section "Reproduction of published results", or None when the run has no reproduce.csv."""
    frame = read(run_dir)
    if frame is None:
        return None
    header, body = rows(frame)
    counts = ", ".join(f"{n} {v}" for v, n in frame.verdict.value_counts().items())
    note = (f"`bench reproduce` compared {len(frame)} published cells ({counts}); {FILE} and reproduce.md in the "
            f"run folder. {NOTE}")
    return Section(header, body, note)


def _pm(mean, std, digits: int) -> str:
    return "–" if _missing(mean) else f"{float(mean):.{digits}f} ± {float(std):.{digits}f}"


def _num(value, digits: int, sign: bool = False) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):+.{digits}f}" if sign else f"{float(value):.{digits}f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")
