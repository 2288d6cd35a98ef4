"""`bench report` on a small real run, rendered in headless Chromium."""

import re
import shutil
import subprocess

import pytest

from bench.cli import main

PLOTS = ("normalized-score", "elo", "critical-difference", "win-rate", "tuning-curves", "time-vs-score")


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
    for entry in ("dummy/default", "linear/tuned", "xgboost/default", "xgboost/tuned"):
        assert entry in page and entry in md
    # every per-dataset number links its record files, relative to the report
    links = re.findall(r'href="([^"]+/records/[^"]+\.json)"', page)
    assert len(links) == 3 * 5 * 2 and all((out / link).resolve().exists() for link in links)
    assert "Grinsztajn" in page and "Friedman" in page


def test_report_of_a_folder_without_records_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no records" in capsys.readouterr().out


def test_report_renders_in_headless_chromium(run_dir, tmp_path, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian `chromium` is not installed (apt-get install chromium; .ci/run installs it)")
    out = tmp_path / "rep"
    assert main(["report", str(run_dir), "--out", str(out), "--bootstrap", "100"]) == 0
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    # the page's own script counts images that decoded with a real size
    assert re.search(r'data-images-loaded="(\d+)/\1"', dom), dom[:500]
    assert f'data-images-loaded="{len(PLOTS)}/{len(PLOTS)}"' in dom
    table = re.search(r'<table id="leaderboard">.*?</table>', dom, re.S).group(0)
    assert table.count("<tr>") == 1 + 5  # header + 5 entries
    for name in PLOTS:
        assert f'id="plot-{name}"' in dom
