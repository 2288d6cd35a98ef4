"""Run identity, freshness and integrity: nothing stale is reused, nothing broken is counted silently.

Defects of issue 10: (1) stale tuning reused after a data change, --retry-failed re-running nothing;
(2) a protocol change mixing folds in one folder; (3) broken records silently dropped or crashing the
leaderboard. Issue 13: failure records carry the dataset's metadata and count in per-task tables.
"""

import json
import shutil
from types import SimpleNamespace

import pytest

from bench.records.store import ResultStore
from tests.cli_helpers import data_file, records, run_cli, suite_file


def _small_run(tmp_path, capsys, models="test_prior", trials=1, folds=2, extra=()):
    data_file(tmp_path / "d.parquet", "binary", n=80)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")}, folds=folds)
    out = tmp_path / "run"
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", models, "--trials", trials, "--jobs", 0,
                         "--out", out, "--quiet", *extra)
    assert code == 0, text
    return suite, out


# --- defect 1: stale tuning --------------------------------------------------------------------------

def test_changed_dataset_is_rerun_with_fresh_tuning_and_a_note(tmp_path, capsys):
    data = data_file(tmp_path / "d.parquet", "binary", n=120, seed=0)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    args = ["--models", "test_prior", "--trials", 3, "--jobs", 0, "--splits", 1, "--quiet"]
    code, out = run_cli(capsys, "run", "--suite", suite, "--out", tmp_path / "run", *args)
    assert code == 0, out
    old = records(tmp_path / "run")["records/d/test_prior/r0f0.tuned.json"]

    data_file(data, "binary", n=130, seed=1)  # the file changes under the same name
    code, out = run_cli(capsys, "run", "--suite", suite, "--out", tmp_path / "run", *args)
    assert code == 0, out
    assert "dataset d changed" in out and "1 jobs run, 0 already done" in out
    new = records(tmp_path / "run")["records/d/test_prior/r0f0.tuned.json"]
    code, out = run_cli(capsys, "run", "--suite", suite, "--out", tmp_path / "fresh", *args)
    fresh = records(tmp_path / "fresh")["records/d/test_prior/r0f0.tuned.json"]

    assert new["dataset_hash"] == fresh["dataset_hash"] != old["dataset_hash"]
    # the tuning is the fresh one on the new data, not the old study's trials under a new hash
    assert [t["value"] for t in new["trials"]] == pytest.approx([t["value"] for t in fresh["trials"]])
    assert new["val_score"] == pytest.approx(fresh["val_score"]) and new["params"] == fresh["params"]
    assert len(new["trials"]) == 3
    studies = sorted(p.name for p in (tmp_path / "run" / "optuna").glob("*.db"))
    assert len(studies) == 1 and new["job_key"] in studies[0]  # the stale study is gone


def test_retry_failed_really_reruns_with_a_fresh_study(tmp_path, capsys, monkeypatch):
    flag = tmp_path / "fail-now"
    flag.write_text("")
    monkeypatch.setenv("BENCH_TEST_FLAKY", str(flag))
    data_file(tmp_path / "d.parquet", "binary", n=80)
    suite = suite_file(tmp_path / "s.toml", {"d": ("d.parquet", "binary")})
    args = ["run", "--suite", suite, "--models", "test_flaky", "--trials", 2, "--jobs", 0, "--splits", 1,
            "--out", tmp_path / "run", "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    assert {r["status"] for r in records(tmp_path / "run").values()} == {"failed"}

    flag.unlink()  # the fault is gone
    code, out = run_cli(capsys, *args, "--retry-failed")
    assert code == 0 and "1 jobs run" in out, out
    recs = records(tmp_path / "run")
    assert {r["status"] for r in recs.values()} == {"ok"}
    tuned = recs["records/d/test_flaky/r0f0.tuned.json"]
    assert [t["state"] for t in tuned["trials"]] == ["COMPLETE", "COMPLETE"]  # not the 2 old failures


# --- defect 2: a protocol or budget change into the same folder --------------------------------------

def test_protocol_change_into_the_same_folder_is_refused_naming_it(tmp_path, capsys):
    suite, out = _small_run(tmp_path, capsys, folds=3)
    before = records(out)
    assert len(before) == 3
    suite.write_text(suite.read_text().replace("folds = 3", "folds = 2"))
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "test_prior", "--trials", 1, "--jobs", 0,
                         "--out", out, "--quiet")
    assert code == 2 and "protocol.folds: 3 -> 2" in text
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "test_prior", "--trials", 2,
                         "--jobs", 0, "--out", out, "--quiet")
    assert code == 2 and "trials: 1 -> 2" in text
    assert records(out) == before  # nothing was mixed in
    assert json.loads((out / "run.json").read_text())["protocol"]["folds"] == 3


