"""`bench report RUN`: a static, self-contained HTML page and a Markdown file with the run's statistics.

report.html carries its CSS and plots inline (PNG as data URIs) so it can be mailed or archived as
one file; report.md links PNG files written beside it into report-plots/. Every number links back to
the records it came from (paths relative to the report), and the page states its definitions. The
page's frame (CSS, the sorting and load scripts, tables, sections) is bench.analysis.report_page.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

from bench.analysis import (
    explanations,
    family_points,
    leaderboard,
    learning_curves,
    plots,
    report_findings,
    reproduction,
    when_neural_wins,
)
from bench.analysis.analyze import SLICES, Analysis
from bench.analysis.elo import ELO_VS_SCORE
from bench.analysis.options import OPTIONS, EloWeighting, NormalizeMetric, TimeAxis
from bench.analysis.report_page import CSS, LOADED_SCRIPT, SORT_SCRIPT, Page, html_table, md_table, run_summary
from bench.safe_files import write_atomic, write_text_atomic
from bench.vocabulary import Variant


def definitions(a: Analysis) -> list[str]:
    """The report's Definitions section, for the options this analysis used."""
    paper = a.normalize_metric is NormalizeMetric.PAPER
    return [
        "Score per dataset: mean test objective over the splits an entry ran (binary ROC AUC, multiclass log "
        "loss, regression RMSE), each split's value the mean over model seeds; a split the entry failed counts "
        "as that split's worst finished score.",
        f"Normalized score (quantile) on the {a.normalize_metric.label}: the normalization rule of Grinsztajn et "
        "al. 2022; per dataset the 10% quantile (classification) / median (regression, truncated at 0) of the "
        "entries' scores maps to 0 and the best to 1. "
        + ("Like the paper, it normalizes accuracy and R² (--normalize-metric paper); score, ranks, Elo, critical "
           "difference and tuning curves stay on the objective. " if paper else
           "The paper normalizes accuracy and R²; `--normalize-metric paper` does the same for numbers "
           "comparable with it. ")
        + "Interval: 95% percentile bootstrap over datasets. Min-max: worst entry 0, best 1.",
        "Seed std: the std over model seeds of the test score, on the normalized scale, averaged over datasets "
        "(shown when a run used --seeds 2 or more, and only for the objective).",
        f"Elo ({a.elo_weighting.label}): Bradley-Terry fit on per-split battles (ties 1/2, a failure loses every "
        "battle of its split); " + ("each battle weighs 1/n_splits of its dataset and the fit has almost no "
                                    "prior, as TabArena's (comparable with its leaderboard); "
                                    if a.elo_weighting is EloWeighting.TABARENA else
                                    "every dataset's battles weigh 1 in total, with a weak prior "
                                    "(`--elo-weighting tabarena` gives TabArena's weighting); ")
        + "the anchor entry is fixed at 1000; 95% bootstrap interval over datasets. Win rates weigh battles alike.",
        "Critical difference: Friedman test, Nemenyi post-hoc (Demšar 2006).",
        "Failures (failed, timeout, crashed, out of memory) are the worst result of their split: a failed split "
        "counts as the worst score finished on that split in the dataset's mean (and so in ranks, wins, "
        "normalized scores, critical difference and curves), it loses every battle of its split in Elo and "
        "the win rates, and an entry that failed every split of a dataset is the worst there (lowest "
        "normalized score, at most 0; last rank). Skipped (capability limits) and unavailable (library or "
        "weights missing) records are left out of every number, table, Elo, win rate and curve alike, never "
        "a loss. 'failed' counts failure records only.",
        "Budget: 'defaults-only' counts tuned records whose only finished trial is the defaults trial (of the "
        "entry's finished splits); 'clock-cut' counts trials a clock cut short (the tuning clock, --tune-seconds, "
        "or the job's --time-limit, the only one that can cut a defaults trial); "
        "'fit s' is the median seconds per split of the final model's fit (as on the console); "
        "'CPU s' / 'GPU s' are the median device seconds per split the variant cost (tuned: the whole tuning), "
        "an equal-compute view next to the equal-trials one ('GPU s' is shown when a record held a GPU). "
        "'trials run/declared': the trials a tuning entry's "
        "jobs ran against those --trials declared. 'still improving' (budget adequacy): datasets where the best "
        "validation value improved over the last half of the trials by more than the standard error across "
        "splits (with one split: by anything), of the datasets judged; such a comparison is budget-limited. "
        "–: not applicable or not recorded.",
        "Ensembles: 'ensemble' is Caruana et al. 2004 greedy ensemble selection with replacement (40 steps, cut "
        "back to the best step, step scores rounded to 6 decimals as AutoGluon does, as in TabArena's 'tuned + "
        "ensembled') over the job's trials on the validation objective; its test prediction is the weighted mean "
        "of the members' (no refit). 'ensemble_all/ensemble' makes the same selection over every model's trials "
        "of a split; models it had to leave out are named under the leaderboard. Selection never sees test "
        "labels.",
        "Tuning curves (always on the objective) aggregate like the table: per dataset the test scores of the "
        "best-on-validation trial are averaged over splits (a failed job at its split's worst finished score), "
        "then normalized (and truncated) with the table's normalization, then averaged over datasets; a trial a "
        "record chose carries the record's score, so n = 1 is the default entry's score. A job that stopped "
        "early stays flat at its last value; the legend gives the trials each job completed.",
    ]


