"""The report's figures (matplotlib, Agg backend: no display needed). Each function returns a Figure
(tests read its axes); `png` renders and closes it.

One palette, by model family (FAMILY_COLOURS, colour-blind safe Okabe-Ito colours), colours every
plot: the bars, points, rank markers, curves and axis labels of an entry take its family's colour, and
each plot has a family legend. Within a family, models differ by marker and line style (model_styles).

Readable with weak baselines: an axis spans the useful range of the real models. A value far outside
the bulk (more than OUTLIER_MADS median absolute deviations from the median), which would otherwise
squeeze the others into less than 1/SQUEEZE of the axis, is drawn at the axis edge with an arrow
marker and labelled with its true value (a `dummy` at -24 no longer sets the scale). Labels of the
time-vs-score plot sit in a column beside the axes, spread so that they never overlap, each joined
to its point by a leader that runs level to the axes' edge, then straight to its label: as the
labels keep the points' order, no two leaders cross.
"""

from __future__ import annotations

import io

import matplotlib
import matplotlib.colors
import matplotlib.lines
import matplotlib.patches
import matplotlib.ticker

matplotlib.use("Agg")  # before pyplot: headless machines and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110
OUTLIER_MADS = 5.0
SQUEEZE = 4.0
PAD = 0.06  # share of the range added on each side
LABEL_PT = 7.0
OFF_SCALE = "#b2182b"
OFF_SCALE_PT = 8.5
# The one palette, by family (the records' `family`; `ensemble` is the cross-model ensemble's). Okabe & Ito's
# colour-blind safe colours; "other" for a family without its own.
FAMILY_COLOURS = {"gbdt": "#E69F00", "neural": "#0072B2", "in-context": "#56B4E9", "baseline": "#7F7F7F",
                  "ensemble": "#009E73", "other": "#CC79A7"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINE_STYLES = ("-", "--", "-.", (0, (1, 1)), (0, (5, 1, 1, 1, 1, 1)))


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _height(n: int) -> float:
    return max(2.5, 0.32 * n + 1.0)


def focus_range(values, extra=(), include=()) -> tuple[float, float, np.ndarray]:
    """(low, high, in_range mask): the axis range over the useful values, the `extra` values of the
    in-range ones (their interval ends: arrays like values) and the `include` values (a bar's base).
    A value is out of range when it lies more than OUTLIER_MADS median absolute deviations from the
    median and keeping it would squeeze the rest into less than 1/SQUEEZE of the axis."""
    v = np.asarray(values, dtype=float)
    extra = [np.asarray(e, dtype=float) for e in extra]
    fixed = np.asarray(include, dtype=float)

    def spanned(mask):
        pts = np.concatenate([v[mask], fixed, *(e[mask] for e in extra)])
        return pts[np.isfinite(pts)]

    finite = np.isfinite(v)
    inside = finite.copy()
    if finite.sum() >= 3:
        med = np.median(v[finite])
        mad = np.median(np.abs(v[finite] - med))
        candidate = finite & (np.abs(v - med) <= OUTLIER_MADS * mad)
        full, core = np.ptp(spanned(finite)), np.ptp(spanned(candidate))
        if mad > 0 and core > 0 and full > SQUEEZE * core:
            inside = candidate
    pts = spanned(inside)
    if not len(pts):
        return 0.0, 1.0, inside
    lo, hi = float(pts.min()), float(pts.max())
    pad = PAD * (hi - lo) if hi > lo else max(abs(lo) * 0.1, 0.5)
    return lo - pad, hi + pad, inside


def _mark_off_scale(ax, positions, values, axis: str, lo: float, hi: float) -> None:
    """Arrow markers at the axis edge for values outside [lo, hi], labelled with the true value."""
    for pos, value in zip(positions, values):
        below = value < lo
        edge = lo if below else hi
        text = f"{value:.3g} (off scale)"
        if axis == "x":
            ax.plot([edge], [pos], marker="<" if below else ">", color=OFF_SCALE, ms=9, clip_on=False, zorder=5)
            ax.annotate(text, (edge, pos), xytext=(10 if below else -10, 0), textcoords="offset points",
                        ha="left" if below else "right", va="center", fontsize=OFF_SCALE_PT, color=OFF_SCALE,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=OFF_SCALE, lw=0.6), zorder=6)
        else:
            ax.plot([pos], [edge], marker="v" if below else "^", color=OFF_SCALE, ms=9, clip_on=False, zorder=5)


