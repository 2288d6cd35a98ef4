"""The report's plots on hand-made runs (tests/hand_records.py): family colours, legends outside the
axes, the Pareto front and the time axis, leaders that do not cross, rank decimals, win-rate order and
the per-dataset family view chosen on validation."""

import matplotlib.colors
import numpy as np
import pytest

from bench.analysis import plots
from bench.analysis.analyze import analyze
from bench.analysis.families import pairs
from bench.analysis.family_points import family_best
from bench.analysis.report import figures
from bench.vocabulary import Status, Variant
from tests.hand_records import record, trial, write_run

FAMILIES = {"xgboost": "gbdt", "lightgbm": "gbdt", "mlp": "neural", "resnet": "neural", "linear": "baseline",
            "dummy": "baseline"}


def _run(tmp_path):
    """Three datasets x two splits; gbdt and neural models tuned (three trials), two baselines."""
    records = []
    for d, dataset in enumerate(("a", "b", "c")):
        for split in (0, 1):
            for m, (model, family) in enumerate(FAMILIES.items()):
                base = 0.5 if model == "dummy" else 0.80 + 0.01 * m + 0.003 * d * (m % 3)
                if family == "baseline":
                    records.append(record(dataset, model, Variant.DEFAULT, split, score=base, family=family))
                    continue
                ts = [trial(0, base, base), trial(1, base + 0.01, base + 0.012), trial(2, base + 0.005, base + 0.02)]
                cost = {"device_seconds": {"cpu": 10.0 * (m + 1), "gpu": 0.0}}
                records += [record(dataset, model, Variant.DEFAULT, split, score=base, family=family, trials=ts,
                                   **cost),
                            record(dataset, model, Variant.TUNED, split, score=base + 0.012, family=family,
                                   trials=ts, trial_number=1, fit_seconds=5.0 + m, **cost)]
    return write_run(tmp_path / "run", records)


@pytest.fixture(scope="module")
def figs(tmp_path_factory):
    import matplotlib.pyplot as plt

    a = analyze(_run(tmp_path_factory.mktemp("plots")), n_boot=20)
    yield a, {name: fig for name, (_, fig) in figures(a).items()}
    plt.close("all")


def _same(colour, family) -> bool:
    return matplotlib.colors.to_hex(colour) == matplotlib.colors.to_hex(plots.FAMILY_COLOURS[family])


def test_every_plot_colours_entries_by_family(figs):
    a, f = figs
    family = dict(zip(a.summary.entry, a.summary.family))
    for name in ("normalized-score", "elo"):
        labels = f[name].axes[0].get_yticklabels()
        assert labels and all(_same(t.get_color(), family[t.get_text()]) for t in labels), name
    cd = f["critical-difference"].axes[0]
    named = [t for t in cd.texts if "/" in t.get_text()]
    assert len(named) == len(a.summary) and all(
        _same(t.get_color(), family[t.get_text().split(") ")[-1].split(" (")[0]]) for t in named)
    assert {t.get_text() for t in f["normalized-score"].axes[0].get_legend().get_texts()} == {"gbdt", "neural",
                                                                                              "baseline"}


def test_tuning_curves_legend_sits_outside_and_models_differ_within_a_family(figs):
    _, f = figs
    fig = f["tuning-curves"]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    styles = plots.model_styles(["xgboost", "lightgbm", "mlp", "resnet"], ["gbdt", "gbdt", "neural", "neural"])
    assert len({s[0] for s in styles.values()}) == 4 and styles["xgboost"][1] != styles["lightgbm"][1]
    # each model's defaults level ends in its own marker at its own x beyond the last trial
    tips = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
    assert len(tips) == 4 and len({float(line.get_xdata()[0]) for line in tips}) == 4


def test_critical_difference_ranks_have_two_decimals_on_both_sides(figs):
    a, f = figs
    texts = [t.get_text() for t in f["critical-difference"].axes[0].texts if "/" in t.get_text()]
    for entry, rank in a.cd.mean_ranks.items():
        assert f"{entry} ({rank:.2f})" in texts or f"({rank:.2f}) {entry}" in texts


def test_win_rates_follow_the_score_order_and_dummy_is_off_the_colour_scale(figs):
    a, f = figs
    ax = f["win-rate"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(a.summary.entry)
    data = ax.images[0].get_array()
    dummy = list(a.summary.entry).index("dummy/default")
    assert data.mask[dummy].all() and data.mask[:, dummy].all() and not data.mask[0, 1]


def test_pareto_front_and_the_time_axis(figs):
    assert list(plots.pareto_front([1, 2, 3, 4, 5], [0.5, 0.4, 0.7, 0.7, 0.9])) == [0, 2, 4]
    a, _ = figs
    fit = figures(a, "fit")["time-vs-score"][1].axes[0]
    tuning = figures(a, "tuning")["time-vs-score"][1].axes[0]
    assert "fit + predict" in fit.get_xlabel() and "CPU s" in tuning.get_xlabel()
    assert fit.get_xlim() != tuning.get_xlim()
    with pytest.raises(ValueError, match="--time-axis 'wall' is not one of: fit, tuning"):
        figures(a, "wall")


def _crosses(p1, p2, q1, q2) -> bool:
    """Whether segments p1-p2 and q1-q2 cross (touching ends do not count)."""
    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return side(p1, p2, q1) * side(p1, p2, q2) < 0 and side(q1, q2, p1) * side(q1, q2, p2) < 0


@pytest.mark.parametrize("axis", ["fit", "tuning"])
def test_time_vs_score_leaders_never_cross(figs, axis):
    """Every label's leader, as drawn (from where it starts to its label in the column right of the axes),
    crosses no other leader."""
    a, _ = figs
    fig = figures(a, axis)["time-vs-score"][1]
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t for t in ax.texts if "/" in t.get_text()]
    assert len(labels) == a.summary[{"fit": "median_seconds", "tuning": "cpu_seconds"}[axis]].notna().sum()
    segments = []
    for t in labels:
        start = ax.transData.transform(t.xy) if t.xycoords == "data" else t.xycoords.transform(t.xy)
        segments.append((start, ax.transAxes.transform(t.xyann)))
    crossing = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(labels))
                for j in range(i + 1, len(labels)) if _crosses(*segments[i], *segments[j])]
    assert not crossing


