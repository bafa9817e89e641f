"""Errors raised by sdegen. Each carries one line that names the problem and the fix."""


class SdegenError(Exception):
    """Base class: the CLI prints `str(err)` on one line and exits with status 2."""


class ConfigError(SdegenError, ValueError):
    """A config key, value or override is invalid."""


class DataError(SdegenError, ValueError):
    """A data file is missing or malformed."""


class DataMissingError(DataError):
    """A dataset's files are not where the config points (not malformed: absent). The CLI exits
    with `EXIT_DATA_MISSING`, and `sdegen reproduce --all` reports such an experiment as skipped,
    as the test suite skips tests whose data files are absent."""


EXIT_DATA_MISSING = 3
"""Exit status of `sdegen` when a dataset's files are absent (`DataMissingError`)."""


class SolverError(SdegenError, RuntimeError):
    """A Diffrax solve failed (step limit, non-finite values)."""


class TrainingError(SdegenError, RuntimeError):
    """Training stopped (non-finite loss, incompatible checkpoint)."""
