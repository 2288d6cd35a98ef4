"""The report's figures (matplotlib, Agg backend: no display needed). Each function returns a Figure
(tests read its axes); `png` renders and closes it.

Readable with weak baselines: an axis spans the useful range of the real models. A value far outside
the bulk (more than OUTLIER_MADS median absolute deviations from the median), which would otherwise
squeeze the others into less than 1/SQUEEZE of the axis, is drawn at the axis edge with an arrow
marker and labelled with its true value (a `dummy` at -24 no longer sets the scale). Labels of the
time-vs-score plot sit in a column beside the axes, spread so that they never overlap, each joined
to its point by a thin line.
"""

from __future__ import annotations

import io

import matplotlib
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
            ax.annotate(text, (edge, pos), xytext=(8 if below else -8, 0), textcoords="offset points",
                        ha="left" if below else "right", va="center", fontsize=LABEL_PT, color=OFF_SCALE)
        else:
            ax.plot([pos], [edge], marker="v" if below else "^", color=OFF_SCALE, ms=9, clip_on=False, zorder=5)


def interval_bars(labels, values, low, high, xlabel: str, title: str, reference: float | None = None):
    """Horizontal points with interval whiskers, best on top; entries without a value are left out."""
    keep = np.isfinite(np.asarray(values, dtype=float))
    labels = [lab for lab, k in zip(labels, keep) if k]
    values, low, high = (np.asarray(v, dtype=float)[keep] for v in (values, low, high))
    fig, ax = plt.subplots(figsize=(7, _height(len(labels))))
    y = np.arange(len(labels))[::-1]
    base = reference if reference is not None else 0.0
    lo, hi, inside = focus_range(values, (low, high), include=[base])  # bars start at the base
    ax.barh(y, values - base, left=base, color="#9ecae1", height=0.6)
    with np.errstate(invalid="ignore"):
        xerr = np.nan_to_num([values - low, high - values])
    ax.errorbar(values[inside], y[inside], xerr=xerr[:, inside], fmt="o", color="#08519c", capsize=3)
    ax.set_xlim(lo, hi)
    _mark_off_scale(ax, y[~inside], values[~inside], "x", lo, hi)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.grid(axis="x", alpha=0.3)
    return fig


def win_rate_heatmap(rates: pd.DataFrame, weighting: str = "dataset"):
    n = len(rates)
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * n + 2), max(4, 0.5 * n + 1.5)))
    im = ax.imshow(rates.to_numpy(dtype=float), vmin=0, vmax=1, cmap="RdBu")
    ax.set_xticks(range(n), rates.columns, rotation=60, ha="right")
    ax.set_yticks(range(n), rates.index)
    for i in range(n):
        for j in range(n):
            v = rates.iat[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v - 0.5) > 0.3 else "black")
    ax.set_title(f"Win rate: row beats column ({weighting} weighting, ties 1/2)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def cd_diagram(result):
    import scikit_posthocs

    fig, ax = plt.subplots(figsize=(8, _height(len(result.mean_ranks)) * 0.6 + 1))
    scikit_posthocs.critical_difference_diagram(result.mean_ranks, result.nemenyi_p, ax=ax, alpha=result.alpha)
    ax.set_title(f"Mean rank (1 = best) over {result.n_datasets} datasets; bars: not significantly different "
                 f"(Nemenyi, alpha={result.alpha}); CD = {result.cd:.2f}", fontsize=9)
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


def tuning_curves(curves: pd.DataFrame, jobs: pd.DataFrame | None = None):
    jobs = jobs if jobs is not None else pd.DataFrame(columns=["model"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, c in curves.groupby("model"):
        line, = ax.plot(c.n_trials, c.norm_score, marker="o", ms=3, label=curve_label(model, jobs))
        first = c[c.n_trials == 1].norm_score
        if len(first):  # the defaults trial: dotted line, as in Grinsztajn et al.
            ax.axhline(float(first.iloc[0]), color=line.get_color(), ls=":", lw=1)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("number of trials (defaults first, others in shuffled order)")
    ax.set_ylabel("normalized test objective of best-on-validation trial")
    ax.set_title("Tuning curves (dotted: defaults; legend: completed trials per job)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
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


def time_vs_score(table: pd.DataFrame):
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.5, max(4.5, 0.2 * n + 1.5)))
    seconds = table.median_seconds.to_numpy(float).clip(min=1e-4)
    scores = table.norm_score.to_numpy(float)
    lo, hi, inside = focus_range(scores)
    ax.set_xscale("log")
    ax.set_xlim(seconds.min() / 1.6, seconds.max() * 1.6)
    ax.set_ylim(lo, hi)
    ax.scatter(seconds[inside], scores[inside], color="#08519c", zorder=3)
    _mark_off_scale(ax, seconds[~inside], scores[~inside], "y", lo, hi)
    # Each point's height in axes fraction; off-scale points sit at the edge.
    frac = (np.clip(scores, lo, hi) - lo) / (hi - lo)
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    label_y = spread_labels(frac, gap=1.25 * LABEL_PT / height_pt)
    for row, x, y, ly, ok in zip(table.itertuples(), seconds, np.clip(scores, lo, hi), label_y, inside):
        text = row.entry if ok else f"{row.entry} ({row.norm_score:.3g}, off scale)"
        ax.annotate(text, (x, y), xytext=(1.02, ly), textcoords="axes fraction", va="center",
                    fontsize=LABEL_PT, color="black" if ok else OFF_SCALE,
                    arrowprops=dict(arrowstyle="-", lw=0.4, color="grey", shrinkA=0, shrinkB=3))
    ax.set_xlabel("median fit + predict seconds per split (log)")
    ax.set_ylabel("mean normalized score")
    ax.set_title("Time vs score")
    ax.grid(alpha=0.3)
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


VERDICT_COLOURS = {"neural": "#d95f02", "gbdt": "#1b9e77", "tie": "#7f7f7f", "unknown": "#bdbdbd"}


def gap_vs_meta_features(data: pd.DataFrame, correlations: pd.DataFrame, labels: dict[str, str]):
    """One small scatter per meta-feature: the best-neural minus best-GBDT normalized score per dataset
    (bench.analysis.when_neural_wins) against it, coloured by the noise verdict, titled with Spearman's rho."""
    names = [n for n in labels if n in data and data[n].notna().any()]
    cols = 3
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    stats_by = correlations.set_index("meta_feature") if len(correlations) else pd.DataFrame()
    for ax, name in zip(axes.flat, names):
        for verdict, d in data.groupby("verdict"):
            ax.scatter(d[name], d.gap, s=18, color=VERDICT_COLOURS.get(str(verdict), "black"), label=str(verdict))
        values = data[name].dropna().to_numpy(float)
        if len(values) and values.min() > 0 and values.max() >= 10 * values.min():  # counts spanning decades
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        rho = stats_by.rho.get(name, np.nan) if len(stats_by) else np.nan
        p = stats_by.p_value.get(name, np.nan) if len(stats_by) else np.nan
        ax.set_title(f"{name}: rho={rho:.2f}, p={p:.2g}" if np.isfinite(rho) else f"{name}: rho –", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("best neural - best GBDT\n(normalized score)", fontsize=8)
    handles, texts = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, texts, loc="upper right", fontsize=7, title="verdict", title_fontsize=7)
    fig.suptitle("When do neural models win? Gap per dataset against its meta-features", fontsize=10)
    fig.tight_layout()
    return fig