def family_of(family) -> str:
    """The palette key of a record family (unknown or missing: "other")."""
    return family if isinstance(family, str) and family in FAMILY_COLOURS else "other"


def family_colour(family) -> str:
    return FAMILY_COLOURS[family_of(family)]


def family_legend(ax, families, extra=(), outside: bool = True, **kw):
    """A legend of the families present (palette order) and any `extra` handles, by default outside the
    axes on the right."""
    present = {family_of(f) for f in families}
    handles = [matplotlib.patches.Patch(color=c, label=f) for f, c in FAMILY_COLOURS.items() if f in present]
    place = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if outside else dict(loc="best")
    return ax.legend(handles=handles + list(extra), title="family", fontsize=7, title_fontsize=7, **{**place, **kw})


def model_styles(models, families) -> dict[str, tuple[str, str, object]]:
    """model -> (colour, marker, line style): its family's colour, a shade lighter or darker per model
    of the same family, and a marker and line style of its own within the family."""
    out: dict[str, tuple[str, str, object]] = {}
    seen: dict[str, int] = {}
    for model, family in sorted(zip(models, families), key=lambda mf: (family_of(mf[1]), str(mf[0]))):
        if model in out:
            continue
        k = seen[family_of(family)] = seen.get(family_of(family), -1) + 1
        r, g, b = matplotlib.colors.to_rgb(family_colour(family))
        shade = (0.0, -0.35, 0.35, -0.2, 0.2)[k % 5]  # <0: towards black, >0: towards white
        r, g, b = ((c * (1 + shade) if shade < 0 else c + (1 - c) * shade) for c in (r, g, b))
        out[model] = (matplotlib.colors.to_hex((r, g, b)), MARKERS[k % len(MARKERS)], LINE_STYLES[k % len(LINE_STYLES)])
    return out


def _colour_tick_labels(labels, families) -> None:
    for label, family in zip(labels, families):
        label.set_color(family_colour(family))


def interval_bars(labels, values, low, high, xlabel: str, title: str, reference: float | None = None,
                  families=None):
    """Horizontal points with interval whiskers, best on top, coloured by family; entries without a value
    are left out. An off-scale entry has no bar: an arrow at the edge and its value, boxed."""
    keep = np.isfinite(np.asarray(values, dtype=float))
    families = list(families) if families is not None else ["other"] * len(keep)
    labels = [lab for lab, k in zip(labels, keep) if k]
    families = [f for f, k in zip(families, keep) if k]
    values, low, high = (np.asarray(v, dtype=float)[keep] for v in (values, low, high))
    fig, ax = plt.subplots(figsize=(7.5, _height(len(labels))))
    y = np.arange(len(labels))[::-1]
    colours = np.array([family_colour(f) for f in families], dtype=object)
    base = reference if reference is not None else 0.0
    lo, hi, inside = focus_range(values, (low, high), include=[base])  # bars start at the base
    ax.barh(y[inside], values[inside] - base, left=base, color=list(colours[inside]), alpha=0.35, height=0.6)
    with np.errstate(invalid="ignore"):
        xerr = np.nan_to_num([values - low, high - values])
    for i in np.flatnonzero(inside):
        ax.errorbar(values[i], y[i], xerr=xerr[:, i:i + 1], fmt="o", color=colours[i], capsize=3)
    ax.set_xlim(lo, hi)
    _mark_off_scale(ax, y[~inside], values[~inside], "x", lo, hi)
    ax.set_yticks(y, labels)
    _colour_tick_labels(ax.get_yticklabels(), families)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.grid(axis="x", alpha=0.3)
    family_legend(ax, families)
    return fig