def _leader_crossings(fig) -> list[tuple[str, str]]:
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t for t in ax.texts if "/" in t.get_text()]
    segments = [((ax.transData.transform(t.xy) if t.xycoords == "data" else t.xycoords.transform(t.xy)),
                 ax.transAxes.transform(t.xyann)) for t in labels]
    return [(labels[i].get_text(), labels[j].get_text()) for i in range(len(labels))
            for j in range(i + 1, len(labels)) if _crosses(*segments[i], *segments[j])]


def test_leaders_of_close_scores_far_apart_in_time_do_not_cross():
    """Close scores at very different times (labels pushed apart): straight leaders from the points cross
    here (e0/e6 and e4/e10 did, as the plot drew them before); the drawn ones do not."""
    import pandas as pd

    scores = [0.856, 0.847, 0.717, 0.74, 0.847, 0.804, 0.851, 0.827, 0.807, 0.874, 0.847, 0.654]
    seconds = [9.838, 0.022, 0.505, 0.386, 0.064, 56.444, 0.024, 0.01, 0.196, 91.829, 0.114, 21.027]
    table = pd.DataFrame({"entry": [f"e{i}/x" for i in range(12)], "family": "gbdt", "median_seconds": seconds,
                          "norm_score": scores})
    assert not _leader_crossings(plots.time_vs_score(table, "fit"))


def test_per_dataset_family_points_are_chosen_on_validation_not_test(tmp_path):
    """xgboost has the better validation score and lightgbm's entries the better test scores: on dataset a
    the gbdt point is xgboost's. On b lightgbm's per-model ensemble is best on validation and is the point:
    every variant is a candidate, as in the headline's best row, so the plot's points are the entries of
    the headline's per-dataset table. The cross-model ensemble is a family of its own."""
    members = {"params": {"weights": {"x/0": 1.0}}, "ensemble": {"members": [{"name": "x/0"}]}}
    records = []
    for dataset, ensemble_val in (("a", 0.89), ("b", 0.99)):
        records += [record(dataset, "xgboost", Variant.DEFAULT, 0, score=0.80, val_score=0.90),
                    record(dataset, "lightgbm", Variant.DEFAULT, 0, score=0.95, val_score=0.85),
                    record(dataset, "lightgbm", Variant.ENSEMBLE, 0, score=0.97, val_score=ensemble_val, **members),
                    record(dataset, "mlp", Variant.DEFAULT, 0, score=0.85, val_score=0.80, family="neural"),
                    record(dataset, "ensemble_all", Variant.ENSEMBLE, 0, score=0.96, val_score=0.99,
                           family="ensemble", **members)]
    a = analyze(write_run(tmp_path / "run", records), n_boot=10)
    best = family_best(a.frame, a.per_dataset).set_index(["dataset", "family"]).entry
    assert best[("a", "gbdt")] == "xgboost/default" and best[("b", "gbdt")] == "lightgbm/ensemble"
    assert best[("a", "neural")] == "mlp/default" and best[("a", "ensemble")] == "ensemble_all/ensemble"
    headline = pairs(a.frame).query("scope == 'best'").set_index("dataset")
    for dataset in ("a", "b"):
        assert headline.gbdt_entry[dataset] == best[(dataset, "gbdt")]
        assert headline.neural_entry[dataset] == best[(dataset, "neural")]
    ax = figures(a)["per-dataset"][1].axes[0]
    rows = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert set(rows) == {"a", "b"} and rows["a"] > rows["b"]  # one row per dataset, in name order from the top
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"gbdt", "neural", "ensemble"}


def test_per_dataset_family_point_counts_a_failed_split_at_its_worst_validation_score(tmp_path):
    """xgboost has the best validation score on the split it finished but timed out on the hard split 1;
    counted there at that split's worst finished validation score (mlp's 0.60), its mean (0.775) is below
    lightgbm's (0.825), so lightgbm is the GBDT point, as the GBDT-vs-neural headline chooses."""
    records = [record("a", "xgboost", Variant.DEFAULT, 0, score=0.90, val_score=0.95),
               record("a", "xgboost", Variant.DEFAULT, 1, status=Status.TIMEOUT),
               record("a", "lightgbm", Variant.DEFAULT, 0, score=0.88, val_score=0.93),
               record("a", "lightgbm", Variant.DEFAULT, 1, score=0.70, val_score=0.72),
               record("a", "mlp", Variant.DEFAULT, 0, score=0.80, val_score=0.80, family="neural"),
               record("a", "mlp", Variant.DEFAULT, 1, score=0.62, val_score=0.60, family="neural")]
    a = analyze(write_run(tmp_path / "run", records), n_boot=10)
    best = family_best(a.frame, a.per_dataset).set_index(["dataset", "family"])
    assert best.entry[("a", "gbdt")] == "lightgbm/default"
    assert best.val_score[("a", "gbdt")] == pytest.approx(0.825)
    chosen = pairs(a.frame)
    assert chosen[chosen.scope == "best"].gbdt_entry.tolist() == ["lightgbm/default"]  # the same rule
