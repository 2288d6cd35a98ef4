"""The console view of the GBDT-vs-neural headline (bench.analysis.families), printed first after
`bench run` and by `bench leaderboard`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table

from bench.analysis import families


def print_headline(frame: pd.DataFrame, run_dir: Path, console) -> tuple[list[Path], str]:
    """Prints the headline table and its note, writes its CSVs; returns their paths and the Markdown
    section that opens leaderboard.md."""
    paired = families.pairs(frame)
    table = families.headline(frame, paired)
    if table.empty:
        console.print("[dim]GBDT vs neural: no dataset where both a GBDT (family gbdt) and a neural model "
                      "(family neural) ran[/]")
    else:
        out = Table(title=families.TITLE, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                    collapse_padding=True)
        for column, header in families.SHOWN:
            out.add_column(header, justify="left" if column in ("scope", "tasks", "test") else "right", no_wrap=True)
        for _, row in table.iterrows():
            out.add_row(*[families.cell(c, row) for c, _ in families.SHOWN],
                        style="bold" if row["scope"] == "best" and row["tasks"] == "all" else None)
        console.print(out)
        console.print(f"[bold]{escape(families.verdict(table))}[/]", soft_wrap=True)
        for line in textwrap.wrap(families.note(families.excluded_entries(frame)), width=min(console.width, 100)):
            console.print(f"[dim]{escape(line)}[/]")
    markdown = f"## {families.TITLE}\n\n" + (f"**{families.verdict(table)}**\n\n"
                                                 + families.to_markdown(table, families.excluded_entries(frame))
                                                 if not table.empty else "No dataset where both sides ran.")
    return families.write(table, paired, run_dir), markdown
