"""The public job API: declare queues and actors, enqueue in a transaction, control and read
jobs, reach the running job's context.

Importing this package is enough to declare actors: the first ``@job`` configures the
PostgreSQL broker if nothing did.
"""

from app.jobs.actor import job
from app.jobs.context import (
    SessionNeedsThread,
    current_job,
    current_session,
    current_tenant,
    in_session,
    separate_session,
)
from app.jobs.delayed import (
    JobFinished,
    JobRunning,
    cancel,
    cancel_many,
    reschedule,
    retry_dead,
)
from app.jobs.enqueue import EnqueueResult, enqueue, enqueue_many, fan_out
from app.jobs.errors import EnqueueRefused, PoisonValue
from app.jobs.hooks import FailedAttempt
from app.jobs.policies import QueuePolicy, declare_queue
from app.jobs.progress import report_progress
from app.jobs.results import (
    JobFailed,
    JobInfo,
    JobNotFinished,
    JobNotFound,
    JobsTimeout,
    get_job,
    get_jobs,
    get_result,
    wait_for_results,
)

__all__ = [
    "EnqueueRefused",
    "EnqueueResult",
    "FailedAttempt",
    "JobFailed",
    "JobFinished",
    "JobInfo",
    "JobNotFinished",
    "JobNotFound",
    "JobRunning",
    "JobsTimeout",
    "PoisonValue",
    "QueuePolicy",
    "SessionNeedsThread",
    "cancel",
    "cancel_many",
    "current_job",
    "current_session",
    "current_tenant",
    "declare_queue",
    "enqueue",
    "enqueue_many",
    "fan_out",
    "get_job",
    "get_jobs",
    "get_result",
    "in_session",
    "job",
    "report_progress",
    "reschedule",
    "retry_dead",
    "separate_session",
    "wait_for_results",
]
