"""A throwaway two-node Ray cluster on this machine, started with the `ray` command line as a real
cluster would be: a head node and a second worker node, each its own raylet with its own ports and
temp folder, joined through the head's GCS address.

Why every port is given: two nodes on one host would otherwise both take Ray's fixed defaults (the
dashboard agent's 52365, the client server's 10001) and the second one fails, and other Ray
instances on a shared machine must not be disturbed. Authentication: a fresh random token for this
cluster only (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN in the environment of the nodes and of the driver),
so nothing in ~/.ray is read or written.

Teardown kills exactly the processes this cluster started: each `ray start` runs in a new session,
so its daemons (GCS, raylet, agents, workers) share its process group, and processes whose command
line names the cluster's unique temp folders are killed too. `ray stop` is not used: it stops every
Ray process on the machine, other users' included.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_command() -> str | None:
    exe = Path(sys.executable).parent / "ray"
    return str(exe) if exe.exists() else shutil.which("ray")


# Worker port ranges lie below Linux's ephemeral range (32768-60999), where _free_port's ports (the OS's
# choice) come from: a range drawn across it could hold another component's port, and Ray refuses to
# start ("worker_ports is trying to use a port number ... used by other components").
WORKER_PORTS_LOW, WORKER_PORTS_HIGH, WORKER_PORTS = 12000, 32000, 400


def _worker_port_bases(nodes: int) -> list[int]:
    """Disjoint worker port ranges for `nodes` nodes, at a random place (other Ray instances may run)."""
    slots = (WORKER_PORTS_HIGH - WORKER_PORTS_LOW) // (WORKER_PORTS + 1)
    first = secrets.randbelow(slots - nodes + 1)
    return [WORKER_PORTS_LOW + (first + i) * (WORKER_PORTS + 1) for i in range(nodes)]


def _node_ports(worker_base: int) -> list[str]:
    return [f"--node-manager-port={_free_port()}", f"--object-manager-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
            f"--min-worker-port={worker_base}", f"--max-worker-port={worker_base + WORKER_PORTS}"]


@dataclass
class RayCluster:
    address: str
    env: dict  # what a driver needs in its environment to join (the auth token)
    root: Path
    groups: list[int] = field(default_factory=list)

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pgid in self.groups:
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    pass
            for pid in _pids_naming(str(self.root)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if sig == signal.SIGTERM:
                time.sleep(2)
        shutil.rmtree(self.root, ignore_errors=True)


def _pids_naming(text: str) -> list[int]:
    """Processes whose command line contains `text` (our unique temp folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def start_two_nodes(cpus_per_node: int = 1, extra_env: dict | None = None, without: tuple[str, ...] = ()) -> RayCluster:
    """Head + one worker node, each with `cpus_per_node` CPUs and no GPU. Raises if either fails.
    `without`: variables of this process's environment the nodes do not get (as on a real cluster,
    whose nodes are started apart from the driver)."""
    ray = ray_command()
    if ray is None:
        raise RuntimeError("the `ray` command is not installed")
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    port = _free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in without}
    env = {**inherited, **(extra_env or {}), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    cluster = RayCluster(f"127.0.0.1:{port}", {k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}, root)
    common = [f"--num-cpus={cpus_per_node}", "--num-gpus=0", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    head_ports, worker_ports = _worker_port_bases(2)
    head = [ray, "start", "--head", f"--port={port}", f"--temp-dir={root / 'head'}", "--include-dashboard=false",
            *common, *_node_ports(head_ports)]
    worker = [ray, "start", f"--address=127.0.0.1:{port}", f"--temp-dir={root / 'worker'}", *common,
              *_node_ports(worker_ports)]
    try:
        for cmd in (head, worker):
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            cluster.groups.append(proc.pid)  # a new session: its process group id is its pid
            out, _ = proc.communicate(timeout=START_TIMEOUT)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[1:3])} failed ({proc.returncode}):\n{out[-3000:]}")
    except BaseException:
        cluster.stop()
        raise
    return cluster
