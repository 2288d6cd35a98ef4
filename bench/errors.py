"""User-facing errors: the CLI prints their message (no traceback) and exits with code 2."""


class BenchError(Exception):
    """Bad input or an unavailable resource, explained in words a user can act on."""


class SuiteFormatError(BenchError):
    """A suite file is malformed; the message names the file and the field."""

    def __init__(self, path, field: str, problem: str):
        self.path, self.field, self.problem = path, field, problem
        super().__init__(f"{path}: field '{field}': {problem}")


class DataUnavailableError(BenchError):
    """A dataset, task or suite cannot be loaded (offline, missing cache, missing file)."""
