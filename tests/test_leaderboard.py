import pandas as pd
import pytest

from bench.analysis import leaderboard


def _rows(dataset, task_type, direction, scores, status=None):
    status = status or {}
    out = []
    for model, values in scores.items():
        for split, v in enumerate(values):
            out.append({"dataset": dataset, "task_type": task_type, "model": model, "variant": "default",
                        "family": "x", "split": split, "status": status.get(model, "ok"),
                        "test_score": v, "direction": direction, "fit_seconds": 1.0 + split,
                        "predict_seconds": 0.1})
    return out


def test_normalized_scores_ranks_and_wins():
    frame = pd.DataFrame(
        _rows("a", "binary", "maximize", {"m1": [0.9, 0.8], "m2": [0.7, 0.7], "m3": [0.5, 0.5]})
        + _rows("b", "regression", "minimize", {"m1": [3.0], "m2": [1.0], "m3": [2.0]})
    )
    table = leaderboard.compute(frame).set_index("model")
    # dataset a: m1 0.85 best, m2 0.7 -> (0.7-0.5)/(0.85-0.5), m3 worst; b: m2 best, m3 0.5, m1 worst
    assert table.loc["m1", "mean_norm_score"] == pytest.approx((1 + 0) / 2)
    assert table.loc["m2", "mean_norm_score"] == pytest.approx((0.2 / 0.35 + 1) / 2)
    assert table.loc["m3", "mean_norm_score"] == pytest.approx(0.25)
    assert table.loc["m2", "mean_rank"] == pytest.approx(1.5)
    # quantile variant: a's 10% quantile of [0.5, 0.7, 0.85] is 0.54; b's median RMSE 2 -> 0, m1 truncated
    assert table.loc["m2", "norm_quantile"] == pytest.approx((0.16 / 0.31 + 1) / 2)
    assert table.loc["m1", "norm_quantile"] == pytest.approx(0.5)
    assert table.loc["m1", "wins"] == 1 and table.loc["m2", "wins"] == 1 and table.loc["m3", "wins"] == 0
    assert table.loc["m1", "median_fit_s"] == pytest.approx(1.0)  # median of 1, 2, 1
    assert list(leaderboard.compute(frame).model)[0] == "m2"
    per_type = leaderboard.all_tables(frame)
    assert set(per_type) == {"overall", "binary", "regression"}
    assert per_type["regression"].set_index("model").loc["m2", "mean_norm_score"] == 1.0


def test_failures_rank_last_and_skips_are_left_out():
    frame = pd.DataFrame(_rows("a", "binary", "maximize", {"m1": [0.9], "m2": [0.8], "bad": [None], "skip": [None]},
                               status={"bad": "failed", "skip": "skipped"}))
    table = leaderboard.compute(frame).set_index("model")
    assert table.loc["bad", "mean_rank"] == 3 and table.loc["bad", "mean_norm_score"] == 0
    assert table.loc["bad", "failures"] == 1 and table.loc["bad", "datasets"] == 0
    assert pd.isna(table.loc["skip", "mean_rank"]) and table.loc["skip", "skipped"] == 1


def test_markdown_has_every_table():
    frame = pd.DataFrame(_rows("a", "multiclass", "minimize", {"m1": [0.3], "m2": [0.4]}))
    md = leaderboard.to_markdown(leaderboard.all_tables(frame))
    assert "## overall" in md and "## multiclass" in md and "| m1 | default |" in md
