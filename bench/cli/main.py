"""Command line: `bench run | plan | reproduce | verify | leaderboard | report | explain | regress | suites | models |
fetch |
import`.

Bad input (unknown suite or model, malformed suite file, unavailable data, a number out of range)
exits with code 2 and a message naming the problem; nothing here prints a traceback for a user
mistake. A sweep stopped by SIGTERM / SIGHUP exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench.analysis.options import EloWeighting, NormalizeMetric, TimeAxis
from bench.errors import BenchError
from bench.tuning.samplers import SAMPLERS

console = Console(stderr=False, highlight=False)
if not console.is_terminal:
    # Logs and pipes (make, CI) get rich's 80-column default, which truncates leaderboard cells.
    console.width = max(console.width, 160)
# The default sweep (`bench run`, `make bench`): a trial budget and no clock, about 10 minutes on 2 idle cores
# on the demo suite; CatBoost is left out for time (README, "Two commands"). 4 trials (the defaults and three
# sampled configurations): 8.6 minutes measured; 5 took 17 (its fifth draws included 6 x 800-wide MLPs)
# and gave the same GBDT-vs-neural answer (README gives the numbers).
DEFAULT_MODELS = "dummy,linear,random_forest,xgboost,lightgbm,mlp"
DEFAULT_TRIALS = 4


def _int_in(minimum: int, maximum: int | None = None):
    """An argparse type: an integer in [minimum, maximum] (argparse names the option and exits 2)."""
    span = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {value}")
        return value

    return parse


def _number_or_none(text: str) -> float | None:
    """A positive, finite number, or 'none' for no limit (spelled out: 0 is not a way to say it)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none', got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'none' (no limit), got {text!r}")
    return value


def _trials(text: str) -> int | None:
    """A number of trials, or 'none' for as many as --tune-seconds allows (the sweep config checks both)."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from None


def _choice(option_type):
    """An argparse type for an analysis option (bench.analysis.options): its member, or a message
    naming the option, the value and the choices."""
    def parse(text: str):
        try:
            return option_type.parse(text.strip().lower())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _train_sizes(text: str):
    """--train-sizes: comma-separated fractions in (0, 1] or row counts > 1 (bench.train_sizes)."""
    from bench.train_sizes import parse_train_sizes

    try:
        return parse_train_sizes(text)
    except BenchError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--train-sizes: ")) from None  # argparse names it


_positive_int = _int_in(0)
_at_least_one = _int_in(1)


def _jobs_per_gpu(text: str):
    """--jobs-per-gpu: an integer >= 1, or auto."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _at_least_one(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'auto', got {text!r}") from None


MAX_SEED = 2**31 - 1  # what every library takes as a seed (bench.seeding)


