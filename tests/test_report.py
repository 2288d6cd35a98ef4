"""`bench report` on a small real run, rendered in headless Chromium."""

import re
import shutil
import subprocess

import pytest

from bench.cli import main

PLOTS = ("normalized-score", "elo", "critical-difference", "win-rate", "tuning-curves", "time-vs-score", "per-dataset")


def _browser() -> str:
    """Debian's chromium (the test skips without it)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian `chromium` is not installed (apt-get install chromium; .ci/run installs it)")
    return browser


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    suite = root / "rep.toml"
    suite.write_text('name = "rep"\n[protocol]\nfolds = 2\nseed = 0\n[[datasets]]\nembedded = "wine"\n'
                     '[[datasets]]\nembedded = "diabetes"\n[[datasets]]\nembedded = "breast_cancer"\n')
    out = root / "run"
    assert main(["run", "--suite", str(suite), "--models", "dummy,linear,xgboost", "--trials", "3", "--seeds", "2",
                 "--jobs", "2", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    return out


def test_report_writes_html_markdown_and_plots(run_dir, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(run_dir), "--out", str(out), "--bootstrap", "200"]) == 0
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for name in PLOTS:
        assert f'id="plot-{name}"' in page and (out / "report-plots" / f"{name}.png").stat().st_size > 1000
        assert f"report-plots/{name}.png" in md
    for entry in ("dummy/default", "linear/tuned", "xgboost/default", "xgboost/tuned", "xgboost/ensemble",
                  "ensemble_all/ensemble"):
        assert entry in page and entry in md
    # every per-dataset number links its record files, relative to the report
    links = re.findall(r'href="([^"]+/records/[^"]+\.json)"', page)
    # 3 datasets x 2 splits x 8 entries (dummy/default; linear and xgboost default, tuned, ensemble;
    # ensemble_all/ensemble)
    assert len(links) == 3 * 8 * 2 and all((out / link).resolve().exists() for link in links)
    assert "Grinsztajn" in page and "Friedman" in page


def test_curves_start_at_the_leaderboards_default_scores_and_end_at_the_tuned_ones(run_dir):
    """On a real run (2 model seeds, so the records' scores are seed means): every tuned model's curve
    at n = 1 is its default entry's leaderboard score, and after all trials its tuned entry's."""
    from bench.analysis import curves, leaderboard
    from bench.records.store import ResultStore

    store = ResultStore(run_dir)
    board = leaderboard.compute(store.frame()).set_index(["model", "variant"]).norm_score
    table = curves.tuning_curves(store.frame(), store.load_all())
    assert set(table.model) == {"linear", "xgboost"}  # dummy has nothing to tune
    for model, c in table.groupby("model"):
        c = c.set_index("n_trials").norm_score
        assert list(c.index) == [1, 2, 3]
        assert c[1] == pytest.approx(board[(model, "default")], abs=1e-12)
        assert c[3] == pytest.approx(board[(model, "tuned")], abs=1e-12)


def test_report_of_a_folder_without_records_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no records" in capsys.readouterr().out


def test_report_renders_in_headless_chromium(run_dir, tmp_path, capsys):
    browser = _browser()
    out = tmp_path / "rep"
    assert main(["report", str(run_dir), "--out", str(out), "--bootstrap", "100"]) == 0
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    # the page's own script counts images that decoded with a real size
    assert re.search(r'data-images-loaded="(\d+)/\1"', dom), dom[:500]
    assert f'data-images-loaded="{len(PLOTS)}/{len(PLOTS)}"' in dom
    table = re.search(r'<table id="leaderboard">.*?</table>', dom, re.S).group(0)
    assert table.count("<tr>") == 1 + 8  # header + 8 entries (ensembles included)
    for name in PLOTS:
        assert f'id="plot-{name}"' in dom


# --- hand-made runs (tests/hand_records.py): truncation, unavailable entries, readable plots ----------------


def _bent_run(tmp_path):
    """Two datasets x two splits; xgboost's tuning was bent: on one job only the defaults trial finished,
    on another the clock cut two trials. tabpfn was unavailable everywhere."""
    from bench.vocabulary import Status, TrialEnd, Variant
    from tests.hand_records import record, trial, write_run

    full = [trial(0, 0.80, 0.80), trial(1, 0.85, 0.86), trial(2, 0.83, 0.84)]
    cut = [trial(0, 0.80, 0.80), trial(1, 0.86, 0.87, end=TrialEnd.DEADLINE),
           trial(2, 0.84, 0.83, end=TrialEnd.DEADLINE)]
    only = [trial(0, 0.80, 0.80)]
    records = []
    for dataset, bump in (("d1", 0.0), ("d2", 0.02)):
        for split in (0, 1):
            ts = only if (dataset, split) == ("d1", 0) else cut if (dataset, split) == ("d1", 1) else full
            tuned_trial = 0 if ts is only else 1
            device = {"device_seconds": {"cpu": 30.0 + split, "gpu": 0.0}}
            records += [
                record(dataset, "xgboost", Variant.DEFAULT, split, score=0.80 + bump, trials=ts, **device),
                record(dataset, "xgboost", Variant.TUNED, split, score=ts[tuned_trial]["test_score"] + bump, trials=ts,
                       trial_number=tuned_trial, only_defaults=ts is only, **device),
                record(dataset, "linear", Variant.DEFAULT, split, score=0.78 + bump, family="baseline"),
                record(dataset, "mlp", Variant.DEFAULT, split, score=0.79 - bump, family="neural"),
                record(dataset, "dummy", Variant.DEFAULT, split, score=0.5, family="baseline"),
                record(dataset, "tabpfn", Variant.DEFAULT, split, status=Status.UNAVAILABLE, family="neural")]
    return write_run(tmp_path / "run", records)


def test_truncation_shows_in_csv_markdown_console_and_html(tmp_path):
    import csv
    import io

    from rich.console import Console

    from bench.cli import commands
    from bench.cli.main import build_parser

    store = _bent_run(tmp_path)
    console = Console(width=100, record=True, file=io.StringIO())
    assert commands.cmd_leaderboard(build_parser().parse_args(["leaderboard", str(store.run_dir)]), console) == 0
    text = console.export_text()
    row = next(line for line in text.splitlines() if line.strip().startswith("xgboost/tuned"))
    assert "1/4" in row.split() and row.split()[-2] == "2"  # d-only 1 of 4 records, cut 2 trials
    assert ("xgboost/tuned: 1 of 4 tuned records hold only the defaults trial; 2 trials cut by the tuning clock "
            "or the time limit") in text
    with open(store.run_dir / "leaderboard.csv") as f:
        rows = {(r["model"], r["variant"]): r for r in csv.DictReader(f)}
    tuned = rows[("xgboost", "tuned")]
    budget_cells = (tuned["only_defaults"], tuned["clock_cut"], tuned["cpu_seconds"], tuned["gpu_seconds"])
    assert budget_cells == ("1", "2", "30.5", "0")
    assert rows[("xgboost", "default")]["only_defaults"] == ""  # not applicable to the defaults
    assert rows[("tabpfn", "default")]["unavailable"] == "4" and rows[("tabpfn", "default")]["failures"] == "0"
    md = (store.run_dir / "leaderboard.md").read_text()
    assert "only_defaults" in md and "clock_cut" in md and "cpu_seconds" in md
    md_row = next(line for line in md.splitlines() if line.startswith("| xgboost | tuned |"))
    assert "| 1/4 | 2 |" in md_row and "| 30.50 |" in md_row
    out = tmp_path / "rep"
    assert main(["report", str(store.run_dir), "--out", str(out), "--bootstrap", "50"]) == 0
    page = (out / "report.html").read_text()
    table = re.search(r'<table id="leaderboard">.*?</table>', page, re.S).group(0)
    for header in ("defaults-only", "clock-cut", "fit s", "CPU s", "unavailable"):
        assert f">{header}</th>" in table
    assert "GPU s" not in table and "median s" not in table  # no record held a GPU: no GPU column
    html_row = re.search(r"<tr><td[^>]*>\d+</td><td[^>]*>xgboost/tuned</td>.*?</tr>", table).group(0)
    assert ">1/4</td>" in html_row and ">2</td>" in html_row and ">30.50</td>" in html_row
    budget = re.search(r'<p id="budget">(.*?)</p>', page).group(1)
    assert "xgboost/tuned: 1 of 4 tuned records hold only the defaults trial; 2 trials cut" in budget
    from bench.analysis.analyze import analyze
    from bench.analysis.report import figures

    curves = figures(analyze(store, n_boot=20))["tuning-curves"][1]
    legend = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
    assert legend == ["xgboost (1-3 trials, 1 of 4 jobs defaults-only)"]


def test_report_treats_an_unavailable_entry_as_the_leaderboard_does(tmp_path):
    from bench.analysis import leaderboard
    from bench.analysis.analyze import analyze
    from bench.analysis.report import leaderboard_rows
    from bench.records.store import ResultStore
    from bench.vocabulary import Status
    from tests.hand_records import write_run

    store = _bent_run(tmp_path)
    lean = write_run(tmp_path / "lean", [r for r in store.load_all() if r["status"] != Status.UNAVAILABLE])
    a, b = analyze(store, n_boot=50), analyze(ResultStore(lean.run_dir), n_boot=50)
    s = a.summary.set_index("entry")
    assert s.loc["tabpfn/default", ["failures", "unavailable", "wins"]].tolist() == [0, 4, 0]
    assert s.loc["tabpfn/default", ["norm_score", "elo", "mean_rank"]].isna().all()
    real = [e for e in s.index if e != "tabpfn/default"]
    for column in ("norm_score", "norm_minmax", "mean_rank", "elo"):
        assert s.loc[real, column].tolist() == b.summary.set_index("entry").loc[real, column].tolist(), column
    board = leaderboard.compute(store.frame()).set_index("model")
    assert board.loc["tabpfn", "unavailable"] == 4 and board.loc["tabpfn", "failures"] == 0
    header, rows = leaderboard_rows(a)
    row = dict(zip(header, next(r for r in rows if r[1] == "tabpfn/default")))
    assert row["failed"] == "0" and row["unavailable"] == "4" and row["Elo (dataset) [95% CI]"].startswith("–")


def test_plots_keep_their_axes_on_the_real_models_with_dummy_far_below(tmp_path):
    """12 close entries and a dummy: the 10% quantile sits near the cluster, so dummy's normalized score
    is far below (about -12); the axes must stay on the real models, dummy drawn at the edge, labelled."""
    from bench.analysis import plots
    from bench.analysis.analyze import analyze
    from bench.analysis.report import figures
    from bench.vocabulary import Variant
    from tests.hand_records import record, write_run

    records = [record(d, f"model_{i:02d}", Variant.DEFAULT, 0, score=0.90 + 0.003 * i + (0.001 * i if d == "b" else 0))
               for d in ("a", "b") for i in range(12)]
    records += [record(d, "dummy", Variant.DEFAULT, 0, score=0.5, family="baseline") for d in ("a", "b")]
    a = analyze(write_run(tmp_path / "run", records), n_boot=50)
    scores = a.summary.set_index("entry").norm_score
    dummy, real = scores["dummy/default"], scores.drop("dummy/default")
    assert dummy < -5
    figs = {name: fig for name, (_, fig) in figures(a).items()}
    ax = figs["normalized-score"].axes[0]
    low, high = ax.get_xlim()
    assert low > -1.5 and low <= min(real.min(), 0) and high >= real.max()  # dummy did not set the scale
    assert any(f"{dummy:.3g} (off scale)" in t.get_text() for t in ax.texts)
    ax = figs["time-vs-score"].axes[0]
    low, high = ax.get_ylim()
    assert low > dummy and low <= real.min() and high >= real.max() and high - low < 0.5 * (real.max() - dummy)
    labels = [t for t in ax.texts if "/" in t.get_text()]
    assert len(labels) == 13 and any("off scale" in t.get_text() for t in labels)
    renderer = figs["time-vs-score"].canvas.get_renderer()
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
    assert all(lower.y1 <= upper.y0 + 0.5 for lower, upper in zip(boxes, boxes[1:]))  # no label overlaps another
    for fig in figs.values():
        plots.png(fig)


def test_report_screenshot_in_headless_chromium(tmp_path):
    """A real screenshot of report.html (dummy far below): the PNG is written and not blank."""
    browser = _browser()
    store = _bent_run(tmp_path)
    out = tmp_path / "rep"
    assert main(["report", str(store.run_dir), "--out", str(out), "--bootstrap", "50"]) == 0
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,2400", f"--screenshot={shot}", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    import numpy as np
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400) and len(np.unique(np.asarray(image))) > 16  # text and plots, not blank


# --- the page at 1,280 px: no horizontal overflow, sortable tables, a readable header ---------------------


def _one_member(name: str) -> dict:
    """What an ok ensemble record of one member holds (bench.records.schema checks it)."""
    return {"params": {"weights": {name: 1.0}}, "ensemble": {"members": [{"name": name}]}}


def _wide_run(tmp_path):
    """The widest leaderboard a run makes: long entry names, a seed std column (2 model seeds), a GPU
    column (a record held a GPU), a cross-model ensemble; three datasets of two splits."""
    from bench.vocabulary import Variant
    from tests.hand_records import record, write_run

    models = {"random_forest": "baseline", "xgboost": "gbdt", "lightgbm": "gbdt", "ft_transformer": "neural",
              "mlp_plr": "neural", "dummy": "baseline"}
    records = []
    for d, dataset in enumerate(("adult_income", "covertype_small", "california_housing")):
        for split in (0, 1):
            for m, (model, family) in enumerate(models.items()):
                for v, variant in enumerate((Variant.DEFAULT, Variant.TUNED, Variant.ENSEMBLE)):
                    if model == "dummy" and variant != Variant.DEFAULT:
                        continue
                    score = 0.5 if model == "dummy" else 0.80 + 0.01 * m + 0.004 * v + 0.002 * d + 0.001 * split
                    ensemble = _one_member("0") if variant == Variant.ENSEMBLE else {}
                    records.append(record(dataset, model, variant, split, score=score, family=family,
                                          test_score_std=0.003, n_seeds=2, **ensemble,
                                          device_seconds={"cpu": 1234.5, "gpu": 321.0 if family == "neural" else 0}))
            records.append(record(dataset, "ensemble_all", Variant.ENSEMBLE, split, score=0.9, family="ensemble",
                                  **_one_member("xgboost/0")))
    store = write_run(tmp_path / "run", records)
    store.write_config({"suite": "wide", "trials": 5, "tune_seconds": None, "seed": 0, "max_splits": None, "seeds": 2,
                        "sampler": "tpe", "inner_folds": 1, "time_limit": 3600.0})
    return store


SORT_PROBE = """<script>
window.addEventListener("load", function () {
  var t = document.getElementById("leaderboard"), head = t.tHead.rows[0].cells;
  function column(i) { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
    return r.cells[i].textContent; }).join("|"); }
  document.body.setAttribute("data-page-width", document.documentElement.scrollWidth);
  document.body.setAttribute("data-table-width", t.getBoundingClientRect().width);
  head[1].click(); document.body.setAttribute("data-entry-up", column(1));
  head[1].click(); document.body.setAttribute("data-entry-down", column(1));
  head[0].click(); document.body.setAttribute("data-rank-up", column(0));
});
</script>"""


def test_report_fits_1280_px_sorts_and_has_a_readable_header(tmp_path):
    """In headless Chromium at 1,280 px: the page (and the leaderboard table in it) is no wider than the
    window; clicking a header reorders the rows; the header states the settings in words, no Python."""
    browser = _browser()
    store = _wide_run(tmp_path)
    out = tmp_path / "rep"
    assert main(["report", str(store.run_dir), "--out", str(out), "--bootstrap", "20"]) == 0
    page = (out / "report.html").read_text()
    info = re.search(r'</h1>\s*<p class="note"[^>]*>(.*?)</p>', page).group(1)
    assert "{" not in info and "None" not in info and "records: 102 ok" in info, info
    assert "2 model seeds" in info and "no tuning clock" in info and "all splits" in info
    header = re.search(r'<table id="leaderboard"><thead>(.*?)</thead>', page).group(1)
    assert ">GPU s</th>" in header and ">fit s</th>" in header and "median s" not in header
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", SORT_PROBE + "</body>"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    width = int(re.search(r'data-page-width="(\d+)"', dom).group(1))
    assert width <= 1280, f"the page is {width} px wide at a 1,280 px window"
    table_width = float(re.search(r'data-table-width="([\d.]+)"', dom).group(1))
    assert table_width <= 1200, f"the leaderboard table is {table_width} px wide"
    from bench.analysis.analyze import analyze
    from bench.analysis.report import leaderboard_rows

    original = [row[1] for row in leaderboard_rows(analyze(store, n_boot=10))[1]]
    up = re.search(r'data-entry-up="([^"]*)"', dom).group(1).split("|")
    down = re.search(r'data-entry-down="([^"]*)"', dom).group(1).split("|")
    assert up == sorted(original) and down == sorted(original, reverse=True) and up != original
    ranks = re.search(r'data-rank-up="([^"]*)"', dom).group(1).split("|")
    assert ranks == [str(i) for i in range(1, 18)]  # 17 entries: numbers sort as numbers (10 after 9)


def test_the_header_says_which_datasets_the_suites_inner_folds_applied_to(tmp_path):
    """The demo suite's inner 3-fold CV covers its datasets of at most 1,000 rows only: the report's header
    says so from the records (it said "inner 3-fold cross-validation" for the whole run)."""
    from tests.hand_records import record, write_run

    records = [record(ds, "xgboost", "default", score=0.8, inner_folds=k)
               for ds, k in (("wine", 3), ("cpu", 3), ("digits", 1))]
    store = write_run(tmp_path / "run", records, inner_folds=3)
    out = tmp_path / "rep"
    assert main(["report", str(store.run_dir), "--out", str(out)]) == 0
    info = re.search(r'</h1>\s*<p class="note"[^>]*>(.*?)</p>', (out / "report.html").read_text()).group(1)
    assert "inner 3-fold cross-validation on 2 datasets, holdout validation on 1 dataset;" in info, info
