"""The public job API: declare actors, enqueue in a transaction, reach the job's context."""

from app.jobs.actor import job
from app.jobs.context import current_job, current_session, current_tenant
from app.jobs.delayed import JobFinished, JobRunning, cancel, cancel_many, reschedule
from app.jobs.enqueue import EnqueueResult, enqueue, enqueue_many
from app.jobs.errors import EnqueueRefused
from app.jobs.progress import report_progress
from app.jobs.results import get_job, get_result, wait_for_results

__all__ = [
    "EnqueueRefused",
    "EnqueueResult",
    "JobFinished",
    "JobRunning",
    "cancel",
    "cancel_many",
    "current_job",
    "current_session",
    "current_tenant",
    "enqueue",
    "enqueue_many",
    "get_job",
    "get_result",
    "job",
    "report_progress",
    "reschedule",
    "wait_for_results",
]