def _runner_options(p: argparse.ArgumentParser) -> None:
    """How a sweep runs (shared by `bench run` and `bench reproduce`)."""
    p.add_argument("--tune-seconds", type=_number_or_none, default=None,
                   help="wall-clock tuning budget per job, counted after the defaults trial (default: none)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                   help="tpe: Optuna TPE with median pruning; random: random search, no pruning")
    p.add_argument("--inner-folds", type=_at_least_one, default=None, metavar="K",
                   help="inner cross-validation folds per trial (default: the suite's protocol, 1 = holdout)")
    p.add_argument("--pack", type=_at_least_one, default=1, metavar="K",
                   help="train K trials at a time as one packed model, for models that can (MLP, ResNet); "
                        "1 (default): one at a time")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="worker processes (default: the cores this process may use, so each job gets one thread; "
                        "0 = in-process, no isolation)")
    p.add_argument("--threads", type=_positive_int, default=0, help="threads per job (0 = cores / jobs)")
    p.add_argument("--time-limit", type=_number_or_none, default=3600.0,
                   help="per-job time limit in seconds, or none (default: 3600): iterative models stop "
                        "shortly before it with their best state (counted as clock-cut), the job is "
                        "stopped at it")
    p.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--retry-failed", action="store_true", help="re-run jobs whose records are failures")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    scale = p.add_argument_group("running at scale")
    scale.add_argument("--gpus", default="auto",
                       help="GPUs for GPU-capable models: auto (all visible), none, or ids like 0,1")
    scale.add_argument("--jobs-per-gpu", type=_jobs_per_gpu, default=1,
                       help="GPU worker processes per GPU, or auto: as many as fit the free memory at the measured "
                            "per-job footprint (at most one per free core)")
    scale.add_argument("--memory-limit", type=_number_or_none, default=None, metavar="GB",
                       help="per-job memory limit in GB (resident memory of the job's process tree), or none "
                            "(default); over it the job is stopped and recorded as out_of_memory")
    scale.add_argument("--storage", default=None, metavar="URL",
                       help="shared Optuna storage, e.g. postgresql://user@host/db (default: one SQLite file per job)")
    scale.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local worker processes, or tasks on a Ray cluster (pip install 'tabular-bench[ray]')")
    scale.add_argument("--ray-address", default=None, help="Ray cluster to join (default: start a local one)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark GBDTs against neural tabular models.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_plan, _add_reproduce, _add_import, _add_verify, _add_leaderboard, _add_report,
                _add_explain,
                _add_regress, _add_catalogues):
        add(sub)
    return p


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="run a sweep (datasets x splits x models) and print the leaderboard")
    _sweep_options(run)


def _add_plan(sub) -> None:
    plan = sub.add_parser("plan", help="estimate a sweep's jobs, trials, CPU-/GPU-hours and wall time (takes "
                                       "`bench run`'s options; runs nothing heavy)")
    _sweep_options(plan)
    source = plan.add_argument_group("where the costs come from (one of them)")
    source.add_argument("--from", dest="from_runs", type=Path, nargs="+", default=None, metavar="RUN",
                        help="run folders whose records' fit and trial times are measured")
    source.add_argument("--calibrate", action="store_true",
                        help="first run the defaults trial and two sampled trials (the defaults only with "
                             "--trials 1) of each model on one split of a few datasets of the suite (smallest, "
                             "median, 75%% quantile of rows x features x classes)")
    plan.add_argument("--check", type=Path, default=None, metavar="RUN",
                      help="after a run: its jobs estimated (from --from / --calibrate) against what they took")


def _sweep_options(run: argparse.ArgumentParser) -> None:
    """`bench run`'s options (`bench plan` takes the same)."""
    run.add_argument("--suite", default="demo", help="suite name, suite .toml file, or folder with manifest.json")
    run.add_argument("--datasets", default=None, help="comma-separated subset of the suite's datasets")
    run.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model names (see `bench models list`)")
    run.add_argument("--trials", type=_trials, default=DEFAULT_TRIALS,
                     help="Optuna trials per job incl. the defaults trial; 1 = defaults only; "
                          "none = as many as --tune-seconds allows")
    run.add_argument("--splits", type=_at_least_one, default=None,
                     help="use only the first N splits of each dataset (default: all)")
    run.add_argument("--seeds", type=_at_least_one, default=1,
                     help="model seeds each final configuration (default, tuned) is refit and tested with")
    run.add_argument("--train-sizes", type=_train_sizes, default=None, metavar="SIZES",
                     help="learning curves: run every job once per size of the split's training + validation "
                          "rows, e.g. 0.1,0.25,0.5,1.0 (fractions) or 100,1000 (rows); nested, stratified "
                          "subsets, the same test part (default: the whole split)")
    run.add_argument("--out", type=Path, default=None, help="run directory (default: results/<suite>)")
    run.add_argument("--strict-budget", action="store_true",
                     help="exit 1 when a tuned record holds only the defaults trial or a clock (tuning budget "
                          "or time limit) cut a trial (for CI and papers)")
    _runner_options(run)


