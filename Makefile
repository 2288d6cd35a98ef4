# Make-driven sweeps. `make help` lists the targets. Override on the command line, e.g.
#   make bench SUITE=../shared/data/suites/offline-20 MODELS=xgboost,catboost TRIALS=30 JOBS=2
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUITE  ?= demo
# The default sweep: GBDTs, an MLP and baselines, 4 trials per job (the defaults trial included) and no
# tuning clock, so its numbers do not depend on the machine; about 10 minutes on 2 idle cores. The demo
# suite tunes its datasets of at most 1,000 rows by inner 3-fold cross-validation (suites/demo.toml).
# CatBoost is left out for time (its multiclass fits cost about as much as all the others together):
# MODELS=...,catboost adds it.
MODELS ?= dummy,linear,random_forest,xgboost,lightgbm,mlp
TRIALS ?= 4
# Per-job tuning cap in seconds after the defaults trial (empty = none, the default): with a cap, how
# many trials fit depends on the machine.
TUNE_SECONDS ?=
JOBS   ?= 2
SPLITS ?=
OUT    ?= results/$(notdir $(SUITE))
EXTRA  ?=

SPLIT_ARG := $(if $(SPLITS),--splits $(SPLITS),)
TUNE_ARG  := $(if $(TUNE_SECONDS),--tune-seconds $(TUNE_SECONDS),)
PIP       := $(BIN)/pip install --quiet --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help install install-test bench leaderboard report verify lint test test-all regress regress-baseline \
        reproduce perf perf-gpu perf-tuning perf-pack check-defaults models suites clean

help:  ## this list
	@echo "tabular-bench: make <target> [SUITE=... MODELS=... TRIALS=... TUNE_SECONDS=... JOBS=... SPLITS=... OUT=...]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 20

# The environment: plain venv + pip. torch is pinned to the CPU build in pyproject.toml. `make bench`
# installs only what a sweep needs; the test extra (Ray, PostgreSQL driver, RealMLP, TabPFN and the
# other optional models) comes with `make test`.
$(BIN)/bench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@touch $@

$(VENV)/.test-extras: $(BIN)/bench
	$(PIP) -e '.[test]'
	@touch $@

install: $(BIN)/bench  ## create .venv with what a sweep needs

install-test: $(VENV)/.test-extras  ## add the test extra (every optional model, Ray, PostgreSQL driver)

bench: install  ## run the default sweep on $(SUITE) into $(OUT) and print the leaderboard
	$(BIN)/bench run --suite $(SUITE) --models $(MODELS) --trials $(TRIALS) --jobs $(JOBS) --out $(OUT) $(SPLIT_ARG) $(TUNE_ARG) $(EXTRA)

leaderboard: install  ## print and write the leaderboard of $(OUT)
	$(BIN)/bench leaderboard $(OUT)

report: install  ## write report.html + report.md (statistics and plots) of $(OUT)
	$(BIN)/bench report $(OUT)

verify: install  ## check that $(OUT) holds one valid record per planned job and variant
	$(BIN)/bench verify $(OUT)

regress: install  ## re-run the pinned smoke sweep, compare every number with results/baseline/ (CI)
	$(BIN)/bench regress

regress-baseline: install  ## re-create results/baseline/ (pinned sweep + 3 base seeds); commit it
	$(BIN)/bench regress --update

# A published table (bench reproduce) for the fast models at a budget that fits 2 CPU cores in about 30
# minutes (the talent table needs ../shared/data/published/talent or $BENCH_TALENT_DIR). The whole table
# at the source's budget: `bench reproduce talent --jobs N` (README, "Reproducing published results").
REPRO_TABLE  ?= talent
# CatBoost is left out: its multiclass fits on mfeat-factors (216 features, 10 classes) cost minutes each.
REPRO_MODELS ?= dummy,linear,knn,random_forest,xgboost,lightgbm
REPRO_TRIALS ?= 15
REPRO_SEEDS  ?= 3
reproduce: install  ## bench reproduce $(REPRO_TABLE): fast models, small CPU budget, vs the published numbers
	nice -n 10 $(BIN)/bench reproduce $(REPRO_TABLE) --models $(REPRO_MODELS) --trials $(REPRO_TRIALS) \
		--seeds $(REPRO_SEEDS) --jobs $(JOBS) $(EXTRA)

models: install  ## list the models: family, extra, available or why not
	$(BIN)/bench models list

suites: install  ## list the suites
	$(BIN)/bench suites list

lint: install-test  ## ruff on everything and mypy on all of bench/ (run by make test)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install-test lint  ## lint, unit tests + a small real smoke sweep (what CI runs)
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install-test  ## everything, including slow sweeps on ../shared data
	$(BIN)/python -m pytest -q

# Neural training loop (eager and fast path) vs a bare torch loop of the same model, at batch 256 and 1024:
# s/epoch, ms/step, ratios. Uses the GPU when torch sees one; on CPU smaller sizes, labelled as such.
perf-gpu: install  ## neural training loop vs a bare torch loop (s/epoch, ratios); GPU when present
	$(BIN)/python scripts/perf_nn.py

perf: install  ## runner overhead vs a bare loop, 2 workers vs 1, GPU placement
	$(BIN)/python scripts/perf_runner.py

# The harness's defaults trial vs the bare XGBoost/LightGBM/CatBoost defaults (no early stopping) on
# every classification dataset of a local suite: AUC / accuracy / log loss per dataset, gaps flagged.
CHECK_SUITE ?= ../shared/data/suites/offline-20
check-defaults: install  ## harness defaults trial vs bare GBDT defaults on offline-20 (needs ../shared)
	nice -n 10 $(BIN)/python scripts/check_defaults.py --suite $(CHECK_SUITE)

# K trials trained as one packed model (--pack K) vs the same trials one after another, at equal epochs:
# s/trial, ratios, per-member validation scores vs alone (needs ../shared/data's offline-20; skips without).
PERF_PACK_EPOCHS ?= 2
PERF_PACK_MODELS ?= mlp,resnet,mlp_plr
perf-pack: install  ## K trials packed vs one after another (MLP, ResNet, MLP-PLR; cpu_act, adult): s/trial ratios, val scores
	$(BIN)/python scripts/perf_pack.py --epochs $(PERF_PACK_EPOCHS) --models $(PERF_PACK_MODELS)

# TPE + pruning vs random search: time to reach random search's best validation score after N trials.
PERF_TRIALS ?= 15
perf-tuning: install  ## TPE + pruning vs random search: wall time to reach random search's best
	$(BIN)/python scripts/perf_tuning.py --trials $(PERF_TRIALS)

clean:  ## remove .venv and build files
	rm -rf $(VENV) .pytest_cache build *.egg-info