_fmt = report_findings.fmt


def uses_gpu(a: Analysis) -> bool:
    """Whether any record held a GPU (else the report leaves the "GPU s" column out)."""
    return bool((pd.to_numeric(a.summary.gpu_seconds, errors="coerce").fillna(0) > 0).any())


def _interval(value: str, low: str, high: str, html_cells: bool) -> str:
    """A value and its interval: in HTML the interval on a line of its own under it (a narrower column)."""
    return f'{value}<span class="ci">[{low}, {high}]</span>' if html_cells else f"{value} [{low}, {high}]"


def leaderboard_rows(a: Analysis, html_cells: bool = False) -> tuple[list[str], list[list[str]]]:
    """The leaderboard's header and rows. Its columns are named as on the console where the console shows
    the same number ("fit s": the median fit seconds per split); "GPU s" only when a record held a GPU."""
    seeds, gpu = a.seed_spread, uses_gpu(a)
    header = ["#", "entry", f"norm. score ({a.normalize_metric.value}) [95% CI]", "min-max",
              *(["± seed std"] if seeds else []), "mean rank", f"Elo ({a.elo_weighting.value}) [95% CI]", "wins",
              "datasets", "failed", "skipped", "unavailable", "defaults-only", "clock-cut", "trials run/declared",
              "still improving", "fit s", "CPU s", *(["GPU s"] if gpu else [])]
    rows = []
    for i, (_, r) in enumerate(a.summary.iterrows(), 1):
        score = _interval(_fmt(r.norm_score), _fmt(r.norm_ci_low), _fmt(r.norm_ci_high), html_cells)
        rows.append([str(i), r.entry, score,
                     _fmt(r.norm_minmax), *([_fmt(r.seed_std)] if seeds else []), _fmt(r.mean_rank, 2),
                     _interval(_fmt(r.elo, 0), _fmt(r.elo_ci_low, 0), _fmt(r.elo_ci_high, 0), html_cells),
                     str(r.wins), str(r.datasets), str(r.failures), str(r.skipped), str(r.unavailable),
                     leaderboard.cell("only_defaults", r.only_defaults, r), leaderboard.cell("clock_cut", r.clock_cut),
                     leaderboard.cell("trials_done", r.trials_done, r),
                     leaderboard.cell("still_improving", r.still_improving, r),
                     leaderboard.seconds(r.median_fit_s), leaderboard.seconds(r.cpu_seconds),
                     *([leaderboard.seconds(r.gpu_seconds)] if gpu else [])])
    keys = [_FRAME_NAMES.get(h, h) for h in header]
    return leaderboard.without_empty_optional(keys, header, rows)


# The report's headers of leaderboard.OPTIONAL columns named otherwise than in the frame.
_FRAME_NAMES = {"trials run/declared": "trials_done", "still improving": "still_improving"}