def _add_reproduce(sub) -> None:
    rep_ = sub.add_parser("reproduce", help="run a published table's cells with its protocol and split, compare "
                                            "ours with the published numbers (reproduce.csv / .md)")
    rep_.add_argument("table", help="published table name (`bench reproduce --list`) or path to its .toml file",
                      nargs="?")
    rep_.add_argument("--list", action="store_true", help="list the published tables and exit")
    rep_.add_argument("--models", default=None, help="comma-separated subset of the table's models (default: all)")
    rep_.add_argument("--trials", type=_at_least_one, default=None,
                      help="Optuna trials per job incl. the defaults trial (default: the source's, e.g. 100)")
    rep_.add_argument("--seeds", type=_at_least_one, default=None,
                      help="model seeds per final configuration (default: the source's, e.g. 15)")
    rep_.add_argument("--out", type=Path, default=None,
                      help="run directory (default: results/reproduce-<table>-<trials>t-<seeds>s)")
    rep_.add_argument("--strict", action="store_true", help="exit 1 when a cell's verdict is 'worse'")
    _runner_options(rep_)


def _add_import(sub) -> None:
    imp = sub.add_parser("import", help="convert datasets from another benchmark's format into Parquet + manifest.json")
    imp.add_argument("format", choices=("talent",), help="talent: TALENT's N_/C_/y_{train,val,test}.npy + info.json")
    imp.add_argument("source", type=Path, help="a dataset folder, or a folder of them")
    imp.add_argument("out", type=Path, help="folder for the Parquet files and manifest.json (a local suite)")


_PARTIAL = "use only the records that pass the checks of `bench verify` instead of refusing the run"
_TRAIN_SIZE = ("a run made with --train-sizes: the training-set size whose leaderboard (or report) is shown, as "
               "--train-sizes gave it (default: the largest); statistics never mix sizes")
_NORMALIZE = ("what the normalized scores normalize: objective (ROC AUC / log loss / RMSE, the default) or "
              "paper (accuracy / R², for numbers comparable with Grinsztajn et al. 2022)")


def _add_verify(sub) -> None:
    ver = sub.add_parser("verify", help="check a run: one valid record per planned job and variant, hashes "
                                        "match the plan, nothing foreign (exit 1 when not)")
    ver.add_argument("run_dir", type=Path)


def _add_leaderboard(sub) -> None:
    lb = sub.add_parser("leaderboard", help="print and write (CSV + Markdown) the leaderboard of a run")
    lb.add_argument("run_dir", type=Path)
    lb.add_argument("--wide", action="store_true", help="all columns (the default view fits 100 columns)")
    lb.add_argument("--normalize-metric", type=_choice(NormalizeMetric), default=NormalizeMetric.OBJECTIVE,
                    metavar="{objective,paper}", help=_NORMALIZE)
    lb.add_argument("--train-size", default=None, metavar="S", help=_TRAIN_SIZE)
    lb.add_argument("--allow-partial", action="store_true", help=_PARTIAL)


def _add_report(sub) -> None:
    rep = sub.add_parser("report", help="write report.html (self-contained) and report.md with statistics and plots")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--out", type=Path, default=None, help="folder for the report (default: the run directory)")
    rep.add_argument("--elo-anchor", "--anchor", dest="anchor", default=None, metavar="ENTRY",
                     help="entry fixed at Elo 1000 (default: random_forest/default when it ran; the report says "
                          "which entry it is and why)")
    rep.add_argument("--normalize-metric", type=_choice(NormalizeMetric), default=NormalizeMetric.OBJECTIVE,
                     metavar="{objective,paper}", help=_NORMALIZE)
    rep.add_argument("--elo-weighting", type=_choice(EloWeighting), default=EloWeighting.DATASET,
                     metavar="{dataset,tabarena}",
                     help="dataset: each dataset's battles sum to 1, weak prior (default); tabarena: each battle "
                          "1/n_splits, almost no prior, comparable with TabArena's Elo")
    rep.add_argument("--time-axis", type=_choice(TimeAxis), default=TimeAxis.FIT, metavar="{fit,tuning}",
                     help="x-axis of the time-vs-score plot: fit = the final model's fit + predict seconds "
                          "(default); tuning = the CPU seconds of the whole variant, every trial included")
    rep.add_argument("--train-size", default=None, metavar="S", help=_TRAIN_SIZE)
    rep.add_argument("--bootstrap", type=_int_in(1, 100_000), default=1000, help="bootstrap resamples for intervals")
    rep.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0, help="seed of bootstraps and trial-order shuffles")
    rep.add_argument("--allow-partial", action="store_true", help=_PARTIAL)


