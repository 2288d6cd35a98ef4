"""The regression check's comparison and report, on the committed baseline (the sweep itself runs in
CI as `make regress`; here its numbers are taken from the baseline and then tampered with)."""

import json

import pytest

from bench.cli import main
from bench.workflows import regress


@pytest.fixture
def baseline():
    return json.loads(regress.BASELINE.read_text())


def test_committed_baseline_matches_the_pinned_sweep(baseline):
    assert baseline["sweep"] == regress.SMOKE_SWEEP
    assert (regress.BASELINE.parent / baseline["sweep"]["suite"]).exists()
    numbers = baseline["numbers"]
    kinds = {key.split()[0] for key in numbers}
    assert kinds == {"score", "norm_score", "norm_minmax", "mean_rank", "elo"}
    for key, entry in numbers.items():
        floor = regress.FLOOR_ABS + regress.FLOOR_REL * abs(entry["value"])
        assert entry["tolerance"] == pytest.approx(max(baseline["k"] * entry["std"], floor)), key
    assert any(entry["std"] > 0 for entry in numbers.values())  # seeds do move some numbers


def test_committed_baseline_covers_default_tuned_and_ensemble_entries(baseline):
    """`bench regress` compares the ensembles too (per model and ensemble_all). The baseline is
    re-created with `make regress-baseline` whenever the pinned sweep's entries change."""
    entries = {key.split()[-1] for key in baseline["numbers"] if key.startswith("norm_score ")}
    for model in ("linear", "random_forest", "xgboost", "lightgbm"):
        assert {f"{model}/default", f"{model}/tuned", f"{model}/ensemble"} <= entries, model
    assert "ensemble_all/ensemble" in entries and "dummy/default" in entries


def test_tolerance_is_k_times_seed_std_with_a_floor():
    runs = [{"a": 1.0, "b": 5.0}, {"a": 1.2, "b": 5.0}, {"a": 0.8, "b": 5.0}]
    data = regress.make_baseline(runs, {"x": 1}, [0, 1, 2])
    assert data["numbers"]["a"]["value"] == 1.0 and data["numbers"]["a"]["std"] == pytest.approx(0.2)
    assert data["numbers"]["a"]["tolerance"] == pytest.approx(regress.K * 0.2)
    assert data["numbers"]["b"]["tolerance"] == pytest.approx(regress.FLOOR_ABS + regress.FLOOR_REL * 5.0)


def test_compare_finds_moved_missing_and_new_numbers():
    base = {"numbers": {"a": {"value": 1.0, "tolerance": 0.1}, "b": {"value": 2.0, "tolerance": 0.1},
                        "c": {"value": 3.0, "tolerance": 0.1}}}
    drifts = {d.key: d for d in regress.compare(base, {"a": 1.05, "b": 2.5, "d": 0.0})}
    assert set(drifts) == {"b", "c", "d"}
    assert drifts["b"].delta == pytest.approx(0.5) and drifts["c"].now is None and drifts["d"].baseline is None
    assert regress.compare(base, {"a": 1.0, "b": 2.0, "c": 3.0}) == []
    assert [d.key for d in regress.compare(base, {"a": float("nan"), "b": 2.0, "c": 3.0})] == ["a"]


def _regress_with(monkeypatch, tmp_path, capsys, baseline, now):
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps(baseline))
    monkeypatch.setattr(regress, "run_pinned_sweep", lambda *args, **kwargs: dict(now))
    code = main(["regress", "--baseline", str(path)])
    return code, " ".join(capsys.readouterr().out.split())


def test_regress_passes_when_nothing_moved_and_fails_with_a_table(monkeypatch, tmp_path, capsys, baseline):
    now = {key: entry["value"] for key, entry in baseline["numbers"].items()}
    code, out = _regress_with(monkeypatch, tmp_path, capsys, baseline, now)
    assert code == 0 and f"all {len(now)} numbers within tolerance" in out
    key = next(k for k in now if k.startswith("score "))
    tampered = json.loads(json.dumps(baseline))
    entry = tampered["numbers"][key]
    entry["value"] += 10 * entry["tolerance"]
    code, out = _regress_with(monkeypatch, tmp_path, capsys, tampered, now)
    assert code == 1
    assert "1 of" in out and "numbers moved" in out and key in out
    for column in ("what", "baseline", "now", "delta", "tolerance"):
        assert column in out
    assert f"{entry['value']:.6g}" in out and f"{now[key]:.6g}" in out
    tampered["versions"]["xgboost"] = "0.0.1"
    code, out = _regress_with(monkeypatch, tmp_path, capsys, tampered, now)
    assert code == 1 and "xgboost 0.0.1 ->" in out


def test_missing_baseline_is_a_clear_error(tmp_path, capsys):
    assert main(["regress", "--baseline", str(tmp_path / "none.json")]) == 2
    assert "bench regress --update" in " ".join(capsys.readouterr().out.split())
