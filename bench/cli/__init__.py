"""Command line: `bench run | leaderboard | report | regress | suites | models | fetch`."""

from bench.cli.main import build_parser, console, main  # noqa: F401