# --- defect 3: broken records ------------------------------------------------------------------------

@pytest.mark.parametrize("content, kind", [('{"job_id": "d/test_prior/r0f1", "sta', "unreadable"),
                                           ("{}", "invalid"), ("null", "invalid")])
def test_broken_record_is_named_and_refused_unless_allow_partial(tmp_path, capsys, content, kind):
    _, out = _small_run(tmp_path, capsys)
    assert run_cli(capsys, "verify", out)[0] == 0
    broken = out / "records" / "d" / "test_prior" / "r0f1.default.json"
    broken.write_text(content)
    for command in ("leaderboard", "report"):
        code, text = run_cli(capsys, command, out)
        assert code == 2 and kind in text and "r0f1.default.json" in text, text
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and kind in text and "r0f1.default.json" in text
    code, text = run_cli(capsys, "leaderboard", out, "--allow-partial")
    assert code == 0 and "warning" in text and "1 records that pass" in text


def test_verify_finds_foreign_misplaced_stale_and_missing_records(tmp_path, capsys):
    _, out = _small_run(tmp_path, capsys)
    rec_dir = out / "records" / "d" / "test_prior"
    good = json.loads((rec_dir / "r0f0.default.json").read_text())
    (rec_dir / "r0f0.default (copy).json").write_text(json.dumps(good))  # a second record of one job
    foreign = out / "records" / "d" / "other" / "r0f0.default.json"
    foreign.parent.mkdir()
    foreign.write_text(json.dumps({**good, "model": "other", "job_id": "d/other/r0f0"}))
    (rec_dir / "r0f1.default.json").write_text(json.dumps({**good, "job_id": "d/test_prior/r0f1",
                                                           "dataset_hash": "0" * 16}))
    code, text = run_cli(capsys, "verify", out)
    assert code == 1
    assert "misplaced: records/d/test_prior/r0f0.default (copy).json" in text
    assert "foreign: records/d/other/r0f0.default.json" in text
    assert "stale: records/d/test_prior/r0f1.default.json: dataset hash 0000000000000000" in text
    (rec_dir / "r0f1.default.json").unlink()
    for split_file in (out / "splits").glob("*.npz"):
        split_file.write_bytes(b"torn")
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "missing: d/test_prior/r0f1 [default] has no record" in text
    assert "data: splits/d-" in text and "damaged (BadZipFile" in text


# --- issue 13: failure records carry the dataset's metadata ------------------------------------------

def test_forced_timeout_on_multiclass_counts_in_the_per_task_table(make_ds, tmp_path):
    from bench.analysis import leaderboard
    from bench.execution.runner import run_local
    from bench.execution.sweep import SweepConfig, plan_jobs
    from tests.test_splits import Protocol

    store = ResultStore(tmp_path / "run")
    ds = make_ds("multiclass", n=90)
    config = SweepConfig(suite="t", models=["test_prior", "test_hang"], out=store.run_dir, trials=2,
                         device="cpu", max_splits=1)
    jobs = plan_jobs(config, SimpleNamespace(name="t", protocol=Protocol(folds=2, repeats=1)),
                     [SimpleNamespace(dataset=ds, task_splits=None)], store)
    run_local(jobs, store, workers=1, time_limit=12)  # room for test_prior on a busy machine (load 10)
    hung = [r for r in store.load_all() if r["model"] == "test_hang"]
    assert {r["status"] for r in hung} == {"timeout"} and len(hung) == 3  # default, tuned, ensemble
    for r in hung:
        assert (r["task_type"], r["n_rows"], r["n_features"], r["n_classes"]) == \
            ("multiclass", ds.n_rows, ds.n_features, 3)
        assert r["family"] == "baseline"
    tables = leaderboard.all_tables(store.frame())
    overall, multiclass = (t.set_index(["model", "variant"]) for t in (tables["overall"], tables["multiclass"]))
    for variant in ("default", "tuned", "ensemble"):
        assert overall.loc[("test_hang", variant), "failures"] == 1
        assert multiclass.loc[("test_hang", variant), "failures"] == 1
        assert multiclass.loc[("test_hang", variant), "mean_rank"] == overall.loc[("test_hang", variant), "mean_rank"]


