"""`bench run --executor ray --ray-address ...` on a real two-node Ray cluster (a head and a worker node
started with `ray start` on this machine, tests/ray_cluster.py) writes the same records as the local
executor: every field equal but where and when (host, Ray node, timings, log paths). The jobs run on
both nodes (records name their `ray_node`), and the run folder is on a file system both nodes see, as
a multi-node cluster needs. The Ray sweep runs as its own `bench run` process, as a user starts it:
it joins the cluster with the cluster's own authentication token.

The nodes are started without the driver's BENCH_ADAPTER_MODULES, as nodes of a real cluster are: a
plug-in model (tests/plugin_adapter.py, named only in the driver's environment) and the test adapters
run there because the executor forwards the driver's settings (bench.settings, issue 17 item 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.execution.ensembles import CROSS_MODEL
from bench.records.store import ResultStore
from tests.ray_cluster import ray_command, start_two_nodes
from tests.test_ray_executor import _comparable

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'tabular-bench[ray]'")

MODELS = "test_prior,dummy,linear,test_raise,test_crash,test_plugin_centroid"
PLUGINS = "tests.fault_adapters:tests.plugin_adapter"  # conftest names only tests.fault_adapters


@pytest.fixture(scope="module")
def cluster():
    if ray_command() is None:
        pytest.skip("the `ray` command line is not installed")
    nodes = start_two_nodes(cpus_per_node=1, without=("BENCH_ADAPTER_MODULES",))
    try:
        yield nodes
    finally:
        nodes.stop()


def test_sweep_spread_over_two_ray_nodes_equals_the_local_executor(cluster, tmp_path, monkeypatch):
    import tests.plugin_adapter  # noqa: F401  (registers the plug-in in this process, which runs the local sweep)

    monkeypatch.setenv("BENCH_ADAPTER_MODULES", PLUGINS)  # the local workers and the Ray driver
    suite = tmp_path / "two.toml"
    suite.write_text('name = "two"\n[protocol]\nfolds = 2\nseed = 0\n[[datasets]]\nembedded = "breast_cancer"\n')
    common = ["run", "--suite", str(suite), "--models", MODELS, "--trials", "2", "--threads", "1", "--device", "cpu",
              "--time-limit", "60", "--quiet"]
    assert main([*common, "--jobs", "2", "--out", str(tmp_path / "local")]) == 0
    done = subprocess.run([sys.executable, "-m", "bench.cli", *common, "--executor", "ray", "--ray-address",
                           cluster.address, "--out", str(tmp_path / "ray")],
                          env={**os.environ, **cluster.env}, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    local = {(r["job_id"], r["variant"]): r for r in ResultStore(tmp_path / "local").load_all()}
    remote = {(r["job_id"], r["variant"]): r for r in ResultStore(tmp_path / "ray").load_all()}
    # 2 splits x (4 models x 3 variants (default, tuned, ensemble) + the defaults of dummy and the plug-in
    # + the cross-model ensemble)
    assert set(local) == set(remote) and len(remote) == 2 * (4 * 3 + 2 + 1)
    assert sorted(r["status"] for r in remote.values()) == ["crashed"] * 6 + ["failed"] * 6 + ["ok"] * 18
    plugin = [r for r in remote.values() if r["model"] == "test_plugin_centroid"]
    assert len(plugin) == 2 and all(r["status"] == "ok" and r["test_score"] > 0.9 for r in plugin)
    for key, record in local.items():
        assert _comparable(remote[key]) == _comparable(record), key
    # both nodes ran jobs; a crashed job's record and the cross-model ensembles (selected after their
    # members finished) are written by the driver and name no node
    nodes = {r["ray_node"] for r in remote.values() if r["status"] != "crashed" and r["model"] != CROSS_MODEL}
    assert len(nodes) == 2 and all(len(n) == 56 for n in nodes)
    assert all("ray_node" not in r for r in local.values())
    # the workers of both nodes wrote their logs into the shared run folder
    assert all(Path(r["log"]).is_file() and str(tmp_path / "ray") in r["log"]
               for r in remote.values() if r["model"] != CROSS_MODEL)
