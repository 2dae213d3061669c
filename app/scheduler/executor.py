"""An APScheduler executor that tells the job which slot it fires.

APScheduler 3 calls a job function without its scheduled run time, but a firing must know
its slot: the slot is the unique key, and the ledger fills in what was missed since the
last one. Jobs run coalesced (APScheduler hands over the latest due run time); which missed
slots to add is decided in ``firing.py`` from the ledger and the task's misfire policy.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job


def run_slot(
    job: Job, jobstore_alias: str, run_times: list[datetime], logger_name: str
) -> list[JobExecutionEvent]:
    """Like APScheduler's ``run_job``, once, for the latest run time, passed as ``due``."""
    logger = logging.getLogger(logger_name)
    due = run_times[-1]
    try:
        retval = job.func(*job.args, due=due, **job.kwargs)
    except Exception:
        exc, tb = sys.exc_info()[1:]
        logger.exception("event=firing_failed job=%s due=%s", job.id, due.isoformat())
        return [JobExecutionEvent(EVENT_JOB_ERROR, job.id, jobstore_alias, due, exception=exc,
                                  traceback="".join(traceback.format_tb(tb)))]
    return [JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, jobstore_alias, due, retval=retval)]


class SlotExecutor(ThreadPoolExecutor):
    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(run_slot, job, job._jobstore_alias, run_times,
                                   self._logger.name)
        future.add_done_callback(done)