def dataset_rows(a: Analysis, link) -> tuple[list[str], list[list[str]]]:
    seeds = a.seed_spread
    paper = a.normalize_metric is NormalizeMetric.PAPER
    header = ["dataset", "entry", "state", "score", *(["± seed std"] if seeds else []), "splits",
              "failed splits", *(["accuracy / R²"] if paper else []), f"norm. ({a.normalize_metric.value})",
              "min-max", "rank", "records"]
    rows = []
    for r in a.per_dataset.itertuples():
        arrow = "↑" if r.direction == "maximize" else "↓"
        records = " ".join(link(p, f"r{n}") for n, p in enumerate(r.records or []))
        rows.append([r.dataset, r.entry, str(r.state), f"{_fmt(r.score, 4)} {arrow}",
                     *([_fmt(r.score_seed_std, 4)] if seeds else []), _fmt(r.splits), _fmt(r.failed_splits),
                     *([_fmt(r.norm_input, 4)] if paper else []), _fmt(r.norm_score), _fmt(r.norm_minmax),
                     _fmt(r.rank, 1), records])
    return header, rows


def budget_text(a: Analysis) -> str:
    if a.warnings:
        return "Budgets bent: " + "; ".join(a.warnings) + "."
    tuned = a.summary[a.summary.variant == Variant.TUNED]
    if len(tuned) and tuned.only_defaults.isna().all() and tuned.clock_cut.isna().all():
        return "The records do not say whether a tuning budget was cut (written before that was recorded)."
    return "No tuned record holds only the defaults trial and no clock cut a trial."


def figures(a: Analysis, time_axis: TimeAxis | str = TimeAxis.FIT) -> dict[str, tuple[str, object]]:
    """name -> (caption, matplotlib Figure) for every plot the data allows (`plots.png` renders one);
    `time_axis` (fit | tuning) is the time-vs-score plot's x-axis (options.TimeAxis)."""
    axis = TimeAxis.parse(time_axis)
    s = a.summary
    metric, weighting = a.normalize_metric, a.elo_weighting
    families = dict(zip(s.entry, s.family))
    out = {"normalized-score": (f"Mean normalized score (quantile, {metric.label}) with 95% bootstrap intervals "
                                f"over datasets",
                                plots.interval_bars(s.entry, s.norm_score, s.norm_ci_low, s.norm_ci_high,
                                                    "mean normalized score", f"Normalized score ({metric.value})",
                                                    families=s.family))}
    if s.elo.notna().any():
        e = s.sort_values("elo", ascending=False)
        out["elo"] = (f"Elo (Bradley-Terry, {weighting.label}; {a.anchor_note}) with 95% bootstrap intervals",
                      plots.interval_bars(e.entry, e.elo, e.elo_ci_low, e.elo_ci_high, "Elo",
                                          f"Elo ({weighting.value} weighting; {a.anchor} = 1000)", reference=1000.0,
                                          families=e.family))
    if a.cd is not None:
        out["critical-difference"] = ("Critical-difference diagram", plots.cd_diagram(a.cd, families))
    if not a.rates.empty:
        floor = [e for e, m in zip(s.entry, s.model) if m == "dummy"]  # a trivial baseline: off the colour scale
        out["win-rate"] = (f"Pairwise win rates ({weighting.label}); rows and columns by normalized score",
                           plots.win_rate_heatmap(a.rates, weighting, order=list(s.entry), families=families,
                                                  floor=floor))
    if not a.curves.empty:
        model_families = dict(zip(s.model, s.family))
        out["tuning-curves"] = ("Tuning curves (normalized objective)",
                                plots.tuning_curves(a.curves, a.curve_jobs, model_families))
    if not a.time_vs_score.empty:
        out["time-vs-score"] = (f"Time vs score; x-axis ({OPTIONS[TimeAxis]} {axis.value}): {axis.label}",
                                plots.time_vs_score(a.time_vs_score, axis))
    points = family_points.family_best(a.frame, a.per_dataset)
    if not points.empty:
        out["per-dataset"] = ("Per dataset: each family's best entry, chosen on validation as in the GBDT-vs-neural "
                              "headline's best row (any variant; the cross-model ensemble is its own family), at "
                              "its normalized score",
                              plots.family_points(points))
    curve = learning_curves.figure(a.learning_curve) if len(a.learning_curve) else None
    if curve is not None:
        out["learning-curve"] = ("Who wins as data grows: each family's mean normalized score per training-set "
                                 "size (its best entry per dataset, chosen on validation)", curve)
    return out


