"""`bench explain RUN --dataset D --model M`: why a model of a finished run predicts what it does.

Never during tuning: it reads a finished run. The chosen configuration is refit (bench.explain.refit; the
output says so and puts the refit's test score next to the recorded one), then
  * SHAP values on the test part (bench.explain.shap_values): TreeSHAP in margin space for XGBoost, LightGBM
    and CatBoost; the permutation explainer on the original columns against a background sample of the
    training rows for every other model (on at most `max_rows` test rows: its cost is rows x evaluations);
  * for XGBoost and LightGBM, the training rows with the largest influence on the test loss (BoostIn,
    bench.explain.influence), with their row number in the dataset file and their label.
The files go into the run folder (explain/<dataset>/<model>/, layout: bench.analysis.explanations) through
bench.safe_files; `bench report` shows them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.adapters.framework.contract import missing_extra
from bench.analysis import explanations as layout
from bench.errors import BenchError
from bench.explain.influence import boostin
from bench.explain.refit import Refit, refit
from bench.explain.shap_values import TREE_MODELS, Explanation, gbdt_shap, permutation_shap
from bench.json_files import write_json_atomic
from bench.safe_files import write_atomic, write_text_atomic

INFLUENCE_MODELS = ("xgboost", "lightgbm")  # BoostIn here models their Newton leaf values


@dataclass(frozen=True)
class ExplainRequest:
    run_dir: Path
    dataset: str
    model: str
    split: int | None = None  # the plan's split index; None: the first split the model finished
    top: int = 20  # influential rows kept (harmful and helpful each)
    background: int = 100  # training rows the permutation explainer fills absent features from
    max_rows: int = 200  # test rows the permutation explainer explains (TreeSHAP explains them all)
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for option, value, low in (("--top", self.top, 1), ("--background", self.background, 1),
                                   ("--rows", self.max_rows, 1), ("--threads", self.threads, 1)):
            if int(value) < low:
                raise BenchError(f"{option} must be at least {low}, got {value}")


@dataclass
class ExplainResult:
    summary: dict
    importance: pd.Series
    influence: pd.DataFrame | None
    files: list[Path] = field(default_factory=list)


def _shap(fit: Refit, req: ExplainRequest) -> tuple[Explanation, int]:
    """The SHAP values and the number of test rows they cover."""
    if fit.adapter.name in TREE_MODELS:
        return gbdt_shap(fit.adapter, fit.preprocessor.transform(fit.X_test)), len(fit.X_test)
    missing = missing_extra("shap", "explain")
    if missing:
        raise BenchError(f"explaining {fit.adapter.name} needs the shap package: {missing}")
    rng = np.random.default_rng(req.seed)
    rows = np.sort(rng.permutation(len(fit.X_test))[:req.max_rows])
    background = fit.X_train.iloc[np.sort(rng.permutation(len(fit.X_train))[:req.background])]

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return fit.adapter.predictions(fit.preprocessor.transform(frame))

    X = fit.X_test.iloc[rows].reset_index(drop=True)
    return permutation_shap(predict, X, background.reset_index(drop=True), seed=req.seed), len(rows)


def _influence(fit: Refit, top: int) -> tuple[pd.DataFrame, float] | None:
    """BoostIn's most harmful and most helpful training rows (None for models it does not cover)."""
    if fit.adapter.name not in INFLUENCE_MODELS:
        return None
    pre = fit.preprocessor
    scores = boostin(fit.adapter, pre.transform(fit.X_train), fit.y_train, pre.transform(fit.X_test), fit.y_test)
    table = scores.ranking(top)
    if fit.inner_folds == 1:  # the fold's training rows are the split's, in its order
        table.insert(0, "dataset_row", fit.split.train[table["row"].to_numpy()])
    table["label"] = fit.y_train[table["row"].to_numpy()]
    return table, scores.leaf_fit_error


def _npz(expl: Explanation) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, values=expl.values, expected=expl.expected, features=np.array(expl.features))
    return buf.getvalue()


def explain(req: ExplainRequest) -> ExplainResult:
    """Refit the chosen configuration, compute its explanations, write them into the run folder."""
    fit = refit(Path(req.run_dir), req.dataset, req.model, req.split, req.threads)
    expl, n_rows = _shap(fit, req)
    importance = expl.importance()
    influence = _influence(fit, req.top)
    record = fit.record
    summary = {"dataset": req.dataset, "model": req.model, "job_id": record["job_id"], "variant": record["variant"],
               "trial_number": record.get("trial_number"), "params": record["params"], "refit": True,
               "refit_note": fit.note(), "objective": fit.objective, "recorded_test_score": record["test_score"],
               "refit_test_score": fit.refit_score, "method": expl.method, "scale": expl.scale,
               "expected_value": expl.expected.tolist(), "rows_explained": n_rows, "test_rows": len(fit.X_test),
               "background_rows": None if req.model in TREE_MODELS else min(req.background, len(fit.X_train))}
    if influence is not None:
        summary.update(influence_method="BoostIn (Brophy, Hammoudeh & Lowd 2023)", leaf_fit_error=influence[1])
    return ExplainResult(summary, importance, influence[0] if influence else None,
                         _write(Path(req.run_dir), summary, importance, expl, influence))


def _write(run_dir: Path, summary: dict, importance: pd.Series, expl: Explanation,
           influence: tuple[pd.DataFrame, float] | None) -> list[Path]:
    where = layout.folder(run_dir, summary["dataset"], summary["model"])
    frame = pd.DataFrame({"feature": importance.index, "share": importance.to_numpy()})
    files = [write_text_atomic(where / layout.IMPORTANCE, frame.to_csv(index=False), run_dir),
             write_atomic(where / layout.VALUES, _npz(expl), run_dir)]
    stale = where / layout.INFLUENCE
    if influence is not None:
        files.append(write_text_atomic(stale, influence[0].to_csv(index=False), run_dir))
    elif stale.exists():  # from an earlier explanation of another configuration
        stale.unlink()
    files.append(write_json_atomic(where / layout.SUMMARY, summary, run_dir))  # last: marks the folder complete
    return files