def win_rate_heatmap(rates: pd.DataFrame, weighting: str = "dataset", order=None, families=None, floor=()):
    """Row beats column, rows and columns in `order` (best score first); entries in `floor` (a trivial
    baseline such as dummy) are drawn grey, outside the colour scale, their rates still written."""
    order = [e for e in (order if order is not None else rates.index) if e in rates.index]
    rates = rates.reindex(index=order, columns=order)
    n = len(rates)
    values = rates.to_numpy(dtype=float)
    grey = np.array([e in floor for e in order])
    masked = np.ma.masked_where(grey[:, None] | grey[None, :] | np.isnan(values), values)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#e6e6e6")
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * n + 2.5), max(4, 0.5 * n + 1.5)))
    im = ax.imshow(masked, vmin=0, vmax=1, cmap=cmap)
    ax.set_xticks(range(n), rates.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), rates.index)
    fams = [families.get(e) for e in order] if families is not None else ["other"] * n
    _colour_tick_labels(ax.get_yticklabels(), fams)
    _colour_tick_labels(ax.get_xticklabels(), fams)
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            if not np.isnan(v):
                off = grey[i] or grey[j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="#555555" if off else "white" if abs(v - 0.5) > 0.3 else "black")
    floor_note = f"; grey: {', '.join(e for e in order if e in floor)}, off the colour scale" if grey.any() else ""
    ax.set_title(f"Win rate: row beats column ({weighting} weighting, ties 1/2)\nrows and columns by score, "
                 f"best first{floor_note}", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def cd_diagram(result, families=None):
    """Mean ranks with two decimals on both sides, each entry in its family's colour."""
    import scikit_posthocs

    ranks = result.mean_ranks
    families = families or {}
    palette = {e: family_colour(families.get(e)) for e in ranks.index}
    fig, ax = plt.subplots(figsize=(8, _height(len(ranks)) * 0.6 + 1))
    scikit_posthocs.critical_difference_diagram(ranks, result.nemenyi_p, ax=ax, alpha=result.alpha,
                                                color_palette=palette, label_fmt_left="{label} ({rank:.2f})",
                                                label_fmt_right="({rank:.2f}) {label}",
                                                label_props={"fontsize": 8})
    ax.set_title(f"Mean rank (1 = best) over {result.n_datasets} datasets; black bars: not significantly different "
                 f"(Nemenyi, alpha={result.alpha}); CD = {result.cd:.2f}", fontsize=9)
    family_legend(ax, [families.get(e) for e in ranks.index], outside=False, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0))
    return fig


def curve_label(model: str, jobs: pd.DataFrame) -> str:
    """"xgboost (5 trials, 3 of 24 jobs defaults-only)": the trials each job really completed."""
    row = jobs[jobs.model == model]
    if row.empty:
        return model
    r = row.iloc[0]
    lo, hi = int(r.trials_min), int(r.trials_max)
    trials = f"{lo} trial{'s' if lo != 1 else ''}" if lo == hi else f"{lo}-{hi} trials"
    only = f", {int(r.defaults_only)} of {int(r.jobs)} jobs defaults-only" if r.defaults_only else ""
    return f"{model} ({trials}{only})"


