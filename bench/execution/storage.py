"""The shared Optuna storage of `bench run --storage URL`: one database for the studies of every job
(and of every run: study names carry the run's id), instead of one SQLite file per job.

The URL is SQLAlchemy's. A PostgreSQL URL without a driver (`postgresql://user@host/db`, as the README
and most documentation write it) gets the driver that is installed (`normalize`): SQLAlchemy picks its
own default for it (psycopg 3 since SQLAlchemy 2.1, psycopg2 before), which need not be the one the
`postgres` extra installs (psycopg2-binary), and the documented URL then failed with "Failed to import
DB access module". `postgres://` (an old alias SQLAlchemy no longer takes) is read as `postgresql://`.

The storage is opened once before any job runs (`check_storage`): a wrong URL or a missing driver is one
clear error instead of a failure record per job, and Optuna's tables exist before workers start. Two
runs creating one fresh database at the same moment race on its schema (SQLite: "UNIQUE constraint
failed: alembic_version", "table already exists", "database is locked"; PostgreSQL: duplicate keys or
relations): the loser of such a race tries again, and finds the schema made.
"""

from __future__ import annotations

import importlib.util
import random
import sqlite3
import time
from pathlib import Path

from bench.errors import BenchError

POSTGRES_DRIVERS = ("psycopg", "psycopg2")  # SQLAlchemy driver names = their modules; preferred first
# Words of the errors a concurrent creation of Optuna's schema gives (SQLite and PostgreSQL).
SCHEMA_RACE = ("already exists", "database is locked", "unique constraint", "duplicate key")
ATTEMPTS = 6


def normalize(url: str) -> str:
    """`url` with an installed driver named where it names none for PostgreSQL (see the module doc)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # an unparseable URL: check_storage names it
        return url
    if parsed.drivername not in ("postgresql", "postgres"):
        return url
    driver = next((d for d in POSTGRES_DRIVERS if importlib.util.find_spec(d) is not None), None)
    name = f"postgresql+{driver}" if driver else "postgresql"
    return parsed.set(drivername=name).render_as_string(hide_password=False)


def check_storage(url: str) -> None:
    """Open the storage once (creating Optuna's tables in a fresh database); BenchError naming the URL,
    without its password, when it cannot be opened."""
    import optuna

    url = normalize(url)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            optuna.storages.RDBStorage(url)
            return
        except ImportError as exc:  # (optuna re-raises a missing driver as a plain ImportError)
            raise BenchError(f"--storage {redact(url)}: the database driver is not installed ({exc}); for "
                             f"PostgreSQL: pip install 'tabular-bench[postgres]'") from None
        except Exception as exc:  # sqlalchemy's errors (bad URL, refused connection, auth) vary by driver
            if attempt < ATTEMPTS and any(words in str(exc).lower() for words in SCHEMA_RACE):
                time.sleep(random.uniform(0.05, 0.2) * attempt)  # another run is creating the schema
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"--storage {redact(url)}: cannot open the Optuna storage: {first}") from None


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def job_study_storage(path: Path):
    """The Optuna storage of one job's own SQLite study file, with `PRAGMA synchronous=OFF`.

    SQLite's default (FULL) syncs the disk on every commit, and Optuna commits many times per trial
    (parameters, each intermediate value, each user attribute, the state): ~0.9 s of fsyncs per trial on
    a loaded disk, more than a small model's fit. Without the syncs a commit is still atomic for a
    killed process (kill -9 included: SQLite's rollback journal is written before the database, the
    operating system keeps both), so resume is unchanged; only a power cut or an OS crash could damage
    the file, and a damaged study fails the quick check a job runs first (bench.execution.jobs
    .from_scratch_if_damaged): it is set aside and the job runs from scratch."""
    import optuna

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False)
        db.execute("PRAGMA synchronous=OFF")
        return db

    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": connect})
