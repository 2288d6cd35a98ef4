"""A damaged predictions file or study of the harness's own never destroys a good record (issue 18.2):
it is detected, set aside with a note, and the job run from scratch; the cross-model ensemble leaves
that member out instead of failing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.tuning import predictions as P
from tests.cli_helpers import data_file, records, run_cli, suite_file, without

_TIMING = {"fit_seconds", "predict_seconds", "seconds", "finished_at", "tuning_seconds", "job_seconds", "cpu_seconds",
           "device_seconds", "selection_seconds", "study_uid", "predictions", "ensemble_inputs", "resumes"}


def _numbers(value):
    return without(value, _TIMING)


def _sweep(tmp_path: Path, capsys, *extra) -> tuple[Path, list]:
    data_file(tmp_path / "b.parquet", "binary", n=160)
    suite = suite_file(tmp_path / "s.toml", {"b": ("b.parquet", "binary")})
    out = tmp_path / "run"
    args = ["run", "--suite", suite, "--models", "linear,test_prior", "--trials", 3, "--jobs", 0, "--splits", 1,
            "--out", out, "--quiet", *extra]
    code, text = run_cli(capsys, *args)
    assert code == 0, text
    return out, args


def _truncate(path: Path, keep: int = 300) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _damaged_beside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.damaged-*"))


def test_a_job_that_finds_its_predictions_file_damaged_sets_it_aside_and_runs_from_scratch(tmp_path, capsys):
    out, args = _sweep(tmp_path, capsys)
    before = records(out)
    npz = out / "predictions/b/linear/r0f0.npz"
    _truncate(npz)
    (out / "records/b/linear/r0f0.ensemble.json").unlink()  # the job is run again (e.g. killed before its records)
    code, text = run_cli(capsys, *args)
    assert code == 0, text
    after = records(out)
    for variant in ("default", "tuned", "ensemble"):  # never `failed: File is not a zip file`
        rec = after[f"records/b/linear/r0f0.{variant}.json"]
        assert rec["status"] == "ok", rec.get("error")
        assert _numbers(rec) == _numbers(before[f"records/b/linear/r0f0.{variant}.json"])  # from scratch, same numbers
        (note,) = rec["predictions"]["set_aside"]
        assert note.startswith("r0f0.npz.damaged-") and "not a zip file" in note and "from scratch" in note
    (aside,) = _damaged_beside(npz)
    assert len(aside.read_bytes()) == 300  # kept for inspection
    assert P.check_predictions_file(npz) is None and P.load(npz).numbers == [0, 1, 2]  # a whole new file
    assert after["records/b/ensemble_all/r0f0.ensemble.json"]["status"] == "ok"


def test_the_same_command_redoes_a_done_job_whose_predictions_file_is_damaged_or_missing(tmp_path, capsys):
    """What `bench verify` advises for such a file: its job is run again, from scratch (a fresh study:
    the trials' predictions are lost), and the cross-model ensemble gets the member back."""
    out, args = _sweep(tmp_path, capsys)
    before = records(out)
    _truncate(out / "predictions/b/linear/r0f0.npz")
    (out / "predictions/b/test_prior/r0f0.npz").unlink()
    code, text = run_cli(capsys, *args)
    assert code == 0 and "2 jobs run, 0 already done" in text, text
    after = records(out)
    assert after.keys() == before.keys()
    for path, rec in after.items():
        assert rec["status"] == "ok" and _numbers(rec) == _numbers(before[path]), path
    assert "not a zip file" in after["records/b/linear/r0f0.default.json"]["predictions"]["set_aside"][0]
    assert after["records/b/ensemble_all/r0f0.ensemble.json"]["ensemble"]["left_out"] == {}
    code, text = run_cli(capsys, "verify", out)
    assert code == 0, text
    assert run_cli(capsys, *args)[1].count("0 jobs run, 2 already done") == 1  # and then nothing more


def test_retry_failed_reruns_a_job_whose_predictions_file_is_damaged(tmp_path, capsys):
    """What today's main left behind (its records failed by `File is not a zip file`) is repaired by
    --retry-failed instead of failing the same way again."""
    out, args = _sweep(tmp_path, capsys)
    _truncate(out / "predictions/b/linear/r0f0.npz")
    for path in (out / "records/b/linear").glob("r0f0.*.json"):
        rec = json.loads(path.read_text())
        rec.update(status="failed", error={"type": "BadZipFile", "message": "File is not a zip file"})
        path.write_text(json.dumps(rec))
    code, text = run_cli(capsys, *args, "--retry-failed")
    assert code == 0, text
    assert {r["status"] for p, r in records(out).items() if "/linear/" in p} == {"ok"}
    assert len(_damaged_beside(out / "predictions/b/linear/r0f0.npz")) == 1


def test_a_damaged_study_database_is_set_aside_too(tmp_path, capsys):
    out, args = _sweep(tmp_path, capsys)
    (db,) = (out / "optuna").glob("b__linear__r0f0__*.db")
    db.write_bytes(b"\0" * 100 + db.read_bytes()[100:2000])  # header gone, truncated
    for path in (out / "records/b/linear").glob("r0f0.*.json"):
        path.unlink()
    code, text = run_cli(capsys, *args)
    assert code == 0, text
    recs = [r for p, r in records(out).items() if "/linear/" in p]
    assert {r["status"] for r in recs} == {"ok"} and len(recs) == 3
    assert any(n.startswith(db.name + ".damaged-") for n in recs[0]["predictions"]["set_aside"])
    assert len(_damaged_beside(db)) == 1 and db.exists()  # a fresh study in its place


def test_the_cross_model_ensemble_leaves_a_member_with_a_damaged_file_out(tmp_path, capsys):
    """Damage inside an array (the file's directory and meta intact, so the sweep's quick check passes
    and the job is not run again) shows when the ensemble reads it: that member is left out, named."""
    out, args = _sweep(tmp_path, capsys)
    npz = out / "predictions/b/linear/r0f0.npz"
    _flip_a_byte_of(npz, "test_1.npy")
    ens = out / "records/b/ensemble_all/r0f0.ensemble.json"
    ens.unlink()  # made again on the rerun (as after a kill before the cross-model step)
    code, text = run_cli(capsys, *args)
    assert code == 0 and "0 jobs run, 2 already done" in text, text
    rec = json.loads(ens.read_text())
    assert rec["status"] == "ok", rec.get("error")
    assert rec["ensemble"]["models"] == ["test_prior"]
    why = rec["ensemble"]["left_out"]["linear"]
    assert why.startswith("predictions file predictions/b/linear/r0f0.npz is damaged (BadZipFile"), why
    assert {r["status"] for p, r in records(out).items() if "/linear/" in p} == {"ok"}  # the member's records stand
    code, text = run_cli(capsys, "verify", out)
    assert code == 1 and "predictions/b/linear/r0f0.npz (named by" in text and "damaged (BadZipFile" in text, text
    assert P.check_predictions_file(npz, thorough=False) is None and P.check_predictions_file(npz)


def _flip_a_byte_of(path: Path, member: str) -> None:
    """Flip one byte in the middle of a member's compressed data: its checksum no longer matches."""
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo(member)
    name_len, extra_len = (int.from_bytes(data[info.header_offset + i:info.header_offset + i + 2], "little")
                           for i in (26, 28))
    data[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --- detection -------------------------------------------------------------------------------------

def _job_file(tmp_path: Path) -> Path:
    store = P.TrialPredictions(tmp_path / "p.npz", "k", "u", np.array([0, 1, 1, 0]), True, True)
    for n in range(3):
        proba = np.full((4, 2), 0.5) + np.array([0.1 * n, -0.1 * n])
        store.add(n, 0.5 + n / 10, proba, proba[:3], 1.0, 0.1, n == 0)
    store.write(store.collect({0, 1, 2}))
    return tmp_path / "p.npz"


def test_check_predictions_file_names_what_is_wrong(tmp_path):
    path = _job_file(tmp_path)
    assert P.check_predictions_file(path) is None and P.damaged_files(path) == {}
    assert P.check_predictions_file(tmp_path / "none.npz") == "missing"
    good = path.read_bytes()

    _truncate(path, len(good) // 2)
    assert P.check_predictions_file(path).startswith("BadZipFile")
    with pytest.raises(P.DamagedPredictions):
        P.load(path)

    _write(path, good)
    _flip_a_byte_of(path, "test_1.npy")  # one byte inside a compressed array
    problem = P.check_predictions_file(path)
    assert problem is not None and P.damaged_files(path) == {path: problem}
    assert P.check_predictions_file(path, thorough=False) is None  # the quick check reads no array

    with zipfile.ZipFile(path, "w") as z:  # a zip whose meta names arrays it does not hold
        z.writestr("meta.npy", _npy(np.array(json.dumps({"trials": {"0": {}}}))))
    assert "missing: y_val, val_0, test_0" in P.check_predictions_file(path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_damaged_trial_part_is_set_aside_and_its_trial_counted_without(tmp_path):
    store = P.TrialPredictions(tmp_path / "p.npz", "k", "u", np.array([0.0, 1.0, 2.0]), False, False)
    for n in range(3):
        store.add(n, float(n), np.arange(3.0) + n, np.arange(2.0), 1.0, 0.1, n == 0)
    _truncate(tmp_path / "p.parts" / "1.npz", 50)
    again = P.TrialPredictions(tmp_path / "p.npz", "k", "u", np.array([0.0, 1.0, 2.0]), False, False)
    stored = again.collect({0, 1, 2})
    assert stored.numbers == [0, 2] and stored.info["without"] == 1
    assert stored.info["set_aside"][0].startswith("1.npz.damaged-")
    assert stored.val[2].dtype == np.float64 and stored.info["from_float32_file"] == 0  # exact parts