def tuning_curves(curves: pd.DataFrame, jobs: pd.DataFrame | None = None, families=None):
    """One line per model in its family's colour, marker and line style of its own; its defaults level
    dotted, ending in the model's marker beyond the last trial, so equal levels stay told apart. The
    legend sits outside the axes."""
    jobs = jobs if jobs is not None else pd.DataFrame(columns=["model"])
    families = families or {}
    models = sorted(curves.model.unique())
    styles = model_styles(models, [families.get(m) for m in models])
    fig, ax = plt.subplots(figsize=(9, 4.5))
    end = float(curves.n_trials.max()) if len(curves) else 1.0
    for k, (model, c) in enumerate(curves.groupby("model")):
        colour, marker, ls = styles[model]
        ax.plot(c.n_trials, c.norm_score, marker=marker, ms=4, color=colour, ls=ls, label=curve_label(model, jobs))
        first = c[c.n_trials == 1].norm_score
        if len(first):  # the defaults trial: dotted line, as in Grinsztajn et al.
            level = float(first.iloc[0])
            tip = end + 0.25 + 0.12 * k  # staggered so equal levels show every model's marker
            ax.plot([1, tip], [level, level], color=colour, ls=":", lw=1)
            ax.plot([tip], [level], marker=marker, ms=5, color=colour, mfc="white", clip_on=False)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("number of trials (defaults first, others in shuffled order)")
    ax.set_ylabel("normalized test objective of best-on-validation trial")
    ax.set_title("Tuning curves (dotted, open marker at the right: defaults; legend: completed trials per job)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model", title_fontsize=7)
    return fig