VARIANT_COLUMNS = (Variant.DEFAULT, Variant.TUNED, Variant.ENSEMBLE)


def variants_side_by_side(a: Analysis, value: str = "norm_score") -> pd.DataFrame:
    """Per model, its default / tuned / ensemble entries' `value` side by side (the cross-model
    ensemble is the row `ensemble_all`, under ensemble); models sorted by their best value."""
    s = a.summary.pivot(index="model", columns="variant", values=value)
    s = s.reindex(columns=[c for c in VARIANT_COLUMNS if c in s.columns])
    s.columns = [str(c) for c in s.columns]
    return s.loc[s.max(axis=1).sort_values(ascending=False, kind="stable").index]


def variant_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """The "default / tuned / ensemble" table: quantile-normalized score, then min-max."""
    q = variants_side_by_side(a, "norm_score")
    m = variants_side_by_side(a, "norm_minmax").reindex(index=q.index)
    on = a.normalize_metric.value
    header = ["model", *[f"{c} (norm., {on})" for c in q.columns], *[f"{c} (min-max, {on})" for c in m.columns]]
    rows = [[html.escape(str(model)), *[_fmt(v) for v in q.loc[model]], *[_fmt(v) for v in m.loc[model]]]
            for model in q.index]
    return header, rows


def _frame_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    return [table.index.name or "entry", *map(str, table.columns)], \
        [[html.escape(str(i)), *[_fmt(v) for v in row]] for i, row in zip(table.index, table.to_numpy())]


def _cd_text(a: Analysis) -> str:
    if a.cd is None:
        return "Critical-difference analysis needs at least 3 entries and 2 datasets where all took part."
    cd = a.cd
    dropped = ""
    if cd.dropped_datasets:
        dropped = f" Datasets left out (an entry was skipped there): {', '.join(cd.dropped_datasets)}."
    return (f"Friedman chi² = {cd.friedman_statistic:.2f}, p = {cd.friedman_p:.3g} over {cd.n_datasets} datasets "
            f"({'significant' if cd.significant else 'not significant'} at alpha = {cd.alpha}); "
            f"Nemenyi CD = {cd.cd:.2f} mean-rank units.{dropped}")


def data_check_rows(run_dir: Path) -> tuple[list[str], list[list[str]]]:
    """What loading found in each dataset (inf values, dropped targets, no features, few rows) and
    datasets skipped as too small for the protocol, as `bench run` stored them in plan.json."""
    import json

    try:
        datasets = json.loads((Path(run_dir) / "plan.json").read_text()).get("datasets") or {}
    except (OSError, ValueError, AttributeError):
        datasets = {}
    rows = [[html.escape(name), html.escape("; ".join(info.get("warnings") or [])),
             html.escape(info.get("skipped") or "")]
            for name, info in sorted(datasets.items()) if info.get("warnings") or info.get("skipped")]
    return ["dataset", "found when loading", "skipped"], rows


def gpu_samples(run_dir: Path) -> pd.DataFrame | None:
    """<run>/gpu-utilization.csv (bench.execution.gpu_usage.GpuSampler) as a frame, or None when the
    run has no usable samples (no GPU workers ran, or the file is unreadable)."""
    path = Path(run_dir) / "gpu-utilization.csv"
    try:
        frame = pd.read_csv(path, dtype={"gpu": str})
    except (OSError, ValueError):
        return None
    needed = {"elapsed_s", "gpu", "utilization_pct", "memory_used_mib"}
    if not needed <= set(frame.columns):
        return None
    frame = frame.dropna(subset=["elapsed_s", "utilization_pct"])
    return frame if len(frame) else None


