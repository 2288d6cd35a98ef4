"""The harness's defaults trial against the bare library's defaults, per dataset (`make check-defaults`).

Issue 13: a benchmark that early-stops its GBDTs badly makes them lose to models they beat with their
plain library defaults. For every binary and multiclass dataset of a local suite (default
../shared/data/suites/offline-20), on the first split of the suite's protocol:

  harness  the real harness path: bench.tuning.tune with one trial (the adapter's defaults), i.e. what
           the `default` record of a job holds: fit on the training part, early stopping on the
           validation part, scored once on the test part.
  bare     the library's own defaults (XGBClassifier(), LGBMClassifier(), CatBoostClassifier(), with
           only seed, threads and native categoricals set), fitted on the same training part without
           early stopping, on the same preprocessed frame, scored on the same test part.

It prints ROC AUC (binary), accuracy and log loss of both, and flags a dataset where the harness is more
than --tolerance (1 point) of AUC or accuracy below the bare library, with what the script can tell about
why: a tiny validation part, few rounds kept, a test part so small that the gap is within its noise
(paired bootstrap over test rows), defaults that differ. Exit code 1 when a flag stays unexplained.

MLP is not compared: there is no "bare library defaults" for it (rtdl_revisiting_models ships a network,
not a trainer), so any bare loop would be a second copy of bench.adapters.framework.torch_training.

    nice -n 10 python scripts/check_defaults.py [--suite DIR] [--models xgboost,lightgbm,catboost]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = ROOT.parent / "shared" / "data" / "suites" / "offline-20"
MODELS = ("xgboost", "lightgbm", "catboost")
BOOTSTRAP = 300  # resamples of the test rows for the noise of a difference
TINY_MINORITY = 50  # a validation part with fewer rows of its rarest class gives noisy stopping points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=os.environ.get("BENCH_CHECK_SUITE", str(DEFAULT_SUITE)),
                        help="folder with manifest.json (default: %(default)s)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--datasets", default="", help="comma-separated subset (default: all classification)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="the sweep's base seed (bench run --seed)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="flag when the harness is this far below")
    parser.add_argument("--jsonl", default="", help="also append one JSON line per row to this file")
    args = parser.parse_args(argv)

    suite_dir = Path(args.suite)
    if not (suite_dir / "manifest.json").is_file():
        print(f"check-defaults: skipped, no local suite at {suite_dir} (no manifest.json); "
              "give one with --suite or BENCH_CHECK_SUITE")
        return 0
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        print(f"check-defaults: --models {','.join(unknown)} not comparable; choose from {', '.join(MODELS)}")
        return 2
    wanted = {d for d in args.datasets.split(",") if d}
    rows = []
    print(_header())
    for item, split in _classification_splits(suite_dir, wanted):
        for model in models:
            row = compare(item.dataset, split, model, args.threads, args.seed, args.tolerance)
            rows.append(row)
            print(_line(row), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps(row) + "\n")
    unexplained = [r for r in rows if r["flag"] and not r["why"]]
    flagged = [r for r in rows if r["flag"]]
    print(f"\n{len(rows)} comparisons, {len(flagged)} flagged (harness > {100 * args.tolerance:g} point(s) "
          f"below the bare library), {len(unexplained)} unexplained")
    return 1 if unexplained else 0


def _classification_splits(suite_dir: Path, wanted: set[str]):
    """(loaded dataset, first split of the suite's protocol) for each binary / multiclass dataset."""
    import tempfile

    from bench.splits import make_splits
    from bench.suites import load_suite, materialize

    suite = load_suite(str(suite_dir))
    loaded, _ = materialize(suite)
    names = {item.dataset.name for item in loaded}
    missing = sorted(wanted - names)
    if missing:
        raise SystemExit(f"check-defaults: suite {suite.name} has no dataset(s) {', '.join(missing)}")
    chosen = [item for item in loaded if item.dataset.task_type != "regression"
              and (not wanted or item.dataset.name in wanted)]
    chosen.sort(key=lambda item: item.dataset.n_rows)  # small first: the first lines come quickly
    with tempfile.TemporaryDirectory(prefix="check-defaults-splits-") as tmp:
        for item in chosen:
            splits, _ = make_splits(item.dataset, suite.protocol, item.task_splits, Path(tmp))
            yield item, splits[0]


def compare(ds, split, model: str, threads: int, seed: int, tolerance: float) -> dict:
    from bench.adapters import TaskInfo, get_adapter
    from bench.metrics import score_predictions
    from bench.seeding import job_seed
    from bench.tuning import Budget, Parts, tune

    task = TaskInfo(ds.task_type, ds.n_classes)
    take = ds.X.iloc
    parts = Parts(take[split.train].reset_index(drop=True), ds.y[split.train],
                  take[split.val].reset_index(drop=True), ds.y[split.val],
                  take[split.test].reset_index(drop=True), ds.y[split.test])
    model_seed = job_seed(seed, 0)  # what execute_job gives the first split
    adapter_cls = get_adapter(model)
    start = time.perf_counter()
    outcome = tune(adapter_cls, task, parts, Budget(1, None), seed=model_seed, threads=threads, device="cpu",
                   storage=None, study_name=f"check-defaults-{ds.name}-{model}")
    harness_seconds = time.perf_counter() - start
    if not outcome.variants:
        raise SystemExit(f"check-defaults: the {model} defaults trial failed on {ds.name}: {outcome.failures}")
    variant = outcome.variants[0]

    start = time.perf_counter()
    bare_pred, bare_info = bare_fit(model, adapter_cls, task, parts, model_seed, threads)
    bare_seconds = time.perf_counter() - start
    bare = score_predictions(task.task_type, parts.y_test, bare_pred, task.n_classes)
    harness = variant.test_metrics
    info = variant.fit_info
    row = {"dataset": ds.name, "task": task.task_type, "model": model, "n_train": len(split.train),
           "n_val": len(split.val), "n_test": len(split.test),
           "val_minority": _rarest(parts.y_val, parts.y_train, task.n_classes),
           "harness": harness, "bare": bare,
           "kept": info.get("best_iteration"), "rounds": info.get("iterations", info.get("n_rounds")),
           "stopped_by": info.get("stopped_by", ""), "es_metric": info.get("early_stopping_metric", ""),
           "bare_rounds": bare_info.get("rounds"), "harness_s": round(harness_seconds, 1),
           "bare_s": round(bare_seconds, 1)}
    gaps = {m: bare[m] - harness[m] for m in ("roc_auc", "accuracy") if m in bare}
    row["gap"] = max(gaps.values())
    row["flag"] = row["gap"] > tolerance
    row["why"] = ""
    if row["flag"]:
        harness_pred = _harness_predictions(adapter_cls, task, parts, variant, model_seed, threads)
        row["why"] = explain(row, parts.y_test, harness_pred, bare_pred, task, adapter_cls, bare_info, gaps,
                             tolerance)
    return row


def _rarest(y_val: np.ndarray, y_train: np.ndarray, n_classes: int) -> int:
    """Validation rows of the rarest class among those the training part has."""
    present = np.bincount(y_train, minlength=n_classes) > 0
    return int(np.bincount(y_val, minlength=n_classes)[present].min())


def _harness_predictions(adapter_cls, task, parts, variant, seed: int, threads: int) -> np.ndarray:
    """Test probabilities of the defaults trial, refit exactly as tune() fits it (same seed, no deadline;
    deterministic on CPU): tune() keeps only the scores, and the noise estimate needs the predictions."""
    from bench.adapters import FitContext

    model = adapter_cls(task, variant.params, FitContext(seed=seed, threads=threads, device="cpu"))
    pre = model.make_preprocessor()
    pre.fit(parts.X_train)
    model.fit(pre.transform(parts.X_train), parts.y_train, pre.transform(parts.X_val), parts.y_val)
    return model.predict_proba(pre.transform(parts.X_test))


def bare_fit(model: str, adapter_cls, task, parts, seed: int, threads: int) -> tuple[np.ndarray, dict]:
    """The library's defaults on the training part, no early stopping; the adapter's preprocessed frame
    (its native categorical encoding), so only the training procedure differs."""
    from bench.adapters import expand_proba

    pre = adapter_cls(task).make_preprocessor()
    pre.fit(parts.X_train)
    X_train, X_test = pre.transform(parts.X_train), pre.transform(parts.X_test)
    present = np.unique(parts.y_train)  # sklearn-style wrappers want classes 0..k-1 that all occur
    y = np.searchsorted(present, parts.y_train)
    X_train, X_test = _positional(X_train), _positional(X_test)
    if model == "xgboost":
        import xgboost as xgb

        est = xgb.XGBClassifier(enable_categorical=True, n_jobs=threads, random_state=seed, verbosity=0)
        est.fit(X_train, y)
        info = {"rounds": est.get_booster().num_boosted_rounds(), "learning_rate": 0.3}
    elif model == "lightgbm":
        import lightgbm as lgb

        est = lgb.LGBMClassifier(n_jobs=threads, random_state=seed, verbosity=-1)
        est.fit(X_train, y)
        info = {"rounds": est.booster_.current_iteration(), "learning_rate": 0.1}
    else:
        import pandas as pd
        from catboost import CatBoostClassifier

        cats = [i for i, dt in enumerate(X_train.dtypes) if not pd.api.types.is_numeric_dtype(dt)]
        est = CatBoostClassifier(thread_count=threads, random_seed=seed, verbose=False,
                                 allow_writing_files=False, cat_features=cats)
        est.fit(X_train, y)
        info = {"rounds": est.tree_count_, "learning_rate": est.get_all_params().get("learning_rate")}
    proba = est.predict_proba(X_test)
    return expand_proba(proba, present, task.n_classes), info


def _positional(X):
    return X.set_axis([f"f{i}" for i in range(X.shape[1])], axis=1)


def explain(row, y_test, harness_pred, bare_pred, task, adapter_cls, bare_info, gaps, tolerance) -> str:
    """What the script can tell about a flagged gap, as short clauses ('' when nothing)."""
    reasons = []
    noise = _bootstrap_se(y_test, harness_pred, bare_pred, task)
    within = [m for m, gap in gaps.items() if gap > tolerance and gap <= 2 * noise[m]]
    if within and len(within) == sum(gap > tolerance for gap in gaps.values()):
        reasons.append("within test noise (" + ", ".join(f"{_short(m)} gap {100 * gaps[m]:.1f} <= 2 SE "
                                                          f"{200 * noise[m]:.1f} pts" for m in within)
                       + f", {row['n_test']} test rows)")
    if row["val_minority"] < TINY_MINORITY:
        reasons.append(f"tiny validation part: {row['val_minority']} rows of its rarest class")
    if row["kept"] and row["bare_rounds"] and row["kept"] < 0.25 * row["bare_rounds"]:
        reasons.append(f"kept {row['kept']} of {row['rounds']} rounds ({row['stopped_by'] or 'stopped'} "
                       f"on {row['es_metric']}), bare {row['bare_rounds']}")
    harness_lr = adapter_cls.defaults_for(task.task_type).get("learning_rate")
    bare_lr = bare_info.get("learning_rate")
    if harness_lr and bare_lr and abs(float(harness_lr) - float(bare_lr)) > 1e-9:
        reasons.append(f"defaults differ: learning rate {harness_lr:g} vs bare {float(bare_lr):.3g}")
    return "; ".join(reasons)


def _bootstrap_se(y, a: np.ndarray, b: np.ndarray, task) -> dict[str, float]:
    """Standard error of the (b - a) metric difference, by a paired bootstrap over test rows."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    diffs = {"accuracy": [], "roc_auc": []}
    hit_a, hit_b = a.argmax(axis=1) == y, b.argmax(axis=1) == y
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, len(y), len(y))
        diffs["accuracy"].append(hit_b[idx].mean() - hit_a[idx].mean())
        if task.task_type == "binary" and len(np.unique(y[idx])) == 2:
            diffs["roc_auc"].append(roc_auc_score(y[idx], b[idx, 1]) - roc_auc_score(y[idx], a[idx, 1]))
    return {m: float(np.std(v)) if v else float("nan") for m, v in diffs.items()}


def _short(metric: str) -> str:
    return {"roc_auc": "AUC", "accuracy": "acc", "log_loss": "logloss"}[metric]


COLUMNS = ("dataset", "task", "model", "val rare", "AUC h/bare", "acc h/bare", "logloss h/bare",
           "kept/rounds (end)", "bare rounds", "flag", "why")


def _header() -> str:
    return " | ".join(COLUMNS) + "\n" + " | ".join("---" for _ in COLUMNS)


def _line(r: dict) -> str:
    h, b = r["harness"], r["bare"]
    auc = f"{h['roc_auc']:.4f} / {b['roc_auc']:.4f}" if "roc_auc" in h else "-"
    rounds = f"{r['kept']}/{r['rounds']} ({r['stopped_by'] or '?'}, {r['es_metric'] or '?'})"
    flag = f"LOW {100 * r['gap']:.1f} pts" if r["flag"] else ""
    cells = (r["dataset"], r["task"], r["model"], str(r["val_minority"]), auc,
             f"{h['accuracy']:.4f} / {b['accuracy']:.4f}", f"{h['log_loss']:.4f} / {b['log_loss']:.4f}",
             rounds, str(r["bare_rounds"]), flag, r["why"] or ("UNEXPLAINED" if r["flag"] else ""))
    return " | ".join(cells)


if __name__ == "__main__":
    sys.exit(main())
