"""The report's sections that answer the project's question: GBDT vs neural (the headline, first on the
page), who wins as data grows (learning curves, runs made with --train-sizes) and when neural models win
against the datasets' meta-features. bench.analysis.report places them."""

from __future__ import annotations

import html

import numpy as np

from bench.analysis import families, learning_curves, when_neural_wins
from bench.analysis.analyze import Analysis
from bench.analysis.report_page import Page, html_table, md_table


def fmt(v, digits: int = 3) -> str:
    """A number for a table cell ("–" when missing)."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return str(v)


def headline_section(page: Page, a: Analysis) -> None:
    """GBDT vs neural (bench.analysis.families): the headline table, its note, the per-dataset pairs."""
    if a.headline.empty:
        text = "No dataset where both a GBDT (family gbdt) and a neural model (family neural) ran."
        page.add("GBDT vs neural", f"<p>{html.escape(text)}</p>", text)
        return
    header = [h for _, h in families.SHOWN]
    rows = [[html.escape(families.cell(c, r)) for c, _ in families.SHOWN] for _, r in a.headline.iterrows()]
    note = families.note(a.headline_excluded)
    best = a.headline_pairs[a.headline_pairs.scope == "best"]
    pair_header = ["dataset", "task", "GBDT (best on val.)", "neural (best on val.)", "GBDT test", "neural test",
                   "gap", "winner"]
    pair_rows = [[html.escape(str(r.dataset)), r.task_type, html.escape(r.gbdt_entry), html.escape(r.neural_entry),
                  fmt(r.gbdt_score, 4), fmt(r.neural_score, 4), f"{r.gap:+.3f}", r.outcome]
                 for r in best.itertuples()]
    answer = families.verdict(a.headline)
    page.add(families.TITLE,
             f'<p id="answer"><b>{html.escape(answer)}</b></p>' + html_table(header, rows, "gbdt-vs-neural")
             + f'<p class="note">{html.escape(note)}</p>'
             + "<p>Per dataset (variant: best):</p>" + html_table(pair_header, pair_rows, "gbdt-vs-neural-pairs"),
             f"**{answer}**\n\n" + md_table(header, rows) + f"\n\n{note}\n\nPer dataset (variant: best):\n\n"
             + md_table(pair_header, pair_rows))


def when_neural_wins_section(page: Page, found: when_neural_wins.Findings | None) -> None:
    """The gap between the best neural and the best GBDT entry per dataset against the meta-features."""
    if found is None:
        return
    h, m = page.fig("when-neural-wins")
    lines, note = found.summary(), when_neural_wins.RULE
    corr, per_dataset = found.correlation_rows(), found.dataset_rows()
    page.add("When do neural models win?",
             "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"
             + html_table(*corr, "meta-feature-correlations") + h + html_table(*per_dataset, "neural-vs-gbdt")
             + f'<p class="note">{html.escape(note)}</p>',
             "\n".join(f"- {line}" for line in lines) + "\n\n" + md_table(*corr) + (f"\n\n{m}" if m else "")
             + "\n\n" + md_table(*per_dataset) + f"\n\n{note}")


def learning_curve_section(page: Page, a: Analysis) -> None:
    """Runs made with --train-sizes: which size the page's statistics are of, and per family and size the
    mean normalized score (bench.analysis.learning_curves) with its plot; nothing for other runs."""
    if a.train_size is None:
        return
    text = (f"Every other table and plot of this report is for train size {a.train_size} (sizes in this run: "
            f"{', '.join(a.train_sizes)}; `bench report RUN --train-size S` for another). Statistics never mix "
            f"sizes: each size is normalized on its own entries.")
    if a.learning_curve.empty:
        page.add("Who wins as data grows", f"<p>{html.escape(text)}</p>", text)
        return
    fam = a.learning_curve[a.learning_curve["level"] == "family"]
    table = fam.pivot(index="name", columns="train_size", values="norm_score")
    order = a.train_sizes
    table = table.reindex(columns=[s for s in order if s in table.columns])
    rows_of = fam.drop_duplicates("train_size").set_index("train_size").median_n_train
    header = ["family", *[f"size {s}" for s in table.columns]]
    rows = [[html.escape(str(name)), *[fmt(v) for v in row]] for name, row in zip(table.index, table.to_numpy())]
    datasets = fam.groupby("train_size").datasets.max()  # a size too small for some datasets has fewer
    rows.append(["median training rows", *[fmt(rows_of.get(s), 0) for s in table.columns]])
    rows.append(["datasets", *[fmt(datasets.get(s)) for s in table.columns]])
    note = (f"Per size: each family's best entry per dataset (chosen on validation), its normalized score there, "
            f"mean over datasets. Per entry: {learning_curves.CURVE_FILE} in the run folder.")
    h, m = page.fig("learning-curve")
    page.add("Who wins as data grows",
             f"<p>{html.escape(text)}</p>" + html_table(header, rows, "learning-curve") + h
             + f'<p class="note">{html.escape(note)}</p>',
             f"{text}\n\n" + md_table(header, rows) + (f"\n\n{m}" if m else "") + f"\n\n{note}")