def _add_explain(sub) -> None:
    exp = sub.add_parser("explain", help="SHAP values of a finished run's chosen configuration on the test part "
                                         "and, for XGBoost / LightGBM, the most influential training rows "
                                         "(files in RUN/explain)")
    exp.add_argument("run_dir", type=Path)
    exp.add_argument("--dataset", required=True, help="a dataset of the run")
    exp.add_argument("--model", required=True, help="a model of the run (its tuned configuration, else its default)")
    exp.add_argument("--split", type=_int_in(0), default=None, help="split index (default: the first one finished)")
    exp.add_argument("--top", type=_int_in(1), default=20, help="influential rows listed (harmful and helpful each)")
    exp.add_argument("--background", type=_int_in(1), default=100,
                     help="training rows the model-agnostic explainer fills absent features from")
    exp.add_argument("--rows", type=_int_in(1), default=200,
                     help="test rows the model-agnostic explainer explains (TreeSHAP explains every test row)")
    exp.add_argument("--seed", type=_int_in(0, MAX_SEED), default=0, help="seed of the row samples and permutations")
    exp.add_argument("--threads", type=_int_in(1), default=1, help="threads of the refit")


def _add_regress(sub) -> None:
    reg = sub.add_parser("regress", help="re-run the pinned smoke sweep and compare every number with the baseline")
    reg.add_argument("--baseline", type=Path, default=None, help="baseline file (default: results/baseline/smoke.json)")
    reg.add_argument("--update", action="store_true",
                     help="re-create the baseline: the pinned sweep plus extra base seeds for tolerances")
    reg.add_argument("--keep", type=Path, default=None, help="keep the sweep's run directories here")


def _add_catalogues(sub) -> None:
    """`bench suites`, `bench models`, `bench fetch`."""
    suites = sub.add_parser("suites", help="list or show suites")
    ssub = suites.add_subparsers(dest="action", required=True)
    ssub.add_parser("list")
    show = ssub.add_parser("show")
    show.add_argument("name")
    show.add_argument("--load", action="store_true", help="load the data and show per-dataset statistics")

    models = sub.add_parser("models", help="list or show models")
    msub = models.add_subparsers(dest="action", required=True)
    msub.add_parser("list")
    mshow = msub.add_parser("show")
    mshow.add_argument("name")

    fetch = sub.add_parser("fetch", help="download and cache a suite's data (needs network for OpenML suites)")
    fetch.add_argument("suite")
    fetch.add_argument("--refresh", action="store_true")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "regress" and args.baseline is None:
        from bench.workflows.regress import BASELINE

        args.baseline = BASELINE
    try:
        from bench.cli import catalogues, commands, explaining, plan, published

        verb = f"cmd_{args.command}"
        module = next(m for m in (commands, plan, published, catalogues, explaining) if hasattr(m, verb))
        return getattr(module, verb)(args, console)
    except BenchError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)  # "[default]" is no markup
        return 2
    except KeyboardInterrupt as exc:
        from bench.execution.signals import Interrupted

        why = f"{exc}" if isinstance(exc, Interrupted) else "interrupted"
        console.print(f"[yellow]{why}; finished jobs are saved, run the same command to resume[/]")
        return 128 + exc.signum if isinstance(exc, Interrupted) else 130


if __name__ == "__main__":
    sys.exit(main())
