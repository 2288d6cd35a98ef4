# Make-driven sweeps. Override on the command line, e.g.
#   make bench SUITE=../shared/data/suites/offline-20 MODELS=xgboost,catboost TRIALS=30 JOBS=2
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUITE  ?= demo
MODELS ?= dummy,linear,random_forest,xgboost,lightgbm,catboost,mlp
TRIALS ?= 5
# Per-job tuning cap in seconds (empty = none). It keeps `make bench` near 10 minutes on 2 cores;
# with a cap, how many trials fit depends on the machine: leave it empty for trial-exact reruns.
TUNE_SECONDS ?= 20
JOBS   ?= 2
SPLITS ?=
OUT    ?= results/$(notdir $(SUITE))
EXTRA  ?=

SPLIT_ARG := $(if $(SPLITS),--splits $(SPLITS),)
TUNE_ARG  := $(if $(TUNE_SECONDS),--tune-seconds $(TUNE_SECONDS),)

.PHONY: install bench leaderboard report test test-all regress regress-baseline perf perf-gpu check-defaults models suites clean

# The environment: plain venv + pip. torch is pinned to the CPU build in pyproject.toml.
$(BIN)/bench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(BIN)/bench

bench: install
	$(BIN)/bench run --suite $(SUITE) --models $(MODELS) --trials $(TRIALS) --jobs $(JOBS) --out $(OUT) $(SPLIT_ARG) $(TUNE_ARG) $(EXTRA)

leaderboard: install
	$(BIN)/bench leaderboard $(OUT)

# Static HTML + Markdown report (statistics and plots) of the run in $(OUT).
report: install
	$(BIN)/bench report $(OUT)

# Re-run the pinned smoke sweep and compare every leaderboard number with results/baseline/ (CI).
regress: install
	$(BIN)/bench regress

# Re-create the baseline (pinned sweep + 3 more base seeds for the tolerances); commit results/baseline/.
regress-baseline: install
	$(BIN)/bench regress --update

models: install
	$(BIN)/bench models list

suites: install
	$(BIN)/bench suites list

# Unit tests + a small real smoke sweep (what CI runs).
test: install
	$(BIN)/python -m pytest -q -m "not slow"

# Everything, including slow sweeps on ../shared data.
test-all: install
	$(BIN)/python -m pytest -q

# Neural training loop (eager and fast path) vs a bare torch loop of the same model, at batch 256 and 1024:
# s/epoch, ms/step, ratios. Uses the GPU when torch sees one; on CPU smaller sizes, labelled as such.
perf-gpu: install
	$(BIN)/python scripts/perf_nn.py

# Runner benchmarks (not tests): harness overhead vs a bare loop, 2 workers vs 1, GPU placement.
perf: install
	$(BIN)/python scripts/perf_runner.py

# The harness's defaults trial vs the bare XGBoost/LightGBM/CatBoost defaults (no early stopping) on
# every classification dataset of a local suite: AUC / accuracy / log loss per dataset, gaps flagged.
CHECK_SUITE ?= ../shared/data/suites/offline-20
check-defaults: install
	nice -n 10 $(BIN)/python scripts/check_defaults.py --suite $(CHECK_SUITE)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
