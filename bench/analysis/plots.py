"""The report's figures (matplotlib, Agg backend: no display needed). Each function returns PNG bytes."""

from __future__ import annotations

import io

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # before pyplot: headless machines and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _height(n: int) -> float:
    return max(2.5, 0.32 * n + 1.0)


def interval_bars(labels, values, low, high, xlabel: str, title: str, reference: float | None = None) -> bytes:
    """Horizontal points with interval whiskers, best on top."""
    fig, ax = plt.subplots(figsize=(7, _height(len(labels))))
    y = np.arange(len(labels))[::-1]
    values, low, high = (np.asarray(v, dtype=float) for v in (values, low, high))
    ax.barh(y, values - (reference or 0.0), left=reference or 0.0, color="#9ecae1", height=0.6)
    ax.errorbar(values, y, xerr=[values - low, high - values], fmt="o", color="#08519c", capsize=3)
    ax.set_yticks(y, labels)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if reference is not None:
        ax.axvline(reference, color="grey", lw=0.8, ls="--")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def win_rate_heatmap(rates: pd.DataFrame) -> bytes:
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
    ax.set_title("Win rate: row beats column (dataset-weighted, ties 1/2)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


def cd_diagram(result) -> bytes:
    import scikit_posthocs

    fig, ax = plt.subplots(figsize=(8, _height(len(result.mean_ranks)) * 0.6 + 1))
    scikit_posthocs.critical_difference_diagram(result.mean_ranks, result.nemenyi_p, ax=ax, alpha=result.alpha)
    ax.set_title(f"Mean rank (1 = best) over {result.n_datasets} datasets; bars: not significantly different "
                 f"(Nemenyi, alpha={result.alpha}); CD = {result.cd:.2f}", fontsize=9)
    return _png(fig)


def tuning_curves(curves: pd.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, c in curves.groupby("model"):
        line, = ax.plot(c.n_trials, c.norm_score, marker="o", ms=3, label=model)
        first = c[c.n_trials == 1].norm_score
        if len(first):  # the defaults trial: dotted line, as in Grinsztajn et al.
            ax.axhline(float(first.iloc[0]), color=line.get_color(), ls=":", lw=1)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("number of trials (defaults first, others in shuffled order)")
    ax.set_ylabel("normalized test score of best-on-validation trial")
    ax.set_title("Tuning curves (dotted: defaults)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def time_vs_score(table: pd.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(table.median_seconds, table.norm_score, color="#08519c")
    for row in table.itertuples():
        ax.annotate(row.entry, (row.median_seconds, row.norm_score), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("median fit + predict seconds per split (log)")
    ax.set_ylabel("mean normalized score")
    ax.set_title("Time vs score")
    ax.grid(alpha=0.3)
    return _png(fig)
