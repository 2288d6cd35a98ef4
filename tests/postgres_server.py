"""A throwaway PostgreSQL server for tests, from the Debian `postgresql` package (.ci/run installs it).

initdb + pg_ctl in a temp folder, listening only on a Unix socket in that folder (the port just names
the socket), trust authentication for the one local user. As root the server runs as the `postgres`
system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresServer:
    url: str  # SQLAlchemy URL of an empty database
    root: Path


def postgres_bin_dir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                            reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runuser() -> str | None:
    # util-linux's runuser lives in /usr/sbin, which a non-login PATH may leave out
    return shutil.which("runuser") or next((p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)),
                                           None)


def server_user_problem() -> str | None:
    """Why the server cannot run here (as root it must run as the `postgres` user), or None."""
    if os.geteuid() != 0:
        return None
    if _runuser() is None:
        return "running as root needs util-linux `runuser` to start PostgreSQL as the postgres user"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "running as root needs the `postgres` system user (the Debian package creates it)"
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return [_runuser() or "runuser", "-u", "postgres", "--", *cmd]


def start(bin_dir: Path) -> tuple[PostgresServer, callable]:
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(_as_server_user(cmd), check=True, capture_output=True, text=True, timeout=120)

    run([str(bin_dir / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust", "--no-sync",
         "--encoding=UTF8"])
    options = f"-p {port} -k {sockets} -c listen_addresses='' -c fsync=off -c max_connections=50"
    run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w",
         "-t", "60", "start"])

    def stop():
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                        "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    try:
        run([str(bin_dir / "createdb"), "-h", str(sockets), "-p", str(port), "-U", "bench", "optuna"])
    except Exception:
        stop()
        raise
    # Exactly the README's form (`--storage postgresql://user@host/db`): no driver named in the URL.
    return PostgresServer(f"postgresql://bench@/optuna?host={sockets}&port={port}", root), stop
