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
    assert table.loc["m1", "norm_minmax"] == pytest.approx((1 + 0) / 2)
    assert table.loc["m2", "norm_minmax"] == pytest.approx((0.2 / 0.35 + 1) / 2)
    assert table.loc["m3", "norm_minmax"] == pytest.approx(0.25)
    assert table.loc["m2", "mean_rank"] == pytest.approx(1.5)
    # quantile variant: a's 10% quantile of [0.5, 0.7, 0.85] is 0.54; b's median RMSE 2 -> 0, m1 truncated
    assert table.loc["m2", "norm_score"] == pytest.approx((0.16 / 0.31 + 1) / 2)
    assert table.loc["m1", "norm_score"] == pytest.approx(0.5)
    assert table.loc["m1", "wins"] == 1 and table.loc["m2", "wins"] == 1 and table.loc["m3", "wins"] == 0
    assert table.loc["m1", "median_fit_s"] == pytest.approx(1.0)  # median of 1, 2, 1
    assert list(leaderboard.compute(frame).model)[0] == "m2"
    per_type = leaderboard.all_tables(frame)
    assert set(per_type) == {"overall", "binary", "regression"}
    assert per_type["regression"].set_index("model").loc["m2", "norm_minmax"] == 1.0


def test_failures_rank_last_and_skips_are_left_out():
    frame = pd.DataFrame(_rows("a", "binary", "maximize", {"m1": [0.9], "m2": [0.8], "bad": [None], "skip": [None]},
                               status={"bad": "failed", "skip": "skipped"}))
    table = leaderboard.compute(frame).set_index("model")
    assert table.loc["bad", "mean_rank"] == 3 and table.loc["bad", "norm_minmax"] == 0
    assert table.loc["bad", "failures"] == 1 and table.loc["bad", "datasets"] == 0
    assert pd.isna(table.loc["skip", "mean_rank"]) and table.loc["skip", "skipped"] == 1


def test_markdown_has_every_table():
    frame = pd.DataFrame(_rows("a", "multiclass", "minimize", {"m1": [0.3], "m2": [0.4]}))
    md = leaderboard.to_markdown(leaderboard.all_tables(frame))
    assert "## overall" in md and "## multiclass" in md and "| m1 | default |" in md


# --- console, CSV and Markdown views on hand-made records (tests/hand_records.py) --------------------------


def _console(width=100):
    import io

    from rich.console import Console

    return Console(width=width, record=True, file=io.StringIO(), highlight=False)


def _leaderboard(run_dir, *flags, width=100):
    from bench.cli import commands
    from bench.cli.main import build_parser

    console = _console(width)
    assert commands.cmd_leaderboard(build_parser().parse_args(["leaderboard", str(run_dir), *flags]), console) == 0
    return console.export_text()


def _long_names_run(tmp_path, seeds: bool):
    from bench.vocabulary import Variant
    from tests.hand_records import record, write_run

    records = []
    for d, dataset in enumerate(("adult", "higgs", "covertype")):
        for split in (0, 1):
            for i, model in enumerate(("random_forest", "ft_transformer", "catboost")):
                for variant in (Variant.DEFAULT, Variant.TUNED):
                    records.append(record(dataset, model, variant, split, score=0.7 + 0.05 * i + 0.01 * d,
                                          test_score_std=0.004 if seeds else None, fit_seconds=1234.5,
                                          device_seconds={"cpu": 2222.0, "gpu": 0.0}))
    return write_run(tmp_path / "run", records).run_dir


def test_console_leaderboard_fits_100_columns_and_wide_shows_every_column(tmp_path):
    run_dir = _long_names_run(tmp_path, seeds=True)
    text = _leaderboard(run_dir)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100, "\n".join(lines)
    assert "…" not in text and "ft_transformer/default" in text and "±sd" in text
    assert "d-only" in text and "cut" in text and "--wide" in text  # the legend names the wide view
    header = next(line for line in lines if line.lstrip().startswith("entry"))
    assert "CPU s" not in header and "family" not in header
    wide = _leaderboard(run_dir, "--wide", width=200)
    header = next(line for line in wide.splitlines() if line.lstrip().startswith("entry"))
    for column in ("family", "splits", "pred s", "CPU s", "GPU s"):
        assert column in header
    assert "2222.0" in wide or "2222" in wide
    row = next(line for line in wide.splitlines() if "2222" in line)
    assert "<0.01" not in row and row.split()[-1] == "–"  # no GPU held: "–", not "<0.01"


def test_one_seed_means_no_seed_std_column(tmp_path):
    run_dir = _long_names_run(tmp_path, seeds=False)
    text = _leaderboard(run_dir)
    assert "±sd" not in text and "nan" not in text.lower()
    csv_header = (run_dir / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "seed_std" not in csv_header
    assert {"norm_score", "norm_minmax", "cpu_seconds", "only_defaults", "clock_cut"} <= set(csv_header)
    assert "seed_std" not in (run_dir / "leaderboard.md").read_text()


def test_strict_budget_makes_a_bent_run_exit_1(tmp_path, capsys):
    """A real one-job sweep whose tuned record is then marked as holding only the defaults trial (as
    the tuning clock would leave it); running the same command again re-reads it."""
    import json

    from bench.cli import main

    out = tmp_path / "run"
    args = ["run", "--suite", "demo", "--datasets", "wine", "--models", "linear", "--trials", "2", "--splits", "1",
            "--jobs", "0", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "Budget bent" not in capsys.readouterr().out
    [path] = (out / "records").rglob("*.tuned.json")
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "only_defaults": True}))
    assert main(args) == 0  # the warning alone does not fail a run
    text = capsys.readouterr().out
    assert "Budget bent" in text and "linear/tuned: 1 of 1 tuned records hold only the defaults trial" in text
    assert main([*args, "--strict-budget"]) == 1
    assert "--strict-budget" in capsys.readouterr().out
