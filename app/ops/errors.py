"""Operation errors, each with the exit code the CLI returns for it.

Exit codes: 0 success; 1 unhealthy, or the database failed; 2 bad arguments; 3 unknown
job id; 4 the job is in a state the command does not apply to (nothing was changed).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_CONFLICT = 4


class OpsError(Exception):
    exit_code = EXIT_FAILED


class BadArgument(OpsError):
    exit_code = EXIT_USAGE


class UnknownJob(OpsError):
    exit_code = EXIT_UNKNOWN


class NotApplicable(OpsError):
    """The job exists but its state rules the operation out (e.g. cancel a running job)."""

    exit_code = EXIT_CONFLICT