def test_old_runs_without_a_plan_are_checked_against_the_schema(tmp_path, capsys):
    _, out = _small_run(tmp_path, capsys)
    (out / "plan.json").unlink()
    code, text = run_cli(capsys, "verify", out)
    # issue 18 item 7: the check is partial, and says so (exit 1: wholeness is not confirmed)
    assert code == 1 and "no plan.json" in text and "partial check:" in text and "the check is partial" in text
    assert "ok:" not in text
    assert run_cli(capsys, "leaderboard", out)[0] == 0  # (verify is the check; an old folder still ranks)
    shutil.rmtree(out / "records" / "d" / "test_prior")
    assert run_cli(capsys, "leaderboard", out)[0] == 2


# --- issue 18, item 5: damaged run-folder files are named, never a traceback --------------------------

def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated splits": lambda out: [_truncate(p) for p in (out / "splits").glob("*.npz")],
    "garbage meta.json": lambda out: (out / "data" / "d" / "meta.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe"),
    "meta.json not an object": lambda out: (out / "data" / "d" / "meta.json").write_text("[1, 2]"),
    "truncated data.parquet": lambda out: _truncate(out / "data" / "d" / "data.parquet"),
}
NAMED = {"truncated splits": "splits/d-", "garbage meta.json": "data/d: meta.json is damaged",
         "meta.json not an object": "data/d: meta.json is damaged", "truncated data.parquet": "data/d: data.parquet"}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_data_or_splits_are_named_by_verify_and_leaderboard_and_rewritten_by_run(tmp_path, capsys, damage):
    suite, out = _small_run(tmp_path, capsys)
    before = records(out)
    DAMAGE[damage](out)
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "data: " + NAMED[damage] in text and "run the same `bench run` command again" in text, text
    for command in ("leaderboard", "report"):
        code, text = run_cli(capsys, command, out)
        assert code == 2 and NAMED[damage] in text, text
    code, text = run_cli(capsys, "run", "--suite", suite, "--models", "test_prior", "--trials", 1, "--jobs", 0,
                         "--out", out, "--quiet")
    assert code == 0 and "written again" in text and NAMED[damage].split(":")[0] in text, text
    assert "0 jobs run, 2 already done" in text  # the rewritten copies hash as planned: nothing to redo
    assert run_cli(capsys, "verify", out)[0] == 0 and records(out) == before


# --- issue 18, item 7: what else verify catches ---------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda r: {**r, "test_score": r["test_score"] + 0.01}, "test_score"),
    (lambda r: {**r, "test_score": r["test_score"] + 0.01, "test": {**r["test"], "roc_auc": r["test_score"] + 0.01}},
     "is not the mean over its test_by_seed"),
    (lambda r: {**r, "val_score": 0.999}, "val_score 0.999 is not the value"),
])
def test_verify_finds_a_hand_edited_number(tmp_path, capsys, edit, message):
    _, out = _small_run(tmp_path, capsys, trials=2)
    path = out / "records" / "d" / "test_prior" / "r0f0.tuned.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "inconsistent: records/d/test_prior/r0f0.tuned.json" in text and message in text, text
    assert run_cli(capsys, "leaderboard", out)[0] == 2


def test_verify_finds_missing_and_damaged_predictions_data_and_records(tmp_path, capsys):
    _, out = _small_run(tmp_path, capsys, trials=2)
    assert run_cli(capsys, "verify", out)[0] == 0
    predictions = sorted((out / "predictions" / "d" / "test_prior").glob("*.npz"))
    assert len(predictions) == 2
    _truncate(predictions[0])
    predictions[1].unlink()
    (out / "data" / "d" / "data.parquet").unlink()
    code, text = run_cli(capsys, "verify", out)
    assert code == 1, text
    assert f"predictions: predictions/d/test_prior/{predictions[0].name}" in text and "damaged" in text
    assert f"predictions/d/test_prior/{predictions[1].name} (named by" in text and ": missing;" in text
    assert "data: data/d: data.parquet is missing" in text
    shutil.rmtree(out / "records")
    (out / "records").mkdir()
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "missing: records/ holds no record file" in text, text
