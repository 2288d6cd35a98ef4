"""The record's one field list (bench.records.schema.FIELDS) and its one builder (bench.records.record): what a
real sweep writes (ok, failed, skipped and cross-model records) is declared, of the declared JSON type,
valid, and the leaderboard frame is derived from the same list."""

import pytest

from bench.cli.main import main
from bench.records import schema
from bench.records.record import Numbers, cross_model_head, failed, not_run, ok
from bench.records.store import ResultStore
from bench.vocabulary import Status
from tests.cli_helpers import data_file, records, suite_file


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two datasets (one regression, which test_raise fails and test_regression_only takes while the
    binary one is refused) x three models, two of them tuned: every kind of record."""
    tmp = tmp_path_factory.mktemp("builder")
    data_file(tmp / "b.parquet", "binary", n=90)
    data_file(tmp / "r.parquet", "regression", n=90)
    suite = suite_file(tmp / "s.toml", {"b": ("b.parquet", "binary"), "r": ("r.parquet", "regression")})
    code = main([str(a) for a in ("run", "--suite", suite, "--models", "test_prior,test_raise,test_regression_only",
                                   "--trials", 2, "--jobs", 0, "--splits", 1, "--out", tmp / "run", "--quiet")])
    assert code == 0
    return tmp / "run"


def _kind_problems(record: dict) -> list[str]:
    return [f"{f.name}: {type(record[f.name]).__name__} is not {f.kind}" for f in schema.FIELDS
            if record.get(f.name) is not None and not isinstance(record[f.name], f.kind)]


def test_every_written_record_is_declared_typed_and_valid(run):
    written = records(run)
    statuses = {r["status"] for r in written.values()}
    assert {"ok", "failed", "skipped"} <= statuses
    assert any(r["model"] == "ensemble_all" for r in written.values())
    for path, record in written.items():
        assert set(record) <= schema.NAMES, (path, set(record) - schema.NAMES)
        assert _kind_problems(record) == [], path
        assert schema.validate_record(record) == [], path
        assert list(record) == sorted(record, key=[f.name for f in schema.FIELDS].index), path


def test_the_frame_is_the_fields_projection(run):
    frame = ResultStore(run).frame()
    written = records(run)
    assert len(frame) == len(written)
    columns = set()
    for f in schema.FIELDS:
        if isinstance(f.columns, str):
            columns.add(f.columns)
    assert columns <= set(frame.columns)
    assert {"split", "split_hash", "trials_completed", "cpu_seconds", "sampler", "n_seeds", "error", "record",
            "clock_cut", "test_roc_auc", "test_rmse"} <= set(frame.columns)
    failed_row = frame[frame.status == "failed"].iloc[0]
    assert isinstance(failed_row.error, str) and failed_row.error


def test_a_field_added_to_the_list_reaches_validation_and_the_frame(run, monkeypatch):
    extra = schema.Field("spin", str, "a field a later version adds", frozenset({Status.OK}),
                         lambda v, r: None if v in ("up", "down") else f"'spin' is {v!r}", "spin")
    monkeypatch.setattr(schema, "FIELDS", (*schema.FIELDS, extra))
    some_ok = next(r for r in records(run).values() if r["status"] == "ok")
    assert schema.validate_record(some_ok) == ["'spin' is None"]
    assert schema.validate_record({**some_ok, "spin": "up"}) == []
    assert schema.frame_row({**some_ok, "spin": "up"})["spin"] == "up"


def test_the_builder_refuses_an_undeclared_field():
    head = {"job_id": "d/m/r0f0", "dataset": "d", "model": "m", "variant": "default", "dataset_hash": "h",
            "split": {"index": 0, "hash": "s"}}
    assert not_run(head, Status.SKIPPED, "too small")["reason"] == "too small"
    with pytest.raises(ValueError, match=r"\['colour'\] are not declared"):
        failed(head, Status.FAILED, "E", "boom", {"colour": "red"})


def test_cross_model_records_take_the_members_dataset_split_and_budget():
    member = {"suite": "s", "dataset": "d", "split": {"index": 1, "hash": "x"}, "budget": {"trials": 3},
              "objective": "roc_auc", "direction": "maximize", "model_seed": 7, "job_key": "member", "family": "gbdt",
              "task_type": "binary"}
    head = cross_model_head(member, "d/ensemble_all/r0f1", "k", "d", "h", {"index": 1, "hash": "fallback"})
    record = ok(head, "roc_auc", Numbers({"weights": {"a/0": 1.0}}, None, 0.9, {"roc_auc": 0.8},
                                         [{"seed": 7, "roc_auc": 0.8}], 1.0, 0.1,
                                         ensemble={"members": [{"name": "a/0"}]}))
    assert record["split"] == {"index": 1, "hash": "x"} and record["budget"] == {"trials": 3}
    assert (record["job_key"], record["family"], record["model"]) == ("k", "ensemble", "ensemble_all")
    assert record["test_score"] == 0.8 and record["test_score_std"] is None and "fit_info" not in record
    assert schema.validate_record(record) == []
    assert cross_model_head({}, "d/ensemble_all/r0f1", "k", "d", "h", {"index": 1, "hash": "f"})["split"]["hash"] == "f"