def gpu_rows(samples: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    rows = [[html.escape(str(gpu)), str(len(s)), _fmt(s.utilization_pct.mean(), 1), _fmt(s.utilization_pct.median(), 1),
             _fmt(s.memory_used_mib.max() / 1024, 2), _fmt((s.elapsed_s.max() - s.elapsed_s.min()) / 60, 1)]
            for gpu, s in samples.groupby("gpu", sort=True)]
    return ["GPU", "samples", "mean util. %", "median util. %", "peak memory GiB", "minutes"], rows


def write_report(a: Analysis, run_dir: Path, out_dir: Path, time_axis: TimeAxis | str = TimeAxis.FIT) -> list[Path]:
    """report.html, report.md and the plots' PNG files; `time_axis` (fit | tuning): the time-vs-score x-axis."""
    plot_dir = out_dir / "report-plots"
    found = figures(a, time_axis)
    neural = when_neural_wins.findings(a.frame, run_dir)
    gap_plot = when_neural_wins.figure(neural) if neural is not None else None
    if gap_plot is not None:
        found["when-neural-wins"] = ("Best neural minus best GBDT normalized score per dataset against its "
                                     "meta-features", gap_plot)
    samples = gpu_samples(run_dir)
    if samples is not None:
        found["gpu-utilization"] = ("GPU utilization and memory during the sweep", plots.gpu_utilization(samples))
    page = Page(os.path.relpath(run_dir, out_dir),
                 {name: (caption, plots.png(fig)) for name, (caption, fig) in found.items()})
    for name, (_, png) in page.figs.items():
        write_atomic(plot_dir / f"{name}.png", png, out_dir)  # never through a link (bench.safe_files)
    report_findings.headline_section(page, a)  # the answer first
    report_findings.learning_curve_section(page, a)
    _leaderboard_section(page, a)
    _statistics_sections(page, a)
    _time_and_gpu_sections(page, samples)
    report_findings.when_neural_wins_section(page, neural)
    _data_sections(page, a, run_dir)
    texts = definitions(a)
    page.add("Definitions", "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in texts) + "</ul>",
             "\n".join(f"- {t}" for t in texts))
    return _write(page, a, run_dir, out_dir) + sorted(plot_dir.glob("*.png"))


def _leaderboard_section(page: Page, a: Analysis) -> None:
    lb_header, lb_rows = leaderboard_rows(a)
    lb_html = leaderboard_rows(a, html_cells=True)[1]
    lb_note = (f'<p class="note">Records: {page.link_html("records.parquet", "records.parquet")} '
               f'(one row per record; column <code>record</code> is the JSON file), per-dataset rows below link '
               f"each record file.</p>")
    budget = budget_text(a)
    options = (f"Normalized scores on the {a.normalize_metric.label}. Elo and win rates: "
               f"{a.elo_weighting.label}. {a.anchor_note}.")
    left_out = leaderboard.left_out_notes(a.left_out)
    left_html = (f'<p id="left-out">{html.escape(left_out[0])}</p><ul>'
                 + "".join(f"<li>{html.escape(line.strip(' -'))}</li>" for line in left_out[1:]) + "</ul>"
                 if left_out else "")
    page.add("Leaderboard",
             html_table(lb_header, lb_html, "leaderboard") + f'<p id="options">{html.escape(options)}</p>'
             + f'<p id="budget">{html.escape(budget)}</p>' + left_html + lb_note,
             md_table(lb_header, lb_rows) + f"\n\n{options}\n\n{budget}\n\n"
             + ("\n".join(left_out) + "\n\n" if left_out else "")
             + f"Records: {page.link_md('records.parquet', 'records.parquet')}")


def _statistics_sections(page: Page, a: Analysis) -> None:
    """Normalized score, Elo, critical difference, win rates; default vs tuned vs ensemble; the slices."""
    for name, heading in (("normalized-score", "Normalized score"), ("elo", "Elo"),
                          ("critical-difference", "Critical difference"), ("win-rate", "Win rates")):
        h, m = page.fig(name)
        text = _cd_text(a) if name == "critical-difference" else f"{a.anchor_note}. {ELO_VS_SCORE}" \
            if name == "elo" and h else ""
        extra_h = f'<p id="{name}-note">{html.escape(text)}</p>' if text else ""
        extra_m = text + "\n\n" if text else ""
        if h or extra_h:
            page.add(heading, extra_h + h, extra_m + m)
    h, m = page.fig("tuning-curves")
    dvt_header, dvt_rows = variant_rows(a)
    page.add("Tuning: default vs tuned vs ensemble", html_table(dvt_header, dvt_rows, "default-vs-tuned") + h,
             md_table(dvt_header, dvt_rows) + ("\n\n" + m if m else ""))
    for key, label in SLICES.items():
        sh, srows = _frame_rows(a.slices[key])
        page.add(f"Slice: {label} (normalized {a.normalize_metric.value})", html_table(sh, srows),
                 md_table(sh, srows))


def _time_and_gpu_sections(page: Page, samples: pd.DataFrame | None) -> None:
    h, m = page.fig("time-vs-score")
    if h:
        page.add("Time vs score", h, m)
    if samples is not None:
        h, m = page.fig("gpu-utilization")
        note = ("Sampled by the sweep's parent process with nvidia-smi while GPU workers ran "
                "(gpu-utilization.csv in the run folder).")
        page.add("GPU utilization",
                 html_table(*gpu_rows(samples), "gpu-utilization") + f'<p class="note">{note}</p>' + h,
                 md_table(*gpu_rows(samples)) + f"\n\n{note}\n\n{m}")


def _data_sections(page: Page, a: Analysis, run_dir: Path) -> None:
    """Per dataset (rows link the record files), data checks, and the reproduction of a published table."""
    ds_html, ds_md = dataset_rows(a, page.link_html), dataset_rows(a, page.link_md)
    h, m = page.fig("per-dataset")
    page.add("Per dataset", h + html_table(*ds_html, "per-dataset"), (m + "\n\n" if m else "") + md_table(*ds_md))
    checks = data_check_rows(run_dir)
    if checks[1]:
        page.add("Data checks", html_table(*checks, "data-checks"), md_table(*checks))
    repro = reproduction.section(run_dir)  # `bench reproduce` wrote reproduce.csv into this run folder
    if repro is not None:
        page.add("Reproduction of published results",
                 html_table(repro.header, repro.html_rows, "reproduce")
                 + f'<p class="note">{html.escape(repro.note)}</p>',
                 md_table(repro.header, repro.rows) + f"\n\n{repro.note}")
    for i, sec in enumerate(explanations.sections(run_dir)):  # `bench explain` wrote explain/ into the run folder
        rows = [[html.escape(c) for c in r] for r in sec.rows]
        page.add(sec.heading, html_table(sec.header, rows, f"explain-{i}")
                 + f'<p class="note">{html.escape(sec.note)}</p>', md_table(sec.header, sec.rows) + f"\n\n{sec.note}")


def _write(page: Page, a: Analysis, run_dir: Path, out_dir: Path) -> list[Path]:
    """report.html and report.md."""
    title = f"Benchmark report: {a.config.get('suite', run_dir.name)}"
    folds = a.frame.dropna(subset=["inner_folds"]) if "inner_folds" in a.frame else a.frame.iloc[:0]
    run_info = run_summary(a.config, {str(k): int(v) for k, v in a.frame.status.value_counts().items()},
                           {str(d): int(k) for d, k in folds.groupby("dataset").inner_folds.max().items()})
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{CSS}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
           f'<p class="note" id="run-info">{html.escape(run_info)}; '
           f'{page.link_html("run.json", "run.json")}</p>\n' + "\n".join(page.html)
           + f"\n{SORT_SCRIPT}\n{LOADED_SCRIPT}\n</body></html>\n")
    md = f"# {title}\n\n{run_info}\n\n" + "\n\n".join(page.md) + "\n"
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    write_text_atomic(html_path, doc, out_dir)
    write_text_atomic(md_path, md, out_dir)
    return [html_path, md_path]