def spread_labels(positions, gap: float, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Label positions (axes fraction) moved apart to at least `gap`, order kept, within [lo, hi]
    where they fit (if they do not, evenly spaced from lo)."""
    p = np.asarray(positions, dtype=float)
    order = np.argsort(p, kind="stable")
    s = np.clip(p[order], lo, hi)
    if len(s) and (len(s) - 1) * gap > hi - lo:
        s = lo + gap * np.arange(len(s))
    else:
        for i in range(1, len(s)):
            s[i] = max(s[i], s[i - 1] + gap)
        for i in range(len(s) - 1, -1, -1):
            s[i] = min(s[i], hi if i == len(s) - 1 else s[i + 1] - gap)
    out = np.empty_like(s)
    out[order] = s
    return out


def pareto_front(seconds, scores) -> np.ndarray:
    """Indices of the points no other point beats on both time (lower) and score (higher), fastest first."""
    seconds, scores = np.asarray(seconds, dtype=float), np.asarray(scores, dtype=float)
    front, best = [], -np.inf
    for i in np.lexsort((-scores, seconds)):  # by time, the better score first among equal times
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return np.array(front, dtype=int)


TIME_COLUMNS = {"fit": ("median_seconds", "median fit + predict s per split (final model; log)"),
                "tuning": ("cpu_seconds", "median CPU s per split, the whole variant: every trial and refits (log)")}


def time_vs_score(table: pd.DataFrame, axis: str = "fit"):
    """Entries by time (`axis`: fit = the final model's fit + predict, tuning = the CPU seconds of the whole
    variant) and mean normalized score, coloured by family, with the Pareto front (dashed steps)."""
    column, xlabel = TIME_COLUMNS[str(axis)]
    table = table[np.isfinite(pd.to_numeric(table[column], errors="coerce"))].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, max(4.5, 0.2 * len(table) + 1.5)))
    seconds = table[column].to_numpy(float).clip(min=1e-4)
    scores = table.norm_score.to_numpy(float)
    families = list(table.family) if "family" in table else ["other"] * len(table)
    colours = [family_colour(f) for f in families]
    lo, hi, inside = focus_range(scores)
    ax.set_xscale("log")
    if len(seconds):
        ax.set_xlim(seconds.min() / 1.6, seconds.max() * 1.6)
    ax.set_ylim(lo, hi)
    front = np.flatnonzero(inside)[pareto_front(seconds[inside], scores[inside])]  # off-scale points are not on it
    if len(front):
        fx, fy = seconds[front], np.clip(scores[front], lo, hi)
        ax.step(np.append(fx, ax.get_xlim()[1]), np.append(fy, fy[-1]), where="post", color="black", lw=1, ls="--",
                zorder=2)
    on_front = np.isin(np.arange(len(table)), front)
    ax.scatter(seconds[inside], scores[inside], c=[c for c, i in zip(colours, inside) if i], zorder=3, s=36,
               edgecolors=["black" if f else "none" for f, i in zip(on_front, inside) if i], linewidths=1.2)
    _mark_off_scale(ax, seconds[~inside], scores[~inside], "y", lo, hi)
    _leader_labels(fig, ax, table, seconds, scores, inside, lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean normalized score")
    ax.set_title("Time vs score (black edge and dashed steps: Pareto front, nothing both faster and better)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    pareto = matplotlib.lines.Line2D([], [], color="black", lw=1, ls="--", label="Pareto front")
    family_legend(ax, families, extra=[pareto], outside=False, loc="lower right")
    return fig


def _leader_labels(fig, ax, table, seconds, scores, inside, lo, hi) -> None:
    """Entry names in a column right of the axes, in the points' height order and never overlapping; each
    leader runs level from its point to the axes' edge (faint), then to its label: never crossing."""
    frac = (np.clip(scores, lo, hi) - lo) / (hi - lo)
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    label_y = spread_labels(frac, gap=1.25 * LABEL_PT / height_pt)
    transform = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for row, x, y, f, ly, ok in zip(table.itertuples(), seconds, np.clip(scores, lo, hi), frac, label_y, inside):
        ax.plot([x, ax.get_xlim()[1]], [y, y], color="#bbbbbb", lw=0.4, ls=":", zorder=1)
        text = row.entry if ok else f"{row.entry} ({row.norm_score:.3g}, off scale)"
        ax.annotate(text, (1.0, y), xycoords=transform, xytext=(1.05, ly), textcoords="axes fraction",
                    va="center", fontsize=LABEL_PT, color=family_colour(getattr(row, "family", None))
                    if ok else OFF_SCALE, arrowprops=dict(arrowstyle="-", lw=0.4, color="grey", shrinkA=0, shrinkB=0))


def family_points(points: pd.DataFrame):
    """Each dataset a row, each family's best entry (bench.analysis.family_points) a point at its
    normalized score on that dataset; a point off the useful range sits at the edge, its value written."""
    datasets = sorted(points.dataset.unique())
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.38 * len(datasets) + 1.2)))
    y_of = {d: len(datasets) - 1 - i for i, d in enumerate(datasets)}
    scores = points.norm_score.to_numpy(float)
    lo, hi, inside = focus_range(scores, include=[0.0, 1.0])
    families = [family_of(f) for f in points.family]
    for y in y_of.values():
        ax.axhline(y, color="#eeeeee", lw=0.8, zorder=0)
    present = [f for f in FAMILY_COLOURS if f in families]
    for k, family in enumerate(present):
        mine = np.array([f == family for f in families]) & inside
        if mine.any():  # each family a little above or below the row's line, so equal scores stay visible
            dodge = 0.32 * ((k + 0.5) / len(present) - 0.5)
            ys = [y_of[d] - dodge for d in points.dataset[mine]]
            ax.scatter(scores[mine], ys, color=FAMILY_COLOURS[family], s=40, zorder=3, label=family,
                       edgecolors="white", linewidths=0.5)
    ax.set_xlim(lo, hi)
    _mark_off_scale(ax, [y_of[d] for d in points.dataset[~inside]], scores[~inside], "x", lo, hi)
    ax.set_yticks(list(y_of.values()), list(y_of))
    ax.set_xlabel("normalized score on the dataset (1 = its best entry)")
    ax.set_title("Per dataset: each family's best entry, chosen on validation", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(title="family", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def gpu_utilization(samples: pd.DataFrame):
    """The sweep's GPU samples (<run>/gpu-utilization.csv): utilization and memory over time, per GPU."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 4.8), sharex=True)
    for gpu, s in samples.groupby("gpu", sort=True):
        minutes = s.elapsed_s.to_numpy(float) / 60
        top.plot(minutes, s.utilization_pct, marker=".", ms=3, lw=1, label=f"GPU {gpu}")
        bottom.plot(minutes, s.memory_used_mib / 1024, marker=".", ms=3, lw=1, label=f"GPU {gpu}")
    top.set_ylim(0, 105)
    top.set_ylabel("utilization %")
    bottom.set_ylabel("memory used (GiB)")
    bottom.set_xlabel("minutes since the sweep's GPU workers started")
    top.set_title("GPU utilization during the sweep (nvidia-smi samples)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=7)
    return fig
